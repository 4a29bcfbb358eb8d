//! Durable state (seed "Storage / State", README "Reliability"): the SQLite database under the
//! state
//! dir. Owns the schema and its versioned migrations, the raw event log `events_raw_v2`
//! (accepted *and* rejected events, with reasons and per-hop trace timestamps), the latest
//! pane/session winners, pane↔session bindings (Flow-007), committed source cursors (Flow-006),
//! source health (Flow-004), the `meta_kv` scratch table, retention and snapshots (Flow-010).
//!
//! WHY this shape:
//! - One write transaction per projection batch ([`Tx`]): events, state and the committed
//!   cursor land together or not at all, so a daemon killed at any point replays from the last
//!   committed cursor and `event_id` dedup turns at-least-once delivery into exactly-once effect.
//! - WAL + `synchronous=NORMAL`: readers never block the writer, and a commit costs no fsync
//!   of the main file (durable across process crashes; a power cut may lose the last commits,
//!   which the sources replay).
//! - `state_version` compare-and-swap (Flow-014) keeps an old event from rolling state back.
//! - The store is a mirror, not the source of truth at runtime: every failure is a typed
//!   [`StoreError`] (corrupt / locked / migration / ...) and the daemon keeps serving from memory.
mod error;
mod ops;
mod reads;
mod registry;
mod rows;
mod schema;
mod tx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::core::types::{Millis, PaneId};

pub use error::StoreError;
pub use ops::{AlertRow, SnapshotRow};
pub use registry::SourceRegistryRow;
pub use rows::{
    BindingRow, CursorRow, EventRow, EventStatus, HealthRow, PaneStateRow, Retention,
    SessionStateRow,
};
pub use schema::SCHEMA_VERSION;
pub use tx::Tx;

use reads::{Reads, forward_reads};

/// Connection tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreOptions {
    /// How long a writer waits for another connection's lock before `StoreError::Locked`.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(2),
        }
    }
}

/// The agtmux database. One per daemon; several daemons may share one file (WAL).
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// A read-only handle on the database file, for [`Store::check_file`]. Never closed (see
    /// [`Watch`]).
    watch: Option<Watch>,
}

/// A read-only fd on the database file, held for the life of the process: closing *any* fd of
/// a file drops every POSIX lock this process holds on it, SQLite's included (another
/// connection would then think it is the last one and delete the live `-wal`). So it is
/// opened once per opened store and deliberately leaked on drop; stores are reopened only
/// after a fault, so that is a handful of fds at most.
struct Watch(Option<std::fs::File>);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let _ = std::os::fd::IntoRawFd::into_raw_fd(f);
        }
    }
}

/// What [`Store::check_file`] found wrong with the file under an open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileProblem {
    /// Nothing is at the path any more: writes go to an unlinked inode.
    Deleted,
    /// The path names another file than the one open.
    Replaced,
    /// The file's header is not SQLite's (overwritten in place).
    NotADatabase,
}

impl FileProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            FileProblem::Deleted => "deleted",
            FileProblem::Replaced => "replaced",
            FileProblem::NotADatabase => "not_a_database",
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Enough cached statements for every query the store issues.
const STATEMENT_CACHE: usize = 64;

