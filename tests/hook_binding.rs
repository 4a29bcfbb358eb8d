//! Issue 16, hooks: a hook is bound to its tmux server instance and to the pane's process
//! (items 3 and 8), its read is bounded (item 8), a spool it cannot write is reported
//! (item 5), and the rows of gone panes are pruned (item 8). Real tmux on private sockets,
//! real `agtmux hook` child processes, hooks fired from inside panes by fake agents.
mod support;
use agtmux::store::{EventStatus, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// A fake agent typed into an interactive shell pane: a process named `myagent` (not an agent
/// name, so only its hooks say it is an agent) that runs the real `agtmux hook claude` from
/// inside the pane with `payload`, then waits (a builtin `read`: no child left behind when it
/// is killed). Returns the pane and the agent's pid.
fn in_pane_agent(s: &Server, payload: serde_json::Value) -> (String, i32) {
    in_pane_agent_claiming(s, payload, None)
}

/// As [`in_pane_agent`]; with `claim`, the hook says it runs in that pane (`TMUX_PANE`).
fn in_pane_agent_claiming(
    s: &Server,
    payload: serde_json::Value,
    claim: Option<&str>,
) -> (String, i32) {
    let (cmd, pidf) = agent_command(s, payload, claim);
    let pane = s.new_pane("bash --norc --noprofile");
    s.tmux(&["send-keys", "-t", &pane, "-l", &cmd]);
    s.tmux(&["send-keys", "-t", &pane, "Enter"]);
    (pane, agent_pid(&pidf))
}

/// The shell command that starts the fake agent, and the file it writes its pid to.
fn agent_command(s: &Server, payload: serde_json::Value, claim: Option<&str>) -> (String, PathBuf) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let script = s.dir.join(format!("agent-{n}.sh"));
    let pay = s.dir.join(format!("payload-{n}.json"));
    let pidf = s.dir.join(format!("agent-{n}.pid"));
    std::fs::write(
        &script,
        "echo $$ > \"$3.tmp\"; mv \"$3.tmp\" \"$3\"\n\
         [ -n \"$4\" ] && export TMUX_PANE=\"$4\"\n\
         \"$1\" hook claude < \"$2\"\n\
         while :; do read -r _ || sleep 1; done\n",
    )
    .unwrap();
    std::fs::write(&pay, payload.to_string()).unwrap();
    let cmd = format!(
        "bash -c 'exec -a myagent bash {} {} {} {} {}'",
        script.display(),
        BIN,
        pay.display(),
        pidf.display(),
        claim.unwrap_or("")
    );
    (cmd, pidf)
}

