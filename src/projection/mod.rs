//! The projection (C-002, Flow-001/-002/-003/-007): the single writer of pane state. It takes
//! normalized events, process hints and screen verdicts, runs them through the pure core
//! (classifier, hysteresis, resolver, binding, attention, title), and keeps the read model
//! every surface reads. It does no I/O: the runtime feeds it and publishes what changed.
pub mod notes;
pub mod serial;

use crate::core::attention::PaneAttention;
use crate::core::binding::{BindOrigin, BindOutcome, BindingConfig, BindingRegistry};
use crate::core::classifier::{PresenceTracker, Signature, SignatureInput, classify_signature};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::extras::{Extras, WinnerExtra, settle};
use crate::core::hysteresis::Hysteresis;
use crate::core::resolver::{
    Applied, DeterministicState, HeuristicInput, Resolution, ResolverConfig, ResolverInput,
    ResolverState, resolve,
};
use crate::core::screen::ScreenVerdict;
use crate::core::title::{TitleSource, resolve_title};
use crate::core::types::{
    Activity, AttentionKind, Evidence, Health, Millis, PaneId, PaneInstance, Presence, Provider,
    SourceKind,
};
use notes::Note;
use std::collections::{BTreeMap, HashMap};

/// The read model of one pane: what surfaces show, and the inputs that led there (`explain`).
#[derive(Debug, Clone)]
pub struct PaneModel {
    pub instance: PaneInstance,
    pub session_id: String,
    pub window_id: String,
    /// Process hint: provider, reason, and the agent's pid when known.
    pub process: Option<(Provider, &'static str)>,
    pub agent_pid: Option<i32>,
    /// Whether an agent process was ever seen in this generation (so its leaving ends it).
    pub(crate) seen_agent: bool,
    /// The agent process the pane's hooks ran under (`sources::hook_spool::ProcOrigin`): the
    /// deterministic state stands only while it lives, whatever the process classifier says.
    pub(crate) anchor: Option<Anchor>,
    pub(crate) presence_tracker: PresenceTracker,
    pub signature: String,
    pub(crate) hysteresis: Hysteresis,
    pub screen: Option<ScreenVerdict>,
    pub(crate) screen_at: Millis,
    /// Latest state per deterministic source for the bound session.
    pub det: Vec<DeterministicState>,
    pub session_key: Option<String>,
    pub(crate) resolver: ResolverState,
    pub resolution: Resolution,
    pub(crate) attention_tracker: PaneAttention,
    pub attention: Option<AttentionKind>,
    /// Usage-limit reset, retry/compaction, background count (issue 23, `core::extras`).
    pub extras: Extras,
    pub since: Millis,
    pub(crate) pane_title: String,
    pub(crate) canonical_title: Option<String>,
    /// A title guessed from what the agent is doing (a Codex thread's preview).
    pub(crate) heuristic_title: Option<String>,
    pub title: String,
    pub(crate) title_source: TitleSource,
    pub next_deadline: Option<Millis>,
    /// State version (Flow-014): bumped on every published change.
    pub version: i64,
    pub(crate) dirty: bool,
    /// Codex thread ↔ pane binding, for `explain`: `thread=… confidence=… reason=…` when a
    /// thread is bound here, or why a thread that may belong here is undecided
    /// (kept by `daemon::codex`).
    pub codex_binding: Option<String>,
}

impl PaneModel {
    fn new(pane_id: &PaneId, generation: u32, now: Millis) -> Self {
        PaneModel {
            instance: PaneInstance {
                pane_id: pane_id.clone(),
                generation,
                birth_ts: now,
            },
            session_id: String::new(),
            window_id: String::new(),
            process: None,
            agent_pid: None,
            seen_agent: false,
            anchor: None,
            presence_tracker: PresenceTracker::default(),
            signature: "none".into(),
            hysteresis: Hysteresis::default(),
            screen: None,
            screen_at: 0,
            det: Vec::new(),
            session_key: None,
            resolver: ResolverState::new(),
            resolution: Resolution::unmanaged("no_signature", Vec::new()),
            attention_tracker: PaneAttention::default(),
            attention: None,
            extras: Extras::default(),
            since: now,
            pane_title: String::new(),
            canonical_title: None,
            heuristic_title: None,
            title: String::new(),
            title_source: TitleSource::None,
            next_deadline: None,
            version: 0,
            dirty: true,
            codex_binding: None,
        }
    }

