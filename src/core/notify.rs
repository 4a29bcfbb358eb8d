//! Notifications on attention (issue 21): which attention changes notify, the per-pane rate
//! limit, coalescing of a burst into one notice, the user's `@agtmux-notify*` options, and the
//! exact text and bytes each channel sends. Pure: the daemon (`daemon::notify`) feeds it pane
//! attention changes and the attached clients, and does the I/O it decides on.
//!
//! WHY here and not in the daemon: what notifies, what is quiet and what a notice says are the
//! user-facing rules of this feature; they are tested by tables, without a tmux.
//!
//! Rules:
//! - a pane whose attention becomes `approval`, `input`, `error` or `done` (from anything
//!   else) is a candidate; the first sight of a pane (daemon start, restore) never is;
//! - candidates are held for the coalescing window (`@agtmux-notify-coalesce`, ms) after the
//!   first one, then decided together: ten agents finishing together give one notice of 10;
//! - at decision time a candidate is dropped when its pane no longer has that attention
//!   (`stale`), its kind is switched off (`kind_off`), a client whose terminal has focus shows
//!   it (`looked_at`), or the pane was notified less than `@agtmux-notify-interval` seconds
//!   ago for the same or a more urgent kind (`rate_limited`).
//! - a remote pane (issue 24) is a candidate when the remote stream's resume cursor says its
//!   attention is new ([`Notifier::push`]); it is keyed `host/server/%N`, and its notice names
//!   the host (`agtmux: devbox: %3 main:1.0 claude needs approval`).
use super::types::{AttentionKind, Millis, PaneId};
use std::collections::HashMap;

pub(crate) const DEFAULT_INTERVAL_MS: Millis = 30_000;
pub(crate) const DEFAULT_COALESCE_MS: Millis = 1_000;
pub(crate) const DEFAULT_COMMAND_TIMEOUT_MS: Millis = 5_000;
/// Longest title (characters) a notice carries; longest text of a notice.
const MAX_TITLE: usize = 80;
const MAX_TEXT: usize = 300;
/// Bound on a command template (arguments) and a stored option value.
const MAX_ARGS: usize = 32;
const MAX_OPTION: usize = 4096;

/// Every option this module reads (the daemon asks tmux for each with `show-options -gqv`).
pub(crate) const OPTIONS: [&str; 7] = [
    "@agtmux-notify",
    "@agtmux-notify-kinds",
    "@agtmux-notify-interval",
    "@agtmux-notify-coalesce",
    "@agtmux-notify-osc",
    "@agtmux-notify-command",
    "@agtmux-notify-timeout",
];

/// Which OSC desktop-notification sequence the `osc` channel writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OscKind {
    /// `OSC 9 ; text ST` (iTerm2, WezTerm, Ghostty, Windows Terminal, kitty).
    Osc9,
    /// `OSC 777 ; notify ; title ; text ST` (foot, rxvt-unicode, WezTerm, Ghostty).
    Osc777,
    /// `OSC 99 ; ; text ST` (kitty's own protocol; foot).
    Osc99,
}

/// The user's notification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifyConfig {
    pub message: bool,
    pub bell: bool,
    pub osc: bool,
    pub command: bool,
    /// Enabled kinds, indexed by `kind_index`.
    pub kinds: [bool; 5],
    pub(crate) interval_ms: Millis,
    pub coalesce_ms: Millis,
    pub(crate) osc_kind: OscKind,
    /// The `command` channel's argument vector template (empty = not set).
    pub argv: Vec<String>,
    pub(crate) timeout_ms: Millis,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            message: true,
            bell: false,
            osc: false,
            command: false,
            kinds: [true; 5],
            interval_ms: DEFAULT_INTERVAL_MS,
            coalesce_ms: DEFAULT_COALESCE_MS,
            osc_kind: OscKind::Osc9,
            argv: Vec::new(),
            timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
        }
    }
}

fn kind_index(k: AttentionKind) -> usize {
    match k {
        AttentionKind::Approval => 0,
        AttentionKind::Input => 1,
        AttentionKind::Error => 2,
        AttentionKind::Done => 3,
        AttentionKind::Limit => 4,
    }
}

