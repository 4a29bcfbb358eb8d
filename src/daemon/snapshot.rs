//! Flow-010 snapshot / restore readiness (seed `[Post-MVP]`; the execution state belongs to
//! C-013 ops guardrails): a consistent copy of the database every 15 minutes and at shutdown,
//! its metadata in `state_snapshot_v2`, the last N copies kept, a consistency check of a
//! snapshot against the live spool (the restore dry-run), and a real restore that swaps the
//! database file while no daemon runs.
//!
//! Files: `<state dir>/snapshots/state-<ms>-<reason>.db`, and `restore_stats.json` there (the
//! restore success rate must survive the database being replaced, so it is not in it).
//!
//! WHY a thread for the periodic copy: the store may hold a few tens of MB (200 000 events);
//! SQLite's backup of that takes tens to hundreds of ms, too long for the one event loop. The
//! thread opens its own connection and copies in one backup step (one WAL read transaction:
//! the loop's writer keeps committing, and the copy is consistent as of its start); the loop
//! only polls for the result and records it. The shutdown copy runs inline (nothing else to
//! serve by then).
use crate::core::seeded::seeded;
use crate::core::types::{Evidence, Millis};
use crate::sources::spool::SpoolCursor;
use crate::store::{BindingRow, PaneStateRow, SessionStateRow, Store, StoreError, StoreOptions};
use crate::sys::env;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};

seeded! {
    /// Snapshot knobs. Environment overrides (read by the daemon at start):
    /// `AGTMUX_SNAPSHOT_EVERY_MS` (0 disables periodic copies), `AGTMUX_SNAPSHOT_KEEP`,
    /// `AGTMUX_SNAPSHOT_ON_SHUTDOWN` (`0` disables the shutdown copy).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SnapshotConfig {
        pub every_ms: Millis = 15 * 60_000,
        pub keep: usize = 4,
        pub(crate) on_shutdown: bool = true,
    }
}

impl SnapshotConfig {
    pub(crate) fn from_env() -> Self {
        let mut c = SnapshotConfig::default();
        if let Some(v) = env::number("AGTMUX_SNAPSHOT_EVERY_MS") {
            c.every_ms = v;
        }
        if let Some(v) = env::number::<usize>("AGTMUX_SNAPSHOT_KEEP") {
            c.keep = v.max(1);
        }
        if let Ok(v) = std::env::var("AGTMUX_SNAPSHOT_ON_SHUTDOWN") {
            c.on_shutdown = !matches!(v.trim(), "0" | "false" | "off" | "no");
        }
        c
    }
}

#[derive(Debug)]
pub enum SnapshotError {
    Store(StoreError),
    Io(String, std::io::Error),
    /// No snapshot file to use.
    NoSnapshot(PathBuf),
    /// A real restore while the daemon runs.
    DaemonRunning,
    /// The snapshot failed its consistency check (restore refused without `--force`).
    Inconsistent(usize),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Store(e) => write!(f, "store: {e}"),
            SnapshotError::Io(what, e) => write!(f, "{what}: {e}"),
            SnapshotError::NoSnapshot(d) => write!(f, "no snapshot in {}", d.display()),
            SnapshotError::DaemonRunning => write!(
                f,
                "a daemon runs for this tmux server: stop it first (restore replaces its database)"
            ),
            SnapshotError::Inconsistent(n) => write!(
                f,
                "the snapshot has {n} consistency error(s); see --dry-run, or pass --force"
            ),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl From<StoreError> for SnapshotError {
    fn from(e: StoreError) -> Self {
        SnapshotError::Store(e)
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let what = what.into();
    move |e| SnapshotError::Io(what, e)
}

/// `<db dir>/snapshots`.
pub(crate) fn snapshot_dir(db: &Path) -> PathBuf {
    db.parent()
        .unwrap_or_else(|| Path::new("."))
        .join("snapshots")
}

/// One snapshot file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotFile {
    pub path: PathBuf,
    pub(crate) created_ts: Millis,
    pub reason: String,
    pub size: u64,
}

/// `state-<ms>-<reason>.db` → (ms, reason).
fn parse_name(name: &str) -> Option<(Millis, String)> {
    let rest = name.strip_prefix("state-")?.strip_suffix(".db")?;
    let (ts, reason) = rest.split_once('-').unwrap_or((rest, ""));
    Some((ts.parse().ok()?, reason.to_string()))
}

/// Snapshot files in `dir`, newest first.
pub(crate) fn list_files(dir: &Path) -> Vec<SnapshotFile> {
    let mut v: Vec<SnapshotFile> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (created_ts, reason) = parse_name(&name)?;
            let size = e.metadata().ok()?.len();
            Some(SnapshotFile {
                path: e.path(),
                created_ts,
                reason,
                size,
            })
        })
        .collect();
    v.sort_by(|a, b| b.created_ts.cmp(&a.created_ts).then(b.path.cmp(&a.path)));
    v
}

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub path: PathBuf,
    pub(crate) created_ts: Millis,
    pub reason: String,
    pub size: u64,
    pub(crate) took_ms: u64,
}

