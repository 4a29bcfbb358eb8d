//! Upgrade hand-over: a new agtmux takes a tmux server over from a running daemon of another
//! version, and nothing the hooks sent in between is lost or applied twice.
//!
//! WHY (issue 19): after a plugin update the old daemon kept running, so the user ran stale
//! code and nothing said so. Now:
//! - Every daemon (worker) and keeper writes its version next to its lock
//!   (`<key>.daemon.version`, `<key>.supervisor.version`, read only while the lock is held).
//! - `agtmux daemon --detach` (what the plugin runs at each load) finds a running daemon or
//!   keeper of another version and starts its own keeper with `--take-over`, then returns at
//!   once (the config load never waits for a hand-over).
//! - That keeper holds `<key>.takeover.lock` (so `running()` stays true and no hook or tmux
//!   hook revives the old version meanwhile), asks the old worker through the local API to
//!   `exit_for_upgrade`, and waits until the old worker and keeper let their locks go. The old
//!   worker ends its loop like on SIGTERM and exits with [`ExitCode::Upgrade`](crate::exit::ExitCode::Upgrade); its keeper sees that
//!   code and exits instead of restarting it. A daemon too old to know the verb (or with no
//!   API) gets SIGTERM, keeper first.
//! - Hook events keep going to the spool meanwhile; the new worker starts at the spool's
//!   committed cursor, so each is applied exactly once.
use crate::paths::ServerPaths;
use crate::sys::detach;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a taking-over keeper waits for the old daemon to go before it gives up.
pub(crate) const TAKEOVER_WAIT: Duration = Duration::from_secs(20);

static EXIT_REQUESTED: AtomicBool = AtomicBool::new(false);

/// This binary's version (`Cargo.toml`). Debug builds only (the tests) honour
/// `AGTMUX_TEST_VERSION`, so a test can run "another version" of the same binary; a release
/// build always reports its own.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        if cfg!(debug_assertions)
            && let Ok(v) = std::env::var("AGTMUX_TEST_VERSION")
            && !v.is_empty()
            && v.len() < 64
            && v.bytes().all(|b| b.is_ascii_graphic())
        {
            return v;
        }
        env!("CARGO_PKG_VERSION").to_string()
    })
}

/// The local API asked this worker to exit for an upgrade (the runtime checks each pass).
pub(crate) fn request_exit() {
    EXIT_REQUESTED.store(true, Ordering::SeqCst);
}

pub(crate) fn exit_requested() -> bool {
    EXIT_REQUESTED.load(Ordering::SeqCst)
}

/// The version file of the worker (the daemon lock's holder).
pub(crate) fn daemon_version_file(sp: &ServerPaths) -> PathBuf {
    sp.runtime_dir.join(format!("{}.daemon.version", sp.key))
}

/// The version file of the keeper.
pub(crate) fn supervisor_version_file(sp: &ServerPaths) -> PathBuf {
    sp.runtime_dir
        .join(format!("{}.supervisor.version", sp.key))
}

/// Held by a keeper while it takes the server over.
pub(crate) fn takeover_lock(sp: &ServerPaths) -> PathBuf {
    sp.runtime_dir.join(format!("{}.takeover.lock", sp.key))
}

/// Record our version for whoever holds the lock next to `file` (called right after the lock
/// is taken).
pub(crate) fn write_version(file: &Path) {
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, format!("{}\n", version())).is_ok() {
        let _ = std::fs::rename(&tmp, file);
    }
}

fn read_version(file: &Path) -> Option<String> {
    let s = std::fs::read_to_string(file).ok()?;
    let v = s.lines().next()?.trim().to_string();
    (!v.is_empty()).then_some(v)
}

fn held(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => !detach::try_lock(&f),
        Err(_) => false,
    }
}

/// The versions of what runs for this server now: `(what, version)` for each held lock whose
/// holder wrote its version (`None` = running, version unknown).
pub(crate) fn running_versions(sp: &ServerPaths) -> Vec<(&'static str, Option<String>)> {
    let mut v = Vec::new();
    if held(&sp.lock()) {
        v.push(("daemon", read_version(&daemon_version_file(sp))));
    }
    if held(&super::supervise::supervisor_lock(sp)) {
        v.push(("keeper", read_version(&supervisor_version_file(sp))));
    }
    v
}

/// Does a daemon or keeper of another version run for this server (and no hand-over is
/// under way already)? An unknown version is not "another": a holder writes its version right
/// after it locks, so a missing file is a start in progress, not an old daemon.
pub(crate) fn needs_takeover(sp: &ServerPaths) -> bool {
    if held(&takeover_lock(sp)) {
        return false;
    }
    running_versions(sp)
        .iter()
        .any(|(_, v)| v.as_deref().is_some_and(|v| v != version()))
}

