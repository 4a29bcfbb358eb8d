//! Flow-003 tier resolver (C-008): per pane, combine deterministic evidence (hooks, app-server)
//! and heuristic evidence (the screen, through the hysteresis) into one winner, and say why.
//!
//! Why this shape:
//! - Deterministic wins while its source is admissible (`Health::Healthy`). Sources of one
//!   provider are ordered by the ranks declared in `core::capability` (C-009), never here; the
//!   losers are listed as suppressed with `higher_priority_source`.
//! - Age alone never demotes deterministic evidence: a Claude idle at its prompt sends nothing
//!   for hours and is still known to be idle.
//! - Deterministic evidence ends when the agent process leaves the pane, when the source is not
//!   healthy (fallback to the screen, reported once), or on a sustained contradiction by the
//!   screen, because some changes fire no event at all (observed on the real agents):
//!   (a) running/waiting_* but the screen shows the idle prompt for the whole idle stable window
//!   after the last deterministic event (Esc interrupt, Esc deny) → idle, `contradiction_idle`;
//!   (b) waiting_approval but the dialog has gone and the screen shows running for
//!   `approve_running_ms` (the user approved; PostToolUse only comes when the command ends)
//!   → running, `contradiction_running`;
//!   (c) waiting_input (AskUserQuestion) and the screen is idle-stable (Esc on the question)
//!   → idle, `contradiction_idle` (same rule as (a)).
//!   A contradiction holds until the source sends an event newer than the contradicted one,
//!   which re-promotes at once.
//! - A turn end that fires no hook but is written to a file (C-007, the Claude transcript's
//!   `[Request interrupted by user…]`, a Codex rollout's failed `task_complete`) comes from a
//!   source declared `turn_end`: its idle or error, newer
//!   than the best source's running/waiting state, wins at once, deterministically (no screen
//!   window to wait for); the best source's next event wins again by rank.
//! - After a fallback, a source is re-promoted as soon as it is healthy AND has delivered an
//!   event newer than what it had when it fell back ("events flow again"); the state it had
//!   before the outage may be outdated.
//!
//! `DeterministicState` also lives here: the latest state of one source for one session, which
//! never rolls back on an older or duplicated event.
//!
//! Pure: the caller passes `now`, logs `Resolution::reason` and `transition`.
use super::capability;
use super::event::{NormalizedEvent, Signal};
use super::extras::EventExtra;
use super::hysteresis::{Hysteresis, RawVerdict};
use super::seeded::seeded;
use super::types::{Activity, Evidence, Health, Millis, Presence, Provider, SourceKind};
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// Tool names whose pending call means the agent asked the user a question (waiting_input),
/// even though Claude also fires PermissionRequest and a `permission_prompt` notification.
pub(crate) const QUESTION_TOOLS: &[&str] =
    &["AskUserQuestion", "ExitPlanMode", "request_user_input"];

const RECENT_IDS: usize = 32;

/// What `DeterministicState::apply` did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The state changed (or its timestamp advanced).
    Applied,
    /// Same event id as one already applied.
    Duplicate,
    /// Older than the state: an older event never rolls the state back.
    Stale,
    /// `Signal::Ignore`: stored by the caller, changes nothing.
    Ignored,
    /// Not for this state (other source/provider/session).
    Rejected(String),
}

/// The latest deterministic state of one source for one session.
#[derive(Debug, Clone, PartialEq)]
pub struct DeterministicState {
    pub source: SourceKind,
    pub provider: Provider,
    pub session_key: Option<String>,
    pub activity: Activity,
    /// The agent left (SessionEnd).
    pub ended: bool,
    /// Timestamp of the latest applied event.
    pub ts: Millis,
    /// Name of the latest applied event (`PreToolUse`, `thread/status/changed` …).
    pub event: String,
    /// Its detail (pending tool name, error kind …).
    pub detail: Option<String>,
    /// Usage-limit reset, background count, compaction (issue 23, `core::extras`).
    pub extra: EventExtra,
    recent_ids: VecDeque<String>,
}

impl DeterministicState {
    /// A state built from its first event; `None` for an event that carries no state.
    pub(crate) fn from_event(ev: &NormalizedEvent) -> Option<Self> {
        if !ev.source.is_deterministic() || ev.signal == Signal::Ignore {
            return None;
        }
        let mut s = DeterministicState {
            source: ev.source,
            provider: ev.provider,
            session_key: ev.session_key.clone(),
            activity: Activity::Unknown,
            ended: false,
            ts: Millis::MIN,
            event: String::new(),
            detail: None,
            extra: EventExtra::default(),
            recent_ids: VecDeque::new(),
        };
        s.apply(ev);
        Some(s)
    }

    /// Apply one event. Duplicates and events older than the state are refused; an event at
    /// the same timestamp is applied in arrival order.
    pub fn apply(&mut self, ev: &NormalizedEvent) -> Applied {
        if ev.source != self.source || ev.provider != self.provider {
            return Applied::Rejected(format!(
                "state_mismatch want={}/{} got={}/{}",
                self.source, self.provider, ev.source, ev.provider
            ));
        }
        if ev.session_key.is_some()
            && self.session_key.is_some()
            && ev.session_key != self.session_key
        {
            return Applied::Rejected("session_mismatch".into());
        }
        if self.recent_ids.iter().any(|id| *id == ev.event_id) {
            return Applied::Duplicate;
        }
        if ev.ts < self.ts {
            return Applied::Stale;
        }
        let activity = match &ev.signal {
            Signal::Ignore => return Applied::Ignored,
            Signal::SessionEnd => None,
            Signal::Activity(a) => Some(*a),
        };
        if self.recent_ids.len() >= RECENT_IDS {
            self.recent_ids.pop_front();
        }
        self.recent_ids.push_back(ev.event_id.clone());
        self.ts = ev.ts;
        self.event = ev.name.clone();
        match activity {
            None => self.ended = true,
            Some(a) => {
                self.ended = false;
                let names_question = ev
                    .detail
                    .as_deref()
                    .is_some_and(|d| QUESTION_TOOLS.contains(&d));
                let a = if a == Activity::WaitingApproval
                    && (names_question || self.activity == Activity::WaitingInput)
                {
                    // AskUserQuestion fires PermissionRequest and, 6 s later, a
                    // permission_prompt notification: it is still a question.
                    Activity::WaitingInput
                } else {
                    a
                };
                if !(a == Activity::WaitingInput
                    && self.activity == Activity::WaitingInput
                    && ev.detail.is_none())
                {
                    self.detail = ev.detail.clone();
                }
                self.activity = a;
                self.extra = next_extra(self.extra, &ev.extra);
            }
        }
        Applied::Applied
    }
}

