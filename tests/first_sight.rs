//! What a new user sees on a stock tmux (issue 20, items 3–7): the TPM entry run as TPM runs
//! it (inside a real private tmux server) leaves the user's key bindings alone and binds only
//! options listed in the README; it adds the window icon to the window list once; choose-tree
//! rows of single-pane windows show the agent's state; the status badges read on the stock
//! green bar and on light/dark themes (the status line of a real client, captured with
//! `capture-pane -e` from an outer server, SGR decoded); and a sourced plugin makes a running
//! daemon read its options again. Waits are for positive signs with generous timeouts.
use serde_json::json;
use std::path::Path;
use std::process::Command;

mod support;
use support::{BIN, Server, claude, wait_until};

fn key(s: &Server, k: &str) -> String {
    s.prefix_binding(k)
}

/// The daemon knows `pane` holds an agent (hooks from an unknown pane are rejected).
fn managed(s: &Server, pane: &str) {
    s.wait_pane(pane, "@agtmux_provider", "claude", 60);
}

fn approval(s: &Server, pane: &str) {
    managed(s, pane);
    s.claude(pane, claude::prompt("s1", "go"));
    s.claude(pane, claude::permission("s1"));
    s.wait_pane(pane, "@agtmux_state", "waiting_approval", 60);
}

/// A server with its daemon, the plugin loaded, and an agent pane waiting for approval.
fn plugin_and_approval(tag: &str) -> (Server, String) {
    let mut s = Server::start(tag);
    s.start_daemon();
    s.run_plugin_direct();
    let pane = s.silent_agent("claude");
    approval(&s, &pane);
    (s, pane)
}

#[test]
fn the_plugin_binds_only_free_keys_or_named_ones_and_every_key_is_a_readme_option() {
    let s = Server::start("keys");
    // A user's own bindings on agtmux's default keys, and a C-a user's send-prefix on `a`.
    s.tmux(&["bind-key", "A", "display-message", "mine-A"]);
    s.tmux(&["bind-key", "a", "send-prefix"]);
    s.run_plugin_direct();
    assert!(key(&s, "A").contains("mine-A"), "{}", key(&s, "A"));
    assert!(key(&s, "a").contains("send-prefix"), "{}", key(&s, "a"));
    // Free defaults are bound.
    assert!(key(&s, "S").contains("choose-tree"), "{}", key(&s, "S"));
    assert!(key(&s, "N").contains(" next "), "{}", key(&s, "N"));
    // A second load (a reload, an update) keeps them and still leaves the user's alone.
    s.run_plugin_direct();
    assert!(key(&s, "S").contains("choose-tree"), "{}", key(&s, "S"));
    assert!(key(&s, "A").contains("mine-A"), "{}", key(&s, "A"));
    // Keys the user named are bound even where something was bound; `none` binds nothing.
    s.tmux(&["set", "-g", "@agtmux-popup-key", "A"]);
    s.tmux(&["set", "-g", "@agtmux-tree-agents-key", "g"]);
    s.tmux(&["set", "-g", "@agtmux-next-key", "none"]);
    s.tmux(&["unbind-key", "N"]);
    s.run_plugin_direct();
    assert!(key(&s, "A").contains("popup"), "{}", key(&s, "A"));
    assert!(
        key(&s, "g").contains("@agtmux_presence"),
        "{}",
        key(&s, "g")
    );
    assert!(key(&s, "a").contains("send-prefix"), "{}", key(&s, "a"));
    assert!(key(&s, "N").is_empty(), "{}", key(&s, "N"));

    // Every key option the script binds is in the README's options table.
    let text = std::fs::read_to_string(support::plugin_script()).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let options: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("bind_key '"))
        .filter_map(|l| l.split('\'').next())
        .collect();
    assert!(options.len() >= 4, "{options:?}");
    for o in options {
        assert!(
            readme.contains(&format!("| `{o}` |")),
            "{o} is not in the README's options table"
        );
    }
    // No other bind-key in the script.
    let binds = text
        .lines()
        .filter(|l| l.contains("tmux bind-key") && !l.trim_start().starts_with('#'))
        .count();
    assert_eq!(binds, 1, "only bind_key binds keys");
}

