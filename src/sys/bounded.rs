//! Run a short-lived child (a one-shot `tmux` client) with a bounded wait.
//!
//! WHY (issue 16): a tmux server stopped with SIGSTOP, or wedged, accepts a client's
//! connection and then never answers, so `Command::status()` on a one-shot `tmux set-option`
//! waits forever. The keeper (and the daemon's escalation path) must go on regardless: a child
//! past its limit is killed and reaped, and the caller is told it timed out.
use std::io;
use std::process::{Command, ExitStatus};
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
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
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
}
