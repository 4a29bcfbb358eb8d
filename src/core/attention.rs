//! Attention (C-008, README "What you see"): what the user owes each pane, and the status-line
//! summaries written into tmux options.
//!
//! Kinds, most urgent first: `approval` > `input` > `error` > `done`. The first three follow the
//! activity. `done` needs history, so `PaneAttention` keeps it per pane: a turn finished
//! (running → idle) while the user was not looking at the pane; it clears when the user focuses
//! the pane or a new turn starts. "Looking" = the pane is active in the active window of a
//! session attached to a non-control client whose terminal has focus, as far as tmux knows
//! (`is_focused`; `tmux::registry::parse_clients`).
//!
//! Why the summaries live here and not in the tmux writer: they are pure functions of pane
//! states, tested by tables, and the daemon writes them only when they change.
//! Every text that came from a pane or payload goes through `escape_format` before it enters a
//! tmux option (`#` would start a format).
use super::types::{Activity, AttentionKind, Millis};
use std::fmt;

/// True when the user is looking at the pane.
pub fn is_focused(pane_active: bool, window_active: bool, attached_non_control: bool) -> bool {
    pane_active && window_active && attached_non_control
}

/// Per-pane attention tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneAttention {
    turn_active: bool,
    done_since: Option<Millis>,
    current: Option<AttentionKind>,
}

impl Default for PaneAttention {
    fn default() -> Self {
        Self::new()
    }
}

impl PaneAttention {
    pub fn new() -> Self {
        PaneAttention {
            turn_active: false,
            done_since: None,
            current: None,
        }
    }

    /// Feed the pane's resolved activity and whether the user looks at it. Returns the
    /// attention kind now (compare with `current()` before the call to see a change).
    /// `ended_by_user`: the turn ended by the user's own hand (an Esc the transcript recorded),
    /// so there is nothing unseen to report, focused or not.
    pub(crate) fn observe(
        &mut self,
        activity: Activity,
        focused: bool,
        ended_by_user: bool,
        now: Millis,
    ) -> Option<AttentionKind> {
        match activity {
            Activity::Running => {
                self.turn_active = true;
                self.done_since = None;
            }
            Activity::WaitingApproval | Activity::WaitingInput => {
                self.done_since = None;
            }
            Activity::Idle => {
                if self.turn_active && !focused && !ended_by_user && self.done_since.is_none() {
                    self.done_since = Some(now);
                }
                self.turn_active = false;
            }
            // A turn stopped by the usage limit is not "done": `limit` says what happened.
            Activity::Error | Activity::Limited => {
                self.turn_active = false;
                self.done_since = None;
            }
            Activity::Unknown => {}
        }
        if focused {
            self.done_since = None;
        }
        self.current = activity
            .attention()
            .or(self.done_since.map(|_| AttentionKind::Done));
        self.current
    }

    pub fn current(&self) -> Option<AttentionKind> {
        self.current
    }

    /// When the unseen `done` began.
    pub fn done_since(&self) -> Option<Millis> {
        self.done_since
    }
}

/// What the summaries need of one pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneView {
    pub managed: bool,
    pub activity: Activity,
    pub attention: Option<AttentionKind>,
    /// Background tasks still running (issue 23): an idle pane with some is not "nothing
    /// running", so it gets its own icon.
    pub background: u32,
    /// `limited` only: when the limit resets (epoch ms), when known.
    pub until: Option<Millis>,
}

/// One icon with its colour (a tmux colour name such as `red`, `colour160` or `#ff0000`; empty
/// = no colour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub icon: String,
    pub fg: String,
}

impl Mark {
    fn new(icon: &str, fg: &str) -> Self {
        Mark {
            icon: icon.into(),
            fg: fg.into(),
        }
    }
}

/// Icons and colours. `Default` is the dark-theme style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    pub approval: Mark,
    pub input: Mark,
    pub error: Mark,
    pub limit: Mark,
    pub done: Mark,
    pub running: Mark,
    pub idle: Mark,
    /// Idle at the prompt while background work still runs.
    pub background: Mark,
    pub unknown: Mark,
    /// Maximum visible width of `attention_summary` (0 = unlimited). Least urgent items go first.
    pub(crate) max_len: usize,
    /// The text colour of a status-line badge, whose background is the mark's colour: a badge
    /// carries both colours, so it reads on any status-style (stock tmux's green bar included).
    pub(crate) ink: String,
}

