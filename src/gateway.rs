//! C-003 `agtmux-gateway`: pulls batches from the sources after their committed cursors,
//! dedups them, appends every item (accepted, ignored with reason, rejected with reason) to
//! `events_raw_v2`, lets the projection apply the accepted ones, and only then commits the
//! cursor, in the same SQLite transaction. A crash anywhere replays from the committed cursor;
//! the unique event id makes the replay a no-op. That is at-least-once delivery with an
//! exactly-once effect.
//!
//! When the store is unavailable (locked, read-only, deleted, corrupt) the gateway keeps going
//! from memory: events still reach the projection, dedup falls back to an in-memory window,
//! and the problem is shown in `@agtmux_daemon`. An accepted event is never dropped for it
//! (issue 16): its batch is held in the inflight table, cursor and rows, until the store takes
//! it, however long the outage; what is held is bounded ([`HOLD_MAX_ROWS`], [`HOLD_MAX_BYTES`]),
//! and past that the spool is simply not read until the store is back (the hooks keep
//! appending; nothing is lost, the cursor was never committed past it).
//!
//! Store faults are found on a slow timer ([`CHECK_EVERY`]): a real probe write while the store
//! is failing (a read-only connection is reopened, it never becomes writable), and a cheap
//! identity check while it is healthy (the file deleted or replaced under us, or overwritten
//! with something that is not SQLite). A deleted database is rebuilt from the still-open
//! connection (an online backup to the path); one replaced by garbage is moved aside and
//! started fresh, and the hook spool is re-read from its start to store its events again.
//!
//! Several sources share that path: the hook spool (`hooks_spool` cursor, [`Gateway::ingest`])
//! and pull sources owned elsewhere, such as the Codex app-server observer (`codex_appserver`
//! cursor, [`Gateway::ingest_source`]). Codex events carry a thread id and, unless a hook's pane
//! was trusted, no pane: the gateway routes them with the thread → pane map that
//! `daemon::codex` maintains ([`Gateway::set_thread_panes`]); a thread not bound yet is stored
//! as rejected with reason `unbound_thread` (its latest state is re-applied once it binds).
//!
//! Flow-006/Flow-012: every pulled batch is recorded as `fetched_cursor`, gets a
//! `delivery_token` and stays in the inflight table ([`crate::delivery`]) until its commit (the
//! projection's ack) succeeds; expired leases are redelivered with the same token, and
//! exhausted ones degrade the source with `ack_retry_exhausted`.
use crate::core::binding::{LinkAction, LinkRecord};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::types::{Evidence, Health, Millis, PaneId, Provider, SourceKind};
use crate::delivery::{Delivery, DeliveryPolicy, Expired};
use crate::paths::ServerPaths;
use crate::projection::{IgnoreReason, PaneModel, Projection};
use crate::sources::claude_transcript::TranscriptTitles;
use crate::sources::hook_spool::{HookSpoolSource, ProcOrigin};
use crate::sources::{Pulled, Source};
use crate::store::{
    BindingRow, EventRow, EventStatus, HealthRow, PaneStateRow, Retention, SessionStateRow, Store,
};
use crate::tmux::registry::Registry;
use std::collections::{HashMap, HashSet, VecDeque};

/// One item the gateway handled (accepted, ignored or rejected), with its first hops.
#[derive(Debug, Clone)]
pub struct Traced {
    pub event_id: String,
    pub pane_id: Option<PaneId>,
    pub source: String,
    pub name: String,
    pub status: EventStatus,
    pub reason: Option<String>,
    pub(crate) source_ts: Millis,
    pub(crate) gateway_ts: Millis,
    /// `None` for lines rejected before they became events.
    pub(crate) daemon_ts: Option<Millis>,
}

/// Cursor id of the hook spool in `cursor_state_v2`.
const HOOKS_CURSOR: &str = "hooks_spool";
const BATCH: usize = 500;
/// Spool rotation threshold.
const ROTATE_AT: u64 = 8 << 20;
/// How often a daemon running without its database tries to open it again.
const REOPEN_EVERY: Millis = 5_000;
/// How often a healthy store's file is checked (deleted, replaced, overwritten).
const CHECK_EVERY: Millis = 5_000;
/// Unacked rows held for a store that does not take them, before the spool pulls pause.
/// Below [`RECENT`], so every held event is still known to the in-memory dedup. Lowered (never
/// raised) by `AGTMUX_HOLD_MAX_ROWS`, for tests.
pub(crate) const HOLD_MAX_ROWS: usize = 10_000;
/// Bytes (payloads plus overhead) held likewise.
pub(crate) const HOLD_MAX_BYTES: usize = 32 << 20;
/// In-memory dedup window (used on top of the store, and alone without it).
const RECENT: usize = 20_000;
/// Bound of the Codex events kept for `daemon::codex` between two steps.
const CODEX_SEEN_MAX: usize = 4_096;
/// Bound of the traced items kept between two steps.
const TRACED_MAX: usize = 20_000;

pub enum IngestOutcome {
    /// Nothing more to read now.
    Done,
    /// A full batch was applied; call again.
    More,
    /// An event names a pane the registry has not seen yet: refresh first, then retry.
    NeedRefresh,
}

/// C-007: follow a session's transcript (Claude) or rollout (Codex) that an accepted hook
/// named, or stop following it (`path: None`: the session ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TranscriptRequest {
    pub provider: Provider,
    pub session: String,
    pub pane: PaneId,
    pub path: Option<String>,
}

/// What ingest did with the items it pulled, counted since the daemon started (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Applied to the projection.
    pub accepted: u64,
    /// Stored with no effect (no state change, already known, older than the state).
    pub ignored: u64,
    /// Refused: invalid input, or an event that cannot be applied.
    pub rejected: u64,
    /// Seen before (same event id), dropped without a second row.
    pub duplicates: u64,
}

