//! The Codex half of the daemon (C-004, Flow-001/-003/-005 for Codex): owns the app-server
//! observer inside the one mio loop, feeds its events through the gateway like any source, and
//! binds Codex threads to panes.
//!
//! WHY a separate part: Codex events name a thread, never a pane. Hooks run inside the shared
//! app-server daemon, so their `$TMUX_PANE` is trusted only when the hook's parent lives in that
//! pane's process tree (checked when the spool is decoded); the app-server names no pane at all.
//! So this part keeps, per thread, the pane it was bound to by `codex_correlate` (trusted hook
//! pane > prompt text on exactly one Codex pane's screen > unique TUI cwd) and hands that map to
//! the gateway, which routes events that carry no pane.
//!
//! What it owns:
//! - the observer, its mio token registration (re-registered on every new stream) and its
//!   timers; which socket it uses, when it (re)connects and whether the listener is trusted is
//!   the supervised, registered endpoint's call (`daemon::codex_endpoint`: Flow-011 restarts,
//!   Flow-009 admission, Flow-013 lifecycle);
//! - the socket discovery: `$AGTMUX_CODEX_SOCK`, else `$CODEX_HOME` (else `~/.codex`) +
//!   `app-server-control/app-server-control.sock`;
//! - source health: healthy while connected and initialized, stale while (re)handshaking or
//!   stalled, down otherwise; the projection gets it so panes fall back to the screen and are
//!   re-promoted when events flow again. `@agtmux_daemon` only shows the app-server as degraded
//!   when a Codex pane exists and a Codex daemon is or was there: no Codex at all is absence,
//!   not a fault;
//! - thread ↔ pane bindings with confidence and reason (also written to
//!   `PaneModel::codex_binding` for `explain`), and the last screen text of Codex panes.
//!
//! Binding rules on top of `codex_correlate` (which never gives one thread two panes):
//! - a pane holds one thread; a thread bound by prompt evidence takes the pane over;
//! - cwd-only evidence (confidence 70) is refused when another live, unbound thread shares the
//!   cwd and has been active at least as recently (idle threads left loaded in the shared daemon
//!   must not grab a pane); the timing-only match (45) is too weak and stays undecided;
//! - undecided threads stay unbound: their events are stored as ignored (`unbound_thread`), the
//!   pane stays heuristic, and once the thread binds its latest state per source is re-applied
//!   to the pane (so nothing waits for the next event);
//! - a cwd-only binding yields to a thread of that cwd that was active more recently than the
//!   bound one (a TUI shows one thread at a time: the newer one is on screen);
//! - a binding ends when its thread closes, its pane is gone or no longer runs Codex, or a
//!   trusted hook names another pane.
use super::admission::SourceRegistry;
use super::codex_endpoint::CodexEndpoint;
use super::conntrace::ConnTraces;
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::lru::least_recent;
use crate::core::text::tail;
use crate::core::types::{Health, Millis, PaneId, Provider, SourceKind};
use crate::gateway::{Gateway, IngestOutcome};
use crate::projection::Projection;
use crate::sources::codex_appserver::CodexObserver;
use crate::sources::codex_correlate::{Binding, PaneCandidate, ThreadEvidence, correlate};
use crate::supervisor::RestartPolicy;
use crate::sys::procs;
use mio::{Interest, Token};
use std::collections::HashMap;
use std::path::PathBuf;

/// Cursor id of the app-server observer in `cursor_state_v2`.
pub(crate) const CURSOR: &str = "codex_appserver";
/// Environment override of the control socket path (tests, unusual installs).
pub(crate) const SOCK_ENV: &str = "AGTMUX_CODEX_SOCK";
/// Bytes of screen text kept per Codex pane (the tail of the capture).
const SCREEN_MAX: usize = 16 * 1024;
const CORRELATE_EVERY: Millis = 500;
/// Below this, `codex_correlate` evidence is only a hint (the timing rule).
const MIN_CONFIDENCE: u8 = 70;
/// Bound of threads remembered from hooks only.
const MAX_HOOK_THREADS: usize = 256;

/// The control socket of Codex's managed app-server daemon.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCK_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("CODEX_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".codex")
        });
    home.join("app-server-control")
        .join("app-server-control.sock")
}

/// A thread's binding to a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadBind {
    pub pane_id: PaneId,
    pub(crate) confidence: u8,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
