//! The publish pass: re-resolve the panes that changed, persist them, and send option
//! changes to tmux and pane changes to API subscribers, then record the latencies.
//!
//! WHY a module of its own: it is the pipeline's last stage, the one place where resolved
//! state leaves the daemon.
use super::Runtime;
use crate::core::types::{Health, Millis, SourceKind};
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
        // Source health from the gateway feeds admissibility. Hooks that cannot write the
        // spool deliver nothing: the source is down even though the spool reads fine.
        let hh = if self.hook_failure.is_some() {
            Health::Down
        } else {
            self.gateway.hooks_health()
        };
        // The spool carries Claude and Codex hook events alike. Codex hooks, though, run
        // inside Codex's app-server daemon when there is one: with that daemon gone no Codex
        // hook will come either, so its last word must not outlive it.
        let codex_hooks = if hh == Health::Healthy
            && self.codex.ever_connected()
            && self.codex.status_problem(&self.projection).is_some()
        {
            Health::Stale
        } else {
            hh
        };
        let codex_changed = self
            .projection
            .set_health(SourceKind::CodexHooks, codex_hooks);
        // Gemini, OpenCode and generic hooks come through the same spool.
        let mut others_changed = false;
        for s in [
            SourceKind::GeminiHooks,
            SourceKind::OpenCodePlugin,
            SourceKind::GenericHook,
        ] {
            others_changed |= self.projection.set_health(s, hh);
        }
        if self.projection.set_health(SourceKind::ClaudeHooks, hh)
            || codex_changed
            || others_changed
        {
            log::warn!("source_health source=claude_hooks health={hh}");
            self.gateway.record_health(
                SourceKind::ClaudeHooks,
                hh,
                match (hh, self.hook_failure.is_some()) {
                    (Health::Healthy, _) => "spool_readable",
                    (_, true) => "spool_write_failed",
                    _ => "spool_unreadable",
                },
                now,
            );
            self.publish_all = true;
        }
        let files = self.transcripts.health();
        if self
            .projection
            .set_health(SourceKind::ClaudeTranscript, files)
        {
            self.publish_all = true;
        }
        // A rollout is written by the same Codex process that runs its hooks: it is no
        // fresher than they are (with the app-server daemon gone, neither speaks).
        let rollout = if files == Health::Healthy {
            codex_hooks
        } else {
            files
        };
        if self
            .projection
            .set_health(SourceKind::CodexRollout, rollout)
        {
            self.publish_all = true;
        }
        let status = self.daemon_status();
        if changed.is_empty() && !self.publish_all && status == self.last_status {
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
    fn observe_metrics(&mut self, changed: &[String], option_ts: Millis, now: Millis) {
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