pub struct Gateway {
    server_key: String,
    server_id: String,
    store: Option<Store>,
    store_problem: Option<String>,
    db_path: std::path::PathBuf,
    /// The hook spool (from `ServerPaths`, not recomputed from the environment).
    spool: std::path::PathBuf,
    next_reopen: Millis,
    /// Spool pulls paused because the held rows reached the bound.
    paused: bool,
    /// [`HOLD_MAX_ROWS`], or less from the environment.
    hold_max_rows: usize,
    /// What [`Gateway::prune`] keeps: the seeds, or `AGTMUX_RETENTION_EVENTS` newest events.
    retention: Retention,
    /// The last store fault (what, when), kept after recovery for `health`/`doctor`.
    last_incident: Option<(String, Millis)>,
    /// Re-storing the spool's events into a rebuilt database (cursor of the re-read, and
    /// where it ends: the live pull position when it started).
    backfill: Option<(HookSpoolSource, String, String)>,
    hooks: HookSpoolSource,
    committed: String,
    last_refresh: Millis,
    /// Recent event ids with the status they were stored with (dedup; a backfill's status).
    recent_status: HashMap<String, (EventStatus, Option<String>)>,
    recent_order: VecDeque<String>,
    titles: TranscriptTitles,
    /// Open `binding_link_v2` rows by (pane, generation, session), to close them on unlink.
    open_links: HashMap<(PaneId, u32, String), i64>,
    /// Committed cursors of pull sources other than the spool, by cursor id.
    cursors: HashMap<String, String>,
    /// Codex thread id → bound pane (from `daemon::codex`).
    thread_panes: HashMap<String, PaneId>,
    /// Codex events ingested since the last `take_codex_seen`, as the source sent them.
    codex_seen: Vec<NormalizedEvent>,
    /// C-007: transcripts to follow (session, pane, path) or stop following (path `None`),
    /// from accepted Claude hook events; drained by the runtime.
    transcript_requests: Vec<TranscriptRequest>,
    /// Accepted events (pane, event ts) since the last `take_accepted` (C-013 latency).
    accepted: Vec<(PaneId, Millis)>,
    /// Counters for metrics.
    pub counts: IngestCounts,
    /// Items handled since the last `take_traced`, with their first hops (`daemon::metrics`).
    traced: Vec<Traced>,
    /// Flow-012 inflight table: batches awaiting their ack (durable commit).
    delivery: Delivery,
    /// Bumped each time a new connection replaces the store (reopened, rebuilt): the daemon's
    /// other connections to the same file move along ([`Gateway::store_generation`]).
    store_gen: u64,
}

impl Gateway {
    pub fn new(sp: &ServerPaths, now: Millis) -> Self {
        let (store, store_problem) = open_store(&sp.db(), now);
        let row = store
            .as_ref()
            .and_then(|s| s.cursor(HOOKS_CURSOR).ok().flatten());
        let mut delivery = Delivery::new(DeliveryPolicy::from_env(), now.max(0) as u64);
        // Flow-006: a fetched cursor ahead of the committed one means the last daemon died
        // between a pull and its ack: re-pull from the committed cursor.
        if let Some(r) = &row
            && let Some(f) = r.fetched_cursor.as_deref()
            && f != r.committed_cursor
        {
            delivery.stats.rewinds += 1;
            log::warn!(
                "cursor_rewind source={HOOKS_CURSOR} fetched={f:?} committed={:?} reason=restart",
                r.committed_cursor
            );
        }
        let committed = row.map(|c| c.committed_cursor).unwrap_or_default();
        let hooks = HookSpoolSource::new(
            &sp.spool(),
            &sp.key,
            Some(committed.as_str()).filter(|c| !c.is_empty()),
        );
        let committed = hooks.position();
        let last_incident = store_problem.clone().map(|p| (p, now));
        Gateway {
            server_key: sp.key.clone(),
            server_id: String::new(),
            store,
            store_problem,
            db_path: sp.db(),
            spool: sp.spool(),
            next_reopen: now + REOPEN_EVERY,
            paused: false,
            hold_max_rows: crate::sys::env::positive::<usize>("AGTMUX_HOLD_MAX_ROWS")
                .map_or(HOLD_MAX_ROWS, |v| v.min(HOLD_MAX_ROWS)),
            retention: Retention::from_env(),
            last_incident,
            backfill: None,
            hooks,
            committed,
            last_refresh: 0,
            recent_status: HashMap::new(),
            recent_order: VecDeque::new(),
            titles: TranscriptTitles::new(),
            open_links: HashMap::new(),
            cursors: HashMap::new(),
            thread_panes: HashMap::new(),
            codex_seen: Vec::new(),
            transcript_requests: Vec::new(),
            accepted: Vec::new(),
            counts: IngestCounts::default(),
            traced: Vec::new(),
            delivery,
            store_gen: 0,
        }
    }

    /// Changes whenever the database was opened again or rebuilt (a deleted, replaced or
    /// overwritten file, a store that came back): every other connection to it must reopen,
    /// or it writes on into the old file.
    pub(crate) fn store_generation(&self) -> u64 {
        self.store_gen
    }

    /// Flow-012 numbers for `health`/`metrics`.
    /// The inflight table (read-only: traces and figures for the API).
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub(crate) fn delivery_json(&self, now: Millis) -> serde_json::Value {
        self.delivery.json(now)
    }

    /// `source:ack_retry_exhausted` while a source is degraded by exhausted redeliveries.
    pub(crate) fn delivery_problem(&self) -> Option<String> {
        self.delivery
            .degraded
            .iter()
            .next()
            .map(|(s, r)| format!("{s}:{r}"))
    }

    /// When the next inflight lease expires.
    pub(crate) fn delivery_deadline(&self) -> Option<Millis> {
        self.delivery.next_deadline()
    }

    /// Expired leases: redeliver (same token) or give up (source degraded).
    pub(crate) fn tick_delivery(&mut self, now: Millis) {
        for e in self.delivery.expire(now) {
            match e {
                Expired::Redeliver(t, _) => {
                    self.redeliver(t, now);
                    self.try_ack(t, now, false);
                }
                Expired::Exhausted(t) => {
                    log::warn!(
                        "delivery_held token={} reason=ack_retry_exhausted store={}",
                        crate::delivery::token_str(t),
                        self.store_problem.as_deref().unwrap_or("failing")
                    );
                }
            }
        }
    }

    /// Pull the token's range again. Everything in it was applied already: each item must
    /// come back as a duplicate (counted), so the redelivery has no effect on state.
    fn redeliver(&mut self, token: u64, now: Millis) {
        let Some(i) = self.delivery.get(token) else {
            return;
        };
        if i.source != HOOKS_CURSOR {
            // Other sources are pulled by their owners; their rows are retried as they are.
            let n = i.rows.len();
            self.delivery.stats.duplicates += n as u64;
            self.delivery.trace_step(
                token,
                now,
                "pull_events",
                format!("{n} row(s) retried as held (all duplicates)"),
            );
            return;
        }
        let (from, n) = (i.from.clone(), i.rows.len().max(1));
        let mut src = HookSpoolSource::new(&self.spool, &self.server_key, Some(&from));
        let batch = src.pull(&from, n);
        let mut dups = 0;
        for item in &batch.items {
            let id = match item {
                Pulled::Event { event, .. } => &event.event_id,
                Pulled::Rejected { event_id, .. } => event_id,
            };
            if self.seen(id) {
                dups += 1;
            } else {
                log::warn!("redelivery_unexpected_item event_id={id}");
            }
        }
        self.delivery.stats.duplicates += dups;
        self.delivery.trace_step(
            token,
            now,
            "pull_events",
            format!(
                "re-pulled {} item(s) after {from:?}: {dups} duplicate(s), nothing applied again",
                batch.items.len()
            ),
        );
    }

    /// The story of a recent delivery token (`trace --delivery`).
    pub fn delivery_trace(&self, token: u64) -> Option<serde_json::Value> {
        self.delivery.trace(token).map(|t| t.json())
    }

    /// The recent delivery token that carried an event.
    pub fn delivery_token_of(&self, event_id: &str) -> Option<String> {
        self.delivery
            .token_of(event_id)
            .map(crate::delivery::token_str)
    }

