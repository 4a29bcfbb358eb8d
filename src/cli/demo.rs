//! `agtmux demo`: the first thing a newcomer runs. It starts a private tmux server
//! (`-L agtmux-demo`) with simulated Claude and Codex agents beside ordinary panes, then runs
//! the plugin's own `agtmux.tmux` in it (the same keys, formats and daemon start as a real
//! install, not a copy of them), and attaches with a message that says which keys to try. Its
//! state dir is a temporary one, never the user's.
//!
//! The simulated agents are this binary's hidden `fake-agent` command: it re-executes itself
//! with argv[0] set to `claude` or `codex` (so tmux's `pane_current_command` says what a real
//! agent's would), prints screens recorded from the real TUIs, and — for Claude — sends the
//! real hook payloads through the same code path as `agtmux hook claude`. Claude panes are
//! therefore tracked deterministically and Codex panes heuristically, from the screen alone.

use crate::exit::ExitCode;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Do not attach; print the pane options instead (for scripts and CI).
    #[arg(long)]
    pub(crate) no_attach: bool,
    /// With --no-attach: keep printing for this long (e.g. `10s`), then stop the demo.
    #[arg(long = "for", value_name = "DURATION", default_value = "6s", value_parser = super::client::parse_duration)]
    pub duration: Duration,
    /// tmux socket name of the demo server.
    #[arg(short = 'L', default_value = "agtmux-demo")]
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct FakeAgentArgs {
    /// `claude` or `codex`.
    #[arg(value_parser = ["claude", "codex"])]
    pub agent: String,
    /// Seconds per scene (scaled).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Play the scenes once, then sit at the last one.
    #[arg(long)]
    pub once: bool,
    /// A user prompt line to show under every scene (tests: prompt ↔ pane correlation).
    #[arg(long, hide = true)]
    pub prompt: Option<String>,
}

/// A scene: the screen to show, the hook events it starts with, and how long it lasts.
struct Scene {
    screen: &'static str,
    /// The pane title the real agent set at that moment (spinners, `[ ! ] Action Required`).
    title: &'static str,
    hooks: &'static [&'static str],
    secs: f64,
}

macro_rules! screen {
    ($p:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/screens/",
            $p
        ))
    };
}

