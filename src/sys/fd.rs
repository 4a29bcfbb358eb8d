//! Raw descriptor chores std has no portable call for: non-blocking mode on a child's pipe,
//! waiting for readability on several fds, and an unbuffered read.
use std::io;
use std::os::fd::RawFd;

/// Put `fd` in non-blocking mode.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on an fd the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What `poll` said about one fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub readable: bool,
    /// Hang-up, error or an invalid fd.
    pub closed: bool,
}

impl Ready {
    /// Anything at all to look at.
    pub(crate) fn any(&self) -> bool {
        self.readable || self.closed
    }
}

/// Wait up to `timeout_ms` until one of `fds` is readable (or closed). EINTR is an error of
/// kind `Interrupted` for the caller to retry.
pub(crate) fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<Ready>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: poll on our array of `p.len()` pollfd records.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p.iter()
        .map(|p| Ready {
            readable: p.revents & libc::POLLIN != 0,
            closed: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        })
        .collect())
}

/// One unbuffered `read(2)` (stdin in raw mode, where std's buffered stdin would hide bytes
/// from `poll`).
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read into our buffer, at most its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// This process's soft limit on open files (`RLIMIT_NOFILE`); `None` when unlimited or
/// unreadable.
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a properly sized local.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    if !ok || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(r.rlim_cur)
}

/// Did this error come from running out of file descriptors (per process or system wide)?
pub(crate) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn poll_and_read_see_what_a_pipe_holds() {
        let (r, mut w) = std::io::pipe().unwrap();
        set_nonblocking(r.as_raw_fd()).unwrap();
        let ready = poll_readable(&[r.as_raw_fd()], 0).unwrap();
        assert!(!ready[0].any());
        let mut b = [0u8; 8];
        assert_eq!(
            read(r.as_raw_fd(), &mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        w.write_all(b"hi").unwrap();
        assert!(poll_readable(&[r.as_raw_fd()], 1000).unwrap()[0].readable);
        assert_eq!(read(r.as_raw_fd(), &mut b).unwrap(), 2);
        drop(w);
        assert!(poll_readable(&[r.as_raw_fd()], 1000).unwrap()[0].closed);
    }
}