/// Copies the database `src` into `dir` now (one backup step, see the module doc).
pub fn take(src: &Store, dir: &Path, reason: &str, now: Millis) -> Result<Taken, SnapshotError> {
    let reason: String = reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let mut path = dir.join(format!("state-{now}-{reason}.db"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("state-{now}-{reason}{n}.db"));
        n += 1;
    }
    let t0 = std::time::Instant::now();
    let size = src.snapshot_whole_to(&path)?;
    Ok(Taken {
        path,
        created_ts: now,
        reason,
        size,
        took_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Records a copy in `state_snapshot_v2` and keeps only the newest `keep` files (older files
/// and their rows are removed).
pub(crate) fn record_and_prune(
    store: &mut Store,
    taken: &Taken,
    keep: usize,
) -> Result<usize, SnapshotError> {
    let mut tx = store.begin()?;
    tx.record_snapshot(
        taken.created_ts,
        &taken.path.to_string_lossy(),
        &taken.reason,
        taken.size,
        true,
    )?;
    tx.commit()?;
    let dir = taken
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut removed = HashSet::new();
    for f in list_files(&dir).into_iter().skip(keep.max(1)) {
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                removed.insert(f.path.to_string_lossy().into_owned());
            }
            Err(e) => log::warn!("snapshot_prune_failed path={} err={e}", f.path.display()),
        }
    }
    if !removed.is_empty() {
        let rows = store.snapshots()?;
        let mut tx = store.begin()?;
        for r in rows.iter().filter(|r| removed.contains(&r.path)) {
            tx.delete_snapshot(r.id)?;
        }
        tx.commit()?;
    }
    Ok(removed.len())
}

// ----- restore statistics ------------------------------------------------------------------

/// Restore attempts (dry-runs included) and successes, kept in `restore_stats.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RestoreStats {
    pub attempts: u64,
    pub successes: u64,
    pub(crate) last_ts: Millis,
}

impl RestoreStats {
    fn path(dir: &Path) -> PathBuf {
        dir.join("restore_stats.json")
    }

    pub fn load(dir: &Path) -> RestoreStats {
        let v: Value = std::fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        RestoreStats {
            attempts: v["attempts"].as_u64().unwrap_or(0),
            successes: v["successes"].as_u64().unwrap_or(0),
            last_ts: v["last_ts"].as_i64().unwrap_or(0),
        }
    }

    /// Success rate in 0..=1 (`None` before any attempt).
    pub(crate) fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.successes as f64 / self.attempts as f64)
    }

    /// Counts one attempt (write via a temporary file and rename).
    pub fn record(dir: &Path, ok: bool, now: Millis) -> RestoreStats {
        let mut s = RestoreStats::load(dir);
        s.attempts += 1;
        if ok {
            s.successes += 1;
        }
        s.last_ts = now;
        let body = json!({"attempts": s.attempts, "successes": s.successes, "last_ts": now});
        let tmp = dir.join("restore_stats.json.tmp");
        let r = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&tmp, body.to_string()))
            .and_then(|_| std::fs::rename(&tmp, Self::path(dir)));
        if let Err(e) = r {
            log::warn!("restore_stats_write_failed err={e}");
        }
        s
    }
}

