//! `agtmux approve|deny|reply` (issue 21 item 3) against a real tmux on a private socket and
//! the real daemon. The agent is a fake: a process named `claude` (or `codex`) that draws a
//! dialog screen recorded from the real TUI (`fixtures/screens/actions/`) in raw terminal mode
//! and records every byte it reads, so a test sees exactly the keys that arrived. Its state
//! comes from real Claude hook payloads sent through `agtmux hook claude`.
//! Every check that no key arrived comes after a positive sign (the refused command exited,
//! and a later marker key did arrive).
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod support;
use support::{BIN, Server, fixture, kill_tmux_server, out_and_err, wait_until};

/// Draws the file `argv[1]` (again whenever it changes) and appends stdin to `argv[2]`.
const FAKE: &str = r#"#!/usr/bin/env python3
import os, select, sys, tty
screen, out = sys.argv[1], sys.argv[2]
tty.setraw(0)
rec = open(out, "ab", buffering=0)
last = None
while True:
    try:
        m = os.stat(screen).st_mtime_ns
    except OSError:
        m = None
    if m != last:
        last = m
        text = open(screen, encoding="utf-8").read().rstrip("\n")
        sys.stdout.write("\x1b[H\x1b[2J" + text.replace("\n", "\r\n"))
        sys.stdout.flush()
    r, _, _ = select.select([0], [], [], 0.05)
    if r:
        b = os.read(0, 4096)
        if not b:
            break
        rec.write(b)
"#;

