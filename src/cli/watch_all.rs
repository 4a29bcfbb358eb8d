//! `agtmux watch --json --all` (issue 24): one stream of every tmux server's daemon on this
//! machine, the remote end of `ssh HOST agtmux watch --json --all` (docs/api.md "Remote
//! stream"; the format is parsed by `sources::remote`).
//!
//! WHY one stream for all servers: the local daemon runs one `ssh` per host, not one per
//! remote tmux server, and the runtime dir holds one API socket per server. This command
//! subscribes to each of them, tags every line with its server's key, finds servers that
//! start later (a readdir every [`RESCAN_MS`], no fork), says `server_gone` for one that
//! ends, and prints `alive` every [`ALIVE_MS`] so the far side can tell a quiet link from a
//! dead one. It never forwards a daemon's own `remotes`: hosts do not chain.
use super::client::Conn;
use crate::exit::ExitCode;
use crate::paths::{self, ServerPaths};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

const RESCAN_MS: i64 = 2_000;
const ALIVE_MS: i64 = 5_000;
/// A daemon's push line longer than this is dropped (the API's own cap is 4 MiB queued).
const MAX_PUSH_LINE: usize = 1024 * 1024;

struct Server {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// API sockets in the runtime dir, by server key.
pub(crate) fn local_sockets() -> Vec<(String, std::path::PathBuf)> {
    let root = paths::runtime_root();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&root) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(key) = name.strip_suffix(".sock")
            && crate::sources::remote::server_key_ok(key)
        {
            out.push((key.to_string(), e.path()));
        }
    }
    out.sort();
    out
}

/// Connect to one server's daemon: `(its tmux socket, its list, the push stream)`.
fn open(api: &std::path::Path) -> Option<(String, Value, UnixStream, Vec<u8>)> {
    let sp = ServerPaths {
        socket: std::path::PathBuf::new(),
        key: String::new(),
        runtime_dir: api.parent()?.to_path_buf(),
        state_dir: std::path::PathBuf::new(),
    };
    // `Conn::connect` names the socket by key: build the paths so that it is `api`.
    let key = api.file_stem()?.to_string_lossy().into_owned();
    let sp = ServerPaths { key, ..sp };
    let mut c = Conn::connect(&sp).ok()?;
    c.set_timeout(Some(Duration::from_secs(3))).ok()?;
    let health = c.request("health", json!({})).ok()?;
    let socket = health["tmux"]["socket"].as_str().unwrap_or("").to_string();
    let sub = c.request("subscribe", json!({})).ok()?;
    let (stream, buf) = c.into_parts();
    stream.set_nonblocking(true).ok()?;
    Some((socket, sub["list"].clone(), stream, buf))
}

fn emit(out: &mut impl Write, v: &Value) -> bool {
    writeln!(out, "{v}").and_then(|_| out.flush()).is_ok()
}

fn snapshot_line(key: &str, socket: &str, list: &Value) -> Value {
    json!({"v": 1, "event": "snapshot", "server": key, "socket": socket,
        "list": {"sessions": list["sessions"], "now_ms": list["now_ms"],
                 "daemon_version": list["daemon_version"]}})
}

/// Re-tag a daemon's push for the stream; `None` for anything else.
fn forward(key: &str, line: &[u8]) -> Option<Value> {
    if line.len() > MAX_PUSH_LINE {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    match v["event"].as_str()? {
        "pane" => Some(json!({"v": 1, "event": "pane", "server": key, "pane": v["pane"]})),
        "pane_removed" => {
            Some(json!({"v": 1, "event": "pane_removed", "server": key, "pane_id": v["pane_id"]}))
        }
        _ => None,
    }
}

pub fn run() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let hello = json!({"v": 1, "event": "hello", "agtmux": crate::daemon::handover::version(),
        "protocol": crate::sources::remote::PROTOCOL});
    if !emit(&mut out, &hello) {
        return ExitCode::Ok;
    }
    let mut servers: BTreeMap<String, Server> = BTreeMap::new();
    let mut synced = false;
    let mut next_scan = 0i64;
    let mut next_alive = super::client::now_ms() + ALIVE_MS;
    loop {
        let now = super::client::now_ms();
        if now >= next_scan {
            next_scan = now + RESCAN_MS;
            if !add_new_servers(&mut out, &mut servers) {
                return ExitCode::Ok;
            }
            if !synced {
                synced = true;
                if !emit(&mut out, &json!({"v": 1, "event": "synced"})) {
                    return ExitCode::Ok;
                }
            }
        }
        if now >= next_alive {
            next_alive = now + ALIVE_MS;
            if !emit(&mut out, &json!({"v": 1, "event": "alive", "now_ms": now})) {
                return ExitCode::Ok;
            }
        }
        let keys: Vec<String> = servers.keys().cloned().collect();
        let wait = (next_scan.min(next_alive) - now).clamp(0, 1_000) as i32;
        let ready = match wait_readable(&servers, &keys, wait) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return ExitCode::Failure,
        };
        let mut gone = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let Some(s) = servers.get_mut(key) else {
                continue;
            };
            if ready.get(i).is_some_and(|r| r.any()) && !s.read_available() {
                gone.push(key.clone());
            }
            if !s.forward_lines(key, &mut out) {
                return ExitCode::Ok;
            }
        }
        for key in gone {
            servers.remove(&key);
            if !emit(
                &mut out,
                &json!({"v": 1, "event": "server_gone", "server": key}),
            ) {
                return ExitCode::Ok;
            }
        }
    }
}

/// Subscribes to the daemons of servers not followed yet, each announced by its snapshot
/// line. False: stdout is closed.
fn add_new_servers(out: &mut impl Write, servers: &mut BTreeMap<String, Server>) -> bool {
    for (key, api) in local_sockets() {
        if servers.contains_key(&key) {
            continue;
        }
        let Some((socket, list, stream, buf)) = open(&api) else {
            continue;
        };
        if !emit(out, &snapshot_line(&key, &socket, &list)) {
            return false;
        }
        servers.insert(key, Server { stream, buf });
    }
    true
}

/// Waits up to `wait_ms` for the streams of `keys` (in that order); lines already buffered
/// (from the subscribe answer's read) are not waited for. No server: just sleeps.
fn wait_readable(
    servers: &BTreeMap<String, Server>,
    keys: &[String],
    wait_ms: i32,
) -> std::io::Result<Vec<crate::sys::fd::Ready>> {
    let fds: Vec<i32> = keys
        .iter()
        .filter_map(|k| servers.get(k).map(|s| s.stream.as_raw_fd()))
        .collect();
    let any_buffered = servers.values().any(|s| s.buf.contains(&b'\n'));
    if fds.is_empty() {
        std::thread::sleep(Duration::from_millis(wait_ms as u64));
        return Ok(Vec::new());
    }
    crate::sys::fd::poll_readable(&fds, if any_buffered { 0 } else { wait_ms })
}

impl Server {
    /// Reads what the daemon sent into `buf`. False: its stream ended or failed.
    fn read_available(&mut self) -> bool {
        let mut b = [0u8; 65536];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return false,
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    /// Forwards the complete lines in `buf`, tagged with `key`; an unfinished line longer
    /// than [`MAX_PUSH_LINE`] is dropped. False: stdout is closed.
    fn forward_lines(&mut self, key: &str, out: &mut impl Write) -> bool {
        while let Some(pos) = self.buf.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            if let Some(v) = forward(key, &line[..line.len() - 1])
                && !emit(out, &v)
            {
                return false;
            }
        }
        if self.buf.len() > MAX_PUSH_LINE {
            self.buf.clear();
        }
        true
    }
}
