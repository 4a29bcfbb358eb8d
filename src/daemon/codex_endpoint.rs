//! The Codex app-server as a supervised, registered source endpoint: C-001 (Flow-011 restart
//! contract) and C-014 (Flow-009 admission, Flow-013 lifecycle) applied to the one source the
//! daemon connects to itself.
//!
//! The seed's topology has the gateway pull from source servers over Unix sockets. Codex's
//! managed app-server daemon is exactly that: a server at
//! `$CODEX_HOME/app-server-control/app-server-control.sock`, owned by whoever started it. This
//! part decides which socket to use, when to (re)connect, and whether to trust what answers:
//!
//! - **Registry** (`source_registry_v1`, id `codex_appserver:<uid>`): the supervisor registers
//!   the discovered socket itself (`pending`, `registered_by=supervisor`) and re-points its own
//!   entry when the discovered path moves. An operator's registration wins: `agtmux source
//!   register codex_appserver PATH` makes the daemon use PATH. `agtmux source revoke
//!   codex_appserver` disconnects and keeps it disconnected (the panes fall back to the screen
//!   and hooks) until the operator registers it again.
//! - **Admission** (Flow-009): the listener's uid (`SO_PEERCRED`) must be ours, else the socket
//!   is refused (`peer_uid_mismatch`) before a byte is read, and tried again only when the socket
//!   file changes. The `initialize` handshake is this source's hello: once it is answered the
//!   entry is checked against the registry and becomes `active` (`handshake`, `reconnected`, or
//!   `socket_rotation` when a new daemon replaced the socket).
//! - **Heartbeat** (Flow-013): any frame from the server is a heartbeat. A quiet connection is
//!   pinged every third of the heartbeat timeout, so a live server always answers in time; with
//!   no frame for the timeout (30 s) the registry makes the entry `stale` and the connection is
//!   dropped as hung. An unreachable socket or a lost connection makes it `stale` at once.
//! - **Restarts** (Flow-011, [`Supervised`]): a failure is a connection that could not be made
//!   to work: a connect error other than "nothing listens", or a connection that ended before it
//!   had been initialized for [`STABLE_MS`]. Failures back off 1 s → 30 s (±20 %); 5 within
//!   10 min hold the source down for 5 min with `escalate`. Not failures: nothing listening (no
//!   Codex running is the normal case; tried again when the socket file changes, and after
//!   1 s, 2 s, … up to every 30 s),
//!   and the end of a connection that worked (the daemon exited; reconnect after 1 s).
//!
//! WHY here and not in the observer: the observer (`sources::codex_appserver`) is a protocol
//! state machine; policy about trust and restarts belongs to the supervisor and the registry,
//! which the rest of the runtime also reads (`health`, `@agtmux_daemon`, `agtmux source list`).
use super::admission::{RegState, SourceRegistry};
use super::conntrace::ConnTraces;
use crate::core::types::Millis;
use crate::sources::codex_appserver::{CodexObserver, ConnEnd, EndKind};
use crate::supervisor::{Restart, RestartPolicy, Supervised};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Registry kind of the Codex app-server source.
pub(crate) const KIND: &str = "codex_appserver";
/// A connection initialized at least this long has worked: its end is not a failure.
pub(crate) const STABLE_MS: Millis = 30_000;

/// Identity of a socket file: a re-created socket differs even if its inode is reused.
type SockId = (u64, u64, i64, i64);

fn sock_id(p: &Path) -> Option<SockId> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// Where the endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connect at this time.
    WaitUntil(Millis),
    /// Nothing listens at the path: try when the socket file changes, or at this time.
    Absent { retry_at: Millis },
    /// The listener was refused (another uid): try only when the socket file changes.
    Refused,
    /// A connection is open; `admitted` once its handshake passed the registry.
    Connected { admitted: bool },
    /// Too many failures: nothing until this time.
    HeldDown(Millis),
    /// The operator revoked the source.
    Revoked,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::WaitUntil(_) => "waiting",
            Phase::Absent { .. } => "absent",
            Phase::Refused => "refused",
            Phase::Connected { admitted: false } => "handshaking",
            Phase::Connected { admitted: true } => "connected",
            Phase::HeldDown(_) => "hold_down",
            Phase::Revoked => "revoked",
        }
    }
}

