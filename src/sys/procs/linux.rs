//! Linux: processes from `/proc` (`stat`, `cmdline`, `task/PID/children`, the `cwd` link).
use super::Stat;
use std::path::PathBuf;

pub(super) fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let st = super::parse::parse_proc_stat(&s);
    if st.is_none() {
        log::warn!("proc_stat_unparsable pid={pid}");
    }
    st
}

pub(super) fn argv(pid: i32) -> Vec<String> {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) => super::parse::parse_cmdline(&b),
        Err(e) => {
            log::debug!("proc_argv_unreadable pid={pid} err={e}");
            Vec::new()
        }
    }
}

pub(super) fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn cwd(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

#[cfg(test)]
mod tests {
    use crate::sys::procs::{cmdline, cwd, descends_from, parent, tree_from};

    #[test]
    fn a_shell_and_its_child_form_the_tree_with_their_argv() {
        // A shell that waits for its `sleep` (`; :` keeps it from exec'ing it), as a pane's
        // shell waits for the agent the user started.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let shell = sh.id() as i32;
        assert_eq!(parent(shell), Some(me));
        // Wait for the positive sign: the shell has forked its child.
        let mut tree = Vec::new();
        for _ in 0..250 {
            tree = tree_from(shell);
            if tree.iter().any(|p| p.argv == ["sleep", "30"]) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let kid = tree.iter().find(|p| p.argv == ["sleep", "30"]).cloned();
        let alive = kid
            .as_ref()
            .map(|k| (descends_from(k.pid, shell), descends_from(k.pid, me)));
        if let Some(k) = &kid {
            let _ = std::process::Command::new("kill")
                .arg(k.pid.to_string())
                .status();
        }
        let _ = sh.kill();
        let _ = sh.wait();
        assert_eq!(tree[0].pid, shell);
        assert_eq!(tree[0].ppid, me);
        assert_eq!(tree[0].argv, ["sh", "-c", "sleep 30; :"]);
        let kid = kid.expect("the shell's child in the tree");
        assert_eq!(kid.ppid, shell);
        assert_eq!(
            alive,
            Some((true, true)),
            "the child descends from the shell and us"
        );
        // The shell is gone (reaped): no parent, no argv, no cwd, an empty tree; never a panic.
        assert_eq!(parent(shell), None);
        assert!(cmdline(shell).is_empty());
        assert_eq!(cwd(shell), None);
        assert!(tree_from(shell).is_empty());
    }
}
