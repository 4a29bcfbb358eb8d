//! `agtmux popup` (README "Commands", issue 7): the prefix + A popup, run by the key binding
//! inside `display-popup -E`. Sessions → windows → agent panes with state icon, provider,
//! state, title and age, attention first; j/k/arrows move, Enter switches the client to the
//! pane (across sessions), `/` filters, `a` shows only panes that need attention, q/Esc close.
//! On a pane that shows a dialog (issue 21), the popup shows what it asks; `y` approves, `n`
//! denies, `r` types a reply (Enter sends it), through `cli::act` with the token of the dialog
//! shown, so a dialog that changed since is refused, not answered.
//!
//! WHY plain ANSI and raw termios (`sys::term`): the popup must open in well under 100 ms and stay
//! tiny; it only draws a list. Live updates come from the daemon's `subscribe` push stream, so
//! it shows exactly the read model the status line shows, with no polling. The switch runs
//! `tmux switch-client -t %N` as an argument vector, never through a shell.
use super::client::{self, ServerOpts};
use super::goto_remote::{self, RemotePane};
use crate::core::text::clip_chars;
use crate::core::types::PaneId;
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

#[derive(clap::Args, Debug)]
pub struct PopupArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The tmux client to switch (default: tmux's current client, the most recently active
    /// one: the client whose keys drive the popup).
    #[arg(short = 'c', long, value_name = "CLIENT")]
    pub client: Option<String>,
    /// Benchmark support (`scripts/bench`, popup-open): draw the first full frame (the daemon's
    /// snapshot applied, or its absence reported), then leave and print to stderr when the
    /// process entered `run` and when that frame was flushed (Unix ns, as `time.time_ns()`).
    #[arg(long, hide = true)]
    pub(crate) bench_exit_after_first_frame: bool,
}

/// Restores the terminal on drop (also on early return): the screen and cursor here, the
/// terminal mode in `sys::term::RawMode`.
struct RawMode {
    _mode: crate::sys::term::RawMode,
}

impl RawMode {
    fn enter(fd: i32) -> io::Result<RawMode> {
        Ok(RawMode {
            _mode: crate::sys::term::RawMode::enter(fd)?,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let mut o = io::stdout();
        let _ = o.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = o.flush();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
    Char(char),
}

/// How long an input that ends inside an escape sequence (or a UTF-8 character) waits for the
/// rest before it is taken as it is: a lone Esc is a key press.
const ESC_WAIT_MS: i32 = 50;

/// Decodes keys across reads: a sequence split between two reads (`ESC` then `[B`) is held
/// until its rest arrives, instead of being taken as Esc (which closed the popup).
#[derive(Debug, Default)]
pub(crate) struct KeyDecoder {
    pending: Vec<u8>,
    /// When the held tail arrived.
    since: Option<std::time::Instant>,
}

impl KeyDecoder {
    /// The keys the bytes read so far complete; an unfinished tail is kept for the next read.
    pub fn feed(&mut self, b: &[u8]) -> Vec<Key> {
        self.pending.extend_from_slice(b);
        let rest = self.pending.split_off(incomplete_tail(&self.pending));
        let keys = decode_keys(&self.pending);
        self.since = (!rest.is_empty()).then(std::time::Instant::now);
        self.pending = rest;
        keys
    }

    /// Nothing more came within [`ESC_WAIT_MS`]: decode what is held as it is.
    pub fn flush(&mut self) -> Vec<Key> {
        let keys = decode_keys(&self.pending);
        self.pending.clear();
        self.since = None;
        keys
    }

    /// An unfinished sequence is held.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// What is held has waited [`ESC_WAIT_MS`] for its rest.
    fn due(&self) -> bool {
        self.since
            .is_some_and(|t| t.elapsed().as_millis() >= ESC_WAIT_MS as u128)
    }
}

/// Where an unfinished tail of `b` starts (`b.len()` when there is none): an Esc, `ESC [`/`ESC O`,
/// a CSI without its final byte yet, or a cut UTF-8 character. A long unfinished CSI is not held.
fn incomplete_tail(b: &[u8]) -> usize {
    if let Some(p) = b.iter().rposition(|&c| c == 0x1b) {
        let t = &b[p..];
        let unfinished = match t {
            [_] | [_, b'[' | b'O'] => true,
            [_, b'[', params @ ..] => {
                t.len() <= 16
                    && params
                        .iter()
                        .all(|c| !c.is_ascii_alphabetic() && *c != b'~')
            }
            _ => false,
        };
        if unfinished {
            return p;
        }
    }
    match std::str::from_utf8(b) {
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => b.len(),
    }
}

/// Decode a burst of input bytes into keys.
pub(crate) fn decode_keys(b: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let s = String::from_utf8_lossy(b);
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            '\x1b' => {
                if i + 2 < cs.len() && (cs[i + 1] == '[' || cs[i + 1] == 'O') {
                    match cs[i + 2] {
                        'A' => out.push(Key::Up),
                        'B' => out.push(Key::Down),
                        _ => {}
                    }
                    // Skip the rest of a CSI sequence (parameters up to the final byte).
                    i += 2;
                    while i < cs.len() && !cs[i].is_ascii_alphabetic() && cs[i] != '~' {
                        i += 1;
                    }
                } else {
                    out.push(Key::Esc);
                }
            }
            '\r' | '\n' => out.push(Key::Enter),
            '\x7f' | '\x08' => out.push(Key::Backspace),
            '\x03' => out.push(Key::Esc),
            '\x0e' => out.push(Key::Down), // ^N
            '\x10' => out.push(Key::Up),   // ^P
            c if !c.is_control() => out.push(Key::Char(c)),
            _ => {}
        }
        i += 1;
    }
    out
}

/// The popup's model: the read model plus the view state. Pure, so it is tested directly.
#[derive(Debug, Default)]
pub(crate) struct Popup {
    pub list: Value,
    pub filter: String,
    pub(crate) filtering: bool,
    pub(crate) attention_only: bool,
    /// The selected row (kept across live updates).
    pub selected: Option<RowId>,
    pub message: Option<String>,
    /// The daemon's snapshot (or an error answer) has been applied.
    pub loaded: bool,
    /// A reply being typed for the selected pane (`r`).
    pub reply: Option<String>,
    /// The dialog read from the selected pane (refreshed when it or its version changes).
    pub dialog: Option<Shown>,
}

/// What the popup read from a waiting pane: its dialog token and question, or why none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shown {
    pub pane: RowId,
    /// The pane's `version` in the read model when it was read.
    pub version: Value,
    pub read: Result<(String, String), String>,
}

