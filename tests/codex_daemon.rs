//! Issue 6 end to end: the real `agtmux` daemon on a private tmux server, fake Codex TUIs in
//! panes, and the test Codex app-server (`agtmux dev-codex-appserver`) replaying a recorded or
//! synthetic stream on `$CODEX_HOME/app-server-control/app-server-control.sock`.
//!
//! Nothing here asserts on timing: every wait reads the pane's state history from the daemon
//! log (and its options) every 50 ms up to a generous timeout, and only fails when the
//! expected state never shows.
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod support;
use support::{BIN, Server, assert_ok};

/// A [`Server`] whose first pane is a plain shell (a decoy that must never be an agent), with
/// the daemon finding Codex through `$CODEX_HOME`, plus the test Codex app-server it may run
/// (killed on drop).
struct Env {
    s: Server,
    app_server: Option<Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_server();
    }
}

impl Env {
    fn new(tag: &str) -> Env {
        let mut s = Server::start_with(
            &format!("cxd-{tag}"),
            &[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "50",
                "sh",
            ],
        );
        std::fs::create_dir_all(s.dir.join("codex/app-server-control")).unwrap();
        // The socket as Codex's discovery finds it (an empty AGTMUX_CODEX_SOCK counts as unset).
        s.daemon_env = vec![
            ("AGTMUX_CODEX_SOCK", String::new()),
            ("CODEX_HOME", s.dir.join("codex").display().to_string()),
            ("RUST_LOG", "info".to_string()),
        ];
        Env {
            s,
            app_server: None,
        }
    }

    fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.s.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A window running a fake Codex TUI in `cwd`; returns its pane id.
    fn codex_pane(&self, cwd: &Path, prompt: Option<&str>) -> String {
        let mut cmd = format!("'{BIN}' fake-agent codex --once --speed 0.01");
        if let Some(p) = prompt {
            assert!(!p.contains('\''));
            cmd.push_str(&format!(" --prompt '{p}'"));
        }
        self.window(cwd, &cmd, false)
    }

    /// A window running `cmd` in `cwd`; returns its pane id. With `hooks`, the window's
    /// environment points `agtmux hook` at this test's state and runtime dirs.
    fn window(&self, cwd: &Path, cmd: &str, hooks: bool) -> String {
        let env = [
            format!("AGTMUX_STATE_DIR={}", self.s.state_dir.display()),
            format!("AGTMUX_RUNTIME_DIR={}", self.s.runtime_dir.display()),
        ];
        let mut args = vec!["new-window", "-d", "-t", "t:", "-P", "-F", "#{pane_id}"];
        args.extend(["-c", cwd.to_str().unwrap()]);
        if hooks {
            args.extend(["-e", &env[0], "-e", &env[1]]);
        }
        args.push(cmd);
        self.s.tmux_out(&args)
    }

    fn sock(&self) -> PathBuf {
        self.s
            .dir
            .join("codex/app-server-control/app-server-control.sock")
    }

