//! `agtmux ls [--json] [--all]` (README "Commands"): sessions → windows → agent panes with state
//! icon, provider, state, evidence, title and age, attention first; `--all` adds the panes
//! without an agent (their command instead of a title). It reads the daemon's read model
//! through the local API (`list`), so it shows exactly what the status line shows.
use super::client::{self, Conn, ServerOpts};
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// Stable, versioned JSON (`"v":1`, see docs/api.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Everything: panes without an agent, every local tmux server with a daemon, and every
    /// remote host the daemons follow (`@agtmux-remotes`).
    #[arg(long)]
    pub all: bool,
    /// Ask this SSH destination directly (repeatable; ad hoc, no daemon or option needed):
    /// runs `ssh -T -o BatchMode=yes HOST agtmux watch --json --all` until its first full
    /// snapshot. `AGTMUX_SSH` / `AGTMUX_REMOTE_COMMAND` replace `ssh` / `agtmux`.
    #[arg(long = "remote", value_name = "HOST")]
    pub remote: Vec<String>,
}

pub fn run(args: &LsArgs) -> ExitCode {
    if !args.remote.is_empty() {
        return run_remote(args);
    }
    if args.all {
        return run_all(args);
    }
    let list =
        match Conn::connect(&args.server.paths()).and_then(|mut c| c.request("list", json!({}))) {
            Ok(l) => l,
            Err(e) => return client::fail(&e, ExitCode::Failure),
        };
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        writeln!(out, "{}", ls_json(&list, args.all))
    } else {
        out.write_all(render(&list, client::stdout_is_tty(), args.all).as_bytes())
    };
    match r {
        Ok(()) => ExitCode::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Ok,
        Err(e) => client::fail(&e, ExitCode::Failure),
    }
}

/// `ls --remote HOST…`: each host asked directly over ssh, printed like `ls --all`'s hosts.
fn run_remote(args: &LsArgs) -> ExitCode {
    let config = crate::daemon::remote::RemoteConfig::from_env();
    let mut hosts = Vec::new();
    let mut failed = false;
    for h in &args.remote {
        let v = crate::daemon::remote::ask_once(&config, h, std::time::Duration::from_secs(30));
        failed |= v["status"] != "live";
        hosts.push(v);
    }
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        writeln!(
            out,
            "{}",
            json!({"v": 1, "now_ms": client::now_ms(), "remotes": hosts})
        )
    } else {
        out.write_all(render_remotes(&hosts, client::stdout_is_tty(), args.all).as_bytes())
    };
    match r {
        Ok(()) if failed => ExitCode::Failure,
        Ok(()) => ExitCode::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Ok,
        Err(e) => client::fail(&e, ExitCode::Failure),
    }
}

/// `ls --all`: every local server with a daemon (the runtime dir holds one API socket per
/// server), the one selected first, then every remote host any of them follows.
fn run_all(args: &LsArgs) -> ExitCode {
    let me = args.server.paths();
    // The selected server first (its socket may live in another runtime dir, see paths.rs),
    // then every other one in the runtime dir.
    if let Err(e) = Conn::connect(&me) {
        return client::fail(&e, ExitCode::Failure);
    }
    let mut targets = vec![me.clone()];
    for (key, api) in super::watch_all::local_sockets() {
        if key != me.key {
            targets.push(crate::paths::ServerPaths {
                key,
                runtime_dir: api.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
                ..me.clone()
            });
        }
    }
    let mut servers = Vec::new();
    let mut remotes: Vec<Value> = Vec::new();
    for sp in &targets {
        let key = &sp.key;
        let Ok(mut c) = Conn::connect(sp) else {
            continue; // a socket left by a daemon that is gone
        };
        let (Ok(list), Ok(health)) = (c.request("list", json!({})), c.request("health", json!({})))
        else {
            continue;
        };
        for h in list["remotes"].as_array().into_iter().flatten() {
            if !remotes.iter().any(|x| x["host"] == h["host"]) {
                remotes.push(h.clone());
            }
        }
        servers.push((key.clone(), health["tmux"]["socket"].clone(), list));
    }
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let first = servers.first().map(|s| s.2.clone()).unwrap_or(json!({}));
        let mut v = ls_json(&first, true);
        v["servers"] = servers
            .iter()
            .map(|(k, sock, l)| {
                json!({"server": k, "socket": sock, "daemon_version": l["daemon_version"],
                    "sessions": ls_json(l, true)["sessions"]})
            })
            .collect();
        v["remotes"] = Value::Array(remotes);
        writeln!(out, "{v}")
    } else {
        let color = client::stdout_is_tty();
        let mut s = String::new();
        for (k, sock, l) in &servers {
            s.push_str(&format!(
                "== server {k} ({}) ==\n",
                sock.as_str().unwrap_or("?")
            ));
            s.push_str(&render(l, color, true));
        }
        s.push_str(&render_remotes(&remotes, color, true));
        out.write_all(s.as_bytes())
    };
    match r {
        Ok(()) => ExitCode::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Ok,
        Err(e) => client::fail(&e, ExitCode::Failure),
    }
}

