//! The client commands as a user meets them, against a real daemon on a private tmux server:
//! `ls --all` in table mode, `doctor` on a machine without Codex (no contradiction, exit codes,
//! fix lines naming this binary), one duration syntax, a `wait` that times out says what was
//! pending, `explain 1` suggests `%1`, no internal design ids in any help text, and `doctor` on
//! a stopped tmux server answers instead of hanging.
mod support;
use serde_json::json;
use std::process::{Command, Output, Stdio};
use support::*;

/// `agtmux ARGS -L <server>` with the test's dirs, and HOME/CODEX_HOME in the test dir (no
/// hooks installed, no Codex).
fn agtmux(s: &Server, args: &[&str]) -> Output {
    s.agtmux_cmd(args)
        .args(["-L", &s.name])
        .env("HOME", s.dir.join("home"))
        .env("CODEX_HOME", s.dir.join("home/.codex"))
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("AGTMUX_CODEX_SOCK")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ls_all_lists_the_panes_without_an_agent_in_the_table_too() {
    let mut s = Server::start("lsall");
    let agent = s.silent_agent("claude");
    let shell = s.new_pane("exec -a plainjob sleep 100000");
    s.start_daemon();
    s.claude(&agent, claude::permission("la"));
    s.wait_pane(&agent, "@agtmux_state", "waiting_approval", 10);
    // The read model knows the other pane and its command.
    assert!(wait_until(10, || {
        let l = s.api("list", serde_json::json!({})).to_string();
        l.contains(&format!("\"{shell}\"")) && l.contains("plainjob")
    }));
    let o = agtmux(&s, &["ls"]);
    assert!(o.status.success(), "{}", err(&o));
    let table = out(&o);
    assert!(table.contains(&agent), "{table}");
    assert!(!table.contains(&format!("{shell} ")), "{table}");
    let o = agtmux(&s, &["ls", "--all"]);
    assert!(o.status.success(), "{}", err(&o));
    let all = out(&o);
    let row = all
        .lines()
        .find(|l| l.contains(&format!("{shell} ")))
        .unwrap_or_else(|| panic!("ls --all lists {shell}:\n{all}"));
    assert!(
        row.contains("no agent") && row.contains("plainjob"),
        "{row}"
    );
    // The agent still comes first (attention first) and keeps its state.
    let first = all.lines().find(|l| l.contains('%')).unwrap_or("");
    assert!(
        first.contains(&agent) && first.contains("waiting_approval"),
        "{all}"
    );
}

#[test]
fn doctor_without_codex_warns_without_contradiction_and_exits_0_on_warnings_only() {
    let mut s = Server::start("doc");
    s.start_daemon();
    // The daemon has tried the (absent) Codex app-server socket.
    assert!(wait_until(15, || {
        s.api("health", serde_json::json!({}))["result"]["supervisor"]["components"]["codex_appserver"]
            ["phase"]
            == "absent"
    }));
    let o = agtmux(&s, &["doctor"]);
    let text = out(&o);
    // Warnings only (no plugin keys, no hooks installed): exit 0.
    assert!(
        text.contains("\nwarn ") || text.starts_with("warn "),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("0 failed,"), "{text}");
    // Codex is absent: said once, as ok, never also as a warning.
    assert!(text.contains("ok   no Codex app-server at"), "{text}");
    assert!(!text.contains("codex_appserver is"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("warn") && l.contains("Codex app-server")),
        "{text}"
    );
    // Fix lines name this binary by its full path.
    assert!(text.contains(&format!("fix: {BIN} setup claude")), "{text}");
    assert!(!text.contains("fix: agtmux "), "{text}");
    // The status line fix keeps what the user has there.
    assert!(text.contains("set -ga status-right"), "{text}");
    assert!(!text.contains("set -g status-right"), "{text}");

    // A real problem: no daemon for this server. Exit 1, and the fix names this binary.
    s.kill_daemon_hard();
    let o = agtmux(&s, &["doctor"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL no agtmux daemon runs for this tmux server"),
        "{text}"
    );
    assert!(text.contains(&format!("fix: {BIN} daemon -S ")), "{text}");
    assert!(text.contains(" --detach "), "{text}");
}

#[test]
fn wait_takes_the_one_duration_syntax_and_a_timeout_says_what_is_pending() {
    let (s, pane) = Server::with_agent("waitdur", "claude");
    s.claude(&pane, claude::ev("wd", "UserPromptSubmit", json!({})));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    for t in ["300ms", "1s", "0.5", "0.01m"] {
        let o = agtmux(
            &s,
            &["wait", "--pane", &pane, "--until", "idle", "--timeout", t],
        );
        assert_eq!(o.status.code(), Some(1), "--timeout {t}: {}", err(&o));
        let e = err(&o);
        assert!(
            e.contains("timed out") && e.contains(&format!("{pane} is running")),
            "--timeout {t}: {e}"
        );
    }
    // Every agent pane: which ones are not idle.
    let o = agtmux(&s, &["wait", "--until", "idle", "--timeout", "200ms"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("not idle: {pane} running")),
        "{}",
        err(&o)
    );
    let o = agtmux(&s, &["wait", "--until", "attention", "--timeout", "200ms"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("no agent pane needs attention"),
        "{}",
        err(&o)
    );
    // Met: exit 0, nothing on stderr.
    s.claude(&pane, claude::stop("wd"));
    let o = agtmux(
        &s,
        &[
            "wait",
            "--pane",
            &pane,
            "--until",
            "idle",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).is_empty(), "{}", err(&o));
    // Not a duration: a usage error that says what is accepted.
    for bad in ["2x", "-1", "soon"] {
        let o = agtmux(
            &s,
            &["wait", "--until", "idle", &format!("--timeout={bad}")],
        );
        assert_eq!(o.status.code(), Some(2), "--timeout {bad}");
        assert!(err(&o).contains("not a duration"), "{}", err(&o));
    }
}

#[test]
fn demo_for_takes_the_same_durations_and_refuses_others() {
    // Parsing only: a bad value is refused before any server starts.
    let o = Command::new(BIN)
        .args([
            "demo",
            "--no-attach",
            "--for",
            "2x",
            "-L",
            "agtmux-test-never",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("not a duration"), "{}", err(&o));
}

#[test]
fn explain_with_a_bare_number_suggests_the_pane_id() {
    let mut s = Server::start("expl1");
    s.start_daemon();
    let o = agtmux(&s, &["explain", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("did you mean %1?"), "{}", err(&o));
    let o = agtmux(&s, &["wait", "--pane", "1", "--until", "idle"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("did you mean %1?"), "{}", err(&o));
}

/// Every subcommand's help (nested ones too), hidden ones aside.
fn help_texts() -> Vec<(String, String)> {
    fn help(path: &[String]) -> String {
        let o = Command::new(BIN).args(path).arg("--help").output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn subcommands(text: &str) -> Vec<String> {
        text.split("\nCommands:\n")
            .nth(1)
            .unwrap_or("")
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(str::to_string)
            .collect()
    }
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for c in subcommands(&text) {
            let mut p = path.clone();
            p.push(c);
            todo.push(p);
        }
        out.push((path.join(" "), text));
    }
    out
}

#[test]
fn no_help_text_shows_internal_design_ids() {
    let helps = help_texts();
    assert!(helps.len() > 15, "{} help texts", helps.len());
    for (cmd, text) in helps {
        let at = text.find("C-0").or_else(|| text.find("Flow-0"));
        assert!(
            at.is_none(),
            "`agtmux {cmd} --help` shows a design id at {at:?}:\n{text}"
        );
    }
}

/// Resumes a tmux server stopped with SIGSTOP when dropped (before the Server's kill-server,
/// which a stopped server would never answer).
struct Resume(String);
impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[test]
fn doctor_on_a_stopped_tmux_server_says_so_instead_of_hanging() {
    let s = Server::start("docstop");
    let pid = s.server_pid();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _resume = Resume(pid);
    let mut child = s
        .agtmux_cmd(&["doctor", "-L", &s.name])
        .env("HOME", s.dir.join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Before the fix doctor waited for the stopped server forever.
    let exited = wait_until(90, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(exited, "doctor still waiting on a stopped tmux server");
    let text = out(&o);
    assert!(
        text.contains("tmux did not answer") && text.contains("kill -CONT"),
        "{text}"
    );
    assert_eq!(o.status.code(), Some(1), "{text}");
}
