//! Flow-010 snapshots and C-013 guardrails end to end: a real daemon on a private tmux server
//! takes periodic and shutdown snapshots, `agtmux snapshot create|list|restore` work against
//! it, a deliberately broken snapshot is reported by the dry-run, and SLO alerts in the ledger
//! are shown by `agtmux doctor`.
mod support;

use agtmux::store::{AlertRow, BindingRow, Store};
use serde_json::{Value, json};
use std::process::Output;
use support::{Server, wait_until};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn list(s: &Server) -> Value {
    let o = s.agtmux(&["snapshot", "list", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn reasons(v: &Value) -> Vec<String> {
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap().to_string())
        .collect()
}

fn start_daemon_with(s: &mut Server, every_ms: &str) {
    let mut c = s.daemon_cmd();
    c.env("AGTMUX_SNAPSHOT_EVERY_MS", every_ms);
    s.daemon = Some(c.spawn().unwrap());
    s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
}

fn stop_daemon(s: &mut Server) {
    if let Some(mut c) = s.daemon.take() {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let _ = c.wait();
    }
}

#[test]
fn snapshots_on_a_real_daemon_create_list_check_restore() {
    let mut s = Server::start("snap");
    let pane = s.silent_agent("claude");
    start_daemon_with(&mut s, "1500");
    for ev in ["SessionStart", "UserPromptSubmit"] {
        let p = json!({"session_id": "snap1", "hook_event_name": ev, "source": "startup",
                       "prompt": "hi", "cwd": "/tmp"});
        s.claude(&pane, p);
    }
    s.wait_pane(&pane, "@agtmux_state", "running", 10);

    // Manual snapshot while the daemon runs.
    let o = s.agtmux(&["snapshot", "create", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(created["size"].as_u64().unwrap() > 0);
    assert!(std::path::Path::new(created["path"].as_str().unwrap()).exists());

    // The daemon's periodic snapshot (every 1.5 s here) shows up, recorded in the database.
    let mut last = Value::Null;
    assert!(
        wait_until(20, || {
            last = list(&s);
            reasons(&last).iter().any(|r| r == "periodic")
        }),
        "no periodic snapshot: {last}\n{}",
        s.log_tail()
    );
    assert!(
        wait_until(10, || {
            last = list(&s);
            last["snapshots"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["reason"] == "periodic" && x["recorded"] == true)
        }),
        "periodic snapshot not in state_snapshot_v2: {last}"
    );
    // At most 4 kept.
    assert!(
        wait_until(20, || list(&s)["snapshots"].as_array().unwrap().len() == 4),
        "{}",
        list(&s)
    );

    // Dry-run of the newest: consistent, with the pane bound to its session.
    let o = s.agtmux(&["snapshot", "restore", "--dry-run", "--json"]);
    let rep: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(o.status.success(), "{rep:#}");
    assert_eq!(rep["consistent"], true, "{rep:#}");
    assert!(
        rep["counts"]["open_bindings"].as_u64().unwrap() >= 1,
        "{rep:#}"
    );
    assert!(
        rep["counts"]["pane_states"].as_u64().unwrap() >= 1,
        "{rep:#}"
    );

    // A real restore is refused while the daemon runs.
    let o = s.agtmux(&["snapshot", "restore"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("daemon runs"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Shutdown snapshot.
    stop_daemon(&mut s);
    assert_eq!(reasons(&list(&s))[0], "shutdown", "{}", list(&s));

    // With the daemon stopped the restore goes through and keeps the old database.
    let o = s.agtmux(&["snapshot", "restore", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(std::path::Path::new(r["previous"].as_str().unwrap()).exists());
    assert!(Store::open(&s.db_path()).unwrap().quick_check().is_ok());
    // Three restores (dry-run, refused, done): two succeeded.
    let l = list(&s);
    assert_eq!(l["restore"]["attempts"], 3, "{l}");
    assert_eq!(l["restore"]["successes"], 2, "{l}");

    // The daemon starts again on the restored database and still knows the pane.
    start_daemon_with(&mut s, "0");
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
}

#[test]
fn dry_run_reports_a_deliberately_inconsistent_snapshot() {
    let mut s = Server::start("snapbad");
    let pane = s.silent_agent("claude");
    start_daemon_with(&mut s, "0");
    let p = json!({"session_id": "bad1", "hook_event_name": "UserPromptSubmit", "prompt": "x"});
    s.claude(&pane, p);
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    let o = s.agtmux(&["snapshot", "create", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let good = std::path::PathBuf::from(created["path"].as_str().unwrap());

    // Break a copy: an open binding for a pane with no row, a binding of another tmux server,
    // a cursor far past the spool's end.
    let bad = s.dir.join("broken.db");
    std::fs::copy(&good, &bad).unwrap();
    {
        let mut st = Store::open(&bad).unwrap();
        let key = agtmux::paths::server_key(&s.socket());
        let cur = st.cursor("hooks_spool").unwrap().unwrap().committed_cursor;
        let mut parts: Vec<String> = cur.split(':').map(str::to_string).collect();
        parts[2] = "999999999".into();
        let b = |pane: &str, server_id: &str| BindingRow {
            id: 0,
            server_key: key.clone(),
            server_id: server_id.into(),
            pane_id: agtmux::core::types::PaneId::parse(pane).unwrap(),
            generation: 1,
            birth_ts: 1,
            session_key: "ghost".into(),
            provider: agtmux::core::types::Provider::Claude,
            linked_ts: 1,
            unlinked_ts: None,
            reason: "test".into(),
            tombstone_until: None,
        };
        let mut tx = st.begin().unwrap();
        tx.insert_binding(&b("%999", "x")).unwrap();
        tx.insert_binding(&b(&pane, "another-server")).unwrap();
        tx.set_cursor("hooks_spool", &parts.join(":"), None, 1)
            .unwrap();
        tx.commit().unwrap();
    }
    let o = s.agtmux(&[
        "snapshot",
        "restore",
        "--dry-run",
        "--json",
        "--from",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let rep: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rep["consistent"], false);
    let errors: Vec<String> = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| format!("{} {}", f["check"], f["detail"]))
        .collect();
    assert!(errors.iter().any(|e| e.contains("%999")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("another-server")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("past the spool")),
        "{errors:?}"
    );
    // Text output says the same, and the good one is consistent.
    let dry_run = |p: &std::path::Path| {
        s.agtmux(&[
            "snapshot",
            "restore",
            "--dry-run",
            "--from",
            p.to_str().unwrap(),
        ])
    };
    let o = dry_run(&bad);
    assert!(stdout(&o).contains("consistent: NO"), "{}", stdout(&o));
    let o = dry_run(&good);
    assert!(o.status.success(), "{}", stdout(&o));
    // A real restore of the broken one is refused even with the daemon stopped.
    stop_daemon(&mut s);
    let o = s.agtmux(&["snapshot", "restore", "--from", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("consistency error"));
}

#[test]
fn doctor_shows_slo_alerts_from_the_ledger() {
    let mut s = Server::start("slo");
    start_daemon_with(&mut s, "0");
    let o = s.agtmux(&["doctor"]);
    assert!(
        stdout(&o).contains("SLO state latency: no alert"),
        "{}",
        stdout(&o)
    );
    // Alerts as the guardrails write them (the evaluation itself is unit-tested).
    {
        let mut st = Store::open(&s.db_path()).unwrap();
        let now = agtmux::sys::clock::now_ms();
        let mut tx = st.begin().unwrap();
        for (slo, level, ts) in [
            ("state_latency_deterministic", "warn", now - 120_000),
            ("state_latency_deterministic", "degraded", now - 60_000),
            ("state_latency_fallback", "escalate", now - 1_000),
            ("state_latency_fallback", "warn", now - 3_600_000), // outside the window
        ] {
            tx.record_alert(&AlertRow {
                id: 0,
                ts,
                slo: slo.into(),
                level: level.into(),
                value: Some(9_000.0),
                window: Some("10m n=300".into()),
                detail: "p95 9000 ms over 300 samples".into(),
            })
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let o = s.agtmux(&["doctor"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("SLO state_latency_deterministic: degraded"),
        "{out}"
    );
    assert!(
        out.contains("SLO state_latency_fallback: escalate"),
        "{out}"
    );
    assert!(
        !out.contains("deterministic: warn"),
        "newest per SLO only: {out}"
    );
}

#[test]
fn daemon_records_slo_breaches_and_shows_them_in_agtmux_daemon() {
    let mut s = Server::start("slod");
    let pane = s.silent_agent("claude");
    // Targets nobody can meet (any latency > -1 ms, and > 5 × -1): every sample breaches at
    // escalate level; 3 samples suffice; evaluated every 300 ms.
    s.spawn_daemon_with(&[
        ("AGTMUX_SNAPSHOT_EVERY_MS", "0"),
        ("AGTMUX_SLO_MIN_SAMPLES", "3"),
        ("AGTMUX_SLO_TARGET_DETERMINISTIC_MS", "-1"),
        ("AGTMUX_SLO_EVAL_MS", "300"),
    ]);
    let st = s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    assert!(!st.contains("slo:"), "{st}");
    for i in 0..4 {
        for (ev, want) in [("UserPromptSubmit", "running"), ("Stop", "idle")] {
            let p = json!({"session_id": "slo1", "hook_event_name": ev, "prompt": format!("p{i}")});
            s.claude(&pane, p);
            s.wait_pane(&pane, "@agtmux_state", want, 10);
        }
    }
    let st = s.wait_global(
        "@agtmux_daemon",
        |v| v.contains("slo:state_latency_deterministic=escalate"),
        15,
    );
    assert!(
        st.contains(" escalate "),
        "an escalated SLO escalates the daemon status: {st}"
    );
    let rows = Store::open(&s.db_path()).unwrap().alerts(0, 100).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.slo == "state_latency_deterministic" && r.level == "escalate"),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r.slo != "state_latency_fallback"),
        "{rows:?}"
    );
    let o = s.agtmux(&["doctor"]);
    assert!(
        stdout(&o).contains("SLO state_latency_deterministic: escalate"),
        "{}",
        stdout(&o)
    );
}