/// The details after one more event: the reset and the work are the event's own; the
/// background count stands until an event counts again (only `Stop` counts).
fn next_extra(prev: EventExtra, ev: &EventExtra) -> EventExtra {
    EventExtra {
        until: ev.until,
        background: ev.background.or(prev.background),
        work: ev.work,
    }
}

/// What the screen says, as the hysteresis sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HeuristicInput {
    /// The provider the screen looks like (`None`: cannot tell).
    pub provider: Option<Provider>,
    /// The hysteresis output.
    pub activity: Activity,
    /// The latest raw verdict and since when it holds.
    pub raw: Option<RawVerdict>,
}

impl Default for HeuristicInput {
    fn default() -> Self {
        HeuristicInput {
            provider: None,
            activity: Activity::Unknown,
            raw: None,
        }
    }
}

impl HeuristicInput {
    pub(crate) fn from_hysteresis(h: &Hysteresis, provider: Option<Provider>) -> Self {
        HeuristicInput {
            provider,
            activity: h.current(),
            raw: h.raw(),
        }
    }
}

/// Everything the resolver needs for one pane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResolverInput<'a> {
    /// The (debounced) process hint: an agent of this provider runs in the pane's process tree.
    pub agent: Option<Provider>,
    /// The latest state of each deterministic source for the pane's bound session.
    pub deterministic: &'a [DeterministicState],
    /// Health of every source; a missing entry is not admissible.
    pub health: &'a HashMap<SourceKind, Health>,
    pub heuristic: HeuristicInput,
}

seeded! {
    /// Windows of the contradiction rules.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ResolverConfig {
        /// The screen must show idle this long after the last deterministic event (rules a, c).
        /// Keep it equal to the hysteresis idle window.
        pub(crate) idle_stable_ms: Millis = 2_500,
        /// The screen must show running this long after a deterministic waiting_approval (rule b).
        pub(crate) approve_running_ms: Millis = 1_000,
        /// The screen must show a failed last turn this long after a deterministic running or
        /// waiting state (rule d). Keep it equal to the hysteresis error window.
        pub(crate) error_stable_ms: Millis = 1_000,
    }
}

/// A change of tier, logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierTransition {
    /// Deterministic evidence from `from` ended; the screen is used (`reason`: `source_down`,
    /// `source_stale`, `session_ended`, `contradiction_idle`, `contradiction_running` …).
    Fallback { from: SourceKind, reason: String },
    /// Deterministic evidence from `to` is used again.
    RePromotion { to: SourceKind },
}

impl fmt::Display for TierTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierTransition::Fallback { from, reason } => {
                write!(f, "fallback from={from} reason={reason}")
            }
            TierTransition::RePromotion { to } => write!(f, "re_promotion to={to}"),
        }
    }
}

/// The resolver's answer for one pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub presence: Presence,
    pub provider: Option<Provider>,
    pub evidence: Evidence,
    pub activity: Activity,
    pub winner: Option<SourceKind>,
    /// Why, in key=value style.
    pub reason: String,
    /// Sources that had something to say but lost, with why (`higher_priority_source`,
    /// `source_down` …).
    pub suppressed: Vec<(SourceKind, String)>,
    pub transition: Option<TierTransition>,
    /// When a pending contradiction window would change the answer: resolve again then.
    pub next_deadline: Option<Millis>,
}

impl Resolution {
    /// No agent in the pane (`reason` says how we know): unmanaged, no evidence, unknown.
    pub(crate) fn unmanaged(reason: &str, suppressed: Vec<(SourceKind, String)>) -> Self {
        Resolution {
            presence: Presence::Unmanaged,
            provider: None,
            evidence: Evidence::None,
            activity: Activity::Unknown,
            winner: None,
            reason: reason.into(),
            suppressed,
            transition: None,
            next_deadline: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Contradiction {
    source: SourceKind,
    /// Timestamp of the contradicted deterministic event.
    ts: Millis,
    activity: Activity,
    rule: &'static str,
}

/// Per-pane memory across calls: the current tier, contradictions, fallback marks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolverState {
    evidence: Option<Evidence>,
    winner: Option<SourceKind>,
    contradiction: Option<Contradiction>,
    /// Per source: the timestamp it had when we fell back (re-promotion needs a newer event).
    fallback_marks: Vec<(SourceKind, Millis)>,
    demoted: bool,
}

impl ResolverState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget everything (new pane generation).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// The evidence of the last resolution.
    pub fn evidence(&self) -> Option<Evidence> {
        self.evidence
    }
}

fn health_reason(h: Option<Health>) -> Option<&'static str> {
    match h {
        Some(Health::Healthy) => None,
        Some(Health::Stale) => Some("source_stale"),
        Some(Health::Down) => Some("source_down"),
        None => Some("source_health_unknown"),
    }
}

