//! The one mio `Poll` (docs/architecture.md): a token table, a loop that is easy to read top to
//! bottom, and timers computed from the parts' own deadlines, so an idle daemon sleeps.
//!
//! Each wake-up handles readiness (signals, the tmux control connection, the spool watch, the
//! wake-up datagram), then `step` runs the pipeline once: refresh the pane registry when due,
//! ingest hook events (gateway → store → projection), schedule screen captures for candidate
//! panes (the poller), re-resolve what changed, and publish option changes in one write.
//!
//! This file holds the token table, the loop, its deadlines and the pipeline pass; each part
//! the loop calls lives in `runtime/`: `tmux_control` (the control connection),
//! `own_session` (the control client's own session, out of the user's way),
//! `registry_sync` (tmux replies and notifications → registry), `settle` (close re-checks of
//! changed panes), `poller` (screen captures), `publish_pass` (resolve and publish), `health`
//! (source health and `@agtmux_daemon`), `local_api` (what the API server is lent),
//! `lock_watch` (the per-server lock) and `timing` (the periods).
mod health;
mod local_api;
mod lock_watch;
mod own_session;
mod poller;
mod publish_pass;
mod registry_sync;
mod remote_pass;
mod settle;
mod timing;
mod tmux_control;

use super::api::{self, ApiServer};
use super::codex::CodexLink;
use super::metrics::Metrics;
use super::ops::Ops;
use crate::core::attention::Style;
use crate::core::types::Millis;
use crate::exit::ExitCode;
use crate::gateway::{Gateway, IngestOutcome};
use crate::paths::ServerPaths;
use crate::projection::Projection;
use crate::sources::transcript_watch::{self, TranscriptWatch};
use crate::supervisor::{RestartPolicy, Stage, Startup, Supervised};
use crate::sys::clock::now_ms;
use crate::sys::watch::{Kind as WatchKind, Watcher};
use crate::tmux::client::{ReplyKind, TmuxClient};
use crate::tmux::options::OptionsWriter;
use crate::tmux::registry::Registry;
use mio::net::UnixDatagram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use poller::CaptureState;
use settle::Settle;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::time::Duration;
use timing::Timing;

// The token table.
const SIG_TERM: Token = Token(0);
const SIG_CHLD: Token = Token(1);
const TMUX_OUT: Token = Token(2);
const TMUX_IN: Token = Token(3);
const TMUX_ERR: Token = Token(4);
/// The state dir's watch (the spool appended to or re-created): `sys::watch`.
const SPOOL_WATCH: Token = Token(5);
const WAKE: Token = Token(6);
/// The Codex app-server observer's stream (daemon::codex).
const CODEX_APPSERVER: Token = Token(7);
/// C-007: the file watch on live sessions' transcripts (sources::transcript_watch).
const TRANSCRIPTS: Token = Token(8);

