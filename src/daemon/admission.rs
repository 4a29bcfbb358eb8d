//! Flow-009 UDS trust admission and Flow-013 source registry lifecycle (C-014 source registry
//! manager).
//!
//! - Every connection to the daemon's API socket is checked with `SO_PEERCRED`: the peer's uid
//!   must be the daemon's own (`peer_uid == runtime_uid`), else it is closed with
//!   `peer_uid_mismatch`. The socket's 0600 mode already keeps other users out; this check is
//!   the second wall (a socket made reachable by mistake, a dir with loose modes).
//! - A source connection introduces itself with `source.hello {source_kind, socket_path, nonce,
//!   protocol_version}`. It is accepted only with the runtime nonce (random, generated at daemon
//!   start, written 0600 into the runtime dir: only the same user can read it) and a registry
//!   match on `source_kind + socket_path + owner_uid` (owner = the peer's uid). Anything else is
//!   refused, fail-closed: `runtime_nonce_mismatch`, `source_registry_miss`,
//!   `protocol_version_mismatch`.
//! - Lifecycle `pending → active → stale → revoked`: an operator registers (`pending`), a good
//!   hello activates, a heartbeat missing for `heartbeat_timeout` (30 s) makes it `stale`, the
//!   operator revokes (`* → revoked`). A socket rotation is a re-registration of the same
//!   `source_kind + owner_uid` (same `source_id`) with the new path: `stale → active`.
//!   Every transition is logged (`source_registry_transition`) and persisted to
//!   `source_registry_v1`. The in-memory table is authoritative; a store failure is logged.
use crate::core::types::Millis;
use crate::store::{SourceRegistryRow, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Protocol version a source must announce in `source.hello`.
pub(crate) const SOURCE_PROTOCOL_VERSION: u64 = 1;
/// Default heartbeat timeout (Flow-013).
pub(crate) const HEARTBEAT_TIMEOUT_MS: Millis = 30_000;

use crate::sys::peercred::PeerCred;

/// Why a connection or a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    PeerUidMismatch { peer_uid: u32, runtime_uid: u32 },
    RuntimeNonceMismatch,
    SourceRegistryMiss(String),
    ProtocolVersionMismatch(u64),
    InvalidHello(String),
}

impl Reject {
    pub fn code(&self) -> &'static str {
        match self {
            Reject::PeerUidMismatch { .. } => "peer_uid_mismatch",
            Reject::RuntimeNonceMismatch => "runtime_nonce_mismatch",
            Reject::SourceRegistryMiss(_) => "source_registry_miss",
            Reject::ProtocolVersionMismatch(_) => "protocol_version_mismatch",
            Reject::InvalidHello(_) => "invalid_params",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::PeerUidMismatch {
                peer_uid,
                runtime_uid,
            } => write!(
                f,
                "peer uid {peer_uid} is not the daemon's uid {runtime_uid}"
            ),
            Reject::RuntimeNonceMismatch => f.write_str("the nonce is not this daemon's"),
            Reject::SourceRegistryMiss(d) => write!(f, "no registry match: {d}"),
            Reject::ProtocolVersionMismatch(v) => write!(
                f,
                "protocol_version {v} unsupported (want {SOURCE_PROTOCOL_VERSION})"
            ),
            Reject::InvalidHello(d) => f.write_str(d),
        }
    }
}

impl std::error::Error for Reject {}

/// Check a freshly accepted connection (Flow-009 first wall).
pub(crate) fn admit_peer(
    peer: Result<PeerCred, io::Error>,
    runtime_uid: u32,
) -> Result<PeerCred, Reject> {
    match peer {
        Ok(p) if p.uid == runtime_uid => Ok(p),
        Ok(p) => Err(Reject::PeerUidMismatch {
            peer_uid: p.uid,
            runtime_uid,
        }),
        // No credentials: refuse rather than guess.
        Err(_) => Err(Reject::PeerUidMismatch {
            peer_uid: u32::MAX,
            runtime_uid,
        }),
    }
}

/// The per-daemon nonce file in the runtime dir.
pub(crate) fn nonce_path(runtime_dir: &Path, key: &str) -> PathBuf {
    runtime_dir.join(format!("{key}.nonce"))
}

