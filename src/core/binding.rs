//! C-011 binding registry (Flow-007): pane-first links between a pane instance
//! (`pane_id`, `generation`, `birth_ts`) and an agent session (`session_key`: Claude
//! `session_id`, Codex thread id).
//!
//! Why pane-first with generations: a pane outlives the agents in it. When the agent process in
//! a pane is replaced (different pid or provider), or the pane's session changes without a
//! `/clear`, the pane becomes a new instance (generation + 1), so state and events of the old
//! life can never be attributed to the new one. Claude `/clear` starts a new `session_id` in the
//! same process: the generation is kept.
//!
//! Rules:
//! - A session left behind (pane gone, agent replaced, session changed) is tombstoned for
//!   `tombstone_grace_ms` (default 10 min): late events for it are rejected with
//!   `tombstoned_session`, so a dying agent's last hooks cannot re-bind a pane. A session *start*
//!   (`BindOrigin::Start`, e.g. `claude --resume`) is a fresh claim and lifts the tombstone.
//! - One session_key is never bound to two live panes. A second claim is rejected
//!   (`session_bound_elsewhere`) while the first pane still has an agent process; if the first
//!   pane's agent is gone (or was never seen), the link moves explicitly (an unlink record with
//!   reason `moved`, then a link).
//! - Pane ids restart at `%0` with a new tmux server: `new_server()` forgets everything.
//! - Pane ids are never reused within one server, so binds to a gone pane are rejected.
//!
//! Every link/unlink is queued as a `LinkRecord` for `binding_link_v2`; `take_records()` drains
//! them. Churn counters feed metrics. Pure: `now` is passed in.
use super::types::{Millis, PaneId, PaneInstance, Provider};
use std::collections::HashMap;

/// Windows of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingConfig {
    /// How long a left-behind session (and a gone pane id) rejects late events.
    pub(crate) tombstone_grace_ms: Millis,
}

impl Default for BindingConfig {
    fn default() -> Self {
        BindingConfig {
            tombstone_grace_ms: 10 * 60 * 1000,
        }
    }
}

/// A pane became a new instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenerationBump {
    pub pane_id: PaneId,
    pub old: PaneInstance,
    pub new: PaneInstance,
    /// The session that was linked to the old instance (now tombstoned).
    pub(crate) old_session: Option<String>,
    /// key=value reason for the log.
    pub reason: String,
}

/// Where a bind request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindOrigin {
    /// Any event that names a session and a pane.
    Event,
    /// A session start (Claude SessionStart startup/resume, Codex thread start): may revive a
    /// tombstoned session.
    Start,
    /// Claude SessionStart `source=clear`: a new session in the same process, same generation.
    Clear,
}

/// The result of a bind request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    Linked,
    Unchanged,
    Rebound { old_session: String },
    Rejected { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Link,
    Unlink,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Link => "link",
            LinkAction::Unlink => "unlink",
        }
    }
}

/// One row for `binding_link_v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkRecord {
    pub instance: PaneInstance,
    pub session_key: String,
    pub provider: Provider,
    pub(crate) action: LinkAction,
    /// `bind`, `clear`, `session_change`, `generation_bump`, `pane_gone`, `moved`, `new_server`.
    pub reason: &'static str,
    pub ts: Millis,
}

/// Churn counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Churn {
    pub links: u64,
    pub rebinds: u64,
    pub moves: u64,
    pub(crate) tombstones: u64,
    pub rejects: u64,
    pub(crate) generation_bumps: u64,
}

/// A left-behind session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub session_key: String,
    pub instance: PaneInstance,
    pub at: Millis,
}

#[derive(Debug, Clone)]
struct PaneEntry {
    instance: PaneInstance,
    agent: Option<(Provider, u32)>,
    last_agent: Option<(Provider, u32)>,
    session: Option<(String, Provider)>,
}