pub(crate) struct Runtime {
    poll: Poll,
    sp: ServerPaths,
    tmux_bin: String,
    timing: Timing,
    sig_term: mio::net::UnixStream,
    sig_chld: mio::net::UnixStream,
    tmux: Option<TmuxClient>,
    /// Flow-011: restart pacing and hold-down of the control client.
    tmux_sup: Supervised,
    /// Flow-011: the start stages, each gating the next.
    startup: Startup,
    reconnect_at: Option<Millis>,
    identity: Option<String>,
    /// Our window in our own session and the session the control client came from
    /// (`control_session::OWN`), for this connection.
    own_window: Option<(String, String)>,
    /// The server had no session at the last connect attempt (logged once).
    waiting_for_session: bool,
    registry: Registry,
    gateway: Gateway,
    projection: Projection,
    options: OptionsWriter,
    style: Style,
    captures: HashMap<String, CaptureState>,
    /// Panes whose command may still be settling (see `settle.rs`).
    settle: HashMap<String, Settle>,
    codex: CodexLink,
    /// C-007 file source: Claude transcripts, for turn ends no hook reports.
    transcripts: TranscriptWatch,
    /// C-013: SLO guardrails and Flow-010 snapshots.
    ops: Ops,
    /// The state dir's watch (the spool lives there).
    spool_watch: Watcher,
    wake: Option<UnixDatagram>,
    /// The local client API (C-002); `None` when its socket could not be bound.
    api: Option<ApiServer>,
    /// Flow-009/013 trust material: runtime nonce, source registry (C-014), connection
    /// traces. Lent to the API per call; the Codex endpoint uses the same registry.
    admission: api::Admission,
    /// Rolling-window metrics and event traces (daemon::metrics).
    metrics: Metrics,
    spool_dirty: bool,
    /// The hooks' spool write failure (`sources::spool::record_failure`), while it stands.
    hook_failure: Option<crate::sources::spool::HookFailure>,
    next_refresh: Millis,
    next_hints: Millis,
    next_spool_scan: Millis,
    next_prune: Millis,
    refresh_requested: bool,
    publish_all: bool,
    restored: bool,
    /// The `@agtmux_daemon` value last published.
    last_status: String,
    /// Notifications on attention (issue 21).
    notify: super::notify::Notify,
    /// Remote hosts' streams over ssh (issue 24), and their `list` section, rebuilt on change.
    remotes: super::remote::Remotes,
    remotes_json: serde_json::Value,
    /// A remote host changed what the global summaries count: publish them.
    remote_dirty: bool,
    shutdown: bool,
    exit_code: ExitCode,
    /// The per-server lock (a dup of the one `daemon::run` holds) and when to check that its
    /// file is still at the path (issue 16).
    lock: Option<std::fs::File>,
    next_lock_check: Millis,
    /// (dev, inode) of the wake socket we bound, so we never remove another daemon's.
    wake_ident: Option<(u64, u64)>,
}

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
        let wake = bind_wake(&sp);
        let sp_wake = sp.wake_socket();
        let mut wake = wake;
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
            sp,
            tmux_bin,
            timing: Timing::from_env(),
            sig_term,
            sig_chld,
            tmux: None,
            tmux_sup: Supervised::new("tmux_control", RestartPolicy::from_env()),
            startup,
            reconnect_at: Some(0),
            identity: None,
            own_window: None,
            waiting_for_session: false,
            registry: Registry::default(),
            gateway,
            projection: Projection::new(hostname),
            options: OptionsWriter::new(),
            style: Style::default(),
            notify: Default::default(),
            remotes: super::remote::Remotes::new(RestartPolicy::from_env()),
            remotes_json: serde_json::Value::Array(Vec::new()),
            remote_dirty: false,
            captures: HashMap::new(),
            settle: HashMap::new(),
            codex: CodexLink::new(now_ms(), RestartPolicy::from_env(), heartbeat_timeout),
            transcripts,
            ops,
            spool_watch,
            wake,
            api,
            admission,
            metrics: Metrics::new(now_ms()),
            spool_dirty: true,
            hook_failure: None,
            next_refresh: 0,
            next_hints: 0,
            next_spool_scan: 0,
            next_prune: 0,
            refresh_requested: true,
            publish_all: true,
            restored: false,
            last_status: String::new(),
            shutdown: false,
            exit_code: ExitCode::Ok,
            lock: None,
            next_lock_check: 0,
            wake_ident: socket_ident(&sp_wake),
        })
    }

    /// The loop. Returns the exit code.
    pub fn run(&mut self) -> ExitCode {
        log::info!(
            "daemon_start pid={} server={} key={}",
            std::process::id(),
            self.sp.socket.display(),
            self.sp.key
        );
        let mut events = Events::with_capacity(64);
        while !self.shutdown {
            let now = now_ms();
            let timeout = self
                .next_deadline()
                .map(|d| Duration::from_millis((d - now).clamp(0, 60_000) as u64));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll_failed err={e}");
                self.exit_code = ExitCode::Failure;
                break;
            }
            // A wake-up whose only news is Codex traffic that changed nothing (streaming
            // deltas, read and dropped) runs no pipeline pass: no per-delta work.
            let mut work = events.is_empty();
            // Remote streams' lines need no pipeline pass either: only what they change
            // is published (`remote_pass`).
            let mut remote_work = false;
            for ev in events.iter() {
                if ev.token() != CODEX_APPSERVER && !super::remote::owns(ev.token()) {
                    work = true;
                }
                match ev.token() {
                    SIG_TERM => self.on_sig_term(),
                    SIG_CHLD => self.on_sig_chld(),
                    TMUX_OUT => self.on_tmux_readable(),
                    TMUX_ERR => self.on_tmux_stderr(),
                    TMUX_IN => self.flush_tmux(),
                    SPOOL_WATCH => self.on_spool_watch(),
                    WAKE => self.on_wake(),
                    TRANSCRIPTS => {
                        self.transcripts.on_readable(now_ms());
                    }
                    CODEX_APPSERVER => {
                        work |= self.on_codex(ev);
                    }
                    t if api::owns(t) => self.on_api(ev),
                    t if super::remote::owns(t) => {
                        self.remotes.on_ready(t, self.poll.registry(), now_ms());
                        remote_work = true;
                    }
                    _ => {}
                }
            }
            let now = now_ms();
            if work || self.next_deadline().is_some_and(|d| d <= now) {
                self.step(now);
            } else if remote_work {
                self.remote_pass(now);
            }
            self.check_handover();
        }
        self.on_shutdown();
        self.exit_code
    }

    // ----- readiness handlers, one per token ---------------------------------------------

    fn on_sig_term(&mut self) {
        drain(&mut self.sig_term);
        log::info!("daemon_signal_shutdown");
        self.shutdown = true;
    }

    fn on_sig_chld(&mut self) {
        drain(&mut self.sig_chld);
        self.reap();
    }

    /// The state dir changed (the spool appended to or re-created).
    fn on_spool_watch(&mut self) {
        self.spool_watch.read(&mut Vec::new());
        self.spool_dirty = true;
    }

    /// A hook's wake-up datagram: the spool has news.
    fn on_wake(&mut self) {
        if let Some(w) = self.wake.as_ref() {
            let mut b = [0u8; 64];
            while w.recv(&mut b).is_ok() {}
        }
        self.spool_dirty = true;
    }

    /// Codex app-server traffic; true when it changed something the pipeline must see.
    fn on_codex(&mut self, ev: &mio::event::Event) -> bool {
        self.codex
            .on_ready(ev.is_readable(), ev.is_writable(), now_ms());
        self.codex.needs_step()
    }

    /// A newer agtmux takes over (issue 19): end like on SIGTERM, with the exit code that
    /// tells our keeper not to restart us.
    fn check_handover(&mut self) {
        if super::handover::exit_requested() {
            log::info!("daemon_exit reason=upgrade");
            self.shutdown = true;
            self.exit_code = ExitCode::Upgrade;
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let mut d = vec![self.next_spool_scan, self.next_prune];
        if let Some(r) = self.reconnect_at {
            d.push(r);
        }
        if let Some(x) = self.codex.next_deadline() {
            d.push(x);
        }
        if let Some(x) = self.gateway.delivery_deadline() {
            d.push(x);
        }
        if let Some(x) = self.admission.registry.next_deadline() {
            d.push(x);
        }
        if let Some(x) = self.ops.next_deadline(now_ms()) {
            d.push(x);
        }
        if let Some(x) = self.transcripts.next_deadline() {
            d.push(x);
        }
        if let Some(x) = self.notify.next_deadline() {
            d.push(x);
        }
        if let Some(x) = self.remotes.next_deadline() {
            d.push(x);
        }
        if self.tmux.as_ref().is_some_and(|t| t.is_ready()) {
            d.push(self.next_refresh);
            if self.projection.panes.values().any(|p| p.is_candidate()) {
                d.push(self.next_hints);
            }
            if let Some(x) = self.projection.next_deadline() {
                d.push(x);
            }
            if let Some(x) = self.next_capture_due() {
                d.push(x);
            }
            if let Some(x) = self.settle.values().map(|s| s.next_at).min() {
                d.push(x);
            }
        }
        if self.spool_dirty
            || self.refresh_requested
            || self.api.as_ref().is_some_and(|a| a.has_pending())
        {
            d.push(0);
        }
        d.into_iter().min()
    }

    /// One pass of the pipeline.
    fn step(&mut self, now: Millis) {
        if self.reconnect_at.is_some_and(|r| r <= now) {
            self.connect(now);
        }
        let ready = self.tmux.as_ref().is_some_and(|t| t.is_ready());
        if ready && (self.refresh_requested || now >= self.next_refresh) {
            self.request_refresh(now);
        } else if ready && now >= self.next_hints {
            self.request_hints(now);
        }
        if now >= self.next_spool_scan {
            self.spool_dirty = true;
            self.next_spool_scan = now + self.timing.spool_scan;
        }
        if self.spool_dirty {
            self.check_hook_failure();
        }
        // Codex: observer timers, thread bindings, app-server events through the gateway.
        let codex_ready = self.restored && self.registry.loaded;
        if self.codex.step(
            self.poll.registry(),
            CODEX_APPSERVER,
            &mut self.projection,
            &mut self.gateway,
            &mut self.admission.registry,
            &mut self.admission.traces,
            codex_ready,
            now,
        ) {
            self.publish_all = true;
        }
        // Ingest only once we know the server and its panes, so events can be validated
        // (Flow-011: the gateway stage gates ingest).
        if self.spool_dirty
            && self.restored
            && self.registry.loaded
            && self.startup.is_ready(Stage::Gateway)
        {
            self.spool_dirty = false;
            self.ingest(now);
        }
        // C-007: follow the transcripts the hooks named; what they say goes through the
        // gateway like any source (stored, deduplicated, cursor committed). Files the kernel
        // does not watch are stat-polled here when due.
        self.transcripts.on_tick(now);
        for r in self.gateway.take_transcript_requests() {
            match r.path {
                Some(p) => self.transcripts.watch(r.provider, &r.session, &r.pane, &p),
                None => self.transcripts.unwatch(&r.session),
            }
        }
        if self.restored && self.registry.loaded && self.startup.is_ready(Stage::Gateway) {
            while let IngestOutcome::More = self.gateway.ingest_source(
                &mut self.transcripts,
                transcript_watch::CURSOR,
                &mut self.projection,
                now,
            ) {}
        }
        if ready {
            self.settle_tick(now);
            self.schedule_captures(now);
        }
        let store_gen = self.gateway.store_generation();
        self.gateway.maybe_reopen(now);
        if self.gateway.store_generation() != store_gen {
            self.admission.registry.reattach(&self.sp.db());
        }
        self.gateway.tick_delivery(now);
        self.check_lock(now);
        if now >= self.next_prune {
            self.gateway.prune(now);
            self.next_prune = now + self.timing.prune_every;
        }
        self.ops.step(self.gateway.store_mut(), now);
        self.remotes.step(self.poll.registry(), now);
        self.remote_changes(now);
        self.resolve_and_publish(now);
        self.notify.step(self.tmux.as_mut(), now);
        self.supervise_tick(now);
        self.api_service_pending(now);
        // Everything queued this pass (refresh, captures, option writes) goes in one write.
        self.flush_tmux();
    }

    // ----- ingest ----------------------------------------------------------------------

    fn ingest(&mut self, now: Millis) {
        loop {
            match self
                .gateway
                .ingest(&mut self.projection, &self.registry, now)
            {
                IngestOutcome::Done => break,
                IngestOutcome::More => continue,
                IngestOutcome::NeedRefresh => {
                    self.refresh_requested = true;
                    self.spool_dirty = true;
                    break;
                }
            }
        }
    }

    /// After a restart against the same server: the last state goes back into the options
    /// before any new event, then reconciles with what the panes show now.
    fn restore_state(&mut self, now: Millis) {
        let n = self.gateway.restore(&mut self.projection, now);
        // Logged even for none: the sign that restoring is over.
        log::info!("state_restored panes={n}");
        self.publish_all = true;
    }

    fn on_shutdown(&mut self) {
        log::info!("daemon_stop");
        self.remotes.shutdown(self.poll.registry());
        self.ops.on_shutdown(self.gateway.store_mut(), now_ms());
        // Clear @agtmux_daemon so the status line does not claim a daemon that is gone.
        if let Some(t) = self.tmux.as_mut()
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
        if let Some(mut a) = self.api.take() {
            a.shutdown(self.poll.registry());
        }
        // Only our own: a daemon that took over this server has its own socket there.
        let wake = self.sp.wake_socket();
        if self.wake_ident.is_some() && socket_ident(&wake) == self.wake_ident {
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

fn drain(s: &mut mio::net::UnixStream) {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
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
    let nonce_file = super::admission::nonce_path(&sp.runtime_dir, &sp.key);
    let nonce = match super::admission::create_nonce(&nonce_file) {
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
    let registry = super::admission::SourceRegistry::load(reg_store);
    api::Admission {
        runtime_uid: crate::sys::peercred::runtime_uid(),
        nonce,
        registry,
        traces: Default::default(),
    }
}
