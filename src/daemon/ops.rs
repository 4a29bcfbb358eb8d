//! C-013 ops guardrail manager (seed `[Post-MVP]`: "SLO window判定、alert発火、snapshot/restore
//! 実行状態を管理"): the one object the runtime holds for both halves — the SLO guardrails
//! ([`super::guardrails`]) fed with state latency samples and evaluated once a minute into
//! `alert_ledger_v1`, and the Flow-010 snapshots ([`super::snapshot`]).
//!
//! WHY one object: the runtime gains one field and five one-line calls (deadline, step,
//! samples, status, shutdown), and the metrics exporter reads every figure from
//! [`Ops::metrics`] without knowing the parts.
//!
//! Latency samples (what "state latency" means here):
//! - deterministic: a hook / app-server event's own timestamp → the pass that queues the
//!   option write for the state change it caused (events that change nothing give no sample);
//! - fallback: the capture-pane request whose verdict changed a heuristic pane → the same
//!   pass. The hysteresis windows (Flow-008) are deliberate and not counted.
use super::guardrails::{Guardrails, Level, Slo, SloConfig};
use super::snapshot::{RestoreStats, SnapshotConfig, Snapshotter};
use crate::core::types::{Evidence, Millis, PaneId};
use crate::store::Store;
use std::collections::HashMap;
use std::path::Path;

/// How often the SLO windows are evaluated (default).
pub(crate) const EVAL_EVERY: Millis = 60_000;

/// Every figure the metrics exporter needs from C-013.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsMetrics {
    /// Age of the newest snapshot (ms), `None` without one.
    pub snapshot_age_ms: Option<Millis>,
    pub snapshots_taken: u64,
    pub(crate) snapshot_failures: u64,
    pub(crate) last_snapshot_took_ms: Option<u64>,
    pub(crate) restore_attempts: u64,
    pub(crate) restore_successes: u64,
    /// successes / attempts, `None` before any attempt.
    pub restore_success_rate: Option<f64>,
    /// Per SLO: (name, level, samples in window, last p95 ms).
    pub slo: Vec<(&'static str, Level, usize, Option<Millis>)>,
    pub(crate) alerts_recorded: u64,
}

impl OpsMetrics {
    /// The `ops` section of `health` and `metrics` (docs/api.md).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "snapshot_age_ms": self.snapshot_age_ms,
            "snapshots_taken": self.snapshots_taken,
            "snapshot_failures": self.snapshot_failures,
            "last_snapshot_took_ms": self.last_snapshot_took_ms,
            "restore_attempts": self.restore_attempts,
            "restore_successes": self.restore_successes,
            "restore_success_rate": self.restore_success_rate,
            "slo": self.slo.iter().map(|(name, level, samples, p95)| serde_json::json!({
                "slo": name, "level": level.as_str(), "samples": samples, "p95_ms": p95,
            })).collect::<Vec<_>>(),
            "alerts_recorded": self.alerts_recorded,
        })
    }
}

pub struct Ops {
    pub guardrails: Guardrails,
    pub snapshots: Snapshotter,
    next_eval: Millis,
    eval_every: Millis,
    /// Screen verdicts applied since the last pass: pane → when its capture was requested.
    screens: HashMap<PaneId, Millis>,
    alerts_recorded: u64,
}

impl Ops {
    /// Seed defaults with the environment's overrides (`SloConfig::from_env`,
    /// `SnapshotConfig::from_env`, `AGTMUX_SLO_EVAL_MS` for the evaluation period).
    pub fn new(db: &Path, now: Millis) -> Self {
        let mut o = Ops::with(SloConfig::from_env(), SnapshotConfig::from_env(), db, now);
        if let Some(ms) = crate::sys::env::positive::<Millis>("AGTMUX_SLO_EVAL_MS") {
            o.eval_every = ms;
            o.next_eval = now + ms;
        }
        o
    }

    pub fn with(slo: SloConfig, snap: SnapshotConfig, db: &Path, now: Millis) -> Self {
        Ops {
            guardrails: Guardrails::new(slo),
            snapshots: Snapshotter::new(snap, db),
            next_eval: now + EVAL_EVERY,
            eval_every: EVAL_EVERY,
            screens: HashMap::new(),
            alerts_recorded: 0,
        }
    }

    pub fn next_deadline(&self, now: Millis) -> Option<Millis> {
        Some(
            self.snapshots
                .next_deadline(now)
                .map_or(self.next_eval, |d| d.min(self.next_eval)),
        )
    }

    /// Timers: snapshots, and the SLO evaluation with its alerts written to the ledger.
    pub fn step(&mut self, mut store: Option<&mut Store>, now: Millis) {
        self.snapshots.step(store.as_deref_mut(), now);
        if now >= self.next_eval {
            self.next_eval = now + self.eval_every;
            self.evaluate(store, now);
        }
    }

