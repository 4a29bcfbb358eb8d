//! Issue 2: the walking skeleton against a real tmux server (private socket per test).
mod support;
use support::*;

#[test]
fn agent_panes_get_managed_options_and_shells_stay_unmanaged() {
    let mut s = Server::start("managed");
    let shell = s.tmux_out(&["display-message", "-p", "-t", "main:0", "#{pane_id}"]);
    // A shell that shows a Claude screen is still a shell (decoy).
    let decoy = s.new_pane(&format!(
        "cat {}; exec sleep 100000",
        fixture("screens/claude/claude_05_permission_prompt.txt").display()
    ));
    let claude = s.new_pane(&format!("{BIN} fake-agent claude --speed 100"));
    let codex = s.new_pane(&format!("{BIN} fake-agent codex --speed 100"));
    s.start_daemon();
    s.wait_pane(&claude, "@agtmux_presence", "managed", 15);
    s.wait_pane(&claude, "@agtmux_provider", "claude", 5);
    s.wait_pane(&codex, "@agtmux_presence", "managed", 15);
    s.wait_pane(&codex, "@agtmux_provider", "codex", 5);
    assert!(!s.pane_opt(&claude, "@agtmux_state").is_empty());
    assert!(!s.pane_opt(&claude, "@agtmux_evidence").is_empty());
    // The decoy and the plain shell were seen by now (they were listed before the agents)
    // and must carry nothing.
    for p in [&shell, &decoy] {
        assert_eq!(
            s.pane_opt(p, "@agtmux_presence"),
            "",
            "{p} must stay unmanaged"
        );
        assert_eq!(s.pane_opt(p, "@agtmux_state"), "");
    }
    assert!(s.global_opt("@agtmux_counts").starts_with("running="));
    assert!(s.global_opt("@agtmux_daemon").contains(" ok"));
}

#[test]
fn a_killed_agent_pane_leaves_no_trace_in_window_and_global_options() {
    let mut s = Server::start("killed");
    let agent = s.new_pane(&format!("{BIN} fake-agent claude --speed 100"));
    let window = s.tmux_out(&["display-message", "-p", "-t", &agent, "#{window_id}"]);
    // A second pane in that window keeps the window alive after the agent pane dies.
    s.tmux(&["split-window", "-d", "-t", &agent, "sleep 100000"]);
    s.start_daemon();
    s.wait_pane(&agent, "@agtmux_presence", "managed", 15);
    let icon = || s.tmux_out(&["show-options", "-wqv", "-t", &window, "@agtmux_window_icon"]);
    assert!(
        wait_until(10, || !icon().is_empty()),
        "window icon set while the agent lives"
    );
    s.tmux(&["kill-pane", "-t", &agent]);
    assert!(
        wait_until(10, || icon().is_empty()),
        "window icon cleared after the agent pane died: {:?}",
        icon()
    );
}

#[test]
fn the_daemon_exits_when_its_server_is_killed() {
    let mut s = Server::start("exit");
    s.start_daemon();
    let mut child = s.daemon.take().unwrap();
    s.tmux(&["kill-server"]);
    let exited = wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "daemon still running after kill-server");
}

#[test]
fn two_servers_get_two_daemons() {
    let mut a = Server::start("two-a");
    let mut b = Server::start("two-b");
    a.start_daemon();
    b.start_daemon();
    let da = a.global_opt("@agtmux_daemon");
    let db = b.global_opt("@agtmux_daemon");
    let pid = |v: &str| v.split(' ').next().unwrap_or("").to_string();
    assert_ne!(
        pid(&da),
        pid(&db),
        "each server has its own daemon: {da} / {db}"
    );
}

