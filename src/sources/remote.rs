//! The remote stream's wire format (issue 24): what `agtmux watch --json --all` prints on a
//! remote host and the local daemon reads through `ssh`. This module only parses and
//! validates; the daemon (`daemon::remote`) owns the connections.
//!
//! WHY a module of its own: every byte of it comes from another machine, so it is untrusted
//! input like a hook payload. Lines are capped ([`MAX_LINE`]), ids must have tmux's shapes
//! (`$N`, `@N`, `%N`), states and attention kinds must be known names, free text (titles,
//! names) is cut to the local limits with control and bidi/format characters dropped, and
//! every refusal has a reason the daemon logs. Nothing here can panic on bad input.
//!
//! The stream, one JSON object per line, `"v":1` each:
//! - `hello {agtmux, protocol}` first: the remote's version and stream protocol;
//! - `snapshot {server, socket, list}` per remote tmux server (its daemon's `list`), when the
//!   stream starts and when a server appears; it replaces what was known of that server;
//! - `synced` once every server present at the start has sent its snapshot;
//! - `pane {server, pane}` / `pane_removed {server, pane_id}`: the daemons' pushes;
//! - `server_gone {server}`; `alive {now_ms}` every few seconds (a quiet link is not dead).
use crate::core::types::{Activity, AttentionKind, Millis, PaneId, Presence, Provider};

/// The stream protocol this build speaks (`hello.protocol`).
pub const PROTOCOL: u64 = 1;
/// Longest accepted line (the local API's limit).
pub const MAX_LINE: usize = 64 * 1024;
/// A snapshot line may be longer: a server's whole `list`.
pub const MAX_SNAPSHOT_LINE: usize = 4 * 1024 * 1024;
/// Most panes kept per remote server (more are refused, logged).
pub const MAX_PANES_PER_SERVER: usize = 2_000;
/// Longest name (session, window, server key) and title kept, in characters.
const MAX_NAME: usize = 128;
const MAX_TITLE: usize = 200;
/// Longest detail text kept (characters) and largest background count believed.
const MAX_DETAIL: usize = 80;
const MAX_BACKGROUND: u64 = 10_000;

/// One remote pane, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePane {
    /// The pane's tmux id on its host (`%N`, checked like a local one).
    pub pane_id: PaneId,
    pub generation: u64,
    pub session_id: String,
    pub session_name: String,
    pub window_id: String,
    pub window_index: Option<u64>,
    pub window_name: String,
    pub pane_index: Option<u64>,
    pub presence: Presence,
    pub provider: Option<Provider>,
    pub evidence: String,
    pub state: Activity,
    pub attention: Option<AttentionKind>,
    pub icon: String,
    pub title: String,
    pub since_ms: Millis,
    pub version: u64,
    pub command: String,
    /// Issue 23's fields as the remote daemon reports them: when a usage limit resets (epoch
    /// ms), background tasks still running, and its detail text (`limit until 15:00`, in the
    /// remote's local time).
    pub until_ms: Option<Millis>,
    pub background: u32,
    pub detail: String,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteMsg {
    Hello {
        agtmux: String,
        protocol: u64,
    },
    Snapshot {
        server: String,
        socket: String,
        panes: Vec<RemotePane>,
        /// Panes of the snapshot refused, with the reason (logged by the caller).
        rejected: Vec<String>,
    },
    Synced,
    Pane {
        server: String,
        pane: Box<RemotePane>,
    },
    PaneRemoved {
        server: String,
        pane_id: PaneId,
    },
    ServerGone {
        server: String,
    },
    Alive,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub String);

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn rej<T>(s: impl Into<String>) -> Result<T, Reject> {
    Err(Reject(s.into()))
}

/// Free text: control and format characters dropped, cut to `max` characters.
pub fn clean_text(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !crate::core::title::is_format_char(*c))
        .take(max)
        .collect()
}

fn id_ok(s: &str, sigil: char) -> bool {
    s.len() >= 2
        && s.len() <= 12
        && s.starts_with(sigil)
        && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A server key as `paths::server_key` makes them: `[A-Za-z0-9_-]`, bounded.
pub fn server_key_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A remote tmux socket path we are willing to put in an `ssh` command line: absolute, no
/// control characters, bounded. (It is shell-quoted anyway.)
pub fn socket_ok(s: &str) -> bool {
    s.starts_with('/') && s.len() <= 512 && !s.chars().any(|c| c.is_control())
}

fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> Result<&'a str, Reject> {
    v.get(k)
        .and_then(|x| x.as_str())
        .ok_or_else(|| Reject(format!("missing_field:{k}")))
}

/// The optional field `k` read by `parse`: `None` when absent or null; rejected as `bad` when
/// it is there but not one `parse` knows.
fn opt_field<T>(
    v: &serde_json::Value,
    k: &str,
    parse: fn(&str) -> Option<T>,
    bad: &str,
) -> Result<Option<T>, Reject> {
    match v.get(k) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x
            .as_str()
            .and_then(parse)
            .map(Some)
            .ok_or(Reject(bad.into())),
    }
}