/// The python3 binary itself (not a link to it).
fn python3() -> PathBuf {
    let o = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

struct Agent {
    pane: String,
    screen: PathBuf,
    keys: PathBuf,
}

impl Agent {
    /// A fake `name` agent showing `screen_fixture`.
    fn start(s: &Server, name: &str, screen_fixture: &str) -> Agent {
        let n = s.dir.read_dir().map(|d| d.count()).unwrap_or(0);
        // The process is named as the agent (a python3 reached through a link named `claude`:
        // the kernel names a process after the path it was started by), so the daemon sees an
        // agent process in the pane, as it does for the real one.
        let bin = s.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join(name);
        if !exe.exists() {
            std::os::unix::fs::symlink(python3(), &exe).unwrap();
        }
        let script = s.dir.join("fake_tui.py");
        std::fs::write(&script, FAKE).unwrap();
        let screen = s.dir.join(format!("screen-{n}.txt"));
        let keys = s.dir.join(format!("keys-{n}.bin"));
        std::fs::copy(
            fixture(&format!("screens/actions/{screen_fixture}")),
            &screen,
        )
        .unwrap();
        std::fs::write(&keys, b"").unwrap();
        let pane = s.new_pane(&format!(
            "exec {} {} {} {}",
            exe.display(),
            script.display(),
            screen.display(),
            keys.display()
        ));
        let a = Agent { pane, screen, keys };
        let first = std::fs::read_to_string(&a.screen).unwrap();
        let marker = first.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        a.wait_screen(s, marker.trim());
        a
    }

    fn wait_screen(&self, s: &Server, text: &str) {
        let ok = wait_until(30, || {
            s.tmux_out(&["capture-pane", "-p", "-t", &self.pane])
                .contains(text)
        });
        assert!(ok, "{} never showed {text:?}", self.pane);
    }

    fn show(&self, s: &Server, screen_fixture: &str, marker: &str) {
        let text = std::fs::read_to_string(fixture(&format!("screens/actions/{screen_fixture}")))
            .unwrap()
            .replace("touch ./e2e_tool_ran", marker);
        std::fs::write(&self.screen, text).unwrap();
        self.wait_screen(s, marker);
    }

    fn keys(&self) -> Vec<u8> {
        std::fs::read(&self.keys).unwrap_or_default()
    }

    /// Waits until the agent got exactly `want` as its keys.
    fn wait_keys(&self, want: &[u8]) {
        assert!(
            wait_until(30, || self.keys() == want),
            "keys: {:?}",
            String::from_utf8_lossy(&self.keys())
        );
    }

    /// A marker key typed by the test itself: once it arrived, every earlier key has too.
    fn keys_after_marker(&self, s: &Server) -> Vec<u8> {
        s.tmux(&["send-keys", "-t", &self.pane, "-l", "#"]);
        let ok = wait_until(20, || self.keys().ends_with(b"#"));
        assert!(ok, "the marker key never arrived: {:?}", self.keys());
        let mut k = self.keys();
        k.pop();
        k
    }
}

fn hook(s: &Server, pane: &str, event: &str, extra: &str) {
    let sid = format!("s{}", pane.trim_start_matches('%'));
    let payload = format!("{{\"session_id\":\"{sid}\",\"hook_event_name\":\"{event}\"{extra}}}");
    let out = s.hook("claude", pane, payload.as_bytes());
    assert!(out.status.success(), "{out:?}");
}

fn waiting(s: &Server, pane: &str, tool: &str, want: &str) {
    hook(s, pane, "UserPromptSubmit", ",\"prompt\":\"go\"");
    hook(
        s,
        pane,
        "PermissionRequest",
        &format!(",\"tool_name\":\"{tool}\""),
    );
    s.wait_pane(pane, "@agtmux_state", want, 30);
}

/// `o` ended with exit code `code` and its output (stdout and stderr) says `text`.
fn assert_says(o: &std::process::Output, code: i32, text: &str) {
    let all = out_and_err(o);
    assert_eq!(o.status.code(), Some(code), "{all}");
    assert!(all.contains(text), "{all}");
}

fn token(s: &Server, verb: &str, pane: &str) -> String {
    let o = s.agtmux(&[verb, pane, "--dry-run"]);
    assert!(o.status.success(), "{}", out_and_err(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token: {}", out_and_err(&o)))
        .to_string()
}

fn world(tag: &str) -> Server {
    let mut s = Server::start(tag);
    s.start_daemon();
    s
}

/// Runs `agtmux ARGS` in the background; its output once it ends.
fn spawn(s: &Server, args: &[&str]) -> std::process::Child {
    s.agtmux_cmd(args)
        .args(["-L", &s.name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn approve_sends_the_yes_digit_and_reports_running() {
    let s = world("act-approve");
    let a = Agent::start(&s, "claude", "claude_permission.txt");
    waiting(&s, &a.pane, "Bash", "waiting_approval");
    let child = spawn(&s, &["approve", &a.pane, "--timeout", "60"]);
    // The agent got its key; it goes on as Claude does (the tool runs).
    a.wait_keys(b"1");
    hook(&s, &a.pane, "PreToolUse", ",\"tool_name\":\"Bash\"");
    assert_says(
        &child.wait_with_output().unwrap(),
        0,
        "approve (claude permission): waiting_approval -> running",
    );
    assert_eq!(a.keys_after_marker(&s), b"1");
}

#[test]
fn deny_on_a_moved_cursor_still_sends_the_no_digit() {
    let s = world("act-deny");
    let a = Agent::start(&s, "claude", "claude_permission_cursor2.txt");
    waiting(&s, &a.pane, "Bash", "waiting_approval");
    let child = spawn(&s, &["deny", &a.pane, "--timeout", "60"]);
    a.wait_keys(b"3");
    hook(&s, &a.pane, "Stop", "");
    assert_says(&child.wait_with_output().unwrap(), 0, "-> idle");
}

#[test]
fn reply_text_with_shell_metacharacters_arrives_verbatim() {
    let s = world("act-reply");
    let a = Agent::start(&s, "claude", "claude_askq.txt");
    waiting(&s, &a.pane, "AskUserQuestion", "waiting_input");
    let canary = s.dir.join("canary");
    let answer = format!(
        "-n $(touch {c}); `touch {c}` \"q\" 'y' | touch {c} & ; \\ %1 #{{pane_id}} é",
        c = canary.display()
    );
    let child = spawn(&s, &["reply", &a.pane, &answer, "--timeout", "60"]);
    let want = format!("3{answer}\r").into_bytes();
    a.wait_keys(&want);
    hook(
        &s,
        &a.pane,
        "PostToolUse",
        ",\"tool_name\":\"AskUserQuestion\"",
    );
    assert_says(
        &child.wait_with_output().unwrap(),
        0,
        "reply (claude question): waiting_input -> running",
    );
    assert!(!canary.exists(), "the reply ran through a shell");
    // An option's label picks its digit.
    let b = Agent::start(&s, "claude", "claude_askq.txt");
    waiting(&s, &b.pane, "AskUserQuestion", "waiting_input");
    let o = s.agtmux(&["reply", &b.pane, "sqlite", "--timeout", "0"]);
    assert!(o.status.success(), "{}", out_and_err(&o));
    assert_eq!(b.keys_after_marker(&s), b"2");
}

#[test]
fn other_states_wrong_dialogs_and_wrong_panes_are_refused_without_a_key() {
    let s = world("act-refuse");
    let a = Agent::start(&s, "claude", "claude_permission.txt");
    // Running, not waiting: refused with exit 5, whatever the screen shows.
    hook(&s, &a.pane, "UserPromptSubmit", ",\"prompt\":\"go\"");
    s.wait_pane(&a.pane, "@agtmux_state", "running", 30);
    let o = s.agtmux(&["approve", &a.pane]);
    assert_says(&o, 5, "is running");
    // Waiting, but reply to a permission dialog: refused, exit 5.
    hook(&s, &a.pane, "PermissionRequest", ",\"tool_name\":\"Bash\"");
    s.wait_pane(&a.pane, "@agtmux_state", "waiting_approval", 30);
    let o = s.agtmux(&["reply", &a.pane, "yes"]);
    assert_says(&o, 5, "agtmux approve");
    // Waiting, but the screen shows no dialog agtmux knows: refused, exit 5.
    a.show(&s, "claude_after_approve_1.txt", "touch ./e2e_other");
    let o = s.agtmux(&["approve", &a.pane]);
    assert_says(&o, 5, "shows no dialog");
    // A pane without an agent, a pane that does not exist: exit 3. A bad id: exit 2.
    let shell = s.new_pane("sleep 100000");
    for p in [shell.as_str(), "%9999"] {
        let o = s.agtmux(&["approve", p]);
        assert_eq!(o.status.code(), Some(3), "{p}: {}", out_and_err(&o));
    }
    let o = s.agtmux(&["deny", "7"]);
    assert_says(&o, 2, "did you mean %7");
    assert_eq!(a.keys_after_marker(&s), b"", "a refused action sent keys");
}

#[test]
fn a_stale_dialog_is_refused() {
    let s = world("act-stale");
    let a = Agent::start(&s, "claude", "claude_permission.txt");
    waiting(&s, &a.pane, "Bash", "waiting_approval");
    let t1 = token(&s, "approve", &a.pane);
    // Another question on the same pane in the same state: another token, refused (exit 6).
    a.show(&s, "claude_permission.txt", "rm -rf ./build");
    let t2 = token(&s, "approve", &a.pane);
    assert_ne!(t1, t2);
    let o = s.agtmux(&["approve", &a.pane, "--expect", &t1]);
    assert_says(&o, 6, "another dialog");
    // Moving the cursor keeps the dialog (and its token).
    a.show(&s, "claude_permission_cursor2.txt", "rm -rf ./build");
    assert_eq!(token(&s, "approve", &a.pane), t2);
    // Answered in the pane meanwhile (the agent runs the tool), then the same question again:
    // the listed token is refused both times.
    hook(&s, &a.pane, "PreToolUse", ",\"tool_name\":\"Bash\"");
    s.wait_pane(&a.pane, "@agtmux_state", "running", 30);
    let o = s.agtmux(&["approve", &a.pane, "--expect", &t2]);
    assert_says(&o, 6, "gone");
    hook(&s, &a.pane, "PermissionRequest", ",\"tool_name\":\"Bash\"");
    s.wait_pane(&a.pane, "@agtmux_state", "waiting_approval", 30);
    let o = s.agtmux(&["approve", &a.pane, "--expect", &t2]);
    assert_eq!(o.status.code(), Some(6), "{}", out_and_err(&o));
    assert_eq!(a.keys_after_marker(&s), b"", "a stale action sent keys");
    // The current token is accepted.
    let t3 = token(&s, "approve", &a.pane);
    let o = s.agtmux(&["approve", &a.pane, "--expect", &t3, "--timeout", "0"]);
    assert!(o.status.success(), "{}", out_and_err(&o));
    assert!(
        wait_until(20, || a.keys().ends_with(b"#1")),
        "{:?}",
        a.keys()
    );
}

/// A real client: `tmux attach` in a pane of a second private server (its terminal), so the
/// popup opens in it and keys typed into that pane reach the popup as a user's would.
struct Terminal {
    host: String,
}

impl Terminal {
    fn attach(s: &Server) -> Terminal {
        let host = format!("{}-term", s.name);
        let attach = format!("TMUX= tmux -L {} attach -t main", s.name);
        let mut c = Command::new("tmux");
        c.args(["-L", &host, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "160", "-y", "45", &attach]);
        s.env(&mut c);
        let st = c.env_remove("TMUX").stdin(Stdio::null()).status().unwrap();
        assert!(st.success());
        let t = Terminal { host };
        let ok = wait_until(20, || {
            s.tmux_out(&["list-clients", "-F", "#{client_control_mode}"])
                .lines()
                .any(|l| l == "0")
        });
        assert!(ok, "no client attached");
        t
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.host, "capture-pane", "-p", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn wait(&self, text: &str) {
        let ok = wait_until(30, || self.screen().contains(text));
        assert!(ok, "the terminal never showed {text:?}:\n{}", self.screen());
    }

    fn type_text(&self, t: &str) {
        let st = Command::new("tmux")
            .args(["-L", &self.host, "send-keys", "-t", "0", "-l", t])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn key(&self, k: &str) {
        let st = Command::new("tmux")
            .args(["-L", &self.host, "send-keys", "-t", "0", k])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        kill_tmux_server(&self.host);
    }
}

/// Opens the popup in the attached client and selects `pane` with the filter.
fn popup_on(s: &Server, t: &Terminal, pane: &str) -> std::process::Child {
    let client = s.client_name();
    let cmd = format!("{BIN} popup -L {} -c {client}", s.name);
    let mut c = Command::new("tmux");
    c.args(["-L", &s.name, "display-popup", "-c", &client])
        .args(["-w", "150", "-h", "20", "-E", &cmd]);
    s.env(&mut c);
    let child = c
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    t.wait("y approve · n deny · r reply");
    t.type_text("/");
    t.type_text(pane);
    t.key("Enter");
    child
}

#[test]
fn the_popup_approves_the_dialog_it_shows_and_refuses_one_that_changed() {
    let s = world("act-popup");
    let t = Terminal::attach(&s);
    let a = Agent::start(&s, "claude", "claude_permission.txt");
    waiting(&s, &a.pane, "Bash", "waiting_approval");
    let mut popup = popup_on(&s, &t, &a.pane);
    // The popup shows what the dialog asks.
    t.wait(&format!("{} asks: touch ./e2e_tool_ran", a.pane));
    // Behind its back the dialog changes (same pane, same state): `y` is refused, no key.
    a.show(&s, "claude_permission.txt", "rm -rf ./precious");
    t.type_text("y");
    t.wait("refused (stale)");
    assert_eq!(
        a.keys_after_marker(&s),
        b"",
        "a stale popup action sent keys"
    );
    t.type_text("q");
    let _ = popup.wait();
    // Opened again, it shows the new dialog, and `y` answers it with its digit.
    let mut popup = popup_on(&s, &t, &a.pane);
    t.wait(&format!("{} asks: rm -rf ./precious", a.pane));
    t.type_text("y");
    t.wait("approve sent (\"1\")");
    assert!(wait_until(20, || a.keys() == b"#1"), "keys: {:?}", a.keys());
    t.type_text("q");
    let _ = popup.wait();
}

#[test]
fn an_opencode_dialog_is_refused_as_not_supported() {
    let s = world("act-opencode");
    let a = Agent::start(&s, "opencode", "claude_permission.txt");
    let ev = |e: &str, extra: &str| format!(r#"{{"event":"{e}","session_id":"ses_1"{extra}}}"#);
    for (payload, want) in [
        (ev("session.status", r#","status":"busy""#), "running"),
        (
            ev("permission.asked", r#","permission":"bash""#),
            "waiting_approval",
        ),
    ] {
        assert!(
            s.hook("opencode", &a.pane, payload.as_bytes())
                .status
                .success()
        );
        s.wait_pane(&a.pane, "@agtmux_state", want, 30);
    }
    for verb in [&["approve"][..], &["deny"], &["reply", "yes"]] {
        let mut args = verb.to_vec();
        args.insert(1, &a.pane);
        let o = s.agtmux(&args);
        assert_says(&o, 5, "not supported for opencode");
    }
    assert_eq!(a.keys_after_marker(&s), b"");
}
