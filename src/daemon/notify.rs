//! Notification delivery (issue 21): turns the pure notifier's decisions (`core::notify`) into
//! what reaches the user, without ever blocking the loop.
//!
//! A batch of candidates, once its coalescing window has passed, sends three kinds of queries
//! over the control connection, answered in order: the `@agtmux-notify*` options (read fresh
//! each time, so a changed option applies at once), every pane's tty, and the attached
//! clients with the pane each one shows and whether its terminal has focus. The last answer
//! decides and delivers:
//! - `message`: `display-message -c CLIENT` on each attached (non-control) client, the text
//!   quoted for tmux's parser and `#` escaped so a title cannot inject formats or styles;
//! - `bell`: one BEL byte written to the pane's own tty. tmux reads it as that pane ringing,
//!   so `monitor-bell`, `bell-action`, `visual-bell` and the window's bell flag apply exactly
//!   as for any bell (tmux has no command that rings; a bell from pane output is its only
//!   bell path). A BEL does not draw anything; it could only cut an OSC string the agent
//!   wrote in two pieces short, and agents write those in one `write`;
//! - `osc`: the OSC 9/777/99 sequence written in one `write` straight to each attached
//!   client's terminal (`#{client_tty}`), so it reaches the outer terminal intact whatever
//!   `allow-passthrough` says and whether or not the pane is visible (tmux's DCS passthrough
//!   only reaches clients showing the pane). One `write` of a few hundred bytes is atomic on a
//!   tty, so it lands between, never inside, tmux's own writes;
//! - `command`: the user's argv, fields filled in, spawned without a shell in its own process
//!   group with no stdin/stdout/stderr; reaped on SIGCHLD, killed (the whole group) after
//!   `@agtmux-notify-timeout`, and logged when it fails or is killed.
//!
//! Remote panes (issue 24) go through the same notifier, options and channels. The remote
//! stream's resume cursor (`daemon::remote`) decides what is new, so a reconnect notifies
//! nothing twice; the candidate is keyed `host/server/%N` and its text names the host. A
//! remote pane is looked at only when a focused local client shows the go-there window of
//! its session (`@agtmux_remote_target`, set by `agtmux goto`): what the remote tmux shows
//! inside that window cannot be seen from here, so any pane of that session counts. It has
//! no local tty, so `bell` writes the BEL to the attached clients' terminals instead.
//!
//! Log lines (`notify_sent`, `notify_skipped`, `notify_command_*`) are how a user (and the
//! tests) trace every notice back to its panes.
use crate::core::notify::{self, Candidate, Notice, Notifier, NotifyConfig, PaneFacts, PaneKey};
use crate::core::types::{AttentionKind, Millis, PaneId};
use crate::daemon::remote::Remotes;
use crate::projection::Projection;
use crate::sys::procs;
use crate::tmux::client::{ReplyKind, TmuxClient};
use crate::tmux::options::quote;
use crate::tmux::registry::Registry;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

/// Panes and their ttys, tagged like the registry's rows.
const LIST_TTYS: &str = "list-panes -a -F 'AGTT #{pane_id} #{pane_tty}'";
/// Attached clients: control mode, the pane the client shows (its session's current window's
/// active pane), its flags (`focused` unless its terminal reported focus-out), its tty; the
/// name after a tab, and the window's `@agtmux_remote_target` (a go-there window) after another.
const LIST_CLIENTS: &str = "list-clients -F 'AGTN #{client_control_mode} #{pane_id} #{client_flags} #{client_tty}\t#{client_name}\t#{@agtmux_remote_target}'";
/// Most notify commands running at once; more are refused and logged.
const MAX_CHILDREN: usize = 8;
/// How long a notice stays on the status line (`display-message -d`).
const MESSAGE_MS: u32 = 5_000;

/// One attached client as `list-clients` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientView {
    pub control: bool,
    /// The pane the client shows (`None` if tmux printed no pane id).
    pub pane: Option<PaneId>,
    /// The terminal has focus (always true where tmux cannot tell).
    pub focused: bool,
    pub tty: String,
    pub name: String,
    /// The shown window's `@agtmux_remote_target` (empty: not a go-there window).
    pub target: String,
}

