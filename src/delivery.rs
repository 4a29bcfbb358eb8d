//! Flow-006 / Flow-012 replay safety (C-003 gateway half): the delivery inflight table.
//!
//! Every batch the gateway pulls from a source gets a `delivery_token` and is held here,
//! inflight, from the pull (`fetched_cursor` recorded) until the projection acks it. Inside one
//! process the projection applies the batch at once; the *ack* is the successful commit of the
//! batch's rows together with the cursor, so "acked" means "durable": a crash before it replays
//! the batch from `committed_cursor`, and `event_id` dedup makes the replay a no-op.
//!
//! - An unacked batch carries a lease (`ack_timeout`, 2 s). When it expires the *same token* is
//!   redelivered: the range is pulled again (every item is a duplicate of what the projection
//!   already applied, so nothing is applied twice) and the commit is retried.
//! - After `max_attempts` (5) the source is `degraded` with `ack_retry_exhausted` (logged,
//!   shown in `@agtmux_daemon` and `health`) and the batch is *held*: it stays in the table,
//!   rows and cursor, until the store takes it, however long that takes (issue 16: an accepted
//!   event is never dropped). Held batches are not redelivered again (the re-pull would only
//!   find duplicates); the gateway retries them when its store probe says the store is back,
//!   and bounds what it holds by pausing its pulls ([`Delivery::held_bytes`]).
//! - The committed cursor of a source only moves over a contiguous prefix of acked batches.
//!
//! Metrics: batches, acks, ack timeouts (and their rate), redeliveries, retry attempts, retry
//! exhausted, rewinds, duplicates, drops.
//!
//! Tracing (seed Observability, Post-MVP: per `delivery_token`, `pull_events → delivery →
//! ack/redelivery`): the newest [`MAX_TOKEN_TRACES`] tokens keep their story (each step with its
//! time, the range, the event ids carried), for `agtmux trace --delivery d…` and for an event's
//! own trace to name its token.
use crate::core::seeded::seeded;
use crate::core::types::Millis;
use crate::store::EventRow;
use crate::sys::env;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

seeded! {
    /// Flow-012 numbers.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeliveryPolicy {
        pub ack_timeout: Millis = 2_000,
        pub(crate) max_attempts: u32 = 5,
    }
}

impl DeliveryPolicy {
    /// Defaults, overridden by `AGTMUX_ACK_TIMEOUT_MS` and `AGTMUX_ACK_MAX_ATTEMPTS`.
    pub(crate) fn from_env() -> Self {
        let mut p = DeliveryPolicy::default();
        if let Some(v) = env::positive("AGTMUX_ACK_TIMEOUT_MS") {
            p.ack_timeout = v;
        }
        if let Some(v) = env::positive::<i64>("AGTMUX_ACK_MAX_ATTEMPTS") {
            p.max_attempts = v.min(1_000) as u32;
        }
        p
    }
}

/// One batch awaiting its ack.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub token: u64,
    /// Cursor id in `cursor_state_v2`.
    pub source: String,
    /// Where the pull started (the committed cursor when nothing earlier is inflight).
    pub from: String,
    /// Where it ended (`fetched_cursor`).
    pub to: String,
    /// The rows to make durable.
    pub rows: Vec<EventRow>,
    /// Deliveries so far (1 = the first).
    pub attempts: u32,
    pub(crate) lease_deadline: Millis,
    pub acked: bool,
    /// Out of redeliveries: waiting for the store, no lease.
    pub held: bool,
}

/// Tokens whose story is kept.
pub(crate) const MAX_TOKEN_TRACES: usize = 1024;
/// Event ids kept per token trace.
const MAX_TRACE_EVENTS: usize = 16;

/// The story of one delivery token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenTrace {
    pub token: u64,
    pub source: String,
    pub from: String,
    pub to: String,
    pub items: usize,
    pub(crate) event_ids: Vec<String>,
    /// (time, step, detail): `pull_events`, `delivery`, `ack_timeout`, `redelivery`, `ack`,
    /// `ack_retry_exhausted`.
    pub steps: Vec<(Millis, &'static str, String)>,
}

impl TokenTrace {
    pub fn json(&self) -> Value {
        let t0 = self.steps.first().map(|s| s.0).unwrap_or(0);
        json!({
            "delivery_token": token_str(self.token),
            "source": self.source,
            "from": self.from,
            "to": self.to,
            "items": self.items,
            "event_ids": self.event_ids,
            "steps": self.steps.iter().map(|(ts, step, d)| json!({
                "step": step, "ts_ms": ts, "since_pull_ms": ts - t0, "detail": d,
            })).collect::<Vec<_>>(),
            "outcome": self.steps.last().map(|s| s.1),
        })
    }
}

