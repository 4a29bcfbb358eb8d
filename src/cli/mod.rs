//! One file per subcommand; `main.rs` only parses and dispatches here.
//!
//! WHY: each command's code is found by its name, and what commands share lives in
//! `client.rs` (the API client and rendering) rather than in any one of them.
use crate::exit::ExitCode;
pub mod act;
pub mod classify;
pub mod client;
pub mod completions;
pub mod demo;
#[cfg(feature = "testserver")]
pub mod dev_codex;
pub mod doctor;
pub mod explain;
pub(crate) mod goto_remote;
pub mod hook;
pub(crate) mod hook_input;
pub mod ls;
pub mod metrics;
pub mod next;
pub mod popup;
pub mod setup;
pub(crate) mod show;
pub mod snapshot;
pub mod source;
pub mod trace;
pub mod wait;
pub mod watch;
pub(crate) mod watch_all;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "agtmux",
    version,
    about = "Which AI coding agent in which tmux pane is working, waiting or failed"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The event loop for one tmux server (started by agtmux.tmux).
    Daemon(crate::daemon::DaemonArgs),
    /// Called by an agent's hook: record one event (always exits 0, within ms).
    Hook(hook::HookArgs),
    /// Install or remove agtmux's hooks for Claude Code, Codex or Gemini CLI, or its OpenCode plugin.
    Setup(setup::SetupArgs),
    /// Classify one screen capture (single snapshot, no hysteresis).
    Classify(classify::ClassifyArgs),
    /// Start a private tmux server with simulated agents and the daemon, and attach to it.
    Demo(demo::DemoArgs),
    /// Sessions → windows → agent panes with state, evidence, title and age.
    Ls(ls::LsArgs),
    /// Stream pane changes as they happen.
    Watch(watch::WatchArgs),
    /// Wait until a pane (or every agent pane) is idle or needs attention.
    Wait(wait::WaitArgs),
    /// Why a pane has its state.
    Explain(explain::ExplainArgs),
    /// Switch a client to the agent pane that needs you most (again: the next one).
    Next(next::NextArgs),
    /// Approve the permission dialog an agent shows (Claude Code, Codex, Gemini CLI).
    Approve(act::ActArgs),
    /// Deny the permission dialog an agent shows (Claude Code, Codex, Gemini CLI).
    Deny(act::ActArgs),
    /// Answer the question an agent asks (Claude Code's AskUserQuestion, Gemini CLI's ask_user).
    Reply(act::ReplyArgs),
    /// The popup UI (run by prefix + A inside `display-popup -E`).
    Popup(popup::PopupArgs),
    /// Rolling-window metrics of the daemon (latency p95, ingest, churn, distributions).
    Metrics(metrics::MetricsArgs),
    /// The path of one event through the daemon, hop by hop.
    Trace(trace::TraceArgs),
    /// Check tmux, plugin, daemon, hooks and sources; print a fix for each problem.
    Doctor(doctor::DoctorArgs),
    /// Registered event sources (the Codex app-server): list, register, revoke.
    Source(source::SourceArgs),
    /// State snapshots: create, list, restore (--dry-run checks consistency).
    Snapshot(snapshot::SnapshotArgs),
    /// Shell completions.
    Completions(completions::CompletionsArgs),
    /// A simulated agent (used by the demo and the tests).
    #[command(hide = true)]
    FakeAgent(demo::FakeAgentArgs),
    /// A test Codex app-server replaying a recorded stream (used by the tests; only in a
    /// build with the `testserver` feature).
    #[cfg(feature = "testserver")]
    #[command(hide = true)]
    DevCodexAppserver(dev_codex::DevCodexArgs),
}

/// Run a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if prints_to_a_pipe(&cli.command) {
        restore_sigpipe();
    }
    match cli.command {
        Command::Daemon(a) => crate::daemon::run(&a),
        Command::Hook(a) => hook::run(&a),
        Command::Setup(a) => report(setup::run(&a, &mut std::io::stdout())),
        Command::Classify(a) => report(classify::run(&a, &mut std::io::stdout())),
        Command::Demo(a) => demo::run(&a),
        Command::FakeAgent(a) => demo::fake_agent(&a),
        #[cfg(feature = "testserver")]
        Command::DevCodexAppserver(a) => dev_codex::run(&a),
        Command::Ls(a) => ls::run(&a),
        Command::Watch(a) => watch::run(&a),
        Command::Wait(a) => wait::run(&a),
        Command::Explain(a) => explain::run(&a),
        Command::Next(a) => next::run(&a),
        Command::Approve(a) => act::run_approve(&a),
        Command::Deny(a) => act::run_deny(&a),
        Command::Reply(a) => act::run_reply(&a),
        Command::Popup(a) => popup::run(&a),
        Command::Doctor(a) => doctor::run(&a),
        Command::Metrics(a) => metrics::run(&a),
        Command::Trace(a) => trace::run(&a),
        Command::Source(a) => source::run(&a),
        Command::Completions(a) => completions::run(&a),
        Command::Snapshot(a) => snapshot::run(&a),
    }
}

/// Commands whose output is made to be piped (`agtmux ls | head`). The daemon, the hook, the
/// popup and the helpers are not: they must see `EPIPE` as an error and carry on.
fn prints_to_a_pipe(c: &Command) -> bool {
    !matches!(
        c,
        Command::Daemon(_)
            | Command::Hook(_)
            | Command::Popup(_)
            | Command::Demo(_)
            | Command::FakeAgent(_)
    ) && !is_dev_codex(c)
}

#[cfg(feature = "testserver")]
fn is_dev_codex(c: &Command) -> bool {
    matches!(c, Command::DevCodexAppserver(_))
}

#[cfg(not(feature = "testserver"))]
fn is_dev_codex(_: &Command) -> bool {
    false
}

/// Rust starts with SIGPIPE ignored, so `println!` into a closed pipe panics ("failed printing
/// to stdout"). A printing command should end quietly instead, as `cat` does.
fn restore_sigpipe() {
    crate::sys::signals::default_sigpipe();
}

fn report<E: std::fmt::Display>(r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("agtmux: {e}");
            ExitCode::Failure
        }
    }
}
