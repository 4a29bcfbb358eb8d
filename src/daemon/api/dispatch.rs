//! Request dispatch of the local API: which handler a request line goes to (`source.*`
//! methods, refused before the read model is ready, or answered from the read model), and the
//! answers of the read-model methods as wire lines.
//!
//! WHY apart from the socket server (`api/mod.rs`): what a request means does not depend on how
//! bytes reach the daemon; `handle_line` is a pure function of the line and the [`View`].
use super::render::{explain_json, health_json, list_json, pane_json};
use super::{VERSION, View};
use crate::projection::PaneModel;
use serde_json::{Value, json};

pub(super) enum Gate {
    /// A `source.*` method, handled with the connection and the registry.
    Source(Value, String, Value),
    /// Refused before reaching the read model (not ready yet).
    Refuse(String),
    /// Answer with [`handle_line`].
    Pass,
}

/// Methods that read the read model, refused until the API stage is ready (Flow-011).
const GATED: &[&str] = &["list", "get", "explain", "subscribe", "metrics", "trace"];

pub(super) fn gate(line: &[u8], ready: bool, waiting_for: &str) -> Gate {
    let Ok(req) = serde_json::from_slice::<Value>(line) else {
        return Gate::Pass;
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return Gate::Pass;
    };
    if method.starts_with("source.") {
        let params = req.get("params").cloned().unwrap_or(json!({}));
        return Gate::Source(id, method.to_string(), params);
    }
    if !ready && GATED.contains(&method) {
        return Gate::Refuse(error_line(
            &id,
            "not_ready",
            &format!("daemon starting: waiting for stage {waiting_for}"),
        ));
    }
    Gate::Pass
}

/// Merge the runtime's extra sections into a `health`/`metrics` result.
pub(super) fn with_extra(answer: String, extra: &serde_json::Map<String, Value>) -> String {
    if extra.is_empty() {
        return answer;
    }
    let Ok(mut v) = serde_json::from_str::<Value>(&answer) else {
        return answer;
    };
    let is_health = v
        .get("result")
        .and_then(|r| r.get("daemon_pid").or_else(|| r.get("windows")))
        .is_some();
    match v.get_mut("result").and_then(Value::as_object_mut) {
        Some(r) if is_health || r.contains_key("ingest") => {
            for (k, x) in extra {
                r.insert(k.clone(), x.clone());
            }
        }
        _ => return answer,
    }
    let mut s = v.to_string();
    s.push('\n');
    s
}

pub(super) fn error_line(id: &Value, code: &str, message: &str) -> String {
    let mut s =
        json!({"v": VERSION, "id": id, "error": {"code": code, "message": message}}).to_string();
    s.push('\n');
    s
}

pub(super) fn result_line(id: &Value, result: Value) -> String {
    let mut s = json!({"v": VERSION, "id": id, "result": result}).to_string();
    s.push('\n');
    s
}

/// The answer to a lookup (the connection stays open): the item found, or `not_found` with
/// the message `missing` makes.
pub(super) fn found_or(
    id: &Value,
    item: Option<Value>,
    missing: impl FnOnce() -> String,
) -> (String, bool) {
    match item {
        Some(v) => (result_line(id, v), false),
        None => (error_line(id, "not_found", &missing()), false),
    }
}

/// Answer one request line. Returns the answer and whether the client subscribed.
pub fn handle_line(line: &[u8], view: &View) -> (String, bool) {
    let req: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return (
                error_line(&Value::Null, "parse_error", &format!("invalid JSON: {e}")),
                false,
            );
        }
    };
    let Some(obj) = req.as_object() else {
        return (
            error_line(&Value::Null, "invalid_request", "request must be an object"),
            false,
        );
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    match obj.get("v") {
        None => {}
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(_) => {
            return (
                error_line(&id, "unsupported_version", "this daemon speaks v=1"),
                false,
            );
        }
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return (
            error_line(&id, "invalid_request", "missing string field \"method\""),
            false,
        );
    };
    let empty = Value::Object(Default::default());
    let params = obj.get("params").unwrap_or(&empty);
    if !params.is_object() {
        return (
            error_line(&id, "invalid_params", "\"params\" must be an object"),
            false,
        );
    }
    let pane_param = || pane_param(params, view);
    match method {
        "list" => (result_line(&id, list_json(view)), false),
        "get" => match pane_param() {
            Ok(p) => (result_line(&id, pane_json(p, view)), false),
            Err((c, m)) => (error_line(&id, c, &m), false),
        },
        "explain" => match pane_param() {
            Ok(p) => (result_line(&id, explain_json(p, view)), false),
            Err((c, m)) => (error_line(&id, c, &m), false),
        },
        "health" => {
            let mut h = health_json(view);
            if let Some(o) = view.ops {
                h["ops"] = o.metrics(view.now).json();
            }
            (result_line(&id, h), false)
        }
        "metrics" => match view.metrics {
            Some(m) => {
                let mut r = m.json(view.ingest_counts, view.projection, view.now);
                if let Some(o) = view.ops {
                    r["ops"] = o.metrics(view.now).json();
                }
                (result_line(&id, r), false)
            }
            None => (error_line(&id, "not_found", "metrics unavailable"), false),
        },
        "trace" => trace(&id, params, view),
        "subscribe" => (
            result_line(&id, json!({"subscribed": true, "list": list_json(view)})),
            true,
        ),
        // A newer agtmux takes this server over (issue 19): answer, then the loop ends with
        // the exit code that keeps our keeper from restarting us.
        "exit_for_upgrade" => exit_for_upgrade(&id, params),
        other => (
            error_line(&id, "unknown_method", &format!("unknown method {other:?}")),
            false,
        ),
    }
}

