//! The publish pass: re-resolve the panes that changed, persist them, and send option
//! changes to tmux and pane changes to API subscribers, then record the latencies.
//!
//! WHY a module of its own: it is the pipeline's last stage, the one place where resolved
//! state leaves the daemon.
use super::Runtime;
use crate::core::attention::Style;
use crate::core::types::{Millis, PaneId};
use crate::daemon::notify::Notify;
use crate::daemon::publish;
use crate::supervisor::Stage;
use crate::sys::clock::now_ms;
use crate::tmux::client::ReplyKind;
use crate::tmux::options::OptionsWriter;

/// What the publish pass keeps between passes.
pub(super) struct Publish {
    /// The option writer: what tmux holds, so only changes are written.
    pub(super) options: OptionsWriter,
    pub(super) style: Style,
    /// Notifications on attention (issue 21).
    pub(super) notify: Notify,
    /// The `@agtmux_daemon` value last published.
    pub(super) last_status: String,
    /// Republish every pane, not only those that changed.
    pub(super) all: bool,
    /// A remote host changed what the global summaries count: publish them.
    pub(super) remote_dirty: bool,
    /// The last state went back into the options after a restart (`restore_state`).
    pub(super) restored: bool,
}

impl Default for Publish {
    fn default() -> Publish {
        Publish {
            options: OptionsWriter::new(),
            style: Style::default(),
            notify: Notify::default(),
            last_status: String::new(),
            all: true,
            remote_dirty: false,
            restored: false,
        }
    }
}

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
        self.publish.notify.observe(&self.projection, &changed, now);
        let evidence: Vec<_> = (changed.iter())
            .filter_map(|id| Some((id.clone(), self.projection.panes.get(id)?.evidence())))
            .collect();
        self.health
            .ops
            .observe_changes(&evidence, &self.gateway.take_accepted(), now);
        if !changed.is_empty() {
            self.gateway.persist(&mut self.projection, &changed, now);
        }
        self.health.metrics.on_ingested(self.gateway.take_traced());
        self.update_source_health(now);
        let status = self.daemon_status();
        let remote_dirty = std::mem::take(&mut self.publish.remote_dirty);
        if changed.is_empty()
            && !self.publish.all
            && !remote_dirty
            && status == self.publish.last_status
        {
            self.api_push(&changed, now);
            self.observe_metrics(&changed, now_ms(), now);
            return;
        }
        self.publish.last_status = status.clone();
        publish::publish(
            &self.projection,
            &changed,
            self.publish.all,
            &self.publish.style,
            &status,
            &publish::Remote {
                views: self.sources.remotes.views(),
                unreachable: self.sources.remotes.unreachable(),
            },
            &mut self.publish.options,
        );
        self.publish.all = false;
        let cmds = self.publish.options.take();
        if !cmds.is_empty()
            && self.health.startup.is_ready(Stage::Daemon)
            && !self.health.startup.is_ready(Stage::Api)
            && self.health.startup.mark_ready(Stage::Api, now)
            && let Some(a) = self.api.server.as_mut()
        {
            a.ready = true;
        }
        if let Some(t) = self.tmux.client.as_mut() {
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
            && self
                .api
                .server
                .as_ref()
                .is_some_and(|a| a.subscribers() > 0))
        .then(now_ms);
        let hops = self.health.metrics.observe_published(
            &mut self.projection,
            changed,
            option_ts,
            client_ts,
        );
        self.gateway.record_hops(&hops);
        self.health.metrics.tick(
            self.gateway.counts,
            self.projection.bindings.churn(),
            &self.projection,
            now,
        );
    }
}
