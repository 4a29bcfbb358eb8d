//! C-002 `agtmux-daemon`: one process per tmux server. `run` takes the per-server lock, opens
//! the store, and hands over to the mio event loop in [`runtime`]. The projection is the only
//! writer of pane state; publishing turns the read model into tmux options.
//!
//! WHY one daemon per server: tmux options, the pane registry and the store are per server,
//! and one single writer per server keeps them from ever disagreeing.
pub mod admission;
pub mod api;
pub mod codex;
pub mod codex_endpoint;
pub mod conntrace;
pub mod guardrails;
pub mod handover;
mod logfile;
pub mod metrics;
pub(crate) mod notify;
pub mod ops;
pub mod publish;
pub(crate) mod remote;
pub mod runtime;
pub mod snapshot;
pub mod supervise;

use crate::exit::ExitCode;
use crate::paths::{self, ServerArg, ServerPaths};
use std::fmt;
use std::fs::File;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// The tmux binary to run in control mode.
    #[arg(long, default_value = "tmux", hide = true)]
    pub(crate) tmux_bin: String,
    /// Log to stderr instead of the log file.
    #[arg(long)]
    pub foreground: bool,
    /// Start the daemon's keeper in its own session (stdio on /dev/null) and return at once:
    /// it runs the daemon and restarts it after a crash. A no-op when one already runs.
    #[arg(long, conflicts_with_all = ["supervise", "revive", "foreground"])]
    pub detach: bool,
    /// Be the keeper: run the daemon as a child and restart it after a crash (what
    /// `--detach` starts).
    #[arg(long, hide = true, conflicts_with = "revive")]
    pub supervise: bool,
    /// Restart a kept daemon that is gone, keeper included (tmux's client-detached hook runs
    /// this); rate-limited, and a no-op for a server that never had a keeper.
    #[arg(long, hide = true)]
    pub revive: bool,
    /// With `--supervise`: first make a running daemon of another version exit (an upgrade,
    /// what `--detach` starts when it finds one).
    #[arg(long, hide = true, requires = "supervise")]
    pub(crate) take_over: bool,
}

