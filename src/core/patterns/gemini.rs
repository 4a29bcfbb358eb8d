//! Gemini CLI screen rules (C-006). Gemini CLI 0.61 (observed) has no box drawn with `────`
//! rules the way Claude does: its prompt line is `>   Type your message or @path/to/file`,
//! a turn shows `Thinking... (esc to cancel, 3s)` above it, approvals replace the prompt with
//! `Allow execution of [Shell]?` and a numbered `1. Allow once` list, the ask_user tool shows
//! `Answer Questions … Enter to select`, and an API error leaves `✕ [API Error: …]`. The pane
//! title says `✦  Working… (<dir>)`, `◇  Ready (<dir>)` or `✋  Action Required`.
//!
//! These rules are built from the text observed in the real TUI and checked
//! against the labelled screens in `fixtures/screens/gemini/`; no region needs a layout, so
//! [`layout`] finds none and every rule reads the last lines or the title.
use super::{Layout, Region::*, Rule, c};
use crate::core::types::{Activity, Provider};

const P: Provider = Provider::Gemini;

/// Priority order: dialogs, running, the last outcome, idle, then title-only hints.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        name: "gemini_approval_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.95,
        when: &[
            c(
                LastLines(20),
                r"(?m)Allow execution of .*\?|Apply this change\?|Allow .*\?\s*$",
            ),
            c(LastLines(12), r"(?m)^\W*1\.\s+Allow once"),
        ],
    },
    Rule {
        name: "gemini_ask_user",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.85,
        when: &[
            c(LastLines(25), r"Answer Questions"),
            c(LastLines(4), r"Enter to select"),
        ],
    },
    Rule {
        name: "gemini_thinking",
        provider: P,
        activity: Activity::Running,
        confidence: 0.9,
        when: &[c(LastLines(10), r"\(esc to cancel, (\d+m\s*)?\d+s\)")],
    },
    Rule {
        name: "gemini_api_error",
        provider: P,
        activity: Activity::Error,
        confidence: 0.8,
        when: &[
            c(LastLines(14), r"(?m)^\s*✕\s+\[API Error"),
            c(
                LastLines(6),
                r"(?m)^\W*>\s+Type your message or @path/to/file",
            ),
        ],
    },
    Rule {
        name: "gemini_idle_prompt",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.85,
        when: &[c(
            LastLines(6),
            r"(?m)^\W*>\s+Type your message or @path/to/file",
        )],
    },
    Rule {
        name: "gemini_title_action_required",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.6,
        when: &[c(Title, r"^✋\s+Action Required")],
    },
    Rule {
        name: "gemini_title_working",
        provider: P,
        activity: Activity::Running,
        confidence: 0.6,
        when: &[c(Title, r"^✦\s+Working")],
    },
    Rule {
        name: "gemini_title_ready",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.5,
        when: &[c(Title, r"^◇\s+Ready")],
    },
];

/// Gemini's rules read the last lines and the title only.
pub(crate) fn layout(lines: &[String]) -> Layout {
    Layout {
        box_top: lines.len(),
        footer_start: lines.len(),
        ..Layout::default()
    }
}
