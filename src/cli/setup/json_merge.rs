//! Pure merge of agtmux's hook handlers into an agent's hooks JSON (Claude `settings.json`,
//! Codex `hooks.json`). No I/O here, so every rule can be tested on values alone.
//!
//! Part of `agtmux setup` (README "Commands"), which feeds the hook sources (C-005 Claude hooks,
//! Codex hooks beside C-004). WHY it is careful: these files belong to the user and often hold
//! other tools' hooks. So:
//! - "ours" is recognised by the command alone: a simple command whose program basename is
//!   `agtmux` followed by `hook <agent>`. A reinstall from another binary path therefore
//!   *replaces* the old handler instead of adding a second one;
//! - foreign handlers, groups, events and unknown keys are never touched and keep their order
//!   (serde_json `preserve_order`; removals use `shift_remove` so order survives);
//! - new groups are appended at the END of an event's array, because Codex keys hook trust by
//!   position (`hooks.json:<event>:<group>:<handler>`): appending keeps the user's trust in
//!   their own hooks intact.
use super::Agent;
use serde_json::{Map, Value, json};
use std::fmt;

/// What a merge did, per event name. `unchanged` lists events already in the desired state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Changes {
    /// True when the document was not modified.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }
}

/// The document has a shape we refuse to rewrite (we never guess over a user's file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    /// The top level is not a JSON object.
    RootNotObject { found: &'static str },
    /// `hooks` exists but is not an object.
    HooksNotObject { found: &'static str },
    /// `hooks.<event>` (an event we install) exists but is not an array.
    EventNotArray { event: String, found: &'static str },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::RootNotObject { found } => {
                write!(f, "the top level must be a JSON object, found {found}")
            }
            MergeError::HooksNotObject { found } => {
                write!(f, "\"hooks\" must be a JSON object, found {found}")
            }
            MergeError::EventNotArray { event, found } => {
                write!(f, "\"hooks.{event}\" must be an array, found {found}")
            }
        }
    }
}

impl std::error::Error for MergeError {}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The handler object agtmux installs for `agent` running `cmd`.
pub(crate) fn desired_handler(agent: Agent, cmd: &str) -> Value {
    match agent {
        // Gemini CLI names each hook and counts its timeout in milliseconds.
        Agent::Gemini => json!({
            "name": "agtmux",
            "type": "command",
            "command": cmd,
            "timeout": agent.timeout_secs() * 1000
        }),
        _ => json!({"type": "command", "command": cmd, "timeout": agent.timeout_secs()}),
    }
}

/// A new matcher group holding only our handler, in the agent's native shape.
fn desired_group(agent: Agent, cmd: &str) -> Value {
    let handler = desired_handler(agent, cmd);
    if agent.uses_matcher() {
        json!({"matcher": "", "hooks": [handler]})
    } else {
        json!({"hooks": [handler]})
    }
}

/// Splits a shell command into words if it is ONE simple command (quotes and backslashes
/// understood; no pipes, lists, redirections, substitutions). `None` for anything else, so a
/// user's wrapper such as `agtmux hook claude || true` counts as theirs, not ours.
pub fn split_simple_command(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            '\n' => {}
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        '$' | '`' => return None,
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    x => cur.push(x),
                }
            }
            ';' | '|' | '&' | '<' | '>' | '(' | ')' | '$' | '`' => return None,
            '#' if !in_word => break,
            x => {
                in_word = true;
                cur.push(x);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Is `command` agtmux's hook handler for `agent`? Any path to a program named `agtmux`,
/// then `hook <agent>` (later flags allowed).
pub fn is_ours_command(command: &str, agent: Agent) -> bool {
    let Some(words) = split_simple_command(command) else {
        return false;
    };
    words.len() >= 3
        && words[0].rsplit('/').next() == Some("agtmux")
        && words[1] == "hook"
        && words[2] == agent.name()
}

fn is_ours_handler(h: &Value, agent: Agent) -> bool {
    let type_ok = match h.get("type") {
        None => true,
        Some(t) => t.as_str() == Some("command"),
    };
    type_ok
        && h.get("command")
            .and_then(Value::as_str)
            .is_some_and(|c| is_ours_command(c, agent))
}

fn group_has_ours(group: &Value, agent: Agent) -> bool {
    group
        .get("hooks")
        .and_then(Value::as_array)
        .is_some_and(|hs| hs.iter().any(|h| is_ours_handler(h, agent)))
}

/// A group whose matcher lets every event through (absent, null, "" or "*").
fn group_fires_always(group: &Value) -> bool {
    match group.get("matcher") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() || s == "*",
        Some(_) => false,
    }
}

