//! Observability MVP (seed "Observability", C-002 `metrics`, Flow-001 tracing): rolling-window
//! metrics, per-event hop traces and the structured log lines of tier/signature transitions.
//!
//! WHY a module of its own: the numbers that prove agtmux is light and fast must come from the
//! one place that sees every hop, without spreading bookkeeping through the gateway, the
//! projection and the runtime. Those call small hooks here: the gateway hands over what it
//! ingested ([`Traced`]), the projection leaves [`Note`]s about transitions, the runtime reports
//! when option writes were queued and clients pushed ([`Metrics::observe_published`]).
//!
//! Memory is bounded: every latency series keeps at most [`MAX_SAMPLES`] samples no older than
//! the longest window, counter snapshots are taken at most every [`SNAPSHOT_EVERY`] ms, traces
//! of the last [`MAX_TRACES`] events are kept in memory (all of them also go to
//! `events_raw_v2.hops`).
//!
//! Hops of one event (`events_raw_v2.hops`, `agtmux trace`): `source` (the source's own
//! timestamp: the hook's receive time, the app-server notification time), `gateway` (pulled
//! by the gateway), `daemon` (applied by the projection), `option` (the tmux option write was
//! queued on the control connection; only when the event changed what is published) and
//! `client` (pushed to API subscribers; only when there were some).
use crate::core::binding::Churn;
use crate::core::types::{Activity, Evidence, Health, Millis, PaneId, Presence, SourceKind};
use crate::gateway::{IngestCounts, Traced};
use crate::projection::Projection;
use crate::projection::notes::Note;
use crate::store::EventStatus;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The rolling windows reported, (name, length in ms).
pub(crate) const WINDOWS: [(&str, Millis); 2] = [("1m", 60_000), ("10m", 600_000)];
const LONGEST: Millis = 600_000;
/// Bound of every latency series.
pub(crate) const MAX_SAMPLES: usize = 4_096;
/// Traces kept in memory for `trace`/`explain`.
pub(crate) const MAX_TRACES: usize = 4_096;
/// Minimum gap between two counter snapshots.
pub(crate) const SNAPSHOT_EVERY: Millis = 5_000;
/// Signature reasons listed in `reasons_top`.
const TOP_K: usize = 5;

/// Hop names, in pipeline order.
pub(crate) const HOPS: [&str; 5] = ["source", "gateway", "daemon", "option", "client"];

/// The first word of a signature reason (`process_hint provider=claude` → `process_hint`).
fn reason_word(r: &str) -> &str {
    r.split([' ', '(']).next().unwrap_or("")
}

/// A bounded time series of latency samples (ms).
#[derive(Debug, Default, Clone)]
struct Series {
    samples: VecDeque<(Millis, Millis)>,
}

impl Series {
    fn push(&mut self, at: Millis, v: Millis) {
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at, v.max(0)));
    }

    fn prune(&mut self, now: Millis) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| *t < now - LONGEST)
        {
            self.samples.pop_front();
        }
    }

    /// `{"n":..,"p50":..,"p95":..,"max":..}` over the samples of the last `window` ms.
    fn stats(&self, now: Millis, window: Millis) -> Value {
        let mut v: Vec<Millis> = self
            .samples
            .iter()
            .filter(|(t, _)| *t >= now - window)
            .map(|(_, x)| *x)
            .collect();
        if v.is_empty() {
            return json!({"n": 0, "p50": null, "p95": null, "max": null});
        }
        v.sort_unstable();
        json!({"n": v.len(), "p50": pct(&v, 50), "p95": pct(&v, 95), "max": v[v.len() - 1]})
    }

    fn windows(&self, now: Millis) -> Value {
        let mut m = serde_json::Map::new();
        for (name, w) in WINDOWS {
            m.insert(name.into(), self.stats(now, w));
        }
        Value::Object(m)
    }
}

