//! How the daemon attaches to tmux (issue 20, item 8): its control client sits in a session of
//! its own (`_agtmux`), so a user's session counts as attached only while a real client looks
//! at it. Real tmux servers on private sockets; a real client is a `tmux attach` running in a
//! pane of an outer server. Every check of an absence comes after a positive sign (the daemon's
//! control client sits in `_agtmux`, an agent pane is managed, a session is gone).
use serde_json::json;
use std::process::Command;

mod support;
use support::{Server, wait_until};

const OURS: &str = "_agtmux";

/// `name attached` per session, as `tmux ls` knows it.
fn attached(s: &Server) -> Vec<(String, String)> {
    s.tmux_out(&["list-sessions", "-F", "#{session_name} #{session_attached}"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect()
}

/// The daemon's control client sits in its own session (the positive sign every test waits
/// for first).
fn wait_control_session(s: &Server) {
    let mut last = Vec::new();
    let ok = wait_until(30, || {
        last = attached(s);
        last.iter().any(|(n, a)| n == OURS && a == "1")
    });
    assert!(
        ok,
        "no {OURS} with the control client: {last:?}\n{}",
        s.log_tail()
    );
}

fn has_session(s: &Server, name: &str) -> bool {
    s.tmux(&["has-session", "-t", &format!("={name}")])
        .status
        .success()
}

#[test]
fn a_session_is_unattached_once_its_real_client_leaves_and_destroy_unattached_ends_it() {
    let mut s = Server::start("attach");
    // `main` (the harness's) holds an agent; `work` gets a real client.
    s.tmux(&["new-session", "-d", "-s", "work", "-x", "120", "-y", "40"]);
    let agent = s.silent_agent("claude");
    s.start_daemon();
    // The daemon is up and manages the agent (its control client has long settled).
    s.wait_pane(&agent, "@agtmux_provider", "claude", 60);
    // No real client anywhere: no session of the user's counts as attached.
    for (n, a) in attached(&s) {
        if n != OURS {
            assert_eq!(a, "0", "{n} looks attached: {:?}", attached(&s));
        }
    }
    wait_control_session(&s);

    // A real client on `work`.
    let outer = Server::start("attach-outer");
    // The outer pane stays when the client in it detaches, to run one again.
    outer.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
    let attach = format!("env -u TMUX tmux -L {} attach -t work", s.name);
    outer.tmux(&["respawn-pane", "-k", "-t", "main:0", &attach]);
    let work = |a: &str| attached(&s).contains(&("work".into(), a.into()));
    assert!(wait_until(30, || work("1")), "{:?}", attached(&s));
    // It detaches: `work` is unattached again, and `tmux ls` marks only our own session.
    s.tmux(&["detach-client", "-s", "work"]);
    assert!(wait_until(30, || work("0")), "{:?}", attached(&s));
    for l in s.tmux_out(&["ls"]).lines() {
        assert!(
            !l.contains("(attached)") || l.starts_with(&format!("{OURS}:")),
            "{l}"
        );
    }
    // Back on `work`, which the user now wants gone once nobody looks at it. The client leaves
    // it for `main` (not by detaching: tmux 3.3a and 3.5a can crash when `destroy-unattached`
    // ends a session while its client exits, agtmux or not; upstream #5497).
    outer.tmux(&["respawn-pane", "-k", "-t", "main:0", &attach]);
    assert!(wait_until(30, || work("1")), "{:?}", attached(&s));
    s.tmux(&["set-option", "-t", "work", "destroy-unattached", "on"]);
    let real = s.tmux_out(&[
        "list-clients",
        "-t",
        "work",
        "-F",
        "#{?client_control_mode,,#{client_name}}",
    ]);
    let real = real
        .lines()
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    s.tmux(&["switch-client", "-c", &real, "-t", "=main"]);
    let mut ls = String::new();
    assert!(
        wait_until(30, || {
            ls = s.tmux_out(&["ls"]);
            !has_session(&s, "work")
        }),
        "destroy-unattached did not end `work`: {ls}"
    );

    // agtmux still follows the agent in `main`.
    for p in [
        json!({"session_id": "s1", "hook_event_name": "UserPromptSubmit", "prompt": "go"}),
        json!({"session_id": "s1", "hook_event_name": "PermissionRequest", "tool_name": "Bash"}),
    ] {
        s.claude(&agent, p);
    }
    s.wait_pane(&agent, "@agtmux_state", "waiting_approval", 60);
    assert!(has_session(&s, OURS));
}

#[test]
fn the_daemons_session_is_on_no_surface_of_agtmux() {
    let (s, agent) = Server::with_agent("hidden", "claude");
    s.run_plugin_direct();
    wait_control_session(&s);
    s.wait_pane(&agent, "@agtmux_provider", "claude", 60);
    // The registry's `main` session (its shell and agent panes) is there, ours is not: in
    // `ls --all --json` (the popup and the API read the same list) and in the table.
    let ls = |args: &[&str]| {
        let o = s.agtmux(&[&["ls"], args].concat());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let j = ls(&["--all", "--json"]);
    assert!(j.contains("\"main\"") && j.contains(&agent), "{j}");
    assert!(!j.contains(OURS), "{j}");
    let t = ls(&["--all"]);
    assert!(t.contains("main") && !t.contains(OURS), "{t}");
    let api = s.api("list", json!({}));
    assert!(!api.to_string().contains(OURS), "{api}");

    // prefix + S (agtmux's choose-tree) in a real client: `main` is listed, ours is not.
    let outer = s.attach_from("hidden-outer");
    let screen = outer.press_prefix_in_client("S", |x| x.contains("(0) ") && x.contains("main"));
    assert!(
        !screen.contains(OURS),
        "choose-tree shows our session:\n{screen}"
    );
    // tmux's own list does show it (the documented cost).
    assert!(s.tmux_out(&["ls"]).contains(OURS));
}

#[test]
fn the_server_exits_with_the_last_user_session_and_the_daemon_with_it() {
    let mut s = Server::start("last");
    s.start_daemon();
    wait_control_session(&s);
    s.tmux(&["kill-session", "-t", "=main"]);
    // tmux (exit-empty on, its default) ends the server as it would without agtmux.
    assert!(
        wait_until(30, || !s
            .tmux(&["show-options", "-s", "exit-empty"])
            .status
            .success()),
        "the server stayed: {}\n{}",
        s.tmux_out(&["ls"]),
        s.log_tail()
    );
    let mut d = s.daemon.take().unwrap();
    assert!(
        wait_until(30, || d.try_wait().unwrap().is_some()),
        "the daemon outlived its server"
    );
}

#[test]
fn with_exit_empty_off_the_server_stays_empty_until_a_session_comes_back() {
    let mut s = Server::start("empty");
    s.tmux(&["set-option", "-s", "exit-empty", "off"]);
    s.start_daemon();
    wait_control_session(&s);
    s.tmux(&["kill-session", "-t", "=main"]);
    // Ours goes too: the server is left with no session, as the user made it.
    let mut ls = String::new();
    assert!(
        wait_until(30, || {
            ls = s.tmux_out(&["ls", "-F", "#{session_name}"]);
            ls.is_empty()
        }),
        "sessions left: {ls:?}\n{}",
        s.log_tail()
    );
    assert!(
        s.tmux(&["show-options", "-s", "exit-empty"])
            .status
            .success(),
        "the server is gone"
    );
    // A new session of the user's: the daemon comes back into its own.
    s.tmux(&["new-session", "-d", "-s", "again"]);
    wait_control_session(&s);
    assert_eq!(
        attached(&s),
        vec![
            (OURS.to_string(), "1".to_string()),
            ("again".to_string(), "0".to_string())
        ]
    );
}

#[test]
fn the_daemons_session_goes_when_the_daemon_stops() {
    let mut s = Server::start("stop");
    s.start_daemon();
    wait_control_session(&s);
    let d = s.daemon.take().unwrap();
    // SIGTERM, as `agtmux stop` or the keeper sends it.
    Command::new("kill")
        .arg(d.id().to_string())
        .status()
        .unwrap();
    support::reap_daemon(d);
    assert!(
        wait_until(30, || !has_session(&s, OURS)),
        "{OURS} outlived the daemon: {}",
        s.tmux_out(&["ls"])
    );
    assert!(has_session(&s, "main"));
}

#[test]
fn a_real_client_that_lands_in_the_daemons_session_is_moved_on_its_way() {
    let mut s = Server::start("onward");
    // Names sort after `_`: tmux's order is _agtmux, alpha, beta, main.
    s.tmux(&["new-session", "-d", "-s", "alpha"]);
    s.tmux(&["new-session", "-d", "-s", "beta"]);
    s.start_daemon();
    wait_control_session(&s);
    let _outer = s.attach_from("onward-outer");
    let real = || {
        s.tmux_out(&[
            "list-clients",
            "-F",
            "#{client_control_mode} #{client_name} #{client_session}",
        ])
        .lines()
        .filter_map(|l| l.strip_prefix("0 "))
        .map(|l| {
            let (n, s) = l.split_once(' ').unwrap_or((l, ""));
            (n.to_string(), s.to_string())
        })
        .next()
    };
    assert!(wait_until(30, || real().is_some_and(|(_, s)| s == "main")));
    let (name, _) = real().unwrap();
    let on = |want: &str| {
        let mut last = None;
        let ok = wait_until(30, || {
            last = real();
            last.as_ref().is_some_and(|(_, s)| s == want)
        });
        assert!(
            ok,
            "the client is on {last:?}, not {want}\n{}",
            s.log_tail()
        );
    };
    // `-n` from the last session wraps round into ours: it goes on forward, to `alpha`.
    s.tmux(&["switch-client", "-c", &name, "-n"]);
    on("alpha");
    // `-p` from the first session wraps round into ours: it goes on backward, to `main`.
    s.tmux(&["switch-client", "-c", &name, "-p"]);
    on("main");
    // Straight there from a session that is no neighbour of ours (tmux's own choose-tree):
    // back where it came from.
    s.tmux(&["switch-client", "-c", &name, "-t", "=beta"]);
    on("beta");
    s.tmux(&["switch-client", "-c", &name, "-t", "=_agtmux"]);
    on("beta");
    let moves = s.log().matches("control_session_move_client").count();
    assert_eq!(moves, 3, "{}", s.log_tail());
}

#[test]
fn a_window_made_without_a_target_lands_in_the_users_session() {
    let mut s = Server::start("stray");
    s.start_daemon();
    wait_control_session(&s);
    // Run outside tmux with no target, tmux puts it in the session with the newest activity:
    // ours, right after the daemon entered it, until the user types somewhere.
    let out = s.tmux_out(&[
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id} #{session_name}",
        "bash -c 'exec -a claude sleep 100000'",
    ]);
    let (pane, made_in) = out.split_once(' ').unwrap();
    let pane = pane.to_string();
    assert_eq!(made_in, OURS, "tmux chose another session: nothing to move");
    let mut now_in = String::new();
    assert!(
        wait_until(30, || {
            now_in = s.tmux_out(&["display-message", "-p", "-t", &pane, "#{session_name}"]);
            now_in == "main"
        }),
        "{pane} is in {now_in:?}\n{}",
        s.log_tail()
    );
    // And agtmux follows it there.
    s.wait_pane(&pane, "@agtmux_provider", "claude", 60);
}
