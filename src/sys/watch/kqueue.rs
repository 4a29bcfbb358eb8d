//! macOS: kqueue `EVFILT_VNODE`. One kqueue whose fd the mio poll watches (a kqueue is itself
//! readable when it holds events); each watched path is opened with `O_EVTONLY` (it does not
//! keep a volume from unmounting) and its fd, the key, is registered with `EV_CLEAR`.
//! Closing a path's fd removes its registration.
use super::{Change, Kind};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The watched path's own fd.
pub(super) type Key = i32;

/// Events taken from the kernel per call.
const BATCH: usize = 64;

pub(super) struct Backend {
    kq: OwnedFd,
    files: HashMap<Key, File>,
}

fn zero_timeout() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

impl Backend {
    pub(super) fn new() -> io::Result<Backend> {
        // SAFETY: kqueue has no preconditions; the fd is owned below.
        let fd = unsafe { libc::kqueue() };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: setting FD_CLOEXEC on our own fd (a kqueue is not inherited anyway).
        unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Backend {
            kq,
            files: HashMap::new(),
        })
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.kq.as_raw_fd()
    }

    /// EMFILE here is the open-file limit (each watch holds one fd).
    pub(super) fn add(&mut self, path: &Path, kind: Kind) -> io::Result<Key> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EVTONLY)
            .open(path)?;
        let fd = f.as_raw_fd();
        let fflags = match kind {
            Kind::File => {
                libc::NOTE_WRITE
                    | libc::NOTE_EXTEND
                    | libc::NOTE_DELETE
                    | libc::NOTE_RENAME
                    | libc::NOTE_REVOKE
            }
            Kind::Dir => {
                libc::NOTE_WRITE | libc::NOTE_EXTEND | libc::NOTE_DELETE | libc::NOTE_RENAME
            }
        };
        let ident =
            usize::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let change = libc::kevent {
            ident,
            filter: libc::EVFILT_VNODE,
            flags: libc::EV_ADD | libc::EV_ENABLE | libc::EV_CLEAR,
            fflags,
            data: 0,
            udata: std::ptr::null_mut(),
        };
        let timeout = zero_timeout();
        // SAFETY: one valid change record in, no event list out, a zero timeout.
        let r = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                &change,
                1,
                std::ptr::null_mut(),
                0,
                &timeout,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.files.insert(fd, f);
        Ok(fd)
    }

    pub(super) fn remove(&mut self, key: Key) {
        // Closing the fd removes its kevent registration.
        self.files.remove(&key);
    }

    pub(super) fn read(&mut self, out: &mut Vec<(Key, Change)>) {
        // SAFETY: kevent is plain data; a zeroed array is a valid buffer for the kernel.
        let mut evs: [libc::kevent; BATCH] = unsafe { std::mem::zeroed() };
        loop {
            let timeout = zero_timeout();
            // SAFETY: no changes in; up to BATCH events written into our array; zero timeout.
            let n = unsafe {
                libc::kevent(
                    self.kq.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    evs.as_mut_ptr(),
                    BATCH as libc::c_int,
                    &timeout,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            let n = usize::try_from(n).unwrap_or(0).min(BATCH);
            for ev in &evs[..n] {
                let Ok(key) = Key::try_from(ev.ident) else {
                    continue;
                };
                if !self.files.contains_key(&key) {
                    continue;
                }
                let change =
                    if ev.fflags & (libc::NOTE_DELETE | libc::NOTE_RENAME | libc::NOTE_REVOKE) != 0
                    {
                        Change::Gone
                    } else {
                        Change::Modified
                    };
                out.push((key, change));
            }
            if n < BATCH {
                return;
            }
        }
    }
}
