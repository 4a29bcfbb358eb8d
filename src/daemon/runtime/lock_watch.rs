//! The per-server lock watch (issue 16): the lock file is checked on a slow timer; a daemon
//! whose lock path was taken over by another process leaves.
//!
//! WHY a module of its own: it decides when this daemon stops owning its server, apart from
//! the loop that acts on it.
use super::Runtime;
use crate::core::types::Millis;
use crate::daemon::LockCheck;
use crate::paths::ServerPaths;

/// How often the lock file is checked (a `stat`).
const LOCK_CHECK_EVERY: Millis = 2_000;

/// The per-server lock (a dup of the one `daemon::run` holds) and when to check next that its
/// file is still at the path.
#[derive(Default)]
pub(super) struct LockWatch {
    lock: Option<std::fs::File>,
    next_check: Millis,
}

impl LockWatch {
    /// Whether another process now holds the lock's path (see
    /// [`crate::daemon::lock_still_ours`]); checked at most every [`LOCK_CHECK_EVERY`].
    fn lost(&mut self, sp: &ServerPaths, now: Millis) -> bool {
        if now < self.next_check {
            return false;
        }
        self.next_check = now + LOCK_CHECK_EVERY;
        let Some(held) = self.lock.as_ref() else {
            return false;
        };
        match crate::daemon::lock_still_ours(sp, held) {
            LockCheck::Held => false,
            // The old file stays open (and locked) too; the new one guards the path.
            LockCheck::Restored(f) => {
                self.lock = Some(f);
                false
            }
            LockCheck::Lost => true,
        }
    }
}

impl Runtime {
    /// The per-server lock, re-checked on a slow timer (see [`crate::daemon::lock_still_ours`]).
    pub(crate) fn hold_lock(&mut self, lock: Option<std::fs::File>) {
        self.lock.lock = lock;
    }

    pub(super) fn check_lock(&mut self, now: Millis) {
        if !self.lock.lost(&self.sp, now) {
            return;
        }
        // Another process holds the path's lock. If our API socket is still the one at its
        // path, that process has not taken over (a second daemon checks our live socket and
        // leaves): keep serving and look again later. Otherwise it runs this server now: go,
        // leaving its sockets alone.
        if self.api.server.as_ref().is_some_and(|a| a.socket_is_ours()) {
            log::warn!("lock_contended reason=our_api_socket_still_serves");
        } else {
            log::error!("daemon_exit reason=lock_lost");
            self.life.exit_code = crate::exit::ExitCode::Failure;
            self.life.shutdown = true;
        }
    }
}
