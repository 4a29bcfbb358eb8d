//! Codex CLI screen rules (C-006) and its layout: the composer `› …` near the bottom with the
//! model/cwd line and the `? for shortcuts` footer below it, the status line
//! `• Working (Ns • esc to interrupt)` above it (often absent while text streams: then only the
//! braille spinner in pane_title tells), approval and question dialogs that replace the composer,
//! and `■` error lines in the transcript. Seen with codex-cli 0.169.
use super::{Layout, Region::*, Rule, c};
use crate::core::types::{Activity, Provider};

const P: Provider = Provider::Codex;

/// Priority order: dialogs, then running (status line, then title spinner, because the screen is
/// often silent while streaming), then the last turn's outcome, then idle.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        name: "codex_approval_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.95,
        when: &[
            c(LastLines(30), r"(?m)^\s*Would you like to "),
            c(LastLines(14), r"(?m)^\s*(›\s*)?1\.\s+Yes"),
            c(LastLines(3), r"(?i)press enter to confirm or esc to cancel"),
        ],
    },
    Rule {
        name: "codex_request_user_input",
        provider: P,
        activity: Activity::WaitingInput,
        confidence: 0.9,
        when: &[
            c(LastLines(25), r"(?m)^\s*Question \d+\s*/\s*\d+"),
            c(LastLines(3), r"(?i)enter to submit"),
        ],
    },
    Rule {
        name: "codex_startup_dialog",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.8,
        when: &[
            c(
                LastLines(15),
                r"(?i)hooks need review|do you trust|trust the (files|contents)|migrat|upgrade",
            ),
            c(LastLines(15), r"(?m)^\s*›\s*1\.\s+\S"),
            c(
                LastLines(3),
                r"(?i)enter (to )?confirm|press enter to continue",
            ),
        ],
    },
    Rule {
        name: "codex_status_line",
        provider: P,
        activity: Activity::Running,
        confidence: 0.9,
        when: &[c(AboveInputBox(4), r"(?m)^\S\s+\S.*\((\d+\s*[hms]\s*)+•")],
    },
    Rule {
        name: "codex_title_spinner",
        provider: P,
        activity: Activity::Running,
        confidence: 0.75,
        when: &[c(Title, r"^[\x{2801}-\x{28FF}]")],
    },
    Rule {
        name: "codex_last_turn_interrupted",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.8,
        when: &[
            c(LastTurn, r"(?m)^■\s+Conversation interrupted"),
            c(InputBox, r"^›"),
        ],
    },
    // Issue 23: `■ You've hit your usage limit. … try again at 7:13 PM.`
    Rule {
        name: "codex_last_turn_usage_limit",
        provider: P,
        activity: Activity::Limited,
        confidence: 0.85,
        when: &[
            c(LastTurn, r"(?m)^■\s+You[’']ve hit your usage limit"),
            c(InputBox, r"^›"),
        ],
    },
    Rule {
        name: "codex_last_turn_error",
        provider: P,
        activity: Activity::Error,
        confidence: 0.85,
        when: &[c(LastTurn, r"(?m)^■\s+\S"), c(InputBox, r"^›")],
    },
    Rule {
        name: "codex_idle_composer_footer",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.85,
        when: &[
            c(InputBox, r"^›"),
            c(
                Footer,
                r"\? for shortcuts|shift\+tab to cycle|context left|·\s+[~/]",
            ),
        ],
    },
    Rule {
        name: "codex_idle_composer",
        provider: P,
        activity: Activity::Idle,
        confidence: 0.6,
        when: &[c(InputBox, r"^›\s")],
    },
    Rule {
        name: "codex_title_action_required",
        provider: P,
        activity: Activity::WaitingApproval,
        confidence: 0.6,
        when: &[c(Title, r"^\[\s*[!.]\s*\]\s*Action Required")],
    },
];

/// Finds the composer: the last line starting with `›` that has at most 4 non-empty lines
/// below it (model line, footer). It runs to the first blank line (multi-line input).
pub(crate) fn layout(lines: &[String]) -> Layout {
    let mut out = Layout {
        box_top: lines.len(),
        footer_start: lines.len(),
        ..Layout::default()
    };
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