/// Ask the worker through the local API to exit for an upgrade. `Ok(true)`: it agreed;
/// `Ok(false)`: it answered but does not know the verb (an older daemon).
pub(crate) fn ask_exit(sp: &ServerPaths) -> std::io::Result<bool> {
    let mut s = std::os::unix::net::UnixStream::connect(sp.api_socket())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.set_write_timeout(Some(Duration::from_secs(3)))?;
    let req = serde_json::json!({"v": 1, "id": 1, "method": "exit_for_upgrade",
        "params": {"version": version()}});
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|e| std::io::Error::other(format!("bad answer: {e}")))?;
    Ok(v.get("result").is_some())
}

fn lock_pid(path: &Path) -> Option<i32> {
    let s = std::fs::read_to_string(path).ok()?;
    s.split_whitespace().next()?.parse().ok().filter(|p| *p > 1)
}

fn sigterm_holder(lock: &Path) {
    if !held(lock) {
        return;
    }
    if let Some(pid) = lock_pid(lock) {
        log::warn!("takeover_sigterm pid={pid} lock={}", lock.display());
        // The pid was read from a lock file that is held right now (its holder wrote it).
        crate::sys::signals::terminate(pid);
    }
}

/// Make the old daemon and keeper go (the caller holds [`takeover_lock`]); returns when both
/// locks are free, or an error after [`TAKEOVER_WAIT`].
pub(crate) fn take_over(sp: &ServerPaths) -> Result<(), String> {
    let daemon_lock = sp.lock();
    let keeper_lock = super::supervise::supervisor_lock(sp);
    let from = running_versions(sp);
    log::info!("takeover_start version={} running={from:?}", version());
    let start = Instant::now();
    let mut asked = false;
    let mut termed = false;
    let mut keeper_alone: Option<Instant> = None;
    loop {
        let d = held(&daemon_lock);
        let k = held(&keeper_lock);
        if d || !k {
            keeper_alone = None;
        } else if keeper_alone.is_none() {
            keeper_alone = Some(Instant::now());
        }
        if !d && !k {
            log::info!(
                "takeover_done version={} waited_ms={}",
                version(),
                start.elapsed().as_millis()
            );
            return Ok(());
        }
        if d && !asked {
            asked = match ask_exit(sp) {
                Ok(true) => {
                    log::info!("takeover_asked_exit");
                    true
                }
                Ok(false) => {
                    log::warn!("takeover_ask_refused (older daemon): SIGTERM instead");
                    termed = true;
                    sigterm_holder(&keeper_lock);
                    sigterm_holder(&daemon_lock);
                    true
                }
                Err(e) => {
                    // No API yet (a worker still starting) or none at all: retry, then SIGTERM.
                    log::info!("takeover_ask_failed err={e}");
                    false
                }
            };
        }
        // A keeper whose worker is down (backoff) has nobody to ask (one whose worker just
        // exited for us leaves by itself within ms); a daemon that agreed but stays, or never
        // answers, gets SIGTERM after a while.
        let late = start.elapsed() > Duration::from_secs(if asked { 8 } else { 3 });
        let alone = keeper_alone.is_some_and(|t| t.elapsed() > Duration::from_secs(1));
        if !termed && (late || alone) {
            termed = true;
            sigterm_holder(&keeper_lock);
            sigterm_holder(&daemon_lock);
        }
        if start.elapsed() > TAKEOVER_WAIT {
            return Err(format!(
                "the running daemon ({from:?}) did not exit within {}s",
                TAKEOVER_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn sp(tag: &str) -> ServerPaths {
        ServerPaths::in_temp_dir(&format!("handover-{tag}"))
    }

    fn lock(path: &Path) -> File {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        assert!(detach::try_lock(&f));
        f
    }

    #[test]
    fn only_a_running_holder_of_another_version_is_taken_over() {
        let p = sp("take");
        // A version file without a holder is a leftover: nothing runs.
        std::fs::write(daemon_version_file(&p), "0.0.1\n").unwrap();
        assert!(running_versions(&p).is_empty());
        assert!(!needs_takeover(&p));
        let d = lock(&p.lock());
        assert!(needs_takeover(&p), "a daemon of 0.0.1 runs");
        write_version(&daemon_version_file(&p));
        assert!(!needs_takeover(&p), "ours runs");
        // A keeper of another version (its worker ours) is taken over too.
        let k = lock(&super::super::supervise::supervisor_lock(&p));
        std::fs::write(supervisor_version_file(&p), "0.0.1\n").unwrap();
        assert!(needs_takeover(&p));
        // Unknown (a holder that has not written its version yet) is not "another".
        std::fs::remove_file(supervisor_version_file(&p)).unwrap();
        assert!(!needs_takeover(&p));
        std::fs::write(supervisor_version_file(&p), "0.0.1\n").unwrap();
        // A take-over under way: a second one is not started.
        let t = lock(&takeover_lock(&p));
        assert!(!needs_takeover(&p));
        drop((d, k, t));
        let _ = std::fs::remove_dir_all(&p.runtime_dir);
    }

    #[test]
    fn the_version_is_the_crates_unless_a_debug_build_is_told_otherwise() {
        // This process has no AGTMUX_TEST_VERSION (cargo test does not set it).
        if std::env::var_os("AGTMUX_TEST_VERSION").is_none() {
            assert_eq!(version(), env!("CARGO_PKG_VERSION"));
        }
    }
}
