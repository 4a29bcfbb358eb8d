//! Pure parsers of what the OS says about a process: Linux's `/proc/PID/stat` and
//! `/proc/PID/cmdline`, macOS's `KERN_PROCARGS2` buffer. Built on every OS, so the macOS
//! layout is unit-tested on Linux with recorded bytes.

/// Arguments kept per process, and bytes kept per argument.
const MAX_ARGS: usize = 16;
const MAX_ARG_BYTES: usize = 512;

/// What the OS says about one process, the fields this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Parent pid.
    pub(crate) ppid: i32,
    /// The foreground process group of the process's controlling terminal (≤ 0: none).
    pub(crate) tpgid: i32,
    /// When the process started, in the OS's own unit (Linux: clock ticks since boot; macOS:
    /// microseconds since the epoch): with the pid, it names one process generation.
    pub start: Option<u64>,
}

/// `/proc/PID/stat`: `pid (comm) state ppid pgrp session tty_nr tpgid …`. The `comm` field may
/// itself hold spaces and parentheses, so the fields are counted from the *last* `)`. Pure.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_proc_stat(s: &str) -> Option<Stat> {
    let close = s.rfind(')')?;
    let mut f = s.get(close + 1..)?.split_whitespace();
    // state ppid pgrp session tty_nr tpgid → indexes 0..=5 after comm.
    let _state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let tpgid = f.nth(3)?.parse().ok()?;
    // … flags(6) … starttime(19).
    let start = f.nth(13).and_then(|t| t.parse().ok());
    Some(Stat { ppid, tpgid, start })
}

/// Arguments as NUL-separated bytes (`/proc/PID/cmdline`), bounded: at most [`MAX_ARGS`]
/// non-empty arguments of at most [`MAX_ARG_BYTES`] each, decoded lossily. Pure.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_cmdline(b: &[u8]) -> Vec<String> {
    b.split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .take(MAX_ARGS)
        .map(bounded_arg)
        .collect()
}

fn bounded_arg(a: &[u8]) -> String {
    String::from_utf8_lossy(&a[..a.len().min(MAX_ARG_BYTES)]).into_owned()
}

