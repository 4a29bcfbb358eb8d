//! OpenCode screen rules (C-006). OpenCode 1.18 (observed) draws a full-screen TUI: while a
//! turn runs the footer shows `esc interrupt`; a permission opens `△ Permission required` with
//! `Allow once   Allow always   Reject`; a question shows `↑↓ select  enter submit  esc
//! dismiss`; a retry shows `[retrying in 4s attempt #2]`. Idle, the footer keeps only
//! `tab agents  ctrl+p commands`. The title (`OpenCode`, later `OC | <session title>`) is the
//! same in every state, so no rule reads it. An API error shows only its message in a box,
//! which no rule can tell from an answer: the plugin's `session.error` is the witness.
//!
//! Checked against the real TUI's screens in `fixtures/screens/opencode/`; no layout is needed.
use super::{Region::*, Rule, c, rule};
use crate::core::types::{Activity::*, Provider};

const P: Provider = Provider::OpenCode;

/// Priority order: dialogs, then running.
#[rustfmt::skip] // a table: a rule's name, activity and confidence, then its conditions
pub(crate) static RULES: &[Rule] = &[
    rule(P, "opencode_permission_dialog", WaitingApproval, 0.95, &[
        c(LastLines(25), r"△\s+Permission required"),
        c(LastLines(6), r"Allow once\s+Allow always\s+Reject"),
    ]),
    rule(P, "opencode_question", WaitingInput, 0.85, &[
        c(LastLines(4), r"↑↓ select\s+enter submit\s+esc dismiss"),
    ]),
    rule(P, "opencode_retrying", Running, 0.8, &[
        c(LastLines(12), r"\[retrying in \d+s attempt #\d+\]"),
    ]),
    // The footer under the prompt box: `■■■⬝⬝  esc interrupt   tab agents  ctrl+p commands`
    // (wide panes add `• OpenCode <version>` after it).
    rule(P, "opencode_interrupt_footer", Running, 0.85, &[
        c(LastLines(2), r"\besc interrupt\s+tab agents\s+ctrl\+p commands"),
    ]),
    // The same footer without `esc interrupt`, under the prompt box's `┃  <agent> · <model>`.
    rule(P, "opencode_idle_footer", Idle, 0.8, &[
        c(LastLines(3), r"tab agents\s+ctrl\+p commands"),
        c(LastLines(6), r"(?m)^\s*┃\s+\S.* · \S"),
    ]),
];