#[derive(Debug)]
pub(crate) enum DaemonError {
    Io(&'static str, std::io::Error),
    /// Another daemon holds this server's lock: not an error for the caller.
    AlreadyRunning,
    NoServer(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Io(what, e) => write!(f, "{what}: {e}"),
            DaemonError::AlreadyRunning => write!(f, "a daemon already runs for this tmux server"),
            DaemonError::NoServer(s) => write!(f, "no tmux server at {s}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Take the per-server lock (flock, non-blocking). The file stays open for the daemon's life.
///
/// A lock on a file that is no longer at its path guards nothing (issue 16: deleting the lock
/// file let a second daemon start), so the locked file must still be the path's, and a live
/// API socket means a daemon serves this server even if its lock file was deleted; the
/// running daemon puts its lock file back ([`lock_still_ours`]).
pub(crate) fn take_lock(sp: &ServerPaths) -> Result<File, DaemonError> {
    paths::ensure_private_dir(&sp.runtime_dir).map_err(|e| DaemonError::Io("runtime dir", e))?;
    let f = lock_path(&sp.lock())?.ok_or(DaemonError::AlreadyRunning)?;
    if std::os::unix::net::UnixStream::connect(sp.api_socket()).is_ok() {
        log::warn!(
            "daemon_exists reason=api_socket_live socket={}",
            sp.api_socket().display()
        );
        return Err(DaemonError::AlreadyRunning);
    }
    handover::write_version(&handover::daemon_version_file(sp));
    Ok(f)
}

/// Lock the file at `path` (created if missing): `Ok(None)` when another process holds it.
/// Retried when the path was unlinked or replaced between our open and our lock.
fn lock_path(path: &std::path::Path) -> Result<Option<File>, DaemonError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    for _ in 0..5 {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| DaemonError::Io("lock file", e))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(DaemonError::Io("lock file", e)),
        }
        let same = match (f.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        };
        if !same {
            continue;
        }
        use std::io::Write;
        let _ = f.set_len(0);
        let _ = writeln!(&f, "{}", std::process::id());
        return Ok(Some(f));
    }
    Err(DaemonError::Io(
        "lock file",
        std::io::Error::other("the lock file keeps being replaced"),
    ))
}

/// What [`lock_still_ours`] found.
#[derive(Debug)]
pub(crate) enum LockCheck {
    /// The path still names the file we hold locked.
    Held,
    /// It was deleted or replaced, and we locked the file now at the path (keep this one).
    Restored(File),
    /// Another process holds the lock at the path now: it runs this server; we must go
    /// (without touching its sockets).
    Lost,
}

/// Is our lock still the one at the path? If the file was deleted or replaced, take the
/// path's lock again so a new daemon cannot start beside us.
pub(crate) fn lock_still_ours(sp: &ServerPaths, held: &File) -> LockCheck {
    use std::os::unix::fs::MetadataExt;
    let path = sp.lock();
    if let (Ok(a), Ok(b)) = (held.metadata(), std::fs::metadata(&path))
        && (a.dev(), a.ino()) == (b.dev(), b.ino())
    {
        return LockCheck::Held;
    }
    let _ = paths::ensure_private_dir(&sp.runtime_dir);
    match lock_path(&path) {
        Ok(Some(f)) => {
            log::warn!("lock_file_restored path={}", path.display());
            LockCheck::Restored(f)
        }
        Ok(None) => {
            log::error!(
                "lock_lost path={} reason=held_by_another_daemon",
                path.display()
            );
            LockCheck::Lost
        }
        Err(e) => {
            log::warn!("lock_restore_failed path={} err={e}", path.display());
            LockCheck::Held
        }
    }
}

/// Is a daemon running for this server? (Its lock is held.)
pub(crate) fn lock_held(sp: &ServerPaths) -> bool {
    let Ok(f) = File::open(sp.lock()) else {
        return false;
    };
    f.try_lock_shared().is_err()
}

/// `agtmux daemon`: returns the exit code.
pub fn run(args: &DaemonArgs) -> ExitCode {
    let sp = args.server.paths();
    // Private: the database and the log hold hook payloads, prompts included. An older,
    // looser dir is tightened.
    if let Err(e) = paths::ensure_private_dir(&sp.state_dir) {
        eprintln!(
            "agtmux: cannot create state dir {}: {e}",
            sp.state_dir.display()
        );
        return ExitCode::Failure;
    }
    if args.detach {
        return supervise::detach_start(&sp, &args.tmux_bin);
    }
    if args.revive {
        supervise::revive(&sp, &args.tmux_bin, true);
        return ExitCode::Ok;
    }
    init_logging(&sp, args.foreground);
    if let Some(note) = paths::runtime_dir_note(&sp) {
        log::warn!("{note}");
    }
    if let Some(why) = paths::runtime_fallback_reason() {
        log::warn!("runtime_dir_fallback reason={why:?}");
    }
    install_panic_hook();
    if args.supervise {
        return supervise::run(&sp, &args.tmux_bin, args.take_over);
    }
    let lock = match take_lock(&sp) {
        Ok(l) => l,
        Err(DaemonError::AlreadyRunning) => {
            log::info!("daemon_exists server={}", sp.socket.display());
            return ExitCode::Ok;
        }
        Err(e) => {
            log::error!("daemon_start_failed err={e}");
            eprintln!("agtmux: {e}");
            return ExitCode::Failure;
        }
    };
    if !crate::tmux::client::server_alive(&sp.socket) {
        log::warn!("daemon_no_server socket={}", sp.socket.display());
        eprintln!(
            "agtmux: {}",
            DaemonError::NoServer(sp.socket.display().to_string())
        );
        return ExitCode::Failure;
    }
    log::info!("daemon_version version={}", handover::version());
    // The bare default is looked up on PATH, then where Homebrew & co. put it (a tmux server
    // started by launchd has a PATH without /opt/homebrew/bin).
    let tmux_bin = match args.tmux_bin.as_str() {
        "tmux" => paths::find_program("tmux")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| args.tmux_bin.clone()),
        other => other.to_string(),
    };
    let code = match runtime::Runtime::new(sp, tmux_bin) {
        Ok(mut rt) => {
            rt.hold_lock(lock.try_clone().ok());
            rt.run()
        }
        Err(e) => {
            log::error!("daemon_start_failed err={e}");
            eprintln!("agtmux: {e}");
            ExitCode::Failure
        }
    };
    drop(lock);
    code
}

/// Log a panic through the logger (so `daemon.log` says where it happened), then let the
/// default hook print it to stderr as before.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "unknown".into());
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let thread = std::thread::current();
        log::error!(
            "daemon_panic at={at} thread={} msg={msg:?}",
            thread.name().unwrap_or("?")
        );
        log::logger().flush();
        default(info);
    }));
}

fn init_logging(sp: &ServerPaths, foreground: bool) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    b.format_timestamp_millis();
    if !foreground && let Ok(f) = logfile::LogFile::open(&sp.log(), logfile::LOG_MAX_BYTES) {
        b.target(env_logger::Target::Pipe(Box::new(f)));
    }
    let _ = b.try_init();
}
