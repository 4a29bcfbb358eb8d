//! Settle re-checks: a pane just created, or whose foreground command or pid just changed, is
//! looked at again on a growing gap until its command settles.
//!
//! WHY a module of its own: it is the one schedule that follows single panes closely for a
//! short time; keeping it apart keeps its cost (a few `display -p` per changed pane) visible.
use super::poller::Screens;
use crate::core::types::{Millis, PaneId};
use crate::tmux::client::{ReplyKind, TmuxClient};
use crate::tmux::registry::{self, Registry};

/// A pane just created, or whose foreground command or pid just changed, is looked at again
/// (its change hints, then its process tree) after 25, 50, 100, 200, 400, 400… ms for
/// [`SETTLE_FOR_MS`] after its last change: its command settles only after the exec chain of
/// a starting program (`sh -c`, a re-exec, `env node …`) ran, and the first look often comes
/// before it. Cost: a handful of `display -p` per pane that changed, none for the rest.
const SETTLE_FIRST_MS: Millis = 25;
const SETTLE_MAX_GAP_MS: Millis = 400;
const SETTLE_FOR_MS: Millis = 2_000;

/// Re-check schedule of one settling pane.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settle {
    /// The last change seen (creation, command or pid).
    since: Millis,
    pub(super) next_at: Millis,
    gap: Millis,
}

impl Screens {
    /// Follow a pane whose command may not have settled yet (see [`SETTLE_FOR_MS`]).
    pub(super) fn start_settle(&mut self, id: &PaneId, now: Millis) {
        let s = self.settle.entry(id.clone()).or_insert(Settle {
            since: now,
            next_at: now + SETTLE_FIRST_MS,
            gap: SETTLE_FIRST_MS,
        });
        s.since = now;
        if s.next_at > now + SETTLE_FIRST_MS {
            s.next_at = now + SETTLE_FIRST_MS;
            s.gap = SETTLE_FIRST_MS;
        }
    }

    /// Ask for the change hints of settling panes that are due; forget panes that settled or
    /// went.
    pub(super) fn settle_tick(
        &mut self,
        reg: &Registry,
        tmux: Option<&mut TmuxClient>,
        now: Millis,
    ) {
        self.settle
            .retain(|id, s| reg.panes.contains_key(id) && now - s.since <= SETTLE_FOR_MS);
        let Some(t) = tmux else {
            return;
        };
        for (id, s) in self.settle.iter_mut() {
            if s.next_at > now {
                continue;
            }
            s.gap = (s.gap * 2).min(SETTLE_MAX_GAP_MS);
            s.next_at = now + s.gap;
            let kind = ReplyKind::Hints(id.clone());
            if !t.has_pending(&kind) {
                t.send(&registry::pane_hints_command(id), kind);
            }
        }
    }
}