// ----- consistency check (restore --dry-run) ------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// A stable name: `integrity`, `cursor`, `binding`, `pane_state`, `session_state`, `events`.
    pub check: &'static str,
    pub detail: String,
}

/// What a dry-run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub snapshot: PathBuf,
    pub findings: Vec<Finding>,
    pub counts: HashMap<&'static str, u64>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub(crate) fn is_consistent(&self) -> bool {
        self.errors() == 0
    }

    fn add(&mut self, severity: Severity, check: &'static str, detail: String) {
        self.findings.push(Finding {
            severity,
            check,
            detail,
        });
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort();
        json!({
            "snapshot": self.snapshot.to_string_lossy(),
            "consistent": self.is_consistent(),
            "errors": self.errors(),
            "counts": counts.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "findings": self.findings.iter().map(|f| json!({
                "severity": f.severity.as_str(), "check": f.check, "detail": f.detail,
            })).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn to_text(&self) -> String {
        let mut s = format!("snapshot {}\n", self.snapshot.display());
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort();
        s.push_str(&format!(
            "  {}\n",
            counts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        for f in &self.findings {
            s.push_str(&format!(
                "{:<5} {:<13} {}\n",
                f.severity.as_str(),
                f.check,
                f.detail
            ));
        }
        s.push_str(if self.is_consistent() {
            "consistent: yes\n"
        } else {
            "consistent: NO\n"
        });
        s
    }
}

/// Opens a snapshot read-only-in-spirit (a copy is never migrated in place: it is opened from
/// a temporary copy so checking never changes the file).
fn open_copy(snapshot: &Path) -> Result<(Store, PathBuf), SnapshotError> {
    let tmp_dir = std::env::temp_dir().join(format!(
        "agtmux-snapcheck-{}-{}",
        std::process::id(),
        crate::sys::clock::now_ms()
    ));
    // The copy holds what the database holds (prompts): not readable by anyone else in /tmp.
    crate::paths::ensure_private_dir(&tmp_dir).map_err(io("temp dir"))?;
    let copy = tmp_dir.join("check.db");
    std::fs::copy(snapshot, &copy).map_err(io(format!("read {}", snapshot.display())))?;
    let store = Store::open_with(&copy, &StoreOptions::default())?;
    Ok((store, tmp_dir))
}

/// The restore dry-run: checks the snapshot's integrity, its cursors against the live spool
/// (`spool`), its bindings against its pane rows, its pane rows against its bindings and its
/// events. Never changes the snapshot.
pub fn check(snapshot: &Path, spool: &Path) -> Result<Report, SnapshotError> {
    if !snapshot.is_file() {
        return Err(SnapshotError::NoSnapshot(snapshot.to_path_buf()));
    }
    let (store, tmp_dir) = open_copy(snapshot)?;
    let r = check_store(&store, snapshot, spool);
    drop(store);
    let _ = std::fs::remove_dir_all(&tmp_dir);
    r
}

/// [`check`] on an open store.
pub(crate) fn check_store(
    store: &Store,
    snapshot: &Path,
    spool: &Path,
) -> Result<Report, SnapshotError> {
    let mut rep = Report {
        snapshot: snapshot.to_path_buf(),
        ..Default::default()
    };
    match store.quick_check() {
        Ok(()) => {}
        Err(e) => {
            rep.add(Severity::Error, "integrity", e.to_string());
            return Ok(rep);
        }
    }
    // Cursors.
    let cursors = store.cursors()?;
    rep.counts.insert("cursors", cursors.len() as u64);
    for c in &cursors {
        check_cursor(&mut rep, &c.source_id, &c.committed_cursor, spool);
    }
    // Bindings ↔ pane rows.
    let panes = store.all_pane_states()?;
    let bindings = store.all_open_bindings()?;
    rep.counts.insert("pane_states", panes.len() as u64);
    rep.counts.insert("open_bindings", bindings.len() as u64);
    let pane_by: PanesByKey = panes
        .iter()
        .map(|p| ((p.server_key.as_str(), p.pane_id.as_str()), p))
        .collect();
    check_bindings(&mut rep, &bindings, &pane_by);
    check_pane_rows(&mut rep, store, &panes, &bindings)?;
    // Session rows naming a pane.
    let sessions = store.session_states()?;
    rep.counts.insert("session_states", sessions.len() as u64);
    check_session_rows(&mut rep, &sessions, &pane_by);
    rep.counts.insert("events", store.event_count()?);
    Ok(rep)
}

/// Pane rows by (server key, pane id).
type PanesByKey<'a> = HashMap<(&'a str, &'a str), &'a PaneStateRow>;

/// Every open binding must have a pane row, on the same server.
fn check_bindings(rep: &mut Report, bindings: &[BindingRow], pane_by: &PanesByKey) {
    for b in bindings {
        match pane_by.get(&(b.server_key.as_str(), b.pane_id.as_str())) {
            None => rep.add(
                Severity::Error,
                "binding",
                format!(
                    "open binding #{} ({} {} → {}) has no pane_state row",
                    b.id, b.server_key, b.pane_id, b.session_key
                ),
            ),
            Some(p) if p.server_id != b.server_id => rep.add(
                Severity::Error,
                "binding",
                format!(
                    "open binding #{} ({} → {}) belongs to server {:?}, its pane row to {:?}",
                    b.id, b.pane_id, b.session_key, b.server_id, p.server_id
                ),
            ),
            Some(_) => {}
        }
    }
}

/// Every pane row naming a session must have the open binding that links them, and a
/// deterministic one must have stored events of that session behind it.
fn check_pane_rows(
    rep: &mut Report,
    store: &Store,
    panes: &[PaneStateRow],
    bindings: &[BindingRow],
) -> Result<(), SnapshotError> {
    let open: HashSet<(&str, &str, &str)> = bindings
        .iter()
        .map(|b| {
            (
                b.server_key.as_str(),
                b.pane_id.as_str(),
                b.session_key.as_str(),
            )
        })
        .collect();
    let mut sessions_checked = HashSet::new();
    for p in panes {
        let Some(sk) = p.session_key.as_deref() else {
            continue;
        };
        if !open.contains(&(p.server_key.as_str(), p.pane_id.as_str(), sk)) {
            rep.add(
                Severity::Error,
                "pane_state",
                format!(
                    "pane {} {} names session {sk} but no open binding links them",
                    p.server_key, p.pane_id
                ),
            );
        }
        // The deterministic state must come from stored events (retention may have pruned
        // them: a warning, the state itself is still valid).
        if p.evidence == Evidence::Deterministic && sessions_checked.insert(sk.to_string()) {
            let n = store.accepted_events_for_session(sk)?;
            if n == 0 {
                rep.add(
                    Severity::Warn,
                    "events",
                    format!(
                        "pane {} is deterministic for session {sk} but no accepted event of that session is stored (pruned?)",
                        p.pane_id
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A session row naming a pane should have that pane's row (a warning: the pane may be gone).
fn check_session_rows(rep: &mut Report, sessions: &[SessionStateRow], pane_by: &PanesByKey) {
    for s in sessions {
        if let (Some(sk), Some(pane)) = (s.server_key.as_deref(), s.pane_id.as_deref())
            && !pane_by.contains_key(&(sk, pane))
        {
            rep.add(
                Severity::Warn,
                "session_state",
                format!(
                    "session {} names pane {sk} {pane}, which has no pane_state row",
                    s.session_key
                ),
            );
        }
    }
}

fn check_cursor(rep: &mut Report, source: &str, text: &str, spool: &Path) {
    if source == "hooks_spool" {
        if text.is_empty() {
            rep.add(
                Severity::Info,
                "cursor",
                "hooks_spool: empty (read from the start)".into(),
            );
            return;
        }
        let Some(c) = SpoolCursor::parse(text) else {
            rep.add(
                Severity::Error,
                "cursor",
                format!("hooks_spool: {text:?} is not dev:ino:offset"),
            );
            return;
        };
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(spool) {
            Ok(m) if m.dev() == c.dev && m.ino() == c.ino => {
                if c.offset > m.len() {
                    rep.add(
                        Severity::Error,
                        "cursor",
                        format!(
                            "hooks_spool: offset {} is past the spool's end ({} bytes): the spool was truncated",
                            c.offset,
                            m.len()
                        ),
                    );
                } else {
                    rep.add(
                        Severity::Info,
                        "cursor",
                        format!(
                            "hooks_spool: same spool file, {} bytes to replay after restore",
                            m.len() - c.offset
                        ),
                    );
                }
            }
            Ok(m) => rep.add(
                Severity::Warn,
                "cursor",
                format!(
                    "hooks_spool: the spool was rotated since (cursor inode {}, now {}): the daemon starts the new file from its beginning; lines of the old file after offset {} were already ingested or are replayed from a leftover .old file",
                    c.ino,
                    m.ino(),
                    c.offset
                ),
            ),
            Err(_) => rep.add(
                Severity::Warn,
                "cursor",
                format!(
                    "hooks_spool: no spool at {} (nothing to replay)",
                    spool.display()
                ),
            ),
        }
    } else if !text.is_empty() && text.parse::<u64>().is_err() {
        rep.add(
            Severity::Error,
            "cursor",
            format!("{source}: {text:?} is not a sequence number"),
        );
    }
}

// ----- real restore -------------------------------------------------------------------------

/// Replaces the database at `db` with `snapshot` (the caller checked no daemon runs). The old
/// file (and its `-wal`/`-shm`) is kept as `<db>.pre-restore-<now>`; returns that path.
pub(crate) fn restore_file(
    db: &Path,
    snapshot: &Path,
    now: Millis,
) -> Result<PathBuf, SnapshotError> {
    let with = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let staged = with(db, ".restore.tmp");
    std::fs::copy(snapshot, &staged).map_err(io(format!("copy {}", snapshot.display())))?;
    // The staged copy must open as a database of this build.
    if let Err(e) = Store::open(&staged) {
        let _ = std::fs::remove_file(&staged);
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with(&staged, side));
        }
        return Err(e.into());
    }
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with(&staged, side));
    }
    let backup = with(db, &format!(".pre-restore-{now}"));
    if db.exists() {
        std::fs::rename(db, &backup).map_err(io("move the current database aside"))?;
    }
    for side in ["-wal", "-shm"] {
        let from = with(db, side);
        if from.exists() {
            let _ = std::fs::rename(&from, with(&backup, side));
        }
    }
    std::fs::rename(&staged, db).map_err(io("put the snapshot in place"))?;
    Ok(backup)
}

// ----- the daemon side ----------------------------------------------------------------------

/// Periodic and shutdown snapshots for the runtime (polled from its loop).
pub struct Snapshotter {
    cfg: SnapshotConfig,
    db: PathBuf,
    dir: PathBuf,
    next_due: Option<Millis>,
    inflight: Option<Receiver<Result<Taken, SnapshotError>>>,
    last_ok_ts: Option<Millis>,
    pub taken: u64,
    pub(crate) failures: u64,
    pub(crate) last_took_ms: Option<u64>,
}

/// While a copy runs, the loop checks for its result this often.
const POLL_MS: Millis = 100;

impl Snapshotter {
    pub fn new(cfg: SnapshotConfig, db: &Path) -> Self {
        Snapshotter {
            dir: snapshot_dir(db),
            db: db.to_path_buf(),
            cfg,
            next_due: None,
            inflight: None,
            last_ok_ts: None,
            taken: 0,
            failures: 0,
            last_took_ms: None,
        }
    }

    pub fn config(&self) -> &SnapshotConfig {
        &self.cfg
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Age of the newest good snapshot (in this dir), `None` when there is none.
    pub(crate) fn age_ms(&self, now: Millis) -> Option<Millis> {
        let newest = self
            .last_ok_ts
            .or_else(|| list_files(&self.dir).first().map(|f| f.created_ts))?;
        Some((now - newest).max(0))
    }

    pub fn next_deadline(&self, now: Millis) -> Option<Millis> {
        if self.inflight.is_some() {
            return Some(now + POLL_MS);
        }
        if self.cfg.every_ms <= 0 {
            return None;
        }
        Some(self.next_due.unwrap_or(now))
    }

    /// Starts a due copy, or records a finished one. `store` is the daemon's writer.
    pub fn step(&mut self, store: Option<&mut Store>, now: Millis) {
        if let Some(rx) = &self.inflight {
            match rx.try_recv() {
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.inflight = None;
                    self.failures += 1;
                    log::warn!("snapshot_failed err=thread_died");
                }
                Ok(r) => {
                    self.inflight = None;
                    self.finish(r, store, now);
                }
            }
            return;
        }
        if self.cfg.every_ms <= 0 {
            return;
        }
        let Some(due) = self.next_due else {
            // First call: schedule from the newest snapshot on disk (a restarted daemon does
            // not copy again at once, nor wait a full period when the last copy is old).
            let newest = list_files(&self.dir).first().map(|f| f.created_ts);
            self.last_ok_ts = newest;
            self.next_due = Some(newest.map_or(now + self.cfg.every_ms, |t| t + self.cfg.every_ms));
            return;
        };
        if now < due || store.is_none() {
            return;
        }
        self.next_due = Some(now + self.cfg.every_ms);
        let (tx, rx) = std::sync::mpsc::channel();
        let (db, dir) = (self.db.clone(), self.dir.clone());
        let spawned = std::thread::Builder::new()
            .name("agtmux-snapshot".into())
            .spawn(move || {
                let r = Store::open_with(&db, &StoreOptions::default())
                    .map_err(SnapshotError::from)
                    .and_then(|s| take(&s, &dir, "periodic", now));
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => self.inflight = Some(rx),
            Err(e) => {
                self.failures += 1;
                log::warn!("snapshot_failed err=spawn:{e}");
            }
        }
    }

    fn finish(&mut self, r: Result<Taken, SnapshotError>, store: Option<&mut Store>, now: Millis) {
        match r {
            Ok(t) => {
                self.taken += 1;
                self.last_ok_ts = Some(t.created_ts);
                self.last_took_ms = Some(t.took_ms);
                log::info!(
                    "snapshot_taken path={} reason={} size={} took_ms={}",
                    t.path.display(),
                    t.reason,
                    t.size,
                    t.took_ms
                );
                if let Some(store) = store
                    && let Err(e) = record_and_prune(store, &t, self.cfg.keep)
                {
                    log::warn!("snapshot_record_failed err={e}");
                }
            }
            Err(e) => {
                self.failures += 1;
                log::warn!("snapshot_failed err={e}");
                if let Some(store) = store {
                    let r = store.begin().and_then(|mut tx| {
                        tx.record_snapshot(now, "", "periodic", 0, false)?;
                        tx.commit()
                    });
                    if let Err(e) = r {
                        log::warn!("snapshot_record_failed err={e}");
                    }
                }
            }
        }
    }

    /// The final copy at shutdown (inline), if enabled.
    pub(crate) fn on_shutdown(&mut self, store: Option<&mut Store>, now: Millis) {
        if let Some(rx) = self.inflight.take() {
            // A periodic copy is running: let it finish (bounded), then record it.
            if let Ok(r) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
                self.finish(r, None, now);
            }
        }
        if !self.cfg.on_shutdown {
            return;
        }
        let Some(store) = store else { return };
        match take(store, &self.dir, "shutdown", now) {
            Ok(t) => {
                let took = t.took_ms;
                self.finish(Ok(t), Some(store), now);
                log::info!("snapshot_shutdown took_ms={took}");
            }
            Err(e) => self.finish(Err(e), Some(store), now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{Activity, Presence, Provider};
    use crate::store::{BindingRow, PaneStateRow};

    use crate::testutil::TempDir;

    fn pane(pane_id: &str, server_id: &str, session: Option<&str>) -> PaneStateRow {
        PaneStateRow {
            server_key: "k".into(),
            server_id: server_id.into(),
            pane_id: pane_id.into(),
            generation: 1,
            birth_ts: 1,
            presence: Presence::Managed,
            provider: Some(Provider::Claude),
            evidence: Evidence::Heuristic,
            activity: Activity::Running,
            attention: None,
            title: String::new(),
            title_source: String::new(),
            session_key: session.map(str::to_string),
            winner_source: None,
            since_ts: 1,
            updated_ts: 1,
            state_version: 1,
            extra: "{}".into(),
        }
    }

    fn binding(pane_id: &str, server_id: &str, session: &str) -> BindingRow {
        BindingRow {
            id: 0,
            server_key: "k".into(),
            server_id: server_id.into(),
            pane_id: pane_id.into(),
            generation: 1,
            birth_ts: 1,
            session_key: session.into(),
            provider: Provider::Claude,
            linked_ts: 1,
            unlinked_ts: None,
            reason: "hook".into(),
            tombstone_until: None,
        }
    }

    #[test]
    fn consistent_store_has_no_errors_and_inconsistencies_are_named() {
        let d = TempDir::new("check");
        let spool = d.0.join("spool.jsonl");
        std::fs::write(&spool, b"0123456789\n").unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&spool).unwrap();
        let mut s = Store::open(&d.0.join("a.db")).unwrap();
        {
            let mut tx = s.begin().unwrap();
            tx.upsert_pane_state(&pane("%1", "srv1", Some("s1")))
                .unwrap();
            tx.insert_binding(&binding("%1", "srv1", "s1")).unwrap();
            tx.upsert_pane_state(&pane("%2", "srv1", None)).unwrap();
            tx.set_cursor(
                "hooks_spool",
                &format!("{}:{}:5", m.dev(), m.ino()),
                None,
                1,
            )
            .unwrap();
            tx.set_cursor("codex_appserver", "1234", None, 1).unwrap();
            tx.commit().unwrap();
        }
        let rep = check_store(&s, Path::new("x"), &spool).unwrap();
        assert!(rep.is_consistent(), "{}", rep.to_text());
        assert!(
            rep.to_text().contains("6 bytes to replay"),
            "{}",
            rep.to_text()
        );

        // Break it: a binding of another server, a pane naming an unbound session, a cursor
        // past the end of the spool and a garbage cursor.
        {
            let mut tx = s.begin().unwrap();
            tx.insert_binding(&binding("%2", "srv0", "s2")).unwrap();
            tx.insert_binding(&binding("%9", "srv1", "s9")).unwrap();
            tx.upsert_pane_state(&pane("%3", "srv1", Some("s3")))
                .unwrap();
            tx.set_cursor(
                "hooks_spool",
                &format!("{}:{}:999", m.dev(), m.ino()),
                None,
                2,
            )
            .unwrap();
            tx.set_cursor("codex_appserver", "garbage", None, 2)
                .unwrap();
            tx.commit().unwrap();
        }
        let rep = check_store(&s, Path::new("x"), &spool).unwrap();
        let errs: Vec<(&str, &str)> = rep
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.check, f.detail.as_str()))
            .collect();
        assert_eq!(rep.errors(), 5, "{}", rep.to_text());
        for (check, detail) in [
            ("binding", "srv0"),
            ("binding", "%9"),
            ("pane_state", "s3"),
            ("cursor", "past"),
            ("cursor", "garbage"),
        ] {
            assert!(
                errs.iter().any(|(c, d)| *c == check && d.contains(detail)),
                "no {check} error naming {detail}: {errs:?}"
            );
        }
        assert_eq!(rep.to_json()["consistent"], false);
        assert_eq!(rep.to_json()["errors"], 5);

        // A rotated spool is explained, not an error.
        std::fs::rename(&spool, d.0.join("moved")).unwrap();
        std::fs::write(&spool, b"new\n").unwrap();
        let rep = check_store(&s, Path::new("x"), &spool).unwrap();
        assert!(
            rep.findings
                .iter()
                .any(|f| f.severity == Severity::Warn && f.detail.contains("rotated")),
            "{}",
            rep.to_text()
        );
    }

    #[test]
    fn take_record_prune_keeps_the_newest() {
        let d = TempDir::new("prune");
        let mut s = Store::open(&d.0.join("agtmux.db")).unwrap();
        let dir = snapshot_dir(&d.0.join("agtmux.db"));
        for i in 0..6 {
            let t = take(&s, &dir, "periodic", 1_000 + i).unwrap();
            assert!(t.size > 0);
            record_and_prune(&mut s, &t, 4).unwrap();
        }
        let files = list_files(&dir);
        assert_eq!(
            files.iter().map(|f| f.created_ts).collect::<Vec<_>>(),
            vec![1_005, 1_004, 1_003, 1_002]
        );
        let rows = s.snapshots().unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| Path::new(&r.path).exists() && r.ok));
        // A snapshot is itself a consistent database.
        let rep = check(&files[0].path, &d.0.join("spool.jsonl")).unwrap();
        assert!(rep.is_consistent(), "{}", rep.to_text());
    }

    #[test]
    fn restore_swaps_the_file_and_keeps_the_old_one() {
        let d = TempDir::new("restore");
        let db = d.0.join("agtmux.db");
        let snap;
        {
            let mut s = Store::open(&db).unwrap();
            let mut tx = s.begin().unwrap();
            tx.set_meta("x", "before").unwrap();
            tx.commit().unwrap();
            snap = take(&s, &snapshot_dir(&db), "manual", 5).unwrap();
            let mut tx = s.begin().unwrap();
            tx.set_meta("x", "after").unwrap();
            tx.commit().unwrap();
        }
        let old = restore_file(&db, &snap.path, 9).unwrap();
        assert_eq!(
            Store::open(&db).unwrap().meta("x").unwrap().as_deref(),
            Some("before")
        );
        assert_eq!(
            Store::open(&old).unwrap().meta("x").unwrap().as_deref(),
            Some("after")
        );
        // A file that is not a database is refused, and the database stays.
        let junk = d.0.join("junk.db");
        std::fs::write(&junk, b"not a database at all, not even close........").unwrap();
        assert!(restore_file(&db, &junk, 10).is_err());
        assert_eq!(
            Store::open(&db).unwrap().meta("x").unwrap().as_deref(),
            Some("before")
        );
    }

    #[test]
    fn restore_stats_count_and_rate() {
        let d = TempDir::new("stats");
        assert_eq!(RestoreStats::load(&d.0).success_rate(), None);
        RestoreStats::record(&d.0, true, 1);
        RestoreStats::record(&d.0, true, 2);
        let s = RestoreStats::record(&d.0, false, 3);
        assert_eq!((s.attempts, s.successes, s.last_ts), (3, 2, 3));
        assert_eq!(RestoreStats::load(&d.0), s);
        let rate = s.success_rate().unwrap();
        assert!((rate - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn snapshot_names_parse() {
        assert_eq!(
            parse_name("state-123-periodic.db"),
            Some((123, "periodic".into()))
        );
        assert_eq!(parse_name("state-123.db"), Some((123, String::new())));
        assert_eq!(parse_name("state-x-periodic.db"), None);
        assert_eq!(parse_name("other.db"), None);
    }
}