fn words(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty())
}

fn seconds(value: &str, max: u64) -> Result<Millis, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n <= max => Ok(n as Millis * 1000),
        _ => Err(format!("want whole seconds 0..={max}, got {value:?}")),
    }
}

impl NotifyConfig {
    /// Apply one option's raw value (`show-options -gqv`). An empty value means unset (the
    /// default stays). A bad value is refused with a reason; the default stays.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = value.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Ok(());
        }
        if value.len() > MAX_OPTION {
            return Err(format!("longer than {MAX_OPTION} bytes"));
        }
        match name {
            "@agtmux-notify" => {
                let (mut m, mut b, mut o, mut c) = (false, false, false, false);
                for w in words(value) {
                    match w {
                        "message" => m = true,
                        "bell" => b = true,
                        "osc" => o = true,
                        "command" => c = true,
                        "off" | "none" => {}
                        other => return Err(format!("unknown channel {other:?}")),
                    }
                }
                (self.message, self.bell, self.osc, self.command) = (m, b, o, c);
            }
            "@agtmux-notify-kinds" => {
                let mut k = [false; 5];
                for w in words(value) {
                    match AttentionKind::parse(w) {
                        Some(a) => k[kind_index(a)] = true,
                        None if w == "none" || w == "off" => {}
                        None => return Err(format!("unknown kind {w:?}")),
                    }
                }
                self.kinds = k;
            }
            "@agtmux-notify-interval" => self.interval_ms = seconds(value, 86_400)?,
            "@agtmux-notify-timeout" => {
                self.timeout_ms = seconds(value, 600)?.max(1000);
            }
            "@agtmux-notify-coalesce" => match value.trim().parse::<u64>() {
                Ok(n) if n <= 60_000 => self.coalesce_ms = n as Millis,
                _ => return Err(format!("want milliseconds 0..=60000, got {value:?}")),
            },
            "@agtmux-notify-osc" => {
                self.osc_kind = match value.trim() {
                    "9" => OscKind::Osc9,
                    "777" => OscKind::Osc777,
                    "99" => OscKind::Osc99,
                    v => return Err(format!("want 9, 777 or 99, got {v:?}")),
                }
            }
            "@agtmux-notify-command" => self.argv = split_argv(value)?,
            _ => return Err(format!("unknown option {name}")),
        }
        Ok(())
    }

    pub(crate) fn kind_on(&self, k: AttentionKind) -> bool {
        self.kinds[kind_index(k)]
    }

    /// Any channel on at all.
    pub(crate) fn any_channel(&self) -> bool {
        self.message || self.bell || self.osc || (self.command && !self.argv.is_empty())
    }

    pub(crate) fn channels(&self) -> String {
        let mut v = Vec::new();
        for (on, n) in [
            (self.message, "message"),
            (self.bell, "bell"),
            (self.osc, "osc"),
            (self.command, "command"),
        ] {
            if on {
                v.push(n);
            }
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

/// Split a command template into arguments, as a shell would split words but with no
/// expansion of any kind: blanks separate words; `'…'` is literal; `"…"` is literal except
/// `\"` and `\\`; a backslash outside quotes takes the next character literally.
pub(crate) fn split_argv(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    if out.len() > MAX_ARGS {
        return Err(format!("more than {MAX_ARGS} arguments"));
    }
    Ok(out)
}

/// Text from a pane or payload made safe to show anywhere: control characters (C0, DEL, C1:
/// escape sequences, BEL, newlines) become spaces, and it is cut to `max` characters.
pub(crate) fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.trim().to_string()
}

/// What the daemon knows of a pane when a notice is decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PaneFacts {
    pub attention: Option<AttentionKind>,
    pub provider: String,
    pub state: String,
    pub title: String,
    /// `session:window.pane`, so a notice can be traced to its pane.
    pub location: String,
    /// A remote pane's host (issue 24); empty for a local pane.
    pub host: String,
    /// A remote pane's id on its host (`%3`); `None` for a local pane (its key is its id).
    pub pane_id: Option<PaneId>,
}