/// Parse `d0000002a` (as logged) or bare hex.
pub(crate) fn parse_token(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix('d').unwrap_or(s), 16).ok()
}

/// Counters (metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeliveryStats {
    pub batches: u64,
    pub acked: u64,
    pub(crate) ack_timeouts: u64,
    pub redeliveries: u64,
    /// Items pulled again by a redelivery or a replay and found already applied.
    pub duplicates: u64,
    pub retry_exhausted: u64,
    /// Restarts from `committed_cursor` behind a recorded `fetched_cursor`, and re-pulls.
    pub(crate) rewinds: u64,
    /// Rows that never became durable. Always 0 since issue 16 (exhausted batches are held,
    /// not dropped); kept so the metric still says so.
    pub drops: u64,
}

/// What to do with an expired lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Deliver the same token again (attempt number).
    Redeliver(u64, u32),
    /// Out of redeliveries: the source is degraded and the batch held until the store is back.
    Exhausted(u64),
}

/// The inflight table.
#[derive(Debug, Default)]
pub struct Delivery {
    pub(crate) policy: DeliveryPolicy,
    next_token: u64,
    inflight: VecDeque<Inflight>,
    /// Committed cursor per source after the last contiguous ack.
    committed: BTreeMap<String, String>,
    /// Sources degraded by an exhausted retry, with the reason.
    pub degraded: BTreeMap<String, &'static str>,
    pub(crate) stats: DeliveryStats,
    traces: VecDeque<TokenTrace>,
}

pub(crate) fn token_str(t: u64) -> String {
    format!("d{t:08x}")
}

impl Delivery {
    pub fn new(policy: DeliveryPolicy, first_token: u64) -> Self {
        Delivery {
            policy,
            next_token: first_token,
            ..Default::default()
        }
    }

    /// A pulled batch becomes inflight. Returns its token.
    pub fn begin(
        &mut self,
        source: &str,
        from: &str,
        to: &str,
        rows: Vec<EventRow>,
        now: Millis,
    ) -> u64 {
        self.next_token = self.next_token.wrapping_add(1);
        let token = self.next_token;
        self.stats.batches += 1;
        log::debug!(
            "delivery token={} source={source} items={} from={from:?} to={to:?}",
            token_str(token),
            rows.len()
        );
        if self.traces.len() >= MAX_TOKEN_TRACES {
            self.traces.pop_front();
        }
        self.traces.push_back(TokenTrace {
            token,
            source: source.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            items: rows.len(),
            event_ids: rows
                .iter()
                .take(MAX_TRACE_EVENTS)
                .map(|r| r.event_id.clone())
                .collect(),
            steps: vec![
                (
                    now,
                    "pull_events",
                    format!("{} item(s) after {from:?}", rows.len()),
                ),
                (now, "delivery", "attempt 1".into()),
            ],
        });
        self.inflight.push_back(Inflight {
            token,
            source: source.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            rows,
            attempts: 1,
            lease_deadline: now + self.policy.ack_timeout,
            acked: false,
            held: false,
        });
        token
    }

    pub fn get(&self, token: u64) -> Option<&Inflight> {
        self.inflight.iter().find(|i| i.token == token)
    }

    /// The story of a recent token.
    pub fn trace(&self, token: u64) -> Option<&TokenTrace> {
        self.traces.iter().rev().find(|t| t.token == token)
    }

    /// The recent token that carried `event_id`.
    pub(crate) fn token_of(&self, event_id: &str) -> Option<u64> {
        self.traces
            .iter()
            .rev()
            .find(|t| t.event_ids.iter().any(|e| e == event_id))
            .map(|t| t.token)
    }

    /// Add a step to a token's story (the gateway's re-pull on redelivery).
    pub(crate) fn trace_step(
        &mut self,
        token: u64,
        now: Millis,
        step: &'static str,
        detail: String,
    ) {
        if let Some(t) = self.traces.iter_mut().rev().find(|t| t.token == token) {
            t.steps.push((now, step, detail));
        }
    }

    /// Tokens of the unacked batches, oldest first.
    pub(crate) fn unacked_tokens(&self) -> Vec<u64> {
        self.inflight
            .iter()
            .filter(|i| !i.acked)
            .map(|i| i.token)
            .collect()
    }

    /// Is any batch of `source` unacked?
    pub(crate) fn get_unacked(&self, source: &str) -> bool {
        self.inflight.iter().any(|i| i.source == source && !i.acked)
    }

    /// Unacked batches.
    pub fn pending(&self) -> usize {
        self.inflight.iter().filter(|i| !i.acked).count()
    }

