//! The daemon's keeper: one small process per tmux server that runs the daemon (the worker,
//! plain `agtmux daemon`) as its child, restarts it after a crash, and tells tmux the truth
//! while it is down.
//!
//! WHY (issue 16): a daemon that panicked or was killed left `@agtmux_daemon` saying
//! `<pid> ok` and every pane's state frozen, until someone reloaded the plugin. Now:
//! - `agtmux daemon … --detach` (what `agtmux.tmux` runs) starts this keeper in a new session
//!   ([`crate::sys::detach`]) and returns at once; a second start is a no-op.
//! - The keeper restarts a worker that exited while its tmux server lives, paced 1 s → 30 s
//!   (±20 %, `AGTMUX_SUPERVISOR_BACKOFF_MS=base,max` overrides), reset after a worker ran
//!   [`STABLE_MS`]. Each crash is logged with its exit status or signal. While the worker is
//!   down, `@agtmux_daemon` says `<keeper pid> down <reason>, restarting in <n>s` and
//!   `@agtmux_attention` (the status summary) says `agtmux down`.
//! - If the keeper is gone too (kill -9 of everything), [`revive`] starts a new one: the next
//!   hook calls it, and so does tmux's `client-detached` hook (the worker's control client
//!   leaves when the worker dies). It is rate-limited by a stamp file, so a crash loop never
//!   forks per hook, and it only revives a server that had a keeper (a daemon run by hand stays
//!   the user's business).
//!
//! Locks: the worker keeps the per-server daemon lock (one daemon per server, as before); the
//! keeper holds its own `<key>.supervisor.lock` (one keeper per server). A worker started by
//! hand while the keeper's worker is down holds the daemon lock: the keeper waits for it to go
//! instead of starting a second one.
use super::{handover, lock_held};
use crate::exit::ExitCode;
use crate::paths::{self, ServerPaths};
use crate::supervisor::{Backoff, RestartPolicy};
use crate::sys::bounded::{self, Bounded};
use crate::sys::detach;
use crate::tmux::options::escape_format;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A worker that ran this long was stable: the next crash starts the backoff from 1 s again.
pub(crate) const STABLE_MS: u64 = 60_000;
/// [`revive`] starts a keeper at most once per this interval per server.
pub(crate) const REVIVE_EVERY: Duration = Duration::from_secs(10);
/// How long the tmux hook's revive waits for a dying daemon to let go of its lock.
const REVIVE_SETTLE: Duration = Duration::from_secs(2);
/// The longest a one-shot tmux client may take (a stopped tmux server never answers).
pub(crate) const TMUX_COMMAND_LIMIT: Duration = Duration::from_secs(3);
/// What the status summary shows while the worker is down.
pub(crate) const DOWN_ATTENTION: &str = "#[fg=white,bg=red,bold]agtmux down#[default]";

/// The keeper's lock file; its existence also says "this server had a keeper".
pub fn supervisor_lock(sp: &ServerPaths) -> PathBuf {
    sp.runtime_dir.join(format!("{}.supervisor.lock", sp.key))
}

/// When [`revive`] last started a keeper (its mtime).
fn revive_stamp(sp: &ServerPaths) -> PathBuf {
    sp.runtime_dir.join(format!("{}.revive", sp.key))
}

fn held(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => !detach::try_lock(&f),
        Err(_) => false,
    }
}

/// Does a daemon or its keeper run for this server (or a new keeper take it over)?
pub fn running(sp: &ServerPaths) -> bool {
    lock_held(sp) || held(&supervisor_lock(sp)) || held(&handover::takeover_lock(sp))
}

/// `agtmux daemon --detach`: start a keeper for this server unless one (or a daemon) of this
/// version runs, and return at once. One of another version is taken over by the new keeper
/// (issue 19, [`handover`]). Returns the exit code.
pub(crate) fn detach_start(sp: &ServerPaths, tmux_bin: &str) -> ExitCode {
    let take_over = handover::needs_takeover(sp);
    if running(sp) && !take_over {
        return ExitCode::Ok;
    }
    match spawn_keeper(sp, tmux_bin, take_over) {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("agtmux: cannot start the daemon: {e}");
            ExitCode::Failure
        }
    }
}

