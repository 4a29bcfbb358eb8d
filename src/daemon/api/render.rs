//! JSON rendering of the read model for the local API (docs/api.md "Pane", `list`,
//! `explain`, `health`).
//!
//! WHY apart from dispatch: the shapes are the API's contract with the CLI and the popup;
//! keeping them in one file keeps them consistent and easy to compare with docs/api.md.
use super::View;
use crate::core::attention;
use crate::core::types::SourceKind;
use crate::projection::PaneModel;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// f32 confidences as short decimals (0.9, not 0.8999999761581421).
fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

fn opt_str<T: fmt::Display>(x: Option<T>) -> Value {
    x.map(|v| Value::String(v.to_string()))
        .unwrap_or(Value::Null)
}

/// The read model of one pane (docs/api.md "Pane").
pub(crate) fn pane_json(p: &PaneModel, view: &View) -> Value {
    let pv = crate::daemon::publish::view(p);
    let info = view.registry.panes.get(&p.instance.pane_id);
    json!({
        "pane_id": p.instance.pane_id,
        "generation": p.instance.generation,
        "session_id": p.session_id,
        "session_name": view.registry.session_names.get(&p.session_id).cloned().unwrap_or_default(),
        "window_id": p.window_id,
        "window_index": info.map(|i| i.window_index),
        "window_name": view.registry.window_names.get(&p.window_id).cloned().unwrap_or_default(),
        "pane_index": info.map(|i| i.pane_index),
        "presence": p.presence().as_str(),
        "provider": opt_str(p.provider()),
        "evidence": p.evidence().as_str(),
        "state": p.activity().as_str(),
        "attention": opt_str(p.attention),
        "icon": if p.is_managed() { attention::icon(&pv, view.style) } else { "" },
        "title": p.title,
        "title_source": p.title_source.as_str(),
        "since_ms": p.since,
        "until_ms": p.extras.until,
        "background": p.extras.background,
        "detail": p.extras.label(p.activity(), view.projection.utc_offset_s),
        "version": p.version,
        "command": info.map(|i| i.current_command.clone()).unwrap_or_default(),
        "focused": view.registry.focused(&p.instance.pane_id),
    })
}

/// window (index, id) → panes with their index.
type Windows<'a> = BTreeMap<(u32, &'a str), Vec<(u32, Value)>>;

/// Where a session sorts in tmux's order: its id's number (`$3` → 3), an odd id last.
pub(crate) fn session_order(session_id: &str) -> u64 {
    session_id
        .trim_start_matches('$')
        .parse()
        .unwrap_or(u64::MAX)
}

