//! `agtmux doctor` (README "Commands"): checks what a working install needs — tmux version, this
//! tmux server, the plugin's key bindings and status line, the daemon for this server (and its
//! API), Claude/Codex hooks installed, source and store health — and prints a fix for each
//! problem. Fix lines name this very binary by its full path (a plugin user often has no
//! `agtmux` on PATH).
//!
//! Exit codes: 0 when nothing failed (warnings, such as hooks not installed for an agent you do
//! not use, are printed but do not fail), 1 when at least one check FAILed (no daemon for this
//! server, no tmux server, tmux too old, a component held down, an SLO degraded or escalated, a
//! settings file that is not valid JSON, a refused Codex socket).
//!
//! tmux is run with an argument vector, never through a shell.
use super::client::{self, Conn, ServerOpts};
use super::setup::{self, Agent, SetupEnv};
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub server: ServerOpts,
}

#[derive(Debug, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    level: Level,
    what: String,
    fix: Option<String>,
}

fn ok(what: impl Into<String>) -> Check {
    Check {
        level: Level::Ok,
        what: what.into(),
        fix: None,
    }
}
fn bad(level: Level, what: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        level,
        what: what.into(),
        fix: Some(fix.into()),
    }
}

/// This binary as a shell word for fix lines: its full path (quoted when needed), or `agtmux`
/// when it cannot be located.
fn bin() -> String {
    let Ok(p) = std::env::current_exe() else {
        return "agtmux".into();
    };
    let p = p.to_string_lossy().into_owned();
    if p.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@%:,".contains(c))
    {
        p
    } else {
        setup::shell_quote(&p)
    }
}

/// A one-shot tmux query (bounded: see [`client::tmux`]); `None` when it failed.
fn tmux(socket: &std::path::Path, args: &[&str]) -> Option<String> {
    client::tmux(socket, args)
        .ok()
        .map(|o| o.trim_end().to_string())
}

/// `tmux 3.3a` → (3, 3).
pub(crate) fn parse_version(s: &str) -> Option<(u32, u32)> {
    let v = s.split_whitespace().last()?;
    let v = v.trim_start_matches("next-");
    let (maj, rest) = v.split_once('.')?;
    let min: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((maj.parse().ok()?, min.parse().ok()?))
}

/// Which of `agent`'s events have agtmux's hook in `doc` (any settings layout: every
/// `"command"` string under `hooks.<Event>`).
pub(crate) fn hooked_events(doc: &Value, agent: Agent) -> Vec<String> {
    fn has_ours(v: &Value, agent: Agent) -> bool {
        match v {
            Value::Object(m) => m.iter().any(|(k, v)| {
                (k == "command"
                    && v.as_str()
                        .is_some_and(|c| setup::json_merge::is_ours_command(c, agent)))
                    || has_ours(v, agent)
            }),
            Value::Array(a) => a.iter().any(|v| has_ours(v, agent)),
            _ => false,
        }
    }
    doc["hooks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| has_ours(v, agent))
        .map(|(k, _)| k.clone())
        .collect()
}

fn hooks_check(agent: Agent, env: &SetupEnv) -> Check {
    let name = agent.name();
    let Ok(path) = setup::settings_path(agent, env) else {
        return bad(Level::Warn, format!("{name} hooks: no $HOME"), "set HOME");
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            return bad(
                Level::Warn,
                format!("{name} hooks: {} does not exist", path.display()),
                format!(
                    "{} setup {name}   (without hooks, {name} panes are read from the screen only)",
                    bin()
                ),
            );
        }
    };
    let doc: Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => {
            return bad(
                Level::Fail,
                format!("{name} hooks: {} is not valid JSON ({e})", path.display()),
                format!("fix the file by hand, then: {} setup {name}", bin()),
            );
        }
    };
    let have = hooked_events(&doc, agent);
    let missing: Vec<&str> = agent
        .events()
        .iter()
        .filter(|e| !have.iter().any(|h| h == *e))
        .copied()
        .collect();
    if have.is_empty() {
        bad(
            Level::Warn,
            format!("{name} hooks: not installed in {}", path.display()),
            format!("{} setup {name}", bin()),
        )
    } else if !missing.is_empty() {
        bad(
            Level::Warn,
            format!("{name} hooks: missing for {}", missing.join(", ")),
            format!("{} setup {name}", bin()),
        )
    } else {
        ok(format!("{name} hooks installed ({} events)", have.len()))
    }
}

fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut v = Vec::new();
    let sp = args.server.paths();
    let sock = sp.socket.clone();
    // tmux itself.
    tmux_check(&mut v);
    // This server.
    let ver = match client::tmux(&sock, &["display-message", "-p", "#{version} #{pid}"]) {
        Ok(ver) => ver.trim_end().to_string(),
        Err(e @ client::TmuxError::NoAnswer(_)) => {
            v.push(bad(
                Level::Fail,
                e.to_string(),
                "the server is stopped or wedged: `ps -axo pid,stat,command | grep tmux` (stat T: \
                 stopped), and `kill -CONT PID` resumes a stopped one",
            ));
            return v;
        }
        Err(_) => {
            v.push(bad(
                Level::Fail,
                format!("no tmux server at {}", sock.display()),
                "run inside tmux, or name the server with -L NAME / -S PATH",
            ));
            return v;
        }
    };
    v.push(ok(format!(
        "tmux server {} (version/pid {ver})",
        sock.display()
    )));
    // The plugin: key bindings and status line.
    plugin_checks(&mut v, &sock);
    binary_and_dir_checks(&mut v, &sp);
    // The daemon and its sources.
    daemon_checks(&mut v, &sp, &sock);
    v.extend(ops_checks(&sp.db()));
    v.push(hook_spool_check(&sp));
    agent_hook_checks(&mut v);
    v
}

/// The tmux in PATH: 3.2 or newer.
fn tmux_check(v: &mut Vec<Check>) {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            match parse_version(&s) {
                Some(ver) if ver >= (3, 2) => v.push(ok(s)),
                _ => v.push(bad(
                    Level::Fail,
                    format!("{s}: agtmux needs tmux 3.2 or newer (display-popup -E, formats)"),
                    "upgrade tmux",
                )),
            }
        }
        _ => v.push(bad(
            Level::Fail,
            "tmux is not installed or not in PATH",
            "install tmux 3.2+",
        )),
    }
}

/// The plugin: its key binding, the status line, its last install.
fn plugin_checks(v: &mut Vec<Check>, sock: &std::path::Path) {
    let keys = tmux(sock, &["list-keys", "-T", "prefix"]).unwrap_or_default();
    if keys.contains("agtmux") && keys.contains("popup") {
        v.push(ok("plugin loaded (popup key bound)"));
    } else {
        v.push(bad(
            Level::Warn,
            "plugin not loaded: no key runs `agtmux popup`",
            "add `set -g @plugin 'OWNER/agtmux'` to ~/.tmux.conf and press prefix + I \
             (or: tmux run-shell /path/to/agtmux/agtmux.tmux)",
        ));
    }
    let status = format!(
        "{} {}",
        tmux(sock, &["show-options", "-gv", "status-right"]).unwrap_or_default(),
        tmux(sock, &["show-options", "-gv", "status-left"]).unwrap_or_default()
    );
    if status.contains("@agtmux_attention") || status.contains("agtmux_status") {
        v.push(ok("status line shows #{@agtmux_attention}"));
    } else {
        v.push(bad(
            Level::Warn,
            "status line does not show agent attention",
            "keep your status-right and add agtmux to it: put #{agtmux_status} where you want it \
             and reload the plugin, or run: tmux set -ga status-right ' #{@agtmux_attention}'",
        ));
    }
    v.extend(install_check(sock));
}

