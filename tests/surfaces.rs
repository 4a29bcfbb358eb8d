//! What the user sees (issue 7), against a real tmux on a private socket and the real binary:
//! the local API (push, errors, many clients), the status line and choose-tree formats read
//! back through `tmux display -p`, the TPM entry's bindings, `ls --json`/`explain --json`
//! shapes, and the popup driven like a person (send-keys, capture-pane, Enter switches an
//! attached client). States are injected with real hook payloads through `agtmux hook claude`
//! into panes whose process is named `claude`. Waits are conditions with generous timeouts;
//! nothing asserts on timing.
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{BIN, Server, claude};

/// A quiet process whose argv[0] (what tmux and /proc show) is `claude`.
const CLAUDE_CMD: &str = "bash -c 'exec -a claude sleep 100000'";

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server whose first session `work` runs a quiet process named `claude`, and its daemon.
fn world() -> Server {
    world_with(|_| {})
}

/// Like [`world`], with `setup` run on the server before the daemon starts.
fn world_with(setup: impl FnOnce(&Server)) -> Server {
    let mut w = Server::start_with(
        "surf",
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "work",
            "-x",
            "150",
            "-y",
            "40",
            CLAUDE_CMD,
        ],
    );
    w.tmux_ok(&["set", "-g", "remain-on-exit", "off"]);
    setup(&w);
    w.spawn_daemon_with(&[]);
    let sock = w.api_socket();
    wait_for("the API socket", 20, || sock.exists().then_some(()));
    // The API socket is bound before the control client attaches. Wait until the daemon
    // published through it: a session or window created while a control client is still
    // identifying crashes a tmux 3.3a server (SIGSEGV in control_write, upstream #4980).
    w.wait_global("@agtmux_daemon", |v| !v.trim().is_empty(), 20);
    w
}

fn approval(w: &Server, pane: &str, session: &str) {
    w.claude(pane, claude::prompt(session, "go"));
    w.claude(pane, claude::permission(session));
}

fn idle(w: &Server, pane: &str, session: &str) {
    w.claude(pane, claude::start(session));
}

fn connect(w: &Server) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(w.api_socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    (BufReader::new(s.try_clone().unwrap()), s)
}

/// The pane in the daemon's read model (`get`), `None` when it has no answer.
fn pane_state(w: &Server, pane: &str) -> Option<Value> {
    let a = w.api("get", json!({"pane": pane}));
    a.get("result").cloned()
}

fn wait_state(w: &Server, pane: &str, state: &str) -> Value {
    wait_for(&format!("{pane} {state}"), 30, || {
        pane_state(w, pane).filter(|p| p["state"] == state)
    })
}