/// Generate a random nonce and write it 0600 (replacing any earlier daemon's).
pub(crate) fn create_nonce(path: &Path) -> io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut b = [0u8; 16];
    crate::sys::random::fill(&mut b)?;
    let nonce: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(nonce.as_bytes())?;
    Ok(nonce)
}

/// Registry state (Flow-013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegState {
    Pending,
    Active,
    Stale,
    Revoked,
}

impl RegState {
    pub(crate) const ALL: [RegState; 4] = [
        RegState::Pending,
        RegState::Active,
        RegState::Stale,
        RegState::Revoked,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Pending => "pending",
            RegState::Active => "active",
            RegState::Stale => "stale",
            RegState::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<RegState> {
        RegState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who registered an entry: the seed's two registry authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `agtmux source register` (or the API's `source.register`).
    Operator,
    /// The runtime supervisor, for a source it runs or discovers itself (the Codex
    /// app-server socket). It may re-point its own entries, never an operator's.
    Supervisor,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Operator => "operator",
            Origin::Supervisor => "supervisor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source_id: String,
    pub source_kind: String,
    pub socket_path: String,
    pub(crate) owner_uid: u32,
    pub state: RegState,
    pub(crate) last_heartbeat: Option<Millis>,
    pub updated: Millis,
    pub registered_by: Origin,
}

impl Entry {
    fn row(&self) -> SourceRegistryRow {
        SourceRegistryRow {
            source_id: self.source_id.clone(),
            source_kind: self.source_kind.clone(),
            socket_path: self.socket_path.clone(),
            owner_uid: self.owner_uid,
            state: self.state.as_str().into(),
            nonce: None,
            last_heartbeat_ts: self.last_heartbeat,
            updated_ts: self.updated,
            registered_by: self.registered_by.as_str().into(),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "source_id": self.source_id,
            "source_kind": self.source_kind,
            "socket_path": self.socket_path,
            "owner_uid": self.owner_uid,
            "state": self.state.as_str(),
            "last_heartbeat_ts": self.last_heartbeat,
            "updated_ts": self.updated,
            "registered_by": self.registered_by.as_str(),
        })
    }
}

/// The source id of a kind and owner: re-registration of the same pair is a socket rotation.
pub fn source_id(kind: &str, owner_uid: u32) -> String {
    format!("{kind}:{owner_uid}")
}

