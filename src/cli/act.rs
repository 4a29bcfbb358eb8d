//! `agtmux approve %N`, `agtmux deny %N`, `agtmux reply %N TEXT` (issue 21 item 3), and the
//! popup's `y`/`n`/`r` keys: answer an agent's dialog without attaching to its pane.
//!
//! Each action:
//! 1. asks the daemon for the pane (`get`): it must hold an agent whose state is
//!    `waiting_approval` or `waiting_input`, of a provider whose dialogs are known;
//! 2. re-reads the pane (`tmux capture-pane`) and recognises the dialog on it
//!    (`core::dialog`); its token `GENERATION.SINCE.provider:kind:hash` names that dialog of
//!    that pane generation in that state. With `--expect TOKEN` (the popup passes the token of
//!    the dialog it showed) any other token is refused as stale;
//! 3. checks, on the daemon's push stream, that the pane did not change while it was read,
//!    and on a second capture that the same dialog is still on screen;
//! 4. sends the planned keys with `tmux send-keys` as an argument vector, text with `-l`
//!    (never a shell), one step at a time with a pause, so the TUI reads them as keys;
//! 5. waits (bounded by `--timeout`) for the state change that follows and reports it.
//!
//! WHY in the CLI and not a daemon verb: the check and the keys need two tmux commands whose
//! answers the CLI can wait for; in the daemon they would block its loop or need a new async
//! path through the control client. The daemon's read model gives what only it knows (the
//! pane's generation and state, and their changes), read before and after the capture.
use super::client::{self, ClientError, Conn, ServerOpts, tmux};
use crate::core::dialog::{self, Act, Dialog, Key, PlanError};
use crate::core::types::PaneId;
use crate::exit::ExitCode;
use crate::paths::ServerPaths;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const EXIT_HELP: &str = "\
Exit codes:
  0  the keys were sent and the pane's state changed (printed), or --dry-run
  1  the keys were sent but the state did not change within --timeout, or tmux failed
  2  usage error (a bad pane id, a reply that is not one line of text)
  3  the pane does not exist or holds no agent
  4  no daemon answers for this tmux server
  5  refused: the pane is not waiting for this (another state, another kind of dialog, a
     dialog agtmux does not know, or a provider it does not support)
  6  refused as stale: the dialog is not the one expected (--expect), or the pane changed
     while it was read";

/// Options shared by the three actions.
#[derive(clap::Args, Debug, Clone)]
pub struct ActOpts {
    /// Act only if this is still the dialog's token (`--dry-run` prints it; the popup passes
    /// the one it showed). A different dialog, or the same one answered meanwhile, is refused.
    #[arg(long, value_name = "TOKEN")]
    pub expect: Option<String>,
    /// Print the dialog's token, what it asks and the keys; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the state change after the keys (0 = do not wait).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = client::parse_duration)]
    pub timeout: Duration,
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_HELP)]
pub struct ActArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The agent's pane, e.g. `%3`.
    #[arg(value_name = "%N", value_parser = PaneId::parse_or_why)]
    pub pane: PaneId,
    #[command(flatten)]
    pub opts: ActOpts,
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_HELP)]
pub struct ReplyArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The agent's pane, e.g. `%3`.
    #[arg(value_name = "%N", value_parser = PaneId::parse_or_why)]
    pub pane: PaneId,
    /// The answer: an option's number or label, or text typed as it is (one line; it may
    /// start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub text: String,
    #[command(flatten)]
    pub opts: ActOpts,
}

/// Why nothing (or not everything) was done; each has its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Usage(String),
    NoAgent(String),
    NoDaemon(String),
    NotWaiting(String),
    Stale(String),
    Failed(String),
}

impl Refusal {
    pub(crate) fn code(&self) -> ExitCode {
        match self {
            Refusal::Usage(_) => ExitCode::Usage,
            Refusal::NoAgent(_) => ExitCode::NotFound,
            Refusal::NoDaemon(_) => ExitCode::NoDaemon,
            Refusal::NotWaiting(_) => ExitCode::NotWaiting,
            Refusal::Stale(_) => ExitCode::Stale,
            Refusal::Failed(_) => ExitCode::Failure,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Usage(s) | Refusal::NoAgent(s) | Refusal::NoDaemon(s) | Refusal::Failed(s) => {
                f.write_str(s)
            }
            Refusal::NotWaiting(s) => write!(f, "refused: {s}"),
            Refusal::Stale(s) => write!(f, "refused (stale): {s}"),
        }
    }
}