/// Parse `AGTN` rows; anything else is skipped.
pub(crate) fn parse_clients(lines: &[Vec<u8>]) -> Vec<ClientView> {
    let mut out = Vec::new();
    for l in lines {
        let l = String::from_utf8_lossy(l);
        let Some(rest) = l.strip_prefix("AGTN ") else {
            continue;
        };
        let (head, tail) = rest.split_once('\t').unwrap_or((rest, ""));
        // The target is ours (`host/server/$N`, no tab); a client name with a tab stays whole.
        let (name, target) = tail.rsplit_once('\t').unwrap_or((tail, ""));
        let f: Vec<&str> = head.split(' ').collect();
        if f.len() != 4 {
            continue;
        }
        // `client_flags` always says `attached` where it exists (tmux ≥ 3.2); where it is
        // empty, tmux cannot tell focus, so the client counts as focused.
        let focused = f[2].is_empty() || f[2].split(',').any(|x| x == "focused");
        out.push(ClientView {
            control: f[0] == "1",
            pane: PaneId::parse(f[1]),
            focused,
            tty: f[3].to_string(),
            name: name.to_string(),
            target: target.to_string(),
        });
    }
    out
}

/// `display-message` for one client: the client name and the text quoted for tmux's command
/// parser, `#` doubled so the text is shown as it is (no formats, no styles, no `#(…)`).
pub(crate) fn message_command(client: &str, text: &str) -> String {
    format!(
        "display-message -d {MESSAGE_MS} -c {} {}",
        quote(client),
        quote(&crate::core::attention::escape_format(text))
    )
}

/// Only a terminal device path is written to.
fn tty_path_ok(p: &str) -> bool {
    p.starts_with("/dev/") && !p.contains("..") && p.len() < 128
}

/// One non-blocking write of `bytes` to a terminal device; never becomes its controlling tty.
fn write_tty(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if !tty_path_ok(path) {
        return Err(std::io::Error::other("not a terminal device path"));
    }
    let mut f = crate::sys::term::open_for_write(std::path::Path::new(path))?;
    let n = f.write(bytes)?;
    if n != bytes.len() {
        return Err(std::io::Error::other(format!(
            "short write {n}/{}",
            bytes.len()
        )));
    }
    Ok(())
}

struct Running {
    child: Child,
    started: Millis,
    timeout: Millis,
    program: String,
}

/// A batch waiting for its queries' answers.
struct InFlight {
    batch: Vec<Candidate>,
    ttys: HashMap<PaneId, String>,
}

/// The daemon's notification state.
#[derive(Default)]
pub(crate) struct Notify {
    /// The settings as last read (the coalescing window of the next batch comes from here).
    cfg: NotifyConfig,
    notifier: Notifier,
    in_flight: Option<InFlight>,
    /// Raw option values of the read under way (the settings are rebuilt from its last one).
    raw: HashMap<&'static str, String>,
    children: Vec<Running>,
    /// Notices delivered (one per coalesced batch).
    pub sent: u64,
}

impl Notify {
    /// After a resolution: `changed` panes' attention (the first call only remembers all).
    pub(crate) fn observe(&mut self, proj: &Projection, changed: &[PaneId], now: Millis) {
        if !self.notifier.is_primed() {
            self.notifier
                .prime(proj.panes.iter().map(|(id, p)| (id, managed_attention(p))));
            return;
        }
        for id in changed {
            if let Some(p) = proj.panes.get(id) {
                self.notifier.observe(id, managed_attention(p), now);
            }
        }
    }

    pub(crate) fn forget(&mut self, pane: &PaneId) {
        self.forget_key(&PaneKey::Local(pane.clone()));
    }

    /// Forget a pane, local or remote: its last attention, its rate limit and what is pending.
    pub(crate) fn forget_key(&mut self, key: &PaneKey) {
        self.notifier.forget(key);
    }

    /// A remote pane's new attention (its stream's cursor said it is new).
    pub(crate) fn remote_attention(&mut self, key: PaneKey, kind: AttentionKind, now: Millis) {
        self.notifier.push(key, kind, now);
    }