    /// The projection's ack: commit the token's rows and the cursor in one transaction.
    /// Without a store, or while it is known to fail (`force` off), the batch stays inflight:
    /// it is retried when the store is back ([`Gateway::maybe_reopen`]), never dropped.
    fn try_ack(&mut self, token: u64, now: Millis, force: bool) -> bool {
        if self.store_problem.is_some() && !force {
            return false;
        }
        let Some(i) = self.delivery.get(token) else {
            return false;
        };
        let committed = self
            .delivery
            .committed_if_acked(token)
            .or_else(|| self.delivery.committed_floor(&i.source))
            .unwrap_or_else(|| i.from.clone());
        let committed = self.hold_for_backfill(&i.source, committed);
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        let res = (|| {
            let mut tx = store.begin()?;
            for r in &i.rows {
                tx.insert_event(r)?;
            }
            tx.set_cursor(&i.source, &committed, Some(&i.to), now)?;
            tx.commit()
        })();
        match res {
            Ok(()) => {
                if self.store_problem.is_some() {
                    log::info!("store_recovered");
                }
                self.store_problem = None;
                self.delivery.ack(token, now);
                true
            }
            Err(e) => {
                self.store_failed("commit", e);
                false
            }
        }
    }

    /// Every unacked batch, retried now, oldest first (the store came back). Stops at the
    /// first failure: the store is down again and each try may wait for its busy timeout.
    fn retry_pending(&mut self, now: Millis) -> bool {
        let tokens = self.delivery.unacked_tokens();
        let n = tokens.len();
        for t in tokens {
            if !self.try_ack(t, now, true) {
                return false;
            }
        }
        if n > 0 {
            log::warn!("delivery_replayed batches={n} reason=store_recovered");
        }
        true
    }

    /// While a rebuilt database is being re-filled from the spool, its committed hook cursor
    /// stays at the re-read's position, so a crash meanwhile replays the rest at start-up.
    fn hold_for_backfill(&self, source: &str, committed: String) -> String {
        match &self.backfill {
            Some((_, pos, _)) if source == HOOKS_CURSOR => pos.clone(),
            _ => committed,
        }
    }

    /// Record `fetched_cursor` for a pull (Flow-006), leaving the committed cursor where the
    /// acks put it.
    fn record_fetched(&mut self, cursor_id: &str, fetched: &str, fallback: &str, now: Millis) {
        if self.store_problem.is_some() {
            return;
        }
        let committed = self.safe_committed(cursor_id, fallback);
        let committed = self.hold_for_backfill(cursor_id, committed);
        if let Some(store) = self.store.as_mut() {
            let r = store.begin().and_then(|mut tx| {
                tx.set_cursor(cursor_id, &committed, Some(fetched), now)?;
                tx.commit()
            });
            if let Err(e) = r {
                self.store_failed("fetched", e);
            }
        }
    }

    /// The committed cursor safe to store now: the start of the oldest unacked batch, else
    /// `current` (the pull position, everything before it acked).
    fn safe_committed(&self, cursor_id: &str, current: &str) -> String {
        if self.delivery.get_unacked(cursor_id) {
            self.delivery
                .committed_floor(cursor_id)
                .unwrap_or_else(|| current.to_string())
        } else {
            current.to_string()
        }
    }

    pub(crate) fn set_server_id(&mut self, id: &str) {
        self.server_id = id.to_string();
        self.hooks.set_server_id(id);
    }

    pub(crate) fn registry_refreshed(&mut self, now: Millis) {
        self.last_refresh = now;
    }

    pub(crate) fn store_problem(&self) -> Option<&str> {
        self.store_problem.as_deref()
    }

    /// Spool pulls paused because too much is held for a store that does not take it.
    pub fn ingest_paused(&self) -> bool {
        self.paused
    }