struct HookFacts {
    cwd: Option<String>,
    trusted_pane: Option<PaneId>,
    last_ts: Millis,
    /// Its newest hook was `SessionEnd`: the TUI left with the thread (no app-server keeps
    /// it), so no other pane may take it by cwd.
    ended: bool,
}

pub struct CodexLink {
    obs: CodexObserver,
    /// Flow-011/009/013: which socket, when, and whether to trust it.
    pub(crate) endpoint: CodexEndpoint,
    binds: HashMap<String, ThreadBind>,
    undecided: HashMap<String, (String, Vec<PaneId>)>,
    hook_facts: HashMap<String, HookFacts>,
    /// Latest state-bearing event per thread, one per source (re-applied when it binds).
    last_state: HashMap<String, Vec<NormalizedEvent>>,
    /// Last activity time per thread (events other than resume snapshots).
    recency: HashMap<String, Millis>,
    screens: HashMap<PaneId, (String, Millis)>,
    next_correlate: Millis,
    dirty: bool,
    last_problem: Option<String>,
}

fn norm(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() { "/" } else { t }
}

impl CodexLink {
    pub fn new(now: Millis, policy: RestartPolicy, heartbeat_timeout: Millis) -> Self {
        let sock = socket_path();
        log::info!("codex_appserver_socket path={}", sock.display());
        let endpoint = CodexEndpoint::new(sock.clone(), policy, heartbeat_timeout);
        CodexLink {
            obs: endpoint.observer(&sock, now),
            endpoint,
            binds: HashMap::new(),
            undecided: HashMap::new(),
            hook_facts: HashMap::new(),
            last_state: HashMap::new(),
            recency: HashMap::new(),
            screens: HashMap::new(),
            next_correlate: 0,
            dirty: true,
            last_problem: None,
        }
    }

    /// The observer's socket readiness (one token for both directions).
    pub(crate) fn on_ready(&mut self, readable: bool, writable: bool, now: Millis) {
        if readable {
            // Only what changed anything makes the link re-correlate: streaming deltas are
            // read and dropped without touching bindings, /proc or the projection. A finished
            // handshake counts: the endpoint admits the source on the next step.
            let before = (
                self.obs.queued(),
                self.obs.threads().count(),
                self.obs.is_connected(),
            );
            self.obs.on_readable(now);
            let after = (
                self.obs.queued(),
                self.obs.threads().count(),
                self.obs.is_connected(),
            );
            if after != before {
                self.dirty = true;
            }
        }
        if writable {
            self.obs.on_writable(now);
        }
    }

    /// Did the last readiness change anything that the pipeline must look at (new events
    /// or thread facts)?
    pub(crate) fn needs_step(&self) -> bool {
        self.dirty || self.obs.has_end()
    }

