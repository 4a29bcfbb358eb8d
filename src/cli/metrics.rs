//! `agtmux metrics [--json]` (seed Observability MVP, C-002 `metrics`): the daemon's rolling
//! windows (1 min, 10 min) of ingest counts, source health, winner tier/source distribution,
//! state and per-hop latency p95, binding churn, signature classes and reasons, presence flap
//! rate and fallback/re-promotion counts. WHY a command: the numbers that prove the daemon is
//! light and fast must be readable on any running install, not only in benchmarks.
use super::client::{self, Conn, ServerOpts};
use super::show::{items, s};
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// Versioned JSON (`{"v":1,...}`, the `metrics` result's keys at top level; docs/api.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &MetricsArgs) -> ExitCode {
    let m = match Conn::connect(&args.server.paths())
        .and_then(|mut c| c.request("metrics", json!({})))
    {
        Ok(m) => m,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    let text = if args.json {
        let mut o = json!({"v": 1});
        if let (Some(dst), Some(src)) = (o.as_object_mut(), m.as_object()) {
            dst.extend(src.clone());
        }
        format!("{o}\n")
    } else {
        render(&m)
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Ok,
        Err(e) => client::fail(&e, ExitCode::Failure),
    }
}

/// `k=v k=v` of a flat object.
fn kv(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `total: … | 1m: … | 10m: …` of a windowed counter group.
fn windowed(v: &Value) -> String {
    ["total", "1m", "10m"]
        .iter()
        .map(|w| format!("{w}: {}", kv(&v[*w])))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn lat(v: &Value) -> String {
    ["1m", "10m"]
        .iter()
        .map(|w| {
            let x = &v[*w];
            format!(
                "{w} n={} p50={} p95={}",
                s(&x["n"]),
                s(&x["p50"]),
                s(&x["p95"])
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The human table.
pub(crate) fn render(m: &Value) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "uptime      {}s",
        m["uptime_ms"].as_i64().unwrap_or(0) / 1000
    );
    let _ = writeln!(o, "ingest      {}", windowed(&m["ingest"]));
    let _ = writeln!(
        o,
        "sources     {}  ({})",
        kv(&m["sources"]["counts"]),
        kv(&m["sources"]["health"])
    );
    let w = &m["winners"];
    let _ = writeln!(
        o,
        "winners     managed={}  tier: {}  source: {}",
        s(&w["managed"]),
        kv(&w["tier"]),
        kv(&w["source"])
    );
    let _ = writeln!(o, "state latency ms");
    for k in ["deterministic", "fallback"] {
        let _ = writeln!(o, "  {k:<13} {}", lat(&m["state_latency_ms"][k]));
    }
    let _ = writeln!(
        o,
        "hop latency ms (from the previous hop; total = source → option)"
    );
    for k in ["gateway", "daemon", "option", "client", "total"] {
        let _ = writeln!(o, "  {k:<13} {}", lat(&m["hop_latency_ms"][k]));
    }
    let _ = writeln!(o, "binding     {}", windowed(&m["binding_churn"]));
    let g = &m["signature"];
    let _ = writeln!(o, "signature   {}", kv(&g["classes"]));
    let top: Vec<String> = items(&g["reasons_top"])
        .map(|r| format!("{}={}", s(&r["reason"]), s(&r["panes"])))
        .collect();
    let _ = writeln!(o, "  reasons     {}", top.join(" "));
    let _ = writeln!(o, "  transitions {}", windowed(&g["transitions"]));
    let p = &m["presence"];
    let _ = writeln!(
        o,
        "presence    flaps {}  per pane-hour: {}",
        windowed(&p["flaps"]),
        kv(&p["flaps_per_pane_hour"])
    );
    let _ = writeln!(o, "tiers       {}", windowed(&m["tier_transitions"]));
    render_post_mvp(&mut o, m);
    o
}

/// Supervisor, delivery, source registry, snapshots and SLOs (seed Observability, Post-MVP).
fn render_post_mvp(o: &mut String, m: &Value) {
    let sup = &m["supervisor"];
    if sup.is_object() {
        let comps: Vec<String> = sup["components"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, c)| {
                let phase = c["phase"]
                    .as_str()
                    .map(|p| format!(" phase={p}"))
                    .unwrap_or_default();
                format!(
                    "{name}: restarts={} hold_downs={}{phase}",
                    s(&c["restarts"]),
                    s(&c["hold_downs"])
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "supervisor  restarts={} hold_downs={}  {}",
            s(&sup["restarts"]),
            s(&sup["hold_downs"]),
            comps.join("  ")
        );
    }
    let d = &m["delivery"];
    if d.is_object() {
        let keys = [
            "batches",
            "acked",
            "ack_timeouts",
            "ack_timeout_rate",
            "redeliveries",
            "retry_exhausted",
            "rewinds",
            "duplicates",
            "drops",
        ];
        let kvs: Vec<String> = keys.iter().map(|k| format!("{k}={}", s(&d[*k]))).collect();
        let _ = writeln!(o, "delivery    {}", kvs.join(" "));
    }
    let r = &m["source_registry"];
    if r.is_object() {
        let _ = writeln!(
            o,
            "registry    {}  admission rejects: {}",
            kv(&r["states"]),
            kv(&r["admission_rejects"])
        );
    }
    let x = &m["ops"];
    if x.is_object() {
        let age = x["snapshot_age_ms"]
            .as_i64()
            .map(|a| format!("{}s", a / 1000))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "snapshots   age={age} taken={} failures={}  restore: attempts={} successes={} rate={}",
            s(&x["snapshots_taken"]),
            s(&x["snapshot_failures"]),
            s(&x["restore_attempts"]),
            s(&x["restore_successes"]),
            s(&x["restore_success_rate"])
        );
        let slo: Vec<String> = items(&x["slo"])
            .map(|e| {
                let p95 = e["p95_ms"]
                    .as_i64()
                    .map(|p| format!("{p}ms"))
                    .unwrap_or_else(|| "-".into());
                format!(
                    "{}={} (n={} p95={p95})",
                    s(&e["slo"]),
                    s(&e["level"]),
                    s(&e["samples"])
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "slo         {}  alerts={}",
            slo.join("  "),
            s(&x["alerts_recorded"])
        );
    }
}
