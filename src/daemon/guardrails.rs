//! C-013 ops guardrails, the SLO half (seed: "SLO evaluator windows (rolling 10m, min samples
//! 200)"; state latency deterministic ≤ 2.0 s, fallback ≤ 5.0 s): rolling windows of latency
//! samples, a pure evaluation into levels, and the transitions worth recording in
//! `alert_ledger_v1`.
//!
//! Levels, from the p95 of a window holding at least `min_samples` samples:
//! - `warn`: p95 above the target;
//! - `degraded`: p95 above 2× the target;
//! - `escalate`: p95 above 5× the target, or `degraded` (or worse) for `sustain` evaluations
//!   in a row (default 5, i.e. 5 minutes at one evaluation a minute).
//!
//! With fewer samples the level is `ok` (too little evidence to page anyone). An alert row is
//! written when the level of an SLO rises, and again every `repeat_ms` while it stays above
//! `ok`, so the ledger shows both onsets and duration without a row per evaluation.
//!
//! WHY pure: the evaluation takes the samples and `now` as arguments and returns what to
//! record, so the table tests below pin every threshold without clocks or a database; the
//! runtime only feeds samples, evaluates once a minute and writes the returned alerts.
use crate::core::seeded::seeded;
use crate::core::types::{Millis, str_enum};
use crate::sys::env;
use std::collections::VecDeque;

/// Which SLO a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slo {
    /// Hook / app-server event received → tmux option queued.
    DeterministicLatency,
    /// Screen capture requested → tmux option queued (heuristic evidence).
    FallbackLatency,
}

impl Slo {
    pub(crate) const ALL: [Slo; 2] = [Slo::DeterministicLatency, Slo::FallbackLatency];

    pub fn as_str(self) -> &'static str {
        match self {
            Slo::DeterministicLatency => "state_latency_deterministic",
            Slo::FallbackLatency => "state_latency_fallback",
        }
    }

    fn idx(self) -> usize {
        match self {
            Slo::DeterministicLatency => 0,
            Slo::FallbackLatency => 1,
        }
    }
}

str_enum!(
    /// A guardrail level; ordered by severity.
    #[derive(Default)]
    Level {
        #[default]
        Ok => "ok",
        Warn => "warn",
        Degraded => "degraded",
        Escalate => "escalate",
    }
);

seeded! {
    /// The configurable numbers (seed defaults).
    #[derive(Debug, Clone, PartialEq)]
    pub struct SloConfig {
        pub(crate) window_ms: Millis = 10 * 60_000,
        pub(crate) min_samples: usize = 200,
        /// Target p95 per SLO, indexed like [`Slo::ALL`].
        pub(crate) target_ms: [Millis; 2] = [2_000, 5_000],
        pub(crate) degraded_factor: f64 = 2.0,
        pub(crate) escalate_factor: f64 = 5.0,
        /// Evaluations in a row at `degraded` or worse that escalate.
        pub(crate) sustain: u32 = 5,
        /// How often an ongoing breach is written again.
        pub(crate) repeat_ms: Millis = 10 * 60_000,
        /// Samples kept per window at most (memory bound on a flood).
        pub(crate) max_samples: usize = 100_000,
    }
}

impl SloConfig {
    /// Seed defaults with environment overrides (read by the daemon at start; for operators
    /// and tests): `AGTMUX_SLO_WINDOW_MS`, `AGTMUX_SLO_MIN_SAMPLES`,
    /// `AGTMUX_SLO_TARGET_DETERMINISTIC_MS`, `AGTMUX_SLO_TARGET_FALLBACK_MS`. Unparsable values
    /// are ignored.
    pub(crate) fn from_env() -> Self {
        let mut c = SloConfig::default();
        if let Some(v) = env::positive("AGTMUX_SLO_WINDOW_MS") {
            c.window_ms = v;
        }
        if let Some(v) = env::positive::<i64>("AGTMUX_SLO_MIN_SAMPLES") {
            c.min_samples = usize::try_from(v).unwrap_or(c.min_samples);
        }
        if let Some(v) = env::number("AGTMUX_SLO_TARGET_DETERMINISTIC_MS") {
            c.target_ms[0] = v;
        }
        if let Some(v) = env::number("AGTMUX_SLO_TARGET_FALLBACK_MS") {
            c.target_ms[1] = v;
        }
        c
    }
}

