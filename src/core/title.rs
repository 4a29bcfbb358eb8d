//! C-010 title resolver (Flow-005): the title shown for a pane's agent session.
//!
//! Order: the canonical (handshake) title — known once a deterministic event bound the pane to
//! its session, e.g. Claude's transcript title or Codex `thread/name/updated` — else a heuristic
//! title (e.g. read from the screen), else the pane title with the agent's decorations removed.
//!
//! Why cleaning matters: agents decorate `pane_title` (Claude `✳ ` at idle and a braille spinner
//! while running, Codex a spinner or `[ ! ] Action Required | dir`), and tmux's default pane title
//! is the host name, which names no session. Showing those raw would make titles flicker with
//! the spinner and show "Action Required" as a name.
//!
//! All titles are single-line, trimmed, whitespace-collapsed and capped at `MAX_TITLE_CHARS`
//! characters (cut at a char boundary). They are still raw text: escape them with
//! `attention::escape_format` before they enter a tmux option.
use serde_json::Value;

/// Longest title kept, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 80;

/// Where a resolved title came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TitleSource {
    Canonical,
    Heuristic,
    PaneTitle,
    None,
}

impl TitleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TitleSource::Canonical => "canonical",
            TitleSource::Heuristic => "heuristic",
            TitleSource::PaneTitle => "pane_title",
            TitleSource::None => "none",
        }
    }
}

/// Invisible format characters that reorder or hide text: bidi embeddings, overrides and
/// isolates (U+202A–E, U+2066–9, U+200E/F, U+061C), zero-width characters and joiners, word
/// joiner and invisible operators, the BOM, soft hyphen, Mongolian vowel separator, and the
/// tag characters. A title with U+202E would show reversed text in the status line.
pub(crate) fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

/// Single line, trimmed, inner whitespace collapsed, capped, format characters (bidi
/// overrides, zero-width) dropped. `None` when nothing is left.
pub fn normalize_title(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut n = 0usize;
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        let word: String = word.chars().filter(|c| !is_format_char(*c)).collect();
        if word.is_empty() {
            continue;
        }
        if n > 0 {
            if n >= MAX_TITLE_CHARS {
                break;
            }
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n >= MAX_TITLE_CHARS {
                break;
            }
            out.push(c);
            n += 1;
        }
    }
    let t = out.trim_end().to_string();
    if t.is_empty() { None } else { Some(t) }
}

/// A leading character agents use as status decoration in `pane_title`.
fn is_decoration(c: char) -> bool {
    ('\u{2800}'..='\u{28FF}').contains(&c) // braille spinners
        || matches!(
            c,
            '✳' | '✻' | '✽' | '✶' | '✢' | '✦' | '✧' | '·' | '•' | '*' | '●' | '○' | '◐' | '◑' | '◒'
                | '◓' | '⏺' | '◇' | '◆'
        )
}

/// Default titles that name no session.
const GENERIC_TITLES: &[&str] = &["claude code", "claude", "codex", "gemini", "opencode"];

/// Gemini CLI's status titles (`✦  Working… (dir)`, `◇  Ready (dir)`, `✋  Action Required
/// (dir)`, decorations already stripped): they say the state, not the session.
const GEMINI_STATUS_TITLES: &[&str] = &["Working…", "Ready", "✋ Action Required"];

/// The pane title without agent decorations, or `None` when it says nothing about the session
/// (empty, the host name, a Codex "Action Required" banner, a generic agent name).
pub fn clean_pane_title(raw: &str, hostname: &str) -> Option<String> {
    let t = raw.trim_start_matches(|c: char| is_decoration(c) || c.is_whitespace());
    let t = normalize_title(t)?;
    // Codex: `[ ! ] Action Required | dir`, `[ . ] Action Required | …`.
    if t.starts_with('[')
        && let Some(close) = t.find(']')
        && t[close + 1..].trim_start().starts_with("Action Required")
    {
        return None;
    }
    if GEMINI_STATUS_TITLES
        .iter()
        .any(|g| t == *g || t.strip_prefix(g).is_some_and(|r| r.starts_with(" (")))
    {
        return None;
    }
    // OpenCode: `OC | <session title>`.
    let t = match t.strip_prefix("OC | ") {
        Some(rest) if !rest.trim().is_empty() => rest.trim().to_string(),
        _ => t,
    };
    let lower = t.to_lowercase();
    if GENERIC_TITLES.contains(&lower.as_str()) {
        return None;
    }
    let host = hostname.trim().to_lowercase();
    if !host.is_empty() {
        let short = host.split('.').next().unwrap_or(&host);
        if lower == host || lower == short {
            return None;
        }
    }
    Some(t)
}

