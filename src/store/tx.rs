//! `Tx`: one batched write transaction (`BEGIN IMMEDIATE`). Everything the projection loop
//! decides for a batch — raw events, pane/session state, bindings and the committed cursor —
//! goes into one `Tx`, so a crash before `commit()` leaves none of it (cursor not advanced, events
//! not recorded) and the source replays the batch: at-least-once delivery, exactly-once effect
//! through `event_id` dedup. Dropping a `Tx` without `commit()` rolls it back.
use rusqlite::{Transaction, params};

use crate::core::types::{Health, Millis, PaneId};

use super::error::StoreError;
use super::reads::{Reads, forward_reads};
use super::rows::{BindingRow, CursorRow, EventRow, PaneStateRow, SessionStateRow};

/// A write transaction on a [`super::Store`]. Rolls back on drop unless committed.
#[derive(Debug)]
pub struct Tx<'s> {
    pub(crate) tx: Transaction<'s>,
}

/// Hop names become JSON object keys through a JSON path; keep them to a tame alphabet.
fn valid_hop(hop: &str) -> bool {
    !hop.is_empty()
        && hop.len() <= 32
        && hop
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Tx<'_> {
    pub(super) fn exec(
        &self,
        op: &'static str,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<usize, StoreError> {
        let mut st = self
            .tx
            .prepare_cached(sql)
            .map_err(|e| StoreError::sql(op, e))?;
        st.execute(p).map_err(|e| StoreError::sql(op, e))
    }

    fn exec_pane(
        &self,
        op: &'static str,
        sql: &str,
        row: &PaneStateRow,
        version: i64,
    ) -> Result<usize, StoreError> {
        self.exec(
            op,
            sql,
            params![
                row.server_key,
                row.server_id,
                row.pane_id.as_str(),
                row.generation,
                row.birth_ts,
                row.presence.as_str(),
                row.provider.map(|p| p.as_str()),
                row.evidence.as_str(),
                row.activity.as_str(),
                row.attention.map(|a| a.as_str()),
                row.title,
                row.title_source,
                row.session_key,
                row.winner_source,
                row.since_ts,
                row.updated_ts,
                version,
                if row.extra.is_empty() {
                    "{}"
                } else {
                    row.extra.as_str()
                },
            ],
        )
    }

    fn reads(&self) -> Reads<'_> {
        Reads(&self.tx)
    }

    /// Flow-014 compare-and-swap, shared by the pane and session rows: `write` runs `update`
    /// (which must match only the stored version `expected_version`) with the version
    /// `expected_version + 1`; if it matched no row and `expected_version` is 0 (the row must
    /// not exist yet), `insert` (`… ON CONFLICT DO NOTHING`) with the same version.
    fn cas(
        &self,
        expected_version: i64,
        update: &str,
        insert: &str,
        write: impl Fn(&str, i64) -> Result<usize, StoreError>,
    ) -> Result<bool, StoreError> {
        let next = expected_version.saturating_add(1);
        if write(update, next)? == 1 {
            return Ok(true);
        }
        if expected_version != 0 {
            return Ok(false);
        }
        Ok(write(insert, next)? == 1)
    }

    /// Appends a raw event. Returns `false` (and writes nothing) when `event_id` is already
    /// stored: that is the dedup half of exactly-once. `row.seq` is ignored.
    pub(crate) fn insert_event(&mut self, row: &EventRow) -> Result<bool, StoreError> {
        let n = self.exec(
            "insert event",
            "INSERT INTO events_raw_v2 (event_id, server_key, source, provider, pane_id, \
             session_key, name, status, reason, recv_ts, ingest_ts, payload, hops) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (event_id) DO NOTHING",
            params![
                row.event_id,
                row.server_key,
                row.source,
                row.provider.as_deref(),
                row.pane_id.as_deref(),
                row.session_key.as_deref(),
                row.name,
                row.status.as_str(),
                row.reason.as_deref(),
                row.recv_ts,
                row.ingest_ts,
                row.payload,
                if row.hops.is_empty() {
                    "{}"
                } else {
                    row.hops.as_str()
                },
            ],
        )?;
        Ok(n == 1)
    }

    /// Records one tracing hop timestamp (`source`, `gateway`, `daemon`, `client`, ...) in the
    /// event's `hops` JSON. Returns `false` when the event is unknown. Hop names must be
    /// `[a-z0-9_]{1,32}`.
    pub(crate) fn record_hop(
        &mut self,
        event_id: &str,
        hop: &str,
        ts: Millis,
    ) -> Result<bool, StoreError> {
        if !valid_hop(hop) {
            return Err(StoreError::Sql {
                op: "record hop",
                detail: format!("invalid hop name {hop:?}"),
            });
        }
        let path = format!("$.{hop}");
        let n = self.exec(
            "record hop",
            "UPDATE events_raw_v2 SET hops = json_set(hops, ?2, ?3) WHERE event_id = ?1",
            params![event_id, path, ts],
        )?;
        Ok(n == 1)
    }

    /// Writes the pane row as given, `state_version` included (unconditional upsert).
    pub fn upsert_pane_state(&mut self, row: &PaneStateRow) -> Result<(), StoreError> {
        self.exec_pane(
            "upsert pane state",
            "INSERT INTO pane_state_v2 (server_key, server_id, pane_id, generation, birth_ts, \
             presence, provider, evidence, activity, attention, title, title_source, \
             session_key, winner_source, since_ts, updated_ts, state_version, extra) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
             ON CONFLICT (server_key, pane_id) DO UPDATE SET \
             server_id = excluded.server_id, generation = excluded.generation, \
             birth_ts = excluded.birth_ts, presence = excluded.presence, \
             provider = excluded.provider, evidence = excluded.evidence, \
             activity = excluded.activity, attention = excluded.attention, \
             title = excluded.title, title_source = excluded.title_source, \
             session_key = excluded.session_key, winner_source = excluded.winner_source, \
             since_ts = excluded.since_ts, updated_ts = excluded.updated_ts, \
             state_version = excluded.state_version, extra = excluded.extra",
            row,
            row.state_version,
        )?;
        Ok(())
    }

    /// Flow-014 compare-and-swap: writes `row` with `state_version = expected_version + 1` only
    /// if the stored version equals `expected_version` (`0` = the pane must not exist yet).
    /// Returns `false` on a conflict and writes nothing; the caller re-reads and re-evaluates.
    /// `row.state_version` is ignored.
    pub(crate) fn cas_pane_state(
        &mut self,
        row: &PaneStateRow,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        self.cas(
            expected_version,
            "UPDATE pane_state_v2 SET server_id = ?2, generation = ?4, birth_ts = ?5, \
             presence = ?6, provider = ?7, evidence = ?8, activity = ?9, attention = ?10, \
             title = ?11, title_source = ?12, session_key = ?13, winner_source = ?14, \
             since_ts = ?15, updated_ts = ?16, state_version = ?17, extra = ?18 \
             WHERE server_key = ?1 AND pane_id = ?3 AND state_version = ?17 - 1",
            "INSERT INTO pane_state_v2 (server_key, server_id, pane_id, generation, birth_ts, \
             presence, provider, evidence, activity, attention, title, title_source, \
             session_key, winner_source, since_ts, updated_ts, state_version, extra) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
             ON CONFLICT (server_key, pane_id) DO NOTHING",
            |sql, version| self.exec_pane("cas pane state", sql, row, version),
        )
    }

    /// Deletes a pane row. Returns whether one existed.
    pub(crate) fn delete_pane_state(
        &mut self,
        server_key: &str,
        pane_id: &PaneId,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete pane state",
            "DELETE FROM pane_state_v2 WHERE server_key = ?1 AND pane_id = ?2",
            params![server_key, pane_id.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Writes the session row as given, `state_version` included.
    pub fn upsert_session_state(&mut self, row: &SessionStateRow) -> Result<(), StoreError> {
        self.exec(
            "upsert session state",
            "INSERT INTO session_state_v2 (session_key, provider, server_key, pane_id, \
             generation, activity, title, updated_ts, state_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (session_key) DO UPDATE SET provider = excluded.provider, \
             server_key = excluded.server_key, pane_id = excluded.pane_id, \
             generation = excluded.generation, activity = excluded.activity, \
             title = excluded.title, updated_ts = excluded.updated_ts, \
             state_version = excluded.state_version",
            session_params(row, row.state_version),
        )?;
        Ok(())
    }

    /// Compare-and-swap for a session row, same contract as [`Tx::cas_pane_state`].
    pub(crate) fn cas_session_state(
        &mut self,
        row: &SessionStateRow,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        self.cas(
            expected_version,
            "UPDATE session_state_v2 SET provider = ?2, server_key = ?3, pane_id = ?4, \
             generation = ?5, activity = ?6, title = ?7, updated_ts = ?8, state_version = ?9 \
             WHERE session_key = ?1 AND state_version = ?9 - 1",
            "INSERT INTO session_state_v2 (session_key, provider, server_key, pane_id, \
             generation, activity, title, updated_ts, state_version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (session_key) DO NOTHING",
            |sql, version| self.exec("cas session state", sql, session_params(row, version)),
        )
    }

    /// Deletes a session row. Returns whether one existed.
    pub fn delete_session_state(&mut self, session_key: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete session state",
            "DELETE FROM session_state_v2 WHERE session_key = ?1",
            params![session_key],
        )?;
        Ok(n == 1)
    }

    /// Records a new pane-instance ↔ session link; returns its id. `row.id` is ignored.
    pub fn insert_binding(&mut self, row: &BindingRow) -> Result<i64, StoreError> {
        self.exec(
            "insert binding",
            "INSERT INTO binding_link_v2 (server_key, server_id, pane_id, generation, birth_ts, \
             session_key, provider, linked_ts, unlinked_ts, reason, tombstone_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                row.server_key,
                row.server_id,
                row.pane_id.as_str(),
                row.generation,
                row.birth_ts,
                row.session_key,
                row.provider.as_str(),
                row.linked_ts,
                row.unlinked_ts,
                row.reason,
                row.tombstone_until,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Closes an open link (Flow-007 tombstone). Returns `false` when no open link has this id.
    pub(crate) fn close_binding(
        &mut self,
        id: i64,
        unlinked_ts: Millis,
        reason: &str,
        tombstone_until: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "close binding",
            "UPDATE binding_link_v2 SET unlinked_ts = ?2, reason = ?3, tombstone_until = ?4 \
             WHERE id = ?1 AND unlinked_ts IS NULL",
            params![id, unlinked_ts, reason, tombstone_until],
        )?;
        Ok(n == 1)
    }

    /// Sets a source's committed (and optionally fetched) cursor (Flow-006).
    pub fn set_cursor(
        &mut self,
        source_id: &str,
        committed: &str,
        fetched: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.exec(
            "set cursor",
            "INSERT INTO cursor_state_v2 (source_id, committed_cursor, fetched_cursor, updated_ts) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source_id) DO UPDATE SET \
             committed_cursor = excluded.committed_cursor, \
             fetched_cursor = excluded.fetched_cursor, updated_ts = excluded.updated_ts",
            params![source_id, committed, fetched, now],
        )?;
        Ok(())
    }

    /// Sets a source's latest health (Flow-004).
    pub(crate) fn set_source_health(
        &mut self,
        source_id: &str,
        health: Health,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.exec(
            "set source health",
            "INSERT INTO source_health_v2 (source_id, health, reason, updated_ts) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source_id) DO UPDATE SET \
             health = excluded.health, reason = excluded.reason, updated_ts = excluded.updated_ts",
            params![source_id, health.as_str(), reason, now],
        )?;
        Ok(())
    }

    /// Sets a `meta_kv` value (transcript offsets, server identity, ...).
    pub(crate) fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.exec(
            "set meta",
            "INSERT INTO meta_kv (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Deletes a `meta_kv` key. Returns whether it existed.
    pub fn delete_meta(&mut self, key: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "delete meta",
            "DELETE FROM meta_kv WHERE key = ?1",
            params![key],
        )?;
        Ok(n == 1)
    }

    /// Post-MVP Flow-010: records a snapshot's metadata in `state_snapshot_v2`; returns its id.
    pub(crate) fn record_snapshot(
        &mut self,
        created_ts: Millis,
        path: &str,
        reason: &str,
        size: u64,
        ok: bool,
    ) -> Result<i64, StoreError> {
        self.exec(
            "record snapshot",
            "INSERT INTO state_snapshot_v2 (created_ts, path, reason, size, ok) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                created_ts,
                path,
                reason,
                i64::try_from(size).unwrap_or(i64::MAX),
                ok
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    forward_reads! {
        /// Reads a pane row inside the transaction (sees this transaction's writes): the re-read
        /// step after a CAS conflict.
        pub fn pane_state(server_key: &str, pane_id: &PaneId) -> Option<PaneStateRow>;

        /// Reads a session row inside the transaction.
        pub(crate) fn session_state(session_key: &str) -> Option<SessionStateRow>;

        /// Reads a cursor inside the transaction.
        pub fn cursor(source_id: &str) -> Option<CursorRow>;

        /// Whether an event id is stored (including this transaction's inserts).
        pub fn has_event(event_id: &str) -> bool;

        /// Reads a `meta_kv` value inside the transaction.
        pub fn meta(key: &str) -> Option<String>;
    }

    /// Makes every write of this transaction durable at once.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().map_err(|e| StoreError::sql("commit", e))
    }

    /// Discards every write of this transaction (same as dropping it, but reports errors).
    pub fn rollback(self) -> Result<(), StoreError> {
        self.tx
            .rollback()
            .map_err(|e| StoreError::sql("rollback", e))
    }
}

fn session_params(row: &SessionStateRow, version: i64) -> impl rusqlite::Params + '_ {
    (
        row.session_key.as_str(),
        row.provider.as_str(),
        row.server_key.as_deref(),
        row.pane_id.as_deref(),
        row.generation,
        row.activity.as_str(),
        row.title.as_str(),
        row.updated_ts,
        version,
    )
}
