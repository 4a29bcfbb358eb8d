//! The agent dialogs that `agtmux approve|deny|reply` answer (issue 21 item 3): recognise one
//! on a captured screen, fingerprint it, and plan the keys that answer it.
//!
//! WHY pure and per provider: the keys were learnt from the real TUIs (Claude Code 2.1.197,
//! codex-cli 0.169.0, recorded under `fixtures/screens/actions/`), and a wrong key lands in
//! someone's agent. So a plan is made only for a dialog recognised whole (its question, its
//! numbered options and its footer), and names the option by its label, never by where the
//! cursor happens to be:
//! - Claude's permission dialog ("Do you want to proceed?", options `1. Yes` … `3. No`,
//!   footer "Esc to cancel"): the option's digit selects and submits it at once, wherever the
//!   cursor is. Approve = the first option labelled `Yes`, deny = the `No` option.
//! - Claude's AskUserQuestion (a `☐ Header` tab, the question, numbered options, footer
//!   "Enter to select"): a digit picks and submits that option; the `Type something.` option's
//!   digit focuses its text field, the text is typed literally, Enter submits.
//! - Codex's approval ("Would you like to …", options with their shortcut in brackets,
//!   `1. Yes, proceed (y)` … `3. No, and tell Codex what to do differently (esc)`, footer
//!   "Press enter to confirm or esc to cancel"): the shortcut answers at once.
//! - Gemini CLI 0.61 (boxed in `│`): the tool confirmation ("Allow execution of …?", options
//!   `1. Allow once` … `3. No, suggest changes (esc)`) takes the digit of `Allow once` at once,
//!   wherever the cursor is, and Esc to deny; `ask_user` ("Answer Questions", numbered options,
//!   "Enter to select") takes an option's digit, or the digit of "Enter a custom value", the
//!   text, Enter — as Claude's.
//!
//! The fingerprint hashes what the dialog asks (question lines and option labels, without the
//! cursor), so moving the cursor keeps it and a different question changes it.

/// Which dialog is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialogKind {
    /// Claude Code's tool permission dialog.
    Permission,
    /// Claude Code's AskUserQuestion.
    Question,
    /// Codex's command/edit approval, Gemini CLI's tool confirmation.
    Approval,
}

impl DialogKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DialogKind::Permission => "permission",
            DialogKind::Question => "question",
            DialogKind::Approval => "approval",
        }
    }
}

/// One numbered option of a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialogOption {
    pub num: u32,
    /// The label without the shortcut hint.
    pub label: String,
    /// The shortcut shown in brackets after the label (Codex: `y`, `p`, `esc`).
    pub hint: Option<String>,
}

/// A dialog recognised on a screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dialog {
    pub provider: &'static str,
    pub kind: DialogKind,
    /// What it asks (trimmed, non-empty lines from its top to its options).
    pub question: Vec<String>,
    pub options: Vec<DialogOption>,
}

/// What the user wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    Approve,
    Deny,
    Reply(String),
}

impl Act {
    pub(crate) fn verb(&self) -> &'static str {
        match self {
            Act::Approve => "approve",
            Act::Deny => "deny",
            Act::Reply(_) => "reply",
        }
    }
}

/// One step of a key plan: text typed literally (`send-keys -l`) or a named tmux key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Literal(String),
    Named(&'static str),
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanError {
    /// The action does not answer this kind of dialog (reply to a permission, approve a question).
    WrongDialog(String),
    /// The dialog lacks the option the action needs, or the reply is not one line of text.
    Unanswerable(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::WrongDialog(s) | PlanError::Unanswerable(s) => f.write_str(s),
        }
    }
}

/// Providers whose dialogs are answered; others are refused ("not supported for …").
pub(crate) fn supported(provider: &str) -> bool {
    matches!(provider, "claude" | "codex" | "gemini")
}

