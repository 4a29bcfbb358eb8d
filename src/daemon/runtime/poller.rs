//! The screen poller (C-006): which candidate panes get a `capture-pane`, and when, and what
//! a capture says. Only panes whose change hints moved, or that went too long without a look,
//! are captured.
//!
//! WHY a module of its own: the poller is the fallback source whose cost must grow with the
//! panes that change; its schedule reads best in one place.
use super::settle::Settle;
use super::{Runtime, Timing};
use crate::core::screen::{ScreenInput, classify_screen};
use crate::core::types::{Millis, PaneId};
use crate::tmux::client::ReplyKind;
use crate::tmux::parser::Reply;
use std::collections::HashMap;

/// Per-pane screen reads: capture pacing and settle re-checks.
#[derive(Default)]
pub(super) struct Screens {
    pub(super) captures: HashMap<PaneId, CaptureState>,
    /// Panes whose command may still be settling (see `settle.rs`).
    pub(super) settle: HashMap<PaneId, Settle>,
}

/// How long a candidate pane may go without a capture when no change hint moved.
/// `window_activity` moves on any output, in-place redraws included, so change hints catch
/// what matters; the unconditional look is a sanity check, except for a pane in a state that
/// can end without any hook (running, waiting: Esc, an approved command, an API error), where
/// the screen is what contradicts the deterministic state and is read every second.
fn capture_interval(t: &Timing, m: &crate::projection::PaneModel) -> Millis {
    use crate::core::types::Activity;
    match m.activity() {
        Activity::Running | Activity::WaitingApproval | Activity::WaitingInput => t.capture_busy,
        _ => t.capture_quiet,
    }
}

/// Per-pane poller bookkeeping (C-006): only panes whose screen may have changed get captured.
#[derive(Debug, Default, Clone)]
pub(super) struct CaptureState {
    last_hint: Option<(u64, u32, u32, u64, String, u16, u16)>,
    pub(super) last_at: Millis,
    pub(super) want: bool,
    pub(super) last_proc_check: Millis,
}

impl Runtime {
    pub(super) fn next_capture_due(&self) -> Option<Millis> {
        self.screens
            .captures
            .iter()
            .filter_map(|(id, c)| {
                let p = self.projection.panes.get(id).filter(|p| p.is_candidate())?;
                if c.want {
                    return Some(c.last_at + self.due.timing.capture_min_gap);
                }
                Some(c.last_at + capture_interval(&self.due.timing, p))
            })
            .min()
    }

    pub(super) fn schedule_captures(&mut self, now: Millis) {
        let mut to_capture = Vec::new();
        for (id, p) in &self.registry.panes {
            let Some(m) = self.projection.panes.get(id) else {
                continue;
            };
            if !m.is_candidate() {
                continue;
            }
            let cs = self.screens.captures.entry(id.clone()).or_default();
            let hint = p.change_hint();
            let hint = (
                hint.0,
                hint.1,
                hint.2,
                hint.3,
                hint.4.to_string(),
                hint.5,
                hint.6,
            );
            if cs.last_hint.as_ref() != Some(&hint) {
                cs.want = true;
            }
            // `window_activity` has a resolution of one second: output later in the second of
            // our last capture leaves the hint unchanged, so look once more after it.
            let settled_after = (hint.3 as Millis + 1) * 1000;
            if cs.last_at < settled_after && now >= settled_after {
                cs.want = true;
            }
            if now - cs.last_at >= capture_interval(&self.due.timing, m) {
                cs.want = true;
            }
            if cs.want && now - cs.last_at >= self.due.timing.capture_min_gap {
                cs.want = false;
                cs.last_at = now;
                cs.last_hint = Some(hint);
                to_capture.push(id.clone());
            }
        }
        if let Some(t) = self.tmux.client.as_mut() {
            for id in to_capture {
                if t.has_pending(&ReplyKind::Capture(id.clone())) {
                    continue;
                }
                t.send(
                    &format!("capture-pane -p -J -t {id}"),
                    ReplyKind::Capture(id),
                );
            }
        }
    }

    /// A screen capture: classify it and hand the verdict to the projection (C-006 poller).
    pub(super) fn on_capture(&mut self, reply: &Reply, pane: PaneId, now: Millis) {
        if !reply.ok {
            return;
        }
        let Some(p) = self.registry.panes.get(&pane) else {
            return;
        };
        let text = reply
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        let hint = self
            .projection
            .panes
            .get(&pane)
            .and_then(|m| m.process.map(|x| x.0));
        let v = classify_screen(&ScreenInput {
            text: &text,
            title: &p.title,
            command: &p.current_command,
            cols: p.width,
            rows: p.height,
            provider_hint: hint,
        });
        self.projection.apply_screen(&pane, v, now);
        // A verdict the hysteresis has not taken yet (weak, or waiting for its
        // confirmation) is looked at again soon, not at the next change hint. Idle is
        // left out: its window is about time, not about more captures.
        let pending = self.projection.panes.get(&pane).is_some_and(|m| {
            m.hysteresis.raw().is_some_and(|r| {
                r.activity != m.hysteresis.current()
                    && r.activity != crate::core::types::Activity::Idle
            })
        });
        if pending && let Some(cs) = self.screens.captures.get_mut(&pane) {
            cs.want = true;
        }
        if let Some(c) = self.screens.captures.get(&pane) {
            self.health.ops.screen_applied(&pane, c.last_at);
        }
        let is_codex = hint == Some(crate::core::types::Provider::Codex);
        self.sources.codex.set_screen(&pane, &text, is_codex, now);
    }
}
