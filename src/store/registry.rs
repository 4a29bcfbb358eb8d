//! `source_registry_v1` (C-014 source registry manager, Flow-013): one row per registered
//! source endpoint, keyed by `source_id` (`<source_kind>:<owner_uid>`, so a socket rotation of
//! the same kind and owner re-registers the same row). The lifecycle itself lives in
//! `daemon::admission`; this file only reads and writes rows.
use rusqlite::{OptionalExtension, params};

use super::error::StoreError;
use super::rows::row_decoder;
use super::{Store, Tx};
use crate::core::types::Millis;

/// One row of `source_registry_v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRegistryRow {
    pub source_id: String,
    pub source_kind: String,
    pub socket_path: String,
    pub(crate) owner_uid: u32,
    /// `pending`, `active`, `stale` or `revoked`.
    pub state: String,
    pub nonce: Option<String>,
    pub(crate) last_heartbeat_ts: Option<Millis>,
    pub(crate) updated_ts: Millis,
    /// `operator` or `supervisor` (schema version 3).
    pub registered_by: String,
}

row_decoder! {
    fn decode -> SourceRegistryRow, const COLS {
        source_id, source_kind, socket_path, owner_uid, state, nonce, last_heartbeat_ts,
        updated_ts, registered_by,
    }
}

impl Store {
    /// Every registry row, by source id.
    pub fn source_registry(&self) -> Result<Vec<SourceRegistryRow>, StoreError> {
        let sql = format!("SELECT {COLS} FROM source_registry_v1 ORDER BY source_id");
        self.all_rows("read source registry", &sql, [], decode)
    }

    /// One registry row.
    pub fn source_registry_row(
        &self,
        source_id: &str,
    ) -> Result<Option<SourceRegistryRow>, StoreError> {
        let op = "read source registry row";
        self.conn
            .query_row(
                &format!("SELECT {COLS} FROM source_registry_v1 WHERE source_id = ?1"),
                params![source_id],
                decode,
            )
            .optional()
            .map_err(|e| StoreError::sql(op, e))
    }
}

impl Tx<'_> {
    /// Insert or replace a registry row.
    pub(crate) fn upsert_source_registry(
        &mut self,
        row: &SourceRegistryRow,
    ) -> Result<(), StoreError> {
        self.exec(
            "upsert source registry",
            "INSERT INTO source_registry_v1 (source_id, source_kind, socket_path, owner_uid, \
             state, nonce, last_heartbeat_ts, updated_ts, registered_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (source_id) DO UPDATE SET source_kind = excluded.source_kind, \
             socket_path = excluded.socket_path, owner_uid = excluded.owner_uid, \
             state = excluded.state, nonce = excluded.nonce, \
             last_heartbeat_ts = excluded.last_heartbeat_ts, updated_ts = excluded.updated_ts, \
             registered_by = excluded.registered_by",
            params![
                row.source_id,
                row.source_kind,
                row.socket_path,
                row.owner_uid,
                row.state,
                row.nonce,
                row.last_heartbeat_ts,
                row.updated_ts,
                row.registered_by
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rows_round_trip_and_update_in_place() {
        let mut s = Store::open_memory().unwrap();
        let mut row = SourceRegistryRow {
            source_id: "codex_appserver:0".into(),
            source_kind: "codex_appserver".into(),
            socket_path: "/run/a.sock".into(),
            owner_uid: 0,
            state: "pending".into(),
            nonce: None,
            last_heartbeat_ts: None,
            updated_ts: 5,
            registered_by: "supervisor".into(),
        };
        let mut tx = s.begin().unwrap();
        tx.upsert_source_registry(&row).unwrap();
        tx.commit().unwrap();
        row.state = "active".into();
        row.socket_path = "/run/b.sock".into();
        row.last_heartbeat_ts = Some(9);
        let mut tx = s.begin().unwrap();
        tx.upsert_source_registry(&row).unwrap();
        tx.commit().unwrap();
        assert_eq!(s.source_registry().unwrap(), vec![row.clone()]);
        assert_eq!(
            s.source_registry_row("codex_appserver:0").unwrap(),
            Some(row)
        );
        // The CHECK constraints refuse an unknown state or registrar.
        let mut bad = s.source_registry().unwrap()[0].clone();
        bad.state = "weird".into();
        let mut tx = s.begin().unwrap();
        assert!(tx.upsert_source_registry(&bad).is_err());
        drop(tx);
        let mut bad = s.source_registry().unwrap()[0].clone();
        bad.registered_by = "the source itself".into();
        let mut tx = s.begin().unwrap();
        assert!(tx.upsert_source_registry(&bad).is_err());
    }
}
