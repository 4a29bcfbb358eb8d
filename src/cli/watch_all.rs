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
            for (key, api) in local_sockets() {
                if servers.contains_key(&key) {
                    continue;
                }
                let Some((socket, list, stream, buf)) = open(&api) else {
                    continue;
                };
                if !emit(&mut out, &snapshot_line(&key, &socket, &list)) {
                    return ExitCode::Ok;
                }
                servers.insert(key, Server { stream, buf });
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
        // Lines already buffered (from the subscribe answer's read) first.
        let keys: Vec<String> = servers.keys().cloned().collect();
        let mut gone = Vec::new();
        let fds: Vec<i32> = keys
            .iter()
            .filter_map(|k| servers.get(k).map(|s| s.stream.as_raw_fd()))
            .collect();
        let wait = (next_scan.min(next_alive) - now).clamp(0, 1_000) as i32;
        let any_buffered = servers.values().any(|s| s.buf.contains(&b'\n'));
        let ready = if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(wait as u64));
            Vec::new()
        } else {
            match crate::sys::fd::poll_readable(&fds, if any_buffered { 0 } else { wait }) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return ExitCode::Failure,
            }
        };
        for (i, key) in keys.iter().enumerate() {
            let Some(s) = servers.get_mut(key) else {
                continue;
            };
            if ready.get(i).is_some_and(|r| r.any()) {
                let mut b = [0u8; 65536];
                loop {
                    match s.stream.read(&mut b) {
                        Ok(0) => {
                            gone.push(key.clone());
                            break;
                        }
                        Ok(n) => s.buf.extend_from_slice(&b[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            gone.push(key.clone());
                            break;
                        }
                    }
                }
            }
            while let Some(pos) = s.buf.iter().position(|c| *c == b'\n') {
                let line: Vec<u8> = s.buf.drain(..=pos).collect();
                if let Some(v) = forward(key, &line[..line.len() - 1])
                    && !emit(&mut out, &v)
                {
                    return ExitCode::Ok;
                }
            }
            if s.buf.len() > MAX_PUSH_LINE {
                s.buf.clear();
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