/// Validate one pane object of a remote daemon.
pub fn parse_pane(v: &serde_json::Value) -> Result<RemotePane, Reject> {
    let pane_id = PaneId::parse(str_field(v, "pane_id")?).ok_or(Reject("bad_pane_id".into()))?;
    let session_id = str_field(v, "session_id")?;
    if !session_id.is_empty() && !id_ok(session_id, '$') {
        return rej("bad_session_id");
    }
    let window_id = str_field(v, "window_id")?;
    if !window_id.is_empty() && !id_ok(window_id, '@') {
        return rej("bad_window_id");
    }
    let presence =
        Presence::parse(str_field(v, "presence")?).ok_or(Reject("bad_presence".into()))?;
    let state = Activity::parse(str_field(v, "state")?).ok_or(Reject("bad_state".into()))?;
    let provider = opt_field(v, "provider", Provider::parse, "bad_provider")?;
    let attention = opt_field(v, "attention", AttentionKind::parse, "bad_attention")?;
    let evidence = v.get("evidence").and_then(|e| e.as_str()).unwrap_or("none");
    if !matches!(evidence, "deterministic" | "heuristic" | "none") {
        return rej("bad_evidence");
    }
    let text =
        |k: &str, max: usize| clean_text(v.get(k).and_then(|x| x.as_str()).unwrap_or(""), max);
    let num = |k: &str| v.get(k).and_then(|x| x.as_u64());
    Ok(RemotePane {
        pane_id,
        generation: num("generation").unwrap_or(0),
        session_id: session_id.to_string(),
        session_name: text("session_name", MAX_NAME),
        window_id: window_id.to_string(),
        window_index: num("window_index").filter(|i| *i < 1_000_000),
        window_name: text("window_name", MAX_NAME),
        pane_index: num("pane_index").filter(|i| *i < 1_000_000),
        presence,
        provider,
        evidence: evidence.to_string(),
        state,
        attention,
        icon: text("icon", 8),
        title: text("title", MAX_TITLE),
        since_ms: v
            .get("since_ms")
            .and_then(|x| x.as_i64())
            .unwrap_or(0)
            .clamp(0, i64::MAX / 2),
        version: num("version").unwrap_or(0),
        command: text("command", MAX_NAME),
        until_ms: v
            .get("until_ms")
            .and_then(|x| x.as_i64())
            .filter(|t| (0..i64::MAX / 2).contains(t)),
        background: num("background").map_or(0, |b| b.min(MAX_BACKGROUND)) as u32,
        detail: text("detail", MAX_DETAIL),
    })
}

/// Every pane of a daemon's `list` result, validated one by one: refused panes come back
/// with their reason, the rest are kept (up to [`MAX_PANES_PER_SERVER`]).
fn parse_list(list: &serde_json::Value) -> (Vec<RemotePane>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for s in list["sessions"].as_array().into_iter().flatten() {
        for w in s["windows"].as_array().into_iter().flatten() {
            for p in w["panes"].as_array().into_iter().flatten() {
                if ok.len() >= MAX_PANES_PER_SERVER {
                    bad.push("too_many_panes".to_string());
                    continue;
                }
                match parse_pane(p) {
                    Ok(x) => ok.push(x),
                    Err(e) => bad.push(e.0),
                }
            }
        }
    }
    (ok, bad)
}

fn server_field(v: &serde_json::Value) -> Result<String, Reject> {
    let s = str_field(v, "server")?;
    if !server_key_ok(s) {
        return rej("bad_server_key");
    }
    Ok(s.to_string())
}

/// Parse one line of the stream (without its newline).
pub fn parse_line(line: &[u8]) -> Result<RemoteMsg, Reject> {
    let limit = if line.starts_with(br#"{"v":1,"event":"snapshot""#) {
        MAX_SNAPSHOT_LINE
    } else {
        MAX_LINE
    };
    if line.len() > limit {
        return rej(format!("line_too_long ({} bytes)", line.len()));
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return rej("not_utf8");
    };
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return rej("not_json"),
    };
    if !v.is_object() {
        return rej("not_an_object");
    }
    if v.get("v").and_then(|x| x.as_u64()) != Some(1) {
        return rej("unsupported_version");
    }
    match v.get("event").and_then(|e| e.as_str()) {
        Some("hello") => Ok(RemoteMsg::Hello {
            agtmux: clean_text(v.get("agtmux").and_then(|x| x.as_str()).unwrap_or("?"), 40),
            protocol: v.get("protocol").and_then(|x| x.as_u64()).unwrap_or(0),
        }),
        Some("snapshot") => {
            let server = server_field(&v)?;
            let socket = str_field(&v, "socket")?;
            if !socket_ok(socket) {
                return rej("bad_socket");
            }
            let (panes, rejected) = parse_list(&v["list"]);
            Ok(RemoteMsg::Snapshot {
                server,
                socket: socket.to_string(),
                panes,
                rejected,
            })
        }
        Some("synced") => Ok(RemoteMsg::Synced),
        Some("pane") => Ok(RemoteMsg::Pane {
            server: server_field(&v)?,
            pane: Box::new(parse_pane(&v["pane"])?),
        }),
        Some("pane_removed") => {
            let pane_id =
                PaneId::parse(str_field(&v, "pane_id")?).ok_or(Reject("bad_pane_id".into()))?;
            Ok(RemoteMsg::PaneRemoved {
                server: server_field(&v)?,
                pane_id,
            })
        }
        Some("server_gone") => Ok(RemoteMsg::ServerGone {
            server: server_field(&v)?,
        }),
        Some("alive") => Ok(RemoteMsg::Alive),
        Some(_) => rej("unknown_event"),
        None => rej("missing_field:event"),
    }
}