    /// The store's side of `health`: the current problem, what is held for it, and the last
    /// fault even after recovery (a deleted or overwritten database is rebuilt at once, so
    /// the status line shows it only briefly; this keeps it visible to `doctor`).
    pub(crate) fn store_json(&self) -> serde_json::Value {
        let (held_rows, held_bytes) = self.delivery.held_bytes();
        serde_json::json!({
            "path": self.db_path.display().to_string(),
            "problem": self.store_problem,
            "held_rows": held_rows,
            "held_bytes": held_bytes,
            "ingest_paused": self.paused,
            "backfilling": self.backfill.is_some(),
            "last_incident": self.last_incident.as_ref().map(|(w, ts)| serde_json::json!({"problem": w, "ts_ms": ts})),
        })
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The writer, for C-013 (alert ledger, snapshot metadata).
    pub(crate) fn store_mut(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }

    /// Accepted events (pane, event ts) since the last call.
    pub(crate) fn take_accepted(&mut self) -> Vec<(PaneId, Millis)> {
        std::mem::take(&mut self.accepted)
    }

    pub(crate) fn hooks_health(&self) -> Health {
        if self.hooks.last_error.is_some() {
            Health::Down
        } else {
            Health::Healthy
        }
    }

    /// The Codex thread → pane bindings used to route events that carry no pane.
    pub(crate) fn set_thread_panes(&mut self, map: HashMap<String, PaneId>) {
        self.thread_panes = map;
    }

    /// C-007 watch requests since the last call.
    pub(crate) fn take_transcript_requests(&mut self) -> Vec<TranscriptRequest> {
        std::mem::take(&mut self.transcript_requests)
    }

    /// Codex events (both sources) ingested since the last call, before routing: a hook's
    /// pane here is one that was trusted.
    pub(crate) fn take_codex_seen(&mut self) -> Vec<NormalizedEvent> {
        std::mem::take(&mut self.codex_seen)
    }

    /// What was ingested since the last call, for metrics and tracing.
    pub(crate) fn take_traced(&mut self) -> Vec<Traced> {
        std::mem::take(&mut self.traced)
    }

    fn trace(&mut self, t: Traced) {
        if self.traced.len() < TRACED_MAX {
            self.traced.push(t);
        }
    }

    /// Add later hops (`option`, `client`) to stored events, in one transaction.
    pub(crate) fn record_hops(&mut self, hops: &[(String, &'static str, Millis)]) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if hops.is_empty() {
            return;
        }
        let r = store.begin().and_then(|mut tx| {
            for (id, hop, ts) in hops {
                tx.record_hop(id, hop, *ts)?;
            }
            tx.commit()
        });
        if let Err(e) = r {
            self.store_failed("hops", e);
        }
    }

    fn remember(&mut self, id: &str, status: EventStatus, reason: Option<String>) {
        if self
            .recent_status
            .insert(id.to_string(), (status, reason))
            .is_none()
        {
            self.recent_order.push_back(id.to_string());
            if self.recent_order.len() > RECENT
                && let Some(old) = self.recent_order.pop_front()
            {
                self.recent_status.remove(&old);
            }
        }
    }

    fn seen(&self, id: &str) -> bool {
        self.recent_status.contains_key(id)
            || self
                .store
                .as_ref()
                .is_some_and(|s| s.has_event(id).unwrap_or(false))
    }

    fn store_failed(&mut self, what: &str, e: crate::store::StoreError) {
        let short = short_problem(&e);
        if self.store_problem.as_deref() != Some(short) {
            log::error!("store_failed what={what} err={e}");
            self.last_incident = Some((short.to_string(), crate::sys::clock::now_ms()));
        }
        self.store_problem = Some(short.to_string());
    }

    /// The slow store timer: without a working database, probe it with a real write (or open
    /// it again) now and then; with one, check that its file is still there and still SQLite.
    /// Batches held meanwhile are committed as soon as it works again.
    pub(crate) fn maybe_reopen(&mut self, now: Millis) {
        if now < self.next_reopen {
            return;
        }
        self.next_reopen = now + REOPEN_EVERY.min(CHECK_EVERY);
        if let Some(store) = self.store.as_ref()
            && let Some(p) = store.check_file()
        {
            self.replace_store(p, now);
            return;
        }
        if self.store.is_some() && self.store_problem.is_none() {
            self.step_backfill(now);
            return;
        }
        if let Some(store) = self.store.as_mut() {
            match store.probe_write(now) {
                Ok(()) => {
                    log::warn!("store_recovered path={}", self.db_path.display());
                    self.store_problem = None;
                }
                Err(e) if e.is_locked() => {
                    self.store_failed("probe", e);
                    return;
                }
                Err(e) => {
                    // Read-only, gone, damaged: this connection will not heal. Open again.
                    log::warn!("store_reopen reason={:?} err={e}", short_problem(&e));
                    self.store = None;
                }
            }
        }
        if self.store.is_none() {
            let (store, problem) = open_store(&self.db_path, now);
            let Some(store) = store else {
                self.store_problem = problem;
                return;
            };
            log::warn!("store_reopened path={}", self.db_path.display());
            self.store = Some(store);
            self.store_gen += 1;
            self.store_problem = None;
        }
        if self.retry_pending(now) {
            self.commit_cursor(now);
        }
    }

    /// The database file under the open connection was deleted, replaced or overwritten:
    /// say so, and rebuild it without losing what was stored.
    fn replace_store(&mut self, problem: crate::store::FileProblem, now: Millis) {
        use crate::store::FileProblem;
        let path = self.db_path.clone();
        log::error!(
            "store_file_problem problem={} path={}",
            problem.as_str(),
            path.display()
        );
        self.store_problem = Some(problem.as_str().to_string());
        self.last_incident = Some((problem.as_str().to_string(), now));
        let Some(old) = self.store.take() else {
            return;
        };
        let mut restored = false;
        if problem == FileProblem::Deleted {
            // The open connection still reads the unlinked file: copy it back to the path.
            match old.snapshot_to(&path) {
                Ok(bytes) => {
                    log::warn!(
                        "store_restored_from_open_file path={} bytes={bytes}",
                        path.display()
                    );
                    restored = true;
                }
                Err(e) => log::error!("store_restore_failed err={e}"),
            }
        }
        drop(old);
        if restored {
            // Side files left at the path belong to the unlinked file, not to the copy: a stale
            // `-wal` would be replayed into it.
            for side in ["-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(side);
                let _ = std::fs::remove_file(std::path::PathBuf::from(p));
            }
        }
        if problem == FileProblem::NotADatabase {
            match crate::store::Store::quarantine(&path, now) {
                Ok(moved) => log::error!("store_quarantined moved_to={}", moved.display()),
                Err(e) => log::error!("store_quarantine_failed err={e}"),
            }
        }
        let (store, why) = open_store(&path, now);
        let Some(store) = store else {
            self.store_problem = why;
            return;
        };
        self.store = Some(store);
        self.store_gen += 1;
        self.store_problem = None;
        log::warn!("store_reopened path={} restored={restored}", path.display());
        if !restored {
            // What the lost file held comes back from the spool (what is still in it).
            let until = self.committed.clone();
            let src = HookSpoolSource::new(&self.spool, &self.server_key, None);
            log::warn!("store_backfill_start until={until:?}");
            self.backfill = Some((src, String::new(), until));
        }
        if self.retry_pending(now) {
            self.commit_cursor(now);
        }
        self.step_backfill(now);
    }

    /// Re-store the spool's events into a rebuilt database, a batch at a time, with the
    /// status each had when it was applied (when still known); nothing is applied again.
    fn step_backfill(&mut self, now: Millis) {
        while let Some((mut src, pos, until)) = self.backfill.take() {
            if pos == until {
                log::warn!("store_backfill_done");
                self.commit_cursor(now);
                return;
            }
            let batch = src.pull(&pos, BATCH);
            if batch.items.is_empty() || batch.next_cursor == pos {
                log::warn!("store_backfill_done");
                self.commit_cursor(now);
                return;
            }
            let rows: Vec<EventRow> = batch
                .items
                .into_iter()
                .map(|item| self.backfill_row(item, now))
                .collect();
            let next = batch.next_cursor.clone();
            let Some(store) = self.store.as_mut() else {
                self.backfill = Some((src, pos, until));
                return;
            };
            let r = store.begin().and_then(|mut tx| {
                for r in &rows {
                    tx.insert_event(r)?;
                }
                tx.set_cursor(HOOKS_CURSOR, &next, Some(&until), now)?;
                tx.commit()
            });
            if let Err(e) = r {
                self.backfill = Some((src, pos, until));
                self.store_failed("backfill", e);
                return;
            }
            self.backfill = Some((src, next, until));
        }
    }

    fn backfill_row(&self, item: Pulled, now: Millis) -> EventRow {
        match item {
            Pulled::Event { event, raw } => {
                let (status, reason) = self
                    .recent_status
                    .get(&event.event_id)
                    .cloned()
                    .unwrap_or((EventStatus::Ignored, Some("backfill_status_unknown".into())));
                event_row(&self.server_key, &event, status, reason, raw, now)
            }
            Pulled::Rejected {
                event_id,
                reason,
                raw,
                ts,
            } => rejected_row(
                &self.server_key,
                event_id,
                "hooks",
                reason,
                raw,
                ts,
                now,
                ts,
            ),
        }
    }

    /// Pull one batch from the hook spool, apply and commit it.
    pub fn ingest(&mut self, proj: &mut Projection, reg: &Registry, now: Millis) -> IngestOutcome {
        self.hooks.set_pane_pids(
            reg.panes
                .iter()
                .map(|(id, p)| (id.clone(), p.pane_pid))
                .collect(),
        );
        // Bounded memory while the store does not take what is held: stop reading the spool
        // (it keeps everything; the committed cursor is still before it) until it does.
        let (held_rows, held_bytes) = self.delivery.held_bytes();
        if held_rows >= self.hold_max_rows || held_bytes >= HOLD_MAX_BYTES {
            if !self.paused {
                self.paused = true;
                log::error!(
                    "ingest_paused reason=store_unavailable store={} held_rows={held_rows} held_bytes={held_bytes}",
                    self.store_problem.as_deref().unwrap_or("failing")
                );
            }
            return IngestOutcome::Done;
        }
        if self.paused {
            self.paused = false;
            log::warn!("ingest_resumed held_rows={held_rows}");
        }
        // Never past the bound: pull at most what still fits.
        let room = self.hold_max_rows - held_rows;
        let batch = self.hooks.pull(&self.committed, BATCH.min(room));
        if batch.items.is_empty() {
            // Never rotate what a rebuilt database still re-reads, or what is not durable yet.
            if self.backfill.is_none() && !self.delivery.get_unacked(HOOKS_CURSOR) {
                if self.hooks.maybe_rotate(ROTATE_AT) {
                    self.committed = self.hooks.position();
                    self.commit_cursor(now);
                }
                self.release_rotated();
            }
            return IngestOutcome::Done;
        }
        let origins = self.hooks.take_origins();
        // A hook can fire for a pane created (or respawned) after our last registry refresh:
        // refresh first rather than reject it as unknown (or as from another process). Panes
        // still unknown (still another process) after that are rejected.
        for item in &batch.items {
            if let Pulled::Event { event, .. } = item
                && let Some(p) = &event.pane_id
                && (!reg.panes.contains_key(p.as_str())
                    || matches!(
                        origins.get(&event.event_id),
                        Some(ProcOrigin::Mismatch { .. })
                    ))
                && event.ts + 500 >= self.last_refresh
            {
                // Rewind: the next pull starts again at the committed cursor.
                self.delivery.stats.rewinds += 1;
                self.hooks =
                    HookSpoolSource::new(&self.spool, &self.server_key, Some(&self.committed));
                self.hooks.set_server_id(&self.server_id);
                return IngestOutcome::NeedRefresh;
            }
        }
        let full = batch.items.len() >= BATCH.min(room);
        let from = self.committed.clone();
        self.record_fetched(HOOKS_CURSOR, &batch.next_cursor, &from, now);
        let rows = self.process_items(batch.items, proj, "hooks", &origins, now);
        self.committed = batch.next_cursor;
        let to = self.committed.clone();
        self.deliver(rows, HOOKS_CURSOR, &from, &to, now);
        if full {
            IngestOutcome::More
        } else {
            IngestOutcome::Done
        }
    }

    /// Pull one batch from another source (cursor `cursor_id` in `cursor_state_v2`), apply
    /// and commit it exactly like spool events. The source must not block.
    pub(crate) fn ingest_source(
        &mut self,
        src: &mut dyn Source,
        cursor_id: &str,
        proj: &mut Projection,
        now: Millis,
    ) -> IngestOutcome {
        if !self.cursors.contains_key(cursor_id) {
            let c = self
                .store
                .as_ref()
                .and_then(|s| s.cursor(cursor_id).ok().flatten())
                .map(|c| c.committed_cursor)
                .unwrap_or_default();
            self.cursors.insert(cursor_id.to_string(), c);
        }
        // Bounded memory while the store is down: these sources keep what they have not
        // handed over, so stop pulling them at twice the spool's bound (the spool stops first).
        let (held_rows, held_bytes) = self.delivery.held_bytes();
        if held_rows >= 2 * self.hold_max_rows || held_bytes >= 2 * HOLD_MAX_BYTES {
            return IngestOutcome::Done;
        }
        let after = self.cursors.get(cursor_id).cloned().unwrap_or_default();
        let batch = src.pull(&after, BATCH);
        if batch.items.is_empty() {
            return IngestOutcome::Done;
        }
        let full = batch.items.len() >= BATCH;
        let label = src.kind().as_str();
        self.record_fetched(cursor_id, &batch.next_cursor, &after, now);
        let rows = self.process_items(batch.items, proj, label, &HashMap::new(), now);
        self.cursors
            .insert(cursor_id.to_string(), batch.next_cursor.clone());
        self.deliver(rows, cursor_id, &after, &batch.next_cursor, now);
        if full {
            IngestOutcome::More
        } else {
            IngestOutcome::Done
        }
    }

    /// Dedup, route, apply and turn into rows (not yet stored).
    fn process_items(
        &mut self,
        items: Vec<Pulled>,
        proj: &mut Projection,
        reject_source: &str,
        origins: &HashMap<String, ProcOrigin>,
        now: Millis,
    ) -> Vec<EventRow> {
        let mut rows = Vec::with_capacity(items.len());
        let mut batch_ids = HashSet::new();
        // Tracing hop `gateway`: the batch was pulled.
        let gateway_ts = crate::sys::clock::now_ms();
        for item in items {
            match item {
                Pulled::Event { event, raw } => {
                    rows.extend(self.process_event(
                        event,
                        raw,
                        proj,
                        origins,
                        &mut batch_ids,
                        gateway_ts,
                        now,
                    ));
                }
                Pulled::Rejected {
                    event_id,
                    reason,
                    raw,
                    ts,
                } => {
                    rows.extend(self.process_rejected(
                        event_id,
                        reason,
                        raw,
                        ts,
                        reject_source,
                        &mut batch_ids,
                        gateway_ts,
                        now,
                    ));
                }
            }
        }
        for r in &rows {
            self.remember(&r.event_id, r.status, r.reason.clone());
        }
        rows
    }

    /// One pulled event: dedup, route and apply, count and trace, follow its transcript, and
    /// its row (`None` for a duplicate).
    #[allow(clippy::too_many_arguments)]
    fn process_event(
        &mut self,
        mut event: NormalizedEvent,
        raw: String,
        proj: &mut Projection,
        origins: &HashMap<String, ProcOrigin>,
        batch_ids: &mut HashSet<String>,
        gateway_ts: Millis,
        now: Millis,
    ) -> Option<EventRow> {
        if !batch_ids.insert(event.event_id.clone()) || self.seen(&event.event_id) {
            self.counts.duplicates += 1;
            log::debug!("ingest_duplicate event_id={}", event.event_id);
            return None;
        }
        let applied = self.route_and_apply(&mut event, proj, origins, now);
        // Tracing hop `daemon`: the projection applied (or refused) it.
        let daemon_ts = crate::sys::clock::now_ms();
        let (status, reason) = outcome(&event, applied);
        if status == EventStatus::Accepted
            && let Some(p) = &event.pane_id
            && self.accepted.len() < CODEX_SEEN_MAX
        {
            self.accepted.push((p.clone(), event.ts));
        }
        match status {
            EventStatus::Accepted => self.counts.accepted += 1,
            EventStatus::Rejected => self.counts.rejected += 1,
            _ => self.counts.ignored += 1,
        }
        self.trace(Traced {
            event_id: event.event_id.clone(),
            pane_id: event.pane_id.clone(),
            source: event.source.as_str().to_string(),
            name: event.name.clone(),
            status,
            reason: reason.clone(),
            source_ts: event.ts,
            gateway_ts,
            daemon_ts: Some(daemon_ts),
        });
        if status == EventStatus::Accepted {
            self.follow_transcript(&event, &raw, proj);
        }
        let mut row = event_row(&self.server_key, &event, status, reason, raw, now);
        row.hops = format!(
            "{{\"source\":{},\"gateway\":{gateway_ts},\"daemon\":{daemon_ts}}}",
            event.ts
        );
        Some(row)
    }

    /// Route an event to its pane (a Codex thread's binding) and apply it, unless its origin
    /// says it did not come from that pane; an applied event from a known agent process
    /// anchors the pane.
    fn route_and_apply(
        &mut self,
        event: &mut NormalizedEvent,
        proj: &mut Projection,
        origins: &HashMap<String, ProcOrigin>,
        now: Millis,
    ) -> Result<(), IgnoreReason> {
        let mut unbound = false;
        if event.provider == Provider::Codex {
            if self.codex_seen.len() < CODEX_SEEN_MAX {
                self.codex_seen.push(event.clone());
            }
            if event.pane_id.is_none() {
                event.pane_id = event
                    .session_key
                    .as_ref()
                    .and_then(|k| self.thread_panes.get(k))
                    .cloned();
                unbound = event.pane_id.is_none() && event.session_key.is_some();
            }
        }
        let origin = origins.get(&event.event_id).copied();
        let mismatch = origin
            .zip(event.pane_id.as_ref())
            .and_then(|(o, p)| o.mismatch_reason(p));
        let applied = if unbound {
            Err(IgnoreReason::UnboundThread)
        } else if let Some(r) = mismatch {
            Err(IgnoreReason::ProcessMismatch(r))
        } else if let (Some(ProcOrigin::Outside), Some(p)) = (origin, &event.pane_id)
            && proj.panes.contains_key(p.as_str())
            && !proj.holds_agent_process(p)
        {
            Err(IgnoreReason::NotInPane(format!(
                "not_in_pane: the hook did not run inside a pane of this server, and {p} holds no agent process"
            )))
        } else if let (Some(ProcOrigin::Outside), Some(p)) = (origin, &event.pane_id)
            && let Some((pid, _)) = proj.live_anchor(p)
        {
            // The pane's agent is known: its hooks run inside the pane. One from outside every
            // pane (an orphaned agent of this pane, a process elsewhere that names the pane) is
            // not from it, whatever `TMUX_PANE` says.
            Err(IgnoreReason::NotInPane(format!(
                "not_in_pane: the hook did not run inside a pane of this server, and {p}'s hooks come from its agent process {pid}"
            )))
        } else {
            proj.apply_event(event, now)
        };
        if applied.is_ok()
            && let (Some(ProcOrigin::Anchored { pid, start }), Some(p)) = (origin, &event.pane_id)
        {
            proj.set_anchor(p, pid, start);
        }
        applied
    }

    /// One line the source could not decode: counted, traced and stored as rejected (`None`
    /// for a duplicate).
    #[allow(clippy::too_many_arguments)]
    fn process_rejected(
        &mut self,
        event_id: String,
        reason: String,
        raw: String,
        ts: Millis,
        reject_source: &str,
        batch_ids: &mut HashSet<String>,
        gateway_ts: Millis,
        now: Millis,
    ) -> Option<EventRow> {
        if !batch_ids.insert(event_id.clone()) || self.seen(&event_id) {
            self.counts.duplicates += 1;
            return None;
        }
        self.counts.rejected += 1;
        log::warn!(
            "ingest_rejected event_id={event_id:?} source={reject_source} reason={reason:?}"
        );
        self.trace(Traced {
            event_id: event_id.clone(),
            pane_id: None,
            source: reject_source.to_string(),
            name: String::new(),
            status: EventStatus::Rejected,
            reason: Some(reason.clone()),
            source_ts: ts,
            gateway_ts,
            daemon_ts: None,
        });
        Some(rejected_row(
            &self.server_key,
            event_id,
            reject_source,
            reason,
            raw,
            ts,
            now,
            gateway_ts,
        ))
    }

    /// An accepted hook event that names its transcript: the session's title (Claude) and a
    /// request to follow (or, at session end, stop following) the transcript.
    fn follow_transcript(&mut self, event: &NormalizedEvent, raw: &str, proj: &mut Projection) {
        if matches!(
            event.source,
            SourceKind::ClaudeHooks | SourceKind::CodexHooks
        ) && let Some(sk) = event.session_key.as_deref()
            && let Some(path) = transcript_path(raw)
        {
            if event.source == SourceKind::ClaudeHooks
                && let Some(title) = self.titles.update(sk, &path)
            {
                proj.set_session_title(sk, &title);
            }
            if self.transcript_requests.len() < CODEX_SEEN_MAX
                && let Some(pane) = &event.pane_id
            {
                let follow = (event.signal != Signal::SessionEnd).then_some(path);
                self.transcript_requests.push(TranscriptRequest {
                    provider: event.provider,
                    session: sk.to_string(),
                    pane: pane.clone(),
                    path: follow,
                });
            }
        }
    }

    /// The batch becomes inflight under a new delivery token and is acked by its commit (rows
    /// and cursor in one transaction); a failed commit leaves it inflight for redelivery.
    fn deliver(&mut self, rows: Vec<EventRow>, cursor_id: &str, from: &str, to: &str, now: Millis) {
        let token = self.delivery.begin(cursor_id, from, to, rows, now);
        self.try_ack(token, now, false);
    }

    /// Rotated spool files are the only copy of their lines until the store has them: delete
    /// them only with everything pulled stored (no batch unacked, no rebuild re-reading them)
    /// and the store's committed cursor past them.
    fn release_rotated(&mut self) {
        if !self.hooks.has_rotated()
            || self.store_problem.is_some()
            || self.backfill.is_some()
            || self.delivery.get_unacked(HOOKS_CURSOR)
        {
            return;
        }
        let Some(store) = self.store.as_ref() else {
            return;
        };
        match store.cursor(HOOKS_CURSOR) {
            Ok(c) => {
                let stored = c.map(|c| c.committed_cursor).unwrap_or_default();
                self.hooks.release_rotated(&stored);
            }
            Err(e) => self.store_failed("cursor_read", e),
        }
    }

    fn commit_cursor(&mut self, now: Millis) {
        if self.store_problem.is_some() {
            return;
        }
        let committed = self.safe_committed(HOOKS_CURSOR, &self.committed);
        let committed = self.hold_for_backfill(HOOKS_CURSOR, committed);
        let fetched = self.committed.clone();
        if let Some(store) = self.store.as_mut() {
            let r = store.begin().and_then(|mut tx| {
                tx.set_cursor(HOOKS_CURSOR, &committed, Some(&fetched), now)?;
                tx.commit()
            });
            if let Err(e) = r {
                self.store_failed("cursor", e);
            }
        }
    }

    /// Write the read model rows of changed panes (`pane_state_v2`).
    pub(crate) fn persist(&mut self, proj: &mut Projection, changed: &[PaneId], now: Millis) {
        let records = proj.bindings.take_records();
        let grace = proj.bindings_grace_ms();
        self.persist_bindings(&records, grace);
        self.persist_panes(proj, changed, now);
    }

    /// Opens and closes the `binding_link_v2` rows the binder recorded, in one transaction,
    /// keeping `open_links` (pane instance and session → row id) in step.
    fn persist_bindings(&mut self, records: &[LinkRecord], grace: Millis) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let links = &mut self.open_links;
        let (server_key, server_id) = (self.server_key.clone(), self.server_id.clone());
        let res = (|| {
            let mut tx = store.begin()?;
            for r in records {
                let key = (
                    r.instance.pane_id.clone(),
                    r.instance.generation,
                    r.session_key.clone(),
                );
                match r.action {
                    LinkAction::Link => {
                        let id = tx.insert_binding(&BindingRow {
                            id: 0,
                            server_key: server_key.clone(),
                            server_id: server_id.clone(),
                            pane_id: r.instance.pane_id.clone(),
                            generation: r.instance.generation,
                            birth_ts: r.instance.birth_ts,
                            session_key: r.session_key.clone(),
                            provider: r.provider,
                            linked_ts: r.ts,
                            unlinked_ts: None,
                            reason: r.reason.to_string(),
                            tombstone_until: None,
                        })?;
                        links.insert(key, id);
                    }
                    LinkAction::Unlink => {
                        if let Some(id) = links.remove(&key) {
                            let until = (r.reason != "clear").then_some(r.ts + grace);
                            tx.close_binding(id, r.ts, r.reason, until)?;
                        }
                    }
                }
            }
            tx.commit()
        })();
        if let Err(e) = res {
            self.store_failed("bindings", e);
        }
    }

    /// Writes the rows of the changed panes still in the projection, and of the sessions they
    /// hold, in one transaction.
    fn persist_panes(&mut self, proj: &Projection, changed: &[PaneId], now: Millis) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let res = (|| {
            let mut tx = store.begin()?;
            for id in changed {
                let Some(p) = proj.panes.get(id) else {
                    continue;
                };
                let row = pane_state_row(&self.server_key, &self.server_id, id, p, now);
                // Flow-014: compare-and-swap on state_version; never roll back.
                if crate::projection::serial::write_pane(&mut tx, &row)?
                    == crate::projection::serial::CasOutcome::Conflict
                {
                    log::warn!("cas_gave_up pane={id}");
                }
                if let Some(session) = session_state_row(&row, now) {
                    crate::projection::serial::write_session(&mut tx, &session)?;
                }
            }
            tx.commit()
        })();
        if let Err(e) = res {
            self.store_failed("persist", e);
        }
    }