impl Store {
    /// Opens (creating it and its parent dir if needed) the database at `path` with default
    /// options, and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub(crate) fn open_with(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_to(path, opts, SCHEMA_VERSION)
    }

    pub(crate) fn open_to(
        path: &Path,
        opts: &StoreOptions,
        target: i64,
    ) -> Result<Store, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: path.to_path_buf(),
            detail,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::classify(e, open_err))?;
        // SQLite silently opens a file it may not write read-only, and such a connection never
        // becomes writable: report it, so the caller opens again later.
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::ReadOnly {
                detail: format!("{} opened read-only (no write permission)", path.display()),
            });
        }
        let watch = std::fs::File::open(path).ok().map(|f| Watch(Some(f)));
        let mut store = Store {
            conn,
            path: Some(path.to_path_buf()),
            watch,
        };
        store.configure(opts, true)?;
        schema::migrate_to(&mut store.conn, target)?;
        Ok(store)
    }

    /// An in-memory database with the full schema, for tests.
    pub fn open_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| {
            StoreError::classify(e, |detail| StoreError::Open {
                path: PathBuf::from(":memory:"),
                detail,
            })
        })?;
        let mut store = Store {
            conn,
            path: None,
            watch: None,
        };
        store.configure(&StoreOptions::default(), false)?;
        schema::migrate_to(&mut store.conn, SCHEMA_VERSION)?;
        Ok(store)
    }

    fn configure(&self, opts: &StoreOptions, wal: bool) -> Result<(), StoreError> {
        let c = &self.conn;
        c.busy_timeout(opts.busy_timeout)
            .map_err(|e| StoreError::sql("set busy timeout", e))?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if wal {
            // The first statement that reads the file: a non-database fails here as Corrupt.
            // Switching a fresh file to WAL needs an exclusive lock, and SQLite reports BUSY at
            // once (no busy handler: it could deadlock) when another connection opens the same
            // new file at the same moment, so retry until the busy timeout.
            let deadline = Instant::now() + opts.busy_timeout;
            let mode: String = loop {
                match c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
                    Ok(mode) => break mode,
                    Err(e) => {
                        let err = StoreError::sql("set journal_mode=WAL", e);
                        if !err.is_locked() || Instant::now() >= deadline {
                            return Err(err);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            };
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("store: journal_mode is {mode}, not wal");
            }
        }
        c.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| StoreError::sql("set synchronous=NORMAL", e))?;
        Ok(())
    }

    /// The file path (`None` for an in-memory store).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Is the file at our path still the one this connection writes, and still a database?
    /// One `stat` and a 16-byte read: cheap enough for a slow timer. `None` when all is well
    /// (or the store is in memory).
    pub(crate) fn check_file(&self) -> Option<FileProblem> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let path = self.path.as_deref()?;
        let open = self.watch.as_ref()?.0.as_ref()?;
        let ident = open.metadata().ok().map(|m| (m.dev(), m.ino()))?;
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(FileProblem::Deleted);
            }
            Err(_) => return None,
            Ok(m) if (m.dev(), m.ino()) != ident => return Some(FileProblem::Replaced),
            // In WAL mode a new database may still be empty on disk: nothing to judge.
            Ok(m) if m.len() == 0 => return None,
            Ok(_) => {}
        }
        let mut head = [0u8; 16];
        let mut n = 0;
        while n < head.len() {
            match open.read_at(&mut head[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        (&head[..n] != b"SQLite format 3\0".as_slice()).then_some(FileProblem::NotADatabase)
    }

    /// A real write (a `meta_kv` row): whether the store takes writes now. An empty
    /// transaction is not enough, a read-only connection commits one happily.
    pub(crate) fn probe_write(&mut self, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.begin()?;
        tx.set_meta("store_probe_ts", &now.to_string())?;
        tx.commit()
    }

    /// The schema version stored in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::user_version(&self.conn)
    }

    /// `PRAGMA quick_check`: `Err(Corrupt)` when SQLite finds damage (for `doctor`).
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| StoreError::sql("quick_check", e))?;
        let lines: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| StoreError::sql("quick_check", e))?
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::sql("quick_check", e))?;
        if lines.len() == 1 && lines[0] == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                detail: lines.join("; "),
            })
        }
    }

    /// Starts one batched write transaction (`BEGIN IMMEDIATE`: takes the write lock now, waiting
    /// up to the busy timeout). Commit with [`Tx::commit`]; dropping it rolls back.
    pub fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sql("begin", e))?;
        Ok(Tx { tx })
    }

    fn reads(&self) -> Reads<'_> {
        Reads(&self.conn)
    }

    forward_reads! {
        /// A source's cursor.
        pub fn cursor(source_id: &str) -> Option<CursorRow>;

        /// Every pane row of a tmux server, by pane id. Rows this build cannot decode are skipped
        /// (and logged), as in every list read.
        pub fn pane_states(server_key: &str) -> Vec<PaneStateRow>;

        /// One pane row.
        pub fn pane_state(server_key: &str, pane_id: &PaneId) -> Option<PaneStateRow>;

        /// One session row.
        pub fn session_state(session_key: &str) -> Option<SessionStateRow>;

        /// Every session row, by session key.
        pub(crate) fn session_states() -> Vec<SessionStateRow>;

        /// Links not yet closed on a tmux server, oldest first.
        pub fn open_bindings(server_key: &str) -> Vec<BindingRow>;

        /// A pane's links, newest first, at most `limit`.
        pub fn bindings_for_pane(
            server_key: &str, pane_id: &PaneId, limit: usize
        ) -> Vec<BindingRow>;

        /// Every source's latest health, by source id.
        pub fn source_health() -> Vec<HealthRow>;

        /// A `meta_kv` value.
        pub fn meta(key: &str) -> Option<String>;

        /// Number of stored raw events.
        pub fn event_count() -> u64;

        /// Number of stored raw events per status (statuses with no event are absent).
        pub fn event_count_by_status() -> BTreeMap<EventStatus, u64>;

        /// A pane's raw events, newest first, at most `limit` (for `explain`).
        pub fn events_for_pane(
            server_key: &str, pane_id: &PaneId, limit: usize
        ) -> Vec<EventRow>;

        /// A session's raw events, newest first, at most `limit`.
        pub fn events_for_session(session_key: &str, limit: usize) -> Vec<EventRow>;

        /// One raw event by id (for `trace`).
        pub fn event(event_id: &str) -> Option<EventRow>;

        /// Whether an event id is stored (dedup check).
        pub(crate) fn has_event(event_id: &str) -> bool;
    }

    /// Retention: deletes the oldest events beyond `max_events`, events ingested before
    /// `now - max_age_ms`, bindings closed before `now - max_age_ms` whose tombstone has
    /// expired, and alerts older than that. Range deletes on indexed columns in one transaction,
    /// cheap enough to run every few minutes. Returns the number of rows deleted.
    pub(crate) fn prune(&mut self, r: &Retention, now: Millis) -> Result<usize, StoreError> {
        let cutoff = now.saturating_sub(r.max_age_ms.max(0));
        let keep = i64::try_from(r.max_events).unwrap_or(i64::MAX);
        let tx = self.begin()?;
        // The seq of the newest event that falls outside the count bound, if any.
        let boundary: Option<i64> = tx
            .tx
            .prepare_cached("SELECT seq FROM events_raw_v2 ORDER BY seq DESC LIMIT 1 OFFSET ?1")
            .and_then(|mut st| st.query_row(params![keep], |r| r.get(0)).optional())
            .map_err(|e| StoreError::sql("prune", e))?;
        let mut deleted = 0;
        if let Some(seq) = boundary {
            deleted += tx.exec(
                "prune",
                "DELETE FROM events_raw_v2 WHERE seq <= ?1",
                params![seq],
            )?;
        }
        deleted += tx.exec(
            "prune",
            "DELETE FROM events_raw_v2 WHERE ingest_ts < ?1",
            params![cutoff],
        )?;
        deleted += tx.exec(
            "prune",
            "DELETE FROM binding_link_v2 WHERE unlinked_ts IS NOT NULL AND unlinked_ts < ?1 \
             AND (tombstone_until IS NULL OR tombstone_until < ?2)",
            params![cutoff, now],
        )?;
        deleted += tx.exec(
            "prune",
            "DELETE FROM alert_ledger_v1 WHERE ts < ?1",
            params![cutoff],
        )?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Moves a damaged database (and its `-wal`/`-shm` side files) out of the way as
    /// `<name>.corrupt-<now>` so the next [`Store::open`] starts from an empty schema; the
    /// daemon calls it after an open fails with [`StoreError::is_corrupt`]. Returns the new
    /// path of the main file.
    pub(crate) fn quarantine(path: &Path, now: Millis) -> Result<PathBuf, StoreError> {
        let with = |suffix: &str| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        let target = with(&format!(".corrupt-{now}"));
        std::fs::rename(path, &target).map_err(|e| StoreError::Io {
            op: "quarantine",
            detail: e.to_string(),
        })?;
        for side in ["-wal", "-shm"] {
            let from = with(side);
            if from.exists() {
                let mut to = target.as_os_str().to_owned();
                to.push(side);
                if let Err(e) = std::fs::rename(&from, PathBuf::from(to)) {
                    log::warn!("store: quarantine {}: {e}", from.display());
                }
            }
        }
        Ok(target)
    }

    /// Post-MVP Flow-010: writes a consistent copy of the database to `path` with SQLite's
    /// online backup (readers and the writer keep going), via a temporary file renamed into
    /// place so a half-written snapshot never carries the final name. Returns its size in bytes.
    pub(crate) fn snapshot_to(&self, path: &Path) -> Result<u64, StoreError> {
        self.write_snapshot(path, 256)
    }

    /// The backup behind both snapshot flavours: `pages` per step with a short pause between
    /// steps (the writer on this connection keeps going), or `-1` for one step (from a
    /// connection other than the writer's). A snapshot that stays locked for 10 s fails.
    pub(crate) fn write_snapshot(&self, path: &Path, pages: i32) -> Result<u64, StoreError> {
        use rusqlite::backup::StepResult;
        let io = |op: &'static str, e: std::io::Error| StoreError::Io {
            op,
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("snapshot dir", e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let mut dst = Connection::open(&tmp).map_err(|e| StoreError::sql("snapshot", e))?;
            {
                let backup = Backup::new(&self.conn, &mut dst)
                    .map_err(|e| StoreError::sql("snapshot", e))?;
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    match backup
                        .step(pages)
                        .map_err(|e| StoreError::sql("snapshot", e))?
                    {
                        StepResult::Done => break,
                        StepResult::More if pages < 0 => continue,
                        StepResult::More => std::thread::sleep(Duration::from_millis(5)),
                        _ if std::time::Instant::now() >= deadline => {
                            return Err(StoreError::Io {
                                op: "snapshot",
                                detail: "database stayed locked".into(),
                            });
                        }
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
            dst.close()
                .map_err(|(_, e)| StoreError::sql("snapshot", e))?;
            std::fs::rename(&tmp, path).map_err(|e| io("snapshot rename", e))?;
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| io("snapshot size", e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests;
