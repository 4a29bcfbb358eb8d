//! The hook spool as a source (C-005, and the hook half of C-004): reads envelope lines after
//! the committed cursor, validates them, and hands normalized events or rejects to the gateway.
//!
//! Validation (seed "Input validation"): envelope schema and version, pane id format,
//! source/provider consistency (the payload must look like its claimed agent's), and that the
//! event belongs to this daemon's tmux server. Every reject keeps its raw line and a reason.
//!
//! Codex hooks (`codex`, `codex-notify`) run inside Codex's shared app-server daemon, so their
//! `$TMUX_PANE` is the pane of whichever TUI started that daemon, not the thread's pane
//! (as observed). The pane is kept only when the hook's parent process (envelope `ppid`)
//! lives in that pane's process tree and no process between them is an app-server daemon;
//! otherwise the event carries no pane and the daemon binds its thread by correlation
//! (`daemon::codex`).
//!
//! Server instance and pane process (issue 16): a hook records the tmux server pid from
//! `$TMUX` and its own process ancestry up to the pane's process. A hook from another server
//! instance on the same socket (`stale_server`) or from a process that is no longer the pane's
//! (`pane_process_mismatch`, after a registry refresh in case the pane was just respawned), or
//! whose agent process has exited (`agent_gone`), is rejected.
//! An accepted hook names the agent process it came from ([`ProcOrigin::Anchored`]): the
//! deterministic state lives only as long as that process (`Projection::anchor_gone`).
use super::hook_map::Call;
use super::spool::{Envelope, MAX_DEPTH, SpoolCursor, SpoolReader};
use super::{Batch, Pulled, Source};
use crate::core::event::NormalizedEvent;
use crate::core::hash::fnv1a64;
use crate::core::text::first_chars;
use crate::core::types::{PaneId, SourceKind};
use crate::paths::server_key;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) struct HookSpoolSource {
    path: PathBuf,
    server_key: String,
    reader: SpoolReader,
    /// `pane_id → pane_pid` of the current registry, to check a Codex hook's parent process.
    pane_pids: HashMap<PaneId, i32>,
    /// Set when the spool could not be read; the daemon shows it as source health.
    pub(crate) last_error: Option<String>,
    /// The pid of the tmux server this daemon serves (from its identity).
    server_pid: Option<i32>,
    /// Where each event of the last pull ran (by event id), for the gateway.
    origins: HashMap<String, ProcOrigin>,
}

/// Where a hook ran, as far as the daemon can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcOrigin {
    /// No process facts: an older hook, or a platform where the hook cannot read them.
    Unknown,
    /// Not inside any pane of this server (a hook run by hand or by a harness, an orphaned
    /// hook whose agent died): it may describe a pane that holds an agent process, never make
    /// a pane an agent, and never speak for a pane anchored to its agent (whose own hooks run
    /// inside it).
    Outside,
    /// Inside the pane's current process tree; the agent is this process (pid, start ticks).
    Anchored { pid: i32, start: u64 },
    /// Under another pane process (`hook`) than the registry's (`pane`): an earlier process
    /// of the pane, another pane, or a respawn the registry has not seen yet.
    Mismatch { hook: i32, pane: i32 },
}

impl ProcOrigin {
    /// The reject reason for a hook that ran under another process than the pane's.
    pub(crate) fn mismatch_reason(&self, pane_id: &PaneId) -> Option<String> {
        match self {
            ProcOrigin::Mismatch { hook, pane } => Some(format!(
                "pane_process_mismatch: the hook ran under process {hook}, pane {pane_id} is process {pane} (a hook from an earlier process of the pane, or another pane)"
            )),
            _ => None,
        }
    }
}

/// Shells: never the agent a hook speaks for (a hook typed at a prompt, `… &`).
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "fish", "dash", "ksh", "mksh", "tcsh", "csh", "nu", "elvish", "xonsh",
];

