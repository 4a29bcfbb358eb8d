//! The tmux control connection's lifecycle: spawn and register it, read its events (replies
//! and notifications go on to `registry_sync.rs`), flush queued commands, and re-attach or
//! back off when it ends (Flow-011 supervision).
//!
//! WHY a module of its own: when and how the connection is (re)made is one concern; the loop
//! only routes its readiness here.
use super::{Runtime, TMUX_ERR, TMUX_IN, TMUX_OUT};
use crate::core::types::Millis;
use crate::supervisor::Restart;
use crate::supervisor::{RestartPolicy, Supervised};
use crate::sys::clock::now_ms;
use crate::tmux::client::{ClientEvent, ReplyKind, TmuxClient, has_sessions, server_alive};
use crate::tmux::control_session;
use crate::tmux::options::OptionsWriter;
use crate::tmux::registry;
use mio::Interest;
use mio::unix::SourceFd;

/// The tmux side of the loop: the control client, its restart pacing, and what this
/// connection learnt of the server.
pub(super) struct TmuxSide {
    pub(super) client: Option<TmuxClient>,
    pub(super) bin: String,
    /// Flow-011: restart pacing and hold-down of the control client.
    pub(super) sup: Supervised,
    pub(super) reconnect_at: Option<Millis>,
    pub(super) identity: Option<String>,
    /// Our window in our own session and the session the control client came from
    /// (`control_session::OWN`), for this connection.
    pub(super) own_window: Option<(String, String)>,
    /// The server had no session at the last connect attempt (logged once).
    pub(super) waiting_for_session: bool,
}

impl TmuxSide {
    pub(super) fn new(bin: String) -> TmuxSide {
        TmuxSide {
            client: None,
            bin,
            sup: Supervised::new("tmux_control", RestartPolicy::from_env()),
            reconnect_at: Some(0),
            identity: None,
            own_window: None,
            waiting_for_session: false,
        }
    }

    /// The control client, once attached and past its first reply.
    pub(super) fn is_ready(&self) -> bool {
        self.client.as_ref().is_some_and(|t| t.is_ready())
    }
}

/// Re-attach delay after our session closed under us.
const REATTACH_MS: Millis = 50;

/// How often to look for a first session on a server that has none.
const NO_SESSION_RETRY_MS: Millis = 1_000;

impl Runtime {
    pub(super) fn connect(&mut self, now: Millis) {
        self.tmux.reconnect_at = None;
        if !server_alive(&self.sp.socket) {
            log::info!(
                "daemon_exit reason=server_gone socket={}",
                self.sp.socket.display()
            );
            self.life.shutdown = true;
            return;
        }
        // An empty server (`exit-empty off`, or a config loading before the first session):
        // wait for a session without attaching (see `has_sessions`).
        if has_sessions(&self.tmux.bin, &self.sp.socket) == Some(false) {
            if !self.tmux.waiting_for_session {
                log::info!("tmux_control_waiting reason=no_sessions");
            }
            self.tmux.waiting_for_session = true;
            self.tmux.reconnect_at = Some(now + NO_SESSION_RETRY_MS);
            return;
        }
        self.tmux.waiting_for_session = false;
        match TmuxClient::spawn(&self.tmux.bin, &self.sp.socket) {
            Ok(c) => {
                let reg = self.poll.registry();
                let ok = reg
                    .register(&mut SourceFd(&c.stdout_fd()), TMUX_OUT, Interest::READABLE)
                    .and_then(|_| {
                        reg.register(&mut SourceFd(&c.stderr_fd()), TMUX_ERR, Interest::READABLE)
                    })
                    .and_then(|_| {
                        reg.register(&mut SourceFd(&c.stdin_fd()), TMUX_IN, Interest::WRITABLE)
                    });
                if let Err(e) = ok {
                    log::error!("tmux_register_failed err={e}");
                    self.schedule_reconnect(now);
                    return;
                }
                log::info!("tmux_control_spawned pid={}", c.pid());
                self.tmux.client = Some(c);
            }
            Err(e) => {
                log::warn!("tmux_spawn_failed err={e}");
                self.schedule_reconnect(now);
            }
        }
    }

    /// A control connection ended while the server lives. Not every end is a failure: the
    /// session we were attached to was closed (users kill sessions all the time), or the
    /// server has no session yet (a config that loads before the first session). Only a
    /// client that never attached for another reason, or died without `%exit`, counts
    /// against the supervisor's budget; the others re-attach at once or wait politely.
    fn reconnect_after_close(&mut self, now: Millis, was_ready: bool, no_sessions: bool) {
        if was_ready {
            log::info!("tmux_control_reattach reason=session_closed_or_detached");
            self.tmux.sup.on_ready();
            self.tmux.reconnect_at = Some(now + REATTACH_MS);
        } else if no_sessions {
            log::info!("tmux_control_waiting reason=no_sessions");
            self.tmux.reconnect_at = Some(now + NO_SESSION_RETRY_MS);
        } else {
            self.schedule_reconnect(now);
        }
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        self.schedule_reconnect_why(now, "control_client_down");
    }

