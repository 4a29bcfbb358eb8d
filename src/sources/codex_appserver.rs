//! C-004: the Codex app-server observer. It connects to the managed app-server daemon's control
//! socket (`$CODEX_HOME/app-server-control/app-server-control.sock`, WebSocket framing, see
//! `sources::ws`), performs `initialize`/`initialized`, lists loaded threads, subscribes to each
//! real thread with `thread/resume` (retried: it fails with "no rollout found" until the thread's
//! first turn) and turns what it hears into [`NormalizedEvent`]s behind the [`Source`] pull
//! interface.
//!
//! WHY an observer and not hooks alone: Codex hooks run inside the shared daemon, so their
//! `$TMUX_PANE` is the pane of whichever TUI started the daemon; and no hook fires for API errors.
//! The daemon itself tells every connection about every thread's status (observed on codex-cli).
//!
//! Design rules (from recorded app-server sessions):
//! - It lives inside the daemon's single mio edge-triggered loop: [`CodexObserver::on_readable`]
//!   and [`CodexObserver::on_writable`] drain until `WouldBlock`; [`CodexObserver::tick`] runs
//!   timers (reconnect with backoff, resume retries, handshake and mid-frame stall timeouts);
//!   [`CodexObserver::next_deadline`] tells the loop when to call it. No threads, no blocking.
//! - It NEVER answers a server request (approvals, user-input questions): the TUI does.
//! - Title-generation threads (`ephemeral: true`, `threadSource: "thread_title"`, no rollout)
//!   and sub-agent threads (`parentThreadId`) produce only `Signal::Ignore` events.
//! - Events are scoped by turn id: a `turn/completed` or `error` of an older turn never ends a
//!   newer one. An error stays until the next turn starts (a later `idle` is ignored).
//! - `thread/closed` means no client holds the thread any more (its TUI exited or switched
//!   thread); the server also unloads idle title threads this way. Real threads map to
//!   `SessionEnd` for that thread, title threads to `Ignore`.
//! - Delta notifications are opted out at `initialize` (`optOutNotificationMethods`) and, should
//!   a server send them anyway, dropped after peeking at the method name only.
//!
//! Event ids are content-derived so a reconnect that re-delivers a message gives the same id:
//! `cxa-<fnv1a64_parts(thread | method | turn | discriminator)>` where the discriminator is the
//! message's `emittedAtMs` when present, the server request id + item id for server requests,
//! `updatedAt` + status for thread snapshots (resume results), and only as a last resort a
//! per-thread counter. The pull cursor is a sequence number that starts at `now_ms * 1000` when
//! the observer is created, so cursors stay monotonic across daemon restarts.
use super::seq_queue::SeqQueue;
use super::ws::{ClientConn, MAX_MESSAGE, WsError, WsMessage};
use super::{Batch, Pulled, Source};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::extras::{EventExtra, Work};
use crate::core::hash::fnv1a64_parts;
use crate::core::text::clip;
use crate::core::types::{Activity, Health, Millis, Provider, SourceKind};
use mio::net::UnixStream;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Client name sent in `initialize`.
pub(crate) const CLIENT_NAME: &str = "agtmux";
const BACKOFF_MIN_MS: Millis = 500;
const BACKOFF_MAX_MS: Millis = 30_000;
/// A connection that lived this long resets the backoff.
const STABLE_MS: Millis = 30_000;
const HANDSHAKE_TIMEOUT_MS: Millis = 10_000;
/// A frame that stays incomplete this long resets the connection.
const STALL_TIMEOUT_MS: Millis = 30_000;
/// Resume retry schedule after a failure (ms); after the last one the thread is parked until
/// it becomes active again.
const RESUME_RETRY_MS: &[Millis] = &[500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
const MAX_QUEUE: usize = 20_000;
const MAX_THREADS: usize = 2_048;
const MAX_RAW: usize = 64 << 10;
const MAX_PROBLEMS: usize = 64;

/// Notifications we ask the server not to send: token streams and chatter that carry no state.
pub(crate) const OPT_OUT_NOTIFICATIONS: &[&str] = &[
    "item/agentMessage/delta",
    "item/plan/delta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded",
    "item/reasoning/textDelta",
    "item/commandExecution/outputDelta",
    "item/fileChange/outputDelta",
    "command/exec/outputDelta",
    "process/outputDelta",
    "thread/tokenUsage/updated",
    "account/rateLimits/updated",
    "thread/realtime/item/transcript/delta",
    "thread/realtime/transcript/delta",
    "thread/realtime/outputAudio/delta",
    "fuzzyFileSearch/sessionUpdated",
];

/// Known notifications that carry nothing for pane state; dropped without an event.
const QUIET_METHODS: &[&str] = &[
    "thread/tokenUsage/updated",
    "account/rateLimits/updated",
    "hook/started",
    "hook/completed",
    "thread/readState/changed",
    "thread/goal/updated",
    "thread/goal/cleared",
    "thread/prediction/updated",
    "thread/queue/changed",
    "thread/settings/updated",
    "thread/section/changed",
    "thread/attachment/updated",
    "thread/project/updated",
    "thread/environment/connected",
    "thread/environment/disconnected",
    "thread/compacted",
    "turn/diff/updated",
    "turn/plan/updated",
    "turn/moderationMetadata",
    "item/mcpToolCall/progress",
    "item/fileChange/patchUpdated",
    "item/commandExecution/terminalInteraction",
    "item/autoApprovalReview/started",
    "item/autoApprovalReview/completed",
    "process/exited",
    "configWarning",
    "deprecationNotice",
    "warning",
    "guardianWarning",
    "remoteControl/status/changed",
    "skills/changed",
    "project/changed",
    "app/list/updated",
    "account/updated",
    "account/login/completed",
    "account/gatewayOAuth/changed",
    "mcpServer/startupStatus/updated",
    "mcpServer/oauthLogin/completed",
    "mcpServer/event/stream/notification",
    "model/rerouted",
    "model/verification",
    "model/safetyBuffering/updated",
    "modelProvider/authRecoveryStarted",
    "modelProvider/authRecoveryCompleted",
    "fuzzyFileSearch/sessionCompleted",
    "externalAgentConfig/import/progress",
    "externalAgentConfig/import/completed",
    "fs/changed",
    "windows/worldWritableWarning",
    "windowsSandbox/setupCompleted",
];

/// How a connection attempt or an open connection ended. In supervised mode
/// ([`CodexObserver::set_supervised`]) the observer schedules nothing itself: the owner reads
/// this with [`CodexObserver::take_end`] and decides (Flow-011 restart contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnEnd {
    pub kind: EndKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndKind {
    /// Nothing listens at the path: no socket file, or one left by a daemon that is gone
    /// (`ENOENT`, `ECONNREFUSED`). Codex is simply not running; that is no failure.
    Unreachable,
    /// The listener is not the uid it must be (`SO_PEERCRED`): refused before a byte is read.
    PeerRejected { peer_uid: u32 },
    /// `connect` failed otherwise (`EACCES`, `EAGAIN` on a full backlog, ...).
    ConnectFailed,
    /// An open connection ended: EOF, a read/write error, a protocol error or a timeout.
    Lost { lived_ms: Millis, initialized: bool },
}

/// Observer errors.
#[derive(Debug)]
pub enum CodexError {
    /// Connecting to the control socket failed.
    Connect { path: PathBuf, err: io::Error },
}

impl fmt::Display for CodexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodexError::Connect { path, err } => {
                write!(
                    f,
                    "cannot connect to Codex app-server at {}: {err}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for CodexError {}

/// What the observer knows about one thread (also the input for `codex_correlate`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadFacts {
    pub thread_id: String,
    pub cwd: Option<String>,
    /// Ephemeral / title-generation thread: never shown in a pane.
    pub ephemeral: bool,
    /// A sub-agent thread (`parentThreadId` set).
    pub(crate) subagent: bool,
    pub title: Option<String>,
    /// The latest user prompt (userMessage item, or the thread preview).
    pub last_prompt: Option<String>,
    pub(crate) last_prompt_ts: Option<Millis>,
    pub(crate) current_turn: Option<String>,
    pub(crate) turn_in_progress: bool,
    pub(crate) turn_started_ts: Option<Millis>,
    pub(crate) turn_ended_ts: Option<Millis>,
    /// The turn whose error is still shown (cleared by the next turn).
    pub(crate) error_turn: Option<String>,
    pub(crate) error_sticky: bool,
    pub closed: bool,
    /// `thread/resume` succeeded on the current connection.
    pub subscribed: bool,
    pub(crate) last_activity: Option<Activity>,
    counter: u64,
    resume: ResumeState,
    /// Turn ids that already completed (most recent last), to drop late duplicates.
    done_turns: VecDeque<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ResumeState {
    /// Not tried on this connection (or re-armed).
    #[default]
    Due,
    /// Waiting for the response (attempt index).
    InFlight(usize),
    /// Retry at this time; the index is the delay to use if that attempt fails too.
    RetryAt(Millis, usize),
    /// Gave up until the thread becomes active again.
    Parked,
    /// Subscribed, or never to be resumed (ephemeral).
    Done,
}

#[derive(Debug, Clone)]
enum Pending {
    Initialize,
    LoadedList,
    Resume(String),
}

struct Conn {
    stream: UnixStream,
    ws: ClientConn,
    opened_at: Millis,
    initialize_sent: bool,
    initialized: bool,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    mid_since: Option<Millis>,
    /// Last time any byte arrived (the heartbeat) and the last ping we sent.
    last_rx: Millis,
    last_ping: Millis,
    peer: Option<crate::sys::peercred::PeerCred>,
}

/// The non-blocking observer state machine. See the module doc.
pub struct CodexObserver {
    sock_path: PathBuf,
    conn: Option<Conn>,
    new_stream: bool,
    reconnect_at: Option<Millis>,
    backoff: Millis,
    threads: HashMap<String, ThreadFacts>,
    queue: SeqQueue,
    problems: VecDeque<String>,
    unknown_seen: Vec<String>,
    max_message: usize,
    version: String,
    /// Supervised mode: no reconnects of its own; ends are reported in `end`.
    supervised: bool,
    end: Option<ConnEnd>,
    /// Refuse a listener of another uid (Flow-009), when set.
    expect_uid: Option<u32>,
    /// Ping a connection that has been quiet this long (0 = never).
    ping_every: Millis,
}

impl fmt::Debug for CodexObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodexObserver")
            .field("sock_path", &self.sock_path)
            .field("connected", &self.conn.is_some())
            .field("threads", &self.threads.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// Finds the `"method"` value near the start of a JSON text without parsing it, so floods of
/// deltas cost a substring scan. `None` when it is not found in the first 256 bytes.
fn peek_method(text: &str) -> Option<&str> {
    let head = &text.as_bytes()[..text.len().min(256)];
    let key = b"\"method\"";
    let at = head.windows(key.len()).position(|w| w == key)?;
    let rest = &text[at + key.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

fn is_delta(method: &str) -> bool {
    method.ends_with("/delta") || method.ends_with("Delta") || method.ends_with("/partAdded")
}

/// Activity for a `ThreadStatus` object. `None` for `notLoaded` / unknown types.
/// For an app-server error object (`{message, codexErrorInfo, …}`): `Some(reset)` when it is
/// the account's usage limit (issue 23; the reset from its `resetsAt`/`resets_at` epoch
/// seconds, else from the message's "try again at 7:13 PM"), `None` for any other error.
fn usage_limit_until(now: Millis) -> impl Fn(&Value) -> Option<Option<Millis>> {
    move |err: &Value| {
        let info = err.get("codexErrorInfo")?;
        let named = |k: &str| k == "usageLimitExceeded" || k == "usage_limit_exceeded";
        let is_limit = match info {
            Value::String(k) => named(k),
            Value::Object(o) => o.keys().any(|k| named(k)),
            _ => false,
        };
        if !is_limit {
            return None;
        }
        let epoch = ["resetsAt", "resets_at"]
            .iter()
            .find_map(|k| err.get(*k).or_else(|| info.get(*k)))
            .and_then(Value::as_i64)
            .filter(|s| *s > 0 && *s < 1 << 40)
            .map(|s| s * 1000);
        let text = err.get("message").and_then(Value::as_str).unwrap_or("");
        Some(epoch.or_else(|| {
            crate::core::extras::parse_reset(
                text,
                now,
                crate::sys::clock::utc_offset_s(now.div_euclid(1000)),
            )
        }))
    }
}

fn status_activity(status: &Value) -> Option<(Activity, String)> {
    let ty = status.get("type").and_then(Value::as_str)?;
    match ty {
        "active" => {
            let flags: Vec<&str> = status
                .get("activeFlags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let a = if flags.contains(&"waitingOnApproval") {
                Activity::WaitingApproval
            } else if flags.contains(&"waitingOnUserInput") {
                Activity::WaitingInput
            } else {
                Activity::Running
            };
            Some((a, format!("active{flags:?}")))
        }
        "idle" => Some((Activity::Idle, "idle".into())),
        "systemError" => Some((Activity::Error, "systemError".into())),
        _ => None,
    }
}

struct Out {
    thread: Option<String>,
    name: String,
    turn: Option<String>,
    signal: Signal,
    title: Option<String>,
    detail: Option<String>,
    disc: Option<String>,
    /// Usage-limit reset, compaction (issue 23).
    extra: EventExtra,
}

/// One notification being handled: what its handler reads, and how it makes its [`Out`].
struct Note<'a> {
    method: &'a str,
    params: &'a Value,
    thread: Option<String>,
    turn: Option<String>,
    /// `emittedAtMs`, the event id's discriminator when present.
    emitted: Option<String>,
    now: Millis,
}

impl Note<'_> {
    /// The output of this notification: `signal`, with `detail`.
    fn out(&self, signal: Signal, detail: Option<String>) -> Out {
        Out {
            thread: self.thread.clone(),
            name: self.method.to_string(),
            turn: self.turn.clone(),
            signal,
            title: None,
            detail,
            disc: self.emitted.clone(),
            extra: EventExtra::default(),
        }
    }

    /// A turn that failed with `msg`: limited, with its reset, when `error` is the account's
    /// usage limit (issue 23: its own state); else error.
    fn failed(&self, error: Option<&Value>, msg: String) -> Out {
        match error.and_then(usage_limit_until(self.now)) {
            Some(until) => {
                let mut o = self.out(Signal::Activity(Activity::Limited), Some(msg));
                o.extra.until = until;
                o
            }
            None => self.out(Signal::Activity(Activity::Error), Some(msg)),
        }
    }
}

impl CodexObserver {
    /// A disconnected observer; the first `tick` connects.
    pub fn new(sock_path: &Path, now: Millis) -> Self {
        CodexObserver {
            sock_path: sock_path.to_path_buf(),
            conn: None,
            new_stream: false,
            reconnect_at: Some(now),
            backoff: BACKOFF_MIN_MS,
            threads: HashMap::new(),
            queue: SeqQueue::new((now.max(1) as u64).saturating_mul(1000), MAX_QUEUE),
            problems: VecDeque::new(),
            unknown_seen: Vec::new(),
            max_message: MAX_MESSAGE,
            version: env!("CARGO_PKG_VERSION").to_string(),
            supervised: false,
            end: None,
            expect_uid: None,
            ping_every: 0,
        }
    }

    /// Supervised mode (the daemon's `CodexEndpoint`): the owner connects with
    /// [`connect_now`](Self::connect_now) and learns how each connection ended from
    /// [`take_end`](Self::take_end); the observer's own backoff is off. `expect_uid` refuses a
    /// listener of another uid; `ping_every` pings a connection that has been quiet that long,
    /// so a live server always shows a heartbeat (any frame, the pong included).
    pub(crate) fn set_supervised(&mut self, expect_uid: Option<u32>, ping_every: Millis) {
        self.supervised = true;
        self.reconnect_at = None;
        self.expect_uid = expect_uid;
        self.ping_every = ping_every;
    }

    /// Supervised mode: connect now unless connected. False (with [`take_end`](Self::take_end)
    /// telling why) when the attempt failed.
    pub(crate) fn connect_now(&mut self, now: Millis) -> bool {
        if self.conn.is_some() {
            return true;
        }
        match self.open(now) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("codex app-server: connect failed: {}", e.reason);
                self.end = Some(e);
                false
            }
        }
    }

    /// How the last attempt or connection ended, once (supervised mode).
    pub(crate) fn take_end(&mut self) -> Option<ConnEnd> {
        self.end.take()
    }

    /// An end is waiting for [`take_end`](Self::take_end).
    pub(crate) fn has_end(&self) -> bool {
        self.end.is_some()
    }

    /// Close the connection on purpose (revoked, heartbeat timeout): a close frame, best
    /// effort, then the socket is dropped. Reports no end: the caller knows why.
    pub(crate) fn disconnect(&mut self, reason: &str, now: Millis) {
        if let Some(mut c) = self.conn.take() {
            c.ws.send_close(1000, reason);
            let _ = c.stream.write(c.ws.pending_out());
            log::info!(
                "codex app-server: disconnected after {} ms: {reason}",
                now - c.opened_at
            );
        }
        for t in self.threads.values_mut() {
            t.subscribed = false;
        }
    }

    /// When the last byte arrived on the current connection (its heartbeat).
    pub(crate) fn last_rx(&self) -> Option<Millis> {
        self.conn.as_ref().map(|c| c.last_rx)
    }

    /// The listener's credentials on the current connection.
    pub fn peer(&self) -> Option<crate::sys::peercred::PeerCred> {
        self.conn.as_ref().and_then(|c| c.peer)
    }

    /// The socket this observer connects to.
    pub fn sock_path(&self) -> &Path {
        &self.sock_path
    }

    /// Connects now (non-blocking). Later failures reconnect on their own with backoff.
    pub fn connect(sock_path: &Path, now: Millis) -> Result<Self, CodexError> {
        let mut o = Self::new(sock_path, now);
        o.open(now).map_err(|e| CodexError::Connect {
            path: sock_path.to_path_buf(),
            err: io::Error::other(e.reason),
        })?;
        Ok(o)
    }

    /// Overrides the largest accepted WebSocket message (default 16 MiB); applies to the next
    /// connection.
    pub fn set_max_message(&mut self, max: usize) {
        self.max_message = max;
    }

    fn open(&mut self, now: Millis) -> Result<(), ConnEnd> {
        let stream = UnixStream::connect(&self.sock_path).map_err(|e| ConnEnd {
            kind: match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => EndKind::Unreachable,
                _ => EndKind::ConnectFailed,
            },
            reason: format!("connect failed: {e}"),
        })?;
        // Flow-009: whoever listens here gets trusted with every pane's state; it must be us.
        let peer = {
            use std::os::fd::AsRawFd;
            crate::sys::peercred::peer_cred(stream.as_raw_fd()).ok()
        };
        if let Some(want) = self.expect_uid {
            match peer {
                Some(p) if p.uid == want => {}
                other => {
                    let got = other.map_or(u32::MAX, |p| p.uid);
                    return Err(ConnEnd {
                        kind: EndKind::PeerRejected { peer_uid: got },
                        reason: format!(
                            "peer_uid_mismatch: the socket's listener runs as uid {got}, not {want}"
                        ),
                    });
                }
            }
        }
        self.conn = Some(Conn {
            stream,
            ws: ClientConn::new(self.max_message),
            opened_at: now,
            initialize_sent: false,
            initialized: false,
            next_id: 1,
            pending: HashMap::new(),
            mid_since: None,
            last_rx: now,
            last_ping: now,
            peer,
        });
        self.new_stream = true;
        self.reconnect_at = None;
        // A new connection holds no subscriptions: resume every real, open thread again.
        for t in self.threads.values_mut() {
            t.subscribed = false;
            t.resume = if t.ephemeral || t.closed {
                ResumeState::Done
            } else {
                ResumeState::Due
            };
        }
        self.flush(now);
        Ok(())
    }

    /// The current stream, for (re)registration with the mio registry.
    pub fn stream_mut(&mut self) -> Option<&mut UnixStream> {
        self.conn.as_mut().map(|c| &mut c.stream)
    }

    /// True once after a new stream was opened: register it (READABLE | WRITABLE).
    pub fn take_new_stream(&mut self) -> bool {
        std::mem::take(&mut self.new_stream)
    }

    /// Connected and past `initialize`.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.initialized)
    }

    /// Healthy: initialized and not stalled mid-frame. Stale: connecting/handshaking, or a
    /// frame has been incomplete for a while. Down: no connection.
    pub fn health(&self) -> Health {
        match &self.conn {
            None => Health::Down,
            Some(c) if c.initialized && c.mid_since.is_none() => Health::Healthy,
            Some(_) => Health::Stale,
        }
    }

    /// Recent problems (protocol errors, resets, rejected messages), oldest first.
    pub fn problems(&self) -> Vec<String> {
        self.problems.iter().cloned().collect()
    }

    /// Facts of one thread.
    pub fn thread(&self, id: &str) -> Option<&ThreadFacts> {
        self.threads.get(id)
    }

    /// Facts of every known thread (input for `codex_correlate`).
    pub fn threads(&self) -> impl Iterator<Item = &ThreadFacts> {
        self.threads.values()
    }

    /// Number of buffered, unpulled items.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn problem(&mut self, msg: String) {
        log::warn!("codex app-server: {msg}");
        if self.problems.len() >= MAX_PROBLEMS {
            self.problems.pop_front();
        }
        self.problems.push_back(msg);
    }

    /// Drops the connection and schedules a reconnect with backoff (supervised: records how it
    /// ended for the owner instead).
    fn reset(&mut self, reason: &str, now: Millis) {
        let mut lived = None;
        if let Some(mut c) = self.conn.take() {
            // Best effort: send the close frame the codec may have queued.
            let _ = c.stream.write(c.ws.pending_out());
            if now - c.opened_at >= STABLE_MS && c.initialized {
                self.backoff = BACKOFF_MIN_MS;
            }
            lived = Some((now - c.opened_at, c.initialized));
        }
        if self.supervised {
            for t in self.threads.values_mut() {
                t.subscribed = false;
            }
            self.problem(format!("connection reset: {reason}"));
            self.end = Some(ConnEnd {
                kind: match lived {
                    Some((lived_ms, initialized)) => EndKind::Lost {
                        lived_ms,
                        initialized,
                    },
                    None => EndKind::ConnectFailed,
                },
                reason: reason.to_string(),
            });
            return;
        }
        let msg = format!(
            "connection reset: {reason}; reconnect in {} ms",
            self.backoff
        );
        if reason.contains("No such file") || reason.contains("Connection refused") {
            // No Codex daemon running (or none installed): the normal case for many users,
            // not worth a warning every backoff step.
            log::debug!("codex app-server: {msg}");
            if self.problems.len() >= MAX_PROBLEMS {
                self.problems.pop_front();
            }
            self.problems.push_back(msg);
        } else {
            self.problem(msg);
        }
        self.reconnect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX_MS);
        for t in self.threads.values_mut() {
            t.subscribed = false;
        }
    }

    /// Readable event: read until `WouldBlock` (edge-triggered) and process everything.
    pub fn on_readable(&mut self, now: Millis) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let Some(c) = self.conn.as_mut() else { return };
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    self.reset("server closed the connection (EOF)", now);
                    return;
                }
                Ok(n) => {
                    c.last_rx = now;
                    if !self.on_bytes(&buf[..n], now) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.reset(&format!("read error: {e}"), now);
                    return;
                }
            }
        }
        self.flush(now);
    }

    /// Writable event: flush queued output.
    pub fn on_writable(&mut self, now: Millis) {
        self.flush(now);
    }

    fn flush(&mut self, now: Millis) {
        loop {
            let Some(c) = self.conn.as_mut() else { return };
            if c.ws.pending_out().is_empty() {
                return;
            }
            match c.stream.write(c.ws.pending_out()) {
                Ok(0) => {
                    self.reset("write returned 0", now);
                    return;
                }
                Ok(n) => c.ws.consume_out(n),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::NotConnected =>
                {
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.reset(&format!("write error: {e}"), now);
                    return;
                }
            }
        }
    }

    /// Returns false when the connection was reset.
    fn on_bytes(&mut self, data: &[u8], now: Millis) -> bool {
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        let msgs = match c.ws.on_bytes(data) {
            Ok(m) => m,
            Err(e) => {
                let reason = match &e {
                    WsError::TooBig { .. } => format!("oversized message rejected: {e}"),
                    _ => e.to_string(),
                };
                self.reset(&reason, now);
                return false;
            }
        };
        c.mid_since = if c.ws.is_mid_message() {
            c.mid_since.or(Some(now))
        } else {
            None
        };
        if c.ws.is_open() && !c.initialize_sent {
            c.initialize_sent = true;
            let params = json!({
                "clientInfo": {"name": CLIENT_NAME, "title": CLIENT_NAME, "version": self.version},
                "capabilities": {
                    // item/tool/requestUserInput is an EXPERIMENTAL server request.
                    "experimentalApi": true,
                    "optOutNotificationMethods": OPT_OUT_NOTIFICATIONS,
                }
            });
            self.request("initialize", params, Pending::Initialize);
        }
        for m in msgs {
            if self.conn.is_none() {
                return false;
            }
            match m {
                WsMessage::Text(t) if !self.on_text(&t, now) => return false,
                WsMessage::Binary(b) => {
                    self.problem(format!("ignored a binary message of {} bytes", b.len()));
                }
                _ => {}
            }
        }
        true
    }

    fn request(&mut self, method: &str, params: Value, what: Pending) -> Option<u64> {
        let c = self.conn.as_mut()?;
        let id = c.next_id;
        c.next_id += 1;
        c.pending.insert(id, what);
        let msg = json!({"id": id, "method": method, "params": params});
        c.ws.send_text(&msg.to_string());
        Some(id)
    }

    fn notify(&mut self, method: &str) {
        if let Some(c) = self.conn.as_mut() {
            c.ws.send_text(&json!({ "method": method }).to_string());
        }
    }

    /// Timers: reconnect, handshake/stall timeouts, resume retries.
    pub fn tick(&mut self, now: Millis) {
        if self.conn.is_none() {
            if !self.supervised
                && self.reconnect_at.is_some_and(|t| now >= t)
                && let Err(e) = self.open(now)
            {
                self.conn = None;
                self.reset(&e.reason, now);
            }
            return;
        }
        if self.ping_every > 0
            && let Some(c) = self.conn.as_mut()
            && c.ws.is_open()
            && now - c.last_rx.max(c.last_ping) >= self.ping_every
        {
            c.ws.send_ping(b"agtmux");
            c.last_ping = now;
        }
        if let Some(c) = &self.conn {
            if !c.initialized && now - c.opened_at >= HANDSHAKE_TIMEOUT_MS {
                self.reset("no initialize response within the handshake timeout", now);
                return;
            }
            if let Some(since) = c.mid_since
                && now - since >= STALL_TIMEOUT_MS
            {
                self.reset(
                    &format!("server stalled mid-frame for {} ms", now - since),
                    now,
                );
                return;
            }
        }
        if self.is_connected() {
            self.run_resumes(now);
        }
        self.flush(now);
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut d: Option<Millis> = None;
        let mut add = |t: Millis| d = Some(d.map_or(t, |x: Millis| x.min(t)));
        match &self.conn {
            None => {
                if let Some(t) = self.reconnect_at {
                    add(t);
                }
            }
            Some(c) => {
                if !c.initialized {
                    add(c.opened_at + HANDSHAKE_TIMEOUT_MS);
                }
                if let Some(s) = c.mid_since {
                    add(s + STALL_TIMEOUT_MS);
                }
                if self.ping_every > 0 && c.ws.is_open() {
                    add(c.last_rx.max(c.last_ping) + self.ping_every);
                }
                if c.initialized {
                    for t in self.threads.values() {
                        match t.resume {
                            ResumeState::RetryAt(at, _) => add(at),
                            ResumeState::Due => add(c.opened_at),
                            _ => {}
                        }
                    }
                }
            }
        }
        d
    }

    fn run_resumes(&mut self, now: Millis) {
        let due: Vec<String> = self
            .threads
            .values()
            .filter(|t| match t.resume {
                ResumeState::Due => true,
                ResumeState::RetryAt(at, _) => now >= at,
                _ => false,
            })
            .map(|t| t.thread_id.clone())
            .collect();
        for id in due {
            let params = json!({"threadId": id, "excludeTurns": true});
            if self
                .request("thread/resume", params, Pending::Resume(id.clone()))
                .is_some()
                && let Some(t) = self.threads.get_mut(&id)
            {
                t.resume = match t.resume {
                    ResumeState::RetryAt(_, n) => ResumeState::InFlight(n),
                    _ => ResumeState::InFlight(0),
                };
            }
        }
    }

    fn thread_mut(&mut self, id: &str) -> &mut ThreadFacts {
        if !self.threads.contains_key(id) && self.threads.len() >= MAX_THREADS {
            let victim = self
                .threads
                .values()
                .filter(|t| t.closed || t.ephemeral)
                .map(|t| t.thread_id.clone())
                .next()
                .or_else(|| self.threads.keys().next().cloned());
            if let Some(v) = victim {
                self.threads.remove(&v);
            }
        }
        self.threads
            .entry(id.to_string())
            .or_insert_with(|| ThreadFacts {
                thread_id: id.to_string(),
                ..Default::default()
            })
    }

    fn push_rejected(&mut self, reason: String, raw: &str, now: Millis) {
        let event_id = format!("cxa-rej-{:016x}", fnv1a64_parts(&[raw, &reason]));
        self.problem(format!("rejected message: {reason}"));
        self.enqueue(Pulled::Rejected {
            event_id,
            reason,
            raw: clip(raw, MAX_RAW),
            ts: now,
        });
    }

    fn enqueue(&mut self, item: Pulled) {
        if self.queue.push(item) {
            log::warn!("codex app-server: event queue full, dropped the oldest item");
        }
    }

    fn emit(&mut self, o: Out, raw: &str, now: Millis) {
        let (cwd, counter) = match o.thread.as_deref() {
            Some(id) => {
                let t = self.thread_mut(id);
                t.counter += 1;
                if let Signal::Activity(a) = &o.signal {
                    t.last_activity = Some(*a);
                }
                (t.cwd.clone(), t.counter)
            }
            None => (None, 0),
        };
        let disc = o.disc.unwrap_or_else(|| format!("n{counter}"));
        let th = o.thread.as_deref().unwrap_or("-");
        let tu = o.turn.as_deref().unwrap_or("-");
        let event_id = format!("cxa-{:016x}", fnv1a64_parts(&[th, &o.name, tu, &disc]));
        let ev = NormalizedEvent {
            event_id,
            source: SourceKind::CodexAppServer,
            provider: Provider::Codex,
            pane_id: None,
            session_key: o.thread,
            turn_id: o.turn,
            name: o.name,
            signal: o.signal,
            title: o.title,
            cwd,
            detail: o.detail,
            ts: now,
            extra: o.extra,
        };
        self.enqueue(Pulled::Event {
            event: ev,
            raw: clip(raw, MAX_RAW),
        });
    }

    /// Handles one JSON-RPC text message as if the WebSocket layer had delivered it (the fuzz
    /// target and tests drive the message handling without a socket). Returns false when the
    /// message would reset the connection.
    #[doc(hidden)]
    pub fn handle_text(&mut self, text: &str, now: Millis) -> bool {
        self.on_text(text, now)
    }

    /// Returns false when the connection was reset.
    fn on_text(&mut self, text: &str, now: Millis) -> bool {
        if let Some(m) = peek_method(text)
            && (is_delta(m) || QUIET_METHODS.contains(&m))
        {
            return true;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.push_rejected(format!("malformed JSON: {e}"), text, now);
                self.reset(&format!("malformed JSON from server: {e}"), now);
                return false;
            }
        };
        if !v.is_object() {
            self.push_rejected("JSON-RPC message is not an object".into(), text, now);
            self.reset("non-object JSON-RPC message", now);
            return false;
        }
        let method = v.get("method").and_then(Value::as_str);
        let has_id = v.get("id").is_some_and(|i| !i.is_null());
        match (method, has_id) {
            (Some(m), true) => self.on_server_request(m, &v, text, now),
            (Some(m), false) => self.on_notification(m, &v, text, now),
            (None, true) => self.on_response(&v, text, now),
            (None, false) => {
                self.push_rejected(
                    "JSON-RPC message with neither method nor id".into(),
                    text,
                    now,
                );
            }
        }
        true
    }

    fn on_response(&mut self, v: &Value, raw: &str, now: Millis) {
        let id = v.get("id").and_then(Value::as_u64);
        let pending = id.and_then(|i| self.conn.as_mut()?.pending.remove(&i));
        let Some(p) = pending else {
            log::debug!("codex app-server: response to unknown id {:?}", v.get("id"));
            return;
        };
        let err = v.get("error");
        match p {
            Pending::Initialize => {
                if let Some(e) = err {
                    self.reset(&format!("initialize failed: {e}"), now);
                    return;
                }
                self.notify("initialized");
                if let Some(c) = self.conn.as_mut() {
                    c.initialized = true;
                }
                self.request("thread/loaded/list", json!({}), Pending::LoadedList);
            }
            Pending::LoadedList => {
                if let Some(e) = err {
                    self.problem(format!("thread/loaded/list failed: {e}"));
                    return;
                }
                let ids: Vec<String> = v
                    .pointer("/result/data")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| {
                                x.as_str()
                                    .or_else(|| x.get("id").and_then(Value::as_str))
                                    .map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for id in ids {
                    let t = self.thread_mut(&id);
                    if !t.ephemeral
                        && !t.subscribed
                        && !matches!(t.resume, ResumeState::InFlight(_))
                    {
                        t.resume = ResumeState::Due;
                    }
                }
                if let Some(cur) = v.pointer("/result/nextCursor").and_then(Value::as_str) {
                    self.request(
                        "thread/loaded/list",
                        json!({ "cursor": cur }),
                        Pending::LoadedList,
                    );
                }
                self.run_resumes(now);
            }
            Pending::Resume(tid) => {
                if let Some(e) = err {
                    let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                    let t = self.thread_mut(&tid);
                    let attempt = match t.resume {
                        ResumeState::InFlight(n) => n,
                        _ => 0,
                    };
                    t.resume = if t.ephemeral || t.closed {
                        ResumeState::Done
                    } else if let Some(d) = RESUME_RETRY_MS.get(attempt) {
                        ResumeState::RetryAt(now + d, attempt + 1)
                    } else {
                        ResumeState::Parked
                    };
                    log::debug!("codex app-server: resume {tid} failed ({msg}); will retry");
                    return;
                }
                let Some(thread) = v.pointer("/result/thread") else {
                    self.problem(format!("thread/resume {tid}: result without thread"));
                    return;
                };
                let t = self.thread_mut(&tid);
                t.subscribed = true;
                t.resume = ResumeState::Done;
                if t.cwd.is_none() {
                    t.cwd = str_at(v, &["result", "cwd"]).map(str::to_string);
                }
                self.on_thread_object(thread, "thread/resume", raw, now, true);
            }
        }
    }

    /// Records a Thread object and emits a snapshot event for its status.
    fn on_thread_object(&mut self, th: &Value, name: &str, raw: &str, now: Millis, snap: bool) {
        let Some(id) = th.get("id").and_then(Value::as_str).map(str::to_string) else {
            self.push_rejected(format!("{name}: thread without id"), raw, now);
            return;
        };
        let ephemeral = th.get("ephemeral").and_then(Value::as_bool) == Some(true)
            || th.get("threadSource").and_then(Value::as_str) == Some("thread_title");
        let subagent = th.get("parentThreadId").is_some_and(|p| !p.is_null());
        let cwd = th
            .get("cwd")
            .and_then(Value::as_str)
            .or_else(|| th.pointer("/environments/0/cwd").and_then(Value::as_str))
            .map(str::to_string);
        let title = th.get("name").and_then(Value::as_str).map(str::to_string);
        let preview = th
            .get("preview")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let updated = th
            .get("updatedAt")
            .map(|u| u.to_string())
            .unwrap_or_default();
        let status = th.get("status").cloned().unwrap_or(Value::Null);
        {
            let t = self.thread_mut(&id);
            t.ephemeral |= ephemeral;
            t.subagent |= subagent;
            if cwd.is_some() {
                t.cwd = cwd;
            }
            if title.is_some() {
                t.title = title.clone();
            }
            if t.last_prompt.is_none() {
                t.last_prompt = preview;
            }
            t.closed = false;
            if t.ephemeral {
                t.resume = ResumeState::Done;
            } else if !t.subscribed && !snap && !matches!(t.resume, ResumeState::InFlight(_)) {
                t.resume = ResumeState::Due;
            }
        }
        let (signal, detail) = if ephemeral {
            (
                Signal::Ignore,
                "title-generation (ephemeral) thread".to_string(),
            )
        } else if subagent {
            (Signal::Ignore, "sub-agent thread".to_string())
        } else {
            match status_activity(&status) {
                Some((a, d)) => (Signal::Activity(a), format!("thread snapshot: {d}")),
                None => (Signal::Ignore, "thread snapshot: not loaded".to_string()),
            }
        };
        let st = status.get("type").and_then(Value::as_str).unwrap_or("");
        self.emit(
            Out {
                thread: Some(id),
                name: name.to_string(),
                turn: None,
                signal,
                title,
                detail: Some(detail),
                disc: Some(format!("snap:{updated}:{st}")),
                extra: EventExtra::default(),
            },
            raw,
            now,
        );
    }

    fn ignored_thread(&self, id: &str) -> Option<&'static str> {
        let t = self.threads.get(id)?;
        if t.ephemeral {
            Some("title-generation (ephemeral) thread")
        } else if t.subagent {
            Some("sub-agent thread")
        } else {
            None
        }
    }

    fn on_server_request(&mut self, m: &str, v: &Value, raw: &str, now: Millis) {
        // NEVER answer: the TUI owns the request.
        let p = v.get("params").cloned().unwrap_or(Value::Null);
        let thread = str_at(&p, &["threadId"])
            .or_else(|| str_at(&p, &["conversationId"]))
            .map(str::to_string);
        let turn = str_at(&p, &["turnId"]).map(str::to_string);
        let req_id = v.get("id").map(|i| i.to_string()).unwrap_or_default();
        let item = str_at(&p, &["itemId"]).unwrap_or("").to_string();
        let (mut signal, detail) = match m {
            "item/commandExecution/requestApproval" | "execCommandApproval" => (
                Signal::Activity(Activity::WaitingApproval),
                str_at(&p, &["command"])
                    .map(|c| format!("command: {}", clip(c, 160)))
                    .or_else(|| str_at(&p, &["reason"]).map(|r| clip(r, 160))),
            ),
            "item/fileChange/requestApproval" | "applyPatchApproval" => (
                Signal::Activity(Activity::WaitingApproval),
                Some("file change".to_string()),
            ),
            "item/permissions/requestApproval" => (
                Signal::Activity(Activity::WaitingApproval),
                Some("permissions".to_string()),
            ),
            "item/tool/requestUserInput" | "mcpServer/elicitation/request" => (
                Signal::Activity(Activity::WaitingInput),
                Some("question to the user".to_string()),
            ),
            _ => (
                Signal::Ignore,
                Some(format!("server request {m} is for the owning client")),
            ),
        };
        let mut detail = detail;
        if let Some(tid) = thread.as_deref() {
            if let Some(why) = self.ignored_thread(tid) {
                signal = Signal::Ignore;
                detail = Some(why.to_string());
            } else if let (Some(tu), Some(cur)) = (
                turn.as_deref(),
                self.threads.get(tid).and_then(|t| t.current_turn.clone()),
            ) && tu != cur
                && self.is_done_turn(tid, tu)
            {
                signal = Signal::Ignore;
                detail = Some(format!("request for finished turn {tu}"));
            }
        }
        self.emit(
            Out {
                thread,
                name: m.to_string(),
                turn,
                signal,
                title: None,
                detail,
                disc: Some(format!("req:{req_id}:{item}")),
                extra: EventExtra::default(),
            },
            raw,
            now,
        );
    }

    fn is_done_turn(&self, tid: &str, turn: &str) -> bool {
        self.threads
            .get(tid)
            .is_some_and(|t| t.done_turns.iter().any(|d| d == turn))
    }

    fn on_notification(&mut self, m: &str, v: &Value, raw: &str, now: Millis) {
        if is_delta(m) || QUIET_METHODS.contains(&m) {
            return;
        }
        let p = v.get("params").cloned().unwrap_or(Value::Null);
        if m == "thread/started" {
            match p.get("thread") {
                Some(th) => self.on_thread_object(th, m, raw, now, false),
                None => self.push_rejected("thread/started without thread".into(), raw, now),
            }
            return;
        }
        let emitted = v.get("emittedAtMs").map(|e| e.to_string());
        let thread = str_at(&p, &["threadId"]).map(str::to_string);
        let turn = str_at(&p, &["turnId"])
            .or_else(|| str_at(&p, &["turn", "id"]))
            .map(str::to_string);
        let n = Note {
            method: m,
            params: &p,
            thread,
            turn,
            emitted,
            now,
        };
        let Some(tid) = n.thread.clone() else {
            // Thread-less notifications we do not know: one Ignore per method per run.
            if !self.unknown_seen.iter().any(|u| u == m) && self.unknown_seen.len() < 256 {
                self.unknown_seen.push(m.to_string());
                self.problem(format!("ignored unknown notification {m}"));
                self.emit(
                    n.out(Signal::Ignore, Some(format!("unknown method {m}"))),
                    raw,
                    now,
                );
            }
            return;
        };
        if let Some(why) = self.ignored_thread(&tid) {
            let closed = m == "thread/closed";
            if closed {
                self.thread_mut(&tid).closed = true;
            }
            if matches!(
                m,
                "thread/status/changed" | "thread/closed" | "turn/started" | "turn/completed"
            ) {
                self.emit(n.out(Signal::Ignore, Some(why.to_string())), raw, now);
            }
            return;
        }
        let out = match m {
            "thread/status/changed" => self.on_status_changed(&tid, &n),
            "turn/started" => self.on_turn_started(&tid, &n),
            "turn/completed" => self.on_turn_completed(&tid, &n),
            "error" => self.on_error(&tid, &n),
            "serverRequest/resolved" => self.on_request_resolved(&tid, &n),
            "thread/name/updated" => self.on_name_updated(&tid, &n),
            "thread/closed" => self.on_thread_closed(&tid, &n),
            "thread/archived" | "thread/deleted" => n.out(
                Signal::Ignore,
                Some(m.rsplit('/').next().unwrap_or(m).into()),
            ),
            "item/started" | "item/completed" => match self.on_item(&tid, &n) {
                Some(o) => o,
                None => return,
            },
            _ => {
                if !self.unknown_seen.iter().any(|u| u == m) && self.unknown_seen.len() < 256 {
                    self.unknown_seen.push(m.to_string());
                    self.problem(format!("ignored unknown notification {m}"));
                    n.out(Signal::Ignore, Some(format!("unknown method {m}")))
                } else {
                    return;
                }
            }
        };
        self.emit(out, raw, now);
    }

    /// `thread/status/changed`: the thread's activity; an error stays until the next turn.
    fn on_status_changed(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let status = n.params.get("status").cloned().unwrap_or(Value::Null);
        let t = self.thread_mut(tid);
        match status_activity(&status) {
            Some((Activity::Idle, _)) if t.error_sticky => n.out(
                Signal::Ignore,
                Some("idle after an error: the error stays until the next turn".into()),
            ),
            Some((a, d)) => {
                if a != Activity::Error && a != Activity::Idle {
                    t.error_sticky = false;
                }
                if a == Activity::Error {
                    t.error_sticky = true;
                }
                if a != Activity::Idle && a != Activity::Error && !t.subscribed {
                    // First turn: the rollout exists now or very soon; re-arm resume.
                    if matches!(
                        t.resume,
                        ResumeState::Parked | ResumeState::RetryAt(..) | ResumeState::Due
                    ) {
                        t.resume = ResumeState::RetryAt(n.now + 200, 0);
                    }
                }
                n.out(Signal::Activity(a), Some(d))
            }
            None => n.out(
                Signal::Ignore,
                Some(format!(
                    "status {}",
                    status.get("type").and_then(Value::as_str).unwrap_or("?")
                )),
            ),
        }
    }

    /// `turn/started`: the thread runs a new turn.
    fn on_turn_started(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let t = self.thread_mut(tid);
        t.current_turn = n.turn.clone();
        t.turn_in_progress = true;
        t.turn_started_ts = Some(n.now);
        t.error_sticky = false;
        t.error_turn = None;
        n.out(Signal::Activity(Activity::Running), None)
    }

    /// `turn/completed`: the turn's end (failed, completed, interrupted); a late completion of
    /// an older turn is ignored.
    fn on_turn_completed(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let status = str_at(n.params, &["turn", "status"])
            .unwrap_or("")
            .to_string();
        let tu = n.turn.clone().unwrap_or_default();
        let t = self.thread_mut(tid);
        let stale = t.current_turn.as_deref().is_some_and(|c| c != tu)
            || t.done_turns.iter().any(|d| *d == tu);
        if stale {
            n.out(
                Signal::Ignore,
                Some(format!("late completion of older turn {tu} ({status})")),
            )
        } else {
            t.turn_in_progress = false;
            t.turn_ended_ts = Some(n.now);
            if t.done_turns.len() >= 16 {
                t.done_turns.pop_front();
            }
            t.done_turns.push_back(tu.clone());
            match status.as_str() {
                "failed" => {
                    t.error_sticky = true;
                    t.error_turn = Some(tu);
                    let msg = str_at(n.params, &["turn", "error", "message"])
                        .map(|s| clip(s, 200))
                        .unwrap_or_else(|| "turn failed".into());
                    n.failed(n.params.pointer("/turn/error"), msg)
                }
                "completed" | "interrupted" => {
                    if t.error_sticky {
                        n.out(Signal::Ignore, Some(format!("turn {status} after error")))
                    } else {
                        n.out(Signal::Activity(Activity::Idle), Some(status))
                    }
                }
                other => n.out(Signal::Ignore, Some(format!("turn status {other:?}"))),
            }
        }
    }

    /// `error`: a retry keeps the turn running; otherwise the error sticks until the next turn.
    fn on_error(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let will_retry = n
            .params
            .get("willRetry")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let msg = str_at(n.params, &["error", "message"])
            .map(|s| clip(s, 200))
            .unwrap_or_else(|| "error".into());
        let tu = n.turn.clone().unwrap_or_default();
        let t = self.thread_mut(tid);
        let stale = t.current_turn.as_deref().is_some_and(|c| c != tu)
            && t.done_turns.iter().any(|d| *d == tu);
        if stale {
            n.out(Signal::Ignore, Some(format!("error of older turn {tu}")))
        } else if will_retry {
            n.out(
                Signal::Activity(Activity::Running),
                Some(format!("retrying: {msg}")),
            )
        } else {
            t.error_sticky = true;
            t.error_turn = n.turn.clone();
            n.failed(n.params.get("error"), msg)
        }
    }

    /// `serverRequest/resolved`: an approval or question answered; a running turn goes on.
    fn on_request_resolved(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let t = self.thread_mut(tid);
        if t.turn_in_progress && !t.error_sticky {
            n.out(
                Signal::Activity(Activity::Running),
                Some("request resolved".into()),
            )
        } else {
            n.out(Signal::Ignore, Some("request resolved".into()))
        }
    }

    /// `thread/name/updated`: the thread's title.
    fn on_name_updated(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let name = str_at(n.params, &["threadName"])
            .or_else(|| str_at(n.params, &["name"]))
            .map(str::to_string);
        self.thread_mut(tid).title = name.clone();
        let mut o = n.out(Signal::Ignore, Some("title".into()));
        o.title = name;
        o
    }

    /// `thread/closed`: no client holds the thread any more; its session ends.
    fn on_thread_closed(&mut self, tid: &str, n: &Note<'_>) -> Out {
        let t = self.thread_mut(tid);
        t.closed = true;
        t.subscribed = false;
        t.resume = ResumeState::Done;
        n.out(
            Signal::SessionEnd,
            Some("thread unloaded: no client holds it (TUI exited or switched)".into()),
        )
    }

    /// `item/started|completed`: a user message's text is the thread's last prompt; a context
    /// compaction keeps the turn running with the `compacting` detail while it lasts (issue
    /// 23); other items say nothing (`None`: nothing is emitted).
    fn on_item(&mut self, tid: &str, n: &Note<'_>) -> Option<Out> {
        let item = n.params.get("item").cloned().unwrap_or(Value::Null);
        let kind = item.get("type").and_then(Value::as_str);
        if kind == Some("contextCompaction") {
            let t = self.thread_mut(tid);
            if !t.turn_in_progress || t.error_sticky {
                return None;
            }
            let mut o = n.out(
                Signal::Activity(Activity::Running),
                Some("compaction".into()),
            );
            if n.method == "item/started" {
                o.extra.work = Some(Work::Compacting);
            }
            return Some(o);
        }
        if kind != Some("userMessage") {
            return None;
        }
        let text: Vec<&str> = item
            .get("content")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if n.method == "item/completed" {
            return None;
        }
        let t = self.thread_mut(tid);
        t.last_prompt = Some(text.join("\n"));
        t.last_prompt_ts = Some(n.now);
        Some(n.out(Signal::Ignore, Some("user message".into())))
    }
}