/// Start a keeper if this server had one and nothing runs now, at most once per
/// [`REVIVE_EVERY`]. Never waits for it. With `tell_down`, a revive that the rate limit holds
/// back still writes "down" to tmux (the tmux hook may; the agent's hook never forks for it).
pub(crate) fn revive(sp: &ServerPaths, tmux_bin: &str, tell_down: bool) {
    if tell_down {
        // The tmux hook fires as soon as the daemon's control client is gone, which can be a
        // moment before the dying daemon has released its lock (seen: still held when the
        // hook ran). This runs in the background (`run-shell -b`), so look again for a short
        // while before deciding that a daemon runs; a plain client detach costs one sleeping
        // process for that long.
        let until = Instant::now() + REVIVE_SETTLE;
        while running(sp) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    match may_revive(sp) {
        Revive::No => {}
        Revive::Held => {
            if tell_down {
                tell(
                    tmux_bin,
                    &sp.socket,
                    "down no daemon runs, restart held back (rate limit)",
                    Some(DOWN_ATTENTION),
                );
            }
        }
        Revive::Go => {
            let _ = spawn_keeper(sp, tmux_bin, false);
        }
    }
}

/// What [`revive`] should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Revive {
    /// Something runs, or this server never had a keeper.
    No,
    /// Nothing runs, but a keeper was started less than [`REVIVE_EVERY`] ago.
    Held,
    /// Start a keeper (the stamp is written).
    Go,
}

/// Decide, and stamp the time of a `Go`, so that racing callers mostly see `Held`.
pub(crate) fn may_revive(sp: &ServerPaths) -> Revive {
    if !supervisor_lock(sp).exists() || running(sp) {
        return Revive::No;
    }
    let stamp = revive_stamp(sp);
    let recent = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < REVIVE_EVERY);
    if recent {
        return Revive::Held;
    }
    if std::fs::write(&stamp, std::process::id().to_string()).is_err() {
        // No stamp, no rate limit: do not fork.
        return Revive::Held;
    }
    Revive::Go
}

fn spawn_keeper(sp: &ServerPaths, tmux_bin: &str, take_over: bool) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut c = Command::new(exe);
    c.arg("daemon").arg("-S").arg(&sp.socket).arg("--supervise");
    if take_over {
        c.arg("--take-over");
    }
    c.arg("--tmux-bin")
        .arg(tmux_bin)
        // Not the caller's: an agent's pane and directory are none of the daemon's business.
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .current_dir("/");
    detach::spawn_detached(&mut c).map(drop)
}

/// Set `@agtmux_daemon` to `<our pid> <status>` and `@agtmux_attention` to `attention`
/// (`None` unsets it) with one tmux client. Arguments go to tmux as argv, never through a
/// shell; `#` in our own text is escaped so the status line shows it as written. The client
/// gets [`TMUX_COMMAND_LIMIT`]: a stopped or wedged tmux server never answers, and the keeper
/// must go on restarting its worker regardless.
fn tell(tmux_bin: &str, socket: &Path, status: &str, attention: Option<&str>) -> bool {
    let daemon = escape_format(&format!("{} {status}", std::process::id()));
    let mut c = Command::new(tmux_bin);
    c.arg("-S")
        .arg(socket)
        .args(["set-option", "-g", "@agtmux_daemon", &daemon, ";"]);
    match attention {
        Some(a) => c.args(["set-option", "-g", "@agtmux_attention", a]),
        None => c.args(["set-option", "-gu", "@agtmux_attention"]),
    };
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    tmux_once(&mut c, "tell")
}

