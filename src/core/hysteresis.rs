//! Flow-008 heuristic hysteresis: turns the stream of per-capture screen verdicts of one pane
//! into a heuristic activity that does not flap.
//!
//! Why: one capture can be taken mid-redraw, a spinner line can vanish for a frame, and a Codex
//! turn that streams text shows no "Working" line at all. Reporting each capture as-is would make
//! the status line flicker and would call a working agent idle. The seed fixes the windows
//! an interaction window of 8 s, demotion after 45 s without the running hint, and an
//! idle stable window. They are configurable defaults here.
//!
//! Semantics (each is a test below):
//! - **Dialogs** (`waiting_approval`, `waiting_input`) are unambiguous and must be reported fast:
//!   a verdict at or above `sure_confidence` is taken at once. A weaker one is taken once it is
//!   confirmed (seen in two consecutive captures, or still the latest verdict `confirm_ms` later),
//!   so one misread capture cannot flap the state.
//! - **Running** is promoted at once on a sure running hint; a weaker hint needs a second one
//!   within the interaction window. A hint counts while it was seen within the interaction
//!   window. Leaving a dialog for running needs the same confirmation as entering a weak dialog
//!   (a flicker of the dialog box must not end it).
//! - **Idle** is confirmed only after the screen showed idle for the whole `idle_stable_ms`.
//!   Default 2.5 s: a Claude/Codex screen between two tool calls or API retries can look idle
//!   for one or two captures (well under 2 s in the recordings), while the product bar for a
//!   heuristic change is "≤ 1 s after the hysteresis window", so 2.5 s keeps a finished turn
//!   visible within ~3.5 s without reporting the gaps. Any other verdict restarts the window, so
//!   running/idle alternating on every capture stays running.
//! - **Error** is taken once the error verdict stayed the latest for `error_stable_ms` (1 s):
//!   an error line can show for a moment before a retry.
//! - When the running hint (or the dialog) disappears and the screen is not recognizably idle
//!   (unknown verdicts), the state holds until `demote_after_ms` (45 s) since the hint was last
//!   seen, then becomes `unknown` (we no longer know; we never guess idle).
//! - Verdicts below `min_confidence` count as `unknown`. Older captures than the last one are
//!   ignored.
//!
//! Pure: `now` is passed in. `next_deadline()` tells the daemon when a timer would change the
//! state so it can call `tick(now)` exactly then.
use super::seeded::seeded;
use super::types::{Activity, Millis};

seeded! {
    /// Windows and thresholds. `Default` gives the seed values.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct HysteresisConfig {
        /// A running hint counts for this long after it was last seen (seed: 8 s).
        pub(crate) interaction_window_ms: Millis = 8_000,
        /// Running (or a dialog) becomes unknown this long after its hint was last seen
        /// (seed: 45 s).
        pub(crate) demote_after_ms: Millis = 45_000,
        /// The screen must show idle this long before idle is reported.
        pub(crate) idle_stable_ms: Millis = 2_500,
        /// The screen must show an error this long before error is reported.
        pub(crate) error_stable_ms: Millis = 1_000,
        /// A weak dialog/running verdict, or a way out of a dialog, is confirmed after this long
        /// as the latest verdict (or by a second consecutive capture).
        pub(crate) confirm_ms: Millis = 1_000,
        /// At or above: a dialog or running verdict is taken at once.
        pub(crate) sure_confidence: f32 = 0.8,
        /// Below: the verdict counts as unknown.
        pub(crate) min_confidence: f32 = 0.3,
    }
}

/// The raw verdict stream as the hysteresis sees it: the latest verdict and since when the
/// screen has said the same thing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawVerdict {
    pub activity: Activity,
    /// Highest confidence seen during this run of equal verdicts.
    pub(crate) confidence: f32,
    /// First capture of this run of equal verdicts.
    pub since: Millis,
    /// Latest capture.
    pub(crate) last_at: Millis,
    /// Captures in this run.
    pub count: u32,
}

/// A state change with its reason (key=value style) for the daemon's log and `explain`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HysteresisChange {
    pub from: Activity,
    pub to: Activity,
    pub at: Millis,
    pub reason: String,
}

/// One named timer for `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub name: &'static str,
    pub deadline: Millis,
}

/// Per-pane heuristic activity.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    cfg: HysteresisConfig,
    current: Activity,
    current_since: Option<Millis>,
    /// Last time the screen showed the current activity (for demotion).
    current_seen: Option<Millis>,
    raw: Option<RawVerdict>,
    last_running: Option<Millis>,
    prev_running: Option<Millis>,
    last_change: Option<HysteresisChange>,
}

