//! C-004: pure mapping of one Codex hook payload (the stdin JSON of a `hooks.json` command) and
//! of one legacy `notify` argument (`agent-turn-complete`) to a [`NormalizedEvent`].
//!
//! WHY pure: the hook command only spools; the daemon maps. Facts it follows (observed on
//! codex-cli,
//! fixtures/codex/hooks, fixtures/codex/notify):
//! - Codex hooks run inside the shared app-server daemon, so `$TMUX_PANE` is the pane of the
//!   TUI that started the daemon, not necessarily the thread's pane. The pane is kept only as a
//!   hint in `pane_id`; binding is decided by `codex_correlate`.
//! - SessionStart fires at the first prompt (→ running); Interrupt fires on Esc, also Esc on an
//!   approval dialog (→ idle); an API error fires no hook.
//! - `request_user_input` fires only PreToolUse (no PermissionRequest) → waiting_input.
//! - `notify` also fires for internal title-generation threads: their `input-messages` start with
//!   "Generate a concise, single-line task title" → Ignore.
use super::hook_map::Call;
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::text::clip;
use crate::core::types::{Activity, Provider, SourceKind};
use serde_json::Value;

/// The first words of Codex's internal title-generation prompt.
pub(crate) const TITLE_PROMPT_PREFIX: &str = "Generate a concise, single-line task title";

const FROM: (SourceKind, Provider) = (SourceKind::CodexHooks, Provider::Codex);

/// Tool names that ask the user a question rather than run something.
const QUESTION_TOOLS: &[&str] = &["request_user_input", "AskUserQuestion"];

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Maps one Codex hook payload. `pane` is the hook's `$TMUX_PANE` (a hint only).
pub(crate) fn map_hook(payload: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    if !payload.is_object() {
        return Err("hook payload is not a JSON object".into());
    }
    let name = s(payload, "hook_event_name")
        .ok_or("hook payload has no hook_event_name")?
        .to_string();
    let session = crate::core::event::check_session_key(s(payload, "session_id"), "session_id")
        .map_err(|e| format!("{name}: {e}"))?;
    let tool = s(payload, "tool_name").map(str::to_string);
    let is_question = tool.as_deref().is_some_and(|t| QUESTION_TOOLS.contains(&t));
    let (signal, detail) = match name.as_str() {
        "SessionStart" => (
            Signal::Activity(Activity::Running),
            Some(format!(
                "session start ({}); Codex fires it at the first prompt",
                s(payload, "source").unwrap_or("?")
            )),
        ),
        "UserPromptSubmit" | "PreModelRequest" => (Signal::Activity(Activity::Running), None),
        "PreToolUse" if is_question => (Signal::Activity(Activity::WaitingInput), tool.clone()),
        "PreToolUse" | "PostToolUse" => (Signal::Activity(Activity::Running), tool.clone()),
        "PermissionRequest" if is_question => {
            (Signal::Activity(Activity::WaitingInput), tool.clone())
        }
        "PermissionRequest" => (Signal::Activity(Activity::WaitingApproval), tool.clone()),
        "Stop" => (Signal::Activity(Activity::Idle), None),
        // Issue 23: compaction. A manual `/compact` ends at the prompt; an automatic one goes
        // on with the turn.
        "PreCompact" => (
            Signal::Activity(Activity::Running),
            s(payload, "trigger").map(|t| format!("compaction ({t})")),
        ),
        "PostCompact" if s(payload, "trigger") == Some("manual") => (
            Signal::Activity(Activity::Idle),
            Some("compaction done (manual)".into()),
        ),
        "PostCompact" => (
            Signal::Activity(Activity::Running),
            s(payload, "trigger").map(|t| format!("compaction done ({t})")),
        ),
        "Interrupt" => (
            Signal::Activity(Activity::Idle),
            Some("interrupted (Esc)".into()),
        ),
        "SessionEnd" => (
            Signal::SessionEnd,
            s(payload, "reason").map(|r| format!("reason {r}")),
        ),
        other => (Signal::Ignore, Some(format!("unknown hook event {other}"))),
    };
    let title = s(payload, "session_title")
        .or_else(|| s(payload, "thread_name"))
        .map(str::to_string);
    let extra = crate::core::extras::EventExtra {
        work: (name == "PreCompact").then_some(crate::core::extras::Work::Compacting),
        ..Default::default()
    };
    Ok(NormalizedEvent {
        turn_id: s(payload, "turn_id").map(str::to_string),
        title,
        cwd: s(payload, "cwd").map(str::to_string),
        detail,
        extra,
        ..call.event(FROM, session, name, signal)
    })
}

