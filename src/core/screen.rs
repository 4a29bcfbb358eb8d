//! C-006 screen verdict (Flow-008): one snapshot of a pane (capture-pane text, title, size)
//! in, one guess out: which agent's UI is drawn and what it is doing, with the rule and the
//! lines that decided.
//!
//! WHY a layout-first design: the same words ("esc to interrupt", "Do you want to proceed?")
//! show up in answers, notes, pagers and editors. They only mean something in their place: in the
//! footer below the input box, in the dialog below the last rule, at the start of a line. So the
//! screen is normalized (SGR stripped, NBSP → space, right-trimmed), the provider's layout is
//! found, and the rule tables of `core::patterns` are evaluated region by region. No column
//! positions or byte offsets are used, so any terminal size and wrapped lines work.
//!
//! This is a single-snapshot guess. Presence (is an agent really there?) is not decided here:
//! see `core::classifier`, which never trusts a screen without a process hint.
use crate::core::extras::{ScreenExtras, screen_extras};
use crate::core::patterns::{self, Layout, Region, Rule};
use crate::core::types::{Activity, Provider};
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Non-identifying screen rules must reach this confidence to name a provider without a hint.
pub(crate) const STRONG_SIGNATURE: f32 = 0.8;

/// One pane snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScreenInput<'a> {
    /// `capture-pane -p -J` output; may contain SGR escapes (`-e`).
    pub text: &'a str,
    pub title: &'a str,
    /// `pane_current_command`.
    pub command: &'a str,
    pub cols: u16,
    pub rows: u16,
    /// The provider from the process tree, when known.
    pub provider_hint: Option<Provider>,
}

/// What the screen alone says about an agent being drawn (no activity).
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenSignature {
    pub provider: Provider,
    pub(crate) confidence: f32,
    pub rule: &'static str,
}

/// The single-snapshot verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenVerdict {
    /// The provider whose rules decided (the hint, or the screen's own signature).
    pub provider: Option<Provider>,
    pub activity: Activity,
    pub rule: &'static str,
    pub(crate) confidence: f32,
    /// The captured lines that decided.
    pub lines: Vec<String>,
    /// The strongest provider UI the screen itself shows (title rules never count).
    pub signature: Option<ScreenSignature>,
    /// Retry, compaction, background count, usage-limit line (issue 23, `core::extras`).
    pub extras: ScreenExtras,
}

impl ScreenVerdict {
    fn unknown(provider: Option<Provider>, rule: &'static str) -> Self {
        ScreenVerdict {
            provider,
            activity: Activity::Unknown,
            rule,
            confidence: 0.0,
            lines: Vec::new(),
            signature: None,
            extras: ScreenExtras::default(),
        }
    }
}

/// Removes terminal escape sequences (CSI such as SGR, OSC, and two-byte ESC sequences) and
/// other C0 control characters except `\n` and `\t`. Never panics on any input.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(ch) = it.next() {
        match ch {
            '\u{1b}' => match it.peek().copied() {
                Some('[') => {
                    it.next();
                    // CSI: parameters/intermediates until a final byte in @..~
                    for c in it.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    it.next();
                    // OSC: until BEL or ESC \
                    while let Some(c) = it.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if it.peek() == Some(&'\\') {
                                it.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    it.next();
                }
                None => {}
            },
            '\n' | '\t' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Screen text → lines: escapes stripped, `\r` dropped, NBSP → space, right-trimmed, trailing
/// blank lines removed.
pub fn normalize_lines(text: &str) -> Vec<String> {
    let clean = strip_ansi(text);
    let mut lines: Vec<String> = clean
        .split('\n')
        .map(|l| l.replace(['\u{a0}', '\t'], " ").trim_end().to_string())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

static COMPILED: LazyLock<HashMap<&'static str, Option<Regex>>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    for p in Provider::ALL {
        for r in patterns::rules_for(*p) {
            for cond in r.when {
                m.entry(cond.pattern)
                    .or_insert_with(|| Regex::new(cond.pattern).ok());
            }
        }
    }
    m
});

/// A shell or REPL prompt on the last line: the agent UI (if any is drawn) is not live.
static PROMPT_AT_BOTTOM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(.{0,120}[^\d\s]\s?)?[$#%]$|^(>>>|\.\.\.)$|^\S{0,30}>$|^In \[\d+\]:$").ok()
});