/// The `pane` param: a pane id (`%N`) the read model knows.
fn pane_param<'v>(
    params: &Value,
    view: &View<'v>,
) -> Result<&'v PaneModel, (&'static str, String)> {
    let pid = str_param(params, "pane").ok_or((
        "invalid_params",
        "missing string param \"pane\"".to_string(),
    ))?;
    let pid = crate::core::types::PaneId::parse_or_why(pid).map_err(|e| ("invalid_params", e))?;
    view.projection
        .panes
        .get(&pid)
        .ok_or(("not_found", format!("no pane {pid}")))
}

/// A string member of a method's params (absent, or not a string: `None`).
pub(super) fn str_param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// `trace`: an event's hops by `event_id`, or a delivery's by `delivery_token`.
fn trace(id: &Value, params: &Value, view: &View) -> (String, bool) {
    if let Some(tok) = str_param(params, "delivery_token") {
        let t =
            crate::delivery::parse_token(tok).and_then(|t| view.delivery.and_then(|d| d.trace(t)));
        return found_or(id, t.map(|t| t.json()), || {
            format!(
                "no delivery token {tok:?} in memory (the newest {} are kept)",
                crate::delivery::MAX_TOKEN_TRACES
            )
        });
    }
    let eid = str_param(params, "event_id");
    match (eid, view.metrics) {
        (None, _) => (
            error_line(
                id,
                "invalid_params",
                "missing string param \"event_id\" (or \"delivery_token\")",
            ),
            false,
        ),
        (Some(e), Some(m)) if m.trace(e).is_some() => {
            let mut t = m.trace(e).map(|t| t.json()).unwrap_or(Value::Null);
            if let Some(tok) = view.delivery.and_then(|d| d.token_of(e)) {
                t["delivery_token"] = json!(crate::delivery::token_str(tok));
            }
            (result_line(id, t), false)
        }
        (Some(e), _) => (
            error_line(id, "not_found", &format!("no trace of {e:?} in memory")),
            false,
        ),
    }
}

/// `exit_for_upgrade`: answer, then the loop ends (see `daemon::handover`).
fn exit_for_upgrade(id: &Value, params: &Value) -> (String, bool) {
    log::info!(
        "api_exit_for_upgrade new_version={:?}",
        str_param(params, "version").unwrap_or("?")
    );
    crate::daemon::handover::request_exit();
    (
        result_line(
            id,
            json!({"exiting": true, "version": crate::daemon::handover::version()}),
        ),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::attention::Style;
    use crate::projection::Projection;
    use crate::tmux::registry::Registry;
    use std::path::Path;

    fn view<'a>(proj: &'a Projection, reg: &'a Registry, style: &'a Style) -> View<'a> {
        View::without_daemon(proj, reg, style, Some("1:2"), Path::new("/tmp/x"), 5)
    }

    fn answer(line: &str) -> Value {
        let proj = Projection::new("h".into());
        let reg = Registry::default();
        let style = Style::default();
        let (s, _) = handle_line(line.as_bytes(), &view(&proj, &reg, &style));
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn bad_requests_get_json_errors() {
        for (line, code) in [
            ("not json", "parse_error"),
            ("[1,2]", "invalid_request"),
            (r#"{"v":1,"id":3}"#, "invalid_request"),
            (r#"{"v":2,"id":3,"method":"list"}"#, "unsupported_version"),
            (r#"{"v":1,"id":3,"method":"nope"}"#, "unknown_method"),
            (r#"{"v":1,"id":3,"method":"get"}"#, "invalid_params"),
            (
                r#"{"v":1,"id":3,"method":"get","params":{"pane":"%1;x"}}"#,
                "invalid_params",
            ),
            (
                r#"{"v":1,"id":3,"method":"get","params":{"pane":"%1"}}"#,
                "not_found",
            ),
            (r#"{"v":1,"method":"get","params":7}"#, "invalid_params"),
        ] {
            let a = answer(line);
            assert_eq!(a["v"], 1, "{line}");
            assert_eq!(a["error"]["code"], code, "{line}");
            assert!(a["error"]["message"].is_string());
        }
    }

    #[test]
    fn list_and_explain_have_their_shape() {
        let mut proj = Projection::new("h".into());
        proj.pane_added(&"%1".into(), "$0", "@0", 0);
        proj.resolve_dirty(1, &|_| false);
        let reg = Registry::default();
        let style = Style::default();
        let v = view(&proj, &reg, &style);
        let (s, sub) = handle_line(br#"{"v":1,"id":"a","method":"list"}"#, &v);
        assert!(!sub);
        let a: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(a["id"], "a");
        let pane = &a["result"]["sessions"][0]["windows"][0]["panes"][0];
        assert_eq!(pane["pane_id"], "%1");
        assert_eq!(pane["presence"], "unmanaged");
        let (s, _) = handle_line(
            br#"{"v":1,"id":1,"method":"explain","params":{"pane":"%1"}}"#,
            &v,
        );
        let a: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(a["result"]["signature"]["class"], "none");
        assert!(a["result"]["sources"].is_array());
        let (_, sub) = handle_line(br#"{"v":1,"id":1,"method":"subscribe"}"#, &v);
        assert!(sub);
    }
}
