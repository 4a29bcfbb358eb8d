//! `agtmux watch [--json]` (README "Commands"): subscribes to the daemon's push stream and prints
//! every pane change as it happens (no polling). `--json` prints one versioned JSON object per
//! line: first `{"v":1,"event":"snapshot","list":..}`, then the daemon's pushed events as is.
use super::client::{self, ClientError, Conn, ServerOpts};
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// One JSON object per line (`"v":1`, see docs/api.md).
    #[arg(long)]
    pub json: bool,
    /// Every tmux server's daemon on this machine in one stream, each line tagged with its
    /// server (what a remote host runs for `@agtmux-remotes`; docs/api.md "Remote stream").
    #[arg(long, requires = "json")]
    pub all: bool,
}

pub fn run(args: &WatchArgs) -> ExitCode {
    if args.all {
        return super::watch_all::run();
    }
    let mut c = match Conn::connect(&args.server.paths()) {
        Ok(c) => c,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    let snap = match c.request("subscribe", json!({})) {
        Ok(s) => s,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    let color = client::stdout_is_tty();
    let mut out = std::io::stdout().lock();
    let first = if args.json {
        writeln!(
            out,
            "{}",
            json!({"v": 1, "event": "snapshot", "list": snap["list"]})
        )
    } else {
        let panes: Vec<&Value> = client::all_panes(&snap["list"])
            .into_iter()
            .filter(|p| client::is_agent(p))
            .collect();
        let mut r = Ok(());
        for p in panes {
            r = r.and(writeln!(out, "{}", line(p, color)));
        }
        r
    };
    if first.and_then(|_| out.flush()).is_err() {
        return ExitCode::Ok;
    }
    if let Err(e) = c.set_timeout(None) {
        return client::fail(&e, ExitCode::Failure);
    }
    loop {
        let ev = match c.read_message() {
            Ok(ev) => ev,
            Err(ClientError::Protocol(m)) if m.contains("closed") => {
                return client::fail(&"the daemon went away", ExitCode::Failure);
            }
            Err(e) => return client::fail(&e, ExitCode::Failure),
        };
        let r = if args.json {
            writeln!(out, "{ev}")
        } else {
            match ev["event"].as_str() {
                Some("pane") => writeln!(out, "{}", line(&ev["pane"], color)),
                Some("pane_removed") => writeln!(
                    out,
                    "{} {} gone",
                    clock(),
                    ev["pane_id"].as_str().unwrap_or("?")
                ),
                _ => Ok(()),
            }
        };
        if r.and_then(|_| out.flush()).is_err() {
            return ExitCode::Ok; // the reader went away (e.g. `| head`)
        }
    }
}

fn clock() -> String {
    let s = client::now_ms() / 1000;
    // Local time, so the log matches the user's clock.
    let (h, m, s) = crate::sys::clock::local_hms(s);
    format!("{h:02}:{m:02}:{s:02}")
}

/// One change line: `12:00:01 %3 ! claude waiting_approval deterministic "title"`.
pub fn line(p: &Value, color: bool) -> String {
    let (c, r) = if color {
        (client::state_color(p), "\x1b[0m")
    } else {
        ("", "")
    };
    if !client::is_agent(p) {
        return format!(
            "{} {} no agent",
            clock(),
            p["pane_id"].as_str().unwrap_or("?")
        );
    }
    format!(
        "{} {} {c}{} {} {}{}{r} {} {}",
        clock(),
        p["pane_id"].as_str().unwrap_or("?"),
        p["icon"].as_str().unwrap_or(""),
        p["provider"].as_str().unwrap_or("?"),
        p["state"].as_str().unwrap_or(""),
        p["attention"]
            .as_str()
            .map(|a| format!(" attention={a}"))
            .unwrap_or_default(),
        p["evidence"].as_str().unwrap_or(""),
        p["title"]
            .as_str()
            .unwrap_or("")
            .replace(['\n', '\r', '\x1b'], " "),
    )
}
