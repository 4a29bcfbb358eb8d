//! The control-mode client (C-002 groundwork): one supervised `tmux -C` child whose pipes live
//! in the daemon's mio loop. It queues command lines, matches reply blocks to them in FIFO
//! order, and hands notifications up. It never forks `tmux` per command.
//!
//! How it attaches, and why: a control client must be attached to some session, and tmux
//! counts it in that session's `session_attached` whatever its flags. So it attaches to an
//! existing session with `-f no-output,ignore-size` (no `%output` traffic, no influence on
//! window sizes; `attach-session` never creates a session, so an empty server stays empty),
//! and once attached the daemon moves it into a session of its own (`control_session`), where
//! it makes no user session look attached. When that session dies we get `%exit` and do it all
//! again; when the server has no session left it exits, we see EOF, find the socket dead, and
//! the daemon exits with it. `-N` makes sure we never start a server ourselves.
//!
//! The 3.3a start-up race: commands written before the initial attach completes may run first
//! and fail with "no current client". So nothing is flushed until the first F=0 block (the
//! attach's own reply) arrives.
use super::parser::{self, Event, Notification, Parser, Reply};
use crate::core::types::PaneId;
use crate::supervisor::ChildProc;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;

/// What a queued command's reply is for; the daemon dispatches on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// Server identity: pid, start time, version.
    Identity,
    /// The pane registry refresh (`list-panes -a`).
    ListPanes,
    /// One agent pane's change hints (`display -p -t %N`).
    Hints(PaneId),
    /// Which sessions real (non-control) clients look at.
    ListClients,
    /// The user's sessions (`list-sessions`, ours filtered out): names, and whether any is left.
    ListSessions,
    /// Moving into the daemon's own session (`control_session::ENTER`).
    EnterSession,
    /// A client that entered our session: move it on unless it is a control client.
    Arrival(String),
    /// Our own window in our session and the session we came from (`control_session::OWN`).
    OwnWindow,
    /// A screen capture for the poller.
    Capture(PaneId),
    /// The pane subscription (`refresh-client -B`, tmux ≥ 3.2); fails on older tmux.
    Subscribe,
    /// An option write; the payload names what to invalidate if it fails.
    SetOption(String),
    /// A notification batch's query (`daemon::notify`): an option name, `ttys` or `clients`.
    Notify(String),
    /// `show-options -g`, for the `@agtmux-*` user options (read at connect and again when
    /// the plugin is sourced).
    UserOptions,
    /// Anything whose reply is ignored.
    Other,
}

/// What the client tells the daemon.
#[derive(Debug)]
pub(crate) enum ClientEvent {
    /// The initial attach completed; queued commands are now flushed.
    Ready,
    Reply(ReplyKind, Reply),
    Notification(Notification),
    /// The connection ended (`%exit` or EOF); `reason` from `%exit` when given.
    Closed {
        reason: Option<String>,
    },
}

pub(crate) struct TmuxClient {
    proc: ChildProc,
    parser: Parser,
    pending: VecDeque<ReplyKind>,
    /// Bytes not yet written to tmux's stdin.
    out: Vec<u8>,
    ready: bool,
    /// What tmux wrote on stderr (bounded), e.g. why an attach failed.
    stderr_text: String,
    closed: bool,
    /// Stats: reply blocks and unknown lines seen.
    pub(crate) replies: u64,
    pub(crate) unknown_lines: u64,
}

impl TmuxClient {
    /// Start `tmux -N -S <socket> -C attach-session -f no-output,ignore-size`.
    pub fn spawn(tmux_bin: &str, socket: &Path) -> io::Result<TmuxClient> {
        let mut cmd = Command::new(tmux_bin);
        cmd.arg("-N").arg("-S").arg(socket).arg("-C").args([
            "attach-session",
            "-f",
            "no-output,ignore-size",
        ]);
        // Never let a user's TMUX/TMUX_PANE leak in: this client talks to the named socket only.
        cmd.env_remove("TMUX").env_remove("TMUX_PANE");
        let proc = ChildProc::spawn("tmux-control", &mut cmd)?;
        Ok(TmuxClient {
            proc,
            parser: Parser::new(parser::DEFAULT_MAX_LINE),
            pending: VecDeque::new(),
            out: Vec::new(),
            ready: false,
            stderr_text: String::new(),
            closed: false,
            replies: 0,
            unknown_lines: 0,
        })
    }