/// The last `n` non-empty lines before `end`, in screen order.
pub(crate) fn nonempty_tail(lines: &[String], end: usize, n: usize) -> Vec<&str> {
    let mut v: Vec<&str> = lines[..end.min(lines.len())]
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(String::as_str)
        .collect();
    v.reverse();
    v
}

/// The lines of one region.
fn region_lines<'a>(
    lines: &'a [String],
    title: &'a str,
    layout: &Layout,
    region: Region,
) -> Vec<&'a str> {
    let span = |from: usize, to: usize| -> Vec<&'a str> {
        if from >= to || from >= lines.len() {
            return Vec::new();
        }
        lines[from..to.min(lines.len())]
            .iter()
            .map(String::as_str)
            .collect()
    };
    match region {
        Region::Title => vec![title],
        Region::LastLines(n) => nonempty_tail(lines, lines.len(), n),
        Region::BelowLastRule => layout
            .last_rule
            .map_or_else(Vec::new, |r| span(r + 1, lines.len())),
        Region::InputBox => layout
            .input_box
            .map_or_else(Vec::new, |(a, b)| span(a, b + 1)),
        Region::Footer => {
            if layout.input_box.is_some() {
                span(layout.footer_start, lines.len())
            } else {
                Vec::new()
            }
        }
        Region::AboveInputBox(n) => {
            if layout.input_box.is_some() {
                nonempty_tail(lines, layout.box_top, n)
            } else {
                Vec::new()
            }
        }
        Region::LastTurn => {
            if layout.input_box.is_some() {
                let from = layout.last_user_turn.map_or(0, |u| u + 1);
                span(from, layout.box_top)
            } else {
                Vec::new()
            }
        }
    }
}

/// Evaluates one rule; on a match returns the deciding lines.
fn eval_rule(rule: &Rule, lines: &[String], title: &str, layout: &Layout) -> Option<Vec<String>> {
    let mut decided = Vec::new();
    for cond in rule.when {
        let re = COMPILED.get(cond.pattern)?.as_ref()?;
        let region = region_lines(lines, title, layout, cond.region);
        if region.is_empty() {
            return None;
        }
        let joined = region.join("\n");
        let m = re.find(&joined)?;
        // report the whole line(s) the match touched
        let start = joined[..m.start()].rfind('\n').map_or(0, |i| i + 1);
        let end = joined[m.end()..]
            .find('\n')
            .map_or(joined.len(), |i| m.end() + i);
        for l in joined[start..end].split('\n') {
            let l = l.trim().to_string();
            if !decided.contains(&l) {
                decided.push(l);
            }
        }
    }
    Some(decided)
}

/// The first matching rule of a provider, optionally skipping title-only rules.
fn first_match(
    provider: Provider,
    lines: &[String],
    title: &str,
    with_title: bool,
) -> Option<(&'static Rule, Vec<String>)> {
    let layout = patterns::layout_for(provider, lines);
    patterns::rules_for(provider)
        .iter()
        .filter(|r| with_title || !r.title_only())
        .find_map(|r| eval_rule(r, lines, title, &layout).map(|d| (r, d)))
}