    fn start_server(&mut self, stream: &Path, speed: f64) {
        let c = Command::new(BIN)
            .args(["dev-codex-appserver", "--sock"])
            .arg(self.sock())
            .arg("--stream")
            .arg(stream)
            .args(["--speed", &speed.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.app_server = Some(c);
    }

    fn kill_server(&mut self) {
        if let Some(mut c) = self.app_server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `agtmux explain PANE --json`, `Null` when it fails.
    fn explain(&self, pane: &str) -> Value {
        let out = self.s.agtmux(&["explain", pane, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn state(&self, pane: &str) -> (String, String) {
        (
            self.s.pane_opt(pane, "@agtmux_state"),
            self.s.pane_opt(pane, "@agtmux_evidence"),
        )
    }

    /// Wait until `pred` holds on the history of distinct (state, evidence) of `pane` and its
    /// newest entry is what the pane's options show. The history is the daemon log's (every
    /// published change, in order), so a state overwritten before a poll could see it counts.
    fn watch(
        &self,
        pane: &str,
        secs: u64,
        what: &str,
        pred: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        let mut hist = Vec::new();
        let ok = support::wait_until(secs, || {
            hist = support::state_history(&self.s.log(), pane);
            pred(&hist) && hist.last() == Some(&self.state(pane))
        });
        assert!(
            ok,
            "pane {pane}: {what} never happened; saw {hist:?}, options show {:?}\n{}",
            self.state(pane),
            self.s.log_tail()
        );
        hist
    }
}

/// The newest (state, evidence) of the history is `(state, ev)`.
fn ends_at(h: &[(String, String)], state: &str, ev: &str) -> bool {
    h.last().is_some_and(|(s, e)| s == state && e == ev)
}

fn has(h: &[(String, String)], state: &str, ev: &str) -> bool {
    h.iter().any(|(s, e)| s == state && e == ev)
}

/// The recorded subscribed stream with its cwd moved to `cwd` and every `emittedAtMs` moved by
/// `shift` (a restarted server sends new messages, not the old ones again).
fn recorded_stream(cwd: &Path, shift: i64, out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/codex/appserver/codex_observer_subscribed.jsonl");
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let l = l.replace("/home/dev/proj-codex", cwd.to_str().unwrap());
        let mut v: Value = serde_json::from_str(&l).unwrap();
        if let Some(e) = v.pointer_mut("/msg/emittedAtMs")
            && let Some(n) = e.as_i64()
        {
            *e = json!(n + shift);
        }
        lines.push(v.to_string());
    }
    std::fs::write(out, lines.join("\n") + "\n").unwrap();
}

#[test]
fn recorded_stream_drives_the_pane_and_falls_back_while_the_server_is_gone() {
    let mut env = Env::new("rec");
    let work = env.mkdir("proj-codex");
    let pane = env.codex_pane(&work, None);
    let decoy = env
        .s
        .tmux_out(&["display", "-p", "-t", "t:0", "#{pane_id}"]);
    let s1 = env.s.dir.join("stream1.jsonl");
    recorded_stream(&work, 0, &s1);
    env.start_server(&s1, 2.0);
    env.s.spawn_daemon_with(&[]);

    let h = env.watch(
        &pane,
        60,
        "running → waiting_approval → idle, deterministic",
        |h| {
            let appr = h
                .iter()
                .position(|(s, e)| s == "waiting_approval" && e == "deterministic");
            let run = h
                .iter()
                .position(|(s, e)| s == "running" && e == "deterministic");
            matches!((run, appr), (Some(r), Some(a)) if r < a)
                && ends_at(h, "idle", "deterministic")
                && h.iter().any(|(s, _)| s == "error")
        },
    );
    assert!(has(&h, "waiting_approval", "deterministic"), "{h:?}");
    // No thread name in this recording: the title is the bound thread's preview (its prompt).
    let title = env.s.pane_opt(&pane, "@agtmux_title");
    assert!(
        title.starts_with("please") || title.starts_with("hello"),
        "title from the thread preview: {title:?}"
    );
    assert_ne!(
        env.s.pane_opt(&decoy, "@agtmux_evidence"),
        "deterministic",
        "the shell pane in the same session is never bound"
    );

    // The app-server dies: the pane falls back to its screen, and the daemon says so.
    env.kill_server();
    env.watch(&pane, 20, "fallback to heuristic", |h| {
        h.last().is_some_and(|(_, e)| e == "heuristic")
    });
    env.s
        .wait_global("@agtmux_daemon", |v| v.contains("codex_appserver:"), 10);

    // It comes back (a new server, new messages): deterministic again.
    let s2 = env.s.dir.join("stream2.jsonl");
    recorded_stream(&work, 3_600_000, &s2);
    env.start_server(&s2, 4.0);
    env.watch(&pane, 60, "re-promotion", |h| {
        h.last().is_some_and(|(_, e)| e == "deterministic")
    });
    env.s.wait_global(
        "@agtmux_daemon",
        |v| !v.is_empty() && !v.contains("codex_appserver"),
        20,
    );
}

/// A synthetic stream line.
fn line(ts_ms: u64, dir: &str, msg: Value) -> String {
    let h = ts_ms / 3_600_000;
    let m = ts_ms / 60_000 % 60;
    let s = ts_ms / 1000 % 60;
    json!({"ts": format!("{h:02}:{m:02}:{s:02}.{:03}", ts_ms % 1000), "dir": dir, "msg": msg})
        .to_string()
}

struct Th<'a> {
    id: &'a str,
    cwd: &'a Path,
    prompt: &'a str,
    flags: Vec<&'a str>,
    /// When the prompt (`item/started` userMessage) comes after the turn starts, ms; the
    /// flags come 20 ms after it, and the next thread starts 180 ms after that.
    prompt_ms: u64,
}

/// Threads start, each runs one turn with a prompt, then sits in the given active flags.
fn synthetic_stream(threads: &[Th], out: &Path) {
    let base: i64 = 1_900_000_000_000;
    let mut v = vec![
        line(
            0,
            "send",
            json!({"id": 1, "method": "initialize", "params": {}}),
        ),
        line(
            1,
            "send",
            json!({"id": 2, "method": "thread/loaded/list", "params": {}}),
        ),
        line(
            2,
            "recv",
            json!({"id": 2, "result": {"data": [], "nextCursor": null}}),
        ),
    ];
    for (i, t) in threads.iter().enumerate() {
        let thread = json!({"id": t.id, "cwd": t.cwd, "ephemeral": false, "preview": "",
            "parentThreadId": null, "name": null, "status": {"type": "idle"},
            "updatedAt": 1_900_000_000 + i as i64, "source": "cli"});
        let rid = 100 + i as i64;
        v.push(line(
            3,
            "send",
            json!({"id": rid, "method": "thread/resume", "params": {"threadId": t.id}}),
        ));
        v.push(line(
            4,
            "recv",
            json!({"id": rid, "result": {"thread": thread}}),
        ));
    }
    let mut at = 300u64;
    for (i, t) in threads.iter().enumerate() {
        let turn = format!("turn-{}-{i}", t.id);
        let em = |k: u64| base + (at + k) as i64;
        let thread = json!({"id": t.id, "cwd": t.cwd, "ephemeral": false, "preview": "",
            "parentThreadId": null, "name": null, "status": {"type": "idle"},
            "updatedAt": 1_900_000_000 + i as i64, "source": "cli"});
        v.push(line(
            at,
            "recv",
            json!({"method": "thread/started", "params": {"thread": thread}, "emittedAtMs": em(0)}),
        ));
        v.push(line(
            at,
            "recv",
            json!({"method": "thread/status/changed", "params": {"threadId": t.id,
                "status": {"type": "active", "activeFlags": []}}, "emittedAtMs": em(1)}),
        ));
        v.push(line(
            at,
            "recv",
            json!({"method": "turn/started", "params": {"threadId": t.id, "turn": {"id": turn,
                "items": [], "status": "inProgress", "error": null}}, "emittedAtMs": em(2)}),
        ));
        let p = t.prompt_ms;
        v.push(line(
            at + p,
            "recv",
            json!({"method": "item/started", "params": {"threadId": t.id, "turnId": turn,
                "item": {"type": "userMessage", "id": format!("item-{i}"),
                "content": [{"type": "text", "text": t.prompt, "text_elements": []}]}},
                "emittedAtMs": em(p)}),
        ));
        if !t.flags.is_empty() {
            v.push(line(
                at + p + 20,
                "recv",
                json!({"method": "thread/status/changed", "params": {"threadId": t.id,
                    "status": {"type": "active", "activeFlags": t.flags}}, "emittedAtMs": em(p + 20)}),
            ));
        }
        at += 180 + p;
    }
    std::fs::write(out, v.join("\n") + "\n").unwrap();
}

#[test]
fn threads_bind_by_cwd_and_by_prompt_and_an_undecidable_one_binds_nowhere() {
    let mut env = Env::new("bind");
    let [d1, d2, shared, twin] = ["alpha", "beta", "shared", "twin"].map(|d| env.mkdir(d));
    let p1 = env.codex_pane(&d1, None);
    let p2 = env.codex_pane(&d2, None);
    let p3 = env.codex_pane(&shared, Some("refactor the tokenizer module please"));
    let p4 = env.codex_pane(&shared, Some("write release notes for version two"));
    let p5 = env.codex_pane(&twin, None);
    let p6 = env.codex_pane(&twin, None);
    let stream = env.s.dir.join("bind.jsonl");
    synthetic_stream(
        &[
            // Undecidable: two panes share its cwd and its prompt is on neither screen. It
            // comes first, so once the others are bound its events were all seen.
            Th {
                id: "t-undecided",
                cwd: &twin,
                prompt: "this prompt is on no screen at all",
                flags: vec!["waitingOnApproval"],
                prompt_ms: 20,
            },
            Th {
                id: "t-alpha",
                cwd: &d1,
                prompt: "alpha work",
                flags: vec!["waitingOnApproval"],
                prompt_ms: 20,
            },
            Th {
                id: "t-beta",
                cwd: &d2,
                prompt: "beta work",
                flags: vec![],
                prompt_ms: 20,
            },
            Th {
                id: "t-tok",
                cwd: &shared,
                prompt: "refactor the tokenizer module please",
                flags: vec!["waitingOnApproval"],
                // Its prompt, the only evidence for its pane, comes long after its
                // subscription (`thread/resume`, 200 ms after the turn starts) was answered:
                // that answer reaches the gateway before the thread is bound.
                prompt_ms: 600,
            },
            Th {
                id: "t-notes",
                cwd: &shared,
                prompt: "write release notes for version two",
                flags: vec![],
                prompt_ms: 20,
            },
        ],
        &stream,
    );
    env.s.spawn_daemon_with(&[]);
    // Let the daemon see the panes (and their screens) before the threads appear.
    for p in [&p3, &p4] {
        env.watch(p, 20, "screen seen", |h| {
            h.last().is_some_and(|(_, e)| e == "heuristic")
        });
    }
    env.start_server(&stream, 1.0);
    // Each pane shows its thread's state from the app-server. Their own fake screens already
    // sit on an error line, which takes a bound pane over as a sustained contradiction a
    // moment later: the history, not the state now, is what tells the binding worked.
    let det = |state: &'static str| move |h: &[(String, String)]| has(h, state, "deterministic");
    env.watch(&p1, 30, "alpha approval", det("waiting_approval"));
    env.watch(&p2, 30, "beta running", det("running"));
    env.watch(&p3, 30, "tokenizer approval", det("waiting_approval"));
    env.watch(&p4, 30, "notes running", det("running"));
    // The twins' own fake screens play once (an approval dialog among them, for 70 ms) and
    // end on an error line: the screen decides their state, and the undecided thread (which
    // waits for an approval) never reaches them.
    for p in [&p5, &p6] {
        let h = env.watch(p, 20, "own final screen", |h| {
            ends_at(h, "error", "heuristic")
        });
        assert!(
            h.iter().all(|(_, e)| e != "deterministic"),
            "{p} mis-bound: {h:?}"
        );
    }
    // Each bound thread's subscription (`thread/resume`) answered after its turn began: what
    // the server says then is the thread's status now, so the panes keep their states. Only
    // a successful resume stores a `thread/resume` row; its status says where it was routed
    // then: `accepted` when the thread was already bound, `rejected`/`unbound_thread` when the
    // answer came first. That is always so for t-tok, whose prompt (its only evidence) comes
    // late, and it can happen to the others on a busy machine (the resume goes out at once when
    // `thread/started` is read apart from the status change that defers it, and is answered
    // before the prompt binds the thread). No loss: the binding re-applies the thread's
    // latest state to its pane.
    let resumed = |t: &str| {
        !env.s
            .db_strings(&format!(
                "SELECT session_key FROM events_raw_v2 WHERE session_key='{t}' \
                 AND name='thread/resume' AND (status='accepted' \
                 OR (status='rejected' AND reason='unbound_thread'))"
            ))
            .is_empty()
    };
    assert!(
        support::wait_until(30, || ["t-alpha", "t-beta", "t-tok", "t-notes"]
            .iter()
            .all(|t| resumed(t))),
        "every bound thread subscribed"
    );
    // (Their own fake screens end on an error line, which may since have taken the pane over
    // as a contradiction: what counts is the last state the app-server gave them.)
    for (p, state) in [
        (&p1, "waiting_approval"),
        (&p2, "running"),
        (&p3, "waiting_approval"),
        (&p4, "running"),
    ] {
        let mut h = Vec::new();
        let kept = support::wait_until(10, || {
            h = support::state_history(&env.s.log(), p);
            h.iter()
                .rev()
                .find(|(_, e)| e == "deterministic")
                .is_some_and(|(s, _)| s == state)
        });
        assert!(
            kept,
            "{p}: the last deterministic state is not {state}: {h:?}"
        );
    }
    let log = env.s.log();
    assert!(
        log.contains("codex_bound thread=t-tok") && log.contains("prompt text"),
        "prompt evidence named in the log"
    );
    assert!(
        !log.contains("codex_bound thread=t-undecided"),
        "{}",
        env.s.log_tail()
    );
}

#[test]
fn codex_hook_with_a_foreign_tmux_pane_does_not_bind_there() {
    let mut env = Env::new("hook");
    let work = env.mkdir("w");
    let victim = env.codex_pane(&work, None);
    env.s.spawn_daemon_with(&[]);
    env.watch(&victim, 20, "screen seen", |h| {
        h.last().is_some_and(|(_, e)| e == "heuristic")
    });
    // Our parent is the test runner, not anything in the victim pane's process tree.
    let send = |pane: &str, payload: &Value| {
        assert_ok(
            &env.s
                .hook_under_pid("1", "codex", pane, payload.to_string().as_bytes()),
        );
    };
    let elsewhere = env.mkdir("elsewhere");
    send(
        &victim,
        &json!({"session_id": "t-foreign", "hook_event_name": "PermissionRequest",
            "tool_name": "shell", "cwd": elsewhere, "turn_id": "x1"}),
    );
    // A positive control: a pane whose own process sends the hook keeps its TMUX_PANE.
    let payload = json!({"session_id": "t-own", "hook_event_name": "PermissionRequest",
        "tool_name": "shell", "cwd": "/nonexistent-so-only-the-pane-can-bind", "turn_id": "y1"})
    .to_string();
    let script = format!(
        "printf '%s' '{payload}' | '{BIN}' hook codex; exec '{BIN}' fake-agent codex --once --speed 0.01"
    );
    let own_dir = env.mkdir("own");
    let own = env.window(&own_dir, &script, true);
    // (Its fake screen then ends on an error line, which takes the pane over as a sustained
    // contradiction a moment later: the history tells the hook bound it.)
    env.watch(&own, 30, "own hook binds", |h| {
        has(h, "waiting_approval", "deterministic")
    });
    // By now the foreign hook (spooled earlier) was ingested too.
    let log = env.s.log();
    assert!(
        log.contains("t-foreign") || log.contains("unbound_thread"),
        "{}",
        env.s.log_tail()
    );
    // The victim's own fake screen decides its state (it plays an approval dialog for a
    // moment, so a heuristic waiting_approval is no sign of the foreign hook) and ends on an
    // error line; the foreign PermissionRequest never reached it, not even for a moment.
    let h = env.watch(&victim, 20, "own final screen", |h| {
        ends_at(h, "error", "heuristic")
    });
    assert!(
        h.iter().all(|(_, e)| e != "deterministic"),
        "foreign TMUX_PANE bound the victim: {h:?}"
    );
}

#[test]
fn codex_without_an_app_server_takes_an_api_error_and_an_esc_from_its_rollout() {
    // `daemon_auto_start = false`: no app-server to read, and an API error fires no hook.
    // Codex's hooks name the session's rollout (`transcript_path`); the daemon follows it.
    let mut env = Env::new("rollout");
    let work = env.mkdir("w");
    let queue = env.mkdir("hookq");
    let sessions = env.mkdir("codex/sessions/2026/12/03");
    let thread = "01a23d43-1dc5-7eb1-b7b8-388230a9db47";
    let rollout = sessions.join(format!("rollout-2026-12-03T18-55-38-{thread}.jsonl"));
    std::fs::write(
        &rollout,
        format!(
            "{}\n",
            json!({"timestamp": support::iso_now(), "ordinal": 0, "type": "session_meta",
                "payload": {"session_id": thread, "id": thread, "cwd": work}})
        ),
    )
    .unwrap();
    // The "Codex TUI": a process named codex that runs each queued hook payload the way Codex
    // does (a child of the TUI, so the hook's pane is trusted).
    let script = env.s.dir.join("codex-tui.sh");
    std::fs::write(
        &script,
        format!(
            "while :; do for f in '{q}'/*.json; do [ -e \"$f\" ] || continue; \
             '{BIN}' hook codex < \"$f\"; rm -f \"$f\"; done; sleep 0.05; done\n",
            q = queue.display()
        ),
    )
    .unwrap();
    let pane = env.window(
        &work,
        &format!("exec -a codex bash '{}'", script.display()),
        true,
    );
    env.s.spawn_daemon_with(&[]);
    let mut n = 0;
    let mut hook = |v: Value| {
        n += 1;
        let tmp = queue.join(format!("{n}.tmp"));
        std::fs::write(&tmp, v.to_string()).unwrap();
        std::fs::rename(&tmp, queue.join(format!("{n:03}.json"))).unwrap();
    };
    let base = |event: &str, turn: &str| {
        json!({"session_id": thread, "transcript_path": rollout, "cwd": work,
            "hook_event_name": event, "model": "gpt-5.5", "turn_id": turn})
    };
    hook(base("SessionStart", ""));
    let mut p = base("UserPromptSubmit", "turn-1");
    p["prompt"] = json!("please fail");
    hook(p.clone());
    env.watch(&pane, 20, "running from the hook", |h| {
        ends_at(h, "running", "deterministic")
    });
    let append = |v: Value| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rollout)
            .unwrap();
        f.write_all(format!("{v}\n").as_bytes()).unwrap();
    };
    // The API error: Codex's own line, no hook. Only the rollout can tell.
    append(
        json!({"timestamp": support::iso_now(), "ordinal": 53, "type": "event_msg",
        "payload": {"type": "task_complete", "turn_id": "turn-1", "last_agent_message": null,
            "error": {"message": "e2e scripted 400", "codex_error_info": "other"}}}),
    );
    env.watch(&pane, 20, "error from the rollout", |h| {
        ends_at(h, "error", "deterministic")
    });
    let ex = env.explain(&pane);
    assert_eq!(ex["resolution"]["winner"], "codex_rollout", "{ex:#}");
    assert_eq!(env.s.pane_opt(&pane, "@agtmux_attention_kind"), "error");

    // The next prompt (a newer hook) wins again; then an Esc, which Codex also writes.
    p["turn_id"] = json!("turn-2");
    hook(p.clone());
    env.watch(&pane, 20, "running again", |h| {
        ends_at(h, "running", "deterministic")
    });
    append(
        json!({"timestamp": support::iso_now(), "ordinal": 60, "type": "event_msg",
        "payload": {"type": "turn_aborted", "turn_id": "turn-2", "reason": "interrupted"}}),
    );
    env.watch(&pane, 20, "idle from the rollout", |h| {
        ends_at(h, "idle", "deterministic")
    });
    // Ended by the user: nothing is owed.
    assert_eq!(env.s.pane_opt(&pane, "@agtmux_attention_kind"), "");

    // A failed turn, then the session ends (`/exit`): the rollout's error ends with it and
    // does not stay on the pane for whatever runs there next.
    p["turn_id"] = json!("turn-3");
    hook(p);
    env.watch(&pane, 20, "running, third turn", |h| {
        ends_at(h, "running", "deterministic")
    });
    append(
        json!({"timestamp": support::iso_now(), "ordinal": 70, "type": "event_msg",
        "payload": {"type": "task_complete", "turn_id": "turn-3",
            "error": {"message": "e2e scripted 400"}}}),
    );
    env.watch(&pane, 20, "error, third turn", |h| {
        ends_at(h, "error", "deterministic")
    });
    hook(base("SessionEnd", ""));
    env.watch(&pane, 20, "the error ends with the session", |h| {
        !ends_at(h, "error", "deterministic")
    });
    // The pane closes; a new Codex starts in the same directory. The ended thread is not
    // this one's: nothing binds it there by cwd (nor replays its states there).
    env.s.tmux_out(&["kill-pane", "-t", &pane]);
    let next = env.window(&work, "exec -a codex sleep 100000", true);
    env.watch(&next, 20, "the new Codex pane is seen", |h| {
        h.last().is_some_and(|(_, e)| e == "heuristic")
    });
    // A correlation pass has weighed the new pane (its explain note is written in the same
    // pass that would bind the ended thread to it by cwd).
    let mut note = Value::Null;
    let seen = support::wait_until(20, || {
        note = env.explain(&next)["codex_binding"].clone();
        !note.is_null()
    });
    assert!(seen, "no correlation pass saw {next}\n{}", env.s.log_tail());
    assert!(!note.to_string().contains(thread), "{note}");
    let log = env.s.log();
    assert!(
        !log.contains(&format!("codex_bound thread={thread} pane={next}")),
        "{}",
        env.s.log_tail()
    );
    assert_ne!(env.state(&next), ("error".into(), "deterministic".into()));
    assert!(
        log.contains("rollout_turn_end") && log.contains("kind=api_error"),
        "{}",
        env.s.log_tail()
    );
}