    /// The committed cursor of `source` if `token` were acked now: the end of the contiguous
    /// acked prefix of this source's batches. `None` while an older batch is still unacked.
    pub(crate) fn committed_if_acked(&self, token: u64) -> Option<String> {
        let mut last = None;
        let me = self.get(token)?;
        for i in self.inflight.iter() {
            if i.source != me.source {
                continue;
            }
            if i.acked || i.token == token {
                last = Some(i.to.clone());
            } else {
                break;
            }
        }
        last
    }

    /// The cursor that is safe to store as committed for `source` now: the start of its oldest
    /// unacked batch, else the last contiguous ack.
    pub(crate) fn committed_floor(&self, source: &str) -> Option<String> {
        self.inflight
            .iter()
            .find(|i| i.source == source && !i.acked)
            .map(|i| i.from.clone())
            .or_else(|| self.committed.get(source).cloned())
    }

    /// The projection acked `token` (its commit succeeded).
    pub fn ack(&mut self, token: u64, now: Millis) {
        let Some(i) = self.inflight.iter_mut().find(|i| i.token == token) else {
            return;
        };
        if i.acked {
            return;
        }
        i.acked = true;
        self.stats.acked += 1;
        let attempts = i.attempts;
        if let Some(t) = self.traces.iter_mut().rev().find(|t| t.token == token) {
            t.steps
                .push((now, "ack", format!("committed after {attempts} attempt(s)")));
        }
        let Some(i) = self.inflight.iter_mut().find(|i| i.token == token) else {
            return;
        };
        log::debug!(
            "delivery_ack token={} attempts={}",
            token_str(token),
            i.attempts
        );
        if i.attempts > 1 {
            log::info!(
                "delivery_acked token={} source={} attempts={}",
                token_str(token),
                i.source,
                i.attempts
            );
        }
        let source = i.source.clone();
        let still_held = self
            .inflight
            .iter()
            .any(|i| i.source == source && i.held && !i.acked);
        if !still_held && self.degraded.remove(&source).is_some() {
            log::warn!("source_recovered source={source} reason=acked");
        }
        self.pop_acked();
    }

    fn pop_acked(&mut self) {
        // Drop acked batches that no older unacked batch of their source precedes.
        let mut keep = VecDeque::new();
        let mut blocked: Vec<String> = Vec::new();
        while let Some(i) = self.inflight.pop_front() {
            if !i.acked {
                blocked.push(i.source.clone());
                keep.push_back(i);
            } else if blocked.contains(&i.source) {
                keep.push_back(i);
            } else {
                self.committed.insert(i.source.clone(), i.to.clone());
            }
        }
        self.inflight = keep;
    }

    /// Leases that expired at `now`, oldest first, with what to do about each.
    pub(crate) fn expire(&mut self, now: Millis) -> Vec<Expired> {
        let mut out = Vec::new();
        let max = self.policy.max_attempts;
        let timeout = self.policy.ack_timeout;
        for i in self.inflight.iter_mut() {
            if i.acked || i.held || i.lease_deadline > now {
                continue;
            }
            self.stats.ack_timeouts += 1;
            if i.attempts >= max {
                self.stats.retry_exhausted += 1;
                log::error!(
                    "ack_retry_exhausted token={} source={} attempts={} rows={} held=true",
                    token_str(i.token),
                    i.source,
                    i.attempts,
                    i.rows.len()
                );
                if self
                    .degraded
                    .insert(i.source.clone(), "ack_retry_exhausted")
                    .is_none()
                {
                    log::warn!(
                        "source_degraded source={} reason=ack_retry_exhausted",
                        i.source
                    );
                }
                // Held until the store takes it: no lease, no more re-pulls, never dropped.
                i.held = true;
                out.push(Expired::Exhausted(i.token));
                if let Some(t) = self.traces.iter_mut().rev().find(|t| t.token == i.token) {
                    t.steps.push((
                        now,
                        "ack_retry_exhausted",
                        format!(
                            "{} attempts; source degraded; batch held until the store takes it",
                            i.attempts
                        ),
                    ));
                }
                continue;
            }
            i.attempts += 1;
            i.lease_deadline = now + timeout;
            if let Some(t) = self.traces.iter_mut().rev().find(|t| t.token == i.token) {
                t.steps
                    .push((now, "ack_timeout", format!("no ack in {timeout} ms")));
                t.steps
                    .push((now, "redelivery", format!("attempt {}", i.attempts)));
            }
            self.stats.redeliveries += 1;
            log::warn!(
                "ack_timeout token={} source={} attempt={} redelivery=true",
                token_str(i.token),
                i.source,
                i.attempts
            );
            out.push(Expired::Redeliver(i.token, i.attempts));
        }
        out
    }

    /// Unacked rows and their approximate bytes (payloads plus a fixed overhead per row): what
    /// the table holds for a store that does not take it.
    pub(crate) fn held_bytes(&self) -> (usize, usize) {
        self.inflight
            .iter()
            .filter(|i| !i.acked)
            .flat_map(|i| i.rows.iter())
            .fold((0, 0), |(n, b), r| (n + 1, b + r.payload.len() + 256))
    }

