//! `agtmux trace <event_id> [--json]` (seed Observability MVP, tracing): the path of one event
//! through the hops `source → gateway → daemon → option → client` with per-hop deltas.
//! Post-MVP tracing: `--delivery d…` is one delivery token's story (`pull_events → delivery →
//! ack/redelivery`), `--connection c…` one source connection's (`admission → hello →
//! pull_events`); both live in the running daemon's memory only.
//!
//! WHY two readers: the daemon keeps the traces of recent events in memory (API `trace`);
//! every event's hops are also stored in `events_raw_v2.hops`, so older events, and events of
//! a daemon that has stopped, are read from the database (opened only when it exists).
use super::client::{self, ClientError, Conn, ServerOpts};
use super::show::{fields, items, s};
use crate::daemon::metrics::trace_json;
use crate::exit::ExitCode;
use crate::store::Store;
use serde_json::{Value, json};
use std::fmt::{self, Write as _};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The event id (as in `events_raw_v2.event_id`, `explain`'s `last_event`, or the log).
    #[arg(required_unless_present_any = ["delivery", "connection"])]
    pub event_id: Option<String>,
    /// A delivery token instead (`d0000002a`, as in the log, `health` and an event's trace).
    #[arg(long, conflicts_with_all = ["event_id", "connection"])]
    pub delivery: Option<String>,
    /// A source connection instead (`c3`, as in `agtmux source list`).
    #[arg(long, conflicts_with = "event_id")]
    pub connection: Option<String>,
    /// Versioned JSON (`{"v":1,"from":"daemon"|"store",...}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug)]
pub enum TraceError {
    NotFound(String),
    Store(crate::store::StoreError),
    Api(ClientError),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::NotFound(e) => write!(f, "no event {e:?} in the daemon or the database"),
            TraceError::Store(e) => write!(f, "database: {e}"),
            TraceError::Api(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TraceError {}

pub fn run(args: &TraceArgs) -> ExitCode {
    let sp = args.server.paths();
    let other = match (&args.delivery, &args.connection) {
        (Some(d), _) => Some((
            "trace",
            json!({"delivery_token": d}),
            render_delivery as Render,
        )),
        (_, Some(c)) => Some((
            "source.trace",
            json!({"connection": c}),
            render_connection as Render,
        )),
        _ => None,
    };
    if let Some((method, params, render)) = other {
        return match Conn::connect(&sp).and_then(|mut c| c.request(method, params)) {
            Ok(t) if args.json => {
                println!("{}", json!({"v": 1, "from": "daemon", "trace": t}));
                ExitCode::Ok
            }
            Ok(t) => {
                print!("{}", render(&t));
                ExitCode::Ok
            }
            Err(e @ ClientError::Api { .. }) => client::fail(&e, ExitCode::NotFound),
            Err(e) => client::fail(&e, ExitCode::Failure),
        };
    }
    let event_id = args.event_id.as_deref().unwrap_or_default();
    let (from, t) = match find(&sp, event_id) {
        Ok(x) => x,
        Err(e @ TraceError::NotFound(_)) => return client::fail(&e, ExitCode::NotFound),
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    if args.json {
        let mut o = json!({"v": 1, "from": from});
        if let (Some(dst), Some(src)) = (o.as_object_mut(), t.as_object()) {
            dst.extend(src.clone());
        }
        println!("{o}");
    } else {
        print!("{}", render(&t));
    }
    ExitCode::Ok
}

/// The trace from the daemon's memory, else from the database.
pub fn find(
    sp: &crate::paths::ServerPaths,
    event_id: &str,
) -> Result<(&'static str, Value), TraceError> {
    match Conn::connect(sp).and_then(|mut c| c.request("trace", json!({"event_id": event_id}))) {
        Ok(v) => return Ok(("daemon", v)),
        Err(ClientError::Api { code, .. }) if code == "not_found" => {}
        Err(ClientError::NoDaemon(..)) => {}
        Err(e) => return Err(TraceError::Api(e)),
    }
    let db = sp.db();
    if !db.exists() {
        return Err(TraceError::NotFound(event_id.to_string()));
    }
    let store = Store::open(&db).map_err(TraceError::Store)?;
    let row = store
        .event(event_id)
        .map_err(TraceError::Store)?
        .ok_or_else(|| TraceError::NotFound(event_id.to_string()))?;
    let hops: Vec<(String, i64)> = serde_json::from_str::<Value>(&row.hops)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| v.as_i64().map(|t| (k, t)))
                .collect()
        })
        .unwrap_or_default();
    let hops: Vec<(&str, i64)> = hops.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    Ok((
        "store",
        trace_json(
            &row.event_id,
            row.pane_id.as_ref(),
            &row.source,
            &row.name,
            row.status.as_str(),
            row.reason.as_deref(),
            &hops,
        ),
    ))
}

type Render = fn(&Value) -> String;

/// A step list: name, epoch ms, offset from the first step, detail.
fn render_steps(o: &mut String, steps: &Value, since: &str) {
    for st in items(steps) {
        let _ = writeln!(
            o,
            "  {:<20} {:>14}  +{}ms  {}",
            s(&st["step"]),
            s(&st["ts_ms"]),
            s(&st[since]),
            st["detail"].as_str().unwrap_or("")
        );
    }
}

pub(crate) fn render_delivery(t: &Value) -> String {
    let mut o = format!(
        "delivery {} {} range={}..{} outcome={}\n",
        s(&t["delivery_token"]),
        fields(t, &["source", "items"]),
        s(&t["from"]),
        s(&t["to"]),
        s(&t["outcome"])
    );
    render_steps(&mut o, &t["steps"], "since_pull_ms");
    let ids: Vec<String> = items(&t["event_ids"]).map(s).collect();
    if !ids.is_empty() {
        let _ = writeln!(o, "  events: {}", ids.join(" "));
    }
    o
}

/// The fields of a connection's header line, in order.
const CONNECTION_FIELDS: &[&str] = &[
    "kind",
    "socket",
    "peer_pid",
    "peer_uid",
    "events_pulled",
    "heartbeats",
];

pub(crate) fn render_connection(t: &Value) -> String {
    let head = fields(t, CONNECTION_FIELDS);
    let mut o = format!("connection {} {head}\n", s(&t["connection"]));
    render_steps(&mut o, &t["steps"], "since_open_ms");
    match t["closed_reason"].as_str() {
        Some(r) => {
            let _ = writeln!(o, "  closed at {}: {r}", s(&t["closed_ts"]));
        }
        None => {
            let _ = writeln!(o, "  open");
        }
    }
    o
}

/// One header line, then one line per hop: name, epoch ms, delta from the previous hop and
/// from the source.
pub(crate) fn render(t: &Value) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "event {} {} pane={} status={}{}{}",
        s(&t["event_id"]),
        fields(t, &["source", "name"]),
        s(&t["pane_id"]),
        s(&t["status"]),
        t["reason"]
            .as_str()
            .map(|r| format!(" reason={r}"))
            .unwrap_or_default(),
        t["delivery_token"]
            .as_str()
            .map(|d| format!(" delivery={d}"))
            .unwrap_or_default()
    );
    for h in items(&t["hops"]) {
        let d = h["delta_ms"]
            .as_i64()
            .map(|d| format!("{d:+}ms"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  {:<8} {:>14}  {:>9}  (source +{}ms)",
            s(&h["hop"]),
            s(&h["ts_ms"]),
            d,
            s(&h["since_source_ms"])
        );
    }
    let missing: Vec<String> = items(&t["missing"]).map(s).collect();
    if !missing.is_empty() {
        let _ = writeln!(
            o,
            "  not reached: {} (no published change / no API subscriber / rejected)",
            missing.join(", ")
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_each_field() {
        let d = json!({"delivery_token": "d7", "source": "hooks_spool", "items": 3, "from": "a",
            "to": "b", "outcome": "acked", "steps": [], "event_ids": ["e1", "e2"]});
        assert_eq!(
            render_delivery(&d),
            "delivery d7 source=hooks_spool items=3 range=a..b outcome=acked\n  events: e1 e2\n"
        );
        let c = json!({"connection": "c3", "kind": "codex_appserver", "socket": "/s",
            "peer_pid": 9, "peer_uid": 0, "events_pulled": 5, "heartbeats": null,
            "steps": [], "closed_reason": null});
        assert_eq!(
            render_connection(&c),
            "connection c3 kind=codex_appserver socket=/s peer_pid=9 peer_uid=0 \
             events_pulled=5 heartbeats=-\n  open\n"
        );
        let e = json!({"event_id": "e1", "source": "claude_hooks", "name": "Stop",
            "pane_id": "%1", "status": "accepted", "hops": [], "missing": ["client"]});
        assert!(
            render(&e).starts_with(
                "event e1 source=claude_hooks name=Stop pane=%1 status=accepted\n  not reached: client"
            ),
            "{}",
            render(&e)
        );
    }
}