    /// Flow-011: a failure of the control client is paced by its supervisor; too many put it
    /// in a hold-down, escalated in the log and in `@agtmux_daemon`.
    fn schedule_reconnect_why(&mut self, now: Millis, why: &str) {
        match self.tmux.sup.on_failure(now, why) {
            Restart::At(t) => self.tmux.reconnect_at = Some(t),
            Restart::HoldDown { until } => {
                self.tmux.reconnect_at = Some(until);
                // The control connection is what publishes options, and it is down: say it
                // with a one-shot client.
                let status = self.daemon_status();
                self.publish.last_status = status.clone();
                let mut c = std::process::Command::new(&self.tmux.bin);
                c.arg("-S")
                    .arg(&self.sp.socket)
                    .args(["set-option", "-g", "@agtmux_daemon", &status])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                // Bounded: a stopped tmux server must not wedge the daemon's loop.
                let ok = crate::daemon::supervise::tmux_once(&mut c, "escalate");
                log::warn!("escalate_published status={status:?} ok={ok}");
            }
        }
    }

    pub(super) fn drop_tmux(&mut self) {
        self.publish.notify.connection_lost();
        self.tmux.own_window = None;
        if let Some(mut c) = self.tmux.client.take() {
            let reg = self.poll.registry();
            let _ = reg.deregister(&mut SourceFd(&c.stdout_fd()));
            let _ = reg.deregister(&mut SourceFd(&c.stderr_fd()));
            let _ = reg.deregister(&mut SourceFd(&c.stdin_fd()));
            c.drain_stderr();
            c.shutdown();
        }
    }

    pub(super) fn on_tmux_readable(&mut self) {
        let mut evs = Vec::new();
        if let Some(t) = self.tmux.client.as_mut() {
            t.on_readable(&mut evs);
        }
        let now = now_ms();
        for ev in evs {
            match ev {
                ClientEvent::Ready => {
                    log::info!("tmux_control_ready");
                    self.tmux.sup.on_ready();
                    if let Some(t) = self.tmux.client.as_mut() {
                        // Out of the user's session into our own, first (issue 20): a control
                        // client counts as attached wherever it sits.
                        t.send(control_session::ENTER, ReplyKind::EnterSession);
                        t.send(registry::IDENTITY, ReplyKind::Identity);
                        t.send("show-options -g", ReplyKind::UserOptions);
                        self.publish.notify.load_options(t);
                        // Pane states an earlier daemon published (killed before it could
                        // clear them): each is rewritten or cleared by the next publish.
                        t.send(registry::PUBLISHED_PANES, ReplyKind::Other);
                        t.send(&registry::subscribe_panes_command(), ReplyKind::Subscribe);
                        t.send(&registry::subscribe_options_command(), ReplyKind::Other);
                    }
                    self.due.refresh_requested = true;
                    self.publish.all = true;
                    // Options may have been lost with a server restart: re-send everything.
                    self.publish.options = OptionsWriter::new();
                }
                ClientEvent::Reply(kind, reply) => self.on_reply(kind, reply, now),
                ClientEvent::Notification(n) => self.on_notification(n, now),
                ClientEvent::Closed { reason } => {
                    log::info!(
                        "tmux_control_closed reason={}",
                        reason.as_deref().unwrap_or("eof")
                    );
                    let (was_ready, no_sessions) = match self.tmux.client.as_mut() {
                        Some(t) => {
                            t.drain_stderr();
                            (t.was_ready(), t.stderr_text().contains("no sessions"))
                        }
                        None => (false, false),
                    };
                    self.drop_tmux();
                    if server_alive(&self.sp.socket) {
                        self.reconnect_after_close(now, was_ready, no_sessions);
                    } else {
                        log::info!("daemon_exit reason=server_gone");
                        self.life.shutdown = true;
                    }
                }
            }
        }
        self.flush_tmux();
    }

    pub(super) fn on_tmux_stderr(&mut self) {
        if let Some(t) = self.tmux.client.as_mut() {
            t.drain_stderr();
        }
    }

    pub(super) fn flush_tmux(&mut self) {
        if let Some(t) = self.tmux.client.as_mut()
            && let Err(e) = t.flush()
        {
            log::warn!("tmux_write_failed err={e}");
        }
    }

    pub(super) fn reap(&mut self) {
        self.publish.notify.reap(now_ms());
        self.sources.remotes.reap(self.poll.registry(), now_ms());
        if let Some(t) = self.tmux.client.as_mut()
            && let Some(status) = t.try_reap()
        {
            log::info!("tmux_control_exited status={status}");
            // Read what is left (the %exit line), then handle the close.
            self.on_tmux_readable();
            if self.tmux.client.as_ref().is_some_and(|t| !t.is_closed()) {
                self.drop_tmux();
                self.schedule_reconnect(now_ms());
            }
        }
    }
}