fn valid_kind(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_socket_path(p: &str) -> bool {
    p.starts_with('/') && p.len() <= 4096 && !p.contains('\0')
}

/// The C-014 registry manager.
#[derive(Debug)]
pub struct SourceRegistry {
    entries: BTreeMap<String, Entry>,
    store: Option<Store>,
    pub heartbeat_timeout: Millis,
    /// Admission rejects by reason (metrics).
    pub rejects: BTreeMap<&'static str, u64>,
}

impl SourceRegistry {
    /// Load the persisted registry (the store may be absent: memory only).
    pub fn load(store: Option<Store>) -> Self {
        let mut entries = BTreeMap::new();
        if let Some(s) = store.as_ref() {
            match s.source_registry() {
                Ok(rows) => {
                    for r in rows {
                        let Some(state) = RegState::parse(&r.state) else {
                            continue;
                        };
                        entries.insert(
                            r.source_id.clone(),
                            Entry {
                                source_id: r.source_id,
                                source_kind: r.source_kind,
                                socket_path: r.socket_path,
                                owner_uid: r.owner_uid,
                                state,
                                last_heartbeat: r.last_heartbeat_ts,
                                updated: r.updated_ts,
                                registered_by: if r.registered_by == "supervisor" {
                                    Origin::Supervisor
                                } else {
                                    Origin::Operator
                                },
                            },
                        );
                    }
                }
                Err(e) => log::warn!("source_registry_load_failed err={e}"),
            }
        }
        let heartbeat_timeout = crate::sys::env::positive("AGTMUX_SOURCE_HEARTBEAT_TIMEOUT_MS")
            .unwrap_or(HEARTBEAT_TIMEOUT_MS);
        log::info!(
            "source_registry_loaded entries={} heartbeat_timeout_ms={heartbeat_timeout}",
            entries.len()
        );
        SourceRegistry {
            entries,
            store,
            heartbeat_timeout,
            rejects: BTreeMap::new(),
        }
    }

    /// The database was opened again or rebuilt (`Gateway::store_generation`): drop this
    /// connection, which may point at a deleted or quarantined file, open the one at `path`,
    /// and write every entry there (the in-memory table is authoritative; a rebuilt file may
    /// lack them). Without a database now, the registry stays memory-only until the next call.
    pub fn reattach(&mut self, path: &Path) {
        self.store = None;
        let opts = crate::store::StoreOptions {
            busy_timeout: std::time::Duration::from_millis(250),
        };
        match Store::open_with(path, &opts) {
            Ok(s) => self.store = Some(s),
            Err(e) => {
                log::warn!("source_registry_store_unavailable err={e}");
                return;
            }
        }
        let rows: Vec<SourceRegistryRow> = self.entries.values().map(Entry::row).collect();
        for row in &rows {
            self.persist(row);
        }
        log::info!(
            "source_registry_reattached path={} entries={}",
            path.display(),
            rows.len()
        );
    }

    /// An empty, memory-only registry (a stand-in while the real one is lent out).
    pub fn empty() -> Self {
        SourceRegistry {
            entries: BTreeMap::new(),
            store: None,
            heartbeat_timeout: HEARTBEAT_TIMEOUT_MS,
            rejects: BTreeMap::new(),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    fn transition(&mut self, id: &str, to: RegState, why: &str, now: Millis) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        let from = e.state;
        e.state = to;
        e.updated = now;
        log::info!(
            "source_registry_transition source_id={id} from={} to={} reason={why} socket={}",
            from.as_str(),
            to.as_str(),
            e.socket_path
        );
        let row = e.row();
        self.persist(&row);
    }

    fn persist(&mut self, row: &SourceRegistryRow) {
        if let Some(s) = self.store.as_mut() {
            let r = s.begin().and_then(|mut tx| {
                tx.upsert_source_registry(row)?;
                tx.commit()
            });
            if let Err(e) = r {
                log::warn!(
                    "source_registry_persist_failed source_id={} err={e}",
                    row.source_id
                );
            }
        }
    }

    /// A new entry, `pending`, logged and persisted.
    #[allow(clippy::too_many_arguments)]
    fn insert_pending(
        &mut self,
        id: &str,
        kind: &str,
        socket_path: &str,
        owner_uid: u32,
        by: Origin,
        why: &str,
        now: Millis,
    ) {
        let e = Entry {
            source_id: id.to_string(),
            source_kind: kind.into(),
            socket_path: socket_path.into(),
            owner_uid,
            state: RegState::Pending,
            last_heartbeat: None,
            updated: now,
            registered_by: by,
        };
        log::info!(
            "source_registry_transition source_id={id} from=none to=pending reason={why} socket={socket_path} by={}",
            by.as_str()
        );
        let row = e.row();
        self.entries.insert(id.to_string(), e);
        self.persist(&row);
    }

    /// Operator `register`: a new entry starts `pending`; a re-registration of the same kind
    /// and owner with a new socket is a rotation (`stale|active → active` at the new path); a
    /// revoked entry starts over at `pending`.
    pub fn register(
        &mut self,
        kind: &str,
        socket_path: &str,
        owner_uid: u32,
        now: Millis,
    ) -> Result<Entry, Reject> {
        if !valid_kind(kind) {
            return Err(Reject::InvalidHello(format!("bad source_kind {kind:?}")));
        }
        if !valid_socket_path(socket_path) {
            return Err(Reject::InvalidHello(format!(
                "socket_path must be absolute: {socket_path:?}"
            )));
        }
        let id = source_id(kind, owner_uid);
        match self
            .entries
            .get(&id)
            .map(|e| (e.state, e.socket_path.clone()))
        {
            None => self.insert_pending(
                &id,
                kind,
                socket_path,
                owner_uid,
                Origin::Operator,
                "register",
                now,
            ),
            Some((RegState::Revoked, _)) | Some((RegState::Pending, _)) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.socket_path = socket_path.into();
                    e.last_heartbeat = None;
                    e.registered_by = Origin::Operator;
                }
                self.transition(&id, RegState::Pending, "register", now);
            }
            Some((RegState::Stale, old)) | Some((RegState::Active, old)) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.socket_path = socket_path.into();
                    e.last_heartbeat = Some(now);
                    e.registered_by = Origin::Operator;
                }
                let why = if old == socket_path {
                    "reregister"
                } else {
                    "socket_rotation"
                };
                self.transition(&id, RegState::Active, why, now);
            }
        }
        self.entries
            .get(&id)
            .cloned()
            .ok_or_else(|| Reject::SourceRegistryMiss(format!("{id} vanished during registration")))
    }

    /// One entry.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The supervisor's own registration of a source it runs or discovers (Flow-013, registry
    /// authority "runtime supervisor"): a new entry starts `pending`; its own entry follows the
    /// discovered socket when that moves (a rotation: back to `pending` until the new endpoint
    /// answers). An operator's entry, and any revoked one, is left alone: the operator's word
    /// wins. Returns the entry as it stands.
    pub(crate) fn ensure_supervised(
        &mut self,
        kind: &str,
        socket_path: &str,
        owner_uid: u32,
        now: Millis,
    ) -> Option<Entry> {
        if !valid_kind(kind) || !valid_socket_path(socket_path) {
            log::warn!(
                "source_registry_refused kind={kind:?} socket={socket_path:?} reason=invalid"
            );
            return None;
        }
        let id = source_id(kind, owner_uid);
        match self.entries.get(&id) {
            None => self.insert_pending(
                &id,
                kind,
                socket_path,
                owner_uid,
                Origin::Supervisor,
                "discovered",
                now,
            ),
            Some(e)
                if e.registered_by == Origin::Supervisor
                    && e.state != RegState::Revoked
                    && e.socket_path != socket_path =>
            {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.socket_path = socket_path.into();
                    e.last_heartbeat = None;
                }
                self.transition(&id, RegState::Pending, "socket_rotation", now);
            }
            Some(_) => {}
        }
        self.entries.get(&id).cloned()
    }

    /// Flow-009 for a source the gateway connects to (pulls from): the connection is accepted
    /// only when the listener's uid is ours and the registry holds a live entry for exactly
    /// this kind, socket and owner. On success the entry becomes `active` (`why` says how:
    /// `handshake`, `reconnected`, `socket_rotation`) with a fresh heartbeat. A refusal is
    /// counted and logged like any admission reject.
    pub(crate) fn admit_pulled(
        &mut self,
        kind: &str,
        socket_path: &str,
        peer_uid: u32,
        runtime_uid: u32,
        why: &str,
        now: Millis,
    ) -> Result<Entry, Reject> {
        let id = source_id(kind, runtime_uid);
        let r = if peer_uid != runtime_uid {
            Err(Reject::PeerUidMismatch {
                peer_uid,
                runtime_uid,
            })
        } else {
            match self.entries.get(&id) {
                Some(e) if e.state == RegState::Revoked => {
                    Err(Reject::SourceRegistryMiss(format!("{id} is revoked")))
                }
                Some(e) if e.socket_path == socket_path && e.owner_uid == peer_uid => Ok(()),
                Some(e) => Err(Reject::SourceRegistryMiss(format!(
                    "{id} is registered at {}, not {socket_path}",
                    e.socket_path
                ))),
                None => Err(Reject::SourceRegistryMiss(format!(
                    "{id} is not registered"
                ))),
            }
        };
        if let Err(e) = r {
            *self.rejects.entry(e.code()).or_default() += 1;
            log::warn!(
                "source_admission_rejected reason={} peer_uid={peer_uid} socket={socket_path} detail={:?}",
                e.code(),
                e.to_string()
            );
            return Err(e);
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.last_heartbeat = Some(now);
        }
        if self.entries.get(&id).map(|e| e.state) != Some(RegState::Active) {
            self.transition(&id, RegState::Active, why, now);
        }
        self.entries
            .get(&id)
            .cloned()
            .ok_or(Reject::SourceRegistryMiss(id))
    }

    /// `active → stale` for a reason other than the heartbeat timeout: the socket is
    /// unreachable, the connection was lost or closed. Other states are left alone.
    pub(crate) fn mark_stale(&mut self, id: &str, why: &str, now: Millis) {
        if self.entries.get(id).map(|e| e.state) == Some(RegState::Active) {
            self.transition(id, RegState::Stale, why, now);
        }
    }

    /// Count an admission reject seen outside the registry (the API socket's peer check).
    pub(crate) fn count_reject(&mut self, r: &Reject) {
        *self.rejects.entry(r.code()).or_default() += 1;
    }

    /// Operator `revoke` (by source id, or by kind for the caller's uid): `* → revoked`.
    pub fn revoke(&mut self, id: &str, now: Millis) -> Option<Entry> {
        self.entries.get(id)?;
        self.transition(id, RegState::Revoked, "operator_revoke", now);
        self.entries.get(id).cloned()
    }

    /// `source.hello` (Flow-009): nonce, version, then registry match; fail-closed.
    pub fn hello(
        &mut self,
        params: &Value,
        peer_uid: u32,
        runtime_nonce: &str,
        now: Millis,
    ) -> Result<Entry, Reject> {
        let r = self.check_hello(params, peer_uid, runtime_nonce);
        match r {
            Ok(id) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.last_heartbeat = Some(now);
                }
                let state = self.entries.get(&id).map(|e| e.state);
                if state != Some(RegState::Active) {
                    self.transition(&id, RegState::Active, "hello", now);
                } else if let Some(row) = self.entries.get(&id).map(Entry::row) {
                    self.persist(&row);
                }
                self.entries
                    .get(&id)
                    .cloned()
                    .ok_or(Reject::SourceRegistryMiss(id))
            }
            Err(e) => {
                *self.rejects.entry(e.code()).or_default() += 1;
                log::warn!(
                    "source_admission_rejected reason={} peer_uid={peer_uid} detail={:?}",
                    e.code(),
                    e.to_string()
                );
                Err(e)
            }
        }
    }

    fn check_hello(
        &self,
        params: &Value,
        peer_uid: u32,
        runtime_nonce: &str,
    ) -> Result<String, Reject> {
        let s = |k: &str| params.get(k).and_then(Value::as_str);
        let (Some(kind), Some(path), Some(nonce)) =
            (s("source_kind"), s("socket_path"), s("nonce"))
        else {
            return Err(Reject::InvalidHello(
                "source.hello needs source_kind, socket_path, nonce, protocol_version".into(),
            ));
        };
        // Constant-time compare: the nonce is a secret.
        let a = nonce.as_bytes();
        let b = runtime_nonce.as_bytes();
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if !same || runtime_nonce.is_empty() {
            return Err(Reject::RuntimeNonceMismatch);
        }
        match params.get("protocol_version").and_then(Value::as_u64) {
            Some(SOURCE_PROTOCOL_VERSION) => {}
            Some(v) => return Err(Reject::ProtocolVersionMismatch(v)),
            None => return Err(Reject::ProtocolVersionMismatch(0)),
        }
        let id = source_id(kind, peer_uid);
        match self.entries.get(&id) {
            Some(e)
                if e.state != RegState::Revoked
                    && e.registered_by == Origin::Operator
                    && e.source_kind == kind
                    && e.socket_path == path
                    && e.owner_uid == peer_uid =>
            {
                Ok(id)
            }
            Some(e) if e.state == RegState::Revoked => {
                Err(Reject::SourceRegistryMiss(format!("{id} is revoked")))
            }
            Some(e) if e.registered_by == Origin::Supervisor => Err(Reject::SourceRegistryMiss(
                format!("{id} is a source the daemon connects to itself; it does not say hello"),
            )),
            Some(e) => Err(Reject::SourceRegistryMiss(format!(
                "{id} is registered at {}, not {path}",
                e.socket_path
            ))),
            None => Err(Reject::SourceRegistryMiss(format!(
                "{id} is not registered"
            ))),
        }
    }

    /// `source.heartbeat` from an admitted connection.
    pub fn heartbeat(&mut self, id: &str, now: Millis) -> Option<RegState> {
        let e = self.entries.get_mut(id)?;
        if e.state == RegState::Revoked {
            return Some(RegState::Revoked);
        }
        e.last_heartbeat = Some(now);
        if e.state == RegState::Stale {
            // The same endpoint is back: only a re-registration rotates, but a live heartbeat
            // from the admitted connection at the registered path is the same endpoint.
            self.transition(id, RegState::Active, "heartbeat_resumed", now);
        }
        self.entries.get(id).map(|e| e.state)
    }

    /// Heartbeat timeouts: `active → stale`.
    pub fn tick(&mut self, now: Millis) {
        let timeout = self.heartbeat_timeout;
        let due: Vec<String> = self
            .entries
            .values()
            .filter(|e| {
                e.state == RegState::Active && e.last_heartbeat.is_none_or(|h| now - h > timeout)
            })
            .map(|e| e.source_id.clone())
            .collect();
        for id in due {
            self.transition(&id, RegState::Stale, "heartbeat_timeout", now);
        }
    }

    /// When the next heartbeat timeout is due.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.entries
            .values()
            .filter(|e| e.state == RegState::Active)
            .map(|e| e.last_heartbeat.unwrap_or(e.updated) + self.heartbeat_timeout + 1)
            .min()
    }

    /// State counts and rejects (metrics).
    pub fn json(&self) -> Value {
        let mut counts = serde_json::Map::new();
        for s in RegState::ALL {
            counts.insert(
                s.as_str().into(),
                json!(self.entries.values().filter(|e| e.state == s).count()),
            );
        }
        json!({
            "states": counts,
            "admission_rejects": self.rejects,
            "entries": self.entries.values().map(Entry::json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(kind: &str, path: &str, nonce: &str) -> Value {
        json!({"source_kind": kind, "socket_path": path, "nonce": nonce, "protocol_version": 1})
    }

    /// An entry's state and socket path, to check both in one assertion.
    fn state_at(e: &Entry) -> (RegState, &str) {
        (e.state, e.socket_path.as_str())
    }

    #[test]
    fn peer_uid_must_match() {
        let p = PeerCred {
            pid: 1,
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(
            admit_peer(Ok(p), 0).unwrap_err().code(),
            "peer_uid_mismatch"
        );
        assert!(admit_peer(Ok(PeerCred { uid: 0, ..p }), 0).is_ok());
        assert!(admit_peer(Err(io::Error::other("x")), 0).is_err());
    }

    #[test]
    fn lifecycle_pending_active_stale_revoked_and_rotation() {
        let store = Store::open_memory().unwrap();
        let mut r = SourceRegistry::load(Some(store));
        r.heartbeat_timeout = 30_000;
        let n = "abcd";
        // Unregistered: miss. Wrong nonce: mismatch (checked first, fail-closed).
        assert_eq!(
            r.hello(&hello("codex_appserver", "/s/a", n), 0, n, 0)
                .unwrap_err()
                .code(),
            "source_registry_miss"
        );
        assert_eq!(
            r.hello(&hello("codex_appserver", "/s/a", "zzzz"), 0, n, 0)
                .unwrap_err()
                .code(),
            "runtime_nonce_mismatch"
        );
        let e = r.register("codex_appserver", "/s/a", 0, 1).unwrap();
        assert_eq!(e.state, RegState::Pending);
        // Another uid or another path does not match.
        assert!(
            r.hello(&hello("codex_appserver", "/s/a", n), 7, n, 2)
                .is_err()
        );
        assert!(
            r.hello(&hello("codex_appserver", "/s/b", n), 0, n, 2)
                .is_err()
        );
        let mut v2 = hello("codex_appserver", "/s/a", n);
        v2["protocol_version"] = json!(2);
        assert_eq!(
            r.hello(&v2, 0, n, 2).unwrap_err().code(),
            "protocol_version_mismatch"
        );
        assert_eq!(
            r.hello(&hello("codex_appserver", "/s/a", n), 0, n, 3)
                .unwrap()
                .state,
            RegState::Active
        );
        r.tick(30_003);
        assert_eq!(r.entries().next().unwrap().state, RegState::Active);
        r.tick(30_004);
        assert_eq!(r.entries().next().unwrap().state, RegState::Stale);
        // Rotation: same kind + owner, new socket → active at the new path.
        assert_eq!(
            state_at(
                &r.register("codex_appserver", "/s/rotated", 0, 40_000)
                    .unwrap()
            ),
            (RegState::Active, "/s/rotated")
        );
        // Revoke: the hello is refused until re-registered.
        r.revoke("codex_appserver:0", 41_000).unwrap();
        assert_eq!(
            r.hello(&hello("codex_appserver", "/s/rotated", n), 0, n, 41_001)
                .unwrap_err()
                .code(),
            "source_registry_miss"
        );
        assert_eq!(
            r.register("codex_appserver", "/s/rotated", 0, 42_000)
                .unwrap()
                .state,
            RegState::Pending
        );
        assert!(
            r.hello(&hello("codex_appserver", "/s/rotated", n), 0, n, 42_001)
                .is_ok()
        );
        // Persisted: a reload sees the same table.
        let persisted = r.store.take().unwrap();
        let rows = persisted.source_registry().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "active");
        assert_eq!(rows[0].socket_path, "/s/rotated");
        assert_eq!(r.rejects.get("source_registry_miss"), Some(&4));
    }

    #[test]
    fn the_supervisor_owns_its_entries_and_the_operator_wins() {
        let mut r = SourceRegistry::load(Some(Store::open_memory().unwrap()));
        let e = r
            .ensure_supervised("codex_appserver", "/h/a.sock", 0, 1)
            .unwrap();
        assert_eq!(
            (e.state, e.registered_by),
            (RegState::Pending, Origin::Supervisor)
        );
        // Admission of a pulled source: uid first, then an exact registry match.
        let wrong_uid = r.admit_pulled("codex_appserver", "/h/a.sock", 1000, 0, "handshake", 2);
        assert_eq!(wrong_uid.unwrap_err().code(), "peer_uid_mismatch");
        let wrong_path = r.admit_pulled("codex_appserver", "/h/b.sock", 0, 0, "handshake", 2);
        assert_eq!(wrong_path.unwrap_err().code(), "source_registry_miss");
        let ok = r.admit_pulled("codex_appserver", "/h/a.sock", 0, 0, "handshake", 3);
        assert_eq!(ok.unwrap().state, RegState::Active);
        assert_eq!(r.rejects.get("peer_uid_mismatch"), Some(&1));
        // Not reachable any more: stale; a second mark is a no-op.
        r.mark_stale("codex_appserver:0", "socket_unreachable", 4);
        r.mark_stale("codex_appserver:0", "connection_lost", 5);
        assert_eq!(r.entry("codex_appserver:0").unwrap().state, RegState::Stale);
        assert_eq!(r.entry("codex_appserver:0").unwrap().updated, 4);
        // The discovered socket moved: its own entry follows (back to pending).
        assert_eq!(
            state_at(
                &r.ensure_supervised("codex_appserver", "/h2/a.sock", 0, 6)
                    .unwrap()
            ),
            (RegState::Pending, "/h2/a.sock")
        );
        // The operator registers another path: it wins, and the supervisor leaves it alone.
        r.register("codex_appserver", "/op/x.sock", 0, 7).unwrap();
        let e = r
            .ensure_supervised("codex_appserver", "/h3/a.sock", 0, 8)
            .unwrap();
        assert_eq!(
            (e.socket_path.as_str(), e.registered_by),
            ("/op/x.sock", Origin::Operator)
        );
        // Revoked: nothing the supervisor does brings it back, and admission is refused.
        r.revoke("codex_appserver:0", 9).unwrap();
        let e = r
            .ensure_supervised("codex_appserver", "/h3/a.sock", 0, 10)
            .unwrap();
        assert_eq!(e.state, RegState::Revoked);
        let refused = r.admit_pulled("codex_appserver", "/op/x.sock", 0, 0, "reconnected", 11);
        assert_eq!(refused.unwrap_err().code(), "source_registry_miss");
        // Who registered survives a reload.
        let store = r.store.take().unwrap();
        assert_eq!(
            store.source_registry().unwrap()[0].registered_by,
            "operator"
        );
        // A supervisor entry cannot be claimed by an inbound hello, even with the nonce.
        let mut r = SourceRegistry::load(Some(Store::open_memory().unwrap()));
        r.ensure_supervised("codex_appserver", "/h/a.sock", 0, 1)
            .unwrap();
        let h = r.hello(&hello("codex_appserver", "/h/a.sock", "n"), 0, "n", 2);
        assert_eq!(h.unwrap_err().code(), "source_registry_miss");
    }

    #[test]
    fn nonce_file_is_private_and_random() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("agtmux-nonce-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = nonce_path(&dir, "k");
        let a = create_nonce(&p).unwrap();
        let b = create_nonce(&p).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), b);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