/// Count of our handlers in an event array, and whether the only one is exactly `desired`
/// inside a group that fires always.
fn is_exactly_desired(groups: &[Value], agent: Agent, desired: &Value) -> bool {
    let mut found = 0usize;
    let mut good = false;
    for g in groups {
        if let Some(hs) = g.get("hooks").and_then(Value::as_array) {
            for h in hs.iter().filter(|h| is_ours_handler(h, agent)) {
                found += 1;
                good = h == desired && group_fires_always(g);
            }
        }
    }
    found == 1 && good
}

/// Rebuilds `groups` without our handlers. With `replacement`, the first of our handlers that
/// sits in an always-firing group is swapped for it in place (so its position, and the
/// position of everything else, is kept); returns whether it was placed. A group is dropped
/// only when removing our handlers left it empty.
fn strip_ours(groups: &mut Vec<Value>, agent: Agent, replacement: Option<&Value>) -> bool {
    let mut placed = false;
    let old = std::mem::take(groups);
    for mut group in old {
        if !group_has_ours(&group, agent) {
            groups.push(group);
            continue;
        }
        let fires_always = group_fires_always(&group);
        let Some(hs) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
            groups.push(group);
            continue;
        };
        let mut kept = Vec::with_capacity(hs.len());
        for h in hs.drain(..) {
            if !is_ours_handler(&h, agent) {
                kept.push(h);
            } else if let Some(r) = replacement.filter(|_| !placed && fires_always) {
                kept.push(r.clone());
                placed = true;
            }
        }
        if !kept.is_empty() {
            *hs = kept;
            groups.push(group);
        }
    }
    placed
}

/// Splits a document into its root map, checking shapes first.
fn root_map(doc: &mut Value) -> Result<&mut Map<String, Value>, MergeError> {
    let found = type_name(doc);
    doc.as_object_mut()
        .ok_or(MergeError::RootNotObject { found })
}

fn hooks_map(
    root: &mut Map<String, Value>,
    create: bool,
) -> Result<Option<&mut Map<String, Value>>, MergeError> {
    if !root.contains_key("hooks") {
        if !create {
            return Ok(None);
        }
        root.insert("hooks".to_string(), Value::Object(Map::new()));
    }
    match root.get_mut("hooks") {
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(MergeError::HooksNotObject {
            found: type_name(other),
        }),
        None => Ok(None),
    }
}

