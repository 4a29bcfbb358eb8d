//! Post-MVP store access for C-013 (ops guardrails) and Flow-010 (snapshots): the alert ledger
//! `alert_ledger_v1` (warn/degraded/escalate SLO breaches), the snapshot metadata
//! `state_snapshot_v2`, the whole cursor table, and a snapshot copy that never blocks on the
//! writer. Kept apart from the MVP reads/writes so those files stay as they were.
//!
//! WHY a one-step backup ([`Store::snapshot_whole_to`]): a backup stepped in pages from a
//! connection other than the writer's restarts whenever the writer commits between two steps,
//! so on a busy daemon it may never finish. One step holds one WAL read transaction for the
//! copy: the writer keeps committing (WAL), and the copy is consistent as of its start.
use std::path::Path;

use rusqlite::params;

use super::error::StoreError;
use super::rows::{CURSOR_COLS, cursor_from_row, row_decoder};
use super::{CursorRow, Store, Tx};
use crate::core::types::Millis;

/// One `alert_ledger_v1` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub ts: Millis,
    /// The SLO's name, e.g. `state_latency_deterministic`.
    pub slo: String,
    /// `warn`, `degraded` or `escalate` (the table's CHECK).
    pub level: String,
    /// The measured value (p95 latency in ms for the latency SLOs).
    pub value: Option<f64>,
    /// The window it was measured over, e.g. `10m n=412`.
    pub window: Option<String>,
    pub detail: String,
}

/// One `state_snapshot_v2` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: i64,
    pub(crate) created_ts: Millis,
    pub path: String,
    pub reason: String,
    pub size: u64,
    pub ok: bool,
}

row_decoder! {
    fn alert_from_row -> AlertRow { id, ts, slo, level, value, window, detail }
}

row_decoder! {
    fn snapshot_from_row -> SnapshotRow, const SNAPSHOT_COLS {
        id, created_ts, path, reason,
        size: with size_from_stored,
        ok,
    }
}

/// A stored size (SQLite integers are signed); a negative one reads as 0.
fn size_from_stored(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Tx<'_> {
    /// Appends one alert to `alert_ledger_v1`; returns its id.
    pub fn record_alert(&mut self, a: &AlertRow) -> Result<i64, StoreError> {
        self.exec(
            "record alert",
            "INSERT INTO alert_ledger_v1 (ts, slo, level, value, \"window\", detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.ts, a.slo, a.level, a.value, a.window, a.detail],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Deletes a snapshot's metadata row (its file was removed by retention).
    pub(crate) fn delete_snapshot(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete snapshot",
            "DELETE FROM state_snapshot_v2 WHERE id = ?1",
            params![id],
        )?;
        Ok(n == 1)
    }
}

impl Store {
    /// Alerts at or after `since`, newest first, at most `limit`.
    pub fn alerts(&self, since: Millis, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        self.all_rows(
            "read alerts",
            "SELECT id, ts, slo, level, value, \"window\", detail FROM alert_ledger_v1 \
             WHERE ts >= ?1 ORDER BY ts DESC, id DESC LIMIT ?2",
            params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
            alert_from_row,
        )
    }

    /// Snapshot metadata, newest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>, StoreError> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLS} FROM state_snapshot_v2 ORDER BY created_ts DESC, id DESC"
        );
        self.all_rows("read snapshots", &sql, [], snapshot_from_row)
    }

    /// Every source cursor (for the restore dry-run).
    pub fn cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        let sql = format!("SELECT {CURSOR_COLS} FROM cursor_state_v2 ORDER BY source_id");
        self.all_rows("read cursors", &sql, [], cursor_from_row)
    }

    /// Every `pane_state_v2` row of every server (the restore dry-run checks them all).
    pub(crate) fn all_pane_states(&self) -> Result<Vec<super::PaneStateRow>, StoreError> {
        let keys: Vec<String> = self.distinct("SELECT DISTINCT server_key FROM pane_state_v2")?;
        let mut out = Vec::new();
        for k in keys {
            out.extend(self.pane_states(&k)?);
        }
        Ok(out)
    }

    /// Every open binding of every server.
    pub(crate) fn all_open_bindings(&self) -> Result<Vec<super::BindingRow>, StoreError> {
        let keys: Vec<String> = self.distinct(
            "SELECT DISTINCT server_key FROM binding_link_v2 WHERE unlinked_ts IS NULL",
        )?;
        let mut out = Vec::new();
        for k in keys {
            out.extend(self.open_bindings(&k)?);
        }
        Ok(out)
    }

    /// Number of accepted events stored for a session key.
    pub(crate) fn accepted_events_for_session(&self, session_key: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM events_raw_v2 WHERE session_key = ?1 AND status = 'accepted'",
                params![session_key],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| StoreError::sql("count session events", e))
    }

    fn distinct(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        self.all_rows("read keys", sql, [], |r| r.get(0))
    }

    /// A whole-table read for the ops and registry tables: unlike the state reads, one row
    /// this build cannot decode fails the read.
    pub(super) fn all_rows<T>(
        &self,
        op: &'static str,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| StoreError::sql(op, e))?;
        let rows = st.query_map(p, f).map_err(|e| StoreError::sql(op, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| StoreError::sql(op, e))
    }

    /// [`Store::snapshot_to`] in one backup step (see the module doc): for a connection other
    /// than the daemon's writer, e.g. a snapshot thread or `agtmux snapshot create`.
    pub(crate) fn snapshot_whole_to(&self, path: &Path) -> Result<u64, StoreError> {
        self.write_snapshot(path, -1)
    }
}
