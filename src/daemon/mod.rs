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
pub(crate) mod notify;
pub mod ops;
pub mod procs;
pub mod projection;
pub mod publish;
pub mod runtime;
pub mod serial;
pub mod snapshot;

use crate::paths::{self, ServerArg, ServerPaths};
use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;

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
    // SAFETY: flock on a valid fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(DaemonError::AlreadyRunning);
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
    // SAFETY: flock on a valid fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    r != 0
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
    let code = match runtime::Runtime::new(sp, args.tmux_bin.clone()) {
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