    /// When the loop must wake: a batch due, or a command's time bound.
    pub fn next_deadline(&self) -> Option<Millis> {
        let batch = if self.in_flight.is_none() {
            self.notifier.due(self.cfg.coalesce_ms)
        } else {
            None
        };
        let kill = self.children.iter().map(|r| r.started + r.timeout).min();
        batch.into_iter().chain(kill).min()
    }

    /// The connection went away: a batch waiting for answers will get none.
    pub fn connection_lost(&mut self) {
        if let Some(f) = self.in_flight.take() {
            log::warn!(
                "notify_dropped reason=control_connection_lost panes={}",
                f.batch.len()
            );
        }
    }

    /// Ask tmux for the `@agtmux-notify*` options (at connect, and before each batch).
    pub(crate) fn load_options(&mut self, t: &mut TmuxClient) {
        for name in notify::OPTIONS {
            t.send(
                &format!("show-options -gqv {name}"),
                ReplyKind::Notify(name.to_string()),
            );
        }
    }

    /// Close a due batch and ask tmux what is needed to decide it.
    pub fn step(&mut self, tmux: Option<&mut TmuxClient>, now: Millis) {
        self.reap(now);
        let Some(t) = tmux.filter(|t| t.is_ready()) else {
            return;
        };
        if self.in_flight.is_some()
            || self
                .notifier
                .due(self.cfg.coalesce_ms)
                .is_none_or(|d| d > now)
        {
            return;
        }
        let batch = self.notifier.take_batch();
        if batch.is_empty() {
            return;
        }
        self.load_options(t);
        t.send(LIST_TTYS, ReplyKind::Notify("ttys".into()));
        t.send(LIST_CLIENTS, ReplyKind::Notify("clients".into()));
        self.in_flight = Some(InFlight {
            batch,
            ttys: HashMap::new(),
        });
    }

    /// An answer to one of the batch's queries; the clients' answer decides and delivers.
    pub(crate) fn on_reply(
        &mut self,
        tag: &str,
        ok: bool,
        lines: &[Vec<u8>],
        ctx: (&Projection, &Registry, &Remotes),
        tmux: Option<&mut TmuxClient>,
        now: Millis,
    ) {
        if let Some(name) = notify::OPTIONS.iter().find(|n| **n == tag) {
            // Every option answers (an unset one with no line): the last one completes a read.
            let v = if ok {
                lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                String::new()
            };
            self.raw.insert(name, v);
            if Some(name) == notify::OPTIONS.last() {
                self.rebuild_config();
            }
            return;
        }
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if tag == "ttys" {
            for l in lines {
                let l = String::from_utf8_lossy(l);
                if let Some((id, tty)) = l.strip_prefix("AGTT ").and_then(|r| r.split_once(' '))
                    && let Some(id) = PaneId::parse(id)
                {
                    f.ttys.insert(id, tty.to_string());
                }
            }
            return;
        }
        if tag != "clients" {
            return;
        }
        let Some(f) = self.in_flight.take() else {
            return;
        };
        if !ok {
            // Without the clients we cannot tell who looks at what: better no notice.
            log::warn!(
                "notify_dropped reason=list_clients_failed panes={}",
                f.batch.len()
            );
            return;
        }
        let clients = parse_clients(lines);
        let (proj, reg, remotes) = ctx;
        let facts = |key: &PaneKey| match key {
            PaneKey::Remote { .. } => remotes.notify_facts(key),
            PaneKey::Local(id) => pane_facts(proj, reg, id),
        };
        let looked_at = |key: &PaneKey| {
            let shows = |c: &ClientView| match key {
                PaneKey::Remote { .. } => remotes
                    .window_tag(key)
                    .is_some_and(|t| !c.target.is_empty() && c.target == t),
                PaneKey::Local(id) => c.pane.as_ref() == Some(id),
            };
            clients.iter().any(|c| !c.control && c.focused && shows(c))
        };
        let (notice, skipped) = self
            .notifier
            .decide(f.batch, &self.cfg, &facts, &looked_at, now);
        for (pane, why) in &skipped {
            log::info!("notify_skipped pane={pane} reason={}", why.as_str());
        }
        let Some(notice) = notice else {
            return;
        };
        if !self.cfg.any_channel() {
            log::info!("notify_skipped panes={} reason=no_channel", panes(&notice));
            return;
        }
        self.sent += 1;
        log::info!(
            "notify_sent count={} panes={} kinds={} channels={}",
            notice.count(),
            panes(&notice),
            notice
                .items
                .iter()
                .map(|i| i.kind.as_str())
                .collect::<Vec<_>>()
                .join(","),
            self.cfg.channels()
        );
        self.deliver(&notice, &clients, &f.ttys, tmux, now);
    }

