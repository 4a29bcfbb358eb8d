//! Per source connection tracing (seed Observability, Post-MVP: "source connection 単位で
//! `admission -> hello -> pull_events` を追跡"): one record per source connection, in and out.
//!
//! - The Codex app-server connection the daemon opens (`daemon::codex_endpoint`): `admission`
//!   (the listener's uid checked), `hello` (its `initialize` answered and the registry matched),
//!   `pull_events` (the first events pulled, then a running count), `closed` with the reason.
//! - Connections to the API socket that are refused at admission, or that say `source.hello`:
//!   `admission`, `hello` (admitted or refused with the reason), heartbeats, `closed`.
//!   Plain CLI connections (`ls`, the popup) are not traced: they are not sources.
//!
//! WHY: when a source is `stale` or refused, the operator needs the story of its connections
//! (when it connected, who it was, where it stopped), not just the last state. Memory is
//! bounded: the newest [`MAX_TRACES`] connections are kept (`agtmux trace --connection ID`,
//! `agtmux source list --connections`).
use crate::core::types::Millis;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Connections kept.
pub(crate) const MAX_TRACES: usize = 256;
/// Steps kept per connection (the first ones, then the last: `pull_events` is a counter).
const MAX_STEPS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub ts: Millis,
    pub step: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnTrace {
    pub id: u64,
    /// The source kind (for an API connection: `api` until its hello names one).
    pub kind: String,
    /// The socket: the one connected to, or the API socket accepted on.
    pub socket: String,
    pub(crate) peer_pid: Option<i32>,
    pub peer_uid: Option<u32>,
    pub(crate) opened: Millis,
    pub steps: Vec<Step>,
    pub pulled: u64,
    pub heartbeats: u64,
    pub closed: Option<(Millis, String)>,
}

impl ConnTrace {
    pub fn json(&self) -> Value {
        json!({
            "connection": conn_str(self.id),
            "kind": self.kind,
            "socket": self.socket,
            "peer_pid": self.peer_pid,
            "peer_uid": self.peer_uid,
            "opened_ts": self.opened,
            "steps": self.steps.iter().map(|s| json!({
                "step": s.step, "ts_ms": s.ts, "since_open_ms": s.ts - self.opened,
                "detail": s.detail})).collect::<Vec<_>>(),
            "events_pulled": self.pulled,
            "heartbeats": self.heartbeats,
            "closed_ts": self.closed.as_ref().map(|c| c.0),
            "closed_reason": self.closed.as_ref().map(|c| c.1.clone()),
        })
    }
}

/// `c<N>`: how a connection is named in logs, `trace` and `source list`.
pub(crate) fn conn_str(id: u64) -> String {
    format!("c{id}")
}

/// Parse `c<N>` (or a bare number).
pub(crate) fn parse_conn(s: &str) -> Option<u64> {
    s.strip_prefix('c').unwrap_or(s).parse().ok()
}

#[derive(Debug, Default)]
pub struct ConnTraces {
    next: u64,
    ring: VecDeque<ConnTrace>,
}

impl ConnTraces {
    /// A new connection; returns its id.
    pub fn open(
        &mut self,
        kind: &str,
        socket: &str,
        peer_pid: Option<i32>,
        peer_uid: Option<u32>,
        now: Millis,
    ) -> u64 {
        self.next += 1;
        if self.ring.len() >= MAX_TRACES {
            self.ring.pop_front();
        }
        self.ring.push_back(ConnTrace {
            id: self.next,
            kind: kind.to_string(),
            socket: socket.to_string(),
            peer_pid,
            peer_uid,
            opened: now,
            steps: Vec::new(),
            pulled: 0,
            heartbeats: 0,
            closed: None,
        });
        log::debug!(
            "source_connection conn={} kind={kind} socket={socket} peer_uid={peer_uid:?}",
            conn_str(self.next)
        );
        self.next
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut ConnTrace> {
        self.ring.iter_mut().rev().find(|t| t.id == id)
    }

    pub fn get(&self, id: u64) -> Option<&ConnTrace> {
        self.ring.iter().rev().find(|t| t.id == id)
    }

    /// Record a step (`admission`, `hello`, ...).
    pub fn step(&mut self, id: u64, step: &str, detail: &str, now: Millis) {
        if let Some(t) = self.get_mut(id) {
            if t.steps.len() >= MAX_STEPS {
                t.steps.remove(MAX_STEPS / 2);
            }
            t.steps.push(Step {
                ts: now,
                step: step.to_string(),
                detail: detail.to_string(),
            });
        }
    }

    /// Name the kind once a hello says what the connection is.
    pub(crate) fn set_kind(&mut self, id: u64, kind: &str) {
        if let Some(t) = self.get_mut(id) {
            t.kind = kind.to_string();
        }
    }

    /// `n` events pulled over the connection; the first pull is a `pull_events` step.
    pub fn pulled(&mut self, id: u64, n: usize, now: Millis) {
        let first = self.get(id).is_some_and(|t| t.pulled == 0);
        if first {
            self.step(id, "pull_events", &format!("first {n} event(s)"), now);
        }
        if let Some(t) = self.get_mut(id) {
            t.pulled += n as u64;
        }
    }

    pub fn heartbeat(&mut self, id: u64) {
        if let Some(t) = self.get_mut(id) {
            t.heartbeats += 1;
        }
    }

    /// The connection ended (first reason wins).
    pub fn close(&mut self, id: u64, why: &str, now: Millis) {
        if let Some(t) = self.get_mut(id)
            && t.closed.is_none()
        {
            t.closed = Some((now, why.to_string()));
            let (steps, pulled) = (t.steps.len(), t.pulled);
            log::debug!(
                "source_connection_closed conn={} reason={why:?} steps={steps} events_pulled={pulled}",
                conn_str(id)
            );
        }
    }

    /// The newest `n` connections, newest first.
    pub(crate) fn recent_json(&self, n: usize) -> Value {
        Value::Array(
            self.ring
                .iter()
                .rev()
                .take(n)
                .map(ConnTrace::json)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_story_is_kept_in_order_and_bounded() {
        let mut t = ConnTraces::default();
        let c = t.open("codex_appserver", "/s", Some(9), Some(0), 100);
        t.step(c, "admission", "uid ok", 101);
        t.step(c, "hello", "initialize answered", 120);
        t.pulled(c, 3, 130);
        t.pulled(c, 2, 140);
        t.close(c, "EOF", 150);
        t.close(c, "later reason loses", 160);
        let j = t.get(c).unwrap().json();
        assert_eq!(
            crate::testutil::names(&j["steps"], "step"),
            ["admission", "hello", "pull_events"]
        );
        assert_eq!(j["events_pulled"], 5);
        assert_eq!(j["steps"][1]["since_open_ms"], 20);
        assert_eq!(j["closed_reason"], "EOF");
        assert_eq!(parse_conn(&conn_str(c)), Some(c));
        // Bounded: the oldest go first.
        for i in 0..(MAX_TRACES as i64 + 5) {
            t.open("api", "/a", None, None, 200 + i);
        }
        assert!(t.get(c).is_none());
        assert_eq!(t.recent_json(1000).as_array().unwrap().len(), MAX_TRACES);
        for _ in 0..(MAX_STEPS * 3) {
            t.step(t.next, "heartbeat", "", 1);
        }
        assert_eq!(t.get(t.next).unwrap().steps.len(), MAX_STEPS);
    }
}
