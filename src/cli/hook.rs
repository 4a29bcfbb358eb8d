//! `agtmux hook claude|codex|codex-notify` (C-005/C-004 entry): runs on the agent's critical
//! path, so it only wraps stdin in an envelope, appends one spool line and pokes the daemon.
//!
//! It never fails the agent: every error is swallowed, the exit code is always 0, and nothing
//! is printed (Claude reads hook stdout as a decision). Outside tmux there is no pane to bind,
//! so nothing is recorded.
use crate::paths::{self, ServerPaths};
use crate::sources::spool::{self, ENVELOPE_VERSION, Envelope, MAX_PAYLOAD};
use std::io::Read;
use std::os::unix::net::UnixDatagram;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    /// Which agent calls: `claude`, `codex`, or `codex-notify` (Codex's legacy `notify`).
    #[arg(value_parser = ["claude", "codex", "codex-notify"])]
    pub agent: String,
    /// For `codex-notify`: Codex passes the JSON as the last argument.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// Run the hook. Returns the process exit code, always 0.
pub fn run(args: &HookArgs) -> i32 {
    let _ = record(args);
    revive_daemon();
    0
}

/// Issue 16: if this server's daemon died with its keeper, start a new keeper, detached, never
/// waited for. Rate-limited (one try per 10 s per server) and only for a server whose daemon
/// the plugin started; costs two lock probes when the daemon is up.
fn revive_daemon() {
    if let Some(socket) = paths::tmux_env_socket() {
        crate::daemon::supervise::revive(&ServerPaths::new(socket), "tmux", false);
    }
}

fn record(args: &HookArgs) -> Option<()> {
    let raw = if args.agent == "codex-notify" {
        args.rest
            .last()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()
    } else {
        read_capped(&mut std::io::stdin().lock())
    };
    record_payload(&args.agent, &raw)
}

/// Append one payload for `source` to this tmux server's spool and wake the daemon. `None`
/// when outside tmux or when the spool cannot be written; callers ignore failures.
pub fn record_payload(source: &str, raw: &[u8]) -> Option<()> {
    let socket = paths::tmux_env_socket()?;
    let pane = std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty());
    let line = envelope_line(source, &socket.to_string_lossy(), pane, raw);
    let sp = ServerPaths::new(socket);
    // Private (0700): the spool holds prompts; the daemon may not have made the dir yet.
    if paths::ensure_private_dir(&sp.state_dir).is_err() {
        return None;
    }
    spool::append(&sp.spool(), &line).ok()?;
    wake(&sp);
    Some(())
}

/// Read at most `MAX_PAYLOAD + 1` bytes: enough to know a payload is too large without
/// buffering an unbounded stream. The rest is drained so the writer never sees EPIPE.
fn read_capped(r: &mut dyn Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = r.take(MAX_PAYLOAD as u64 + 1).read_to_end(&mut buf);
    if buf.len() > MAX_PAYLOAD {
        let _ = std::io::copy(r, &mut std::io::sink());
    }
    buf
}

/// Build the spool line for one payload.
pub fn envelope_line(source: &str, tmux: &str, pane: Option<String>, raw: &[u8]) -> Vec<u8> {
    let recv_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let mut env = Envelope {
        v: ENVELOPE_VERSION,
        source: source.to_string(),
        recv_ns,
        tmux: tmux.to_string(),
        pane,
        // SAFETY: getpid/getppid have no preconditions.
        pid: unsafe { libc::getpid() },
        ppid: unsafe { libc::getppid() },
        payload: None,
        payload_text: None,
        reject: None,
        size: raw.len(),
    };
    if raw.len() > MAX_PAYLOAD {
        env.reject = Some("too_large".into());
    } else {
        match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(v) => env.payload = Some(v),
            Err(_) => env.payload_text = Some(String::from_utf8_lossy(raw).into_owned()),
        }
    }
    let mut line = serde_json::to_vec(&env).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Poke the daemon's wake-up socket. A missing daemon is fine: it reads the spool at start.
fn wake(sp: &ServerPaths) {
    if let Ok(s) = UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"w", sp.wake_socket());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_json_and_flags_garbage_and_oversize() {
        let l = envelope_line("claude", "/tmp/s", Some("%1".into()), br#"{"a":1}"#);
        let e: Envelope = serde_json::from_slice(&l[..l.len() - 1]).unwrap();
        assert_eq!(e.payload, Some(serde_json::json!({"a":1})));
        assert_eq!(e.pane.as_deref(), Some("%1"));
        let l = envelope_line("claude", "/tmp/s", None, b"{not json\n\x00\xff");
        assert_eq!(
            l.iter().filter(|b| **b == b'\n').count(),
            1,
            "one line even for garbage"
        );
        let e: Envelope = serde_json::from_slice(&l[..l.len() - 1]).unwrap();
        assert!(e.payload.is_none() && e.payload_text.is_some());
        let big = vec![b' '; MAX_PAYLOAD + 1];
        let l = envelope_line("claude", "/tmp/s", None, &big);
        let e: Envelope = serde_json::from_slice(&l[..l.len() - 1]).unwrap();
        assert_eq!(e.reject.as_deref(), Some("too_large"));
        assert_eq!(e.size, MAX_PAYLOAD + 1);
    }

    #[test]
    fn pretty_printed_payload_stays_one_line() {
        let l = envelope_line("codex", "/tmp/s", None, b"{\n  \"a\": \"x\\ny\"\n}\n");
        assert_eq!(l.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
