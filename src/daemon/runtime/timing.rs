//! The runtime's timing knobs: how often each periodic look (full scan, change hints, spool
//! scan, captures, process re-checks, pruning) runs.
//!
//! WHY a module of its own: these periods set what an idle daemon costs; they are read in one
//! place instead of between the loop's handlers.
use crate::core::seeded::seeded;
use crate::core::types::Millis;
use crate::sys::env;

seeded! {
    /// Timing knobs (ms). Defaults keep an idle daemon near zero CPU.
    #[derive(Debug, Clone)]
    pub(crate) struct Timing {
        /// The full `list-panes -a` (plus clients, sessions, windows), besides structure
        /// notifications: it finds agents started in panes that were plain shells and panes gone
        /// without a notification. Its cost grows with all panes, so it is slow.
        pub(crate) refresh_full: Millis = 5_000,
        /// The change hints of candidate (agent) panes only, one `display -p` each: what drives
        /// screen captures. Its cost grows with agent panes.
        pub(crate) refresh_hints: Millis = 1_000,
        /// Safety-net spool scan, in case a file-watch event was missed (or the state dir could
        /// only be stat-polled: this scan is then what notices appends besides the wake-up).
        pub(crate) spool_scan: Millis = 2_000,
        /// Minimum gap between two captures of one pane.
        pub(crate) capture_min_gap: Millis = 250,
        /// A capture even without change hints (see `capture_interval`): `capture_busy` for panes
        /// running or waiting, `capture_quiet` for the rest.
        pub(crate) capture_busy: Millis = 1_000,
        pub(crate) capture_quiet: Millis = 15_000,
        /// Re-read the process tree of agent panes this often (agent replaced in place).
        pub(crate) process_recheck: Millis = 10_000,
        pub(crate) prune_every: Millis = 600_000,
    }
}

impl Timing {
    /// The defaults, with `AGTMUX_FULL_REFRESH_MS` (tests) overriding the full scan's period:
    /// a test that stretches it proves that new panes and agents are found by notifications,
    /// the pane subscription and settle re-checks, not by the scan.
    pub(crate) fn from_env() -> Timing {
        let mut t = Timing::default();
        if let Some(v) = env::number::<Millis>("AGTMUX_FULL_REFRESH_MS").filter(|v| *v >= 100) {
            t.refresh_full = v;
        }
        t
    }
}

/// When each periodic look is next due, and what asks for a look now.
#[derive(Debug)]
pub(super) struct Due {
    pub(super) timing: Timing,
    pub(super) next_refresh: Millis,
    pub(super) next_hints: Millis,
    pub(super) next_spool_scan: Millis,
    pub(super) next_prune: Millis,
    /// A full refresh is wanted at the next pass.
    pub(super) refresh_requested: bool,
    /// The spool may have news: ingest at the next pass.
    pub(super) spool_dirty: bool,
}

impl Due {
    /// Everything due at once, as at start.
    pub(super) fn new(timing: Timing) -> Due {
        Due {
            timing,
            next_refresh: 0,
            next_hints: 0,
            next_spool_scan: 0,
            next_prune: 0,
            refresh_requested: true,
            spool_dirty: true,
        }
    }
}
