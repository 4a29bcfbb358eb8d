//! The pane registry (C-002 groundwork, Flow-002 input): what `list-panes -a` over the control
//! connection says about every pane, refreshed at start, on structure notifications and on a
//! light periodic tick. It also yields the cheap change hints the poller uses (history size,
//! cursor, window activity, title) so only panes that may have changed are captured.
use super::control_session::USER_SESSIONS;
use crate::core::types::PaneId;
use std::collections::{BTreeMap, HashMap};

/// Tagged formats: inside a reply block every line is raw data, so each row starts with a tag
/// and free text (the title) comes last, after a tab, where a space or tag cannot confuse us.
/// Every list leaves out the daemon's own session (`control_session`, filtered inside tmux).
pub const LIST_PANES: &str = "list-panes -a -f '#{!=:#{session_name},_agtmux}' -F 'AGTP #{pane_id} #{session_id} #{window_id} #{window_index} #{pane_index} #{pane_pid} #{pane_active} #{window_active} #{history_size} #{cursor_x} #{cursor_y} #{pane_width} #{pane_height} #{window_activity} #{pane_dead} #{pane_current_command}\t#{pane_title}'";
pub const LIST_CLIENTS: &str =
    "list-clients -F 'AGTC #{client_control_mode} #{session_id} #{client_pid} #{client_flags}'";
pub const LIST_SESSIONS: &str =
    "list-sessions -f '#{!=:#{session_name},_agtmux}' -F 'AGTS #{session_id}\t#{session_name}'";
pub const LIST_WINDOWS: &str = "list-windows -a -f '#{!=:#{session_name},_agtmux}' -F 'AGTW #{window_id} #{session_id} #{window_index}\t#{window_name}'";
pub const IDENTITY: &str = "display-message -p 'AGTI #{pid} #{start_time} #{version}'";
/// Panes that hold a published agent state (`@agtmux_presence` set), one `AGTO %N` row each.
pub(crate) const PUBLISHED_PANES: &str =
    "list-panes -a -F '#{?@agtmux_presence,AGTO #{pane_id},AGTN}'";

/// The name of the control client's one subscription (tmux ≥ 3.2, `refresh-client -B`).
pub(crate) const PANES_SUBSCRIPTION: &str = "agtmux-panes";

/// Subscribe to every pane's id, pid and foreground command, across all sessions: a session
/// subscription whose format loops over sessions, windows and panes (`%*` pane subscriptions
/// only cover the attached session). tmux evaluates it once a second and writes
/// `%subscription-changed` only when the value changed, so a pane whose foreground command
/// changes (an agent typed into a shell, a late `exec`) or that appears or goes anywhere on the
/// server is noticed within a second, with no command of ours and no fork. Each entry is
/// `%ID=PID=COMMAND|` (the command last: it is free text). Needs no output from panes, so it
/// works with the control client's `no-output`. The daemon's own session is left out.
/// The subscription whose change makes the daemon read the `@agtmux-*` options again: the
/// plugin sets `@agtmux_reload` each time it is sourced. One global option, checked by tmux
/// once a second; no process runs for it.
pub(crate) const OPTIONS_SUBSCRIPTION: &str = "agtmux-options";

/// `refresh-client -B` for [`OPTIONS_SUBSCRIPTION`] (tmux ≥ 3.2; fails harmlessly before).
pub(crate) fn subscribe_options_command() -> String {
    format!("refresh-client -B '{OPTIONS_SUBSCRIPTION}::#{{@agtmux_reload}}'")
}

pub(crate) fn subscribe_panes_command() -> String {
    format!(
        "refresh-client -B '{PANES_SUBSCRIPTION}::#{{S:#{{?{USER_SESSIONS},#{{W:#{{P:#{{pane_id}}=#{{pane_pid}}=#{{pane_current_command}}|}}}},}}}}'"
    )
}

