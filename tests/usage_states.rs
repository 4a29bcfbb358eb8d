//! Issue 23 end to end on a private tmux server: the real `agtmux hook claude` → daemon →
//! pane options, for the states no tool showed before: a usage limit with its reset time
//! (and the pane back to idle when it passes), background work after the turn, compaction,
//! and an API retry's "retrying k/n" read from the screen under deterministic evidence.
mod support;
use serde_json::json;
use support::*;

fn api_pane(s: &Server, pane: &str) -> serde_json::Value {
    s.api("get", json!({"pane": pane}))["result"].clone()
}

#[test]
fn a_usage_limit_shows_its_reset_and_ends_when_the_reset_passes() {
    let (s, pane) = Server::with_agent("limit", "claude");
    s.claude(&pane, claude::prompt("s-lim", "go"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    // Claude prints the reset to the minute: take the next whole minute (or the one after,
    // so the limit stays on for at least 10 s), in UTC as `(UTC)` says.
    let now_s = now_s();
    let mut reset = (now_s / 60 + 1) * 60;
    if reset - now_s < 10 {
        reset += 60;
    }
    let msg = session_limit_message(reset);
    s.claude(
        &pane,
        json!({"session_id":"s-lim","hook_event_name":"StopFailure","error":"rate_limit",
               "last_assistant_message": msg}),
    );
    s.wait_pane(&pane, "@agtmux_state", "limited", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_attention_kind"), "limit");
    assert_eq!(s.pane_opt(&pane, "@agtmux_until"), reset.to_string());
    let hm = format!("{:02}:{:02}", (reset % 86_400) / 3600, (reset % 3600) / 60);
    assert_eq!(
        s.pane_opt(&pane, "@agtmux_detail"),
        format!("limit until {hm}")
    );
    assert_eq!(s.pane_opt(&pane, "@agtmux_icon"), "⧖");
    let summary = s.global_opt("@agtmux_attention");
    assert!(summary.contains(&format!("⧖1 until {hm}")), "{summary}");
    let counts = s.global_opt("@agtmux_counts");
    assert!(counts.contains("limited=1"), "{counts}");
    // ls shows it on the pane's line; explain names it.
    let (_, ls) = s.agtmux_code_out(&["ls"]);
    assert!(
        ls.contains("limited") && ls.contains(&format!("limit until {hm}")),
        "{ls}"
    );
    let (_, explain) = s.agtmux_code_out(&["explain", &pane]);
    assert!(
        explain.contains(&format!(
            "detail: limit until {hm} (until_ms={})",
            reset * 1000
        )),
        "{explain}"
    );
    let p = api_pane(&s, &pane);
    assert_eq!(p["until_ms"], json!(reset * 1000), "{p}");
    // The reset passes: ready again, with nothing left of the limit.
    s.wait_pane(&pane, "@agtmux_state", "idle", 150);
    assert_eq!(s.pane_opt(&pane, "@agtmux_until"), "");
    assert_eq!(s.pane_opt(&pane, "@agtmux_detail"), "");
    assert_ne!(s.pane_opt(&pane, "@agtmux_attention_kind"), "limit");
}

#[test]
fn a_plain_rate_limit_failure_is_an_error_not_a_limit() {
    let (s, pane) = Server::with_agent("ratelim", "claude");
    s.claude(&pane, claude::prompt("s-rl", "go"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    s.claude(&pane,
        json!({"session_id":"s-rl","hook_event_name":"StopFailure","error":"rate_limit",
               "last_assistant_message":"API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"}),
    );
    s.wait_pane(&pane, "@agtmux_state", "error", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_until"), "");
}

#[test]
fn background_work_keeps_an_idle_pane_from_looking_done_until_it_ends() {
    let (s, pane) = Server::with_agent("bg", "claude");
    s.claude(&pane, claude::prompt("s-bg", "run it in the background"));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    let task = json!({"id":"b1","type":"shell","status":"running","description":"sleep 30"});
    s.claude(
        &pane,
        claude::ev("s-bg", "Stop", json!({"background_tasks": [task]})),
    );
    s.wait_pane(&pane, "@agtmux_background", "1", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "idle");
    assert_eq!(s.pane_opt(&pane, "@agtmux_icon"), "◐");
    assert_eq!(s.pane_opt(&pane, "@agtmux_detail"), "1 background");
    // Not "done": the pane is unseen, yet nothing finished.
    assert_eq!(s.pane_opt(&pane, "@agtmux_attention_kind"), "");
    // The shell ends: Claude runs a turn by itself and stops with no background task left.
    let done = concat!(
        "<task-notification>\n<task-id>b1</task-id>\n",
        "<status>completed</status>\n</task-notification>"
    );
    s.claude(&pane, claude::prompt("s-bg", done));
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    s.claude(
        &pane,
        claude::ev("s-bg", "Stop", json!({"background_tasks": []})),
    );
    s.wait_pane(&pane, "@agtmux_attention_kind", "done", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_background"), "");
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "idle");
    assert_eq!(s.pane_opt(&pane, "@agtmux_icon"), "✓");
}

#[test]
fn compaction_is_running_with_its_detail_and_a_manual_one_ends_at_the_prompt() {
    let (s, pane) = Server::with_agent("compact", "claude");
    s.claude(&pane, claude::start("s-c"));
    s.wait_pane(&pane, "@agtmux_state", "idle", 20);
    s.claude(
        &pane,
        claude::ev(
            "s-c",
            "PreCompact",
            json!({"trigger": "manual", "custom_instructions": ""}),
        ),
    );
    s.wait_pane(&pane, "@agtmux_detail", "compacting", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "running");
    s.claude(
        &pane,
        claude::ev("s-c", "SessionStart", json!({"source": "compact"})),
    );
    s.claude(
        &pane,
        claude::ev(
            "s-c",
            "PostCompact",
            json!({"trigger": "manual", "compact_summary": "…"}),
        ),
    );
    s.wait_pane(&pane, "@agtmux_state", "idle", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_detail"), "");
}

#[test]
fn an_api_retry_on_screen_adds_its_attempt_to_a_running_pane() {
    let mut s = Server::start("retry");
    // Claude's screen while it retries (docs/usage-states.md "Retries"): no hook says so.
    let rule = "─".repeat(60);
    let screen = format!(
        "❯ hi\\n\\n✻ API error · Retrying in 7s · attempt 3/10\\n{rule}\\n❯ \\n{rule}\\n  esc to interrupt\\n"
    );
    let pane = s.new_pane(&format!(
        "bash -c 'printf \"{screen}\"; exec -a claude sleep 100000'"
    ));
    s.start_daemon();
    s.claude(&pane, claude::prompt("s-r", "hi"));
    s.wait_pane(&pane, "@agtmux_detail", "retrying 3/10", 30);
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "running");
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    let (_, ls) = s.agtmux_code_out(&["ls"]);
    assert!(ls.contains("retrying 3/10"), "{ls}");
    // choose-tree's pane row (the format agtmux.tmux binds) puts it before the title.
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agtmux.tmux")).unwrap();
    let fmt = script
        .lines()
        .find_map(|l| l.strip_prefix("tree_format='"))
        .unwrap()
        .trim_end_matches('\'');
    let row = s.tmux_out(&["display", "-p", "-t", &pane, fmt]);
    assert!(row.contains("claude running retrying 3/10 · "), "{row}");
    // The turn ends: the detail goes with the running state.
    s.claude(
        &pane,
        claude::ev("s-r", "Stop", json!({"background_tasks": []})),
    );
    s.wait_pane(&pane, "@agtmux_state", "idle", 20);
    assert_eq!(s.pane_opt(&pane, "@agtmux_detail"), "");
}
