//! Who we run as, and the file-creation mask around a socket bind.
//!
//! WHY here: both are libc calls (`getuid`, `umask`), and only the platform layer names an OS
//! API.
use std::io;

/// The real uid (names the per-user tmux and runtime dirs, as tmux does).
pub(crate) fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Run `f` with the process umask set to `mask` (e.g. 0o177 so a socket is born 0600), then
/// restore it. The umask is process-wide: call this only where no other thread creates files.
pub(crate) fn with_umask<T>(mask: u32, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let mask = libc::mode_t::try_from(mask & 0o777).unwrap_or(0o077);
    // SAFETY: umask has no preconditions; restored right below.
    let old = unsafe { libc::umask(mask) };
    let r = f();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    r
}
