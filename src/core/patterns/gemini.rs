//! Gemini CLI screen rules (C-006). Gemini CLI 0.61 (observed) has no box drawn with `────`
//! rules the way Claude does: its prompt line is `>   Type your message or @path/to/file`,
//! a turn shows `Thinking... (esc to cancel, 3s)` above it, approvals replace the prompt with
//! `Allow execution of [Shell]?` and a numbered `1. Allow once` list, the ask_user tool shows
//! `Answer Questions … Enter to select`, and an API error leaves `✕ [API Error: …]`. The pane
//! title says `✦  Working… (<dir>)`, `◇  Ready (<dir>)` or `✋  Action Required`.
//!
//! These rules are built from the text observed in the real TUI and checked
//! against the labelled screens in `fixtures/screens/gemini/`; no region needs a layout
//! (`Layout::without_box`): every rule reads the last lines or the title.
use super::{Region::*, Rule, c, rule};
use crate::core::types::{Activity::*, Provider};

const P: Provider = Provider::Gemini;

/// Priority order: dialogs, running, the last outcome, idle, then title-only hints.
#[rustfmt::skip] // a table: a rule's name, activity and confidence, then its conditions
pub(crate) static RULES: &[Rule] = &[
    rule(P, "gemini_approval_dialog", WaitingApproval, 0.95, &[
        c(LastLines(20), r"(?m)Allow execution of .*\?|Apply this change\?|Allow .*\?\s*$"),
        c(LastLines(12), r"(?m)^\W*1\.\s+Allow once"),
    ]),
    rule(P, "gemini_ask_user", WaitingInput, 0.85, &[
        c(LastLines(25), r"Answer Questions"),
        c(LastLines(4), r"Enter to select"),
    ]),
    rule(P, "gemini_thinking", Running, 0.9, &[
        c(LastLines(10), r"\(esc to cancel, (\d+m\s*)?\d+s\)"),
    ]),
    rule(P, "gemini_api_error", Error, 0.8, &[
        c(LastLines(14), r"(?m)^\s*✕\s+\[API Error"),
        c(LastLines(6), r"(?m)^\W*>\s+Type your message or @path/to/file"),
    ]),
    rule(P, "gemini_idle_prompt", Idle, 0.85, &[
        c(LastLines(6), r"(?m)^\W*>\s+Type your message or @path/to/file"),
    ]),
    rule(P, "gemini_title_action_required", WaitingApproval, 0.6, &[
        c(Title, r"^✋\s+Action Required"),
    ]),
    rule(P, "gemini_title_working", Running, 0.6, &[c(Title, r"^✦\s+Working")]),
    rule(P, "gemini_title_ready", Idle, 0.5, &[c(Title, r"^◇\s+Ready")]),
];