/// Quote one word for a POSIX shell (the remote login shell runs ssh's command line): single
/// quotes, `'` as `'\''`. Plain words (letters, digits, `-_./%@$=:,+`) stay as they are,
/// except that `$` always gets quoted.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./%@=:,+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `@agtmux_remote_target` of the local window that shows a remote session (`cli::goto_remote`
/// tags it; the notifier reads it to tell whether a remote pane is looked at).
pub(crate) fn window_tag(host: &str, server: &str, session_id: &str) -> String {
    format!("{host}/{server}/{session_id}")
}

/// An SSH destination we accept from the config: `[user@]host[:port]`-ish, no leading `-`
/// (it would be read as an option), no whitespace or control characters, bounded.
pub fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && !h.starts_with('-')
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@:[]%".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str) -> serde_json::Value {
        serde_json::json!({"pane_id": id, "session_id": "$1", "session_name": "w\u{202e}x\n",
            "window_id": "@2", "window_index": 3, "window_name": "code", "pane_index": 0,
            "presence": "managed", "provider": "claude", "evidence": "deterministic",
            "state": "waiting_approval", "attention": "approval", "icon": "!",
            "title": "t", "since_ms": 5, "version": 7, "command": "claude"})
    }

    #[test]
    fn panes_are_validated_and_text_is_cleaned() {
        let p = parse_pane(&pane("%4")).unwrap();
        assert_eq!(p.session_name, "wx");
        assert_eq!(p.attention, Some(AttentionKind::Approval));
        assert_eq!((p.until_ms, p.background, p.detail.as_str()), (None, 0, ""));
        // Issue 23's fields: kept when sane, cleaned, bounded.
        let mut x = pane("%4");
        x["until_ms"] = serde_json::json!(1_700_000_000_000_i64);
        x["background"] = serde_json::json!(u64::MAX);
        x["detail"] = serde_json::json!("limit until 15:00\u{1b}[31m\u{202e}");
        let p = parse_pane(&x).unwrap();
        assert_eq!(p.until_ms, Some(1_700_000_000_000));
        assert_eq!(p.background, MAX_BACKGROUND as u32);
        assert_eq!(p.detail, "limit until 15:00[31m");
        x["until_ms"] = serde_json::json!(-5);
        assert_eq!(parse_pane(&x).unwrap().until_ms, None);
        for (k, v, why) in [
            (
                "pane_id",
                serde_json::json!("%4;kill-server"),
                "bad_pane_id",
            ),
            ("session_id", serde_json::json!("main"), "bad_session_id"),
            ("state", serde_json::json!("exploded"), "bad_state"),
            ("attention", serde_json::json!("pwn"), "bad_attention"),
            ("provider", serde_json::json!(3), "bad_provider"),
        ] {
            let mut x = pane("%4");
            x[k] = v;
            assert_eq!(parse_pane(&x).unwrap_err().0, why);
        }
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason_never_a_panic() {
        assert_eq!(parse_line(b"garbage").unwrap_err().0, "not_json");
        assert_eq!(parse_line(b"[1]").unwrap_err().0, "not_an_object");
        assert_eq!(
            parse_line(b"{\"v\":2}").unwrap_err().0,
            "unsupported_version"
        );
        assert_eq!(parse_line(&[0xff, 0xfe]).unwrap_err().0, "not_utf8");
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(
            parse_line(&long)
                .unwrap_err()
                .0
                .starts_with("line_too_long")
        );
        let bad_server = br#"{"v":1,"event":"server_gone","server":"a b"}"#;
        assert_eq!(parse_line(bad_server).unwrap_err().0, "bad_server_key");
        let line = serde_json::json!({"v":1,"event":"snapshot","server":"s-1","socket":"/tmp/x",
            "list":{"sessions":[{"windows":[{"panes":[pane("%1"), pane("bad")]}]}]}});
        match parse_line(line.to_string().as_bytes()).unwrap() {
            RemoteMsg::Snapshot {
                panes, rejected, ..
            } => {
                assert_eq!(panes.len(), 1);
                assert_eq!(rejected, vec!["bad_pane_id".to_string()]);
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn quoting_and_hosts() {
        assert_eq!(shell_quote("%3"), "%3");
        assert_eq!(shell_quote("$1"), "'$1'");
        assert_eq!(shell_quote("a'b; rm"), r"'a'\''b; rm'");
        assert!(host_ok("user@gpu-box"));
        assert!(!host_ok("-oProxyCommand=x"));
        assert!(!host_ok("a b"));
    }
}