/// The result of evaluating one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub level: Level,
    pub samples: usize,
    /// Nearest-rank p95 in ms (`None` without samples).
    pub(crate) p95_ms: Option<Millis>,
}

/// Nearest-rank percentile `q` (0..=100) of unsorted values.
pub(crate) fn percentile(values: &[Millis], q: u32) -> Option<Millis> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = (u64::from(q.min(100)) * v.len() as u64).div_ceil(100);
    let i = usize::try_from(rank).unwrap_or(v.len()).clamp(1, v.len()) - 1;
    v.get(i).copied()
}

/// Pure: the level of one window of latencies against `target_ms`, before the sustain rule.
pub(crate) fn evaluate(latencies: &[Millis], target_ms: Millis, cfg: &SloConfig) -> Evaluation {
    let p95 = percentile(latencies, 95);
    let level = match p95 {
        _ if latencies.len() < cfg.min_samples => Level::Ok,
        None => Level::Ok,
        Some(p) => {
            let p = p as f64;
            let t = target_ms as f64;
            if p > t * cfg.escalate_factor {
                Level::Escalate
            } else if p > t * cfg.degraded_factor {
                Level::Degraded
            } else if p > t {
                Level::Warn
            } else {
                Level::Ok
            }
        }
    };
    Evaluation {
        level,
        samples: latencies.len(),
        p95_ms: p95,
    }
}

/// One alert to append to `alert_ledger_v1`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alert {
    pub ts: Millis,
    pub slo: Slo,
    pub level: Level,
    pub(crate) p95_ms: Millis,
    pub samples: usize,
    pub(crate) target_ms: Millis,
    pub detail: String,
}