    /// When the observer's or the endpoint's timers need a `step`.
    pub fn next_deadline(&self) -> Option<Millis> {
        match (self.obs.next_deadline(), self.endpoint.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The socket in use (the registry's, else the discovered one).
    pub fn sock_path(&self) -> &std::path::Path {
        self.obs.sock_path()
    }

    /// The current bindings, thread → pane.
    pub fn bindings(&self) -> &HashMap<String, ThreadBind> {
        &self.binds
    }

    /// Why a thread is not bound, and its candidate panes.
    pub fn undecided(&self) -> &HashMap<String, (String, Vec<PaneId>)> {
        &self.undecided
    }

    /// Health as the resolver sees it.
    pub fn health(&self) -> Health {
        self.obs.health()
    }

    /// Recent observer problems (resets, rejected messages), oldest first.
    pub fn problems(&self) -> Vec<String> {
        self.obs.problems()
    }

    /// What `@agtmux_daemon` should say about the app-server, if anything. Absent Codex is no
    /// problem; a Codex pane whose daemon is there (or was) but cannot be followed is.
    /// Was the app-server ever reached (so Codex runs in daemon mode here)?
    pub(crate) fn ever_connected(&self) -> bool {
        self.endpoint.ever_admitted()
    }

    /// A hold-down (escalated) or a refused listener is always reported; otherwise see above.
    /// A revoked source is the operator's choice, not a fault.
    pub(crate) fn status_problem(&self, proj: &Projection) -> Option<String> {
        if let Some(f) = self.endpoint.fault() {
            return Some(f.to_string());
        }
        let h = self.obs.health();
        if h == Health::Healthy || self.endpoint.phase() == super::codex_endpoint::Phase::Revoked {
            return None;
        }
        let codex_pane = proj
            .panes
            .values()
            .any(|p| p.process.is_some_and(|(pr, _)| pr == Provider::Codex));
        let present = self.obs.sock_path().exists();
        (codex_pane && (present || self.endpoint.ever_admitted())).then(|| h.to_string())
    }

    /// Keep the last screen text of a Codex pane (bounded) for prompt correlation.
    pub(crate) fn set_screen(&mut self, pane: &PaneId, text: &str, is_codex: bool, now: Millis) {
        if !is_codex {
            self.screens.remove(pane);
            return;
        }
        let text = tail(text, SCREEN_MAX).to_string();
        match self.screens.get_mut(pane) {
            Some((t, at)) if *t != text => {
                *t = text;
                *at = now;
                self.dirty = true;
            }
            Some(_) => {}
            None => {
                self.screens.insert(pane.clone(), (text, now));
                self.dirty = true;
            }
        }
    }

    /// One pass: timers, (re)registration, bindings, ingest of observer events, health.
    /// `ready` = the registry is loaded and state restored (events can be applied).
    /// Returns true when the published daemon status may have changed.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        mreg: &mio::Registry,
        token: Token,
        proj: &mut Projection,
        gw: &mut Gateway,
        sources: &mut SourceRegistry,
        traces: &mut ConnTraces,
        ready: bool,
        now: Millis,
    ) -> bool {
        self.obs.tick(now);
        if self.endpoint.step(&mut self.obs, sources, traces, now) {
            // A new observer (new socket or endpoint). Thread ids outlive a Codex daemon (a
            // new one resumes the same threads), so bindings stay; correlate again.
            self.dirty = true;
        }
        if self.obs.take_new_stream()
            && let Some(s) = self.obs.stream_mut()
            && let Err(e) = mreg.register(s, token, Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("codex_register_failed err={e}");
        }
        if ready {
            let seen = gw.take_codex_seen();
            self.learn(seen);
            if self.dirty || now >= self.next_correlate {
                self.correlate(proj, gw, now);
            }
            while let IngestOutcome::More = gw.ingest_source(&mut self.obs, CURSOR, proj, now) {}
            let seen = gw.take_codex_seen();
            self.endpoint.pulled(traces, seen.len(), now);
            self.learn(seen);
        }
        let mut changed = proj.set_health(SourceKind::CodexAppServer, self.obs.health());
        let problem = self.status_problem(proj);
        if problem != self.last_problem {
            self.last_problem = problem;
            changed = true;
        }
        changed
    }

    /// Record what Codex events tell about threads.
    fn learn(&mut self, events: Vec<NormalizedEvent>) {
        for ev in events {
            let Some(t) = ev.session_key.clone() else {
                continue;
            };
            if ev.source == SourceKind::CodexHooks {
                if !self.hook_facts.contains_key(&t)
                    && self.hook_facts.len() >= MAX_HOOK_THREADS
                    && let Some(o) = least_recent(&self.hook_facts, |f| f.last_ts)
                {
                    self.hook_facts.remove(&o);
                }
                let f = self.hook_facts.entry(t.clone()).or_default();
                if ev.cwd.is_some() {
                    f.cwd = ev.cwd.clone();
                }
                if ev.pane_id.is_some() {
                    f.trusted_pane = ev.pane_id.clone();
                }
                if ev.ts >= f.last_ts {
                    f.ended = ev.signal == Signal::SessionEnd;
                }
                f.last_ts = f.last_ts.max(ev.ts);
            }
            if !ev.name.starts_with("thread/resume") {
                let r = self.recency.entry(t.clone()).or_insert(0);
                *r = (*r).max(ev.ts);
            }
            // What a linking source said follows the thread to a new pane; a rollout line
            // speaks only for the pane its session's hooks named.
            if crate::core::capability::links(ev.provider, ev.source)
                && matches!(ev.signal, Signal::Activity(_) | Signal::SessionEnd)
            {
                let v = self.last_state.entry(t.clone()).or_default();
                v.retain(|e| e.source != ev.source);
                v.push(ev);
            }
            if !self.binds.contains_key(&t) {
                self.dirty = true;
            }
        }
        // Forget threads the observer says are gone and no hook knows (bounded memory).
        if self.last_state.len() > MAX_HOOK_THREADS * 4 {
            let keep: std::collections::HashSet<String> = self
                .obs
                .threads()
                .map(|t| t.thread_id.clone())
                .chain(self.hook_facts.keys().cloned())
                .collect();
            self.last_state.retain(|k, _| keep.contains(k));
            self.recency.retain(|k, _| keep.contains(k));
        }
    }

    /// One correlation pass (C-012): which live Codex thread each Codex pane shows. Steps:
    /// candidates and live threads, end bindings that no longer hold, bind what the evidence
    /// decides, then hand the new bindings their thread's state, titles and explain notes.
    fn correlate(&mut self, proj: &mut Projection, gw: &mut Gateway, now: Millis) {
        self.dirty = false;
        self.next_correlate = now + CORRELATE_EVERY;
        let mut cands = self.pane_candidates(proj);
        let closed = self.closed_threads();
        let mut live = self.live_threads(&closed);
        let before = self.binds.clone();
        self.end_broken_bindings(&before, &cands, &closed, &live);
        for c in cands.iter_mut() {
            c.bound_thread = self
                .binds
                .iter()
                .find(|(_, b)| b.pane_id == c.pane_id)
                .map(|(t, _)| t.clone());
        }
        let newly = self.bind_live_threads(&mut live, &mut cands, now);
        self.catch_up(&newly, proj, now);
        self.update_titles(proj);
        self.explain_notes(&cands, proj);
        if self.binds != before || !newly.is_empty() {
            gw.set_thread_panes(
                self.binds
                    .iter()
                    .map(|(t, b)| (t.clone(), b.pane_id.clone()))
                    .collect(),
            );
        }
    }

    /// Candidate panes: a Codex process in the pane's tree. Screens of other panes are
    /// forgotten.
    fn pane_candidates(&mut self, proj: &Projection) -> Vec<PaneCandidate> {
        let cands: Vec<PaneCandidate> = proj
            .panes
            .iter()
            .filter(|(_, m)| m.process.is_some_and(|(p, _)| p == Provider::Codex))
            .map(|(id, m)| {
                let (screen, changed) = self
                    .screens
                    .get(id)
                    .map(|(t, at)| (t.clone(), Some(*at)))
                    .unwrap_or_default();
                PaneCandidate {
                    pane_id: id.clone(),
                    tui_cwd: m
                        .agent_pid
                        .and_then(procs::cwd)
                        .map(|p| p.to_string_lossy().into_owned()),
                    screen,
                    last_screen_change: changed,
                    bound_thread: None,
                }
            })
            .collect();
        self.screens
            .retain(|id, _| cands.iter().any(|c| &c.pane_id == id));
        cands
    }

    /// Threads that are not live: closed, title-generation or sub-agent threads, and threads
    /// whose hooks said the session ended.
    fn closed_threads(&self) -> Vec<String> {
        self.obs
            .threads()
            .filter(|t| t.closed || t.ephemeral || t.subagent)
            .map(|t| t.thread_id.clone())
            .chain(
                (self.hook_facts.iter())
                    .filter(|(_, f)| f.ended)
                    .map(|(id, _)| id.clone()),
            )
            .collect()
    }

    /// Live threads with their evidence: what the observer saw, plus what their hooks said
    /// (cwd, the trusted pane); a thread known only from hooks is live too.
    fn live_threads(&self, closed: &[String]) -> Vec<ThreadEvidence> {
        let mut live: Vec<ThreadEvidence> = self
            .obs
            .threads()
            .filter(|t| !closed.contains(&t.thread_id))
            .map(|t| ThreadEvidence {
                thread_id: t.thread_id.clone(),
                cwd: t.cwd.clone(),
                prompt: t.last_prompt.clone(),
                prompt_ts: t.last_prompt_ts,
                turn_started: t.turn_started_ts,
                turn_ended: t.turn_ended_ts,
                hook_pane: None,
                hook_parent_in_pane_tree: false,
            })
            .collect();
        for (id, f) in &self.hook_facts {
            if closed.contains(id) {
                continue;
            }
            let ev = match live.iter_mut().find(|e| &e.thread_id == id) {
                Some(e) => e,
                None => {
                    live.push(ThreadEvidence {
                        thread_id: id.clone(),
                        ..Default::default()
                    });
                    let Some(e) = live.last_mut() else { continue };
                    e
                }
            };
            if ev.cwd.is_none() {
                ev.cwd = f.cwd.clone();
            }
            ev.hook_pane = f.trusted_pane.clone();
            ev.hook_parent_in_pane_tree = f.trusted_pane.is_some();
        }
        live
    }

    /// End bindings that no longer hold: the pane is no candidate, the thread closed, or its
    /// hooks name another pane.
    fn end_broken_bindings(
        &mut self,
        before: &HashMap<String, ThreadBind>,
        cands: &[PaneCandidate],
        closed: &[String],
        live: &[ThreadEvidence],
    ) {
        self.binds.retain(|t, b| {
            let pane_ok = cands.iter().any(|c| c.pane_id == b.pane_id);
            let thread_ok = !closed.contains(t);
            let hook_ok = live
                .iter()
                .find(|e| &e.thread_id == t)
                .and_then(|e| e.hook_pane.as_ref())
                .is_none_or(|p| *p == b.pane_id);
            pane_ok && thread_ok && hook_ok
        });
        for (t, b) in before {
            if !self.binds.contains_key(t) {
                log::info!("codex_unbound thread={t} pane={}", b.pane_id);
            }
        }
    }

    /// Bind each unbound live thread whose evidence decides a pane, most recently active
    /// threads first; the others are noted as undecided. Returns the new `(thread, pane)`s.
    fn bind_live_threads(
        &mut self,
        live: &mut [ThreadEvidence],
        cands: &mut [PaneCandidate],
        now: Millis,
    ) -> Vec<(String, PaneId)> {
        // Most recently active threads decide first.
        live.sort_by_key(|e| {
            std::cmp::Reverse(
                self.recency
                    .get(&e.thread_id)
                    .copied()
                    .unwrap_or(Millis::MIN),
            )
        });
        self.undecided.clear();
        let mut newly: Vec<(String, PaneId)> = Vec::new();
        for (i, ev) in live.iter().enumerate() {
            if self.binds.contains_key(&ev.thread_id) {
                continue;
            }
            let Some((pane, confidence, reason)) = self.decide_pane(i, ev, live, cands, now) else {
                continue;
            };
            self.bind(ev, &pane, confidence, reason, cands);
            newly.push((ev.thread_id.clone(), pane));
        }
        newly
    }

    /// The pane the evidence gives thread `live[i]`, or `None` (the reason noted as undecided):
    /// evidence too weak, a cwd shared with a live thread as recent, or the pane held by a
    /// stronger binding.
    fn decide_pane(
        &mut self,
        i: usize,
        ev: &ThreadEvidence,
        live: &[ThreadEvidence],
        cands: &[PaneCandidate],
        now: Millis,
    ) -> Option<(PaneId, u8, String)> {
        let rec = |t: &str| self.recency.get(t).copied();
        // A cwd-only binding of a thread idle since before this one was active does not
        // hold the pane against it (a TUI shows one thread; the newer one is on screen).
        let mine = rec(&ev.thread_id);
        let mine_cands: Vec<PaneCandidate> = cands
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(bt) = c.bound_thread.as_deref()
                    && self.binds.get(bt).is_some_and(|b| b.confidence < 85)
                    && rec(bt) < mine
                {
                    c.bound_thread = None;
                }
                c
            })
            .collect();
        let outcome = correlate(ev, &mine_cands, now);
        let (pane, confidence, reason) = match outcome {
            Binding::Bound {
                pane_id,
                confidence,
                reason,
            } if confidence >= MIN_CONFIDENCE => (pane_id, confidence, reason),
            Binding::Bound {
                pane_id, reason, ..
            } => {
                self.undecided.insert(
                    ev.thread_id.clone(),
                    (format!("evidence too weak: {reason}"), vec![pane_id]),
                );
                return None;
            }
            Binding::Undecided { candidates, reason } => {
                self.undecided
                    .insert(ev.thread_id.clone(), (reason, candidates));
                return None;
            }
        };
        if confidence < 85 {
            // cwd only: another live unbound thread in that cwd, active at least as
            // recently, makes it ambiguous.
            let rival = live.iter().enumerate().any(|(j, o)| {
                j != i
                    && !self.binds.contains_key(&o.thread_id)
                    && o.cwd.as_deref().map(norm) == ev.cwd.as_deref().map(norm)
                    && match (rec(&o.thread_id), mine) {
                        (Some(a), Some(b)) => a >= b,
                        (Some(_), None) => true,
                        (None, None) => true,
                        (None, Some(_)) => false,
                    }
            });
            if rival {
                self.undecided.insert(
                    ev.thread_id.clone(),
                    (
                        "several live Codex threads share this cwd and none was active \
                         more recently"
                            .into(),
                        vec![pane],
                    ),
                );
                return None;
            }
        }
        // A pane holds one thread. A stronger binding keeps its pane (a prompt seen on a
        // pane does not beat that pane's own trusted hooks, and two bindings must not take
        // a pane from each other in turn); an equal or weaker one gives way.
        if let Some((held, b)) = self
            .binds
            .iter()
            .find(|(t, b)| b.pane_id == pane && *t != &ev.thread_id)
            && b.confidence > confidence
        {
            self.undecided.insert(
                ev.thread_id.clone(),
                (
                    format!(
                        "pane {pane} is held by thread {held} with a stronger binding ({} > {confidence})",
                        b.confidence
                    ),
                    vec![pane.clone()],
                ),
            );
            return None;
        }
        Some((pane, confidence, reason))
    }