    /// Evaluates the SLO windows now and records the alerts; returns how many were written.
    pub(crate) fn evaluate(&mut self, store: Option<&mut Store>, now: Millis) -> usize {
        let alerts = self.guardrails.evaluate(now);
        if alerts.is_empty() {
            return 0;
        }
        let Some(store) = store else { return 0 };
        let window = self.guardrails.config().window_ms;
        let r = store.begin().and_then(|mut tx| {
            for a in &alerts {
                tx.record_alert(&a.row(window))?;
            }
            tx.commit()
        });
        match r {
            Ok(()) => {
                self.alerts_recorded += alerts.len() as u64;
                alerts.len()
            }
            Err(e) => {
                log::warn!("alert_record_failed err={e}");
                0
            }
        }
    }

    /// A capture reply (requested at `requested_at`) was applied to `pane`.
    pub(crate) fn screen_applied(&mut self, pane: &PaneId, requested_at: Millis) {
        self.screens.insert(pane.clone(), requested_at);
    }

    /// The pass that queues option writes: `changed` panes (with their evidence) and the
    /// accepted events `(pane, event ts)` ingested since the last pass.
    pub(crate) fn observe_changes(
        &mut self,
        changed: &[(PaneId, Evidence)],
        accepted: &[(PaneId, Millis)],
        now: Millis,
    ) {
        for (pane, ev) in changed {
            match ev {
                Evidence::Deterministic => {
                    if let Some(ts) = accepted
                        .iter()
                        .filter(|(p, _)| p == pane)
                        .map(|(_, t)| *t)
                        .min()
                    {
                        self.guardrails
                            .observe(Slo::DeterministicLatency, now, now - ts);
                    }
                }
                _ => {
                    if let Some(at) = self.screens.get(pane) {
                        self.guardrails.observe(Slo::FallbackLatency, now, now - at);
                    }
                }
            }
        }
        self.screens.clear();
    }

    /// For `@agtmux_daemon`: SLOs at degraded or escalate.
    pub(crate) fn status_problems(&self) -> Vec<String> {
        self.guardrails.status_problems()
    }

    pub(crate) fn on_shutdown(&mut self, store: Option<&mut Store>, now: Millis) {
        self.snapshots.on_shutdown(store, now);
    }

    pub fn metrics(&self, now: Millis) -> OpsMetrics {
        let rs = RestoreStats::load(self.snapshots.dir());
        OpsMetrics {
            snapshot_age_ms: self.snapshots.age_ms(now),
            snapshots_taken: self.snapshots.taken,
            snapshot_failures: self.snapshots.failures,
            last_snapshot_took_ms: self.snapshots.last_took_ms,
            restore_attempts: rs.attempts,
            restore_successes: rs.successes,
            restore_success_rate: rs.success_rate(),
            slo: Slo::ALL
                .iter()
                .map(|s| {
                    let last = self.guardrails.last(*s);
                    (
                        s.as_str(),
                        self.guardrails.level(*s),
                        self.guardrails.samples(*s),
                        last.and_then(|e| e.p95_ms),
                    )
                })
                .collect(),
            alerts_recorded: self.alerts_recorded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_samples_become_ledger_rows_and_status() {
        let mut store = Store::open_memory().unwrap();
        let mut ops = Ops::with(
            SloConfig::default(),
            SnapshotConfig {
                every_ms: 0,
                ..Default::default()
            },
            Path::new("/nonexistent/agtmux.db"),
            0,
        );
        // 300 deterministic changes, each 9 s after its event: p95 9 s > 2 × 2 s.
        for i in 0..300 {
            let now = 1_000 + i * 10;
            ops.observe_changes(
                &[("%1".into(), Evidence::Deterministic)],
                &[("%1".into(), now - 9_000), ("%2".into(), now - 60_000)],
                now,
            );
        }
        // Heuristic changes without a capture give no fallback sample.
        ops.observe_changes(&[("%3".into(), Evidence::Heuristic)], &[], 5_000);
        assert_eq!(ops.guardrails.samples(Slo::FallbackLatency), 0);
        ops.screen_applied(&"%3".into(), 4_000);
        ops.observe_changes(&[("%3".into(), Evidence::Heuristic)], &[], 5_000);
        assert_eq!(ops.guardrails.samples(Slo::FallbackLatency), 1);

        ops.step(Some(&mut store), EVAL_EVERY + 10);
        let rows = store.alerts(0, 10).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].slo, "state_latency_deterministic");
        assert_eq!(rows[0].level, "degraded");
        assert_eq!(rows[0].value, Some(9_000.0));
        assert_eq!(rows[0].window.as_deref(), Some("10m n=300"));
        assert_eq!(
            ops.status_problems(),
            vec!["slo:state_latency_deterministic=degraded".to_string()]
        );
        let m = ops.metrics(EVAL_EVERY + 10);
        assert_eq!(m.alerts_recorded, 1);
        assert_eq!(m.slo[0].1, Level::Degraded);
        // Not yet due again: nothing more is written.
        ops.step(Some(&mut store), EVAL_EVERY + 20);
        assert_eq!(store.alerts(0, 10).unwrap().len(), 1);
    }
}
