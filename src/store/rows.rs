//! Row structs for the store tables and their decoding. Core enums are stored as their
//! `as_str()` names; a stored name this build does not know (written by a newer agtmux, or by
//! hand) decodes to a conversion error instead of a panic. Pane ids are stored as tmux prints
//! them (`%N`) and decode to a [`PaneId`] the same way: a malformed one is a conversion error.
use std::fmt;

use rusqlite::Row;
use rusqlite::types::{FromSql, Type};

use crate::core::seeded::seeded;
use crate::core::types::str_enum;
use crate::core::types::{
    Activity, AttentionKind, Evidence, Health, Millis, PaneId, Presence, Provider,
};

str_enum!(
    /// What ingest decided about an event (accepted *and* rejected events are kept).
    EventStatus {
        Accepted => "accepted",
        Rejected => "rejected",
        Ignored => "ignored",
        Duplicate => "duplicate",
    }
);

/// One row of `events_raw_v2`. `seq` is assigned by the store (ignored on insert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub server_key: String,
    /// Source id (e.g. `claude_hooks`, `poller`).
    pub source: String,
    /// Raw provider name as received: a rejected event may name a provider we do not know.
    pub provider: Option<String>,
    pub pane_id: Option<PaneId>,
    pub session_key: Option<String>,
    /// Event name (e.g. `PreToolUse`, `turn/completed`).
    pub name: String,
    pub status: EventStatus,
    /// Why it was rejected/ignored (`source_inadmissible`, ...).
    pub reason: Option<String>,
    pub(crate) recv_ts: Millis,
    pub(crate) ingest_ts: Millis,
    /// The normalized payload, JSON text.
    pub payload: String,
    /// JSON object of per-hop timestamps (`{"source":..,"gateway":..,"daemon":..}`).
    pub hops: String,
}

/// One row of `pane_state_v2`: the latest winner for a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneStateRow {
    pub server_key: String,
    pub server_id: String,
    pub pane_id: PaneId,
    pub generation: u32,
    pub birth_ts: Millis,
    pub presence: Presence,
    pub provider: Option<Provider>,
    pub evidence: Evidence,
    pub activity: Activity,
    pub attention: Option<AttentionKind>,
    pub title: String,
    pub(crate) title_source: String,
    pub session_key: Option<String>,
    pub(crate) winner_source: Option<String>,
    pub(crate) since_ts: Millis,
    pub(crate) updated_ts: Millis,
    /// Flow-014 compare-and-swap version.
    pub(crate) state_version: i64,
    /// Free-form JSON for fields that do not deserve a column yet.
    pub extra: String,
}

/// One row of `session_state_v2`: the latest winner for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStateRow {
    pub session_key: String,
    pub provider: Provider,
    pub server_key: Option<String>,
    pub pane_id: Option<PaneId>,
    pub generation: Option<u32>,
    pub activity: Activity,
    pub title: String,
    pub(crate) updated_ts: Millis,
    pub(crate) state_version: i64,
}

/// One row of `binding_link_v2`: a pane instance ↔ session link (Flow-007). `id` is assigned
/// by the store (ignored on insert). `reason` is the link reason, replaced by the unlink reason
/// when the link is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    pub id: i64,
    pub server_key: String,
    pub server_id: String,
    pub pane_id: PaneId,
    pub generation: u32,
    pub birth_ts: Millis,
    pub session_key: String,
    pub provider: Provider,
    pub linked_ts: Millis,
    pub unlinked_ts: Option<Millis>,
    pub reason: String,
    pub tombstone_until: Option<Millis>,
}

/// One row of `cursor_state_v2` (Flow-006).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorRow {
    pub source_id: String,
    pub committed_cursor: String,
    pub fetched_cursor: Option<String>,
    pub(crate) updated_ts: Millis,
}

/// One row of `source_health_v2` (Flow-004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRow {
    pub source_id: String,
    pub health: Health,
    pub reason: String,
    pub(crate) updated_ts: Millis,
}

seeded! {
    /// Retention bounds for [`super::Store::prune`]: events beyond either bound are deleted.
    /// Seeds: 200 000 events or 7 days: a few tens of MB at most.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Retention {
        /// Keep at most this many newest events.
        pub(crate) max_events: u64 = 200_000,
        /// Delete events ingested, and bindings closed, longer ago than this.
        pub(crate) max_age_ms: i64 = 7 * 24 * 3600 * 1000,
    }
}

impl Retention {
    /// The seeds, with the event bound taken from `AGTMUX_RETENTION_EVENTS` when set: a user
    /// with room to spare keeps more history, and a test that writes more than 200 000 events
    /// checks loss without the bound deleting the oldest ones under it.
    pub(crate) fn from_env() -> Retention {
        let mut r = Retention::default();
        if let Some(n) = crate::sys::env::positive::<u64>("AGTMUX_RETENTION_EVENTS") {
            r.max_events = n;
        }
        r
    }
}

#[derive(Debug)]
struct UnknownValue(String);

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown stored value {:?}", self.0)
    }
}

impl std::error::Error for UnknownValue {}