/// Nearest-rank percentile of sorted, non-empty values.
fn pct(sorted: &[Millis], p: usize) -> Millis {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Cumulative counters, in this order.
const COUNTERS: [&str; 15] = [
    "accepted",
    "ignored",
    "rejected",
    "duplicate",
    "links",
    "rebinds",
    "moves",
    "tombstones",
    "rejects",
    "generation_bumps",
    "fallback",
    "re_promotion",
    "signature_transitions",
    "presence_flaps",
    "events_traced",
];
type Counts = [u64; COUNTERS.len()];

/// One event's path: what the gateway handled, and every hop seen so far (the gateway's first
/// ones, then the option write and the client's redraw).
#[derive(Debug, Clone)]
pub struct Trace {
    pub event: Traced,
    pub hops: Vec<(&'static str, Millis)>,
}

impl Trace {
    pub fn json(&self) -> Value {
        let Traced {
            event_id,
            pane_id,
            source,
            name,
            status,
            reason,
            ..
        } = &self.event;
        let (pane_id, reason) = (pane_id.as_ref(), reason.as_deref());
        trace_json(
            event_id,
            pane_id,
            source,
            name,
            status.as_str(),
            reason,
            &self.hops,
        )
    }
}

/// The shape shared by the API's `trace` and the CLI's read of `events_raw_v2`: hops in
/// pipeline order, each with its delta from the previous hop and from the source.
pub(crate) fn trace_json(
    event_id: &str,
    pane_id: Option<&PaneId>,
    source: &str,
    name: &str,
    status: &str,
    reason: Option<&str>,
    hops: &[(&str, Millis)],
) -> Value {
    let mut ordered: Vec<(&str, Millis)> = hops.to_vec();
    ordered.sort_by_key(|(h, _)| HOPS.iter().position(|x| x == h).unwrap_or(HOPS.len()));
    let first = ordered.first().map(|(_, t)| *t);
    let mut prev: Option<Millis> = None;
    let list: Vec<Value> = ordered
        .iter()
        .map(|(h, t)| {
            let v = json!({
                "hop": h,
                "ts_ms": t,
                "delta_ms": prev.map(|p| t - p),
                "since_source_ms": first.map(|f| t - f),
            });
            prev = Some(*t);
            v
        })
        .collect();
    let missing: Vec<&str> = HOPS
        .iter()
        .filter(|h| !hops.iter().any(|(x, _)| x == *h))
        .copied()
        .collect();
    json!({
        "event_id": event_id,
        "pane_id": pane_id,
        "source": source,
        "name": name,
        "status": status,
        "reason": reason,
        "hops": list,
        "missing": missing,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    presence: Presence,
    activity: Activity,
    evidence: Evidence,
}

pub struct Metrics {
    started: Millis,
    state_det: Series,
    state_fallback: Series,
    hop: BTreeMap<&'static str, Series>,
    snapshots: VecDeque<(Millis, Counts)>,
    /// Counters kept here (the others are read from the gateway/projection).
    fallbacks: u64,
    repromotions: u64,
    signature_transitions: u64,
    presence_flaps: u64,
    events_traced: u64,
    /// Flap timestamps for the rate (bounded like a series).
    flaps: Series,
    traces: HashMap<String, Trace>,
    trace_order: VecDeque<String>,
    /// Events applied since the last publish, by pane.
    pending: HashMap<PaneId, Vec<String>>,
    last_event: HashMap<PaneId, String>,
    seen: HashMap<PaneId, Seen>,
    /// Signature transitions by reason word, for the windowed top-k.
    sig_reasons: VecDeque<(Millis, String)>,
}

impl Metrics {
    pub fn new(now: Millis) -> Metrics {
        let mut hop = BTreeMap::new();
        for h in &HOPS[1..] {
            hop.insert(*h, Series::default());
        }
        hop.insert("total", Series::default());
        Metrics {
            started: now,
            state_det: Series::default(),
            state_fallback: Series::default(),
            hop,
            snapshots: VecDeque::new(),
            fallbacks: 0,
            repromotions: 0,
            signature_transitions: 0,
            presence_flaps: 0,
            events_traced: 0,
            flaps: Series::default(),
            traces: HashMap::new(),
            trace_order: VecDeque::new(),
            pending: HashMap::new(),
            last_event: HashMap::new(),
            seen: HashMap::new(),
            sig_reasons: VecDeque::new(),
        }
    }

    fn sample_hop(&mut self, hop: &'static str, at: Millis, v: Millis) {
        if let Some(s) = self.hop.get_mut(hop) {
            s.push(at, v);
        }
    }

    /// What the gateway handled in this step (from `Gateway::take_traced`).
    pub(crate) fn on_ingested(&mut self, items: Vec<Traced>) {
        for t in items {
            let mut hops = vec![("source", t.source_ts), ("gateway", t.gateway_ts)];
            log::debug!(
                "hop event_id={} hop=source ts={} source={} name={:?}",
                t.event_id,
                t.source_ts,
                t.source,
                t.name
            );
            log::debug!(
                "hop event_id={} hop=gateway ts={} delta_ms={}",
                t.event_id,
                t.gateway_ts,
                t.gateway_ts - t.source_ts
            );
            self.sample_hop("gateway", t.gateway_ts, t.gateway_ts - t.source_ts);
            if let Some(d) = t.daemon_ts {
                log::debug!(
                    "hop event_id={} hop=daemon ts={d} delta_ms={} status={}",
                    t.event_id,
                    d - t.gateway_ts,
                    t.status.as_str()
                );
                self.sample_hop("daemon", d, d - t.gateway_ts);
                hops.push(("daemon", d));
            }
            self.events_traced += 1;
            if let Some(p) = &t.pane_id {
                if t.status == EventStatus::Accepted {
                    self.pending
                        .entry(p.clone())
                        .or_default()
                        .push(t.event_id.clone());
                }
                self.last_event.insert(p.clone(), t.event_id.clone());
            }
            self.insert_trace(Trace { event: t, hops });
        }
    }

    fn insert_trace(&mut self, t: Trace) {
        if !self.traces.contains_key(&t.event.event_id) {
            self.trace_order.push_back(t.event.event_id.clone());
        }
        self.traces.insert(t.event.event_id.clone(), t);
        while self.trace_order.len() > MAX_TRACES {
            if let Some(old) = self.trace_order.pop_front() {
                self.traces.remove(&old);
            }
        }
    }

    /// After a resolve pass: `changed` panes had their options queued at `option_ts`, and were
    /// pushed to API subscribers at `client_ts` (`None`: no subscriber). Drains the
    /// projection's notes, records state and hop latencies, and returns the hops to persist
    /// (`event_id`, hop, ts).
    pub(crate) fn observe_published(
        &mut self,
        proj: &mut Projection,
        changed: &[PaneId],
        option_ts: Millis,
        client_ts: Option<Millis>,
    ) -> Vec<(String, &'static str, Millis)> {
        for n in std::mem::take(&mut proj.notes) {
            match n {
                Note::Signature { reason, .. } => {
                    self.signature_transitions += 1;
                    if self.sig_reasons.len() >= MAX_SAMPLES {
                        self.sig_reasons.pop_front();
                    }
                    self.sig_reasons
                        .push_back((option_ts, reason_word(&reason).to_string()));
                }
                Note::Fallback => self.fallbacks += 1,
                Note::RePromotion => self.repromotions += 1,
            }
        }
        let mut out = Vec::new();
        for id in changed {
            let Some(p) = proj.panes.get(id) else {
                continue;
            };
            let now_seen = Seen {
                presence: p.presence(),
                activity: p.activity(),
                evidence: p.evidence(),
            };
            let before = self.seen.insert(id.clone(), now_seen);
            let before_presence = before.map_or(Presence::Unmanaged, |b| b.presence);
            if before_presence != now_seen.presence {
                self.presence_flaps += 1;
                self.flaps.push(option_ts, 0);
            }
            let state_changed = before.is_none_or(|b| b.activity != now_seen.activity);
            let events = self.pending.remove(id).unwrap_or_default();
            // Deterministic: the newest event that reached this publish.
            if now_seen.evidence == Evidence::Deterministic && state_changed {
                let src = events
                    .iter()
                    .filter_map(|e| self.traces.get(e))
                    .filter_map(|t| t.hops.first().map(|h| h.1))
                    .max();
                if let Some(s) = src {
                    self.state_det.push(option_ts, option_ts - s);
                }
            } else if now_seen.evidence == Evidence::Heuristic && state_changed && p.screen_at > 0 {
                self.state_fallback
                    .push(option_ts, option_ts - p.screen_at.min(option_ts));
            }
            for e in events {
                let Some(t) = self.traces.get_mut(&e) else {
                    continue;
                };
                let daemon = t
                    .hops
                    .iter()
                    .find(|h| h.0 == "daemon")
                    .map_or(option_ts, |h| h.1);
                let source = t.hops.first().map_or(option_ts, |h| h.1);
                t.hops.push(("option", option_ts));
                log::debug!(
                    "hop event_id={e} hop=option ts={option_ts} delta_ms={} pane={id}",
                    option_ts - daemon
                );
                out.push((e.clone(), "option", option_ts));
                let mut samples = vec![
                    ("option", option_ts - daemon),
                    ("total", option_ts - source),
                ];
                if let Some(c) = client_ts {
                    t.hops.push(("client", c));
                    log::debug!(
                        "hop event_id={e} hop=client ts={c} delta_ms={}",
                        c - option_ts
                    );
                    out.push((e.clone(), "client", c));
                    samples.push(("client", c - option_ts));
                }
                for (h, v) in samples {
                    self.sample_hop(h, option_ts, v);
                }
            }
        }
        // Events that changed nothing published end their path at `daemon`.
        self.pending.clear();
        out
    }

    /// Take a counter snapshot when due and drop what is out of every window. Call once per
    /// step with the current cumulative counters of the gateway and the binding registry.
    pub fn tick(&mut self, ingest: IngestCounts, churn: Churn, proj: &Projection, now: Millis) {
        let due = self
            .snapshots
            .back()
            .is_none_or(|(t, _)| now - t >= SNAPSHOT_EVERY);
        if !due {
            return;
        }
        let c = self.counts(ingest, churn);
        self.snapshots.push_back((now, c));
        // Keep one snapshot at or before the start of the longest window as its base.
        while self.snapshots.len() > 2 && self.snapshots[1].0 <= now - LONGEST {
            self.snapshots.pop_front();
        }
        for s in self.hop.values_mut() {
            s.prune(now);
        }
        self.state_det.prune(now);
        self.state_fallback.prune(now);
        self.flaps.prune(now);
        while self
            .sig_reasons
            .front()
            .is_some_and(|(t, _)| *t < now - LONGEST)
        {
            self.sig_reasons.pop_front();
        }
        self.seen.retain(|id, _| proj.panes.contains_key(id));
        self.last_event.retain(|id, _| proj.panes.contains_key(id));
    }

    fn counts(&self, ingest: IngestCounts, churn: Churn) -> Counts {
        [
            ingest.accepted,
            ingest.ignored,
            ingest.rejected,
            ingest.duplicates,
            churn.links,
            churn.rebinds,
            churn.moves,
            churn.tombstones,
            churn.rejects,
            churn.generation_bumps,
            self.fallbacks,
            self.repromotions,
            self.signature_transitions,
            self.presence_flaps,
            self.events_traced,
        ]
    }

    /// Counter deltas over `window` (from the newest snapshot at or before its start; the
    /// daemon's start when it is younger than the window).
    fn delta(&self, cur: &Counts, now: Millis, window: Millis) -> Counts {
        let base = self
            .snapshots
            .iter()
            .rev()
            .find(|(t, _)| *t <= now - window)
            .map(|(_, c)| *c)
            .filter(|_| now - self.started >= window)
            .unwrap_or([0; COUNTERS.len()]);
        let mut d = [0; COUNTERS.len()];
        for i in 0..d.len() {
            d[i] = cur[i].saturating_sub(base[i]);
        }
        d
    }

    /// One event's trace, if still in memory.
    pub fn trace(&self, event_id: &str) -> Option<&Trace> {
        self.traces.get(event_id)
    }

    /// The trace of the last event the gateway routed to `pane`.
    pub(crate) fn last_trace(&self, pane: &PaneId) -> Option<&Trace> {
        self.last_event.get(pane).and_then(|e| self.traces.get(e))
    }

    /// The `metrics` API result (docs/api.md).
    pub fn json(&self, ingest: IngestCounts, proj: &Projection, now: Millis) -> Value {
        let cur = self.counts(ingest, proj.bindings.churn());
        let pick = |c: &Counts, names: &[&str]| -> Value {
            let mut m = serde_json::Map::new();
            for n in names {
                if let Some(i) = COUNTERS.iter().position(|x| x == n) {
                    m.insert((*n).to_string(), json!(c[i]));
                }
            }
            Value::Object(m)
        };
        let windowed = |names: &[&str]| -> Value {
            let mut m = serde_json::Map::new();
            m.insert("total".into(), pick(&cur, names));
            for (w, len) in WINDOWS {
                m.insert(w.into(), pick(&self.delta(&cur, now, len), names));
            }
            Value::Object(m)
        };
        let (health, health_counts) = source_health(proj);
        let g = PaneGauges::of(proj);
        let tr_reasons = self.transition_reasons_top(now);
        let flap_rate = self.flap_rate(g.candidates, now);
        let mut hops = serde_json::Map::new();
        for (h, s) in &self.hop {
            hops.insert((*h).into(), s.windows(now));
        }
        json!({
            "uptime_ms": now - self.started,
            "windows": WINDOWS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "sources": {"health": health, "counts": health_counts},
            "winners": {"managed": g.managed, "tier": g.tier, "source": g.winner},
            "state_latency_ms": {
                "deterministic": self.state_det.windows(now),
                "fallback": self.state_fallback.windows(now),
            },
            "hop_latency_ms": hops,
            "binding_churn": windowed(&["links", "rebinds", "moves", "tombstones", "rejects", "generation_bumps"]),
            "signature": {
                "classes": g.classes,
                "reasons_top": g.top.into_iter().map(|(r, n)| json!({"reason": r, "panes": n})).collect::<Vec<_>>(),
                "transitions": windowed(&["signature_transitions"]),
                "transition_reasons_top": tr_reasons,
            },
            "presence": {
                "candidate_panes": g.candidates,
                "flaps": windowed(&["presence_flaps"]),
                "flaps_per_pane_hour": flap_rate,
            },
            "tier_transitions": windowed(&["fallback", "re_promotion"]),
            "ingest": windowed(&["accepted", "ignored", "rejected", "duplicate"]),
            "now_ms": now,
        })
    }

    /// The most frequent signature transition reasons per window.
    fn transition_reasons_top(&self, now: Millis) -> serde_json::Map<String, Value> {
        let mut tr_reasons = serde_json::Map::new();
        for (w, len) in WINDOWS {
            let mut c: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, r) in self.sig_reasons.iter().filter(|(t, _)| *t >= now - len) {
                *c.entry(r.as_str()).or_default() += 1;
            }
            let mut v: Vec<(&str, u64)> = c.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            v.truncate(TOP_K);
            tr_reasons.insert(
                w.into(),
                v.into_iter()
                    .map(|(r, n)| json!({"reason": r, "count": n}))
                    .collect(),
            );
        }
        tr_reasons
    }

    /// Flap rate: transitions per candidate pane per hour over the full window length (a
    /// young daemon is not extrapolated from a few seconds).
    fn flap_rate(&self, candidates: u64, now: Millis) -> serde_json::Map<String, Value> {
        let mut flap_rate = serde_json::Map::new();
        for (w, len) in WINDOWS {
            let n = self
                .flaps
                .samples
                .iter()
                .filter(|(t, _)| *t >= now - len)
                .count() as f64;
            let rate = n / (candidates.max(1) as f64) / (len as f64 / 3_600_000.0);
            flap_rate.insert(w.into(), json!((rate * 1000.0).round() / 1000.0));
        }
        flap_rate
    }
}

/// Each source's health, and how many sources are in each health.
fn source_health(
    proj: &Projection,
) -> (serde_json::Map<String, Value>, BTreeMap<&'static str, u64>) {
    let mut health = serde_json::Map::new();
    let mut health_counts: BTreeMap<&str, u64> =
        Health::ALL.iter().map(|h| (h.as_str(), 0)).collect();
    for s in SourceKind::ALL {
        let h = proj.health.get(s).copied().unwrap_or(Health::Healthy);
        health.insert(s.as_str().into(), json!(h.as_str()));
        *health_counts.entry(h.as_str()).or_default() += 1;
    }
    (health, health_counts)
}

/// Gauges over the read model's panes: signature classes and reasons, candidates, and the
/// managed panes' evidence tiers and winning sources.
struct PaneGauges<'a> {
    tier: BTreeMap<&'a str, u64>,
    winner: BTreeMap<&'a str, u64>,
    classes: BTreeMap<&'a str, u64>,
    /// The most frequent signature reasons (at most `TOP_K`).
    top: Vec<(String, u64)>,
    managed: u64,
    candidates: u64,
}

impl<'a> PaneGauges<'a> {
    fn of(proj: &'a Projection) -> PaneGauges<'a> {
        let mut tier: BTreeMap<&str, u64> = BTreeMap::new();
        let mut winner: BTreeMap<&str, u64> = BTreeMap::new();
        let mut classes: BTreeMap<&str, u64> = ["deterministic", "heuristic", "none"]
            .into_iter()
            .map(|c| (c, 0))
            .collect();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        let mut managed = 0u64;
        let mut candidates = 0u64;
        for p in proj.panes.values() {
            let mut sig = p.signature.splitn(2, ' ');
            let class = sig.next().unwrap_or("none");
            let reason = sig
                .next()
                .and_then(|r| r.strip_prefix("reason="))
                .map(reason_word)
                .unwrap_or(class);
            if let Some(n) = classes.get_mut(class) {
                *n += 1;
            }
            *reasons.entry(reason.to_string()).or_default() += 1;
            if p.is_candidate() {
                candidates += 1;
            }
            if p.is_managed() {
                managed += 1;
                *tier.entry(p.evidence().as_str()).or_default() += 1;
                *winner
                    .entry(p.resolution.winner.map_or("none", |s| s.as_str()))
                    .or_default() += 1;
            }
        }
        let mut top: Vec<(String, u64)> = reasons.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(TOP_K);
        PaneGauges {
            tier,
            winner,
            classes,
            top,
            managed,
            candidates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(accepted: u64, rejected: u64) -> IngestCounts {
        IngestCounts {
            accepted,
            rejected,
            ..IngestCounts::default()
        }
    }

    fn traced(id: &str, pane: &str, src: Millis) -> Traced {
        Traced {
            event_id: id.into(),
            pane_id: Some(pane.into()),
            source: "claude_hooks".into(),
            name: "PermissionRequest".into(),
            status: EventStatus::Accepted,
            reason: None,
            source_ts: src,
            gateway_ts: src + 2,
            daemon_ts: Some(src + 3),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Millis> = (1..=100).collect();
        assert_eq!(pct(&v, 95), 95);
        assert_eq!(pct(&v, 50), 50);
        assert_eq!(pct(&[7], 95), 7);
        let mut s = Series::default();
        for i in 0..10 {
            s.push(1_000 + i, i * 10);
        }
        let st = s.stats(2_000, 60_000);
        assert_eq!(st["n"], 10);
        assert_eq!(st["p95"], 90);
        assert_eq!(s.stats(200_000, 60_000)["n"], 0);
    }

    #[test]
    fn series_are_bounded() {
        let mut s = Series::default();
        for i in 0..(MAX_SAMPLES as Millis + 100) {
            s.push(i, 1);
        }
        assert_eq!(s.samples.len(), MAX_SAMPLES);
        s.prune(10_000_000);
        assert!(s.samples.is_empty());
    }

    #[test]
    fn an_event_gets_every_hop_and_counters_window() {
        let mut proj = Projection::new("h".into());
        proj.pane_added(&"%1".into(), "$0", "@0", 0);
        let mut m = Metrics::new(0);
        m.on_ingested(vec![traced("e1", "%1", 1_000)]);
        let hops = m.observe_published(&mut proj, &["%1".into()], 1_010, Some(1_011));
        assert_eq!(
            hops,
            vec![
                ("e1".to_string(), "option", 1_010),
                ("e1".to_string(), "client", 1_011)
            ]
        );
        let t = m.trace("e1").unwrap().json();
        assert_eq!(crate::testutil::names(&t["hops"], "hop"), HOPS);
        assert_eq!(t["hops"][3]["since_source_ms"], 10);
        assert_eq!(t["missing"].as_array().unwrap().len(), 0);
        assert_eq!(m.last_trace(&"%1".into()).unwrap().event.event_id, "e1");
        // An event that changes nothing ends at the daemon.
        m.on_ingested(vec![traced("e2", "%1", 2_000)]);
        assert!(m.observe_published(&mut proj, &[], 2_010, None).is_empty());
        assert_eq!(
            m.trace("e2").unwrap().json()["missing"],
            json!(["option", "client"])
        );
        // Counters: 5 accepted before the 1m window, 3 inside it.
        m.tick(ingest(5, 0), Churn::default(), &proj, 60_000);
        m.tick(ingest(8, 1), Churn::default(), &proj, 130_000);
        let j = m.json(ingest(8, 1), &proj, 125_000);
        assert_eq!(j["ingest"]["total"]["accepted"], 8);
        assert_eq!(j["ingest"]["1m"]["accepted"], 3);
        assert_eq!(j["ingest"]["1m"]["rejected"], 1);
        assert_eq!(j["ingest"]["10m"]["accepted"], 8);
        assert_eq!(j["hop_latency_ms"]["option"]["10m"]["n"], 1);
    }

    #[test]
    fn presence_flaps_winners_and_signature_classes_follow_the_projection() {
        use crate::core::types::Provider;
        let mut proj = Projection::new("h".into());
        let mut m = Metrics::new(0);
        for id in ["%1", "%2"] {
            proj.pane_added(&id.into(), "$0", "@0", 0);
        }
        // %1 gets an agent process: heuristic, managed.
        proj.set_process(&"%1".into(), Some((Provider::Claude, "test")), Some(42), 10);
        let changed = proj.resolve_dirty(20, &|_| false);
        assert!(changed.contains(&"%1".into()));
        m.observe_published(&mut proj, &changed, 21, None);
        let j = m.json(IngestCounts::default(), &proj, 30);
        assert_eq!(j["winners"]["managed"], 1, "{j}");
        assert_eq!(j["winners"]["tier"]["heuristic"], 1, "{j}");
        assert_eq!(j["signature"]["classes"]["heuristic"], 1, "{j}");
        assert_eq!(j["signature"]["classes"]["none"], 1, "{j}");
        assert_eq!(
            j["signature"]["transitions"]["total"]["signature_transitions"],
            1
        );
        assert_eq!(j["presence"]["flaps"]["total"]["presence_flaps"], 1, "{j}");
        // The agent leaves: after the presence debounce the pane is unmanaged again.
        proj.set_process(&"%1".into(), None, None, 1_000);
        let mut t = 1_000;
        for _ in 0..10 {
            t += 600;
            proj.mark_dirty(&"%1".into());
            let changed = proj.resolve_dirty(t, &|_| false);
            m.observe_published(&mut proj, &changed, t, None);
        }
        let j = m.json(IngestCounts::default(), &proj, t);
        assert_eq!(j["winners"]["managed"], 0, "{j}");
        assert_eq!(j["presence"]["flaps"]["total"]["presence_flaps"], 2, "{j}");
        assert!(j["presence"]["flaps_per_pane_hour"]["1m"].as_f64() > Some(0.0));
        assert!(proj.notes.is_empty(), "notes are drained");
    }
}
