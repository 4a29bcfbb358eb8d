//! C-001 `agtmux-runtime-supervisor`: owns every child process the daemon runs (the `tmux -C`
//! control client now, Codex helpers later): spawning with non-blocking pipes for the one mio
//! loop, reaping on SIGCHLD, and restart pacing with exponential backoff and jitter.
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

/// A child with its three pipes, all non-blocking.
pub struct ChildProc {
    pub name: &'static str,
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

impl ChildProc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> io::Result<ChildProc> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("child pipes missing"));
        };
        set_nonblocking(stdin.as_raw_fd())?;
        set_nonblocking(stdout.as_raw_fd())?;
        set_nonblocking(stderr.as_raw_fd())?;
        log::debug!("child_spawned name={name} pid={}", child.id());
        Ok(ChildProc {
            name,
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reap without blocking; `Some(status)` once the child has exited.
    pub fn try_reap(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kill and reap (used at shutdown and before a restart).
    pub fn terminate(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.try_reap().is_none() {
            self.terminate();
        }
    }
}

pub fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd owned by the caller.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Exponential backoff with ±20 % jitter (Flow-011 numbers as defaults: 1 s → 30 s; the
/// control client uses a faster start so a config reload attaches quickly).
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
            seed,
        }
    }

    /// The delay before the next try, in ms, and count the attempt.
    pub fn next_delay(&mut self) -> u64 {
        let exp = self.base_ms.saturating_mul(1u64 << self.attempt.min(20));
        let d = exp.min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift for jitter; no need for a crate.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let span = d / 5;
        if span == 0 {
            return d;
        }
        d - span + self.seed % (2 * span + 1)
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_jitter_and_caps() {
        let mut b = Backoff::new(1000, 30_000);
        let d: Vec<u64> = (0..8).map(|_| b.next_delay()).collect();
        assert!((800..=1200).contains(&d[0]), "{d:?}");
        assert!((1600..=2400).contains(&d[1]), "{d:?}");
        assert!(d[7] <= 36_000 && d[7] >= 24_000, "{d:?}");
        b.reset();
        assert!(b.next_delay() <= 1200);
    }
}
