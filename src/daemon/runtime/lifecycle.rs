//! The runtime's two edges: building it (every readiness source registered with the one
//! `Poll`, the trust material loaded, the start stages begun) and tearing it down (our session
//! killed, `@agtmux_daemon` cleared, our wake socket removed).
//!
//! WHY a module of its own: the loop in `mod.rs` should read as the loop; what it takes to set
//! it up and leave cleanly is one job of its own.
use super::health::SelfHealth;
use super::local_api::LocalApi;
use super::lock_watch::LockWatch;
use super::poller::Screens;
use super::publish_pass::Publish;
use super::timing::{Due, Timing};
use super::tmux_control::TmuxSide;
use super::{Life, Runtime, SIG_CHLD, SIG_TERM, SPOOL_WATCH, Sources, TRANSCRIPTS, WAKE, Wakeups};
use crate::daemon::api::{self, ApiServer};
use crate::daemon::codex::CodexLink;
use crate::daemon::metrics::Metrics;
use crate::daemon::ops::Ops;
use crate::exit::ExitCode;
use crate::gateway::Gateway;
use crate::paths::ServerPaths;
use crate::projection::Projection;
use crate::sources::transcript_watch::TranscriptWatch;
use crate::supervisor::{RestartPolicy, Stage, Startup};
use crate::sys::clock::now_ms;
use crate::sys::watch::{Kind as WatchKind, Watcher};
use crate::tmux::client::ReplyKind;
use crate::tmux::registry::Registry;
use mio::net::UnixDatagram;
use mio::unix::SourceFd;
use mio::{Interest, Poll};
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct RuntimeError(pub String);
impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RuntimeError {}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError(format!("{what}: {e}"))
}

impl Runtime {
    pub fn new(sp: ServerPaths, tmux_bin: String) -> Result<Runtime, RuntimeError> {
        let poll = Poll::new().map_err(io_err("poll"))?;
        let (sig_term, sig_chld) = signal_streams(&poll)?;
        let gateway = Gateway::new(&sp, now_ms());
        // The spool's dir: appends and the re-created file after rotation. Where the kernel
        // cannot watch it, the wake-up datagram and the spool scan still see every line.
        let mut spool_watch = Watcher::new("state_dir");
        spool_watch.add(&sp.state_dir, WatchKind::Dir);
        if let Some(fd) = spool_watch.raw_fd() {
            poll.registry()
                .register(&mut SourceFd(&fd), SPOOL_WATCH, Interest::READABLE)
                .map_err(io_err("register"))?;
        }
        let transcripts = TranscriptWatch::new(now_ms());
        if let Some(fd) = transcripts.raw_fd() {
            poll.registry()
                .register(&mut SourceFd(&fd), TRANSCRIPTS, Interest::READABLE)
                .map_err(io_err("register"))?;
        }
        let mut wake = bind_wake(&sp);
        if let Some(w) = wake.as_mut() {
            poll.registry()
                .register(w, WAKE, Interest::READABLE)
                .map_err(io_err("register"))?;
        }
        let api = ApiServer::bind(&sp.api_socket(), poll.registry())
            .map_err(|e| log::error!("api_unavailable err={e}"))
            .ok();
        // Flow-009/013: the runtime nonce and the persisted source registry. The source stage
        // is ready once both are in place (the hook spool was opened by the gateway above).
        let mut startup = Startup::default();
        let admission = trust_material(&sp);
        let heartbeat_timeout = admission.registry.heartbeat_timeout;
        startup.mark_ready(Stage::Source, now_ms());
        let hostname = crate::sys::host::hostname();
        let ops = Ops::new(&sp.db(), now_ms());
        Ok(Runtime {
            poll,
            wakeups: Wakeups {
                sig_term,
                sig_chld,
                spool_watch,
                wake,
                wake_ident: socket_ident(&sp.wake_socket()),
            },
            tmux: TmuxSide::new(tmux_bin),
            sp,
            registry: Registry::default(),
            gateway,
            projection: Projection::new(hostname),
            sources: Sources {
                codex: CodexLink::new(now_ms(), RestartPolicy::from_env(), heartbeat_timeout),
                transcripts,
                remotes: crate::daemon::remote::Remotes::new(RestartPolicy::from_env()),
                remotes_json: serde_json::Value::Array(Vec::new()),
            },
            screens: Screens::default(),
            publish: Publish::default(),
            due: Due::new(Timing::from_env()),
            api: LocalApi {
                server: api,
                admission,
            },
            health: SelfHealth {
                startup,
                ops,
                metrics: Metrics::new(now_ms()),
                hook_failure: None,
            },
            lock: LockWatch::default(),
            life: Life {
                shutdown: false,
                exit_code: ExitCode::Ok,
            },
        })
    }

