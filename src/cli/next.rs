//! `agtmux next` (issue 21): switch a tmux client to the agent pane that needs the user most —
//! approval, then input, then error, then done; oldest first within a kind. Run again, it
//! cycles: from a pane in that list it goes to the one after it. Visiting a `done` pane marks
//! it seen (the daemon clears `done` when the pane is looked at), so done panes drop out as
//! they are visited.
//!
//! WHY stateless: the cycle position is the client's current pane, read from tmux each time,
//! so the key works from any client, after a daemon restart, and never jumps back to where a
//! stale memory says. It reads the daemon's read model (`list`) like `ls`, and switches with
//! `tmux switch-client -c CLIENT -t %N` as an argument vector, never through a shell.
use super::client::{self, Conn, ServerOpts};
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct NextArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The tmux client to switch (the key binding passes `#{client_name}`). Default: the
    /// most recently active attached client.
    #[arg(short = 'c', long, value_name = "CLIENT")]
    pub client: Option<String>,
    /// Print the pane that would be chosen; switch nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Agent panes that need the user, most urgent first, oldest first within a kind.
pub(crate) fn urgent_order(list: &Value) -> Vec<String> {
    let mut v: Vec<(u8, i64, String)> = client::all_panes(list)
        .into_iter()
        .filter(|p| client::is_agent(p) && client::rank(p) < 4)
        .filter_map(|p| {
            Some((
                client::rank(p),
                p["since_ms"].as_i64().unwrap_or(0),
                p["pane_id"].as_str()?.to_string(),
            ))
        })
        .collect();
    v.sort_by_key(|a| (a.0, a.1, pane_num(&a.2)));
    v.into_iter().map(|x| x.2).collect()
}

fn pane_num(id: &str) -> u64 {
    id.trim_start_matches('%').parse().unwrap_or(u64::MAX)
}

/// The pane to go to: the one after `current` in `order` (wrapping), or the first.
pub(crate) fn pick(order: &[String], current: Option<&str>) -> Option<String> {
    let i = current.and_then(|c| order.iter().position(|p| p == c));
    match i {
        Some(i) => order.get((i + 1) % order.len()).cloned(),
        None => order.first().cloned(),
    }
}

fn tmux(socket: &Path, args: &[&str]) -> Option<String> {
    client::tmux(socket, args).ok()
}

/// `(client name, its current pane)`: the named client, or the most recently active one.
fn find_client(socket: &Path, want: Option<&str>) -> Option<(String, String)> {
    let rows = tmux(
        socket,
        &[
            "list-clients",
            "-F",
            "#{client_control_mode}\t#{client_activity}\t#{pane_id}\t#{client_name}",
        ],
    )?;
    let mut best: Option<(u64, String, String)> = None;
    for l in rows.lines() {
        let f: Vec<&str> = l.splitn(4, '\t').collect();
        if f.len() != 4 || f[0] == "1" {
            continue;
        }
        let (act, pane, name) = (f[1].parse::<u64>().unwrap_or(0), f[2], f[3]);
        if let Some(w) = want {
            if name == w {
                return Some((name.to_string(), pane.to_string()));
            }
            continue;
        }
        if best.as_ref().is_none_or(|b| act > b.0) {
            best = Some((act, pane.to_string(), name.to_string()));
        }
    }
    best.map(|(_, p, n)| (n, p))
}

pub fn run(args: &NextArgs) -> ExitCode {
    let sp = args.server.paths();
    let list = match Conn::connect(&sp).and_then(|mut c| c.request("list", json!({}))) {
        Ok(l) => l,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    let order = urgent_order(&list);
    let found = find_client(&sp.socket, args.client.as_deref());
    if found.is_none() && !args.dry_run {
        return client::fail(
            &match &args.client {
                Some(c) => format!("no attached tmux client named {c:?}"),
                None => "no attached tmux client to switch".to_string(),
            },
            ExitCode::Failure,
        );
    }
    let current = found.as_ref().map(|f| f.1.as_str());
    let Some(target) = pick(&order, current) else {
        if let Some((name, _)) = &found
            && !args.dry_run
        {
            let _ = tmux(
                &sp.socket,
                &["display-message", "-c", name, "agtmux: no agent needs you"],
            );
        }
        eprintln!("agtmux: no agent needs you");
        return ExitCode::NotFound;
    };
    if args.dry_run {
        println!("{target}");
        return ExitCode::Ok;
    }
    let Some((name, _)) = found else {
        return ExitCode::Failure;
    };
    let Some(target) = crate::core::types::PaneId::parse(&target) else {
        return client::fail(&format!("bad pane id {target:?}"), ExitCode::Failure);
    };
    match tmux(&sp.socket, &["switch-client", "-c", &name, "-t", &target]) {
        Some(_) => {
            println!("{target}");
            ExitCode::Ok
        }
        None => client::fail(
            &format!("tmux switch-client to {target} failed"),
            ExitCode::Failure,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, att: Option<&str>, since: i64) -> Value {
        json!({"pane_id": id, "presence": "managed", "attention": att, "since_ms": since})
    }

    #[test]
    fn order_is_kind_then_oldest_and_pick_cycles() {
        let list = json!({"sessions": [{"windows": [{"panes": [
            pane("%1", Some("done"), 10),
            pane("%2", Some("approval"), 50),
            pane("%3", None, 1),
            pane("%4", Some("input"), 5),
            pane("%5", Some("approval"), 20),
            pane("%6", Some("error"), 1),
            pane("%7", Some("done"), 5),
            json!({"pane_id": "%8", "presence": "unmanaged", "attention": "approval"}),
        ]}]}]});
        let o = urgent_order(&list);
        assert_eq!(o, vec!["%5", "%2", "%4", "%6", "%7", "%1"]);
        assert_eq!(pick(&o, Some("%3")).as_deref(), Some("%5"));
        assert_eq!(pick(&o, None).as_deref(), Some("%5"));
        assert_eq!(pick(&o, Some("%5")).as_deref(), Some("%2"));
        assert_eq!(pick(&o, Some("%1")).as_deref(), Some("%5"), "wraps");
        assert_eq!(pick(&[], Some("%1")), None);
    }
}
