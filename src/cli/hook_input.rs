//! What `agtmux hook` records besides the payload, and how it reads the payload: stdin within
//! a time window and a size cap, and the process facts that bind the event to one tmux server
//! and one pane process (`sources::hook_spool` checks them).
//!
//! Why bounded in time: the hook runs on the agent's critical path. An agent that keeps stdin
//! open (or a stream that never ends, `</dev/zero`) must not hold it: after `READ_WINDOW` the
//! hook stops reading and records what it has (a complete JSON payload is still accepted).
use std::fs::File;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

/// How long the hook reads stdin at most. Agents write the payload at once and close.
pub(crate) const READ_WINDOW: Duration = Duration::from_millis(400);

/// A payload read from stdin.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    /// At most `cap + 1` bytes: enough to know it was too large.
    pub bytes: Vec<u8>,
    /// Every byte read, also past the cap (the real size for `too_large`).
    pub size: usize,
    /// True when stdin ended within the window.
    pub(crate) eof: bool,
}

/// Read stdin: stop at end of input, or when `window` has passed. Never blocks past it.
pub(crate) fn read_stdin(cap: usize, window: Duration) -> Input {
    read_fd(io::stdin().as_raw_fd(), cap, window)
}

/// Read `fd` (not closed here) until EOF or `window`, keeping `cap + 1` bytes.
pub(crate) fn read_fd(fd: RawFd, cap: usize, window: Duration) -> Input {
    // SAFETY: `fd` is open for the whole call; ManuallyDrop keeps the File from closing it.
    let mut f = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let deadline = Instant::now() + window;
    let mut out = Input::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_readable(fd, left) {
            return out;
        }
        match f.read(&mut chunk) {
            Ok(0) => {
                out.eof = true;
                return out;
            }
            Ok(n) => {
                out.size += n;
                let room = (cap + 1).saturating_sub(out.bytes.len());
                out.bytes.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => return out,
        }
    }
}

/// Wait up to `left` for `fd` to be readable (or at EOF/hang-up). False on timeout or error.
fn wait_readable(fd: RawFd, left: Duration) -> bool {
    let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
    loop {
        match crate::sys::fd::poll_readable(&[fd], ms) {
            Ok(r) => return r.first().is_some_and(|r| r.any()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// The tmux server pid from `$TMUX` (`socket,pid,session`; the socket path may hold commas).
pub(crate) fn tmux_server_pid(tmux: &str) -> Option<i32> {
    let mut it = tmux.rsplitn(3, ',');
    let _session = it.next()?;
    let pid = it.next()?.parse::<i32>().ok()?;
    it.next()?;
    (pid > 1).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn server_pid_from_tmux_env() {
        assert_eq!(tmux_server_pid("/tmp/tmux-0/default,1234,0"), Some(1234));
        assert_eq!(tmux_server_pid("/tmp/a,b/sock,77,3"), Some(77));
        assert_eq!(tmux_server_pid("/tmp/s"), None);
        assert_eq!(tmux_server_pid("/tmp/s,x,0"), None);
        assert_eq!(tmux_server_pid("/tmp/s,1,0"), None);
    }

    #[test]
    fn stops_at_eof_and_keeps_the_real_size() {
        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(&[b'x'; 5000]).unwrap();
        drop(w);
        let i = read_fd(r.as_raw_fd(), 100, Duration::from_secs(30));
        assert!(i.eof);
        assert_eq!((i.size, i.bytes.len()), (5000, 101));
    }

    #[test]
    fn an_open_writer_does_not_hold_the_read() {
        let (mut w, r) = UnixStream::pair().unwrap();
        w.write_all(br#"{"a":1}"#).unwrap();
        let t = Instant::now();
        let i = read_fd(r.as_raw_fd(), 100, Duration::from_millis(200));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(!i.eof);
        assert_eq!(i.bytes, br#"{"a":1}"#);
        drop(w);
    }
}