    /// Restore deterministic state saved for this very server (same pid and start time).
    /// A new server on the same socket never inherits it, and a pane that no longer holds the
    /// agent does not either: the process its hooks came from must still run, or (no such
    /// record) the pane must hold an agent process now. Rows of panes that are gone, or of
    /// another server, are deleted.
    pub fn restore(&mut self, proj: &mut Projection, now: Millis) -> usize {
        let n = self.restore_rows(proj, now);
        self.prune_pane_rows(proj);
        n
    }

    /// Delete `pane_state_v2` rows of panes the projection does not hold (gone panes, an
    /// earlier server). Bounded by the table, run at start; removals during the run go one by
    /// one through [`Gateway::forget_panes`].
    fn prune_pane_rows(&mut self, proj: &Projection) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let rows = match store.pane_states(&self.server_key) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("pane_rows_prune_failed err={e}");
                return;
            }
        };
        let stale: Vec<PaneId> = rows
            .into_iter()
            .filter(|r| r.server_id != self.server_id || !proj.panes.contains_key(&r.pane_id))
            .map(|r| r.pane_id)
            .collect();
        if !stale.is_empty() {
            self.forget_panes(&stale);
        }
    }

    /// Delete the `pane_state_v2` rows of panes that are gone.
    pub(crate) fn forget_panes(&mut self, panes: &[PaneId]) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let key = self.server_key.clone();
        let r = store.begin().and_then(|mut tx| {
            for p in panes {
                tx.delete_pane_state(&key, p)?;
            }
            tx.commit()
        });
        match r {
            Ok(()) => log::debug!("pane_rows_pruned n={}", panes.len()),
            Err(e) => log::warn!("pane_rows_prune_failed err={e}"),
        }
    }

    fn restore_rows(&mut self, proj: &mut Projection, now: Millis) -> usize {
        let Some(store) = self.store.as_ref() else {
            return 0;
        };
        let rows = match store.pane_states(&self.server_key) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("restore_failed err={e}");
                return 0;
            }
        };
        let mut n = 0;
        for r in rows {
            if r.server_id != self.server_id || !proj.panes.contains_key(&r.pane_id) {
                continue;
            }
            let (Some(provider), Some(sk), Some(src)) = (
                r.provider,
                r.session_key.clone(),
                r.winner_source.as_deref().and_then(SourceKind::parse),
            ) else {
                continue;
            };
            if r.evidence != Evidence::Deterministic {
                continue;
            }
            let anchor = serde_json::from_str::<serde_json::Value>(&r.extra)
                .ok()
                .and_then(|v| {
                    let a = v.get("anchor")?;
                    Some((a.get(0)?.as_i64()? as i32, a.get(1)?.as_u64()?))
                });
            let live = match anchor {
                Some((pid, start)) => crate::sys::procs::alive(pid, start),
                None => proj.holds_agent_process(&r.pane_id),
            };
            if !live {
                log::info!(
                    "restore_skipped pane={} reason={}",
                    r.pane_id,
                    if anchor.is_some() {
                        "agent_gone"
                    } else {
                        "no_agent_process"
                    }
                );
                continue;
            }
            let ev = NormalizedEvent {
                event_id: format!("restore-{}-{}", r.pane_id, r.state_version),
                source: src,
                provider,
                pane_id: Some(r.pane_id.clone()),
                session_key: Some(sk),
                turn_id: None,
                name: "restored".into(),
                signal: Signal::Activity(r.activity),
                title: (r.title_source == "canonical").then(|| r.title.clone()),
                cwd: None,
                detail: None,
                ts: r.updated_ts.min(now),
                extra: Default::default(),
            };
            if proj.apply_event(&ev, now).is_ok() {
                if let Some((pid, start)) = anchor {
                    proj.set_anchor(&r.pane_id, pid, start);
                }
                n += 1;
            }
        }
        n
    }

    /// Persist a source's health (`source_health_v2`, Flow-004).
    pub(crate) fn record_health(
        &mut self,
        source: SourceKind,
        health: Health,
        reason: &str,
        now: Millis,
    ) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let r = store.begin().and_then(|mut tx| {
            tx.set_source_health(source.as_str(), health, reason, now)?;
            tx.commit()
        });
        if let Err(e) = r {
            self.store_failed("health", e);
        }
    }

    /// Persisted source health rows (for `explain`/`doctor`).
    pub fn health_rows(&self) -> Vec<HealthRow> {
        self.store
            .as_ref()
            .and_then(|s| s.source_health().ok())
            .unwrap_or_default()
    }

    pub(crate) fn prune(&mut self, now: Millis) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.prune(&self.retention, now) {
            Ok(n) => log::info!(
                "pruned rows={n} max_events={} max_age_ms={}",
                self.retention.max_events,
                self.retention.max_age_ms
            ),
            Err(e) => log::warn!("prune_failed err={e}"),
        }
    }
}