fn read_json_line(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    let n = r.read_line(&mut line).unwrap();
    assert!(n > 0, "connection closed");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn api_pushes_changes_rejects_bad_requests_and_serves_many_clients() {
    let w = world();
    let dir_mode = std::fs::metadata(&w.runtime_dir).unwrap();
    let sock_mode = std::fs::metadata(w.api_socket()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(dir_mode.permissions().mode() & 0o777, 0o700);
    assert_eq!(sock_mode.permissions().mode() & 0o777, 0o600);

    // Wait until the daemon knows the pane as an agent (from its process).
    wait_for("%0 managed", 30, || {
        pane_state(&w, "%0").filter(|p| p["presence"] == "managed")
    });

    // Subscribe, then inject an approval: the change arrives as a push.
    let (mut r, mut s) = connect(&w);
    writeln!(
        s,
        r#"{{"v":1,"id":"sub","method":"subscribe","params":{{}}}}"#
    )
    .unwrap();
    let ack = read_json_line(&mut r);
    assert_eq!(ack["v"], 1);
    assert_eq!(ack["id"], "sub");
    assert_eq!(ack["result"]["subscribed"], true);
    assert!(ack["result"]["list"]["sessions"].is_array());
    approval(&w, "%0", "s-api");
    let pushed = wait_for("a pushed approval for %0", 30, || {
        let m = read_json_line(&mut r);
        (m["event"] == "pane"
            && m["pane"]["pane_id"] == "%0"
            && m["pane"]["state"] == "waiting_approval")
            .then_some(m)
    });
    assert_eq!(pushed["v"], 1);
    assert_eq!(pushed["pane"]["attention"], "approval");
    assert_eq!(pushed["pane"]["provider"], "claude");
    assert_eq!(pushed["pane"]["evidence"], "deterministic");

    // Bad requests get JSON errors on the same connection, which stays usable.
    let (mut r, mut s) = connect(&w);
    for (line, code) in [
        ("this is not json", "parse_error"),
        (r#"{"v":1,"id":1,"method":"frobnicate"}"#, "unknown_method"),
        (
            r#"{"v":1,"id":2,"method":"get","params":{"pane":"%999"}}"#,
            "not_found",
        ),
        (
            r#"{"v":1,"id":3,"method":"get","params":{"pane":"; rm -rf /"}}"#,
            "invalid_params",
        ),
        (r#"{"v":9,"id":4,"method":"list"}"#, "unsupported_version"),
    ] {
        writeln!(s, "{line}").unwrap();
        let a = read_json_line(&mut r);
        assert_eq!(a["error"]["code"], code, "{line} -> {a}");
    }
    writeln!(s, r#"{{"v":1,"id":5,"method":"health"}}"#).unwrap();
    let h = read_json_line(&mut r);
    assert_eq!(h["id"], 5);
    assert!(h["result"]["daemon_pid"].as_u64().unwrap() > 0);
    assert_eq!(h["result"]["tmux"]["connected"], true);
    assert!(h["result"]["sources"]["claude_hooks"].is_string());

    // An oversized line is rejected with an error, not a hang.
    let (mut r, mut s) = connect(&w);
    let big = vec![b'x'; 200 * 1024];
    let _ = s.write_all(&big);
    let a = read_json_line(&mut r);
    assert_eq!(a["error"]["code"], "line_too_long");

    // 200 concurrent clients, all connected before any is answered.
    let mut conns: Vec<_> = (0..200).map(|_| connect(&w)).collect();
    for (i, (_, s)) in conns.iter_mut().enumerate() {
        writeln!(s, "{}", json!({"v":1,"id":i,"method":"list"})).unwrap();
    }
    for (i, (r, _)) in conns.iter_mut().enumerate() {
        let a = read_json_line(r);
        assert_eq!(a["id"], i);
        assert!(a["result"]["sessions"].is_array(), "{a}");
    }
    // The daemon is still fine afterwards.
    assert!(pane_state(&w, "%0").is_some());
}

#[test]
fn status_line_window_icon_and_choose_tree_formats_render() {
    let w = world();
    w.tmux_ok(&["new-window", "-d", "-t", "work", "bash"]);
    let pane1 = w
        .tmux_ok(&["display", "-p", "-t", "work:1", "#{pane_id}"])
        .trim()
        .to_string();
    wait_for("%0 managed", 30, || {
        pane_state(&w, "%0").filter(|p| p["presence"] == "managed")
    });
    approval(&w, "%0", "s-status");
    let p = wait_state(&w, "%0", "waiting_approval");
    let icon = p["icon"].as_str().unwrap().to_string();
    assert!(!icon.is_empty());

    // The TPM entry, run as TPM would (inside the server), with the #{agtmux_status} placeholder.
    w.tmux_ok(&["set", "-g", "status-right", "#{agtmux_status} | %H"]);
    // The agent-only tree has no default key (issue 20: `a` is C-a users' send-prefix).
    w.tmux_ok(&["set", "-g", "@agtmux-tree-agents-key", "a"]);
    w.tmux_ok(&[
        "set",
        "-g",
        "window-status-format",
        "#{@agtmux_window_icon}#I:#W",
    ]);
    let script = support::plugin_script();
    w.run_plugin_direct();
    let right = w.tmux_ok(&["show", "-gv", "status-right"]);
    assert!(right.contains("#{@agtmux_attention}"), "{right}");
    let keys = w.tmux_ok(&["list-keys", "-T", "prefix"]);
    assert!(keys.contains("popup"), "{keys}");
    assert!(keys.contains("-f \"#{@agtmux_presence}\""), "{keys}");

    // The status line, evaluated as tmux would: same formats through display -p.
    let rendered = wait_for("attention in the status line", 30, || {
        let r = w.tmux_ok(&["display", "-p", right.trim()]);
        r.contains("!1").then_some(r)
    });
    assert!(rendered.contains('|'));
    let win = w.tmux_ok(&[
        "display",
        "-p",
        "-t",
        "work:0",
        "#{@agtmux_window_icon}#I:#W",
    ]);
    assert!(win.starts_with(&icon), "{win} vs icon {icon}");
    let quiet = w.tmux_ok(&["display", "-p", "-t", "work:1", "#{@agtmux_window_icon}#I:"]);
    assert_eq!(quiet.trim(), "1:");
    let counts = w.tmux_ok(&["display", "-p", "-t", "work", "#{@agtmux_session_counts}"]);
    assert!(counts.contains('1'), "{counts}");

    // choose-tree rows, read through the same format the binding uses.
    let text = std::fs::read_to_string(&script).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("tree_format='"))
        .unwrap();
    let fmt = line
        .trim_start_matches("tree_format='")
        .trim_end_matches('\'');
    let row = w.tmux_ok(&["display", "-p", "-t", "%0", fmt]);
    assert!(row.starts_with(&icon), "{row}");
    assert!(row.contains("claude waiting_approval"), "{row}");
    let plain = w.tmux_ok(&["display", "-p", "-t", &pane1, fmt]);
    assert_eq!(plain.trim(), "bash");
    // The agent-only filter: true for the agent pane, false for the shell.
    let f_agent = w.tmux_ok(&[
        "display",
        "-p",
        "-t",
        "%0",
        "#{?#{@agtmux_presence},yes,no}",
    ]);
    let f_shell = w.tmux_ok(&[
        "display",
        "-p",
        "-t",
        &pane1,
        "#{?#{@agtmux_presence},yes,no}",
    ]);
    assert_eq!((f_agent.trim(), f_shell.trim()), ("yes", "no"));
}

/// Every `key:type` of `spec` (white-space separated; types `string`, `u64`, `i64`, `array`,
/// `object`, a `?` after one for "or null") is in `v` with that JSON type.
fn has_keys(v: &Value, spec: &str) {
    for item in spec.split_whitespace() {
        let (k, ty) = item.split_once(':').unwrap();
        let (ty, or_null) = ty.strip_suffix('?').map_or((ty, false), |t| (t, true));
        let ok = v.get(k).is_some_and(|x| {
            (or_null && x.is_null())
                || match ty {
                    "string" => x.is_string(),
                    "u64" => x.is_u64(),
                    "i64" => x.is_i64(),
                    "array" => x.is_array(),
                    "object" => x.is_object(),
                    _ => panic!("unknown type {ty} in {spec}"),
                }
        });
        assert!(ok, "key {k} missing or wrong type in {v}");
    }
}

#[test]
fn ls_and_explain_json_match_the_schema() {
    let w = world();
    w.tmux_ok(&["new-session", "-d", "-s", "other", "bash"]);
    wait_for("%0 managed", 30, || {
        pane_state(&w, "%0").filter(|p| p["presence"] == "managed")
    });
    approval(&w, "%0", "s-ls");
    wait_state(&w, "%0", "waiting_approval");

    let (code, out) = w.agtmux_code_out(&["ls", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["v"], 1);
    let sessions = v["sessions"].as_array().unwrap();
    // Only sessions with agent panes.
    assert_eq!(sessions.len(), 1, "{v}");
    let s = &sessions[0];
    has_keys(s, "session_id:string session_name:string windows:array");
    assert_eq!(s["session_name"], "work");
    let win = &s["windows"][0];
    has_keys(
        win,
        "window_id:string window_index:u64 window_name:string panes:array",
    );
    let p = &win["panes"][0];
    // The last line, issue 23: the usage limit's reset, background tasks, the one-line detail.
    has_keys(
        p,
        "pane_id:string generation:u64 session_id:string window_id:string presence:string \
         provider:string? evidence:string state:string attention:string? icon:string \
         title:string since_ms:i64 version:i64 \
         until_ms:i64? background:u64 detail:string",
    );
    assert_eq!(p["state"], "waiting_approval");

    // The table: attention first, no colour to a pipe.
    let (code, table) = w.agtmux_code_out(&["ls"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("%0") && table.contains("waiting_approval"),
        "{table}"
    );
    assert!(!table.contains('\x1b'));

    let (code, out) = w.agtmux_code_out(&["explain", "%0", "--json"]);
    assert_eq!(code, 0);
    let x: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(x["v"], 1);
    has_keys(
        &x,
        "pane:object signature:object sources:array source_health:object resolution:object \
         heuristic:object timers:array",
    );
    has_keys(&x["signature"], "class:string reason:string");
    has_keys(
        &x["resolution"],
        "winner:string? reason:string suppressed:array",
    );
    assert_eq!(x["resolution"]["winner"], "claude_hooks");
    let src = &x["sources"][0];
    has_keys(
        src,
        "source:string event:string state:string ts_ms:i64 health:string",
    );
    assert_eq!(src["event"], "PermissionRequest");
    let (code, text) = w.agtmux_code_out(&["explain", "%0"]);
    assert_eq!(code, 0);
    assert!(text.contains("winner=claude_hooks"), "{text}");

    // wait: documented exit codes.
    for (pane, until, timeout, code) in [
        ("%0", "attention", "20", 0),
        ("%0", "idle", "0.3", 1),
        ("%99", "idle", "5", 3),
    ] {
        let args = [
            "wait",
            "--pane",
            pane,
            "--until",
            until,
            "--timeout",
            timeout,
        ];
        assert_eq!(w.agtmux_code_out(&args).0, code, "{args:?}");
    }
}

#[test]
fn popup_is_driven_like_a_person_and_switches_the_client() {
    // A second agent in another session that needs approval (so it sorts first), and a
    // session the attached client starts on.
    let w = world_with(|w| {
        w.tmux_ok(&[
            "new-session",
            "-d",
            "-s",
            "other",
            "-x",
            "150",
            "-y",
            "40",
            CLAUDE_CMD,
        ]);
        w.tmux_ok(&["new-session", "-d", "-s", "view", "bash"]);
    });
    let other = w
        .tmux_ok(&["display", "-p", "-t", "other", "#{pane_id}"])
        .trim()
        .to_string();
    for p in ["%0", other.as_str()] {
        wait_for("agents managed", 30, || {
            pane_state(&w, p).filter(|x| x["presence"] == "managed")
        });
    }
    idle(&w, "%0", "s-pop-0");
    approval(&w, &other, "s-pop-1");
    wait_state(&w, &other, "waiting_approval");

    // A real attached client: `tmux attach` running inside a pane of another private server.
    let _host = w.attach_session_from("surf-host", "view");
    let client = wait_for("an attached client", 20, || {
        let c = w.tmux_ok(&["list-clients", "-F", "#{client_name}"]);
        c.lines().next().map(|s| s.to_string())
    });

    // The popup in a pane of the server, as display-popup would run it.
    w.tmux_ok(&[
        "new-session",
        "-d",
        "-s",
        "ui",
        "-x",
        "120",
        "-y",
        "30",
        &format!("{BIN} popup"),
    ]);
    let capture = || w.tmux_ok(&["capture-pane", "-p", "-t", "ui"]);
    let screen = wait_for("popup rows", 30, || {
        let s = capture();
        (s.contains(&other) && s.contains("%0")).then_some(s)
    });
    // Attention first: the approval pane's session comes before `work`, and it is selected.
    let pos_other = screen.find(&other).unwrap();
    let pos_0 = screen.find("%0 ").unwrap();
    assert!(pos_other < pos_0, "{screen}");
    let sel = screen.lines().find(|l| l.contains("> ")).unwrap();
    assert!(sel.contains(&other), "{screen}");
    assert!(sel.contains("waiting_approval"), "{screen}");

    // `a`: attention only hides %0; `a` again shows it.
    w.tmux_ok(&["send-keys", "-t", "ui", "a"]);
    wait_for("attention-only view", 20, || {
        let s = capture();
        (s.contains("attention only") && !s.contains("%0 ")).then_some(())
    });
    w.tmux_ok(&["send-keys", "-t", "ui", "a"]);
    wait_for("full view", 20, || capture().contains("%0 ").then_some(()));

    // Move down and press Enter: the client switches to %0 across sessions.
    w.tmux_ok(&["send-keys", "-t", "ui", "j"]);
    wait_for("selection on %0", 20, || {
        let s = capture();
        s.lines()
            .any(|l| l.contains("> ") && l.contains("%0 "))
            .then_some(())
    });
    w.tmux_ok(&["send-keys", "-t", "ui", "Enter"]);
    wait_for("client switched to %0", 30, || {
        let p = w.tmux_ok(&["display", "-p", "-c", &client, "#{pane_id} #{session_name}"]);
        (p.trim() == "%0 work").then_some(())
    });
}

#[test]
fn completions_are_generated() {
    for sh in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", sh])
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut s = String::new();
        out.stdout.as_slice().read_to_string(&mut s).unwrap();
        assert!(s.contains("agtmux") && s.contains("explain"), "{sh}");
    }
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly_without_a_panic() {
    // `agtmux ls | head -1` once head has gone: Rust ignores SIGPIPE, so an unguarded
    // println! panics with "failed printing to stdout". The reader is closed before the
    // child writes anything, so the first write fails every time.
    let bin = env!("CARGO_BIN_EXE_agtmux");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(bin)
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    // Ended by SIGPIPE, as `cat` is.
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        o.status
    );
}
