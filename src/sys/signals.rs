//! Signal dispositions that are not delivered through the daemon's signal pipe.

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