/// This binary, and where the sockets and the state live.
fn binary_and_dir_checks(v: &mut Vec<Check>, sp: &crate::paths::ServerPaths) {
    match std::env::current_exe() {
        Ok(p) => v.push(ok(format!(
            "binary {} (agtmux {})",
            p.display(),
            crate::daemon::handover::version()
        ))),
        Err(e) => v.push(bad(
            Level::Warn,
            format!("cannot locate this binary: {e}"),
            "reinstall",
        )),
    }
    // Where the sockets live, and whether that place is safe (issue 16: squatted /tmp dir).
    if let Some(why) = crate::paths::runtime_fallback_reason() {
        v.push(bad(
            Level::Warn,
            format!("runtime dir: {why}"),
            "set XDG_RUNTIME_DIR or AGTMUX_RUNTIME_DIR to a private dir (or remove the other user's directory)",
        ));
    }
    for (what, dir) in [("runtime", &sp.runtime_dir), ("state", &sp.state_dir)] {
        if let Some(why) = crate::paths::unsafe_dir(dir) {
            v.push(bad(
                Level::Fail,
                format!("{what} dir {} {why}", dir.display()),
                "agtmux refuses to use it: point AGTMUX_RUNTIME_DIR / AGTMUX_STATE_DIR at a dir of yours",
            ));
        }
    }
}

/// The daemon of this server (its `health`) and its sources, or why none answers.
fn daemon_checks(v: &mut Vec<Check>, sp: &crate::paths::ServerPaths, sock: &std::path::Path) {
    let health = Conn::connect(sp).and_then(|mut c| c.request("health", json!({})));
    match health {
        Ok(h) => {
            let dv = h["version"].as_str().unwrap_or("unknown");
            v.push(ok(format!(
                "daemon pid {} for this server, version {dv} ({} agent panes)",
                h["daemon_pid"], h["agent_panes"]
            )));
            let ours = crate::daemon::handover::version();
            if dv != ours {
                v.push(bad(
                    Level::Warn,
                    format!("the daemon runs agtmux {dv}, this binary is agtmux {ours}"),
                    "reload the plugin (tmux source-file ~/.tmux.conf): a daemon of the \
                     plugin's version takes over, and no hook event is lost",
                ));
            }
            if h["tmux"]["connected"] != true {
                v.push(bad(
                    Level::Fail,
                    "daemon is not connected to tmux (reconnecting)",
                    format!("see the log: {}", sp.log().display()),
                ));
            }
            // The Codex app-server's standing is told once, with its phase (below): absent
            // is no fault, and a warning next to "ok, absent" would contradict it.
            let codex_phase = h["supervisor"]["components"]["codex_appserver"]["phase"].is_string();
            for (src, st) in h["sources"].as_object().into_iter().flatten() {
                if src == "codex_appserver" && codex_phase {
                    continue;
                }
                if st == "healthy" {
                    v.push(ok(format!("source {src} healthy")));
                } else {
                    v.push(bad(
                        Level::Warn,
                        format!("source {src} is {}", st.as_str().unwrap_or("?")),
                        format!(
                            "panes fall back to the screen; see {} (restart: kill {} and reload the plugin)",
                            sp.log().display(),
                            h["daemon_pid"]
                        ),
                    ));
                }
            }
            v.extend(supervisor_checks(&h, sp));
            v.extend(remote_checks(&h));
            if let Some(p) = h["store_problem"].as_str() {
                v.push(bad(
                    Level::Warn,
                    format!(
                        "state store: {p} (serving from memory; {} accepted event(s) held until it takes them, the rest waits in the spool)",
                        h["store"]["held_rows"].as_u64().unwrap_or(0)
                    ),
                    format!(
                        "see {}; a corrupt database is quarantined next to {}",
                        sp.log().display(),
                        sp.db().display()
                    ),
                ));
            } else if let Some(i) = h["store"]["last_incident"]
                .as_object()
                .filter(|i| i.get("problem").and_then(|p| p.as_str()) != Some("locked"))
            {
                v.push(bad(
                    Level::Warn,
                    format!(
                        "state store recovered from: {} (at {} ms)",
                        i.get("problem").and_then(|p| p.as_str()).unwrap_or("?"),
                        i.get("ts_ms").and_then(|t| t.as_i64()).unwrap_or(0)
                    ),
                    format!("see {}", sp.log().display()),
                ));
            }
        }
        Err(e) => {
            let held = crate::daemon::lock_held(sp);
            v.push(bad(
                Level::Fail,
                if held {
                    format!("a daemon holds the lock but its API does not answer: {e}")
                } else {
                    "no agtmux daemon runs for this tmux server".to_string()
                },
                format!(
                    "{} daemon -S {} --detach   (the plugin starts it; log: {})",
                    bin(),
                    sock.display(),
                    sp.log().display()
                ),
            ));
        }
    }
}