pub(crate) struct CodexEndpoint {
    /// The socket discovery found (`$AGTMUX_CODEX_SOCK`, else `$CODEX_HOME`'s).
    discovered: PathBuf,
    uid: u32,
    pub(crate) sup: Supervised,
    phase: Phase,
    /// Identity of the socket file at the target path when last looked at, and of the one
    /// last admitted (a different one on the next admission is a rotation).
    seen_id: Option<SockId>,
    admitted_id: Option<SockId>,
    /// The last heartbeat handed to the registry.
    last_hb: Millis,
    ever_admitted: bool,
    /// Ping a quiet connection this often (a third of the heartbeat timeout).
    ping_every: Millis,
    /// Connection traces (`admission → hello → pull_events`), current connection's id.
    conn: Option<u64>,
    /// "Nothing listens" answers in a row since the socket last changed: the next look comes
    /// after 1 s, 2 s, 4 s … up to the backoff maximum (a socket file can appear a moment
    /// before its daemon listens on it). Not failures: nothing is counted against the budget.
    absent_streak: u32,
}

impl CodexEndpoint {
    pub fn new(discovered: PathBuf, policy: RestartPolicy, heartbeat_timeout: Millis) -> Self {
        CodexEndpoint {
            uid: crate::sys::peercred::runtime_uid(),
            sup: Supervised::new(KIND, policy),
            phase: Phase::WaitUntil(0),
            seen_id: sock_id(&discovered),
            discovered,
            admitted_id: None,
            last_hb: 0,
            ever_admitted: false,
            ping_every: (heartbeat_timeout / 3).max(1),
            conn: None,
            absent_streak: 0,
        }
    }

    /// A fresh observer for `path`, in supervised mode.
    pub fn observer(&self, path: &Path, now: Millis) -> CodexObserver {
        let mut o = CodexObserver::new(path, now);
        o.set_supervised(Some(self.uid), self.ping_every);
        o
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The registry id of this source.
    pub fn source_id(&self) -> String {
        super::admission::source_id(KIND, self.uid)
    }

    /// Was a connection ever admitted (so Codex runs in daemon mode here)?
    pub(crate) fn ever_admitted(&self) -> bool {
        self.ever_admitted
    }

    /// What `@agtmux_daemon` must say whatever the panes: a hold-down (escalated) or a refused
    /// listener (someone else's socket where Codex's should be).
    pub fn fault(&self) -> Option<&'static str> {
        match self.phase {
            Phase::HeldDown(_) => Some("hold_down"),
            Phase::Refused => Some("peer_uid_mismatch"),
            _ => None,
        }
    }

    /// When `step` has something to do (besides the observer's own timers).
    pub fn next_deadline(&self) -> Option<Millis> {
        match self.phase {
            Phase::WaitUntil(t) | Phase::Absent { retry_at: t } | Phase::HeldDown(t) => Some(t),
            _ => None,
        }
    }

