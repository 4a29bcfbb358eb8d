//! C-004 test support: a stand-in for the Codex managed app-server daemon. It listens on a Unix
//! socket, speaks the server side of the WebSocket upgrade and frames (`sources::ws`), answers
//! `initialize`, `thread/loaded/list` and `thread/resume`, and replays the server→client
//! messages (`"dir": "recv"`) of a recorded stream (`fixtures/codex/appserver/*.jsonl`) with
//! their recorded spacing divided by `speed`.
//!
//! WHY: the observer must be tested against the real wire format (recorded from codex-cli 0.169)
//! without installing a 400 MB binary or a model. Recorded responses are not replayed as such
//! (their ids belong to the recording's client); instead the server answers the observer's own
//! requests: `thread/loaded/list` with the ids of the recording's first loaded-list response,
//! `thread/resume` with the recording's resume result for that thread when there is one
//! (otherwise the recorded "no rollout found" error). Server requests (approvals) are replayed
//! and never expect an answer. A resume result carries the thread's status as of now, as a real
//! server's does: the latest status this connection replayed for that thread, if any, replaces
//! the recorded one (a resume answered after a replayed `turn/started` must not say "idle").
//!
//! Blocking and std-only: run it on a thread ([`TestServer::spawn`]) or in a child process
//! ([`run_test_server`]). [`Faults`] make it misbehave the ways a real server can: drop every
//! connection right after the handshake (a crash loop, seen from the client), or stop
//! answering pings (hung).
use super::ws::{self, Decoder, Opcode, WsMessage};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Test server errors.
#[derive(Debug)]
pub enum TestServerError {
    Io(io::Error),
    /// The recorded stream could not be read or parsed.
    Stream(String),
}

impl fmt::Display for TestServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestServerError::Io(e) => write!(f, "test app-server I/O error: {e}"),
            TestServerError::Stream(s) => write!(f, "test app-server stream error: {s}"),
        }
    }
}

impl std::error::Error for TestServerError {}

impl From<io::Error> for TestServerError {
    fn from(e: io::Error) -> Self {
        TestServerError::Io(e)
    }
}

/// A parsed recording.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// (offset ms from the first line, message) for every replayable server message.
    pub replay: Vec<(u64, Value)>,
    pub loaded: Vec<String>,
    pub(crate) resume_ok: HashMap<String, Value>,
}

fn parse_ts(ts: &str) -> Option<u64> {
    let (hms, ms) = ts.split_once('.')?;
    let mut it = hms.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, s) = (it.next()??, it.next()??, it.next()??);
    Some(((h * 60 + m) * 60 + s) * 1000 + ms.parse::<u64>().ok()?)
}

/// Reads a recorded stream (`{"ts","dir","msg"}` lines).
pub fn load_recording(path: &Path) -> Result<Recording, TestServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TestServerError::Stream(format!("{}: {e}", path.display())))?;
    let mut rec = Recording::default();
    let mut sent: HashMap<i64, (String, Option<String>)> = HashMap::new();
    let mut t0: Option<u64> = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| TestServerError::Stream(format!("line {}: {e}", n + 1)))?;
        let ts = v
            .get("ts")
            .and_then(Value::as_str)
            .and_then(parse_ts)
            .unwrap_or(0);
        let t0v = *t0.get_or_insert(ts);
        let msg = v.get("msg").cloned().unwrap_or(Value::Null);
        match v.get("dir").and_then(Value::as_str) {
            Some("send") => {
                if let (Some(id), Some(m)) = (
                    msg.get("id").and_then(Value::as_i64),
                    msg.get("method").and_then(Value::as_str),
                ) {
                    let tid = msg
                        .pointer("/params/threadId")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    sent.insert(id, (m.to_string(), tid));
                }
            }
            Some("recv") => {
                let is_response = msg.get("method").is_none() && msg.get("id").is_some();
                if !is_response {
                    rec.replay.push((ts.saturating_sub(t0v), msg));
                    continue;
                }
                let Some((m, tid)) = msg
                    .get("id")
                    .and_then(Value::as_i64)
                    .and_then(|i| sent.get(&i))
                else {
                    continue;
                };
                if m == "thread/loaded/list" && rec.loaded.is_empty() {
                    if let Some(a) = msg.pointer("/result/data").and_then(Value::as_array) {
                        rec.loaded = a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect();
                    }
                } else if m == "thread/resume"
                    && let (Some(tid), Some(r)) = (tid, msg.get("result"))
                {
                    rec.resume_ok
                        .entry(tid.clone())
                        .or_insert_with(|| r.clone());
                }
            }
            _ => {}
        }
    }
    Ok(rec)
}