/// The agents' hook installs: Claude and Codex always, Gemini CLI and OpenCode where used.
fn agent_hook_checks(v: &mut Vec<Check>) {
    let env = SetupEnv::from_process();
    v.push(hooks_check(Agent::Claude, &env));
    v.push(hooks_check(Agent::Codex, &env));
    // Gemini CLI and OpenCode are checked only where their config dir exists (they are used).
    let used = |a: Agent, up: usize| {
        setup::settings_path(a, &env)
            .ok()
            .and_then(|p| p.ancestors().nth(up).map(|d| d.is_dir()))
            .unwrap_or(false)
    };
    if used(Agent::Gemini, 1) {
        v.push(hooks_check(Agent::Gemini, &env));
    }
    if used(Agent::OpenCode, 2) {
        v.push(opencode_check(&env));
    }
}

/// The plugin's last install (issue 19): `@agtmux_install` holds `ok <version> (how)`,
/// `installing <version>` or `install failed: <reason and fix>`, and `@agtmux_install_log`
/// the log. Nothing when the plugin found a binary and installed nothing.
fn install_check(sock: &std::path::Path) -> Option<Check> {
    let st = tmux(sock, &["show-options", "-gqv", "@agtmux_install"])?;
    let st = st.trim();
    let log = tmux(sock, &["show-options", "-gqv", "@agtmux_install_log"]).unwrap_or_default();
    let log = log.trim();
    if st.is_empty() {
        None
    } else if st.starts_with("ok ") {
        Some(ok(format!("plugin install: {st}")))
    } else if st.starts_with("installing") {
        Some(bad(
            Level::Warn,
            format!("plugin install still running: {st}"),
            format!("wait for it; progress in {log}"),
        ))
    } else {
        Some(bad(
            Level::Fail,
            st.to_string(),
            format!("the install log: {log}"),
        ))
    }
}

/// Can hooks write the spool? A hook that could not leaves a marker in the runtime dir (read
/// here, so this works with the daemon down too); the next hook that writes removes it.
/// OpenCode has no hook settings: agtmux's plugin file must be there (`agtmux setup opencode`).
fn opencode_check(env: &SetupEnv) -> Check {
    let Ok(path) = setup::settings_path(Agent::OpenCode, env) else {
        return bad(Level::Warn, "opencode plugin: no $HOME", "set HOME");
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if t.contains(setup::opencode::MARKER) => {
            ok(format!("opencode plugin installed ({})", path.display()))
        }
        Ok(_) => bad(
            Level::Warn,
            format!("opencode plugin: {} is not agtmux's", path.display()),
            "move it away, then: agtmux setup opencode",
        ),
        Err(_) => bad(
            Level::Warn,
            format!("opencode plugin: {} does not exist", path.display()),
            "agtmux setup opencode   (without it, opencode panes are read from the screen only)",
        ),
    }
}