fn is_dialog(a: Activity) -> bool {
    matches!(a, Activity::WaitingApproval | Activity::WaitingInput)
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis::new(HysteresisConfig::default())
    }
}

impl Hysteresis {
    pub fn new(cfg: HysteresisConfig) -> Self {
        Hysteresis {
            cfg,
            current: Activity::Unknown,
            current_since: None,
            current_seen: None,
            raw: None,
            last_running: None,
            prev_running: None,
            last_change: None,
        }
    }

    pub fn config(&self) -> &HysteresisConfig {
        &self.cfg
    }

    /// The heuristic activity now.
    pub fn current(&self) -> Activity {
        self.current
    }

    /// When the current activity was entered.
    pub(crate) fn current_since(&self) -> Option<Millis> {
        self.current_since
    }

    /// The latest raw verdict and how long the screen has said it.
    pub fn raw(&self) -> Option<RawVerdict> {
        self.raw
    }

    /// The last change and why.
    pub(crate) fn last_change(&self) -> Option<&HysteresisChange> {
        self.last_change.as_ref()
    }

    /// True while a running hint was seen within the interaction window.
    pub fn running_hint_fresh(&self, now: Millis) -> bool {
        self.last_running
            .is_some_and(|t| now - t <= self.cfg.interaction_window_ms)
    }

