//! C-005 `agtmux-source-claude-hooks`: maps one Claude Code hook payload to a normalized event.
//!
//! The mapping follows Claude Code's hook payloads as observed. Two facts shape it: a
//! PermissionRequest for
//! `AskUserQuestion`/`ExitPlanMode` is a question, not an approval; and subagent events carry
//! the parent's `session_id`, so they must never end the parent's turn.
use super::hook_map::{self, Call};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::extras::{EventExtra, Work, parse_reset};
use crate::core::types::{Activity, Provider, SourceKind};
use serde_json::Value;

const FROM: (SourceKind, Provider) = (SourceKind::ClaudeHooks, Provider::Claude);

/// Tools whose "permission" is really a question to the user.
const QUESTION_TOOLS: &[&str] = &["AskUserQuestion", "ExitPlanMode"];

/// Map one payload. `Err` is the reject reason (stored in `events_raw_v2`, logged).
pub(crate) fn map_hook(payload: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    let ts = call.ts;
    let head = hook_map::head(payload, "hook_event_name", "hook_event_name")?;
    let (name, session) = (head.name, head.session);
    let s = |k: &str| head.str(k);
    let tool = s("tool_name");
    let is_question = tool.is_some_and(|t| QUESTION_TOOLS.contains(&t));
    let subagent = head.obj.contains_key("agent_id");
    let act = |a| Signal::Activity(a);
    let usage_limit = (s("error") == Some("rate_limit"))
        .then(|| s("last_assistant_message"))
        .flatten()
        .filter(|m| is_usage_limit_text(m));
    let signal = match name {
        "SessionStart" => match s("source") {
            Some("compact") => Signal::Ignore,
            _ => act(Activity::Idle),
        },
        "UserPromptSubmit" | "PreCompact" => act(Activity::Running),
        // The compaction is over: a manual `/compact` leaves Claude at its prompt (no Stop
        // follows), an automatic one goes on with the turn.
        "PostCompact" if s("trigger") == Some("manual") => act(Activity::Idle),
        "PostCompact" => act(Activity::Running),
        "PreToolUse" if is_question && !subagent => act(Activity::WaitingInput),
        "PreToolUse" | "PostToolUse" | "PostToolUseFailure" => act(Activity::Running),
        "PermissionRequest" if is_question => act(Activity::WaitingInput),
        "PermissionRequest" => act(Activity::WaitingApproval),
        "Notification" => match s("notification_type") {
            Some("elicitation_dialog") => act(Activity::WaitingInput),
            // It fires ~6 s after PermissionRequest (also for AskUserQuestion), so it only
            // confirms what PermissionRequest already said.
            Some("permission_prompt") => Signal::Ignore,
            Some("idle_prompt") => act(Activity::Idle),
            _ => Signal::Ignore,
        },
        // A subagent's Stop would otherwise end the parent's turn.
        "Stop" if subagent => Signal::Ignore,
        "Stop" => act(Activity::Idle),
        "StopFailure" if subagent => Signal::Ignore,
        // The account's usage limit, not a transient 429: only the text tells them apart
        // (docs/usage-states.md "Usage limits").
        "StopFailure" if usage_limit.is_some() => act(Activity::Limited),
        "StopFailure" => act(Activity::Error),
        "SubagentStop" | "SubagentStart" => Signal::Ignore,
        // `/clear` ends the session and starts a new one in the same pane.
        "SessionEnd" if s("reason") == Some("clear") => Signal::Ignore,
        "SessionEnd" => Signal::SessionEnd,
        _ => Signal::Ignore,
    };
    let detail = match name {
        "StopFailure" => s("error").map(str::to_string),
        "Notification" => s("notification_type").map(str::to_string),
        "SessionStart" => s("source").map(str::to_string),
        "SessionEnd" => s("reason").map(str::to_string),
        _ => tool.map(str::to_string),
    };
    let extra = EventExtra {
        until: usage_limit
            .and_then(|m| parse_reset(m, ts, crate::sys::clock::utc_offset_s(ts.div_euclid(1000)))),
        background: match name {
            "Stop" | "StopFailure" if !subagent => head
                .obj
                .get("background_tasks")
                .and_then(Value::as_array)
                .map(|a| u32::try_from(a.len()).unwrap_or(u32::MAX)),
            _ => None,
        },
        work: (name == "PreCompact").then_some(Work::Compacting),
    };
    Ok(NormalizedEvent {
        turn_id: s("prompt_id").map(str::to_string),
        title: s("session_title").map(str::to_string),
        cwd: s("cwd").map(str::to_string),
        detail,
        extra,
        ..call.event(FROM, session, name.to_string(), signal)
    })
}

/// Claude's usage-limit message (`You've hit your session limit · resets 7pm (UTC)`), as
/// opposed to a plain 429's "Server is temporarily limiting requests (not your usage limit)".
fn is_usage_limit_text(m: &str) -> bool {
    (m.starts_with("You've hit your") || m.starts_with("You’ve hit your")) && m.contains("limit")
}

