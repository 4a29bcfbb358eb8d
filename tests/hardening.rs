//! Post-MVP hardening on real tmux servers (issue 10 parts 1, 2, 3, 5): kill -9 during an event
//! burst (Flow-006), ack timeout and redelivery (Flow-012), UDS admission by peer uid and nonce
//! and the source registry lifecycle (Flow-009/013), the supervisor hold-down (Flow-011).
mod support;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// One request on a connection; the answer line as JSON.
fn ask(c: &mut UnixStream, req: serde_json::Value) -> serde_json::Value {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = req.to_string();
    line.push('\n');
    c.write_all(line.as_bytes()).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut out = String::new();
    r.read_line(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

fn request(s: &Server, method: &str, params: serde_json::Value) -> serde_json::Value {
    let mut c = UnixStream::connect(s.api_socket()).unwrap();
    ask(
        &mut c,
        serde_json::json!({"v":1,"id":1,"method":method,"params":params}),
    )
}

fn rand_ms(lo: u64, hi: u64, salt: u64) -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let x = (n ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    lo + (x >> 17) % (hi - lo)
}

/// Append `n` distinct valid hook lines for `pane` (built from one real envelope).
fn append_burst(s: &Server, template: &serde_json::Value, run: usize, n: usize) {
    let mut out = String::with_capacity(n * 400);
    for i in 0..n {
        let mut v = template.clone();
        v["payload"]["prompt"] = serde_json::json!(format!("burst {run} {i}"));
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true) // the spool is rotated past 8 MiB; a hook re-creates it the same way
        .open(s.spool_path())
        .unwrap();
    f.write_all(out.as_bytes()).unwrap();
}

fn stored_events(s: &Server) -> (u64, u64) {
    s.db_two("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events_raw_v2")
}

/// kill -9 at a random point of a 10 000-event burst, `runs` times: every event is stored
/// exactly once and the committed cursor ends at the end of the spool.
fn kill9_during_burst(runs: usize) {
    let (mut s, pane) = Server::with_agent("kill9", "claude");
    let out = s.hook(
        "claude",
        &pane,
        br#"{"session_id":"k1","hook_event_name":"UserPromptSubmit","prompt":"first"}"#,
    );
    assert!(out.status.success());
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    // `runs` bursts go past the 200 000-event retention bound, whose prune would delete the
    // oldest events under the count: the bound is raised, so every event must stay.
    s.daemon_env.push((
        "AGTMUX_RETENTION_EVENTS",
        (10_000 * runs + 1_000).to_string(),
    ));
    let first = std::fs::read_to_string(s.spool_path()).unwrap();
    let template: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let mut expected = 1u64;
    let mut killed_mid = 0;
    for run in 0..runs {
        s.kill_daemon_hard();
        append_burst(&s, &template, run, 10_000);
        expected += 10_000;
        let child = s.daemon_cmd().spawn().unwrap();
        s.daemon = Some(child);
        // Kill at a random point of this burst: once a random number of its events is
        // stored (watched in the database), not after a blind sleep that a fast machine
        // outruns.
        let target = expected - 10_000 + rand_ms(1, 9_000, run as u64);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while stored_events(&s).0 < target && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        s.kill_daemon_hard();
        let (before, _) = stored_events(&s);
        if before < expected {
            killed_mid += 1;
        }
        s.start_daemon();
        let ok = wait_until(120, || stored_events(&s).0 >= expected);
        let (n, d) = stored_events(&s);
        assert!(
            ok,
            "run {run}: {n} of {expected} events stored\n{}",
            s.log_tail()
        );
        assert_eq!(n, expected, "run {run}: nothing lost, nothing twice");
        assert_eq!(d, expected, "run {run}: every stored event is distinct");
        eprintln!("kill9 run {run}: killed with {before}/{expected} stored; after restart {n}");
    }
    // One more start: its first step prunes (a marker line says so), and the retention
    // bound, raised above what this test wrote, deletes none of the events.
    let pruned = |s: &Server| s.log().matches("pruned rows=").count();
    let before = pruned(&s);
    s.kill_daemon_hard();
    s.start_daemon();
    assert!(
        wait_until(60, || pruned(&s) > before),
        "no prune after the restart\n{}",
        s.log_tail()
    );
    assert_eq!(
        stored_events(&s).0,
        expected,
        "the restart's prune kept every event"
    );
    // The committed cursor caught up with the fetched one (nothing inflight).
    let (committed, fetched): (String, Option<String>) = s.db_two("SELECT committed_cursor, fetched_cursor FROM cursor_state_v2 WHERE source_id='hooks_spool'");
    assert_eq!(Some(committed), fetched);
    eprintln!("kill9: {runs} runs, {killed_mid} killed mid-burst, 0 lost, 0 duplicated");
    // The kills must really land inside the bursts, or this proves little.
    assert!(
        killed_mid * 2 >= runs,
        "only {killed_mid} of {runs} kills landed mid-burst"
    );
}

#[test]
fn kill9_at_random_points_of_a_10k_event_burst_20_times_loses_nothing_and_applies_nothing_twice() {
    kill9_during_burst(20);
}

#[test]
fn an_unacked_batch_is_redelivered_then_degrades_the_source_and_recovers() {
    let mut s = Server::start("ack");
    let pane = s.silent_agent("claude");
    drop(agtmux::store::Store::open(&s.db_path()).unwrap());
    s.spawn_daemon_with(&[
        ("AGTMUX_ACK_TIMEOUT_MS", "300"),
        ("AGTMUX_ACK_MAX_ATTEMPTS", "3"),
    ]);
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 15);
    // The store is locked: the commit (the ack) fails, the batch stays inflight.
    let holder = rusqlite::Connection::open(s.db_path()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    s.claude(&pane, claude::permission("a1"));
    // Applied at once (served from memory), durable later.
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    s.wait_global("@agtmux_daemon", |v| v.contains("ack_retry_exhausted"), 20);
    let l = s.log();
    assert!(l.contains("ack_timeout token="), "{l}");
    assert!(l.contains("attempt=3 redelivery=true"), "{l}");
    let health = request(&s, "health", serde_json::json!({}));
    let d = &health["result"]["delivery"];
    assert_eq!(d["retry_exhausted"], 1, "{health}");
    assert!(
        d["duplicates"].as_u64().unwrap() >= 2,
        "redeliveries were no-ops: {health}"
    );
    // The lock goes: the store recovers and the source with it.
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    // Exhausted redeliveries held the batch, they did not drop it (issue 16): it is stored.
    let held: u64 = s.db_one("SELECT COUNT(*) FROM events_raw_v2 WHERE name='PermissionRequest'");
    assert_eq!(held, 1, "{}", s.log_tail());

    // A shorter outage: the redelivered token is acked, the event stored exactly once.
    let acked_before = s.log().matches("delivery_acked token=").count();
    let redelivered_before = s.log().matches("attempt=2 redelivery=true").count();
    let holder = rusqlite::Connection::open(s.db_path()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    s.claude(&pane, claude::prompt("a1", "go"));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    assert!(wait_until(10, || s
        .log()
        .matches("attempt=2 redelivery=true")
        .count()
        > redelivered_before));
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    assert!(
        wait_until(20, || s.log().matches("delivery_acked token=").count()
            > acked_before),
        "{}",
        s.log_tail()
    );
    let (n, event_id): (u64, String) =
        s.db_two("SELECT COUNT(*), MAX(event_id) FROM events_raw_v2 WHERE name='UserPromptSubmit'");
    assert_eq!(n, 1);
    // Tracing per delivery token: the event's trace names its token, and the token's story
    // is pull_events → delivery → ack_timeout → redelivery (re-pulled, nothing applied
    // again) → ack.
    let t = request(&s, "trace", serde_json::json!({"event_id": event_id}));
    let token = t["result"]["delivery_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{t}"))
        .to_string();
    let out = s.agtmux(&["trace", "--delivery", &token]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let mut at = 0;
    for step in [
        "pull_events",
        "delivery",
        "ack_timeout",
        "redelivery",
        "pull_events",
        "ack ",
    ] {
        let i = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("no {step} after {at}:\n{text}"));
        at += i + step.len();
    }
    assert!(text.contains("nothing applied again"), "{text}");
    assert!(text.contains(&event_id), "{text}");
    let missing = request(
        &s,
        "trace",
        serde_json::json!({"delivery_token": "dffffffffff"}),
    );
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");
}

#[test]
fn another_uid_is_rejected_at_the_api_socket() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = Server::start("peeruid");
    s.start_daemon();
    // Make the socket reachable for the other uid: only SO_PEERCRED stands in the way now.
    for p in [&s.dir, &s.runtime_dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(s.api_socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let socket = s.socket();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "ls",
            "-S",
        ])
        .arg(&socket)
        .env("AGTMUX_RUNTIME_DIR", &s.runtime_dir)
        .env("AGTMUX_STATE_DIR", "/nonexistent-agtmux-state")
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the other uid got an answer: {err}");
    // The reason reaches the client (not a bare "broken pipe"), and the log has it.
    assert!(err.contains("peer_uid_mismatch"), "{err}");
    assert!(
        wait_until(5, || s
            .log()
            .contains("api_admission_rejected reason=peer_uid_mismatch")),
        "{}",
        s.log_tail()
    );
    // Our own uid is still served.
    assert!(request(&s, "list", serde_json::json!({}))["result"].is_object());
}

#[test]
fn source_hello_needs_the_nonce_and_a_registry_match_and_stale_sources_are_revoked_and_reregistered()
 {
    let mut s = Server::start("nonce");
    s.spawn_daemon_with(&[("AGTMUX_SOURCE_HEARTBEAT_TIMEOUT_MS", "400")]);
    s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    let key = agtmux::paths::server_key(&s.socket());
    let nonce = std::fs::read_to_string(s.runtime_dir.join(format!("{key}.nonce"))).unwrap();
    let hello = |nonce: &str, path: &str| {
        let mut c = UnixStream::connect(s.api_socket()).unwrap();
        let a = ask(
            &mut c,
            serde_json::json!({"v":1,"id":1,"method":"source.hello","params":{
                "source_kind":"file_watch","socket_path":path,"nonce":nonce,"protocol_version":1}}),
        );
        (a, c)
    };
    // Wrong nonce: refused and the connection closed.
    let (a, mut c) = hello("00000000000000000000000000000000", "/run/file-watch.sock");
    assert_eq!(a["error"]["code"], "runtime_nonce_mismatch", "{a}");
    let mut rest = String::new();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        BufReader::new(&mut c).read_line(&mut rest).unwrap_or(0),
        0,
        "closed"
    );
    // Right nonce, not registered: refused.
    let (a, _) = hello(&nonce, "/run/file-watch.sock");
    assert_eq!(a["error"]["code"], "source_registry_miss", "{a}");
    // The operator registers it: pending, then active on hello.
    let reg = run_ok(&mut s.agtmux_cmd(&[
        "source",
        "-L",
        &s.name,
        "register",
        "file_watch",
        "/run/file-watch.sock",
    ]));
    assert!(String::from_utf8_lossy(&reg.stdout).contains("pending"));
    let (a, _c) = hello(&nonce, "/run/file-watch.sock");
    assert_eq!(a["result"]["state"], "active", "{a}");
    // No heartbeat: stale.
    let state = |s: &Server| {
        let l = request(s, "source.list", serde_json::json!({}));
        l["result"]["entries"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["source_id"] == "file_watch:0"))
            .and_then(|e| e["state"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert!(wait_until(10, || state(&s) == "stale"), "{}", s.log_tail());
    // Revoked by the operator: hello refused.
    run_ok(&mut s.agtmux_cmd(&["source", "-L", &s.name, "revoke", "file_watch"]));
    assert_eq!(state(&s), "revoked");
    let (a, _) = hello(&nonce, "/run/file-watch.sock");
    assert_eq!(a["error"]["code"], "source_registry_miss", "{a}");
    // Re-registered at a rotated socket: pending, then active again.
    let r = request(
        &s,
        "source.register",
        serde_json::json!({"source_kind":"file_watch","socket_path":"/run/file-watch-2.sock"}),
    );
    assert_eq!(r["result"]["state"], "pending", "{r}");
    let (a, c2) = hello(&nonce, "/run/file-watch-2.sock");
    assert_eq!(a["result"]["state"], "active", "{a}");
    // Its connection goes away: the source is unreachable now, stale at once (no need to
    // wait for the heartbeat timeout), and the connection's story is kept.
    let conn = a["result"]["connection"].as_str().unwrap().to_string();
    drop(c2);
    assert!(
        wait_until(10, || s
            .log()
            .contains("from=active to=stale reason=connection_closed")),
        "{}",
        s.log_tail()
    );
    let t = request(&s, "source.trace", serde_json::json!({"connection": conn}));
    let steps = field_strs(&t["result"]["steps"], "step");
    assert_eq!(steps, ["admission", "hello"], "{t}");
    assert_eq!(t["result"]["kind"], "file_watch", "{t}");
    assert!(t["result"]["closed_reason"].is_string(), "{t}");
    // The refused hellos were traced too (a wrong nonce, a registry miss).
    let conns = request(&s, "source.list", serde_json::json!({}))["result"]["connections"].clone();
    let refused = conns
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["steps"].as_array().is_some_and(|st| {
                st.iter().any(|x| {
                    x["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("refused"))
                })
            })
        })
        .count();
    assert!(refused >= 3, "{conns}");
    // An inbound hello cannot claim the entry the supervisor owns (the Codex socket).
    let mut c = UnixStream::connect(s.api_socket()).unwrap();
    let a = ask(
        &mut c,
        serde_json::json!({"v":1,"id":1,"method":"source.hello","params":{
            "source_kind":"codex_appserver","socket_path":s.codex_sock().to_string_lossy(),
            "nonce":nonce,"protocol_version":1}}),
    );
    assert_eq!(a["error"]["code"], "source_registry_miss", "{a}");
    // Every transition logged and persisted.
    let l = s.log();
    for t in [
        "source_id=file_watch:0 from=none to=pending reason=register",
        "source_id=file_watch:0 from=pending to=active",
        "source_id=file_watch:0 from=active to=stale reason=heartbeat_timeout",
        "source_id=file_watch:0 from=stale to=revoked reason=operator_revoke",
        "source_id=file_watch:0 from=revoked to=pending",
    ] {
        assert!(l.contains(t), "missing {t}\n{l}");
    }
    let (st, path): (String, String) = s
        .db_two("SELECT state, socket_path FROM source_registry_v1 WHERE source_id='file_watch:0'");
    // Stale: its last connection closed above.
    assert_eq!(
        (st.as_str(), path.as_str()),
        ("stale", "/run/file-watch-2.sock")
    );
}

#[test]
fn a_control_client_that_keeps_crashing_is_held_down_and_escalated() {
    let mut s = Server::start("holddown");
    // A tmux that dies at once in control mode and is the real one otherwise.
    let fake = write_script(
        &s.dir.join("fake-tmux"),
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = \"-C\" ] && exit 1; done\nexec tmux \"$@\"\n",
    );
    let mut cmd = s.daemon_cmd();
    cmd.arg("--tmux-bin")
        .arg(&fake)
        .env("AGTMUX_SUPERVISOR_BACKOFF_MS", "20,100")
        .env("AGTMUX_SUPERVISOR_HOLD_DOWN_MS", "600000");
    s.daemon = Some(cmd.spawn().unwrap());
    let l = s.wait_held_down("tmux_control", 20);
    assert_eq!(
        l.matches("supervisor_restart component=tmux_control")
            .count(),
        4,
        "{l}"
    );
    // Fail-closed: the API answers health (with the counters) but not the read model.
    let h = request(&s, "health", serde_json::json!({}));
    assert_eq!(h["result"]["supervisor"]["hold_downs"], 1, "{h}");
    assert_eq!(h["result"]["supervisor"]["restarts"], 4, "{h}");
    assert_eq!(
        h["result"]["supervisor"]["startup"]["waiting_for"], "gateway",
        "{h}"
    );
    let list = request(&s, "list", serde_json::json!({}));
    assert_eq!(list["error"]["code"], "not_ready", "{list}");
}

#[test]
fn an_unusable_environment_override_is_logged_and_the_default_stays() {
    let mut s = Server::start("envbad");
    s.spawn_daemon_with(&[
        ("AGTMUX_RETENTION_EVENTS", "lots"),
        ("AGTMUX_HOLD_MAX_ROWS", "0"),
    ]);
    s.wait_log("pruned rows=", 30);
    let log = s.log();
    assert!(
        log.contains("env_ignored key=AGTMUX_RETENTION_EVENTS value=\"lots\" reason=not_a_number"),
        "{}",
        s.log_tail()
    );
    assert!(
        log.contains("env_ignored key=AGTMUX_HOLD_MAX_ROWS reason=not_above_zero"),
        "{}",
        s.log_tail()
    );
    assert!(log.contains("max_events=200000 "), "{}", s.log_tail());
}