fn is_shell(pid: i32) -> bool {
    let argv = crate::sys::procs::cmdline(pid);
    let a0 = argv.first().map(String::as_str).unwrap_or("");
    let base = a0.rsplit('/').next().unwrap_or(a0).trim_start_matches('-');
    SHELLS.contains(&base)
}

/// The agent process of an anchored hook: the terminal's foreground group leader when it is
/// on the hook's chain (the agent the user started; the pane's own process when the pane runs
/// a script without job control), else the pane's process, else (a shell there) the pane's
/// child on the chain. Never an interactive shell, unless nothing else is on the chain.
fn anchor_of(env: &Envelope) -> Option<(i32, u64)> {
    let pane = *env.anc.last()?;
    if let Some(t) = env.tpgid
        && let Some(a) = env.anc.iter().find(|(p, _)| *p == t)
    {
        // No job control (the pane runs `sh -c …`): the pane's own program ran the hook, and
        // it lives as long as that program. Its subshells come and go (a pipeline's side
        // exits at once) and are never the agent.
        if *a == pane {
            return Some(pane);
        }
        if !is_shell(a.0) {
            return Some(*a);
        }
    }
    if !is_shell(pane.0) {
        return Some(pane);
    }
    match env.anc.len() {
        n if n >= 2 => Some(env.anc[n - 2]),
        _ => env.anc.first().copied(),
    }
}

impl HookSpoolSource {
    pub fn new(path: &Path, server_key: &str, committed: Option<&str>) -> Self {
        let cur = committed.and_then(SpoolCursor::parse);
        HookSpoolSource {
            path: path.to_path_buf(),
            server_key: server_key.to_string(),
            reader: SpoolReader::new(path, cur),
            pane_pids: HashMap::new(),
            last_error: None,
            server_pid: None,
            origins: HashMap::new(),
        }
    }

    /// The tmux server this daemon serves (`pid:start_time` identity): hooks from another
    /// server instance are rejected.
    pub(crate) fn set_server_id(&mut self, id: &str) {
        self.server_pid = id.split(':').next().and_then(|p| p.parse().ok());
    }

    /// Where the events of the last pull ran, by event id.
    pub(crate) fn take_origins(&mut self) -> HashMap<String, ProcOrigin> {
        std::mem::take(&mut self.origins)
    }

    /// The panes' process ids (from the registry) used to trust a Codex hook's `$TMUX_PANE`.
    pub(crate) fn set_pane_pids(&mut self, pids: HashMap<PaneId, i32>) {
        self.pane_pids = pids;
    }

    /// Rotate the spool once everything is consumed; call after committing the cursor.
    pub(crate) fn maybe_rotate(&mut self, threshold: u64) -> bool {
        self.reader.maybe_rotate(threshold).unwrap_or(false)
    }

    /// Rotated spool files wait for [`HookSpoolSource::release_rotated`].
    pub fn has_rotated(&self) -> bool {
        self.reader.has_rotated()
    }

    /// Everything pulled so far is stored, and `stored` is the committed cursor in the store:
    /// rotated files read to their end and not named by it can go.
    pub fn release_rotated(&mut self, stored: &str) -> usize {
        self.reader.release_rotated(SpoolCursor::parse(stored))
    }

    pub fn position(&self) -> String {
        self.reader.position().encode()
    }
}

/// Stable event id of a spool line: the same line replayed gives the same id.
pub fn line_event_id(bytes: &[u8]) -> String {
    format!("h{:016x}{:06x}", fnv1a64(bytes), bytes.len() & 0xff_ffff)
}

impl Source for HookSpoolSource {
    fn kind(&self) -> SourceKind {
        SourceKind::ClaudeHooks
    }

