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
pub const SOURCE_PROTOCOL_VERSION: u64 = 1;
/// Default heartbeat timeout (Flow-013).
pub const HEARTBEAT_TIMEOUT_MS: Millis = 30_000;

/// The peer of a Unix socket, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// `getsockopt(SOL_SOCKET, SO_PEERCRED)` on a connected Unix socket.
pub fn peer_cred(fd: i32) -> io::Result<PeerCred> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `c`, a properly sized local.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// The daemon's own uid.
pub fn runtime_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

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
pub fn admit_peer(peer: Result<PeerCred, io::Error>, runtime_uid: u32) -> Result<PeerCred, Reject> {
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
pub fn nonce_path(runtime_dir: &Path, key: &str) -> PathBuf {
    runtime_dir.join(format!("{key}.nonce"))
}

/// Generate a random nonce and write it 0600 (replacing any earlier daemon's).
pub fn create_nonce(path: &Path) -> io::Result<String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
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
    pub const ALL: [RegState; 4] = [
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source_id: String,
    pub source_kind: String,
    pub socket_path: String,
    pub owner_uid: u32,
    pub state: RegState,
    pub last_heartbeat: Option<Millis>,
    pub updated: Millis,
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
                            },
                        );
                    }
                }
                Err(e) => log::warn!("source_registry_load_failed err={e}"),
            }
        }
        let heartbeat_timeout = std::env::var("AGTMUX_SOURCE_HEARTBEAT_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse::<Millis>().ok())
            .filter(|v| *v > 0)
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
            None => {
                let e = Entry {
                    source_id: id.clone(),
                    source_kind: kind.into(),
                    socket_path: socket_path.into(),
                    owner_uid,
                    state: RegState::Pending,
                    last_heartbeat: None,
                    updated: now,
                };
                log::info!(
                    "source_registry_transition source_id={id} from=none to=pending reason=register socket={socket_path}"
                );
                let row = e.row();
                self.entries.insert(id.clone(), e);
                self.persist(&row);
            }
            Some((RegState::Revoked, _)) | Some((RegState::Pending, _)) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.socket_path = socket_path.into();
                    e.last_heartbeat = None;
                }
                self.transition(&id, RegState::Pending, "register", now);
            }
            Some((RegState::Stale, old)) | Some((RegState::Active, old)) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.socket_path = socket_path.into();
                    e.last_heartbeat = Some(now);
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
                    && e.source_kind == kind
                    && e.socket_path == path
                    && e.owner_uid == peer_uid =>
            {
                Ok(id)
            }
            Some(e) if e.state == RegState::Revoked => {
                Err(Reject::SourceRegistryMiss(format!("{id} is revoked")))
            }
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
    fn peer_cred_of_a_socketpair_is_ourselves() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsRawFd;
        let c = peer_cred(a.as_raw_fd()).unwrap();
        assert_eq!(c.uid, runtime_uid());
        assert_eq!(c.pid, std::process::id() as i32);
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
        let e = r
            .register("codex_appserver", "/s/rotated", 0, 40_000)
            .unwrap();
        assert_eq!(
            (e.state, e.socket_path.as_str()),
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