/// Ways to misbehave (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    /// Answer `initialize`, then close the connection.
    pub(crate) close_after_initialize: bool,
    /// Never answer a ping.
    pub(crate) ignore_pings: bool,
}

/// Serves clients forever (each one gets the whole replay). For a child process.
pub(crate) fn run_test_server(
    sock: &Path,
    stream: &Path,
    speed: f64,
    faults: Faults,
) -> Result<(), TestServerError> {
    let rec = load_recording(stream)?;
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock)?;
    serve_on(
        listener,
        Replay {
            rec: &rec,
            speed,
            faults,
            stop: &AtomicBool::new(false),
            seen: &Mutex::new(Vec::new()),
        },
    )
}

/// A test server on a background thread; [`TestServer::stop`] shuts it down.
pub struct TestServer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Value>>>,
    join: Option<JoinHandle<Result<(), TestServerError>>>,
    sock: PathBuf,
}

impl TestServer {
    /// Binds `sock` now (so a client can connect as soon as this returns) and serves on a thread.
    pub fn spawn(sock: &Path, rec: Recording, speed: f64) -> Result<Self, TestServerError> {
        let _ = std::fs::remove_file(sock);
        let listener = UnixListener::bind(sock)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let join = std::thread::spawn(move || {
            serve_on(
                listener,
                Replay {
                    rec: &rec,
                    speed,
                    faults: Faults::default(),
                    stop: &s2,
                    seen: &seen2,
                },
            )
        });
        Ok(TestServer {
            stop,
            seen,
            join: Some(join),
            sock: sock.to_path_buf(),
        })
    }

    /// Every JSON message the clients sent so far, in order.
    pub fn client_messages(&self) -> Vec<Value> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops serving, drops the client connection and removes the socket file.
    pub fn stop(mut self) -> Result<(), TestServerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), TestServerError> {
        self.stop.store(true, Ordering::SeqCst);
        let r = match self.join.take() {
            Some(j) => j
                .join()
                .unwrap_or_else(|_| Err(TestServerError::Stream("server thread panicked".into()))),
            None => Ok(()),
        };
        let _ = std::fs::remove_file(&self.sock);
        r
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// What serving replays, and to whom it reports.
#[derive(Clone, Copy)]
struct Replay<'a> {
    rec: &'a Recording,
    /// The recorded spacing is divided by this (not finite or <= 0: no waiting).
    speed: f64,
    faults: Faults,
    /// Set: stop serving.
    stop: &'a AtomicBool,
    /// Every JSON message the clients sent.
    seen: &'a Mutex<Vec<Value>>,
}

fn serve_on(listener: UnixListener, r: Replay<'_>) -> Result<(), TestServerError> {
    listener.set_nonblocking(true)?;
    while !r.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                if let Err(e) = serve_client(s, r) {
                    log::debug!("test app-server: client ended: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn send(s: &mut UnixStream, v: &Value) -> io::Result<()> {
    s.write_all(&ws::encode_frame(
        true,
        Opcode::Text,
        v.to_string().as_bytes(),
        None,
    ))
}

/// One read with the socket's short timeout: `None` when the client closed, else how many
/// bytes came (0 when none came in time).
fn read_some(s: &mut UnixStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match s.read(buf) {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Some(0))
        }
        Err(e) => Err(e),
    }
}

