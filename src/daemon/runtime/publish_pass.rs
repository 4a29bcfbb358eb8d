//! The publish pass: re-resolve the panes that changed, persist them, and send option
//! changes to tmux and pane changes to API subscribers, then record the latencies.
//!
//! WHY a module of its own: it is the pipeline's last stage, the one place where resolved
//! state leaves the daemon.
use super::Runtime;
use crate::core::types::{Millis, PaneId};
use crate::daemon::publish;
use crate::supervisor::Stage;
use crate::sys::clock::now_ms;
use crate::tmux::client::ReplyKind;

impl Runtime {
    pub(super) fn resolve_and_publish(&mut self, now: Millis) {
        if !self.registry.loaded {
            return;
        }
        let reg = &self.registry;
        // Reset times are printed in local wall time (issue 23).
        self.projection
            .set_utc_offset(crate::sys::clock::utc_offset_s(now / 1000));
        let changed = self.projection.resolve_dirty(now, &|id| reg.focused(id));
        self.notify.observe(&self.projection, &changed, now);
        let evidence: Vec<_> = (changed.iter())
            .filter_map(|id| Some((id.clone(), self.projection.panes.get(id)?.evidence())))
            .collect();
        self.ops
            .observe_changes(&evidence, &self.gateway.take_accepted(), now);
        if !changed.is_empty() {
            self.gateway.persist(&mut self.projection, &changed, now);
        }
        self.metrics.on_ingested(self.gateway.take_traced());
        self.update_source_health(now);
        let status = self.daemon_status();
        let remote_dirty = std::mem::take(&mut self.remote_dirty);
        if changed.is_empty() && !self.publish_all && !remote_dirty && status == self.last_status {
            self.api_push(&changed, now);
            self.observe_metrics(&changed, now_ms(), now);
            return;
        }
        self.last_status = status.clone();
        publish::publish(
            &self.projection,
            &changed,
            self.publish_all,
            &self.style,
            &status,
            &publish::Remote {
                views: self.remotes.views(),
                unreachable: self.remotes.unreachable(),
            },
            &mut self.options,
        );
        self.publish_all = false;
        let cmds = self.options.take();
        if !cmds.is_empty()
            && self.startup.is_ready(Stage::Daemon)
            && !self.startup.is_ready(Stage::Api)
            && self.startup.mark_ready(Stage::Api, now)
            && let Some(a) = self.api.as_mut()
        {
            a.ready = true;
        }
        if let Some(t) = self.tmux.as_mut() {
            for c in cmds {
                t.send(&c, ReplyKind::SetOption(String::new()));
            }
        }
        let option_ts = now_ms();
        // Clients after tmux: the option writes are queued first.
        self.api_push(&changed, now);
        self.observe_metrics(&changed, option_ts, now);
        self.flush_tmux();
    }

    /// Metrics and tracing after a publish: option writes for `changed` were queued at
    /// `option_ts`, and subscribers (if any) were pushed just now.
    fn observe_metrics(&mut self, changed: &[PaneId], option_ts: Millis, now: Millis) {
        let client_ts = (!changed.is_empty()
            && self.api.as_ref().is_some_and(|a| a.subscribers() > 0))
        .then(now_ms);
        let hops =
            self.metrics
                .observe_published(&mut self.projection, changed, option_ts, client_ts);
        self.gateway.record_hops(&hops);
        self.metrics.tick(
            self.gateway.counts,
            self.projection.bindings.churn(),
            &self.projection,
            now,
        );
    }
}
