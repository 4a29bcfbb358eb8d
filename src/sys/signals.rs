//! Signal dispositions that are not delivered through the daemon's signal pipe, and the one
//! signal agtmux sends (SIGTERM to an older daemon it takes over from).

/// Daemon: a dead peer (tmux, an API client) must give EPIPE on write, not kill us.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a signal disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// CLI: die quietly on a closed pipe (`agtmux ls | head`), as Unix tools do.
pub(crate) fn default_sigpipe() {
    // SAFETY: setting a signal disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Ask process `pid` to end (SIGTERM). `false` when it could not be signalled (gone, or not
/// ours).
pub(crate) fn terminate(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) has no memory preconditions; the caller names a pid it has reason to
    // believe is its own daemon (at worst a stray SIGTERM to one of our own processes).
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}