    /// One pass. `obs` may be replaced (new path, new socket file). Returns true when the
    /// observer was replaced (its threads are gone: bindings must be re-derived).
    pub fn step(
        &mut self,
        obs: &mut CodexObserver,
        reg: &mut SourceRegistry,
        traces: &mut ConnTraces,
        now: Millis,
    ) -> bool {
        let discovered = self.discovered.to_string_lossy().into_owned();
        let entry = reg.ensure_supervised(KIND, &discovered, self.uid, now);
        let target = entry
            .as_ref()
            .map(|e| PathBuf::from(&e.socket_path))
            .unwrap_or_else(|| self.discovered.clone());
        // The operator's word first: revoked means disconnected, and nothing else happens.
        let revoked = entry.as_ref().is_some_and(|e| e.state == RegState::Revoked);
        if self.follow_revocation(revoked, obs, traces, now) {
            return false;
        }
        let mut replaced = self.follow_registration(obs, traces, &target, now);
        if let Some(end) = obs.take_end() {
            self.on_end(end, reg, traces, now);
        }
        if let Phase::HeldDown(until) = self.phase
            && !self.sup.held_down(now)
        {
            log::info!("codex_appserver_hold_down_over held_until={until}");
            self.phase = Phase::WaitUntil(now);
        }
        replaced |= self.follow_socket_file(obs, &target, now);
        if let Some(end) = self.connect_when_due(obs, traces, &target, now) {
            self.on_end(end, reg, traces, now);
        }
        if let Phase::Connected { admitted } = self.phase {
            if !admitted && obs.is_connected() {
                self.admit(obs, reg, traces, &target, now);
            }
            if self.phase == (Phase::Connected { admitted: true }) {
                self.keep_alive(obs, reg, traces, now);
            }
        }
        replaced
    }

    /// The operator revoked the source: disconnect once and stay so (true while revoked). A
    /// registration after that starts over.
    fn follow_revocation(
        &mut self,
        revoked: bool,
        obs: &mut CodexObserver,
        traces: &mut ConnTraces,
        now: Millis,
    ) -> bool {
        if revoked {
            if self.phase != Phase::Revoked {
                let id = self.source_id();
                log::warn!("codex_appserver_revoked source_id={id} action=disconnect");
                obs.disconnect("source revoked by the operator", now);
                self.end_trace(traces, "revoked", now);
                self.phase = Phase::Revoked;
            }
            return true;
        }
        if self.phase == Phase::Revoked {
            log::info!(
                "codex_appserver_reregistered source_id={}",
                self.source_id()
            );
            self.phase = Phase::WaitUntil(now);
        }
        false
    }

    /// A registration elsewhere (operator) or a moved discovery (supervisor): a new endpoint,
    /// a new observer. True when it was replaced.
    fn follow_registration(
        &mut self,
        obs: &mut CodexObserver,
        traces: &mut ConnTraces,
        target: &Path,
        now: Millis,
    ) -> bool {
        if obs.sock_path() == target {
            return false;
        }
        log::info!(
            "codex_appserver_endpoint_changed from={} to={}",
            obs.sock_path().display(),
            target.display()
        );
        obs.disconnect("the registered socket changed", now);
        self.end_trace(traces, "socket_changed", now);
        *obs = self.observer(target, now);
        self.seen_id = sock_id(target);
        self.admitted_id = None;
        if !matches!(self.phase, Phase::HeldDown(_)) {
            self.phase = Phase::WaitUntil(now);
        }
        true
    }

    /// A new socket file while we are not connected: a new daemon. Start over with it now (a
    /// hold-down still holds). True when the observer was replaced.
    fn follow_socket_file(&mut self, obs: &mut CodexObserver, target: &Path, now: Millis) -> bool {
        let seen = sock_id(target);
        if seen == self.seen_id {
            return false;
        }
        self.seen_id = seen;
        if seen.is_none()
            || !matches!(
                self.phase,
                Phase::Absent { .. } | Phase::Refused | Phase::WaitUntil(_)
            )
        {
            return false;
        }
        log::info!("codex_appserver_socket_replaced path={}", target.display());
        *obs = self.observer(target, now);
        self.absent_streak = 0;
        self.phase = Phase::WaitUntil(now);
        true
    }