/// Which pane a candidate or notice speaks of: a pane of this tmux server, or a remote
/// daemon's pane (issue 24). It prints as the notifier's key: `%N`, or `host/server/%N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PaneKey {
    Local(PaneId),
    Remote {
        host: String,
        server: String,
        pane: PaneId,
    },
}

impl PaneKey {
    /// The pane's id on its own tmux server.
    pub(crate) fn pane_id(&self) -> &PaneId {
        match self {
            PaneKey::Local(p) | PaneKey::Remote { pane: p, .. } => p,
        }
    }
}

impl std::fmt::Display for PaneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaneKey::Local(p) => write!(f, "{p}"),
            PaneKey::Remote { host, server, pane } => write!(f, "{host}/{server}/{pane}"),
        }
    }
}

/// Notices list panes of one kind and time in the order of their printed keys.
impl Ord for PaneKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for PaneKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Tests write keys as they print: `"%1".into()`, `"devbox/default/%3".into()`.
#[cfg(test)]
impl From<&str> for PaneKey {
    fn from(s: &str) -> PaneKey {
        match s.rsplitn(3, '/').collect::<Vec<_>>()[..] {
            [pane, server, host] => PaneKey::Remote {
                host: host.into(),
                server: server.into(),
                pane: pane.into(),
            },
            _ => PaneKey::Local(s.into()),
        }
    }
}

#[cfg(test)]
impl PartialEq<&str> for PaneKey {
    fn eq(&self, other: &&str) -> bool {
        match self {
            PaneKey::Local(p) => p == other,
            PaneKey::Remote { host, server, pane } => {
                let rest = other
                    .strip_prefix(host.as_str())
                    .and_then(|r| r.strip_prefix('/'));
                let rest = rest.and_then(|r| r.strip_prefix(server.as_str()));
                rest.and_then(|r| r.strip_prefix('/')) == Some(pane.as_str())
            }
        }
    }
}

/// One pane in a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub pane: PaneKey,
    pub kind: AttentionKind,
    pub at: Millis,
    pub(crate) facts: PaneFacts,
}

/// One notification: the panes it is about, most urgent first, oldest first within a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub items: Vec<Item>,
}

/// Why a candidate gave no notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    Stale,
    KindOff,
    LookedAt,
    RateLimited,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Stale => "stale",
            Skip::KindOff => "kind_off",
            Skip::LookedAt => "looked_at",
            Skip::RateLimited => "rate_limited",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub pane: PaneKey,
    pub kind: AttentionKind,
    pub at: Millis,
}

/// The notifier's memory: last attention per pane, what was sent when, and the open batch.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    primed: bool,
    last: HashMap<PaneKey, Option<AttentionKind>>,
    sent: HashMap<PaneKey, (Millis, AttentionKind)>,
    pending: Vec<Candidate>,
    batch_since: Option<Millis>,
}

impl Notifier {
    pub(crate) fn is_primed(&self) -> bool {
        self.primed
    }

    /// Remember the attention of every pane without notifying (daemon start, restore).
    pub(crate) fn prime<'a>(
        &mut self,
        panes: impl Iterator<Item = (&'a PaneId, Option<AttentionKind>)>,
    ) {
        for (id, a) in panes {
            self.last.insert(PaneKey::Local(id.clone()), a);
        }
        self.primed = true;
    }

    /// A pane's attention after a resolution. A new attention kind is a candidate.
    pub(crate) fn observe(&mut self, pane: &PaneId, att: Option<AttentionKind>, now: Millis) {
        let key = PaneKey::Local(pane.clone());
        let prev = self.last.insert(key.clone(), att).flatten();
        if let Some(k) = att
            && prev != Some(k)
        {
            self.pending.push(Candidate {
                pane: key,
                kind: k,
                at: now,
            });
            self.batch_since.get_or_insert(now);
        }
    }

    /// A candidate the caller already knows is new (a remote pane: its stream's resume cursor
    /// decided, so a reconnect re-sends nothing).
    pub(crate) fn push(&mut self, pane: PaneKey, kind: AttentionKind, now: Millis) {
        self.pending.push(Candidate {
            pane,
            kind,
            at: now,
        });
        self.batch_since.get_or_insert(now);
    }