/// A pane's `pane_state_v2` row as the projection holds it now.
fn pane_state_row(
    server_key: &str,
    server_id: &str,
    id: &PaneId,
    p: &PaneModel,
    now: Millis,
) -> PaneStateRow {
    PaneStateRow {
        server_key: server_key.to_string(),
        server_id: server_id.to_string(),
        pane_id: id.clone(),
        generation: p.instance.generation,
        birth_ts: p.instance.birth_ts,
        presence: p.presence(),
        provider: p.provider(),
        evidence: p.evidence(),
        activity: p.activity(),
        attention: p.attention,
        title: p.title.clone(),
        title_source: p.title_source.as_str().to_string(),
        session_key: p.session_key.clone(),
        winner_source: p.resolution.winner.map(|s| s.as_str().to_string()),
        since_ts: p.since,
        updated_ts: now,
        state_version: p.version,
        // The agent process its hooks came from: a restart checks it still runs.
        extra: match p.anchor.filter(|a| a.alive) {
            Some(a) => serde_json::json!({"anchor": [a.pid, a.start]}).to_string(),
            None => "{}".into(),
        },
    }
}

/// The `session_state_v2` row of the session a pane row holds (None: no session, or no
/// provider).
fn session_state_row(row: &PaneStateRow, now: Millis) -> Option<SessionStateRow> {
    let (Some(sk), Some(provider)) = (row.session_key.clone(), row.provider) else {
        return None;
    };
    Some(SessionStateRow {
        session_key: sk,
        provider,
        server_key: Some(row.server_key.clone()),
        pane_id: Some(row.pane_id.clone()),
        generation: Some(row.generation),
        activity: row.activity,
        title: row.title.clone(),
        updated_ts: now,
        state_version: 0,
    })
}

