//! Read queries shared by [`super::Store`] (outside a transaction) and [`super::Tx`] (inside
//! one, seeing its own uncommitted writes).
use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::core::types::PaneId;

use super::error::StoreError;
use super::rows::{
    self, BINDING_COLS, BindingRow, CURSOR_COLS, CursorRow, EVENT_COLS, EventRow, EventStatus,
    HEALTH_COLS, HealthRow, PANE_COLS, PaneStateRow, SESSION_COLS, SessionStateRow,
};

pub(crate) struct Reads<'c>(pub &'c Connection);

/// Defines read methods on a connection's owner ([`super::Store`], or [`super::Tx`] inside its
/// transaction) that run the [`Reads`] query of the same name through the owner's `reads()`:
/// the query is written once, each owner lists only the signatures it offers.
macro_rules! forward_reads {
    ($($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)+) => {
        $(
            $(#[$doc])*
            $vis fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                self.reads().$name($($arg),*)
            }
        )+
    };
}
pub(super) use forward_reads;

/// Collects a list read, skipping rows this build cannot decode (logged) so one odd row never
/// hides the others.
fn collect<T>(
    op: &'static str,
    rows: impl Iterator<Item = rusqlite::Result<T>>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for r in rows {
        match r {
            Ok(v) => out.push(v),
            Err(e) if rows::is_decode_error(&e) => log::warn!("store: {op}: skipping row: {e}"),
            Err(e) => return Err(StoreError::sql(op, e)),
        }
    }
    Ok(out)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Reads<'_> {
    fn one<T>(
        &self,
        op: &'static str,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(sql)
            .map_err(|e| StoreError::sql(op, e))?;
        st.query_row(p, f)
            .optional()
            .map_err(|e| StoreError::sql(op, e))
    }

    fn many<T>(
        &self,
        op: &'static str,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(sql)
            .map_err(|e| StoreError::sql(op, e))?;
        let it = st.query_map(p, f).map_err(|e| StoreError::sql(op, e))?;
        collect(op, it)
    }

    pub fn cursor(&self, source_id: &str) -> Result<Option<CursorRow>, StoreError> {
        self.one(
            "read cursor",
            &format!("SELECT {CURSOR_COLS} FROM cursor_state_v2 WHERE source_id = ?1"),
            params![source_id],
            rows::cursor_from_row,
        )
    }

    pub fn pane_states(&self, server_key: &str) -> Result<Vec<PaneStateRow>, StoreError> {
        let sql =
            format!("SELECT {PANE_COLS} FROM pane_state_v2 WHERE server_key = ?1 ORDER BY pane_id");
        self.many(
            "read pane states",
            &sql,
            params![server_key],
            rows::pane_from_row,
        )
    }

    pub fn pane_state(
        &self,
        server_key: &str,
        pane_id: &PaneId,
    ) -> Result<Option<PaneStateRow>, StoreError> {
        let sql =
            format!("SELECT {PANE_COLS} FROM pane_state_v2 WHERE server_key = ?1 AND pane_id = ?2");
        self.one(
            "read pane state",
            &sql,
            params![server_key, pane_id.as_str()],
            rows::pane_from_row,
        )
    }

    pub(crate) fn session_state(
        &self,
        session_key: &str,
    ) -> Result<Option<SessionStateRow>, StoreError> {
        let sql = format!("SELECT {SESSION_COLS} FROM session_state_v2 WHERE session_key = ?1");
        self.one(
            "read session state",
            &sql,
            params![session_key],
            rows::session_from_row,
        )
    }

    pub(crate) fn session_states(&self) -> Result<Vec<SessionStateRow>, StoreError> {
        let sql = format!("SELECT {SESSION_COLS} FROM session_state_v2 ORDER BY session_key");
        self.many("read session states", &sql, [], rows::session_from_row)
    }

    pub fn open_bindings(&self, server_key: &str) -> Result<Vec<BindingRow>, StoreError> {
        let sql = format!(
            "SELECT {BINDING_COLS} FROM binding_link_v2 \
             WHERE server_key = ?1 AND unlinked_ts IS NULL ORDER BY id"
        );
        self.many(
            "read open bindings",
            &sql,
            params![server_key],
            rows::binding_from_row,
        )
    }

    pub fn bindings_for_pane(
        &self,
        server_key: &str,
        pane_id: &PaneId,
        limit: usize,
    ) -> Result<Vec<BindingRow>, StoreError> {
        let sql = format!(
            "SELECT {BINDING_COLS} FROM binding_link_v2 \
             WHERE server_key = ?1 AND pane_id = ?2 ORDER BY id DESC LIMIT ?3"
        );
        self.many(
            "read pane bindings",
            &sql,
            params![server_key, pane_id.as_str(), limit_param(limit)],
            rows::binding_from_row,
        )
    }

    pub fn source_health(&self) -> Result<Vec<HealthRow>, StoreError> {
        self.many(
            "read source health",
            &format!("SELECT {HEALTH_COLS} FROM source_health_v2 ORDER BY source_id"),
            [],
            rows::health_from_row,
        )
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.one(
            "read meta",
            "SELECT value FROM meta_kv WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self.one(
            "count events",
            "SELECT COUNT(*) FROM events_raw_v2",
            [],
            |r| r.get(0),
        )?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    pub fn event_count_by_status(&self) -> Result<BTreeMap<EventStatus, u64>, StoreError> {
        let pairs = self.many(
            "count events by status",
            "SELECT status, COUNT(*) FROM events_raw_v2 GROUP BY status",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )?;
        let mut out = BTreeMap::new();
        for (s, n) in pairs {
            if let Some(st) = EventStatus::parse(&s) {
                out.insert(st, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(out)
    }

    pub fn events_for_pane(
        &self,
        server_key: &str,
        pane_id: &PaneId,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events_raw_v2 \
             WHERE server_key = ?1 AND pane_id = ?2 ORDER BY seq DESC LIMIT ?3"
        );
        self.many(
            "read pane events",
            &sql,
            params![server_key, pane_id.as_str(), limit_param(limit)],
            rows::event_from_row,
        )
    }

    pub fn events_for_session(
        &self,
        session_key: &str,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events_raw_v2 \
             WHERE session_key = ?1 ORDER BY seq DESC LIMIT ?2"
        );
        self.many(
            "read session events",
            &sql,
            params![session_key, limit_param(limit)],
            rows::event_from_row,
        )
    }

    pub fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        let sql = format!("SELECT {EVENT_COLS} FROM events_raw_v2 WHERE event_id = ?1");
        self.one("read event", &sql, params![event_id], rows::event_from_row)
    }

    pub(crate) fn has_event(&self, event_id: &str) -> Result<bool, StoreError> {
        let hit = self.one(
            "check event",
            "SELECT 1 FROM events_raw_v2 WHERE event_id = ?1",
            params![event_id],
            |_| Ok(()),
        )?;
        Ok(hit.is_some())
    }
}