impl Default for Style {
    fn default() -> Self {
        Style::dark()
    }
}

/// A rejected `@agtmux-*` style option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StyleError {
    UnknownOption(String),
    BadValue {
        option: String,
        reason: &'static str,
    },
}

impl fmt::Display for StyleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StyleError::UnknownOption(o) => write!(f, "unknown style option {o}"),
            StyleError::BadValue { option, reason } => {
                write!(f, "bad value for {option}: {reason}")
            }
        }
    }
}

impl std::error::Error for StyleError {}

impl Style {
    /// Badge colours (black text on bright backgrounds) for dark terminals.
    pub fn dark() -> Self {
        Style {
            approval: Mark::new("!", "red"),
            input: Mark::new("?", "yellow"),
            error: Mark::new("✗", "magenta"),
            limit: Mark::new("⧖", "blue"),
            done: Mark::new("✓", "green"),
            running: Mark::new("●", "cyan"),
            idle: Mark::new("○", ""),
            background: Mark::new("◐", ""),
            unknown: Mark::new("·", ""),
            max_len: 40,
            ink: "black".into(),
        }
    }

    /// Darker badge backgrounds with white text, for light terminals.
    pub fn light() -> Self {
        Style {
            approval: Mark::new("!", "colour160"),
            input: Mark::new("?", "colour130"),
            error: Mark::new("✗", "colour127"),
            limit: Mark::new("⧖", "colour25"),
            done: Mark::new("✓", "colour28"),
            running: Mark::new("●", "colour31"),
            ink: "white".into(),
            ..Style::dark()
        }
    }

    /// The mark of an attention kind.
    pub fn mark(&self, k: AttentionKind) -> &Mark {
        match k {
            AttentionKind::Approval => &self.approval,
            AttentionKind::Input => &self.input,
            AttentionKind::Error => &self.error,
            AttentionKind::Limit => &self.limit,
            AttentionKind::Done => &self.done,
        }
    }

    /// Appends `text` in the colour of `m` (a badge: `ink` on the mark's colour, bold), or
    /// plain when the mark has no colour.
    pub(crate) fn push_badge(&self, out: &mut String, m: &Mark, text: &str) {
        if m.fg.is_empty() {
            out.push_str(text);
        } else {
            out.push_str(&format!(
                "#[fg={},bg={},bold]{text}#[default]",
                self.ink, m.fg
            ));
        }
    }

    fn mark_named_mut(&mut self, name: &str) -> Option<&mut Mark> {
        Some(match name {
            "approval" => &mut self.approval,
            "input" => &mut self.input,
            "error" => &mut self.error,
            "limit" => &mut self.limit,
            "background" => &mut self.background,
            "done" => &mut self.done,
            "running" => &mut self.running,
            "idle" => &mut self.idle,
            "unknown" => &mut self.unknown,
            _ => return None,
        })
    }

    /// Apply one user option: `@agtmux-icon-<kind>`, `@agtmux-color-<kind>` (kind: approval,
    /// input, error, done, running, idle, unknown), `@agtmux-attention-max` (a width) or
    /// `@agtmux-theme` (`dark`/`light`, resets icons and colours).
    pub(crate) fn apply_option(&mut self, option: &str, value: &str) -> Result<(), StyleError> {
        let name = option.strip_prefix("@agtmux-").unwrap_or(option);
        let bad = |reason| StyleError::BadValue {
            option: option.into(),
            reason,
        };
        if name == "theme" {
            let max = self.max_len;
            *self = match value {
                "dark" => Style::dark(),
                "light" => Style::light(),
                _ => return Err(bad("want dark or light")),
            };
            self.max_len = max;
            return Ok(());
        }
        if name == "attention-max" {
            self.max_len = value.trim().parse().map_err(|_| bad("want a number"))?;
            return Ok(());
        }
        if let Some(kind) = name.strip_prefix("icon-") {
            if value.chars().count() > 8 || value.chars().any(|c| c.is_control()) {
                return Err(bad("an icon is at most 8 printable characters"));
            }
            let m = self
                .mark_named_mut(kind)
                .ok_or_else(|| StyleError::UnknownOption(option.into()))?;
            m.icon = value.into();
            return Ok(());
        }
        if let Some(kind) = name
            .strip_prefix("color-")
            .or_else(|| name.strip_prefix("colour-"))
        {
            if value.len() > 32
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '#' || c == '_' || c == '-')
            {
                return Err(bad("a colour is a tmux colour name, colourN or #rrggbb"));
            }
            let m = self
                .mark_named_mut(kind)
                .ok_or_else(|| StyleError::UnknownOption(option.into()))?;
            m.fg = value.into();
            return Ok(());
        }
        Err(StyleError::UnknownOption(option.into()))
    }
}

