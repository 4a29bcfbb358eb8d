//! OpenCode (`agtmux hook opencode`): maps one event forwarded by agtmux's OpenCode plugin
//! (`agtmux setup opencode`, see `cli::setup::opencode`) to a normalized event.
//!
//! WHY a plugin and not OpenCode's HTTP event stream: the TUI opens no TCP listener unless it
//! is started with `--port`, so a monitor cannot count on `GET /event`; a plugin runs inside
//! the opencode process of the pane (its `$TMUX_PANE` and process lineage are right) and sees
//! every bus event (observed on OpenCode 1.18.33).
//!
//! The plugin sends a small flat object, not OpenCode's whole event (a permission's metadata
//! can hold a whole diff):
//! `{"event":"session.status","session_id":"ses_…","status":"busy"|"idle"|"retry",
//!   "permission":"bash","reply":"once"|"always"|"reject","error":"APIError","after_error":true}`.
//! Event names and property shapes were read from opencode 1.18.33's bundled code:
//! `session.status {sessionID, status:{type}}`, `permission.asked {id, sessionID, permission}`,
//! `permission.replied {sessionID, requestID, reply}`, `question.asked {id, sessionID}`,
//! `question.replied|question.rejected {sessionID, requestID}`, `session.idle {sessionID}`,
//! `session.error {sessionID?, error:{name, data}}`.
//! An error is followed by an idle status; the plugin marks that idle `after_error` so the
//! error stays the pane's state until the next turn. An Esc interrupt ends the turn with
//! `MessageAbortedError`, which is not an error for the user.
use super::hook_map::{self, Call};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::types::{Activity, Provider, SourceKind};
use serde_json::Value;

const FROM: (SourceKind, Provider) = (SourceKind::OpenCodePlugin, Provider::OpenCode);

/// Map one forwarded event. `Err` is the reject reason.
pub(crate) fn map_event(payload: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    let head = hook_map::head(payload, "event", "event name")?;
    let (obj, name, session) = (head.obj, head.name, head.session);
    let s = |k: &str| head.str(k);
    let after_error = obj.get("after_error") == Some(&Value::Bool(true));
    let act = Signal::Activity;
    let idle = if after_error {
        (Signal::Ignore, Some("idle after the error".to_string()))
    } else {
        (act(Activity::Idle), None)
    };
    let (signal, detail): (Signal, Option<String>) = match name {
        "session.status" => match s("status") {
            Some("busy") => (act(Activity::Running), None),
            Some("retry") => (act(Activity::Running), Some("retrying".into())),
            Some("idle") => idle,
            other => (
                Signal::Ignore,
                Some(format!("status {}", other.unwrap_or("?"))),
            ),
        },
        "session.idle" => idle,
        "permission.asked" => (
            act(Activity::WaitingApproval),
            s("permission").map(str::to_string),
        ),
        "permission.replied" => match s("reply") {
            Some("reject") => (act(Activity::Idle), Some("rejected".into())),
            r => (act(Activity::Running), r.map(str::to_string)),
        },
        "question.asked" => (act(Activity::WaitingInput), None),
        "question.replied" | "question.rejected" => (act(Activity::Running), None),
        "session.error" => match s("error") {
            Some("MessageAbortedError") => (act(Activity::Idle), Some("interrupted".into())),
            e => (act(Activity::Error), e.map(str::to_string)),
        },
        other => (Signal::Ignore, Some(format!("unmapped event {other}"))),
    };
    Ok(NormalizedEvent {
        title: s("title")
            .filter(|t| t.len() <= 256 && !t.chars().any(char::is_control))
            .map(str::to_string),
        detail,
        ..call.event(FROM, session, name.to_string(), signal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_status_permission_question_and_error() {
        let a = Signal::Activity;
        let ev = |e: &str| json!({"event":e,"session_id":"ses_1"});
        let st = |t: &str| json!({"event":"session.status","session_id":"ses_1","status":t});
        let r = |x: &str| json!({"event":"permission.replied","session_id":"s","reply":x});
        let err = |n: &str| json!({"event":"session.error","session_id":"s","error":n});
        let mut idle_after_error = st("idle");
        idle_after_error["after_error"] = json!(true);
        let cases = [
            (st("busy"), a(Activity::Running)),
            (st("retry"), a(Activity::Running)),
            (st("idle"), a(Activity::Idle)),
            (idle_after_error, Signal::Ignore),
            (ev("session.idle"), a(Activity::Idle)),
            (ev("permission.asked"), a(Activity::WaitingApproval)),
            (r("once"), a(Activity::Running)),
            (r("always"), a(Activity::Running)),
            (r("reject"), a(Activity::Idle)),
            (ev("question.asked"), a(Activity::WaitingInput)),
            (ev("question.replied"), a(Activity::Running)),
            (err("APIError"), a(Activity::Error)),
            (err("MessageAbortedError"), a(Activity::Idle)),
            (ev("message.updated"), Signal::Ignore),
        ];
        for (p, want) in cases {
            let got = map_event(&p, Call::test()).unwrap().signal;
            assert_eq!(got, want, "{p}");
        }
    }

    #[test]
    fn bad_payloads_are_rejected_with_reasons() {
        let e = |v: Value| map_event(&v, Call::new(None, 0, "e")).unwrap_err();
        assert!(e(json!(1)).contains("not a JSON object"));
        assert!(e(json!({"session_id":"s"})).contains("missing event"));
        assert!(e(json!({"event":"session.idle"})).contains("missing session_id"));
    }
}