    /// Bind thread `ev` to `pane`, taking the pane over from whichever thread held it.
    fn bind(
        &mut self,
        ev: &ThreadEvidence,
        pane: &PaneId,
        confidence: u8,
        reason: String,
        cands: &mut [PaneCandidate],
    ) {
        let taken: Vec<String> = self
            .binds
            .iter()
            .filter(|(_, b)| b.pane_id == *pane)
            .map(|(t, _)| t.clone())
            .collect();
        for t in taken {
            log::info!("codex_unbound thread={t} pane={pane} reason=taken_over");
            self.binds.remove(&t);
        }
        log::info!(
            "codex_bound thread={} pane={pane} confidence={confidence} reason={reason:?}",
            ev.thread_id
        );
        for c in cands.iter_mut() {
            if c.pane_id == *pane {
                c.bound_thread = Some(ev.thread_id.clone());
            } else if c.bound_thread.as_deref() == Some(ev.thread_id.as_str()) {
                c.bound_thread = None;
            }
        }
        self.binds.insert(
            ev.thread_id.clone(),
            ThreadBind {
                pane_id: pane.clone(),
                confidence,
                reason,
            },
        );
    }

    /// Catch up: the thread's latest state per source goes to its new pane.
    fn catch_up(&self, newly: &[(String, PaneId)], proj: &mut Projection, now: Millis) {
        for (t, pane) in newly {
            let Some(evs) = self.last_state.get(t) else {
                continue;
            };
            let mut evs = evs.clone();
            evs.sort_by_key(|e| e.ts);
            for mut e in evs {
                e.event_id = format!("{}~bind~{pane}", e.event_id);
                e.pane_id = Some(pane.clone());
                if let Err(r) = proj.apply_event(&e, now) {
                    log::debug!("codex_catch_up_ignored thread={t} pane={pane} reason={r}");
                }
            }
        }
    }

