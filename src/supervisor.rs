//! C-001 `agtmux-runtime-supervisor`: owns the daemon's restartable components (the `tmux -C`
//! control client, a child process; the Codex app-server connection, see
//! `daemon::codex_endpoint`): spawning with non-blocking pipes for the one mio loop, reaping on
//! SIGCHLD, and restart pacing with exponential backoff and jitter.
//!
//! Flow-011 (start/restart contract) lives here too:
//! - [`Startup`]: the start order `source → gateway → daemon → api`. A stage is marked ready
//!   only after the one before it; asking for a later stage first is refused and logged, so a
//!   consumer can gate on [`Startup::is_ready`] and stay closed (fail-closed) until then.
//! - [`Supervised`]: one restartable component (the tmux control client, the Codex observer
//!   link). Failures are paced by [`Backoff`] (1 s → 30 s, ±20 % jitter); `fail_limit` (5)
//!   failures within `fail_window` (10 min) put it in a hold-down of `hold_down` (5 min) with
//!   `escalate` logged; restart and hold-down counts are kept as metrics.
//!
//! WHY: a child that keeps crashing must not be restarted in a tight loop forever, and an
//! operator must see that it gave up (`escalate`), not guess from silence. The numbers are the
//! seed's defaults; `AGTMUX_SUPERVISOR_*` environment variables shorten them for tests.
use crate::core::rng::XorShift64;
use crate::core::seeded::seeded;
use crate::sys::env;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

/// A child with its three pipes, all non-blocking.
pub struct ChildProc {
    pub name: &'static str,
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

impl ChildProc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> io::Result<ChildProc> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("child pipes missing"));
        };
        set_nonblocking(stdin.as_raw_fd())?;
        set_nonblocking(stdout.as_raw_fd())?;
        set_nonblocking(stderr.as_raw_fd())?;
        log::debug!("child_spawned name={name} pid={}", child.id());
        Ok(ChildProc {
            name,
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reap without blocking; `Some(status)` once the child has exited.
    pub(crate) fn try_reap(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kill and reap (used at shutdown and before a restart).
    pub(crate) fn terminate(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.try_reap().is_none() {
            self.terminate();
        }
    }
}

pub(crate) fn set_nonblocking(fd: i32) -> io::Result<()> {
    crate::sys::fd::set_nonblocking(fd)
}

/// Exponential backoff with ±20 % jitter (Flow-011 numbers as defaults: 1 s → 30 s; the
/// control client uses a faster start so a config reload attaches quickly).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempt: u32,
    /// Jitter.
    rng: XorShift64,
}

impl Backoff {
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
            rng: XorShift64::new(crate::sys::random::seed()),
        }
    }

    /// The delay before the next try, in ms, and count the attempt.
    pub(crate) fn next_delay(&mut self) -> u64 {
        let exp = self.base_ms.saturating_mul(1u64 << self.attempt.min(20));
        let d = exp.min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let r = self.rng.next_u64();
        let span = d / 5;
        if span == 0 {
            return d;
        }
        d - span + r % (2 * span + 1)
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

seeded! {
    /// Flow-011 restart policy (all ms). Defaults are the seed's numbers.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RestartPolicy {
        pub(crate) backoff_base: u64 = 1_000,
        pub(crate) backoff_max: u64 = 30_000,
        pub(crate) fail_window: u64 = 600_000,
        pub(crate) fail_limit: usize = 5,
        pub hold_down: u64 = 300_000,
    }
}

impl RestartPolicy {
    /// The defaults, overridden by `AGTMUX_SUPERVISOR_BACKOFF_MS=base,max`,
    /// `AGTMUX_SUPERVISOR_FAIL_WINDOW_MS`, `AGTMUX_SUPERVISOR_FAIL_LIMIT` and
    /// `AGTMUX_SUPERVISOR_HOLD_DOWN_MS` (for tests and operators). Bad values are ignored.
    pub(crate) fn from_env() -> Self {
        let mut p = RestartPolicy::default();
        if let Ok(v) = std::env::var("AGTMUX_SUPERVISOR_BACKOFF_MS")
            && let Some((a, b)) = v.split_once(',')
            && let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>())
            && a > 0
            && b >= a
        {
            p.backoff_base = a;
            p.backoff_max = b;
        }
        if let Some(v) = env::positive("AGTMUX_SUPERVISOR_FAIL_WINDOW_MS") {
            p.fail_window = v;
        }
        if let Some(v) = env::positive::<u64>("AGTMUX_SUPERVISOR_FAIL_LIMIT") {
            p.fail_limit = v as usize;
        }
        if let Some(v) = env::positive("AGTMUX_SUPERVISOR_HOLD_DOWN_MS") {
            p.hold_down = v;
        }
        p
    }
}