/// The title to show: canonical, else heuristic, else the cleaned pane title.
pub(crate) fn resolve_title(
    canonical: Option<&str>,
    heuristic: Option<&str>,
    pane_title: &str,
    hostname: &str,
) -> (String, TitleSource) {
    if let Some(t) = canonical.and_then(normalize_title) {
        return (t, TitleSource::Canonical);
    }
    if let Some(t) = heuristic.and_then(normalize_title) {
        return (t, TitleSource::Heuristic);
    }
    if let Some(t) = clean_pane_title(pane_title, hostname) {
        return (t, TitleSource::PaneTitle);
    }
    (String::new(), TitleSource::None)
}

/// Which transcript line kind gave the title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptTitleKind {
    Custom,
    Ai,
    Summary,
}

/// Incremental title tracker over a Claude transcript (JSONL), fed line by line as the file
/// grows. Best: the last `custom-title`, else the last `ai-title`, else the last `summary`.
/// Bad lines are skipped and counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscriptTitle {
    custom: Option<String>,
    ai: Option<String>,
    summary: Option<String>,
    bad_lines: u64,
}

impl TranscriptTitle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one line. Returns true when the best title changed.
    pub fn feed_line(&mut self, line: &str) -> bool {
        // Cheap filter: transcript lines are often large tool outputs without any title.
        if !(line.contains("title") || line.contains("summary")) {
            return false;
        }
        let v: Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(_) => {
                self.bad_lines += 1;
                return false;
            }
        };
        let field = |k: &str| v.get(k).and_then(Value::as_str).and_then(normalize_title);
        let before = self.best().map(str::to_owned);
        match v.get("type").and_then(Value::as_str) {
            Some("custom-title") => {
                if let Some(t) = field("customTitle") {
                    self.custom = Some(t);
                }
            }
            Some("ai-title") => {
                if let Some(t) = field("aiTitle") {
                    self.ai = Some(t);
                }
            }
            Some("summary") => {
                if let Some(t) = field("summary") {
                    self.summary = Some(t);
                }
            }
            _ => {}
        }
        self.best() != before.as_deref()
    }

    /// Feed many lines (e.g. a chunk read from the file); true when the best title changed.
    pub fn feed_lines<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) -> bool {
        let before = self.best().map(str::to_owned);
        for l in lines {
            self.feed_line(l);
        }
        self.best() != before.as_deref()
    }

    /// The best title so far.
    pub fn best(&self) -> Option<&str> {
        self.custom
            .as_deref()
            .or(self.ai.as_deref())
            .or(self.summary.as_deref())
    }

    /// Which kind of line the best title came from.
    pub fn best_kind(&self) -> Option<TranscriptTitleKind> {
        if self.custom.is_some() {
            Some(TranscriptTitleKind::Custom)
        } else if self.ai.is_some() {
            Some(TranscriptTitleKind::Ai)
        } else if self.summary.is_some() {
            Some(TranscriptTitleKind::Summary)
        } else {
            None
        }
    }

    /// Lines that looked like title lines but were not valid JSON.
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_titles_are_cleaned() {
        let host = "vm";
        let table: &[(&str, Option<&str>)] = &[
            ("✳ Fake session", Some("Fake session")),
            ("⠐ Fake session", Some("Fake session")),
            ("⠂ Fake session", Some("Fake session")),
            ("⠼ proj-codex", Some("proj-codex")),
            ("proj-codex", Some("proj-codex")),
            ("[ ! ] Action Required | proj-codex", None),
            ("[ . ] Action Required | proj-codex", None),
            ("✳ Claude Code", None),
            ("vm", None),
            ("VM", None),
            ("", None),
            ("   ", None),
            ("⠋", None),
            ("fix   the\nbug", Some("fix the bug")),
            ("[WIP] refactor", Some("[WIP] refactor")),
            ("✦  Working… (gwork)", None),
            ("◇  Ready (gwork)", None),
            ("✋  Action Required (gwork)", None),
            ("Ready for review", Some("Ready for review")),
            ("OpenCode", None),
            ("OC | Fix the build", Some("Fix the build")),
        ];
        for (raw, want) in table {
            assert_eq!(clean_pane_title(raw, host).as_deref(), *want, "{raw:?}");
        }
        assert_eq!(clean_pane_title("build01", "build01.example.com"), None);
        assert_eq!(
            clean_pane_title("build01.example.com", "build01.example.com"),
            None
        );
        assert_eq!(
            clean_pane_title("anything", "").as_deref(),
            Some("anything")
        );
    }

    #[test]
    fn resolution_order() {
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            (&'a str, TitleSource),
        );
        let table: &[Row] = &[
            (
                Some("Canon"),
                Some("Heur"),
                "✳ Pane",
                ("Canon", TitleSource::Canonical),
            ),
            (
                Some("  "),
                Some("Heur"),
                "✳ Pane",
                ("Heur", TitleSource::Heuristic),
            ),
            (None, None, "✳ Pane", ("Pane", TitleSource::PaneTitle)),
            (None, Some(""), "vm", ("", TitleSource::None)),
        ];
        for (c, h, p, (want, src)) in table {
            assert_eq!(resolve_title(*c, *h, p, "vm"), (want.to_string(), *src));
        }
    }

    #[test]
    fn titles_are_single_line_and_capped_at_a_char_boundary() {
        let long = "é".repeat(200);
        let t = normalize_title(&long).unwrap_or_default();
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        let t = normalize_title(&format!("{}  tail", "a".repeat(79))).unwrap_or_default();
        assert_eq!(t, "a".repeat(79));
        assert_eq!(normalize_title("\t a\r\nb \u{7}c "), Some("a b c".into()));
        assert_eq!(normalize_title("\n\n"), None);
        // Bidi overrides and zero-width characters never reach a title.
        assert_eq!(
            normalize_title("fix \u{202E}gnp.exe\u{202C} \u{200B}x\u{2066}y\u{FEFF}"),
            Some("fix gnp.exe xy".into())
        );
        assert_eq!(normalize_title("\u{202E}\u{200F}"), None);
        assert_eq!(normalize_title("a \u{202E} b"), Some("a b".into()));
    }

    #[test]
    fn transcript_title_priority_and_bad_lines() {
        let mut t = TranscriptTitle::new();
        assert!(!t.feed_line(r#"{"type":"user","message":{"content":"hello"}}"#));
        assert!(t.feed_line(r#"{"type":"summary","summary":"First summary","leafUuid":"x"}"#));
        assert_eq!(
            (t.best(), t.best_kind()),
            (Some("First summary"), Some(TranscriptTitleKind::Summary))
        );
        assert!(t.feed_line(r#"{"type":"ai-title","aiTitle":"AI named it"}"#));
        // A later summary does not beat the ai title.
        assert!(!t.feed_line(r#"{"type":"summary","summary":"Second summary"}"#));
        assert_eq!(t.best(), Some("AI named it"));
        assert!(!t.feed_line(r#"{"type":"custom-title", broken"#));
        assert_eq!(t.bad_lines(), 1);
        assert!(t.feed_line(r#"{"type":"custom-title","customTitle":"Mine"}"#));
        assert!(t.feed_line(r#"{"type":"custom-title","customTitle":"Mine, renamed\n"}"#));
        assert!(!t.feed_line(r#"{"type":"ai-title","aiTitle":"AI again"}"#));
        assert_eq!(
            (t.best(), t.best_kind()),
            (Some("Mine, renamed"), Some(TranscriptTitleKind::Custom))
        );
        // Empty or wrongly typed values are skipped.
        assert!(!t.feed_line(r#"{"type":"custom-title","customTitle":"   "}"#));
        assert!(!t.feed_line(r#"{"type":"custom-title","customTitle":42}"#));
        assert_eq!(t.best(), Some("Mine, renamed"));
    }

    #[test]
    fn feed_lines_reports_a_change_over_a_chunk() {
        let mut t = TranscriptTitle::new();
        let chunk = "{\"type\":\"ai-title\",\"aiTitle\":\"A\"}\nnot json title\n{\"type\":\"ai-title\",\"aiTitle\":\"B\"}";
        assert!(t.feed_lines(chunk.lines()));
        assert_eq!(t.best(), Some("B"));
        assert!(!t.feed_lines(["{\"type\":\"ai-title\",\"aiTitle\":\"B\"}"]));
    }
}