/// True when a notify payload belongs to an internal title-generation thread.
pub(crate) fn is_title_generation(argv1: &Value) -> bool {
    argv1
        .get("input-messages")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .is_some_and(|m| m.trim_start().starts_with(TITLE_PROMPT_PREFIX))
}

/// Maps one legacy `notify` argument (`{"type":"agent-turn-complete", "thread-id", …}`).
/// Title-generation threads map to `Ignore`.
pub(crate) fn map_notify(argv1: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    if !argv1.is_object() {
        return Err("notify argument is not a JSON object".into());
    }
    let ty = s(argv1, "type").ok_or("notify argument has no type")?;
    let thread = crate::core::event::check_session_key(s(argv1, "thread-id"), "thread-id")
        .map_err(|e| format!("notify argument: {e}"))?;
    let (signal, detail) = if ty != "agent-turn-complete" {
        (Signal::Ignore, Some(format!("unknown notify type {ty}")))
    } else if is_title_generation(argv1) {
        (
            Signal::Ignore,
            Some("title-generation thread (internal)".to_string()),
        )
    } else {
        (
            Signal::Activity(Activity::Idle),
            s(argv1, "last-assistant-message").map(|m| clip(m, 120)),
        )
    };
    Ok(NormalizedEvent {
        turn_id: s(argv1, "turn-id").map(str::to_string),
        cwd: s(argv1, "cwd").map(str::to_string),
        detail,
        ..call.event(FROM, thread, format!("notify:{ty}"), signal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &str) -> Vec<Value> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn expected(rec: &Value) -> Signal {
        match rec["expected_activity_after"].as_str() {
            Some("none") => Signal::SessionEnd,
            Some(a) => Signal::Activity(Activity::parse(a).unwrap()),
            None => Signal::Ignore,
        }
    }

    #[test]
    fn recorded_hooks_map_to_the_activity_the_screen_showed() {
        let mut n = 0;
        for f in [
            "fixtures/codex/hooks/codex_main.jsonl",
            "fixtures/codex/hooks/supp_codex.jsonl",
        ] {
            for rec in lines(f) {
                let ev = map_hook(
                    &rec["payload"],
                    Call::new(Some(&"%3".into()), 1, format!("e{n}")),
                )
                .unwrap();
                assert_eq!(ev.signal, expected(&rec), "{f}: {}", rec["event"]);
                assert_eq!(
                    ev.session_key.as_deref(),
                    rec["payload"]["session_id"].as_str()
                );
                assert_eq!(ev.pane_id.as_deref(), Some("%3"));
                assert_eq!(ev.source, SourceKind::CodexHooks);
                n += 1;
            }
        }
        assert!(n > 40);
    }

    #[test]
    fn recorded_notify_calls_filter_title_threads() {
        let recs = lines("fixtures/codex/notify/codex_main.jsonl");
        let mut idle = 0;
        for rec in &recs {
            // A placeholder `$TMUX_PANE` (`%PANE`) never gets here: the spool rejects it
            // (`bad_pane_id`) before mapping.
            let ev = map_notify(&rec["argv1"], Call::new(Some(&"%3".into()), 1, "x")).unwrap();
            assert_eq!(ev.signal, expected(rec));
            assert_eq!(ev.pane_id.as_deref(), Some("%3"));
            if ev.signal == Signal::Activity(Activity::Idle) {
                idle += 1;
            }
        }
        assert_eq!(idle, 1);
    }

    #[test]
    fn bad_payloads_are_rejected_with_reasons() {
        let e = |v: Value| map_hook(&v, Call::new(None, 0, "i")).unwrap_err();
        assert!(e(serde_json::json!([1])).contains("not a JSON object"));
        assert!(e(serde_json::json!({"session_id":"s"})).contains("hook_event_name"));
        assert!(e(serde_json::json!({"hook_event_name":"Stop"})).contains("session_id"));
        let ok = map_hook(
            &serde_json::json!({"hook_event_name":"Weird","session_id":"s"}),
            Call::new(None, 0, "i"),
        )
        .unwrap();
        assert_eq!(ok.signal, Signal::Ignore);
        assert_eq!(ok.pane_id, None);
        assert!(
            map_notify(
                &serde_json::json!({"type":"agent-turn-complete"}),
                Call::new(None, 0, "i")
            )
            .is_err()
        );
    }
}
