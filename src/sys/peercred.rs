//! Peer credentials of a connected Unix socket, for Flow-009 trust admission. Linux:
//! `SO_PEERCRED`; macOS: `getpeereid` for the uid and gid, `LOCAL_PEERPID` for the pid.
//!
//! WHY a module of its own: both directions need it. The daemon checks who connected to its
//! API socket (`daemon::admission`), and the Codex source checks who listens on the socket it
//! connects to (`sources::codex_appserver`): the observer trusts every byte that comes out of
//! that socket, so a socket at the expected path that belongs to another user is refused.
use std::io;

/// The peer of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub(crate) gid: u32,
}

/// `getsockopt(SOL_SOCKET, SO_PEERCRED)` on a connected Unix socket. For a client socket the
/// kernel records the listener's credentials at `connect`, so this works right after it.
#[cfg(target_os = "linux")]
pub(crate) fn peer_cred(fd: i32) -> io::Result<PeerCred> {
    let c = sockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        },
    )?;
    Ok(PeerCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// `getpeereid` (uid, gid) and `getsockopt(SOL_LOCAL, LOCAL_PEERPID)` (pid) on a connected
/// Unix socket. As on Linux, a client socket reports the listener right after `connect`.
#[cfg(target_os = "macos")]
pub(crate) fn peer_cred(fd: i32) -> io::Result<PeerCred> {
    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // SAFETY: getpeereid writes the two ids into properly typed locals.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let pid: libc::pid_t = sockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERPID, 0)?;
    Ok(PeerCred { pid, uid, gid })
}

/// `getsockopt(fd, level, name)` read into `init`'s type. Only for plain C integers and
/// structs of them (the kernel may write any bit pattern).
fn sockopt<T: Copy>(fd: i32, level: libc::c_int, name: libc::c_int, init: T) -> io::Result<T> {
    let mut v = init;
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`, a properly sized local of a
    // plain-integer type (see above).
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut T).cast(), &mut len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// This process's effective uid (the "runtime uid" of Flow-009).
pub fn runtime_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_of_a_socketpair_are_ourselves() {
        use std::os::fd::AsRawFd;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        for s in [&a, &b] {
            let c = peer_cred(s.as_raw_fd()).unwrap();
            assert_eq!(c.uid, runtime_uid());
            assert_eq!(c.pid, std::process::id() as i32);
        }
        // Not a socket: an error, never made-up credentials.
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(peer_cred(f.as_raw_fd()).is_err());
    }
}
