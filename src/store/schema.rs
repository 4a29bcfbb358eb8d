//! Versioned schema migrations. The version lives in `PRAGMA user_version`;
//! each step runs in one `BEGIN IMMEDIATE` transaction together with the version bump, so a
//! crash or a failing statement leaves the previous version intact, and two daemons opening the
//! same file at once apply each step exactly once.
use rusqlite::{Connection, TransactionBehavior};

use super::error::StoreError;

/// One numbered schema step.
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// The schema version this build writes. A file with a higher version is refused.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// MVP tables (version 1), Post-MVP tables (version 2), who registered a source (version 3).
/// Never edit a shipped step: add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE events_raw_v2 (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    server_key  TEXT NOT NULL,
    source      TEXT NOT NULL,
    provider    TEXT,
    pane_id     TEXT,
    session_key TEXT,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('accepted','rejected','ignored','duplicate')),
    reason      TEXT,
    recv_ts     INTEGER NOT NULL,
    ingest_ts   INTEGER NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    hops        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_raw_v2_pane ON events_raw_v2 (server_key, pane_id, seq);
CREATE INDEX events_raw_v2_session ON events_raw_v2 (session_key, seq);
CREATE INDEX events_raw_v2_ingest ON events_raw_v2 (ingest_ts);

CREATE TABLE pane_state_v2 (
    server_key    TEXT NOT NULL,
    server_id     TEXT NOT NULL,
    pane_id       TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    birth_ts      INTEGER NOT NULL,
    presence      TEXT NOT NULL,
    provider      TEXT,
    evidence      TEXT NOT NULL,
    activity      TEXT NOT NULL,
    attention     TEXT,
    title         TEXT NOT NULL DEFAULT '',
    title_source  TEXT NOT NULL DEFAULT '',
    session_key   TEXT,
    winner_source TEXT,
    since_ts      INTEGER NOT NULL,
    updated_ts    INTEGER NOT NULL,
    state_version INTEGER NOT NULL DEFAULT 0,
    extra         TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (server_key, pane_id)
);

CREATE TABLE session_state_v2 (
    session_key   TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    server_key    TEXT,
    pane_id       TEXT,
    generation    INTEGER,
    activity      TEXT NOT NULL,
    title         TEXT NOT NULL DEFAULT '',
    updated_ts    INTEGER NOT NULL,
    state_version INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE binding_link_v2 (
    id              INTEGER PRIMARY KEY,
    server_key      TEXT NOT NULL,
    server_id       TEXT NOT NULL,
    pane_id         TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    birth_ts        INTEGER NOT NULL,
    session_key     TEXT NOT NULL,
    provider        TEXT NOT NULL,
    linked_ts       INTEGER NOT NULL,
    unlinked_ts     INTEGER,
    reason          TEXT NOT NULL DEFAULT '',
    tombstone_until INTEGER
);
CREATE INDEX binding_link_v2_pane ON binding_link_v2 (server_key, pane_id, id);
CREATE INDEX binding_link_v2_session ON binding_link_v2 (session_key);
CREATE INDEX binding_link_v2_open ON binding_link_v2 (server_key) WHERE unlinked_ts IS NULL;
CREATE INDEX binding_link_v2_closed ON binding_link_v2 (unlinked_ts) WHERE unlinked_ts IS NOT NULL;

CREATE TABLE cursor_state_v2 (
    source_id        TEXT PRIMARY KEY,
    committed_cursor TEXT NOT NULL,
    fetched_cursor   TEXT,
    updated_ts       INTEGER NOT NULL
);

CREATE TABLE source_health_v2 (
    source_id  TEXT PRIMARY KEY,
    health     TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    updated_ts INTEGER NOT NULL
);

CREATE TABLE meta_kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        sql: r#"
CREATE TABLE state_snapshot_v2 (
    id         INTEGER PRIMARY KEY,
    created_ts INTEGER NOT NULL,
    path       TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    size       INTEGER NOT NULL DEFAULT 0,
    ok         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX state_snapshot_v2_created ON state_snapshot_v2 (created_ts);

CREATE TABLE source_registry_v1 (
    source_id         TEXT PRIMARY KEY,
    source_kind       TEXT NOT NULL,
    socket_path       TEXT NOT NULL,
    owner_uid         INTEGER NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('pending','active','stale','revoked')),
    nonce             TEXT,
    last_heartbeat_ts INTEGER,
    updated_ts        INTEGER NOT NULL
);

CREATE TABLE alert_ledger_v1 (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,
    slo      TEXT NOT NULL,
    level    TEXT NOT NULL CHECK (level IN ('warn','degraded','escalate')),
    value    REAL,
    "window" TEXT,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_ledger_v1_ts ON alert_ledger_v1 (ts);
"#,
    },
    Migration {
        version: 3,
        // The seed limits registry authority to the runtime supervisor (automatic entries, e.g.
        // the Codex app-server socket it discovers) and the operator. The supervisor may re-point
        // its own entries when the discovered socket moves, never an operator's.
        sql: r#"
ALTER TABLE source_registry_v1 ADD COLUMN registered_by TEXT NOT NULL DEFAULT 'operator'
    CHECK (registered_by IN ('operator','supervisor'));
"#,
    },
];

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map_err(|e| StoreError::sql("read schema version", e))
}

/// Brings the schema up to `target` (≤ [`SCHEMA_VERSION`]). Returns the version afterwards.
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<i64, StoreError> {
    let current = user_version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        let version = m.version;
        let fail = |e: rusqlite::Error| {
            StoreError::classify(e, |detail| StoreError::Migration { version, detail })
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Re-read under the write lock: another daemon may have migrated meanwhile.
        let now = user_version(&tx)?;
        if now > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: now,
                supported: SCHEMA_VERSION,
            });
        }
        if now >= version {
            continue;
        }
        if now != version - 1 {
            return Err(StoreError::Migration {
                version,
                detail: format!("schema is at version {now}, expected {}", version - 1),
            });
        }
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        log::info!("store: applied schema migration {version}");
    }
    user_version(conn)
}
