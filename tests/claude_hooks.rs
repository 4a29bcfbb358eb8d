//! Issue 3: Claude hooks end to end — the real `agtmux hook claude` → spool → gateway →
//! SQLite → pane options, on a private tmux server.
mod support;
use agtmux::store::{EventStatus, Store};
use serde_json::{Value, json};
use support::*;

fn replay(file: &str) {
    let (s, pane) = Server::with_agent("replay", "claude");
    let text = std::fs::read_to_string(fixture(&format!("claude/hooks/{file}"))).unwrap();
    for (i, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let payload = rec["payload"].to_string();
        let event = rec["event"].as_str().unwrap();
        let tool = rec["payload"]["tool_name"].as_str().unwrap_or("");
        let mut want = rec["expected_activity_after"].as_str().unwrap().to_string();
        // Documented choice: a question tool means waiting_input from its
        // PreToolUse on, a few ms before its PermissionRequest; the recording says running.
        if event == "PreToolUse" && tool == "AskUserQuestion" {
            want = "waiting_input".into();
        }
        let out = s.hook("claude", &pane, payload.as_bytes());
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "hook must exit 0 silently"
        );
        // The step was applied: its event is stored (the daemon stores and resolves in one
        // pass, so from now on the read model has its effect). Only then is the state checked;
        // a step that keeps the state of the one before would otherwise check nothing.
        let mut stored = 0;
        assert!(
            wait_until(20, || {
                stored = s.stored_events();
                stored == i as i64 + 1
            }),
            "line {i} {event}: {stored} events stored, wanted {}\n{}",
            i + 1,
            s.log_tail()
        );
        if want == "none" {
            // SessionEnd: the agent leaves the pane, as /exit does.
            s.tmux(&["respawn-pane", "-k", "-t", &pane, "sleep 100000"]);
            s.wait_pane(&pane, "@agtmux_presence", "", 15);
            continue;
        }
        let mut got = String::new();
        assert!(
            wait_until(10, || {
                got = s.api_state(&pane);
                got == want
            }),
            "line {i} {event}: read model says {got:?}, wanted {want:?}"
        );
        s.wait_pane(&pane, "@agtmux_state", &want, 10);
        assert_eq!(
            s.pane_opt(&pane, "@agtmux_evidence"),
            "deterministic",
            "line {i} {event}"
        );
    }
    // Every hook call is stored once, accepted.
    let store = Store::open(&s.db_path()).unwrap();
    assert_eq!(store.event_count().unwrap() as usize, text.lines().count());
}

#[test]
fn replays_the_main_recorded_session() {
    replay("claude_main.jsonl");
}

#[test]
fn replays_stop_failure_as_error() {
    replay("claude_stopfailure.jsonl");
}

#[test]
fn replays_the_supplementary_session_with_questions() {
    replay("supp_claude.jsonl");
}

#[test]
fn hook_returns_zero_with_the_daemon_down_and_the_event_lands_later() {
    let mut s = Server::start("down");
    let pane = s.silent_agent("claude");
    let out = s.hook(
        "claude",
        &pane,
        br#"{"session_id":"s1","hook_event_name":"PermissionRequest","tool_name":"Bash"}"#,
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    s.start_daemon();
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
}

#[test]
fn outside_tmux_the_hook_records_nothing() {
    let s = Server::start("notmux");
    let mut c = std::process::Command::new(BIN);
    c.args(["hook", "claude"])
        .env_remove("TMUX")
        .env_remove("TMUX_PANE");
    s.env(&mut c);
    let out = c.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(out.status.success());
    assert!(!s.state_dir.exists() || std::fs::read_dir(&s.state_dir).unwrap().next().is_none());
}

#[test]
fn bad_input_is_rejected_with_reasons_and_the_daemon_keeps_going() {
    use std::io::Write;
    let (s, pane) = Server::with_agent("bad", "claude");
    // Malformed JSON and an oversized payload through the real hook.
    s.hook("claude", &pane, b"{not json");
    let big = format!(
        "{{\"session_id\":\"s\",\"hook_event_name\":\"Stop\",\"x\":\"{}\"}}",
        "a".repeat(2 << 20)
    );
    s.claude(&pane, big);
    // A pane that does not exist on this server.
    s.claude("%999", claude::stop("s9"));
    // A line cut short, and binary garbage, written straight into the spool.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.spool_path())
            .unwrap();
        f.write_all(b"{\"v\":1,\"source\":\"cla\n").unwrap();
        f.write_all(&[0xff, 0x00, 0xfe, b'{', 0x80, b'\n']).unwrap();
    }
    // Then a good event: the daemon still applies it.
    s.claude(&pane, claude::ev("s1", "UserPromptSubmit", json!({})));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    let store = Store::open(&s.db_path()).unwrap();
    assert!(wait_until(10, || store.event_count().unwrap() == 6));
    let by = store.event_count_by_status().unwrap();
    assert_eq!(
        by.get(&EventStatus::Rejected).copied().unwrap_or(0),
        5,
        "{by:?}"
    );
    assert_eq!(
        by.get(&EventStatus::Accepted).copied().unwrap_or(0),
        1,
        "{by:?}"
    );
    assert_prefixes(
        &s.rejected_reasons(),
        &[
            "malformed_json",
            "rejected_by_hook: too_large",
            "unknown_pane",
            "malformed_envelope",
            "malformed_envelope",
        ],
    );
    let log = std::fs::read_to_string(s.server_dir().join("daemon.log")).unwrap();
    assert!(log.matches("ingest_rejected").count() >= 5, "{log}");
}

