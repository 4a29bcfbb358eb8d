//! The screen poller (C-006): which candidate panes get a `capture-pane`, and when. Only panes
//! whose change hints moved, or that went too long without a look, are captured.
//!
//! WHY a module of its own: the poller is the fallback source whose cost must grow with the
//! panes that change; its schedule reads best in one place.
use super::{Runtime, Timing};
use crate::core::types::Millis;
use crate::tmux::client::ReplyKind;

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
        self.captures
            .iter()
            .filter_map(|(id, c)| {
                let p = self.projection.panes.get(id).filter(|p| p.is_candidate())?;
                if c.want {
                    return Some(c.last_at + self.timing.capture_min_gap);
                }
                Some(c.last_at + capture_interval(&self.timing, p))
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
            let cs = self.captures.entry(id.clone()).or_default();
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
            if now - cs.last_at >= capture_interval(&self.timing, m) {
                cs.want = true;
            }
            if cs.want && now - cs.last_at >= self.timing.capture_min_gap {
                cs.want = false;
                cs.last_at = now;
                cs.last_hint = Some(hint);
                to_capture.push(id.clone());
            }
        }
        if let Some(t) = self.tmux.as_mut() {
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
}
