//! Remote hosts as sources (issue 24): for every SSH destination in `@agtmux-remotes` the
//! daemon runs one `ssh -T -o BatchMode=yes HOST agtmux watch --json --all` and keeps what it
//! says as a read model of its own, apart from the local panes.
//!
//! WHY inside the daemon, and why this shape:
//! - OpenSSH is the transport: the user's `~/.ssh/config`, ControlMaster, agent and keys all
//!   apply, agtmux opens no port and holds no credential. `BatchMode=yes` means a password or
//!   host-key prompt never blocks: ssh fails, and the failure is turned into what to fix.
//! - Each stream is a supervised child like the Codex connection (`supervisor::Supervised`:
//!   backoff 1 s → 30 s, 5 failures in 10 min → hold-down, `escalate` logged). A host that is
//!   asleep is just `unreachable since …`, retried, and costs nothing meanwhile.
//! - The stream is state, not a log (`sources::remote`): each (re)connection starts with a
//!   snapshot per remote tmux server, then pushes. Resuming is replacing: panes of a server
//!   are kept, marked stale, while the host is unreachable (never dropped silently, never
//!   shown live), and the next snapshot replaces them. The resume cursor is per pane: an
//!   attention is new only when its (kind, since, generation) was not seen before, so a
//!   reconnect re-sends nothing the user was already told (`remote_attention` logged once).
//! - Everything from the remote is untrusted (`sources::remote` validates and cleans it);
//!   a refused line is logged with its reason (`remote_reject`) and counted, never fatal.
use crate::core::attention::PaneView;
use crate::core::notify::{PaneFacts, PaneKey};
use crate::core::types::{AttentionKind, Millis, PaneId, Presence};
use crate::daemon::api::session_order;
use crate::sources::remote::{self, RemoteMsg, RemotePane};
use crate::supervisor::{ChildProc, Restart, RestartPolicy, Supervised};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;

/// First token of the remote streams: slot `i` uses `BASE + 2i` (stdout) and `+1` (stderr).
/// Below the API's tokens (1 << 24), far above the runtime's fixed ones.
pub(crate) const TOKEN_BASE: usize = 1 << 20;
/// Most hosts followed (more in the option are ignored, logged).
pub(crate) const MAX_HOSTS: usize = 64;
/// No line at all (the remote says `alive` every 5 s) for this long: the link is dead.
const SILENCE_MS: Millis = 30_000;
/// Most new attentions queued per host between two loop passes (the rest are logged only).
const MAX_NEWS: usize = 4096;
/// Bytes of a stream's stderr kept to explain a failure.
const ERR_KEEP: usize = 4096;
/// Pending stdout without a newline beyond this is cut (the parser refuses it anyway).
const MAX_PENDING: usize = remote::MAX_SNAPSHOT_LINE + 1;

/// Does this token belong to a remote stream?
pub(crate) fn owns(t: Token) -> bool {
    (TOKEN_BASE..TOKEN_BASE + 2 * MAX_HOSTS).contains(&t.0)
}

/// `@agtmux-remotes`, `@agtmux-ssh-command`, `@agtmux-remote-command`,
/// `@agtmux-remote-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteConfig {
    pub hosts: Vec<String>,
    pub ssh: Vec<String>,
    pub remote_cmd: Vec<String>,
    /// The status-line summary counts remote panes too (`all`, the default) or not (`local`).
    pub count_all: bool,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            hosts: Vec::new(),
            ssh: vec!["ssh".into()],
            remote_cmd: vec!["agtmux".into()],
            count_all: true,
        }
    }
}

impl RemoteConfig {
    /// The defaults, with `AGTMUX_SSH` (the ssh argv, e.g. `ssh -F /path/cfg`) and
    /// `AGTMUX_REMOTE_COMMAND` (the remote agtmux's argv) from the environment; the options
    /// `@agtmux-ssh-command` / `@agtmux-remote-command` win over them.
    pub(crate) fn from_env() -> RemoteConfig {
        let mut c = RemoteConfig::default();
        for (k, slot) in [
            ("AGTMUX_SSH", &mut c.ssh),
            ("AGTMUX_REMOTE_COMMAND", &mut c.remote_cmd),
        ] {
            if let Ok(v) = std::env::var(k) {
                match crate::core::notify::split_argv(&v) {
                    Ok(w) if !w.is_empty() => *slot = w,
                    _ => log::warn!("remote_env_refused name={k}"),
                }
            }
        }
        c
    }

