//! `agtmux wait [--pane %N] --until idle|attention --timeout S` (product.md §4): blocks on the
//! daemon's push stream (no polling) until the condition holds, for scripts such as
//! "notify me when the agent is done".
use super::client::{self, ClientError, Conn, ServerOpts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Exit codes (also in `--help`).
pub const MET: i32 = 0;
pub const TIMED_OUT: i32 = 1;
pub const GONE: i32 = 3;
pub const NO_DAEMON: i32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Until {
    /// The agent is at its prompt: state `idle` or `error` (the turn ended).
    Idle,
    /// The agent needs the user: attention approval, input, error or done.
    Attention,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit codes:
  0  the condition holds (checked at once, then on every pushed change)
  1  --timeout passed first
  2  usage error
  3  the pane does not exist, has no agent, or went away
  4  no daemon answers for this tmux server (or it went away)

Without --pane: `idle` waits until every agent pane is idle, `attention` until any agent pane
needs attention.")]
pub struct WaitArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The pane to watch, e.g. `%3` (default: every agent pane).
    #[arg(long, value_name = "%N")]
    pub pane: Option<String>,
    /// What to wait for.
    #[arg(long, value_enum)]
    pub until: Until,
    /// Give up after this many seconds (0 = wait forever).
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub timeout: f64,
}

/// The pane named by `--pane` is gone or holds no agent.
#[derive(Debug)]
pub struct NoAgent;

/// Does the condition hold?
pub fn check(list: &Value, pane: Option<&str>, until: Until) -> Result<bool, NoAgent> {
    let ok = |p: &Value| match until {
        Until::Idle => matches!(p["state"].as_str(), Some("idle" | "error")),
        Until::Attention => !p["attention"].is_null(),
    };
    let panes = client::all_panes(list);
    match pane {
        Some(id) => {
            let p = panes
                .into_iter()
                .find(|p| p["pane_id"] == id)
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

pub fn run(args: &WaitArgs) -> i32 {
    if !args.timeout.is_finite() || args.timeout < 0.0 {
        return client::fail(&"--timeout must be a number of seconds >= 0", 2);
    }
    if let Some(p) = &args.pane
        && !crate::core::types::valid_pane_id(p)
    {
        return client::fail(&format!("not a pane id: {p:?} (expected %N)"), 2);
    }
    let deadline =
        (args.timeout > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.timeout));
    let mut c = match Conn::connect(&args.server.paths()) {
        Ok(c) => c,
        Err(e) => return client::fail(&e, NO_DAEMON),
    };
    let mut list = match c.request("subscribe", json!({})) {
        Ok(s) => s["list"].clone(),
        Err(e) => return client::fail(&e, NO_DAEMON),
    };
    loop {
        match check(&list, args.pane.as_deref(), args.until) {
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
                _ => return TIMED_OUT,
            },
            None => None,
        };
        if let Err(e) = c.set_timeout(left) {
            return client::fail(&e, NO_DAEMON);
        }
        match c.read_message() {
            Ok(ev) => client::apply_event(&mut list, &ev),
            Err(ClientError::Timeout) => return TIMED_OUT,
            Err(e) => return client::fail(&e, NO_DAEMON),
        }
    }
}