fn serve_client(mut s: UnixStream, r: Replay<'_>) -> Result<(), TestServerError> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut buf = [0u8; 64 * 1024];
    let mut dec = Decoder::server();
    if !upgrade(&mut s, &mut buf, &mut dec, r.stop)? {
        return Ok(());
    }
    let mut session = Session::default();
    loop {
        if r.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !session.answer_messages(&mut s, &mut dec, r)? {
            return Ok(());
        }
        session.replay_due(&mut s, r)?;
        match read_some(&mut s, &mut buf)? {
            None => return Ok(()),
            Some(n) => dec.feed(&buf[..n]),
        }
    }
}

/// Reads the client's WebSocket upgrade request and answers it; the bytes after the request
/// go to `dec`. False: told to stop, or the client went away first.
fn upgrade(
    s: &mut UnixStream,
    buf: &mut [u8],
    dec: &mut Decoder,
    stop: &AtomicBool,
) -> Result<bool, TestServerError> {
    let mut head = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match read_some(s, buf)? {
            None => return Ok(false),
            Some(n) => head.extend_from_slice(&buf[..n]),
        }
        match ws::parse_handshake_request(&head) {
            Ok(Some((n, key))) => {
                s.write_all(&ws::server_handshake_response(&key))?;
                dec.feed(&head[n..]);
                return Ok(true);
            }
            Ok(None) => {}
            Err(e) => return Err(TestServerError::Stream(e.to_string())),
        }
    }
}

/// One connection's replay: its clock, how far it got, and what it told.
#[derive(Default)]
struct Session {
    /// When the client sent `initialized`: the recorded spacing counts from then.
    started: Option<Instant>,
    /// The next recorded message to replay.
    next: usize,
    /// Each thread's status as of the last replayed message that told it.
    status: HashMap<String, Value>,
}

