//! The daemon's own health as the status line shows it: the hooks' spool write failure and
//! the `@agtmux_daemon` value (`<pid> ok|degraded|escalate <problems>`).
//!
//! WHY a module of its own: the status line must never lie about agtmux's health; what makes
//! it degraded or escalated is decided here only.
use super::Runtime;
use crate::core::types::{Health, SourceKind};
use crate::sys::clock::now_ms;

impl Runtime {
    /// Read the hooks' failure marker (one `open`, ENOENT when all is well); log changes.
    pub(super) fn check_hook_failure(&mut self) {
        let f = crate::sources::spool::read_failure(&self.sp);
        if f != self.hook_failure {
            match &f {
                Some(f) => log::error!(
                    "hook_spool_write_failed count={} error={:?} marker={}",
                    f.count,
                    f.error,
                    crate::sources::spool::failure_marker(&self.sp).display()
                ),
                None => log::warn!("hook_spool_write_recovered"),
            }
            self.hook_failure = f;
            self.publish_all = true;
        }
    }

    pub(super) fn daemon_status(&self) -> String {
        let mut s = format!("{} ok", std::process::id());
        let mut problems = Vec::new();
        if self.hook_failure.is_some() {
            problems.push("hooks:spool_write_failed".to_string());
        }
        if let Some(e) = self.gateway.store_problem() {
            problems.push(format!("store:{e}"));
        }
        if let Some(h) = self.codex.status_problem(&self.projection) {
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
        problems.extend(self.ops.status_problems());
        if self.tmux_sup.hold_until().is_some_and(|u| u > now_ms()) {
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
}