    /// Connect when the wait is over; a connection opens its trace (peer uid checked). A
    /// failed attempt gives how it ended.
    fn connect_when_due(
        &mut self,
        obs: &mut CodexObserver,
        traces: &mut ConnTraces,
        target: &Path,
        now: Millis,
    ) -> Option<ConnEnd> {
        let (Phase::WaitUntil(t) | Phase::Absent { retry_at: t }) = self.phase else {
            return None;
        };
        if now < t {
            return None;
        }
        if !obs.connect_now(now) {
            return obs.take_end();
        }
        let peer = obs.peer();
        self.conn = Some(traces.open(
            KIND,
            &target.to_string_lossy(),
            peer.map(|p| p.pid),
            peer.map(|p| p.uid),
            now,
        ));
        self.trace(
            traces,
            "admission",
            "peer uid checked (socket peer credentials)",
            now,
        );
        self.absent_streak = 0;
        self.phase = Phase::Connected { admitted: false };
        None
    }

    /// An admitted connection: frames are heartbeats; the registry's heartbeat timeout made
    /// it stale with nothing since, and it is ended as a failure.
    fn keep_alive(
        &mut self,
        obs: &mut CodexObserver,
        reg: &mut SourceRegistry,
        traces: &mut ConnTraces,
        now: Millis,
    ) {
        let id = self.source_id();
        if let Some(rx) = obs.last_rx()
            && rx > self.last_hb
        {
            reg.heartbeat(&id, rx);
            self.last_hb = rx;
            if let Some(c) = self.conn {
                traces.heartbeat(c);
            }
        }
        if reg.entry(&id).is_some_and(|e| e.state == RegState::Stale) {
            let why = format!(
                "no frame from the app-server for {} ms (heartbeat timeout)",
                now - self.last_hb
            );
            obs.disconnect(&why, now);
            self.end_trace(traces, "heartbeat_timeout", now);
            self.failure(&why, now);
        }
    }

    /// The handshake (`initialize`) was answered: Flow-009 registry admission.
    fn admit(
        &mut self,
        obs: &mut CodexObserver,
        reg: &mut SourceRegistry,
        traces: &mut ConnTraces,
        target: &Path,
        now: Millis,
    ) {
        let peer_uid = obs.peer().map_or(u32::MAX, |p| p.uid);
        let current = sock_id(target);
        let why = if !self.ever_admitted {
            "handshake"
        } else if current != self.admitted_id {
            "socket_rotation"
        } else {
            "reconnected"
        };
        match reg.admit_pulled(
            KIND,
            &target.to_string_lossy(),
            peer_uid,
            self.uid,
            why,
            now,
        ) {
            Ok(_) => {
                self.phase = Phase::Connected { admitted: true };
                self.sup.on_ready();
                self.ever_admitted = true;
                self.admitted_id = current;
                self.last_hb = obs.last_rx().unwrap_or(now);
                self.trace(traces, "hello", &format!("initialize answered; {why}"), now);
                log::info!(
                    "codex_appserver_connected path={} reason={why}",
                    target.display()
                );
            }
            Err(r) => {
                obs.disconnect(r.code(), now);
                self.end_trace(traces, r.code(), now);
                self.phase = Phase::Refused;
            }
        }
    }

    fn on_end(
        &mut self,
        end: ConnEnd,
        reg: &mut SourceRegistry,
        traces: &mut ConnTraces,
        now: Millis,
    ) {
        let id = self.source_id();
        match end.kind {
            EndKind::Unreachable => {
                reg.mark_stale(&id, "socket_unreachable", now);
                if !matches!(self.phase, Phase::Absent { .. }) {
                    log::debug!("codex_appserver_absent reason={:?}", end.reason);
                }
                let p = self.sup.policy();
                let delay = p
                    .backoff_base
                    .saturating_mul(1u64 << self.absent_streak.min(16))
                    .min(p.backoff_max);
                self.absent_streak = self.absent_streak.saturating_add(1);
                self.phase = Phase::Absent {
                    retry_at: now + delay as Millis,
                };
            }
            EndKind::PeerRejected { peer_uid } => {
                // Counted and logged by the registry like any admission reject.
                let path = self.discovered.to_string_lossy().into_owned();
                let target = reg
                    .entry(&id)
                    .map(|e| e.socket_path.clone())
                    .unwrap_or(path);
                let _ = reg.admit_pulled(KIND, &target, peer_uid, self.uid, "", now);
                reg.mark_stale(&id, "peer_uid_mismatch", now);
                self.phase = Phase::Refused;
            }
            EndKind::ConnectFailed => {
                reg.mark_stale(&id, "socket_unreachable", now);
                self.failure(&end.reason, now);
            }
            EndKind::Lost {
                lived_ms,
                initialized,
            } => {
                reg.mark_stale(&id, "connection_lost", now);
                self.end_trace(traces, &end.reason, now);
                if initialized && lived_ms >= STABLE_MS {
                    log::info!(
                        "codex_appserver_ended lived_ms={lived_ms} reason={:?} retry_in_ms={}",
                        end.reason,
                        self.sup.policy().backoff_base
                    );
                    self.phase = Phase::WaitUntil(now + self.sup.policy().backoff_base as Millis);
                } else {
                    self.failure(&end.reason, now);
                }
            }
        }
    }