/// A dialog read from a pane, with the pane as the daemon had it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub state: String,
    generation: Value,
    since: Value,
    pub dialog: Dialog,
    /// `GENERATION.SINCE.provider:kind:hash`.
    pub token: String,
}

/// The daemon's answer reduced to what says "the same pane in the same state".
fn pane_key(p: &Value) -> (Value, Value, Value) {
    (
        p["generation"].clone(),
        p["since_ms"].clone(),
        p["state"].clone(),
    )
}

fn daemon_err(e: ClientError, pane: &PaneId) -> Refusal {
    match e {
        ClientError::Api { code, .. } if code == "not_found" => {
            Refusal::NoAgent(format!("no pane {pane}"))
        }
        e @ ClientError::NoDaemon(..) => Refusal::NoDaemon(e.to_string()),
        e => Refusal::Failed(e.to_string()),
    }
}

/// How long a waiting pane may take to draw its dialog before it counts as unknown.
const DIALOG_DRAW_GRACE: Duration = Duration::from_millis(1500);

/// Steps 1 and 2: the pane from the daemon, then its dialog from the screen.
pub(crate) fn inspect(sp: &ServerPaths, pane: &PaneId) -> Result<Seen, Refusal> {
    let mut c = Conn::connect(sp).map_err(|e| daemon_err(e, pane))?;
    let p = c
        .request("get", json!({"pane": pane}))
        .map_err(|e| daemon_err(e, pane))?;
    if !client::is_agent(&p) {
        return Err(Refusal::NoAgent(format!("{pane} holds no agent")));
    }
    let state = p["state"].as_str().unwrap_or("?").to_string();
    let provider = p["provider"].as_str().unwrap_or("?").to_string();
    if !matches!(state.as_str(), "waiting_approval" | "waiting_input") {
        return Err(Refusal::NotWaiting(format!(
            "{pane} ({provider}) is {state}, not waiting for an approval or an answer"
        )));
    }
    if !dialog::supported(&provider) {
        return Err(Refusal::NotWaiting(format!(
            "not supported for {provider}: agtmux answers the dialogs of Claude Code, Codex and Gemini CLI"
        )));
    }
    // An agent's hook can say "waiting" a moment before its dialog is fully drawn (Gemini's
    // ToolPermission notification comes before the options are on screen): read the screen a
    // few times over a short while before calling the dialog unknown.
    let drawn_by = Instant::now() + DIALOG_DRAW_GRACE;
    let d = loop {
        let screen = tmux(&sp.socket, &["capture-pane", "-p", "-J", "-t", pane])
            .map_err(|e| Refusal::Failed(format!("tmux capture-pane -t {pane}: {e}")))?;
        if let Some(d) = dialog::parse(&provider, &screen) {
            break d;
        }
        if Instant::now() >= drawn_by {
            return Err(Refusal::NotWaiting(format!(
                "{pane} ({provider}, {state}) shows no dialog agtmux knows how to answer"
            )));
        }
        std::thread::sleep(Duration::from_millis(150));
    };
    let token = format!("{}.{}.{}", p["generation"], p["since_ms"], d.fingerprint());
    Ok(Seen {
        state,
        generation: p["generation"].clone(),
        since: p["since_ms"].clone(),
        dialog: d,
        token,
    })
}

/// What happened: the keys sent, and the state that followed (None: not waited for).
#[derive(Debug)]
pub(crate) struct Done {
    pub seen: Seen,
    pub keys: Vec<Key>,
    pub(crate) new_state: Option<String>,
}

