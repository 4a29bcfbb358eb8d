//! The normalized event every source produces (C-003 input): provider-neutral, so the
//! projection and the resolver never look at a raw payload.
use super::extras::EventExtra;
use super::types::{Activity, Millis, PaneId, Provider, SourceKind};
use serde::{Deserialize, Serialize};

/// What an event means for the pane's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Signal {
    /// The agent is (now) in this activity.
    Activity(Activity),
    /// The agent left the pane (Claude SessionEnd, Codex thread closed with its TUI).
    SessionEnd,
    /// Stored and shown in `explain`, but changes no state (unknown events, subagent stops,
    /// title-generation threads …).
    Ignore,
}

/// One event after a source normalized it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    /// Stable id: replays of the same spool line or stream message give the same id.
    pub event_id: String,
    pub source: SourceKind,
    pub provider: Provider,
    /// The pane the event claims (`$TMUX_PANE` for hooks). Codex hooks run in a shared
    /// daemon, so for them this is only a hint (see `sources::codex_hooks`).
    pub pane_id: Option<PaneId>,
    /// Claude `session_id` or Codex thread id.
    pub session_key: Option<String>,
    /// Codex turn id, used to scope out-of-order turn events.
    pub turn_id: Option<String>,
    /// The raw event or method name (`PreToolUse`, `thread/status/changed` …).
    pub name: String,
    pub signal: Signal,
    /// A title carried by the event (`session_title`, `thread/name/updated` …).
    pub title: Option<String>,
    pub cwd: Option<String>,
    /// Tool name, error kind or other short detail for `explain`.
    pub detail: Option<String>,
    /// When the source saw it (epoch ms).
    pub ts: Millis,
    /// Usage-limit reset, background count, compaction (issue 23; `core::extras`).
    #[serde(default)]
    pub extra: EventExtra,
}

/// Longest session key (Claude `session_id`, Codex thread id) accepted. Both are UUIDs
/// (36 bytes) today; the bound leaves room for other formats and keeps keys out of the way of
/// rows, logs and the status line.
pub(crate) const MAX_SESSION_KEY: usize = 128;

/// A session key as sent, checked: present, not empty, at most [`MAX_SESSION_KEY`] bytes, no
/// control or format characters. `Err` names which rule failed (`schema: …`).
pub(crate) fn check_session_key<'a>(v: Option<&'a str>, field: &str) -> Result<&'a str, String> {
    let k = v.ok_or_else(|| format!("schema: missing {field}"))?;
    if k.is_empty() {
        return Err(format!("schema: empty {field}"));
    }
    check_text(k, field, MAX_SESSION_KEY)?;
    Ok(k)
}

/// A text field of a payload as sent, checked: at most `max` bytes, no control or format
/// characters. `Err` names which rule failed (`schema: …`).
pub(crate) fn check_text(v: &str, field: &str, max: usize) -> Result<(), String> {
    if v.len() > max {
        return Err(format!(
            "schema: {field} too long ({} bytes > {max})",
            v.len()
        ));
    }
    if v.chars()
        .any(|c| c.is_control() || crate::core::title::is_format_char(c))
    {
        return Err(format!("schema: {field} has a control or format character"));
    }
    Ok(())
}