/// The transcript path a payload names, used by the title tracker.
pub fn transcript_path(payload: &Value) -> Option<&str> {
    payload.get("transcript_path").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sig(p: Value) -> Signal {
        map_hook(&p, Call::test()).unwrap().signal
    }

    #[test]
    fn maps_the_turn_lifecycle() {
        let base = |n: &str| json!({"session_id":"s","hook_event_name":n});
        assert_eq!(sig(base("SessionStart")), Signal::Activity(Activity::Idle));
        assert_eq!(
            sig(base("UserPromptSubmit")),
            Signal::Activity(Activity::Running)
        );
        assert_eq!(sig(base("Stop")), Signal::Activity(Activity::Idle));
        assert_eq!(sig(base("StopFailure")), Signal::Activity(Activity::Error));
        assert_eq!(sig(base("SessionEnd")), Signal::SessionEnd);
        assert_eq!(sig(base("SomethingNew")), Signal::Ignore);
    }

    #[test]
    fn usage_limit_background_and_compaction() {
        let at =
            |p: Value| map_hook(&p, Call::new(Some(&"%1".into()), 1_796_410_500_000, "e")).unwrap();
        // A usage limit: its own activity, with the reset the message names.
        let e = at(
            json!({"session_id":"s","hook_event_name":"StopFailure","error":"rate_limit",
            "last_assistant_message":"You've hit your session limit · resets 7:10pm (UTC)"}),
        );
        assert_eq!(e.signal, Signal::Activity(Activity::Limited));
        assert_eq!(e.extra.until, Some(1_796_410_500_000 + 15 * 60_000));
        // A plain 429 that gave up is an error.
        let e = at(
            json!({"session_id":"s","hook_event_name":"StopFailure","error":"rate_limit",
            "last_assistant_message":"API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"}),
        );
        assert_eq!(
            (e.signal, e.extra.until),
            (Signal::Activity(Activity::Error), None)
        );
        // Background work after the turn.
        let e = at(
            json!({"session_id":"s","hook_event_name":"Stop","background_tasks":[
            {"id":"b1","type":"shell","status":"running"}]}),
        );
        assert_eq!(
            (e.signal, e.extra.background),
            (Signal::Activity(Activity::Idle), Some(1))
        );
        let e = at(json!({"session_id":"s","hook_event_name":"Stop","background_tasks":[]}));
        assert_eq!(e.extra.background, Some(0));
        // Compaction: running with the detail; a manual one ends at the prompt.
        let e = at(json!({"session_id":"s","hook_event_name":"PreCompact","trigger":"manual"}));
        assert_eq!(
            (e.signal, e.extra.work),
            (Signal::Activity(Activity::Running), Some(Work::Compacting))
        );
        let e = at(json!({"session_id":"s","hook_event_name":"PostCompact","trigger":"manual"}));
        assert_eq!(
            (e.signal, e.extra.work),
            (Signal::Activity(Activity::Idle), None)
        );
        let e = at(json!({"session_id":"s","hook_event_name":"PostCompact","trigger":"auto"}));
        assert_eq!(
            (e.signal, e.extra.work),
            (Signal::Activity(Activity::Running), None)
        );
    }

    #[test]
    fn questions_are_input_not_approval() {
        let p = json!({"session_id":"s","hook_event_name":"PermissionRequest","tool_name":"AskUserQuestion"});
        assert_eq!(sig(p), Signal::Activity(Activity::WaitingInput));
        let p = json!({"session_id":"s","hook_event_name":"PermissionRequest","tool_name":"Bash"});
        assert_eq!(sig(p), Signal::Activity(Activity::WaitingApproval));
        let p = json!({"session_id":"s","hook_event_name":"Notification","notification_type":"permission_prompt"});
        assert_eq!(sig(p), Signal::Ignore);
    }

    #[test]
    fn subagents_never_end_the_parent_turn() {
        let p = json!({"session_id":"s","hook_event_name":"Stop","agent_id":"a1"});
        assert_eq!(sig(p), Signal::Ignore);
        let p = json!({"session_id":"s","hook_event_name":"SubagentStop"});
        assert_eq!(sig(p), Signal::Ignore);
    }

    #[test]
    fn clear_keeps_the_agent() {
        let p = json!({"session_id":"s","hook_event_name":"SessionEnd","reason":"clear"});
        assert_eq!(sig(p), Signal::Ignore);
        let p = json!({"session_id":"s2","hook_event_name":"SessionStart","source":"clear"});
        assert_eq!(sig(p), Signal::Activity(Activity::Idle));
    }

    #[test]
    fn rejects_bad_schema_with_reason() {
        assert!(
            map_hook(&json!([1]), Call::new(None, 0, "e"))
                .unwrap_err()
                .contains("object")
        );
        assert!(
            map_hook(&json!({"session_id":"s"}), Call::new(None, 0, "e"))
                .unwrap_err()
                .contains("hook_event_name")
        );
        assert!(
            map_hook(&json!({"hook_event_name":"Stop"}), Call::new(None, 0, "e"))
                .unwrap_err()
                .contains("missing session_id")
        );
        let long = "a".repeat(300);
        let e = map_hook(
            &json!({"hook_event_name":"Stop","session_id":long}),
            Call::new(None, 0, "e"),
        )
        .unwrap_err();
        assert!(e.contains("session_id too long (300 bytes"), "{e}");
        let e = map_hook(
            &json!({"hook_event_name":"Stop","session_id":"a\u{202e}b"}),
            Call::new(None, 0, "e"),
        )
        .unwrap_err();
        assert!(e.contains("session_id has a control"), "{e}");
        let ok = "0".repeat(crate::core::event::MAX_SESSION_KEY);
        assert!(
            map_hook(
                &json!({"hook_event_name":"Stop","session_id":ok}),
                Call::new(None, 0, "e")
            )
            .is_ok()
        );
    }
}
