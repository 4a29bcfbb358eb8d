//! `agtmux dev-codex-appserver` (hidden, C-004 test support): runs the test Codex app-server
//! (`sources::codex_testserver`) as a real child process, so integration tests can kill and
//! restart it like the real daemon.
use crate::exit::ExitCode;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DevCodexArgs {
    /// Unix socket to listen on.
    #[arg(long)]
    pub sock: PathBuf,
    /// A recorded stream (`fixtures/codex/appserver/*.jsonl` format).
    #[arg(long)]
    pub stream: PathBuf,
    /// Replay speed factor (2 = twice as fast; 0 = no delays).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Answer `initialize`, then drop the connection (a crash loop, seen from the client).
    #[arg(long)]
    pub(crate) close_after_initialize: bool,
    /// Never answer a WebSocket ping (a hung server).
    #[arg(long)]
    pub(crate) ignore_pings: bool,
}

/// Serves until killed. Returns the exit code (1 when the socket or stream is unusable).
pub fn run(a: &DevCodexArgs) -> ExitCode {
    let faults = crate::sources::codex_testserver::Faults {
        close_after_initialize: a.close_after_initialize,
        ignore_pings: a.ignore_pings,
    };
    match crate::sources::codex_testserver::run_test_server(&a.sock, &a.stream, a.speed, faults) {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            eprintln!("agtmux: {e}");
            ExitCode::Failure
        }
    }
}