/// Steps 1 to 5. `timeout` zero: send and return without waiting.
pub(crate) fn perform(
    sp: &ServerPaths,
    pane: &PaneId,
    act: &Act,
    expect: Option<&str>,
    timeout: Duration,
    dry_run: bool,
) -> Result<Done, Refusal> {
    let seen = inspect_expected(sp, pane, expect)?;
    let keys = seen.dialog.plan(act).map_err(|e| match e {
        PlanError::WrongDialog(s) => Refusal::NotWaiting(s),
        PlanError::Unanswerable(s) => Refusal::Usage(s),
    })?;
    if dry_run {
        return Ok(Done {
            seen,
            keys,
            new_state: None,
        });
    }
    let mut watch = Watch::unchanged_since(sp, pane, &seen)?;
    check_same_dialog(sp, pane, &seen)?;
    send(&sp.socket, pane, &keys)?;
    if timeout.is_zero() {
        return Ok(Done {
            seen,
            keys,
            new_state: None,
        });
    }
    let state = watch.wait_for_change(pane, &seen, timeout)?;
    Ok(Done {
        seen,
        keys,
        new_state: Some(state),
    })
}

/// Steps 1 and 2, then the `--expect` check: the dialog on screen must be the one expected.
fn inspect_expected(
    sp: &ServerPaths,
    pane: &PaneId,
    expect: Option<&str>,
) -> Result<Seen, Refusal> {
    let seen = match inspect(sp, pane) {
        Ok(s) => s,
        // Expecting a dialog that is gone (answered in the pane, the agent moved on): stale.
        Err(Refusal::NotWaiting(why)) if expect.is_some() => {
            return Err(Refusal::Stale(format!(
                "the expected dialog is gone: {why}"
            )));
        }
        Err(e) => return Err(e),
    };
    if let Some(want) = expect
        && want != seen.token
    {
        return Err(Refusal::Stale(format!(
            "{pane} shows another dialog than the one expected (expected {want}, on screen {})",
            seen.token
        )));
    }
    Ok(seen)
}

/// The pane's key in the daemon's pushed list (None: the pane is gone).
fn pane_now(list: &Value, pane: &PaneId) -> Option<(Value, Value, Value)> {
    client::all_panes(list)
        .into_iter()
        .find(|p| p["pane_id"] == pane.as_str())
        .map(pane_key)
}

/// Step 3's and step 5's view of the pane: the daemon's push stream and the pane as it was
/// when its dialog was read.
struct Watch {
    conn: Conn,
    list: Value,
    before: (Value, Value, Value),
}

impl Watch {
    /// Step 3: subscribe first (no change can slip between the check and the wait), and the
    /// pane must be as it was before the capture.
    fn unchanged_since(sp: &ServerPaths, pane: &PaneId, seen: &Seen) -> Result<Watch, Refusal> {
        let mut conn = Conn::connect(sp).map_err(|e| daemon_err(e, pane))?;
        let list = conn
            .request("subscribe", json!({}))
            .map_err(|e| daemon_err(e, pane))?["list"]
            .take();
        let before = (
            seen.generation.clone(),
            seen.since.clone(),
            Value::String(seen.state.clone()),
        );
        if pane_now(&list, pane).as_ref() != Some(&before) {
            return Err(Refusal::Stale(format!(
                "{pane} changed while its dialog was read; nothing was sent"
            )));
        }
        Ok(Watch { conn, list, before })
    }