/// A short word for `@agtmux_daemon`; the full error goes to the log.
fn short_problem(e: &crate::store::StoreError) -> &'static str {
    if e.is_locked() {
        "locked"
    } else if e.is_readonly() {
        "readonly"
    } else if e.is_corrupt() {
        "corrupt"
    } else {
        "error"
    }
}

/// Open the database. A corrupt file is moved aside (`*.corrupt-<ms>`) and a fresh one
/// started, so one bad file does not disable persistence forever; a locked or unopenable
/// one leaves the daemon serving from memory, saying why.
fn open_store(path: &std::path::Path, now: Millis) -> (Option<Store>, Option<String>) {
    // Our transactions are short; a writer that holds the lock longer than this is a
    // problem to report, not to wait for inside the event loop.
    let opts = crate::store::StoreOptions {
        busy_timeout: std::time::Duration::from_millis(250),
    };
    match Store::open_with(path, &opts) {
        Ok(s) => (Some(s), None),
        Err(e) if e.is_corrupt() => {
            log::error!("store_corrupt path={} err={e}", path.display());
            match Store::quarantine(path, now).and_then(|moved| {
                log::error!("store_quarantined moved_to={}", moved.display());
                Store::open_with(path, &opts)
            }) {
                Ok(s) => (Some(s), None),
                Err(e2) => {
                    log::error!("store_unavailable path={} err={e2}", path.display());
                    (None, Some(short_problem(&e2).to_string()))
                }
            }
        }
        Err(e) => {
            log::error!("store_unavailable path={} err={e}", path.display());
            (None, Some(short_problem(&e).to_string()))
        }
    }
}