/// Resolve one pane. Steps: no agent → unmanaged; 1. admissible deterministic candidates,
/// best rank first (1b. a turn end no hook reports goes first); 2. the screen contradicts the
/// best one → the screen; 3. the best one wins; 4. none admissible → the screen.
pub(crate) fn resolve(
    state: &mut ResolverState,
    input: &ResolverInput<'_>,
    cfg: &ResolverConfig,
    now: Millis,
) -> Resolution {
    let mut suppressed: Vec<(SourceKind, String)> = Vec::new();
    let Some(provider) = input.agent else {
        return unmanaged(state, input, suppressed);
    };

    // 1. Admissible deterministic candidates, best rank first.
    let (mut cands, first_drop) = admissible(state, input, provider, &mut suppressed);
    // 1b. A turn end that fires no hook.
    promote_turn_end(&mut cands, provider, &mut suppressed);

    if let Some(&best) = cands.first() {
        return deterministic(state, input, cfg, now, provider, best, suppressed);
    }

    // 4. No admissible deterministic source: the screen.
    screen_fallback(state, input, provider, first_drop, suppressed)
}

/// No agent process in the pane: unmanaged, whatever its sources said last.
fn unmanaged(
    state: &mut ResolverState,
    input: &ResolverInput<'_>,
    mut suppressed: Vec<(SourceKind, String)>,
) -> Resolution {
    for d in input.deterministic {
        suppressed.push((d.source, "agent_left".into()));
    }
    state.reset();
    state.evidence = Some(Evidence::None);
    Resolution::unmanaged("no_agent_process", suppressed)
}

/// Deterministic candidates with their rank (lower is better).
type Ranked<'a> = Vec<(u8, &'a DeterministicState)>;

/// Step 1: the admissible deterministic candidates with their rank, best first; the others
/// go to `suppressed` with their reason. Also returns why the last winner dropped out, if it
/// did.
fn admissible<'a>(
    state: &ResolverState,
    input: &ResolverInput<'a>,
    provider: Provider,
    suppressed: &mut Vec<(SourceKind, String)>,
) -> (Ranked<'a>, Option<(SourceKind, String)>) {
    let mut cands: Vec<(u8, &DeterministicState)> = Vec::new();
    let mut first_drop: Option<(SourceKind, String)> = None;
    // A source that only follows a session (its transcript or rollout, `links: false`) speaks
    // while the session lives: once a linking source saw it end, its last word ends too (a
    // Codex API error must not outlive `/exit` into the next TUI in the same pane).
    let follows = |s: SourceKind| !capability::links(provider, s);
    let session_over = input
        .deterministic
        .iter()
        .any(|d| d.ended && d.provider == provider && !follows(d.source));
    for d in input.deterministic {
        let why: Option<String> = if !d.source.is_deterministic() {
            Some("not_deterministic".into())
        } else if d.provider != provider {
            Some(format!(
                "provider_mismatch agent={provider} source_provider={}",
                d.provider
            ))
        } else if capability::rank(provider, d.source).is_none() {
            Some("no_capability".into())
        } else if d.ended || (session_over && follows(d.source)) {
            Some("session_ended".into())
        } else if let Some(r) = health_reason(input.health.get(&d.source).copied()) {
            Some(r.into())
        } else if state
            .fallback_marks
            .iter()
            .any(|(s, ts)| *s == d.source && d.ts <= *ts)
        {
            Some("awaiting_fresh_event".into())
        } else {
            None
        };
        match why {
            Some(w) => {
                if state.winner == Some(d.source) && first_drop.is_none() {
                    first_drop = Some((d.source, w.clone()));
                }
                suppressed.push((d.source, w));
            }
            None => {
                if let Some(r) = capability::rank(provider, d.source) {
                    cands.push((r, d));
                }
            }
        }
    }
    cands.sort_by_key(|(r, d)| (*r, std::cmp::Reverse(d.ts)));
    (cands, first_drop)
}

/// Step 1b. A turn end that fires no hook (C-007: Claude writes its Esc interrupt and Esc deny
/// to the transcript only, Codex an API error to its rollout only). A source declared to see
/// such turn ends wins with its idle or error when it is newer than the best source's
/// running or waiting state; any newer event of the best source (the next prompt) wins
/// again by rank. Every candidate but the first goes to `suppressed`.
fn promote_turn_end(
    cands: &mut Ranked<'_>,
    provider: Provider,
    suppressed: &mut Vec<(SourceKind, String)>,
) {
    let mut superseded = None;
    if let Some(&(_, best)) = cands.first()
        && matches!(
            best.activity,
            Activity::Running | Activity::WaitingApproval | Activity::WaitingInput
        )
        && let Some(pos) = cands.iter().position(|(_, d)| {
            matches!(
                d.activity,
                Activity::Idle | Activity::Error | Activity::Limited
            ) && d.ts > best.ts
                && capability::capability(provider, d.source).is_some_and(|c| c.turn_end)
        })
    {
        let t = cands.remove(pos);
        cands.insert(0, t);
        superseded = Some(best.source);
    }
    for (_, d) in cands.iter().skip(1) {
        let why = if superseded == Some(d.source) {
            "superseded_by_turn_end"
        } else {
            "higher_priority_source"
        };
        suppressed.push((d.source, why.into()));
    }
}