#[test]
fn kill_9_mid_burst_applies_every_event_exactly_once() {
    let (mut s, pane) = Server::with_agent("burst", "claude");
    let spool = s.spool_path();
    let tmux = s.tmux_env();
    let socket = tmux.split(',').next().unwrap().to_string();
    const N: usize = 10_000;
    // The hook's own envelope code, in-process, so 10 000 events take no time to send.
    let writer = {
        let spool = spool.clone();
        let pane = pane.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let ev = if i % 2 == 0 {
                    "UserPromptSubmit"
                } else {
                    "Stop"
                };
                let p =
                    format!("{{\"session_id\":\"burst\",\"hook_event_name\":\"{ev}\",\"n\":{i}}}");
                let line = agtmux::cli::hook::envelope_line(
                    "claude",
                    &socket,
                    Some(pane.clone()),
                    p.as_bytes(),
                );
                agtmux::sources::spool::append(&spool, &line).unwrap();
            }
        })
    };
    let store = Store::open(&s.db_path()).unwrap();
    assert!(
        wait_until(30, || store.event_count().unwrap_or(0) > 1_000),
        "daemon ingests"
    );
    s.kill_daemon_hard();
    writer.join().unwrap();
    let mid = store.event_count().unwrap();
    assert!(mid < N as u64, "killed mid-burst ({mid} of {N} stored)");
    s.start_daemon();
    assert!(
        wait_until(60, || store.event_count().unwrap() == N as u64),
        "all {N} stored once, got {}",
        store.event_count().unwrap()
    );
    let by = store.event_count_by_status().unwrap();
    assert_eq!(
        by.get(&EventStatus::Accepted).copied().unwrap_or(0),
        N as u64,
        "{by:?}"
    );
    // The last event was a Stop.
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    // One more event after the burst: once it is stored, the daemon has read the whole spool,
    // and nothing of the burst was stored twice.
    s.claude(&pane, claude::ev("burst", "UserPromptSubmit", json!({})));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    assert!(wait_until(10, || store.event_count().unwrap() > N as u64));
    assert_eq!(
        store.event_count().unwrap(),
        N as u64 + 1,
        "no duplicates after settling"
    );
}

#[test]
fn the_title_comes_from_the_transcript_and_the_binding_is_recorded() {
    let (s, pane) = Server::with_agent("title", "claude");
    let transcript = s.dir.join("t1.jsonl");
    std::fs::write(&transcript, "{\"type\":\"summary\",\"summary\":\"Old summary\"}\n{\"type\":\"ai-title\",\"aiTitle\":\"Refactor # the parser\"}\n").unwrap();
    let payload = serde_json::json!({
        "session_id": "t1", "hook_event_name": "SessionStart", "source": "startup",
        "transcript_path": transcript.display().to_string(),
    });
    s.claude(&pane, payload);
    // `#` is escaped for tmux formats, so the option holds `##`.
    s.wait_pane(&pane, "@agtmux_title", "Refactor ## the parser", 10);
    // Appended later: a custom title wins, read incrementally on the next event.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .unwrap()
        .write_all(b"{\"type\":\"custom-title\",\"customTitle\":\"My work\"}\n")
        .unwrap();
    let payload = serde_json::json!({
        "session_id": "t1", "hook_event_name": "UserPromptSubmit",
        "transcript_path": transcript.display().to_string(),
    });
    s.claude(&pane, payload);
    s.wait_pane(&pane, "@agtmux_title", "My work", 10);
    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    assert!(wait_until(10, || db
        .query_row(
            "SELECT count(*) FROM binding_link_v2 WHERE session_key='t1' AND pane_id=?1",
            [&pane],
            |r| r.get::<_, i64>(0)
        )
        .unwrap()
        == 1));
}