    /// Start a new instance (generation) of this pane: everything learned about the old
    /// agent goes, what tmux and `/proc` say about the pane itself stays.
    fn renew(&mut self, generation: u32, now: Millis) {
        let mut fresh = PaneModel::new(&self.instance.pane_id, generation, now);
        fresh.session_id = std::mem::take(&mut self.session_id);
        fresh.window_id = std::mem::take(&mut self.window_id);
        fresh.pane_title = std::mem::take(&mut self.pane_title);
        fresh.process = self.process;
        fresh.agent_pid = self.agent_pid;
        fresh.seen_agent = self.seen_agent;
        *self = fresh;
    }

    pub fn presence(&self) -> Presence {
        self.resolution.presence
    }
    pub fn activity(&self) -> Activity {
        self.resolution.activity
    }
    pub fn provider(&self) -> Option<Provider> {
        self.resolution.provider
    }
    pub fn evidence(&self) -> Evidence {
        self.resolution.evidence
    }
    pub(crate) fn is_managed(&self) -> bool {
        self.resolution.presence == Presence::Managed
    }
    /// Does the poller need to look at this pane at all?
    pub(crate) fn is_candidate(&self) -> bool {
        self.process.is_some() || self.is_managed() || !self.det.is_empty()
    }
}

/// The process a pane's hooks came from: pid and start time (one process life).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub pid: i32,
    pub start: u64,
    /// False once the process is gone: its deterministic state has ended.
    pub alive: bool,
}

/// How soon a pane whose agent signature vanished is observed again (presence debounce).
const PRESENCE_RECHECK_MS: Millis = 500;

/// Why an event was not applied. Stored with the event and logged as [`IgnoreReason::as_str`],
/// whose text is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IgnoreReason {
    /// The event names no pane.
    NoPane,
    /// The pane is not (or no longer) in the registry.
    UnknownPane,
    /// A source that does not link spoke for a session the pane no longer holds.
    SessionNotCurrent,
    /// Already applied (same event id).
    Duplicate,
    /// Older than the state it would replace.
    StaleEvent,
    /// The first event of a source gave no state.
    NoState,
    /// The binding registry refused the session (its reason).
    Binding(String),
    /// The pane's deterministic state refused the event (its reason).
    State(String),
    /// A Codex event whose thread no pane has bound yet (the gateway's; the thread's latest
    /// state is re-applied once it binds).
    UnboundThread,
    /// A hook that ran under another process than the pane's (the gateway's; the text says
    /// which processes, after `pane_process_mismatch: `).
    ProcessMismatch(String),
    /// A hook from outside every pane of this server for a pane it cannot speak for (the
    /// gateway's; the text says why, after `not_in_pane: `).
    NotInPane(String),
}

impl IgnoreReason {
    /// The reason as stored in `events_raw_v2` and logged.
    pub fn as_str(&self) -> &str {
        match self {
            IgnoreReason::NoPane => "no_pane",
            IgnoreReason::UnknownPane => "unknown_pane",
            IgnoreReason::SessionNotCurrent => "session_not_current",
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::StaleEvent => "stale_event",
            IgnoreReason::NoState => "no_state",
            IgnoreReason::UnboundThread => "unbound_thread",
            IgnoreReason::Binding(r)
            | IgnoreReason::State(r)
            | IgnoreReason::ProcessMismatch(r)
            | IgnoreReason::NotInPane(r) => r,
        }
    }

