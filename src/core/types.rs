//! Plain data shared by every component (C-008): providers, activities, presence, evidence,
//! attention kinds, sources and pane instances. No I/O; time is always passed in as epoch ms.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Epoch milliseconds. The core never reads a clock; callers pass `now`.
pub type Millis = i64;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$var),)+ _ => None } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

str_enum!(
    /// An AI coding agent family. More arrive through the capability registry (C-009).
    /// `Generic` is any other agent that reports through `agtmux hook generic` (docs/generic-hook.md).
    Provider {
        Claude => "claude",
        Codex => "codex",
        Gemini => "gemini",
        OpenCode => "opencode",
        Generic => "generic",
    }
);

str_enum!(
    /// What the agent in a pane is doing (README "What you see"). `Limited`: the last turn
    /// stopped on the account's usage limit and the agent waits at its prompt for the reset
    /// (issue 23); it turns back into `Idle` when the reset time passes.
    Activity {
        Running => "running",
        WaitingInput => "waiting_input",
        WaitingApproval => "waiting_approval",
        Error => "error",
        Limited => "limited",
        Idle => "idle",
        Unknown => "unknown",
    }
);

str_enum!(
    /// Whether an agent lives in the pane.
    Presence { Managed => "managed", Unmanaged => "unmanaged" }
);

str_enum!(
    /// How we know: hooks/app-server (deterministic), the screen poller (heuristic), or not at all.
    Evidence { Deterministic => "deterministic", Heuristic => "heuristic", None => "none" }
);

str_enum!(
    /// What the user owes a pane, most urgent first (`Approval` sorts lowest).
    AttentionKind { Approval => "approval", Input => "input", Error => "error", Limit => "limit", Done => "done" }
);

str_enum!(
    /// Every source of evidence. Ranks live in the capability registry, not here.
    SourceKind {
        ClaudeHooks => "claude_hooks",
        ClaudeTranscript => "claude_transcript",
        CodexAppServer => "codex_appserver",
        CodexHooks => "codex_hooks",
        CodexRollout => "codex_rollout",
        GeminiHooks => "gemini_hooks",
        OpenCodePlugin => "opencode_plugin",
        GenericHook => "generic_hook",
        Poller => "poller",
    }
);

str_enum!(
    /// Source health (Flow-004): only a healthy source is admissible for deterministic evidence.
    Health { Healthy => "healthy", Stale => "stale", Down => "down" }
);

impl SourceKind {
    /// Deterministic sources speak for the agent itself; the poller only guesses from the screen.
    pub fn is_deterministic(self) -> bool {
        !matches!(self, SourceKind::Poller)
    }
}

impl Activity {
    /// The attention kind an activity implies by itself (`done` needs focus history, see
    /// `core::attention`).
    pub fn attention(self) -> Option<AttentionKind> {
        match self {
            Activity::WaitingApproval => Some(AttentionKind::Approval),
            Activity::WaitingInput => Some(AttentionKind::Input),
            Activity::Error => Some(AttentionKind::Error),
            Activity::Limited => Some(AttentionKind::Limit),
            _ => None,
        }
    }
}

/// One life of an agent in a pane (Flow-007). Pane ids restart at `%0` with a new tmux server,
/// and a pane can be reused by another agent, so the id alone is not an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaneInstance {
    pub pane_id: String,
    pub generation: u32,
    pub birth_ts: Millis,
}

/// True for a well-formed tmux pane id: `%` followed by decimal digits.
pub fn valid_pane_id(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 12
        && s.starts_with('%')
        && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_names() {
        for a in Activity::ALL {
            assert_eq!(Activity::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Provider::parse("gemini"), Some(Provider::Gemini));
        assert_eq!(Provider::parse("aider"), None);
        assert!(AttentionKind::Approval < AttentionKind::Done);
    }

    #[test]
    fn pane_ids_are_validated() {
        assert!(valid_pane_id("%0"));
        assert!(valid_pane_id("%123"));
        assert!(!valid_pane_id("%"));
        assert!(!valid_pane_id("3"));
        assert!(!valid_pane_id("%1;kill-server"));
    }
}