/// The entries of a [`subscribe_panes_command`] value: pane id → (pid, foreground command).
/// A window linked into several sessions lists its panes more than once; the last wins (they
/// are equal). A `|` inside a command does not start an entry (entries start `%N=PID=`), so
/// it stays part of that command. Pieces that fit no entry are skipped; the value is a hint
/// that only ever triggers a re-check, never a verdict.
pub(crate) fn parse_pane_digest(value: &[u8]) -> BTreeMap<PaneId, (i32, String)> {
    let text = String::from_utf8_lossy(value);
    let mut out: BTreeMap<PaneId, (i32, String)> = BTreeMap::new();
    let mut last: Option<PaneId> = None;
    let pieces: Vec<&str> = text.split('|').collect();
    // The value ends with `|`: the final piece is empty and closes nothing.
    let n = pieces
        .len()
        .saturating_sub(usize::from(text.ends_with('|')));
    for piece in &pieces[..n] {
        let entry = piece.split_once('=').and_then(|(id, rest)| {
            let (pid, cmd) = rest.split_once('=')?;
            let pid = pid.parse::<i32>().ok()?;
            Some((PaneId::parse(id)?, pid, cmd))
        });
        match (entry, &last) {
            (Some((id, pid, cmd)), _) => {
                out.insert(id.clone(), (pid, cmd.to_string()));
                last = Some(id);
            }
            (None, Some(id)) => {
                if let Some(e) = out.get_mut(id) {
                    e.1.push('|');
                    e.1.push_str(piece);
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// The change hints of one pane, tagged like `list-panes` rows; the title last, after a tab.
pub(crate) fn pane_hints_command(pane_id: &PaneId) -> String {
    format!(
        "display-message -p -t {pane_id} 'AGTH #{{pane_id}} #{{pane_active}} #{{window_active}} #{{history_size}} #{{cursor_x}} #{{cursor_y}} #{{pane_width}} #{{pane_height}} #{{window_activity}} #{{pane_pid}}\t#{{pane_current_command}}\t#{{pane_title}}'"
    )
}

/// What a hints reply changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HintChange {
    pub(crate) screen_changed: bool,
    pub(crate) focus_changed: bool,
    pub(crate) title_changed: bool,
    /// The foreground command or the pane's process changed: re-check its process tree.
    pub(crate) process_changed: bool,
}

/// One pane as tmux describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    pub pane_id: PaneId,
    pub session_id: String,
    pub window_id: String,
    pub window_index: u32,
    pub(crate) pane_index: u32,
    pub(crate) pane_pid: i32,
    pub(crate) pane_active: bool,
    pub(crate) window_active: bool,
    pub(crate) history_size: u64,
    pub(crate) cursor_x: u32,
    pub(crate) cursor_y: u32,
    pub(crate) width: u16,
    pub(crate) height: u16,
    pub(crate) window_activity: u64,
    pub dead: bool,
    pub(crate) current_command: String,
    pub title: String,
}

impl PaneInfo {
    /// The fields that change when the screen may have changed.
    pub(crate) fn change_hint(&self) -> (u64, u32, u32, u64, &str, u16, u16) {
        (
            self.history_size,
            self.cursor_x,
            self.cursor_y,
            self.window_activity,
            &self.title,
            self.width,
            self.height,
        )
    }
}

/// Parse one `AGTP` row. `None` for anything else (logged by the caller).
pub fn parse_pane_line(line: &[u8]) -> Option<PaneInfo> {
    let line = String::from_utf8_lossy(line);
    let rest = line.strip_prefix("AGTP ")?;
    let (head, title) = rest.split_once('\t').unwrap_or((rest, ""));
    // 15 single-token fields, then the command as the remainder (it could hold spaces).
    let mut f = head.splitn(16, ' ');
    let mut next = || f.next();
    let p = PaneInfo {
        pane_id: PaneId::parse(next()?)?,
        session_id: next()?.to_string(),
        window_id: next()?.to_string(),
        window_index: next()?.parse().ok()?,
        pane_index: next()?.parse().ok()?,
        pane_pid: next()?.parse().ok()?,
        pane_active: next()? == "1",
        window_active: next()? == "1",
        history_size: next()?.parse().ok()?,
        cursor_x: next()?.parse().ok()?,
        cursor_y: next()?.parse().ok()?,
        width: next()?.parse().ok()?,
        height: next()?.parse().ok()?,
        window_activity: next()?.parse().ok()?,
        dead: next()? == "1",
        current_command: next().unwrap_or("").to_string(),
        title: title.to_string(),
    };
    Some(p)
}

/// Which sessions real users look at: session id → number of non-control clients whose
/// terminal has focus. `client_flags` lacks `focused` only after the terminal reported
/// focus-out (`focus-events on`); where tmux has no `client_flags`, every client counts.
pub fn parse_clients(lines: &[Vec<u8>]) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for l in lines {
        let l = String::from_utf8_lossy(l);
        let mut f = l.split(' ');
        if f.next() != Some("AGTC") {
            continue;
        }
        let control = f.next() == Some("1");
        let session = f.next();
        let _pid = f.next();
        let flags = f.next().unwrap_or("");
        let focused = flags.is_empty() || flags.split(',').any(|x| x == "focused");
        if let Some(s) = session
            && !control
            && focused
            && !s.is_empty()
        {
            *m.entry(s.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// `id → name` from `AGTS`/`AGTW` rows (tab before the free-text name).
pub fn parse_names(lines: &[Vec<u8>], tag: &str) -> HashMap<String, (String, String)> {
    let mut m = HashMap::new();
    for l in lines {
        let l = String::from_utf8_lossy(l);
        let Some(rest) = l.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) else {
            continue;
        };
        let (head, name) = rest.split_once('\t').unwrap_or((rest, ""));
        let id = head.split(' ').next().unwrap_or("").to_string();
        let extra = head.split_once(' ').map(|x| x.1).unwrap_or("").to_string();
        m.insert(id, (name.to_string(), extra));
    }
    m
}

/// The server's identity from the [`IDENTITY`] reply: `("<pid>:<start_time>", version)`, with
/// `?` for a missing field (a server always answers; a garbled line still gives an id).
pub(crate) fn parse_identity(lines: &[Vec<u8>]) -> (String, String) {
    let line = lines
        .first()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    let mut f = line.split(' ').skip(1);
    let id = format!("{}:{}", f.next().unwrap_or("?"), f.next().unwrap_or("?"));
    (id, f.next().unwrap_or("?").to_string())
}

/// Pane ids of the `AGTO %N` rows of [`PUBLISHED_PANES`]; `None` when the reply has no such
/// row (not that command's reply, or no pane holds a published state).
pub(crate) fn parse_published(lines: &[Vec<u8>]) -> Option<Vec<PaneId>> {
    if !lines.iter().any(|l| l.starts_with(b"AGTO ")) {
        return None;
    }
    let mut panes = Vec::new();
    for l in lines {
        let l = String::from_utf8_lossy(l);
        if let Some(pane) = l
            .strip_prefix("AGTO ")
            .and_then(|p| PaneId::parse(p.trim()))
        {
            panes.push(pane);
        }
    }
    Some(panes)
}

/// What a refresh changed.
#[derive(Debug, Default)]
pub struct Diff {
    pub added: Vec<PaneId>,
    pub removed: Vec<PaneInfo>,
    /// Panes whose command or pid changed (re-check the process tree).
    pub(crate) process_changed: Vec<PaneId>,
    /// Panes whose screen may have changed (history, cursor, activity, title, size).
    pub(crate) screen_changed: Vec<PaneId>,
    /// Panes whose focus (active pane/window) changed.
    pub(crate) focus_changed: Vec<PaneId>,
}

/// Current panes by id.
#[derive(Debug, Default)]
pub struct Registry {
    pub panes: BTreeMap<PaneId, PaneInfo>,
    /// Session id → count of real (non-control) clients attached.
    pub(crate) viewers: HashMap<String, u32>,
    pub(crate) session_names: HashMap<String, String>,
    pub(crate) window_names: HashMap<String, String>,
    /// Set once the first full refresh arrived.
    pub loaded: bool,
}

impl Registry {
    /// Replace the pane set with a fresh `list-panes -a` reply and report the differences.
    pub fn apply(&mut self, lines: &[Vec<u8>]) -> Diff {
        let mut fresh = BTreeMap::new();
        for l in lines {
            match parse_pane_line(l) {
                Some(p) => {
                    fresh.insert(p.pane_id.clone(), p);
                }
                None => log::debug!("registry_bad_row row={:?}", String::from_utf8_lossy(l)),
            }
        }
        let mut d = Diff::default();
        for (id, p) in &fresh {
            match self.panes.get(id) {
                None => d.added.push(id.clone()),
                Some(old) => {
                    if old.current_command != p.current_command || old.pane_pid != p.pane_pid {
                        d.process_changed.push(id.clone());
                    }
                    if old.change_hint() != p.change_hint() {
                        d.screen_changed.push(id.clone());
                    }
                    if old.pane_active != p.pane_active || old.window_active != p.window_active {
                        d.focus_changed.push(id.clone());
                    }
                }
            }
        }
        let old = std::mem::replace(&mut self.panes, fresh);
        for (id, p) in old {
            if !self.panes.contains_key(&id) {
                d.removed.push(p);
            }
        }
        self.loaded = true;
        d
    }

    /// Update one known pane from an `AGTH` hints row. `None` for a malformed row or a pane
    /// that is not (or no longer) in the registry.
    pub fn apply_hints(&mut self, pane_id: &PaneId, line: &[u8]) -> Option<HintChange> {
        let line = String::from_utf8_lossy(line);
        let rest = line.strip_prefix("AGTH ")?;
        let (head, tail) = rest.split_once('\t').unwrap_or((rest, ""));
        let (command, title) = tail.split_once('\t').unwrap_or((tail, ""));
        let f: Vec<&str> = head.split(' ').collect();
        if f.len() != 10 || *pane_id != f[0] {
            return None;
        }
        let num = |i: usize| f[i].parse::<u64>().ok();
        let p = self.panes.get_mut(pane_id)?;
        let before = (
            p.change_hint().0,
            p.cursor_x,
            p.cursor_y,
            p.window_activity,
            p.width,
            p.height,
        );
        let focus_before = (p.pane_active, p.window_active);
        let title_before = p.title.clone();
        let process_before = (p.pane_pid, p.current_command.clone());
        p.pane_active = f[1] == "1";
        p.window_active = f[2] == "1";
        p.history_size = num(3)?;
        p.cursor_x = num(4)? as u32;
        p.cursor_y = num(5)? as u32;
        p.width = num(6)? as u16;
        p.height = num(7)? as u16;
        p.window_activity = num(8)?;
        p.pane_pid = f[9].parse().ok()?;
        p.current_command = command.to_string();
        p.title = title.to_string();
        Some(HintChange {
            screen_changed: before
                != (
                    p.history_size,
                    p.cursor_x,
                    p.cursor_y,
                    p.window_activity,
                    p.width,
                    p.height,
                ),
            focus_changed: focus_before != (p.pane_active, p.window_active),
            title_changed: title_before != p.title,
            process_changed: process_before != (p.pane_pid, p.current_command.clone()),
        })
    }

    /// Compare a [`parse_pane_digest`] value with the registry. Panes whose pid or command
    /// differ are updated in place and returned (their process tree needs a look); `true` in
    /// the second place when the pane set itself differs (a pane appeared or went), which only
    /// a full refresh can settle.
    pub(crate) fn apply_digest(
        &mut self,
        digest: &BTreeMap<PaneId, (i32, String)>,
    ) -> (Vec<PaneId>, bool) {
        let mut changed = Vec::new();
        let mut structure = self.panes.len() != digest.len();
        for (id, (pid, cmd)) in digest {
            match self.panes.get_mut(id) {
                Some(p) => {
                    if p.pane_pid != *pid || p.current_command != *cmd {
                        p.pane_pid = *pid;
                        p.current_command = cmd.clone();
                        changed.push(id.clone());
                    }
                }
                None => structure = true,
            }
        }
        (changed, structure)
    }

    /// The active pane of a window (the one `automatic-rename` names the window after).
    pub(crate) fn active_pane_of(&self, window_id: &str) -> Option<&PaneId> {
        self.panes
            .values()
            .find(|p| p.window_id == window_id && p.pane_active)
            .map(|p| &p.pane_id)
    }

    /// Is the user looking at this pane: the active pane of the active window of a session
    /// that a real (non-control) client with terminal focus shows.
    pub fn focused(&self, pane_id: &PaneId) -> bool {
        self.panes.get(pane_id).is_some_and(|p| {
            p.pane_active
                && p.window_active
                && self.viewers.get(&p.session_id).copied().unwrap_or(0) > 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_published_rows_decode() {
        let (id, version) = parse_identity(&[b"AGTI 4242 1700000000 3.5a".to_vec()]);
        assert_eq!((id.as_str(), version.as_str()), ("4242:1700000000", "3.5a"));
        let (id, version) = parse_identity(&[]);
        assert_eq!((id.as_str(), version.as_str()), ("?:?", "?"));
        let rows = [
            b"AGTN".to_vec(),
            b"AGTO %3".to_vec(),
            b"AGTO ".to_vec(),
            b"AGTO %12 ".to_vec(),
        ];
        assert_eq!(
            parse_published(&rows),
            Some(vec!["%3".into(), "%12".into()])
        );
        assert_eq!(parse_published(&[b"AGTS $1\tmain".to_vec()]), None);
    }

    fn row(id: &str, cmd: &str, title: &str, hist: u64) -> Vec<u8> {
        format!("AGTP {id} $0 @1 0 0 4242 1 1 {hist} 0 5 120 40 1700000000 0 {cmd}\t{title}")
            .into_bytes()
    }

    #[test]
    fn parses_rows_with_hostile_titles() {
        let p = parse_pane_line(&row("%3", "claude", "✳ a\tb AGTP %9", 7)).unwrap();
        assert_eq!(p.pane_id, "%3");
        assert_eq!(p.current_command, "claude");
        assert_eq!(p.title, "✳ a\tb AGTP %9");
        assert_eq!(p.history_size, 7);
        assert!(parse_pane_line(b"AGTP %x $0").is_none());
        assert!(parse_pane_line(b"garbage").is_none());
    }

    #[test]
    fn diff_reports_added_removed_and_changed() {
        let mut r = Registry::default();
        let d = r.apply(&[row("%1", "bash", "", 0), row("%2", "bash", "", 0)]);
        assert_eq!(d.added, vec!["%1", "%2"]);
        let d = r.apply(&[row("%1", "claude", "", 0), row("%3", "bash", "", 0)]);
        assert_eq!(d.added, vec!["%3"]);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].pane_id, "%2");
        assert_eq!(d.process_changed, vec!["%1"]);
        let d = r.apply(&[row("%1", "claude", "", 5), row("%3", "bash", "", 0)]);
        assert_eq!(d.screen_changed, vec!["%1"]);
    }

    #[test]
    fn hints_update_a_known_pane_and_refuse_others() {
        let mut r = Registry::default();
        r.apply(&[row("%1", "claude", "t", 0)]);
        let line = |s: &str| s.as_bytes().to_vec();
        let h = r
            .apply_hints(
                &"%1".into(),
                &line("AGTH %1 1 1 3 0 5 120 40 1700000001 4242\tclaude\tnew title"),
            )
            .unwrap();
        assert!(h.screen_changed && h.title_changed && !h.focus_changed && !h.process_changed);
        let h = r
            .apply_hints(
                &"%1".into(),
                &line("AGTH %1 0 1 3 0 5 120 40 1700000001 4242\tclaude\tnew title"),
            )
            .unwrap();
        assert!(!h.screen_changed && h.focus_changed);
        let h = r
            .apply_hints(
                &"%1".into(),
                &line("AGTH %1 0 1 3 0 5 120 40 1700000001 4242\tbash\tnew\ttitle"),
            )
            .unwrap();
        assert!(h.process_changed && h.title_changed);
        assert_eq!(r.panes["%1"].title, "new\ttitle");
        assert_eq!(
            r.apply_hints(&"%2".into(), &line("AGTH %2 1 1 0 0 0 1 1 1 1\tx\tx")),
            None
        );
        assert_eq!(
            r.apply_hints(&"%1".into(), &line("AGTH %9 1 1 0 0 0 1 1 1 1\tx\tx")),
            None
        );
        assert_eq!(r.apply_hints(&"%1".into(), b"garbage"), None);
        assert!(
            pane_hints_command(&"%1".into())
                .starts_with("display-message -p -t %1 'AGTH #{pane_id}")
        );
    }

    #[test]
    fn pane_digest_parses_commands_with_separators_and_skips_junk() {
        let d = parse_pane_digest(b"%1=100=bash|%2=200=codex|%3=300=a|b=c|%1=100=bash|");
        assert_eq!(d.len(), 3);
        assert_eq!(d["%1"], (100, "bash".to_string()));
        assert_eq!(d["%2"], (200, "codex".to_string()));
        assert_eq!(d["%3"], (300, "a|b=c".to_string()));
        assert!(parse_pane_digest(b"").is_empty());
        assert!(parse_pane_digest(b"junk|%x=1=a|%4=nopid=a|").is_empty());
        // An empty command (a pane between fork and exec) is still an entry.
        assert_eq!(parse_pane_digest(b"%5=9=|")["%5"], (9, String::new()));
        assert!(subscribe_panes_command().contains(
            "agtmux-panes::#{S:#{?#{!=:#{session_name},_agtmux},#{W:#{P:#{pane_id}=#{pane_pid}=#{pane_current_command}|}},}}"
        ));
    }

    #[test]
    fn every_list_leaves_out_the_daemons_own_session() {
        for cmd in [LIST_PANES, LIST_SESSIONS, LIST_WINDOWS] {
            assert!(cmd.contains(&format!("-f '{USER_SESSIONS}'")), "{cmd}");
        }
        assert!(subscribe_panes_command().contains(USER_SESSIONS));
    }

    #[test]
    fn digest_updates_changed_panes_and_flags_structure() {
        let mut r = Registry::default();
        r.apply(&[row("%1", "bash", "", 0), row("%2", "bash", "", 0)]);
        let d = parse_pane_digest(b"%1=4242=bash|%2=4242=codex|");
        assert_eq!(r.apply_digest(&d), (vec!["%2".into()], false));
        assert_eq!(r.panes["%2"].current_command, "codex");
        assert_eq!(r.apply_digest(&d), (vec![], false));
        let d = parse_pane_digest(b"%1=4242=bash|");
        assert_eq!(r.apply_digest(&d), (vec![], true), "a pane went");
        let d = parse_pane_digest(b"%1=4242=bash|%2=4242=codex|%3=1=sh|");
        assert_eq!(r.apply_digest(&d), (vec![], true), "a pane came");
        assert_eq!(r.active_pane_of("@1").map(|p| p.as_str()), Some("%1"));
        assert_eq!(r.active_pane_of("@9"), None);
    }

    #[test]
    fn control_clients_do_not_count_as_viewers() {
        let v = parse_clients(&[
            b"AGTC 1 $0 1 attached,focused,control-mode".to_vec(),
            b"AGTC 0 $1 2".to_vec(),
            b"AGTC 0 $2 3 attached,focused,UTF-8".to_vec(),
            b"AGTC 0 $3 4 attached,UTF-8".to_vec(),
        ]);
        assert_eq!(v.get("$0"), None);
        assert_eq!(v.get("$1"), Some(&1));
        assert_eq!(v.get("$2"), Some(&1));
        assert_eq!(v.get("$3"), None, "its terminal reported focus-out");
    }
}
