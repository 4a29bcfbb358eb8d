//! `agtmux hook claude|codex|codex-notify|gemini|opencode|generic` (C-005/C-004 entry): runs on the agent's critical
//! path, so it only wraps stdin in an envelope, appends one spool line and pokes the daemon.
//!
//! It never fails the agent: every error is swallowed, the exit code is always 0, and nothing
//! is printed (Claude reads hook stdout as a decision). Outside tmux there is no pane to bind,
//! so nothing is recorded. stdin is read for at most `hook_input::READ_WINDOW`. A spool that
//! cannot be written leaves a failure marker (`spool::record_failure`) that the daemon's
//! status and `doctor` report.
use super::hook_input::{self, Input};
use crate::exit::ExitCode;
use crate::paths::{self, ServerPaths};
use crate::sources::spool::{self, ENVELOPE_VERSION, Envelope, MAX_DEPTH, MAX_PAYLOAD};
use std::os::unix::net::UnixDatagram;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    /// Which agent calls: `claude`, `codex`, `codex-notify` (Codex's legacy `notify`),
    /// `gemini`, `opencode` (agtmux's OpenCode plugin) or `generic` (docs/generic-hook.md).
    #[arg(value_parser = ["claude", "codex", "codex-notify", "gemini", "opencode", "generic"])]
    pub agent: String,
    /// For `codex-notify`: Codex passes the JSON as the last argument.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// Run the hook. Returns the process exit code, always 0.
pub fn run(args: &HookArgs) -> ExitCode {
    let _ = record(args);
    revive_daemon();
    ExitCode::Ok
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
    let input = if args.agent == "codex-notify" {
        let raw = args
            .rest
            .last()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default();
        Input {
            size: raw.len(),
            bytes: raw,
            eof: true,
        }
    } else {
        hook_input::read_stdin(MAX_PAYLOAD, hook_input::READ_WINDOW)
    };
    record_input(&args.agent, &input)
}

/// Append one payload for `source` to this tmux server's spool and wake the daemon. `None`
/// when outside tmux or when the spool cannot be written; callers ignore failures.
pub(crate) fn record_payload(source: &str, raw: &[u8]) -> Option<()> {
    let input = Input {
        bytes: raw.to_vec(),
        size: raw.len(),
        eof: true,
    };
    record_input(source, &input)
}

fn record_input(source: &str, input: &Input) -> Option<()> {
    let tmux = std::env::var("TMUX").ok()?;
    let socket = paths::tmux_env_socket()?;
    let pane = std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty());
    let mut env = envelope(source, &socket.to_string_lossy(), pane, input);
    env.server_pid = hook_input::tmux_server_pid(&tmux);
    let l = crate::sys::procs::lineage(std::process::id() as i32, env.server_pid);
    (env.anc, env.pane_pid, env.tpgid) = (l.anc, l.pane_pid, l.tpgid);
    let line = to_line(&env);
    let sp = ServerPaths::new(socket);
    // Private (0700): the spool holds prompts; the daemon may not have made the dir yet.
    let r = paths::ensure_private_dir(&sp.state_dir)
        .map_err(|e| ("state dir", sp.state_dir.clone(), e))
        .and_then(|_| spool::append(&sp.spool(), &line).map_err(|e| ("spool", sp.spool(), e)));
    match r {
        Ok(()) => spool::clear_failure(&sp),
        Err((what, path, e)) => {
            spool::record_failure(&sp, &format!("{what} {}: {e}", path.display()));
            wake(&sp);
            return None;
        }
    }
    wake(&sp);
    Some(())
}

/// Build the spool line for one complete payload (no process facts).
pub fn envelope_line(source: &str, tmux: &str, pane: Option<String>, raw: &[u8]) -> Vec<u8> {
    let input = Input {
        bytes: raw.to_vec(),
        size: raw.len(),
        eof: true,
    };
    to_line(&envelope(source, tmux, pane, &input))
}

fn to_line(env: &Envelope) -> Vec<u8> {
    let mut line = serde_json::to_vec(env).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The envelope for one payload: parsed JSON, or a reason the hook refuses it (too large, too
/// deeply nested, cut off by the read window), with the real size read.
fn envelope(source: &str, tmux: &str, pane: Option<String>, input: &Input) -> Envelope {
    let raw = &input.bytes;
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
        pid: i32::try_from(std::process::id()).unwrap_or(0),
        ppid: i32::try_from(std::os::unix::process::parent_id()).unwrap_or(0),
        payload: None,
        payload_text: None,
        reject: None,
        size: input.size.max(raw.len()),
        server_pid: None,
        anc: Vec::new(),
        pane_pid: None,
        tpgid: None,
    };
    if input.size > MAX_PAYLOAD || raw.len() > MAX_PAYLOAD {
        env.reject = Some(
            if input.eof {
                "too_large"
            } else {
                "too_large_unterminated"
            }
            .into(),
        );
    } else if spool::json_depth(raw, MAX_DEPTH) > MAX_DEPTH {
        env.reject = Some(format!("too_deep: nested deeper than {MAX_DEPTH}"));
    } else {
        match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(v) => env.payload = Some(v),
            // stdin still open after the read window, and what came is not a whole payload.
            Err(_) if !input.eof => {
                env.reject = Some(format!(
                    "read_timeout: stdin not closed within {} ms",
                    hook_input::READ_WINDOW.as_millis()
                ))
            }
            Err(_) => env.payload_text = Some(String::from_utf8_lossy(raw).into_owned()),
        }
    }
    env
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
    fn too_deep_and_unterminated_payloads_get_their_reasons() {
        let env = |raw: &[u8], eof: bool| {
            let i = Input {
                bytes: raw.to_vec(),
                size: raw.len(),
                eof,
            };
            envelope("claude", "/tmp/s", None, &i)
        };
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(
            env(deep.as_bytes(), true)
                .reject
                .unwrap()
                .starts_with("too_deep")
        );
        let ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(env(ok.as_bytes(), true).payload.is_some());
        // Stdin left open: a whole payload is kept, a partial one is a read timeout.
        assert!(env(br#"{"a":1}"#, false).payload.is_some());
        assert!(
            env(br#"{"a":"#, false)
                .reject
                .unwrap()
                .starts_with("read_timeout")
        );
        let big = Input {
            bytes: vec![b' '; MAX_PAYLOAD + 1],
            size: 5 << 20,
            eof: true,
        };
        let e = envelope("claude", "/tmp/s", None, &big);
        assert_eq!((e.reject.as_deref(), e.size), (Some("too_large"), 5 << 20));
    }

    #[test]
    fn pretty_printed_payload_stays_one_line() {
        let l = envelope_line("codex", "/tmp/s", None, b"{\n  \"a\": \"x\\ny\"\n}\n");
        assert_eq!(l.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