    pub(super) fn on_shutdown(&mut self) {
        log::info!("daemon_stop");
        self.sources.remotes.shutdown(self.poll.registry());
        self.health
            .ops
            .on_shutdown(self.gateway.store_mut(), now_ms());
        // Clear @agtmux_daemon so the status line does not claim a daemon that is gone.
        if let Some(t) = self.tmux.client.as_mut()
            && t.is_ready()
        {
            t.send("set-option -gu @agtmux_daemon", ReplyKind::Other);
            // Our session goes with us: it must not keep a server alive, nor stay in `tmux ls`.
            t.send(crate::tmux::control_session::KILL, ReplyKind::Other);
            let _ = t.flush();
            // Give tmux a moment to read it before we detach.
            let deadline = std::time::Instant::now() + Duration::from_millis(300);
            while t.in_flight() > 0 && std::time::Instant::now() < deadline {
                let mut evs = Vec::new();
                std::thread::sleep(Duration::from_millis(5));
                t.on_readable(&mut evs);
                if t.is_closed() {
                    break;
                }
            }
        }
        self.drop_tmux();
        if let Some(mut a) = self.api.server.take() {
            a.shutdown(self.poll.registry());
        }
        // Only our own: a daemon that took over this server has its own socket there.
        let wake = self.sp.wake_socket();
        if self.wakeups.wake_ident.is_some() && socket_ident(&wake) == self.wakeups.wake_ident {
            let _ = std::fs::remove_file(wake);
        }
    }
}

/// (dev, inode) of a path, when it exists.
pub(crate) fn socket_ident(p: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn bind_wake(sp: &ServerPaths) -> Option<UnixDatagram> {
    let path = sp.wake_socket();
    let _ = std::fs::remove_file(&path);
    match UnixDatagram::bind(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("wake_socket_failed path={} err={e}", path.display());
            None
        }
    }
}

/// The signal self-pipes, registered: SIGTERM, SIGINT and SIGHUP end the daemon, SIGCHLD reaps.
fn signal_streams(
    poll: &Poll,
) -> Result<(mio::net::UnixStream, mio::net::UnixStream), RuntimeError> {
    let (sig_term, term_w) = mio::net::UnixStream::pair().map_err(io_err("signal pipe"))?;
    let (sig_chld, chld_w) = mio::net::UnixStream::pair().map_err(io_err("signal pipe"))?;
    let term_w = std::os::unix::net::UnixStream::from(OwnedFd::from(term_w));
    let chld_w = std::os::unix::net::UnixStream::from(OwnedFd::from(chld_w));
    for (sig, w) in [
        (signal_hook::consts::SIGTERM, &term_w),
        (signal_hook::consts::SIGINT, &term_w),
        (signal_hook::consts::SIGHUP, &term_w),
        (signal_hook::consts::SIGCHLD, &chld_w),
    ] {
        let w = w.try_clone().map_err(io_err("signal pipe"))?;
        signal_hook::low_level::pipe::register(sig, w).map_err(io_err("signal register"))?;
    }
    // SIGPIPE: a dead tmux must give EPIPE on write, not kill us.
    crate::sys::signals::ignore_sigpipe();
    let mut sig_term = sig_term;
    let mut sig_chld = sig_chld;
    poll.registry()
        .register(&mut sig_term, SIG_TERM, Interest::READABLE)
        .map_err(io_err("register"))?;
    poll.registry()
        .register(&mut sig_chld, SIG_CHLD, Interest::READABLE)
        .map_err(io_err("register"))?;
    Ok((sig_term, sig_chld))
}

/// Flow-009/013 trust material: the runtime nonce (written 0600 for sources to read) and the
/// persisted source registry.
fn trust_material(sp: &ServerPaths) -> api::Admission {
    let nonce_file = crate::daemon::admission::nonce_path(&sp.runtime_dir, &sp.key);
    let nonce = match crate::daemon::admission::create_nonce(&nonce_file) {
        Ok(n) => n,
        Err(e) => {
            // Without a nonce no source can be admitted: fail-closed, but keep serving.
            log::error!("runtime_nonce_failed path={} err={e}", nonce_file.display());
            String::new()
        }
    };
    let reg_store = crate::store::Store::open_with(
        &sp.db(),
        &crate::store::StoreOptions {
            busy_timeout: Duration::from_millis(250),
        },
    )
    .map_err(|e| log::warn!("source_registry_store_unavailable err={e}"))
    .ok();
    let registry = crate::daemon::admission::SourceRegistry::load(reg_store);
    api::Admission {
        runtime_uid: crate::sys::peercred::runtime_uid(),
        nonce,
        registry,
        traces: Default::default(),
    }
}
