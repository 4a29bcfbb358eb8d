//! The exit codes of every `agtmux` command, one value per meaning, so a script can tell
//! "not there" from "failed" the same way for each command that can say it.
//!
//! WHY its own module at the bottom: the CLI and the daemon (`agtmux daemon`, its keeper)
//! return these; it names nothing else in the crate.
//!
//! `agtmux wait` is the command scripts branch on most; its codes ([`WAIT`]):
//!
//! | status | variant | `wait` means |
//! |---|---|---|
//! | 0 | [`ExitCode::Ok`] | the condition holds (checked at once, then on every pushed change) |
//! | 1 | [`ExitCode::Failure`] | `--timeout` passed first (stderr names the panes still pending) |
//! | 2 | [`ExitCode::Usage`] | usage error (a bad pane id or duration) |
//! | 3 | [`ExitCode::NotFound`] | the pane does not exist, has no agent, or went away |
//! | 4 | [`ExitCode::NoDaemon`] | no daemon answers for this tmux server, or it went away |

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
    /// went away. `trace`: no such event. `next`: no agent needs you. `approve`/`deny`/`reply`:
    /// the pane does not exist or holds no agent.
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

/// `agtmux wait`'s exit codes and what each means there (the table above).
pub const WAIT: &[(ExitCode, &str)] = &[
    (ExitCode::Ok, "the condition holds"),
    (ExitCode::Failure, "--timeout passed first"),
    (ExitCode::Usage, "usage error"),
    (
        ExitCode::NotFound,
        "the pane does not exist, has no agent, or went away",
    ),
    (ExitCode::NoDaemon, "no daemon answers for this tmux server"),
];

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_meaning_has_its_own_status() {
        let all = [
            ExitCode::Ok,
            ExitCode::Failure,
            ExitCode::Usage,
            ExitCode::NotFound,
            ExitCode::NoDaemon,
            ExitCode::NotWaiting,
            ExitCode::Stale,
            ExitCode::Upgrade,
        ];
        let codes: Vec<i32> = all.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 75]);
    }
}
