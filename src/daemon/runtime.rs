//! The one mio `Poll` (docs/architecture.md): a token table, a loop that is easy to read top to
//! bottom, and timers computed from the parts' own deadlines, so an idle daemon sleeps.
//!
//! Each wake-up handles readiness (signals, the tmux control connection, the spool watch, the
//! wake-up datagram), then `step` runs the pipeline once: refresh the pane registry when due,
//! ingest hook events (gateway → store → projection), schedule screen captures for candidate
//! panes (the poller), re-resolve what changed, and publish option changes in one write.
use super::api::{self, ApiServer};
use super::codex::CodexLink;
use super::metrics::Metrics;
use super::ops::Ops;
use super::publish;
use crate::core::attention::Style;
use crate::core::classifier::process_hint;
use crate::core::screen::{ScreenInput, classify_screen};
use crate::core::types::{Health, Millis, SourceKind};
use crate::gateway::{Gateway, IngestOutcome};
use crate::paths::ServerPaths;
use crate::projection::Projection;
use crate::sources::transcript_watch::{self, TranscriptWatch};
use crate::supervisor::{Restart, RestartPolicy, Stage, Startup, Supervised};
use crate::sys::procs;
use crate::sys::watch::{Kind as WatchKind, Watcher};
use crate::tmux::client::{ClientEvent, ReplyKind, TmuxClient, server_alive};
use crate::tmux::options::{OptionsWriter, Scope};
use crate::tmux::parser::Notification;
use crate::tmux::registry::{self, Registry};
use mio::net::UnixDatagram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// How long a candidate pane may go without a capture when no change hint moved.
/// `window_activity` moves on any output, in-place redraws included, so change hints catch
/// what matters; the unconditional look is a sanity check, except for a pane in a state that
/// can end without any hook (running, waiting: Esc, an approved command, an API error), where
/// the screen is what contradicts the deterministic state and is read every second.
fn capture_interval(t: &Timing, m: &crate::projection::PaneModel) -> Millis {
    use crate::core::types::Activity;
    match m.activity() {
        Activity::Running | Activity::WaitingApproval | Activity::WaitingInput => t.capture_busy,
        _ => t.capture_quiet,
    }
}

/// Panes that hold a published agent state (`@agtmux_presence` set), one `AGTO %N` row each.
const PUBLISHED_PANES: &str = "list-panes -a -F '#{?@agtmux_presence,AGTO #{pane_id},AGTN}'";

/// A pane just created, or whose foreground command or pid just changed, is looked at again
/// (its change hints, then its process tree) after 25, 50, 100, 200, 400, 400… ms for
/// [`SETTLE_FOR_MS`] after its last change: its command settles only after the exec chain of
/// a starting program (`sh -c`, a re-exec, `env node …`) ran, and the first look often comes
/// before it. Cost: a handful of `display -p` per pane that changed, none for the rest.
const SETTLE_FIRST_MS: Millis = 25;
const SETTLE_MAX_GAP_MS: Millis = 400;
const SETTLE_FOR_MS: Millis = 2_000;

/// Re-check schedule of one settling pane.
#[derive(Debug, Clone, Copy)]
struct Settle {
    /// The last change seen (creation, command or pid).
    since: Millis,
    next_at: Millis,
    gap: Millis,
}

/// Re-attach delay after our session closed under us.
const REATTACH_MS: Millis = 50;
/// How often to look for a first session on a server that has none.
const NO_SESSION_RETRY_MS: Millis = 1_000;

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

/// Timing knobs (ms). Defaults keep an idle daemon near zero CPU.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The full `list-panes -a` (plus clients, sessions, windows), besides structure
    /// notifications: it finds agents started in panes that were plain shells and panes gone
    /// without a notification. Its cost grows with all panes, so it is slow.
    pub refresh_full: Millis,
    /// The change hints of candidate (agent) panes only, one `display -p` each: what drives
    /// screen captures. Its cost grows with agent panes.
    pub refresh_hints: Millis,
    /// Safety-net spool scan, in case a file-watch event was missed (or the state dir could
    /// only be stat-polled: this scan is then what notices appends besides the wake-up).
    pub spool_scan: Millis,
    /// Minimum gap between two captures of one pane.
    pub capture_min_gap: Millis,
    /// A capture even without change hints (see `capture_interval`): `capture_busy` for panes
    /// running or waiting, `capture_quiet` for the rest.
    pub capture_busy: Millis,
    pub capture_quiet: Millis,
    /// Re-read the process tree of agent panes this often (agent replaced in place).
    pub process_recheck: Millis,
    pub prune_every: Millis,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            refresh_full: 5_000,
            refresh_hints: 1_000,
            spool_scan: 2_000,
            capture_min_gap: 250,
            capture_busy: 1_000,
            capture_quiet: 15_000,
            process_recheck: 10_000,
            prune_every: 600_000,
        }
    }
}

impl Timing {
    /// The defaults, with `AGTMUX_FULL_REFRESH_MS` (tests) overriding the full scan's period:
    /// a test that stretches it proves that new panes and agents are found by notifications,
    /// the pane subscription and settle re-checks, not by the scan.
    pub fn from_env() -> Timing {
        let mut t = Timing::default();
        if let Some(v) = std::env::var("AGTMUX_FULL_REFRESH_MS")
            .ok()
            .and_then(|v| v.trim().parse::<Millis>().ok())
            .filter(|v| *v >= 100)
        {
            t.refresh_full = v;
        }
        t
    }
}

/// Per-pane poller bookkeeping (C-006): only panes whose screen may have changed get captured.
#[derive(Debug, Default, Clone)]
struct CaptureState {
    last_hint: Option<(u64, u32, u32, u64, String, u16, u16)>,
    last_at: Millis,
    want: bool,
    last_proc_check: Millis,
}