/// The stored status and reason of an event after the projection applied (or refused) it;
/// logged when it had no effect or was rejected.
fn outcome(
    event: &NormalizedEvent,
    applied: Result<(), IgnoreReason>,
) -> (EventStatus, Option<String>) {
    match applied {
        Ok(()) if event.signal == Signal::Ignore => {
            (EventStatus::Ignored, Some("no_state_change".to_string()))
        }
        Ok(()) => (EventStatus::Accepted, None),
        // Already known or older than the state: stored, no effect.
        Err(r) if r.is_no_effect() => {
            log::info!(
                "ingest_ignored event_id={} source={} name={:?} pane={} reason={r}",
                event.event_id,
                event.source,
                event.name,
                event.pane_id.as_deref().unwrap_or("-")
            );
            (EventStatus::Ignored, Some(r.as_str().to_string()))
        }
        // The event cannot be applied (unknown pane, tombstoned session …).
        Err(r) => {
            log::warn!(
                "ingest_rejected event_id={} source={} name={:?} pane={} reason={:?}",
                event.event_id,
                event.source,
                event.name,
                event.pane_id.as_deref().unwrap_or("-"),
                r.as_str()
            );
            (EventStatus::Rejected, Some(r.as_str().to_string()))
        }
    }
}

/// The transcript path a Claude hook payload names (the raw spool line is the envelope).
fn transcript_path(raw: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    v.get("payload")?
        .get("transcript_path")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

fn truncate_raw(raw: String) -> String {
    const MAX: usize = 64 * 1024;
    if raw.len() <= MAX {
        return raw;
    }
    let end = crate::core::text::floor_char_boundary(&raw, MAX);
    format!("{}…[{} bytes]", &raw[..end], raw.len())
}

/// The row of an item that failed validation.
#[allow(clippy::too_many_arguments)]
fn rejected_row(
    server_key: &str,
    event_id: String,
    source: &str,
    reason: String,
    raw: String,
    ts: Millis,
    now: Millis,
    gateway_ts: Millis,
) -> EventRow {
    EventRow {
        seq: 0,
        event_id,
        server_key: server_key.to_string(),
        source: source.into(),
        provider: None,
        pane_id: None,
        session_key: None,
        name: String::new(),
        status: EventStatus::Rejected,
        reason: Some(reason),
        recv_ts: ts,
        ingest_ts: now,
        payload: truncate_raw(raw),
        hops: format!("{{\"source\":{ts},\"gateway\":{gateway_ts}}}"),
    }
}

fn event_row(
    server_key: &str,
    ev: &NormalizedEvent,
    status: EventStatus,
    reason: Option<String>,
    raw: String,
    now: Millis,
) -> EventRow {
    EventRow {
        seq: 0,
        event_id: ev.event_id.clone(),
        server_key: server_key.to_string(),
        source: ev.source.as_str().to_string(),
        provider: Some(ev.provider.as_str().to_string()),
        pane_id: ev.pane_id.clone(),
        session_key: ev.session_key.clone(),
        name: ev.name.clone(),
        status,
        reason,
        recv_ts: ev.ts,
        ingest_ts: now,
        payload: truncate_raw(raw),
        hops: format!(
            "{{\"source\":{},\"gateway\":{now},\"daemon\":{now}}}",
            ev.ts
        ),
    }
}