    /// Titles (C-010): the thread's name is the canonical title; without one, its
    /// preview (the prompt that started it) is the heuristic title.
    fn update_titles(&self, proj: &mut Projection) {
        for (t, b) in &self.binds {
            let Some(f) = self.obs.thread(t) else {
                continue;
            };
            if let Some(name) = f.title.as_deref().filter(|n| !n.trim().is_empty()) {
                proj.set_session_title(t, name);
            }
            if let Some(m) = proj.panes.get_mut(&b.pane_id)
                && m.heuristic_title != f.last_prompt
            {
                m.heuristic_title = f.last_prompt.clone();
                m.dirty = true;
            }
        }
    }

    /// Explain notes: each candidate pane's binding, or why none holds.
    fn explain_notes(&self, cands: &[PaneCandidate], proj: &mut Projection) {
        for c in cands {
            let note = if let Some((t, b)) = self.binds.iter().find(|(_, b)| b.pane_id == c.pane_id)
            {
                Some(format!(
                    "thread={t} confidence={} reason={}",
                    b.confidence, b.reason
                ))
            } else {
                let mut u: Vec<String> = self
                    .undecided
                    .iter()
                    .filter(|(_, (_, cs))| cs.contains(&c.pane_id))
                    .map(|(t, (r, _))| format!("undecided thread={t}: {r}"))
                    .collect();
                u.sort();
                Some(if u.is_empty() {
                    "no live Codex thread matches this pane".to_string()
                } else {
                    u.join("; ")
                })
            };
            if let Some(m) = proj.panes.get_mut(&c.pane_id)
                && m.codex_binding != note
            {
                m.codex_binding = note;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_normalisation() {
        // Only the pure helpers here; the wiring is tested end to end in tests/codex_daemon.rs.
        assert_eq!(norm("/a/b/"), "/a/b");
        assert_eq!(norm("/"), "/");
    }
}