/// The dialog on `screen` (plain `capture-pane -p -J` text) of `provider`'s TUI, if one is
/// drawn whole. The lowest dialog wins (an answered one may still be in the scrollback above).
pub(crate) fn parse(provider: &str, screen: &str) -> Option<Dialog> {
    let lines: Vec<&str> = screen.lines().map(|l| l.trim_end()).collect();
    match provider {
        "claude" => claude_question(&lines).or_else(|| claude_permission(&lines)),
        "codex" => codex_approval(&lines),
        "gemini" => {
            let lines: Vec<&str> = lines.iter().map(|l| unbox(l)).collect();
            gemini_question(&lines).or_else(|| gemini_approval(&lines))
        }
        _ => None,
    }
}

impl Dialog {
    /// A dialog of `provider` asking what `question_lines` say, with `options`.
    fn new(
        provider: &'static str,
        kind: DialogKind,
        question_lines: &[&str],
        options: Vec<DialogOption>,
    ) -> Self {
        Dialog {
            provider,
            kind,
            question: question(question_lines),
            options,
        }
    }

    /// `provider:kind:hash` of the question and the option labels (cursor-free).
    pub(crate) fn fingerprint(&self) -> String {
        let mut s = String::new();
        for q in &self.question {
            s.push_str(q);
            s.push('\n');
        }
        for o in &self.options {
            s.push_str(&format!("{}. {}\n", o.num, o.label));
        }
        format!(
            "{}:{}:{:016x}",
            self.provider,
            self.kind.as_str(),
            fnv1a64(s.as_bytes())
        )
    }

    /// One line saying what is asked, for the popup and the CLI's report.
    pub(crate) fn summary(&self) -> String {
        let skip = ["Bash command", "Do you want to proceed?"];
        let q: Vec<&str> = self
            .question
            .iter()
            .map(String::as_str)
            .filter(|l| !skip.contains(l) && !l.starts_with('☐'))
            .collect();
        q.join(" · ")
    }

    fn first(&self, pred: impl Fn(&str) -> bool) -> Option<&DialogOption> {
        self.options.iter().find(|o| pred(&o.label))
    }

    /// The keys that do `act` on this dialog.
    pub(crate) fn plan(&self, act: &Act) -> Result<Vec<Key>, PlanError> {
        match (self.kind, act) {
            (DialogKind::Question, Act::Approve | Act::Deny) => {
                Err(PlanError::WrongDialog(format!(
                    "{} shows a question: answer it with `agtmux reply`",
                    self.provider
                )))
            }
            (DialogKind::Permission | DialogKind::Approval, Act::Reply(_)) => {
                Err(PlanError::WrongDialog(format!(
                    "{} asks for a permission, not a reply: use `agtmux approve` or `agtmux deny`",
                    self.provider
                )))
            }
            (DialogKind::Permission, Act::Approve) => self
                .first(|l| l == "Yes" || l.starts_with("Yes,") && !l.contains("always"))
                .map(|o| vec![Key::Literal(o.num.to_string())])
                .ok_or_else(|| no_option("Yes")),
            (DialogKind::Permission, Act::Deny) => self
                .first(|l| l == "No" || l.starts_with("No,") || l.starts_with("No "))
                .map(|o| vec![Key::Literal(o.num.to_string())])
                .ok_or_else(|| no_option("No")),
            (DialogKind::Approval, Act::Approve) if self.provider == "gemini" => self
                .first(|l| l == "Allow once")
                .map(|o| vec![Key::Literal(o.num.to_string())])
                .ok_or_else(|| no_option("Allow once")),
            (DialogKind::Approval, Act::Approve) => self
                .first(|l| l.starts_with("Yes"))
                .and_then(|o| o.hint.as_deref())
                .map(shortcut)
                .ok_or_else(|| no_option("Yes … (y)")),
            (DialogKind::Approval, Act::Deny) => self
                .first(|l| l.starts_with("No"))
                .and_then(|o| o.hint.as_deref())
                .map(shortcut)
                .ok_or_else(|| no_option("No … (esc)")),
            (DialogKind::Question, Act::Reply(text)) => self.answer(text),
        }
    }