fn hook_spool_check(sp: &crate::paths::ServerPaths) -> Check {
    use crate::sources::spool;
    match spool::read_failure(sp) {
        None => ok(format!("hooks write the spool {}", sp.spool().display())),
        Some(f) => {
            let ago = client::age(client::now_ms(), f.ts_ms);
            bad(
                Level::Fail,
                format!(
                    "hooks cannot write the spool: {} ({} failed hook calls, last {ago} ago); \
                     their events are lost",
                    f.error, f.count
                ),
                format!(
                    "make {} a directory you own and can write (ls -ld; chown/chmod u+rwx), \
                     free disk space; the next hook that writes clears this ({})",
                    sp.state_dir.display(),
                    spool::failure_marker(sp).display()
                ),
            )
        }
    }
}

/// Flow-011/009/013: components in a hold-down, and the Codex app-server source's standing.
fn supervisor_checks(h: &Value, sp: &crate::paths::ServerPaths) -> Vec<Check> {
    let mut v = Vec::new();
    let now = crate::sys::clock::now_ms();
    for (name, c) in h["supervisor"]["components"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(until) = c["held_down_until"].as_i64().filter(|u| *u > now) {
            v.push(bad(
                Level::Fail,
                format!(
                    "{name} failed {} times and is held down for {}s more (escalated): {}",
                    c["restarts"].as_u64().unwrap_or(0) + 1,
                    (until - now) / 1000,
                    c["last_failure"].as_str().unwrap_or("?")
                ),
                format!(
                    "fix the cause (see {}); it is tried again when the hold-down ends, or restart the daemon",
                    sp.log().display()
                ),
            ));
        }
    }
    let cx = &h["supervisor"]["components"]["codex_appserver"];
    let sock = cx["socket"].as_str().unwrap_or("?");
    match cx["phase"].as_str() {
        Some("connected") => v.push(ok(format!("Codex app-server connected at {sock}"))),
        Some("refused") => v.push(bad(
            Level::Fail,
            format!("Codex app-server socket {sock} is served by another user (peer_uid_mismatch)"),
            "check CODEX_HOME / AGTMUX_CODEX_SOCK: only your own Codex daemon is trusted",
        )),
        Some("revoked") => v.push(bad(
            Level::Warn,
            "the Codex app-server source is revoked: Codex panes use hooks and the screen only",
            format!("{} source register codex_appserver {sock}", bin()),
        )),
        Some("absent") => v.push(ok(format!(
            "no Codex app-server at {sock} (fine unless Codex runs; it is picked up when it starts)"
        ))),
        // Held down: told above with the failure count.
        Some("hold_down") | None => {}
        Some(phase) => {
            let health = h["sources"]["codex_appserver"].as_str().unwrap_or("?");
            if health == "healthy" {
                v.push(ok(format!("Codex app-server at {sock} ({phase})")));
            } else {
                v.push(bad(
                    Level::Warn,
                    format!("Codex app-server at {sock} is {health} ({phase}, reconnecting)"),
                    format!(
                        "Codex panes fall back to hooks and the screen meanwhile; see {}",
                        sp.log().display()
                    ),
                ));
            }
        }
    }
    v
}

/// Issue 24: each remote host of `@agtmux-remotes`. One that cannot be reached is a warning
/// (a host asleep is no fault of agtmux), with ssh's reason and what to fix.
fn remote_checks(h: &Value) -> Vec<Check> {
    let mut v = Vec::new();
    for r in h["remotes"].as_array().into_iter().flatten() {
        let host = r["host"].as_str().unwrap_or("?");
        let status = r["status"].as_str().unwrap_or("?");
        let msg = r["message"].as_str().unwrap_or("");
        match status {
            "live" | "connecting" if msg.is_empty() => {
                v.push(ok(format!("remote host {host} {status}")))
            }
            "live" | "connecting" => v.push(ok(format!("remote host {host} {status} ({msg})"))),
            _ => {
                let since = r["since_ms"].as_i64().map(|t| {
                    let (hh, mm, ss) = crate::sys::clock::local_hms(t / 1000);
                    format!(" since {hh:02}:{mm:02}:{ss:02}")
                });
                v.push(bad(
                    Level::Warn,
                    format!("remote host {host} {status}{}: {msg}", since.unwrap_or_default()),
                    format!(
                        "its panes are shown stale meanwhile; try it by hand with `{} ls --remote {host}`",
                        bin()
                    ),
                ));
            }
        }
    }
    v
}