#[test]
fn running_the_plugin_twice_gives_one_daemon() {
    let s = Server::start("plugin");
    let plugin = plugin_script();
    s.tmux(&["set-option", "-g", "@agtmux-bin", BIN]);
    // The daemons the plugin starts log at info (`daemon_exists` below).
    s.tmux(&["set-environment", "-g", "RUST_LOG", "info"]);
    // TPM runs the plugin inside the server (run-shell); a config reload runs it again.
    for _ in 0..2 {
        let out = s.tmux(&["run-shell", &plugin.display().to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let first = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 15);
    let out = s.tmux(&["run-shell", &plugin.display().to_string()]);
    assert!(out.status.success());
    // Three starts, one daemon: `--detach` returns only after it decided, so a second keeper
    // would already be counted here.
    let socket = s.socket();
    // The plugin starts a keeper (`--supervise`) that runs the daemon as its child.
    let n = count_daemons(&socket, false);
    assert_eq!(n, 1, "exactly one daemon for {}", socket.display());
    assert_eq!(count_daemons(&socket, true), 1, "exactly one keeper");
    assert_eq!(
        s.global_opt("@agtmux_daemon"),
        first,
        "the first daemon is still the one"
    );
    // The prefix keys are bound.
    let keys = s.tmux_out(&["list-keys", "-T", "prefix"]);
    assert!(keys.contains("popup"), "popup key bound");
    assert!(keys.contains("choose-tree"), "tree key bound");
    // The server kill in Drop stops both: the daemon exits, and the keeper with it.
}

/// Count `agtmux daemon` processes whose command line names this socket: keepers
/// (`--supervise`) or the daemons themselves.
fn count_daemons(socket: &std::path::Path, keepers: bool) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "daemon")
            && args.iter().any(|a| std::path::Path::new(a) == socket)
            && args.iter().any(|a| a == "--supervise") == keepers
        {
            n += 1;
        }
    }
    n
}

#[test]
fn closing_sessions_under_the_control_client_is_not_a_failure() {
    let mut s = Server::start("sessions");
    for i in 0..6 {
        s.tmux(&["new-session", "-d", "-s", &format!("s{i}"), "sleep 100000"]);
    }
    let pane = s.silent_agent("claude");
    s.start_daemon();
    s.wait_pane(&pane, "@agtmux_presence", "managed", 15);
    // Close, six times, exactly the session the daemon's control client is attached to,
    // each time once it has re-attached somewhere else.
    let control_session = || {
        s.tmux_out(&[
            "list-clients",
            "-F",
            "#{client_control_mode} #{session_name}",
        ])
        .lines()
        .find_map(|l| l.strip_prefix("1 ").map(str::to_string))
    };
    for round in 0..6 {
        let mut target = None;
        assert!(
            wait_until(10, || {
                target = control_session().filter(|n| n != "main");
                target.is_some()
            }),
            "round {round}: the control client re-attached to a session other than main\n{}",
            s.log_tail()
        );
        let target = target.unwrap();
        s.tmux(&["kill-session", "-t", &target]);
        // Keep `main` out of it: the agent lives there.
        if round < 5 {
            s.tmux(&[
                "new-session",
                "-d",
                "-s",
                &format!("n{round}"),
                "sleep 100000",
            ]);
        }
    }
    s.claude(&pane, claude::permission("k1"));
    s.wait_pane(&pane, "@agtmux_state", "waiting_approval", 10);
    let status = s.global_opt("@agtmux_daemon");
    assert!(
        status.ends_with(" ok"),
        "no escalation or hold-down: {status}"
    );
    assert!(
        !s.log_tail().contains("supervisor_hold_down"),
        "{}",
        s.log_tail()
    );
}

/// macOS's per-user `$TMPDIR` (and any deep `AGTMUX_RUNTIME_DIR`/`XDG_RUNTIME_DIR`) makes socket
/// paths longer than a Unix socket may be (107 bytes here, 103 on macOS): the sockets move to
/// the short default runtime dir, where the CLI finds them from the same environment.
#[test]
fn a_runtime_dir_too_long_for_socket_paths_still_serves_the_cli() {
    let mut s = Server::start("longrt");
    s.runtime_dir = s.dir.join("r".repeat(120));
    s.start_daemon();
    let pane = s.silent_agent("claude");
    let mut ls = std::process::Command::new(BIN);
    ls.args(["ls", "--json", "--all", "-L", &s.name]);
    s.env(&mut ls);
    ls.env_remove("TMUX").stdin(std::process::Stdio::null());
    let mut last = String::new();
    let listed = wait_until(15, || {
        let out = ls.output().unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success() && last.contains(&format!("\"{pane}\""))
    });
    let key_base = s.name.clone();
    let log = std::fs::read_to_string(s.server_dir().join("daemon.log")).unwrap_or_default();
    // The sockets went to the default runtime dir; remove this test's files from it.
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(&s.dir).unwrap().uid();
    let fallback = std::path::PathBuf::from(format!("/tmp/agtmux-{uid}"));
    drop(s);
    if let Ok(rd) = std::fs::read_dir(&fallback) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&key_base) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    assert!(listed, "agtmux ls never listed {pane}: {last}");
    assert!(log.contains("runtime_dir_too_long"), "{log}");
}