/// Removes our handlers from every event NOT in `keep`; records them in `changes.removed`.
/// Event keys (and non-array values) that hold none of ours are left alone.
fn remove_from_other_events(
    hooks: &mut Map<String, Value>,
    agent: Agent,
    keep: &[&str],
    changes: &mut Changes,
) {
    let names: Vec<String> = hooks
        .iter()
        .filter(|(k, v)| {
            !keep.contains(&k.as_str())
                && v.as_array()
                    .is_some_and(|gs| gs.iter().any(|g| group_has_ours(g, agent)))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for name in names {
        let now_empty = match hooks.get_mut(&name).and_then(Value::as_array_mut) {
            Some(groups) => {
                strip_ours(groups, agent, None);
                groups.is_empty()
            }
            None => false,
        };
        if now_empty {
            hooks.shift_remove(&name);
        }
        changes.removed.push(name);
    }
}

/// Ensures exactly one agtmux handler running `cmd` under each of `events`, and none under
/// any other event. Foreign content is kept as is. Returns the new document and what changed;
/// when `changes.is_empty()` the returned value equals the input.
pub fn install(
    mut doc: Value,
    agent: Agent,
    cmd: &str,
    events: &[&str],
) -> Result<(Value, Changes), MergeError> {
    let mut changes = Changes::default();
    let desired = desired_handler(agent, cmd);
    let root = root_map(&mut doc)?;
    let Some(hooks) = hooks_map(root, !events.is_empty())? else {
        return Ok((doc, changes));
    };
    for &event in events {
        match hooks.get_mut(event) {
            None => {
                hooks.insert(event.to_string(), json!([desired_group(agent, cmd)]));
                changes.added.push(event.to_string());
            }
            Some(Value::Array(groups)) => {
                let had_ours = groups.iter().any(|g| group_has_ours(g, agent));
                if !had_ours {
                    groups.push(desired_group(agent, cmd));
                    changes.added.push(event.to_string());
                } else if is_exactly_desired(groups, agent, &desired) {
                    changes.unchanged.push(event.to_string());
                } else {
                    if !strip_ours(groups, agent, Some(&desired)) {
                        groups.push(desired_group(agent, cmd));
                    }
                    changes.replaced.push(event.to_string());
                }
            }
            Some(other) => {
                return Err(MergeError::EventNotArray {
                    event: event.to_string(),
                    found: type_name(other),
                });
            }
        }
    }
    remove_from_other_events(hooks, agent, events, &mut changes);
    Ok((doc, changes))
}

/// Removes every agtmux handler for `agent`. A group goes only if it became empty, an event
/// key only if its array became empty, `hooks` only if it became empty.
pub fn uninstall(mut doc: Value, agent: Agent) -> Result<(Value, Changes), MergeError> {
    let mut changes = Changes::default();
    let root = root_map(&mut doc)?;
    let Some(hooks) = hooks_map(root, false)? else {
        return Ok((doc, changes));
    };
    remove_from_other_events(hooks, agent, &[], &mut changes);
    let hooks_empty = hooks.is_empty();
    if hooks_empty && !changes.removed.is_empty() {
        root.shift_remove("hooks");
    }
    Ok((doc, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "'/opt/bin/agtmux' hook claude";

    #[test]
    fn ours_recognition() {
        let c = Agent::Claude;
        assert!(is_ours_command("agtmux hook claude", c));
        assert!(is_ours_command("'/a b/agtmux' hook claude", c));
        assert!(is_ours_command("\"/x/agtmux\" hook claude --quiet", c));
        assert!(is_ours_command("/x/agt\\mux hook claude", c));
        assert!(!is_ours_command("agtmux hook codex", c));
        assert!(is_ours_command("agtmux hook codex", Agent::Codex));
        assert!(!is_ours_command("agtmux hook codex-notify", Agent::Codex));
        assert!(!is_ours_command("agtmux hook claude || true", c));
        assert!(!is_ours_command("FOO=1 agtmux hook claude", c));
        assert!(!is_ours_command("/x/agtmux2 hook claude", c));
        assert!(!is_ours_command("'agtmux hook claude", c));
        assert!(!is_ours_command("python3 hooklog.py agtmux hook claude", c));
    }

    #[test]
    fn install_into_empty_and_twice() {
        let (doc, ch) = install(json!({}), Agent::Claude, CMD, &["Stop", "SessionEnd"]).unwrap();
        assert_eq!(ch.added, vec!["Stop", "SessionEnd"]);
        assert_eq!(
            doc["hooks"]["Stop"],
            json!([{"matcher":"","hooks":[{"type":"command","command":CMD,"timeout":5}]}])
        );
        let (doc2, ch2) =
            install(doc.clone(), Agent::Claude, CMD, &["Stop", "SessionEnd"]).unwrap();
        assert!(ch2.is_empty());
        assert_eq!(ch2.unchanged.len(), 2);
        assert_eq!(doc, doc2);
    }

    #[test]
    fn replace_in_place_keeps_foreign_and_position() {
        let doc = json!({"hooks":{"Stop":[
            {"matcher":"","hooks":[{"type":"command","command":"echo a"},
                                   {"type":"command","command":"/old/agtmux hook claude"}]},
            {"hooks":[{"type":"command","command":"echo b"}]},
            {"hooks":[{"type":"command","command":"agtmux hook claude"}]}
        ]}});
        let (doc, ch) = install(doc, Agent::Claude, CMD, &["Stop"]).unwrap();
        assert_eq!(ch.replaced, vec!["Stop"]);
        assert_eq!(
            doc["hooks"]["Stop"],
            json!([
                {"matcher":"","hooks":[{"type":"command","command":"echo a"},
                                       {"type":"command","command":CMD,"timeout":5}]},
                {"hooks":[{"type":"command","command":"echo b"}]}
            ])
        );
    }

    #[test]
    fn narrow_matcher_group_is_not_kept() {
        let doc = json!({"hooks":{"PreToolUse":[
            {"matcher":"Bash","hooks":[{"type":"command","command":CMD,"timeout":5}]}
        ]}});
        let (doc, ch) = install(doc, Agent::Claude, CMD, &["PreToolUse"]).unwrap();
        assert_eq!(ch.replaced, vec!["PreToolUse"]);
        assert_eq!(
            doc["hooks"]["PreToolUse"],
            json!([{"matcher":"","hooks":[{"type":"command","command":CMD,"timeout":5}]}])
        );
    }

    #[test]
    fn stale_events_removed_on_install_and_uninstall_cleans_up() {
        let foreign = json!([{"hooks":[{"type":"command","command":"echo x"}]}]);
        let doc = json!({"a":1,"hooks":{
            "Old":[{"hooks":[{"type":"command","command":CMD}]}],
            "F1": foreign, "F2": foreign}});
        let (doc, ch) = install(doc, Agent::Claude, CMD, &["Stop"]).unwrap();
        assert_eq!(ch.removed, vec!["Old"]);
        assert_eq!(ch.added, vec!["Stop"]);
        let order: Vec<&String> = doc["hooks"].as_object().unwrap().keys().collect();
        assert_eq!(order, ["F1", "F2", "Stop"]);
        let (doc, ch) = uninstall(doc, Agent::Claude).unwrap();
        assert_eq!(ch.removed, vec!["Stop"]);
        assert_eq!(doc, json!({"a":1,"hooks":{"F1": foreign, "F2": foreign}}));
        let (doc, _) = uninstall(
            json!({"hooks":{"Stop":[{"hooks":[{"type":"command","command":CMD}]}]},"z":2}),
            Agent::Claude,
        )
        .unwrap();
        assert_eq!(doc, json!({"z":2}));
        let (_, ch) = uninstall(doc, Agent::Claude).unwrap();
        assert!(ch.is_empty());
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            install(json!([]), Agent::Claude, CMD, &["Stop"]),
            Err(MergeError::RootNotObject { .. })
        ));
        assert!(matches!(
            install(json!({"hooks":[]}), Agent::Claude, CMD, &["Stop"]),
            Err(MergeError::HooksNotObject { .. })
        ));
        assert!(matches!(
            uninstall(json!({"hooks":"x"}), Agent::Claude),
            Err(MergeError::HooksNotObject { .. })
        ));
        assert!(matches!(
            install(json!({"hooks":{"Stop":{}}}), Agent::Claude, CMD, &["Stop"]),
            Err(MergeError::EventNotArray { .. })
        ));
    }

    #[test]
    fn codex_shape_has_no_matcher() {
        let cmd = "'/b/agtmux' hook codex";
        let (doc, _) = install(json!({}), Agent::Codex, cmd, &["Stop"]).unwrap();
        assert_eq!(
            doc["hooks"]["Stop"],
            json!([{"hooks":[{"type":"command","command":cmd,"timeout":3}]}])
        );
        // Claude's handlers are not Codex's.
        let (_, ch) = uninstall(doc, Agent::Claude).unwrap();
        assert!(ch.is_empty());
    }
}