/// What the screen alone shows: the best provider signature from non-title rules.
fn signature_of(
    lines: &[String],
    title: &str,
) -> Option<(ScreenSignature, Vec<String>, &'static Rule)> {
    let mut best: Option<(ScreenSignature, Vec<String>, &'static Rule)> = None;
    for p in Provider::ALL {
        if let Some((rule, decided)) = first_match(*p, lines, title, false) {
            let better = best
                .as_ref()
                .is_none_or(|(b, _, _)| rule.confidence > b.confidence);
            if better {
                let sig = ScreenSignature {
                    provider: *p,
                    confidence: rule.confidence,
                    rule: rule.name,
                };
                best = Some((sig, decided, rule));
            }
        }
    }
    best
}

/// Classifies one snapshot. With a provider hint, that provider's rules decide (title rules
/// included); without one, the screen must show a provider's UI by itself.
pub fn classify_screen(input: &ScreenInput) -> ScreenVerdict {
    let lines = normalize_lines(input.text);
    let title = strip_ansi(input.title);
    let title = title.trim();
    if let Some(last) = lines.iter().rev().find(|l| !l.trim().is_empty())
        && PROMPT_AT_BOTTOM
            .as_ref()
            .is_some_and(|re| re.is_match(last.trim()))
    {
        let mut v = ScreenVerdict::unknown(input.provider_hint, "shell_prompt_at_bottom");
        v.lines = vec![last.trim().to_string()];
        return v;
    }
    let signature = signature_of(&lines, title);
    let provider = input
        .provider_hint
        .or(signature.as_ref().map(|s| s.0.provider));
    let sig = signature.as_ref().map(|s| s.0.clone());
    let Some(provider) = provider else {
        return ScreenVerdict::unknown(None, "no_agent_ui");
    };
    let extras = screen_extras(provider, &lines);
    match first_match(provider, &lines, title, true) {
        Some((rule, decided)) => ScreenVerdict {
            provider: Some(provider),
            activity: rule.activity,
            rule: rule.name,
            confidence: rule.confidence,
            lines: decided,
            signature: sig,
            extras,
        },
        None => {
            let mut v = ScreenVerdict::unknown(Some(provider), "no_rule_matched");
            v.signature = sig;
            v.extras = extras;
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(width: usize) -> String {
        "─".repeat(width)
    }

    fn claude_screen(width: usize, above: &[&str], footer: &str) -> String {
        let mut s = String::new();
        for l in above {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!(
            "{}\n❯\u{a0}\n{}\n{}\n",
            rule(width),
            rule(width),
            footer
        ));
        s
    }

    fn verdict(text: &str, title: &str, hint: Option<Provider>) -> ScreenVerdict {
        classify_screen(&ScreenInput {
            text,
            title,
            command: "",
            cols: 80,
            rows: 24,
            provider_hint: hint,
        })
    }

    #[test]
    fn strip_ansi_removes_sgr_osc_and_controls() {
        assert_eq!(
            strip_ansi("\u{1b}[38;5;174m✽\u{1b}[39m Hi\u{1b}[0m"),
            "✽ Hi"
        );
        assert_eq!(
            strip_ansi("a\u{1b}]0;title\u{7}b\u{1b}]2;t\u{1b}\\c"),
            "abc"
        );
        assert_eq!(strip_ansi("x\r\u{8}y\u{1b}"), "xy");
        assert_eq!(strip_ansi("ok\u{1b}[12;"), "ok");
    }

    #[test]
    fn claude_idle_and_running_at_any_width() {
        let idle: &[&str] = &["❯ hi", "", "● Hello", "", "✻ Worked for 2s"];
        let run: &[&str] = &["❯ hi", "", "✽ Pondering… (3s · ↓ 7 tokens)"];
        // (transcript, footer, what the screen says)
        let cases = [
            (
                idle,
                "  ? for shortcuts",
                (Activity::Idle, "claude_idle_prompt_footer"),
            ),
            (
                run,
                "  esc to interrupt",
                (Activity::Running, "claude_spinner_line"),
            ),
        ];
        for w in [40, 80, 200] {
            for (lines, footer, want) in cases {
                let v = verdict(
                    &claude_screen(w, lines, footer),
                    "✳ x",
                    Some(Provider::Claude),
                );
                assert_eq!((v.activity, v.rule), want, "w={w}");
            }
        }
    }

    #[test]
    fn prose_in_an_answer_does_not_trigger() {
        let s = claude_screen(
            80,
            &[
                "❯ explain",
                "● The dialog says \"Do you want to proceed?\" and the footer says esc to interrupt.",
                "  ❯ 1. Yes",
                "  Esc to cancel",
                "✻ Worked for 2s",
            ],
            "  ? for shortcuts",
        );
        let v = verdict(&s, "", Some(Provider::Claude));
        assert_eq!(v.activity, Activity::Idle, "{v:?}");
    }

    #[test]
    fn claude_error_only_when_it_is_the_last_turn() {
        let err = claude_screen(
            80,
            &["❯ go", "● API Error: 400 bad", "✻ Cooked for 0s"],
            "  ? for shortcuts",
        );
        assert_eq!(
            verdict(&err, "", Some(Provider::Claude)).activity,
            Activity::Error
        );
        let later = claude_screen(
            80,
            &[
                "❯ go",
                "● API Error: 400 bad",
                "❯ again",
                "● fine now",
                "✻ Cooked for 0s",
            ],
            "  ? for shortcuts",
        );
        assert_eq!(
            verdict(&later, "", Some(Provider::Claude)).activity,
            Activity::Idle
        );
    }

    #[test]
    fn codex_title_spinner_beats_a_silent_composer() {
        let s = "› do it\n\n• Partial answ\n\n\n› Ask Codex to do anything\n\n  gpt · /w\n  ? for shortcuts\n";
        let v = verdict(s, "⠼ w", Some(Provider::Codex));
        assert_eq!(
            (v.activity, v.rule),
            (Activity::Running, "codex_title_spinner")
        );
        let v = verdict(s, "w", Some(Provider::Codex));
        assert_eq!(v.activity, Activity::Idle);
        // The screen identifies Codex by itself.
        let v = verdict(s, "w", None);
        assert_eq!(v.signature.map(|s| s.provider), Some(Provider::Codex));
    }

    #[test]
    fn a_shell_prompt_at_the_bottom_vetoes_any_ui_above() {
        let s = claude_screen(80, &["❯ hi"], "  esc to interrupt") + "user@host:~$ ";
        let v = verdict(&s, "", None);
        assert_eq!(
            (v.activity, v.rule, v.provider),
            (Activity::Unknown, "shell_prompt_at_bottom", None)
        );
    }

    #[test]
    fn title_alone_names_no_provider() {
        let v = verdict("hello\nworld\n", "⠋ claude", None);
        assert_eq!((v.provider, v.activity), (None, Activity::Unknown));
    }

    use crate::testutil::Lcg;

    /// The properties every screen, however broken, keeps: stripped text holds no escape or
    /// control character but newline and tab and stripping again changes nothing; normalized
    /// lines have no trailing blanks and no trailing blank line; the verdict is deterministic,
    /// keeps the provider hint, has a confidence in 0..=1, and quotes only lines that are on the
    /// screen or in the title.
    #[test]
    fn garbage_keeps_the_screen_properties() {
        const PIECES: &[&str] = &[
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}]0;t\u{7}",
            "\u{1b}[38;5;174m",
            "[999999999999m",
            "\u{9b}",
            "\u{0}",
            "\r",
            "\n",
            "\n",
            "\t",
            "\u{a0}",
            " ",
            "  ",
            "─────────",
            "❯",
            "›",
            ">",
            "$",
            "✽",
            "Esc to interrupt",
            "esc to interrupt)",
            "Do you want",
            "1. Yes",
            "Working",
            "(",
            ")",
            "…",
            "a",
            "é",
            "\u{7f}",
            "\u{200b}",
        ];
        let mut rng = Lcg(0x5eed);
        let mut decided = 0;
        for round in 0..600 {
            let mut text = String::new();
            for _ in 0..rng.next() % 60 {
                text.push_str(PIECES[rng.next() as usize % PIECES.len()]);
            }
            let title = PIECES[rng.next() as usize % PIECES.len()];
            let stripped = strip_ansi(&text);
            assert!(
                stripped.chars().all(|c| c == '\n'
                    || c == '\t'
                    || !(c.is_control() || ('\u{80}'..='\u{9f}').contains(&c))),
                "round {round}: {stripped:?}"
            );
            assert_eq!(strip_ansi(&stripped), stripped, "round {round}: idempotent");
            let lines = normalize_lines(&text);
            assert!(lines.last().is_none_or(|l| !l.is_empty()), "round {round}");
            for l in &lines {
                assert_eq!(l.trim_end(), l, "round {round}");
                assert!(!l.contains(['\r', '\t', '\u{a0}', '\n']), "round {round}");
            }
            let shown = format!("{}\n{}", lines.join("\n"), strip_ansi(title));
            for hint in [None, Some(Provider::Codex), Some(Provider::Claude)] {
                let v = verdict(&text, title, hint);
                assert_eq!(
                    v,
                    verdict(&text, title, hint),
                    "round {round}: deterministic"
                );
                if hint.is_some() {
                    assert_eq!(v.provider, hint, "round {round}: the hint is kept");
                }
                assert!((0.0..=1.0).contains(&v.confidence), "round {round}");
                if v.activity == Activity::Unknown {
                    assert_eq!(v.confidence, 0.0, "round {round}: {v:?}");
                }
                for l in &v.lines {
                    assert!(
                        shown.contains(l.as_str()),
                        "round {round}: {l:?} not on screen"
                    );
                }
                decided += usize::from(v.activity != Activity::Unknown);
            }
        }
        // The pieces are agent UI often enough that rules, not only the guards, are exercised.
        assert!(decided >= 10, "only {decided} verdicts decided by a rule");
    }
}
