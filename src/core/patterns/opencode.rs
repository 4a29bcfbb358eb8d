//! OpenCode screen rules (C-006). OpenCode 1.18 (observed) draws a full-screen TUI: while a
//! turn runs the footer shows `esc interrupt`; a permission opens `△ Permission required` with
//! `Allow once   Allow always   Reject`; a question shows `↑↓ select  enter submit  esc
//! dismiss`; a retry shows `[retrying in 4s attempt #2]`. Idle, the footer keeps only
//! `tab agents  ctrl+p commands`. The title (`OpenCode`, later `OC | <session title>`) is the
//! same in every state, so no rule reads it. An API error shows only its message in a box,
//! which no rule can tell from an answer: the plugin's `session.error` is the witness.
//!
//! Checked against the real TUI's screens in `fixtures/screens/opencode/`; no layout is needed.
use super::{Layout, Region::*, Rule, c};
use crate::core::types::{Activity, Provider};

const P: Provider = Provider::OpenCode;

/// Priority order: dialogs, then running.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        name: "opencode_permission_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.95,
        when: &[
            c(LastLines(25), r"△\s+Permission required"),
            c(LastLines(6), r"Allow once\s+Allow always\s+Reject"),
        ],
    },
    Rule {
        name: "opencode_question",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.85,
        when: &[c(LastLines(4), r"↑↓ select\s+enter submit\s+esc dismiss")],
    },
    Rule {
        name: "opencode_retrying",
        provider: P,
        activity: Activity::Running,
        confidence: 0.8,
        when: &[c(LastLines(12), r"\[retrying in \d+s attempt #\d+\]")],
    },
    // The footer under the prompt box: `■■■⬝⬝  esc interrupt   tab agents  ctrl+p commands`
    // (wide panes add `• OpenCode <version>` after it).
    Rule {
        name: "opencode_interrupt_footer",
        provider: P,
        activity: Activity::Running,
        confidence: 0.85,
        when: &[c(
            LastLines(2),
            r"\besc interrupt\s+tab agents\s+ctrl\+p commands",
        )],
    },
    // The same footer without `esc interrupt`, under the prompt box's `┃  <agent> · <model>`.
    Rule {
        name: "opencode_idle_footer",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.8,
        when: &[
            c(LastLines(3), r"tab agents\s+ctrl\+p commands"),
            c(LastLines(6), r"(?m)^\s*┃\s+\S.* · \S"),
        ],
    },
];

/// OpenCode's rules read the last lines and the title only.
pub(crate) fn layout(lines: &[String]) -> Layout {
    Layout {
        box_top: lines.len(),
        footer_start: lines.len(),
        ..Layout::default()
    }
}
