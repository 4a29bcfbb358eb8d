//! `agtmux hook generic`: the documented tiny JSON shape any agent or wrapper script can send
//! (docs/generic-hook.md), mapped to a normalized event of provider `generic`.
//!
//! WHY its own shape: agents agtmux has no adapter for (aider, a home-made loop …) cannot be
//! taught Claude's or Codex's hook payloads, but they can say "I am running now". The shape is
//! the public state vocabulary itself, so the mapping is a check, not a translation:
//!
//! ```json
//! {"state":"running","session_id":"s1","title":"fix the build","pane":"%3","agent":"aider"}
//! ```
//!
//! `state` and `session_id` are required; the rest is optional. Every rule a Claude or Codex
//! payload is held to holds here too (size, depth and pane id are checked by the hook and the
//! spool; the session id by [`check_session_key`]); anything else is rejected with a reason,
//! never guessed.
use super::hook_map::Call;
use crate::core::event::{NormalizedEvent, Signal, check_session_key, check_text};
use crate::core::types::{Activity, PaneId, Provider, SourceKind};
use serde_json::Value;

/// The states a generic hook may report: the public activity vocabulary (without `unknown`,
/// which is agtmux's own word for "cannot tell") plus `ended`, which ends the session.
pub(crate) const STATES: &[&str] = &[
    "running",
    "waiting_input",
    "waiting_approval",
    "error",
    "idle",
    "ended",
];

/// Longest title accepted (bytes); the status line shows far less.
pub(crate) const MAX_TITLE: usize = 256;
/// Longest agent name accepted (bytes).
pub(crate) const MAX_AGENT: usize = 32;

/// The payload's own pane (`"pane"`), checked; `Ok(None)` when it names none.
pub(crate) fn payload_pane(payload: &Value) -> Result<Option<PaneId>, String> {
    match payload.get("pane") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(p)) => PaneId::parse(p)
            .map(Some)
            .ok_or_else(|| format!("bad_pane_id: {:?}", p.chars().take(20).collect::<String>())),
        Some(_) => Err("schema: pane is not a string".into()),
    }
}

fn opt_str<'a>(payload: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("schema: {key} is not a string")),
    }
}

/// Map one generic payload. `pane` is the pane the event is for (the payload's own `pane`,
/// else the hook's `$TMUX_PANE`). `Err` is the reject reason.
pub(crate) fn map_hook(payload: &Value, call: Call<'_>) -> Result<NormalizedEvent, String> {
    if !payload.is_object() {
        return Err("schema: payload is not a JSON object".into());
    }
    let state = match payload.get("state") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("schema: state is not a string".into()),
        None => return Err("schema: missing state".into()),
    };
    if !STATES.contains(&state) {
        return Err(format!(
            "schema: unknown state {:?} (one of {})",
            state.chars().take(30).collect::<String>(),
            STATES.join(", ")
        ));
    }
    let session = check_session_key(opt_str(payload, "session_id")?, "session_id")?;
    let title = opt_str(payload, "title")?;
    if let Some(t) = title {
        check_text(t, "title", MAX_TITLE)?;
    }
    let agent = opt_str(payload, "agent")?;
    if let Some(a) = agent {
        let ok = !a.is_empty()
            && a.len() <= MAX_AGENT
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(format!(
                "schema: agent must be 1-{MAX_AGENT} of [A-Za-z0-9._-]"
            ));
        }
    }
    let signal = match state {
        "ended" => Signal::SessionEnd,
        s => Signal::Activity(Activity::parse(s).ok_or("schema: unknown state")?),
    };
    let agent = agent.unwrap_or("generic");
    Ok(NormalizedEvent {
        title: title.filter(|t| !t.trim().is_empty()).map(str::to_string),
        cwd: opt_str(payload, "cwd").ok().flatten().map(str::to_string),
        detail: Some(format!("agent {agent}")),
        ..call.event(
            (SourceKind::GenericHook, Provider::Generic),
            session,
            format!("{agent}:{state}"),
            signal,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Result<NormalizedEvent, String> {
        map_hook(&v, Call::test())
    }

    #[test]
    fn every_public_state_maps_to_itself() {
        for s in [
            "running",
            "waiting_input",
            "waiting_approval",
            "error",
            "idle",
        ] {
            let ev = map(json!({"state":s,"session_id":"a"})).unwrap();
            assert_eq!(ev.signal, Signal::Activity(Activity::parse(s).unwrap()));
            assert_eq!(ev.provider, Provider::Generic);
            assert_eq!(ev.source, SourceKind::GenericHook);
        }
        let ev =
            map(json!({"state":"ended","session_id":"a","agent":"aider","title":"t"})).unwrap();
        assert_eq!(ev.signal, Signal::SessionEnd);
        assert_eq!(ev.name, "aider:ended");
        assert_eq!(ev.title.as_deref(), Some("t"));
        assert_eq!(ev.pane_id.as_deref(), Some("%1"));
    }

    #[test]
    fn bad_payloads_are_rejected_with_reasons() {
        let e = |v: Value| map(v).unwrap_err();
        assert!(e(json!([1])).contains("not a JSON object"));
        assert!(e(json!({"session_id":"a"})).contains("missing state"));
        assert!(e(json!({"state":"unknown","session_id":"a"})).contains("unknown state"));
        assert!(e(json!({"state":"busy","session_id":"a"})).contains("unknown state"));
        assert!(e(json!({"state":1,"session_id":"a"})).contains("state is not a string"));
        assert!(e(json!({"state":"idle"})).contains("missing session_id"));
        assert!(e(json!({"state":"idle","session_id":"a".repeat(300)})).contains("too long"));
        assert!(e(json!({"state":"idle","session_id":"a\u{202e}"})).contains("control"));
        assert!(
            e(json!({"state":"idle","session_id":"a","title":"x\u{1b}]2;y"})).contains("title")
        );
        assert!(
            e(json!({"state":"idle","session_id":"a","title":"x".repeat(300)})).contains("title")
        );
        assert!(e(json!({"state":"idle","session_id":"a","agent":"a b"})).contains("agent"));
        assert!(e(json!({"state":"idle","session_id":"a","agent":7})).contains("agent"));
        assert!(
            payload_pane(&json!({"pane":"%1;x"}))
                .unwrap_err()
                .starts_with("bad_pane_id")
        );
        assert_eq!(
            payload_pane(&json!({"pane":"%12"})).unwrap(),
            PaneId::parse("%12")
        );
        assert_eq!(payload_pane(&json!({})).unwrap(), None);
    }
}