/// What the supervisor decided after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// Try again at this time (ms).
    At(i64),
    /// Too many failures: held down until this time, then tried again.
    HoldDown { until: i64 },
}

/// One supervised component (Flow-011).
#[derive(Debug, Clone)]
pub struct Supervised {
    pub name: &'static str,
    policy: RestartPolicy,
    backoff: Backoff,
    failures: std::collections::VecDeque<i64>,
    hold_until: Option<i64>,
    /// Restarts scheduled after a failure (metric).
    pub restarts: u64,
    /// Hold-downs entered (metric).
    pub hold_downs: u64,
    /// Why the last failure happened (for `health`).
    pub(crate) last_failure: Option<String>,
}

impl Supervised {
    pub fn new(name: &'static str, policy: RestartPolicy) -> Self {
        Supervised {
            name,
            backoff: Backoff::new(policy.backoff_base, policy.backoff_max),
            policy,
            failures: std::collections::VecDeque::new(),
            hold_until: None,
            restarts: 0,
            hold_downs: 0,
            last_failure: None,
        }
    }

    /// The component failed (exited, could not start, lost its connection) at `now`.
    pub(crate) fn on_failure(&mut self, now: i64, why: &str) -> Restart {
        self.last_failure = Some(why.to_string());
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|t| now - *t > self.policy.fail_window as i64)
        {
            self.failures.pop_front();
        }
        if self.failures.len() >= self.policy.fail_limit {
            let until = now + self.policy.hold_down as i64;
            self.hold_until = Some(until);
            self.hold_downs += 1;
            self.failures.clear();
            self.backoff.reset();
            log::error!(
                "supervisor_hold_down component={} escalate=true failures={} window_ms={} hold_down_ms={} reason={why:?}",
                self.name,
                self.policy.fail_limit,
                self.policy.fail_window,
                self.policy.hold_down
            );
            log::error!("escalate component={} reason=hold_down", self.name);
            return Restart::HoldDown { until };
        }
        self.restarts += 1;
        let d = self.backoff.next_delay() as i64;
        log::warn!(
            "supervisor_restart component={} attempt={} delay_ms={d} failures_in_window={} reason={why:?}",
            self.name,
            self.backoff.attempts(),
            self.failures.len()
        );
        Restart::At(now + d)
    }

    /// The component is up and ready: the backoff starts over (the failure window does not).
    pub(crate) fn on_ready(&mut self) {
        self.backoff.reset();
    }

    /// In a hold-down at `now`? Leaving it is logged once.
    pub(crate) fn held_down(&mut self, now: i64) -> bool {
        match self.hold_until {
            Some(u) if now < u => true,
            Some(_) => {
                self.hold_until = None;
                log::warn!("supervisor_hold_down_end component={}", self.name);
                false
            }
            None => false,
        }
    }

    pub(crate) fn hold_until(&self) -> Option<i64> {
        self.hold_until
    }

    pub(crate) fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// Metrics/health view.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "restarts": self.restarts,
            "hold_downs": self.hold_downs,
            "held_down_until": self.hold_until,
            "last_failure": self.last_failure,
        })
    }
}

/// The Flow-011 start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Sources are open and the source registry is loaded.
    Source,
    /// The gateway knows the committed cursors, the tmux server and its panes: it may ingest.
    Gateway,
    /// The projection restored its state: the read model may be published.
    Daemon,
    /// The UI-facing API answers read-model requests.
    Api,
}

impl Stage {
    pub(crate) const ALL: [Stage; 4] = [Stage::Source, Stage::Gateway, Stage::Daemon, Stage::Api];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Gateway => "gateway",
            Stage::Daemon => "daemon",
            Stage::Api => "api",
        }
    }
}