/// One remote host in the popup: its `list` entry and its servers' groups.
pub(crate) struct RemoteHost {
    pub host: String,
    pub info: Value,
    pub servers: Vec<(String, Vec<client::Group>)>,
}

/// Which pane a popup row shows, parsed once from the daemon's list where the row is built.
/// Its text (`Display`) is the pane id for a local row and `host US server US %N` for a remote
/// one (US = U+001F), as the popup printed it before (the reply prompt shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowId {
    /// A pane of this tmux server.
    Local(PaneId),
    /// A pane of a remote host's server (issue 24).
    Remote(RemotePane),
    /// A row whose `pane_id` is missing or not `%N`.
    Malformed(MalformedRow),
}

/// A row whose `pane_id` is missing or not `%N`. The daemon never lists one, but the popup does
/// not trust its input: the row is shown and selectable, and every action on it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MalformedRow {
    /// The host and server of a remote row.
    remote: Option<(String, String)>,
    /// The list's text (empty when it has none).
    pane: String,
}

impl MalformedRow {
    /// Why no action reaches the row.
    fn why(&self) -> String {
        match &self.remote {
            Some(_) => format!("refusing a malformed remote target pane {:?}", self.pane),
            None => PaneId::parse_or_why(&self.pane).err().unwrap_or_default(),
        }
    }

    /// The popup's message line for an action on the row (the same words as before the id was
    /// typed: a local row's text, then why).
    fn refusal(&self) -> String {
        match &self.remote {
            Some(_) => self.why(),
            None => format!("{}: {}", self.pane, self.why()),
        }
    }
}

impl RowId {
    /// The id of the row of list entry `p`; `remote`: the host and server it is listed under.
    pub(crate) fn of(remote: Option<(&str, &str)>, p: &Value) -> RowId {
        let text = p["pane_id"].as_str().unwrap_or("");
        match (PaneId::parse(text), remote) {
            (Some(pane), None) => RowId::Local(pane),
            (Some(pane), Some((host, server))) => RowId::Remote(RemotePane {
                host: host.to_string(),
                server: server.to_string(),
                pane,
            }),
            (None, remote) => RowId::Malformed(MalformedRow {
                remote: remote.map(|(h, s)| (h.to_string(), s.to_string())),
                pane: text.to_string(),
            }),
        }
    }

    /// The host and server of a remote row (malformed or not), and the pane's text.
    fn parts(&self) -> (Option<(&str, &str)>, &str) {
        match self {
            RowId::Local(p) => (None, p.as_str()),
            RowId::Remote(r) => (Some((r.host.as_str(), r.server.as_str())), r.pane.as_str()),
            RowId::Malformed(m) => (
                m.remote.as_ref().map(|(h, s)| (h.as_str(), s.as_str())),
                m.pane.as_str(),
            ),
        }
    }

    /// How a prompt names the row: `%9`, or `%9 on devbox (default-1)` for a remote one (the
    /// identity text's separators are control characters that a terminal does not show).
    fn label(&self) -> String {
        match self.parts() {
            (Some((host, server)), pane) => format!("{pane} on {host} ({server})"),
            (None, pane) => pane.to_string(),
        }
    }

    /// A local row's pane, or the malformed local row (`None` for a remote row).
    fn local(&self) -> Option<LocalRow<'_>> {
        match self {
            RowId::Local(p) => Some(Ok(p)),
            RowId::Malformed(m) if m.remote.is_none() => Some(Err(m)),
            RowId::Remote(_) | RowId::Malformed(_) => None,
        }
    }
}

/// A local row: its pane, or the malformed row that has none.
type LocalRow<'a> = Result<&'a PaneId, &'a MalformedRow>;

impl std::fmt::Display for RowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parts() {
            (Some((host, server)), pane) => write!(f, "{host}\u{1f}{server}\u{1f}{pane}"),
            (None, pane) => f.write_str(pane),
        }
    }
}

pub(crate) enum Action {
    None,
    Quit,
    Switch(RowId),
    /// Answer the pane's dialog (the popup stays open and shows the outcome).
    Act(RowId, crate::core::dialog::Act),
}

impl Popup {
    fn keep(&self, p: &Value) -> bool {
        if self.attention_only && client::rank(p) >= 4 {
            return false;
        }
        if self.filter.is_empty() {
            return true;
        }
        let f = self.filter.to_lowercase();
        [
            "pane_id",
            "provider",
            "state",
            "attention",
            "title",
            "session_name",
            "window_name",
            "command",
        ]
        .iter()
        .any(|k| {
            p[*k]
                .as_str()
                .is_some_and(|v| v.to_lowercase().contains(&f))
        })
    }

    pub fn groups(&self) -> Vec<client::Group> {
        client::group(&self.list, &|p| self.keep(p))
    }