/// A text column read through `parse` (a core enum's name, a pane id).
fn enum_col<T>(row: &Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(UnknownValue(s)))
    })
}

fn opt_enum_col<T>(
    row: &Row<'_>,
    idx: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(UnknownValue(s)))
        }),
    }
}

/// Reads a row's columns in order: the i-th call reads column i. [`row_decoder!`] walks it.
pub(super) struct Cols<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl<'a, 'r> Cols<'a, 'r> {
    pub(super) fn new(row: &'a Row<'r>) -> Self {
        Cols { row, next: 0 }
    }

    fn take(&mut self) -> usize {
        let i = self.next;
        self.next += 1;
        i
    }

    /// The next column as it is stored.
    pub(super) fn col<T: FromSql>(&mut self) -> rusqlite::Result<T> {
        let i = self.take();
        self.row.get(i)
    }

    /// The next column, a stored enum name.
    pub(super) fn col_enum<T>(&mut self, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
        let i = self.take();
        enum_col(self.row, i, parse)
    }

    /// The next column, a nullable stored enum name.
    pub(super) fn col_opt_enum<T>(
        &mut self,
        parse: fn(&str) -> Option<T>,
    ) -> rusqlite::Result<Option<T>> {
        let i = self.take();
        opt_enum_col(self.row, i, parse)
    }

    /// The next column read as `S`, then converted.
    pub(super) fn col_with<S: FromSql, T>(&mut self, f: fn(S) -> T) -> rusqlite::Result<T> {
        self.col().map(f)
    }
}

/// Defines a row decoder `fn(&Row) -> rusqlite::Result<T>` for a struct whose listed fields are
/// the SELECT's columns in order (`field: enum P::parse` for a stored enum name, `field: opt_enum
/// P::parse` for a nullable one, `field: with f` to convert the stored value), and, with
/// `const NAME`, that column list for the SELECT: one list, so the query and the decoding
/// cannot drift apart.
macro_rules! row_decoder {
    ($vis:vis fn $decode:ident -> $T:ident, const $cols:ident {
        $($field:ident $(: $how:ident $conv:path)?),+ $(,)?
    }) => {
        $vis const $cols: &str = row_decoder!(@join $($field),+);
        row_decoder!($vis fn $decode -> $T { $($field $(: $how $conv)?),+ });
    };
    ($vis:vis fn $decode:ident -> $T:ident {
        $($field:ident $(: $how:ident $conv:path)?),+ $(,)?
    }) => {
        $vis fn $decode(r: &rusqlite::Row<'_>) -> rusqlite::Result<$T> {
            let mut c = $crate::store::rows::Cols::new(r);
            Ok($T { $($field: row_decoder!(@col c $(, $how $conv)?)?),+ })
        }
    };
    (@join $first:ident $(, $rest:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($rest))*)
    };
    (@col $c:ident) => { $c.col() };
    (@col $c:ident, enum $p:path) => { $c.col_enum($p) };
    (@col $c:ident, opt_enum $p:path) => { $c.col_opt_enum($p) };
    (@col $c:ident, with $p:path) => { $c.col_with($p) };
}
pub(super) use row_decoder;

row_decoder! {
    pub(crate) fn event_from_row -> EventRow, const EVENT_COLS {
        seq, event_id, server_key, source, provider,
        pane_id: opt_enum PaneId::parse,
        session_key, name,
        status: enum EventStatus::parse,
        reason, recv_ts, ingest_ts, payload, hops,
    }
}

row_decoder! {
    pub(crate) fn pane_from_row -> PaneStateRow, const PANE_COLS {
        server_key, server_id, pane_id: enum PaneId::parse, generation, birth_ts,
        presence: enum Presence::parse,
        provider: opt_enum Provider::parse,
        evidence: enum Evidence::parse,
        activity: enum Activity::parse,
        attention: opt_enum AttentionKind::parse,
        title, title_source, session_key, winner_source, since_ts, updated_ts, state_version, extra,
    }
}

row_decoder! {
    pub(crate) fn session_from_row -> SessionStateRow, const SESSION_COLS {
        session_key,
        provider: enum Provider::parse,
        server_key, pane_id: opt_enum PaneId::parse, generation,
        activity: enum Activity::parse,
        title, updated_ts, state_version,
    }
}

row_decoder! {
    pub(crate) fn binding_from_row -> BindingRow, const BINDING_COLS {
        id, server_key, server_id, pane_id: enum PaneId::parse, generation, birth_ts, session_key,
        provider: enum Provider::parse,
        linked_ts, unlinked_ts, reason, tombstone_until,
    }
}

row_decoder! {
    pub(crate) fn cursor_from_row -> CursorRow, const CURSOR_COLS {
        source_id, committed_cursor, fetched_cursor, updated_ts,
    }
}

row_decoder! {
    pub(crate) fn health_from_row -> HealthRow, const HEALTH_COLS {
        source_id,
        health: enum Health::parse,
        reason, updated_ts,
    }
}

/// True for a per-row decoding failure (unknown enum name, out-of-range integer, wrong type):
/// list reads skip such a row with a warning instead of failing the whole read.
pub(crate) fn is_decode_error(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
    )
}
