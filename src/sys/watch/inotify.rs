//! Linux: inotify. One non-blocking inotify fd; a watch descriptor per path (the kernel gives
//! the same one to two watches of one inode, which the watcher above fans out).
use super::{Change, Kind};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// A watch descriptor.
pub(super) type Key = i32;

/// Bytes of `struct inotify_event` before its name.
const HEAD: usize = 16;

pub(super) struct Backend {
    fd: OwnedFd,
}

impl Backend {
    pub(super) fn new() -> io::Result<Backend> {
        // SAFETY: inotify_init1 has no preconditions; the fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        Ok(Backend {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// ENOSPC here is the per-user watch limit (`fs.inotify.max_user_watches`).
    pub(super) fn add(&mut self, path: &Path, kind: Kind) -> io::Result<Key> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path holds a NUL byte: {}", path.display()),
            )
        })?;
        let mask = match kind {
            Kind::File => libc::IN_MODIFY | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF,
            Kind::Dir => {
                libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE
            }
        };
        // SAFETY: a valid inotify fd and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    pub(super) fn remove(&mut self, key: Key) {
        // SAFETY: removing a watch descriptor of our own fd; an already removed one only
        // returns EINVAL.
        unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), key) };
    }

    pub(super) fn read(&mut self, out: &mut Vec<(Key, Change)>) {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: reading into a local buffer from our non-blocking fd.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            let n = usize::try_from(n).unwrap_or(0).min(buf.len());
            for (wd, mask) in parse_events(&buf[..n]) {
                if mask & libc::IN_Q_OVERFLOW != 0 {
                    log::warn!("watch_queue_overflow: some file changes were not reported");
                }
                let change = if mask
                    & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED)
                    != 0
                {
                    Change::Gone
                } else if mask
                    & (libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE)
                    != 0
                {
                    Change::Modified
                } else {
                    continue;
                };
                out.push((wd, change));
            }
        }
    }
}

/// The `(wd, mask)` of each whole `struct inotify_event` record in `buf` (native endian:
/// `int wd; uint32_t mask, cookie, len; char name[len]`). A cut-off record ends the list. Pure.
pub(super) fn parse_events(buf: &[u8]) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let Some(h) = buf.get(off..off + HEAD) {
        let word = |i: usize| [h[i], h[i + 1], h[i + 2], h[i + 3]];
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        out.push((wd, mask));
        off = off.saturating_add(HEAD).saturating_add(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(wd: i32, mask: u32, name: &[u8]) -> Vec<u8> {
        let mut b = wd.to_ne_bytes().to_vec();
        b.extend(mask.to_ne_bytes());
        b.extend(0u32.to_ne_bytes());
        b.extend((name.len() as u32).to_ne_bytes());
        b.extend(name);
        b
    }

    #[test]
    fn event_records_parse_and_a_cut_off_one_is_dropped() {
        assert_eq!(
            HEAD,
            std::mem::size_of::<libc::inotify_event>(),
            "the record head the kernel writes"
        );
        let mut b = record(3, libc::IN_MODIFY, b"");
        b.extend(record(4, libc::IN_CREATE, b"spool.jsonl\0\0\0\0\0"));
        b.extend(record(5, libc::IN_IGNORED, b""));
        assert_eq!(
            parse_events(&b),
            [
                (3, libc::IN_MODIFY),
                (4, libc::IN_CREATE),
                (5, libc::IN_IGNORED)
            ]
        );
        assert_eq!(parse_events(&b[..b.len() - 1]).len(), 2);
        assert!(parse_events(&[]).is_empty());
        assert!(parse_events(&[1, 2, 3]).is_empty());
        // A hostile length skips past the end instead of overflowing.
        let bad = record(9, libc::IN_MODIFY, b"");
        let mut huge = bad.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        huge.extend(bad);
        assert_eq!(parse_events(&huge), [(9, libc::IN_MODIFY)]);
    }
}