    /// The settings from the options just read (defaults for unset or refused ones).
    fn rebuild_config(&mut self) {
        let mut cfg = NotifyConfig::default();
        for name in notify::OPTIONS {
            if let Some(v) = self.raw.get(name)
                && let Err(e) = cfg.apply(name, v)
            {
                log::warn!("notify_option_refused name={name} reason={e:?}");
            }
        }
        if cfg != self.cfg {
            log::info!(
                "notify_config channels={} coalesce_ms={} interval_ms={}",
                cfg.channels(),
                cfg.coalesce_ms,
                cfg.interval_ms
            );
        }
        self.cfg = cfg;
        self.raw.clear();
    }

    fn deliver(
        &mut self,
        notice: &Notice,
        clients: &[ClientView],
        ttys: &HashMap<PaneId, String>,
        tmux: Option<&mut TmuxClient>,
        now: Millis,
    ) {
        let people: Vec<&ClientView> = clients.iter().filter(|c| !c.control).collect();
        if self.cfg.message
            && let Some(t) = tmux
        {
            let text = notice.text();
            for c in &people {
                t.send(&message_command(&c.name, &text), ReplyKind::Other);
            }
        }
        // One notice, one bell: it rings from the most urgent pane (its window gets the flag).
        if self.cfg.bell {
            let i = notice.first();
            if let PaneKey::Remote { .. } = &i.pane {
                // No local pane to ring: the terminals of the attached clients ring.
                let mut done: Vec<&str> = Vec::new();
                for c in &people {
                    if done.contains(&c.tty.as_str()) {
                        continue;
                    }
                    done.push(&c.tty);
                    if let Err(e) = write_tty(&c.tty, b"\x07") {
                        log::warn!(
                            "notify_bell_failed pane={} client={:?} err={e}",
                            i.pane,
                            c.name
                        );
                    }
                }
            } else {
                match ttys.get(i.pane.pane_id()) {
                    Some(tty) => {
                        if let Err(e) = write_tty(tty, b"\x07") {
                            log::warn!("notify_bell_failed pane={} err={e}", i.pane);
                        }
                    }
                    None => log::warn!("notify_bell_failed pane={} err=no_tty", i.pane),
                }
            }
        }
        if self.cfg.osc {
            let bytes = notice.osc(self.cfg.osc_kind);
            let mut done: Vec<&str> = Vec::new();
            for c in &people {
                if done.contains(&c.tty.as_str()) {
                    continue;
                }
                done.push(&c.tty);
                if let Err(e) = write_tty(&c.tty, &bytes) {
                    log::warn!("notify_osc_failed client={:?} err={e}", c.name);
                }
            }
        }
        if self.cfg.command && !self.cfg.argv.is_empty() {
            self.spawn(notice.fill(&self.cfg.argv), now);
        }
    }

    fn spawn(&mut self, argv: Vec<String>, now: Millis) {
        use std::os::unix::process::CommandExt;
        let Some((program, args)) = argv.split_first() else {
            return;
        };
        if self.children.len() >= MAX_CHILDREN {
            log::warn!(
                "notify_command_refused program={program:?} reason=too_many_running running={}",
                self.children.len()
            );
            return;
        }
        let mut c = Command::new(program);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        match c.spawn() {
            Ok(child) => {
                log::info!(
                    "notify_command_started program={program:?} pid={}",
                    child.id()
                );
                self.children.push(Running {
                    child,
                    started: now,
                    timeout: self.cfg.timeout_ms,
                    program: program.clone(),
                });
            }
            Err(e) => log::warn!("notify_command_failed program={program:?} err={e}"),
        }
    }

