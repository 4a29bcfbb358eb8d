//! Notifications on attention and `agtmux next` (issue 21), against a real tmux on a private
//! socket, the real daemon, and a real attached client: `tmux attach` running under `script`
//! inside a pane of a second private server, so the client has a real terminal and every byte
//! it writes to it is recorded in a typescript. States come from real Claude hook payloads sent
//! through `agtmux hook claude` for panes whose process is named `claude`. Every check that
//! something did NOT happen comes after a positive sign (a later notice, a log line).
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod support;
use support::{Server, kill_tmux_server, scratch_dir, wait_until, write_script};

/// A terminal: a pane of a host tmux server running `script` around `tmux attach`.
struct Terminal {
    host: String,
    typescript: PathBuf,
}

impl Terminal {
    fn attach(s: &Server, session: &str) -> Terminal {
        let host = format!("{}-term", s.name);
        let typescript = s.dir.join("typescript");
        let attach = format!(
            "script -q -f -c 'TMUX= tmux -L {} attach -t {}' {}",
            s.name,
            session,
            typescript.display()
        );
        let st = Command::new("tmux")
            .args(["-L", &host, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "160", "-y", "50", &attach])
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let t = Terminal { host, typescript };
        let ok = wait_until(20, || {
            s.tmux_out(&["list-clients", "-F", "#{client_control_mode}"])
                .lines()
                .any(|l| l == "0")
                && t.bytes().len() > 100
        });
        assert!(ok, "no attached client drew anything");
        t
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.typescript).unwrap_or_default()
    }

    /// What the client drew: the typescript without the OSC notifications.
    fn drawn(&self) -> String {
        let mut b = self.bytes();
        while let Some(start) = find(&b, b"\x1b]9;") {
            let end = find(&b[start..], b"\x1b\\").map_or(b.len(), |e| start + e + 2);
            b.drain(start..end);
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    fn bells(&self) -> usize {
        self.bytes().iter().filter(|b| **b == 0x07).count()
    }

    /// Every OSC 9 notification in the typescript, as text.
    fn osc9(&self) -> Vec<String> {
        let b = self.bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(pos) = find(&b[i..], b"\x1b]9;") {
            let start = i + pos + 4;
            let end = find(&b[start..], b"\x1b\\").map_or(b.len(), |e| start + e);
            out.push(String::from_utf8_lossy(&b[start..end]).into_owned());
            i = end;
        }
        out
    }

    /// Type raw bytes into the terminal (as the terminal emulator would send them).
    fn send_hex(&self, hex: &[&str]) {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.host, "send-keys", "-H"]).args(hex);
        assert!(c.status().unwrap().success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        kill_tmux_server(&self.host);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn hook(s: &Server, pane: &str, session: &str, event: &str, extra: &str) {
    let payload =
        format!("{{\"session_id\":\"{session}\",\"hook_event_name\":\"{event}\"{extra}}}");
    let out = s.hook("claude", pane, payload.as_bytes());
    assert!(out.status.success(), "{out:?}");
}

fn approval(s: &Server, pane: &str) {
    let sid = format!("s{}", pane.trim_start_matches('%'));
    hook(s, pane, &sid, "UserPromptSubmit", ",\"prompt\":\"go\"");
    hook(
        s,
        pane,
        &sid,
        "PermissionRequest",
        ",\"tool_name\":\"Bash\"",
    );
    s.wait_pane(pane, "@agtmux_attention_kind", "approval", 30);
}

fn wait_log(s: &Server, what: &str, pred: impl Fn(&str) -> bool) {
    let ok = wait_until(40, || s.log().lines().any(&pred));
    assert!(ok, "no log line: {what}\n{}", s.log_tail());
}

/// Agents in windows 1.. of session `main`; the daemon started with `opts` set.
fn world(tag: &str, agents: usize, opts: &[(&str, &str)]) -> (Server, Vec<String>) {
    let mut s = Server::start(tag);
    let panes: Vec<String> = (0..agents).map(|_| s.silent_agent("claude")).collect();
    for (k, v) in opts {
        s.tmux(&["set-option", "-g", k, v]);
    }
    s.start_daemon();
    for p in &panes {
        s.wait_pane(p, "@agtmux_presence", "managed", 30);
    }
    (s, panes)
}

#[test]
fn bell_and_osc_arrive_once_for_an_unseen_pane_never_for_the_one_looked_at() {
    let (s, p) = world("notify-focus", 3, &[("@agtmux-notify", "bell,osc,message")]);
    let (seen, other, third) = (&p[0], &p[1], &p[2]);
    // A title that would inject a style and a format if it were not escaped.
    // (select-pane -T expands formats itself, hence `##` for a literal `#{`.)
    let title = "x #[fg=red]y #{pane_id}";
    s.tmux(&["select-pane", "-t", other, "-T", "x #[fg=red]y ##{pane_id}"]);
    let ok = wait_until(30, || s.pane_opt(other, "@agtmux_title").contains("fg=red"));
    assert!(ok, "title never published\n{}", s.log_tail());
    // The client will show `seen`'s window.
    s.tmux(&["select-window", "-t", seen]);
    let term = Terminal::attach(&s, "main");
    let bells0 = term.bells();

    approval(&s, seen);
    approval(&s, other);
    wait_log(&s, "looked-at pane skipped", |l| {
        l.contains(&format!("notify_skipped pane={seen} reason=looked_at"))
    });
    wait_log(&s, "notice for the other pane", |l| {
        l.contains("notify_sent count=1") && l.contains(&format!("panes={other} "))
    });
    // A later notice for a third pane is the positive sign that everything before it arrived.
    approval(&s, third);
    let ok = wait_until(40, || {
        term.osc9().iter().any(|o| o.contains(&format!("{third} "))) && term.bells() >= bells0 + 2
    });
    assert!(
        ok,
        "third notice never reached the terminal\n{}",
        s.log_tail()
    );
    let osc = term.osc9();
    assert_eq!(osc.len(), 2, "{osc:?}");
    assert!(
        osc[0].starts_with(&format!("agtmux: {other} main:")),
        "{osc:?}"
    );
    assert!(osc[0].contains("claude needs approval"), "{osc:?}");
    assert!(
        !osc.iter().any(|o| o.contains(&format!("{seen} "))),
        "{osc:?}"
    );
    assert_eq!(term.bells(), bells0 + 2, "one bell per notice");
    assert!(osc[0].ends_with(title), "{osc:?}");
    // The message channel drew the same text in the client's status line, title literal.
    let ok = wait_until(20, || {
        term.drawn().contains(&format!("needs approval: {title}"))
    });
    assert!(
        ok,
        "the message with its literal title never reached the terminal"
    );

    // The terminal loses focus (it sends focus-out): the pane it shows is no longer looked at,
    // so a turn that ends there is an unseen `done`, and it notifies.
    s.tmux(&["set-option", "-g", "focus-events", "on"]);
    term.send_hex(&["1b", "5b", "4f"]);
    let ok = wait_until(20, || {
        let f = s.tmux_out(&[
            "list-clients",
            "-F",
            "#{client_control_mode} #{client_flags}",
        ]);
        f.lines()
            .any(|l| l.starts_with("0 ") && !l.contains("focused"))
    });
    assert!(ok, "the client never lost focus");
    // A structure change makes the daemon read the clients now; it logs what it found.
    s.tmux(&["new-window", "-d", "-t", "main"]);
    wait_log(&s, "the daemon saw the unfocused terminal", |l| {
        l.contains("viewers_changed sessions=0")
    });
    let sid = format!("s{}", seen.trim_start_matches('%'));
    hook(&s, seen, &sid, "Stop", "");
    s.wait_pane(seen, "@agtmux_attention_kind", "done", 30);
    let ok = wait_until(40, || {
        term.osc9()
            .iter()
            .any(|o| o.contains(&format!("{seen} ")) && o.contains("finished"))
    });
    assert!(
        ok,
        "no notice for the shown pane of an unfocused terminal\n{}",
        s.log_tail()
    );
    assert_eq!(term.osc9().len(), 3, "{:?}", term.osc9());
}

#[test]
fn a_burst_coalesces_into_one_notice_that_counts() {
    let (s, p) = world(
        "notify-burst",
        5,
        &[
            ("@agtmux-notify", "bell,osc,message"),
            ("@agtmux-notify-coalesce", "5000"),
        ],
    );
    wait_log(&s, "the coalescing window read", |l| {
        l.contains("notify_config") && l.contains("coalesce_ms=5000")
    });
    let term = Terminal::attach(&s, "main");
    let bells0 = term.bells();
    for pane in &p {
        let sid = format!("s{}", pane.trim_start_matches('%'));
        hook(&s, pane, &sid, "UserPromptSubmit", ",\"prompt\":\"go\"");
    }
    for pane in &p {
        s.wait_pane(pane, "@agtmux_state", "running", 30);
    }
    for pane in &p {
        let sid = format!("s{}", pane.trim_start_matches('%'));
        hook(&s, pane, &sid, "Stop", "");
    }
    wait_log(&s, "one notice of 5", |l| {
        l.contains("notify_sent count=5") && l.contains("kinds=done,done,done,done,done")
    });
    let ok = wait_until(30, || {
        term.osc9()
            .iter()
            .any(|o| o.starts_with("agtmux: 5 agents need you (5 done)"))
            && term.bells() > bells0
    });
    assert!(ok, "{:?}\n{}", term.osc9(), s.log_tail());
    // The message channel shows the same text on the client (drawn in its status line).
    let ok = wait_until(20, || term.drawn().contains("5 agents need you"));
    assert!(ok);
    // Positive sign that the burst is over: one more notice, for an approval.
    approval(&s, &p[0]);
    let ok = wait_until(40, || {
        term.osc9().iter().any(|o| o.contains("needs approval"))
    });
    assert!(ok, "{}", s.log_tail());
    assert_eq!(term.osc9().len(), 2, "{:?}", term.osc9());
    let ok = wait_until(20, || term.bells() >= bells0 + 2);
    assert!(ok);
    assert_eq!(
        term.bells(),
        bells0 + 2,
        "one bell for the burst, one for the approval"
    );
    assert_eq!(
        s.log().matches("notify_sent").count(),
        2,
        "{}",
        s.log_tail()
    );
}

#[test]
fn command_gets_the_fields_as_argv_and_a_hanging_one_is_killed() {
    let dir = scratch_dir("notify-cmd");
    let out = dir.join("argv");
    let script = write_script(
        &dir.join("record.sh"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}.tmp\nmv {}.tmp {}\n",
            out.display(),
            out.display(),
            out.display()
        ),
    );
    let pidfile = dir.join("sleeper");
    let hang = write_script(
        &dir.join("hang.sh"),
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
            pidfile.display()
        ),
    );
    let template = format!(
        "{} {{pane}} {{provider}} {{state}} {{kind}} {{count}} '{{title}}' {{location}}",
        script.display()
    );
    let (s, p) = world(
        "notify-cmd",
        2,
        &[
            ("@agtmux-notify", "command"),
            ("@agtmux-notify-command", &template),
            ("@agtmux-notify-timeout", "1"),
        ],
    );
    // A hostile title: a shell would run it, tmux would expand it; it must arrive as is.
    let title = "t $(touch /tmp/agtmux-pwned) #[fg=red]; `id`";
    s.tmux(&["select-pane", "-t", &p[0], "-T", title]);
    let ok = wait_until(30, || s.pane_opt(&p[0], "@agtmux_title").contains("pwned"));
    assert!(ok, "title never published\n{}", s.log_tail());
    approval(&s, &p[0]);
    let ok = wait_until(40, || out.exists());
    assert!(ok, "the command never ran\n{}", s.log_tail());
    let argv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = argv.lines().collect();
    assert_eq!(
        lines[..5],
        [p[0].as_str(), "claude", "waiting_approval", "approval", "1"],
        "{argv}"
    );
    assert_eq!(lines[5], title, "{argv}");
    assert!(lines[6].starts_with("main:"), "{argv}");
    assert!(!std::path::Path::new("/tmp/agtmux-pwned").exists());

    // Approval again within the interval: rate limited, logged, not run.
    let sid = format!("s{}", p[0].trim_start_matches('%'));
    hook(&s, &p[0], &sid, "PostToolUse", ",\"tool_name\":\"Bash\"");
    s.wait_pane(&p[0], "@agtmux_state", "running", 30);
    std::fs::remove_file(&out).unwrap();
    approval(&s, &p[0]);
    wait_log(&s, "rate limited", |l| {
        l.contains(&format!("notify_skipped pane={} reason=rate_limited", p[0]))
    });
    assert!(!out.exists());

    // A command that hangs is killed after the bound (with what it started) and logged; the
    // daemon goes on publishing meanwhile.
    s.tmux(&[
        "set-option",
        "-g",
        "@agtmux-notify-command",
        &hang.display().to_string(),
    ]);
    approval(&s, &p[1]);
    wait_log(&s, "hanging command killed", |l| {
        l.contains("notify_command_killed") && l.contains("hang.sh")
    });
    let sleeper = std::fs::read_to_string(&pidfile).unwrap();
    let gone = wait_until(10, || {
        !std::path::Path::new(&format!("/proc/{}", sleeper.trim())).exists()
    });
    assert!(gone, "the command's child outlived the kill");
    let sid = format!("s{}", p[1].trim_start_matches('%'));
    hook(&s, &p[1], &sid, "Stop", "");
    s.wait_pane(&p[1], "@agtmux_state", "idle", 30);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn next_goes_to_the_most_urgent_pane_cycles_and_marks_done_seen() {
    // Panes: a (done, oldest), b (approval), c (input), d (done). Client starts on window 0.
    let (s, p) = world("notify-next", 4, &[("@agtmux-notify", "off")]);
    let (a, b, c, d) = (&p[0], &p[1], &p[2], &p[3]);
    let term = Terminal::attach(&s, "main");
    let client = s.client_name();
    let sid = |x: &str| format!("s{}", x.trim_start_matches('%'));
    for x in [a, d] {
        hook(&s, x, &sid(x), "UserPromptSubmit", ",\"prompt\":\"go\"");
        s.wait_pane(x, "@agtmux_state", "running", 30);
        hook(&s, x, &sid(x), "Stop", "");
        s.wait_pane(x, "@agtmux_attention_kind", "done", 30);
    }
    approval(&s, b);
    hook(&s, c, &sid(c), "UserPromptSubmit", ",\"prompt\":\"go\"");
    hook(
        &s,
        c,
        &sid(c),
        "PermissionRequest",
        ",\"tool_name\":\"AskUserQuestion\"",
    );
    s.wait_pane(c, "@agtmux_attention_kind", "input", 30);

    let next = || {
        let mut cmd = Command::new(support::BIN);
        cmd.args(["next", "-L", &s.name, "-c", &client]);
        s.env(&mut cmd);
        let o = cmd.env_remove("TMUX").output().unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let shown = || {
        let rows = s.tmux_out(&["list-clients", "-F", "#{client_name}\t#{pane_id}"]);
        rows.lines()
            .find_map(|l| l.strip_prefix(&format!("{client}\t")).map(str::to_string))
            .unwrap_or_default()
    };
    // approval first, then input, then done oldest first.
    assert_eq!(next(), *b);
    assert!(wait_until(20, || shown() == *b));
    assert_eq!(next(), *c);
    assert!(wait_until(20, || shown() == *c));
    assert_eq!(next(), *a);
    assert!(wait_until(20, || shown() == *a));
    // Visiting a done pane marks it seen.
    s.wait_pane(a, "@agtmux_attention_kind", "", 30);
    assert_eq!(s.pane_opt(a, "@agtmux_state"), "idle");
    // From a pane no longer in the list the cycle starts over: approval again.
    assert_eq!(next(), *b);
    assert!(wait_until(20, || shown() == *b));
    assert_eq!(next(), *c);
    assert_eq!(next(), *d);
    s.wait_pane(d, "@agtmux_attention_kind", "", 30);
    assert_eq!(next(), *b, "cycles back to the most urgent");
    drop(term);
}

#[test]
fn the_next_key_is_bound_where_free_and_switches_the_client_that_pressed_it() {
    let (s, p) = world(
        "notify-key",
        1,
        &[("@agtmux-notify", "off"), ("@agtmux-bin", support::BIN)],
    );
    let tpm = || {
        let script = support::plugin_script();
        let mut c = Command::new("bash");
        c.arg(&script)
            .env("TMUX", s.tmux_env())
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null());
        s.env(&mut c);
        assert!(c.status().unwrap().success());
    };
    tpm();
    let bound = s.prefix_binding("N");
    assert!(bound.contains("next -c #{q:client_name}"), "{bound}");

    approval(&s, &p[0]);
    let term = Terminal::attach(&s, "main");
    // prefix + N, typed into the client's terminal.
    let mut c = Command::new("tmux");
    c.args(["-L", &term.host, "send-keys", "C-b", "N"]);
    assert!(c.status().unwrap().success());
    let ok = wait_until(30, || {
        s.tmux_out(&["list-clients", "-F", "#{client_control_mode} #{pane_id}"])
            .lines()
            .any(|l| l == format!("0 {}", p[0]))
    });
    assert!(ok, "prefix + N did not switch the client\n{}", s.log_tail());

    // A user's own binding of N is left alone; a key the user names is bound.
    s.tmux(&["bind-key", "N", "display-message", "mine"]);
    s.tmux(&["set-option", "-g", "@agtmux-next-key", "M-j"]);
    tpm();
    let n = s.prefix_binding("N");
    assert!(n.contains("display-message mine"), "{n}");
    let j = s.prefix_binding("M-j");
    assert!(j.contains("next -c"), "{j}");
}
