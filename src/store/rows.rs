//! Row structs for the store tables and their decoding. Core enums are stored as their
//! `as_str()` names; a stored name this build does not know (written by a newer agtmux, or by
//! hand) decodes to a conversion error instead of a panic. Pane ids are stored as tmux prints
//! them (`%N`) and decode to a [`PaneId`] the same way: a malformed one is a conversion error.
use std::fmt;

use rusqlite::Row;
use rusqlite::types::Type;

use crate::core::types::{
    Activity, AttentionKind, Evidence, Health, Millis, PaneId, Presence, Provider,
};

/// What ingest decided about an event (accepted *and* rejected events are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventStatus {
    Accepted,
    Rejected,
    Ignored,
    Duplicate,
}

impl EventStatus {
    pub(crate) const ALL: &'static [EventStatus] = &[
        EventStatus::Accepted,
        EventStatus::Rejected,
        EventStatus::Ignored,
        EventStatus::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Rejected => "rejected",
            EventStatus::Ignored => "ignored",
            EventStatus::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<EventStatus> {
        EventStatus::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Retention bounds for [`super::Store::prune`]: events beyond either bound are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many newest events.
    pub(crate) max_events: u64,
    /// Delete events ingested, and bindings closed, longer ago than this.
    pub(crate) max_age_ms: i64,
}

impl Default for Retention {
    /// 200 000 events or 7 days: a few tens of MB at most.
    fn default() -> Self {
        Retention {
            max_events: 200_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
        }
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

pub(crate) const EVENT_COLS: &str = "seq, event_id, server_key, source, provider, pane_id, \
     session_key, name, status, reason, recv_ts, ingest_ts, payload, hops";

pub(crate) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(0)?,
        event_id: r.get(1)?,
        server_key: r.get(2)?,
        source: r.get(3)?,
        provider: r.get(4)?,
        pane_id: opt_enum_col(r, 5, PaneId::parse)?,
        session_key: r.get(6)?,
        name: r.get(7)?,
        status: enum_col(r, 8, EventStatus::parse)?,
        reason: r.get(9)?,
        recv_ts: r.get(10)?,
        ingest_ts: r.get(11)?,
        payload: r.get(12)?,
        hops: r.get(13)?,
    })
}

pub(crate) const PANE_COLS: &str = "server_key, server_id, pane_id, generation, birth_ts, \
     presence, provider, evidence, activity, attention, title, title_source, session_key, \
     winner_source, since_ts, updated_ts, state_version, extra";

pub(crate) fn pane_from_row(r: &Row<'_>) -> rusqlite::Result<PaneStateRow> {
    Ok(PaneStateRow {
        server_key: r.get(0)?,
        server_id: r.get(1)?,
        pane_id: enum_col(r, 2, PaneId::parse)?,
        generation: r.get(3)?,
        birth_ts: r.get(4)?,
        presence: enum_col(r, 5, Presence::parse)?,
        provider: opt_enum_col(r, 6, Provider::parse)?,
        evidence: enum_col(r, 7, Evidence::parse)?,
        activity: enum_col(r, 8, Activity::parse)?,
        attention: opt_enum_col(r, 9, AttentionKind::parse)?,
        title: r.get(10)?,
        title_source: r.get(11)?,
        session_key: r.get(12)?,
        winner_source: r.get(13)?,
        since_ts: r.get(14)?,
        updated_ts: r.get(15)?,
        state_version: r.get(16)?,
        extra: r.get(17)?,
    })
}

pub(crate) const SESSION_COLS: &str = "session_key, provider, server_key, pane_id, generation, \
     activity, title, updated_ts, state_version";

pub(crate) fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionStateRow> {
    Ok(SessionStateRow {
        session_key: r.get(0)?,
        provider: enum_col(r, 1, Provider::parse)?,
        server_key: r.get(2)?,
        pane_id: opt_enum_col(r, 3, PaneId::parse)?,
        generation: r.get(4)?,
        activity: enum_col(r, 5, Activity::parse)?,
        title: r.get(6)?,
        updated_ts: r.get(7)?,
        state_version: r.get(8)?,
    })
}

pub(crate) const BINDING_COLS: &str = "id, server_key, server_id, pane_id, generation, birth_ts, \
     session_key, provider, linked_ts, unlinked_ts, reason, tombstone_until";

pub(crate) fn binding_from_row(r: &Row<'_>) -> rusqlite::Result<BindingRow> {
    Ok(BindingRow {
        id: r.get(0)?,
        server_key: r.get(1)?,
        server_id: r.get(2)?,
        pane_id: enum_col(r, 3, PaneId::parse)?,
        generation: r.get(4)?,
        birth_ts: r.get(5)?,
        session_key: r.get(6)?,
        provider: enum_col(r, 7, Provider::parse)?,
        linked_ts: r.get(8)?,
        unlinked_ts: r.get(9)?,
        reason: r.get(10)?,
        tombstone_until: r.get(11)?,
    })
}

pub(crate) fn cursor_from_row(r: &Row<'_>) -> rusqlite::Result<CursorRow> {
    Ok(CursorRow {
        source_id: r.get(0)?,
        committed_cursor: r.get(1)?,
        fetched_cursor: r.get(2)?,
        updated_ts: r.get(3)?,
    })
}

pub(crate) fn health_from_row(r: &Row<'_>) -> rusqlite::Result<HealthRow> {
    Ok(HealthRow {
        source_id: r.get(0)?,
        health: enum_col(r, 1, Health::parse)?,
        reason: r.get(2)?,
        updated_ts: r.get(3)?,
    })
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
