//! Unix socket facts and steps std does not offer: the longest socket path the OS takes (104
//! bytes with its NUL on macOS, 108 on Linux), and, for tests, a socket bound but not
//! listening yet (a connect is refused until `listen`).
#[cfg(test)]
use std::io;
#[cfg(test)]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
#[cfg(test)]
use std::path::Path;

/// The longest path, in bytes, a Unix socket can be bound or connected at (`sun_path` less
/// its terminating NUL): 103 on macOS, 107 on Linux.
pub(crate) fn max_path_len() -> usize {
    // SAFETY: sockaddr_un is plain data; only the size of a field is read.
    let a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_path.len() - 1
}

/// A Unix stream socket bound at `path`, not listening.
#[cfg(test)]
pub(crate) fn bind_unix_unlistened(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: socket has no preconditions; the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; zeroed is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(b) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: binding our fd to a properly initialised address of `len` bytes.
    let r = unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// Start listening on a socket from [`bind_unix_unlistened`].
#[cfg(test)]
pub(crate) fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a bound socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