/// Run a one-shot tmux client for at most [`TMUX_COMMAND_LIMIT`]; whether it succeeded.
pub(crate) fn tmux_once(c: &mut Command, what: &str) -> bool {
    match bounded::status_within(c, TMUX_COMMAND_LIMIT) {
        Ok(r @ Bounded::Exited(_)) => r.success(),
        Ok(Bounded::TimedOut) => {
            log::warn!(
                "tmux_command_timeout what={what} limit_ms={}",
                TMUX_COMMAND_LIMIT.as_millis()
            );
            false
        }
        Err(e) => {
            log::warn!("tmux_command_failed what={what} err={e}");
            false
        }
    }
}

/// `agtmux daemon --supervise`: the keeper loop. Returns when the tmux server is gone (0), or
/// at once when another keeper runs for it (0).
pub(crate) fn run(sp: &ServerPaths, tmux_bin: &str, take_over: bool) -> ExitCode {
    // The keeper lock is held for as long as this loop runs.
    let (_lock, exe) = match start(sp, tmux_bin, take_over) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let policy = RestartPolicy::from_env();
    let mut backoff = Backoff::new(policy.backoff_base, policy.backoff_max);
    let mut restarts = 0u64;
    let mut last_crash: Option<String> = None;
    log::info!(
        "supervisor_start pid={} server={}",
        std::process::id(),
        sp.socket.display()
    );
    loop {
        if !crate::tmux::client::server_alive(&sp.socket) {
            log::info!("supervisor_stop reason=server_gone");
            return ExitCode::Ok;
        }
        if lock_held(sp) {
            // A daemon we did not start (run by hand) serves this server: wait until it ends.
            log::info!("supervisor_waiting reason=daemon_lock_held");
            if let Ok(f) = File::open(sp.lock()) {
                detach::wait_unlocked(&f);
            }
            continue;
        }
        let why = last_crash
            .as_deref()
            .map_or("starting".to_string(), |r| format!("starting after {r}"));
        tell(tmux_bin, &sp.socket, &why, None);
        let started = Instant::now();
        let Some(reason) = run_worker(&exe, sp, tmux_bin) else {
            // A newer agtmux asked it to go and takes over: no restart.
            log::info!("supervisor_stop reason=upgrade");
            return ExitCode::Ok;
        };
        let ran_ms = started.elapsed().as_millis() as u64;
        if !crate::tmux::client::server_alive(&sp.socket) {
            log::info!("supervisor_stop reason=server_gone worker_exit={reason:?}");
            return ExitCode::Ok;
        }
        if ran_ms >= STABLE_MS {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        restarts += 1;
        log::error!(
            "daemon_worker_down status={reason:?} ran_ms={ran_ms} restart_in_ms={delay} restarts={restarts}"
        );
        let secs = delay.div_ceil(1000);
        tell(
            tmux_bin,
            &sp.socket,
            &format!("down worker {reason}, restarting in {secs}s"),
            Some(DOWN_ATTENTION),
        );
        last_crash = Some(reason);
        std::thread::sleep(Duration::from_millis(delay));
    }
}

/// Before the loop: the runtime dir, the take-over (an upgrade), the keeper lock. Gives the
/// keeper lock (to hold) and our executable, or the code to exit with at once.
fn start(sp: &ServerPaths, tmux_bin: &str, take_over: bool) -> Result<(File, PathBuf), ExitCode> {
    if let Err(e) = paths::ensure_private_dir(&sp.runtime_dir) {
        log::error!("supervisor_start_failed err=runtime_dir:{e}");
        return Err(ExitCode::Failure);
    }
    // An upgrade: hold the take-over lock (nothing revives the old version meanwhile, and a
    // second take-over is a no-op) until our own keeper lock is held below.
    let takeover = if take_over {
        Some(take_over_server(sp, tmux_bin)?)
    } else {
        None
    };
    let lock = keeper_lock(sp)?;
    handover::write_version(&handover::supervisor_version_file(sp));
    drop(takeover);
    match std::env::current_exe() {
        Ok(exe) => Ok((lock, exe)),
        Err(e) => {
            log::error!("supervisor_start_failed err=current_exe:{e}");
            Err(ExitCode::Failure)
        }
    }
}

/// An upgrade (issue 19): take the take-over lock, then make the running daemon and keeper
/// hand over. Gives the take-over lock, held until our own keeper lock is; exits with 0 when
/// another take-over is under way.
fn take_over_server(sp: &ServerPaths, tmux_bin: &str) -> Result<File, ExitCode> {
    let f = open_lock_file(&handover::takeover_lock(sp), "takeover_lock")?;
    if !detach::try_lock(&f) {
        log::info!("takeover_exists server={}", sp.socket.display());
        return Err(ExitCode::Ok);
    }
    tell(tmux_bin, &sp.socket, "upgrading", None);
    if let Err(e) = handover::take_over(sp) {
        log::error!("takeover_failed err={e}");
        tell(
            tmux_bin,
            &sp.socket,
            &format!("upgrade failed: {e}; see {}", sp.log().display()),
            Some(DOWN_ATTENTION),
        );
        return Err(ExitCode::Failure);
    }
    Ok(f)
}

/// The keeper lock, one keeper per server, with our pid in it; exits with 0 when another
/// keeper holds it.
fn keeper_lock(sp: &ServerPaths) -> Result<File, ExitCode> {
    let lock = open_lock_file(&supervisor_lock(sp), "lock_file")?;
    if !detach::try_lock(&lock) {
        log::info!("supervisor_exists server={}", sp.socket.display());
        return Err(ExitCode::Ok);
    }
    {
        use std::io::Write;
        let _ = lock.set_len(0);
        let _ = writeln!(&lock, "{}", std::process::id());
    }
    Ok(lock)
}

/// A lock file, created if need be (its content kept).
fn open_lock_file(path: &Path, what: &str) -> Result<File, ExitCode> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| {
            log::error!("supervisor_start_failed err={what}:{e}");
            ExitCode::Failure
        })
}

