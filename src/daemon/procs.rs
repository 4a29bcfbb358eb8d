//! The pane's process tree from `/proc` (Flow-002 input): the terminal's foreground process
//! group leader and its descendants, which is where an agent runs when a user typed `claude`
//! or `codex` into the pane's shell.
//!
//! Cost grows with panes that change: this is read only when a pane's command or pid changed,
//! or on a slow re-check of panes that hold an agent, never for every pane every tick.
use crate::core::classifier::ProcInfo;
use std::path::PathBuf;

/// Bounds: a pane with a process storm must not make one refresh expensive.
const MAX_PROCS: usize = 64;
const MAX_DEPTH: usize = 4;

/// Fields of `/proc/PID/stat` after the `(comm)` field, which may itself contain spaces.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    Some(
        s[close + 1..]
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

fn argv(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .take(16)
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(512)]).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The foreground process group leader of the pane's terminal (`tpgid` of the pane's first
/// process), falling back to the pane process itself.
pub fn foreground_leader(pane_pid: i32) -> i32 {
    // state ppid pgrp session tty_nr tpgid → index 5 after comm.
    stat_fields(pane_pid)
        .and_then(|f| f.get(5).and_then(|t| t.parse::<i32>().ok()))
        .filter(|t| *t > 0)
        .unwrap_or(pane_pid)
}

/// The foreground leader and its descendants (breadth first, bounded).
pub fn foreground_tree(pane_pid: i32) -> Vec<ProcInfo> {
    let leader = foreground_leader(pane_pid);
    let mut out = Vec::new();
    let mut level = vec![leader];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for pid in level {
            if out.len() >= MAX_PROCS {
                return out;
            }
            let ppid = stat_fields(pid)
                .and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
                .unwrap_or(0);
            let a = argv(pid);
            if a.is_empty() && ppid == 0 {
                continue;
            }
            out.push(ProcInfo { pid, ppid, argv: a });
            next.extend(children(pid));
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
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Parent pid of a process (`None` when it is gone).
pub fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
}

/// Is `pid` the process `ancestor` or one of its descendants? Walks the parent chain (bounded),
/// so it works for any depth and costs one `/proc` read per level.
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
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
    argv(pid)
}

/// Process start time in clock ticks since boot: with the pid it identifies one process life.
pub fn start_ticks(pid: i32) -> Option<u64> {
    stat_fields(pid).and_then(|f| f.get(19).and_then(|t| t.parse().ok()))
}

/// Longest ancestor chain a hook records.
const MAX_LINEAGE: usize = 16;

/// What a hook records about where it runs (`sources::spool::Envelope`): itself and its
/// ancestors up to the pane's process, and the terminal's foreground process group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    /// `(pid, start_ticks)` from `pid` upward.
    pub anc: Vec<(i32, u64)>,
    /// The ancestor whose parent is `server_pid` (the pane's process), when reached.
    pub pane_pid: Option<i32>,
    /// The foreground process group of `pid`'s controlling terminal.
    pub tpgid: Option<i32>,
}

/// Walk from `pid` up its parents (one `/proc/PID/stat` read each, bounded) until the process
/// whose parent is the tmux server `server_pid`. Empty where `/proc` is not there.
pub fn lineage(pid: i32, server_pid: Option<i32>) -> Lineage {
    let mut out = Lineage::default();
    let mut cur = pid;
    for i in 0..MAX_LINEAGE {
        if cur <= 1 {
            break;
        }
        // state ppid pgrp session tty_nr tpgid … starttime(19)
        let Some(f) = stat_fields(cur) else { break };
        let field = |n: usize| f.get(n).and_then(|x| x.parse::<i64>().ok());
        let (Some(ppid), Some(start)) = (field(1), field(19)) else {
            break;
        };
        if i == 0 {
            out.tpgid = field(5).filter(|t| *t > 0).map(|t| t as i32);
        }
        out.anc.push((cur, start as u64));
        if server_pid.is_some_and(|s| s as i64 == ppid) {
            out.pane_pid = Some(cur);
            break;
        }
        cur = ppid as i32;
    }
    out
}

/// Is the process `pid` that started at `start` (clock ticks) still there?
pub fn alive(pid: i32, start: u64) -> bool {
    start_ticks(pid) == Some(start)
}

/// Kill a whole process group (a notify command and whatever it started) with SIGKILL.
pub fn kill_group(pgid: i32) {
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
        assert!(start_ticks(me).is_some());
        assert!(cwd(me).is_some());
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
