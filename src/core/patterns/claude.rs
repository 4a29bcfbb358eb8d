//! Claude Code screen rules (C-006) and its layout: the prompt box `❯` between two `────`
//! rules, the footer below it, the spinner line above it, and dialogs that open with a rule.
//! Seen with Claude Code 2.1.x (see `fixtures/screens/README.md`).
use super::{Layout, Region::*, Rule, c, is_rule, rule};
use crate::core::types::{Activity::*, Provider};

/// Line-start glyphs of Claude's spinner line (`✽ Contemplating… (3s · ↓ 7 tokens)`).
macro_rules! spin {
    () => {
        "[·✢✳✶✻✽✺*]"
    };
}

const P: Provider = Provider::Claude;

/// Priority order: dialogs, then running, then the last turn's error, then idle, then title hints.
#[rustfmt::skip] // a table: a rule's name, activity and confidence, then its conditions
pub(crate) static RULES: &[Rule] = &[
    rule(P, "claude_permission_dialog", WaitingApproval, 0.95, &[
        c(BelowLastRule, r"(?m)^\s*Do you want to "),
        c(BelowLastRule, r"(?m)^\s*(❯\s*)?1\.\s+Yes"),
        c(LastLines(2), r"Esc to cancel"),
    ]),
    rule(P, "claude_plan_exit_dialog", WaitingInput, 0.85, &[
        c(BelowLastRule, r"(?m)^\s*Would you like to proceed"),
        c(BelowLastRule, r"(?m)^\s*(❯\s*)?1\.\s+Yes"),
    ]),
    rule(P, "claude_ask_user_question", WaitingInput, 0.9, &[
        c(LastLines(30), r"(?m)(^|\s)[☐☒✔]\s+\S"),
        c(LastLines(2), r"Enter to select"),
    ]),
    rule(P, "claude_spinner_line", Running, 0.9, &[
        c(AboveInputBox(6), concat!(r"(?m)^", spin!(), r"\s+[^\s…][^\n…]{0,60}…")),
    ]),
    rule(P, "claude_api_retry_wait", Running, 0.9, &[
        c(AboveInputBox(6), concat!(
            r"(?m)^", spin!(), r"\s.*Retrying in \d+\s*s.*attempt \d+\s*/\s*\d+"
        )),
    ]),
    rule(P, "claude_footer_esc_to_interrupt", Running, 0.85, &[c(Footer, r"(?i)esc to interrupt")]),
    // Issue 23: the turn stopped on the account's usage limit (the message names the reset
    // time). Only with a subscriber login; an API-key login retries instead (docs/usage-states.md).
    rule(P, "claude_last_turn_usage_limit", Limited, 0.85, &[
        c(LastTurn, r"(?m)^(●|\s*⎿)\s+You[’']ve hit your [a-z'’ ]{0,40}limit"),
        c(InputBox, r"^❯"),
    ]),
    rule(P, "claude_last_turn_api_error", Error, 0.85, &[
        c(LastTurn, r"(?m)^(●|\s*⎿)\s+API Error"),
        c(InputBox, r"^❯"),
    ]),
    rule(P, "claude_idle_prompt_footer", Idle, 0.9, &[
        c(InputBox, r"^❯"),
        c(Footer, r"\? for shortcuts|shift\+tab to cycle|⏵⏵|⏸"),
    ]),
    rule(P, "claude_idle_prompt_box", Idle, 0.7, &[c(InputBox, r"^❯")]),
    rule(P, "claude_title_spinner", Running, 0.5, &[c(Title, r"^[\x{2801}-\x{28FF}]")]),
    rule(P, "claude_title_idle", Idle, 0.4, &[c(Title, r"^✳\s")]),
];

/// Finds the prompt box: the last pair of adjacent rules whose first inner line starts with `❯`.
/// Dialogs replace the box, so then there is none (the dialog sits below the last rule).
pub(crate) fn layout(lines: &[String]) -> Layout {
    let rules: Vec<usize> = (0..lines.len()).filter(|&i| is_rule(&lines[i])).collect();
    let mut out = Layout {
        last_rule: rules.last().copied(),
        ..Layout::without_box(lines)
    };
    for w in rules.windows(2).rev() {
        let (top, bottom) = (w[0], w[1]);
        if bottom > top + 1 && bottom - top <= 16 && lines[top + 1].starts_with('❯') {
            out.input_box = Some((top + 1, bottom - 1));
            out.box_top = top;
            out.footer_start = bottom + 1;
            break;
        }
    }
    if out.input_box.is_some() {
        out.last_user_turn = (0..out.box_top).rev().find(|&i| is_user_turn(&lines[i]));
    }
    out
}

/// A user prompt echoed in the transcript: `❯ text`.
fn is_user_turn(line: &str) -> bool {
    line.strip_prefix('❯')
        .is_some_and(|rest| rest.starts_with(' ') && !rest.trim().is_empty())
}