/// Readiness of the start stages; each gates the next (fail-closed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Startup {
    ready: Vec<(Stage, i64)>,
}

impl Startup {
    /// Mark `stage` ready at `now`. Refused (returns false, logged) unless every earlier stage
    /// is ready; marking a ready stage again is a no-op returning true.
    pub(crate) fn mark_ready(&mut self, stage: Stage, now: i64) -> bool {
        if self.is_ready(stage) {
            return true;
        }
        if let Some(missing) = Stage::ALL
            .iter()
            .take_while(|s| **s < stage)
            .find(|s| !self.is_ready(**s))
        {
            log::warn!(
                "stage_blocked stage={} waiting_for={}",
                stage.as_str(),
                missing.as_str()
            );
            return false;
        }
        log::info!("stage_ready stage={} ts={now}", stage.as_str());
        self.ready.push((stage, now));
        true
    }

    pub(crate) fn is_ready(&self, stage: Stage) -> bool {
        self.ready.iter().any(|(s, _)| *s == stage)
    }

    /// The first stage not ready yet.
    pub fn waiting_for(&self) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| !self.is_ready(*s))
    }

    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for s in Stage::ALL {
            m.insert(
                s.as_str().into(),
                self.ready
                    .iter()
                    .find(|(x, _)| *x == s)
                    .map(|(_, t)| serde_json::json!(t))
                    .unwrap_or(serde_json::Value::Null),
            );
        }
        serde_json::json!({"ready_ts": m, "waiting_for": self.waiting_for().map(Stage::as_str)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed policy: 1 s to 30 s back-off, 5 failures in 10 minutes hold down for 5.
    fn fast() -> RestartPolicy {
        RestartPolicy::default()
    }

    #[test]
    fn five_failures_in_ten_minutes_hold_down_for_five() {
        let mut s = Supervised::new("tmux", fast());
        let mut now = 0;
        for i in 0..4 {
            match s.on_failure(now, "exit") {
                Restart::At(t) => {
                    assert!(t > now, "restart {i} is in the future");
                    now = t;
                }
                r => panic!("unexpected {r:?} at {i}"),
            }
        }
        assert_eq!(s.restarts, 4);
        let r = s.on_failure(now, "exit");
        assert_eq!(
            r,
            Restart::HoldDown {
                until: now + 300_000
            }
        );
        assert_eq!(s.hold_downs, 1);
        assert!(s.held_down(now + 299_999));
        assert!(!s.held_down(now + 300_000));
        // After the hold-down the count starts again.
        assert!(matches!(
            s.on_failure(now + 300_001, "exit"),
            Restart::At(_)
        ));
    }

    #[test]
    fn failures_spread_beyond_the_window_never_hold_down() {
        let mut s = Supervised::new("codex", fast());
        for i in 0..20 {
            let r = s.on_failure(i * 200_000, "eof");
            assert!(matches!(r, Restart::At(_)), "{i}: {r:?}");
            s.on_ready();
        }
        assert_eq!(s.hold_downs, 0);
    }

    #[test]
    fn stages_only_open_in_order() {
        let mut st = Startup::default();
        assert!(!st.mark_ready(Stage::Api, 1));
        assert!(!st.mark_ready(Stage::Gateway, 1));
        assert_eq!(st.waiting_for(), Some(Stage::Source));
        assert!(st.mark_ready(Stage::Source, 2));
        assert!(st.mark_ready(Stage::Gateway, 3));
        assert!(!st.mark_ready(Stage::Api, 4));
        assert!(st.mark_ready(Stage::Daemon, 5));
        assert!(st.mark_ready(Stage::Api, 6));
        assert_eq!(st.waiting_for(), None);
    }

    #[test]
    fn backoff_grows_within_jitter_and_caps() {
        let mut b = Backoff::new(1000, 30_000);
        let d: Vec<u64> = (0..8).map(|_| b.next_delay()).collect();
        assert!((800..=1200).contains(&d[0]), "{d:?}");
        assert!((1600..=2400).contains(&d[1]), "{d:?}");
        assert!(d[7] <= 36_000 && d[7] >= 24_000, "{d:?}");
        b.reset();
        assert!(b.next_delay() <= 1200);
    }
}
