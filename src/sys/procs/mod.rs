//! The pane's process tree (Flow-002 input): the terminal's foreground process group leader and
//! its descendants, which is where an agent runs when a user typed `claude` or `codex` into the
//! pane's shell. Also a process's argv, cwd and parent, for the Codex correlation and the hook
//! spool's pane check.
//!
//! WHY here: how a process is read differs by OS (Linux: `/proc`; macOS: libproc and the
//! `KERN_PROCARGS2` sysctl), so the OS half lives in [`linux`] / [`macos`] behind three small
//! functions, and this file keeps the walk and the bounds, which are the same everywhere. The
//! parsers of the OS's bytes ([`parse`]) are pure and built on every OS, so they are
//! unit-tested on Linux with recorded bytes.
//!
//! Bad platform data never panics: a process that vanished mid-read has no parent and no argv,
//! is skipped with a debug line, and the pane falls back to what tmux and the screen say.
//!
//! Cost grows with panes that change: this is read only when a pane's command or pid changed,
//! or on a slow re-check of panes that hold an agent, never for every pane every tick.
use crate::core::classifier::ProcInfo;
use std::path::PathBuf;

mod parse;
use parse::Stat;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as os;

/// Bounds: a pane with a process storm must not make one refresh expensive.
const MAX_PROCS: usize = 64;
const MAX_DEPTH: usize = 4;
/// The foreground process group leader of the pane's terminal (the terminal's foreground
/// process group, read from the pane's first process), falling back to the pane process itself.
pub(crate) fn foreground_leader(pane_pid: i32) -> i32 {
    os::stat(pane_pid)
        .map(|s| s.tpgid)
        .filter(|t| *t > 0)
        .unwrap_or(pane_pid)
}

/// The foreground leader and its descendants (breadth first, bounded).
pub(crate) fn foreground_tree(pane_pid: i32) -> Vec<ProcInfo> {
    tree_from(foreground_leader(pane_pid))
}

/// `leader` and its descendants (breadth first, bounded).
fn tree_from(leader: i32) -> Vec<ProcInfo> {
    let mut out = Vec::new();
    let mut level = vec![leader];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for pid in level {
            if out.len() >= MAX_PROCS {
                return out;
            }
            let ppid = os::stat(pid).map(|s| s.ppid).unwrap_or(0);
            let a = os::argv(pid);
            if a.is_empty() && ppid == 0 {
                log::debug!("proc_skipped pid={pid} reason=vanished_or_unreadable");
                continue;
            }
            out.push(ProcInfo { pid, ppid, argv: a });
            next.extend(os::children(pid));
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    out
}

/// Current working directory of a process (Codex thread ↔ pane correlation).
pub fn cwd(pid: i32) -> Option<PathBuf> {
    os::cwd(pid)
}

/// Parent pid of a process (`None` when it is gone).
pub fn parent(pid: i32) -> Option<i32> {
    os::stat(pid).map(|s| s.ppid)
}

/// Is `pid` the process `ancestor` or one of its descendants? Walks the parent chain (bounded),
/// so it works for any depth and costs one read per level.
pub(crate) fn descends_from(pid: i32, ancestor: i32) -> bool {
    if pid <= 1 || ancestor <= 1 {
        return false;
    }
    let mut cur = pid;
    for _ in 0..32 {
        if cur == ancestor {
            return true;
        }
        match parent(cur) {
            Some(p) if p > 1 => cur = p,
            _ => return false,
        }
    }
    false
}

/// The command line of a process (bounded), for checks like "is this the app-server daemon".
pub fn cmdline(pid: i32) -> Vec<String> {
    os::argv(pid)
}

/// Longest ancestor chain a hook records.
const MAX_LINEAGE: usize = 16;

/// What a hook records about where it runs (`sources::spool::Envelope`): itself and its
/// ancestors up to the pane's process, and the terminal's foreground process group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lineage {
    /// `(pid, start_ticks)` from `pid` upward.
    pub(crate) anc: Vec<(i32, u64)>,
    /// The ancestor whose parent is `server_pid` (the pane's process), when reached.
    pub(crate) pane_pid: Option<i32>,
    /// The foreground process group of `pid`'s controlling terminal.
    pub(crate) tpgid: Option<i32>,
}

/// Walk from `pid` up its parents (one process read each, bounded) until the process
/// whose parent is the tmux server `server_pid`. Empty where the process cannot be read.
pub(crate) fn lineage(pid: i32, server_pid: Option<i32>) -> Lineage {
    let mut out = Lineage::default();
    let mut cur = pid;
    for i in 0..MAX_LINEAGE {
        if cur <= 1 {
            break;
        }
        let Some(st) = os::stat(cur) else { break };
        let Some(start) = st.start else { break };
        if i == 0 {
            out.tpgid = Some(st.tpgid).filter(|t| *t > 0);
        }
        out.anc.push((cur, start));
        if server_pid == Some(st.ppid) {
            out.pane_pid = Some(cur);
            break;
        }
        cur = st.ppid;
    }
    out
}

/// When `pid` started (see [`Stat::start`]); `None` when it is gone or unreadable.
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    os::stat(pid).and_then(|s| s.start)
}

/// Is the process `pid` that started at `start` still there?
pub fn alive(pid: i32, start: u64) -> bool {
    start_ticks(pid) == Some(start)
}

/// Kill a whole process group (a notify command and whatever it started) with SIGKILL.
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let tree = foreground_tree(me);
        assert!(!tree.is_empty());
        assert_eq!(tree[0].pid, foreground_leader(me));
        assert!(cwd(me).is_some());
        assert_eq!(
            cwd(me).and_then(|p| p.canonicalize().ok()),
            std::env::current_dir()
                .ok()
                .and_then(|p| p.canonicalize().ok())
        );
        let argv0 = std::env::args().next().unwrap_or_default();
        assert_eq!(cmdline(me).first(), Some(&argv0));
    }

    #[test]
    fn lineage_stops_under_the_server() {
        let me = std::process::id() as i32;
        let Some(pp) = parent(me) else { return };
        let l = lineage(me, Some(pp));
        assert_eq!(l.anc.len(), 1);
        assert_eq!(l.pane_pid, Some(me));
        assert!(alive(me, l.anc[0].1));
        assert!(!alive(me, l.anc[0].1 + 1));
        let l = lineage(me, None);
        assert!(l.anc.len() > 1 && l.pane_pid.is_none());
    }

    #[test]
    fn descent_follows_the_parent_chain() {
        let me = std::process::id() as i32;
        let Some(pp) = parent(me) else { return };
        assert!(descends_from(me, me));
        assert!(descends_from(me, pp));
        assert!(!descends_from(pp, me));
        assert!(
            !descends_from(me, 1),
            "init is never accepted as an ancestor"
        );
    }
}