    fn pull(&mut self, after: &str, max: usize) -> Batch {
        if after != self.reader.position().encode() {
            // The gateway rewound (a failed commit): re-read from its committed cursor.
            self.reader = SpoolReader::new(&self.path, SpoolCursor::parse(after));
        }
        let lines = match self.reader.read(max) {
            Ok(l) => {
                self.last_error = None;
                l
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                log::warn!("spool_read_failed path={} err={}", self.path.display(), e);
                Vec::new()
            }
        };
        let pids = &self.pane_pids;
        // A pane the registry does not know yet keeps its id for now: the gateway then
        // refreshes the registry and re-reads the line, which is checked against the new pane.
        let trust = |pane: &PaneId, ppid: i32| match pids.get(pane) {
            Some(pp) => hook_parent_in_pane(ppid, *pp),
            None => !pids.is_empty(),
        };
        let checks = Checks {
            our_key: &self.server_key,
            server_pid: self.server_pid,
            pane_pids: pids,
        };
        let mut origins = HashMap::new();
        let items = lines
            .into_iter()
            .map(|l| {
                let (p, o) = decode_checked(&l.bytes, l.truncated, &checks, &trust);
                if let (Pulled::Event { event, .. }, Some(o)) = (&p, o) {
                    origins.insert(event.event_id.clone(), o);
                }
                p
            })
            .collect();
        self.origins = origins;
        Batch {
            items,
            next_cursor: self.reader.position().encode(),
        }
    }
}