/// Issue 17: a daemon whose full `list-panes -a` scan is 10 minutes apart, so anything it
/// finds in a test was found through notifications, the pane subscription or the re-checks
/// of a new pane, never through that scan.
fn start_daemon_without_scan(s: &mut Server) {
    s.spawn_daemon_with(&[("AGTMUX_FULL_REFRESH_MS", "600000")]);
    // Published after the first pane refresh: the daemon knows the server from here on.
    s.wait_global("@agtmux_daemon", |v| v.contains(" ok"), 15);
}

#[test]
fn a_new_window_whose_agent_starts_late_is_seen_without_the_full_scan() {
    let mut s = Server::start("newwin");
    start_daemon_without_scan(&mut s);
    // `-n`: a named window, so tmux's automatic-rename stays off and no %window-renamed helps.
    // The agent exec()s only after the pane was created and first listed: bash runs `sleep`,
    // then becomes `codex` (argv[0]). Before issue 17 the first list-panes saw `bash`/`sleep`
    // and nothing looked again until the full scan.
    let late = s.tmux_out(&[
        "new-window",
        "-d",
        "-n",
        "late",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "main",
        "bash -c 'sleep 0.4; exec -a codex sleep 100000'",
    ]);
    // The fake agent re-executes itself as `codex`: two execs before the command settles.
    let fake = s.tmux_out(&[
        "new-window",
        "-d",
        "-n",
        "fake",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "main",
        &format!("{BIN} fake-agent codex --speed 100"),
    ]);
    s.wait_pane(&late, "@agtmux_presence", "managed", 20);
    s.wait_pane(&late, "@agtmux_provider", "codex", 5);
    s.wait_pane(&fake, "@agtmux_presence", "managed", 20);
    s.wait_pane(&fake, "@agtmux_provider", "codex", 5);
}

#[test]
fn an_agent_typed_into_an_existing_shell_pane_is_seen_without_the_full_scan() {
    let mut s = Server::start("typed");
    let shell = "env PS1='$ ' bash --norc --noprofile";
    // One shell in a named window of the session the control client attaches to, one in
    // another session (no %window-* notification reaches a control client for it).
    let here = s.tmux_out(&[
        "new-window",
        "-d",
        "-n",
        "shell",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "main",
        shell,
    ]);
    let there = s.tmux_out(&[
        "new-session",
        "-d",
        "-s",
        "other",
        "-n",
        "shell",
        "-P",
        "-F",
        "#{pane_id}",
        shell,
    ]);
    start_daemon_without_scan(&mut s);
    // Past the re-checks that follow a pane's creation (2 s): only the pane subscription
    // can see what is typed now.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for pane in [&here, &there] {
        s.tmux(&[
            "send-keys",
            "-t",
            pane,
            "-l",
            &format!("{BIN} fake-agent codex --speed 100"),
        ]);
        s.tmux(&["send-keys", "-t", pane, "Enter"]);
    }
    for pane in [&here, &there] {
        s.wait_pane(pane, "@agtmux_presence", "managed", 20);
        s.wait_pane(pane, "@agtmux_provider", "codex", 5);
    }
    // And the shell is a shell again once the agent ends.
    for pane in [&here, &there] {
        s.tmux(&["send-keys", "-t", pane, "C-c"]);
    }
    for pane in [&here, &there] {
        s.wait_pane(pane, "@agtmux_presence", "", 20);
    }
}