    /// Already known or older than the state: the event is stored as ignored, with no effect
    /// (every other reason stores it as rejected).
    pub(crate) fn is_no_effect(&self) -> bool {
        matches!(self, IgnoreReason::Duplicate | IgnoreReason::StaleEvent)
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct Projection {
    pub panes: BTreeMap<PaneId, PaneModel>,
    pub bindings: BindingRegistry,
    pub health: HashMap<SourceKind, Health>,
    pub cfg: ResolverConfig,
    hostname: String,
    /// Counters for metrics.
    pub(crate) fallbacks: u64,
    pub(crate) repromotions: u64,
    /// Transitions for `daemon::metrics` (drained each step; bounded by `MAX_NOTES`).
    pub notes: Vec<Note>,
    /// The local zone, seconds east of UTC: agents print a usage limit's reset in local
    /// wall time (`core::extras::parse_reset`). Set by the runtime.
    pub utc_offset_s: i64,
}

impl Projection {
    pub fn new(hostname: String) -> Self {
        let mut health = HashMap::new();
        for s in SourceKind::ALL {
            health.insert(*s, Health::Healthy);
        }
        Projection {
            panes: BTreeMap::new(),
            bindings: BindingRegistry::new(BindingConfig::default()),
            health,
            cfg: ResolverConfig::default(),
            hostname,
            fallbacks: 0,
            repromotions: 0,
            notes: Vec::new(),
            utc_offset_s: 0,
        }
    }

    /// A pane appeared (or the daemon learned about it).
    pub(crate) fn pane_added(
        &mut self,
        pane_id: &PaneId,
        session_id: &str,
        window_id: &str,
        now: Millis,
    ) {
        let p = self
            .panes
            .entry(pane_id.clone())
            .or_insert_with(|| PaneModel::new(pane_id, 0, now));
        p.session_id = session_id.to_string();
        p.window_id = window_id.to_string();
    }

    /// A pane is gone: forget it, tombstone its binding.
    pub(crate) fn pane_removed(&mut self, pane_id: &PaneId, now: Millis) -> Option<PaneModel> {
        self.bindings.pane_gone(pane_id, now);
        self.panes.remove(pane_id)
    }

    /// Does the process classifier see an agent process in this pane now?
    pub(crate) fn holds_agent_process(&self, pane_id: &PaneId) -> bool {
        self.panes.get(pane_id).is_some_and(|p| p.process.is_some())
    }

    /// The pane's hooks ran under this live agent process (`sources::hook_spool`).
    pub(crate) fn set_anchor(&mut self, pane_id: &PaneId, pid: i32, start: u64) {
        if let Some(p) = self.panes.get_mut(pane_id) {
            let a = Some(Anchor {
                pid,
                start,
                alive: true,
            });
            if p.anchor != a {
                p.anchor = a;
                p.dirty = true;
            }
        }
    }

    /// The live anchor of a pane, to check that it still runs.
    pub(crate) fn live_anchor(&self, pane_id: &PaneId) -> Option<(i32, u64)> {
        let a = self.panes.get(pane_id)?.anchor?;
        a.alive.then_some((a.pid, a.start))
    }

    /// The agent process the pane's hooks came from has exited: its deterministic state ends
    /// (a kill -9 sends no SessionEnd).
    pub(crate) fn anchor_gone(&mut self, pane_id: &PaneId) {
        let Some(p) = self.panes.get_mut(pane_id) else {
            return;
        };
        let Some(a) = p.anchor.as_mut().filter(|a| a.alive) else {
            return;
        };
        a.alive = false;
        log::info!(
            "agent_process_gone pane={pane_id} pid={} ended={}",
            a.pid,
            p.det.iter().filter(|d| !d.ended).count()
        );
        for d in p.det.iter_mut().filter(|d| !d.ended) {
            d.ended = true;
            d.detail = Some(format!("agent process {} exited", a.pid));
        }
        p.dirty = true;
    }

    /// Update the process hint of a pane (from `/proc`).
    pub(crate) fn set_process(
        &mut self,
        pane_id: &PaneId,
        hint: Option<(Provider, &'static str)>,
        agent_pid: Option<i32>,
        now: Millis,
    ) {
        let Some(p) = self.panes.get_mut(pane_id) else {
            return;
        };
        let agent = hint.map(|(prov, _)| prov).zip(agent_pid.map(|p| p as u32));
        if let Some(bump) = self.bindings.observe_process(pane_id, agent, now) {
            log::info!(
                "pane_generation_bump pane={pane_id} generation={} old_session={} {}",
                bump.new.generation,
                bump.old_session.as_deref().unwrap_or("-"),
                bump.reason
            );
            p.renew(bump.new.generation, now);
        }
        if hint.is_some() {
            p.seen_agent = true;
        }
        if p.process != hint || p.agent_pid != agent_pid {
            p.process = hint;
            p.agent_pid = agent_pid;
            p.dirty = true;
        }
    }

    pub(crate) fn set_pane_title(&mut self, pane_id: &PaneId, title: &str) {
        if let Some(p) = self.panes.get_mut(pane_id)
            && p.pane_title != title
        {
            p.pane_title = title.to_string();
            p.dirty = true;
        }
    }

    /// A screen capture's verdict (the poller, C-006).
    pub(crate) fn apply_screen(&mut self, pane_id: &PaneId, v: ScreenVerdict, now: Millis) {
        let Some(p) = self.panes.get_mut(pane_id) else {
            return;
        };
        log::debug!(
            "screen_verdict pane={pane_id} activity={} rule={} confidence={:.2}",
            v.activity,
            v.rule,
            v.confidence
        );
        if let Some(to) = p.hysteresis.observe(v.activity, v.confidence, now) {
            log::debug!("heuristic_change pane={pane_id} to={to} rule={}", v.rule);
        }
        p.screen = Some(v);
        p.screen_at = now;
        p.dirty = true;
    }

    /// Apply one deterministic event. `Err` = not applied, with the reason to store.
    pub(crate) fn apply_event(
        &mut self,
        ev: &NormalizedEvent,
        now: Millis,
    ) -> Result<(), IgnoreReason> {
        let Some(pane_id) = ev.pane_id.as_ref() else {
            return Err(IgnoreReason::NoPane);
        };
        let Some(p) = self.panes.get_mut(pane_id) else {
            return Err(IgnoreReason::UnknownPane);
        };
        // A source that does not link (a session's transcript) speaks only for the session the
        // pane holds now: a late line of a session the pane left (`/clear`) moves nothing.
        let links = crate::core::capability::links(ev.provider, ev.source);
        if !links && (ev.session_key.is_none() || p.session_key != ev.session_key) {
            return Err(IgnoreReason::SessionNotCurrent);
        }
        if let Some(sk) = ev.session_key.as_ref().filter(|_| links) {
            let origin = match (ev.name.as_str(), ev.detail.as_deref()) {
                ("SessionStart", Some("clear")) => BindOrigin::Clear,
                ("SessionStart", _) => BindOrigin::Start,
                _ => BindOrigin::Event,
            };
            match self
                .bindings
                .bind_with(pane_id, sk, ev.provider, origin, now)
            {
                BindOutcome::Rejected { reason } => return Err(IgnoreReason::Binding(reason)),
                BindOutcome::Rebound { old_session } => {
                    log::info!("binding_rebound pane={pane_id} old={old_session} new={sk}");
                    let generation = self
                        .bindings
                        .instance(pane_id)
                        .map(|i| i.generation)
                        .unwrap_or(0);
                    if generation != p.instance.generation {
                        p.renew(generation, now);
                    }
                    p.det.clear();
                    p.canonical_title = None;
                }
                BindOutcome::Linked | BindOutcome::Unchanged => {}
            }
            if p.session_key.as_deref() != Some(sk.as_str()) {
                p.det.clear();
                p.session_key = Some(sk.clone());
            }
        }
        if let Some(t) = &ev.title {
            p.canonical_title = Some(t.clone());
        }
        p.dirty = true;
        match p.det.iter_mut().find(|d| d.source == ev.source) {
            Some(d) => match d.apply(ev) {
                Applied::Applied | Applied::Ignored => Ok(()),
                Applied::Duplicate => Err(IgnoreReason::Duplicate),
                Applied::Stale => Err(IgnoreReason::StaleEvent),
                Applied::Rejected(r) => Err(IgnoreReason::State(r)),
            },
            None => match ev.signal {
                Signal::Ignore => Ok(()),
                _ => match DeterministicState::from_event(ev) {
                    Some(d) => {
                        p.det.push(d);
                        Ok(())
                    }
                    None => Err(IgnoreReason::NoState),
                },
            },
        }
    }

    /// Set a transcript/thread title for a session.
    pub(crate) fn set_session_title(&mut self, session_key: &str, title: &str) {
        for p in self.panes.values_mut() {
            if p.session_key.as_deref() == Some(session_key)
                && p.canonical_title.as_deref() != Some(title)
            {
                p.canonical_title = Some(title.to_string());
                p.dirty = true;
            }
        }
    }

    /// Re-resolve dirty panes and panes whose timers are due. Returns the panes whose
    /// published state changed.
    pub(crate) fn resolve_dirty(
        &mut self,
        now: Millis,
        focused: &dyn Fn(&PaneId) -> bool,
    ) -> Vec<PaneId> {
        let Projection {
            panes,
            health,
            cfg,
            hostname,
            fallbacks,
            repromotions,
            notes: noted,
            utc_offset_s,
            ..
        } = self;
        let mut changed = Vec::new();
        for (id, p) in panes.iter_mut() {
            let due = p.next_deadline.is_some_and(|d| d <= now);
            if due && p.hysteresis.tick(now).is_some() {
                p.dirty = true;
            }
            if !(p.dirty || due) {
                continue;
            }
            p.dirty = false;
            let (agent, sig) = p.observe_presence(id, noted);
            let heuristic = HeuristicInput::from_hysteresis(
                &p.hysteresis,
                p.screen.as_ref().and_then(|s| s.provider),
            );
            let input = ResolverInput {
                agent,
                deterministic: &p.det,
                health,
                heuristic,
            };
            let mut res = resolve(&mut p.resolver, &input, cfg, now);
            let (extras, reset_at) = settle_extras(&mut res, p, now, *utc_offset_s);
            note_resolution(id, &res, (fallbacks, repromotions), noted);
            let attention = p.observe_attention(&res, &extras, focused(id), now);
            let (title, title_source) = resolve_title(
                p.canonical_title.as_deref(),
                p.heuristic_title.as_deref(),
                &p.pane_title,
                hostname,
            );
            p.next_deadline = p.next_resolve_at(&res, &sig, reset_at, now);
            let resolved = Resolved {
                res,
                attention,
                extras,
                title,
                title_source,
            };
            if p.take_resolved(id, resolved, now) {
                changed.push(id.clone());
            }
        }
        changed
    }

    /// Set the local zone (seconds east of UTC) used to read reset times.
    pub(crate) fn set_utc_offset(&mut self, utc_offset_s: i64) {
        self.utc_offset_s = utc_offset_s;
    }

    /// The tombstone grace period of the binding registry.
    pub(crate) fn bindings_grace_ms(&self) -> Millis {
        BindingConfig::default().tombstone_grace_ms
    }

    /// Focus changed for a pane (clears `done`).
    pub(crate) fn mark_dirty(&mut self, pane_id: &PaneId) {
        if let Some(p) = self.panes.get_mut(pane_id) {
            p.dirty = true;
        }
    }

    /// The earliest timer of any pane.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.panes.values().filter_map(|p| p.next_deadline).min()
    }

    /// Set a source's health; every pane is re-resolved.
    pub(crate) fn set_health(&mut self, source: SourceKind, h: Health) -> bool {
        let old = self.health.insert(source, h);
        if old != Some(h) {
            for p in self.panes.values_mut() {
                p.dirty = true;
            }
            return true;
        }
        false
    }
}

/// One pane's resolution, before it replaces the published one ([`PaneModel::take_resolved`]).
struct Resolved {
    res: Resolution,
    attention: Option<AttentionKind>,
    extras: Extras,
    title: String,
    title_source: TitleSource,
}

impl PaneModel {
    /// Is an agent here (Flow-001 presence)? Classifies the pane's signature from its live
    /// deterministic states, process and screen, feeds the presence tracker (a transition is
    /// logged and noted), and returns the agent the resolver should see (none unless managed)
    /// and the signature.
    fn observe_presence(
        &mut self,
        id: &PaneId,
        noted: &mut Vec<Note>,
    ) -> (Option<Provider>, Signature) {
        let p = self;
        let live_det = p.det.iter().find(|d| !d.ended).map(|d| d.provider);
        // The agent: the process hint; or the live process the hooks came from; or, with
        // no process facts at all (a platform without /proc, an older hook), a live
        // deterministic binding until an agent process was seen.
        let anchored = p.anchor.is_some_and(|a| a.alive);
        let agent = match p.process {
            Some((prov, _)) => Some(prov),
            None if anchored || (!p.seen_agent && p.anchor.is_none()) => live_det,
            None => None,
        };
        let screen_sig = p
            .screen
            .as_ref()
            .and_then(|s| s.signature.as_ref())
            .map(|s| (s.provider, s.confidence));
        // An agent process that was seen and has gone takes its deterministic binding with
        // it, even when no SessionEnd came (Codex `/exit` only disconnects its TUI).
        let agent_left = p.process.is_none() && !anchored && (p.seen_agent || p.anchor.is_some());
        let sig = classify_signature(&SignatureInput {
            deterministic: live_det.filter(|_| !agent_left),
            process: agent,
            screen: screen_sig,
            title: None,
        });
        let (_, transition) = p.presence_tracker.observe(&sig);
        if let Some(t) = transition {
            log::info!("{}", notes::signature_log(id, &t));
            if noted.len() < notes::MAX_NOTES {
                noted.push(Note::Signature {
                    pane: id.clone(),
                    from: t.from.as_str(),
                    to: t.to.as_str(),
                    reason: t.reason.clone(),
                });
            }
        }
        p.signature = format!(
            "{} reason={} confidence={:.2}",
            sig.class.as_str(),
            sig.reason,
            sig.confidence
        );
        let agent = if p.presence_tracker.presence() == Presence::Managed {
            agent.or(p.presence_tracker.provider())
        } else {
            None
        };
        (agent, sig)
    }

    /// Does the pane want the user (Flow-007)? Feeds the attention tracker with what the
    /// resolution says.
    fn observe_attention(
        &mut self,
        res: &Resolution,
        extras: &Extras,
        focused: bool,
        now: Millis,
    ) -> Option<AttentionKind> {
        // A turn that a `turn_end` source ended (an Esc in the transcript) was ended by
        // the user: no unseen `done`.
        let ended_by_user = res.activity == Activity::Idle
            && res.provider.zip(res.winner).is_some_and(|(pr, w)| {
                crate::core::capability::capability(pr, w).is_some_and(|c| c.turn_end)
            });
        // Idle with background work still running is not a finished turn yet: the
        // tracker sees it as still working, so `done` comes when the work ends.
        let tracked = if res.activity == Activity::Idle && extras.background > 0 {
            Activity::Running
        } else {
            res.activity
        };
        self.attention_tracker
            .observe(tracked, focused, ended_by_user, now)
    }

    /// When to resolve this pane again even if nothing changes: the resolver's and the
    /// hysteresis' timers, a presence re-check, a usage limit's reset.
    fn next_resolve_at(
        &self,
        res: &Resolution,
        sig: &Signature,
        reset_at: Option<Millis>,
        now: Millis,
    ) -> Option<Millis> {
        // A pane whose signature vanished is still managed until the presence tracker
        // has seen enough no-agent observations: look again soon rather than wait for
        // an unrelated change.
        let recheck = (sig.class == crate::core::classifier::SignatureClass::None
            && self.presence_tracker.presence() == Presence::Managed)
            .then_some(now + PRESENCE_RECHECK_MS);
        [
            res.next_deadline,
            self.hysteresis.next_deadline(),
            recheck,
            reset_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The new resolution replaces the published one; true (and the version bumped) when
    /// anything surfaces show changed. A state change is logged (`pane_state`).
    fn take_resolved(&mut self, id: &PaneId, r: Resolved, now: Millis) -> bool {
        let p = self;
        let before = (
            p.resolution.presence,
            p.resolution.provider,
            p.resolution.evidence,
            p.resolution.activity,
        );
        let after = (
            r.res.presence,
            r.res.provider,
            r.res.evidence,
            r.res.activity,
        );
        let changed_state = before != after;
        if before.3 != after.3 || before.0 != after.0 {
            p.since = now;
        }
        let changed_other =
            p.attention != r.attention || p.title != r.title || p.extras != r.extras;
        p.resolution = r.res;
        p.attention = r.attention;
        p.extras = r.extras;
        p.title = r.title;
        p.title_source = r.title_source;
        if changed_state || changed_other {
            p.version += 1;
        }
        if changed_state {
            // The pane's state history, one line per change: what `explain` cannot show
            // after the fact, and what tests read to see a state that did not last.
            log::info!(
                "pane_state pane={id} presence={} provider={} evidence={} activity={} version={}",
                p.presence().as_str(),
                p.provider().map_or("none", |x| x.as_str()),
                p.evidence().as_str(),
                p.activity().as_str(),
                p.version
            );
        }
        changed_state || changed_other
    }
}

/// A tier transition of the resolver (fallback to heuristics, or back): counted, noted for
/// metrics and logged; suppressed sources are logged too.
fn note_resolution(
    id: &PaneId,
    res: &Resolution,
    (fallbacks, repromotions): (&mut u64, &mut u64),
    noted: &mut Vec<Note>,
) {
    if let Some(t) = &res.transition {
        let note = match t {
            crate::core::resolver::TierTransition::Fallback { .. } => {
                *fallbacks += 1;
                Note::Fallback
            }
            crate::core::resolver::TierTransition::RePromotion { .. } => {
                *repromotions += 1;
                Note::RePromotion
            }
        };
        if noted.len() < notes::MAX_NOTES {
            noted.push(note);
        }
        log::info!("{}", notes::tier_log(id, t));
    }
    for (s, why) in &res.suppressed {
        log::debug!("source_suppressed pane={id} source={s} reason={why}");
    }
}

/// The details of a resolved pane (issue 23, `core::extras::settle`): the winner's event
/// details when deterministic evidence won, the screen's otherwise. A usage limit whose reset
/// has passed turns the pane back to idle here. Returns the details and the reset time (to
/// resolve again then).
fn settle_extras(
    res: &mut Resolution,
    p: &PaneModel,
    now: Millis,
    utc_offset_s: i64,
) -> (Extras, Option<Millis>) {
    if res.presence != Presence::Managed {
        return (Extras::default(), None);
    }
    let det = if res.evidence == Evidence::Deterministic {
        res.winner
            .and_then(|w| p.det.iter().find(|d| d.source == w && !d.ended))
            .map(|d| WinnerExtra {
                extra: d.extra,
                ts: d.ts,
            })
    } else {
        None
    };
    let screen = p
        .screen
        .as_ref()
        .filter(|s| s.provider.is_none() || s.provider == res.provider)
        .map(|s| &s.extras);
    let (activity, extras, reset_at) = settle(res.activity, det, screen, now, utc_offset_s);
    if activity != res.activity {
        res.reason.push_str(" limit_reset_passed");
        res.activity = activity;
    }
    (extras, reset_at)
}
