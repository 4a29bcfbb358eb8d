//! The remote hosts' part of the loop (issue 24, `daemon::remote`): what their streams changed
//! goes to API subscribers (one `remote_host` push per changed host) and into the global
//! summaries at the next publish.
//!
//! WHY a module of its own: a wake-up whose only news is remote stream lines runs no pipeline
//! pass, only this, so following many hosts costs what their changing panes cost.
use super::Runtime;
use crate::core::types::Millis;

impl Runtime {
    /// What the remote streams changed: their `list` entries (pushed to subscribers) and,
    /// at the next publish, the global summaries.
    pub(super) fn remote_changes(&mut self, now: Millis) {
        // New remote attention goes to the notifier (decided with the local panes' batch).
        for (key, kind) in self.sources.remotes.take_attention() {
            self.publish.notify.remote_attention(key, kind, now);
        }
        // Panes the remotes no longer have leave the notifier's memory too.
        for key in self.sources.remotes.take_gone() {
            self.publish.notify.forget_key(&key);
        }
        if !self.sources.remotes.take_dirty() {
            return;
        }
        // Only the global summaries change: no pass over every local pane.
        self.publish.remote_dirty = true;
        let changed = self
            .sources
            .remotes
            .refresh_json(&mut self.sources.remotes_json);
        if let Some(a) = self.api.server.as_mut() {
            for v in changed {
                let line = serde_json::json!({"v": 1, "event": "remote_host", "host": v});
                a.push_line(&line.to_string(), self.poll.registry());
            }
        }
    }

    /// A wake-up whose only news came from remote streams: publish what they changed, no
    /// pipeline pass (their cost grows with the remote panes that change, issue 24).
    pub(super) fn remote_pass(&mut self, now: Millis) {
        self.remote_changes(now);
        if self.publish.remote_dirty {
            self.resolve_and_publish(now);
            self.flush_tmux();
        }
    }
}