impl Source for CodexObserver {
    fn kind(&self) -> SourceKind {
        SourceKind::CodexAppServer
    }

    /// Items after the sequence number `after` (empty or unparsable = from the start of the
    /// buffer). Acknowledged items (seq <= after) are dropped from the buffer.
    fn pull(&mut self, after: &str, max: usize) -> Batch {
        self.queue.pull(after, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_method_finds_the_name_cheaply() {
        assert_eq!(
            peek_method(r#"{"method":"item/agentMessage/delta","params":{}}"#),
            Some("item/agentMessage/delta")
        );
        assert_eq!(peek_method(r#"{"id": 3, "method" : "x/y"}"#), Some("x/y"));
        assert_eq!(peek_method(r#"{"id":1,"result":{}}"#), None);
        assert!(is_delta("item/reasoning/textDelta"));
        assert!(!is_delta("turn/completed"));
    }

    #[test]
    fn status_mapping() {
        let a = |v: Value| status_activity(&v).map(|x| x.0);
        assert_eq!(
            a(json!({"type":"active","activeFlags":[]})),
            Some(Activity::Running)
        );
        assert_eq!(
            a(json!({"type":"active","activeFlags":["waitingOnApproval"]})),
            Some(Activity::WaitingApproval)
        );
        assert_eq!(
            a(json!({"type":"active","activeFlags":["waitingOnUserInput"]})),
            Some(Activity::WaitingInput)
        );
        assert_eq!(a(json!({"type":"idle"})), Some(Activity::Idle));
        assert_eq!(a(json!({"type":"systemError"})), Some(Activity::Error));
        assert_eq!(a(json!({"type":"notLoaded"})), None);
        assert_eq!(a(json!("garbage")), None);
    }

    fn feed(o: &mut CodexObserver, msgs: &[Value]) -> Vec<(String, Signal)> {
        for (i, m) in msgs.iter().enumerate() {
            assert!(o.on_text(&m.to_string(), 1_000 + i as Millis));
        }
        let b = o.pull("", 1000);
        b.items
            .into_iter()
            .filter_map(|it| match it {
                Pulled::Event { event, .. } => Some((event.name, event.signal)),
                Pulled::Rejected { .. } => None,
            })
            .collect()
    }

    #[test]
    fn turn_scoping_sticky_errors_and_title_threads() {
        let mut o = CodexObserver::new(Path::new("/nonexistent"), 1);
        let turn = |m: &str, id: &str, status: &str| json!({"method": m, "params": {"threadId": "t", "turn": {"id": id, "status": status}}});
        let got = feed(
            &mut o,
            &[
                json!({"method":"thread/started","params":{"thread":{"id":"title","ephemeral":true,
                    "threadSource":"thread_title","status":{"type":"idle"}}}}),
                json!({"method":"thread/status/changed","params":{"threadId":"title",
                    "status":{"type":"active","activeFlags":[]}}}),
                turn("turn/started", "A", "inProgress"),
                turn("turn/started", "B", "inProgress"),
                turn("turn/completed", "A", "completed"),
                turn("turn/completed", "B", "failed"),
                json!({"method":"thread/status/changed","params":{"threadId":"t","status":{"type":"idle"}}}),
                turn("turn/started", "C", "inProgress"),
                json!({"method":"item/tool/requestUserInput","id":7,"params":{"threadId":"t","turnId":"C","itemId":"i"}}),
                turn("turn/completed", "C", "interrupted"),
            ],
        );
        use Activity::*;
        let sig: Vec<Signal> = got.iter().map(|g| g.1.clone()).collect();
        assert_eq!(
            sig,
            vec![
                Signal::Ignore,
                Signal::Ignore,
                Signal::Activity(Running),
                Signal::Activity(Running),
                Signal::Ignore, // late completion of A does not end B
                Signal::Activity(Error),
                Signal::Ignore, // idle after error: error stays
                Signal::Activity(Running),
                Signal::Activity(WaitingInput),
                Signal::Activity(Idle),
            ],
            "{got:?}"
        );
        assert!(o.thread("title").is_some_and(|t| t.ephemeral));
    }

    #[test]
    fn usage_limit_and_compaction() {
        let mut o = CodexObserver::new(Path::new("/nonexistent"), 1);
        let item = |m: &str| {
            json!({"method": m, "params": {"threadId":"t","turnId":"A",
            "item":{"type":"contextCompaction","id":"c1"}}})
        };
        for m in [
            json!({"method":"turn/started","params":{"threadId":"t","turn":{"id":"A","status":"inProgress"}}}),
            item("item/started"),
            item("item/completed"),
            json!({"method":"error","params":{"threadId":"t","turnId":"A","willRetry":false,
                "error":{"message":"You've hit your usage limit. Try again at 7:13 PM.",
                         "codexErrorInfo":"usageLimitExceeded"}}}),
        ]
        .iter()
        .enumerate()
        {
            assert!(o.on_text(&m.1.to_string(), 1_796_410_500_000 + m.0 as Millis));
        }
        let evs: Vec<NormalizedEvent> = o
            .pull("", 100)
            .items
            .into_iter()
            .filter_map(|it| match it {
                Pulled::Event { event, .. } => Some(event),
                Pulled::Rejected { .. } => None,
            })
            .collect();
        let got: Vec<(Signal, Option<Work>)> = evs
            .iter()
            .map(|e| (e.signal.clone(), e.extra.work))
            .collect();
        use Activity::*;
        assert_eq!(
            got,
            vec![
                (Signal::Activity(Running), None),
                (Signal::Activity(Running), Some(Work::Compacting)),
                (Signal::Activity(Running), None),
                (Signal::Activity(Limited), None),
            ]
        );
        // 2026-12-04 18:55 UTC: the next 7:13 PM (in the test's local zone) is within a day.
        let until = evs[3].extra.until.unwrap_or(0);
        assert!(
            until > 1_796_410_500_000 && until <= 1_796_410_500_000 + 86_400_000,
            "{until}"
        );
        // Any other error stays an error.
        let mut o = CodexObserver::new(Path::new("/nonexistent"), 1);
        let got = feed(
            &mut o,
            &[
                json!({"method":"error","params":{"threadId":"t","turnId":"B","willRetry":false,
                "error":{"message":"unexpected status 400","codexErrorInfo":{"httpConnectionFailed":{"httpStatusCode":400}}}}}),
            ],
        );
        assert_eq!(got[0].1, Signal::Activity(Error));
    }
}
