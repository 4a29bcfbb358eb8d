//! OpenCode screen rules (C-006). OpenCode 1.18 (protocols.md) draws a full-screen TUI: while a
//! turn runs the footer shows `esc interrupt`; a permission opens `△ Permission required` with
//! `Allow once   Allow always   Reject`; a question shows `↑↓ select  enter submit  esc
//! dismiss`; a retry shows `[retrying in 4s attempt #2]`. The title is `OC | <session title>`
//! in every state, so it identifies nothing by itself.
//!
//! Built from the text observed in the real TUI (protocols.md); no layout is needed.
use super::{Layout, Region::*, Rule, c};
use crate::core::types::{Activity, Provider};

const P: Provider = Provider::OpenCode;

/// Priority order: dialogs, then running.
pub static RULES: &[Rule] = &[
    Rule {
        name: "opencode_permission_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.95,
        when: &[
            c(LastLines(25), r"△\s+Permission required"),
            c(LastLines(12), r"Allow once\s+Allow always\s+Reject"),
        ],
    },
    Rule {
        name: "opencode_question",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.85,
        when: &[c(LastLines(6), r"↑↓ select\s+enter submit\s+esc dismiss")],
    },
    Rule {
        name: "opencode_retrying",
        provider: P,
        activity: Activity::Running,
        confidence: 0.8,
        when: &[c(LastLines(12), r"\[retrying in \d+s attempt #\d+\]")],
    },
    Rule {
        name: "opencode_interrupt_footer",
        provider: P,
        activity: Activity::Running,
        confidence: 0.7,
        when: &[
            c(LastLines(4), r"(?m)\besc interrupt\b"),
            c(Title, r"^OC \| "),
        ],
    },
];

/// OpenCode's rules read the last lines and the title only.
pub fn layout(lines: &[String]) -> Layout {
    Layout {
        box_top: lines.len(),
        footer_start: lines.len(),
        ..Layout::default()
    }
}
