//! The daemon's own tmux session, `_agtmux`, where its control client sits (issue 20, item 8).
//!
//! WHY: tmux counts every client attached to a session in `session_attached`, control clients
//! included (`recalculate_sizes_now` in resize.c, unchanged from 3.3a to 3.8; no client flag
//! such as `no-output`, `ignore-size` or `read-only` keeps one out). A control client that sat
//! on a user's session made that session look attached after every real client had left:
//! `tmux ls` said `(attached)`, `#{session_attached}` was 1, and `destroy-unattached` never
//! destroyed it. So the control client moves to a session of its own:
//! - It still attaches first to whatever session exists (`attach-session`, which never creates
//!   one), and only once attached creates and enters `_agtmux` ([`ENTER`]). A session created
//!   while a control client is still attaching crashes a tmux 3.3a server (upstream PR #4980),
//!   and attaching first also means an empty server never gets a session from us.
//! - Its one pane runs `tail -f /dev/null` directly (no shell, no rc files): it reads nothing
//!   and wakes for nothing.
//! - Every agtmux list filters it out with [`USER_SESSIONS`] (panes, windows, sessions, the
//!   pane digest, the choose-tree keys, the demo), so no surface of ours shows it.
//! - It must not keep a server alive that tmux would have ended: when no other session is left
//!   the daemon kills it ([`KILL`]), and tmux exits as it would have (`exit-empty`); the daemon
//!   kills it as well when it exits.
//!
//! What it costs (measured and documented in the README): tmux's own lists (`tmux ls`,
//! `choose-tree`, `switch-client -n`) and tmux-resurrect show `_agtmux`.

/// The session's name. The leading underscore sorts it apart and marks it as internal.
pub const NAME: &str = "_agtmux";

/// A tmux format (for `-f` filters) that is true for every session but ours.
pub const USER_SESSIONS: &str = "#{!=:#{session_name},_agtmux}";

/// Create the session if it does not exist and switch this (already attached) client to it.
/// `-A` attaches when it exists (a daemon restart); the command after `--` runs without a
/// shell.
pub const ENTER: &str = "new-session -A -s _agtmux -x 80 -y 24 -- tail -f /dev/null";

/// End the session (exact name match).
pub const KILL: &str = "kill-session -t =_agtmux";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_names_the_one_session() {
        assert!(USER_SESSIONS.contains(&format!(",{NAME}}}")));
        assert!(ENTER.contains(&format!("-s {NAME} ")));
        assert!(KILL.ends_with(&format!("={NAME}")));
    }
}