/// Escape text for a tmux format: `#` → `##`; control characters (newlines would end the
/// command line) become spaces.
pub(crate) fn escape_format(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("##"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Urgency of a pane: lower is more urgent; `None` for an unmanaged pane.
fn urgency(p: &PaneView) -> Option<u8> {
    if !p.managed {
        return None;
    }
    Some(match (p.attention, p.activity) {
        (Some(AttentionKind::Approval), _) => 0,
        (Some(AttentionKind::Input), _) => 1,
        (Some(AttentionKind::Error), _) => 2,
        (Some(AttentionKind::Limit), _) => 3,
        (Some(AttentionKind::Done), _) => 4,
        (None, Activity::WaitingApproval) => 0,
        (None, Activity::WaitingInput) => 1,
        (None, Activity::Error) => 2,
        (None, Activity::Limited) => 3,
        (None, Activity::Running) => 5,
        (None, Activity::Idle) if p.background > 0 => 6,
        (None, Activity::Idle) => 7,
        (None, Activity::Unknown) => 8,
    })
}

/// The icon of one pane (empty for an unmanaged pane).
pub fn icon<'a>(p: &PaneView, style: &'a Style) -> &'a str {
    match urgency(p) {
        None => "",
        Some(0) => &style.approval.icon,
        Some(1) => &style.input.icon,
        Some(2) => &style.error.icon,
        Some(3) => &style.limit.icon,
        Some(4) => &style.done.icon,
        Some(5) => &style.running.icon,
        Some(6) => &style.background.icon,
        Some(7) => &style.idle.icon,
        Some(_) => &style.unknown.icon,
    }
}

fn most_urgent(panes: &[PaneView]) -> Option<&PaneView> {
    panes
        .iter()
        .filter_map(|p| urgency(p).map(|u| (u, p)))
        .min_by_key(|(u, _)| *u)
        .map(|(_, p)| p)
}

/// The icon of a window's most urgent pane (empty when it holds no agent).
pub(crate) fn window_icon(panes: &[PaneView], style: &Style) -> String {
    most_urgent(panes)
        .map(|p| icon(p, style).to_string())
        .unwrap_or_default()
}

/// The icon of a session's most urgent pane (empty when it holds no agent).
pub(crate) fn session_icon(panes: &[PaneView], style: &Style) -> String {
    window_icon(panes, style)
}

/// Counts per attention kind (approval, input, error, done) and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub approval: usize,
    pub input: usize,
    pub error: usize,
    pub limit: usize,
    pub done: usize,
    pub running: usize,
    pub waiting_input: usize,
    pub waiting_approval: usize,
    pub(crate) error_activity: usize,
    pub(crate) limited: usize,
    pub idle: usize,
    /// Idle panes with background work still running.
    pub background: usize,
}

/// Count managed panes.
pub fn counts(panes: &[PaneView]) -> Counts {
    let mut c = Counts::default();
    for p in panes.iter().filter(|p| p.managed) {
        match p.attention {
            Some(AttentionKind::Approval) => c.approval += 1,
            Some(AttentionKind::Input) => c.input += 1,
            Some(AttentionKind::Error) => c.error += 1,
            Some(AttentionKind::Limit) => c.limit += 1,
            Some(AttentionKind::Done) => c.done += 1,
            None => {}
        }
        match p.activity {
            Activity::Running => c.running += 1,
            Activity::WaitingInput => c.waiting_input += 1,
            Activity::WaitingApproval => c.waiting_approval += 1,
            Activity::Error => c.error_activity += 1,
            Activity::Limited => c.limited += 1,
            Activity::Idle if p.background > 0 => c.background += 1,
            Activity::Idle => c.idle += 1,
            Activity::Unknown => {}
        }
    }
    c
}