/// The remote hosts' part of the table: a header per host with its status (and since when
/// it is unreachable, and why), then its servers' panes; stale panes say so.
pub(crate) fn render_remotes(hosts: &[Value], color: bool, all: bool) -> String {
    let mut s = String::new();
    for h in hosts {
        let status = h["status"].as_str().unwrap_or("?");
        let mut head = format!("== host {} {status}", h["host"].as_str().unwrap_or("?"));
        if status != "live"
            && status != "connecting"
            && let Some(t) = h["since_ms"].as_i64()
        {
            let (hh, mm, ss) = crate::sys::clock::local_hms(t / 1000);
            head.push_str(&format!(" since {hh:02}:{mm:02}:{ss:02}"));
        }
        if let Some(m) = h["message"].as_str() {
            head.push_str(&format!(": {}", m.replace(['\n', '\r', '\x1b'], " ")));
        }
        head.push_str(" ==\n");
        s.push_str(&head);
        for srv in h["servers"].as_array().into_iter().flatten() {
            let stale = if srv["stale"] == true { " (stale)" } else { "" };
            s.push_str(&format!(
                "  server {}{stale}\n",
                srv["server"].as_str().unwrap_or("?")
            ));
            let list = json!({"sessions": srv["sessions"]});
            for l in render(&list, color, all).lines() {
                s.push_str("  ");
                s.push_str(l);
                s.push('\n');
            }
        }
    }
    s
}

/// `{"v":1,"now_ms":..,"sessions":[{session_id,session_name,windows:[{..,panes:[Pane]}]}]}`,
/// agent panes only unless `all`; in tmux order (the table sorts, the JSON does not).
pub fn ls_json(list: &Value, all: bool) -> Value {
    let mut sessions = Vec::new();
    for s in list["sessions"].as_array().into_iter().flatten() {
        let mut windows = Vec::new();
        for w in s["windows"].as_array().into_iter().flatten() {
            let panes: Vec<Value> = w["panes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| all || client::is_agent(p))
                .cloned()
                .collect();
            if panes.is_empty() {
                continue;
            }
            let mut w = w.clone();
            w["panes"] = Value::Array(panes);
            windows.push(w);
        }
        if windows.is_empty() {
            continue;
        }
        let mut s = s.clone();
        s["windows"] = Value::Array(windows);
        sessions.push(s);
    }
    json!({"v": 1, "now_ms": list["now_ms"], "daemon_version": list["daemon_version"], "sessions": sessions})
}

/// The table. `color`: SGR colours (only for a terminal). `all`: panes without an agent too.
pub(crate) fn render(list: &Value, color: bool, all: bool) -> String {
    let now = client::now_ms();
    let groups = client::group_panes(list, all, &|_| true);
    if groups.is_empty() {
        return if all {
            "no panes\n"
        } else {
            "no agent panes\n"
        }
        .to_string();
    }
    let (b, d, r) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut s = String::new();
    for g in &groups {
        s.push_str(&format!(
            "{b}{}{r} {d}{}{r}\n",
            g.session_name, g.session_id
        ));
        for w in &g.windows {
            let idx = w.window_index.map(|i| format!("{i}:")).unwrap_or_default();
            s.push_str(&format!("  {idx}{} {d}{}{r}\n", w.window_name, w.window_id));
            for p in &w.panes {
                if !client::is_agent(p) {
                    s.push_str(&format!(
                        "    {d}{:<2} {:<5} {:<7} {:<17} {:<13} {:>4}  {}{r}\n",
                        "",
                        p["pane_id"].as_str().unwrap_or(""),
                        "-",
                        "no agent",
                        "",
                        "",
                        p["command"]
                            .as_str()
                            .unwrap_or("")
                            .replace(['\n', '\r', '\x1b'], " "),
                    ));
                    continue;
                }
                let c = if color { client::state_color(p) } else { "" };
                let mut state = match p["attention"].as_str() {
                    Some("done") => "idle (done)".to_string(),
                    _ => p["state"].as_str().unwrap_or("").to_string(),
                };
                if p["stale"] == true {
                    state = format!("stale {state}");
                }
                s.push_str(&format!(
                    "    {c}{:<2} {:<5} {:<7} {:<17}{r} {:<13} {:>4}  {}\n",
                    p["icon"].as_str().unwrap_or(""),
                    p["pane_id"].as_str().unwrap_or(""),
                    p["provider"].as_str().unwrap_or("?"),
                    state,
                    p["evidence"].as_str().unwrap_or(""),
                    client::age(now, p["since_ms"].as_i64().unwrap_or(now)),
                    client::title_line(p),
                ));
            }
        }
    }
    s
}