pub struct Runtime {
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
    registry: Registry,
    gateway: Gateway,
    projection: Projection,
    options: OptionsWriter,
    style: Style,
    captures: HashMap<String, CaptureState>,
    /// Panes whose command may still be settling (see [`SETTLE_FOR_MS`]).
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
    exit_code: i32,
    /// The per-server lock (a dup of the one `daemon::run` holds) and when to check that its
    /// file is still at the path (issue 16).
    lock: Option<std::fs::File>,
    next_lock_check: Millis,
    /// (dev, inode) of the wake socket we bound, so we never remove another daemon's.
    wake_ident: Option<(u64, u64)>,
}

/// The clock lives in the platform layer; re-exported for callers of the old path.
use crate::sys::clock::now_ms;

#[derive(Debug)]
pub struct RuntimeError(pub String);
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
        let heartbeat_timeout = registry.heartbeat_timeout;
        let admission = api::Admission {
            runtime_uid: crate::sys::peercred::runtime_uid(),
            nonce,
            registry,
            traces: Default::default(),
        };
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
            exit_code: 0,
            lock: None,
            next_lock_check: 0,
            wake_ident: socket_ident(&sp_wake),
        })
    }

    /// The per-server lock, re-checked on a slow timer (see [`super::lock_still_ours`]).
    pub fn hold_lock(&mut self, lock: Option<std::fs::File>) {
        self.lock = lock;
    }

    fn check_lock(&mut self, now: Millis) {
        if now < self.next_lock_check {
            return;
        }
        self.next_lock_check = now + LOCK_CHECK_EVERY;
        let Some(held) = self.lock.as_ref() else {
            return;
        };
        match super::lock_still_ours(&self.sp, held) {
            super::LockCheck::Held => {}
            // The old file stays open (and locked) too; the new one guards the path.
            super::LockCheck::Restored(f) => self.lock = Some(f),
            // Another process holds the path's lock. If our API socket is still the one at
            // its path, that process has not taken over (a second daemon checks our live
            // socket and leaves): keep serving and look again later. Otherwise it runs this
            // server now: go, leaving its sockets alone.
            super::LockCheck::Lost => {
                if self.api.as_ref().is_some_and(|a| a.socket_is_ours()) {
                    log::warn!("lock_contended reason=our_api_socket_still_serves");
                } else {
                    log::error!("daemon_exit reason=lock_lost");
                    self.exit_code = 1;
                    self.shutdown = true;
                }
            }
        }
    }

    /// The loop. Returns the exit code.
    pub fn run(&mut self) -> i32 {
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
                self.exit_code = 1;
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
                    SIG_TERM => {
                        drain(&mut self.sig_term);
                        log::info!("daemon_signal_shutdown");
                        self.shutdown = true;
                    }
                    SIG_CHLD => {
                        drain(&mut self.sig_chld);
                        self.reap();
                    }
                    TMUX_OUT => self.on_tmux_readable(),
                    TMUX_ERR => {
                        if let Some(t) = self.tmux.as_mut() {
                            t.drain_stderr();
                        }
                    }
                    TMUX_IN => self.flush_tmux(),
                    SPOOL_WATCH => {
                        self.spool_watch.read(&mut Vec::new());
                        self.spool_dirty = true;
                    }
                    WAKE => {
                        if let Some(w) = self.wake.as_ref() {
                            let mut b = [0u8; 64];
                            while w.recv(&mut b).is_ok() {}
                        }
                        self.spool_dirty = true;
                    }
                    TRANSCRIPTS => {
                        self.transcripts.on_readable(now_ms());
                    }
                    CODEX_APPSERVER => {
                        self.codex
                            .on_ready(ev.is_readable(), ev.is_writable(), now_ms());
                        work |= self.codex.needs_step();
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
            if super::handover::exit_requested() {
                // A newer agtmux takes over (issue 19): end like on SIGTERM, with the exit
                // code that tells our keeper not to restart us.
                log::info!("daemon_exit reason=upgrade");
                self.shutdown = true;
                self.exit_code = super::handover::UPGRADE_EXIT;
            }
        }
        self.on_shutdown();
        self.exit_code
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
        self.gateway.maybe_reopen(now);
        self.gateway.tick_delivery(now);
        self.check_lock(now);
        if now >= self.next_prune {
            self.gateway.prune(now);
            self.next_prune = now + self.timing.prune_every;
        }
        self.ops.step(self.gateway.store_mut(), now);
        self.remotes.step(self.poll.registry(), now);
        self.remote_changes();
        self.resolve_and_publish(now);
        self.notify.step(self.tmux.as_mut(), now);
        self.supervise_tick(now);
        self.api_service_pending(now);
        // Everything queued this pass (refresh, captures, option writes) goes in one write.
        self.flush_tmux();
    }

    /// What the remote streams changed: their `list` entries (pushed to subscribers) and,
    /// at the next publish, the global summaries.
    fn remote_changes(&mut self) {
        if !self.remotes.take_dirty() {
            return;
        }
        // Only the global summaries change: no pass over every local pane.
        self.remote_dirty = true;
        let changed = self.remotes.refresh_json(&mut self.remotes_json);
        if let Some(a) = self.api.as_mut() {
            for v in changed {
                let line = serde_json::json!({"v": 1, "event": "remote_host", "host": v});
                a.push_line(&line.to_string(), self.poll.registry());
            }
        }
    }

    /// A wake-up whose only news came from remote streams: publish what they changed, no
    /// pipeline pass (their cost grows with the remote panes that change, issue 24).
    fn remote_pass(&mut self, now: Millis) {
        self.remote_changes();
        if self.remote_dirty {
            self.resolve_and_publish(now);
            self.flush_tmux();
        }
    }

    // ----- tmux connection -------------------------------------------------------------

    fn connect(&mut self, now: Millis) {
        self.reconnect_at = None;
        if !server_alive(&self.sp.socket) {
            log::info!(
                "daemon_exit reason=server_gone socket={}",
                self.sp.socket.display()
            );
            self.shutdown = true;
            return;
        }
        match TmuxClient::spawn(&self.tmux_bin, &self.sp.socket) {
            Ok(c) => {
                let reg = self.poll.registry();
                let ok = reg
                    .register(&mut SourceFd(&c.stdout_fd()), TMUX_OUT, Interest::READABLE)
                    .and_then(|_| {
                        reg.register(&mut SourceFd(&c.stderr_fd()), TMUX_ERR, Interest::READABLE)
                    })
                    .and_then(|_| {
                        reg.register(&mut SourceFd(&c.stdin_fd()), TMUX_IN, Interest::WRITABLE)
                    });
                if let Err(e) = ok {
                    log::error!("tmux_register_failed err={e}");
                    self.schedule_reconnect(now);
                    return;
                }
                log::info!("tmux_control_spawned pid={}", c.pid());
                self.tmux = Some(c);
            }
            Err(e) => {
                log::warn!("tmux_spawn_failed err={e}");
                self.schedule_reconnect(now);
            }
        }
    }

    /// A control connection ended while the server lives. Not every end is a failure: the
    /// session we were attached to was closed (users kill sessions all the time), or the
    /// server has no session yet (a config that loads before the first session). Only a
    /// client that never attached for another reason, or died without `%exit`, counts
    /// against the supervisor's budget; the others re-attach at once or wait politely.
    fn reconnect_after_close(&mut self, now: Millis, was_ready: bool, no_sessions: bool) {
        if was_ready {
            log::info!("tmux_control_reattach reason=session_closed_or_detached");
            self.tmux_sup.on_ready();
            self.reconnect_at = Some(now + REATTACH_MS);
        } else if no_sessions {
            log::info!("tmux_control_waiting reason=no_sessions");
            self.reconnect_at = Some(now + NO_SESSION_RETRY_MS);
        } else {
            self.schedule_reconnect(now);
        }
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        self.schedule_reconnect_why(now, "control_client_down");
    }

    /// Flow-011: a failure of the control client is paced by its supervisor; too many put it
    /// in a hold-down, escalated in the log and in `@agtmux_daemon`.
    fn schedule_reconnect_why(&mut self, now: Millis, why: &str) {
        match self.tmux_sup.on_failure(now, why) {
            Restart::At(t) => self.reconnect_at = Some(t),
            Restart::HoldDown { until } => {
                self.reconnect_at = Some(until);
                // The control connection is what publishes options, and it is down: say it
                // with a one-shot client.
                let status = self.daemon_status();
                self.last_status = status.clone();
                let r = std::process::Command::new(&self.tmux_bin)
                    .arg("-S")
                    .arg(&self.sp.socket)
                    .args(["set-option", "-g", "@agtmux_daemon", &status])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
                log::warn!(
                    "escalate_published status={status:?} ok={}",
                    r.is_ok_and(|s| s.success())
                );
            }
        }
    }

    /// Per-step supervision upkeep: source registry timeouts and the numbers `health` and
    /// `metrics` show (supervisor, delivery, source registry).
    fn supervise_tick(&mut self, now: Millis) {
        let adm = &mut self.admission;
        // Source connections gone from the API socket: their endpoints are unreachable now.
        if let Some(a) = self.api.as_mut() {
            for c in a.take_closed() {
                if let Some(sid) = c.source_id.as_deref() {
                    adm.registry.mark_stale(sid, "connection_closed", now);
                }
                adm.traces.close(c.conn, &c.why, now);
            }
        }
        adm.registry.tick(now);
        let Some(a) = self.api.as_mut() else {
            return;
        };
        a.tick(self.poll.registry(), adm, now);
        let registry = adm.registry.json();
        a.waiting_for = self.startup.waiting_for().map(Stage::as_str).unwrap_or("");
        let codex = &self.codex.endpoint.sup;
        a.extra.insert(
            "supervisor".into(),
            serde_json::json!({
                "startup": self.startup.json(),
                "components": {
                    "tmux_control": self.tmux_sup.json(),
                    "codex_appserver": self.codex.endpoint.json(self.codex.sock_path()),
                },
                "restarts": self.tmux_sup.restarts + codex.restarts,
                "hold_downs": self.tmux_sup.hold_downs + codex.hold_downs,
            }),
        );
        a.extra
            .insert("delivery".into(), self.gateway.delivery_json(now));
        a.extra.insert("store".into(), self.gateway.store_json());
        a.extra.insert("source_registry".into(), registry);
        if !self.remotes.hosts.is_empty() {
            a.extra.insert("remotes".into(), self.remotes.health_json());
        }
    }

    fn drop_tmux(&mut self) {
        self.notify.connection_lost();
        if let Some(mut c) = self.tmux.take() {
            let reg = self.poll.registry();
            let _ = reg.deregister(&mut SourceFd(&c.stdout_fd()));
            let _ = reg.deregister(&mut SourceFd(&c.stderr_fd()));
            let _ = reg.deregister(&mut SourceFd(&c.stdin_fd()));
            c.drain_stderr();
            c.shutdown();
        }
    }

    fn on_tmux_readable(&mut self) {
        let mut evs = Vec::new();
        if let Some(t) = self.tmux.as_mut() {
            t.on_readable(&mut evs);
        }
        let now = now_ms();
        for ev in evs {
            match ev {
                ClientEvent::Ready => {
                    log::info!("tmux_control_ready");
                    self.tmux_sup.on_ready();
                    if let Some(t) = self.tmux.as_mut() {
                        t.send(registry::IDENTITY, ReplyKind::Identity);
                        t.send("show-options -g", ReplyKind::UserOptions);
                        self.notify.load_options(t);
                        // Pane states an earlier daemon published (killed before it could
                        // clear them): each is rewritten or cleared by the next publish.
                        t.send(PUBLISHED_PANES, ReplyKind::Other);
                        t.send(&registry::subscribe_panes_command(), ReplyKind::Subscribe);
                        t.send(&registry::subscribe_options_command(), ReplyKind::Other);
                    }
                    self.refresh_requested = true;
                    self.publish_all = true;
                    // Options may have been lost with a server restart: re-send everything.
                    self.options = OptionsWriter::new();
                }
                ClientEvent::Reply(kind, reply) => self.on_reply(kind, reply, now),
                ClientEvent::Notification(n) => self.on_notification(n, now),
                ClientEvent::Closed { reason } => {
                    log::info!(
                        "tmux_control_closed reason={}",
                        reason.as_deref().unwrap_or("eof")
                    );
                    let (was_ready, no_sessions) = match self.tmux.as_mut() {
                        Some(t) => {
                            t.drain_stderr();
                            (t.was_ready(), t.stderr_text().contains("no sessions"))
                        }
                        None => (false, false),
                    };
                    self.drop_tmux();
                    if server_alive(&self.sp.socket) {
                        self.reconnect_after_close(now, was_ready, no_sessions);
                    } else {
                        log::info!("daemon_exit reason=server_gone");
                        self.shutdown = true;
                    }
                }
            }
        }
        self.flush_tmux();
    }

    fn flush_tmux(&mut self) {
        if let Some(t) = self.tmux.as_mut()
            && let Err(e) = t.flush()
        {
            log::warn!("tmux_write_failed err={e}");
        }
    }

    fn reap(&mut self) {
        self.notify.reap(now_ms());
        self.remotes.reap(self.poll.registry(), now_ms());
        if let Some(t) = self.tmux.as_mut()
            && let Some(status) = t.try_reap()
        {
            log::info!("tmux_control_exited status={status}");
            // Read what is left (the %exit line), then handle the close.
            self.on_tmux_readable();
            if self.tmux.as_ref().is_some_and(|t| !t.is_closed()) {
                self.drop_tmux();
                self.schedule_reconnect(now_ms());
            }
        }
    }

    fn on_reply(&mut self, kind: ReplyKind, reply: crate::tmux::parser::Reply, now: Millis) {
        log::trace!(
            "tmux_reply kind={kind:?} ok={} lines={} first={:?}",
            reply.ok,
            reply.lines.len(),
            reply
                .lines
                .first()
                .map(|l| String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned())
        );
        match kind {
            ReplyKind::Identity => {
                let line = reply
                    .lines
                    .first()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .unwrap_or_default();
                let mut f = line.split(' ').skip(1);
                let id = format!("{}:{}", f.next().unwrap_or("?"), f.next().unwrap_or("?"));
                let changed = self.identity.as_deref() != Some(id.as_str());
                if changed {
                    log::info!(
                        "tmux_server_identity id={id} version={}",
                        f.next().unwrap_or("?")
                    );
                    if self.identity.is_some() {
                        // A new server on the same socket: nothing carries over.
                        self.projection = Projection::new(crate::sys::host::hostname());
                        self.notify = Default::default();
                        self.registry = Registry::default();
                        self.captures.clear();
                        self.settle.clear();
                    }
                    self.identity = Some(id.clone());
                    self.gateway.set_server_id(&id);
                }
                if !self.restored {
                    self.restored = true;
                }
            }
            ReplyKind::ListPanes => {
                if !reply.ok {
                    log::warn!(
                        "list_panes_failed msg={:?}",
                        reply
                            .lines
                            .first()
                            .map(|l| String::from_utf8_lossy(l).into_owned())
                    );
                    return;
                }
                let first_load = !self.registry.loaded;
                let diff = self.registry.apply(&reply.lines);
                log::debug!(
                    "registry_refresh panes={} added={} removed={} process_changed={}",
                    self.registry.panes.len(),
                    diff.added.len(),
                    diff.removed.len(),
                    diff.process_changed.len()
                );
                self.gateway.registry_refreshed(now);
                for id in &diff.added {
                    if let Some(p) = self.registry.panes.get(id) {
                        self.projection
                            .pane_added(id, &p.session_id, &p.window_id, now);
                        self.captures.entry(id.clone()).or_default().want = true;
                    }
                }
                for p in &diff.removed {
                    self.projection.pane_removed(&p.pane_id, now);
                    self.notify.forget(&p.pane_id);
                    self.captures.remove(&p.pane_id);
                    self.options.forget(&Scope::Pane(p.pane_id.clone()));
                    self.publish_all = true;
                }
                if !diff.removed.is_empty() && !first_load {
                    let gone: Vec<String> =
                        diff.removed.iter().map(|p| p.pane_id.clone()).collect();
                    self.gateway.forget_panes(&gone);
                }
                // Keep session/window ids and titles current; re-check processes where needed.
                let ids: Vec<String> = self.registry.panes.keys().cloned().collect();
                for id in ids {
                    let Some(p) = self.registry.panes.get(&id).cloned() else {
                        continue;
                    };
                    self.projection
                        .pane_added(&id, &p.session_id, &p.window_id, now);
                    self.projection.set_pane_title(&id, &p.title);
                    let cs = self.captures.entry(id.clone()).or_default();
                    let new_proc = diff.added.contains(&id) || diff.process_changed.contains(&id);
                    let agentish = self
                        .projection
                        .panes
                        .get(&id)
                        .is_some_and(|m| m.process.is_some());
                    if new_proc
                        || (agentish && now - cs.last_proc_check >= self.timing.process_recheck)
                    {
                        cs.last_proc_check = now;
                        self.recheck_process(&id, now);
                    }
                    self.check_anchor(&id);
                    if new_proc {
                        self.start_settle(&id, now);
                    }
                }
                for id in diff.focus_changed.iter().chain(diff.added.iter()) {
                    self.projection.mark_dirty(id);
                }
                if first_load {
                    // Flow-011: server identity and panes known → the gateway may ingest;
                    // state restored → the daemon stage; the API opens after the first publish.
                    self.startup.mark_ready(Stage::Gateway, now);
                    self.restore_state(now);
                    self.startup.mark_ready(Stage::Daemon, now);
                }
            }
            ReplyKind::Hints(pane) => {
                if !reply.ok {
                    // The pane is gone (no notification says so outside the attached session).
                    self.refresh_requested = true;
                    return;
                }
                let Some(line) = reply.lines.first() else {
                    return;
                };
                // Once a second per agent pane: is the process its hooks came from still
                // there? (one /proc read, no fork)
                self.check_anchor(&pane);
                match self.registry.apply_hints(&pane, line) {
                    Some(h) => {
                        let settling = self.settle.contains_key(&pane);
                        let agentish =
                            (self.projection.panes.get(&pane)).is_some_and(|m| m.process.is_some());
                        if h.process_changed {
                            // The agent may have left (or been replaced): read its tree now,
                            // and follow the pane until its command settles.
                            self.recheck_process(&pane, now);
                            self.start_settle(&pane, now);
                        } else if settling && !agentish {
                            // Same command, but a child may have appeared under it (`sh -c`
                            // forking the agent keeps `sh` in front).
                            self.recheck_process(&pane, now);
                        }
                        if h.focus_changed {
                            self.projection.mark_dirty(&pane);
                        }
                        if h.title_changed
                            && let Some(p) = self.registry.panes.get(&pane)
                        {
                            let title = p.title.clone();
                            self.projection.set_pane_title(&pane, &title);
                        }
                    }
                    None => log::debug!("hints_bad_row pane={pane}"),
                }
            }
            ReplyKind::ListClients => {
                let viewers = registry::parse_clients(&reply.lines);
                if viewers != self.registry.viewers {
                    log::info!("viewers_changed sessions={}", viewers.len());
                    self.registry.viewers = viewers;
                    let ids: Vec<String> = self.projection.panes.keys().cloned().collect();
                    for id in ids {
                        self.projection.mark_dirty(&id);
                    }
                }
            }
            ReplyKind::Capture(pane) => {
                if !reply.ok {
                    return;
                }
                let Some(p) = self.registry.panes.get(&pane) else {
                    return;
                };
                let text = reply
                    .lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                let hint = self
                    .projection
                    .panes
                    .get(&pane)
                    .and_then(|m| m.process.map(|x| x.0));
                let v = classify_screen(&ScreenInput {
                    text: &text,
                    title: &p.title,
                    command: &p.current_command,
                    cols: p.width,
                    rows: p.height,
                    provider_hint: hint,
                });
                self.projection.apply_screen(&pane, v, now);
                // A verdict the hysteresis has not taken yet (weak, or waiting for its
                // confirmation) is looked at again soon, not at the next change hint. Idle is
                // left out: its window is about time, not about more captures.
                let pending = self.projection.panes.get(&pane).is_some_and(|m| {
                    m.hysteresis.raw().is_some_and(|r| {
                        r.activity != m.hysteresis.current()
                            && r.activity != crate::core::types::Activity::Idle
                    })
                });
                if pending && let Some(cs) = self.captures.get_mut(&pane) {
                    cs.want = true;
                }
                if let Some(c) = self.captures.get(&pane) {
                    self.ops.screen_applied(&pane, c.last_at);
                }
                let is_codex = hint == Some(crate::core::types::Provider::Codex);
                self.codex.set_screen(&pane, &text, is_codex, now);
            }
            ReplyKind::Subscribe => {
                if reply.ok {
                    log::info!("tmux_subscribed name={}", registry::PANES_SUBSCRIPTION);
                } else {
                    // tmux < 3.2: new panes come through notifications and their settle
                    // re-checks; a command typed into an existing pane waits for the full scan.
                    log::info!(
                        "tmux_subscription_unavailable msg={:?}",
                        reply
                            .lines
                            .first()
                            .map(|l| String::from_utf8_lossy(l).into_owned())
                    );
                }
            }
            ReplyKind::SetOption(what) => {
                if !reply.ok {
                    log::debug!(
                        "option_write_failed what={what} msg={:?}",
                        reply
                            .lines
                            .first()
                            .map(|l| String::from_utf8_lossy(l).into_owned())
                    );
                    self.refresh_requested = true;
                }
            }
            ReplyKind::Notify(tag) => self.notify.on_reply(
                &tag,
                reply.ok,
                &reply.lines,
                (&self.projection, &self.registry),
                self.tmux.as_mut(),
                now,
            ),
            ReplyKind::UserOptions => {
                if reply.ok {
                    self.apply_user_options(&reply.lines);
                }
            }
            ReplyKind::Other => {
                if reply.lines.iter().any(|l| l.starts_with(b"AGTO ")) {
                    for l in &reply.lines {
                        let l = String::from_utf8_lossy(l);
                        if let Some(pane) = l.strip_prefix("AGTO ").map(str::trim)
                            && !pane.is_empty()
                        {
                            let scope = Scope::Pane(pane.to_string());
                            for name in publish::PANE_OPTIONS {
                                self.options.assume_set(&scope, name);
                            }
                        }
                    }
                    self.publish_all = true;
                }
                self.apply_names(&reply.lines);
            }
        }
    }

    /// Read the hooks' failure marker (one `open`, ENOENT when all is well); log changes.
    fn check_hook_failure(&mut self) {
        let f = crate::sources::spool::read_failure(&self.sp);
        if f != self.hook_failure {
            match &f {
                Some(f) => log::error!(
                    "hook_spool_write_failed count={} error={:?} marker={}",
                    f.count,
                    f.error,
                    crate::sources::spool::failure_marker(&self.sp).display()
                ),
                None => log::warn!("hook_spool_write_recovered"),
            }
            self.hook_failure = f;
            self.publish_all = true;
        }
    }

    /// The agent process a pane's hooks came from has exited: its deterministic state ends.
    fn check_anchor(&mut self, id: &str) {
        if let Some((pid, start)) = self.projection.live_anchor(id)
            && !procs::alive(pid, start)
        {
            self.projection.anchor_gone(id);
        }
    }

    /// Read a pane's foreground process tree and update its process hint.
    fn recheck_process(&mut self, id: &str, now: Millis) {
        let Some(p) = self.registry.panes.get(id) else {
            return;
        };
        let tree = procs::foreground_tree(p.pane_pid);
        let hint = process_hint(&p.current_command, &tree);
        let pid = hint.and(tree.first().map(|t| t.pid));
        self.projection.set_process(id, hint, pid, now);
    }

    /// `@agtmux-*` user options (icons, colours, theme) from `show-options -g`: the whole
    /// style is rebuilt from the defaults, so an option the user unset goes back to its default.
    /// The theme goes first (it resets icons and colours; tmux lists options sorted by name).
    fn apply_user_options(&mut self, lines: &[Vec<u8>]) {
        let mut opts: Vec<(String, String)> = lines
            .iter()
            .filter_map(|l| {
                let l = String::from_utf8_lossy(l);
                let (name, value) = l.split_once(' ')?;
                name.starts_with("@agtmux-")
                    .then(|| (name.to_string(), value.trim().trim_matches('"').to_string()))
            })
            .collect();
        opts.sort_by_key(|(name, _)| name != "@agtmux-theme");
        let mut style = Style::default();
        for (name, value) in &opts {
            if let Err(e) = style.apply_option(name, value) {
                log::debug!("user_option_ignored name={name} err={e:?}");
            }
        }
        if style != self.style {
            log::info!("user_options_applied count={}", opts.len());
        }
        self.style = style;
        self.publish_all = true;
        self.remotes.configure(
            super::remote::RemoteConfig::from_options(&opts),
            self.poll.registry(),
            now_ms(),
        );
    }

    fn on_notification(&mut self, n: Notification, now: Millis) {
        log::trace!("tmux_notification name={}", n.name());
        match n {
            Notification::SubscriptionChanged { name, value, .. }
                if name == registry::PANES_SUBSCRIPTION =>
            {
                self.on_pane_digest(&value, now);
            }
            // The plugin was sourced again: read the @agtmux-* options again.
            Notification::SubscriptionChanged { name, .. }
                if name == registry::OPTIONS_SUBSCRIPTION =>
            {
                if let Some(t) = self.tmux.as_mut() {
                    t.send("show-options -g", ReplyKind::UserOptions);
                }
            }
            // automatic-rename follows the active pane's command: look at that pane (not at
            // every pane), and keep the name for the API.
            Notification::WindowRenamed { window, name }
            | Notification::UnlinkedWindowRenamed { window, name } => {
                let name = String::from_utf8_lossy(&name).into_owned();
                self.registry.window_names.insert(window.clone(), name);
                match self.registry.active_pane_of(&window).map(str::to_string) {
                    Some(p) => self.start_settle(&p, now),
                    None => self.refresh_requested = true,
                }
            }
            Notification::WindowAdd { .. }
            | Notification::WindowClose { .. }
            | Notification::UnlinkedWindowAdd { .. }
            | Notification::UnlinkedWindowClose { .. }
            | Notification::SessionsChanged
            | Notification::SessionChanged { .. }
            | Notification::ClientSessionChanged { .. }
            | Notification::ClientDetached { .. }
            | Notification::SessionWindowChanged { .. }
            | Notification::WindowPaneChanged { .. }
            | Notification::LayoutChange { .. }
            | Notification::PaneModeChanged { .. }
            | Notification::SessionRenamed { .. } => self.refresh_requested = true,
            // Named and deliberately ignored: pane output (the client runs with no-output),
            // flow control, other subscriptions, buffers, messages and config errors (logged).
            Notification::ConfigError { message } => log::info!(
                "tmux_config_error msg={:?}",
                String::from_utf8_lossy(&message[..message.len().min(300)])
            ),
            Notification::Other { name, .. } => {
                log::debug!("tmux_notification_unknown name={name}")
            }
            Notification::Output { .. }
            | Notification::ExtendedOutput { .. }
            | Notification::Pause { .. }
            | Notification::Continue { .. }
            | Notification::SubscriptionChanged { .. }
            | Notification::Message { .. }
            | Notification::PasteBufferChanged { .. }
            | Notification::PasteBufferDeleted { .. }
            | Notification::Exit { .. } => {}
        }
    }

    /// The pane subscription's value changed: panes whose pid or foreground command moved get
    /// their process tree read now and are followed until their command settles; a pane that
    /// appeared or went asks for the full refresh. Work grows with the panes that changed.
    fn on_pane_digest(&mut self, value: &[u8], now: Millis) {
        if !self.registry.loaded {
            return;
        }
        let digest = registry::parse_pane_digest(value);
        let (changed, structure) = self.registry.apply_digest(&digest);
        if structure {
            self.refresh_requested = true;
        }
        for id in changed {
            log::debug!("pane_command_changed pane={id} via=subscription");
            self.recheck_process(&id, now);
            self.start_settle(&id, now);
        }
    }

    /// Follow a pane whose command may not have settled yet (see [`SETTLE_FOR_MS`]).
    fn start_settle(&mut self, id: &str, now: Millis) {
        let s = self.settle.entry(id.to_string()).or_insert(Settle {
            since: now,
            next_at: now + SETTLE_FIRST_MS,
            gap: SETTLE_FIRST_MS,
        });
        s.since = now;
        if s.next_at > now + SETTLE_FIRST_MS {
            s.next_at = now + SETTLE_FIRST_MS;
            s.gap = SETTLE_FIRST_MS;
        }
    }

    /// Ask for the change hints of settling panes that are due; forget panes that settled or
    /// went.
    fn settle_tick(&mut self, now: Millis) {
        let reg = &self.registry;
        self.settle
            .retain(|id, s| reg.panes.contains_key(id) && now - s.since <= SETTLE_FOR_MS);
        let Some(t) = self.tmux.as_mut() else { return };
        for (id, s) in self.settle.iter_mut() {
            if s.next_at > now {
                continue;
            }
            s.gap = (s.gap * 2).min(SETTLE_MAX_GAP_MS);
            s.next_at = now + s.gap;
            let kind = ReplyKind::Hints(id.clone());
            if !t.has_pending(&kind) {
                t.send(&registry::pane_hints_command(id), kind);
            }
        }
    }

    fn request_refresh(&mut self, now: Millis) {
        let Some(t) = self.tmux.as_mut() else { return };
        if !t.has_pending(&ReplyKind::ListPanes) {
            t.send(registry::LIST_PANES, ReplyKind::ListPanes);
            t.send(registry::LIST_CLIENTS, ReplyKind::ListClients);
            // Names for the API (replies tagged AGTS/AGTW, handled under `Other`).
            t.send(registry::LIST_SESSIONS, ReplyKind::Other);
            t.send(registry::LIST_WINDOWS, ReplyKind::Other);
        }
        self.refresh_requested = false;
        self.next_refresh = now + self.timing.refresh_full;
        self.next_hints = now + self.timing.refresh_hints;
    }

    /// The cheap tick: change hints of agent panes only.
    fn request_hints(&mut self, now: Millis) {
        self.next_hints = now + self.timing.refresh_hints;
        let Some(t) = self.tmux.as_mut() else { return };
        for (id, m) in &self.projection.panes {
            if !m.is_candidate() || !self.registry.panes.contains_key(id) {
                continue;
            }
            let kind = ReplyKind::Hints(id.clone());
            if !t.has_pending(&kind) {
                t.send(&registry::pane_hints_command(id), kind);
            }
        }
    }

    // ----- poller ----------------------------------------------------------------------

    fn next_capture_due(&self) -> Option<Millis> {
        self.captures
            .iter()
            .filter_map(|(id, c)| {
                let p = self.projection.panes.get(id).filter(|p| p.is_candidate())?;
                if c.want {
                    return Some(c.last_at + self.timing.capture_min_gap);
                }
                Some(c.last_at + capture_interval(&self.timing, p))
            })
            .min()
    }

    fn schedule_captures(&mut self, now: Millis) {
        let mut to_capture = Vec::new();
        for (id, p) in &self.registry.panes {
            let Some(m) = self.projection.panes.get(id) else {
                continue;
            };
            if !m.is_candidate() {
                continue;
            }
            let cs = self.captures.entry(id.clone()).or_default();
            let hint = p.change_hint();
            let hint = (
                hint.0,
                hint.1,
                hint.2,
                hint.3,
                hint.4.to_string(),
                hint.5,
                hint.6,
            );
            if cs.last_hint.as_ref() != Some(&hint) {
                cs.want = true;
            }
            // `window_activity` has a resolution of one second: output later in the second of
            // our last capture leaves the hint unchanged, so look once more after it.
            let settled_after = (hint.3 as Millis + 1) * 1000;
            if cs.last_at < settled_after && now >= settled_after {
                cs.want = true;
            }
            if now - cs.last_at >= capture_interval(&self.timing, m) {
                cs.want = true;
            }
            if cs.want && now - cs.last_at >= self.timing.capture_min_gap {
                cs.want = false;
                cs.last_at = now;
                cs.last_hint = Some(hint);
                to_capture.push(id.clone());
            }
        }
        if let Some(t) = self.tmux.as_mut() {
            for id in to_capture {
                if t.has_pending(&ReplyKind::Capture(id.clone())) {
                    continue;
                }
                t.send(
                    &format!("capture-pane -p -J -t {id}"),
                    ReplyKind::Capture(id),
                );
            }
        }
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

    fn resolve_and_publish(&mut self, now: Millis) {
        if !self.registry.loaded {
            return;
        }
        let reg = &self.registry;
        let changed = self.projection.resolve_dirty(now, &|id| reg.focused(id));
        self.notify.observe(&self.projection, &changed, now);
        let evidence: Vec<_> = (changed.iter())
            .filter_map(|id| Some((id.clone(), self.projection.panes.get(id)?.evidence())))
            .collect();
        self.ops
            .observe_changes(&evidence, &self.gateway.take_accepted(), now);
        if !changed.is_empty() {
            self.gateway.persist(&mut self.projection, &changed, now);
        }
        self.metrics.on_ingested(self.gateway.take_traced());
        // Source health from the gateway feeds admissibility. Hooks that cannot write the
        // spool deliver nothing: the source is down even though the spool reads fine.
        let hh = if self.hook_failure.is_some() {
            Health::Down
        } else {
            self.gateway.hooks_health()
        };
        // The spool carries Claude and Codex hook events alike. Codex hooks, though, run
        // inside Codex's app-server daemon when there is one: with that daemon gone no Codex
        // hook will come either, so its last word must not outlive it.
        let codex_hooks = if hh == Health::Healthy
            && self.codex.ever_connected()
            && self.codex.status_problem(&self.projection).is_some()
        {
            Health::Stale
        } else {
            hh
        };
        let codex_changed = self
            .projection
            .set_health(SourceKind::CodexHooks, codex_hooks);
        // Gemini, OpenCode and generic hooks come through the same spool.
        let mut others_changed = false;
        for s in [
            SourceKind::GeminiHooks,
            SourceKind::OpenCodePlugin,
            SourceKind::GenericHook,
        ] {
            others_changed |= self.projection.set_health(s, hh);
        }
        if self.projection.set_health(SourceKind::ClaudeHooks, hh)
            || codex_changed
            || others_changed
        {
            log::warn!("source_health source=claude_hooks health={hh}");
            self.gateway.record_health(
                SourceKind::ClaudeHooks,
                hh,
                match (hh, self.hook_failure.is_some()) {
                    (Health::Healthy, _) => "spool_readable",
                    (_, true) => "spool_write_failed",
                    _ => "spool_unreadable",
                },
                now,
            );
            self.publish_all = true;
        }
        let files = self.transcripts.health();
        if self
            .projection
            .set_health(SourceKind::ClaudeTranscript, files)
        {
            self.publish_all = true;
        }
        // A rollout is written by the same Codex process that runs its hooks: it is no
        // fresher than they are (with the app-server daemon gone, neither speaks).
        let rollout = if files == Health::Healthy {
            codex_hooks
        } else {
            files
        };
        if self
            .projection
            .set_health(SourceKind::CodexRollout, rollout)
        {
            self.publish_all = true;
        }
        let status = self.daemon_status();
        let remote_dirty = std::mem::take(&mut self.remote_dirty);
        if changed.is_empty() && !self.publish_all && !remote_dirty && status == self.last_status {
            self.api_push(&changed, now);
            self.observe_metrics(&changed, now_ms(), now);
            return;
        }
        self.last_status = status.clone();
        publish::publish(
            &self.projection,
            &changed,
            self.publish_all,
            &self.style,
            &status,
            &publish::Remote {
                views: self.remotes.views(),
                unreachable: self.remotes.unreachable(),
            },
            &mut self.options,
        );
        self.publish_all = false;
        let cmds = self.options.take();
        if !cmds.is_empty()
            && self.startup.is_ready(Stage::Daemon)
            && !self.startup.is_ready(Stage::Api)
            && self.startup.mark_ready(Stage::Api, now)
            && let Some(a) = self.api.as_mut()
        {
            a.ready = true;
        }
        if let Some(t) = self.tmux.as_mut() {
            for c in cmds {
                t.send(&c, ReplyKind::SetOption(String::new()));
            }
        }
        let option_ts = now_ms();
        // Clients after tmux: the option writes are queued first.
        self.api_push(&changed, now);
        self.observe_metrics(&changed, option_ts, now);
        self.flush_tmux();
    }

    /// Metrics and tracing after a publish: option writes for `changed` were queued at
    /// `option_ts`, and subscribers (if any) were pushed just now.
    fn observe_metrics(&mut self, changed: &[String], option_ts: Millis, now: Millis) {
        let client_ts = (!changed.is_empty()
            && self.api.as_ref().is_some_and(|a| a.subscribers() > 0))
        .then(now_ms);
        let hops =
            self.metrics
                .observe_published(&mut self.projection, changed, option_ts, client_ts);
        self.gateway.record_hops(&hops);
        self.metrics.tick(
            self.gateway.counts,
            self.projection.bindings.churn(),
            &self.projection,
            now,
        );
    }

    // ----- local API (C-002 client API, see api.rs) -----------------------------------

    fn api_view(&self, now: Millis) -> api::View<'_> {
        api::View {
            projection: &self.projection,
            registry: &self.registry,
            style: &self.style,
            identity: self.identity.as_deref(),
            socket: &self.sp.socket,
            tmux_connected: self.tmux.as_ref().is_some_and(|t| t.is_ready()),
            store_problem: self.gateway.store_problem(),
            metrics: Some(&self.metrics),
            ingest_counts: self.gateway.counts,
            delivery: Some(self.gateway.delivery()),
            ops: Some(&self.ops),
            remotes: (!self.remotes.hosts.is_empty()).then_some(&self.remotes_json),
            now,
        }
    }

    fn on_api(&mut self, ev: &mio::event::Event) {
        if let Some(mut a) = self.api.take() {
            // Lend the trust material for the call (the view borrows the rest of self).
            let placeholder = api::Admission {
                runtime_uid: self.admission.runtime_uid,
                nonce: String::new(),
                registry: super::admission::SourceRegistry::empty(),
                traces: Default::default(),
            };
            let mut adm = std::mem::replace(&mut self.admission, placeholder);
            a.on_event(ev, self.poll.registry(), &self.api_view(now_ms()), &mut adm);
            self.admission = adm;
            self.api = Some(a);
        }
    }

    /// Another turn for API clients with requests left (round robin, see api.rs).
    fn api_service_pending(&mut self, now: Millis) {
        if !self.api.as_ref().is_some_and(|a| a.has_pending()) {
            if let Some(a) = self.api.as_mut() {
                a.new_pass();
            }
            return;
        }
        if let Some(mut a) = self.api.take() {
            let placeholder = api::Admission {
                runtime_uid: self.admission.runtime_uid,
                nonce: String::new(),
                registry: super::admission::SourceRegistry::empty(),
                traces: Default::default(),
            };
            let mut adm = std::mem::replace(&mut self.admission, placeholder);
            a.service_pending(self.poll.registry(), &self.api_view(now), &mut adm);
            self.admission = adm;
            self.api = Some(a);
        }
    }

    fn api_push(&mut self, changed: &[String], now: Millis) {
        if let Some(mut a) = self.api.take() {
            a.push_changes(changed, self.poll.registry(), &self.api_view(now));
            self.api = Some(a);
        }
    }

    /// Session and window names from `AGTS`/`AGTW` rows.
    fn apply_names(&mut self, lines: &[Vec<u8>]) {
        if lines.iter().any(|l| l.starts_with(b"AGTS ")) {
            self.registry.session_names = registry::parse_names(lines, "AGTS")
                .into_iter()
                .map(|(id, (name, _))| (id, name))
                .collect();
        }
        if lines.iter().any(|l| l.starts_with(b"AGTW ")) {
            self.registry.window_names = registry::parse_names(lines, "AGTW")
                .into_iter()
                .map(|(id, (name, _))| (id, name))
                .collect();
        }
    }

    fn daemon_status(&self) -> String {
        let mut s = format!("{} ok", std::process::id());
        let mut problems = Vec::new();
        if self.hook_failure.is_some() {
            problems.push("hooks:spool_write_failed".to_string());
        }
        if let Some(e) = self.gateway.store_problem() {
            problems.push(format!("store:{e}"));
        }
        if let Some(h) = self.codex.status_problem(&self.projection) {
            problems.push(format!("{}:{h}", SourceKind::CodexAppServer));
        }
        for (src, h) in &self.projection.health {
            // The app-server is reported by daemon::codex: absent Codex is not a fault.
            if *src == SourceKind::CodexAppServer {
                continue;
            }
            if *h != Health::Healthy {
                problems.push(format!("{src}:{h}"));
            }
        }
        problems.extend(self.ops.status_problems());
        if self.tmux_sup.hold_until().is_some_and(|u| u > now_ms()) {
            problems.push("tmux_control:hold_down".to_string());
        }
        let escalate = problems
            .iter()
            .any(|p| p.ends_with(":hold_down") || p.ends_with("=escalate"));
        if let Some(d) = self.gateway.delivery_problem() {
            problems.push(d);
        }
        if escalate {
            problems.sort();
            return format!("{} escalate {}", std::process::id(), problems.join(","));
        }
        if !problems.is_empty() {
            problems.sort();
            s = format!("{} degraded {}", std::process::id(), problems.join(","));
        }
        s
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

/// How often the lock file is checked (a `stat`).
const LOCK_CHECK_EVERY: Millis = 2_000;

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
