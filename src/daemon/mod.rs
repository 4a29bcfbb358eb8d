//! C-002 `agtmux-daemon`: one process per tmux server. `run` takes the per-server lock, opens
//! the store, and hands over to the mio event loop in [`runtime`]. The projection is the only
//! writer of pane state; publishing turns the read model into tmux options.
pub mod admission;
pub mod api;
pub mod codex;
pub mod codex_endpoint;
pub mod conntrace;
pub mod guardrails;
pub mod metrics;
pub mod ops;
pub use crate::sys::procs;
pub mod projection;
pub mod publish;
pub mod runtime;
pub mod serial;
pub mod snapshot;

use crate::paths::{self, ServerArg, ServerPaths};
use std::fmt;
use std::fs::File;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// tmux server socket name, as `tmux -L`.
    #[arg(short = 'L', value_name = "NAME")]
    pub name: Option<String>,
    /// tmux server socket path, as `tmux -S`.
    #[arg(short = 'S', value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
    /// The tmux binary to run in control mode.
    #[arg(long, default_value = "tmux", hide = true)]
    pub tmux_bin: String,
    /// Log to stderr instead of the log file.
    #[arg(long)]
    pub foreground: bool,
}

impl DaemonArgs {
    pub fn server(&self) -> ServerArg {
        ServerArg {
            name: self.name.clone(),
            path: self.path.clone(),
        }
    }
}

#[derive(Debug)]
pub enum DaemonError {
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
pub fn take_lock(sp: &ServerPaths) -> Result<File, DaemonError> {
    paths::ensure_private_dir(&sp.runtime_dir).map_err(|e| DaemonError::Io("runtime dir", e))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(sp.lock())
        .map_err(|e| DaemonError::Io("lock file", e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(DaemonError::AlreadyRunning),
        Err(std::fs::TryLockError::Error(e)) => return Err(DaemonError::Io("lock file", e)),
    }
    use std::io::Write;
    let _ = f.set_len(0);
    let _ = writeln!(&f, "{}", std::process::id());
    Ok(f)
}

/// Is a daemon running for this server? (Its lock is held.)
pub fn lock_held(sp: &ServerPaths) -> bool {
    let Ok(f) = File::open(sp.lock()) else {
        return false;
    };
    f.try_lock_shared().is_err()
}

/// `agtmux daemon`: returns the exit code.
pub fn run(args: &DaemonArgs) -> i32 {
    let sp = ServerPaths::new(paths::socket_path(&args.server()));
    // Private: the database and the log hold hook payloads, prompts included. An older,
    // looser dir is tightened.
    if let Err(e) = paths::ensure_private_dir(&sp.state_dir) {
        eprintln!(
            "agtmux: cannot create state dir {}: {e}",
            sp.state_dir.display()
        );
        return 1;
    }
    init_logging(&sp, args.foreground);
    if let Some(note) = paths::runtime_dir_note(&sp) {
        log::warn!("{note}");
    }
    let lock = match take_lock(&sp) {
        Ok(l) => l,
        Err(DaemonError::AlreadyRunning) => {
            log::info!("daemon_exists server={}", sp.socket.display());
            return 0;
        }
        Err(e) => {
            log::error!("daemon_start_failed err={e}");
            eprintln!("agtmux: {e}");
            return 1;
        }
    };
    if !crate::tmux::client::server_alive(&sp.socket) {
        log::warn!("daemon_no_server socket={}", sp.socket.display());
        eprintln!(
            "agtmux: {}",
            DaemonError::NoServer(sp.socket.display().to_string())
        );
        return 1;
    }
    // The bare default is looked up on PATH, then where Homebrew & co. put it (a tmux server
    // started by launchd has a PATH without /opt/homebrew/bin).
    let tmux_bin = match args.tmux_bin.as_str() {
        "tmux" => paths::find_program("tmux")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| args.tmux_bin.clone()),
        other => other.to_string(),
    };
    let code = match runtime::Runtime::new(sp, tmux_bin) {
        Ok(mut rt) => rt.run(),
        Err(e) => {
            log::error!("daemon_start_failed err={e}");
            eprintln!("agtmux: {e}");
            1
        }
    };
    drop(lock);
    code
}

fn init_logging(sp: &ServerPaths, foreground: bool) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    b.format_timestamp_millis();
    if !foreground
        && let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sp.log())
    {
        b.target(env_logger::Target::Pipe(Box::new(f)));
    }
    let _ = b.try_init();
}