#[test]
fn the_plugin_adds_the_window_icon_once_unless_placed_or_turned_off() {
    let mut s = Server::start("winicon");
    s.start_daemon();
    let stock = s.tmux_out(&["show", "-gv", "window-status-format"]);
    s.run_plugin_direct();
    s.run_plugin_direct();
    for f in ["window-status-format", "window-status-current-format"] {
        let v = s.tmux_out(&["show", "-gv", f]);
        assert_eq!(v.matches("@agtmux_window_icon").count(), 2, "{f}: {v}");
        assert!(v.ends_with(&stock), "{f}: {v}");
    }
    // Rendered for a window whose agent waits for approval, and for a plain one.
    let pane = s.silent_agent("claude");
    approval(&s, &pane);
    let fmt = s.tmux_out(&["show", "-gv", "window-status-format"]);
    let win = s.tmux_out(&["display", "-p", "-t", &pane, &fmt]);
    assert!(win.starts_with("! "), "{win}");
    let plain = s.tmux_out(&["display", "-p", "-t", "main:0", &fmt]);
    assert!(plain.starts_with("0:"), "{plain}");

    // Placed by the user: that format is left as it is (the other one still gets the icon).
    let placed = Server::start("winicon-placed");
    placed.tmux(&[
        "set",
        "-g",
        "window-status-format",
        "#I #{@agtmux_window_icon}",
    ]);
    placed.run_plugin_direct();
    assert_eq!(
        placed.tmux_out(&["show", "-gv", "window-status-format"]),
        "#I #{@agtmux_window_icon}"
    );
    let current = placed.tmux_out(&["show", "-gv", "window-status-current-format"]);
    assert!(current.contains("@agtmux_window_icon"), "{current}");
    // Turned off: nothing is added.
    placed.tmux(&["set", "-gu", "window-status-current-format"]);
    placed.tmux(&["set", "-g", "@agtmux-window-icon", "off"]);
    placed.run_plugin_direct();
    assert_eq!(
        placed.tmux_out(&["show", "-gv", "window-status-current-format"]),
        stock
    );
    // The legacy default `a` binding of an earlier version goes; a user's `a` stays (above).
    placed.tmux(&[
        "bind-key",
        "a",
        "choose-tree",
        "-Z",
        "-f",
        "#{@agtmux_presence}",
    ]);
    placed.run_plugin_direct();
    assert!(key(&placed, "a").is_empty(), "{}", key(&placed, "a"));
}

#[test]
fn choose_tree_rows_of_single_pane_windows_show_the_agent_state() {
    let (s, _) = plugin_and_approval("tree");
    // prefix + S pressed in a real client (inside a pane of an outer server), read off its
    // screen.
    let bound = key(&s, "S");
    assert!(bound.contains("choose-tree"), "{bound}");
    let outer = s.attach_from("tree-outer");
    assert!(wait_until(30, || !s.tmux_out(&["list-clients"]).is_empty()));
    let screen = outer.press_prefix_in_client("S", |x| x.contains("waiting_approval"));
    // The single-pane window has no pane row: the state is on the window row itself, with
    // the window's name after it.
    let row = screen
        .lines()
        .find(|l| l.contains("waiting_approval"))
        .unwrap();
    assert!(row.contains("! claude waiting_approval"), "{row}");
    assert!(row.contains("1: "), "a window row: {row}");
}

/// Foreground/background SGR state at the first occurrence of `needle` in a `capture-pane -e`
/// line: (fg, bg) as the codes tmux wrote (`None` = terminal default).
fn colours_at(line: &str, needle: &str) -> Option<(Option<String>, Option<String>)> {
    let at = line.find(needle)?;
    let (mut fg, mut bg) = (None, None);
    let mut rest = &line[..at];
    while let Some(i) = rest.find("\x1b[") {
        let tail = &rest[i + 2..];
        let end = tail.find('m')?;
        let codes: Vec<&str> = tail[..end].split(';').collect();
        let mut k = 0;
        while k < codes.len() {
            let c = codes[k];
            match c {
                "" | "0" => {
                    fg = None;
                    bg = None;
                }
                "39" => fg = None,
                "49" => bg = None,
                "38" | "48" => {
                    let n = if codes.get(k + 1) == Some(&"5") { 3 } else { 5 };
                    let v = codes[k..(k + n).min(codes.len())].join(";");
                    if c == "38" {
                        fg = Some(v);
                    } else {
                        bg = Some(v);
                    }
                    k += n - 1;
                }
                _ => match c.parse::<u32>() {
                    Ok(30..=37 | 90..=97) => fg = Some(c.to_string()),
                    Ok(40..=47 | 100..=107) => bg = Some(c.to_string()),
                    _ => {}
                },
            }
            k += 1;
        }
        rest = &tail[end + 1..];
    }
    Some((fg, bg))
}

/// Same colour as an SGR fg vs bg code (`32` vs `42`, `38;5;n` vs `48;5;n`).
fn same_colour(fg: &str, bg: &str) -> bool {
    let f = fg.trim_start_matches("38").trim_start_matches('3');
    let b = bg.trim_start_matches("48").trim_start_matches('4');
    f == b
}