impl Alert {
    /// The ledger row (`window` like `10m n=412`).
    pub fn row(&self, window_ms: Millis) -> crate::store::AlertRow {
        crate::store::AlertRow {
            id: 0,
            ts: self.ts,
            slo: self.slo.as_str().to_string(),
            level: self.level.as_str().to_string(),
            value: Some(self.p95_ms as f64),
            window: Some(format!("{}m n={}", window_ms / 60_000, self.samples)),
            detail: self.detail.clone(),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct SloState {
    /// (sample time, latency ms), oldest first.
    samples: VecDeque<(Millis, Millis)>,
    level: Level,
    /// Evaluations in a row at degraded or worse.
    bad_streak: u32,
    last_alert_at: Option<Millis>,
    last: Option<Evaluation>,
}

/// The rolling windows and per-SLO state (`Default`: the seed config, no samples yet).
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    cfg: SloConfig,
    state: [SloState; 2],
}

impl Guardrails {
    pub fn new(cfg: SloConfig) -> Self {
        Guardrails {
            cfg,
            state: Default::default(),
        }
    }

    pub fn config(&self) -> &SloConfig {
        &self.cfg
    }

    /// One latency sample taken at `at`. Negative latencies (clock steps) count as 0.
    pub(crate) fn observe(&mut self, slo: Slo, at: Millis, latency_ms: Millis) {
        let max = self.cfg.max_samples.max(1);
        let s = &mut self.state[slo.idx()];
        s.samples.push_back((at, latency_ms.max(0)));
        while s.samples.len() > max {
            s.samples.pop_front();
        }
    }

    /// Samples currently in `slo`'s window (after the last evaluation's trim).
    pub fn samples(&self, slo: Slo) -> usize {
        self.state[slo.idx()].samples.len()
    }

    /// The current level of one SLO.
    pub fn level(&self, slo: Slo) -> Level {
        self.state[slo.idx()].level
    }

    /// The last evaluation of one SLO.
    pub fn last(&self, slo: Slo) -> Option<&Evaluation> {
        self.state[slo.idx()].last.as_ref()
    }

    /// The worst current level.
    pub fn worst(&self) -> Level {
        Slo::ALL
            .iter()
            .map(|s| self.level(*s))
            .max()
            .unwrap_or_default()
    }

    /// For `@agtmux_daemon`: `slo:<name>=<level>` for SLOs at degraded or escalate.
    pub(crate) fn status_problems(&self) -> Vec<String> {
        Slo::ALL
            .iter()
            .filter(|s| self.level(**s) >= Level::Degraded)
            .map(|s| format!("slo:{}={}", s.as_str(), self.level(*s)))
            .collect()
    }

    /// Drops samples older than the window, evaluates every SLO, applies the sustain rule,
    /// and returns the alerts to record (level rose, or an ongoing breach is due again).
    pub(crate) fn evaluate(&mut self, now: Millis) -> Vec<Alert> {
        let cfg = self.cfg.clone();
        let mut out = Vec::new();
        for slo in Slo::ALL {
            let s = &mut self.state[slo.idx()];
            let from = now - cfg.window_ms;
            while s.samples.front().is_some_and(|(t, _)| *t < from) {
                s.samples.pop_front();
            }
            let lat: Vec<Millis> = s.samples.iter().map(|(_, l)| *l).collect();
            let target = cfg.target_ms[slo.idx()];
            let ev = evaluate(&lat, target, &cfg);
            if ev.samples > 0 {
                log::info!(
                    "slo_eval slo={} samples={} p95_ms={} level={}",
                    slo.as_str(),
                    ev.samples,
                    ev.p95_ms.unwrap_or(0),
                    ev.level
                );
            }
            let mut level = ev.level;
            if level >= Level::Degraded {
                s.bad_streak = s.bad_streak.saturating_add(1);
            } else {
                s.bad_streak = 0;
            }
            let sustained = cfg.sustain > 0 && s.bad_streak >= cfg.sustain;
            if sustained {
                level = Level::Escalate;
            }
            let rose = level > s.level;
            let repeat =
                level > Level::Ok && s.last_alert_at.is_none_or(|t| now - t >= cfg.repeat_ms);
            if level > Level::Ok && (rose || repeat) {
                let why = if sustained && ev.level < Level::Escalate {
                    format!(
                        "degraded for {} evaluations in a row; ",
                        s.bad_streak.min(cfg.sustain)
                    )
                } else {
                    String::new()
                };
                out.push(Alert {
                    ts: now,
                    slo,
                    level,
                    p95_ms: ev.p95_ms.unwrap_or(0),
                    samples: ev.samples,
                    target_ms: target,
                    detail: format!(
                        "{why}p95 {} ms over {} samples, target {} ms",
                        ev.p95_ms.unwrap_or(0),
                        ev.samples,
                        target
                    ),
                });
                s.last_alert_at = Some(now);
            }
            if level != s.level {
                if level > Level::Ok {
                    log::warn!(
                        "slo_level slo={} level={level} was={} p95_ms={} samples={}",
                        slo.as_str(),
                        s.level,
                        ev.p95_ms.unwrap_or(0),
                        ev.samples
                    );
                } else {
                    log::info!("slo_recovered slo={} was={}", slo.as_str(), s.level);
                }
            }
            if level == Level::Ok {
                s.last_alert_at = None;
            }
            s.level = level;
            s.last = Some(Evaluation { level, ..ev });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SloConfig {
        SloConfig::default()
    }

    /// `n` samples: 95 % at `base`, the slowest 5 % at `tail`.
    fn window(n: usize, base: Millis, tail: Millis) -> Vec<Millis> {
        (0..n)
            .map(|i| if i * 100 >= n * 95 { tail } else { base })
            .collect()
    }

    #[test]
    fn percentile_is_nearest_rank() {
        assert_eq!(percentile(&[], 95), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let v: Vec<Millis> = (1..=100).rev().collect();
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 100), Some(100));
    }

    #[test]
    fn levels_table() {
        let c = cfg();
        // (samples, every sample's latency, target, expected level)
        let cases: &[(usize, Millis, Millis, Level)] = &[
            (199, 60_000, 2_000, Level::Ok), // below min samples: no verdict
            (200, 100, 2_000, Level::Ok),
            (200, 2_000, 2_000, Level::Ok), // at the target is within it
            (200, 2_001, 2_000, Level::Warn),
            (200, 4_000, 2_000, Level::Warn),
            (200, 4_001, 2_000, Level::Degraded),
            (200, 10_000, 2_000, Level::Degraded),
            (200, 10_001, 2_000, Level::Escalate),
            (500, 5_001, 5_000, Level::Warn), // fallback target
            (500, 10_001, 5_000, Level::Degraded),
            (500, 25_001, 5_000, Level::Escalate),
        ];
        for &(n, lat, target, want) in cases {
            let got = evaluate(&vec![lat; n], target, &c).level;
            assert_eq!(got, want, "n={n} lat={lat} target={target}");
        }
    }

    #[test]
    fn p95_ignores_a_small_slow_tail() {
        let c = cfg();
        // 5 % very slow: p95 is still the fast value.
        assert_eq!(
            evaluate(&window(400, 100, 60_000), 2_000, &c).level,
            Level::Ok
        );
        // 10 % slow: p95 is in the tail.
        let mut w = window(400, 100, 100);
        for x in w.iter_mut().take(40) {
            *x = 4_500;
        }
        assert_eq!(evaluate(&w, 2_000, &c).level, Level::Degraded);
    }

    #[test]
    fn rising_level_records_once_then_repeats_after_repeat_ms() {
        let mut g = Guardrails::default();
        for i in 0..250 {
            g.observe(Slo::DeterministicLatency, 1_000 + i, 3_000);
        }
        let a = g.evaluate(60_000);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].level, Level::Warn);
        assert_eq!(a[0].slo, Slo::DeterministicLatency);
        assert_eq!(a[0].p95_ms, 3_000);
        assert!(g.evaluate(120_000).is_empty(), "same level: no new row");
        assert_eq!(g.level(Slo::DeterministicLatency), Level::Warn);
        assert_eq!(g.level(Slo::FallbackLatency), Level::Ok);
        assert!(g.status_problems().is_empty(), "warn is not shown");
        // Worse samples: the level rises and is recorded at once.
        for i in 0..2_000 {
            g.observe(Slo::DeterministicLatency, 121_000 + i, 9_000);
        }
        let a = g.evaluate(180_000);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].level, Level::Degraded);
        assert_eq!(
            g.status_problems(),
            vec!["slo:state_latency_deterministic=degraded".to_string()]
        );
    }

    #[test]
    fn sustained_degraded_escalates() {
        let mut c = cfg();
        c.sustain = 3;
        let mut g = Guardrails::new(c);
        let mut levels = Vec::new();
        for minute in 1..=4 {
            let now = minute * 60_000;
            for i in 0..300 {
                g.observe(Slo::FallbackLatency, now - 30_000 + i, 12_000);
            }
            let a = g.evaluate(now);
            levels.push((g.level(Slo::FallbackLatency), a.len()));
        }
        assert_eq!(
            levels,
            vec![
                (Level::Degraded, 1),
                (Level::Degraded, 0),
                (Level::Escalate, 1),
                (Level::Escalate, 0)
            ]
        );
    }

    #[test]
    fn old_samples_leave_the_window_and_the_level_recovers() {
        let mut g = Guardrails::default();
        for i in 0..300 {
            g.observe(Slo::DeterministicLatency, i, 30_000);
        }
        assert_eq!(g.evaluate(1_000)[0].level, Level::Escalate);
        // 10 minutes later every sample is out of the window.
        assert!(g.evaluate(1_000 + 10 * 60_000).is_empty());
        assert_eq!(g.samples(Slo::DeterministicLatency), 0);
        assert_eq!(g.level(Slo::DeterministicLatency), Level::Ok);
        assert_eq!(g.worst(), Level::Ok);
    }

    #[test]
    fn sample_memory_is_bounded_and_negative_latency_is_zero() {
        let mut c = cfg();
        c.max_samples = 10;
        let mut g = Guardrails::new(c);
        for i in 0..100 {
            g.observe(Slo::DeterministicLatency, i, -5);
        }
        assert_eq!(g.samples(Slo::DeterministicLatency), 10);
        g.evaluate(200);
        assert_eq!(
            g.last(Slo::DeterministicLatency).and_then(|e| e.p95_ms),
            Some(0)
        );
    }

    #[test]
    fn alert_row_fills_the_ledger_columns() {
        let a = Alert {
            ts: 5,
            slo: Slo::FallbackLatency,
            level: Level::Degraded,
            p95_ms: 11_000,
            samples: 321,
            target_ms: 5_000,
            detail: "d".into(),
        };
        let r = a.row(600_000);
        assert_eq!(r.slo, "state_latency_fallback");
        assert_eq!(r.level, "degraded");
        assert_eq!(r.value, Some(11_000.0));
        assert_eq!(r.window.as_deref(), Some("10m n=321"));
    }
}
