//! The per-server lock watch (issue 16): the lock file is checked on a slow timer; a daemon
//! whose lock path was taken over by another process leaves.
//!
//! WHY a module of its own: it decides when this daemon stops owning its server, apart from
//! the loop that acts on it.
use super::Runtime;
use crate::core::types::Millis;

/// How often the lock file is checked (a `stat`).
const LOCK_CHECK_EVERY: Millis = 2_000;

impl Runtime {
    /// The per-server lock, re-checked on a slow timer (see [`crate::daemon::lock_still_ours`]).
    pub(crate) fn hold_lock(&mut self, lock: Option<std::fs::File>) {
        self.life.lock = lock;
    }

    pub(super) fn check_lock(&mut self, now: Millis) {
        if now < self.due.next_lock_check {
            return;
        }
        self.due.next_lock_check = now + LOCK_CHECK_EVERY;
        let Some(held) = self.life.lock.as_ref() else {
            return;
        };
        match crate::daemon::lock_still_ours(&self.sp, held) {
            crate::daemon::LockCheck::Held => {}
            // The old file stays open (and locked) too; the new one guards the path.
            crate::daemon::LockCheck::Restored(f) => self.life.lock = Some(f),
            // Another process holds the path's lock. If our API socket is still the one at
            // its path, that process has not taken over (a second daemon checks our live
            // socket and leaves): keep serving and look again later. Otherwise it runs this
            // server now: go, leaving its sockets alone.
            crate::daemon::LockCheck::Lost => {
                if self.api.server.as_ref().is_some_and(|a| a.socket_is_ours()) {
                    log::warn!("lock_contended reason=our_api_socket_still_serves");
                } else {
                    log::error!("daemon_exit reason=lock_lost");
                    self.life.exit_code = crate::exit::ExitCode::Failure;
                    self.life.shutdown = true;
                }
            }
        }
    }
}
