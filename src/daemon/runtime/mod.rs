//! The one mio `Poll` (docs/architecture.md): a token table, a loop that is easy to read top to
//! bottom, and timers computed from the parts' own deadlines, so an idle daemon sleeps.
//!
//! Each wake-up handles readiness (signals, the tmux control connection, the spool watch, the
//! wake-up datagram), then `step` runs the pipeline once: refresh the pane registry when due,
//! ingest hook events (gateway → store → projection), schedule screen captures for candidate
//! panes (the poller), re-resolve what changed, and publish option changes in one write.
//!
//! This file holds the token table, the loop's state (grouped by the part that owns each
//! group), the loop, its deadlines and the pipeline pass; each part the loop calls lives in
//! `runtime/`: `lifecycle` (building the runtime and tearing it down), `tmux_control` (the
//! control connection),
//! `own_session` (the control client's own session, out of the user's way),
//! `registry_sync` (tmux replies and notifications → registry), `settle` (close re-checks of
//! changed panes), `poller` (screen captures), `publish_pass` (resolve and publish), `health`
//! (source health and `@agtmux_daemon`), `local_api` (what the API server is lent),
//! `lock_watch` (the per-server lock) and `timing` (the periods).
mod health;
mod lifecycle;
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

pub(crate) use lifecycle::socket_ident;

use super::api;
use super::codex::CodexLink;
use crate::core::types::Millis;
use crate::exit::ExitCode;
use crate::gateway::{Gateway, IngestOutcome};
use crate::paths::ServerPaths;
use crate::projection::Projection;
use crate::sources::transcript_watch::{self, TranscriptWatch};
use crate::supervisor::Stage;
use crate::sys::clock::now_ms;
use crate::sys::watch::Watcher;
use crate::tmux::registry::Registry;
use health::SelfHealth;
use local_api::LocalApi;
use lock_watch::LockWatch;
use mio::net::UnixDatagram;
use mio::{Events, Poll, Token};
use poller::Screens;
use publish_pass::Publish;
use std::io::{self, Read};
use std::time::Duration;
use timing::{Due, Timing};
use tmux_control::TmuxSide;

// The token table: every readiness source of the one `Poll`.
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
// Remote hosts' streams: two tokens per host from `remote::TOKEN_BASE` (`remote::owns`).
// The API: its listener at `api::LISTENER`, its clients above it (`api::owns`).

/// What a wake-up's events ask of the loop, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pass {
    /// Nothing: Codex traffic that changed nothing (streaming deltas, read and dropped).
    None,
    /// Publish what remote streams changed, no pipeline pass (`remote_pass`).
    Remote,
    /// The pipeline pass (`step`).
    Full,
}

/// The loop's state, grouped by who owns it: each `runtime/*.rs` part works on its group.
pub(crate) struct Runtime {
    poll: Poll,
    sp: ServerPaths,
    /// Readiness that only says "look again": signals, the spool's watch, the wake-up datagram.
    wakeups: Wakeups,
    /// The control connection and what it learnt of the server (`tmux_control.rs`).
    tmux: TmuxSide,
    registry: Registry,
    gateway: Gateway,
    projection: Projection,
    /// Sources besides the hook spool (the gateway's): Codex, transcripts, remote hosts.
    sources: Sources,
    /// Screen captures and settle re-checks, per pane (`poller.rs`, `settle.rs`).
    screens: Screens,
    /// What goes back to tmux and whether it must all go again (`publish_pass.rs`).
    publish: Publish,
    /// When each periodic look is next due, and what asks for one now (`timing.rs`).
    due: Due,
    /// The local API server and the trust material lent to it (`local_api.rs`).
    api: LocalApi,
    /// What the daemon knows of its own health (`health.rs`).
    health: SelfHealth,
    /// The per-server lock and its check (`lock_watch.rs`).
    lock: LockWatch,
    /// Whether and how the loop ends (the lock lost, signals, handover).
    life: Life,
}

/// Readiness sources whose only news is "something changed, look again".
struct Wakeups {
    sig_term: mio::net::UnixStream,
    sig_chld: mio::net::UnixStream,
    /// The state dir's watch (the spool lives there).
    spool_watch: Watcher,
    wake: Option<UnixDatagram>,
    /// (dev, inode) of the wake socket we bound, so we never remove another daemon's.
    wake_ident: Option<(u64, u64)>,
}

/// Sources the loop drives itself (the hook spool is the gateway's).
struct Sources {
    codex: CodexLink,
    /// C-007 file source: Claude transcripts, for turn ends no hook reports.
    transcripts: TranscriptWatch,
    /// Remote hosts' streams over ssh (issue 24), and their `list` section, rebuilt on change.
    remotes: super::remote::Remotes,
    remotes_json: serde_json::Value,
}

/// How the loop ends.
struct Life {
    shutdown: bool,
    exit_code: ExitCode,
}

