//! Issue 22: more agents end to end on a private tmux server with the real daemon — the
//! generic hook (`agtmux hook generic`) from a fake agent inside its pane, Gemini CLI hook
//! payloads and OpenCode plugin events through the same spool and gateway.
mod support;
use agtmux::store::{EventStatus, Store};
use std::io::Write;
use support::*;

/// A fake generic agent in a new pane: a process named `aider` that pipes every line written
/// to its FIFO into `agtmux hook generic`, as a wrapper script would. Returns (pane, fifo).
fn generic_agent(s: &Server) -> (String, std::path::PathBuf) {
    let fifo = s.dir.join("agent.fifo");
    let script = s.dir.join("agent.sh");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        &script,
        format!(
            "exec 3<>'{}'\nwhile IFS= read -r line <&3; do printf '%s' \"$line\" | '{}' hook generic; done\n",
            fifo.display(),
            BIN
        ),
    )
    .unwrap();
    let pane = s.new_pane(&format!(
        "bash -c 'exec -a aider bash {}'",
        script.display()
    ));
    (pane, fifo)
}

fn send(fifo: &std::path::Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Writes `s.dir/name`: a node module that loads the OpenCode plugin at `plugin` (as
/// `AgtmuxPlugin`), then runs `body`.
fn plugin_driver(
    s: &Server,
    name: &str,
    plugin: &std::path::Path,
    body: &str,
) -> std::path::PathBuf {
    let driver = s.dir.join(name);
    let head = format!("import {{ AgtmuxPlugin }} from \"{}\";\n", plugin.display());
    std::fs::write(&driver, head + body).unwrap();
    driver
}

#[test]
fn generic_hook_from_inside_the_pane_drives_every_state() {
    let mut s = Server::start("generic");
    let (pane, fifo) = generic_agent(&s);
    s.start_daemon();
    for state in [
        "idle",
        "running",
        "waiting_approval",
        "running",
        "waiting_input",
        "error",
        "idle",
    ] {
        send(
            &fifo,
            &format!(
                r#"{{"state":"{state}","session_id":"ses-1","agent":"aider","title":"fix the build"}}"#
            ),
        );
        s.wait_pane(&pane, "@agtmux_state", state, 15);
        assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
        assert_eq!(s.pane_opt(&pane, "@agtmux_provider"), "generic");
    }
    assert_eq!(s.pane_opt(&pane, "@agtmux_title"), "fix the build");
    // `ended` ends the session: the pane is no agent's any more.
    send(&fifo, r#"{"state":"ended","session_id":"ses-1"}"#);
    s.wait_pane(&pane, "@agtmux_presence", "", 15);
    let store = Store::open(&s.db_path()).unwrap();
    let by = store.event_count_by_status().unwrap();
    assert_eq!(by.get(&EventStatus::Rejected).copied().unwrap_or(0), 0);
}

#[test]
fn generic_hook_rejects_bad_input_with_reasons() {
    let mut s = Server::start("genbad");
    let (pane, fifo) = generic_agent(&s);
    s.start_daemon();
    let deep = format!(
        r#"{{"state":"idle","session_id":"d","x":{}1{}}}"#,
        "[".repeat(agtmux::sources::spool::MAX_DEPTH + 2),
        "]".repeat(agtmux::sources::spool::MAX_DEPTH + 2)
    );
    let big = format!(
        r#"{{"state":"idle","session_id":"b","x":"{}"}}"#,
        "a".repeat(2 << 20)
    );
    for bad in [
        r#"{"state":"busy","session_id":"s"}"#,
        r#"{"state":"unknown","session_id":"s"}"#,
        r#"{"state":"running"}"#,
        r#"{"state":"running","session_id":""}"#,
        r#"{"state":"running","session_id":"s","pane":"%1;kill-server"}"#,
        r#"{"state":"running","session_id":"s","agent":"a b"}"#,
        "not json",
        deep.as_str(),
        big.as_str(),
    ] {
        send(&fifo, bad);
    }
    // Then a good event: it is applied.
    send(&fifo, r#"{"state":"running","session_id":"s"}"#);
    s.wait_pane(&pane, "@agtmux_state", "running", 15);
    let store = Store::open(&s.db_path()).unwrap();
    assert!(wait_until(15, || store.event_count().unwrap() == 10));
    let got = s.rejected_reasons();
    assert_prefixes(
        &got,
        &[
            "schema: unknown state \"busy\"",
            "schema: unknown state \"unknown\"",
            "schema: missing session_id",
            "schema: empty session_id",
            "bad_pane_id",
            "schema: agent",
            "malformed_json",
            "rejected_by_hook: too_deep",
            "rejected_by_hook: too_large",
        ],
    );
    assert_eq!(got.len(), 9, "{got:?}");
}

#[test]
fn a_generic_hook_from_outside_never_makes_a_shell_pane_an_agent() {
    let mut s = Server::start("genout");
    let shell = s.new_pane("sleep 100000");
    let (agent, fifo) = generic_agent(&s);
    s.start_daemon();
    // Run by hand from outside every pane, naming the shell pane.
    let out = s.hook(
        "generic",
        &shell,
        br#"{"state":"running","session_id":"x1"}"#,
    );
    assert!(out.status.success() && out.stdout.is_empty());
    // A positive sign after it: the agent's own event lands.
    send(&fifo, r#"{"state":"running","session_id":"a1"}"#);
    s.wait_pane(&agent, "@agtmux_state", "running", 15);
    let store = Store::open(&s.db_path()).unwrap();
    assert!(wait_until(15, || store.event_count().unwrap() == 2));
    let got = s.rejected_reasons();
    assert!(got.iter().any(|r| r.starts_with("not_in_pane")), "{got:?}");
    assert_eq!(s.pane_opt(&shell, "@agtmux_presence"), "");
}

#[test]
fn gemini_hook_payloads_map_to_states() {
    let (s, pane) = Server::with_agent("gemini", "gemini");
    let base = |ev: &str, extra: &str| {
        format!(
            r#"{{"session_id":"g1","transcript_path":"","cwd":"/w","hook_event_name":"{ev}","timestamp":"2026-12-04T00:00:00.000Z"{extra}}}"#
        )
    };
    let steps = [
        (base("SessionStart", r#","source":"startup""#), "idle"),
        (base("BeforeAgent", r#","prompt":"run ls""#), "running"),
        (
            base(
                "BeforeTool",
                r#","tool_name":"run_shell_command","tool_input":{"command":"ls"}"#,
            ),
            "running",
        ),
        (
            base(
                "Notification",
                r#","notification_type":"ToolPermission","message":"Allow?","details":{"type":"exec","title":"Shell","command":"ls","rootCommand":"ls"}"#,
            ),
            "waiting_approval",
        ),
        (
            base(
                "AfterTool",
                r#","tool_name":"run_shell_command","tool_input":{},"tool_response":{}"#,
            ),
            "running",
        ),
        (
            base(
                "AfterAgent",
                r#","prompt":"run ls","prompt_response":"done","stop_hook_active":false"#,
            ),
            "idle",
        ),
        (
            base(
                "Notification",
                r#","notification_type":"ToolPermission","message":"q","details":{"type":"ask_user","title":"Question"}"#,
            ),
            "waiting_input",
        ),
        (
            base(
                "AfterAgent",
                r#","prompt":"x","prompt_response":"[no response text]","stop_hook_active":false"#,
            ),
            "error",
        ),
    ];
    for (payload, want) in &steps {
        assert!(s.hook("gemini", &pane, payload.as_bytes()).status.success());
        s.wait_pane(&pane, "@agtmux_state", want, 15);
        assert_eq!(s.pane_opt(&pane, "@agtmux_provider"), "gemini");
        assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    }
    // `explain` names the provider, the winning source and the event that decided.
    let out = s.agtmux(&["explain", &pane]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("managed gemini error"), "{text}");
    assert!(text.contains("winner=gemini_hooks"), "{text}");
    assert!(text.contains("no response text (API error)"), "{text}");
    // Bad input is rejected like any hook's.
    s.hook("gemini", &pane, br#"{"hook_event_name":"BeforeAgent"}"#);
    s.hook(
        "gemini",
        &pane,
        base("SessionEnd", r#","reason":"exit""#).as_bytes(),
    );
    // The agent leaves the pane, as /quit does.
    s.tmux(&["respawn-pane", "-k", "-t", &pane, "sleep 100000"]);
    s.wait_pane(&pane, "@agtmux_presence", "", 15);
    let got = s.rejected_reasons();
    assert!(
        got.iter()
            .any(|r| r.starts_with("schema: missing session_id")),
        "{got:?}"
    );
}

#[test]
fn opencode_plugin_events_map_to_states() {
    let (s, pane) = Server::with_agent("opencode", "opencode");
    let ev = |e: &str, extra: &str| format!(r#"{{"event":"{e}","session_id":"ses_1"{extra}}}"#);
    let steps = [
        (ev("session.status", r#","status":"busy""#), "running"),
        (
            ev("permission.asked", r#","permission":"bash""#),
            "waiting_approval",
        ),
        (ev("permission.replied", r#","reply":"once""#), "running"),
        (ev("question.asked", ""), "waiting_input"),
        (ev("question.replied", ""), "running"),
        (ev("session.idle", ""), "idle"),
        (ev("session.status", r#","status":"busy""#), "running"),
        (ev("session.error", r#","error":"APIError""#), "error"),
    ];
    for (payload, want) in &steps {
        assert!(
            s.hook("opencode", &pane, payload.as_bytes())
                .status
                .success()
        );
        s.wait_pane(&pane, "@agtmux_state", want, 15);
        assert_eq!(s.pane_opt(&pane, "@agtmux_provider"), "opencode");
    }
    // The idle after an error keeps the error; a positive sign follows it.
    s.hook(
        "opencode",
        &pane,
        ev("session.status", r#","status":"idle","after_error":true"#).as_bytes(),
    );
    let store = Store::open(&s.db_path()).unwrap();
    assert!(wait_until(15, || store.event_count().unwrap() == 9));
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "error");
}

// ---- setup gemini / opencode ----

use agtmux::cli::setup::{Agent, SetupArgs, SetupEnv, SetupError, run_with_env};

/// `agtmux setup AGENT` (install or `uninstall`, maybe a `dry_run`) for `home`, writing `bin`
/// as the command its hooks run; what it printed.
fn setup_with(
    agent: Agent,
    home: &std::path::Path,
    bin: &std::path::Path,
    uninstall: bool,
    dry_run: bool,
) -> Result<String, SetupError> {
    let env = SetupEnv {
        home: Some(home.to_path_buf()),
        bin: Some(bin.to_path_buf()),
        ..SetupEnv::default()
    };
    let a = SetupArgs {
        agent,
        uninstall,
        dry_run,
        bin: None,
    };
    let mut out = Vec::new();
    run_with_env(&a, &env, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

/// [`setup_with`] this test binary.
fn setup(agent: Agent, home: &std::path::Path, uninstall: bool, dry_run: bool) -> String {
    setup_with(agent, home, std::path::Path::new(BIN), uninstall, dry_run).unwrap()
}

fn backups(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".agtmux-bak-")
        })
        .count()
}

#[test]
fn setup_gemini_merges_hooks_keeps_foreign_ones_and_switches_hooks_on() {
    let s = Server::start("setupgem");
    let home = s.dir.join("home");
    let gdir = home.join(".gemini");
    std::fs::create_dir_all(&gdir).unwrap();
    let file = gdir.join("settings.json");
    let foreign = serde_json::json!({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "hooksConfig": {"enabled": false},
        "hooks": {"BeforeTool": [{"matcher": "run_shell_command",
            "hooks": [{"name": "audit", "type": "command", "command": "/usr/bin/audit-tool"}]}]}
    });
    std::fs::write(&file, serde_json::to_string_pretty(&foreign).unwrap()).unwrap();
    // Dry run: nothing written.
    let out = setup(Agent::Gemini, &home, false, true);
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&file).unwrap())
            .unwrap(),
        foreign
    );
    setup(Agent::Gemini, &home, false, false);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(v["hooksConfig"]["enabled"], true);
    assert_eq!(v["security"], foreign["security"]);
    let events = "SessionStart SessionEnd BeforeAgent AfterAgent BeforeTool AfterTool Notification";
    for ev in events.split(' ') {
        let groups = v["hooks"][ev].as_array().unwrap();
        let ours = groups.last().unwrap();
        assert_eq!(ours["matcher"], "");
        assert_eq!(ours["hooks"][0]["type"], "command");
        assert_eq!(ours["hooks"][0]["name"], "agtmux");
        assert_eq!(ours["hooks"][0]["timeout"], 5000);
        assert!(
            ours["hooks"][0]["command"]
                .as_str()
                .unwrap()
                .ends_with("agtmux' hook gemini"),
            "{ours}"
        );
    }
    assert_eq!(
        v["hooks"]["BeforeTool"][0],
        foreign["hooks"]["BeforeTool"][0]
    );
    assert_eq!(backups(&gdir), 1);
    // Idempotent: a second run changes nothing and makes no backup.
    let out = setup(Agent::Gemini, &home, false, false);
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(backups(&gdir), 1);
    // Uninstall removes only ours.
    setup(Agent::Gemini, &home, true, false);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(v["hooks"], foreign["hooks"]);
    // A user who disabled a hook named `agtmux` is told why nothing arrives.
    std::fs::write(&file, r#"{"hooksConfig":{"disabled":["agtmux"]}}"#).unwrap();
    let out = setup(Agent::Gemini, &home, false, false);
    assert!(out.contains("hooksConfig.disabled"), "{out}");
}

#[test]
fn setup_opencode_installs_a_plugin_that_forwards_events_to_the_daemon() {
    let mut s = Server::start("setupoc");
    let home = s.dir.join("home");
    let out = setup(Agent::OpenCode, &home, false, false);
    let plugin = home.join(".config/opencode/plugins/agtmux.js");
    assert!(out.contains("created"), "{out}");
    let text = std::fs::read_to_string(&plugin).unwrap();
    assert!(text.contains(BIN));
    assert!(setup(Agent::OpenCode, &home, false, false).contains("nothing to do"));
    // Load the plugin in node as OpenCode would, inside a pane process named `opencode`,
    // and feed it the bus events OpenCode 1.18 emits (shapes from its bundled code).
    let driver = plugin_driver(
        &s,
        "drive.mjs",
        &plugin,
        r#"import { readFileSync } from "node:fs";
const h = await AgtmuxPlugin({});
const fifo = process.argv[2];
for (const line of readFileSync(fifo, "utf8").split("\n")) {
  if (line.trim()) await h.event({ event: JSON.parse(line) });
}
setInterval(() => {}, 1 << 30);
"#,
    );
    let events = s.dir.join("events.jsonl");
    std::fs::write(
        &events,
        [
            r#"{"type":"session.status","properties":{"sessionID":"ses_9","status":{"type":"busy"}}}"#,
            r#"{"type":"message.updated","properties":{"info":{"sessionID":"ses_9"}}}"#,
            r#"{"type":"permission.asked","properties":{"id":"per_1","sessionID":"ses_9","permission":"bash","patterns":["ls"],"metadata":{"command":"ls"}}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let pane = s.new_pane(&format!(
        "bash -c 'exec -a opencode node {} {}'",
        driver.display(),
        events.display()
    ));
    s.start_daemon();
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_provider"), "opencode");
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    // A file of the same name that is not ours is never overwritten.
    setup(Agent::OpenCode, &home, true, false);
    assert!(!plugin.exists());
    std::fs::write(&plugin, "// my own plugin\n").unwrap();
    let err = setup_with(
        Agent::OpenCode,
        &home,
        std::path::Path::new(BIN),
        false,
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not written by agtmux"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&plugin).unwrap(),
        "// my own plugin\n"
    );
}

#[test]
fn doctor_checks_gemini_and_opencode_only_where_they_are_used() {
    let s = Server::start("doctor");
    let home = s.dir.join("dhome");
    std::fs::create_dir_all(&home).unwrap();
    let doctor = || {
        let out = s
            .agtmux_cmd(&["doctor", "-L", &s.name])
            .env("HOME", &home)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = doctor();
    assert!(out.contains("tmux"), "{out}");
    assert!(
        !out.contains("gemini") && !out.contains("opencode"),
        "{out}"
    );
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    std::fs::create_dir_all(home.join(".config/opencode")).unwrap();
    let out = doctor();
    assert!(out.contains("warn gemini hooks"), "{out}");
    assert!(out.contains("warn opencode plugin"), "{out}");
    setup(Agent::Gemini, &home, false, false);
    setup(Agent::OpenCode, &home, false, false);
    let out = doctor();
    assert!(
        out.contains("ok   gemini hooks installed (7 events)"),
        "{out}"
    );
    assert!(out.contains("ok   opencode plugin installed"), "{out}");
}

#[test]
fn the_opencode_plugin_delivers_events_in_order_even_when_a_hook_is_slow() {
    let s = Server::start("ocorder");
    let home = s.dir.join("home");
    // A stand-in `agtmux` that is slow on the first event only.
    let bin_dir = s.dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let fake = bin_dir.join("agtmux");
    let got = s.dir.join("got.txt");
    write_script(
        &fake,
        format!(
            "#!/bin/sh\nn=$(cat)\ncase \"$n\" in *ses_first*) sleep 0.5;; esac\nprintf '%s\\n' \"$n\" >> '{}'\n",
            got.display()
        ),
    );
    setup_with(Agent::OpenCode, &home, &fake, false, false).unwrap();
    let plugin = home.join(".config/opencode/plugins/agtmux.js");
    let driver = plugin_driver(
        &s,
        "order.mjs",
        &plugin,
        r#"const h = await AgtmuxPlugin({});
for (const id of ["ses_first", "ses_2", "ses_3", "ses_4", "ses_5"]) {
  await h.event({ event: { type: "session.status", properties: { sessionID: id, status: { type: "busy" } } } });
}
// OpenCode keeps running; so does this stand-in, for a while.
setTimeout(() => {}, 3000);
"#,
    );
    let st = std::process::Command::new("node")
        .arg(&driver)
        .env("TMUX", "/tmp/x,1,0")
        .env("TMUX_PANE", "%1")
        .status()
        .unwrap();
    assert!(st.success());
    assert!(wait_until(20, || std::fs::read_to_string(&got)
        .map(|t| t.lines().count() == 5)
        .unwrap_or(false)));
    let order: Vec<String> = std::fs::read_to_string(&got)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["session_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(order, ["ses_first", "ses_2", "ses_3", "ses_4", "ses_5"]);
}
