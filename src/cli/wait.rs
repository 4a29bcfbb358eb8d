//! `agtmux wait [--pane %N] --until idle|attention --timeout DURATION` (README "Commands"): blocks
//! on the daemon's push stream (no polling) until the condition holds, for scripts such as
//! "notify me when the agent is done". On a timeout it says on stderr what was still pending.
use super::client::{self, ClientError, Conn, ServerOpts};
use crate::core::types::PaneId;
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Exit codes (also in `--help` and `crate::exit::WAIT`).
pub(crate) const MET: ExitCode = ExitCode::Ok;
pub(crate) const TIMED_OUT: ExitCode = ExitCode::Failure;
pub(crate) const GONE: ExitCode = ExitCode::NotFound;
pub(crate) const NO_DAEMON: ExitCode = ExitCode::NoDaemon;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Until {
    /// The agent is at its prompt: state `idle` or `error` (the turn ended).
    Idle,
    /// The agent needs the user: attention approval, input, error or done.
    Attention,
}

/// `--help`'s exit-code lines (documented with their variants in `crate::exit`).
pub(crate) const HELP_EXIT_CODES: &str = "\
Exit codes:
  0  the condition holds (checked at once, then on every pushed change)
  1  --timeout passed first (stderr says which panes were still pending)
  2  usage error
  3  the pane does not exist, has no agent, or went away
  4  no daemon answers for this tmux server (or it went away)

Without --pane: `idle` waits until every agent pane is idle, `attention` until any agent pane
needs attention.";

#[derive(clap::Args, Debug)]
#[command(after_help = HELP_EXIT_CODES)]
pub struct WaitArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The pane to watch, e.g. `%3` (default: every agent pane).
    #[arg(long, value_name = "%N", value_parser = PaneId::parse_or_why)]
    pub pane: Option<PaneId>,
    /// What to wait for.
    #[arg(long, value_enum)]
    pub until: Until,
    /// Give up after this long: seconds (`30`, `1.5`) or `500ms`, `2s`, `10m`, `1h`
    /// (0 = wait forever).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = client::parse_duration)]
    pub timeout: Duration,
}

/// The pane named by `--pane` is gone or holds no agent.
#[derive(Debug)]
pub struct NoAgent;

/// Does the condition hold?
pub fn check(list: &Value, pane: Option<&PaneId>, until: Until) -> Result<bool, NoAgent> {
    let ok = |p: &Value| match until {
        Until::Idle => matches!(p["state"].as_str(), Some("idle" | "error")),
        Until::Attention => !p["attention"].is_null(),
    };
    let panes = client::all_panes(list);
    match pane {
        Some(id) => {
            let p = panes
                .into_iter()
                .find(|p| p["pane_id"] == id.as_str())
                .ok_or(NoAgent)?;
            if !client::is_agent(p) {
                return Err(NoAgent);
            }
            Ok(ok(p))
        }
        None => {
            let mut agents = panes.into_iter().filter(|p| client::is_agent(p));
            Ok(match until {
                Until::Idle => agents.all(ok),
                Until::Attention => agents.any(ok),
            })
        }
    }
}

/// What a timed-out wait was still waiting for, e.g. `%3 is running` or `no agent pane needs
/// attention (%1 idle, %4 running)`.
pub fn pending(list: &Value, pane: Option<&PaneId>, until: Until) -> String {
    let desc = |p: &Value| {
        let mut d = p["state"].as_str().unwrap_or("?").to_string();
        if let Some(a) = p["attention"].as_str() {
            d.push_str(&format!(" (attention {a})"));
        }
        format!("{} {d}", p["pane_id"].as_str().unwrap_or("?"))
    };
    let panes = client::all_panes(list);
    if let Some(id) = pane {
        return match panes.into_iter().find(|p| p["pane_id"] == id.as_str()) {
            Some(p) => format!("{} is {}", id, desc(p).split_once(' ').map_or("", |x| x.1)),
            None => format!("{id} is gone"),
        };
    }
    let agents: Vec<&Value> = panes.into_iter().filter(|p| client::is_agent(p)).collect();
    match until {
        Until::Idle => {
            let busy: Vec<String> = agents
                .iter()
                .filter(|p| !matches!(p["state"].as_str(), Some("idle" | "error")))
                .map(|p| desc(p))
                .collect();
            format!("not idle: {}", busy.join(", "))
        }
        Until::Attention if agents.is_empty() => "no agent pane".to_string(),
        Until::Attention => format!(
            "no agent pane needs attention ({})",
            agents
                .iter()
                .map(|p| desc(p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(args: &WaitArgs) -> ExitCode {
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let what = match args.until {
        Until::Idle => "idle",
        Until::Attention => "attention",
    };
    let timed_out = |list: &Value| {
        client::fail(
            &format!(
                "timed out after {:?} waiting for {what}: {}",
                args.timeout,
                pending(list, args.pane.as_ref(), args.until)
            ),
            TIMED_OUT,
        )
    };
    let mut c = match Conn::connect(&args.server.paths()) {
        Ok(c) => c,
        Err(e) => return client::fail(&e, NO_DAEMON),
    };
    let mut list = match c.request("subscribe", json!({})) {
        Ok(s) => s["list"].clone(),
        Err(e) => return client::fail(&e, NO_DAEMON),
    };
    loop {
        match check(&list, args.pane.as_ref(), args.until) {
            Ok(true) => return MET,
            Ok(false) => {}
            Err(NoAgent) => {
                return client::fail(
                    &format!("pane {} has no agent", args.pane.as_deref().unwrap_or("?")),
                    GONE,
                );
            }
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(l) if !l.is_zero() => Some(l),
                _ => return timed_out(&list),
            },
            None => None,
        };
        if let Err(e) = c.set_timeout(left) {
            return client::fail(&e, NO_DAEMON);
        }
        match c.read_message() {
            Ok(ev) => client::apply_event(&mut list, &ev),
            Err(ClientError::Timeout) => return timed_out(&list),
            Err(e) => return client::fail(&e, NO_DAEMON),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_the_exit_codes_documented_in_exit() {
        for (c, meaning) in crate::exit::WAIT {
            let line = format!("  {}  {meaning}", c.code());
            assert!(HELP_EXIT_CODES.contains(&line), "{line}");
        }
        assert_eq!(
            [MET, TIMED_OUT, GONE, NO_DAEMON].map(ExitCode::code),
            [0, 1, 3, 4]
        );
    }
}