/// C-013: SLO alerts of the last window and snapshot freshness, read from the database.
fn ops_checks(db: &std::path::Path) -> Vec<Check> {
    use crate::daemon::snapshot;
    let mut v = Vec::new();
    if !db.exists() {
        return v;
    }
    let now = crate::sys::clock::now_ms();
    let window = crate::daemon::guardrails::SloConfig::default().window_ms;
    match crate::store::Store::open(db).and_then(|s| s.alerts(now - window, 50)) {
        Ok(alerts) => {
            let mut seen = std::collections::HashSet::new();
            let mut any = false;
            for a in alerts {
                if !seen.insert(a.slo.clone()) {
                    continue; // newest first: one line per SLO
                }
                any = true;
                let level = if a.level == "warn" {
                    Level::Warn
                } else {
                    Level::Fail
                };
                v.push(bad(
                    level,
                    format!(
                        "SLO {}: {} ({}; window {}; {}s ago)",
                        a.slo,
                        a.level,
                        a.detail,
                        a.window.as_deref().unwrap_or("?"),
                        (now - a.ts).max(0) / 1000
                    ),
                    "state updates are slow: check CPU load and the daemon log (RUST_LOG=info)",
                ));
            }
            if !any {
                v.push(ok("SLO state latency: no alert in the last 10 min"));
            }
        }
        Err(e) => v.push(bad(
            Level::Warn,
            format!("alert ledger unreadable: {e}"),
            "see agtmux doctor's store check",
        )),
    }
    let cfg = snapshot::SnapshotConfig::from_env();
    match snapshot::list_files(&snapshot::snapshot_dir(db)).first() {
        Some(f) if cfg.every_ms <= 0 || now - f.created_ts <= 2 * cfg.every_ms => {
            v.push(ok(format!(
                "snapshot {} ({}s old)",
                f.path.display(),
                (now - f.created_ts) / 1000
            )))
        }
        Some(f) => v.push(bad(
            Level::Warn,
            format!("newest snapshot is {}s old", (now - f.created_ts) / 1000),
            format!(
                "{} snapshot create   (the daemon takes one every 15 min and at shutdown)",
                bin()
            ),
        )),
        None => v.push(ok(
            "no state snapshot yet (the daemon takes one every 15 min and at shutdown)",
        )),
    }
    v
}

pub fn run(args: &DoctorArgs) -> ExitCode {
    let color = client::stdout_is_tty();
    let (mut warnings, mut failures) = (0, 0);
    for c in checks(args) {
        let (mark, col) = match c.level {
            Level::Ok => ("ok  ", "\x1b[32m"),
            Level::Warn => ("warn", "\x1b[33m"),
            Level::Fail => ("FAIL", "\x1b[31m"),
        };
        match c.level {
            Level::Ok => {}
            Level::Warn => warnings += 1,
            Level::Fail => failures += 1,
        }
        if color {
            println!("{col}{mark}\x1b[0m {}", c.what);
        } else {
            println!("{mark} {}", c.what);
        }
        if let Some(f) = c.fix {
            println!("     fix: {f}");
        }
    }
    println!("{failures} failed, {warnings} warnings");
    if failures == 0 {
        ExitCode::Ok
    } else {
        ExitCode::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(parse_version("tmux next-3.5"), Some((3, 5)));
        assert_eq!(parse_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn finds_our_hooks_only() {
        let doc = json!({"hooks": {
            "Stop": [{"hooks": [{"type": "command", "command": "'/x/agtmux' hook claude"}]}],
            "PreToolUse": [{"hooks": [{"type": "command", "command": "other-tool"}]}],
        }});
        assert_eq!(hooked_events(&doc, Agent::Claude), vec!["Stop".to_string()]);
        assert!(hooked_events(&doc, Agent::Codex).is_empty());
    }
}
