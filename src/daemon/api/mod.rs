//! The local client API (C-002 client API, docs/api.md): a Unix socket at
//! `ServerPaths::api_socket()` (runtime dir 0700, socket 0600) speaking newline-delimited,
//! versioned JSON. Every surface that is not a tmux option (the CLI's `ls`/`watch`/`wait`/
//! `explain`/`doctor` and the popup) reads the daemon's one read model through it, so no
//! surface computes state on its own.
//!
//! WHY inside the daemon's mio loop: the read model lives there and is single-writer. The
//! listener and every client are registered with tokens of their own; reads and writes never
//! block. Requests are answered from the current read model; `subscribe` turns a connection
//! into a push stream of pane changes.
//!
//! Resource bounds (issue 16: 1000 clients pipelining requests without reading grew the daemon
//! to 1.15 GB and `ls` timed out):
//! - per client, requests are read and answered only while its unsent output is under
//!   [`OUT_PAUSE`]; past it the client's input waits in the kernel until it reads. A client
//!   stuck over it for [`STALL_MS`], or whose push stream overflows [`MAX_OUTBUF`], is dropped;
//! - the client count stays below the fd limit ([`client_cap`]); a new client at the cap
//!   evicts the oldest idle or stalled one, so `ls` still gets in;
//! - `EMFILE` on accept is met with a spare fd (closed, the pending connection accepted and
//!   told `busy`, reopened), so the listener never spins nor goes deaf; if that fails the
//!   runtime's tick retries the accept.
//!
//! This file is the socket server (listener, clients, buffers, bounds). What a request line
//! means is `api/dispatch.rs`; the `source.*` methods are `api/source_methods.rs`; the JSON
//! shapes of the read model are `api/render.rs`.
//!
//! Wire format (see docs/api.md): request `{"v":1,"id":ID,"method":M,"params":{..}}`, answer
//! `{"v":1,"id":ID,"result":..}` or `{"v":1,"id":ID,"error":{"code":..,"message":..}}`, push
//! `{"v":1,"event":"pane","pane":{..}}` / `{"v":1,"event":"pane_removed","pane_id":".."}`.
mod dispatch;
mod render;
mod source_methods;