    /// Flow-011: a failure is paced by the supervisor (backoff or hold-down).
    fn failure(&mut self, why: &str, now: Millis) {
        self.phase = match self.sup.on_failure(now, why) {
            Restart::At(t) => Phase::WaitUntil(t),
            Restart::HoldDown { until } => Phase::HeldDown(until),
        };
    }

    fn trace(&self, traces: &mut ConnTraces, step: &str, detail: &str, now: Millis) {
        if let Some(c) = self.conn {
            traces.step(c, step, detail, now);
        }
    }

    /// Count pulled events on the current connection's trace.
    pub fn pulled(&self, traces: &mut ConnTraces, n: usize, now: Millis) {
        if let Some(c) = self.conn
            && n > 0
        {
            traces.pulled(c, n, now);
        }
    }

    fn end_trace(&mut self, traces: &mut ConnTraces, why: &str, now: Millis) {
        if let Some(c) = self.conn.take() {
            traces.close(c, why, now);
        }
    }

    /// `health` / `metrics` view.
    pub fn json(&self, path: &Path) -> serde_json::Value {
        let mut v = self.sup.json();
        if let Some(o) = v.as_object_mut() {
            o.insert("phase".into(), self.phase.as_str().into());
            o.insert("socket".into(), path.to_string_lossy().into_owned().into());
            if let Some(t) = self.next_deadline() {
                o.insert("next_attempt_ts".into(), t.into());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Unix socket bound at `path` but not listening yet: connects are refused.
    fn bound_not_listening(path: &Path) -> std::os::fd::OwnedFd {
        crate::sys::sock::bind_unix_unlistened(path).unwrap()
    }

    #[test]
    fn nothing_listening_is_retried_soon_then_less_often_and_is_no_failure() {
        let dir = std::env::temp_dir().join(format!("agtmux-ep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let fd = bound_not_listening(&sock);
        let mut ep = CodexEndpoint::new(sock.clone(), RestartPolicy::default(), 30_000);
        let mut obs = ep.observer(&sock, 0);
        let mut reg = SourceRegistry::empty();
        let mut tr = ConnTraces::default();
        let mut due = Vec::new();
        let mut now = 1_000;
        for _ in 0..7 {
            ep.step(&mut obs, &mut reg, &mut tr, now);
            let Phase::Absent { retry_at } = ep.phase() else {
                panic!("{:?}", ep.phase());
            };
            due.push(retry_at - now);
            now = retry_at;
        }
        assert_eq!(due, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(ep.sup.restarts, 0, "nothing listening is no failure");
        assert_eq!(ep.fault(), None);
        // The same socket starts listening: the next look connects.
        crate::sys::sock::listen(&fd, 4).unwrap();
        ep.step(&mut obs, &mut reg, &mut tr, now);
        assert_eq!(ep.phase(), Phase::Connected { admitted: false });
        assert_eq!(
            tr.recent_json(1)[0]["steps"][0]["step"],
            "admission",
            "the connection is traced"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
