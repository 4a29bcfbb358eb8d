//! The CLI side of the local API (C-002 client API): server selection (`-L`/`-S` like tmux),
//! a small blocking client for the daemon's newline-delimited JSON socket, and the shared
//! rendering the client commands (`ls`, `watch`, `wait`, `explain`, `popup`) use, so every
//! surface shows the daemon's one read model the same way and none computes state itself.
use crate::exit::ExitCode;
use crate::paths::{ServerArg, ServerPaths};
use serde_json::{Value, json};
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `-L NAME` / `-S PATH`, as tmux (the daemon takes the same).
pub(crate) type ServerOpts = ServerArg;

#[derive(Debug)]
pub enum ClientError {
    /// No daemon answers on the API socket.
    NoDaemon(std::path::PathBuf, io::Error),
    Io(io::Error),
    /// The daemon answered with an error object.
    Api {
        code: String,
        message: String,
    },
    /// The daemon's answer was not what the protocol says.
    Protocol(String),
    Timeout,
    /// The socket's listener is another user (a squatted runtime dir): its answers are not
    /// trusted.
    Untrusted(std::path::PathBuf, u32),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoDaemon(p, e) => write!(
                f,
                "no agtmux daemon answers at {} ({e}); is the plugin loaded for this tmux server? \
                 (start one with `agtmux daemon -S <tmux socket>`, or run `agtmux doctor`)",
                p.display()
            ),
            ClientError::Io(e) => write!(f, "api: {e}"),
            ClientError::Api { code, message } => write!(f, "{code}: {message}"),
            ClientError::Protocol(s) => write!(f, "api protocol: {s}"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Untrusted(p, uid) => write!(
                f,
                "refusing the daemon at {}: it runs as uid {uid}, not as you (uid {}); another \
                 user may have created that directory first (see `agtmux doctor`)",
                p.display(),
                crate::sys::peercred::runtime_uid()
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            ClientError::Timeout
        } else {
            ClientError::Io(e)
        }
    }
}

fn api_error(msg: &Value) -> ClientError {
    let e = &msg["error"];
    ClientError::Api {
        code: e["code"].as_str().unwrap_or("?").to_string(),
        message: e["message"].as_str().unwrap_or("").to_string(),
    }
}

/// One connection to the daemon.
pub(crate) struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Conn {
    pub fn connect(sp: &ServerPaths) -> Result<Conn, ClientError> {
        let path = sp.api_socket();
        let s = UnixStream::connect(&path).map_err(|e| ClientError::NoDaemon(path.clone(), e))?;
        // Trust only a daemon of our own uid (or root, who could read our files anyway).
        {
            use std::os::fd::AsRawFd;
            let me = crate::sys::peercred::runtime_uid();
            match crate::sys::peercred::peer_cred(s.as_raw_fd()) {
                Ok(c) if c.uid == me || c.uid == 0 => {}
                Ok(c) => return Err(ClientError::Untrusted(path, c.uid)),
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let writer = s.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(s),
            writer,
            next_id: 1,
        })
    }

    /// Send one request and wait for its answer.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = json!({"v": 1, "id": id, "method": method, "params": params}).to_string();
        line.push('\n');
        if let Err(e) = self.writer.write_all(line.as_bytes()) {
            // A daemon that refused this connection (admission, too many clients) wrote why
            // before it closed: that reason beats "broken pipe".
            return Err(match self.read_message() {
                Ok(msg) if msg.get("error").is_some() => api_error(&msg),
                _ => e.into(),
            });
        }
        loop {
            let msg = self.read_message()?;
            if msg.get("event").is_some() {
                continue; // a push for an earlier subscription
            }
            let answer_id = msg.get("id").filter(|v| !v.is_null());
            if answer_id.is_none() && msg.get("error").is_some() {
                // An error about the connection itself (it was refused): the answer to us.
                return Err(api_error(&msg));
            }
            if answer_id.and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if msg.get("error").is_some() {
                return Err(api_error(&msg));
            }
            return msg
                .get("result")
                .cloned()
                .ok_or_else(|| ClientError::Protocol("answer without result".into()));
        }
    }

    /// How long `read_message` waits (`None` = forever).
    pub(crate) fn set_timeout(&mut self, t: Option<Duration>) -> Result<(), ClientError> {
        // A zero duration is an error for set_read_timeout; round up.
        let t = t.map(|d| d.max(Duration::from_millis(1)));
        self.reader.get_ref().set_read_timeout(t)?;
        Ok(())
    }

    /// The socket and whatever the reader already buffered past the last message (for a
    /// caller that goes on reading the pushes itself, non-blocking).
    pub(crate) fn into_parts(self) -> (UnixStream, Vec<u8>) {
        let buffered = self.reader.buffer().to_vec();
        (self.reader.into_inner(), buffered)
    }

    /// The next JSON line from the daemon.
    pub(crate) fn read_message(&mut self) -> Result<Value, ClientError> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            return Err(ClientError::Protocol("daemon closed the connection".into()));
        }
        serde_json::from_str(&line).map_err(|e| ClientError::Protocol(format!("bad JSON: {e}")))
    }
}