    /// Step 5: the pane's new state once the daemon pushes a change, bounded by `timeout`.
    fn wait_for_change(
        &mut self,
        pane: &PaneId,
        seen: &Seen,
        timeout: Duration,
    ) -> Result<String, Refusal> {
        let deadline = Instant::now() + timeout;
        loop {
            match pane_now(&self.list, pane) {
                None => {
                    return Err(Refusal::Failed(format!("keys sent; then {pane} went away")));
                }
                Some(k) if k != self.before => {
                    return Ok(k.2.as_str().unwrap_or("?").to_string());
                }
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || {
                Refusal::Failed(format!(
                    "keys sent; {pane} was still {} after {timeout:?}",
                    seen.state
                ))
            };
            if left.is_zero() {
                return Err(timed_out());
            }
            self.conn
                .set_timeout(Some(left))
                .map_err(|e| Refusal::Failed(e.to_string()))?;
            match self.conn.read_message() {
                Ok(ev) => client::apply_event(&mut self.list, &ev),
                Err(ClientError::Timeout) => return Err(timed_out()),
                Err(e) => return Err(Refusal::Failed(format!("keys sent; then {e}"))),
            }
        }
    }
}

/// Right before the keys: the same dialog is still on screen.
fn check_same_dialog(sp: &ServerPaths, pane: &PaneId, seen: &Seen) -> Result<(), Refusal> {
    let again = tmux(&sp.socket, &["capture-pane", "-p", "-J", "-t", pane])
        .map_err(|e| Refusal::Failed(format!("tmux capture-pane -t {pane}: {e}")))?;
    let now_fp = dialog::parse(seen.dialog.provider, &again).map(|d| d.fingerprint());
    if now_fp.as_deref() != Some(seen.dialog.fingerprint().as_str()) {
        return Err(Refusal::Stale(format!(
            "the dialog on {pane} changed while it was read; nothing was sent"
        )));
    }
    Ok(())
}

/// Pause between two steps of a plan: Ink and ratatui read a burst of input as one event
/// (a paste), so a digit followed at once by text would not select the option first.
const STEP_GAP: Duration = Duration::from_millis(150);

fn send(socket: &Path, pane: &PaneId, keys: &[Key]) -> Result<(), Refusal> {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(STEP_GAP);
        }
        let r = match k {
            Key::Literal(t) => tmux(socket, &["send-keys", "-t", pane, "-l", "--", t]),
            Key::Named(n) => tmux(socket, &["send-keys", "-t", pane, n]),
        };
        r.map_err(|e| Refusal::Failed(format!("tmux send-keys -t {pane}: {e}")))?;
    }
    Ok(())
}

/// How a plan reads: `1`, `"text" Enter`, `Escape`.
pub(crate) fn keys_str(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| match k {
            Key::Literal(t) => format!("{t:?}"),
            Key::Named(n) => n.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_act(server: &ServerOpts, pane: &PaneId, act: Act, o: &ActOpts) -> ExitCode {
    let sp = server.paths();
    match perform(&sp, pane, &act, o.expect.as_deref(), o.timeout, o.dry_run) {
        Ok(d) if o.dry_run => {
            println!("token: {}", d.seen.token);
            println!(
                "dialog: {} {}: {}",
                d.seen.dialog.provider,
                d.seen.dialog.kind.as_str(),
                d.seen.dialog.summary()
            );
            println!("keys: {}", keys_str(&d.keys));
            ExitCode::Ok
        }
        Ok(d) => {
            let after = d.new_state.as_deref().unwrap_or("(not waited for)");
            println!(
                "{pane} {} ({} {}): {} -> {after}",
                act.verb(),
                d.seen.dialog.provider,
                d.seen.dialog.kind.as_str(),
                d.seen.state
            );
            ExitCode::Ok
        }
        Err(r) => client::fail(&r, r.code()),
    }
}

pub(crate) fn run_approve(a: &ActArgs) -> ExitCode {
    run_act(&a.server, &a.pane, Act::Approve, &a.opts)
}

pub(crate) fn run_deny(a: &ActArgs) -> ExitCode {
    run_act(&a.server, &a.pane, Act::Deny, &a.opts)
}

pub(crate) fn run_reply(a: &ReplyArgs) -> ExitCode {
    run_act(&a.server, &a.pane, Act::Reply(a.text.clone()), &a.opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal has its own documented status, and `--help` lists each.
    #[test]
    fn each_refusal_has_its_documented_exit_code() {
        let r = |f: fn(String) -> Refusal| f(String::new()).code().code();
        let codes = [
            r(Refusal::Failed),
            r(Refusal::Usage),
            r(Refusal::NoAgent),
            r(Refusal::NoDaemon),
            r(Refusal::NotWaiting),
            r(Refusal::Stale),
        ];
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
        for c in [0].iter().chain(&codes) {
            assert!(
                EXIT_HELP.contains(&format!("\n  {c}  ")),
                "{c} not in --help"
            );
        }
        assert_eq!(
            keys_str(&[
                Key::Literal("3".into()),
                Key::Literal("a \"b\"".into()),
                Key::Named("Enter")
            ]),
            r#""3" "a \"b\"" Enter"#
        );
    }
}