/// Steps 2 and 3: the best deterministic candidate `w` wins unless the screen contradicts it
/// (then the screen does, and the contradiction is held until `w`'s source says something new).
fn deterministic(
    state: &mut ResolverState,
    input: &ResolverInput<'_>,
    cfg: &ResolverConfig,
    now: Millis,
    provider: Provider,
    (rank, w): (u8, &DeterministicState),
    mut suppressed: Vec<(SourceKind, String)>,
) -> Resolution {
    let heur = input.heuristic;
    let was_det = state.evidence == Some(Evidence::Deterministic);
    // 2. Contradiction by the screen?
    let mut deadline = None;
    let held = state
        .contradiction
        .filter(|c| c.source == w.source && w.ts <= c.ts);
    let fresh = if held.is_none() {
        check_contradiction(w, &heur, provider, cfg, now, &mut deadline)
    } else {
        None
    };
    if let Some(c) = held.or(fresh) {
        state.contradiction = Some(c);
        let activity = if heur.activity == Activity::Unknown {
            c.activity
        } else {
            heur.activity
        };
        let transition = was_det.then(|| TierTransition::Fallback {
            from: w.source,
            reason: c.rule.into(),
        });
        if was_det {
            state.demoted = true;
        }
        suppressed.push((w.source, c.rule.into()));
        state.evidence = Some(Evidence::Heuristic);
        state.winner = Some(SourceKind::Poller);
        return Resolution {
            presence: Presence::Managed,
            provider: Some(provider),
            evidence: Evidence::Heuristic,
            activity,
            winner: Some(SourceKind::Poller),
            reason: format!(
                "{} det_source={} det={} det_event={} det_ts={} screen={}",
                c.rule, w.source, w.activity, w.event, w.ts, heur.activity
            ),
            suppressed,
            transition,
            next_deadline: None,
        };
    }
    // 3. Deterministic wins.
    let transition =
        (state.demoted && !was_det).then_some(TierTransition::RePromotion { to: w.source });
    state.contradiction = None;
    state.fallback_marks.clear();
    state.demoted = false;
    state.evidence = Some(Evidence::Deterministic);
    state.winner = Some(w.source);
    let mut reason = format!(
        "winner={} rank={rank} event={} ts={}",
        w.source, w.event, w.ts
    );
    if let Some(d) = &w.detail {
        reason.push_str(&format!(" detail={}", kv_value(d)));
    }
    Resolution {
        presence: Presence::Managed,
        provider: Some(provider),
        evidence: Evidence::Deterministic,
        activity: w.activity,
        winner: Some(w.source),
        reason,
        suppressed,
        transition,
        next_deadline: deadline,
    }
}

/// Step 4. No admissible deterministic source: the screen, unless the poller is unhealthy too.
/// Falling back from a deterministic winner marks every source's timestamp (re-promotion
/// needs a newer event).
fn screen_fallback(
    state: &mut ResolverState,
    input: &ResolverInput<'_>,
    provider: Provider,
    first_drop: Option<(SourceKind, String)>,
    suppressed: Vec<(SourceKind, String)>,
) -> Resolution {
    let heur = input.heuristic;
    let was_det = state.evidence == Some(Evidence::Deterministic);
    let prev_winner = state.winner;
    let mut transition = None;
    if was_det {
        if let Some(from) = prev_winner {
            let why = first_drop
                .map(|(_, w)| w)
                .unwrap_or_else(|| "source_missing".into());
            let why = why.split(' ').next().unwrap_or("").to_string();
            transition = Some(TierTransition::Fallback { from, reason: why });
        }
        state.fallback_marks = input
            .deterministic
            .iter()
            .map(|d| (d.source, d.ts))
            .collect();
        state.demoted = true;
    }
    // A held contradiction stays: if the source comes back with no newer event, its old state
    // is still contradicted.
    if let Some(r) = health_reason(input.health.get(&SourceKind::Poller).copied()) {
        state.evidence = Some(Evidence::None);
        state.winner = None;
        return Resolution {
            presence: Presence::Managed,
            provider: Some(provider),
            evidence: Evidence::None,
            activity: Activity::Unknown,
            winner: None,
            reason: format!("no_admissible_source poller={r}"),
            suppressed,
            transition,
            next_deadline: None,
        };
    }
    state.evidence = Some(Evidence::Heuristic);
    state.winner = Some(SourceKind::Poller);
    let reason = match &transition {
        Some(t) => format!("heuristic {t} screen={}", heur.activity),
        None if input.deterministic.is_empty() => {
            format!("heuristic no_deterministic_state screen={}", heur.activity)
        }
        None => format!(
            "heuristic deterministic_inadmissible screen={}",
            heur.activity
        ),
    };
    Resolution {
        presence: Presence::Managed,
        provider: Some(provider),
        evidence: Evidence::Heuristic,
        activity: heur.activity,
        winner: Some(SourceKind::Poller),
        reason,
        suppressed,
        transition,
        next_deadline: None,
    }
}

/// Rules (a)/(b)/(c)/(d). Sets `deadline` when a rule is pending.
fn check_contradiction(
    w: &DeterministicState,
    heur: &HeuristicInput,
    provider: Provider,
    cfg: &ResolverConfig,
    now: Millis,
    deadline: &mut Option<Millis>,
) -> Option<Contradiction> {
    let raw = heur.raw?;
    if heur.provider.is_some_and(|p| p != provider) {
        return None;
    }
    let start = raw.since.max(w.ts);
    let (window, to, rule) = match (w.activity, raw.activity) {
        (
            Activity::Running | Activity::WaitingApproval | Activity::WaitingInput,
            Activity::Idle,
        ) => (cfg.idle_stable_ms, Activity::Idle, "contradiction_idle"),
        (Activity::WaitingApproval, Activity::Running) => (
            cfg.approve_running_ms,
            Activity::Running,
            "contradiction_running",
        ),
        // (d) An API error that fires no hook (every Codex API error; Claude only sends
        // StopFailure): the turn is over and failed, the screen says so.
        (
            Activity::Running | Activity::WaitingApproval | Activity::WaitingInput,
            Activity::Error,
        ) => (cfg.error_stable_ms, Activity::Error, "contradiction_error"),
        // The same for a turn stopped by the usage limit (issue 23).
        (
            Activity::Running | Activity::WaitingApproval | Activity::WaitingInput,
            Activity::Limited,
        ) => (
            cfg.error_stable_ms,
            Activity::Limited,
            "contradiction_limited",
        ),
        _ => return None,
    };
    // The screen must still say so at its latest capture, which must be after the event.
    if raw.last_at < w.ts {
        *deadline = None;
        return None;
    }
    if now - start >= window {
        Some(Contradiction {
            source: w.source,
            ts: w.ts,
            activity: to,
            rule,
        })
    } else {
        *deadline = Some(start + window);
        None
    }
}