/// One worker's life: why it ended, or `None` when it left for a newer agtmux (no restart).
fn run_worker(exe: &Path, sp: &ServerPaths, tmux_bin: &str) -> Option<String> {
    let reason = match spawn_worker(exe, sp, tmux_bin) {
        Ok(mut child) => {
            log::info!("supervisor_worker_started pid={}", child.id());
            match child.wait() {
                Ok(st) if st.code() == Some(ExitCode::Upgrade.code()) => return None,
                Ok(st) => detach::exit_reason(&st),
                Err(e) => format!("wait failed: {e}"),
            }
        }
        Err(e) => format!("spawn failed: {e}"),
    };
    Some(reason)
}

/// The worker: plain `agtmux daemon` for the same server, its stderr (a panic's default
/// report, an abort) appended to daemon.log.
fn spawn_worker(
    exe: &Path,
    sp: &ServerPaths,
    tmux_bin: &str,
) -> std::io::Result<std::process::Child> {
    let err = OpenOptions::new()
        .create(true)
        .append(true)
        .open(sp.log())
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    Command::new(exe)
        .arg("daemon")
        .arg("-S")
        .arg(&sp.socket)
        .arg("--tmux-bin")
        .arg(tmux_bin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(tag: &str) -> ServerPaths {
        ServerPaths::in_temp_dir(&format!("keep-{tag}"))
    }

    #[test]
    fn revive_only_a_kept_server_and_at_most_once_per_interval() {
        let p = sp("rate");
        assert_eq!(may_revive(&p), Revive::No, "never had a keeper");
        std::fs::write(supervisor_lock(&p), b"1").unwrap();
        assert_eq!(may_revive(&p), Revive::Go);
        assert_eq!(
            may_revive(&p),
            Revive::Held,
            "a crash loop never forks per hook"
        );
        // A live daemon (its lock held) is never revived.
        let _ = std::fs::remove_file(revive_stamp(&p));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p.lock())
            .unwrap();
        assert!(detach::try_lock(&f));
        assert_eq!(may_revive(&p), Revive::No);
        drop(f);
        assert_eq!(may_revive(&p), Revive::Go);
        let _ = std::fs::remove_dir_all(&p.runtime_dir);
    }
}
