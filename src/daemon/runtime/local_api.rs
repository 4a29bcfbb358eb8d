//! The runtime's side of the local API (C-002, `daemon/api/`): the read-only view lent to
//! each call, the trust material lent for `source.*` calls, pushes to subscribers, and the
//! per-step upkeep (closed source connections, supervision numbers for `health`/`metrics`).
//!
//! WHY a module of its own: the API server owns no runtime state; this is where the runtime
//! lends it what it reads, in one place.
use super::Runtime;
use crate::core::types::{Millis, PaneId};
use crate::daemon::api;
use crate::supervisor::Stage;
use crate::sys::clock::now_ms;

/// The local API server (C-002) and the trust material lent to it per call.
pub(super) struct LocalApi {
    /// `None` when its socket could not be bound.
    pub(super) server: Option<api::ApiServer>,
    /// Flow-009/013 trust material: runtime nonce, source registry (C-014), connection
    /// traces. The Codex endpoint uses the same registry.
    pub(super) admission: api::Admission,
}

impl Runtime {
    /// Per-step supervision upkeep: source registry timeouts and the numbers `health` and
    /// `metrics` show (supervisor, delivery, source registry).
    pub(super) fn supervise_tick(&mut self, now: Millis) {
        let adm = &mut self.api.admission;
        // Source connections gone from the API socket: their endpoints are unreachable now.
        if let Some(a) = self.api.server.as_mut() {
            for c in a.take_closed() {
                if let Some(sid) = c.source_id.as_deref() {
                    adm.registry.mark_stale(sid, "connection_closed", now);
                }
                adm.traces.close(c.conn, &c.why, now);
            }
        }
        adm.registry.tick(now);
        let Some(a) = self.api.server.as_mut() else {
            return;
        };
        a.tick(self.poll.registry(), adm, now);
        let registry = adm.registry.json();
        a.waiting_for = self
            .health
            .startup
            .waiting_for()
            .map(Stage::as_str)
            .unwrap_or("");
        let codex = &self.sources.codex.endpoint.sup;
        a.extra.insert(
            "supervisor".into(),
            serde_json::json!({
                "startup": self.health.startup.json(),
                "components": {
                    "tmux_control": self.tmux.sup.json(),
                    "codex_appserver": self.sources.codex.endpoint.json(self.sources.codex.sock_path()),
                },
                "restarts": self.tmux.sup.restarts + codex.restarts,
                "hold_downs": self.tmux.sup.hold_downs + codex.hold_downs,
            }),
        );
        a.extra
            .insert("delivery".into(), self.gateway.delivery_json(now));
        a.extra.insert("store".into(), self.gateway.store_json());
        a.extra.insert("source_registry".into(), registry);
        if !self.sources.remotes.hosts.is_empty() {
            a.extra
                .insert("remotes".into(), self.sources.remotes.health_json());
        }
    }

    fn api_view(&self, now: Millis) -> api::View<'_> {
        api::View {
            projection: &self.projection,
            registry: &self.registry,
            style: &self.publish.style,
            identity: self.tmux.identity.as_deref(),
            socket: &self.sp.socket,
            tmux_connected: self.tmux.is_ready(),
            store_problem: self.gateway.store_problem(),
            metrics: Some(&self.health.metrics),
            ingest_counts: self.gateway.counts,
            delivery: Some(self.gateway.delivery()),
            ops: Some(&self.health.ops),
            remotes: (!self.sources.remotes.hosts.is_empty()).then_some(&self.sources.remotes_json),
            now,
        }
    }

    /// Takes the trust material out for an API call (the view borrows the rest of self), an
    /// empty placeholder in its place; the caller puts it back after the call.
    fn lend_admission(&mut self) -> api::Admission {
        let placeholder = api::Admission {
            runtime_uid: self.api.admission.runtime_uid,
            nonce: String::new(),
            registry: crate::daemon::admission::SourceRegistry::empty(),
            traces: Default::default(),
        };
        std::mem::replace(&mut self.api.admission, placeholder)
    }

    pub(super) fn on_api(&mut self, ev: &mio::event::Event) {
        if let Some(mut a) = self.api.server.take() {
            let mut adm = self.lend_admission();
            a.on_event(ev, self.poll.registry(), &self.api_view(now_ms()), &mut adm);
            self.api.admission = adm;
            self.api.server = Some(a);
        }
    }

    /// Another turn for API clients with requests left (round robin, see `api/mod.rs`).
    pub(super) fn api_service_pending(&mut self, now: Millis) {
        if !self.api.server.as_ref().is_some_and(|a| a.has_pending()) {
            if let Some(a) = self.api.server.as_mut() {
                a.new_pass();
            }
            return;
        }
        if let Some(mut a) = self.api.server.take() {
            let mut adm = self.lend_admission();
            a.service_pending(self.poll.registry(), &self.api_view(now), &mut adm);
            self.api.admission = adm;
            self.api.server = Some(a);
        }
    }

    pub(super) fn api_push(&mut self, changed: &[PaneId], now: Millis) {
        if let Some(mut a) = self.api.server.take() {
            a.push_changes(changed, self.poll.registry(), &self.api_view(now));
            self.api.server = Some(a);
        }
    }
}
