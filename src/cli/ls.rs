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
    /// Include panes without an agent.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: &LsArgs) -> ExitCode {
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
                let state = match p["attention"].as_str() {
                    Some("done") => "idle (done)".to_string(),
                    _ => p["state"].as_str().unwrap_or("").to_string(),
                };
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
