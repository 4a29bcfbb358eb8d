//! Issue 8 (metrics, tracing): known events injected through the real `agtmux hook claude` on a
//! private tmux server move the daemon's metrics as expected — ingest counts (accepted,
//! rejected, duplicate) equal to what `events_raw_v2` holds, the winner distribution (two
//! deterministic Claude panes, one heuristic), binding churn (a rebind), the signature class
//! distribution — and `agtmux trace <id>` shows every hop of an event id read from the DB.
//! Waits are conditions with generous timeouts; nothing asserts on timing.
mod support;
use agtmux::store::{EventStatus, Store};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use support::*;

fn metrics(s: &Server) -> Value {
    let (code, out) = s.agtmux_code_out(&["metrics", "--json"]);
    assert_eq!(code, 0, "agtmux metrics failed: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The number of events per status in the database.
fn db_counts(s: &Server) -> (u64, u64, u64) {
    let store = Store::open(&s.db_path()).unwrap();
    let by = store.event_count_by_status().unwrap();
    let g = |k| by.get(&k).copied().unwrap_or(0);
    (
        g(EventStatus::Accepted),
        g(EventStatus::Ignored),
        g(EventStatus::Rejected),
    )
}

#[test]
fn metrics_move_with_injected_events_and_trace_shows_every_hop() {
    let mut s = Server::start("metrics");
    let shell = s.tmux_out(&["display-message", "-p", "-t", "main:0", "#{pane_id}"]);
    let a = s.silent_agent("claude");
    let b = s.silent_agent("claude");
    let h = s.silent_agent("claude");
    s.start_daemon();

    // Before any event: nothing ingested, no churn.
    let m0 = metrics(&s);
    assert_eq!(m0["v"], 1);
    assert_eq!(m0["ingest"]["total"]["accepted"], 0, "{m0}");
    assert_eq!(m0["binding_churn"]["total"]["rebinds"], 0, "{m0}");

    // An API subscriber, so published changes reach a client (hop `client`).
    let key = agtmux::paths::server_key(&s.socket());
    let sock = s.runtime_dir.join(format!("{key}.sock"));
    assert!(wait_until(20, || sock.exists()));
    let sub = UnixStream::connect(&sock).unwrap();
    let mut w = sub.try_clone().unwrap();
    writeln!(w, "{}", json!({"v":1,"id":1,"method":"subscribe"})).unwrap();
    let mut r = BufReader::new(sub);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("\"subscribed\":true"), "{line}");

    // Two deterministic Claude panes; the third only has the process (heuristic).
    s.claude(&a, claude::prompt("sa", "go"));
    s.claude(&b, claude::prompt("sb", "go"));
    s.claude(&b, claude::permission("sb"));
    s.wait_pane(&a, "@agtmux_state", "running", 15);
    s.wait_pane(&b, "@agtmux_state", "waiting_approval", 15);
    s.wait_pane(&h, "@agtmux_evidence", "heuristic", 20);

    // A rebind: pane a starts a new session (e.g. /clear).
    s.claude(
        &a,
        claude::ev("sa2", "SessionStart", json!({"source": "clear"})),
    );
    s.claude(&a, claude::prompt("sa2", "again"));
    // A rejected line (not JSON) and a duplicate (the last spool line written twice).
    let out = s.hook("claude", &a, b"{not json");
    assert!(out.status.success());
    let spool = std::fs::read_to_string(s.spool_path()).unwrap();
    let last = spool.lines().last().unwrap().to_string();
    std::fs::OpenOptions::new()
        .append(true)
        .open(s.spool_path())
        .unwrap()
        .write_all(format!("{last}\n").as_bytes())
        .unwrap();

    let mut m = Value::Null;
    let settled = wait_until(20, || {
        m = metrics(&s);
        m["ingest"]["total"]["duplicate"].as_u64() >= Some(1)
            && m["ingest"]["total"]["rejected"].as_u64() >= Some(1)
            && m["binding_churn"]["total"]["rebinds"].as_u64() >= Some(1)
    });
    assert!(settled, "metrics did not move: {m}\n{}", s.log_tail());

    // Ingest counts are exactly what the database holds.
    let (acc, ign, rej) = db_counts(&s);
    assert_eq!(acc, 5, "five hook events accepted");
    assert_eq!(m["ingest"]["total"]["accepted"], acc, "{m}");
    assert_eq!(m["ingest"]["total"]["ignored"], ign, "{m}");
    assert_eq!(m["ingest"]["total"]["rejected"], rej, "{m}");
    assert_eq!(m["ingest"]["total"]["duplicate"], 1, "{m}");
    // The daemon is younger than a minute's window only if the test ran fast; either way the
    // 10 min window holds everything.
    assert_eq!(m["ingest"]["10m"]["accepted"], acc, "{m}");

    // Winners: two deterministic (claude_hooks), one heuristic.
    assert_eq!(m["winners"]["managed"], 3, "{m}");
    assert_eq!(m["winners"]["tier"]["deterministic"], 2, "{m}");
    assert_eq!(m["winners"]["tier"]["heuristic"], 1, "{m}");
    assert_eq!(m["winners"]["source"]["claude_hooks"], 2, "{m}");

    // Binding churn: three links (sa, sb, sa2), one rebind.
    assert_eq!(m["binding_churn"]["total"]["rebinds"], 1, "{m}");
    assert_eq!(m["binding_churn"]["total"]["links"], 3, "{m}");

    // Signature classes: 2 deterministic, 1 heuristic (process only), 1 none (the shell).
    let c = &m["signature"]["classes"];
    assert_eq!(c["deterministic"], 2, "{m}");
    assert_eq!(c["heuristic"], 1, "{m}");
    assert_eq!(c["none"], 1, "{m}");
    let reasons: Vec<&str> = m["signature"]["reasons_top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "deterministic_binding", "{m}");
    assert!(reasons.contains(&"process_hint"), "{m}");
    // Three panes became managed: at least three presence transitions, no tier fallback.
    assert!(
        m["presence"]["flaps"]["total"]["presence_flaps"].as_u64() >= Some(3),
        "{m}"
    );
    assert_eq!(m["tier_transitions"]["total"]["fallback"], 0, "{m}");
    // Latencies were measured for deterministic states and for every hop.
    assert!(
        m["state_latency_ms"]["deterministic"]["10m"]["n"].as_u64() >= Some(3),
        "{m}"
    );
    for hop in ["gateway", "daemon", "option", "client", "total"] {
        assert!(
            m["hop_latency_ms"][hop]["10m"]["n"].as_u64() >= Some(1),
            "hop {hop}: {m}"
        );
        assert!(
            m["hop_latency_ms"][hop]["10m"]["p95"].is_i64(),
            "hop {hop}: {m}"
        );
    }
    let _ = shell;
    // Post-MVP figures: supervisor restarts/hold-downs, delivery, registry counts, snapshot
    // age and restore success rate, SLO windows.
    assert_eq!(m["supervisor"]["hold_downs"], 0, "{m}");
    assert!(
        m["supervisor"]["components"]["codex_appserver"].is_object(),
        "{m}"
    );
    assert!(m["delivery"]["batches"].as_u64() >= Some(3), "{m}");
    assert_eq!(m["delivery"]["drops"], 0, "{m}");
    assert!(m["source_registry"]["states"]["pending"].is_u64(), "{m}");
    assert_eq!(
        m["ops"]["restore_success_rate"],
        Value::Null,
        "no restore yet: {m}"
    );
    let slo = field_strs(&m["ops"]["slo"], "slo");
    assert!(slo.contains(&"state_latency_deterministic"), "{m}");
    // No snapshot yet: no age. An operator's snapshot gives one (the daemon's own count,
    // `snapshots_taken`, stays 0: it took none).
    assert_eq!(m["ops"]["snapshot_age_ms"], Value::Null, "{m}");
    let (code, out) = s.agtmux_code_out(&["snapshot", "create"]);
    assert_eq!(code, 0, "{out}");
    let after = metrics(&s);
    assert!(after["ops"]["snapshot_age_ms"].is_i64(), "{after}");
    assert_eq!(after["ops"]["snapshots_taken"], 0, "{after}");
    let (code, text) = s.agtmux_code_out(&["metrics"]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("total: accepted={acc} ")), "{text}");
    assert!(text.contains("deterministic=2 heuristic=1"), "{text}");
    for line in [
        "supervisor  restarts=",
        "delivery    batches=",
        "registry    ",
        "snapshots   age=",
        "slo         state_latency_deterministic=",
    ] {
        assert!(text.contains(line), "missing {line:?}\n{text}");
    }
    if std::env::var_os("AGTMUX_TEST_PRINT").is_some() {
        eprintln!("{text}");
    }
    if std::env::var_os("AGTMUX_TEST_PRINT").is_some() {
        eprintln!("{m:#}");
    }

    // Trace: the PermissionRequest of pane b, read from the database.
    let store = Store::open(&s.db_path()).unwrap();
    let ev = store
        .events_for_pane(&key, &agtmux::core::types::PaneId::parse(&b).unwrap(), 10)
        .unwrap()
        .into_iter()
        .find(|e| e.name == "PermissionRequest")
        .expect("the PermissionRequest is stored");
    let hops_stored = |id: &str| -> Value {
        serde_json::from_str(&store.event(id).unwrap().unwrap().hops).unwrap()
    };
    assert!(wait_until(10, || hops_stored(&ev.event_id)
        .get("client")
        .is_some()));
    let stored = hops_stored(&ev.event_id);
    let want = ["source", "gateway", "daemon", "option", "client"];
    for hop in want {
        assert!(stored[hop].is_i64(), "hop {hop} not stored: {stored}");
    }
    let (code, out) = s.agtmux_code_out(&["trace", &ev.event_id, "--json"]);
    assert_eq!(code, 0, "{out}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["v"], 1);
    assert_eq!(t["event_id"], ev.event_id.as_str());
    assert_eq!(t["pane_id"], b.as_str());
    let names = field_strs(&t["hops"], "hop");
    assert_eq!(names, want, "{t}");
    for (i, h) in t["hops"].as_array().unwrap().iter().enumerate() {
        assert_eq!(h["ts_ms"], stored[want[i]], "{t}");
    }
    // The human form names every hop too.
    let (code, text) = s.agtmux_code_out(&["trace", &ev.event_id]);
    assert_eq!(code, 0);
    for hop in want {
        assert!(text.contains(hop), "{text}");
    }
    // `explain` shows the pane's last event with its trace.
    let (code, ex) = s.agtmux_code_out(&["explain", &b, "--json"]);
    assert_eq!(code, 0);
    let ex: Value = serde_json::from_str(&ex).unwrap();
    assert_eq!(ex["last_event"]["event_id"], ev.event_id.as_str(), "{ex}");

    // With the daemon gone, the trace still comes from the database.
    s.kill_daemon_hard();
    let (code, out) = s.agtmux_code_out(&["trace", &ev.event_id, "--json"]);
    assert_eq!(code, 0, "{out}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["from"], "store");
    assert_eq!(t["hops"].as_array().unwrap().len(), 5, "{t}");
    let (code, _) = s.agtmux_code_out(&["trace", "no-such-event"]);
    assert_eq!(code, 3);
}