/// The registry for one tmux server.
#[derive(Debug, Clone, Default)]
pub struct BindingRegistry {
    cfg: BindingConfig,
    panes: HashMap<PaneId, PaneEntry>,
    by_session: HashMap<String, PaneId>,
    tombstones: HashMap<String, Tombstone>,
    gone_panes: HashMap<PaneId, Millis>,
    records: Vec<LinkRecord>,
    churn: Churn,
}

const MAX_SESSION_KEY: usize = 256;

fn valid_session_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_SESSION_KEY
        && !k.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl BindingRegistry {
    pub fn new(cfg: BindingConfig) -> Self {
        BindingRegistry {
            cfg,
            ..Default::default()
        }
    }

    fn new_entry(pane_id: &PaneId, now: Millis) -> PaneEntry {
        PaneEntry {
            instance: PaneInstance {
                pane_id: pane_id.clone(),
                generation: 1,
                birth_ts: now,
            },
            agent: None,
            last_agent: None,
            session: None,
        }
    }

    fn record(
        &mut self,
        instance: &PaneInstance,
        key: &str,
        provider: Provider,
        action: LinkAction,
        reason: &'static str,
        ts: Millis,
    ) {
        self.records.push(LinkRecord {
            instance: instance.clone(),
            session_key: key.into(),
            provider,
            action,
            reason,
            ts,
        });
    }

    fn tombstone(&mut self, key: &str, instance: &PaneInstance, now: Millis) {
        self.churn.tombstones += 1;
        self.tombstones.insert(
            key.into(),
            Tombstone {
                session_key: key.into(),
                instance: instance.clone(),
                at: now,
            },
        );
    }

    /// Unlink the pane's session (if any), tombstone it, and return it.
    fn retire_session(
        &mut self,
        pane_id: &PaneId,
        reason: &'static str,
        now: Millis,
    ) -> Option<String> {
        let entry = self.panes.get_mut(pane_id)?;
        let (key, provider) = entry.session.take()?;
        let instance = entry.instance.clone();
        self.by_session.remove(&key);
        self.record(&instance, &key, provider, LinkAction::Unlink, reason, now);
        self.tombstone(&key, &instance, now);
        Some(key)
    }

    fn bump(
        &mut self,
        pane_id: &PaneId,
        reason: String,
        session_reason: &'static str,
        now: Millis,
    ) -> Option<GenerationBump> {
        let old_session = self.retire_session(pane_id, session_reason, now);
        let entry = self.panes.get_mut(pane_id)?;
        let old = entry.instance.clone();
        entry.instance = PaneInstance {
            pane_id: pane_id.clone(),
            generation: old.generation.saturating_add(1),
            birth_ts: now,
        };
        self.churn.generation_bumps += 1;
        Some(GenerationBump {
            pane_id: pane_id.clone(),
            new: entry.instance.clone(),
            old,
            old_session,
            reason,
        })
    }

    /// Feed the process hint of a pane: the agent process in its tree (provider, pid) or none.
    /// Returns a bump when the agent was replaced by a different agent process.
    pub(crate) fn observe_process(
        &mut self,
        pane_id: &PaneId,
        agent: Option<(Provider, u32)>,
        now: Millis,
    ) -> Option<GenerationBump> {
        if self.gone_panes.contains_key(pane_id) {
            return None;
        }
        let entry = self
            .panes
            .entry(pane_id.clone())
            .or_insert_with(|| Self::new_entry(pane_id, now));
        entry.agent = agent;
        let new = agent?;
        let prev = entry.last_agent.replace(new);
        match prev {
            Some(old) if old != new => self.bump(
                pane_id,
                format!(
                    "agent_replaced old={}:{} new={}:{}",
                    old.0, old.1, new.0, new.1
                ),
                "generation_bump",
                now,
            ),
            _ => None,
        }
    }

    /// Bind `session_key` to the pane from an ordinary event (`is_clear`: Claude SessionStart
    /// `source=clear`, which keeps the generation).
    pub fn bind(
        &mut self,
        pane_id: &PaneId,
        session_key: &str,
        provider: Provider,
        is_clear: bool,
        now: Millis,
    ) -> BindOutcome {
        let origin = if is_clear {
            BindOrigin::Clear
        } else {
            BindOrigin::Event
        };
        self.bind_with(pane_id, session_key, provider, origin, now)
    }

    fn reject(&mut self, reason: String) -> BindOutcome {
        self.churn.rejects += 1;
        BindOutcome::Rejected { reason }
    }

    /// Bind with an explicit origin (see `BindOrigin`).
    pub(crate) fn bind_with(
        &mut self,
        pane_id: &PaneId,
        session_key: &str,
        provider: Provider,
        origin: BindOrigin,
        now: Millis,
    ) -> BindOutcome {
        if !valid_session_key(session_key) {
            return self.reject("invalid_session_key".into());
        }
        self.purge(now);
        if self.gone_panes.contains_key(pane_id) {
            return self.reject("pane_gone".into());
        }
        if self.tombstones.contains_key(session_key) {
            if origin == BindOrigin::Start {
                self.tombstones.remove(session_key);
            } else {
                return self.reject("tombstoned_session".into());
            }
        }
        if let Some((p, _)) = self.panes.get(pane_id).and_then(|e| e.agent)
            && p != provider
        {
            return self.reject(format!("provider_mismatch pane_agent={p} event={provider}"));
        }
        if let Some(other) = self.by_session.get(session_key).cloned()
            && other != *pane_id
        {
            let other_live = self.panes.get(&other).is_some_and(|e| e.agent.is_some());
            if other_live {
                return self.reject(format!("session_bound_elsewhere pane={other}"));
            }
            // The first pane's agent is gone: move the link explicitly.
            if let Some(e) = self.panes.get_mut(&other)
                && let Some((k, p)) = e.session.take()
            {
                let inst = e.instance.clone();
                self.record(&inst, &k, p, LinkAction::Unlink, "moved", now);
            }
            self.by_session.remove(session_key);
            self.churn.moves += 1;
        }
        let entry = self
            .panes
            .entry(pane_id.clone())
            .or_insert_with(|| Self::new_entry(pane_id, now));
        let outcome = match entry.session.clone() {
            Some((k, _)) if k == session_key => return BindOutcome::Unchanged,
            None => BindOutcome::Linked,
            Some((old, _)) => {
                if origin == BindOrigin::Clear {
                    self.retire_session(pane_id, "clear", now);
                } else {
                    self.bump(
                        pane_id,
                        format!("session_change old={old} new={session_key}"),
                        "session_change",
                        now,
                    );
                }
                self.churn.rebinds += 1;
                BindOutcome::Rebound { old_session: old }
            }
        };
        if let Some(e) = self.panes.get_mut(pane_id) {
            e.session = Some((session_key.to_string(), provider));
            let inst = e.instance.clone();
            self.by_session.insert(session_key.into(), pane_id.clone());
            self.record(&inst, session_key, provider, LinkAction::Link, "bind", now);
            self.churn.links += 1;
        }
        outcome
    }

    /// May an event of `session_key` be applied? (For events that do not bind, e.g. Codex
    /// events bound by other means.) `Err` carries the reject reason.
    pub fn check_session(&self, session_key: &str, now: Millis) -> Result<(), String> {
        if !valid_session_key(session_key) {
            return Err("invalid_session_key".into());
        }
        if self.is_tombstoned(session_key, now) {
            return Err("tombstoned_session".into());
        }
        Ok(())
    }

    /// True while `session_key` is in its tombstone grace period.
    pub fn is_tombstoned(&self, session_key: &str, now: Millis) -> bool {
        self.tombstones
            .get(session_key)
            .is_some_and(|t| now - t.at < self.cfg.tombstone_grace_ms)
    }

    /// The pane is gone (not in `list-panes` any more): forget it, tombstone its session.
    pub(crate) fn pane_gone(&mut self, pane_id: &PaneId, now: Millis) -> Option<PaneInstance> {
        self.retire_session(pane_id, "pane_gone", now);
        let e = self.panes.remove(pane_id)?;
        self.gone_panes.insert(pane_id.clone(), now);
        Some(e.instance)
    }

    /// A new tmux server: pane ids restart at `%0`. Unlinks everything (records kept for the
    /// store); churn counters survive.
    pub fn new_server(&mut self, now: Millis) {
        let mut links: Vec<(PaneInstance, String, Provider)> = self
            .panes
            .values()
            .filter_map(|e| {
                e.session
                    .as_ref()
                    .map(|(k, p)| (e.instance.clone(), k.clone(), *p))
            })
            .collect();
        links.sort_by(|a, b| a.0.pane_id.cmp(&b.0.pane_id));
        for (inst, k, p) in links {
            self.record(&inst, &k, p, LinkAction::Unlink, "new_server", now);
        }
        self.panes.clear();
        self.by_session.clear();
        self.tombstones.clear();
        self.gone_panes.clear();
    }

    /// Drop tombstones and gone pane ids past the grace period.
    pub(crate) fn purge(&mut self, now: Millis) {
        let grace = self.cfg.tombstone_grace_ms;
        self.tombstones.retain(|_, t| now - t.at < grace);
        self.gone_panes.retain(|_, at| now - *at < grace);
    }

    pub fn session_for(&self, pane_id: &PaneId) -> Option<&str> {
        self.panes
            .get(pane_id)?
            .session
            .as_ref()
            .map(|(k, _)| k.as_str())
    }

    pub fn pane_for(&self, session_key: &str) -> Option<&PaneId> {
        self.by_session.get(session_key)
    }

    pub fn instance(&self, pane_id: &PaneId) -> Option<&PaneInstance> {
        self.panes.get(pane_id).map(|e| &e.instance)
    }

    /// The agent process last reported for the pane.
    pub fn agent(&self, pane_id: &PaneId) -> Option<(Provider, u32)> {
        self.panes.get(pane_id)?.agent
    }

    pub fn tombstone_of(&self, session_key: &str) -> Option<&Tombstone> {
        self.tombstones.get(session_key)
    }

    pub fn churn(&self) -> Churn {
        self.churn
    }

    /// Link/unlink records since the last call, in order.
    pub(crate) fn take_records(&mut self) -> Vec<LinkRecord> {
        std::mem::take(&mut self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Provider::*;

    fn reg() -> BindingRegistry {
        BindingRegistry::new(BindingConfig::default())
    }

    fn rejected(o: &BindOutcome) -> &str {
        match o {
            BindOutcome::Rejected { reason } => reason,
            _ => "",
        }
    }

    #[test]
    fn first_bind_links_and_repeats_are_unchanged() {
        let mut r = reg();
        assert_eq!(
            r.observe_process(&"%1".into(), Some((Claude, 100)), 0),
            None
        );
        assert_eq!(
            r.bind(&"%1".into(), "s1", Claude, false, 10),
            BindOutcome::Linked
        );
        assert_eq!(
            r.bind(&"%1".into(), "s1", Claude, false, 20),
            BindOutcome::Unchanged
        );
        assert_eq!(r.session_for(&"%1".into()), Some("s1"));
        assert_eq!(r.pane_for("s1").map(|p| p.as_str()), Some("%1"));
        let recs = r.take_records();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            (recs[0].action, recs[0].reason, recs[0].instance.generation),
            (LinkAction::Link, "bind", 1)
        );
        assert!(r.take_records().is_empty());
    }

    #[test]
    fn agent_replacement_bumps_the_generation_and_tombstones() {
        let mut r = reg();
        r.observe_process(&"%1".into(), Some((Claude, 100)), 0);
        r.bind(&"%1".into(), "s1", Claude, false, 10);
        // Same process again: nothing.
        assert_eq!(
            r.observe_process(&"%1".into(), Some((Claude, 100)), 20),
            None
        );
        // Claude exits, the shell is back: no bump yet.
        assert_eq!(r.observe_process(&"%1".into(), None, 30), None);
        // A new claude process: new instance, old session tombstoned.
        let b = r
            .observe_process(&"%1".into(), Some((Claude, 200)), 40)
            .unwrap_or_else(|| panic!("bump"));
        assert_eq!(
            (b.old.generation, b.new.generation, b.new.birth_ts),
            (1, 2, 40)
        );
        assert_eq!(b.old_session.as_deref(), Some("s1"));
        assert_eq!(r.session_for(&"%1".into()), None);
        // A late event of the old session is rejected.
        let o = r.bind(&"%1".into(), "s1", Claude, false, 50);
        assert_eq!(rejected(&o), "tombstoned_session");
        assert_eq!(
            r.bind(&"%1".into(), "s2", Claude, false, 60),
            BindOutcome::Linked
        );
        assert_eq!(r.instance(&"%1".into()).map(|i| i.generation), Some(2));
        // Provider change in the same pane bumps too.
        let b = r
            .observe_process(&"%1".into(), Some((Codex, 200)), 70)
            .unwrap_or_else(|| panic!("bump"));
        assert_eq!(b.new.generation, 3);
        let c = r.churn();
        assert_eq!((c.generation_bumps, c.tombstones, c.rejects), (2, 2, 1));
    }

    #[test]
    fn clear_keeps_the_generation_other_changes_bump() {
        let mut r = reg();
        r.observe_process(&"%1".into(), Some((Claude, 100)), 0);
        r.bind(&"%1".into(), "s1", Claude, false, 10);
        let o = r.bind(&"%1".into(), "s2", Claude, true, 20);
        assert_eq!(
            o,
            BindOutcome::Rebound {
                old_session: "s1".into()
            }
        );
        assert_eq!(r.instance(&"%1".into()).map(|i| i.generation), Some(1));
        // Late events of s1 cannot win the pane back.
        assert_eq!(
            rejected(&r.bind(&"%1".into(), "s1", Claude, false, 30)),
            "tombstoned_session"
        );
        // A session change without /clear is a new instance.
        let o = r.bind(&"%1".into(), "s3", Claude, false, 40);
        assert_eq!(
            o,
            BindOutcome::Rebound {
                old_session: "s2".into()
            }
        );
        assert_eq!(
            r.instance(&"%1".into()).map(|i| (i.generation, i.birth_ts)),
            Some((2, 40))
        );
        let recs = r.take_records();
        let kinds: Vec<(&str, &str, &str)> = recs
            .iter()
            .map(|x| (x.action.as_str(), x.session_key.as_str(), x.reason))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("link", "s1", "bind"),
                ("unlink", "s1", "clear"),
                ("link", "s2", "bind"),
                ("unlink", "s2", "session_change"),
                ("link", "s3", "bind"),
            ]
        );
        assert_eq!(r.churn().rebinds, 2);
    }

    #[test]
    fn tombstones_expire_and_resume_revives() {
        let mut r = reg();
        r.observe_process(&"%1".into(), Some((Claude, 100)), 0);
        r.bind(&"%1".into(), "s1", Claude, false, 0);
        assert!(r.pane_gone(&"%1".into(), 1000).is_some());
        assert!(r.is_tombstoned("s1", 1000));
        assert_eq!(
            r.check_session("s1", 2000),
            Err("tombstoned_session".into())
        );
        // A late event naming the gone pane.
        assert_eq!(
            rejected(&r.bind(&"%1".into(), "s1", Claude, false, 2000)),
            "pane_gone"
        );
        // In another pane, within the grace: rejected; a resume start: allowed.
        r.observe_process(&"%2".into(), Some((Claude, 300)), 3000);
        assert_eq!(
            rejected(&r.bind(&"%2".into(), "s1", Claude, false, 3000)),
            "tombstoned_session"
        );
        assert_eq!(
            r.bind_with(&"%2".into(), "s1", Claude, BindOrigin::Start, 4000),
            BindOutcome::Linked
        );
        // After the grace a tombstone no longer rejects.
        r.bind(&"%2".into(), "s9", Claude, true, 5000);
        assert!(r.is_tombstoned("s1", 5000 + 599_999));
        assert!(!r.is_tombstoned("s1", 5000 + 600_000));
        assert_eq!(r.check_session("s1", 5000 + 600_000), Ok(()));
    }

    #[test]
    fn one_session_never_binds_two_live_panes() {
        let mut r = reg();
        r.observe_process(&"%1".into(), Some((Claude, 100)), 0);
        r.observe_process(&"%2".into(), Some((Claude, 200)), 0);
        r.bind(&"%1".into(), "s1", Claude, false, 10);
        let o = r.bind(&"%2".into(), "s1", Claude, false, 20);
        assert_eq!(rejected(&o), "session_bound_elsewhere pane=%1");
        assert_eq!(r.pane_for("s1").map(|p| p.as_str()), Some("%1"));
        // The first pane's agent exits: the claim moves explicitly.
        r.observe_process(&"%1".into(), None, 30);
        assert_eq!(
            r.bind(&"%2".into(), "s1", Claude, false, 40),
            BindOutcome::Linked
        );
        assert_eq!(r.pane_for("s1").map(|p| p.as_str()), Some("%2"));
        assert_eq!(r.session_for(&"%1".into()), None);
        let recs = r.take_records();
        assert!(recs.iter().any(|x| x.action == LinkAction::Unlink
            && x.reason == "moved"
            && x.instance.pane_id == "%1"));
        assert_eq!(r.churn().moves, 1);
    }

    #[test]
    fn bad_input_is_rejected_with_a_reason() {
        let mut r = reg();
        // A malformed pane id cannot reach the registry: it takes a parsed `PaneId`.
        let table = [
            ("%1", "", "invalid_session_key"),
            ("%1", "a b", "invalid_session_key"),
            ("%1", "a\nb", "invalid_session_key"),
        ];
        for (p, k, want) in table {
            assert_eq!(
                rejected(&r.bind(&p.into(), k, Claude, false, 0)),
                want,
                "{p:?} {k:?}"
            );
        }
        let long = "x".repeat(300);
        assert_eq!(
            rejected(&r.bind(&"%1".into(), &long, Claude, false, 0)),
            "invalid_session_key"
        );
        r.observe_process(&"%3".into(), Some((Codex, 5)), 0);
        assert!(
            rejected(&r.bind(&"%3".into(), "s", Claude, false, 0)).starts_with("provider_mismatch")
        );
    }

    #[test]
    fn new_server_resets_everything() {
        let mut r = reg();
        r.observe_process(&"%0".into(), Some((Claude, 100)), 0);
        r.bind(&"%0".into(), "s1", Claude, false, 0);
        r.pane_gone(&"%0".into(), 10);
        r.observe_process(&"%1".into(), Some((Codex, 101)), 0);
        r.bind(&"%1".into(), "t1", Codex, false, 0);
        r.take_records();
        r.new_server(100);
        let recs = r.take_records();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            (recs[0].reason, recs[0].session_key.as_str()),
            ("new_server", "t1")
        );
        // %0 is a new pane in the new server, s1 is no longer tombstoned.
        assert_eq!(r.session_for(&"%1".into()), None);
        assert_eq!(
            r.observe_process(&"%0".into(), Some((Claude, 900)), 200),
            None
        );
        assert_eq!(r.instance(&"%0".into()).map(|i| i.generation), Some(1));
        assert_eq!(
            r.bind(&"%0".into(), "s1", Claude, false, 200),
            BindOutcome::Linked
        );
    }

    #[test]
    fn bind_before_process_scan_then_process_does_not_bump() {
        let mut r = reg();
        assert_eq!(
            r.bind(&"%4".into(), "s1", Claude, false, 0),
            BindOutcome::Linked
        );
        assert_eq!(r.observe_process(&"%4".into(), Some((Claude, 77)), 5), None);
        assert_eq!(r.session_for(&"%4".into()), Some("s1"));
    }
}
