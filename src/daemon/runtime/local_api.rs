//! The runtime's side of the local API (C-002, `daemon/api/`): the read-only view lent to
//! each call, the trust material lent for `source.*` calls, pushes to subscribers, and the
//! per-step upkeep (closed source connections, supervision numbers for `health`/`metrics`).
//!
//! WHY a module of its own: the API server owns no runtime state; this is where the runtime
//! lends it what it reads, in one place.
use super::Runtime;
use crate::core::types::Millis;
use crate::daemon::api;
use crate::supervisor::Stage;
use crate::sys::clock::now_ms;

impl Runtime {
    /// Per-step supervision upkeep: source registry timeouts and the numbers `health` and
    /// `metrics` show (supervisor, delivery, source registry).
    pub(super) fn supervise_tick(&mut self, now: Millis) {
        let adm = &mut self.admission;
        // Source connections gone from the API socket: their endpoints are unreachable now.
        if let Some(a) = self.api.as_mut() {
            for c in a.take_closed() {
                if let Some(sid) = c.source_id.as_deref() {
                    adm.registry.mark_stale(sid, "connection_closed", now);
                }
                adm.traces.close(c.conn, &c.why, now);
            }
        }
        adm.registry.tick(now);
        let Some(a) = self.api.as_mut() else {
            return;
        };
        a.tick(self.poll.registry(), adm, now);
        let registry = adm.registry.json();
        a.waiting_for = self.startup.waiting_for().map(Stage::as_str).unwrap_or("");
        let codex = &self.codex.endpoint.sup;
        a.extra.insert(
            "supervisor".into(),
            serde_json::json!({
                "startup": self.startup.json(),
                "components": {
                    "tmux_control": self.tmux_sup.json(),
                    "codex_appserver": self.codex.endpoint.json(self.codex.sock_path()),
                },
                "restarts": self.tmux_sup.restarts + codex.restarts,
                "hold_downs": self.tmux_sup.hold_downs + codex.hold_downs,
            }),
        );
        a.extra
            .insert("delivery".into(), self.gateway.delivery_json(now));
        a.extra.insert("store".into(), self.gateway.store_json());
        a.extra.insert("source_registry".into(), registry);
        if !self.remotes.hosts.is_empty() {
            a.extra.insert("remotes".into(), self.remotes.health_json());
        }
    }

    fn api_view(&self, now: Millis) -> api::View<'_> {
        api::View {
            projection: &self.projection,
            registry: &self.registry,
            style: &self.style,
            identity: self.identity.as_deref(),
            socket: &self.sp.socket,
            tmux_connected: self.tmux.as_ref().is_some_and(|t| t.is_ready()),
            store_problem: self.gateway.store_problem(),
            metrics: Some(&self.metrics),
            ingest_counts: self.gateway.counts,
            delivery: Some(self.gateway.delivery()),
            ops: Some(&self.ops),
            remotes: (!self.remotes.hosts.is_empty()).then_some(&self.remotes_json),
            now,
        }
    }

    pub(super) fn on_api(&mut self, ev: &mio::event::Event) {
        if let Some(mut a) = self.api.take() {
            // Lend the trust material for the call (the view borrows the rest of self).
            let placeholder = api::Admission {
                runtime_uid: self.admission.runtime_uid,
                nonce: String::new(),
                registry: crate::daemon::admission::SourceRegistry::empty(),
                traces: Default::default(),
            };
            let mut adm = std::mem::replace(&mut self.admission, placeholder);
            a.on_event(ev, self.poll.registry(), &self.api_view(now_ms()), &mut adm);
            self.admission = adm;
            self.api = Some(a);
        }
    }

    /// Another turn for API clients with requests left (round robin, see `api/mod.rs`).
    pub(super) fn api_service_pending(&mut self, now: Millis) {
        if !self.api.as_ref().is_some_and(|a| a.has_pending()) {
            if let Some(a) = self.api.as_mut() {
                a.new_pass();
            }
            return;
        }
        if let Some(mut a) = self.api.take() {
            let placeholder = api::Admission {
                runtime_uid: self.admission.runtime_uid,
                nonce: String::new(),
                registry: crate::daemon::admission::SourceRegistry::empty(),
                traces: Default::default(),
            };
            let mut adm = std::mem::replace(&mut self.admission, placeholder);
            a.service_pending(self.poll.registry(), &self.api_view(now), &mut adm);
            self.admission = adm;
            self.api = Some(a);
        }
    }

    pub(super) fn api_push(&mut self, changed: &[String], now: Millis) {
        if let Some(mut a) = self.api.take() {
            a.push_changes(changed, self.poll.registry(), &self.api_view(now));
            self.api = Some(a);
        }
    }
}