    /// From the `@agtmux-*` options (name, value); bad values are logged and ignored.
    pub(crate) fn from_options(opts: &[(String, String)]) -> RemoteConfig {
        let mut c = RemoteConfig::from_env();
        for (name, value) in opts {
            match name.as_str() {
                "@agtmux-remotes" => {
                    for h in value.split(|ch: char| ch.is_whitespace() || ch == ',') {
                        if h.is_empty() || c.hosts.iter().any(|x| x == h) {
                            continue;
                        }
                        if !remote::host_ok(h) || c.hosts.len() >= MAX_HOSTS {
                            log::warn!(
                                "remote_host_refused host={h:?} reason=bad_destination_or_too_many"
                            );
                            continue;
                        }
                        c.hosts.push(h.to_string());
                    }
                }
                "@agtmux-ssh-command" | "@agtmux-remote-command" => {
                    match crate::core::notify::split_argv(value) {
                        Ok(w) if !w.is_empty() => {
                            if name == "@agtmux-ssh-command" {
                                c.ssh = w;
                            } else {
                                c.remote_cmd = w;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => log::warn!("remote_option_refused name={name} err={e:?}"),
                    }
                }
                "@agtmux-remote-status" => match value.as_str() {
                    "all" => c.count_all = true,
                    "local" => c.count_all = false,
                    v => log::warn!("remote_option_refused name={name} value={v:?}"),
                },
                _ => {}
            }
        }
        c
    }

    /// The words of `ssh … HOST <command line>` (argv, no local shell). The command goes to
    /// the remote login shell as one line, so each of its words is shell-quoted (a leading
    /// `~/` keeps its meaning). `tty`: `-t` (an interactive attach) instead of `-T`.
    pub(crate) fn ssh_argv(&self, host: &str, tty: bool, words: &[String]) -> Vec<String> {
        let mut v = self.ssh.clone();
        v.push(if tty { "-t" } else { "-T" }.into());
        for o in [
            "BatchMode=yes",
            "ConnectTimeout=10",
            "ServerAliveInterval=10",
            "ServerAliveCountMax=3",
        ] {
            v.push("-o".into());
            v.push(o.into());
        }
        v.push(host.into());
        let line: Vec<String> = words.iter().map(|w| quote_word(w)).collect();
        v.push(line.join(" "));
        v
    }

    /// The stream's argv: `ssh … HOST <remote agtmux> watch --json --all`.
    pub(crate) fn stream_argv(&self, host: &str) -> Vec<String> {
        let mut words = self.remote_cmd.clone();
        words.extend(["watch", "--json", "--all"].map(String::from));
        self.ssh_argv(host, false, &words)
    }
}

fn quote_word(w: &str) -> String {
    match w.strip_prefix("~/") {
        Some(rest) => format!("~/{}", remote::shell_quote(rest)),
        None => remote::shell_quote(w),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Live,
    Unreachable,
    Incompatible,
    HeldDown,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Live => "live",
            Phase::Unreachable => "unreachable",
            Phase::Incompatible => "incompatible",
            Phase::HeldDown => "held_down",
        }
    }
}

#[derive(Debug, Clone)]
struct ServerInfo {
    socket: String,
    /// Its snapshot came on the current connection: its panes are live.
    fresh: bool,
}

struct Stream {
    child: ChildProc,
    out: Vec<u8>,
    err: Vec<u8>,
    started: Millis,
    last_line: Millis,
    hello: bool,
    closed: bool,
}

pub(crate) struct Host {
    pub name: String,
    slot: usize,
    stream: Option<Stream>,
    sup: Supervised,
    next_attempt: Option<Millis>,
    pub phase: Phase,
    /// When the phase began (for `unreachable since …`: the first failure of a run).
    pub since: Millis,
    pub message: Option<String>,
    pub remote_version: Option<String>,
    servers: BTreeMap<String, ServerInfo>,
    panes: BTreeMap<(String, PaneId), RemotePane>,
    /// The resume cursor: per pane, the attention last announced.
    announced: HashMap<(String, PaneId), (AttentionKind, Millis, u64)>,
    /// Attention the cursor found new since the last [`Remotes::take_attention`]: (server,
    /// pane, kind), for the notifier.
    news: Vec<(String, PaneId, AttentionKind)>,
    /// Panes gone since the last [`Remotes::take_gone`] (server, pane): the notifier forgets
    /// them, so its memory follows the live remote panes.
    gone: Vec<(String, PaneId)>,
    pub counters: Counters,
    dirty: bool,
}

impl Host {
    /// A host not connected yet and with nothing known of it: no attempt planned, not dirty.
    fn new(name: &str, slot: usize, policy: RestartPolicy, now: Millis) -> Host {
        Host {
            name: name.to_string(),
            slot,
            stream: None,
            sup: Supervised::new("remote", policy),
            next_attempt: None,
            phase: Phase::Connecting,
            since: now,
            message: None,
            remote_version: None,
            servers: BTreeMap::new(),
            panes: BTreeMap::new(),
            announced: HashMap::new(),
            news: Vec::new(),
            gone: Vec::new(),
            counters: Counters::default(),
            dirty: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub connects: u64,
    pub lines: u64,
    pub bytes: u64,
    pub rejects: u64,
    pub attention: u64,
}

pub(crate) struct Remotes {
    pub config: RemoteConfig,
    pub hosts: Vec<Host>,
    policy: RestartPolicy,
    /// Something shown changed since the last [`Remotes::take_dirty`].
    dirty: bool,
    /// The panes of hosts stopped by a new configuration, for [`Remotes::take_gone`].
    dropped: Vec<PaneKey>,
}

impl Remotes {
    pub(crate) fn new(policy: RestartPolicy) -> Remotes {
        Remotes {
            config: RemoteConfig::default(),
            hosts: Vec::new(),
            policy,
            dirty: false,
            dropped: Vec::new(),
        }
    }

    /// Apply a (re-read) configuration: new hosts start, removed ones stop.
    pub(crate) fn configure(&mut self, c: RemoteConfig, reg: &mio::Registry, now: Millis) {
        if c == self.config {
            return;
        }
        let restart = c.ssh != self.config.ssh || c.remote_cmd != self.config.remote_cmd;
        let mut keep = Vec::new();
        for mut h in std::mem::take(&mut self.hosts) {
            if c.hosts.contains(&h.name) && !restart {
                keep.push(h);
            } else {
                log::info!("remote_stop host={} reason=config", h.name);
                close(&mut h, reg);
                let host = h.name.clone();
                let keys = (h.panes.keys().cloned()).chain(h.gone.drain(..));
                self.dropped
                    .extend(keys.map(|(server, pane)| PaneKey::Remote {
                        host: host.clone(),
                        server,
                        pane,
                    }));
            }
        }
        for name in &c.hosts {
            if keep.iter().any(|h| &h.name == name) {
                continue;
            }
            let slot = (0..MAX_HOSTS)
                .find(|s| !keep.iter().any(|h| h.slot == *s))
                .unwrap_or(0);
            let mut h = Host::new(name, slot, self.policy.clone(), now);
            h.next_attempt = Some(now);
            h.dirty = true;
            keep.push(h);
        }
        keep.sort_by_key(|h| c.hosts.iter().position(|x| x == &h.name));
        self.hosts = keep;
        self.config = c;
        self.dirty = true;
    }

    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        self.hosts
            .iter()
            .filter_map(|h| match &h.stream {
                Some(s) => Some(s.last_line + SILENCE_MS),
                None => h.next_attempt,
            })
            .min()
    }

    /// Start due streams, end silent ones.
    pub(crate) fn step(&mut self, reg: &mio::Registry, now: Millis) {
        for i in 0..self.hosts.len() {
            let silent = self.hosts[i]
                .stream
                .as_ref()
                .is_some_and(|s| now - s.last_line >= SILENCE_MS);
            if silent {
                let h = &mut self.hosts[i];
                close(h, reg);
                self.fail(i, now, format!("no data for {} s", SILENCE_MS / 1000));
                continue;
            }
            let h = &mut self.hosts[i];
            if h.stream.is_some() || h.next_attempt.is_none_or(|t| t > now) {
                continue;
            }
            if h.sup.held_down(now) {
                continue;
            }
            h.next_attempt = None;
            self.start(i, reg, now);
        }
    }

    fn start(&mut self, i: usize, reg: &mio::Registry, now: Millis) {
        let argv = self.config.stream_argv(&self.hosts[i].name);
        let h = &mut self.hosts[i];
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        // Its own process group: a signal for the daemon's terminal is not its.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match ChildProc::spawn("remote_ssh", &mut cmd) {
            Ok(child) => {
                let out_fd = child.stdout.as_raw_fd();
                let err_fd = child.stderr.as_raw_fd();
                let t = TOKEN_BASE + 2 * h.slot;
                let ok = reg
                    .register(&mut SourceFd(&out_fd), Token(t), Interest::READABLE)
                    .and_then(|_| {
                        reg.register(&mut SourceFd(&err_fd), Token(t + 1), Interest::READABLE)
                    });
                log::info!(
                    "remote_connect host={} pid={} argv={:?}",
                    h.name,
                    child.pid(),
                    argv
                );
                h.counters.connects += 1;
                h.stream = Some(Stream {
                    child,
                    out: Vec::new(),
                    err: Vec::new(),
                    started: now,
                    last_line: now,
                    hello: false,
                    closed: false,
                });
                if let Err(e) = ok {
                    close(h, reg);
                    self.fail(i, now, format!("register: {e}"));
                }
            }
            Err(e) => {
                let why = format!("cannot run {:?}: {e} (check @agtmux-ssh-command)", argv[0]);
                self.fail(i, now, why);
            }
        }
    }