#[test]
fn a_corrupt_database_is_set_aside_and_a_locked_one_is_served_from_memory() {
    // Corrupt: moved aside, a fresh database is used, events are stored.
    let mut s = Server::start("corrupt");
    let pane = s.silent_agent("claude");
    std::fs::create_dir_all(s.server_dir()).unwrap();
    std::fs::write(s.db_path(), vec![0x5au8; 8192]).unwrap();
    s.start_daemon();
    s.claude(&pane, claude::ev("c1", "UserPromptSubmit", json!({})));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    assert!(
        s.has_corrupt_copy(),
        "corrupt file kept aside for inspection"
    );
    assert!(s.log_tail().contains("store_corrupt"));
    let store = Store::open(&s.db_path()).unwrap();
    assert_eq!(store.event_count().unwrap(), 1);
    drop(store);

    // Locked: the daemon keeps serving from memory and says so, then recovers.
    let mut l = Server::start("locked");
    let pane = l.silent_agent("claude");
    drop(Store::open(&l.db_path()).unwrap());
    let holder = rusqlite::Connection::open(l.db_path()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    l.start_daemon();
    l.wait_global("@agtmux_daemon", |v| v.contains("store:locked"), 20);
    l.claude(&pane, claude::permission("l1"));
    l.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    l.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
}

#[test]
fn the_state_dir_with_prompts_in_it_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The hook may come first (the daemon not started yet): it makes the dir private.
    let mut s = Server::start("private");
    let pane = s.silent_agent("claude");
    let out = s.hook(
        "claude",
        &pane,
        br#"{"session_id":"p1","hook_event_name":"UserPromptSubmit","prompt":"a secret plan"}"#,
    );
    assert!(out.status.success());
    assert_eq!(mode(&s.server_dir()), 0o700);
    s.start_daemon();
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    assert_eq!(mode(&s.server_dir()), 0o700);
    drop(s);

    // An older install left it 0755 (the database and log world-readable): the daemon
    // tightens it.
    let mut s = Server::start("private2");
    std::fs::create_dir_all(s.server_dir()).unwrap();
    std::fs::set_permissions(s.server_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.start_daemon();
    assert_eq!(mode(&s.server_dir()), 0o700);
    assert!(s.db_path().exists());
}

fn interrupt_line(session: &str, uuid: &str, text: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"parentUuid":"p","isSidechain":false,"type":"user",
            "message":{"role":"user","content":[{"type":"text","text":text}]},
            "uuid":uuid,"timestamp":iso_now(),"sessionId":session})
    )
}

/// Appends Claude's interrupt line (`text`, entry `uuid` of `session`) to transcript `tx`.
fn interrupt(tx: &std::path::Path, session: &str, uuid: &str, text: &str) {
    append(tx, &interrupt_line(session, uuid, text));
}

