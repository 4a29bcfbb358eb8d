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
    let agent = s.tmux_out(&[
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "main",
        &format!("{BIN} fake-agent claude --speed 100"),
    ]);
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
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("agtmux.tmux");
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
    let first = s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    let out = s.tmux(&["run-shell", &plugin.display().to_string()]);
    assert!(out.status.success());
    // Three starts, one daemon: the other two said so (`daemon_exists`) and left.
    assert!(
        wait_until(15, || s.log().matches("daemon_exists").count() == 2),
        "two later starts found the daemon\n{}",
        s.log_tail()
    );
    let socket = s.socket();
    let mut n = 0;
    assert!(
        wait_until(15, || {
            n = count_daemons(&socket);
            n == 1
        }),
        "exactly one daemon for {}, {n} run",
        socket.display()
    );
    assert_eq!(
        s.global_opt("@agtmux_daemon"),
        first,
        "the first daemon is still the one"
    );
    // The prefix keys are bound.
    let keys = s.tmux_out(&["list-keys", "-T", "prefix"]);
    assert!(keys.contains("popup"), "popup key bound");
    assert!(keys.contains("choose-tree"), "tree key bound");
    // Stop it (the server kill in Drop would too).
    let pid = first.split(' ').next().unwrap_or("").to_string();
    let _ = std::process::Command::new("kill").arg(&pid).status();
}

/// Count `agtmux daemon` processes whose command line names this socket.
fn count_daemons(socket: &std::path::Path) -> usize {
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
    s.hook(
        "claude",
        &pane,
        br#"{"session_id":"k1","hook_event_name":"PermissionRequest","tool_name":"Bash"}"#,
    );
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
