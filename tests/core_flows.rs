//! Issue 4 flows on a private tmux server: pane reuse and generations, restart and restore,
//! deterministic outage → fallback → re-promotion.
mod support;
use serde_json::json;
use support::*;

#[test]
fn a_reused_pane_gets_a_new_generation_and_late_events_of_the_old_agent_are_ignored() {
    let (s, pane) = Server::with_agent("reuse", "claude");
    s.claude(&pane, claude::start("old"));
    s.claude(&pane, claude::permission("old"));
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    // The first agent dies without a SessionEnd; a new one starts in the same pane.
    s.tmux(&[
        "respawn-pane",
        "-k",
        "-t",
        &pane,
        "bash -c 'exec -a claude sleep 100001'",
    ]);
    assert!(
        wait_until(10, || s.log_tail().contains("generation")),
        "generation bump logged\n{}",
        s.log_tail()
    );
    s.claude(&pane, claude::start("new"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    // A late event of the old session must not touch the new instance.
    s.claude(&pane, claude::ev("old", "UserPromptSubmit", json!({})));
    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    assert!(wait_until(10, || {
        db.query_row(
            "SELECT count(*) FROM events_raw_v2 WHERE session_key='old' AND status='rejected'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }));
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "idle");
}

/// A server whose daemon published an approval for its agent pane (session `sid`), then was
/// killed -9: the server and the pane.
fn approval_then_daemon_killed(tag: &str, sid: &str) -> (Server, String) {
    let (mut s, pane) = Server::with_agent(tag, "claude");
    s.claude(&pane, claude::permission(sid));
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    s.kill_daemon_hard();
    (s, pane)
}

#[test]
fn after_a_daemon_restart_the_last_state_is_back_before_any_new_event() {
    let (mut s, pane) = approval_then_daemon_killed("restore", "r1");
    // Wipe what tmux shows, so only the daemon's restore can bring it back.
    for opt in ["@agtmux_state", "@agtmux_presence", "@agtmux_evidence"] {
        s.tmux(&["set-option", "-pu", "-t", &pane, opt]);
    }
    s.tmux(&["set-option", "-gu", "@agtmux_daemon"]);
    s.start_daemon();
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    s.wait_pane(&pane, "@agtmux_evidence", "deterministic", 5);
}

#[test]
fn a_new_server_on_the_same_socket_inherits_nothing() {
    let (mut s, pane) = approval_then_daemon_killed("newserver", "n1");
    s.tmux(&["kill-server"]);
    // Same socket name, new server: the same pane id %1 again, now a plain agent.
    // The old server needs a moment to go away before the socket can be reused.
    assert!(wait_until(10, || s.new_session().status.success()));
    let pane2 = s.silent_agent("claude");
    assert_eq!(pane2, pane, "tmux reuses pane ids on a new server");
    s.start_daemon();
    s.wait_pane(&pane2, "@agtmux_presence", "managed", 10);
    // Restoring is over (it runs before the first publish; logged even when it restores
    // nothing), and the read model has the pane: only now is its state worth checking.
    s.wait_log("state_restored panes=0", 10);
    assert!(wait_until(10, || !s.api_state(&pane2).is_empty()));
    assert_ne!(
        s.api_state(&pane2),
        "waiting_approval",
        "old state leaked into a new server"
    );
    assert_ne!(
        s.pane_opt(&pane2, "@agtmux_state"),
        "waiting_approval",
        "old state leaked into a new server"
    );
}

#[test]
fn hooks_source_down_falls_back_to_the_screen_and_re_promotes() {
    let mut s = Server::start("fallback");
    // The screen says "running" (a recorded Claude spinner screen); the hooks will say idle.
    let screen = fixture("screens/claude/claude_03_running_4s.txt");
    let pane = s.new_pane(&format!(
        "cat {}; exec -a claude sleep 100000",
        screen.display()
    ));
    s.start_daemon();
    s.claude(&pane, claude::start("f1"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    s.wait_pane(&pane, "@agtmux_evidence", "deterministic", 5);
    // Break the spool: the hooks source cannot be read, so it is down.
    let spool = s.spool_path();
    std::fs::remove_file(&spool).unwrap();
    std::fs::create_dir(&spool).unwrap();
    s.wait_global("@agtmux_daemon", |v| v.contains("degraded"), 15);
    s.wait_pane(&pane, "@agtmux_evidence", "heuristic", 15);
    s.wait_pane(&pane, "@agtmux_state", "running", 15);
    // Repair it and send an event: deterministic evidence is back at once.
    std::fs::remove_dir(&spool).unwrap();
    s.claude(&pane, claude::stop("f1"));
    s.wait_pane(&pane, "@agtmux_evidence", "deterministic", 15);
    s.wait_pane(&pane, "@agtmux_state", "idle", 5);
    s.wait_global("@agtmux_daemon", |v| v.contains(" ok"), 15);
}

#[test]
fn an_agent_that_leaves_without_a_session_end_is_unmanaged() {
    // Codex `/exit` only disconnects its TUI: no SessionEnd, no thread/closed. The process is
    // what says the agent left.
    let (s, pane) = Server::with_agent("left", "claude");
    s.claude(&pane, claude::start("l1"));
    s.wait_pane(&pane, "@agtmux_evidence", "deterministic", 10);
    s.tmux(&["respawn-pane", "-k", "-t", &pane, "sleep 100000"]);
    s.wait_pane(&pane, "@agtmux_presence", "", 15);
}
