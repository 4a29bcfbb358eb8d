//! Gemini CLI hooks (`agtmux hook gemini`): maps one hook payload to a normalized event.
//!
//! Facts (observed on Gemini CLI 0.61.0, checked against `@google/gemini-cli` 0.61.0's
//! bundle: `createBaseInput` gives `session_id`, `transcript_path`, `cwd`, `hook_event_name`,
//! `timestamp`; `fireNotificationEvent` adds `notification_type`, `message`, `details`):
//! - `BeforeAgent` starts a turn, `AfterAgent` ends it. A turn that got no answer (an API error
//!   such as a 400) still fires `AfterAgent`, with `prompt_response` set to the literal
//!   `"[no response text]"` (`fireAfterAgentHookSafe`): that is the only hook an error gives.
//! - `BeforeTool` fires *before* the approval dialog, then `Notification` with
//!   `notification_type:"ToolPermission"`; its `details.type` is `ask_user` for the ask_user
//!   tool's question, else the kind of call to approve (`exec`, `edit`, `mcp`, `info`).
//! - Esc on the dialog fires no hook: the screen (`Request cancelled.`) is the only witness.
//! - `SessionEnd` fires 2–3 times on `/quit`; `reason:"clear"` is `/clear`, which starts a new
//!   session in the same pane right after.
use super::hook_map::{self, Call};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::types::{Activity, Provider, SourceKind};
use serde_json::Value;

const FROM: (SourceKind, Provider) = (SourceKind::GeminiHooks, Provider::Gemini);

/// What `AfterAgent` carries as `prompt_response` when the turn produced no text (API error).
pub(crate) const NO_RESPONSE: &str = "[no response text]";

/// The hook events `agtmux setup gemini` installs (and this module maps).
pub(crate) const EVENTS: &[&str] = &[
    "SessionStart",
    "SessionEnd",
    "BeforeAgent",
    "AfterAgent",
    "BeforeTool",
    "AfterTool",
    "Notification",
];

/// Map one payload. `Err` is the reject reason.
pub(crate) fn map_hook(payload: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    let head = hook_map::head(payload, "hook_event_name", "hook_event_name")?;
    let (obj, name, session) = (head.obj, head.name, head.session);
    let s = |k: &str| head.str(k);
    let tool = s("tool_name");
    let details_type = obj
        .get("details")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str);
    let act = Signal::Activity;
    let (signal, detail): (Signal, Option<String>) = match name {
        "SessionStart" => (act(Activity::Idle), s("source").map(str::to_string)),
        "BeforeAgent" => (act(Activity::Running), None),
        "AfterAgent" if s("prompt_response") == Some(NO_RESPONSE) => (
            act(Activity::Error),
            Some("no response text (API error)".into()),
        ),
        "AfterAgent" => (act(Activity::Idle), None),
        "BeforeTool" | "AfterTool" => (act(Activity::Running), tool.map(str::to_string)),
        "Notification" => match (s("notification_type"), details_type) {
            (Some("ToolPermission"), Some("ask_user")) => {
                (act(Activity::WaitingInput), Some("ask_user".into()))
            }
            (Some("ToolPermission"), t) => (
                act(Activity::WaitingApproval),
                Some(format!("ToolPermission {}", t.unwrap_or("?"))),
            ),
            (t, _) => (Signal::Ignore, t.map(|t| format!("notification {t}"))),
        },
        "SessionEnd" if s("reason") == Some("clear") => (Signal::Ignore, Some("clear".into())),
        "SessionEnd" => (Signal::SessionEnd, s("reason").map(str::to_string)),
        other => (Signal::Ignore, Some(format!("unmapped hook event {other}"))),
    };
    Ok(NormalizedEvent {
        cwd: s("cwd").map(str::to_string),
        detail,
        ..call.event(FROM, session, name.to_string(), signal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sig(p: Value) -> Signal {
        map_hook(&p, Call::test()).unwrap().signal
    }

    fn base(n: &str) -> Value {
        json!({"session_id":"s","transcript_path":"","cwd":"/w","hook_event_name":n,"timestamp":"2026-12-04T00:00:00Z"})
    }

    #[test]
    fn maps_the_turn_lifecycle() {
        let a = Signal::Activity;
        assert_eq!(sig(base("SessionStart")), a(Activity::Idle));
        assert_eq!(sig(base("BeforeAgent")), a(Activity::Running));
        let mut p = base("AfterAgent");
        p["prompt_response"] = json!("done.");
        assert_eq!(sig(p.clone()), a(Activity::Idle));
        p["prompt_response"] = json!(NO_RESPONSE);
        assert_eq!(sig(p), a(Activity::Error));
        assert_eq!(sig(base("BeforeTool")), a(Activity::Running));
        assert_eq!(sig(base("AfterTool")), a(Activity::Running));
        let mut p = base("SessionEnd");
        p["reason"] = json!("exit");
        assert_eq!(sig(p.clone()), Signal::SessionEnd);
        p["reason"] = json!("clear");
        assert_eq!(sig(p), Signal::Ignore);
        assert_eq!(sig(base("AfterModel")), Signal::Ignore);
    }

    #[test]
    fn permission_notifications_split_questions_from_approvals() {
        let mut p = base("Notification");
        p["notification_type"] = json!("ToolPermission");
        p["details"] = json!({"type":"exec","title":"Shell","command":"ls"});
        assert_eq!(sig(p.clone()), Signal::Activity(Activity::WaitingApproval));
        p["details"] = json!({"type":"ask_user","title":"q"});
        assert_eq!(sig(p.clone()), Signal::Activity(Activity::WaitingInput));
        p["notification_type"] = json!("Other");
        assert_eq!(sig(p), Signal::Ignore);
    }

    #[test]
    fn bad_payloads_are_rejected_with_reasons() {
        let e = |v: Value| map_hook(&v, Call::new(None, 0, "e")).unwrap_err();
        assert!(e(json!("x")).contains("not a JSON object"));
        assert!(e(json!({"session_id":"s"})).contains("hook_event_name"));
        assert!(e(json!({"hook_event_name":"BeforeAgent"})).contains("missing session_id"));
        assert!(e(json!({"hook_event_name":"BeforeAgent","session_id":""})).contains("empty"));
    }
}