fn agent_pid(pidf: &Path) -> i32 {
    assert!(
        wait_until(20, || pidf.exists()),
        "the fake agent did not start ({})",
        pidf.display()
    );
    std::fs::read_to_string(pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn kill9(pid: i32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn pane_rows(s: &Server) -> i64 {
    rusqlite::Connection::open(s.db_path())
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM pane_state_v2", [], |r| r.get(0)))
        .unwrap_or(-1)
}

/// Run `agtmux hook claude` as `s`'s pane `pane` would, with `TMUX` naming server pid `pid`.
fn hook_as_server(s: &Server, pid: &str, pane: &str, payload: &[u8]) {
    assert!(
        s.hook_under_pid(pid, "claude", pane, payload)
            .status
            .success()
    );
}

/// Item 3a: an agent killed with kill -9 sends no SessionEnd. Its pane held no process the
/// classifier knows (only its hooks made it an agent): once the process its hooks came from
/// is gone, the pane is no agent any more.
#[test]
fn an_agent_killed_with_kill_9_leaves_its_pane_unmanaged() {
    let mut s = Server::start("kill9agent");
    s.start_daemon();
    let (pane, pid) = in_pane_agent(&s, claude::prompt("k9", "go"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    kill9(pid);
    assert!(
        wait_until(30, || s
            .log()
            .contains(&format!("agent_process_gone pane={pane}"))),
        "{}",
        s.log_tail()
    );
    s.wait_pane(&pane, "@agtmux_state", "", 20);
    s.wait_pane(&pane, "@agtmux_presence", "", 20);
}

/// Item 3b: after kill-server and a new server on the same socket name, a late hook that
/// still carries the old server's pid in `$TMUX` is rejected (`stale_server`), also for a
/// pane that holds an agent; a hook of the new server is applied.
#[test]
fn a_late_hook_from_a_killed_server_is_not_applied_to_the_new_one() {
    let mut s = Server::start("staleserver");
    let old_pid = s.server_pid();
    s.start_daemon();
    s.tmux(&["kill-server"]);
    if let Some(c) = s.daemon.take() {
        reap_daemon(c);
    }
    assert!(s.new_session().status.success());
    assert_ne!(s.server_pid(), old_pid);
    let shell = s.new_pane("bash --norc --noprofile");
    let agent = s.silent_agent("claude");
    s.start_daemon();
    let stop = br#"{"session_id":"old","hook_event_name":"UserPromptSubmit","prompt":"x"}"#;
    hook_as_server(&s, &old_pid, &shell, stop);
    hook_as_server(&s, &old_pid, &agent, stop);
    s.wait_rejected("stale_server", |n| n == 2);
    // The new server's own hook goes through.
    hook_as_server(
        &s,
        &s.server_pid(),
        &agent,
        br#"{"session_id":"new","hook_event_name":"PermissionRequest","tool_name":"Bash"}"#,
    );
    s.wait_pane(&agent, "@agtmux_state", "waiting_approval", 20);
    assert_eq!(s.pane_opt(&shell, "@agtmux_state"), "");
    // Even with this server's pid, a hook run outside any of its panes cannot make a plain
    // shell an agent.
    hook_as_server(&s, &s.server_pid(), &shell, stop);
    s.wait_rejected(
        &format!("not_in_pane: the hook did not run inside a pane of this server, and {shell}"),
        |n| n > 0,
    );
    assert_eq!(s.pane_opt(&shell, "@agtmux_state"), "");
}

/// Item 3: a hook is bound to the pane's process. One fired inside pane A that claims pane B
/// (`TMUX_PANE`) is rejected, B keeps its screen-based state; A's own hooks apply.
#[test]
fn a_hook_from_another_panes_process_tree_is_rejected() {
    let (s, victim) = Server::with_agent("otherpane", "claude");
    let (_, _) = in_pane_agent_claiming(&s, claude::permission("x1"), Some(&victim));
    s.wait_rejected("pane_process_mismatch", |n| n > 0);
    assert_ne!(s.pane_opt(&victim, "@agtmux_state"), "waiting_approval");
    assert_ne!(s.pane_opt(&victim, "@agtmux_evidence"), "deterministic");
    let (own, _) = in_pane_agent(&s, claude::prompt("x2", "x"));
    s.wait_pane(&own, "@agtmux_state", "running", 20);
}

/// Item 3 (restore): the state saved for a pane whose agent died while the daemon was down is
/// not restored: the process its hooks came from is gone.
#[test]
fn a_restart_does_not_restore_the_state_of_an_agent_that_died_meanwhile() {
    let mut s = Server::start("restoredead");
    s.start_daemon();
    let (pane, pid) = in_pane_agent(&s, claude::permission("r1"));
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 20);
    // The row is written before the option: it is there once the option is.
    s.kill_daemon_hard();
    kill9(pid);
    s.start_daemon();
    s.wait_log(
        &format!("restore_skipped pane={pane} reason=agent_gone"),
        30,
    );
    s.wait_pane(&pane, "@agtmux_state", "", 20);
}

/// Item 8: `agtmux hook` never waits for stdin to close. An endless stream is cut at the
/// size cap and the read window (recorded `too_large_unterminated` with the bytes seen), a
/// payload whose writer keeps the pipe open is accepted, and an oversized payload records its
/// real size.
#[test]
fn the_hook_read_is_bounded_in_time_and_size() {
    let s = Server::start("hookread");
    let pane = s.silent_agent("claude");
    let spawn = |stdin: Stdio| {
        let mut c = Command::new(BIN);
        c.args(["hook", "claude"])
            .env("TMUX", s.tmux_env())
            .env("TMUX_PANE", &pane)
            .stdin(stdin)
            .stdout(Stdio::null());
        s.env(&mut c);
        c.spawn().unwrap()
    };
    let exits = |c: &mut std::process::Child| wait_until(30, || c.try_wait().unwrap().is_some());
    // </dev/zero: endless.
    let mut c = spawn(Stdio::from(std::fs::File::open("/dev/zero").unwrap()));
    let ended = exits(&mut c);
    if !ended {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(ended, "hook claude </dev/zero did not return");
    // A whole payload, the writer keeps the pipe open (as `sleep 60 |` would).
    let mut c = spawn(Stdio::piped());
    let mut w = c.stdin.take().unwrap();
    w.write_all(br#"{"session_id":"open","hook_event_name":"Stop"}"#)
        .unwrap();
    let ended = exits(&mut c);
    drop(w);
    let _ = c.wait();
    assert!(ended, "the hook waited for its writer to close stdin");
    // 3 MiB, closed: too large, with its real size.
    let mut c = spawn(Stdio::piped());
    let mut w = c.stdin.take().unwrap();
    let big = vec![b' '; 3 << 20];
    let _ = w.write_all(&big);
    drop(w);
    assert!(exits(&mut c));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(s.spool_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["reject"], "too_large_unterminated");
    assert!(lines[0]["size"].as_u64().unwrap() > 1 << 20);
    assert_eq!(lines[1]["payload"]["session_id"], "open");
    assert!(lines[1]["reject"].is_null());
    assert_eq!(lines[2]["reject"], "too_large");
    assert_eq!(lines[2]["size"].as_u64(), Some(3 << 20));
}

fn nested(depth: usize) -> String {
    format!(
        "{{\"session_id\":\"d1\",\"hook_event_name\":\"Stop\",\"x\":{}1{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// Item 8: one nesting limit for the hook and the daemon. A payload too deep for the limit is
/// refused by the hook with `too_deep` (not by the daemon's parser as a malformed envelope);
/// one just within it is applied.
#[test]
fn hook_and_daemon_share_one_nesting_limit() {
    let (s, pane) = Server::with_agent("depth", "claude");
    s.claude(&pane, claude::prompt("d1", "x"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    s.claude(&pane, nested(126));
    // `nested(n)` is n + 1 deep (the payload object holds the arrays).
    s.claude(&pane, nested(98));
    s.wait_pane(&pane, "@agtmux_state", "idle", 20);
    let reasons = s.rejected_reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("rejected_by_hook: too_deep"),
        "{reasons:?}"
    );
    let store = Store::open(&s.db_path()).unwrap();
    let by = store.event_count_by_status().unwrap();
    assert_eq!(by.get(&EventStatus::Accepted).copied(), Some(2), "{by:?}");
}

/// Item 5: a hook that cannot write the spool leaves a trace: the daemon's status and
/// `doctor` say hooks are failing and why; the next hook that writes clears it.
#[test]
fn an_unwritable_spool_is_reported_by_the_daemon_and_doctor() {
    let (s, pane) = Server::with_agent("spoolfail", "claude");
    // The hook's state dir lies under a regular file: no spool can be created there.
    let blocker = s.dir.join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let mut c = Command::new(BIN);
    c.args(["hook", "claude"])
        .env("TMUX", s.tmux_env())
        .env("TMUX_PANE", &pane);
    s.env(&mut c);
    c.env("AGTMUX_STATE_DIR", blocker.join("state"));
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"session_id":"f","hook_event_name":"Stop"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
    let st = s.wait_global(
        "@agtmux_daemon",
        |v| v.contains("hooks:spool_write_failed"),
        20,
    );
    assert!(st.contains("degraded"), "{st}");
    let o = s.agtmux(&["doctor"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("hooks cannot write the spool") && text.contains("not-a-dir"),
        "{text}"
    );
    assert_ne!(o.status.code(), Some(0));
    // A hook that writes clears it.
    s.claude(&pane, claude::prompt("f", "x"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    s.wait_global(
        "@agtmux_daemon",
        |v| !v.contains("hooks:spool_write_failed"),
        20,
    );
}

/// Item 8: `pane_state_v2` keeps rows of live panes only: a closed pane's row goes while the
/// daemon runs, and rows of panes closed while it was down go at its start.
#[test]
fn pane_rows_of_gone_panes_are_pruned() {
    let mut s = Server::start("prunerows");
    let panes: Vec<String> = (0..6).map(|_| s.silent_agent("claude")).collect();
    s.start_daemon();
    for (i, p) in panes.iter().enumerate() {
        s.hook(
            "claude",
            p,
            format!(r#"{{"session_id":"p{i}","hook_event_name":"UserPromptSubmit","prompt":"x"}}"#)
                .as_bytes(),
        );
    }
    for p in &panes {
        s.wait_pane(p, "@agtmux_state", "running", 20);
    }
    let all = pane_rows(&s);
    assert!(all >= 6, "{all}");
    s.tmux(&["kill-pane", "-t", &panes[0]]);
    s.tmux(&["kill-pane", "-t", &panes[1]]);
    assert!(
        wait_until(30, || pane_rows(&s) == all - 2),
        "rows {} of {all}\n{}",
        pane_rows(&s),
        s.log_tail()
    );
    s.kill_daemon_hard();
    s.tmux(&["kill-pane", "-t", &panes[2]]);
    s.tmux(&["kill-pane", "-t", &panes[3]]);
    s.start_daemon();
    assert!(
        wait_until(30, || pane_rows(&s) == all - 4),
        "rows {} of {all}\n{}",
        pane_rows(&s),
        s.log_tail()
    );
}

/// Item 3: a hook fired by a pane's new process right after `respawn-pane`, before the daemon
/// saw the new pane process, is checked against a refreshed registry, not rejected as coming
/// from another process.
#[test]
fn a_hook_right_after_respawn_pane_is_applied() {
    let (s, pane) = Server::with_agent("respawn", "claude");
    s.claude(&pane, claude::start("a1"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 20);
    let (cmd, pidf) = agent_command(&s, claude::permission("a2"), None);
    s.tmux(&["respawn-pane", "-k", "-t", &pane, &cmd]);
    agent_pid(&pidf);
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 20);
    assert!(
        !s.rejected_reasons()
            .iter()
            .any(|r| r.starts_with("pane_process_mismatch")),
        "{:?}",
        s.rejected_reasons()
    );
}

/// Issue 16 (follow-up): a hook fired outside every pane of this server (here: by the test,
/// with the pane's id in `TMUX_PANE`) cannot speak for a pane whose agent is known. The pane's
/// process is `claude` (an agent by name) and its own hooks, fired inside it, anchored it to
/// that process: the outside hook is rejected with its reason, never applied to the pane by its
/// claimed id.
#[test]
fn a_hook_from_outside_every_pane_does_not_drive_an_agent_pane() {
    let mut s = Server::start("outside");
    s.start_daemon();
    let (cmd, pidf) = agent_command(&s, claude::prompt("in1", "x"), None);
    // The pane's own process is the agent, `claude` by name (as `silent_agent`).
    let pane = s.new_pane(&cmd.replace("exec -a myagent", "exec -a claude"));
    let agent = agent_pid(&pidf);
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    hook_as_server(
        &s,
        &s.server_pid(),
        &pane,
        br#"{"session_id":"in1","hook_event_name":"PermissionRequest","tool_name":"Bash"}"#,
    );
    s.wait_rejected("not_in_pane", |n| n > 0);
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "running");
    assert!(
        s.log().contains("not_in_pane"),
        "the reason is logged\n{}",
        s.log_tail()
    );
    kill9(agent);
}
