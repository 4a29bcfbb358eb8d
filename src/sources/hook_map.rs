//! What every hook mapper (Claude, Codex, Gemini, OpenCode, generic) starts and ends with: the
//! payload must be an object naming its event and its session (the pane the hook ran in arrives
//! as a `PaneId` the spool already parsed), and the event it makes carries the call's id, time
//! and pane. One copy here, so every source rejects the same input with the same reason and
//! builds its event the same way. (Codex's hook and notify payloads keep their own older head
//! checks and reasons; see `codex_hooks`.)
use crate::core::event::{NormalizedEvent, Signal, check_session_key};
use crate::core::types::{Millis, PaneId, Provider, SourceKind};
use serde_json::{Map, Value};

/// Longest event name accepted (bytes).
const MAX_NAME: usize = 100;

/// The checked head of a hook payload.
pub(crate) struct Head<'a> {
    pub(crate) obj: &'a Map<String, Value>,
    /// The event's name (`hook_event_name`, or OpenCode's `event`).
    pub(crate) name: &'a str,
    /// The checked `session_id`.
    pub(crate) session: &'a str,
}

impl<'a> Head<'a> {
    /// The string field `key`, if the payload has one.
    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        self.obj.get(key).and_then(Value::as_str)
    }
}

/// Checks the shape every hook payload shares: an object whose `name_key` names the event
/// (at most 100 bytes; `label` names it in the reason) and whose `session_id` passes
/// [`check_session_key`]. `Err` is the reject reason.
pub(crate) fn head<'a>(
    payload: &'a Value,
    name_key: &str,
    label: &str,
) -> Result<Head<'a>, String> {
    let obj = payload
        .as_object()
        .ok_or("schema: payload is not a JSON object")?;
    let name = obj
        .get(name_key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("schema: missing {name_key}"))?;
    if name.len() > MAX_NAME {
        return Err(format!("schema: {label} too long"));
    }
    let session = check_session_key(obj.get("session_id").and_then(Value::as_str), "session_id")?;
    Ok(Head { obj, name, session })
}

/// One hook call as the spool received it, besides its payload.
pub(crate) struct Call<'a> {
    /// The pane the hook ran in (`$TMUX_PANE`, or the payload's own), as the spool parsed it.
    pub(crate) pane: Option<&'a PaneId>,
    /// When the spool received it (epoch ms).
    pub(crate) ts: Millis,
    /// The stable id of the spool line.
    pub(crate) event_id: String,
}

impl<'a> Call<'a> {
    pub(crate) fn new(pane: Option<&'a PaneId>, ts: Millis, event_id: impl Into<String>) -> Self {
        Call {
            pane,
            ts,
            event_id: event_id.into(),
        }
    }

    /// The event this call makes: `signal`, for `session`'s event `name`, from `from`, in the
    /// call's pane; turn, title, cwd, detail and extras are empty for the mapper to fill in.
    pub(crate) fn event(
        self,
        from: (SourceKind, Provider),
        session: &str,
        name: String,
        signal: Signal,
    ) -> NormalizedEvent {
        NormalizedEvent {
            event_id: self.event_id,
            source: from.0,
            provider: from.1,
            pane_id: self.pane.cloned(),
            session_key: Some(session.to_string()),
            turn_id: None,
            name,
            signal,
            title: None,
            cwd: None,
            detail: None,
            ts: self.ts,
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
impl Call<'static> {
    /// For the mappers' tests: a call from pane `%1` at time 0, with event id `e`.
    pub(crate) fn test() -> Self {
        static PANE: std::sync::LazyLock<PaneId> = std::sync::LazyLock::new(|| "%1".into());
        Call::new(Some(&PANE), 0, "e")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_head_is_checked_in_one_order_with_one_set_of_reasons() {
        let e = |v: Value| {
            head(&v, "hook_event_name", "hook_event_name")
                .err()
                .unwrap()
        };
        assert_eq!(e(json!([1])), "schema: payload is not a JSON object");
        assert_eq!(
            e(json!({"session_id": "s"})),
            "schema: missing hook_event_name"
        );
        let long = "x".repeat(101);
        assert_eq!(
            e(json!({"hook_event_name": long, "session_id": "s"})),
            "schema: hook_event_name too long"
        );
        assert!(e(json!({"hook_event_name": "Stop"})).contains("session_id"));
        let p = json!({"event": "x", "session_id": "s", "cwd": "/w"});
        let h = head(&p, "event", "event name").unwrap();
        assert_eq!((h.name, h.session, h.str("cwd")), ("x", "s", Some("/w")));
    }
}