    /// A failure of host `i`'s stream at `now`: its panes go stale, it is retried later.
    fn fail(&mut self, i: usize, now: Millis, why: String) {
        self.dirty = true;
        self.hosts[i].dirty = true;
        let h = &mut self.hosts[i];
        if h.phase != Phase::Unreachable && h.phase != Phase::HeldDown {
            h.since = now;
        }
        if h.phase != Phase::Incompatible {
            h.phase = Phase::Unreachable;
        }
        for s in h.servers.values_mut() {
            s.fresh = false;
        }
        log::warn!("remote_unreachable host={} reason={why:?}", h.name);
        h.message = Some(why.clone());
        match h.sup.on_failure(now, &why) {
            Restart::At(t) => h.next_attempt = Some(t),
            Restart::HoldDown { until } => {
                h.next_attempt = Some(until);
                if h.phase != Phase::Incompatible {
                    h.phase = Phase::HeldDown;
                }
            }
        }
    }

    /// Readable stdout/stderr of a stream.
    pub(crate) fn on_ready(&mut self, t: Token, reg: &mio::Registry, now: Millis) {
        let slot = (t.0 - TOKEN_BASE) / 2;
        let is_err = (t.0 - TOKEN_BASE) % 2 == 1;
        let Some(i) = self.hosts.iter().position(|h| h.slot == slot) else {
            return;
        };
        if is_err {
            if let Some(s) = self.hosts[i].stream.as_mut() {
                drain_err(s);
            }
            return;
        }
        self.read_out(i, reg, now);
    }