/// Does a hook whose parent is `ppid` really run for the pane whose first process is
/// `pane_pid`? True when `ppid` descends from `pane_pid` and no process on the way is a Codex
/// app-server daemon (a daemon started from a pane's TUI serves every thread, not that pane's).
pub(crate) fn hook_parent_in_pane(ppid: i32, pane_pid: i32) -> bool {
    use crate::sys::procs;
    if !procs::descends_from(ppid, pane_pid) {
        return false;
    }
    let mut cur = ppid;
    for _ in 0..32 {
        if procs::cmdline(cur).iter().any(|a| a.contains("app-server")) {
            return false;
        }
        if cur == pane_pid {
            return true;
        }
        match procs::parent(cur) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

/// Decode and validate one spool line, trusting no Codex hook pane.
pub fn decode_line(bytes: &[u8], truncated: bool, our_key: &str) -> Pulled {
    decode_line_with(bytes, truncated, our_key, &|_, _| false)
}

/// Decode and validate one spool line. `trust(pane, ppid)` says whether a Codex hook's
/// `$TMUX_PANE` may be kept (see the module doc); Claude hooks run in their pane and keep it.
pub fn decode_line_with(
    bytes: &[u8],
    truncated: bool,
    our_key: &str,
    trust: &dyn Fn(&PaneId, i32) -> bool,
) -> Pulled {
    let checks = Checks {
        our_key,
        server_pid: None,
        pane_pids: &HashMap::new(),
    };
    decode_checked(bytes, truncated, &checks, trust).0
}

/// What a line is checked against besides its own content.
pub(crate) struct Checks<'a> {
    pub(crate) our_key: &'a str,
    /// This daemon's tmux server pid, once known.
    pub server_pid: Option<i32>,
    /// `pane_id → pane_pid` of the live registry.
    pub(crate) pane_pids: &'a HashMap<PaneId, i32>,
}

/// [`decode_line_with`] plus the server-instance and pane-process checks; an accepted event
/// comes with where it ran (`None` when it carries no pane of its own).
pub(crate) fn decode_checked(
    bytes: &[u8],
    truncated: bool,
    checks: &Checks,
    trust: &dyn Fn(&PaneId, i32) -> bool,
) -> (Pulled, Option<ProcOrigin>) {
    let event_id = line_event_id(bytes);
    let raw = String::from_utf8_lossy(bytes).into_owned();
    let reject = |reason: String, ts: i64| {
        let r = Pulled::Rejected {
            event_id: event_id.clone(),
            reason,
            raw: raw.clone(),
            ts,
        };
        (r, None)
    };
    let checked = match check_envelope(bytes, truncated, checks) {
        Ok(checked) => checked,
        Err((reason, ts)) => return reject(reason, ts),
    };
    let ts = checked.ts;
    let event = match map_payload(&checked, &event_id, trust) {
        Ok(event) => event,
        Err(reason) => return reject(reason, ts),
    };
    let Some(pane) = event.pane_id.as_ref() else {
        return (Pulled::Event { event, raw }, None);
    };
    match origin_of(&checked.env, pane, checks) {
        Ok(origin) => (Pulled::Event { event, raw }, Some(origin)),
        Err(reason) => reject(reason, ts),
    }
}

/// A spool line whose envelope passed [`check_envelope`].
struct Checked {
    env: Envelope,
    payload: serde_json::Value,
    /// `$TMUX_PANE`, parsed once; from here on the pane is a checked `PaneId`.
    pane: Option<PaneId>,
    /// When the hook ran (ms).
    ts: i64,
}

/// The envelope's own checks, in order: size, depth, JSON, version, the hook's refusal, a
/// payload, the pane id, this server, this server instance. Gives the checked line, or why
/// it is rejected (with its time once known).
fn check_envelope(
    bytes: &[u8],
    truncated: bool,
    checks: &Checks,
) -> Result<Checked, (String, i64)> {
    if truncated {
        return Err(("line_too_long".into(), 0));
    }
    // The hook's limit, plus the envelope's own level: decided here, not by serde's limit.
    if super::spool::json_depth(bytes, MAX_DEPTH + 1) > MAX_DEPTH + 1 {
        let why = format!("too_deep: payload nested deeper than {MAX_DEPTH}");
        return Err((why, 0));
    }
    let mut env: Envelope = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => return Err((format!("malformed_envelope: {e}"), 0)),
    };
    let ts = env.recv_ns / 1_000_000;
    if env.v != super::spool::ENVELOPE_VERSION {
        return Err((format!("unsupported_envelope_version: {}", env.v), ts));
    }
    if let Some(r) = &env.reject {
        return Err((format!("rejected_by_hook: {r} ({} bytes)", env.size), ts));
    }
    let Some(payload) = env.payload.take() else {
        return Err(("malformed_json: payload did not parse".into(), ts));
    };
    let pane = match env.pane.as_deref().map(|p| (p, PaneId::parse(p))) {
        None => None,
        Some((_, Some(id))) => Some(id),
        Some((p, None)) => return Err((format!("bad_pane_id: {:?}", first_chars(p, 20)), ts)),
    };
    if server_key(Path::new(&env.tmux)) != checks.our_key {
        return Err(("foreign_server: left to that server's daemon".into(), ts));
    }
    if let (Some(ours), Some(theirs)) = (checks.server_pid, env.server_pid)
        && ours != theirs
    {
        let why = format!(
            "stale_server: the hook ran under tmux server pid {theirs}, this server is pid {ours} (a hook from a server that is gone)"
        );
        return Err((why, ts));
    }
    Ok(Checked {
        env,
        payload,
        pane,
        ts,
    })
}

/// The payload through its source's mapper (`claude`, `codex`, `codex-notify`, `generic`,
/// `gemini`, `opencode`), or why it maps to no event.
fn map_payload(
    c: &Checked,
    event_id: &str,
    trust: &dyn Fn(&PaneId, i32) -> bool,
) -> Result<NormalizedEvent, String> {
    let (payload, pane) = (&c.payload, c.pane.as_ref());
    let call = |pane| Call::new(pane, c.ts, event_id);
    match c.env.source.as_str() {
        "claude" => super::claude_hooks::map_hook(payload, call(pane)),
        "codex" | "codex-notify" => map_codex(c, event_id, trust),
        "generic" => super::generic_hook::payload_pane(payload).and_then(|own| {
            super::generic_hook::map_hook(payload, Call::new(own.as_ref().or(pane), c.ts, event_id))
        }),
        "gemini" => super::gemini_hooks::map_hook(payload, call(pane)),
        "opencode" => super::opencode_plugin::map_event(payload, call(pane)),
        other => Err(format!("unknown_source: {}", first_chars(other, 20))),
    }
}