    /// Reap finished commands (SIGCHLD or a tick); kill those past their bound.
    pub(crate) fn reap(&mut self, now: Millis) {
        self.children.retain_mut(|r| match r.child.try_wait() {
            Ok(Some(st)) => {
                if st.success() {
                    log::debug!("notify_command_exited program={:?} status=0", r.program);
                } else {
                    log::warn!(
                        "notify_command_failed program={:?} status={st} after_ms={}",
                        r.program,
                        now - r.started
                    );
                }
                false
            }
            Ok(None) if now - r.started >= r.timeout => {
                procs::kill_group(r.child.id() as i32);
                let _ = r.child.kill();
                let _ = r.child.wait();
                log::warn!(
                    "notify_command_killed program={:?} after_ms={} bound_ms={}",
                    r.program,
                    now - r.started,
                    r.timeout
                );
                false
            }
            Ok(None) => true,
            Err(e) => {
                log::warn!("notify_command_wait_failed program={:?} err={e}", r.program);
                false
            }
        });
    }
}

fn panes(n: &Notice) -> String {
    n.items
        .iter()
        .map(|i| i.pane.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Attention counts only for a pane that holds an agent.
fn managed_attention(
    p: &crate::projection::PaneModel,
) -> Option<crate::core::types::AttentionKind> {
    p.attention.filter(|_| p.is_managed())
}

fn pane_facts(proj: &Projection, reg: &Registry, id: &str) -> Option<PaneFacts> {
    let p = proj.panes.get(id)?;
    let location = reg
        .panes
        .get(id)
        .map(|r| {
            let s = reg
                .session_names
                .get(&r.session_id)
                .cloned()
                .unwrap_or_else(|| r.session_id.clone());
            format!("{s}:{}.{}", r.window_index, r.pane_index)
        })
        .unwrap_or_default();
    Some(PaneFacts {
        attention: managed_attention(p),
        provider: p
            .provider()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        state: p.activity().as_str().to_string(),
        title: p.title.clone(),
        location,
        ..PaneFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_parse_with_and_without_focus() {
        let rows = [
            b"AGTN 1 %0 attached,focused,control-mode,no-output /dev/pts/9\tclient-77".to_vec(),
            b"AGTN 0 %3 attached,focused,UTF-8 /dev/pts/4\t/dev/pts/4\tdevbox/default/$1".to_vec(),
            b"AGTN 0 %5 attached,UTF-8 /dev/pts/6\t/dev/pts/6".to_vec(),
            b"AGTN 0 %6  /dev/pts/7\told tmux".to_vec(),
            b"garbage".to_vec(),
        ];
        let c = parse_clients(&rows);
        assert_eq!(c.len(), 4);
        assert!(c[0].control);
        assert!(c[1].focused && c[1].pane == PaneId::parse("%3") && c[1].tty == "/dev/pts/4");
        assert_eq!(
            (c[1].name.as_str(), c[1].target.as_str()),
            ("/dev/pts/4", "devbox/default/$1")
        );
        assert_eq!(c[0].target, "", "an old row without the target field");
        assert!(!c[2].focused);
        assert!(c[3].focused, "no flags: focus unknown, counts as focused");
        assert_eq!(c[3].name, "old tmux");
    }

    #[test]
    fn message_commands_cannot_inject() {
        let c = message_command(
            "/dev/pts/4",
            "agtmux: %3 x #[fg=red]#(rm -rf ~)' ; kill-server",
        );
        assert_eq!(
            c,
            "display-message -d 5000 -c '/dev/pts/4' 'agtmux: %3 x ##[fg=red]##(rm -rf ~)'\\'' ; kill-server'"
        );
        assert!(!tty_path_ok("/tmp/x") && !tty_path_ok("/dev/../etc/passwd"));
        assert!(tty_path_ok("/dev/pts/3"));
    }
}