    fn read_out(&mut self, i: usize, reg: &mio::Registry, now: Millis) {
        let mut eof = false;
        let mut got = Vec::new();
        {
            let Some(s) = self.hosts[i].stream.as_mut() else {
                return;
            };
            let mut b = [0u8; 65536];
            loop {
                match s.child.stdout.read(&mut b) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&b[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        let h = &mut self.hosts[i];
        h.counters.bytes += got.len() as u64;
        if let Some(s) = h.stream.as_mut() {
            s.out.extend_from_slice(&got);
            if s.out.len() > MAX_PENDING && !s.out.contains(&b'\n') {
                let n = s.out.len();
                s.out.clear();
                h.counters.rejects += 1;
                log::warn!(
                    "remote_reject host={} reason=\"line_too_long ({n}+ bytes)\"",
                    h.name
                );
            }
        }
        loop {
            let line = {
                let Some(s) = self.hosts[i].stream.as_mut() else {
                    return;
                };
                let Some(pos) = s.out.iter().position(|c| *c == b'\n') else {
                    break;
                };
                s.last_line = now;
                let mut l: Vec<u8> = s.out.drain(..=pos).collect();
                l.pop();
                l
            };
            self.hosts[i].counters.lines += 1;
            if let Err(why) = self.apply_line(i, &line, reg, now) {
                self.hosts[i].counters.rejects += 1;
                log::warn!(
                    "remote_reject host={} reason={:?} bytes={}",
                    self.hosts[i].name,
                    why,
                    line.len()
                );
            }
            if self.hosts[i].stream.is_none() {
                return;
            }
        }
        if eof && let Some(s) = self.hosts[i].stream.as_mut() {
            s.closed = true;
            // The exit status explains it: wait for the reap.
            self.reap_one(i, reg, now);
        }
    }

    /// One stream line: `hello` first, then snapshots, pane changes and server ends; an
    /// error is the line's reject reason.
    fn apply_line(
        &mut self,
        i: usize,
        line: &[u8],
        reg: &mio::Registry,
        now: Millis,
    ) -> Result<(), String> {
        let msg = remote::parse_line(line).map_err(|e| e.0)?;
        let h = &mut self.hosts[i];
        let hello = h.stream.as_ref().is_some_and(|s| s.hello);
        if !hello && !matches!(msg, RemoteMsg::Hello { .. }) {
            return Err("before_hello".into());
        }
        match msg {
            RemoteMsg::Hello { agtmux, protocol } => {
                self.on_hello(i, agtmux, protocol, reg, now);
                return Ok(());
            }
            RemoteMsg::Alive => return Ok(()),
            RemoteMsg::Snapshot {
                server,
                socket,
                panes,
                rejected,
            } => on_snapshot(h, server, socket, panes, &rejected)?,
            RemoteMsg::Synced => on_synced(h),
            RemoteMsg::Pane { server, pane } => on_pane(h, &server, *pane)?,
            RemoteMsg::PaneRemoved { server, pane_id } => forget_pane(h, (server, pane_id)),
            RemoteMsg::ServerGone { server } => {
                log::info!("remote_server_gone host={} server={server}", h.name);
                drop_server(h, &server);
            }
        }
        h.dirty = true;
        self.dirty = true;
        Ok(())
    }

    /// The stream's `hello`: a protocol we do not speak ends the link with a fix (install
    /// the same agtmux there); another version only warns. Then the host is live.
    fn on_hello(
        &mut self,
        i: usize,
        agtmux: String,
        protocol: u64,
        reg: &mio::Registry,
        now: Millis,
    ) {
        let h = &mut self.hosts[i];
        if let Some(s) = h.stream.as_mut() {
            s.hello = true;
        }
        let local = super::handover::version();
        if protocol != remote::PROTOCOL {
            let why = format!(
                "agtmux {agtmux} on {} speaks remote stream protocol {protocol}, this agtmux ({local}) speaks {}: install agtmux {local} there",
                h.name,
                remote::PROTOCOL
            );
            h.phase = Phase::Incompatible;
            h.since = now;
            close(h, reg);
            self.fail(i, now, why);
            return;
        }
        h.message = (agtmux != local)
            .then(|| format!("agtmux {agtmux} there, {local} here: works, but update it to match"));
        if h.message.is_some() {
            log::warn!(
                "remote_version_differs host={} remote={agtmux} local={local}",
                h.name
            );
        }
        h.remote_version = Some(agtmux);
        h.phase = Phase::Live;
        h.since = now;
        h.sup.on_ready();
        log::info!("remote_live host={}", h.name);
        self.dirty = true;
        h.dirty = true;
    }

    /// SIGCHLD: reap ended streams and explain why they ended.
    pub(crate) fn reap(&mut self, reg: &mio::Registry, now: Millis) {
        for i in 0..self.hosts.len() {
            self.reap_one(i, reg, now);
        }
    }

    fn reap_one(&mut self, i: usize, reg: &mio::Registry, now: Millis) {
        let status = {
            let Some(s) = self.hosts[i].stream.as_mut() else {
                return;
            };
            match s.child.try_reap() {
                Some(st) => st,
                None => return,
            }
        };
        // What it printed last still counts.
        if let Some(s) = self.hosts[i].stream.as_mut() {
            drain_err(s);
        }
        if self.hosts[i].stream.as_ref().is_some_and(|s| !s.closed) {
            self.read_out(i, reg, now);
            if self.hosts[i].stream.is_none() {
                return;
            }
        }
        let h = &mut self.hosts[i];
        let (err, lived) = match h.stream.as_ref() {
            Some(s) => (
                String::from_utf8_lossy(&s.err).into_owned(),
                now - s.started,
            ),
            None => return,
        };
        close(h, reg);
        let why = explain_exit(&h.name, status.code(), &err);
        log::info!(
            "remote_stream_ended host={} status={status} lived_ms={lived}",
            h.name
        );
        self.fail(i, now, why);
    }

    /// Shown something new since the last call?
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Bring `out` (the `remotes` array of `list`) up to date, rebuilding only the hosts that
    /// changed, and return those hosts' new entries (pushed to API subscribers one by one).
    /// The cost grows with the hosts that changed, not with every remote pane.
    pub(crate) fn refresh_json(&mut self, out: &mut Value) -> Vec<Value> {
        let same_hosts = out.as_array().is_some_and(|a| {
            a.len() == self.hosts.len()
                && a.iter()
                    .zip(&self.hosts)
                    .all(|(v, h)| v["host"].as_str() == Some(&h.name))
        });
        if !same_hosts {
            *out = Value::Array(self.hosts.iter().map(host_json).collect());
            for h in &mut self.hosts {
                h.dirty = false;
            }
            return out.as_array().cloned().unwrap_or_default();
        }
        let mut changed = Vec::new();
        if let Some(a) = out.as_array_mut() {
            for (v, h) in a.iter_mut().zip(self.hosts.iter_mut()) {
                if std::mem::take(&mut h.dirty) {
                    *v = host_json(h);
                    changed.push(v.clone());
                }
            }
        }
        changed
    }

    /// Live remote panes for the status-line summary (none with `@agtmux-remote-status local`).
    pub(crate) fn views(&self) -> Vec<PaneView> {
        if !self.config.count_all {
            return Vec::new();
        }
        let mut v = Vec::new();
        for h in &self.hosts {
            for ((server, _), p) in &h.panes {
                if h.servers.get(server).is_some_and(|s| s.fresh) && p.presence == Presence::Managed
                {
                    v.push(PaneView {
                        managed: true,
                        activity: p.state,
                        attention: p.attention,
                        background: p.background,
                        until: p.until_ms,
                    });
                }
            }
        }
        v
    }

    /// New remote attention for the notifier, since the last call.
    pub(crate) fn take_attention(&mut self) -> Vec<(PaneKey, AttentionKind)> {
        let mut out = Vec::new();
        for h in &mut self.hosts {
            for (server, pane, kind) in h.news.drain(..) {
                let host = h.name.clone();
                out.push((PaneKey::Remote { host, server, pane }, kind));
            }
        }
        out
    }

    /// Remote panes gone since the last call (removed, absent from a snapshot, their server
    /// gone, or their host taken out of `@agtmux-remotes`), as notifier keys.
    pub(crate) fn take_gone(&mut self) -> Vec<PaneKey> {
        let mut out = std::mem::take(&mut self.dropped);
        for h in &mut self.hosts {
            for (server, pane) in h.gone.drain(..) {
                let host = h.name.clone();
                out.push(PaneKey::Remote { host, server, pane });
            }
        }
        out
    }

    /// A notifier key's host, server and pane, and its pane while it is live (a stale one
    /// has no attention to notify about).
    fn live_pane<'a>(&'a self, key: &'a PaneKey) -> Option<(&'a Host, &'a str, &'a RemotePane)> {
        let PaneKey::Remote { host, server, pane } = key else {
            return None;
        };
        let h = self.hosts.iter().find(|h| h.name == *host)?;
        if !h.servers.get(server).is_some_and(|s| s.fresh) {
            return None;
        }
        let p = h.panes.get(&(server.clone(), pane.clone()))?;
        Some((h, server, p))
    }

    /// What the notifier says of a remote pane now (None: gone or stale).
    pub(crate) fn notify_facts(&self, key: &PaneKey) -> Option<PaneFacts> {
        let (h, _, p) = self.live_pane(key)?;
        let managed = p.presence == Presence::Managed;
        Some(PaneFacts {
            attention: p.attention.filter(|_| managed),
            provider: p
                .provider
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            state: p.state.as_str().to_string(),
            title: p.title.clone(),
            location: format!(
                "{}:{}.{}",
                p.session_name,
                p.window_index.map(|i| i.to_string()).unwrap_or_default(),
                p.pane_index.map(|i| i.to_string()).unwrap_or_default()
            ),
            host: h.name.clone(),
            pane_id: Some(p.pane_id.clone()),
        })
    }

    /// `@agtmux_remote_target` of the go-there window that shows this remote pane's session.
    pub(crate) fn window_tag(&self, key: &PaneKey) -> Option<String> {
        let (h, server, p) = self.live_pane(key)?;
        Some(remote::window_tag(&h.name, server, &p.session_id))
    }

    /// Hosts whose panes are stale now (unreachable, held down, incompatible).
    pub(crate) fn unreachable(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| {
                matches!(
                    h.phase,
                    Phase::Unreachable | Phase::HeldDown | Phase::Incompatible
                )
            })
            .count()
    }

    /// `health.remotes`: per host the supervisor's view and the stream's counters.
    pub(crate) fn health_json(&self) -> Value {
        Value::Array(
            self.hosts
                .iter()
                .map(|h| {
                    json!({"host": h.name, "status": h.phase.as_str(), "since_ms": h.since,
                        "message": h.message, "supervisor": h.sup.json(),
                        "next_attempt_ms": h.next_attempt,
                        "connects": h.counters.connects, "lines": h.counters.lines,
                        "bytes": h.counters.bytes, "rejects": h.counters.rejects,
                        "attention_events": h.counters.attention})
                })
                .collect(),
        )
    }

    /// Stop every stream (shutdown).
    pub(crate) fn shutdown(&mut self, reg: &mio::Registry) {
        for h in &mut self.hosts {
            close(h, reg);
        }
    }
}

/// `agtmux ls --remote HOST`: run the stream once, until its first full snapshot (or
/// `timeout`), and return the host's `list` section (status `live`, or `unreachable` with what
/// to fix).
pub(crate) fn ask_once(c: &RemoteConfig, host: &str, timeout: std::time::Duration) -> Value {
    let now = crate::sys::clock::now_ms();
    let mut h = Host::new(host, 0, RestartPolicy::default(), now);
    let unreachable = |h: &mut Host, why: String| {
        h.phase = Phase::Unreachable;
        h.message = Some(why);
        host_json(h)
    };
    if !remote::host_ok(host) {
        return unreachable(
            &mut h,
            format!("not an SSH destination agtmux accepts: {host:?}"),
        );
    }
    let argv = c.stream_argv(host);
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(ch) => ch,
        Err(e) => return unreachable(&mut h, format!("cannot run {:?}: {e}", argv[0])),
    };
    let readers = read_streams(&mut child);
    let deadline = std::time::Instant::now() + timeout;
    let done = read_until_synced(&mut h, host, &readers.lines, deadline);
    let _ = child.kill();
    let status = child.wait().ok();
    let _ = readers.out.join();
    let err = readers.err.join().unwrap_or_default();
    if h.phase == Phase::Incompatible {
        return host_json(&h);
    }
    if done {
        h.phase = Phase::Live;
        return host_json(&h);
    }
    let why = if std::time::Instant::now() >= deadline {
        format!("no full snapshot within {} s", timeout.as_secs())
    } else {
        explain_exit(
            host,
            status.and_then(|s| s.code()),
            &String::from_utf8_lossy(&err),
        )
    };
    unreachable(&mut h, why)
}

/// A one-shot stream's output, each read by a thread of its own (so a timeout holds however
/// the remote behaves).
struct Readers {
    /// Stdout, line by line.
    lines: std::sync::mpsc::Receiver<Vec<u8>>,
    out: std::thread::JoinHandle<()>,
    /// Stderr, whole, once the stream ends.
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn read_streams(child: &mut std::process::Child) -> Readers {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let out = child.stdout.take();
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let Some(out) = out else { return };
        let mut r = std::io::BufReader::new(out);
        let mut line = Vec::new();
        while std::io::BufRead::read_until(&mut r, b'\n', &mut line).is_ok_and(|n| n > 0) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut e) = err {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    Readers {
        lines: rx,
        out: reader,
        err: err_reader,
    }
}

/// Read the stream into `h` until its `synced` (true), a protocol it does not speak (the
/// host is then incompatible), its end or the deadline.
fn read_until_synced(
    h: &mut Host,
    host: &str,
    rx: &std::sync::mpsc::Receiver<Vec<u8>>,
    deadline: std::time::Instant,
) -> bool {
    let mut done = false;
    let mut hello = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok(mut line) = rx.recv_timeout(left) else {
            break;
        };
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match remote::parse_line(&line) {
            Ok(RemoteMsg::Hello { agtmux, protocol }) => {
                hello = true;
                if protocol != remote::PROTOCOL {
                    h.phase = Phase::Incompatible;
                    h.message = Some(format!(
                        "agtmux {agtmux} on {host} speaks remote stream protocol {protocol}, this one {}: install agtmux {} there",
                        remote::PROTOCOL,
                        super::handover::version()
                    ));
                    break;
                }
                h.remote_version = Some(agtmux);
            }
            Ok(RemoteMsg::Snapshot {
                server,
                socket,
                panes,
                ..
            }) if hello => {
                h.servers.insert(
                    server.clone(),
                    ServerInfo {
                        socket,
                        fresh: true,
                    },
                );
                for p in panes {
                    upsert(h, &server, p, true);
                }
            }
            Ok(RemoteMsg::Synced) if hello => {
                done = true;
                break;
            }
            Ok(_) => {}
            Err(e) => log::warn!("remote_reject host={host} reason={:?}", e.0),
        }
    }
    done
}

/// A server's full snapshot: its panes replace what was known of it (panes it no longer
/// lists are gone). Its first snapshot is announced, not notified.
fn on_snapshot(
    h: &mut Host,
    server: String,
    socket: String,
    panes: Vec<RemotePane>,
    rejected: &[String],
) -> Result<(), String> {
    for r in rejected {
        h.counters.rejects += 1;
        log::warn!("remote_reject host={} server={server} reason={r:?}", h.name);
    }
    if !h.servers.contains_key(&server) && h.servers.len() >= 64 {
        return Err("too_many_servers".into());
    }
    // A server's first snapshot is first sight: what it shows is announced, not
    // notified (as local panes at daemon start). After a reconnect the server is
    // still known, so the cursor alone decides.
    let quiet = !h.servers.contains_key(&server);
    h.servers.insert(
        server.clone(),
        ServerInfo {
            socket,
            fresh: true,
        },
    );
    let ids: std::collections::BTreeSet<&PaneId> = panes.iter().map(|p| &p.pane_id).collect();
    let gone: Vec<(String, PaneId)> = h
        .panes
        .keys()
        .filter(|(s, p)| s == &server && !ids.contains(p))
        .cloned()
        .collect();
    for k in gone {
        log::info!(
            "remote_pane_gone host={} server={} pane={}",
            h.name,
            k.0,
            k.1
        );
        forget_pane(h, k);
    }
    for p in panes {
        upsert(h, &server, p, quiet);
    }
    Ok(())
}

/// `synced` after a resume: servers the remote no longer sent a snapshot for are gone.
fn on_synced(h: &mut Host) {
    let absent: Vec<String> = (h.servers.iter())
        .filter(|(_, s)| !s.fresh)
        .map(|(k, _)| k.clone())
        .collect();
    for k in absent {
        log::info!(
            "remote_server_gone host={} server={k} reason=absent_after_resume",
            h.name
        );
        drop_server(h, &k);
    }
}

/// One pane changed, of a server whose snapshot came (bounded per server).
fn on_pane(h: &mut Host, server: &str, pane: RemotePane) -> Result<(), String> {
    if !h.servers.get(server).is_some_and(|s| s.fresh) {
        return Err("pane_of_unknown_server".into());
    }
    let n = h.panes.keys().filter(|(s, _)| s == server).count();
    let known = h
        .panes
        .contains_key(&(server.to_string(), pane.pane_id.clone()));
    if !known && n >= remote::MAX_PANES_PER_SERVER {
        return Err("too_many_panes".into());
    }
    upsert(h, server, pane, false);
    Ok(())
}

/// Keep a pane's latest state; an attention the resume cursor has not seen is counted,
/// logged (`remote_attention`) and, unless `quiet` (first sight), queued for the notifier.
fn upsert(h: &mut Host, server: &str, p: RemotePane, quiet: bool) {
    let k = (server.to_string(), p.pane_id.clone());
    match p.attention {
        Some(kind) if p.presence == Presence::Managed => {
            let cur = (kind, p.since_ms, p.generation);
            if h.announced.get(&k) != Some(&cur) {
                h.announced.insert(k.clone(), cur);
                h.counters.attention += 1;
                log::info!(
                    "remote_attention host={} server={server} pane={} kind={} since_ms={} first_sight={quiet}",
                    h.name,
                    p.pane_id,
                    kind.as_str(),
                    p.since_ms
                );
                if !quiet && h.news.len() < MAX_NEWS {
                    h.news.push((server.to_string(), p.pane_id.clone(), kind));
                }
            }
        }
        _ => {
            h.announced.remove(&k);
        }
    }
    h.panes.insert(k, p);
}

fn drop_server(h: &mut Host, server: &str) {
    h.servers.remove(server);
    let gone: Vec<(String, PaneId)> = (h.panes.keys())
        .filter(|(s, _)| s == server)
        .cloned()
        .collect();
    for k in gone {
        forget_pane(h, k);
    }
}

/// A pane the remote no longer has: dropped, and queued for the notifier to forget.
fn forget_pane(h: &mut Host, k: (String, PaneId)) {
    h.panes.remove(&k);
    h.announced.remove(&k);
    if h.gone.len() < MAX_NEWS {
        h.gone.push(k);
    }
}

fn drain_err(s: &mut Stream) {
    let mut b = [0u8; 4096];
    loop {
        match s.child.stderr.read(&mut b) {
            Ok(0) => break,
            Ok(n) => {
                s.err.extend_from_slice(&b[..n]);
                if s.err.len() > ERR_KEEP {
                    let cut = s.err.len() - ERR_KEEP;
                    s.err.drain(..cut);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

fn close(h: &mut Host, reg: &mio::Registry) {
    if let Some(mut s) = h.stream.take() {
        let _ = reg.deregister(&mut SourceFd(&s.child.stdout.as_raw_fd()));
        let _ = reg.deregister(&mut SourceFd(&s.child.stderr.as_raw_fd()));
        s.child.terminate();
    }
}

/// What to fix, from ssh's exit status and the last thing it (or the remote) said.
pub(crate) fn explain_exit(host: &str, code: Option<i32>, stderr: &str) -> String {
    let last = stderr
        .lines()
        .map(|l| remote::clean_text(l.trim(), 200))
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    let has = |s: &str| stderr.contains(s);
    if has("Permission denied") || has("Too many authentication failures") {
        return format!(
            "ssh {host}: authentication failed ({last}); no prompt is possible (BatchMode): load a key into ssh-agent or set IdentityFile in ~/.ssh/config, so that `ssh {host} true` works without a password"
        );
    }
    if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return format!(
            "ssh {host}: host key unknown or changed: run `ssh {host}` once in a terminal to check and accept it"
        );
    }
    if has("Could not resolve hostname") {
        return format!("ssh {host}: {last}: check the name or its Host entry in ~/.ssh/config");
    }
    if has("unexpected argument '--all'") || has("unexpected argument '--json'") {
        return format!(
            "the agtmux on {host} is too old for remote watching (no `watch --json --all`): install agtmux {} there",
            super::handover::version()
        );
    }
    if code == Some(127) || has("command not found") || (code == Some(126)) {
        return format!(
            "agtmux not found on {host} ({last}): install it there, or set @agtmux-remote-command to its path"
        );
    }
    match code {
        Some(255) if last.is_empty() => format!("ssh {host}: connection failed"),
        Some(255) => format!("ssh {host}: {last}"),
        Some(c) if last.is_empty() => format!("remote stream ended (exit {c})"),
        Some(c) => format!("remote stream ended (exit {c}): {last}"),
        None => "remote stream killed by a signal".to_string(),
    }
}

fn pane_json(host: &str, server: &str, stale: bool, p: &RemotePane) -> Value {
    json!({
        "pane_id": p.pane_id, "generation": p.generation,
        "session_id": p.session_id, "session_name": p.session_name,
        "window_id": p.window_id, "window_index": p.window_index, "window_name": p.window_name,
        "pane_index": p.pane_index, "presence": p.presence.as_str(),
        "provider": p.provider.map(|x| x.as_str()), "evidence": p.evidence,
        "state": p.state.as_str(), "attention": if stale { None } else { p.attention.map(|a| a.as_str()) },
        "icon": if stale { "?".to_string() } else { p.icon.clone() },
        "title": p.title, "since_ms": p.since_ms, "version": p.version, "command": p.command,
        "focused": false, "host": host, "server": server, "stale": stale,
        "until_ms": p.until_ms, "background": p.background, "detail": p.detail,
    })
}

/// window (index, id) → its panes.
type Windows<'a> = BTreeMap<(u64, String), Vec<&'a RemotePane>>;

/// One host's entry of `list.remotes` (docs/api.md): its status and its servers' panes in the
/// `list` shape, each pane tagged with host, server and `stale`.
fn host_json(h: &Host) -> Value {
    let mut servers = Vec::new();
    for (key, info) in &h.servers {
        let stale = !info.fresh;
        // session → window → panes, in tmux's order.
        let mut tree: BTreeMap<(u64, String), Windows> = BTreeMap::new();
        for ((s, _), p) in &h.panes {
            if s != key {
                continue;
            }
            let sk = (session_order(&p.session_id), p.session_id.clone());
            let wk = (p.window_index.unwrap_or(u64::MAX), p.window_id.clone());
            tree.entry(sk).or_default().entry(wk).or_default().push(p);
        }
        let sessions: Vec<Value> = tree
            .into_iter()
            .map(|((_, sid), windows)| {
                let mut sname = String::new();
                let windows: Vec<Value> = windows
                    .into_iter()
                    .map(|((_, wid), mut panes)| {
                        panes.sort_by_key(|p| p.pane_index.unwrap_or(0));
                        // Every entry was made by a push, so `first` is there.
                        let (index, name) = match panes.first() {
                            Some(f) => {
                                sname = f.session_name.clone();
                                (f.window_index, f.window_name.clone())
                            }
                            None => (None, String::new()),
                        };
                        json!({"window_id": wid, "window_index": index,
                            "window_name": name,
                            "panes": panes.iter().map(|p| pane_json(&h.name, key, stale, p)).collect::<Vec<_>>()})
                    })
                    .collect();
                json!({"session_id": sid, "session_name": sname, "windows": windows})
            })
            .collect();
        servers.push(json!({"server": key, "socket": info.socket, "stale": stale,
            "sessions": sessions}));
    }
    // A host held down after repeated failures is still just unreachable to the user (a
    // sleeping laptop's dev box): `held_down` and `next_attempt_ms` say when it is tried again.
    let status = match h.phase {
        Phase::HeldDown => "unreachable",
        p => p.as_str(),
    };
    json!({"host": h.name, "status": status, "since_ms": h.since,
        "held_down": h.phase == Phase::HeldDown, "next_attempt_ms": h.next_attempt,
        "message": h.message, "agtmux": h.remote_version, "servers": servers})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_make_a_config_and_refuse_option_injection() {
        let c = RemoteConfig::from_options(&[
            (
                "@agtmux-remotes".into(),
                "devbox, user@gpu-box -oProxyCommand=x devbox".into(),
            ),
            (
                "@agtmux-ssh-command".into(),
                "ssh -F '/tmp/my dir/cfg'".into(),
            ),
            ("@agtmux-remote-command".into(), "~/bin/agtmux".into()),
            ("@agtmux-remote-status".into(), "local".into()),
        ]);
        assert_eq!(c.hosts, vec!["devbox", "user@gpu-box"]);
        assert!(!c.count_all);
        let argv = c.stream_argv("devbox");
        assert_eq!(&argv[..3], &["ssh", "-F", "/tmp/my dir/cfg"]);
        assert!(argv.contains(&"BatchMode=yes".to_string()));
        assert_eq!(argv.last().unwrap(), "~/bin/agtmux watch --json --all");
    }

    #[test]
    fn stale_panes_never_count_and_remote_status_local_counts_none() {
        let poll = mio::Poll::new().unwrap();
        let mut r = Remotes::new(RestartPolicy::default());
        let mut c = RemoteConfig {
            hosts: vec!["h".into()],
            ..RemoteConfig::default()
        };
        r.configure(c.clone(), poll.registry(), 0);
        let p = remote::parse_pane(&json!({"pane_id": "%3", "session_id": "$0",
            "window_id": "@1", "presence": "managed", "state": "waiting_approval",
            "attention": "approval", "since_ms": 5}))
        .unwrap();
        let h = &mut r.hosts[0];
        h.servers.insert(
            "s".into(),
            ServerInfo {
                socket: "/tmp/s".into(),
                fresh: true,
            },
        );
        upsert(h, "s", p.clone(), false);
        assert_eq!(h.counters.attention, 1);
        assert_eq!(
            r.take_attention(),
            vec![("h/s/%3".into(), AttentionKind::Approval)]
        );
        let f = r.notify_facts(&"h/s/%3".into()).unwrap();
        assert_eq!((f.host.as_str(), f.pane_id.as_deref()), ("h", Some("%3")));
        assert_eq!(f.attention, Some(AttentionKind::Approval));
        assert_eq!(r.window_tag(&"h/s/%3".into()).as_deref(), Some("h/s/$0"));
        assert_eq!(r.views().len(), 1);
        // Unreachable: listed, stale, no attention, not counted; `✗1`.
        r.fail(0, 10, "ssh h: Connection refused".into());
        assert_eq!(
            r.notify_facts(&"h/s/%3".into()),
            None,
            "a stale pane notifies nothing"
        );
        assert!(r.views().is_empty());
        assert_eq!(r.unreachable(), 1);
        let mut out = Value::Null;
        r.refresh_json(&mut out);
        let pane = &out[0]["servers"][0]["sessions"][0]["windows"][0]["panes"][0];
        assert_eq!(pane["stale"], true, "{out}");
        assert_eq!(pane["attention"], Value::Null);
        assert_eq!(out[0]["status"], "unreachable");
        // The same attention again after a resume is not announced twice.
        r.hosts[0].servers.get_mut("s").unwrap().fresh = true;
        upsert(&mut r.hosts[0], "s", p, false);
        assert_eq!(r.hosts[0].counters.attention, 1);
        assert!(
            r.take_attention().is_empty(),
            "a resume notifies nothing again"
        );
        assert_eq!(r.views().len(), 1);
        // `@agtmux-remote-status local`: the summary counts no remote pane.
        c.count_all = false;
        r.configure(c, poll.registry(), 20);
        assert_eq!(r.hosts.len(), 1, "the host is kept");
        assert!(r.views().is_empty());
    }

    #[test]
    fn gone_remote_panes_are_handed_to_the_notifier_to_forget() {
        let poll = mio::Poll::new().unwrap();
        let mut r = Remotes::new(RestartPolicy::default());
        let c = RemoteConfig {
            hosts: vec!["h".into()],
            ..RemoteConfig::default()
        };
        r.configure(c.clone(), poll.registry(), 0);
        let pane = |id: &str| {
            remote::parse_pane(
                &json!({"pane_id": id, "session_id": "$0", "window_id": "@1",
                "presence": "managed", "state": "waiting_approval", "attention": "approval",
                "since_ms": 5}),
            )
            .unwrap()
        };
        let h = &mut r.hosts[0];
        on_snapshot(
            h,
            "s".into(),
            "/tmp/s".into(),
            vec![pane("%1"), pane("%2")],
            &[],
        )
        .unwrap();
        on_snapshot(h, "t".into(), "/tmp/t".into(), vec![pane("%7")], &[]).unwrap();
        assert!(r.take_gone().is_empty(), "nothing is gone yet");
        // Absent from the server's next snapshot.
        let h = &mut r.hosts[0];
        on_snapshot(h, "s".into(), "/tmp/s".into(), vec![pane("%2")], &[]).unwrap();
        assert_eq!(r.take_gone(), vec![PaneKey::from("h/s/%1")]);
        // Removed on the stream, then its whole server gone.
        let h = &mut r.hosts[0];
        forget_pane(h, ("s".into(), PaneId::parse("%2").unwrap()));
        drop_server(h, "t");
        assert_eq!(
            r.take_gone(),
            vec![PaneKey::from("h/s/%2"), PaneKey::from("h/t/%7")]
        );
        assert!(r.take_gone().is_empty(), "each is handed over once");
        // The host taken out of @agtmux-remotes: its panes go too.
        let h = &mut r.hosts[0];
        on_snapshot(h, "s".into(), "/tmp/s".into(), vec![pane("%3")], &[]).unwrap();
        r.configure(RemoteConfig::default(), poll.registry(), 10);
        assert_eq!(r.take_gone(), vec![PaneKey::from("h/s/%3")]);
    }

    #[test]
    fn exits_say_what_to_fix() {
        let e = explain_exit("h", Some(255), "root@h: Permission denied (publickey).\n");
        assert!(e.contains("BatchMode") && e.contains("IdentityFile"), "{e}");
        let e = explain_exit("h", Some(127), "bash: line 1: agtmux: command not found\n");
        assert!(e.contains("@agtmux-remote-command"), "{e}");
        let e = explain_exit("h", Some(2), "error: unexpected argument '--all' found\n");
        assert!(e.contains("too old"), "{e}");
        let e = explain_exit(
            "h",
            Some(255),
            "ssh: connect to host h port 22: Connection refused\n",
        );
        assert!(e.contains("Connection refused"), "{e}");
    }
}