    /// The earliest lease deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.inflight
            .iter()
            .filter(|i| !i.acked && !i.held)
            .map(|i| i.lease_deadline)
            .min()
    }

    pub fn json(&self, now: Millis) -> Value {
        let s = &self.stats;
        let (held_rows, held_bytes) = self.held_bytes();
        let rate = if s.batches == 0 {
            0.0
        } else {
            s.ack_timeouts as f64 / s.batches as f64
        };
        json!({
            "ack_timeout_ms": self.policy.ack_timeout,
            "max_attempts": self.policy.max_attempts,
            "batches": s.batches,
            "acked": s.acked,
            "ack_timeouts": s.ack_timeouts,
            "ack_timeout_rate": (rate * 1000.0).round() / 1000.0,
            "redeliveries": s.redeliveries,
            "retry_exhausted": s.retry_exhausted,
            "rewinds": s.rewinds,
            "duplicates": s.duplicates,
            "drops": s.drops,
            "held_rows": held_rows,
            "held_bytes": held_bytes,
            "degraded": self.degraded,
            "inflight": self.inflight.iter().filter(|i| !i.acked).map(|i| json!({
                "token": token_str(i.token),
                "source": i.source,
                "attempts": i.attempts,
                "held": i.held,
                "items": i.rows.len(),
                "lease_ms_left": i.lease_deadline - now,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Delivery {
        Delivery::new(DeliveryPolicy::default(), 0)
    }

    #[test]
    fn the_committed_cursor_moves_over_acked_prefixes_only() {
        let mut d = d();
        let a = d.begin("hooks", "0", "10", vec![], 0);
        let b = d.begin("hooks", "10", "20", vec![], 0);
        let c = d.begin("other", "x", "y", vec![], 0);
        assert_eq!(d.committed_if_acked(b), None, "a is older and unacked");
        assert_eq!(d.committed_if_acked(a).as_deref(), Some("10"));
        d.ack(b, 0);
        assert_eq!(d.committed_floor("hooks").as_deref(), Some("0"));
        assert_eq!(d.committed_if_acked(a).as_deref(), Some("20"));
        d.ack(a, 0);
        assert_eq!(d.committed_floor("hooks").as_deref(), Some("20"));
        assert_eq!(d.committed_floor("other").as_deref(), Some("x"));
        d.ack(c, 0);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.stats.acked, 3);
    }

    #[test]
    fn an_unacked_batch_is_redelivered_with_its_token_then_held_never_dropped() {
        let mut d = d();
        let t = d.begin("hooks", "0", "10", vec![], 1_000);
        assert!(d.expire(2_999).is_empty(), "lease of 2 s not over");
        for attempt in 2..=5 {
            let now = d.get(t).unwrap().lease_deadline;
            assert_eq!(d.expire(now), vec![Expired::Redeliver(t, attempt)]);
        }
        let now = d.get(t).unwrap().lease_deadline;
        assert_eq!(d.expire(now), vec![Expired::Exhausted(t)]);
        assert_eq!(d.degraded.get("hooks"), Some(&"ack_retry_exhausted"));
        assert_eq!(d.stats.ack_timeouts, 5);
        assert_eq!(d.stats.redeliveries, 4);
        assert_eq!(d.stats.retry_exhausted, 1);
        // Held: still pending, the committed cursor stays before it, no more leases.
        assert_eq!(d.pending(), 1);
        assert_eq!(d.stats.drops, 0);
        assert_eq!(d.committed_floor("hooks").as_deref(), Some("0"));
        assert_eq!(d.next_deadline(), None);
        assert!(d.expire(now + 1_000_000).is_empty());
        // A later batch acked first does not move the cursor past the held one.
        let u = d.begin("hooks", "10", "11", vec![], now);
        d.ack(u, 0);
        assert_eq!(d.committed_floor("hooks").as_deref(), Some("0"));
        assert!(!d.degraded.is_empty(), "still holding t");
        // The store takes the held batch: the cursor moves over both, the source recovers.
        d.ack(t, 0);
        assert_eq!(d.committed_floor("hooks").as_deref(), Some("11"));
        assert!(d.degraded.is_empty());
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn a_late_ack_after_a_redelivery_is_counted_once() {
        let mut d = d();
        let t = d.begin("hooks", "0", "1", vec![], 0);
        assert_eq!(d.expire(2_000), vec![Expired::Redeliver(t, 2)]);
        d.ack(t, 0);
        d.ack(t, 0);
        assert_eq!(d.stats.acked, 1);
        assert!(d.expire(10_000).is_empty());
    }
}