fn append(p: &std::path::Path, s: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn event_rows(s: &Server, source: &str) -> Vec<(String, String, Option<String>)> {
    let Ok(c) = rusqlite::Connection::open(s.db_path()) else {
        return Vec::new();
    };
    let Ok(mut st) = c
        .prepare("SELECT name, status, reason FROM events_raw_v2 WHERE source = ?1 ORDER BY rowid")
    else {
        return Vec::new();
    };
    st.query_map([source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn an_esc_that_fires_no_hook_is_read_from_the_transcript_at_once() {
    let (s, pane) = Server::with_agent("transcript", "claude");
    let tx = s.dir.join("tx1.jsonl");
    // An interrupt from before the daemon looked: history, never applied.
    std::fs::write(
        &tx,
        interrupt_line("tx1", "old", "[Request interrupted by user]"),
    )
    .unwrap();
    let prompt = |session: &str, path: &std::path::Path| {
        serde_json::json!({"session_id": session, "hook_event_name": "UserPromptSubmit",
            "prompt": "go", "transcript_path": path, "cwd": "/tmp"})
        .to_string()
    };
    s.claude(&pane, prompt("tx1", &tx));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");

    // Esc mid-turn: no hook, one transcript line. The screen (a silent process) never shows
    // an idle prompt, so only the transcript can make this idle.
    interrupt(&tx, "tx1", "u1", "[Request interrupted by user]");
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    let (ok, ex) = {
        let o = s.agtmux(&["explain", &pane, "--json"]);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(ok, "{ex}");
    let ex: Value = serde_json::from_str(&ex).unwrap();
    assert_eq!(ex["resolution"]["winner"], "claude_transcript", "{ex:#}");

    // The next prompt wins again (a newer hook), then an Esc on a permission dialog.
    s.claude(&pane, prompt("tx1", &tx));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    let perm = serde_json::json!({"session_id":"tx1","hook_event_name":"PermissionRequest",
        "tool_name":"Bash","transcript_path":tx});
    s.claude(&pane, perm);
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    interrupt(
        &tx,
        "tx1",
        "u2",
        "[Request interrupted by user for tool use]",
    );
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    assert_eq!(s.pane_opt(&pane, "@agtmux_attention_kind"), "");

    // `/clear`: the pane holds a new session. A late line of the old one moves nothing.
    let tx2 = s.dir.join("tx2.jsonl");
    std::fs::write(&tx2, b"").unwrap();
    let clear = serde_json::json!({"session_id":"tx2","hook_event_name":"SessionStart",
        "source":"clear","transcript_path":tx2});
    s.claude(&pane, clear);
    s.claude(&pane, prompt("tx2", &tx2));
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    interrupt(&tx, "tx1", "u3", "[Request interrupted by user]");
    assert!(
        wait_until(10, || event_rows(&s, "claude_transcript").len() >= 3),
        "{:?}\n{}",
        event_rows(&s, "claude_transcript"),
        s.log_tail()
    );
    let rows = event_rows(&s, "claude_transcript");
    assert_eq!(rows.len(), 3, "the old line was never read: {rows:?}");
    assert_eq!(rows[0].0, "transcript/interrupted");
    assert_eq!(rows[0].1, "accepted");
    assert_eq!(rows[1].0, "transcript/interrupted_tool_use");
    assert_ne!(rows[2].1, "accepted", "{rows:?}");
    assert_eq!(
        rows[2].2.as_deref(),
        Some("session_not_current"),
        "{rows:?}"
    );
    assert_eq!(s.pane_opt(&pane, "@agtmux_state"), "running");
}

/// The same Esc, with the kernel's file watch unavailable (forced here; in the field: the
/// inotify watch limit, too many open files on macOS, a mount without notifications): the
/// transcript is stat-polled and the turn still ends, a second later at most.
#[test]
fn without_a_kernel_file_watch_the_transcript_is_polled_and_the_esc_still_counts() {
    let mut s = Server::start("txpoll");
    let pane = s.silent_agent("claude");
    let child = s
        .daemon_cmd()
        .env("AGTMUX_FILE_WATCH", "poll")
        .spawn()
        .unwrap();
    s.daemon = Some(child);
    s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    let tx = s.dir.join("txp.jsonl");
    std::fs::write(&tx, "").unwrap();
    let prompt = serde_json::json!({"session_id": "txp", "hook_event_name": "UserPromptSubmit",
        "prompt": "go", "transcript_path": tx, "cwd": "/tmp"})
    .to_string();
    s.claude(&pane, prompt);
    s.wait_pane(&pane, "@agtmux_state", "running", 10);
    interrupt(&tx, "txp", "p1", "[Request interrupted by user]");
    s.wait_pane(&pane, "@agtmux_state", "idle", 10);
    assert_eq!(s.pane_opt(&pane, "@agtmux_evidence"), "deterministic");
    let log = std::fs::read_to_string(s.server_dir().join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("watch_unavailable what=transcripts reason=AGTMUX_FILE_WATCH=poll"),
        "{log}"
    );
}
