//! C-006 (patterns part of Flow-008): the heuristic screen rules, kept as DATA.
//!
//! Every rule names the provider it belongs to, the activity it implies, a confidence and a list
//! of conditions. A condition is a regex that must match somewhere inside a *region* of the
//! screen: the pane title, the footer below the agent's input box, the last N non-empty lines,
//! the lines just above the input box, the last turn's output, and so on. The region is part of
//! the rule because the same words mean different things in different places: "Do you want to
//! proceed?" inside an answer is prose, the same words in the dialog at the bottom are an
//! approval. Tables are ordered by priority: the first rule whose conditions all hold decides.
//!
//! The layout (where the input box is, which line is the last user turn) is found by small
//! per-provider functions in `claude.rs` / `codex.rs`; the rules only refer to regions by name.
//! The capability registry (C-009) points at [`rules_for`].
use crate::core::types::{Activity, Provider};

pub mod claude;
pub mod codex;
pub mod gemini;
pub mod opencode;

/// A part of the screen a condition looks at. Lines are ANSI-stripped, right-trimmed, with
/// non-breaking spaces turned into plain spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The pane title (`#{pane_title}`), as one line.
    Title,
    /// The last `n` non-empty lines of the screen.
    LastLines(usize),
    /// The lines below the last horizontal rule (`────`) on screen. Claude draws its footer there,
    /// and its dialogs open with a rule, so this is "the bottom box".
    BelowLastRule,
    /// The agent's input box itself (Claude: between its two rules; Codex: the composer line).
    InputBox,
    /// The lines below the input box (footer: shortcuts, modes, `esc to interrupt`).
    Footer,
    /// The last `n` non-empty lines above the input box (spinner / status line lives there).
    AboveInputBox(usize),
    /// The transcript lines after the last user turn and above the input box.
    LastTurn,
}

impl Region {
    pub fn name(self) -> &'static str {
        match self {
            Region::Title => "title",
            Region::LastLines(_) => "last_lines",
            Region::BelowLastRule => "below_last_rule",
            Region::InputBox => "input_box",
            Region::Footer => "footer",
            Region::AboveInputBox(_) => "above_input_box",
            Region::LastTurn => "last_turn",
        }
    }
}

/// One condition: `pattern` (a regex, compiled with multi-line mode) must match the text of
/// `region` (its lines joined by `\n`).
#[derive(Debug, Clone, Copy)]
pub struct Cond {
    pub(crate) region: Region,
    pub(crate) pattern: &'static str,
}

/// One screen rule. All `when` conditions must hold.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub provider: Provider,
    pub activity: Activity,
    /// 0..1: how sure a match makes us of `activity` (and, for non-title rules, of the provider).
    pub(crate) confidence: f32,
    pub when: &'static [Cond],
}

impl Rule {
    /// A rule that only reads the pane title can hint an activity but never identifies an agent.
    pub(crate) fn title_only(&self) -> bool {
        self.when.iter().all(|c| c.region == Region::Title)
    }
}

/// The rule table of a provider, in priority order.
pub(crate) fn rules_for(provider: Provider) -> &'static [Rule] {
    match provider {
        Provider::Claude => claude::RULES,
        Provider::Codex => codex::RULES,
        Provider::Gemini => gemini::RULES,
        Provider::OpenCode => opencode::RULES,
        // Nothing on screen identifies an agent agtmux has no adapter for.
        Provider::Generic => &[],
    }
}

/// Where the agent's UI parts sit on one screen, as line indices into the normalized lines.
/// Found by [`claude::layout`] / [`codex::layout`] (no other agent draws a box); read through [`Region`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// First and last line of the input box's content (inclusive), when one is on screen.
    pub(crate) input_box: Option<(usize, usize)>,
    /// First line that belongs to the box (its top rule for Claude); lines above are transcript.
    pub(crate) box_top: usize,
    /// First line of the footer below the box.
    pub(crate) footer_start: usize,
    /// The line of the last user turn above the input box.
    pub(crate) last_user_turn: Option<usize>,
    /// The last horizontal rule on screen.
    pub(crate) last_rule: Option<usize>,
}

impl Layout {
    /// No input box on `lines`: the box and the footer start past the last line.
    pub(crate) fn without_box(lines: &[String]) -> Layout {
        Layout {
            box_top: lines.len(),
            footer_start: lines.len(),
            ..Layout::default()
        }
    }
}

/// The layout finder of a provider.
pub fn layout_for(provider: Provider, lines: &[String]) -> Layout {
    match provider {
        Provider::Claude => claude::layout(lines),
        Provider::Codex => codex::layout(lines),
        // Their rules read the last lines and the title only.
        Provider::Gemini | Provider::OpenCode | Provider::Generic => Layout::without_box(lines),
    }
}

/// True for a horizontal rule: at least 8 box-drawing dashes and nothing but dashes and blanks.
pub(crate) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    let dashes = t
        .chars()
        .filter(|&ch| matches!(ch, '─' | '━' | '═'))
        .count();
    dashes >= 8 && t.chars().all(|ch| matches!(ch, '─' | '━' | '═' | ' '))
}

/// Shorthand for the tables: a condition.
pub(crate) const fn c(region: Region, pattern: &'static str) -> Cond {
    Cond { region, pattern }
}

/// Shorthand for the tables: a rule.
pub(crate) const fn rule(
    provider: Provider,
    name: &'static str,
    activity: Activity,
    confidence: f32,
    when: &'static [Cond],
) -> Rule {
    Rule {
        name,
        provider,
        activity,
        confidence,
        when,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn every_pattern_compiles_and_rules_are_well_formed() {
        for p in Provider::ALL {
            let rules = rules_for(*p);
            assert_eq!(rules.is_empty(), *p == Provider::Generic, "{p}");
            for r in rules {
                assert_eq!(r.provider, *p, "{} listed under the wrong provider", r.name);
                assert!(!r.when.is_empty(), "{} has no condition", r.name);
                assert!(r.confidence > 0.0 && r.confidence <= 1.0, "{}", r.name);
                for cond in r.when {
                    assert!(
                        Regex::new(cond.pattern).is_ok(),
                        "{}: {}",
                        r.name,
                        cond.pattern
                    );
                }
            }
            let mut names: Vec<_> = rules.iter().map(|r| r.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), rules.len(), "rule names must be unique");
        }
    }
}
