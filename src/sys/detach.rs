//! Start a process fully detached from its caller, and say how a child ended.
//!
//! WHY: the plugin (`agtmux.tmux`) and the hook must start the daemon's supervisor and return
//! at once, and the supervisor must outlive the tmux `run-shell`, the TPM script or the agent's
//! hook process that started it. The util-linux `setsid` binary did that before, but macOS has
//! none: here the child calls setsid(2) itself between fork and exec (a new session, so no
//! controlling terminal and no hang-up from the caller's), with stdio on /dev/null so no pipe
//! of the caller (an agent waiting for its hook's stdout to close) is held open.
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Spawn `cmd` in a new session with stdin, stdout and stderr on /dev/null. The caller never
/// waits for it: when the caller exits, init adopts it.
pub(crate) fn spawn_detached(cmd: &mut Command) -> io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent; it can only
    // fail with EPERM when the child already leads a process group, which a fresh fork never
    // does (then it simply stays in the caller's session).
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
}

/// How a child ended, in words for the log and the status line: `exit 101 (panic)`,
/// `signal 9 (SIGKILL)`.
pub(crate) fn exit_reason(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return match code {
            101 => "exit 101 (panic)".to_string(),
            c => format!("exit {c}"),
        };
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGINT => " (SIGINT)",
                libc::SIGHUP => " (SIGHUP)",
                _ => "",
            };
            format!("signal {sig}{name}")
        }
        None => "unknown exit".to_string(),
    }
}

/// Take the lock of the open file `f` (exclusive, non-blocking: `flock` on Unix, through std);
/// `false` when another process holds it or the lock fails. The lock lives as long as the file
/// stays open.
pub(crate) fn try_lock(f: &std::fs::File) -> bool {
    f.try_lock().is_ok()
}

/// Wait until no other process holds `f`'s lock (shared, blocking), then let it go. An
/// interrupted wait (EINTR) only ends the wait early.
pub(crate) fn wait_unlocked(f: &std::fs::File) {
    if f.lock_shared().is_ok() {
        let _ = f.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_child_leads_its_own_session() {
        let mut c = Command::new("sh");
        c.args(["-c", "ps -o sid= -p $$ > \"$0\"; echo $$ >> \"$0\""]);
        let out = std::env::temp_dir().join(format!("agtmux-detach-{}", std::process::id()));
        c.arg(&out);
        let mut child = spawn_detached(&mut c).unwrap();
        let st = child.wait().unwrap();
        assert!(st.success());
        let text = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        let v: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(v.len(), 2, "{text}");
        assert_eq!(v[0], v[1], "session id is the child's own pid: {text}");
    }

    #[test]
    fn exit_reasons_name_panics_and_signals() {
        let st = Command::new("sh")
            .args(["-c", "exit 101"])
            .status()
            .unwrap();
        assert_eq!(exit_reason(&st), "exit 101 (panic)");
        let st = Command::new("sh")
            .args(["-c", "kill -9 $$"])
            .status()
            .unwrap();
        assert_eq!(exit_reason(&st), "signal 9 (SIGKILL)");
    }
}