/// The macOS `KERN_PROCARGS2` buffer: a native-endian `int argc`, the executable path and its
/// NUL, NUL padding, then `argc` NUL-terminated arguments, then the environment (never read).
/// Bounded like [`parse_cmdline`]. `None` for a buffer that does not have that shape (a
/// process of another user gives an empty or short one). Pure.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) fn parse_procargs2(b: &[u8]) -> Option<Vec<String>> {
    let argc = i32::from_ne_bytes(b.get(..4)?.try_into().ok()?);
    if argc < 0 {
        return None;
    }
    let rest = &b[4..];
    // The executable path, then the padding.
    let exec_end = rest.iter().position(|c| *c == 0)?;
    let mut pos = exec_end;
    while rest.get(pos) == Some(&0) {
        pos += 1;
    }
    let mut out = Vec::new();
    for _ in 0..argc {
        let Some(tail) = rest.get(pos..).filter(|t| !t.is_empty()) else {
            break;
        };
        // An argument cut off by the buffer's end still counts, as far as it goes.
        let len = tail.iter().position(|c| *c == 0).unwrap_or(tail.len());
        if len > 0 && out.len() < MAX_ARGS {
            out.push(bounded_arg(&tail[..len]));
        }
        pos += len + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from this Linux machine (`cat /proc/PID/stat` of `head`, and a tmux server
    /// whose `comm` holds a space and a parenthesis).
    #[test]
    fn proc_stat_lines_parse() {
        let head = "5760 (head) R 5748 5748 14238 0 -1 4194304 103 0 0 0 0 0 0 0 20 0 1 0 \
                    33588 2998272 390 18446744073709551615 94757167419392 94757167443497 0";
        assert_eq!(
            parse_proc_stat(head),
            Some(Stat {
                ppid: 5748,
                tpgid: -1,
                start: Some(33588)
            })
        );
        let odd = "812 (tmux: serv) r) S 1 812 812 34816 9001 4194560 0 0";
        assert_eq!(
            parse_proc_stat(odd),
            Some(Stat {
                ppid: 1,
                tpgid: 9001,
                start: None
            })
        );
        for bad in [
            "",
            "12 (x",
            "12 (x) S",
            "12 (x) S one 2 3 4 5",
            "12 (x) S 1 2 3 4",
        ] {
            assert_eq!(parse_proc_stat(bad), None, "{bad:?}");
        }
        // Our own, live.
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_proc_stat(&me).is_some_and(|s| s.ppid > 0));
    }

    #[test]
    fn cmdline_bytes_parse_bounded() {
        assert_eq!(
            parse_cmdline(b"node\0/usr/local/bin/codex\0--yolo\0"),
            ["node", "/usr/local/bin/codex", "--yolo"]
        );
        assert!(parse_cmdline(b"").is_empty());
        let many: Vec<u8> = (0..40).flat_map(|_| b"a\0".iter().copied()).collect();
        assert_eq!(parse_cmdline(&many).len(), MAX_ARGS);
        let long = vec![b'x'; 4000];
        assert_eq!(parse_cmdline(&long)[0].len(), MAX_ARG_BYTES);
        assert_eq!(parse_cmdline(b"\xff\xfe\0ok\0"), ["\u{fffd}\u{fffd}", "ok"]);
    }

    /// A `KERN_PROCARGS2` buffer laid out as macOS writes it (argc, exec path, NUL padding to
    /// a word boundary, argv, envp) for `codex` started from Homebrew's node: Codex and Claude
    /// are node processes whose argv names the script, as on Linux.
    fn procargs2(argc: i32, exec: &str, pad: usize, args: &[&str], env: &[&str]) -> Vec<u8> {
        let mut b = argc.to_ne_bytes().to_vec();
        b.extend_from_slice(exec.as_bytes());
        b.extend(std::iter::repeat_n(0u8, 1 + pad));
        for a in args.iter().chain(env) {
            b.extend_from_slice(a.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn procargs2_bytes_parse() {
        let b = procargs2(
            3,
            "/opt/homebrew/Cellar/node/23.3.0/bin/node",
            6,
            &["node", "/opt/homebrew/bin/codex", "--yolo"],
            &[
                "PATH=/opt/homebrew/bin:/usr/bin",
                "TMUX=/private/tmp/tmux-501/default,1,0",
            ],
        );
        let argv = parse_procargs2(&b).unwrap();
        assert_eq!(argv, ["node", "/opt/homebrew/bin/codex", "--yolo"]);
        // The environment is never read as arguments.
        let one = procargs2(1, "/bin/zsh", 0, &["-zsh"], &["SECRET=1"]);
        assert_eq!(parse_procargs2(&one).unwrap(), ["-zsh"]);
        // Cut off mid-argument: what is there, no panic.
        let cut = &b[..b.len() - 70];
        let argv = parse_procargs2(cut).unwrap();
        assert_eq!(argv[0], "node");
        // Hostile or empty shapes.
        assert_eq!(parse_procargs2(b""), None);
        assert_eq!(parse_procargs2(&[1, 0]), None);
        assert_eq!(parse_procargs2(&(-1i32).to_ne_bytes()), None);
        assert_eq!(parse_procargs2(&7i32.to_ne_bytes()), None, "no exec path");
        let huge = procargs2(i32::MAX, "/x", 0, &["a", "b"], &[]);
        assert_eq!(parse_procargs2(&huge).unwrap(), ["a", "b"]);
        let many: Vec<&str> = vec!["a"; 40];
        let b = procargs2(40, "/x", 3, &many, &[]);
        assert_eq!(parse_procargs2(&b).unwrap().len(), MAX_ARGS);
    }
}