impl Session {
    /// Answers every complete message the client sent. False: the connection ends (the
    /// client closed it, or a fault closes it).
    fn answer_messages(
        &mut self,
        s: &mut UnixStream,
        dec: &mut Decoder,
        r: Replay<'_>,
    ) -> Result<bool, TestServerError> {
        while let Some(m) = dec
            .next_message()
            .map_err(|e| TestServerError::Stream(e.to_string()))?
        {
            let go_on = match m {
                WsMessage::Text(t) => self.on_text(s, &t, r)?,
                WsMessage::Ping(_) if r.faults.ignore_pings => true,
                WsMessage::Ping(p) => {
                    s.write_all(&ws::encode_frame(true, Opcode::Pong, &p, None))?;
                    true
                }
                WsMessage::Close { .. } => false,
                _ => true,
            };
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One JSON message from the client: noted in `seen`, answered if it is a request.
    /// False: the `close_after_initialize` fault ends the connection.
    fn on_text(
        &mut self,
        s: &mut UnixStream,
        t: &str,
        r: Replay<'_>,
    ) -> Result<bool, TestServerError> {
        let Ok(v) = serde_json::from_str::<Value>(t) else {
            return Ok(true);
        };
        if let Ok(mut g) = r.seen.lock() {
            g.push(v.clone());
        }
        if v.get("method").and_then(Value::as_str) == Some("initialized") {
            self.started.get_or_insert_with(Instant::now);
        }
        if let Some(reply) = answer(&v, r.rec, &self.status) {
            send(s, &reply)?;
        }
        Ok(!(r.faults.close_after_initialize
            && v.get("method").and_then(Value::as_str) == Some("initialize")))
    }

    /// Sends the recorded messages that are due by now (nothing before `initialized`).
    fn replay_due(&mut self, s: &mut UnixStream, r: Replay<'_>) -> io::Result<()> {
        let Some(t0) = self.started else {
            return Ok(());
        };
        let elapsed = t0.elapsed().as_millis() as f64;
        while let Some((off, msg)) = r.rec.replay.get(self.next) {
            let due = if r.speed.is_finite() && r.speed > 0.0 {
                *off as f64 / r.speed
            } else {
                0.0
            };
            if due > elapsed {
                break;
            }
            send(s, msg)?;
            note_status(msg, &mut self.status);
            self.next += 1;
        }
        Ok(())
    }
}

/// Remember the thread status a replayed notification tells (`thread/started`,
/// `thread/status/changed`).
fn note_status(msg: &Value, status: &mut HashMap<String, Value>) {
    let (tid, st) = match msg.get("method").and_then(Value::as_str) {
        Some("thread/started") => (
            msg.pointer("/params/thread/id"),
            msg.pointer("/params/thread/status"),
        ),
        Some("thread/status/changed") => (
            msg.pointer("/params/threadId"),
            msg.pointer("/params/status"),
        ),
        _ => return,
    };
    if let (Some(tid), Some(st)) = (tid.and_then(Value::as_str), st) {
        status.insert(tid.to_string(), st.clone());
    }
}

/// The reply to a client request, `None` for notifications. `status`: each thread's current
/// status on this connection, which a resume result reports instead of the recorded one.
fn answer(v: &Value, rec: &Recording, status: &HashMap<String, Value>) -> Option<Value> {
    let id = v.get("id")?.clone();
    let method = v.get("method").and_then(Value::as_str).unwrap_or("");
    Some(match method {
        "initialize" => json!({"id": id, "result": {
            "userAgent": "agtmux-test-app-server/0.169.0",
            "codexHome": "/home/dev/.codex",
            "platformFamily": "unix",
            "platformOs": "linux"
        }}),
        "thread/loaded/list" => {
            json!({"id": id, "result": {"data": rec.loaded, "nextCursor": null}})
        }
        "thread/resume" => {
            let tid = v
                .pointer("/params/threadId")
                .and_then(Value::as_str)
                .unwrap_or("");
            match rec.resume_ok.get(tid) {
                Some(r) => {
                    let mut r = r.clone();
                    if let (Some(now), Some(slot)) =
                        (status.get(tid), r.pointer_mut("/thread/status"))
                    {
                        *slot = now.clone();
                    }
                    json!({"id": id, "result": r})
                }
                None => json!({"id": id, "error": {
                    "code": -32600,
                    "message": format!("no rollout found for thread id {tid}")
                }}),
            }
        }
        _ => {
            json!({"id": id, "error": {"code": -32601, "message": format!("method not found: {method}")}})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(
            parse_ts("18:01:34.717"),
            Some(((18 * 60 + 1) * 60 + 34) * 1000 + 717)
        );
        assert_eq!(parse_ts("bad"), None);
    }

    #[test]
    fn a_resume_result_reports_the_status_replayed_last() {
        let mut rec = Recording::default();
        rec.resume_ok.insert(
            "t1".into(),
            json!({"thread": {"id": "t1", "status": {"type": "idle"}}}),
        );
        let req = json!({"id": 7, "method": "thread/resume", "params": {"threadId": "t1"}});
        let st = |r: &Value| r.pointer("/result/thread/status/type").cloned();
        let mut status = HashMap::new();
        assert_eq!(
            st(&answer(&req, &rec, &status).unwrap()),
            Some(json!("idle"))
        );
        note_status(
            &json!({"method": "thread/status/changed", "params": {"threadId": "t1",
                "status": {"type": "active", "activeFlags": []}}}),
            &mut status,
        );
        assert_eq!(
            st(&answer(&req, &rec, &status).unwrap()),
            Some(json!("active"))
        );
        // Another thread's status changes nothing for t1.
        note_status(
            &json!({"method": "thread/started", "params": {"thread": {"id": "t2",
                "status": {"type": "idle"}}}}),
            &mut status,
        );
        assert_eq!(
            st(&answer(&req, &rec, &status).unwrap()),
            Some(json!("active"))
        );
    }
}