use crate::core::attention::Style;
use crate::core::types::{Millis, PaneId};
use crate::projection::Projection;
use crate::tmux::registry::Registry;
/// Public for the fuzz target `api_request`, which feeds it raw lines.
pub use dispatch::handle_line;
use dispatch::{Gate, error_line, gate, with_extra};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Token};
use render::pane_json;
/// Also orders `ls --remote`'s sessions (`daemon::remote`).
pub(crate) use render::session_order;
use serde_json::{Value, json};
use source_methods::source_method;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Protocol version of every message.
pub const VERSION: u64 = 1;
/// Longest accepted request line (bytes, without the newline).
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Output buffered for one client before it counts as too slow and is dropped (push streams;
/// request answers stop at [`OUT_PAUSE`]).
pub(crate) const MAX_OUTBUF: usize = 4 << 20;
/// Unsent output past which a client's further requests wait until it reads.
pub(crate) const OUT_PAUSE: usize = 256 << 10;
/// Requests answered for one client per turn; the rest wait for its next turn (round robin
/// over [`ApiServer::service_pending`]), so one pipelining client cannot hold `ls` up.
const ANSWERS_PER_TURN: usize = 8;
/// Time spent on queued turns per loop pass.
const TURNS_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a client may stay over [`OUT_PAUSE`] without reading before it is dropped.
pub(crate) const STALL_MS: Millis = 30_000;
/// Simultaneous clients at most; fewer when the fd limit is low ([`client_cap`]).
pub(crate) const MAX_CLIENTS: usize = 1024;
/// Fds kept free for everything else the daemon opens (tmux pipes, SQLite, watches).
const FD_RESERVE: u64 = 128;

/// Clients allowed at once: [`MAX_CLIENTS`], less under a low `RLIMIT_NOFILE`.
pub(crate) fn client_cap() -> usize {
    let Some(limit) = crate::sys::fd::open_file_limit() else {
        return MAX_CLIENTS;
    };
    let room = limit.saturating_sub(FD_RESERVE).max(8);
    (room as usize).min(MAX_CLIENTS)
}

/// The listener's token; client tokens follow it. Far above the runtime's fixed tokens.
pub(crate) const LISTENER: Token = Token(1 << 24);

/// Does this token belong to the API?
pub fn owns(t: Token) -> bool {
    t.0 >= LISTENER.0
}

#[derive(Debug)]
pub enum ApiError {
    Bind(PathBuf, io::Error),
    Register(io::Error),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Bind(p, e) => write!(f, "api socket {}: {e}", p.display()),
            ApiError::Register(e) => write!(f, "api register: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// What a request can see: borrowed from the runtime for the length of one call.
pub struct View<'a> {
    pub projection: &'a Projection,
    pub registry: &'a Registry,
    pub style: &'a Style,
    /// tmux server identity `pid:start_time`, once known.
    pub identity: Option<&'a str>,
    pub socket: &'a Path,
    pub tmux_connected: bool,
    pub store_problem: Option<&'a str>,
    /// Rolling-window metrics and event traces (`metrics`, `trace`; `None` in unit tests).
    pub metrics: Option<&'a super::metrics::Metrics>,
    /// The gateway's accepted/ignored/rejected/duplicate counters.
    pub ingest_counts: crate::gateway::IngestCounts,
    /// The delivery inflight table and its token traces (`None` in unit tests).
    pub delivery: Option<&'a crate::delivery::Delivery>,
    /// C-013 guardrails and Flow-010 snapshots, read at request time (`None` in unit tests).
    pub ops: Option<&'a super::ops::Ops>,
    /// The remote hosts' `list` section (issue 24), when any host is configured.
    pub remotes: Option<&'a Value>,
    pub now: Millis,
}

impl<'a> View<'a> {
    /// A view with only the pane model: no metrics, delivery, ops or remote hosts, tmux
    /// connected, store healthy. For tests and the fuzz target, which have no daemon.
    #[doc(hidden)]
    pub fn without_daemon(
        projection: &'a Projection,
        registry: &'a Registry,
        style: &'a Style,
        identity: Option<&'a str>,
        socket: &'a Path,
        now: Millis,
    ) -> View<'a> {
        View {
            projection,
            registry,
            style,
            identity,
            socket,
            tmux_connected: true,
            store_problem: None,
            metrics: None,
            ingest_counts: Default::default(),
            delivery: None,
            ops: None,
            remotes: None,
            now,
        }
    }
}

struct Client {
    stream: UnixStream,
    /// The peer's uid (`SO_PEERCRED`, already checked against ours).
    peer_uid: u32,
    peer_pid: i32,
    accepted_at: Millis,
    /// Set once this connection passed `source.hello` (Flow-009).
    source_id: Option<String>,
    /// Its connection trace, once it spoke as a source.
    conn: Option<u64>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Since when its output has been over [`OUT_PAUSE`] (it does not read).
    stalled_since: Option<Millis>,
    /// Last time it sent or received anything (eviction picks the oldest idle).
    last_active: Millis,
    /// In the round-robin queue of clients with whole requests still to answer.
    queued: bool,
    subscribed: bool,
    /// Close once the output is flushed (after a fatal protocol error).
    closing: bool,
}

pub struct ApiServer {
    path: PathBuf,
    /// (dev, inode) of the socket file we bound: removed at shutdown only if still ours.
    ident: Option<(u64, u64)>,
    listener: UnixListener,
    clients: HashMap<Token, Client>,
    next: usize,
    /// Pane ids last seen by `push_changes`, to report removals.
    known: BTreeSet<PaneId>,
    /// Flow-011: read-model methods are refused (`not_ready`) until the runtime says the API
    /// stage is ready; `health` always answers.
    pub(crate) ready: bool,
    /// What the API waits for while not ready (shown in the `not_ready` error).
    pub waiting_for: &'static str,
    /// Source connections dropped since the runtime last asked (`take_closed`): their
    /// registry entries go `stale` and their traces are closed.
    closed: Vec<Closed>,
    /// Extra sections merged into `health` and `metrics` answers (supervisor, delivery,
    /// source registry), refreshed by the runtime.
    pub extra: serde_json::Map<String, Value>,
    /// Clients allowed at once.
    cap: usize,
    /// A spare fd, given up to accept (and refuse) one connection under `EMFILE`.
    spare: Option<std::fs::File>,
    /// An accept failed for lack of fds and the spare could not help: retry on the next tick.
    accept_blocked: bool,
    /// Clients with whole requests left after their turn, oldest first.
    pending: std::collections::VecDeque<Token>,
    /// Time spent serving clients in this loop pass (reset by `service_pending`).
    spent: std::time::Duration,
    pub(crate) stats: ApiStats,
}

/// Resource counters (`health`/`metrics` → `api`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiStats {
    /// Unsent output bytes over all clients, and the largest per client (refreshed each tick).
    pub(crate) buffered_out: usize,
    pub(crate) max_client_out: usize,
    /// Unparsed input bytes over all clients.
    pub(crate) buffered_in: usize,
    /// Clients whose requests wait because they do not read.
    pub paused: usize,
    pub(crate) dropped_slow: u64,
    pub(crate) dropped_stalled: u64,
    pub(crate) evicted: u64,
    pub(crate) refused_busy: u64,
    pub(crate) accept_fd_exhausted: u64,
}