    fn answer(&self, text: &str) -> Result<Vec<Key>, PlanError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(PlanError::Unanswerable("the reply is empty".into()));
        }
        if text.len() > MAX_REPLY {
            return Err(PlanError::Unanswerable(format!(
                "the reply is {} bytes; at most {MAX_REPLY} are typed into a dialog",
                text.len()
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(PlanError::Unanswerable(
                "the reply must be one line without control characters (a newline would submit it)"
                    .into(),
            ));
        }
        let free = |l: &str| l == TYPE_SOMETHING || l == CUSTOM_VALUE;
        let typed = self.first(free);
        let choices = self.options.iter().filter(|o| !free(&o.label));
        for o in choices {
            if t == o.num.to_string() || t.eq_ignore_ascii_case(&o.label) {
                return Ok(vec![Key::Literal(o.num.to_string())]);
            }
        }
        match typed {
            Some(o) => Ok(vec![
                Key::Literal(o.num.to_string()),
                Key::Literal(text.to_string()),
                Key::Named("Enter"),
            ]),
            None => Err(PlanError::Unanswerable(format!(
                "{text:?} is none of the options ({}) and the question takes no typed answer",
                self.options
                    .iter()
                    .map(|o| o.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// FNV-1a 64 (the core names no other module for a hash).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Longest reply typed into a dialog (bytes): an answer, not a document.
pub(crate) const MAX_REPLY: usize = 4096;

/// Claude's free-text option of AskUserQuestion.
const TYPE_SOMETHING: &str = "Type something.";
/// Gemini CLI's free-text option of `ask_user`.
const CUSTOM_VALUE: &str = "Enter a custom value";

/// A line without the box drawing around it (Gemini draws its dialogs in `│ … │`, nested).
fn unbox(l: &str) -> &str {
    let mut t = l.trim();
    loop {
        let s = t
            .strip_prefix('│')
            .map(|x| x.strip_suffix('│').unwrap_or(x))
            .map(str::trim);
        match s {
            Some(x) => t = x,
            None => return t,
        }
    }
}

fn no_option(what: &str) -> PlanError {
    PlanError::Unanswerable(format!("the dialog has no {what:?} option"))
}

/// A Codex shortcut hint as a key: `esc` is Escape, one character is typed.
fn shortcut(h: &str) -> Vec<Key> {
    match h {
        "esc" => vec![Key::Named("Escape")],
        c => vec![Key::Literal(c.to_string())],
    }
}

/// `  ❯ 2. Label (y)` → (2, "Label", Some("y")); the cursor marker may be `❯`, `›` or `>`.
fn option_line(l: &str) -> Option<DialogOption> {
    let t = l.trim_start();
    let t = t
        .strip_prefix('❯')
        .or_else(|| t.strip_prefix('›'))
        .or_else(|| t.strip_prefix('●'))
        .or_else(|| t.strip_prefix('>'))
        .unwrap_or(t)
        .trim_start();
    let dot = t.find(". ")?;
    let num: u32 = t[..dot].parse().ok()?;
    if num == 0 || num > 20 {
        return None;
    }
    let mut label = t[dot + 2..].trim().to_string();
    let mut hint = None;
    if label.ends_with(')')
        && let Some(open) = label.rfind(" (")
    {
        let h = &label[open + 2..label.len() - 1];
        if !h.is_empty() && h.len() <= 5 && h.chars().all(|c| c.is_ascii_alphanumeric()) {
            hint = Some(h.to_string());
            label.truncate(open);
        }
    }
    (!label.is_empty()).then_some(DialogOption { num, label, hint })
}

fn is_rule(l: &str) -> bool {
    let t = l.trim();
    t.chars().count() >= 10 && t.chars().all(|c| c == '─')
}

/// Options from `lines[from..]`, numbered 1, 2, … in order; lines between them (descriptions,
/// blank lines) are skipped until `stop` says the list ended.
fn options(lines: &[&str], stop: impl Fn(&str) -> bool) -> Vec<DialogOption> {
    let mut out: Vec<DialogOption> = Vec::new();
    for l in lines {
        if stop(l) {
            break;
        }
        if let Some(o) = option_line(l)
            && o.num as usize == out.len() + 1
        {
            out.push(o);
        }
    }
    out
}

/// Where a dialog sits: the last line `is_footer` says closes one, the last line above it
/// `is_head` says opens it, and the first option line between them, as
/// `(head, first option, footer)`.
fn frame(
    lines: &[&str],
    is_footer: impl Fn(&str) -> bool,
    is_head: impl Fn(&str) -> bool,
) -> Option<(usize, usize, usize)> {
    let footer = lines.iter().rposition(|l| is_footer(l))?;
    let head = lines[..footer].iter().rposition(|l| is_head(l))?;
    let first_opt = head
        + lines[head..footer]
            .iter()
            .position(|l| option_line(l).is_some())?;
    Some((head, first_opt, footer))
}

/// The "Enter to select · Esc to cancel" footer of Claude's and Gemini's questions.
fn is_select_footer(l: &str) -> bool {
    l.contains("Enter to select") && l.contains("Esc to cancel")
}

fn question(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Claude's permission dialog: the last "Do you want to …?" line with options and the
/// "Esc to cancel" footer below it; the question runs from the rule above it.
fn claude_permission(lines: &[&str]) -> Option<Dialog> {
    let ask = lines.iter().rposition(|l| {
        l.trim_start().starts_with("Do you want to") && l.trim_end().ends_with('?')
    })?;
    let footer = ask
        + lines[ask..]
            .iter()
            .position(|l| l.contains("Esc to cancel"))?;
    let opts = options(&lines[ask + 1..footer], |_| false);
    if opts.len() < 2 {
        return None;
    }
    let top = lines[..ask]
        .iter()
        .rposition(|l| is_rule(l))
        .map_or(0, |r| r + 1);
    let asks = &lines[top..=ask];
    Some(Dialog::new("claude", DialogKind::Permission, asks, opts))
}

/// Claude's AskUserQuestion: the "Enter to select" footer, the `☐ Header` tab above it, the
/// question, then the options up to the rule before "Chat about this". Several questions at
/// once (a "Submit" tab) or multi-select checkboxes are not recognised (no plan is made).
fn claude_question(lines: &[&str]) -> Option<Dialog> {
    let (head, first_opt, footer) =
        frame(lines, is_select_footer, |l| l.trim_start().starts_with('☐'))?;
    if lines[head].contains("Submit") {
        return None;
    }
    let opts = options(&lines[first_opt..footer], is_rule);
    if opts.is_empty() || opts.iter().any(|o| o.label.starts_with('[')) {
        return None;
    }
    let asks = &lines[head..first_opt];
    Some(Dialog::new("claude", DialogKind::Question, asks, opts))
}

/// Codex's approval: the "Press enter to confirm or esc to cancel" footer, the last
/// "Would you like to …" line above it, the options between.
fn codex_approval(lines: &[&str]) -> Option<Dialog> {
    let (ask, first_opt, footer) = frame(
        lines,
        |l| l.contains("Press enter to confirm or esc to cancel"),
        |l| l.trim_start().starts_with("Would you like to"),
    )?;
    let opts = options(&lines[first_opt..footer], |_| false);
    if opts.len() < 2 || opts.iter().all(|o| o.hint.is_none()) {
        return None;
    }
    let asks = &lines[ask..first_opt];
    Some(Dialog::new("codex", DialogKind::Approval, asks, opts))
}

/// Gemini CLI's tool confirmation: the last "Allow execution of …?"-style question line whose
/// options start with "Allow once", closed by the box's bottom line; the question runs from the
/// box's `? Tool` title.
fn gemini_approval(lines: &[&str]) -> Option<Dialog> {
    let first_opt = lines
        .iter()
        .rposition(|l| option_line(l).is_some_and(|o| o.num == 1 && o.label == "Allow once"))?;
    let end = first_opt + lines[first_opt..].iter().position(|l| l.starts_with('╰'))?;
    let opts = options(&lines[first_opt..end], |_| false);
    if opts.len() < 2 {
        return None;
    }
    let top = lines[..first_opt]
        .iter()
        .rposition(|l| l.starts_with("? "))?;
    if !lines[top..first_opt].iter().any(|l| l.ends_with('?')) {
        return None;
    }
    Some(Dialog {
        provider: "gemini",
        kind: DialogKind::Approval,
        question: question(&lines[top..first_opt])
            .into_iter()
            .filter(|l| !l.starts_with('╭') && !l.starts_with('╰'))
            .collect(),
        options: opts,
    })
}

/// Gemini CLI's `ask_user`: "Answer Questions", the question, numbered options, and the
/// "Enter to select" footer (the custom value's text field, focused, says "Enter to submit":
/// someone is typing there, not recognised).
fn gemini_question(lines: &[&str]) -> Option<Dialog> {
    let (head, first_opt, footer) = frame(lines, is_select_footer, |l| l == "Answer Questions")?;
    let opts = options(&lines[first_opt..footer], |_| false);
    if opts.is_empty() {
        return None;
    }
    let asks = &lines[head..first_opt];
    Some(Dialog::new("gemini", DialogKind::Question, asks, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = format!(
            "{}/fixtures/screens/actions/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// The dialog `provider`'s parser finds on the recorded screen `name`.
    #[track_caller]
    fn dialog(provider: &str, name: &str) -> Dialog {
        parse(provider, &fixture(name)).unwrap_or_else(|| panic!("{name}: no {provider} dialog"))
    }

    /// `d` is an approval, approved by typing its `shortcut`, denied by Escape.
    #[track_caller]
    fn approves_by(d: &Dialog, shortcut: &str) {
        assert_eq!(d.kind, DialogKind::Approval);
        assert_eq!(d.plan(&Act::Approve), Ok(vec![lit(shortcut)]));
        assert_eq!(d.plan(&Act::Deny), Ok(vec![Key::Named("Escape")]));
    }

    fn lit(s: &str) -> Key {
        Key::Literal(s.into())
    }

    #[test]
    fn claude_permission_plans_by_label_not_cursor() {
        let d = dialog("claude", "claude_permission.txt");
        assert_eq!(d.kind, DialogKind::Permission);
        assert_eq!(d.options.len(), 3);
        assert!(d.question.iter().any(|q| q == "touch ./e2e_tool_ran"));
        assert_eq!(d.plan(&Act::Approve), Ok(vec![lit("1")]));
        assert_eq!(d.plan(&Act::Deny), Ok(vec![lit("3")]));
        assert!(matches!(
            d.plan(&Act::Reply("x".into())),
            Err(PlanError::WrongDialog(_))
        ));
        // The cursor on option 2 changes neither the plan nor the fingerprint.
        let moved = dialog("claude", "claude_permission_cursor2.txt");
        assert_eq!(moved.fingerprint(), d.fingerprint());
        assert_eq!(moved.plan(&Act::Approve), Ok(vec![lit("1")]));
        assert!(
            d.summary().contains("touch ./e2e_tool_ran"),
            "{}",
            d.summary()
        );
    }

    #[test]
    fn claude_question_picks_options_or_types_the_answer() {
        let d = dialog("claude", "claude_askq.txt");
        assert_eq!(d.kind, DialogKind::Question);
        let labels: Vec<&str> = d.options.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, vec!["PostgreSQL", "SQLite", "Type something."]);
        assert!(d.question.iter().any(|q| q.contains("Which database")));
        assert_eq!(d.plan(&Act::Reply("sqlite".into())), Ok(vec![lit("2")]));
        assert_eq!(d.plan(&Act::Reply("1".into())), Ok(vec![lit("1")]));
        let odd = "Use $HOME; `x` \"q\" 'y' | rm -rf /";
        assert_eq!(
            d.plan(&Act::Reply(odd.into())),
            Ok(vec![lit("3"), lit(odd), Key::Named("Enter")])
        );
        assert!(d.plan(&Act::Reply("a\nb".into())).is_err());
        assert!(d.plan(&Act::Reply("x".repeat(MAX_REPLY + 1))).is_err());
        assert!(d.plan(&Act::Reply("x".repeat(MAX_REPLY))).is_ok());
        assert!(d.plan(&Act::Reply("  ".into())).is_err());
        assert!(matches!(
            d.plan(&Act::Approve),
            Err(PlanError::WrongDialog(_))
        ));
        // Text typed into the field changes the dialog: another fingerprint.
        let typed = dialog("claude", "claude_askq_typed.txt");
        assert_ne!(typed.fingerprint(), d.fingerprint());
    }

    #[test]
    fn codex_approval_uses_the_shortcuts() {
        let d = dialog("codex", "codex_approval.txt");
        approves_by(&d, "y");
        assert!(d.plan(&Act::Reply("ok".into())).is_err());
        let moved = dialog("codex", "codex_approval_cursor2.txt");
        assert_eq!(moved.plan(&Act::Approve), Ok(vec![lit("y")]));
        assert_eq!(moved.kind, DialogKind::Approval);
    }

    #[test]
    fn gemini_confirmation_and_ask_user() {
        let d = dialog("gemini", "gemini_approval.txt");
        approves_by(&d, "1");
        assert!(
            d.question
                .iter()
                .any(|q| q == "Allow execution of [Shell]?"),
            "{:?}",
            d.question
        );
        let moved = dialog("gemini", "gemini_approval_cursor2.txt");
        assert_eq!(moved.fingerprint(), d.fingerprint());
        assert_eq!(moved.plan(&Act::Approve), Ok(vec![lit("1")]));
        let q = dialog("gemini", "gemini_question.txt");
        assert_eq!(q.kind, DialogKind::Question);
        assert_eq!(q.plan(&Act::Reply("postgres".into())), Ok(vec![lit("2")]));
        assert_eq!(
            q.plan(&Act::Reply("my $HOME \"db\"".into())),
            Ok(vec![lit("3"), lit("my $HOME \"db\""), Key::Named("Enter")])
        );
        // Someone is typing in the custom value's field: not a dialog to answer.
        assert_eq!(parse("gemini", &fixture("gemini_question_typed.txt")), None);
        assert_eq!(parse("claude", &fixture("gemini_approval.txt")), None);
    }

    #[test]
    fn answered_dialogs_and_other_screens_are_not_dialogs() {
        for (p, f) in [
            ("claude", "claude_after_approve_1.txt"),
            ("codex", "codex_after_approve_y.txt"),
            ("codex", "claude_permission.txt"),
            ("gemini", "claude_permission.txt"),
            ("opencode", "claude_permission.txt"),
        ] {
            assert_eq!(parse(p, &fixture(f)), None, "{p} {f}");
        }
        // The older recordings (another cwd, 2.1.197 at 120x40) are recognised the same way.
        let root = env!("CARGO_MANIFEST_DIR");
        let old = |f: &str| std::fs::read_to_string(format!("{root}/fixtures/screens/{f}"));
        if let Ok(s) = old("claude/claude_05_permission_prompt.txt") {
            let d = parse("claude", &s).expect("recorded permission dialog");
            assert_eq!(d.plan(&Act::Approve), Ok(vec![lit("1")]));
        }
        if let Ok(s) = old("codex/codex_05_approval_prompt.txt") {
            let d = parse("codex", &s).expect("recorded codex approval");
            assert_eq!(d.plan(&Act::Approve), Ok(vec![lit("y")]));
        }
        if let Ok(s) = old("gemini/gemini_80x24_03_approval.txt") {
            let d = parse("gemini", &s).expect("recorded gemini confirmation");
            assert_eq!(d.plan(&Act::Approve), Ok(vec![lit("1")]));
        }
        if let Ok(s) = old("gemini/gemini_80x24_06_question.txt") {
            let d = parse("gemini", &s).expect("recorded gemini question");
            assert_eq!(d.plan(&Act::Reply("blue".into())), Ok(vec![lit("2")]));
        }
        if let Ok(s) = old("claude/supp_claude_05_askuserquestion.txt") {
            let d = parse("claude", &s).expect("recorded question");
            assert_eq!(d.plan(&Act::Reply("SQLite".into())), Ok(vec![lit("2")]));
        }
    }

    #[test]
    fn hostile_screens_do_not_panic() {
        for s in [
            "",
            "Do you want to?\n 1. \nEsc to cancel",
            "☐\nEnter to select · Esc to cancel",
            "Would you like to\n› 99999999999999999999. x (y)\nPress enter to confirm or esc to cancel",
            "Would you like to run\n1. Yes ()\n2. No (é)\nPress enter to confirm or esc to cancel",
        ] {
            let _ = parse("claude", s);
            let _ = parse("codex", s);
        }
    }
}
