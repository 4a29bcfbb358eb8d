//! The hook spool as a source (C-005, and the hook half of C-004): reads envelope lines after
//! the committed cursor, validates them, and hands normalized events or rejects to the gateway.
//!
//! Validation (seed "Input validation"): envelope schema and version, pane id format,
//! source/provider consistency (the payload must look like its claimed agent's), and that the
//! event belongs to this daemon's tmux server. Every reject keeps its raw line and a reason.
//!
//! Codex hooks (`codex`, `codex-notify`) run inside Codex's shared app-server daemon, so their
//! `$TMUX_PANE` is the pane of whichever TUI started that daemon, not the thread's pane
//! (protocols.md). The pane is kept only when the hook's parent process (envelope `ppid`)
//! lives in that pane's process tree and no process between them is an app-server daemon;
//! otherwise the event carries no pane and the daemon binds its thread by correlation
//! (`daemon::codex`).
use super::spool::{Envelope, SpoolCursor, SpoolReader};
use super::{Batch, Pulled, Source};
use crate::core::types::{SourceKind, valid_pane_id};
use crate::paths::{fnv1a64, server_key};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct HookSpoolSource {
    path: PathBuf,
    server_key: String,
    reader: SpoolReader,
    /// `pane_id → pane_pid` of the current registry, to check a Codex hook's parent process.
    pane_pids: HashMap<String, i32>,
    /// Set when the spool could not be read; the daemon shows it as source health.
    pub last_error: Option<String>,
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
        }
    }

    /// The panes' process ids (from the registry) used to trust a Codex hook's `$TMUX_PANE`.
    pub fn set_pane_pids(&mut self, pids: HashMap<String, i32>) {
        self.pane_pids = pids;
    }

    /// Rotate the spool once everything is consumed; call after committing the cursor.
    pub fn maybe_rotate(&mut self, threshold: u64) -> bool {
        self.reader.maybe_rotate(threshold).unwrap_or(false)
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
        let trust = |pane: &str, ppid: i32| match pids.get(pane) {
            Some(pp) => hook_parent_in_pane(ppid, *pp),
            None => !pids.is_empty(),
        };
        let items = lines
            .into_iter()
            .map(|l| decode_line_with(&l.bytes, l.truncated, &self.server_key, &trust))
            .collect();
        Batch {
            items,
            next_cursor: self.reader.position().encode(),
        }
    }
}

/// Does a hook whose parent is `ppid` really run for the pane whose first process is
/// `pane_pid`? True when `ppid` descends from `pane_pid` and no process on the way is a Codex
/// app-server daemon (a daemon started from a pane's TUI serves every thread, not that pane's).
pub fn hook_parent_in_pane(ppid: i32, pane_pid: i32) -> bool {
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
    trust: &dyn Fn(&str, i32) -> bool,
) -> Pulled {
    let event_id = line_event_id(bytes);
    let raw = String::from_utf8_lossy(bytes).into_owned();
    let reject = |reason: &str, ts: i64| Pulled::Rejected {
        event_id: event_id.clone(),
        reason: reason.to_string(),
        raw: raw.clone(),
        ts,
    };
    if truncated {
        return reject("line_too_long", 0);
    }
    let env: Envelope = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => return reject(&format!("malformed_envelope: {e}"), 0),
    };
    let ts = env.recv_ns / 1_000_000;
    if env.v != super::spool::ENVELOPE_VERSION {
        return reject(&format!("unsupported_envelope_version: {}", env.v), ts);
    }
    if let Some(r) = &env.reject {
        return reject(&format!("rejected_by_hook: {r} ({} bytes)", env.size), ts);
    }
    let Some(payload) = env.payload.as_ref() else {
        return reject("malformed_json: payload did not parse", ts);
    };
    if let Some(p) = &env.pane
        && !valid_pane_id(p)
    {
        return reject(&format!("bad_pane_id: {:?}", truncate(p, 20)), ts);
    }
    if server_key(Path::new(&env.tmux)) != our_key {
        return reject("foreign_server: left to that server's daemon", ts);
    }
    let pane = env.pane.as_deref();
    let mapped = match env.source.as_str() {
        "claude" => super::claude_hooks::map_hook(payload, pane, ts, event_id.clone()),
        "codex" | "codex-notify" => {
            let trusted = pane.filter(|p| trust(p, env.ppid));
            let r = if env.source == "codex" {
                super::codex_hooks::map_hook(payload, trusted, ts, event_id.clone())
            } else {
                super::codex_hooks::map_notify(payload, trusted, ts, event_id.clone())
            };
            r.map(|mut ev| {
                if let (Some(p), None) = (pane, trusted) {
                    let note = format!(
                        "TMUX_PANE {} not trusted: hook parent {} is not in that pane's tree",
                        truncate(p, 20),
                        env.ppid
                    );
                    ev.detail = Some(match ev.detail.take() {
                        Some(d) => format!("{d}; {note}"),
                        None => note,
                    });
                }
                ev
            })
        }
        other => Err(format!("unknown_source: {}", truncate(other, 20))),
    };
    match mapped {
        Ok(event) => Pulled::Event { event, raw },
        Err(reason) => reject(&reason, ts),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::hook::envelope_line;

    #[test]
    fn rejects_each_kind_of_bad_line_with_a_reason() {
        let key = server_key(Path::new("/tmp/agtmux-test-sock"));
        let reason = |p: Pulled| match p {
            Pulled::Rejected { reason, .. } => reason,
            Pulled::Event { .. } => "accepted".into(),
        };
        assert!(reason(decode_line(b"{not json", false, &key)).starts_with("malformed_envelope"));
        assert_eq!(reason(decode_line(b"x", true, &key)), "line_too_long");
        let l = envelope_line(
            "claude",
            "/tmp/agtmux-test-sock",
            Some("%1".into()),
            b"{oops",
        );
        assert!(reason(decode_line(&l[..l.len() - 1], false, &key)).starts_with("malformed_json"));
        let l = envelope_line(
            "claude",
            "/tmp/agtmux-test-sock",
            Some("%1;x".into()),
            br#"{"session_id":"s","hook_event_name":"Stop"}"#,
        );
        assert!(reason(decode_line(&l[..l.len() - 1], false, &key)).starts_with("bad_pane_id"));
        let l = envelope_line(
            "claude",
            "/tmp/other-sock",
            Some("%1".into()),
            br#"{"session_id":"s","hook_event_name":"Stop"}"#,
        );
        assert!(reason(decode_line(&l[..l.len() - 1], false, &key)).starts_with("foreign_server"));
        let l = envelope_line(
            "claude",
            "/tmp/agtmux-test-sock",
            Some("%1".into()),
            br#"{"session_id":"s","hook_event_name":"Stop"}"#,
        );
        assert_eq!(
            reason(decode_line(&l[..l.len() - 1], false, &key)),
            "accepted"
        );
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

    #[test]
    fn hook_parent_check_follows_process_tree() {
        let me = std::process::id() as i32;
        let parent = crate::sys::procs::parent(me).unwrap_or(0);
        assert!(hook_parent_in_pane(me, me));
        assert!(!hook_parent_in_pane(parent, me));
    }
}