/// A Codex hook or notify payload: its `TMUX_PANE` counts only when the hook's parent is in
/// that pane's process tree (`trust`); otherwise the event goes unbound, saying why.
fn map_codex(
    c: &Checked,
    event_id: &str,
    trust: &dyn Fn(&PaneId, i32) -> bool,
) -> Result<NormalizedEvent, String> {
    let pane = c.pane.as_ref();
    let trusted = pane.filter(|p| trust(p, c.env.ppid));
    let r = if c.env.source == "codex" {
        super::codex_hooks::map_hook(&c.payload, Call::new(trusted, c.ts, event_id))
    } else {
        super::codex_hooks::map_notify(&c.payload, Call::new(trusted, c.ts, event_id))
    };
    r.map(|mut ev| {
        if let (Some(p), None) = (pane, trusted) {
            let note = format!(
                "TMUX_PANE {p} not trusted: hook parent {} is not in that pane's tree",
                c.env.ppid
            );
            ev.detail = Some(match ev.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        }
        ev
    })
}

/// Where the hook that named `pane` ran: outside any pane's tree, under a pane process that is
/// not `pane`'s (the gateway decides), anchored to a live agent process, or unknown; an
/// agent process that has exited rejects the line.
fn origin_of(env: &Envelope, pane: &PaneId, checks: &Checks) -> Result<ProcOrigin, String> {
    let pp = match (env.anc.is_empty(), env.pane_pid) {
        (true, _) => return Ok(ProcOrigin::Unknown),
        (false, None) => return Ok(ProcOrigin::Outside),
        (false, Some(pp)) => pp,
    };
    if let Some(cur) = checks.pane_pids.get(pane)
        && *cur != pp
    {
        // The gateway refreshes the registry first (the pane may have been respawned
        // a moment ago), then rejects it.
        return Ok(ProcOrigin::Mismatch {
            hook: pp,
            pane: *cur,
        });
    }
    match anchor_of(env) {
        Some((pid, start)) if crate::sys::procs::alive(pid, start) => {
            Ok(ProcOrigin::Anchored { pid, start })
        }
        Some((pid, _)) => Err(format!(
            "agent_gone: the agent process {pid} that ran this hook has exited"
        )),
        None => Ok(ProcOrigin::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::spool::{ENVELOPE_VERSION, Envelope};

    /// The spool line the hook (`cli::hook`) writes for a small, complete payload with no
    /// process facts. Built here rather than by calling the hook: sources sit below the CLI.
    fn envelope_line(source: &str, tmux: &str, pane: Option<String>, raw: &[u8]) -> Vec<u8> {
        let (payload, payload_text) = match serde_json::from_slice(raw) {
            Ok(v) => (Some(v), None),
            Err(_) => (None, Some(String::from_utf8_lossy(raw).into_owned())),
        };
        let env = Envelope {
            v: ENVELOPE_VERSION,
            source: source.into(),
            recv_ns: 1,
            tmux: tmux.into(),
            pane,
            pid: 1,
            ppid: 1,
            payload,
            payload_text,
            reject: None,
            size: raw.len(),
            server_pid: None,
            anc: Vec::new(),
            pane_pid: None,
            tpgid: None,
        };
        let mut line = serde_json::to_vec(&env).expect("envelope serializes");
        line.push(b'\n');
        line
    }

    /// The envelope of a `source` Stop hook from the test socket, in pane %1.
    fn stop_envelope(source: &str) -> Envelope {
        let l = envelope_line(
            source,
            "/tmp/agtmux-test-sock",
            Some("%1".into()),
            br#"{"session_id":"s","hook_event_name":"Stop"}"#,
        );
        serde_json::from_slice(&l[..l.len() - 1]).unwrap()
    }

    #[test]
    fn rejects_each_kind_of_bad_line_with_a_reason() {
        let key = server_key(Path::new("/tmp/agtmux-test-sock"));
        let reason = |p: Pulled| match p {
            Pulled::Rejected { reason, .. } => reason,
            Pulled::Event { .. } => "accepted".into(),
        };
        assert!(reason(decode_line(b"{not json", false, &key)).starts_with("malformed_envelope"));
        assert_eq!(reason(decode_line(b"x", true, &key)), "line_too_long");
        // A Claude hook's spool line from `tmux`, in `pane`: what decoding it says.
        let claude = |tmux: &str, pane: &str, raw: &[u8]| {
            let l = envelope_line("claude", tmux, Some(pane.into()), raw);
            reason(decode_line(&l[..l.len() - 1], false, &key))
        };
        let ours = "/tmp/agtmux-test-sock";
        let stop = br#"{"session_id":"s","hook_event_name":"Stop"}"#;
        assert!(claude(ours, "%1", b"{oops").starts_with("malformed_json"));
        assert!(claude(ours, "%1;x", stop).starts_with("bad_pane_id"));
        assert!(claude("/tmp/other-sock", "%1", stop).starts_with("foreign_server"));
        assert_eq!(claude(ours, "%1", stop), "accepted");
    }

    #[test]
    fn codex_hooks_keep_their_pane_only_when_trusted() {
        let key = server_key(Path::new("/tmp/agtmux-test-sock"));
        let l = envelope_line(
            "codex",
            "/tmp/agtmux-test-sock",
            Some("%7".into()),
            br#"{"session_id":"t1","hook_event_name":"PermissionRequest","tool_name":"shell","cwd":"/w"}"#,
        );
        let line = &l[..l.len() - 1];
        let Pulled::Event { event, .. } = decode_line(line, false, &key) else {
            panic!("codex hook rejected")
        };
        assert_eq!(event.pane_id, None, "untrusted TMUX_PANE must be dropped");
        assert_eq!(event.session_key.as_deref(), Some("t1"));
        assert!(
            event
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("not trusted")
        );
        let Pulled::Event { event, .. } = decode_line_with(line, false, &key, &|p, _| p == "%7")
        else {
            panic!("codex hook rejected")
        };
        assert_eq!(event.pane_id.as_deref(), Some("%7"));
        // notify: JSON argv; title-generation threads are ignored.
        let n = envelope_line(
            "codex-notify",
            "/tmp/agtmux-test-sock",
            None,
            br#"{"type":"agent-turn-complete","thread-id":"t9","input-messages":["Generate a concise, single-line task title for x"]}"#,
        );
        let Pulled::Event { event, .. } = decode_line(&n[..n.len() - 1], false, &key) else {
            panic!("notify rejected")
        };
        assert_eq!(event.signal, crate::core::event::Signal::Ignore);
        let n = envelope_line(
            "codex-notify",
            "/tmp/agtmux-test-sock",
            None,
            br#"{"type":"agent-turn-complete","thread-id":"t9","input-messages":["fix it"]}"#,
        );
        let Pulled::Event { event, .. } = decode_line(&n[..n.len() - 1], false, &key) else {
            panic!("notify rejected")
        };
        assert_eq!(
            event.signal,
            crate::core::event::Signal::Activity(crate::core::types::Activity::Idle)
        );
    }

    /// A pane that runs a script (`sh -c "printf … | agtmux hook …; exec agent"`, no job
    /// control: the pane's process leads the terminal's foreground group) ran the hook through
    /// a pipeline subshell that is gone by ingest time. The agent is the pane's own process,
    /// not that subshell (it was taken for it, and the hook rejected as agent_gone, whenever
    /// the daemon read the hook before the script's exec).
    #[test]
    fn a_script_pane_anchors_its_hooks_to_itself_not_to_a_gone_subshell() {
        use std::os::unix::process::CommandExt;
        let mut sh = std::process::Command::new("sleep");
        sh.arg0("sh").arg("30");
        let mut child = sh.spawn().unwrap();
        let pane = child.id() as i32;
        let start = crate::sys::procs::start_ticks(pane).unwrap();
        let mut e = stop_envelope("codex");
        // hook, the pipeline's subshell (both exited), the pane's process.
        e.anc = vec![(999_999_001, 1), (999_999_002, 1), (pane, start)];
        e.pane_pid = Some(pane);
        e.tpgid = Some(pane);
        assert_eq!(anchor_of(&e), Some((pane, start)));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn hooks_are_bound_to_the_server_instance_and_the_pane_process() {
        let key = server_key(Path::new("/tmp/agtmux-test-sock"));
        let me = std::process::id() as i32;
        let start = crate::sys::procs::start_ticks(me).unwrap();
        let line = |server_pid: Option<i32>, anc: Vec<(i32, u64)>, pane_pid: Option<i32>| {
            let mut e = stop_envelope("claude");
            (e.server_pid, e.anc, e.pane_pid) = (server_pid, anc, pane_pid);
            serde_json::to_vec(&e).unwrap()
        };
        let pids: HashMap<PaneId, i32> = [("%1".into(), me)].into();
        let checks = Checks {
            our_key: &key,
            server_pid: Some(4242),
            pane_pids: &pids,
        };
        let decode = |l: &[u8]| decode_checked(l, false, &checks, &|_, _| false);
        let reason = |p: &Pulled| match p {
            Pulled::Rejected { reason, .. } => reason.clone(),
            Pulled::Event { .. } => "accepted".into(),
        };
        // Another server instance on the same socket.
        let (p, _) = decode(&line(Some(4141), vec![], None));
        assert!(reason(&p).starts_with("stale_server"), "{}", reason(&p));
        // No process facts (an older hook): accepted, origin unknown.
        let (p, o) = decode(&line(Some(4242), vec![], None));
        assert_eq!(
            (reason(&p).as_str(), o),
            ("accepted", Some(ProcOrigin::Unknown))
        );
        // Not inside any pane of the server.
        let (_, o) = decode(&line(Some(4242), vec![(me, start)], None));
        assert_eq!(o, Some(ProcOrigin::Outside));
        // Under another process than the pane's.
        let (_, o) = decode(&line(Some(4242), vec![(me + 1, 1)], Some(me + 1)));
        let o = o.unwrap();
        assert_eq!(
            o,
            ProcOrigin::Mismatch {
                hook: me + 1,
                pane: me
            }
        );
        assert!(
            o.mismatch_reason(&"%1".into())
                .unwrap()
                .starts_with("pane_process_mismatch")
        );
        // Under the pane's process, which still runs: anchored to it.
        let (_, o) = decode(&line(Some(4242), vec![(me, start)], Some(me)));
        assert_eq!(o, Some(ProcOrigin::Anchored { pid: me, start }));
        // The same pid with another start time: that process life is over.
        let (p, _) = decode(&line(Some(4242), vec![(me, start + 1)], Some(me)));
        assert!(reason(&p).starts_with("agent_gone"), "{}", reason(&p));
    }

    #[test]
    fn too_deep_is_decided_before_serde() {
        let key = server_key(Path::new("/tmp/agtmux-test-sock"));
        let deep = format!(
            "{{\"v\":1,\"payload\":{}1{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        match decode_line(deep.as_bytes(), false, &key) {
            Pulled::Rejected { reason, .. } => assert!(reason.starts_with("too_deep"), "{reason}"),
            Pulled::Event { .. } => panic!("accepted"),
        }
    }

    #[test]
    fn hook_parent_check_follows_process_tree() {
        let me = std::process::id() as i32;
        let parent = crate::sys::procs::parent(me).unwrap_or(0);
        assert!(hook_parent_in_pane(me, me));
        assert!(!hook_parent_in_pane(parent, me));
    }
}
