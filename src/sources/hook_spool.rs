//! The hook spool as a source (C-005, and the hook half of C-004): reads envelope lines after
//! the committed cursor, validates them, and hands normalized events or rejects to the gateway.
//!
//! Validation (seed "Input validation"): envelope schema and version, pane id format,
//! source/provider consistency (the payload must look like its claimed agent's), and that the
//! event belongs to this daemon's tmux server. Every reject keeps its raw line and a reason.
use super::spool::{Envelope, SpoolCursor, SpoolReader};
use super::{Batch, Pulled, Source};
use crate::core::types::{SourceKind, valid_pane_id};
use crate::paths::{fnv1a64, server_key};
use std::path::{Path, PathBuf};

pub struct HookSpoolSource {
    path: PathBuf,
    server_key: String,
    reader: SpoolReader,
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
            last_error: None,
        }
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
        let items = lines
            .into_iter()
            .map(|l| decode_line(&l.bytes, l.truncated, &self.server_key))
            .collect();
        Batch {
            items,
            next_cursor: self.reader.position().encode(),
        }
    }
}

/// Decode and validate one spool line.
pub fn decode_line(bytes: &[u8], truncated: bool, our_key: &str) -> Pulled {
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
}
