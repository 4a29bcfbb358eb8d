//! The daemon's own health as the status line shows it: the hooks' spool write failure, each
//! source's health, and the `@agtmux_daemon` value (`<pid> ok|degraded|escalate <problems>`).
//!
//! WHY a module of its own: the status line must never lie about agtmux's health; what makes
//! it degraded or escalated is decided here only.
use super::Runtime;
use crate::core::types::{Health, Millis, SourceKind};
use crate::daemon::metrics::Metrics;
use crate::daemon::ops::Ops;
use crate::sources::spool::HookFailure;
use crate::supervisor::Startup;
use crate::sys::clock::now_ms;

/// What the daemon knows of its own health: start stages, guardrails, metrics, and the hooks'
/// spool write failure.
pub(super) struct SelfHealth {
    /// Flow-011: the start stages, each gating the next.
    pub(super) startup: Startup,
    /// C-013: SLO guardrails and Flow-010 snapshots.
    pub(super) ops: Ops,
    /// Rolling-window metrics and event traces (daemon::metrics).
    pub(super) metrics: Metrics,
    /// The hooks' spool write failure (`sources::spool::record_failure`), while it stands.
    pub(super) hook_failure: Option<HookFailure>,
}

impl Runtime {
    /// Read the hooks' failure marker (one `open`, ENOENT when all is well); log changes.
    pub(super) fn check_hook_failure(&mut self) {
        let f = crate::sources::spool::read_failure(&self.sp);
        if f != self.health.hook_failure {
            match &f {
                Some(f) => log::error!(
                    "hook_spool_write_failed count={} error={:?} marker={}",
                    f.count,
                    f.error,
                    crate::sources::spool::failure_marker(&self.sp).display()
                ),
                None => log::warn!("hook_spool_write_recovered"),
            }
            self.health.hook_failure = f;
            self.publish.all = true;
        }
    }

    pub(super) fn daemon_status(&self) -> String {
        let mut s = format!("{} ok", std::process::id());
        let mut problems = Vec::new();
        if self.health.hook_failure.is_some() {
            problems.push("hooks:spool_write_failed".to_string());
        }
        if let Some(e) = self.gateway.store_problem() {
            problems.push(format!("store:{e}"));
        }
        if let Some(h) = self.sources.codex.status_problem(&self.projection) {
            problems.push(format!("{}:{h}", SourceKind::CodexAppServer));
        }
        for (src, h) in &self.projection.health {
            // The app-server is reported by daemon::codex: absent Codex is not a fault.
            if *src == SourceKind::CodexAppServer {
                continue;
            }
            if *h != Health::Healthy {
                problems.push(format!("{src}:{h}"));
            }
        }
        problems.extend(self.health.ops.status_problems());
        if self.tmux.sup.hold_until().is_some_and(|u| u > now_ms()) {
            problems.push("tmux_control:hold_down".to_string());
        }
        let escalate = problems
            .iter()
            .any(|p| p.ends_with(":hold_down") || p.ends_with("=escalate"));
        if let Some(d) = self.gateway.delivery_problem() {
            problems.push(d);
        }
        if escalate {
            problems.sort();
            return format!("{} escalate {}", std::process::id(), problems.join(","));
        }
        if !problems.is_empty() {
            problems.sort();
            s = format!("{} degraded {}", std::process::id(), problems.join(","));
        }
        s
    }

    /// Each source's health from what the gateway, the hooks' failure marker, the Codex link
    /// and the transcript watch say; a change republishes everything.
    pub(super) fn update_source_health(&mut self, now: Millis) {
        // Source health from the gateway feeds admissibility. Hooks that cannot write the
        // spool deliver nothing: the source is down even though the spool reads fine.
        let hh = if self.health.hook_failure.is_some() {
            Health::Down
        } else {
            self.gateway.hooks_health()
        };
        // The spool carries Claude and Codex hook events alike. Codex hooks, though, run
        // inside Codex's app-server daemon when there is one: with that daemon gone no Codex
        // hook will come either, so its last word must not outlive it.
        let codex_hooks = if hh == Health::Healthy
            && self.sources.codex.ever_connected()
            && self
                .sources
                .codex
                .status_problem(&self.projection)
                .is_some()
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
                match (hh, self.health.hook_failure.is_some()) {
                    (Health::Healthy, _) => "spool_readable",
                    (_, true) => "spool_write_failed",
                    _ => "spool_unreadable",
                },
                now,
            );
            self.publish.all = true;
        }
        let files = self.sources.transcripts.health();
        if self
            .projection
            .set_health(SourceKind::ClaudeTranscript, files)
        {
            self.publish.all = true;
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
            self.publish.all = true;
        }
    }
}