/// The daemon's trust material for source connections, owned by the runtime and lent to the
/// API for each call (the Codex endpoint uses the same registry).
#[derive(Debug)]
pub struct Admission {
    pub runtime_uid: u32,
    pub nonce: String,
    pub registry: super::admission::SourceRegistry,
    pub traces: super::conntrace::ConnTraces,
}

/// A source connection that went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub source_id: Option<String>,
    pub conn: u64,
    pub why: String,
}

impl ApiServer {
    /// Bind the socket (mode 0600 in a 0700 dir) and register the listener.
    pub fn bind(path: &Path, reg: &mio::Registry) -> Result<ApiServer, ApiError> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(dir) = path.parent() {
            crate::paths::ensure_private_dir(dir)
                .map_err(|e| ApiError::Bind(path.to_path_buf(), e))?;
        }
        // The caller holds the per-server lock, so a socket file here is a dead daemon's.
        let _ = std::fs::remove_file(path);
        let bound = crate::sys::user::with_umask(0o177, || UnixListener::bind(path));
        let mut listener = bound.map_err(|e| ApiError::Bind(path.to_path_buf(), e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| ApiError::Bind(path.to_path_buf(), e))?;
        reg.register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ApiError::Register)?;
        Ok(ApiServer {
            path: path.to_path_buf(),
            ident: super::runtime::socket_ident(path),
            listener,
            clients: HashMap::new(),
            next: LISTENER.0 + 1,
            known: BTreeSet::new(),
            ready: false,
            waiting_for: "source",
            closed: Vec::new(),
            extra: serde_json::Map::new(),
            cap: client_cap(),
            spare: std::fs::File::open("/dev/null").ok(),
            accept_blocked: false,
            pending: std::collections::VecDeque::new(),
            spent: std::time::Duration::ZERO,
            stats: ApiStats::default(),
        })
    }

    /// Is the socket file at our path still the one we bound?
    pub(crate) fn socket_is_ours(&self) -> bool {
        self.ident.is_some() && super::runtime::socket_ident(&self.path) == self.ident
    }

    /// A loop pass with no queued turns ends: the next one starts with a fresh budget.
    pub(crate) fn new_pass(&mut self) {
        self.spent = std::time::Duration::ZERO;
    }

    /// Clients wait for another turn: the runtime calls [`ApiServer::service_pending`] soon.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A turn for the clients queued so far (each answers up to [`ANSWERS_PER_TURN`]), for at
    /// most [`TURNS_BUDGET`]: the loop then polls again, so a new client (`ls`) is read soon.
    pub(crate) fn service_pending(
        &mut self,
        reg: &mio::Registry,
        view: &View,
        adm: &mut Admission,
    ) {
        let start = std::time::Instant::now();
        let spent = std::mem::take(&mut self.spent);
        for _ in 0..self.pending.len() {
            if spent + start.elapsed() >= TURNS_BUDGET {
                break;
            }
            let Some(t) = self.pending.pop_front() else {
                break;
            };
            if let Some(c) = self.clients.get_mut(&t) {
                c.queued = false;
                self.read_client(t, reg, view, adm);
            }
        }
    }

    /// Per-step upkeep: retry a blocked accept, drop clients stalled past [`STALL_MS`], and
    /// refresh the `api` figures of `health`/`metrics`. O(clients), no syscalls unless needed.
    pub fn tick(&mut self, reg: &mio::Registry, adm: &mut Admission, now: Millis) {
        if self.accept_blocked {
            self.accept_blocked = false;
            self.accept(reg, adm, now);
        }
        let stalled: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| c.stalled_since.is_some_and(|t| now - t >= STALL_MS))
            .map(|(t, _)| *t)
            .collect();
        for t in stalled {
            log::warn!("api_client_dropped token={} reason=stalled", t.0);
            self.stats.dropped_stalled += 1;
            self.drop_client(t, reg, "stalled");
        }
        let st = &mut self.stats;
        st.buffered_out = 0;
        st.max_client_out = 0;
        st.buffered_in = 0;
        st.paused = 0;
        for c in self.clients.values() {
            st.buffered_out += c.outbuf.len();
            st.max_client_out = st.max_client_out.max(c.outbuf.len());
            st.buffered_in += c.inbuf.len();
            if c.outbuf.len() >= OUT_PAUSE {
                st.paused += 1;
            }
        }
        let j = json!({
            "clients": self.clients.len(),
            "max_clients": self.cap,
            "buffered_out_bytes": st.buffered_out,
            "max_client_out_bytes": st.max_client_out,
            "buffered_in_bytes": st.buffered_in,
            "paused_clients": st.paused,
            "out_pause_bytes": OUT_PAUSE,
            "dropped_slow": st.dropped_slow,
            "dropped_stalled": st.dropped_stalled,
            "evicted": st.evicted,
            "refused_busy": st.refused_busy,
            "accept_fd_exhausted": st.accept_fd_exhausted,
        });
        self.extra.insert("api".into(), j);
    }

    /// Make room for one more client at the cap: drop the oldest idle client (nothing
    /// pending either way, not a subscriber or a source), else the longest stalled one, else
    /// the least recently active request client.
    fn evict_one(&mut self, reg: &mio::Registry) -> bool {
        let idle = self
            .clients
            .iter()
            .filter(|(_, c)| {
                c.outbuf.is_empty() && c.inbuf.is_empty() && !c.subscribed && c.conn.is_none()
            })
            .min_by_key(|(_, c)| c.last_active)
            .map(|(t, _)| *t);
        let victim = idle
            .or_else(|| {
                self.clients
                    .iter()
                    .filter_map(|(t, c)| c.stalled_since.map(|s| (s, *t)))
                    .min()
                    .map(|(_, t)| t)
            })
            .or_else(|| {
                // Everyone is busy: the least recently active request client goes (sources and
                // subscribers are long-lived by design and stay).
                self.clients
                    .iter()
                    .filter(|(_, c)| !c.subscribed && c.conn.is_none())
                    .min_by_key(|(_, c)| c.last_active)
                    .map(|(t, _)| *t)
            });
        let Some(t) = victim else {
            return false;
        };
        log::warn!("api_client_evicted token={} reason=too_many_clients", t.0);
        self.stats.evicted += 1;
        self.drop_client(t, reg, "evicted");
        true
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Clients with a `subscribe` stream.
    pub(crate) fn subscribers(&self) -> usize {
        self.clients.values().filter(|c| c.subscribed).count()
    }

    /// Source connections dropped since the last call.
    pub(crate) fn take_closed(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.closed)
    }

    /// Handle readiness of the listener or a client.
    pub(crate) fn on_event(
        &mut self,
        ev: &mio::event::Event,
        reg: &mio::Registry,
        view: &View,
        adm: &mut Admission,
    ) {
        let t = ev.token();
        if t == LISTENER {
            self.accept(reg, adm, view.now);
            return;
        }
        // Readable or writable alike: serve it (a writable edge is also what resumes a client
        // paused for not reading). Once this pass has spent its budget it waits for the next
        // pass, at the head of the queue: a client with news (a new `ls`) goes before the
        // ones that used up their turn.
        if self.spent >= TURNS_BUDGET {
            if let Some(c) = self.clients.get_mut(&t) {
                if c.queued {
                    self.pending.retain(|x| *x != t);
                }
                c.queued = true;
                self.pending.push_front(t);
            }
            return;
        }
        let start = std::time::Instant::now();
        self.read_client(t, reg, view, adm);
        self.spent += start.elapsed();
    }

    fn accept(&mut self, reg: &mio::Registry, adm: &mut Admission, now: Millis) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // Flow-009: the peer must be our own uid.
                    let Some((mut stream, peer)) = self.admit(stream, adm, now) else {
                        continue;
                    };
                    if self.clients.len() >= self.cap && !self.evict_one(reg) {
                        log::warn!("api_client_refused reason=too_many");
                        self.stats.refused_busy += 1;
                        refuse(
                            stream,
                            &error_line(&Value::Null, "busy", "too many clients"),
                        );
                        continue;
                    }
                    let token = Token(self.next);
                    self.next = self.next.wrapping_add(1).max(LISTENER.0 + 1);
                    if let Err(e) =
                        reg.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    {
                        log::warn!("api_register_failed err={e}");
                        continue;
                    }
                    self.clients.insert(
                        token,
                        Client {
                            stream,
                            peer_uid: peer.uid,
                            peer_pid: peer.pid,
                            accepted_at: now,
                            source_id: None,
                            conn: None,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            stalled_since: None,
                            last_active: now,
                            queued: false,
                            subscribed: false,
                            closing: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if crate::sys::fd::is_fd_exhaustion(&e) => {
                    if !self.on_accept_fd_exhausted(reg, &e) {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("api_accept_failed err={e}");
                    return;
                }
            }
        }
    }

    /// Flow-009: a new connection's peer must be our own uid; otherwise it is refused with
    /// the reason, counted and traced.
    fn admit(
        &self,
        stream: UnixStream,
        adm: &mut Admission,
        now: Millis,
    ) -> Option<(UnixStream, crate::sys::peercred::PeerCred)> {
        use std::os::fd::AsRawFd;
        let cred = crate::sys::peercred::peer_cred(stream.as_raw_fd()).ok();
        match super::admission::admit_peer(
            cred.ok_or_else(|| io::Error::other("no peer credentials")),
            adm.runtime_uid,
        ) {
            Ok(p) => Some((stream, p)),
            Err(r) => {
                log::warn!(
                    "api_admission_rejected reason={} peer_pid={:?} detail={:?}",
                    r.code(),
                    cred.map(|c| c.pid),
                    r.to_string()
                );
                adm.registry.count_reject(&r);
                let path = self.path.to_string_lossy();
                let c =
                    adm.traces
                        .open("api", &path, cred.map(|c| c.pid), cred.map(|c| c.uid), now);
                adm.traces.step(c, "admission", r.code(), now);
                adm.traces.close(c, r.code(), now);
                refuse(stream, &error_line(&Value::Null, r.code(), &r.to_string()));
                None
            }
        }
    }

    /// Out of fds: the pending connection would wake us forever (or, edge triggered, never
    /// again). Returns whether to go on accepting.
    fn on_accept_fd_exhausted(&mut self, reg: &mio::Registry, e: &io::Error) -> bool {
        // Free the spare, take it and say why, re-arm.
        self.stats.accept_fd_exhausted += 1;
        if self.spare.take().is_none() {
            log::error!("api_accept_failed err={e} spare=none retry=tick");
            self.accept_blocked = true;
            return false;
        }
        if let Ok((stream, _)) = self.listener.accept() {
            self.stats.refused_busy += 1;
            refuse(
                stream,
                &error_line(&Value::Null, "busy", "daemon out of file descriptors"),
            );
        }
        self.spare = std::fs::File::open("/dev/null").ok();
        log::warn!(
            "api_accept_fd_exhausted err={e} clients={} cap={}",
            self.clients.len(),
            self.cap
        );
        // Make room for the next one: a stalled or idle client goes.
        if !self.evict_one(reg) {
            self.accept_blocked = true;
            return false;
        }
        true
    }

    /// Serve one client: answer its whole request lines while its unsent output is under
    /// [`OUT_PAUSE`], write, read more. Returns only when the kernel has nothing more to read
    /// (a readable edge will come), or the client is paused (its output hit `WouldBlock`, a
    /// writable edge will come), or it is gone: so edge-triggered readiness never strands it.
    fn read_client(&mut self, t: Token, reg: &mio::Registry, view: &View, adm: &mut Admission) {
        let mut eof = false;
        let mut answered = 0;
        loop {
            let Some(c) = self.clients.get_mut(&t) else {
                return;
            };
            // Answer complete lines, while the client keeps up and its turn lasts.
            while !c.closing && c.outbuf.len() < OUT_PAUSE {
                if answered >= ANSWERS_PER_TURN {
                    if !c.queued {
                        c.queued = true;
                        self.pending.push_back(t);
                    }
                    break;
                }
                let Some(pos) = c.inbuf.iter().position(|b| *b == b'\n') else {
                    if c.inbuf.len() > MAX_LINE {
                        push_out(
                            c,
                            &error_line(&Value::Null, "line_too_long", "request line too long"),
                        );
                        c.closing = true;
                        c.inbuf.clear();
                    }
                    break;
                };
                let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
                let line = &line[..line.len() - 1];
                if line.len() > MAX_LINE {
                    push_out(
                        c,
                        &error_line(&Value::Null, "line_too_long", "request line too long"),
                    );
                    c.closing = true;
                    break;
                }
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                c.last_active = view.now;
                let (answer, subscribe) = match gate(line, self.ready, self.waiting_for) {
                    Gate::Source(id, method, params) => {
                        let path = self.path.to_string_lossy();
                        let (answer, close) =
                            source_method(&method, &params, &id, c, adm, &path, view.now);
                        if close {
                            c.closing = true;
                        }
                        (answer, false)
                    }
                    Gate::Refuse(answer) => (answer, false),
                    Gate::Pass => {
                        let (a, sub) = handle_line(line, view);
                        (with_extra(a, &self.extra), sub)
                    }
                };
                push_out(c, &answer);
                answered += 1;
                if subscribe {
                    c.subscribed = true;
                }
            }
            let turn_over = c.queued;
            if !self.flush_client(t, reg) {
                return;
            }
            if turn_over {
                // Its next turn comes from the queue; a pause or an end is seen then.
                return;
            }
            let Some(c) = self.clients.get_mut(&t) else {
                return;
            };
            if c.outbuf.len() >= OUT_PAUSE {
                // It does not read: its requests wait in the kernel; dropped if it stays so.
                c.stalled_since.get_or_insert(view.now);
                return;
            }
            c.stalled_since = None;
            if eof {
                if c.outbuf.is_empty() {
                    self.drop_client(t, reg, "eof");
                } else {
                    c.closing = true;
                }
                return;
            }
            if c.closing {
                return;
            }
            // Read until a whole line is here (answer it first), the kernel has no more
            // (a readable edge will come), or the line is over-long.
            if !read_some(c, &mut eof) {
                return;
            }
        }
    }

    /// Write what the client's buffer holds. Returns false when the client was dropped.
    fn flush_client(&mut self, t: Token, reg: &mio::Registry) -> bool {
        let Some(c) = self.clients.get_mut(&t) else {
            return false;
        };
        if c.outbuf.len() > MAX_OUTBUF {
            log::warn!("api_client_dropped token={} reason=slow", t.0);
            self.stats.dropped_slow += 1;
            self.drop_client(t, reg, "slow");
            return false;
        }
        while !c.outbuf.is_empty() {
            match c.stream.write(&c.outbuf) {
                Ok(0) => break,
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.drop_client(t, reg, "write_error");
                    return false;
                }
            }
        }
        if c.outbuf.is_empty() {
            // A big answer left a big allocation behind: give it back.
            if c.outbuf.capacity() > 64 << 10 {
                c.outbuf = Vec::new();
            }
            if c.closing {
                self.drop_client(t, reg, "closed");
                return false;
            }
        }
        true
    }

    fn drop_client(&mut self, t: Token, reg: &mio::Registry, why: &str) {
        if let Some(mut c) = self.clients.remove(&t) {
            log::debug!("api_client_dropped token={} reason={why}", t.0);
            let _ = reg.deregister(&mut c.stream);
            if let Some(conn) = c.conn {
                self.closed.push(Closed {
                    source_id: c.source_id.take(),
                    conn,
                    why: why.to_string(),
                });
            }
        }
    }

    /// Push one line (a whole JSON object, no newline) to every subscriber.
    pub fn push_line(&mut self, line: &str, reg: &mio::Registry) {
        let subs: Vec<Token> = (self.clients.iter())
            .filter(|(_, c)| c.subscribed)
            .map(|(t, _)| *t)
            .collect();
        let line = format!("{line}\n");
        for t in subs {
            if let Some(c) = self.clients.get_mut(&t) {
                push_out(c, &line);
            }
            self.flush_client(t, reg);
        }
    }

    /// Push every changed (and every vanished) pane to subscribers.
    pub(crate) fn push_changes(&mut self, changed: &[PaneId], reg: &mio::Registry, view: &View) {
        let now_known: BTreeSet<PaneId> = view.projection.panes.keys().cloned().collect();
        let removed: Vec<PaneId> = self.known.difference(&now_known).cloned().collect();
        self.known = now_known;
        if changed.is_empty() && removed.is_empty() {
            return;
        }
        if !self.clients.values().any(|c| c.subscribed) {
            return;
        }
        let mut lines = String::new();
        for id in changed {
            if let Some(p) = view.projection.panes.get(id) {
                let msg = json!({"v": VERSION, "event": "pane", "pane": pane_json(p, view)});
                lines.push_str(&msg.to_string());
                lines.push('\n');
            }
        }
        for id in removed {
            let msg = json!({"v": VERSION, "event": "pane_removed", "pane_id": id});
            lines.push_str(&msg.to_string());
            lines.push('\n');
        }
        let subs: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| c.subscribed)
            .map(|(t, _)| *t)
            .collect();
        for t in subs {
            if let Some(c) = self.clients.get_mut(&t) {
                push_out(c, &lines);
            }
            self.flush_client(t, reg);
        }
    }

    /// Close every client and remove the socket file.
    pub fn shutdown(&mut self, reg: &mio::Registry) {
        let ts: Vec<Token> = self.clients.keys().copied().collect();
        for t in ts {
            self.drop_client(t, reg, "shutdown");
        }
        let _ = reg.deregister(&mut self.listener);
        // Never another daemon's socket (one that took over this server after us).
        if self.socket_is_ours() {
            let _ = std::fs::remove_file(&self.path);
        } else {
            log::warn!(
                "api_socket_not_ours path={} reason=replaced",
                self.path.display()
            );
        }
    }
}

/// Refuse a connection with a reason the peer can read. Closing a socket with unread input
/// resets it, so what the peer already sent is read (without waiting: this runs in the one
/// loop) before the close. A peer that writes later gets `EPIPE` and can still read the reason.
fn refuse(mut stream: mio::net::UnixStream, answer: &str) {
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
}

/// Read from a client until a whole line is here, the kernel has no more, or the line is
/// over-long. Returns whether there is more to do (a line, an over-long line, or the end,
/// which sets `eof`).
fn read_some(c: &mut Client, eof: &mut bool) -> bool {
    let mut buf = [0u8; 8192];
    let mut more = false;
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => {
                *eof = true;
                more = true;
                break;
            }
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                if buf[..n].contains(&b'\n') || c.inbuf.len() > MAX_LINE {
                    more = true;
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                *eof = true;
                more = true;
                break;
            }
        }
    }
    more
}

fn push_out(c: &mut Client, s: &str) {
    // Past the cap the client is dropped at its next flush; stop growing the buffer.
    if c.outbuf.len() <= MAX_OUTBUF {
        c.outbuf.extend_from_slice(s.as_bytes());
    }
}