/// sessions → windows → panes, in tmux's order (session id, window index, pane index).
pub(crate) fn list_json(view: &View) -> Value {
    // session id → window id → panes
    let mut tree: BTreeMap<(u64, &str), Windows> = BTreeMap::new();
    for p in view.projection.panes.values() {
        let info = view.registry.panes.get(&p.instance.pane_id);
        let skey = (session_order(&p.session_id), p.session_id.as_str());
        let wkey = (
            info.map(|i| i.window_index).unwrap_or(u32::MAX),
            p.window_id.as_str(),
        );
        tree.entry(skey)
            .or_default()
            .entry(wkey)
            .or_default()
            .push((info.map(|i| i.pane_index).unwrap_or(0), pane_json(p, view)));
    }
    let sessions: Vec<Value> = tree
        .into_iter()
        .map(|((_, sid), windows)| {
            let windows: Vec<Value> = windows
                .into_iter()
                .map(|((idx, wid), mut panes)| {
                    panes.sort_by_key(|(i, _)| *i);
                    json!({
                        "window_id": wid,
                        "window_index": if idx == u32::MAX { Value::Null } else { json!(idx) },
                        "window_name": view.registry.window_names.get(wid).cloned().unwrap_or_default(),
                        "panes": panes.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "session_id": sid,
                "session_name": view.registry.session_names.get(sid).cloned().unwrap_or_default(),
                "windows": windows,
            })
        })
        .collect();
    let mut out = json!({ "sessions": sessions, "now_ms": view.now, "daemon_version": crate::daemon::handover::version() });
    // Issue 24: the remote hosts' section, when any is configured (`daemon::remote`).
    if let Some(r) = view.remotes {
        out["remotes"] = r.clone();
    }
    out
}

fn health_map(view: &View) -> Value {
    let mut m = serde_json::Map::new();
    for s in SourceKind::ALL {
        let h = view
            .projection
            .health
            .get(s)
            .map(|h| h.as_str())
            .unwrap_or("unknown");
        m.insert(s.as_str().to_string(), Value::String(h.to_string()));
    }
    Value::Object(m)
}

/// Why the pane has its state (docs/api.md "explain").
pub(crate) fn explain_json(p: &PaneModel, view: &View) -> Value {
    let mut sig = p.signature.split(' ');
    let class = sig.next().unwrap_or("").to_string();
    let mut reason = String::new();
    let mut confidence = Value::Null;
    for kv in sig {
        if let Some(r) = kv.strip_prefix("reason=") {
            reason = r.to_string();
        } else if let Some(c) = kv.strip_prefix("confidence=") {
            confidence = c
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or(Value::Null);
        }
    }
    let sources: Vec<Value> = p
        .det
        .iter()
        .map(|d| {
            json!({
                "source": d.source.as_str(),
                "provider": d.provider.as_str(),
                "session_key": d.session_key,
                "state": d.activity.as_str(),
                "ended": d.ended,
                "event": d.event,
                "detail": d.detail,
                "ts_ms": d.ts,
                "health": view.projection.health.get(&d.source).map(|h| h.as_str()).unwrap_or("unknown"),
            })
        })
        .collect();
    let r = &p.resolution;
    let suppressed: Vec<Value> = r
        .suppressed
        .iter()
        .map(|(s, why)| json!({"source": s.as_str(), "reason": why}))
        .collect();
    let mut timers: Vec<Value> = p
        .hysteresis
        .timers()
        .iter()
        .map(|t| json!({"name": t.name, "deadline_ms": t.deadline}))
        .collect();
    if let Some(d) = r.next_deadline {
        timers.push(json!({"name": "resolver", "deadline_ms": d}));
    }
    let screen = p.screen.as_ref().map(|s| {
        json!({
            "rule": s.rule,
            "state": s.activity.as_str(),
            "confidence": round3(s.confidence),
            "provider": opt_str(s.provider),
            "lines": s.lines,
            "at_ms": p.screen_at,
            "signature": s.signature.as_ref().map(|g| json!({
                "provider": g.provider.as_str(), "confidence": round3(g.confidence), "rule": g.rule,
            })),
        })
    });
    let last_change = p.hysteresis.last_change().map(|c| {
        json!({"from": c.from.as_str(), "to": c.to.as_str(), "at_ms": c.at, "reason": c.reason})
    });
    json!({
        "pane": pane_json(p, view),
        "signature": {"class": class, "reason": reason, "confidence": confidence},
        "process": p.process.map(|(prov, why)| json!({
            "provider": prov.as_str(), "reason": why, "pid": p.agent_pid,
        })),
        "session_key": p.session_key,
        "codex_binding": p.codex_binding,
        "sources": sources,
        "source_health": health_map(view),
        "resolution": {
            "winner": opt_str(r.winner),
            "reason": r.reason,
            "suppressed": suppressed,
            "transition": opt_str(r.transition.as_ref()),
        },
        "heuristic": {
            "state": p.hysteresis.current().as_str(),
            "since_ms": p.hysteresis.current_since(),
            "last_change": last_change,
        },
        "timers": timers,
        "screen": screen,
        "last_event": view
            .metrics
            .and_then(|m| m.last_trace(&p.instance.pane_id))
            .map(|t| t.json()),
        "now_ms": view.now,
    })
}

/// Daemon and source health (docs/api.md "health").
pub(crate) fn health_json(view: &View) -> Value {
    let managed = view
        .projection
        .panes
        .values()
        .filter(|p| p.is_managed())
        .count();
    let problems: Vec<String> = {
        let mut v = Vec::new();
        if let Some(s) = view.store_problem {
            v.push(format!("store:{s}"));
        }
        for s in SourceKind::ALL {
            if let Some(h) = view.projection.health.get(s)
                && *h != crate::core::types::Health::Healthy
            {
                v.push(format!("{s}:{h}"));
            }
        }
        if !view.tmux_connected {
            v.push("tmux:disconnected".to_string());
        }
        v
    };
    json!({
        "daemon_pid": std::process::id(),
        "version": crate::daemon::handover::version(),
        "tmux": {
            "socket": view.socket.display().to_string(),
            "identity": view.identity,
            "connected": view.tmux_connected,
        },
        "sources": health_map(view),
        "store_problem": view.store_problem,
        "panes": view.projection.panes.len(),
        "agent_panes": managed,
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "problems": problems,
        "now_ms": view.now,
    })
}