/// Machine-readable counts for `@agtmux_counts`:
/// `running=3 waiting_input=2 waiting_approval=1 error=0 done=1 limited=0 background=0`.
pub(crate) fn counts_string(panes: &[PaneView]) -> String {
    let c = counts(panes);
    format!(
        "running={} waiting_input={} waiting_approval={} error={} done={} limited={} background={}",
        c.running,
        c.waiting_input,
        c.waiting_approval,
        c.error_activity,
        c.done,
        c.limited,
        c.background
    )
}

/// `@agtmux_session_counts`: `!1 ?2 ●3` (attention kinds, then running; zeros left out).
pub(crate) fn session_counts(panes: &[PaneView], style: &Style) -> String {
    let c = counts(panes);
    let items = [
        (&style.approval.icon, c.approval),
        (&style.input.icon, c.input),
        (&style.error.icon, c.error),
        (&style.limit.icon, c.limit),
        (&style.done.icon, c.done),
        (&style.running.icon, c.running),
    ];
    items
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(i, n)| format!("{i}{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `@agtmux_attention`: status-line ready badges, e.g.
/// `#[fg=black,bg=red,bold]!1#[default] #[fg=black,bg=yellow,bold]?2#[default]`.
/// Empty when no agent needs anything. At most `style.max_len` visible characters: the least
/// urgent items are dropped first. A usage limit shows its earliest reset in local time
/// (`⧖1 until 15:00`; `utc_offset_s`: the local zone).
pub(crate) fn attention_summary(panes: &[PaneView], style: &Style, utc_offset_s: i64) -> String {
    let c = counts(panes);
    let until = panes
        .iter()
        .filter(|p| p.managed && p.attention == Some(AttentionKind::Limit))
        .filter_map(|p| p.until)
        .min();
    let kinds = [
        (AttentionKind::Approval, c.approval),
        (AttentionKind::Input, c.input),
        (AttentionKind::Error, c.error),
        (AttentionKind::Limit, c.limit),
        (AttentionKind::Done, c.done),
    ];
    let mut out = String::new();
    let mut width = 0usize;
    for (k, n) in kinds {
        if n == 0 {
            continue;
        }
        let m = style.mark(k);
        let mut text = format!("{}{n}", m.icon);
        if let (AttentionKind::Limit, Some(u)) = (k, until) {
            text.push_str(&format!(
                " until {}",
                super::extras::clock_hm(u, utc_offset_s)
            ));
        }
        let sep = usize::from(width > 0);
        let w = text.chars().count() + sep;
        if style.max_len > 0 && width + w > style.max_len {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        style.push_badge(&mut out, m, &text);
        width += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Activity::*;

    fn pv(activity: Activity, attention: Option<AttentionKind>) -> PaneView {
        PaneView {
            managed: true,
            activity,
            attention,
            background: 0,
            until: None,
        }
    }

    #[test]
    fn done_rules() {
        // (activity, focused) steps → attention after the last step
        type Case = (&'static str, Vec<(Activity, bool)>, Option<AttentionKind>);
        let cases: Vec<Case> = vec![
            (
                "turn finished unseen",
                vec![(Running, false), (Idle, false)],
                Some(AttentionKind::Done),
            ),
            (
                "turn finished while looking",
                vec![(Running, true), (Idle, true)],
                None,
            ),
            (
                "done clears on focus",
                vec![(Running, false), (Idle, false), (Idle, true)],
                None,
            ),
            (
                "a seen done does not come back",
                vec![(Running, false), (Idle, false), (Idle, true), (Idle, false)],
                None,
            ),
            (
                "new turn clears done",
                vec![(Running, false), (Idle, false), (Running, false)],
                None,
            ),
            (
                "idle without a turn is not done",
                vec![(Idle, false), (Idle, false)],
                None,
            ),
            (
                "approval mid-turn then finish",
                vec![
                    (Running, false),
                    (WaitingApproval, false),
                    (Running, false),
                    (Idle, false),
                ],
                Some(AttentionKind::Done),
            ),
            (
                "unknown between running and idle",
                vec![(Running, false), (Unknown, false), (Idle, false)],
                Some(AttentionKind::Done),
            ),
            (
                "error is its own kind",
                vec![(Running, false), (Error, false)],
                Some(AttentionKind::Error),
            ),
            (
                "error stays when focused",
                vec![(Running, false), (Error, true)],
                Some(AttentionKind::Error),
            ),
            (
                "approval",
                vec![(WaitingApproval, true)],
                Some(AttentionKind::Approval),
            ),
            (
                "input",
                vec![(WaitingInput, false)],
                Some(AttentionKind::Input),
            ),
        ];
        for (name, steps, want) in cases {
            let mut a = PaneAttention::new();
            let mut got = None;
            for (i, (act, f)) in steps.iter().enumerate() {
                got = a.observe(*act, *f, false, i as Millis * 1000);
            }
            assert_eq!(got, want, "{name}");
            assert_eq!(a.current(), want, "{name}");
        }
        // A turn the user ended (Esc, from the transcript) leaves nothing unseen, and the
        // next turn that simply finishes is `done` again.
        let mut a = PaneAttention::new();
        a.observe(Running, false, false, 0);
        assert_eq!(a.observe(Idle, false, true, 1_000), None);
        a.observe(Running, false, false, 2_000);
        assert_eq!(
            a.observe(Idle, false, false, 3_000),
            Some(AttentionKind::Done)
        );
    }

    #[test]
    fn focus_needs_all_three() {
        assert!(is_focused(true, true, true));
        assert!(!is_focused(true, true, false));
        assert!(!is_focused(true, false, true));
        assert!(!is_focused(false, true, true));
    }

    #[test]
    fn counts_and_summaries() {
        let panes = vec![
            pv(Running, None),
            pv(Running, None),
            pv(Running, None),
            pv(WaitingInput, Some(AttentionKind::Input)),
            pv(WaitingInput, Some(AttentionKind::Input)),
            pv(WaitingApproval, Some(AttentionKind::Approval)),
            pv(Idle, Some(AttentionKind::Done)),
            PaneView {
                managed: false,
                activity: Running,
                attention: None,
                background: 0,
                until: None,
            },
        ];
        assert_eq!(
            counts_string(&panes),
            "running=3 waiting_input=2 waiting_approval=1 error=0 done=1 limited=0 background=0"
        );
        let s = Style::dark();
        assert_eq!(session_counts(&panes, &s), "!1 ?2 ✓1 ●3");
        assert_eq!(
            attention_summary(&panes, &s, 0),
            "#[fg=black,bg=red,bold]!1#[default] #[fg=black,bg=yellow,bold]?2#[default] #[fg=black,bg=green,bold]✓1#[default]"
        );
        assert_eq!(window_icon(&panes, &s), "!");
        let mut narrow = s.clone();
        narrow.max_len = 5;
        assert_eq!(
            attention_summary(&panes, &narrow, 0),
            "#[fg=black,bg=red,bold]!1#[default] #[fg=black,bg=yellow,bold]?2#[default]"
        );
        let mut nocolour = s.clone();
        nocolour.input.fg.clear();
        nocolour.done.fg.clear();
        nocolour.max_len = 0;
        assert_eq!(
            attention_summary(&panes, &nocolour, 0),
            "#[fg=black,bg=red,bold]!1#[default] ?2 ✓1"
        );
    }

    #[test]
    fn a_usage_limit_and_background_work_have_their_own_marks() {
        let s = Style::dark();
        let limited = PaneView {
            until: Some(1_796_414_400_000), // 20:00 UTC
            ..pv(Limited, Some(AttentionKind::Limit))
        };
        let bg = PaneView {
            background: 2,
            ..pv(Idle, None)
        };
        assert_eq!(icon(&limited, &s), "⧖");
        assert_eq!(icon(&bg, &s), "◐");
        assert_eq!(icon(&pv(Idle, None), &s), "○");
        // An error is more urgent than a limit; a limit more than a finished turn.
        assert_eq!(
            window_icon(&[limited, pv(Error, Some(AttentionKind::Error))], &s),
            "✗"
        );
        assert_eq!(
            window_icon(&[pv(Idle, Some(AttentionKind::Done)), limited], &s),
            "⧖"
        );
        assert_eq!(window_icon(&[pv(Idle, None), bg], &s), "◐");
        let panes = [limited, bg, pv(Idle, Some(AttentionKind::Done))];
        assert_eq!(
            attention_summary(&panes, &s, 3600),
            "#[fg=black,bg=blue,bold]⧖1 until 21:00#[default] #[fg=black,bg=green,bold]✓1#[default]"
        );
        assert_eq!(
            counts_string(&panes),
            "running=0 waiting_input=0 waiting_approval=0 error=0 done=1 limited=1 background=1"
        );
        // A limit with no known reset shows no time.
        let plain = pv(Limited, Some(AttentionKind::Limit));
        let mut nocolour = s.clone();
        nocolour.limit.fg.clear();
        assert_eq!(attention_summary(&[plain], &nocolour, 0), "⧖1");
    }

    #[test]
    fn an_idle_pane_with_background_work_is_not_done() {
        // The projection feeds such a pane as still working (see `resolve_dirty`); a limit
        // ends the turn without `done`.
        let mut a = PaneAttention::new();
        a.observe(Running, false, false, 1);
        assert_eq!(
            a.observe(Limited, false, false, 2),
            Some(AttentionKind::Limit)
        );
        assert_eq!(a.observe(Idle, false, false, 3), None);
    }

    #[test]
    fn summaries_are_empty_when_nothing_needs_the_user() {
        let s = Style::default();
        let panes = vec![pv(Running, None), pv(Idle, None)];
        assert_eq!(attention_summary(&panes, &s, 0), "");
        assert_eq!(attention_summary(&[], &s, 0), "");
        assert_eq!(window_icon(&[], &s), "");
        assert_eq!(session_counts(&[], &s), "");
        assert_eq!(
            counts_string(&[]),
            "running=0 waiting_input=0 waiting_approval=0 error=0 done=0 limited=0 background=0"
        );
        assert_eq!(session_icon(&panes, &s), "●");
    }

    #[test]
    fn icons_by_urgency() {
        let s = Style::dark();
        let table = [
            (pv(WaitingApproval, Some(AttentionKind::Approval)), "!"),
            (pv(WaitingInput, Some(AttentionKind::Input)), "?"),
            (pv(Error, Some(AttentionKind::Error)), "✗"),
            (pv(Idle, Some(AttentionKind::Done)), "✓"),
            (pv(Running, None), "●"),
            (pv(Idle, None), "○"),
            (pv(Unknown, None), "·"),
            (
                PaneView {
                    managed: false,
                    activity: Idle,
                    attention: None,
                    background: 0,
                    until: None,
                },
                "",
            ),
        ];
        for (p, want) in table {
            assert_eq!(icon(&p, &s), want, "{p:?}");
        }
        let w = [
            pv(Idle, Some(AttentionKind::Done)),
            pv(Error, Some(AttentionKind::Error)),
            pv(Running, None),
        ];
        assert_eq!(window_icon(&w, &s), "✗");
    }

    #[test]
    fn style_options() {
        let mut s = Style::default();
        s.apply_option("@agtmux-icon-approval", "‼")
            .unwrap_or_else(|e| panic!("{e}"));
        s.apply_option("@agtmux-color-input", "#ffaa00")
            .unwrap_or_else(|e| panic!("{e}"));
        s.apply_option("@agtmux-attention-max", "12")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.approval.icon, "‼");
        assert_eq!(s.input.fg, "#ffaa00");
        assert_eq!(s.max_len, 12);
        assert!(
            s.apply_option("@agtmux-color-input", "red]#(rm -rf ~)")
                .is_err()
        );
        assert!(s.apply_option("@agtmux-icon-bogus", "x").is_err());
        assert!(s.apply_option("@agtmux-nope", "x").is_err());
        assert!(s.apply_option("@agtmux-attention-max", "wide").is_err());
        s.apply_option("@agtmux-theme", "light")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.approval.fg, "colour160");
        assert_eq!(s.max_len, 12);
    }

    #[test]
    fn escaping_for_tmux_formats() {
        let table = [
            ("plain", "plain"),
            ("#[fg=red]x", "##[fg=red]x"),
            ("##", "####"),
            ("a\nb\tc", "a b c"),
            ("#{pane_id}", "##{pane_id}"),
            ("", ""),
        ];
        for (i, o) in table {
            assert_eq!(escape_format(i), o);
        }
    }
}