    /// The remote hosts (issue 24), each with its servers' agent panes grouped like the local
    /// ones. A host is listed even with no pane shown (its status is news).
    pub(crate) fn remote_groups(&self) -> Vec<RemoteHost> {
        let mut out = Vec::new();
        for h in self.list["remotes"].as_array().into_iter().flatten() {
            let host = h["host"].as_str().unwrap_or("").to_string();
            let mut servers = Vec::new();
            for srv in h["servers"].as_array().into_iter().flatten() {
                let list = json!({"sessions": srv["sessions"]});
                let groups = client::group(&list, &|p| {
                    self.keep(p)
                        || (!self.attention_only
                            && !self.filter.is_empty()
                            && host.to_lowercase().contains(&self.filter.to_lowercase()))
                });
                if !groups.is_empty() {
                    servers.push((srv["server"].as_str().unwrap_or("").to_string(), groups));
                }
            }
            out.push(RemoteHost {
                info: h.clone(),
                host,
                servers,
            });
        }
        out
    }

    /// The rows in display order, local ones first.
    pub fn order(&self) -> Vec<RowId> {
        let mut v = Vec::new();
        for g in self.groups() {
            for w in g.windows {
                for p in w.panes {
                    v.push(RowId::of(None, &p));
                }
            }
        }
        for h in self.remote_groups() {
            for (server, groups) in &h.servers {
                for g in groups {
                    for w in &g.windows {
                        for p in &w.panes {
                            v.push(RowId::of(Some((&h.host, server)), p));
                        }
                    }
                }
            }
        }
        v
    }

    /// Keep a valid selection: the same pane if still shown, else the first.
    pub(crate) fn fix_selection(&mut self) {
        let order = self.order();
        if self.selected.as_ref().is_none_or(|s| !order.contains(s)) {
            self.selected = order.first().cloned();
        }
    }

    fn step(&mut self, d: i64) {
        let order = self.order();
        if order.is_empty() {
            self.selected = None;
            return;
        }
        let cur = self
            .selected
            .as_ref()
            .and_then(|s| order.iter().position(|x| x == s))
            .unwrap_or(0) as i64;
        let n = (cur + d).clamp(0, order.len() as i64 - 1) as usize;
        self.selected = Some(order[n].clone());
    }

    /// The selected local row (its pane, or why it has none) and its list version, if it is
    /// waiting for the user (a dialog may be on it).
    pub(crate) fn selected_waiting(&self) -> Option<(&RowId, LocalRow<'_>, &Value)> {
        let row = self.selected.as_ref()?;
        let local = row.local()?;
        let id = match local {
            Ok(p) => p.as_str(),
            Err(m) => m.pane.as_str(),
        };
        client::all_panes(&self.list)
            .into_iter()
            .find(|p| p["pane_id"] == id)
            .filter(|p| {
                matches!(
                    p["state"].as_str(),
                    Some("waiting_approval" | "waiting_input")
                )
            })
            .map(|p| (row, local, &p["version"]))
    }

    /// The token of the dialog shown for `pane`, if one was read.
    pub(crate) fn token_for(&self, pane: &RowId) -> Option<&str> {
        self.dialog
            .as_ref()
            .filter(|d| d.pane == *pane)
            .and_then(|d| d.read.as_ref().ok())
            .map(|r| r.0.as_str())
    }

    pub fn key(&mut self, k: Key) -> Action {
        use crate::core::dialog::Act;
        if let Some(r) = self.reply.as_mut() {
            match k {
                Key::Enter => {
                    let text = std::mem::take(r);
                    self.reply = None;
                    if let Some(s) = &self.selected
                        && !text.trim().is_empty()
                    {
                        return Action::Act(s.clone(), Act::Reply(text));
                    }
                }
                Key::Esc => self.reply = None,
                Key::Backspace => {
                    r.pop();
                }
                Key::Char(c) => r.push(c),
                Key::Up | Key::Down => {}
            }
            return Action::None;
        }
        if self.filtering {
            match k {
                Key::Enter => self.filtering = false,
                Key::Esc => {
                    self.filtering = false;
                    self.filter.clear();
                }
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Char(c) => self.filter.push(c),
                Key::Up => self.step(-1),
                Key::Down => self.step(1),
            }
            self.fix_selection();
            return Action::None;
        }
        match k {
            Key::Char('q') | Key::Esc => return Action::Quit,
            Key::Char('j') | Key::Down => self.step(1),
            Key::Char('k') | Key::Up => self.step(-1),
            Key::Char('g') => self.step(i64::MIN / 2),
            Key::Char('G') => self.step(i64::MAX / 2),
            Key::Char('/') => self.filtering = true,
            Key::Char('a') => {
                self.attention_only = !self.attention_only;
                self.fix_selection();
            }
            Key::Enter => {
                if let Some(s) = &self.selected {
                    return Action::Switch(s.clone());
                }
            }
            Key::Char('y') | Key::Char('n') => {
                if let Some(s) = &self.selected {
                    let act = if k == Key::Char('y') {
                        Act::Approve
                    } else {
                        Act::Deny
                    };
                    return Action::Act(s.clone(), act);
                }
            }
            Key::Char('r') if self.selected.is_some() => self.reply = Some(String::new()),
            _ => {}
        }
        Action::None
    }

