//! `agtmux source list|register|revoke` (C-014 source registry manager, Flow-013): the operator
//! side of the source registry. The running daemon owns the registry (admission decisions are
//! made from its in-memory table and every transition is logged and persisted), so these
//! commands go through its API (`source.list`, `source.register`, `source.revoke`); without a
//! running daemon `list` reads `source_registry_v1` from the database.
//!
//! WHY operator commands: the seed limits who may change the registry to the supervisor
//! (automatic transitions) and the operator (manual register/revoke); a source can never
//! register itself.
use super::client::{self, ClientError, Conn, ServerOpts};
use crate::exit::ExitCode;
use crate::store::Store;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    #[command(subcommand)]
    pub action: SourceAction,
    /// Versioned JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceAction {
    /// Registered sources with their lifecycle state.
    List,
    /// Register a source endpoint (`pending` until its `source.hello`); re-registering the same
    /// kind and owner with a new socket is a socket rotation.
    Register {
        /// Source kind, e.g. `codex_appserver`.
        source_kind: String,
        /// The source's socket path (absolute).
        socket_path: String,
        /// Owner uid (default: yours).
        #[arg(long)]
        owner_uid: Option<u32>,
    },
    /// Revoke a source (`* → revoked`): its connections are refused until re-registered.
    Revoke {
        /// `source_id` (`kind:uid`) or a source kind (for your uid).
        source: String,
    },
}

pub fn run(args: &SourceArgs) -> ExitCode {
    let sp = args.server.paths();
    let (method, params) = match &args.action {
        SourceAction::List => ("source.list", json!({})),
        SourceAction::Register {
            source_kind,
            socket_path,
            owner_uid,
        } => {
            let mut p = json!({"source_kind": source_kind, "socket_path": socket_path});
            if let Some(u) = owner_uid {
                p["owner_uid"] = json!(u);
            }
            ("source.register", p)
        }
        SourceAction::Revoke { source } => {
            if source.contains(':') {
                ("source.revoke", json!({"source_id": source}))
            } else {
                ("source.revoke", json!({"source_kind": source}))
            }
        }
    };
    let answer = Conn::connect(&sp).and_then(|mut c| c.request(method, params));
    let result = match answer {
        Ok(v) => v,
        Err(ClientError::NoDaemon(..)) if method == "source.list" => {
            match Store::open(&sp.db()).and_then(|s| s.source_registry()) {
                Ok(rows) => json!({"entries": rows.iter().map(|r| json!({
                    "source_id": r.source_id, "source_kind": r.source_kind,
                    "socket_path": r.socket_path, "owner_uid": r.owner_uid,
                    "state": r.state, "last_heartbeat_ts": r.last_heartbeat_ts,
                    "updated_ts": r.updated_ts, "registered_by": r.registered_by,
                })).collect::<Vec<_>>()}),
                Err(e) => return client::fail(&e, ExitCode::Failure),
            }
        }
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    if args.json {
        println!("{}", json!({"v": 1, "result": result}));
        return ExitCode::Ok;
    }
    let entries: Vec<&Value> = match result.get("entries").and_then(Value::as_array) {
        Some(a) => a.iter().collect(),
        None => vec![&result],
    };
    for e in entries {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        println!(
            "{:<28} {:<8} uid={:<6} by={:<10} {}",
            s("source_id"),
            s("state"),
            e.get("owner_uid").and_then(Value::as_u64).unwrap_or(0),
            s("registered_by"),
            s("socket_path")
        );
    }
    let conns = result.get("connections").and_then(Value::as_array);
    if let Some(conns) = conns.filter(|c| !c.is_empty()) {
        println!("recent source connections (agtmux trace --connection ID):");
        for c in conns {
            let s = |k: &str| match c.get(k) {
                Some(Value::String(x)) => x.clone(),
                Some(Value::Null) | None => "-".into(),
                Some(v) => v.to_string(),
            };
            let last = c["steps"]
                .as_array()
                .and_then(|a| a.last())
                .map(|st| format!("{} {}", s_of(&st["step"]), s_of(&st["detail"])))
                .unwrap_or_default();
            println!(
                "  {:<5} {:<16} peer_uid={:<6} pulled={:<6} {} {}",
                s("connection"),
                s("kind"),
                s("peer_uid"),
                s("events_pulled"),
                c["closed_reason"]
                    .as_str()
                    .map(|r| format!("closed: {r};"))
                    .unwrap_or_else(|| "open;".into()),
                last
            );
        }
    }
    ExitCode::Ok
}

fn s_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
