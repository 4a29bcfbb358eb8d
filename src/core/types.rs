//! Plain data shared by every component (C-008): providers, activities, presence, evidence,
//! attention kinds, sources and pane instances. No I/O; time is always passed in as epoch ms.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Epoch milliseconds. The core never reads a clock; callers pass `now`.
pub type Millis = i64;

/// An enum stored and shown by name: `as_str`, `parse` (the inverse), `ALL` and `Display`
/// from one `Variant => "name"` list (variant attributes such as `#[default]` pass through).
/// Used across the crate for every enum whose name is its stored or printed form.
macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$var),)+ _ => None } }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use str_enum;

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
    pub(crate) fn is_deterministic(self) -> bool {
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
    pub pane_id: PaneId,
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

/// A tmux pane id, `%N`, checked once where it enters agtmux (the control-mode parser and our
/// tmux format rows, a hook's `$TMUX_PANE`, a payload's `pane`, an API request, a CLI argument,
/// a stored row, a remote daemon's stream) and then passed on as a value known to be
/// well-formed. It reads as the `&str` tmux prints (`Deref`, `Borrow<str>`), so maps keyed by
/// it are looked up with a plain `&str`, and it serializes as that string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PaneId(String);

impl PaneId {
    /// `Some` for a well-formed pane id ([`valid_pane_id`]).
    pub fn parse(s: &str) -> Option<PaneId> {
        valid_pane_id(s).then(|| PaneId(s.to_string()))
    }

    /// [`PaneId::parse`], or why `s` is not a pane id, suggesting `%N` for a bare number (the
    /// one wording for the CLI's arguments and the API's `pane` param).
    pub fn parse_or_why(s: &str) -> Result<PaneId, String> {
        PaneId::parse(s).ok_or_else(|| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                format!("not a pane id: {s:?} (did you mean %{s}? pane ids start with %)")
            } else {
                format!("not a pane id: {s:?} (expected %N, e.g. %3)")
            }
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for PaneId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for PaneId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PaneId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for PaneId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PaneId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<PaneId> for String {
    fn from(p: PaneId) -> String {
        p.0
    }
}

impl<'de> Deserialize<'de> for PaneId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PaneId, D::Error> {
        let s = String::deserialize(d)?;
        PaneId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a tmux pane id (%N)"))
    }
}

/// Tests write pane ids as literals: `"%1".into()`.
#[cfg(test)]
impl From<&str> for PaneId {
    fn from(s: &str) -> PaneId {
        PaneId::parse(s).unwrap_or_else(|| panic!("not a pane id: {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_ids_are_checked_once_and_read_as_text() {
        let p = PaneId::parse("%12").unwrap();
        assert_eq!(p, "%12");
        assert_eq!(p.to_string(), "%12");
        assert_eq!(&p[1..], "12");
        for bad in ["", "%", "12", "%1a", "%-1", "$1", "%1234567890123"] {
            assert_eq!(PaneId::parse(bad), None, "{bad}");
        }
        let m: std::collections::HashMap<PaneId, u8> = [(p.clone(), 1)].into();
        assert_eq!(m.get("%12"), Some(&1));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"%12\"");
        assert_eq!(serde_json::from_str::<PaneId>("\"%12\"").unwrap(), p);
        assert!(serde_json::from_str::<PaneId>("\"12\"").is_err());
        assert_eq!(PaneId::parse_or_why("%3"), Ok(PaneId::parse("%3").unwrap()));
        let why = PaneId::parse_or_why("7").unwrap_err();
        assert!(why.contains("did you mean %7?"), "{why}");
        let why = PaneId::parse_or_why("%1;kill-server").unwrap_err();
        assert!(
            why.contains("expected %N") && !why.contains("did you mean"),
            "{why}"
        );
    }

    #[test]
    fn a_bare_number_is_told_to_take_a_percent_sign() {
        assert_eq!(PaneId::parse_or_why("%1"), Ok("%1".into()));
        assert!(
            PaneId::parse_or_why("1")
                .unwrap_err()
                .contains("did you mean %1?")
        );
        assert!(
            PaneId::parse_or_why("x")
                .unwrap_err()
                .contains("expected %N")
        );
    }

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
