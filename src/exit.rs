//! The exit codes of every `agtmux` command, one value per meaning, so a script can tell
//! "not there" from "failed" the same way for each command that can say it.
//!
//! WHY its own module at the bottom: the CLI returns these and the daemon's codes map onto
//! them; it names nothing else in the crate.

/// How an `agtmux` command ended. [`ExitCode::code`] is the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: done. `wait`: the condition holds. `doctor`: no check failed.
    Ok,
    /// 1: the command failed (no daemon answers, tmux or the store refused, the terminal is
    /// not one). `wait`: `--timeout` passed first. `doctor`: a check failed.
    Failure,
    /// 2: usage error: a bad argument such as a malformed pane id or duration (clap's own
    /// usage errors exit with 2 as well).
    Usage,
    /// 3: what was asked for is not there. `wait`: the pane does not exist, has no agent or
    /// went away. `trace`: no such event. `next`: no agent needs you. `approve`/`deny`/`reply`: the pane does not exist or
    /// holds no agent.
    NotFound,
    /// 4: `wait`, `approve`/`deny`/`reply`: no daemon answers for this tmux server, or it
    /// went away.
    NoDaemon,
    /// 5: `approve`/`deny`/`reply` refused: the pane is not waiting for this (another state,
    /// another kind of dialog, a dialog agtmux does not know, an unsupported provider).
    NotWaiting,
    /// 6: `approve`/`deny`/`reply` refused as stale: the dialog on screen is not the one
    /// expected (`--expect`), or the pane changed while it was read.
    Stale,
    /// 75: `agtmux daemon` ended so a newer agtmux can take over (issue 19): its keeper does
    /// not restart it.
    Upgrade,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::NotFound => 3,
            ExitCode::NoDaemon => 4,
            ExitCode::NotWaiting => 5,
            ExitCode::Stale => 6,
            ExitCode::Upgrade => 75,
        }
    }

    /// The code for a status from code that still returns numbers (the daemon's loop, the
    /// demo): the variant with that status, [`ExitCode::Failure`] for any other non-zero one.
    pub fn from_status(code: i32) -> ExitCode {
        [
            ExitCode::Ok,
            ExitCode::Failure,
            ExitCode::Usage,
            ExitCode::NotFound,
            ExitCode::NoDaemon,
            ExitCode::NotWaiting,
            ExitCode::Stale,
            ExitCode::Upgrade,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .unwrap_or(ExitCode::Failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_failures() {
        for c in [0, 1, 2, 3, 4, 5, 6, 75] {
            assert_eq!(ExitCode::from_status(c).code(), c);
        }
        assert_eq!(ExitCode::from_status(9), ExitCode::Failure);
        assert_eq!(ExitCode::from_status(-1), ExitCode::Failure);
    }
}