impl Runtime {
    /// The loop. Returns the exit code.
    pub fn run(&mut self) -> ExitCode {
        log::info!(
            "daemon_start pid={} server={} key={}",
            std::process::id(),
            self.sp.socket.display(),
            self.sp.key
        );
        let mut events = Events::with_capacity(64);
        while !self.life.shutdown {
            if let Err(e) = self.wait(&mut events) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll_failed err={e}");
                self.life.exit_code = ExitCode::Failure;
                break;
            }
            // A timeout (no event) is a deadline: the pipeline pass.
            let mut pass = if events.is_empty() {
                Pass::Full
            } else {
                Pass::None
            };
            for ev in events.iter() {
                pass = pass.max(self.on_event(ev));
            }
            let now = now_ms();
            if pass == Pass::Full || self.next_deadline().is_some_and(|d| d <= now) {
                self.step(now);
            } else if pass == Pass::Remote {
                self.remote_pass(now);
            }
            self.check_handover();
        }
        self.on_shutdown();
        self.life.exit_code
    }

    /// Sleep until an event or the next deadline (at most a minute).
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let now = now_ms();
        let timeout = self
            .next_deadline()
            .map(|d| Duration::from_millis((d - now).clamp(0, 60_000) as u64));
        self.poll.poll(events, timeout)
    }

    /// One event, routed by the token table; says what pass it needs.
    fn on_event(&mut self, ev: &mio::event::Event) -> Pass {
        match ev.token() {
            SIG_TERM => self.on_sig_term(),
            SIG_CHLD => self.on_sig_chld(),
            TMUX_OUT => self.on_tmux_readable(),
            TMUX_ERR => self.on_tmux_stderr(),
            TMUX_IN => self.flush_tmux(),
            SPOOL_WATCH => self.on_spool_watch(),
            WAKE => self.on_wake(),
            TRANSCRIPTS => {
                self.sources.transcripts.on_readable(now_ms());
            }
            CODEX_APPSERVER => return self.on_codex(ev),
            t if api::owns(t) => self.on_api(ev),
            t if super::remote::owns(t) => {
                let reg = self.poll.registry();
                self.sources.remotes.on_ready(t, reg, now_ms());
                return Pass::Remote;
            }
            _ => {}
        }
        Pass::Full
    }

    // ----- readiness handlers, one per token ---------------------------------------------

    fn on_sig_term(&mut self) {
        drain(&mut self.wakeups.sig_term);
        log::info!("daemon_signal_shutdown");
        self.life.shutdown = true;
    }

    fn on_sig_chld(&mut self) {
        drain(&mut self.wakeups.sig_chld);
        self.reap();
    }

    /// The state dir changed (the spool appended to or re-created).
    fn on_spool_watch(&mut self) {
        self.wakeups.spool_watch.read(&mut Vec::new());
        self.due.spool_dirty = true;
    }

    /// A hook's wake-up datagram: the spool has news.
    fn on_wake(&mut self) {
        if let Some(w) = self.wakeups.wake.as_ref() {
            let mut b = [0u8; 64];
            while w.recv(&mut b).is_ok() {}
        }
        self.due.spool_dirty = true;
    }

    /// Codex app-server traffic: a pipeline pass only when it changed something the pipeline
    /// must see (no per-delta work).
    fn on_codex(&mut self, ev: &mio::event::Event) -> Pass {
        let codex = &mut self.sources.codex;
        codex.on_ready(ev.is_readable(), ev.is_writable(), now_ms());
        if codex.needs_step() {
            Pass::Full
        } else {
            Pass::None
        }
    }

    /// A newer agtmux takes over (issue 19): end like on SIGTERM, with the exit code that
    /// tells our keeper not to restart us.
    fn check_handover(&mut self) {
        if super::handover::exit_requested() {
            log::info!("daemon_exit reason=upgrade");
            self.life.shutdown = true;
            self.life.exit_code = ExitCode::Upgrade;
        }
    }

    /// The earliest deadline of any part; `Some(0)` when work is waiting now.
    fn next_deadline(&self) -> Option<Millis> {
        let waiting_now = self.due.spool_dirty
            || self.due.refresh_requested
            || self.api.server.as_ref().is_some_and(|a| a.has_pending());
        [
            Some(self.due.next_spool_scan),
            Some(self.due.next_prune),
            self.tmux.reconnect_at,
            self.sources.codex.next_deadline(),
            self.gateway.delivery_deadline(),
            self.api.admission.registry.next_deadline(),
            self.health.ops.next_deadline(now_ms()),
            self.sources.transcripts.next_deadline(),
            self.publish.notify.next_deadline(),
            self.sources.remotes.next_deadline(),
            waiting_now.then_some(0),
        ]
        .into_iter()
        .chain(self.tmux_deadlines())
        .flatten()
        .min()
    }

    /// Deadlines that only count with the control connection up: the full refresh, change
    /// hints, the projection's timers, captures and settle re-checks.
    fn tmux_deadlines(&self) -> [Option<Millis>; 5] {
        if !self.tmux.is_ready() {
            return [None; 5];
        }
        let candidates = self.projection.panes.values().any(|p| p.is_candidate());
        [
            Some(self.due.next_refresh),
            candidates.then_some(self.due.next_hints),
            self.projection.next_deadline(),
            self.next_capture_due(),
            self.screens.settle.values().map(|s| s.next_at).min(),
        ]
    }

    /// One pass of the pipeline, in order: tmux, sources in, screens, store upkeep, remote
    /// hosts, resolve and publish, notifications, the API; then one write to tmux.
    fn step(&mut self, now: Millis) {
        let ready = self.tmux_due(now);
        self.spool_due(now);
        self.codex_pass(now);
        // Ingest only once we know the server and its panes, so events can be validated
        // (Flow-011: the gateway stage gates ingest).
        if self.due.spool_dirty && self.can_ingest() {
            self.due.spool_dirty = false;
            self.ingest(now);
        }
        self.transcripts_pass(now);
        if ready {
            let tmux = self.tmux.client.as_mut();
            self.screens.settle_tick(&self.registry, tmux, now);
            self.schedule_captures(now);
        }
        self.store_upkeep(now);
        self.sources.remotes.step(self.poll.registry(), now);
        self.remote_changes(now);
        self.resolve_and_publish(now);
        self.publish.notify.step(self.tmux.client.as_mut(), now);
        self.supervise_tick(now);
        self.api_service_pending(now);
        // Everything queued this pass (refresh, captures, option writes) goes in one write.
        self.flush_tmux();
    }

    /// Connect when due; then ask for the full refresh or the change hints when due. True
    /// when the control connection is up.
    fn tmux_due(&mut self, now: Millis) -> bool {
        if self.tmux.reconnect_at.is_some_and(|r| r <= now) {
            self.connect(now);
        }
        let ready = self.tmux.is_ready();
        if ready && (self.due.refresh_requested || now >= self.due.next_refresh) {
            self.request_refresh(now);
        } else if ready && now >= self.due.next_hints {
            self.request_hints(now);
        }
        ready
    }

    /// The spool's safety-net scan when due, and the hooks' failure marker when it may have
    /// news.
    fn spool_due(&mut self, now: Millis) {
        if now >= self.due.next_spool_scan {
            self.due.spool_dirty = true;
            self.due.next_spool_scan = now + self.due.timing.spool_scan;
        }
        if self.due.spool_dirty {
            self.check_hook_failure();
        }
    }

    /// Codex: observer timers, thread bindings, app-server events through the gateway.
    fn codex_pass(&mut self, now: Millis) {
        let codex_ready = self.publish.restored && self.registry.loaded;
        if self.sources.codex.step(
            self.poll.registry(),
            CODEX_APPSERVER,
            &mut self.projection,
            &mut self.gateway,
            &mut self.api.admission.registry,
            &mut self.api.admission.traces,
            codex_ready,
            now,
        ) {
            self.publish.all = true;
        }
    }

    /// C-007: follow the transcripts the hooks named; what they say goes through the gateway
    /// like any source (stored, deduplicated, cursor committed). Files the kernel does not
    /// watch are stat-polled here when due.
    fn transcripts_pass(&mut self, now: Millis) {
        let transcripts = &mut self.sources.transcripts;
        transcripts.on_tick(now);
        for r in self.gateway.take_transcript_requests() {
            match r.path {
                Some(p) => transcripts.watch(r.provider, &r.session, &r.pane, &p),
                None => transcripts.unwatch(&r.session),
            }
        }
        if self.can_ingest() {
            while let IngestOutcome::More = self.gateway.ingest_source(
                &mut self.sources.transcripts,
                transcript_watch::CURSOR,
                &mut self.projection,
                now,
            ) {}
        }
    }

    /// Sources are ingested once the last state is restored and the panes are known.
    fn can_ingest(&self) -> bool {
        self.publish.restored
            && self.registry.loaded
            && self.health.startup.is_ready(Stage::Gateway)
    }

    /// The store and what hangs on it: reopen after a failure, redelivery, the lock check,
    /// pruning, the guardrails.
    fn store_upkeep(&mut self, now: Millis) {
        let store_gen = self.gateway.store_generation();
        self.gateway.maybe_reopen(now);
        if self.gateway.store_generation() != store_gen {
            self.api.admission.registry.reattach(&self.sp.db());
        }
        self.gateway.tick_delivery(now);
        self.check_lock(now);
        if now >= self.due.next_prune {
            self.gateway.prune(now);
            self.due.next_prune = now + self.due.timing.prune_every;
        }
        self.health.ops.step(self.gateway.store_mut(), now);
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
                    self.due.refresh_requested = true;
                    self.due.spool_dirty = true;
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
        self.publish.all = true;
    }
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
