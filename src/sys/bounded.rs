//! Run a short-lived child (a one-shot `tmux` client) with a bounded wait.
//!
//! WHY (issue 16): a tmux server stopped with SIGSTOP, or wedged, accepts a client's
//! connection and then never answers, so `Command::status()` on a one-shot `tmux set-option`
//! waits forever. The keeper (and the daemon's escalation path) must go on regardless: a child
//! past its limit is killed and reaped, and the caller is told it timed out.
use std::io::{self, Read};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a bounded run came to.
#[derive(Debug)]
pub(crate) enum Bounded {
    /// The child exited within the limit.
    Exited(ExitStatus),
    /// The child was still running at the limit: it was killed and reaped.
    TimedOut,
}

impl Bounded {
    /// Exited with status 0.
    pub(crate) fn success(&self) -> bool {
        matches!(self, Bounded::Exited(s) if s.success())
    }
}

/// Spawn `cmd` and wait for it at most `limit` (polling, a few ms apart). Give it no pipes it
/// could block on: set stdin/stdout/stderr to null (or inherit) before calling.
pub(crate) fn status_within(cmd: &mut Command, limit: Duration) -> io::Result<Bounded> {
    let child = cmd.spawn()?;
    wait_until(child, Instant::now() + limit)
}

/// Run `cmd` with stdin closed and its output captured, waiting at most `limit`; `None` when it
/// was still running then (it is killed and reaped). For the CLI's one-shot `tmux` queries
/// (doctor, next, act): a stopped tmux server must give the user an answer, not a hang.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> io::Result<Option<Output>> {
    let deadline = Instant::now() + limit;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // A reader per pipe, so a child that fills one pipe while we wait cannot stall.
    let (tx, rx) = mpsc::channel();
    for (is_err, pipe) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send((is_err, buf));
        });
    }
    drop(tx);
    let status = match wait_until(child, deadline)? {
        Bounded::Exited(st) => st,
        Bounded::TimedOut => return Ok(None),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    // The pipes close when the child exits (unless it left a grandchild holding them: then
    // what was read by the deadline, plus a moment, is what we have).
    let grace = deadline.max(Instant::now()) + Duration::from_millis(200);
    for _ in 0..2 {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok((true, b)) => stderr = b,
            Ok((false, b)) => stdout = b,
            Err(_) => break,
        }
    }
    Ok(Some(Output {
        status,
        stdout,
        stderr,
    }))
}

/// Poll `child` until it exits or `deadline` passes (then kill and reap it).
fn wait_until(mut child: std::process::Child, deadline: Instant) -> io::Result<Bounded> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Bounded::Exited(st));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Bounded::TimedOut);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn a_quick_child_is_waited_for_and_a_hung_one_is_killed() {
        let r = status_within(
            Command::new("true").stdin(Stdio::null()),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(r.success(), "{r:?}");
        let r = status_within(
            Command::new("false").stdin(Stdio::null()),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(matches!(r, Bounded::Exited(_)) && !r.success(), "{r:?}");
        let t0 = Instant::now();
        let r = status_within(
            Command::new("sleep").arg("30").stdin(Stdio::null()),
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(matches!(r, Bounded::TimedOut), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn output_is_captured_and_a_hung_child_gives_none() {
        let o = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        assert_eq!(o.status.code(), Some(3));
        let t0 = Instant::now();
        let r = output_within(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(r.is_none(), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
}
