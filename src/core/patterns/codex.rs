//! Codex CLI screen rules (C-006) and its layout: the composer `› …` near the bottom with the
//! model/cwd line and the `? for shortcuts` footer below it, the status line
//! `• Working (Ns • esc to interrupt)` above it (often absent while text streams: then only the
//! braille spinner in pane_title tells), approval and question dialogs that replace the composer,
//! and `■` error lines in the transcript. Seen with codex-cli 0.169.
use super::{Layout, Region::*, Rule, c, rule};
use crate::core::types::{Activity::*, Provider};

const P: Provider = Provider::Codex;

/// Priority order: dialogs, then running (status line, then title spinner, because the screen is
/// often silent while streaming), then the last turn's outcome, then idle.
#[rustfmt::skip] // a table: a rule's name, activity and confidence, then its conditions
pub(crate) static RULES: &[Rule] = &[
    rule(P, "codex_approval_dialog", WaitingApproval, 0.95, &[
        c(LastLines(30), r"(?m)^\s*Would you like to "),
        c(LastLines(14), r"(?m)^\s*(›\s*)?1\.\s+Yes"),
        c(LastLines(3), r"(?i)press enter to confirm or esc to cancel"),
    ]),
    rule(P, "codex_request_user_input", WaitingInput, 0.9, &[
        c(LastLines(25), r"(?m)^\s*Question \d+\s*/\s*\d+"),
        c(LastLines(3), r"(?i)enter to submit"),
    ]),
    rule(P, "codex_startup_dialog", WaitingApproval, 0.8, &[
        c(LastLines(15), r"(?i)hooks need review|do you trust|trust the (files|contents)|migrat|upgrade"),
        c(LastLines(15), r"(?m)^\s*›\s*1\.\s+\S"),
        c(LastLines(3), r"(?i)enter (to )?confirm|press enter to continue"),
    ]),
    rule(P, "codex_status_line", Running, 0.9, &[
        c(AboveInputBox(4), r"(?m)^\S\s+\S.*\((\d+\s*[hms]\s*)+•"),
    ]),
    rule(P, "codex_title_spinner", Running, 0.75, &[c(Title, r"^[\x{2801}-\x{28FF}]")]),
    rule(P, "codex_last_turn_interrupted", Idle, 0.8, &[
        c(LastTurn, r"(?m)^■\s+Conversation interrupted"),
        c(InputBox, r"^›"),
    ]),
    // Issue 23: `■ You've hit your usage limit. … try again at 7:13 PM.`
    rule(P, "codex_last_turn_usage_limit", Limited, 0.85, &[
        c(LastTurn, r"(?m)^■\s+You[’']ve hit your usage limit"),
        c(InputBox, r"^›"),
    ]),
    rule(P, "codex_last_turn_error", Error, 0.85, &[
        c(LastTurn, r"(?m)^■\s+\S"),
        c(InputBox, r"^›"),
    ]),
    rule(P, "codex_idle_composer_footer", Idle, 0.85, &[
        c(InputBox, r"^›"),
        c(Footer, r"\? for shortcuts|shift\+tab to cycle|context left|·\s+[~/]"),
    ]),
    rule(P, "codex_idle_composer", Idle, 0.6, &[c(InputBox, r"^›\s")]),
    rule(P, "codex_title_action_required", WaitingApproval, 0.6, &[
        c(Title, r"^\[\s*[!.]\s*\]\s*Action Required"),
    ]),
];

/// Finds the composer: the last line starting with `›` that has at most 4 non-empty lines
/// below it (model line, footer). It runs to the first blank line (multi-line input).
pub(crate) fn layout(lines: &[String]) -> Layout {
    let mut out = Layout::without_box(lines);
    let mut nonempty_below = 0usize;
    for i in (0..lines.len()).rev() {
        let line = &lines[i];
        if line.starts_with('›') {
            let mut end = i;
            while end + 1 < lines.len() && !lines[end + 1].trim().is_empty() {
                end += 1;
            }
            out.input_box = Some((i, end));
            out.box_top = i;
            out.footer_start = end + 1;
            break;
        }
        if !line.trim().is_empty() {
            nonempty_below += 1;
            if nonempty_below > 4 {
                break;
            }
        }
    }
    if out.input_box.is_some() {
        out.last_user_turn = (0..out.box_top).rev().find(|&i| {
            lines[i]
                .strip_prefix('›')
                .is_some_and(|r| r.starts_with(' ') && !r.trim().is_empty())
        });
    }
    out
}
