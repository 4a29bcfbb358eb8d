//! Issue 16 items 1 and 2 on real tmux servers: a hostile transcript line must not kill the
//! daemon; a daemon that dies anyway (kill -9, a panic) is shown as down and comes back by
//! itself — through its keeper, or, when the keeper died too, through the next hook or tmux's
//! client-detached hook that the plugin installs.
mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

fn interrupt_line(session: &str, uuid: &str, ts: &str) -> String {
    serde_json::json!({"type":"user","isSidechain":false,"message":{"role":"user",
        "content":[{"type":"text","text":"[Request interrupted by user]"}]},
        "uuid":uuid,"timestamp":ts,"sessionId":session})
    .to_string()
        + "\n"
}

fn prompt(session: &str, tx: &Path) -> Vec<u8> {
    serde_json::json!({"session_id": session, "hook_event_name": "UserPromptSubmit",
        "prompt": "go", "transcript_path": tx, "cwd": "/tmp"})
    .to_string()
    .into_bytes()
}

fn stop(session: &str) -> Vec<u8> {
    serde_json::json!({"session_id": session, "hook_event_name": "Stop", "cwd": "/tmp"})
        .to_string()
        .into_bytes()
}

fn pid_of(status: &str) -> String {
    status.split(' ').next().unwrap_or("").to_string()
}

fn kill9(pid: &str) {
    assert!(!pid.is_empty());
    let st = Command::new("kill").args(["-9", pid]).status().unwrap();
    assert!(st.success(), "kill -9 {pid}");
}

fn paths(s: &Server) -> agtmux::paths::ServerPaths {
    agtmux::paths::ServerPaths {
        socket: s.socket(),
        key: agtmux::paths::server_key(&s.socket()),
        runtime_dir: s.runtime_dir.clone(),
        state_dir: s.server_dir(),
    }
}

fn keeper_lock(s: &Server) -> PathBuf {
    agtmux::daemon::supervise::supervisor_lock(&paths(s))
}

/// Start the daemon as the plugin does (`--detach`: a keeper and its worker) and wait for the
/// worker's `<pid> ok`. `extra` env goes to the keeper and so to every worker.
fn start_kept(s: &Server, extra: &[(&str, &str)]) -> String {
    let mut c = s.daemon_cmd();
    c.arg("--detach");
    // A first backoff step long enough for the test to see "down" on a busy machine.
    c.env("AGTMUX_SUPERVISOR_BACKOFF_MS", "3000,30000");
    for (k, v) in extra {
        c.env(k, v);
    }
    let st = c.status().unwrap();
    assert!(st.success());
    let v = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 20);
    pid_of(&v)
}

/// The hook as an agent runs it, with the environment a revived keeper would inherit.
fn hook(s: &Server, pane: &str, payload: &[u8]) {
    use std::io::Write;
    let mut c = Command::new(BIN);
    c.args(["hook", "claude"])
        .env("TMUX", s.tmux_env())
        .env("TMUX_PANE", pane)
        .env("AGTMUX_CODEX_SOCK", s.codex_sock())
        .env("AGTMUX_SUPERVISOR_BACKOFF_MS", "3000,30000")
        .env("RUST_LOG", "info");
    s.env(&mut c);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let t0 = std::time::Instant::now();
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(payload).ok();
    // The hook never waits for the daemon it may start: stdout and stderr close at its exit.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "the hook returned only after {:?}",
        t0.elapsed()
    );
}

/// A prompt of session `sid` in `pane` whose transcript is the new empty file `s.dir/name`,
/// through [`hook`]; returns once the pane is running. The transcript's path.
fn running_with_transcript(s: &Server, pane: &str, sid: &str, name: &str) -> PathBuf {
    let tx = s.dir.join(name);
    std::fs::write(&tx, b"").unwrap();
    hook(s, pane, &prompt(sid, &tx));
    s.wait_pane(pane, "@agtmux_state", "running", 15);
    tx
}

#[test]
fn a_multibyte_character_in_a_transcript_timestamp_does_not_kill_the_daemon() {
    let (mut s, pane) = Server::with_agent("mbts", "claude");
    let pid = pid_of(&s.global_opt("@agtmux_daemon"));
    let tx = running_with_transcript(&s, &pane, "mb1", "mb.jsonl");
    // The line that panicked at transcript_watch.rs:238 (`&t[3..4]` inside the 'é').
    append(
        &tx,
        &interrupt_line("mb1", "bad", "2026-12-04T10:00:00+0\u{e9}00"),
    );
    // It is still an Esc (its time unknown, so the time it was read): the pane goes idle.
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    // And the daemon lives on: a new prompt, then a valid line, are both applied.
    hook(&s, &pane, &prompt("mb1", &tx));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    append(&tx, &interrupt_line("mb1", "good", &iso_now()));
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    assert!(
        s.daemon.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the daemon exited\n{}",
        s.log_tail()
    );
    assert_eq!(pid_of(&s.global_opt("@agtmux_daemon")), pid);
    assert!(!s.log().contains("daemon_panic"), "{}", s.log_tail());
}