// ----- shared rendering ------------------------------------------------------------------

/// How long a one-shot tmux query may take: a stopped or wedged server accepts the connection
/// and never answers, and the user must get an answer, not a hang.
pub(crate) const TMUX_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a one-shot tmux query gave no output.
#[derive(Debug)]
pub(crate) enum TmuxError {
    /// No answer within [`TMUX_LIMIT`] (the server at this socket is stopped or wedged).
    NoAnswer(std::path::PathBuf),
    /// tmux could not be run, or failed: its stderr (or the spawn error).
    Failed(String),
}

impl fmt::Display for TmuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TmuxError::NoAnswer(socket) => write!(
                f,
                "tmux did not answer within {} s (is the server at {} stopped?)",
                TMUX_LIMIT.as_secs(),
                socket.display()
            ),
            TmuxError::Failed(e) => f.write_str(e),
        }
    }
}

/// `tmux -S SOCKET ARGS…` as an argument vector, waited for at most [`TMUX_LIMIT`]: stdout, or
/// why there is none.
pub(crate) fn tmux(socket: &Path, args: &[&str]) -> Result<String, TmuxError> {
    let mut cmd = Command::new("tmux");
    cmd.arg("-S").arg(socket).args(args).env_remove("TMUX");
    match crate::sys::bounded::output_within(&mut cmd, TMUX_LIMIT) {
        Err(e) => Err(TmuxError::Failed(e.to_string())),
        Ok(None) => Err(TmuxError::NoAnswer(socket.to_path_buf())),
        Ok(Some(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Some(out)) => Err(TmuxError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
    }
}

/// Is fd 1 a terminal? (Colour only then.)
pub(crate) fn stdout_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Urgency rank, most urgent first: approval, input, error, done, then the rest.
pub(crate) fn rank(p: &Value) -> u8 {
    match p["attention"].as_str() {
        Some("approval") => 0,
        Some("input") => 1,
        Some("error") => 2,
        Some("done") => 3,
        _ => 4,
    }
}

pub(crate) fn is_agent(p: &Value) -> bool {
    p["presence"] == "managed"
}

/// "5s", "3m", "2h", "4d".
pub fn age(now_ms: i64, since_ms: i64) -> String {
    let s = ((now_ms - since_ms) / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// SGR colour of a pane's state for terminal output.
pub(crate) fn state_color(p: &Value) -> &'static str {
    match (p["attention"].as_str(), p["state"].as_str()) {
        (Some("approval"), _) => "\x1b[1;31m",
        (Some("input"), _) => "\x1b[1;33m",
        (Some("error"), _) | (_, Some("error")) => "\x1b[31m",
        (Some("limit"), _) | (_, Some("limited")) => "\x1b[34m",
        (Some("done"), _) => "\x1b[32m",
        (_, Some("running")) => "\x1b[36m",
        _ => "\x1b[2m",
    }
}

/// A pane's title line as `ls` and the popup show it: the detail first when there is one
/// (`limit until 15:00 · title`, `retrying 3/10 · title`, `1 background · title`; issue 23),
/// control characters blanked.
pub(crate) fn title_line(p: &Value) -> String {
    let title = p["title"].as_str().unwrap_or("");
    let line = match p["detail"].as_str().filter(|d| !d.is_empty()) {
        Some(d) if title.is_empty() => d.to_string(),
        Some(d) => format!("{d} · {title}"),
        None => title.to_string(),
    };
    line.replace(['\n', '\r', '\x1b'], " ")
}

/// A session with its windows, each with its agent panes; ordered attention first.
#[derive(Debug, Clone)]
pub struct Group {
    pub session_id: String,
    pub session_name: String,
    pub windows: Vec<WindowGroup>,
}

#[derive(Debug, Clone)]
pub struct WindowGroup {
    pub window_id: String,
    pub window_index: Option<u64>,
    pub window_name: String,
    pub panes: Vec<Value>,
}

/// Agent panes of a `list` result, grouped sessions → windows → panes. Sessions, windows and
/// panes are ordered by their most urgent pane first, then in tmux's order; `keep` filters
/// panes (attention-only, text filter), and empty groups are dropped.
pub fn group(list: &Value, keep: &dyn Fn(&Value) -> bool) -> Vec<Group> {
    group_panes(list, false, keep)
}

/// [`group`], with the panes without an agent too when `all` (ranked with the calm agent
/// panes, in tmux order).
pub(crate) fn group_panes(list: &Value, all: bool, keep: &dyn Fn(&Value) -> bool) -> Vec<Group> {
    let mut out = Vec::new();
    for (si, s) in list["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut windows = Vec::new();
        for (wi, w) in s["windows"].as_array().into_iter().flatten().enumerate() {
            let mut panes: Vec<(usize, Value)> = w["panes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| (all || is_agent(p)) && keep(p))
                .cloned()
                .enumerate()
                .collect();
            if panes.is_empty() {
                continue;
            }
            panes.sort_by_key(|(i, p)| (rank(p), *i));
            let r = panes.iter().map(|(_, p)| rank(p)).min().unwrap_or(4);
            windows.push((
                r,
                wi,
                WindowGroup {
                    window_id: w["window_id"].as_str().unwrap_or("").to_string(),
                    window_index: w["window_index"].as_u64(),
                    window_name: w["window_name"].as_str().unwrap_or("").to_string(),
                    panes: panes.into_iter().map(|(_, p)| p).collect(),
                },
            ));
        }
        if windows.is_empty() {
            continue;
        }
        windows.sort_by_key(|(r, i, _)| (*r, *i));
        let r = windows[0].0;
        out.push((
            r,
            si,
            Group {
                session_id: s["session_id"].as_str().unwrap_or("").to_string(),
                session_name: s["session_name"].as_str().unwrap_or("").to_string(),
                windows: windows.into_iter().map(|(_, _, w)| w).collect(),
            },
        ));
    }
    out.sort_by_key(|(r, i, _)| (*r, *i));
    out.into_iter().map(|(_, _, g)| g).collect()
}

/// Apply a pushed event to a `list` result in place (used by `watch`, `wait` and the popup).
pub(crate) fn apply_event(list: &mut Value, ev: &Value) {
    match ev["event"].as_str() {
        Some("pane") => {
            let pane = &ev["pane"];
            let Some(id) = pane["pane_id"].as_str() else {
                return;
            };
            remove_pane(list, id);
            insert_pane(list, pane.clone());
        }
        Some("pane_removed") => {
            if let Some(id) = ev["pane_id"].as_str() {
                remove_pane(list, id);
            }
        }
        // One remote host's whole section (issue 24): replaces that host's entry.
        Some("remote_host") => {
            let host = &ev["host"];
            if !list["remotes"].is_array() {
                list["remotes"] = json!([]);
            }
            if let Some(hs) = list["remotes"].as_array_mut() {
                match hs.iter_mut().find(|h| h["host"] == host["host"]) {
                    Some(h) => *h = host.clone(),
                    None => hs.push(host.clone()),
                }
            }
            return;
        }
        _ => {}
    }
    if let Some(n) = ev["pane"]["since_ms"].as_i64()
        && list["now_ms"].as_i64().is_none_or(|x| x < n)
    {
        list["now_ms"] = json!(n);
    }
}

fn remove_pane(list: &mut Value, id: &str) {
    for s in list["sessions"].as_array_mut().into_iter().flatten() {
        for w in s["windows"].as_array_mut().into_iter().flatten() {
            if let Some(ps) = w["panes"].as_array_mut() {
                ps.retain(|p| p["pane_id"] != id);
            }
        }
    }
}

fn insert_pane(list: &mut Value, pane: Value) {
    if !list["sessions"].is_array() {
        list["sessions"] = json!([]);
    }
    let Some(sessions) = list["sessions"].as_array_mut() else {
        return;
    };
    let sid = pane["session_id"].clone();
    let wid = pane["window_id"].clone();
    let si = match sessions.iter().position(|s| s["session_id"] == sid) {
        Some(i) => i,
        None => {
            sessions.push(
                json!({"session_id": sid, "session_name": pane["session_name"], "windows": []}),
            );
            sessions.len() - 1
        }
    };
    let Some(windows) = sessions[si]["windows"].as_array_mut() else {
        return;
    };
    let wi = match windows.iter().position(|w| w["window_id"] == wid) {
        Some(i) => i,
        None => {
            windows.push(
                json!({"window_id": wid, "window_index": pane["window_index"],
                "window_name": pane["window_name"], "panes": []}),
            );
            windows.len() - 1
        }
    };
    if let Some(ps) = windows[wi]["panes"].as_array_mut() {
        ps.push(pane);
        ps.sort_by_key(|p| p["pane_index"].as_u64().unwrap_or(0));
    }
}

/// All panes of a `list` result, flat.
pub(crate) fn all_panes(list: &Value) -> Vec<&Value> {
    let mut v = Vec::new();
    for s in list["sessions"].as_array().into_iter().flatten() {
        for w in s["windows"].as_array().into_iter().flatten() {
            v.extend(w["panes"].as_array().into_iter().flatten());
        }
    }
    v
}

pub fn now_ms() -> i64 {
    crate::sys::clock::now_ms()
}

/// Print an error and return exit code 1 (or the given code).
/// One duration syntax for every option that takes one (`wait --timeout`, `demo --for`):
/// plain seconds (`2`, `1.5`), or a number with `ms`, `s`, `m` or `h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .into_iter()
        .find_map(|(suf, mul)| t.strip_suffix(suf).map(|n| (n, mul)))
        .unwrap_or((t, 1.0));
    let bad = || format!("{s:?} is not a duration (e.g. 2, 1.5s, 500ms, 10m, 1h)");
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 || !(n * unit).is_finite() {
        return Err(bad());
    }
    Duration::try_from_secs_f64(n * unit).map_err(|_| bad())
}

pub fn fail(e: &dyn fmt::Display, code: ExitCode) -> ExitCode {
    eprintln!("agtmux: {e}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_duration_syntax() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("10m"), Duration::from_secs(600));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "", "s", "-1", "-2s", "abc", "2x", "nan", "inf", "1e400", "2 s s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn pane(id: &str, s: &str, w: &str, att: Option<&str>) -> Value {
        json!({"pane_id": id, "session_id": s, "window_id": w, "presence": "managed",
               "attention": att, "state": "idle", "pane_index": 0})
    }

    #[test]
    fn groups_put_attention_first_and_skip_non_agents() {
        let list = json!({"sessions": [
            {"session_id": "$0", "session_name": "a", "windows": [
                {"window_id": "@0", "panes": [pane("%0", "$0", "@0", None)]}]},
            {"session_id": "$1", "session_name": "b", "windows": [
                {"window_id": "@1", "panes": [
                    {"pane_id": "%9", "presence": "unmanaged"},
                    pane("%1", "$1", "@1", Some("approval"))]}]},
            {"session_id": "$2", "session_name": "c", "windows": [
                {"window_id": "@2", "panes": [{"pane_id": "%2", "presence": "unmanaged"}]}]},
        ]});
        let g = group(&list, &|_| true);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].session_name, "b");
        assert_eq!(g[0].windows[0].panes.len(), 1);
        let g = group(&list, &|p| rank(p) < 4);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn events_update_a_list() {
        let mut list = json!({"sessions": []});
        apply_event(
            &mut list,
            &json!({"event": "pane", "pane": pane("%3", "$0", "@0", Some("input"))}),
        );
        assert_eq!(all_panes(&list).len(), 1);
        apply_event(
            &mut list,
            &json!({"event": "pane", "pane": pane("%3", "$0", "@0", None)}),
        );
        assert_eq!(all_panes(&list).len(), 1);
        assert_eq!(all_panes(&list)[0]["attention"], Value::Null);
        apply_event(
            &mut list,
            &json!({"event": "pane_removed", "pane_id": "%3"}),
        );
        assert!(all_panes(&list).is_empty());
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(10_000, 5_000), "5s");
        assert_eq!(age(4_000_000, 0), "1h");
        assert_eq!(age(0, 5_000), "0s");
    }
}