    pub(crate) fn forget(&mut self, pane: &PaneKey) {
        self.last.remove(pane);
        self.sent.remove(pane);
        self.pending.retain(|c| c.pane != *pane);
    }

    /// When the open batch is due (its first candidate + the coalescing window).
    pub(crate) fn due(&self, coalesce_ms: Millis) -> Option<Millis> {
        self.batch_since.map(|t| t + coalesce_ms)
    }

    /// Close the open batch (the latest candidate per pane).
    pub(crate) fn take_batch(&mut self) -> Vec<Candidate> {
        self.batch_since = None;
        let mut out: Vec<Candidate> = Vec::new();
        for c in std::mem::take(&mut self.pending) {
            out.retain(|o| o.pane != c.pane);
            out.push(c);
        }
        out
    }

    /// Decide a closed batch. `facts` describes a pane now (None: gone); `looked_at` says
    /// whether a client whose terminal has focus shows the pane now.
    pub(crate) fn decide(
        &mut self,
        batch: Vec<Candidate>,
        cfg: &NotifyConfig,
        facts: &dyn Fn(&PaneKey) -> Option<PaneFacts>,
        looked_at: &dyn Fn(&PaneKey) -> bool,
        now: Millis,
    ) -> (Option<Notice>, Vec<(PaneKey, Skip)>) {
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for c in batch {
            let Some(f) = facts(&c.pane).filter(|f| f.attention == Some(c.kind)) else {
                skipped.push((c.pane, Skip::Stale));
                continue;
            };
            let skip = if !cfg.kind_on(c.kind) {
                Some(Skip::KindOff)
            } else if looked_at(&c.pane) {
                Some(Skip::LookedAt)
            } else if self
                .sent
                .get(&c.pane)
                .is_some_and(|(t, k)| now - t < cfg.interval_ms && c.kind >= *k)
            {
                Some(Skip::RateLimited)
            } else {
                None
            };
            match skip {
                Some(s) => skipped.push((c.pane, s)),
                None => items.push(Item {
                    pane: c.pane,
                    kind: c.kind,
                    at: c.at,
                    facts: f,
                }),
            }
        }
        if items.is_empty() {
            return (None, skipped);
        }
        for i in &items {
            self.sent.insert(i.pane.clone(), (now, i.kind));
        }
        items.sort_by(|a, b| (a.kind, a.at, &a.pane).cmp(&(b.kind, b.at, &b.pane)));
        (Some(Notice { items }), skipped)
    }
}

fn phrase(k: AttentionKind) -> &'static str {
    match k {
        AttentionKind::Approval => "needs approval",
        AttentionKind::Input => "waits for input",
        AttentionKind::Error => "failed",
        AttentionKind::Done => "finished",
        AttentionKind::Limit => "hit its usage limit",
    }
}

impl Item {
    /// How a notice names the pane: `%3`, or `devbox: %3` for a remote one.
    pub(crate) fn label(&self) -> String {
        if self.facts.host.is_empty() {
            self.pane.to_string()
        } else {
            format!("{}: {}", clean(&self.facts.host, 64), self.shown_id())
        }
    }

    /// The pane id as the user knows it (on its host, for a remote pane).
    fn shown_id(&self) -> &PaneId {
        self.facts.pane_id.as_ref().unwrap_or(self.pane.pane_id())
    }
}

impl Notice {
    pub fn count(&self) -> usize {
        self.items.len()
    }

    /// The most urgent pane (what `{pane}` etc. name in a coalesced notice).
    pub fn first(&self) -> &Item {
        &self.items[0]
    }

