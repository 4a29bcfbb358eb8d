//! The `source.*` methods of the local API: a source connection's hello and heartbeats, and
//! the operator's register/revoke/list/trace of the source registry (Flow-009/013).
//!
//! WHY apart from the read-model dispatch: these methods act on the connection (who it speaks
//! as) and on the trust material ([`super::Admission`]), not on the read model; the checks
//! themselves live in `daemon::admission`.
use super::dispatch::{error_line, found_or, result_line, str_param};
use super::{Admission, Client};
use crate::core::types::Millis;
use serde_json::{Value, json};

/// `source.hello|heartbeat|register|revoke|list`. Returns the answer and whether to close.
pub(super) fn source_method(
    method: &str,
    params: &Value,
    id: &Value,
    c: &mut Client,
    a: &mut Admission,
    api_path: &str,
    now: Millis,
) -> (String, bool) {
    if !params.is_object() {
        return (
            error_line(id, "invalid_params", "\"params\" must be an object"),
            false,
        );
    }
    match method {
        "source.hello" => hello(id, params, c, a, api_path, now),
        "source.heartbeat" => heartbeat(id, c, a, now),
        "source.register" => register(id, params, c.peer_uid, a, now),
        "source.revoke" => revoke(id, params, c.peer_uid, a, now),
        "source.list" => {
            let mut r = a.registry.json();
            r["connections"] = a.traces.recent_json(32);
            (result_line(id, r), false)
        }
        "source.trace" => trace(id, params, a),
        other => (
            error_line(id, "unknown_method", &format!("unknown method {other:?}")),
            false,
        ),
    }
}

/// `source.hello`: the connection introduces itself as a source (admitted or closed).
fn hello(
    id: &Value,
    params: &Value,
    c: &mut Client,
    a: &mut Admission,
    api_path: &str,
    now: Millis,
) -> (String, bool) {
    // The connection speaks as a source from here on: trace it.
    let conn = *c.conn.get_or_insert_with(|| {
        let t = a.traces.open(
            "api",
            api_path,
            Some(c.peer_pid),
            Some(c.peer_uid),
            c.accepted_at,
        );
        a.traces.step(
            t,
            "admission",
            "peer uid checked (socket peer credentials)",
            c.accepted_at,
        );
        t
    });
    if let Some(k) = str_param(params, "source_kind") {
        a.traces.set_kind(conn, k);
    }
    match a.registry.hello(params, c.peer_uid, &a.nonce, now) {
        Ok(e) => {
            log::info!(
                "source_admitted source_id={} peer_uid={} socket={} conn={}",
                e.source_id,
                c.peer_uid,
                e.socket_path,
                crate::daemon::conntrace::conn_str(conn)
            );
            a.traces
                .step(conn, "hello", &format!("admitted as {}", e.source_id), now);
            c.source_id = Some(e.source_id.clone());
            let mut r = e.json();
            r["connection"] = json!(crate::daemon::conntrace::conn_str(conn));
            (result_line(id, r), false)
        }
        // Fail-closed: the connection goes.
        Err(r) => {
            a.traces
                .step(conn, "hello", &format!("refused: {}", r.code()), now);
            (error_line(id, r.code(), &r.to_string()), true)
        }
    }
}

/// `source.heartbeat`: an admitted source is alive.
fn heartbeat(id: &Value, c: &mut Client, a: &mut Admission, now: Millis) -> (String, bool) {
    match c.source_id.clone() {
        None => (
            error_line(id, "not_admitted", "say source.hello first"),
            true,
        ),
        Some(sid) => match a.registry.heartbeat(&sid, now) {
            Some(st) if st != crate::daemon::admission::RegState::Revoked => {
                if let Some(conn) = c.conn {
                    a.traces.heartbeat(conn);
                }
                (
                    result_line(id, json!({"source_id": sid, "state": st.as_str()})),
                    false,
                )
            }
            _ => (
                error_line(id, "source_registry_miss", &format!("{sid} is revoked")),
                true,
            ),
        },
    }
}

/// `source.register`: the operator registers a source (`pending`).
fn register(
    id: &Value,
    params: &Value,
    peer_uid: u32,
    a: &mut Admission,
    now: Millis,
) -> (String, bool) {
    let owner = params
        .get("owner_uid")
        .and_then(Value::as_u64)
        .and_then(|u| u32::try_from(u).ok())
        .unwrap_or(peer_uid);
    let (Some(kind), Some(path)) = (
        str_param(params, "source_kind"),
        str_param(params, "socket_path"),
    ) else {
        return (
            error_line(id, "invalid_params", "need source_kind and socket_path"),
            false,
        );
    };
    match a.registry.register(kind, path, owner, now) {
        Ok(e) => (result_line(id, e.json()), false),
        Err(r) => (error_line(id, r.code(), &r.to_string()), false),
    }
}

/// `source.revoke`: the operator revokes a source.
fn revoke(
    id: &Value,
    params: &Value,
    peer_uid: u32,
    a: &mut Admission,
    now: Millis,
) -> (String, bool) {
    let sid = match (
        str_param(params, "source_id"),
        str_param(params, "source_kind"),
    ) {
        (Some(x), _) => x.to_string(),
        (None, Some(k)) => crate::daemon::admission::source_id(k, peer_uid),
        _ => {
            return (
                error_line(id, "invalid_params", "need source_id or source_kind"),
                false,
            );
        }
    };
    found_or(id, a.registry.revoke(&sid, now).map(|e| e.json()), || {
        format!("no source {sid:?}")
    })
}

/// `source.trace`: one source connection's trace.
fn trace(id: &Value, params: &Value, a: &mut Admission) -> (String, bool) {
    let Some(conn) = str_param(params, "connection").and_then(crate::daemon::conntrace::parse_conn)
    else {
        return (
            error_line(id, "invalid_params", "need connection (e.g. \"c3\")"),
            false,
        );
    };
    found_or(id, a.traces.get(conn).map(|t| t.json()), || {
        format!(
            "no connection {} (the newest 256 are kept)",
            crate::daemon::conntrace::conn_str(conn)
        )
    })
}