    pub(crate) fn stdout_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.proc.stdout.as_raw_fd()
    }

    pub(crate) fn stdin_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.proc.stdin.as_raw_fd()
    }

    pub(crate) fn stderr_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.proc.stderr.as_raw_fd()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready && !self.closed
    }

    /// Commands written but not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether a reply of this kind is still outstanding (to avoid piling up refreshes).
    pub(crate) fn has_pending(&self, kind: &ReplyKind) -> bool {
        self.pending.iter().any(|k| k == kind)
    }

    /// Queue one command line (no newline inside). It is written once the client is ready.
    pub fn send(&mut self, command: &str, kind: ReplyKind) {
        if self.closed {
            return;
        }
        debug_assert!(!command.contains('\n'));
        self.out.extend_from_slice(command.as_bytes());
        self.out.push(b'\n');
        self.pending.push_back(kind);
    }

    /// Write what is queued, until the pipe would block. Returns true when all was written.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        if !self.ready || self.closed {
            return Ok(self.out.is_empty());
        }
        while !self.out.is_empty() {
            match self.proc.stdin.write(&self.out) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "tmux stdin closed",
                    ));
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Read stdout until it would block (the poll is edge-triggered) and turn it into events.
    pub fn on_readable(&mut self, events: &mut Vec<ClientEvent>) {
        let mut buf = [0u8; 64 * 1024];
        let mut parsed = Vec::new();
        loop {
            match self.proc.stdout.read(&mut buf) {
                Ok(0) => {
                    self.parser.finish(&mut parsed);
                    self.dispatch(&mut parsed, events);
                    self.close(None, events);
                    return;
                }
                Ok(n) => self.parser.feed(&buf[..n], &mut parsed),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("tmux_read_failed err={e}");
                    self.close(None, events);
                    return;
                }
            }
        }
        self.dispatch(&mut parsed, events);
    }

    /// Drain stderr into the log (tmux reports attach failures there).
    pub(crate) fn drain_stderr(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.proc.stderr.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let s = String::from_utf8_lossy(&buf[..n]);
                    log::info!("tmux_stderr msg={:?}", s.trim());
                    self.stderr_text.push_str(&s);
                    if self.stderr_text.len() > 1024 {
                        let cut = crate::core::text::ceil_char_boundary(
                            &self.stderr_text,
                            self.stderr_text.len() - 1024,
                        );
                        self.stderr_text.drain(..cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn dispatch(&mut self, parsed: &mut Vec<Event>, events: &mut Vec<ClientEvent>) {
        for ev in parsed.drain(..) {
            match ev {
                Event::Reply(r) | Event::Unterminated(r) => {
                    self.replies += 1;
                    if !r.from_client() {
                        // F=0: the attach itself (or a hook's command); the first one means the
                        // client is attached and may now send.
                        if !self.ready {
                            self.ready = true;
                            events.push(ClientEvent::Ready);
                        }
                        continue;
                    }
                    match self.pending.pop_front() {
                        Some(kind) => events.push(ClientEvent::Reply(kind, r)),
                        None => log::warn!("tmux_unmatched_reply number={}", r.number),
                    }
                }
                Event::Notification(Notification::Exit { reason }) => {
                    let reason = reason.map(|r| String::from_utf8_lossy(&r).into_owned());
                    self.close(reason, events);
                }
                Event::Notification(n) => events.push(ClientEvent::Notification(n)),
                Event::Unknown(l) | Event::Overlong(l) => {
                    self.unknown_lines += 1;
                    log::debug!(
                        "tmux_unknown_line line={:?}",
                        String::from_utf8_lossy(&l[..l.len().min(200)])
                    );
                }
            }
        }
    }

    fn close(&mut self, reason: Option<String>, events: &mut Vec<ClientEvent>) {
        if !self.closed {
            self.closed = true;
            events.push(ClientEvent::Closed { reason });
        }
    }

    /// Was this connection ever attached (its first F=0 block seen)?
    pub(crate) fn was_ready(&self) -> bool {
        self.ready
    }

    /// tmux's stderr so far (why an attach failed).
    pub(crate) fn stderr_text(&self) -> &str {
        &self.stderr_text
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Ask tmux to detach us cleanly, then make sure the child is gone.
    pub fn shutdown(&mut self) {
        if !self.closed && self.ready {
            let _ = self.proc.stdin.write_all(b"\n");
        }
        self.proc.terminate();
    }

    pub(crate) fn try_reap(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.try_reap()
    }
}

/// Does the server on `socket` have a session to attach to? One plain command client
/// (`has-session`), run only before a control client is spawned: a control client that is
/// still attaching when a session is created crashes a tmux 3.3a server (upstream #4980), so
/// on an empty server we ask this way instead of attaching to find out. `None` when tmux could
/// not be run, or did not answer within [`HAS_SESSION_LIMIT`] (a stopped server: the daemon's
/// loop must not wait for it; the attach will then say why).
pub(crate) fn has_sessions(tmux_bin: &str, socket: &Path) -> Option<bool> {
    use crate::sys::bounded::{Bounded, status_within};
    let mut c = Command::new(tmux_bin);
    c.arg("-N")
        .arg("-S")
        .arg(socket)
        .arg("has-session")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match status_within(&mut c, HAS_SESSION_LIMIT).ok()? {
        Bounded::Exited(s) => Some(s.success()),
        Bounded::TimedOut => {
            log::warn!(
                "tmux_command_timeout what=has-session limit_ms={}",
                HAS_SESSION_LIMIT.as_millis()
            );
            None
        }
    }
}

/// The longest [`has_sessions`] waits for tmux.
const HAS_SESSION_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Is a tmux server listening on `socket`? A cheap connect, no fork.
pub(crate) fn server_alive(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}