    /// One line: `agtmux: %3 main:1.0 claude needs approval: title`, or for several
    /// `agtmux: 3 agents need you (2 done, 1 approval): %3 main:1.0, %4 main:2.0, …`.
    /// Control characters are gone; the caller escapes for where it goes.
    pub fn text(&self) -> String {
        let t = if self.items.len() == 1 {
            let i = self.first();
            let title = clean(&i.facts.title, MAX_TITLE);
            let mut s = format!(
                "agtmux: {} {} {} {}",
                i.label(),
                clean(&i.facts.location, 40),
                clean(&i.facts.provider, 16),
                phrase(i.kind)
            );
            if !title.is_empty() {
                s.push_str(": ");
                s.push_str(&title);
            }
            s
        } else {
            let mut by_kind: Vec<(AttentionKind, usize)> = Vec::new();
            for i in &self.items {
                match by_kind.iter_mut().find(|(k, _)| *k == i.kind) {
                    Some((_, n)) => *n += 1,
                    None => by_kind.push((i.kind, 1)),
                }
            }
            let kinds: Vec<String> = by_kind
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            let panes: Vec<String> = self
                .items
                .iter()
                .map(|i| format!("{} {}", i.label(), clean(&i.facts.location, 40)))
                .collect();
            format!(
                "agtmux: {} agents need you ({}): {}",
                self.items.len(),
                kinds.join(", "),
                panes.join(", ")
            )
        };
        clean(&t, MAX_TEXT)
    }