    /// Feed one capture's verdict. Returns the new activity if it changed.
    pub(crate) fn observe(
        &mut self,
        verdict: Activity,
        confidence: f32,
        now: Millis,
    ) -> Option<Activity> {
        if let Some(r) = self.raw
            && now < r.last_at
        {
            return None; // an older capture than the last one: ignore
        }
        let conf = if confidence.is_finite() {
            confidence.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let verdict = if conf < self.cfg.min_confidence {
            Activity::Unknown
        } else {
            verdict
        };
        self.raw = Some(match self.raw {
            Some(r) if r.activity == verdict => RawVerdict {
                confidence: r.confidence.max(conf),
                last_at: now,
                count: r.count.saturating_add(1),
                ..r
            },
            _ => RawVerdict {
                activity: verdict,
                confidence: conf,
                since: now,
                last_at: now,
                count: 1,
            },
        });
        if verdict == Activity::Running {
            self.prev_running = self.last_running;
            self.last_running = Some(now);
        }
        if verdict == self.current && verdict != Activity::Unknown {
            self.current_seen = Some(now);
        }
        self.step(now)
    }

    /// Re-evaluate timers without a new capture. Returns the new activity if it changed.
    pub fn tick(&mut self, now: Millis) -> Option<Activity> {
        self.step(now)
    }

    fn step(&mut self, now: Millis) -> Option<Activity> {
        let (to, reason) = self.decide(now)?;
        let from = self.current;
        self.current = to;
        self.current_since = Some(now);
        self.current_seen = Some(now);
        self.last_change = Some(HysteresisChange {
            from,
            to,
            at: now,
            reason,
        });
        Some(to)
    }

    fn confirmed(&self, r: &RawVerdict, now: Millis) -> bool {
        r.count >= 2 || now - r.since >= self.cfg.confirm_ms
    }

    fn decide(&self, now: Millis) -> Option<(Activity, String)> {
        let cfg = &self.cfg;
        if let Some(r) = self.raw {
            let a = r.activity;
            if a != self.current {
                let sure = r.confidence >= cfg.sure_confidence;
                let took = match a {
                    Activity::Unknown => None,
                    Activity::WaitingApproval | Activity::WaitingInput => {
                        if sure {
                            Some("rule=dialog_sure")
                        } else if self.confirmed(&r, now) {
                            Some("rule=dialog_confirmed")
                        } else {
                            None
                        }
                    }
                    Activity::Running => {
                        if is_dialog(self.current) {
                            self.confirmed(&r, now).then_some("rule=dialog_left")
                        } else if sure {
                            Some("rule=running_hint")
                        } else if self.confirmed(&r, now)
                            || self
                                .prev_running
                                .is_some_and(|p| r.since - p <= cfg.interaction_window_ms)
                        {
                            Some("rule=running_corroborated")
                        } else {
                            None
                        }
                    }
                    Activity::Idle => {
                        (now - r.since >= cfg.idle_stable_ms).then_some("rule=idle_stable")
                    }
                    Activity::Error | Activity::Limited => {
                        (now - r.since >= cfg.error_stable_ms).then_some("rule=error_stable")
                    }
                };
                if let Some(rule) = took {
                    return Some((
                        a,
                        format!(
                            "hysteresis from={} to={} {rule} stable_ms={} captures={} confidence={:.2}",
                            self.current,
                            a,
                            now - r.since,
                            r.count,
                            r.confidence
                        ),
                    ));
                }
            }
        }
        if let Some(deadline) = self.demote_deadline()
            && now >= deadline
        {
            return Some((
                Activity::Unknown,
                format!(
                    "hysteresis from={} to=unknown rule=demoted no_hint_ms={}",
                    self.current,
                    now - (deadline - cfg.demote_after_ms)
                ),
            ));
        }
        None
    }

    fn demote_deadline(&self) -> Option<Millis> {
        if !(self.current == Activity::Running || is_dialog(self.current)) {
            return None;
        }
        let seen = if self.current == Activity::Running {
            self.last_running.or(self.current_seen)
        } else {
            self.current_seen
        };
        seen.map(|t| t + self.cfg.demote_after_ms)
    }

    /// Every pending timer (for `explain`).
    pub fn timers(&self) -> Vec<Timer> {
        let cfg = &self.cfg;
        let mut out = Vec::new();
        if let Some(r) = self.raw
            && r.activity != self.current
        {
            match r.activity {
                Activity::Idle => out.push(Timer {
                    name: "idle_stable",
                    deadline: r.since + cfg.idle_stable_ms,
                }),
                Activity::Error | Activity::Limited => out.push(Timer {
                    name: "error_stable",
                    deadline: r.since + cfg.error_stable_ms,
                }),
                Activity::Running | Activity::WaitingApproval | Activity::WaitingInput => {
                    if r.count < 2 {
                        out.push(Timer {
                            name: "confirm",
                            deadline: r.since + cfg.confirm_ms,
                        })
                    }
                }
                Activity::Unknown => {}
            }
        }
        if let Some(d) = self.demote_deadline() {
            out.push(Timer {
                name: "demote",
                deadline: d,
            });
        }
        if let Some(t) = self.last_running {
            out.push(Timer {
                name: "interaction_window",
                deadline: t + cfg.interaction_window_ms,
            });
        }
        out
    }

    /// The earliest moment a timer would change the state (`None`: only a capture can).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers()
            .into_iter()
            .filter(|t| t.name != "interaction_window")
            .map(|t| t.deadline)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Activity::*;

    /// Feed (time, verdict, confidence) and return the activity after each step.
    fn run(steps: &[(Millis, Activity, f32)]) -> Vec<Activity> {
        let mut h = Hysteresis::default();
        steps
            .iter()
            .map(|&(t, a, c)| {
                h.observe(a, c, t);
                h.current()
            })
            .collect()
    }

    /// A hysteresis fed these (verdict, confidence, time) captures.
    fn fed(captures: &[(Activity, f32, Millis)]) -> Hysteresis {
        let mut h = Hysteresis::default();
        for &(a, c, t) in captures {
            h.observe(a, c, t);
        }
        h
    }

    /// Whether the last change was made by `rule`.
    fn changed_by(h: &Hysteresis, rule: &str) -> bool {
        h.last_change()
            .is_some_and(|c| c.reason.contains(&format!("rule={rule}")))
    }

    /// One step of a case: at time t, the verdict and its confidence, then the activity wanted.
    type Step = (Millis, Activity, f32, Activity);

    #[test]
    #[rustfmt::skip] // a table: one case a line
    fn table_of_sequences() {
        const R: Activity = Running;
        const I: Activity = Idle;
        const U: Activity = Unknown;
        const A: Activity = WaitingApproval;
        const Q: Activity = WaitingInput;
        const E: Activity = Error;
        let alternating: Vec<Step> =
            (0..40).map(|i| (i * 700, if i % 2 == 0 { R } else { I }, 0.9, R)).collect();
        let cases: &[(&str, &[Step])] = &[
            ("sure running is promoted at once", &[(0, R, 0.9, R)]),
            ("weak running needs corroboration within the interaction window",
                &[(0, R, 0.5, U), (500, U, 0.9, U), (3000, R, 0.5, R)]),
            ("weak running hints too far apart do not promote",
                &[(0, R, 0.5, U), (500, U, 0.9, U), (20_000, R, 0.5, U)]),
            ("sure approval is taken at once", &[(0, R, 0.9, R), (500, A, 0.95, A)]),
            ("weak dialog flicker for one capture does not flap",
                &[(0, R, 0.9, R), (500, A, 0.5, R), (700, R, 0.9, R)]),
            ("weak dialog confirmed by a second capture",
                &[(0, R, 0.9, R), (500, Q, 0.5, R), (800, Q, 0.5, Q)]),
            ("one running capture inside a dialog does not end it",
                &[(0, A, 0.9, A), (400, R, 0.9, A), (600, A, 0.9, A)]),
            ("approval then running twice = approved",
                &[(0, A, 0.9, A), (400, R, 0.9, A), (700, R, 0.9, R)]),
            ("idle only after the stable window",
                &[(0, R, 0.9, R), (1000, I, 0.9, R), (2000, I, 0.9, R), (3600, I, 0.9, I)]),
            ("running/idle alternating every capture stays running", &alternating),
            ("error only once stable briefly",
                &[(0, R, 0.9, R), (200, E, 0.9, R), (500, R, 0.9, R), (900, E, 0.9, R),
                  (2000, E, 0.9, E)]),
            ("low confidence verdicts count as unknown", &[(0, I, 0.1, U), (5000, I, 0.1, U)]),
            ("unknown captures hold running until the demotion",
                &[(0, R, 0.9, R), (10_000, U, 0.9, R), (44_000, U, 0.9, R), (45_000, U, 0.9, U)]),
            ("an unknown capture restarts the idle window",
                &[(0, R, 0.9, R), (1000, I, 0.9, R), (2000, U, 0.9, R), (3000, I, 0.9, R),
                  (4000, I, 0.9, R), (5600, I, 0.9, I)]),
            ("older captures are ignored",
                &[(5000, R, 0.9, R), (1000, I, 0.9, R), (9000, I, 0.9, R)]),
        ];
        for (name, steps) in cases {
            let input: Vec<_> = steps.iter().map(|&(t, a, c, _)| (t, a, c)).collect();
            let want: Vec<Activity> = steps.iter().map(|s| s.3).collect();
            assert_eq!(run(&input), want, "{name}");
        }
    }

    #[test]
    fn flapping_input_never_flaps_output() {
        let mut h = Hysteresis::default();
        let mut changes = 0;
        // Running and idle alternate on every capture for 2 minutes, then idle stays.
        for i in 0..240 {
            let a = if i % 2 == 0 { Running } else { Idle };
            if h.observe(a, 0.9, i * 500).is_some() {
                changes += 1;
            }
        }
        assert_eq!(changes, 1, "only the first promotion to running");
        assert_eq!(h.current(), Running);
    }

    #[test]
    fn timers_fire_through_tick_without_new_captures() {
        let mut h = fed(&[(Running, 0.9, 0), (Idle, 0.9, 1000)]);
        assert_eq!(h.next_deadline(), Some(3500));
        assert_eq!(h.tick(3499), None);
        assert_eq!(h.tick(3500), Some(Idle));
        assert_eq!(h.next_deadline(), None);
        assert!(changed_by(&h, "idle_stable"));
    }

    #[test]
    fn demotion_deadline_is_reported_and_fires() {
        let mut h = fed(&[(Running, 0.9, 1000), (Unknown, 0.9, 2000)]);
        assert_eq!(h.next_deadline(), Some(46_000));
        assert!(h.running_hint_fresh(9000));
        assert!(!h.running_hint_fresh(9001));
        assert_eq!(h.tick(46_000), Some(Unknown));
        assert!(changed_by(&h, "demoted"));
    }

    #[test]
    fn weak_dialog_is_confirmed_by_time_alone() {
        let mut h = fed(&[(WaitingApproval, 0.5, 0)]);
        assert_eq!(h.current(), Unknown);
        assert_eq!(h.next_deadline(), Some(1000));
        assert_eq!(h.tick(1000), Some(WaitingApproval));
    }

    #[test]
    fn dialog_with_unknown_screen_demotes_after_the_window() {
        let mut h = fed(&[(WaitingApproval, 0.9, 0), (Unknown, 0.9, 1000)]);
        assert_eq!(h.tick(44_999), None);
        assert_eq!(h.tick(45_000), Some(Unknown));
    }

    #[test]
    fn nan_confidence_is_not_a_panic() {
        let mut h = Hysteresis::default();
        assert_eq!(h.observe(Running, f32::NAN, 0), None);
        assert_eq!(h.current(), Unknown);
        let timers = h.timers();
        assert!(timers.iter().all(|t| t.deadline >= 0));
    }
}