const CLAUDE: &[Scene] = &[
    Scene {
        screen: screen!("claude/claude_01_idle.ansi.txt"),
        title: "✳ Claude Code",
        hooks: &[r#"{"hook_event_name":"SessionStart","source":"startup"}"#],
        secs: 4.0,
    },
    Scene {
        screen: screen!("claude/claude_02_running_1s.ansi.txt"),
        title: "⠐ Fake session",
        hooks: &[r#"{"hook_event_name":"UserPromptSubmit","prompt":"please answer slow8"}"#],
        secs: 2.0,
    },
    Scene {
        screen: screen!("claude/claude_03_running_4s.ansi.txt"),
        title: "⠂ Fake session",
        hooks: &[],
        secs: 3.0,
    },
    Scene {
        screen: screen!("claude/claude_04_idle_after_answer.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[r#"{"hook_event_name":"Stop"}"#],
        secs: 4.0,
    },
    Scene {
        screen: screen!("claude/claude_05_permission_prompt.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[
            r#"{"hook_event_name":"UserPromptSubmit","prompt":"please use the tool"}"#,
            r#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"toolu_demo"}"#,
            r#"{"hook_event_name":"PermissionRequest","tool_name":"Bash"}"#,
        ],
        secs: 7.0,
    },
    Scene {
        screen: screen!("claude/claude_07_after_approval_0.3s.ansi.txt"),
        title: "⠐ Fake session",
        hooks: &[],
        secs: 2.0,
    },
    Scene {
        screen: screen!("claude/claude_08_idle_after_tool.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[
            r#"{"hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"toolu_demo"}"#,
            r#"{"hook_event_name":"Stop"}"#,
        ],
        secs: 4.0,
    },
    Scene {
        screen: screen!("claude/supp_claude_01_error_400.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[
            r#"{"hook_event_name":"UserPromptSubmit","prompt":"fail"}"#,
            r#"{"hook_event_name":"StopFailure","error":"unknown"}"#,
        ],
        secs: 5.0,
    },
    Scene {
        screen: screen!("claude/supp_claude_05_askuserquestion.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[
            r#"{"hook_event_name":"UserPromptSubmit","prompt":"askq"}"#,
            r#"{"hook_event_name":"PreToolUse","tool_name":"AskUserQuestion","tool_use_id":"toolu_q"}"#,
            r#"{"hook_event_name":"PermissionRequest","tool_name":"AskUserQuestion"}"#,
        ],
        secs: 6.0,
    },
    Scene {
        screen: screen!("claude/supp_claude_09_idle_after_askq.ansi.txt"),
        title: "✳ Fake session",
        hooks: &[
            r#"{"hook_event_name":"PostToolUse","tool_name":"AskUserQuestion","tool_use_id":"toolu_q"}"#,
            r#"{"hook_event_name":"Stop"}"#,
        ],
        secs: 5.0,
    },
];

const CODEX: &[Scene] = &[
    Scene {
        screen: screen!("codex/codex_01_idle_start.ansi.txt"),
        title: "proj-codex",
        hooks: &[],
        secs: 5.0,
    },
    Scene {
        screen: screen!("codex/codex_02_running_1.5s.ansi.txt"),
        title: "⠼ proj-codex",
        hooks: &[],
        secs: 3.0,
    },
    Scene {
        screen: screen!("codex/codex_03_running_4s.ansi.txt"),
        title: "⠏ proj-codex",
        hooks: &[],
        secs: 3.0,
    },
    Scene {
        screen: screen!("codex/codex_08_idle_after_tool.ansi.txt"),
        title: "proj-codex",
        hooks: &[],
        secs: 5.0,
    },
    Scene {
        screen: screen!("codex/codex_05_approval_prompt.ansi.txt"),
        title: "[ ! ] Action Required | proj-codex",
        hooks: &[],
        secs: 7.0,
    },
    Scene {
        screen: screen!("codex/codex_07_after_approval_0.4s.ansi.txt"),
        title: "⠼ proj-codex",
        hooks: &[],
        secs: 2.0,
    },
    Scene {
        screen: screen!("codex/codex_10_idle_after_deny.ansi.txt"),
        title: "proj-codex",
        hooks: &[],
        secs: 5.0,
    },
    Scene {
        screen: screen!("codex/supp_codex_03_error_400.ansi.txt"),
        title: "proj-codex",
        hooks: &[],
        secs: 5.0,
    },
];

/// `agtmux fake-agent claude|codex`: a simulated agent for the demo and the tests.
pub(crate) fn fake_agent(args: &FakeAgentArgs) -> ExitCode {
    // Become `claude`/`codex` in argv[0], as the real programs are, then play.
    let argv0 = std::env::args().next().unwrap_or_default();
    if argv0 != args.agent {
        let Ok(exe) = std::env::current_exe() else {
            return ExitCode::Failure;
        };
        let err = Command::new(exe)
            .arg0(&args.agent)
            .args(std::env::args().skip(1))
            .exec();
        eprintln!("agtmux: fake-agent: {err}");
        return ExitCode::Failure;
    }
    let scenes = if args.agent == "claude" {
        CLAUDE
    } else {
        CODEX
    };
    let session = format!(
        "demo-{}-{}",
        std::process::id(),
        std::env::var("TMUX_PANE")
            .unwrap_or_default()
            .trim_start_matches('%')
    );
    let mut out = std::io::stdout();
    loop {
        for s in scenes {
            for h in s.hooks {
                send_hook(&args.agent, h, &session);
            }
            // Title (OSC 2), clear, home, then the recorded screen (with its colours).
            let _ = write!(
                out,
                "\x1b]2;{}\x07\x1b[H\x1b[2J\x1b[3J{}",
                s.title,
                s.screen.trim_end_matches('\n').replace('\n', "\r\n")
            );
            if let Some(p) = &args.prompt {
                let _ = write!(out, "\r\n› {p}");
            }
            let _ = out.flush();
            std::thread::sleep(Duration::from_secs_f64((s.secs * args.speed).max(0.05)));
        }
        if args.once {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

fn send_hook(agent: &str, json: &str, session: &str) {
    if agent != "claude" {
        return;
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("session_id".into(), session.into());
        o.insert(
            "cwd".into(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
                .into(),
        );
        o.insert("transcript_path".into(), "".into());
    }
    let _ = crate::cli::hook::record_payload("claude", v.to_string().as_bytes());
}

/// The plugin's entry script and what it sources, built into the binary from the same files
/// (one code path), written under the demo's dir with the version line it reads.
fn write_plugin(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let root = dir.join("plugin");
    std::fs::create_dir_all(root.join("scripts"))?;
    let script = root.join("agtmux.tmux");
    std::fs::write(
        &script,
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/agtmux.tmux")),
    )?;
    std::fs::write(
        root.join("scripts/helpers.sh"),
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/helpers.sh")),
    )?;
    std::fs::write(
        root.join("Cargo.toml"),
        format!("version = \"{}\"\n", env!("CARGO_PKG_VERSION")),
    )?;
    Ok(script)
}

/// The first screen's message: the keys the plugin bound in the demo server.
fn demo_keys(name: &str) -> String {
    // The whole table, filtered here: given a key, tmux 3.7 shows a single match as a status
    // message instead of printing it.
    let table = tmux(name, &["list-keys", "-T", "prefix"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let bound = |key: &str| {
        table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter()
                .position(|w| *w == "-T")
                .is_some_and(|i| f.get(i + 2) == Some(&key))
        })
    };
    let mut keys = vec![];
    for (key, what) in [
        ("A", "popup"),
        ("S", "tree with states"),
        ("g", "agents-only tree"),
        ("N", "next agent that needs you"),
    ] {
        if bound(key) {
            keys.push(format!("C-b {key} {what}"));
        }
    }
    keys.push("C-b d detach".into());
    format!("agtmux demo: try {}", keys.join(" · "))
}

/// Text of a tmux format without its `#[…]` style directives (for a plain terminal).
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("#[") {
        out.push_str(&rest[..i]);
        match rest[i..].find(']') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn tmux_env(
    name: &str,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
) -> std::io::Result<std::process::Output> {
    Command::new("tmux")
        .arg("-L")
        .arg(name)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
}

fn tmux(name: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("tmux")
        .arg("-L")
        .arg(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// `agtmux demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agtmux demo: {e}");
            ExitCode::Failure
        }
    }
}

/// The demo server built, the plugin run in it, then attached (or, with `--no-attach`, its
/// panes printed for `--duration`).
fn demo(args: &DemoArgs) -> Result<ExitCode, String> {
    let Ok(exe) = std::env::current_exe() else {
        return Ok(ExitCode::Failure);
    };
    let exe = exe.to_string_lossy().into_owned();
    let name = args.name.as_str();
    let sp = fresh_server(name);
    let (state, plugin) = demo_state(name)?;
    let codex_sock = sp
        .runtime_dir
        .join(format!("{}.demo-no-codex.sock", sp.key));
    let env = [
        ("AGTMUX_STATE_DIR", state.join("state").into_os_string()),
        // The demo's agents are simulated: keep the user's real Codex daemon (and its
        // threads, which could bind to the simulated Codex panes by cwd) out of it.
        (crate::daemon::codex::SOCK_ENV, codex_sock.into_os_string()),
    ];
    build_server(name, &exe, &env)?;
    run_plugin(name, &plugin, &env)?;
    let keys = demo_keys(name);
    if !args.no_attach {
        let err = Command::new("tmux")
            .args(["-L", name, "attach", "-t", "agents", ";"])
            .args(["display-message", "-d", "0", &keys])
            .exec();
        return Err(format!("cannot attach: {err}"));
    }
    println!("{keys}");
    print_panes(name, args.duration);
    let _ = tmux(name, &["kill-server"]);
    Ok(ExitCode::Ok)
}

/// Kill an earlier demo's server. Its daemon exits with it; wait for that, or it could attach
/// to the new server while it is being built (tmux 3.3a has crashed on exactly that).
fn fresh_server(name: &str) -> crate::paths::ServerPaths {
    let _ = tmux(name, &["kill-server"]);
    let sp = crate::paths::ServerPaths::new(crate::paths::socket_path(&crate::paths::ServerArg {
        name: Some(name.to_string()),
        path: None,
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while crate::daemon::lock_held(&sp) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    sp
}

/// A state dir of the demo's own (the user's real store stays untouched), inherited by the
/// server and so by everything it runs: the daemon, the fake agents' hooks, the popup. Gives
/// it and the plugin written into it.
fn demo_state(name: &str) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let state = std::env::temp_dir()
        .join(format!("agtmux-demo-{}", crate::sys::user::uid()))
        .join(name);
    let _ = std::fs::remove_dir_all(&state);
    if let Err(e) = crate::sys::user::with_umask(0o077, || std::fs::create_dir_all(&state)) {
        return Err(format!("cannot create {}: {e}", state.display()));
    }
    match write_plugin(&state) {
        Ok(plugin) => Ok((state, plugin)),
        Err(e) => Err(format!(
            "cannot write the plugin to {}: {e}",
            state.display()
        )),
    }
}

/// The demo's sessions, windows and fake agents, and the status line and borders a user
/// would set up.
fn build_server(name: &str, exe: &str, env: &[(&str, std::ffi::OsString)]) -> Result<(), String> {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let agent = |a: &str| format!("{} fake-agent {a}", q(exe));
    let steps: Vec<Vec<String>> = vec![
        vec!["-f".into(), "/dev/null".into(), "new-session".into(), "-d".into(), "-s".into(), "agents".into(), "-n".into(), "claude".into(), "-x".into(), "120".into(), "-y".into(), "40".into(), agent("claude")],
        vec!["new-window".into(), "-t".into(), "agents".into(), "-n".into(), "codex".into(), agent("codex")],
        vec!["new-window".into(), "-t".into(), "agents".into(), "-n".into(), "review".into(), agent("claude")],
        vec!["new-session".into(), "-d".into(), "-s".into(), "work".into(), "-n".into(), "shell".into()],
        vec!["split-window".into(), "-t".into(), "work:shell".into(), "-h".into(), format!("{} fake-agent codex --speed 1.3", q(exe))],
        // The placeholder, as a user would write it; the plugin fills it in.
        vec!["set-option".into(), "-g".into(), "status-right".into(), "#{agtmux_status} #[fg=colour244]#{@agtmux_counts}#[default] %H:%M".into()],
        vec!["set-option".into(), "-g".into(), "status-right-length".into(), "120".into()],
        vec!["set-option".into(), "-g".into(), "pane-border-status".into(), "top".into()],
        vec!["set-option".into(), "-g".into(), "pane-border-format".into(), " #{pane_id} #{?#{@agtmux_state},#{@agtmux_icon} #{@agtmux_provider} #{@agtmux_state} (#{@agtmux_evidence}),no agent} ".into()],
        vec!["set-option".into(), "-g".into(), "@agtmux-bin".into(), exe.to_string()],
        vec!["set-option".into(), "-g".into(), "@agtmux-tree-agents-key".into(), "g".into()],
    ];
    for s in &steps {
        let a: Vec<&str> = s.iter().map(String::as_str).collect();
        match tmux_env(name, &a, env) {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "tmux {}: {}",
                    a.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return Err(format!("cannot run tmux: {e}")),
        }
    }
    Ok(())
}

/// The plugin, run as TPM runs it (inside the server): keys, formats, the daemon.
fn run_plugin(
    name: &str,
    plugin: &std::path::Path,
    env: &[(&str, std::ffi::OsString)],
) -> Result<(), String> {
    let socket = tmux(name, &["display-message", "-p", "#{socket_path}"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let ran = Command::new("bash")
        .arg(plugin)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("TMUX", format!("{socket},0,0"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    if !matches!(ran, Ok(st) if st.success()) {
        return Err(format!("{} failed: {ran:?}", plugin.display()));
    }
    Ok(())
}

/// `--no-attach`: every 2 s, what each pane shows and the global attention and counts.
fn print_panes(name: &str, duration: Duration) {
    let until = std::time::Instant::now() + duration;
    let fmt = "#{pane_id}\t#{session_name}:#{window_name}\t#{pane_current_command}\t#{?#{@agtmux_presence},#{@agtmux_presence},unmanaged}\t#{@agtmux_provider}\t#{@agtmux_state}\t#{@agtmux_evidence}\t#{@agtmux_attention_kind}";
    while std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2000));
        let Ok(o) = tmux(
            name,
            &[
                "list-panes",
                "-a",
                "-f",
                crate::tmux::control_session::USER_SESSIONS,
                "-F",
                fmt,
            ],
        ) else {
            break;
        };
        let att = tmux(name, &["show", "-gv", "@agtmux_attention"])
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let counts = tmux(name, &["show", "-gv", "@agtmux_counts"])
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        println!("--- attention: {}  counts: {counts}", plain(&att));
        println!("PANE\tWHERE\tCOMMAND\tPRESENCE\tPROVIDER\tSTATE\tEVIDENCE\tATTENTION");
        print!("{}", String::from_utf8_lossy(&o.stdout));
    }
}