    /// The screen as lines (without colour when `color` is false), and the selected line.
    pub(crate) fn render(
        &self,
        width: usize,
        now: i64,
        color: bool,
    ) -> (Vec<String>, Option<usize>) {
        let (b, d, _rv, r) = if color {
            ("\x1b[1m", "\x1b[2m", "\x1b[7m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut lines = Vec::new();
        let mut sel_line = None;
        let mode = if self.attention_only {
            " [attention only]"
        } else {
            ""
        };
        // The key list is cut to the width: a wrapped header would push every row down.
        let keys =
            "j/k move · Enter go · y approve · n deny · r reply · / filter · a attention · q quit";
        let room = width.saturating_sub(9 + mode.chars().count());
        lines.push(format!(
            "{b}agtmux{r}{mode}  {d}{}{r}",
            clip_chars(keys, room)
        ));
        if let (Some(d), Some((id, _, _))) = (&self.dialog, self.selected_waiting())
            && d.pane == *id
        {
            let what = match &d.read {
                Ok((_, q)) => format!("{id} asks: {q}"),
                Err(e) => format!("{id}: {e}"),
            };
            lines.push(clip_chars(&clean(&what), width.saturating_sub(1)));
        }
        if let Some(r) = &self.reply {
            let to = self.selected.as_ref().map(RowId::label);
            lines.push(format!(
                "reply to {}: {}_",
                clean(to.as_deref().unwrap_or("?")),
                clean(r)
            ));
        }
        if self.filtering || !self.filter.is_empty() {
            let cursor = if self.filtering { "_" } else { "" };
            lines.push(format!("/{}{cursor}", self.filter));
        }
        if let Some(m) = &self.message {
            lines.push(format!("{b}{m}{r}"));
        }
        let groups = self.groups();
        let remotes = self.remote_groups();
        if groups.is_empty() && remotes.iter().all(|h| h.servers.is_empty()) {
            lines.push(String::new());
            lines.push(if self.filter.is_empty() && !self.attention_only {
                "  no agent panes".to_string()
            } else {
                "  nothing matches".to_string()
            });
        }
        for g in &groups {
            self.render_group(g, None, width, now, color, &mut lines, &mut sel_line);
        }
        for h in &remotes {
            let status = h.info["status"].as_str().unwrap_or("?");
            let mut head = format!("{b}⇄ {}{r} {d}{status}", clean(&h.host));
            if !matches!(status, "live" | "connecting")
                && let Some(t) = h.info["since_ms"].as_i64()
            {
                let (hh, mm, ss) = crate::sys::clock::local_hms(t / 1000);
                head.push_str(&format!(" since {hh:02}:{mm:02}:{ss:02}"));
            }
            if let Some(m) = h.info["message"].as_str() {
                head.push_str(&format!(" — {}", clean(m)));
            }
            head.push_str(r);
            lines.push(clip_chars(&head, width.saturating_add(16)));
            for (server, groups) in &h.servers {
                for g in groups {
                    self.render_group(
                        g,
                        Some((&h.host, server)),
                        width,
                        now,
                        color,
                        &mut lines,
                        &mut sel_line,
                    );
                }
            }
        }
        (lines, sel_line)
    }
}

impl Popup {
    /// One session's rows; `remote`: the host and server its panes belong to.
    #[allow(clippy::too_many_arguments)]
    fn render_group(
        &self,
        g: &client::Group,
        remote: Option<(&str, &str)>,
        width: usize,
        now: i64,
        color: bool,
        lines: &mut Vec<String>,
        sel_line: &mut Option<usize>,
    ) {
        let (b, d, rv, r) = if color {
            ("\x1b[1m", "\x1b[2m", "\x1b[7m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let indent = if remote.is_some() { "  " } else { "" };
        lines.push(format!("{indent}{b}{}{r}", clean(&g.session_name)));
        for w in &g.windows {
            let idx = w.window_index.map(|i| format!("{i}:")).unwrap_or_default();
            lines.push(format!("{indent}  {d}{idx}{}{r}", clean(&w.window_name)));
            for p in &w.panes {
                let id = p["pane_id"].as_str().unwrap_or("");
                let is_sel = self.selected.as_ref() == Some(&RowId::of(remote, p));
                let mut state = match p["attention"].as_str() {
                    Some("done") => "done".to_string(),
                    _ => p["state"].as_str().unwrap_or("").to_string(),
                };
                if p["stale"] == true {
                    state = format!("stale {state}");
                }
                let body = format!(
                    "{:<2} {:<5} {:<7} {:<16} {:>4}  {}",
                    p["icon"].as_str().unwrap_or(""),
                    id,
                    p["provider"].as_str().unwrap_or("?"),
                    state,
                    client::age(now, p["since_ms"].as_i64().unwrap_or(now)),
                    clean(&client::title_line(p)),
                );
                let body = clip_chars(&body, width.saturating_sub(5 + indent.len()));
                if is_sel {
                    *sel_line = Some(lines.len());
                    lines.push(format!("{indent}  {rv}> {body}{r}"));
                } else {
                    let c = if color && p["stale"] != true {
                        client::state_color(p)
                    } else {
                        ""
                    };
                    lines.push(format!("{indent}    {c}{body}{r}"));
                }
            }
        }
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn term_size() -> (usize, usize) {
    crate::sys::term::size(1).unwrap_or((80, 24))
}

fn draw(p: &Popup, out: &mut impl Write, scroll: &mut usize) -> io::Result<()> {
    let (w, h) = term_size();
    let (lines, sel) = p.render(w, client::now_ms(), true);
    let body = h.max(2);
    if let Some(s) = sel {
        if s < *scroll {
            *scroll = s.saturating_sub(1);
        } else if s >= *scroll + body {
            *scroll = s + 1 - body;
        }
    }
    *scroll = (*scroll).min(lines.len().saturating_sub(1));
    let mut buf = String::from("\x1b[H");
    for (i, l) in lines.iter().skip(*scroll).take(body).enumerate() {
        if i > 0 {
            buf.push_str("\r\n");
        }
        buf.push_str(l);
        buf.push_str("\x1b[0m\x1b[K");
    }
    buf.push_str("\x1b[J");
    out.write_all(buf.as_bytes())?;
    out.flush()
}

/// Feed daemon lines into the model. Returns false once the connection closed.
fn on_api_data(p: &mut Popup, sock: &mut UnixStream, inbuf: &mut Vec<u8>) -> bool {
    let mut b = [0u8; 65536];
    let mut open = true;
    loop {
        match sock.read(&mut b) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => inbuf.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                open = false;
                break;
            }
        }
    }
    while let Some(pos) = inbuf.iter().position(|c| *c == b'\n') {
        let line: Vec<u8> = inbuf.drain(..=pos).collect();
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if msg.get("event").is_some() {
            client::apply_event(&mut p.list, &msg);
        } else if let Some(r) = msg.get("result") {
            p.list = r["list"].clone();
            p.message = None;
            p.loaded = true;
        } else if let Some(e) = msg.get("error") {
            p.message = Some(format!("daemon: {}", e["message"].as_str().unwrap_or("?")));
            p.loaded = true;
        }
    }
    p.fix_selection();
    open
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn run(args: &PopupArgs) -> ExitCode {
    let started_ns = unix_ns();
    let sp = args.server.paths();
    let mut popup = Popup {
        list: json!({"sessions": []}),
        ..Popup::default()
    };
    let mut api = Feed {
        sock: subscribe(&sp, &mut popup),
        inbuf: Vec::new(),
    };
    let stdin = io::stdin();
    let fd = stdin.as_raw_fd();
    let raw = match RawMode::enter(fd) {
        Ok(r) => r,
        Err(e) => return client::fail(&format!("popup needs a terminal: {e}"), ExitCode::Failure),
    };
    let mut out = io::stdout().lock();
    let _ = out.write_all(b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
    // Wait briefly for the snapshot so the first frame already has the list.
    api.read(&mut popup, 500, "the agtmux daemon closed the connection");
    let (action, bench) = interact(args, &sp, &mut popup, &mut api, fd, &mut out);
    drop(raw);
    drop(out);
    if let Some((frame_ns, n)) = bench {
        eprintln!(
            "agtmux-popup-bench start_ns={started_ns} frame_ns={frame_ns} frames={n} \
             loaded={} agent_panes={}",
            popup.loaded,
            popup.order().len()
        );
    }
    match action {
        Action::Switch(RowId::Local(pane)) => switch_to(&sp.socket, args.client.as_deref(), &pane),
        Action::Switch(RowId::Remote(r)) => {
            goto_remote::go(&sp.socket, args.client.as_deref(), &popup.list, &r)
        }
        // A local row with no `%N` fails quietly, a remote one says why (as before the id
        // was typed).
        Action::Switch(RowId::Malformed(m)) if m.remote.is_none() => ExitCode::Failure,
        Action::Switch(RowId::Malformed(m)) => client::fail(&m.refusal(), ExitCode::Failure),
        _ => ExitCode::Ok,
    }
}

/// The daemon's push stream, once subscribed (`None` when it is gone), and its partial line.
struct Feed {
    sock: Option<UnixStream>,
    inbuf: Vec<u8>,
}

impl Feed {
    /// Read what the daemon pushed (waiting at most `wait_ms` for it); a closed stream is
    /// dropped and `gone` shown instead.
    fn read(&mut self, popup: &mut Popup, wait_ms: i32, gone: &str) {
        let Some(s) = self.sock.as_mut() else { return };
        if wait_ms > 0 {
            let _ = crate::sys::fd::poll_readable(&[s.as_raw_fd()], wait_ms);
        }
        if !on_api_data(popup, s, &mut self.inbuf) {
            self.sock = None;
            popup.message = Some(gone.into());
        }
    }
}

/// Subscribe to the daemon's pane changes; without a daemon, say so in the popup.
fn subscribe(sp: &crate::paths::ServerPaths, popup: &mut Popup) -> Option<UnixStream> {
    match UnixStream::connect(sp.api_socket()) {
        Ok(s) => {
            let req = format!("{}\n", json!({"v": 1, "id": 1, "method": "subscribe"}));
            if s.set_nonblocking(false).is_err() || (&s).write_all(req.as_bytes()).is_err() {
                popup.message = Some("the agtmux daemon does not answer".into());
                None
            } else {
                let _ = s.set_nonblocking(true);
                Some(s)
            }
        }
        Err(_) => {
            popup.message = Some(format!(
                "no agtmux daemon for {} — run `agtmux doctor`",
                sp.socket.display()
            ));
            None
        }
    }
}

/// Draw, wait for keys or pushes, act on keys; until a key ends the popup (its action is
/// returned) or the terminal goes. With `--bench-exit-after-first-frame`, also when the first
/// loaded frame is drawn (then with the time and frame count).
fn interact(
    args: &PopupArgs,
    sp: &crate::paths::ServerPaths,
    popup: &mut Popup,
    api: &mut Feed,
    fd: std::os::fd::RawFd,
    out: &mut impl Write,
) -> (Action, Option<(u128, usize)>) {
    let mut frames = 0usize;
    let mut keys = KeyDecoder::default();
    let mut scroll = 0usize;
    loop {
        if draw(popup, out, &mut scroll).is_err() {
            break;
        }
        frames += 1;
        if args.bench_exit_after_first_frame && (popup.loaded || api.sock.is_none()) {
            return (Action::None, Some((unix_ns(), frames)));
        }
        // The list first, then what the selected pane's dialog asks (one tmux call, only when
        // the selection or that pane changed).
        if refresh_dialog(popup, sp) && draw(popup, out, &mut scroll).is_err() {
            break;
        }
        let mut want = vec![fd];
        if let Some(s) = &api.sock {
            want.push(s.as_raw_fd());
        }
        // The timeout redraws ages and picks up resizes; a held escape waits a moment only.
        let wait = if keys.waiting() { ESC_WAIT_MS } else { 1000 };
        let fds = match crate::sys::fd::poll_readable(&want, wait) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if fds.len() > 1 && fds[1].any() {
            api.read(popup, 0, "the agtmux daemon went away (the list is frozen)");
        }
        if fds[0].closed && !fds[0].readable {
            break;
        }
        let pressed = if fds[0].readable {
            let mut b = [0u8; 256];
            let r = match crate::sys::fd::read(fd, &mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            keys.feed(&b[..r])
        } else if keys.due() {
            keys.flush()
        } else {
            Vec::new()
        };
        match on_keys(popup, pressed, sp) {
            Action::None => {}
            a => return (a, None),
        }
    }
    (Action::None, None)
}

/// Keys pressed: answers to a dialog go out at once (the popup stays); the first key that ends
/// the popup (a switch, quit) is returned.
fn on_keys(popup: &mut Popup, pressed: Vec<Key>, sp: &crate::paths::ServerPaths) -> Action {
    for k in pressed {
        match popup.key(k) {
            Action::None => {}
            Action::Act(row, act) => {
                popup.message = Some(match &row {
                    RowId::Local(pane) => {
                        let expect = popup.token_for(&row).map(str::to_string);
                        act_message(sp, pane, &act, expect.as_deref())
                    }
                    RowId::Remote(r) => goto_remote::act(&sp.socket, &popup.list, r, &act),
                    RowId::Malformed(m) => m.refusal(),
                });
                popup.dialog = None;
            }
            a => return a,
        }
    }
    Action::None
}

/// Read the selected pane's dialog when the selection or the pane's version changed, so the
/// popup shows what `y`/`n`/`r` would answer, and keeps the token it must still match.
/// Returns whether it changed what is shown.
fn refresh_dialog(p: &mut Popup, sp: &crate::paths::ServerPaths) -> bool {
    let Some((id, local, version)) = p.selected_waiting() else {
        return p.dialog.take().is_some();
    };
    if p.dialog
        .as_ref()
        .is_some_and(|d| d.pane == *id && &d.version == version)
    {
        return false;
    }
    let read = match local {
        Ok(pane) => super::act::inspect(sp, pane).map_err(|e| e.to_string()),
        Err(m) => Err(m.why()),
    }
    .map(|s| (s.token, s.dialog.summary()));
    let (id, version) = (id.clone(), version.clone());
    p.dialog = Some(Shown {
        pane: id,
        version,
        read,
    });
    true
}

/// Do one action from the popup (no wait: the live list shows the state that follows).
fn act_message(
    sp: &crate::paths::ServerPaths,
    pane: &PaneId,
    act: &crate::core::dialog::Act,
    expect: Option<&str>,
) -> String {
    match super::act::perform(sp, pane, act, expect, std::time::Duration::ZERO, false) {
        Ok(d) => format!(
            "{pane}: {} sent ({})",
            act.verb(),
            super::act::keys_str(&d.keys)
        ),
        Err(e) => format!("{pane}: {e}"),
    }
}

/// `tmux -S SOCKET switch-client [-c CLIENT] -t %N`, as an argument vector.
fn switch_to(socket: &std::path::Path, client: Option<&str>, pane: &PaneId) -> ExitCode {
    let mut cmd = Command::new("tmux");
    cmd.arg("-S").arg(socket).arg("switch-client");
    if let Some(c) = client {
        cmd.args(["-c", c]);
    }
    cmd.args(["-t", pane.as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::Ok,
        Ok(_) => ExitCode::Failure,
        Err(e) => client::fail(&format!("tmux: {e}"), ExitCode::Failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, att: Option<&str>, title: &str) -> Value {
        json!({"pane_id": id, "session_id": "$0", "session_name": "s", "window_id": "@0",
               "presence": "managed", "attention": att, "state": "idle", "title": title,
               "provider": "claude", "icon": "*", "since_ms": 0})
    }

    fn local(id: &str) -> RowId {
        RowId::Local(id.into())
    }

    /// The rows' text, as the popup printed it before the ids were typed.
    fn order(p: &Popup) -> Vec<String> {
        p.order().iter().map(RowId::to_string).collect()
    }

    fn popup() -> Popup {
        let mut p = Popup {
            list: json!({"sessions": [{"session_id": "$0", "session_name": "s", "windows": [
                {"window_id": "@0", "window_index": 0, "window_name": "w", "panes": [
                    pane("%1", None, "alpha"), pane("%2", Some("approval"), "beta")]}]}]}),
            ..Popup::default()
        };
        p.fix_selection();
        p
    }

    #[test]
    fn remote_rows_are_grouped_by_host_after_the_local_ones() {
        let mut p = popup();
        let mut stale = pane("%9", None, "far");
        stale["stale"] = json!(true);
        p.list["remotes"] = json!([{"host": "devbox", "status": "unreachable", "since_ms": 0,
            "message": "ssh devbox: Connection refused", "servers": [{"server": "default-1",
            "socket": "/tmp/t", "stale": true, "sessions": [{"session_id": "$0",
            "session_name": "remote-s", "windows": [{"window_id": "@0", "window_index": 0,
            "window_name": "w", "panes": [stale]}]}]}]}]);
        let order = p.order();
        assert_eq!(order.len(), 3);
        let far = RowId::Remote(RemotePane {
            host: "devbox".into(),
            server: "default-1".into(),
            pane: "%9".into(),
        });
        assert_eq!(order[2], far);
        assert_eq!(order[2].to_string(), "devbox\u{1f}default-1\u{1f}%9");
        let (lines, _) = p.render(100, 0, false);
        let head = lines
            .iter()
            .position(|l| l.starts_with("⇄ devbox unreachable since"))
            .unwrap();
        assert!(lines[head].contains("Connection refused"), "{lines:?}");
        let row = lines.iter().position(|l| l.contains("%9")).unwrap();
        assert!(row > head && lines[row].contains("stale idle"), "{lines:?}");
        p.key(Key::Char('G'));
        assert_eq!(far.label(), "%9 on devbox (default-1)");
        assert!(matches!(p.key(Key::Enter), Action::Switch(ref s) if *s == far));
    }

    /// The text the popup keyed a row by before its id was typed (the old `remote_id`).
    fn old_text(remote: Option<(&str, &str)>, p: &Value) -> String {
        let id = p["pane_id"].as_str().unwrap_or("");
        match remote {
            Some((host, server)) => format!("{host}\u{1f}{server}\u{1f}{id}"),
            None => id.to_string(),
        }
    }

    /// A row's id is parsed once from its list entry and prints as the text that keyed it
    /// before; hostile or malformed entries (from a remote daemon, say) never panic and become
    /// `Malformed` rows, with the same text.
    #[test]
    fn row_ids_parse_once_and_print_as_before() {
        let long = format!("%{}", "9".repeat(20_000));
        let hostile = [
            json!("%1;reboot"),
            json!(""),
            json!("%"),
            json!("12"),
            json!("%-1"),
            json!("%1a"),
            json!("%1\u{1f}x"),
            json!("dev\u{1f}s\u{1f}%1"),
            json!("%1234567890123"),
            json!(long),
            json!("%\u{202e}1"),
            json!(7),
            json!(null),
            json!(["%1"]),
        ];
        let places = [
            None,
            Some(("devbox", "default-1")),
            Some(("dev\u{1f}box", "s\nx")),
            Some(("", "")),
        ];
        for remote in places {
            for good in ["%0", "%7", "%123456789"] {
                let p = json!({ "pane_id": good });
                let id = RowId::of(remote, &p);
                assert_eq!(id.to_string(), old_text(remote, &p));
                match (&id, remote) {
                    (RowId::Local(pane), None) => assert_eq!(pane, good),
                    (RowId::Remote(r), Some((h, s))) => {
                        assert_eq!((r.host.as_str(), r.server.as_str()), (h, s));
                        assert_eq!(r.pane, good);
                    }
                    _ => panic!("{id:?} from {remote:?} {good}"),
                }
                assert_eq!(RowId::of(remote, &p), id, "the same entry, the same id");
            }
            for bad in &hostile {
                let p = json!({ "pane_id": bad });
                let id = RowId::of(remote, &p);
                assert!(matches!(id, RowId::Malformed(_)), "{bad}: {id:?}");
                assert_eq!(id.to_string(), old_text(remote, &p), "{bad}");
                assert!(id.local().is_none_or(|l| l.is_err()), "{bad}");
            }
            let missing = RowId::of(remote, &json!({}));
            assert_eq!(missing.to_string(), old_text(remote, &json!({})));
            assert!(matches!(missing, RowId::Malformed(_)));
        }
        // Local and remote rows never meet, whatever the local text; rows whose old text was
        // the same (a separator inside a host name) are told apart.
        let p = json!({"pane_id": "%1"});
        assert_ne!(RowId::of(None, &p), RowId::of(Some(("h", "s")), &p));
        let a = RowId::of(Some(("a\u{1f}b", "c")), &p);
        let b = RowId::of(Some(("a", "b\u{1f}c")), &p);
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a, b);
    }

    /// A row with a malformed id is shown and selectable as before; no action reaches a pane,
    /// and each says why in the words the popup used before the id was typed.
    #[test]
    fn malformed_rows_are_shown_and_every_action_is_refused() {
        use crate::core::dialog::Act;
        let mut bad = pane("x", Some("approval"), "odd");
        bad["state"] = json!("waiting_approval");
        let mut p = Popup {
            list: json!({"sessions": [{"session_id": "$0", "session_name": "s", "windows": [
                {"window_id": "@0", "window_index": 0, "window_name": "w", "panes": [bad]}]}],
                "remotes": [{"host": "devbox", "status": "live", "servers": [{
                    "server": "default-1", "socket": "/tmp/t", "sessions": [{
                        "session_id": "$0", "session_name": "r", "windows": [{"window_id": "@0",
                        "window_index": 0, "window_name": "w",
                        "panes": [pane("%5;x", None, "far")]}]}]}]}]}),
            ..Popup::default()
        };
        p.fix_selection();
        assert_eq!(order(&p), vec!["x", "devbox\u{1f}default-1\u{1f}%5;x"]);
        let sp = crate::paths::ServerPaths::new("/nonexistent/agtmux-popup-test".into());
        // The local one: its dialog line says why, y answers nothing, Enter fails quietly.
        assert!(refresh_dialog(&mut p, &sp));
        let (lines, sel) = p.render(100, 0, false);
        let why = "not a pane id: \"x\" (expected %N, e.g. %3)";
        assert!(lines.iter().any(|l| *l == format!("x: {why}")), "{lines:?}");
        assert!(lines[sel.unwrap()].contains("x "), "{lines:?}");
        assert!(matches!(
            on_keys(&mut p, vec![Key::Char('y')], &sp),
            Action::None
        ));
        assert_eq!(p.message.as_deref(), Some(format!("x: {why}").as_str()));
        assert!(
            matches!(p.key(Key::Enter), Action::Switch(RowId::Malformed(ref m)) if m.remote.is_none())
        );
        // The remote one: no dialog is read, y and Enter are refused with the old words.
        assert!(refresh_dialog(&mut p, &sp), "read again after the answer");
        p.key(Key::Char('j'));
        assert_eq!(selected_text(&p), "devbox\u{1f}default-1\u{1f}%5;x");
        // Its reply prompt names it readably (no unseen separators).
        assert!(matches!(p.key(Key::Char('r')), Action::None));
        let (lines, _) = p.render(100, 0, false);
        assert!(
            lines
                .iter()
                .any(|l| l == "reply to %5;x on devbox (default-1): _"),
            "{lines:?}"
        );
        assert!(matches!(p.key(Key::Esc), Action::None));
        assert!(refresh_dialog(&mut p, &sp), "the local dialog is dropped");
        assert!(p.dialog.is_none());
        on_keys(&mut p, vec![Key::Char('n')], &sp);
        let refused = "refusing a malformed remote target pane \"%5;x\"";
        assert_eq!(p.message.as_deref(), Some(refused));
        match p.key(Key::Enter) {
            Action::Switch(RowId::Malformed(m)) => assert_eq!(m.refusal(), refused),
            _ => panic!("Enter on the row"),
        }
        assert!(matches!(
            p.key(Key::Char('y')),
            Action::Act(RowId::Malformed(_), Act::Approve)
        ));
    }

    fn selected_text(p: &Popup) -> String {
        p.selected
            .as_ref()
            .map(RowId::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn attention_first_then_navigation_filter_and_enter() {
        let mut p = popup();
        assert_eq!(order(&p), vec!["%2", "%1"]);
        assert_eq!(p.selected, Some(local("%2")));
        p.key(Key::Char('j'));
        assert_eq!(p.selected, Some(local("%1")));
        p.key(Key::Down);
        assert_eq!(p.selected, Some(local("%1")));
        p.key(Key::Char('a'));
        assert_eq!(order(&p), vec!["%2"]);
        assert_eq!(p.selected, Some(local("%2")));
        p.key(Key::Char('a'));
        p.key(Key::Char('/'));
        for c in "alp".chars() {
            p.key(Key::Char(c));
        }
        assert_eq!(order(&p), vec!["%1"]);
        p.key(Key::Enter);
        assert!(matches!(p.key(Key::Enter), Action::Switch(ref s) if *s == local("%1")));
        assert!(matches!(p.key(Key::Char('q')), Action::Quit));
        let (lines, sel) = p.render(80, 0, false);
        assert!(lines[sel.unwrap()].contains("%1"));
    }

    #[test]
    fn a_pane_line_carries_its_detail_before_the_title() {
        // Issue 23: "limit until 15:00", "retrying 3/10" … on the pane's line.
        let mut limited = pane("%1", Some("limit"), "alpha");
        limited["state"] = json!("limited");
        limited["detail"] = json!("limit until 15:00");
        let mut p = Popup {
            list: json!({"sessions": [{"session_id": "$0", "session_name": "s", "windows": [
                {"window_id": "@0", "window_index": 0, "window_name": "w", "panes": [limited]}]}]}),
            ..Popup::default()
        };
        p.fix_selection();
        let (lines, _) = p.render(100, 0, false);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("limited") && l.contains("limit until 15:00 · alpha")),
            "{lines:?}"
        );
    }

    #[test]
    fn y_n_and_r_act_on_the_selected_row_and_the_dialog_is_shown() {
        use crate::core::dialog::Act;
        let mut p = popup();
        assert_eq!(p.selected, Some(local("%2")));
        assert!(
            matches!(p.key(Key::Char('y')), Action::Act(ref s, Act::Approve) if *s == local("%2"))
        );
        assert!(
            matches!(p.key(Key::Char('n')), Action::Act(ref s, Act::Deny) if *s == local("%2"))
        );
        assert!(matches!(p.key(Key::Char('r')), Action::None));
        for c in "q $(x) y".chars() {
            // In reply mode every key is text, even q and y.
            assert!(matches!(p.key(Key::Char(c)), Action::None));
        }
        let (lines, _) = p.render(80, 0, false);
        assert!(
            lines.iter().any(|l| l == "reply to %2: q $(x) y_"),
            "{lines:?}"
        );
        assert!(
            lines[0].chars().count() < 80,
            "the header fits: {}",
            lines[0]
        );
        match p.key(Key::Enter) {
            Action::Act(s, Act::Reply(t)) => {
                assert_eq!((s, t.as_str()), (local("%2"), "q $(x) y"))
            }
            _ => panic!("Enter sends the reply"),
        }
        assert!(p.reply.is_none());
        p.key(Key::Char('r'));
        assert!(
            matches!(p.key(Key::Esc), Action::None),
            "Esc cancels the reply"
        );
        assert!(p.reply.is_none());
        // A waiting row shows what its dialog asks, and hands its token to the action.
        p.list["sessions"][0]["windows"][0]["panes"][1]["state"] = json!("waiting_approval");
        p.dialog = Some(Shown {
            pane: local("%2"),
            version: Value::Null,
            read: Ok(("0.5.claude:permission:ab".into(), "touch x".into())),
        });
        let (lines, _) = p.render(80, 0, false);
        assert!(lines.iter().any(|l| l == "%2 asks: touch x"), "{lines:?}");
        assert_eq!(p.token_for(&local("%2")), Some("0.5.claude:permission:ab"));
        assert_eq!(p.token_for(&local("%1")), None);
    }

    #[test]
    fn keys_decode() {
        assert_eq!(
            decode_keys(b"j\x1b[Bk\x1bOA\r\x1b"),
            vec![
                Key::Char('j'),
                Key::Down,
                Key::Char('k'),
                Key::Up,
                Key::Enter,
                Key::Esc
            ]
        );
    }

    /// An arrow key whose bytes arrive in two reads is one Down, not Esc (which closed the
    /// popup); a cut UTF-8 character is one character. A lone Esc is Esc once nothing follows.
    #[test]
    fn a_sequence_split_across_reads_is_one_key() {
        // The stateless decoder alone cannot tell: the first half reads as Esc.
        assert_eq!(decode_keys(b"\x1b"), vec![Key::Esc]);
        for (a, b) in [
            (&b"\x1b"[..], &b"[B"[..]),
            (b"\x1b[", b"B"),
            (b"j\x1b", b"OB"),
            (b"\x1bO", b"B"),
        ] {
            let mut d = KeyDecoder::default();
            let mut got = d.feed(a);
            assert!(d.waiting(), "{a:?} is held");
            got.extend(d.feed(b));
            assert!(!d.waiting());
            assert_eq!(got.last(), Some(&Key::Down), "{a:?} + {b:?}");
            assert!(!got.contains(&Key::Esc), "{a:?} + {b:?}: {got:?}");
        }
        let mut d = KeyDecoder::default();
        let e = "é".as_bytes();
        assert!(d.feed(&e[..1]).is_empty());
        assert_eq!(d.feed(&e[1..]), vec![Key::Char('é')]);
        let mut d = KeyDecoder::default();
        assert!(d.feed(b"\x1b").is_empty());
        assert_eq!(d.flush(), vec![Key::Esc]);
        assert!(!d.waiting());
        assert_eq!(d.feed(b"\x1b[B\x1b[A"), vec![Key::Down, Key::Up]);
        // A CSI with parameters is held until its final byte, then skipped whole as before.
        assert!(d.feed(b"\x1b[1;5").is_empty());
        assert!(d.waiting());
        assert_eq!(d.feed(b"Bj"), vec![Key::Char('j')]);
    }
}
