//! Issue 10 on the Codex app-server connection, end to end: the real daemon on a private tmux
//! server and the test app-server (`agtmux dev-codex-appserver`) as a real child process on the
//! test's own socket. Flow-011 (restarts, hold-down, escalate), Flow-009 (the listener's uid),
//! Flow-013 (registry lifecycle: discovered → active → stale → revoked → re-registered, socket
//! rotation, heartbeats and the heartbeat timeout), and the per-connection traces.
//!
//! Nothing asserts on timing: every wait polls up to a generous timeout.
mod support;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

fn api(s: &Server, method: &str, params: Value) -> Value {
    let path = s
        .runtime_dir
        .join(format!("{}.sock", agtmux::paths::server_key(&s.socket())));
    let Ok(mut c) = UnixStream::connect(path) else {
        return Value::Null;
    };
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = json!({"v":1,"id":1,"method":method,"params":params}).to_string();
    line.push('\n');
    c.write_all(line.as_bytes()).unwrap();
    let mut out = String::new();
    BufReader::new(c).read_line(&mut out).unwrap_or(0);
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

fn cli(s: &Server, args: &[&str]) -> (bool, String, String) {
    let o = s.agtmux_cmd(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The Codex entry of the daemon's registry (`source.list`).
fn codex_entry(s: &Server) -> Value {
    let l = api(s, "source.list", json!({}));
    l["result"]["entries"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["source_kind"] == "codex_appserver")
                .cloned()
        })
        .unwrap_or(Value::Null)
}

fn connections(s: &Server) -> Vec<Value> {
    api(s, "source.list", json!({}))["result"]["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["kind"] == "codex_appserver")
        .collect()
}

fn component(s: &Server) -> Value {
    api(s, "health", json!({}))["result"]["supervisor"]["components"]["codex_appserver"].clone()
}

/// A server with a test app-server (`flags`) on its Codex socket, then its daemon started with
/// `env`: the server and the app-server.
fn with_app_server(tag: &str, flags: &[&str], env: &[(&str, &str)]) -> (Server, Child) {
    let mut s = Server::start(tag);
    let srv = app_server(&s, &s.codex_sock(), flags);
    s.spawn_daemon_with(env);
    (s, srv)
}

/// A test app-server on `sock` replaying nothing (an empty stream), with extra flags.
fn app_server(s: &Server, sock: &Path, flags: &[&str]) -> Child {
    let empty = s.dir.join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    Command::new(BIN)
        .args(["dev-codex-appserver", "--sock"])
        .arg(sock)
        .arg("--stream")
        .arg(&empty)
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn the_codex_appserver_is_registered_admitted_kept_alive_rotated_revoked_and_reregistered() {
    // Pings every 200 ms: several timeouts pass during the test.
    let (s, srv) = with_app_server(
        "cxsup",
        &[],
        &[("AGTMUX_SOURCE_HEARTBEAT_TIMEOUT_MS", "600")],
    );
    let sock = s.codex_sock();
    s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);

    // The supervisor registered the socket it discovered; the handshake made it active.
    assert!(
        wait_until(15, || codex_entry(&s)["state"] == "active"),
        "{}\n{}",
        codex_entry(&s),
        s.log_tail()
    );
    let e = codex_entry(&s);
    assert_eq!(e["registered_by"], "supervisor", "{e}");
    assert_eq!(e["socket_path"], sock.to_string_lossy().as_ref(), "{e}");
    let l = s.log();
    assert!(l.contains("from=none to=pending reason=discovered"), "{l}");
    assert!(l.contains("from=pending to=active reason=handshake"), "{l}");

    // A quiet server that answers pings stays active over many heartbeat timeouts.
    assert!(
        wait_until(20, || connections(&s)
            .first()
            .is_some_and(|c| c["heartbeats"].as_u64().unwrap_or(0) >= 8)),
        "{:?}\n{}",
        connections(&s),
        s.log_tail()
    );
    assert_eq!(codex_entry(&s)["state"], "active");
    assert!(!s.log().contains("reason=heartbeat_timeout"), "{}", s.log());
    // Its connection's story: admission, then hello.
    let conn = connections(&s)[0]["connection"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, err) = cli(&s, &["trace", "-L", &s.name, "--connection", &conn]);
    assert!(ok, "{err}");
    let admission = out.find("admission").expect(&out);
    let hello = out.find("hello").expect(&out);
    assert!(admission < hello, "{out}");
    assert!(
        out.contains("peer_uid=0") || out.contains("peer_uid="),
        "{out}"
    );

    // The daemon is killed hard: its socket file stays, nothing listens. Stale, not a crash
    // loop: an unreachable socket is no failure.
    stop(srv);
    s.wait_log("from=active to=stale reason=connection_lost", 15);
    assert!(
        wait_until(10, || component(&s)["phase"] == "absent"),
        "{}",
        component(&s)
    );

    // A new daemon on the same path (a new socket file): back at once, as a rotation.
    let srv = app_server(&s, &sock, &[]);
    s.wait_log("from=stale to=active reason=socket_rotation", 15);

    // The operator revokes it: disconnected, and it stays so.
    let (ok, out, err) = cli(&s, &["source", "-L", &s.name, "revoke", "codex_appserver"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked"), "{out}");
    s.wait_log("codex_appserver_revoked", 10);
    assert!(
        wait_until(10, || component(&s)["phase"] == "revoked"),
        "{}",
        component(&s)
    );
    assert!(
        wait_until(10, || connections(&s)
            .first()
            .is_some_and(|c| c["closed_reason"] == "revoked")),
        "{:?}",
        connections(&s)
    );
    let n_conns = connections(&s).len();
    // A revoked source is the operator's choice, not a fault.
    assert!(
        s.global_opt("@agtmux_daemon").ends_with(" ok"),
        "{}",
        s.global_opt("@agtmux_daemon")
    );

    // Registered again by the operator: pending, then active with a new connection.
    let sock_s = sock.to_string_lossy().into_owned();
    let (ok, out, err) = cli(
        &s,
        &[
            "source",
            "-L",
            &s.name,
            "register",
            "codex_appserver",
            &sock_s,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("pending") && out.contains("by=operator"),
        "{out}"
    );
    assert!(
        wait_until(15, || codex_entry(&s)["state"] == "active"),
        "{}\n{}",
        codex_entry(&s),
        s.log_tail()
    );
    assert_eq!(connections(&s).len(), n_conns + 1);
    assert_eq!(codex_entry(&s)["registered_by"], "operator");

    // Persisted with every transition logged.
    let (st, by): (String, String) = s.db_two(
        "SELECT state, registered_by FROM source_registry_v1 WHERE source_kind='codex_appserver'",
    );
    assert_eq!((st.as_str(), by.as_str()), ("active", "operator"));
    let l = s.log();
    for t in [
        "to=revoked reason=operator_revoke",
        "from=revoked to=pending reason=register",
        "from=pending to=active reason=reconnected",
    ] {
        assert!(l.contains(t), "missing {t}\n{l}");
    }
    // None of this was a failure of the source.
    assert_eq!(component(&s)["hold_downs"], 0, "{}", component(&s));
    stop(srv);
}

#[test]
fn a_codex_appserver_that_drops_every_connection_is_held_down_and_escalated() {
    let (s, srv) = with_app_server(
        "cxhold",
        &["--close-after-initialize"],
        &[
            ("AGTMUX_SUPERVISOR_BACKOFF_MS", "20,100"),
            ("AGTMUX_SUPERVISOR_HOLD_DOWN_MS", "600000"),
        ],
    );
    let l = s.wait_held_down("codex_appserver", 30);
    assert!(
        l.contains("escalate component=codex_appserver reason=hold_down"),
        "{l}"
    );
    assert_eq!(
        l.matches("supervisor_restart component=codex_appserver")
            .count(),
        4,
        "{l}"
    );
    let c = component(&s);
    assert_eq!(c["phase"], "hold_down", "{c}");
    assert_eq!(c["hold_downs"], 1, "{c}");
    assert_eq!(c["restarts"], 4, "{c}");
    // Five connections, then none during the hold-down.
    let conns = connections(&s);
    assert_eq!(conns.len(), 5, "{conns:?}");
    // The daemon's own clock passes the point where a sixth connection would have been made
    // without the hold-down (ten times the longest backoff after the last close), and only
    // then is the count checked again.
    let last_close = conns
        .iter()
        .filter_map(|c| c["closed_ts"].as_i64())
        .max()
        .expect("the connections were closed");
    assert!(
        wait_until(30, || api(&s, "health", json!({}))["result"]["now_ms"]
            .as_i64()
            .is_some_and(|n| n >= last_close + 1_000)),
        "the daemon's clock moved on"
    );
    assert_eq!(connections(&s).len(), 5, "{:?}", connections(&s));
    // Only this source is held down: the read model is served, tmux is fine.
    let h = api(&s, "health", json!({}));
    assert_eq!(
        h["result"]["supervisor"]["components"]["tmux_control"]["hold_downs"], 0,
        "{h}"
    );
    assert!(api(&s, "list", json!({}))["result"].is_object());
    // The operator is told what happened and what to do.
    let (_, out, _) = cli(&s, &["doctor", "-L", &s.name]);
    assert!(
        out.contains("codex_appserver failed 5 times and is held down"),
        "{out}"
    );
    stop(srv);
}

#[test]
fn a_hung_codex_appserver_is_dropped_at_the_heartbeat_timeout_and_reconnected() {
    let (s, srv) = with_app_server(
        "cxhung",
        &["--ignore-pings"],
        &[
            ("AGTMUX_SOURCE_HEARTBEAT_TIMEOUT_MS", "600"),
            ("AGTMUX_SUPERVISOR_BACKOFF_MS", "50,200"),
        ],
    );
    s.wait_log("from=active to=stale reason=heartbeat_timeout", 20);
    s.wait_log("supervisor_restart component=codex_appserver", 10);
    assert!(
        s.log().contains("heartbeat timeout"),
        "the restart names the reason\n{}",
        s.log()
    );
    // It is connected again (and dropped again: the server stays hung).
    assert!(
        wait_until(20, || connections(&s).len() >= 2),
        "{:?}\n{}",
        connections(&s),
        s.log_tail()
    );
    let old = connections(&s)
        .into_iter()
        .find(|c| c["closed_reason"] == "heartbeat_timeout");
    assert!(old.is_some(), "{:?}", connections(&s));
    stop(srv);
}

#[test]
fn a_codex_socket_that_another_uid_listens_on_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if agtmux::sys::peercred::runtime_uid() != 0 {
        eprintln!("skipped: needs root to run the app-server as another uid");
        return;
    }
    let mut s = Server::start("cxuid");
    // A directory the other uid may create its socket in.
    let dir = s.dir.join("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    // The test dir is also the parent of the daemon's runtime and state dirs: sticky, as
    // /tmp, or the daemon refuses dirs that others could rename away (issue 16).
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = dir.join("app-server-control.sock");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o644)).unwrap();
    let srv = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["dev-codex-appserver", "--sock"])
        .arg(&sock)
        .arg("--stream")
        .arg(&empty)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(10, || sock.exists()),
        "the foreign server never bound"
    );
    let mut cmd = s.daemon_cmd();
    cmd.env("AGTMUX_CODEX_SOCK", &sock);
    s.daemon = Some(cmd.spawn().unwrap());
    let v = s.wait_global(
        "@agtmux_daemon",
        |v| v.contains("codex_appserver:peer_uid_mismatch"),
        20,
    );
    assert!(v.contains("degraded"), "{v}");
    let l = s.log();
    assert!(
        l.contains("source_admission_rejected reason=peer_uid_mismatch peer_uid=65534"),
        "{l}"
    );
    // Refused before a byte was read: never active, no connection trace, not a failure.
    assert_ne!(codex_entry(&s)["state"], "active");
    assert!(!l.contains("codex_appserver_connected"), "{l}");
    assert!(connections(&s).is_empty(), "{:?}", connections(&s));
    assert_eq!(component(&s)["phase"], "refused");
    assert_eq!(component(&s)["restarts"], 0);
    let rejects = &api(&s, "source.list", json!({}))["result"]["admission_rejects"];
    assert!(
        rejects["peer_uid_mismatch"].as_u64().unwrap_or(0) >= 1,
        "{rejects}"
    );
    stop(srv);
}