#[test]
fn status_badges_read_on_the_stock_bar_and_on_popular_themes() {
    let mut s = Server::start("badges");
    s.start_daemon();
    s.tmux(&["set", "-g", "status-right", "[#{agtmux_status}]"]);
    s.run_plugin_direct();
    let pane = s.silent_agent("claude");
    approval(&s, &pane);
    let done = s.silent_agent("claude");
    managed(&s, &done);
    for p in [
        json!({"session_id": "s2", "hook_event_name": "UserPromptSubmit", "prompt": "go"}),
        json!({"session_id": "s2", "hook_event_name": "Stop"}),
    ] {
        s.claude(&done, p);
    }
    s.wait_global("@agtmux_attention", |v| v.contains("✓1"), 60);

    // A real client of this server, inside a pane of an outer server: its status line is
    // what a user sees, captured with its colours.
    let outer = s.attach_from("badges-outer");
    // (status-style, theme) pairs: stock, Catppuccin mocha, Dracula, Nord, Tokyo Night,
    // Solarized light.
    let themes = [
        ("bg=green,fg=black", "dark"),
        ("bg=#1e1e2e,fg=#cdd6f4", "dark"),
        ("bg=#44475a,fg=#f8f8f2", "dark"),
        ("bg=#3b4252,fg=#d8dee9", "dark"),
        ("bg=#1a1b26,fg=#a9b1d6", "dark"),
        ("bg=#eee8d5,fg=#586e75", "light"),
    ];
    for (status, theme) in themes {
        s.tmux(&["set", "-g", "status-style", status]);
        s.tmux(&["set", "-g", "@agtmux-theme", theme]);
        s.run_plugin_direct();
        let want_bg = if theme == "light" { "colour160" } else { "red" };
        s.wait_global("@agtmux_attention", |v| v.contains(want_bg), 30);
        s.tmux(&["refresh-client", "-S"]);
        let mut screen = String::new();
        let mut last = None;
        let ok = wait_until(30, || {
            screen = outer.tmux_out(&["capture-pane", "-e", "-p", "-t", "main:0"]);
            let Some(line) = screen
                .lines()
                .find(|l| l.contains("!1") && l.contains("✓1"))
            else {
                return false;
            };
            let a = colours_at(line, "!1");
            let d = colours_at(line, "✓1");
            last = Some((a.clone(), d.clone()));
            // Badges carry their own background (the theme's colour for approval).
            matches!(&a, Some((Some(_), Some(b))) if !status.contains("green") || b == "41" || b.starts_with("48;"))
                && matches!(&d, Some((Some(_), Some(_))))
        });
        assert!(ok, "{status}: no badges with colours: {last:?}\n{screen:?}");
        for (icon, c) in [("!1", last.clone().unwrap().0), ("✓1", last.unwrap().1)] {
            let (Some(fg), Some(bg)) = c.unwrap() else {
                panic!("{status}: {icon} lacks a colour");
            };
            assert!(
                !same_colour(&fg, &bg),
                "{status}: {icon} is {fg} on {bg} (unreadable)"
            );
        }
    }
}

#[test]
fn sourcing_the_plugin_again_makes_the_running_daemon_read_its_options() {
    let (mut s, _) = plugin_and_approval("reload");
    s.wait_global("@agtmux_attention", |v| v.contains("bg=red"), 30);
    let daemon_pid = s.global_opt("@agtmux_daemon");
    // `set -g @agtmux-theme light` then sourcing the plugin: the same daemon switches.
    s.tmux(&["set", "-g", "@agtmux-theme", "light"]);
    s.run_plugin_direct();
    s.wait_global("@agtmux_attention", |v| v.contains("bg=colour160"), 30);
    // A colour set with the theme wins over the theme (tmux lists options by name, theme last).
    s.tmux(&["set", "-g", "@agtmux-color-approval", "blue"]);
    s.run_plugin_direct();
    s.wait_global("@agtmux_attention", |v| v.contains("bg=blue"), 30);
    // An option unset goes back to the default.
    s.tmux(&["set", "-gu", "@agtmux-color-approval"]);
    s.tmux(&["set", "-gu", "@agtmux-theme"]);
    s.run_plugin_direct();
    s.wait_global("@agtmux_attention", |v| v.contains("bg=red"), 30);
    assert!(s.daemon.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(s.global_opt("@agtmux_daemon"), daemon_pid);
}

#[test]
fn the_demo_runs_the_plugin_says_which_keys_to_try_and_prints_plain_text() {
    let dir = std::env::temp_dir().join(format!("agtmux-test-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let name = format!("agtmux-test-demo-{}", std::process::id());
    let out = Command::new(BIN)
        .args(["demo", "--no-attach", "--for", "10s", "-L", &name])
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .env_remove("XDG_STATE_HOME")
        .env_remove("AGTMUX_STATE_DIR")
        .env_remove("TMUX")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    support::kill_tmux_server(&name);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The keys line is read back from the demo server's prefix table: the plugin bound them.
    let first = text.lines().next().unwrap_or("");
    for k in ["C-b A popup", "C-b S tree", "C-b N next"] {
        assert!(first.contains(k), "{k} missing from {first:?}");
    }
    // A positive sign that the daemon ran (agents tracked), then: plain text only.
    assert!(text.contains("\tmanaged\t"), "{text}");
    assert!(text.contains("attention: "), "{text}");
    assert!(!text.contains("#["), "{text}");
    // The demo's state went to a temp dir, not the (fake) HOME's ~/.local/state.
    assert!(!dir.join("home/.local/state").exists());
    let mut found = false;
    let mut stack = vec![dir.join("tmp")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "agtmux.db") {
                found = true;
            }
        }
    }
    assert!(found, "no agtmux.db under the demo's temp dir");
    let _ = std::fs::remove_dir_all(&dir);
}