/// A value safe inside a key=value log line.
fn kv_value(s: &str) -> String {
    let t: String = s
        .chars()
        .take(64)
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "-".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        source: SourceKind,
        provider: Provider,
        id: &str,
        name: &str,
        sig: Signal,
        ts: Millis,
    ) -> NormalizedEvent {
        NormalizedEvent {
            event_id: id.into(),
            source,
            provider,
            pane_id: Some("%1".into()),
            session_key: Some("s1".into()),
            turn_id: None,
            name: name.into(),
            signal: sig,
            title: None,
            cwd: None,
            detail: None,
            ts,
            extra: Default::default(),
        }
    }

    /// A Claude hook event that sets activity `a`.
    fn claude(id: &str, name: &str, a: Activity, ts: Millis) -> NormalizedEvent {
        ev(ClaudeHooks, Claude, id, name, Signal::Activity(a), ts)
    }

    /// `SessionEnd` from `source` at `ts`.
    fn end(source: SourceKind, provider: Provider, ts: Millis) -> NormalizedEvent {
        ev(
            source,
            provider,
            "end",
            "SessionEnd",
            Signal::SessionEnd,
            ts,
        )
    }

    fn det(source: SourceKind, provider: Provider, a: Activity, ts: Millis) -> DeterministicState {
        let e = ev(
            source,
            provider,
            &format!("e{ts}"),
            "Ev",
            Signal::Activity(a),
            ts,
        );
        DeterministicState::from_event(&e).unwrap_or_else(|| panic!("state"))
    }

    fn healthy(srcs: &[SourceKind]) -> HashMap<SourceKind, Health> {
        let mut m: HashMap<SourceKind, Health> =
            srcs.iter().map(|s| (*s, Health::Healthy)).collect();
        m.insert(SourceKind::Poller, Health::Healthy);
        m
    }

    fn raw(a: Activity, since: Millis, last_at: Millis) -> Option<RawVerdict> {
        Some(RawVerdict {
            activity: a,
            confidence: 0.9,
            since,
            last_at,
            count: 3,
        })
    }

    fn heur(a: Activity, r: Option<RawVerdict>) -> HeuristicInput {
        HeuristicInput {
            provider: None,
            activity: a,
            raw: r,
        }
    }

    /// The screen: the hysteresis says `a`; the latest raw verdict is `b`, seen from `since`
    /// to `last_at`.
    fn scr(a: Activity, b: Activity, since: Millis, last_at: Millis) -> HeuristicInput {
        heur(a, raw(b, since, last_at))
    }

    /// One pane under test: its resolver state, the agent its process table names, and the
    /// sources' health.
    struct Pane {
        st: ResolverState,
        agent: Option<Provider>,
        h: HashMap<SourceKind, Health>,
    }

    /// A pane running `agent`, with `srcs` (and the poller) healthy.
    fn pane(agent: Option<Provider>, srcs: &[SourceKind]) -> Pane {
        Pane {
            st: ResolverState::new(),
            agent,
            h: healthy(srcs),
        }
    }

    /// A pane running `provider` whose one source (healthy) last said `a` at `ts`.
    fn one_source(
        provider: Provider,
        source: SourceKind,
        a: Activity,
        ts: Millis,
    ) -> (Pane, [DeterministicState; 1]) {
        let p = pane(Some(provider), &[source]);
        (p, [det(source, provider, a, ts)])
    }

    impl Pane {
        /// Resolve the pane at `now` from the deterministic states `d` and the screen `he`.
        fn at(&mut self, d: &[DeterministicState], he: HeuristicInput, now: Millis) -> Resolution {
            let input = ResolverInput {
                agent: self.agent,
                deterministic: d,
                health: &self.h,
                heuristic: he,
            };
            resolve(&mut self.st, &input, &ResolverConfig::default(), now)
        }
    }

    /// Deterministic evidence decides the pane: activity `a`.
    #[track_caller]
    fn stands(r: &Resolution, a: Activity) {
        assert_eq!((r.evidence, r.activity), (Evidence::Deterministic, a));
    }

    /// The deterministic `a` still holds while the screen's contradiction window runs; the
    /// resolver asks to be called again at `deadline`.
    #[track_caller]
    fn held(r: &Resolution, a: Activity, deadline: Millis) {
        stands(r, a);
        assert_eq!(r.next_deadline, Some(deadline));
    }

    /// Whether `r` lists `source` as suppressed for `why`.
    fn suppressed(r: &Resolution, source: SourceKind, why: &str) -> bool {
        r.suppressed.contains(&(source, why.into()))
    }

    /// The source `to` is back in charge (the agent runs again), reported as a re-promotion.
    #[track_caller]
    fn repromoted(r: &Resolution, to: SourceKind) {
        stands(r, Running);
        assert_eq!(r.transition, Some(TierTransition::RePromotion { to }));
    }

    fn fallback(from: SourceKind, reason: &str) -> Option<TierTransition> {
        Some(TierTransition::Fallback {
            from,
            reason: reason.into(),
        })
    }

    use Activity::*;
    use Provider::*;
    use SourceKind::*;

    #[test]
    fn older_and_duplicate_events_never_roll_back() {
        let mut s = det(ClaudeHooks, Claude, Running, 1000);
        let stop = claude("stop", "Stop", Idle, 2000);
        assert_eq!(s.apply(&stop), Applied::Applied);
        let late = claude("pre", "PreToolUse", Running, 1500);
        assert_eq!(s.apply(&late), Applied::Stale);
        assert_eq!(s.apply(&stop), Applied::Duplicate);
        assert_eq!(s.activity, Idle);
        assert_eq!(s.ts, 2000);
        let same_ts = claude("ups", "UserPromptSubmit", Running, 2000);
        assert_eq!(s.apply(&same_ts), Applied::Applied);
        assert_eq!(s.activity, Running);
        let other = ev(CodexHooks, Codex, "x", "Stop", Signal::Activity(Idle), 3000);
        assert!(matches!(s.apply(&other), Applied::Rejected(_)));
        let ign = ev(
            ClaudeHooks,
            Claude,
            "sub",
            "SubagentStop",
            Signal::Ignore,
            4000,
        );
        assert_eq!(s.apply(&ign), Applied::Ignored);
        assert_eq!(s.activity, Running);
    }

    #[test]
    fn ask_user_question_stays_waiting_input() {
        let mut pre = claude("1", "PreToolUse", WaitingInput, 1000);
        pre.detail = Some("AskUserQuestion".into());
        let mut s = DeterministicState::from_event(&pre).unwrap_or_else(|| panic!());
        let mut perm = claude("2", "PermissionRequest", WaitingApproval, 1001);
        perm.detail = Some("AskUserQuestion".into());
        s.apply(&perm);
        assert_eq!(s.activity, WaitingInput);
        s.apply(&claude("3", "Notification", WaitingApproval, 7000));
        assert_eq!(s.activity, WaitingInput);
        assert_eq!(s.detail.as_deref(), Some("AskUserQuestion"));
        // A real approval after the question was answered.
        s.apply(&claude("4", "PostToolUse", Running, 9000));
        let mut perm2 = claude("5", "PermissionRequest", WaitingApproval, 9500);
        perm2.detail = Some("Bash".into());
        s.apply(&perm2);
        assert_eq!(s.activity, WaitingApproval);
    }

    #[test]
    fn session_end_ends_deterministic_evidence() {
        let mut s = det(ClaudeHooks, Claude, Idle, 1000);
        s.apply(&end(ClaudeHooks, Claude, 2000));
        assert!(s.ended);
        let mut p = pane(Some(Claude), &[ClaudeHooks]);
        let r = p.at(&[s], scr(Idle, Idle, 0, 2000), 3000);
        assert_eq!(r.evidence, Evidence::Heuristic);
        assert!(suppressed(&r, ClaudeHooks, "session_ended"));
    }

    #[test]
    fn quiet_idle_for_hours_stays_deterministic() {
        let (mut p, d) = one_source(Claude, ClaudeHooks, Idle, 1000);
        for now in [2000, 3_600_000, 5 * 3_600_000] {
            let r = p.at(&d, scr(Idle, Idle, 500, now), now);
            assert_eq!(
                (r.evidence, r.activity, r.winner),
                (Evidence::Deterministic, Idle, Some(ClaudeHooks))
            );
            assert_eq!(r.transition, None);
        }
    }

    #[test]
    fn no_agent_process_is_unmanaged_whatever_else_says() {
        let mut p = pane(None, &[ClaudeHooks]);
        let d = [det(ClaudeHooks, Claude, Running, 1000)];
        let r = p.at(&d, scr(Running, Running, 0, 1000), 2000);
        assert_eq!(
            (r.presence, r.evidence, r.activity),
            (Presence::Unmanaged, Evidence::None, Unknown)
        );
    }

    #[test]
    fn screen_flapping_does_not_flap_presence_or_deterministic_activity() {
        let (mut p, d) = one_source(Claude, ClaudeHooks, Running, 1000);
        for i in 0..50 {
            let now = 1000 + i * 400;
            let a = if i % 2 == 0 { Idle } else { Unknown };
            let r = p.at(&d, scr(Running, a, now, now), now);
            assert_eq!(
                (r.presence, r.evidence, r.activity),
                (Presence::Managed, Evidence::Deterministic, Running),
                "step {i}"
            );
        }
    }

    #[test]
    fn an_api_error_without_a_hook_is_taken_from_the_screen() {
        // Codex: UserPromptSubmit said running; the API error fires no hook.
        let (mut p, d) = one_source(Codex, CodexHooks, Running, 10_000);
        let r = p.at(&d, scr(Running, Error, 12_000, 12_500), 12_500);
        held(&r, Running, 13_000);
        let r = p.at(&d, scr(Error, Error, 12_000, 13_000), 13_000);
        assert_eq!((r.evidence, r.activity), (Evidence::Heuristic, Error));
        assert!(r.reason.starts_with("contradiction_error"), "{}", r.reason);
        // A screen error older than the event is no contradiction.
        let (mut p, d) = one_source(Codex, CodexHooks, Running, 20_000);
        let r = p.at(&d, scr(Error, Error, 12_000, 19_000), 21_000);
        stands(&r, Running);
    }

    #[test]
    fn a_transcript_turn_end_supersedes_running_at_once_and_the_next_prompt_wins_again() {
        let mut p = pane(Some(Claude), &[ClaudeHooks, ClaudeTranscript]);
        // The screen still shows the spinner: no contradiction window is involved.
        let busy = || scr(Running, Running, 10_000, 10_000);
        // The hooks' state (`a` at `at`) beside the transcript's (`b` at `b_at`).
        let d = |a, at, b, b_at| {
            [
                det(ClaudeHooks, Claude, a, at),
                det(ClaudeTranscript, Claude, b, b_at),
            ]
        };
        // An interrupt older than the running state (the previous turn's) changes nothing.
        let r = p.at(&d(Running, 10_000, Idle, 9_000), busy(), 10_100);
        assert_eq!((r.activity, r.winner), (Running, Some(ClaudeHooks)));
        // Esc: the transcript says the turn ended, after the last hook.
        let r = p.at(&d(Running, 10_000, Idle, 12_000), busy(), 12_001);
        assert_eq!(
            (r.evidence, r.activity, r.winner),
            (Evidence::Deterministic, Idle, Some(ClaudeTranscript))
        );
        assert!(
            suppressed(&r, ClaudeHooks, "superseded_by_turn_end"),
            "{:?}",
            r.suppressed
        );
        // The next prompt (a newer hook event) wins by rank again.
        let r = p.at(&d(Running, 15_000, Idle, 12_000), busy(), 15_001);
        assert_eq!((r.activity, r.winner), (Running, Some(ClaudeHooks)));
        // Waiting for an approval, then Esc (deny): idle as well.
        let r = p.at(&d(WaitingApproval, 16_000, Idle, 16_500), busy(), 16_501);
        assert_eq!((r.activity, r.winner), (Idle, Some(ClaudeTranscript)));
        // A finished turn (hooks idle) is not "superseded": hooks keep it.
        let r = p.at(&d(Idle, 17_000, Idle, 17_500), busy(), 17_501);
        assert_eq!((r.activity, r.winner), (Idle, Some(ClaudeHooks)));
        // An unhealthy transcript source is not admissible.
        p.h = healthy(&[ClaudeHooks]);
        let r = p.at(&d(Running, 10_000, Idle, 20_000), busy(), 20_001);
        assert_eq!((r.activity, r.winner), (Running, Some(ClaudeHooks)));
    }

    #[test]
    fn a_rollout_api_error_supersedes_codex_hooks_running_and_the_next_prompt_wins_again() {
        // Codex without an app-server: the hooks said running, the API error fires no hook,
        // the rollout says the turn failed.
        let h = healthy(&[CodexHooks, CodexRollout]);
        let mut p = pane(Some(Codex), &[CodexHooks, CodexRollout]);
        let busy = || scr(Running, Running, 10_000, 10_000);
        // The hooks said running at `at`; the rollout says the turn failed at `err_at`.
        let d = |at, err_at| {
            [
                det(CodexHooks, Codex, Running, at),
                det(CodexRollout, Codex, Error, err_at),
            ]
        };
        let r = p.at(&d(10_000, 11_000), busy(), 11_001);
        assert_eq!(
            (r.evidence, r.activity, r.winner),
            (Evidence::Deterministic, Error, Some(CodexRollout))
        );
        // The next prompt (a newer hook) wins by rank.
        let r = p.at(&d(12_000, 11_000), busy(), 12_001);
        assert_eq!((r.activity, r.winner), (Running, Some(CodexHooks)));
        // A rollout whose hooks are stale (their Codex daemon is gone) is not admissible.
        p.h = healthy(&[CodexHooks]);
        let r = p.at(&d(13_000, 14_000), busy(), 14_001);
        assert_eq!((r.activity, r.winner), (Running, Some(CodexHooks)));
        // The session ended (`/exit`): the rollout's error ends with it, whatever its time.
        p.h = h;
        let [mut ended, err] = d(15_000, 17_000);
        ended.apply(&end(CodexHooks, Codex, 16_000));
        let r = p.at(&[ended, err], scr(Idle, Idle, 15_000, 17_000), 17_001);
        assert_ne!(r.evidence, Evidence::Deterministic, "{r:?}");
        assert!(
            suppressed(&r, CodexRollout, "session_ended"),
            "{:?}",
            r.suppressed
        );
    }

    #[test]
    fn only_a_source_declared_turn_end_supersedes() {
        // Codex hooks (rank 1) saying idle after the app-server's running is an ordinary
        // lower-ranked source: the app-server keeps the pane.
        let d = [
            det(CodexAppServer, Codex, Running, 10_000),
            det(CodexHooks, Codex, Idle, 11_000),
        ];
        let mut p = pane(Some(Codex), &[CodexAppServer, CodexHooks]);
        let r = p.at(&d, scr(Running, Running, 10_000, 10_000), 11_001);
        assert_eq!((r.activity, r.winner), (Running, Some(CodexAppServer)));
    }

    #[test]
    fn esc_interrupt_contradiction_then_repromotion() {
        let (mut p, d) = one_source(Claude, ClaudeHooks, Running, 10_000);
        let r = p.at(&d, scr(Running, Running, 10_000, 10_000), 10_000);
        assert_eq!(r.evidence, Evidence::Deterministic);
        // Esc: the screen shows the idle prompt from 20 s on; no hook fires.
        let r = p.at(&d, scr(Running, Idle, 20_000, 21_000), 21_000);
        held(&r, Running, 22_500);
        let r = p.at(&d, scr(Idle, Idle, 20_000, 22_500), 22_500);
        assert_eq!(
            (r.evidence, r.activity, r.winner),
            (Evidence::Heuristic, Idle, Some(Poller))
        );
        assert!(r.reason.starts_with("contradiction_idle"), "{}", r.reason);
        assert_eq!(r.transition, fallback(ClaudeHooks, "contradiction_idle"));
        // Held (reported once) while no newer event, even if the screen changes.
        let r = p.at(&d, scr(Idle, Unknown, 30_000, 30_000), 30_000);
        assert_eq!(
            (r.evidence, r.activity, r.transition.clone()),
            (Evidence::Heuristic, Idle, None)
        );
        // The next prompt: UserPromptSubmit re-promotes at once.
        let d2 = [det(ClaudeHooks, Claude, Running, 40_000)];
        let r = p.at(&d2, scr(Idle, Idle, 20_000, 39_000), 40_000);
        repromoted(&r, ClaudeHooks);
    }

    #[test]
    fn idle_screen_before_the_event_is_no_contradiction() {
        // The screen was idle long before UserPromptSubmit: the window starts at the event.
        let (mut p, d) = one_source(Claude, ClaudeHooks, Running, 10_000);
        let r = p.at(&d, scr(Idle, Idle, 0, 10_500), 10_500);
        held(&r, Running, 12_500);
        // A capture older than the event cannot contradict it.
        let r = p.at(&d, scr(Idle, Idle, 0, 9_000), 20_000);
        stands(&r, Running);
    }

    #[test]
    fn long_approved_command_shows_running() {
        let (mut p, d) = one_source(Claude, ClaudeHooks, WaitingApproval, 5_000);
        let r = p.at(
            &d,
            scr(WaitingApproval, WaitingApproval, 5_050, 6_000),
            6_000,
        );
        stands(&r, WaitingApproval);
        // The user approves at 8 s: the dialog goes, the spinner is back. No hook fires.
        let r = p.at(&d, scr(WaitingApproval, Running, 8_000, 8_500), 8_500);
        assert_eq!(r.activity, WaitingApproval);
        assert_eq!(r.next_deadline, Some(9_000));
        let r = p.at(&d, scr(Running, Running, 8_000, 9_000), 9_000);
        assert_eq!((r.evidence, r.activity), (Evidence::Heuristic, Running));
        assert!(r.reason.starts_with("contradiction_running"));
        // Minutes later PostToolUse arrives and re-promotes.
        let d2 = [det(ClaudeHooks, Claude, Running, 300_000)];
        let r = p.at(&d2, scr(Running, Running, 8_000, 300_000), 300_000);
        stands(&r, Running);
    }

    #[test]
    fn esc_on_a_question_is_idle() {
        let (mut p, d) = one_source(Claude, ClaudeHooks, WaitingInput, 5_000);
        let r = p.at(&d, scr(Idle, Idle, 6_000, 9_000), 9_000);
        assert_eq!((r.evidence, r.activity), (Evidence::Heuristic, Idle));
        // A screen showing running under a question is not rule (b).
        p.st = ResolverState::new();
        let r = p.at(&d, scr(Running, Running, 6_000, 9_000), 9_000);
        stands(&r, WaitingInput);
    }

    #[test]
    fn fallback_and_repromotion_on_health() {
        let (mut p, d) = one_source(Codex, CodexAppServer, Running, 1_000);
        let r = p.at(&d, scr(Running, Running, 0, 1_000), 1_000);
        assert_eq!(r.evidence, Evidence::Deterministic);
        p.h.insert(CodexAppServer, Health::Down);
        let r = p.at(&d, scr(Idle, Idle, 2_000, 9_000), 9_000);
        assert_eq!((r.evidence, r.activity), (Evidence::Heuristic, Idle));
        assert_eq!(r.transition, fallback(CodexAppServer, "source_down"));
        // Reported once.
        let r = p.at(&d, scr(Idle, Idle, 2_000, 10_000), 10_000);
        assert_eq!(r.transition, None);
        // Healthy again but no new event: the old state may be outdated; stay on the screen.
        p.h.insert(CodexAppServer, Health::Healthy);
        let r = p.at(&d, scr(Idle, Idle, 2_000, 11_000), 11_000);
        assert_eq!(r.evidence, Evidence::Heuristic);
        assert!(suppressed(&r, CodexAppServer, "awaiting_fresh_event"));
        // Events flow again: immediate re-promotion.
        let d2 = [det(CodexAppServer, Codex, Running, 12_000)];
        let r = p.at(&d2, scr(Idle, Idle, 2_000, 11_000), 12_000);
        repromoted(&r, CodexAppServer);
    }

    #[test]
    fn ranks_come_from_the_capability_registry() {
        let mut p = pane(Some(Codex), &[CodexAppServer, CodexHooks]);
        // Hooks are newer, but the app-server outranks them while healthy.
        let d = [
            det(CodexHooks, Codex, Idle, 5_000),
            det(CodexAppServer, Codex, Running, 4_000),
        ];
        let r = p.at(&d, heur(Unknown, None), 6_000);
        assert_eq!((r.winner, r.activity), (Some(CodexAppServer), Running));
        assert!(suppressed(&r, CodexHooks, "higher_priority_source"));
        // App-server stale: hooks win, still deterministic.
        p.h.insert(CodexAppServer, Health::Stale);
        let r = p.at(&d, heur(Unknown, None), 7_000);
        assert_eq!(
            (r.winner, r.evidence, r.activity),
            (Some(CodexHooks), Evidence::Deterministic, Idle)
        );
        assert!(suppressed(&r, CodexAppServer, "source_stale"));
    }

    #[test]
    fn provider_mismatch_and_unknown_health_are_inadmissible() {
        let mut p = pane(Some(Codex), &[]);
        let d = [det(ClaudeHooks, Claude, Running, 1_000)];
        let r = p.at(&d, heur(Idle, None), 2_000);
        assert_eq!(r.evidence, Evidence::Heuristic);
        assert!(r.suppressed[0].1.starts_with("provider_mismatch"));
        p.agent = Some(Claude);
        let r = p.at(&d, heur(Idle, None), 2_000);
        assert!(suppressed(&r, ClaudeHooks, "source_health_unknown"));
        p.h.insert(Poller, Health::Down);
        let r = p.at(&[], heur(Idle, None), 2_000);
        assert_eq!(
            (r.evidence, r.activity, r.winner),
            (Evidence::None, Unknown, None)
        );
    }

    #[test]
    fn heuristic_only_pane_has_no_transition() {
        let mut p = pane(Some(Codex), &[]);
        let r = p.at(&[], heur(Running, None), 1_000);
        assert_eq!(
            (r.evidence, r.activity, r.transition),
            (Evidence::Heuristic, Running, None)
        );
        // First deterministic event: a promotion, not a re-promotion.
        p.h = healthy(&[CodexHooks]);
        let d = [det(CodexHooks, Codex, Running, 2_000)];
        let r = p.at(&d, heur(Running, None), 2_000);
        assert_eq!((r.evidence, r.transition), (Evidence::Deterministic, None));
    }
}
