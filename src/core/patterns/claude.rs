//! Claude Code screen rules (C-006) and its layout: the prompt box `❯` between two `────`
//! rules, the footer below it, the spinner line above it, and dialogs that open with a rule.
//! Seen with Claude Code 2.1.x (see `fixtures/screens/README.md`).
use super::{Layout, Region::*, Rule, c, is_rule};
use crate::core::types::{Activity, Provider};

/// Line-start glyphs of Claude's spinner line (`✽ Contemplating… (3s · ↓ 7 tokens)`).
macro_rules! spin {
    () => {
        "[·✢✳✶✻✽✺*]"
    };
}

const P: Provider = Provider::Claude;

/// Priority order: dialogs, then running, then the last turn's error, then idle, then title hints.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        name: "claude_permission_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.95,
        when: &[
            c(BelowLastRule, r"(?m)^\s*Do you want to "),
            c(BelowLastRule, r"(?m)^\s*(❯\s*)?1\.\s+Yes"),
            c(LastLines(2), r"Esc to cancel"),
        ],
    },
    Rule {
        name: "claude_plan_exit_dialog",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.85,
        when: &[
            c(BelowLastRule, r"(?m)^\s*Would you like to proceed"),
            c(BelowLastRule, r"(?m)^\s*(❯\s*)?1\.\s+Yes"),
        ],
    },
    Rule {
        name: "claude_ask_user_question",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.9,
        when: &[
            c(LastLines(30), r"(?m)(^|\s)[☐☒✔]\s+\S"),
            c(LastLines(2), r"Enter to select"),
        ],
    },
    Rule {
        name: "claude_spinner_line",
        provider: P,
        activity: Activity::Running,
        confidence: 0.9,
        when: &[c(
            AboveInputBox(6),
            concat!(r"(?m)^", spin!(), r"\s+[^\s…][^\n…]{0,60}…"),
        )],
    },
    Rule {
        name: "claude_api_retry_wait",
        provider: P,
        activity: Activity::Running,
        confidence: 0.9,
        when: &[c(
            AboveInputBox(6),
            concat!(
                r"(?m)^",
                spin!(),
                r"\s.*Retrying in \d+\s*s.*attempt \d+\s*/\s*\d+"
            ),
        )],
    },
    Rule {
        name: "claude_footer_esc_to_interrupt",
        provider: P,
        activity: Activity::Running,
        confidence: 0.85,
        when: &[c(Footer, r"(?i)esc to interrupt")],
    },
    // Issue 23: the turn stopped on the account's usage limit (the message names the reset
    // time). Only with a subscriber login; an API-key login retries instead (docs/usage-states.md).
    Rule {
        name: "claude_last_turn_usage_limit",
        provider: P,
        activity: Activity::Limited,
        confidence: 0.85,
        when: &[
            c(
                LastTurn,
                r"(?m)^(●|\s*⎿)\s+You[’']ve hit your [a-z'’ ]{0,40}limit",
            ),
            c(InputBox, r"^❯"),
        ],
    },
    Rule {
        name: "claude_last_turn_api_error",
        provider: P,
        activity: Activity::Error,
        confidence: 0.85,
        when: &[
            c(LastTurn, r"(?m)^(●|\s*⎿)\s+API Error"),
            c(InputBox, r"^❯"),
        ],
    },
    Rule {
        name: "claude_idle_prompt_footer",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.9,
        when: &[
            c(InputBox, r"^❯"),
            c(Footer, r"\? for shortcuts|shift\+tab to cycle|⏵⏵|⏸"),
        ],
    },
    Rule {
        name: "claude_idle_prompt_box",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.7,
        when: &[c(InputBox, r"^❯")],
    },
    Rule {
        name: "claude_title_spinner",
        provider: P,
        activity: Activity::Running,
        confidence: 0.5,
        when: &[c(Title, r"^[\x{2801}-\x{28FF}]")],
    },
    Rule {
        name: "claude_title_idle",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.4,
        when: &[c(Title, r"^✳\s")],
    },
];

/// Finds the prompt box: the last pair of adjacent rules whose first inner line starts with `❯`.
/// Dialogs replace the box, so then there is none (the dialog sits below the last rule).
pub(crate) fn layout(lines: &[String]) -> Layout {
    let rules: Vec<usize> = (0..lines.len()).filter(|&i| is_rule(&lines[i])).collect();
    let mut out = Layout {
        last_rule: rules.last().copied(),
        box_top: lines.len(),
        footer_start: lines.len(),
        ..Layout::default()
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