    /// The `command` channel's argv: `{pane}`, `{provider}`, `{state}`, `{kind}`, `{title}`,
    /// `{location}`, `{host}` (of the most urgent pane; `{host}` is empty for a local pane, and
    /// `{pane}` is then the id on that host), `{count}` and `{message}` replaced in each
    /// argument in one pass (a title that says `{pane}` stays as it is). Unknown `{…}` stay.
    pub(crate) fn fill(&self, template: &[String]) -> Vec<String> {
        let i = self.first();
        let count = self.count().to_string();
        let text = self.text();
        let title = clean(&i.facts.title, MAX_TITLE);
        let field = |name: &str| -> Option<&str> {
            Some(match name {
                "pane" => i.shown_id().as_str(),
                "host" => &i.facts.host,
                "provider" => &i.facts.provider,
                "state" => &i.facts.state,
                "kind" => i.kind.as_str(),
                "title" => &title,
                "location" => &i.facts.location,
                "count" => &count,
                "message" => &text,
                _ => return None,
            })
        };
        template
            .iter()
            .map(|arg| {
                let mut out = String::new();
                let mut rest = arg.as_str();
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let after = &rest[open + 1..];
                    match after
                        .find('}')
                        .and_then(|close| field(&after[..close]).map(|v| (v.to_string(), close)))
                    {
                        Some((v, close)) => {
                            out.push_str(&v);
                            rest = &after[close + 1..];
                        }
                        None => {
                            out.push('{');
                            rest = after;
                        }
                    }
                }
                out.push_str(rest);
                out
            })
            .collect()
    }

    /// The bytes of the OSC desktop notification (ST-terminated, so no BEL byte in it).
    pub fn osc(&self, kind: OscKind) -> Vec<u8> {
        let text = self.text();
        let s = match kind {
            OscKind::Osc9 => format!("\x1b]9;{text}\x1b\\"),
            OscKind::Osc777 => {
                let body = text.strip_prefix("agtmux: ").unwrap_or(&text);
                format!("\x1b]777;notify;agtmux;{}\x1b\\", body.replace(';', ","))
            }
            OscKind::Osc99 => format!("\x1b]99;;{text}\x1b\\"),
        };
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttentionKind::*;

    fn facts(att: Option<AttentionKind>, title: &str) -> PaneFacts {
        PaneFacts {
            attention: att,
            provider: "claude".into(),
            state: "waiting_approval".into(),
            title: title.into(),
            location: "main:1.0".into(),
            ..PaneFacts::default()
        }
    }

    fn primed() -> Notifier {
        let mut n = Notifier::default();
        n.prime([(&"%1".into(), None), (&"%2".into(), Some(Done))].into_iter());
        n
    }

    #[test]
    fn only_new_attention_is_a_candidate_and_first_sight_is_quiet() {
        let mut n = primed();
        n.observe(&"%2".into(), Some(Done), 10);
        assert_eq!(n.due(1000), None, "an unchanged kind is no candidate");
        n.observe(&"%1".into(), Some(Approval), 10);
        n.observe(&"%3".into(), Some(Input), 20); // unknown before: None → input
        n.observe(&"%1".into(), Some(Approval), 30);
        assert_eq!(n.due(1000), Some(1010));
        let b = n.take_batch();
        assert_eq!(b.len(), 2);
        assert_eq!(n.due(1000), None);
        n.observe(&"%1".into(), None, 40);
        n.observe(&"%1".into(), Some(Approval), 50);
        assert_eq!(n.take_batch().len(), 1);
    }

    #[test]
    fn decide_skips_stale_off_looked_at_and_rate_limited() {
        let mut n = primed();
        let mut cfg = NotifyConfig::default();
        cfg.apply("@agtmux-notify-kinds", "approval,input,error")
            .unwrap();
        for (p, k) in [("%1", Approval), ("%2", Input), ("%3", Done), ("%4", Error)] {
            n.observe(&p.into(), Some(k), 5);
        }
        n.observe(&"%5".into(), Some(Input), 6);
        let b = n.take_batch();
        let f = |p: &PaneKey| match p.to_string().as_str() {
            "%2" => Some(facts(Some(Input), "")),
            "%3" => Some(facts(Some(Done), "")),
            "%4" => Some(facts(None, "")), // answered meanwhile
            "%5" => Some(facts(Some(Input), "")),
            _ => Some(facts(Some(Approval), "t")),
        };
        let (notice, skipped) = n.decide(b, &cfg, &f, &|p| *p == "%5", 100);
        let notice = notice.unwrap();
        assert_eq!(notice.count(), 2);
        assert_eq!(notice.first().pane, "%1");
        let why: Vec<(String, Skip)> = skipped.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        assert!(why.contains(&("%3".into(), Skip::KindOff)));
        assert!(why.contains(&("%4".into(), Skip::Stale)));
        assert!(why.contains(&("%5".into(), Skip::LookedAt)));
        // Within the interval: the same kind again is quiet; a more urgent one passes.
        n.observe(&"%1".into(), None, 200);
        n.observe(&"%1".into(), Some(Approval), 210);
        n.observe(&"%2".into(), Some(Approval), 210);
        let b = n.take_batch();
        let f2 = |_: &PaneKey| Some(facts(Some(Approval), ""));
        let (notice, skipped) = n.decide(b, &cfg, &f2, &|_| false, 1_000);
        assert_eq!(notice.unwrap().items[0].pane, "%2");
        assert_eq!(skipped, vec![("%1".into(), Skip::RateLimited)]);
        // After the interval it notifies again.
        n.observe(&"%1".into(), None, 40_000);
        n.observe(&"%1".into(), Some(Approval), 40_000);
        let b = n.take_batch();
        assert!(n.decide(b, &cfg, &f2, &|_| false, 40_000).0.is_some());
    }

    #[test]
    fn a_burst_is_one_notice_that_counts_and_orders() {
        let mut n = primed();
        for i in 0..10 {
            let k = if i == 7 { Approval } else { Done };
            n.observe(&format!("%{}", 10 + i).as_str().into(), Some(k), 100 + i);
        }
        let b = n.take_batch();
        let f = |p: &PaneKey| {
            let k = if *p == "%17" { Approval } else { Done };
            Some(facts(Some(k), ""))
        };
        let cfg = NotifyConfig::default();
        let notice = n.decide(b, &cfg, &f, &|_| false, 2_000).0.unwrap();
        assert_eq!(notice.count(), 10);
        assert_eq!(notice.first().pane, "%17");
        assert_eq!(notice.items[1].pane, "%10");
        let t = notice.text();
        assert!(
            t.starts_with("agtmux: 10 agents need you (1 approval, 9 done): %17 main:1.0, %10"),
            "{t}"
        );
    }

    #[test]
    fn hostile_titles_lose_control_bytes_and_fields_fill_once() {
        let n = Notice {
            items: vec![Item {
                pane: "%3".into(),
                kind: Approval,
                at: 0,
                facts: facts(Some(Approval), "x\x1b]9;pwn\x07\ny {pane} #[fg=red]"),
            }],
        };
        let t = n.text();
        assert!(!t.chars().any(|c| c.is_control()), "{t:?}");
        assert!(t.contains("%3 main:1.0 claude needs approval: x ]9;pwn  y {pane} #[fg=red]"));
        let osc = n.osc(OscKind::Osc9);
        assert!(osc.starts_with(b"\x1b]9;agtmux: %3"));
        assert!(osc.ends_with(b"\x1b\\"));
        assert_eq!(osc.iter().filter(|b| **b == 0x1b).count(), 2);
        assert!(!osc.contains(&0x07));
        let o777 = String::from_utf8(n.osc(OscKind::Osc777)).unwrap();
        assert!(
            o777.starts_with("\x1b]777;notify;agtmux;%3 main:1.0"),
            "{o777:?}"
        );
        assert_eq!(o777.matches(';').count(), 3);
        let argv = split_argv("notify-send -a 'agt mux' \"{title}\" {pane}:{count}:{bogus} {kind}")
            .unwrap();
        assert_eq!(
            n.fill(&argv),
            vec![
                "notify-send",
                "-a",
                "agt mux",
                "x ]9;pwn  y {pane} #[fg=red]",
                "%3:1:{bogus}",
                "approval"
            ]
        );
    }

    #[test]
    fn options_parse_and_refuse() {
        let mut c = NotifyConfig::default();
        assert!(c.message && !c.bell && c.any_channel());
        c.apply("@agtmux-notify", "bell, osc").unwrap();
        assert_eq!(c.channels(), "bell,osc");
        c.apply("@agtmux-notify", "off").unwrap();
        assert!(!c.any_channel());
        assert!(c.apply("@agtmux-notify", "bell,shout").is_err());
        assert!(!c.bell, "a refused value changes nothing");
        c.apply("@agtmux-notify-interval", "0").unwrap();
        assert_eq!(c.interval_ms, 0);
        assert!(c.apply("@agtmux-notify-interval", "-1").is_err());
        c.apply("@agtmux-notify-osc", "777").unwrap();
        assert_eq!(c.osc_kind, OscKind::Osc777);
        assert!(c.apply("@agtmux-notify-osc", "52").is_err());
        c.apply("@agtmux-notify-kinds", "done").unwrap();
        assert!(c.kind_on(Done) && !c.kind_on(Approval));
        c.apply("@agtmux-notify-command", "a 'b c' \"d\\\"e\" f\\ g")
            .unwrap();
        assert_eq!(c.argv, vec!["a", "b c", "d\"e", "f g"]);
        assert!(c.apply("@agtmux-notify-command", "a 'b").is_err());
        assert!(split_argv("\"x").is_err() && split_argv("x\\").is_err());
        c.apply("@agtmux-notify-timeout", "0").unwrap();
        assert_eq!(c.timeout_ms, 1000);
        assert!(c.apply("@agtmux-notify-bogus", "1").is_err());
        c.apply("@agtmux-notify", "").unwrap();
        assert!(!c.any_channel(), "empty = unset: the value stays");
    }

    #[test]
    fn a_remote_pane_is_pushed_once_and_its_notice_names_the_host() {
        let mut n = primed();
        n.push("devbox/default/%3".into(), Approval, 10);
        let b = n.take_batch();
        assert_eq!(b.len(), 1);
        let remote = PaneFacts {
            host: "devbox".into(),
            pane_id: Some("%3".into()),
            ..facts(Some(Approval), "fix it")
        };
        let f = |_: &PaneKey| Some(remote.clone());
        let cfg = NotifyConfig::default();
        let notice = n.decide(b, &cfg, &f, &|_| false, 20).0.unwrap();
        assert_eq!(
            notice.text(),
            "agtmux: devbox: %3 main:1.0 claude needs approval: fix it"
        );
        assert_eq!(notice.first().pane, "devbox/default/%3");
        let argv: Vec<String> = ["{host}", "{pane}", "{kind}"].map(String::from).to_vec();
        assert_eq!(notice.fill(&argv), ["devbox", "%3", "approval"]);
        // A local pane: `{host}` is empty, `{pane}` its id.
        n.observe(&"%1".into(), Some(Input), 30);
        let b = n.take_batch();
        let g = |_: &PaneKey| Some(facts(Some(Input), ""));
        let notice = n.decide(b, &cfg, &g, &|_| false, 40).0.unwrap();
        assert_eq!(notice.fill(&argv), ["", "%1", "input"]);
    }
}