#[test]
fn a_killed_worker_shows_down_and_comes_back() {
    let s = Server::start("kill9w");
    let pane = s.silent_agent("claude");
    s.tmux(&["set", "-g", "status-right", "#{@agtmux_attention}|"]);
    let worker = start_kept(&s, &[]);
    running_with_transcript(&s, &pane, "k1", "k.jsonl");

    kill9(&worker);
    let down = s.wait_global("@agtmux_daemon", |v| v.contains(" down "), 15);
    assert!(down.contains("signal 9 (SIGKILL)"), "{down}");
    assert!(down.contains("restarting in"), "{down}");
    let right = s.tmux_out(&["display", "-p", "#{E:status-right}"]);
    assert!(right.contains("agtmux down"), "status-right: {right:?}");
    assert!(
        s.log()
            .contains("daemon_worker_down status=\"signal 9 (SIGKILL)\""),
        "{}",
        s.log_tail()
    );

    // Back by itself, with a new worker that applies a new hook event.
    let v = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    assert_ne!(pid_of(&v), worker);
    assert!(!s.global_opt("@agtmux_attention").contains("down"));
    hook(&s, &pane, &stop("k1"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 15);
}

#[test]
fn a_panic_in_a_source_is_logged_with_its_location_and_the_daemon_comes_back() {
    let s = Server::start("panic");
    let pane = s.silent_agent("claude");
    let marker = "AGTMUX-INJECTED-PANIC-7f3a";
    let worker = start_kept(&s, &[("AGTMUX_TEST_PANIC_ON", marker)]);
    let tx = running_with_transcript(&s, &pane, "p1", "p.jsonl");

    append(
        &tx,
        &format!("{{\"type\":\"user\",\"note\":\"{marker}\"}}\n"),
    );
    let down = s.wait_global("@agtmux_daemon", |v| v.contains(" down "), 15);
    assert!(down.contains("exit 101 (panic)"), "{down}");
    let log = s.log();
    assert!(
        log.contains("daemon_panic at=src/sources/transcript_watch.rs:"),
        "{}",
        s.log_tail()
    );
    assert!(
        log.contains("AGTMUX_TEST_PANIC_ON marker"),
        "{}",
        s.log_tail()
    );

    let v = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    assert_ne!(pid_of(&v), worker);
    hook(&s, &pane, &stop("p1"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 15);
}

/// Dead (gone, or a zombie nobody reaped yet).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(st) => st
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Kill -9 of the keeper, then of the worker: nothing is left to restart anything, and
/// `@agtmux_daemon` still says the dead worker's `ok`.
fn kill_everything(s: &Server, worker: &str) {
    let keeper = std::fs::read_to_string(keeper_lock(s)).unwrap();
    let keeper = keeper.trim().to_string();
    kill9(&keeper);
    assert!(wait_until(15, || dead(&keeper)), "keeper {keeper} lives");
    kill9(worker);
    assert!(wait_until(15, || dead(worker)), "worker {worker} lives");
}

#[test]
fn the_next_hook_restarts_a_daemon_killed_with_its_keeper() {
    let s = Server::start("killall");
    let pane = s.silent_agent("claude");
    let worker = start_kept(&s, &[]);
    running_with_transcript(&s, &pane, "a1", "a.jsonl");
    kill_everything(&s, &worker);
    let sp = paths(&s);
    assert!(
        wait_until(15, || !agtmux::daemon::supervise::running(&sp)),
        "a lock is still held"
    );

    // The hook records its event and, finding nothing running, starts a keeper (detached).
    hook(&s, &pane, &stop("a1"));
    let v = s.wait_global(
        "@agtmux_daemon",
        |v| v.ends_with(" ok") && pid_of(v) != worker,
        30,
    );
    s.wait_pane(&pane, "@agtmux_state", "idle", 15);
    assert!(!v.is_empty());
}

#[test]
fn the_plugin_revives_a_daemon_killed_with_its_keeper_through_client_detached() {
    let s = Server::start("plugin-revive");
    let pane = s.silent_agent("claude");
    // The plugin runs inside the server (run-shell), with the server's global environment.
    let out = s.run_plugin();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hooks = s.tmux_out(&["show-hooks", "-g"]);
    assert!(hooks.contains("--revive"), "{hooks}");
    let worker = pid_of(&s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 20));
    kill_everything(&s, &worker);
    // No hook, no reload: tmux saw the worker's control client leave and ran --revive.
    let v = s.wait_global(
        "@agtmux_daemon",
        |v| v.ends_with(" ok") && pid_of(v) != worker,
        30,
    );
    running_with_transcript(&s, &pane, "r1", "r.jsonl");
    assert!(!v.is_empty());
}

/// Sends SIGCONT to a stopped process on drop, so a failed assertion never leaves a test's tmux
/// server stopped (the harness then kills it by name).
struct Stopped(String);

impl Stopped {
    fn new(pid: &str) -> Stopped {
        assert!(!pid.is_empty());
        let st = Command::new("kill").args(["-STOP", pid]).status().unwrap();
        assert!(st.success(), "kill -STOP {pid}");
        Stopped(pid.to_string())
    }
    fn resume(&self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.resume();
    }
}

/// Issue 16 (follow-up): a tmux server stopped with SIGSTOP answers nothing; the keeper's
/// one-shot `tmux set-option` waited for it forever, so a worker that died meanwhile was never
/// restarted. Every tmux command the keeper runs has a bounded wait.
#[test]
fn a_stopped_tmux_server_does_not_wedge_the_keeper() {
    let s = Server::start("stoptmux");
    let worker = start_kept(&s, &[]);
    // Read before the server stops: the harness asks tmux for its socket path.
    let log_path = s.server_dir().join("daemon.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = |t: &str| t.matches("supervisor_worker_started").count();
    assert_eq!(started(&log()), 1, "{}", log());
    let server = s.server_pid();
    let stopped = Stopped::new(&server);
    kill9(&worker);
    // Down, told (to a server that does not answer), backed off, told again, restarted: all
    // while tmux stays stopped.
    assert!(
        wait_until(90, || started(&log()) >= 2),
        "the keeper did not restart its worker while tmux was stopped\n{}",
        log()
    );
    assert!(
        log().contains("tmux_command_timeout what=tell"),
        "{}",
        log()
    );
    stopped.resume();
    let v = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 60);
    assert_ne!(pid_of(&v), worker);
}
