//! The options writer (README "What you see"): remembers what it last wrote to each tmux user
//! option
//! and turns a desired value into a `set-option` command only when the value changes.
//!
//! Commands are queued one per line and flushed in a single `write()`: tmux drops the rest of
//! a `a ; b` line when `a` fails (for example a pane that vanished a moment ago), which would
//! change the number of reply blocks and break FIFO reply matching. One command per line keeps
//! exactly one reply per line at the same syscall cost.
use crate::core::types::PaneId;
use std::collections::HashMap;

/// Where an option lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `set -p -t %N`
    Pane(PaneId),
    /// `set -w -t @N`
    Window(String),
    /// `set -t $N` (session option)
    Session(String),
    /// `set -g`
    Global,
}

/// Quote a value for tmux's command parser: single quotes, with `'` written as `'\''`, and no
/// newline (a newline would end the command). Control characters become spaces.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Escape text that came from a pane or a payload so tmux shows it literally in a format.
pub(crate) fn escape_format(text: &str) -> String {
    text.replace('#', "##")
}

/// A target id is only ever a tmux id we read from tmux itself (`%3`, `@2`, `$1`); anything
/// else is refused so no text can smuggle a second command into the line.
pub(crate) fn valid_target(t: &str) -> bool {
    let mut chars = t.chars();
    matches!(chars.next(), Some('%' | '@' | '$'))
        && t.len() > 1
        && t.len() < 16
        && chars.all(|c| c.is_ascii_digit())
}

/// Build the `set-option` command for one option (`None` unsets it).
pub(crate) fn set_command(scope: &Scope, name: &str, value: Option<&str>) -> Option<String> {
    if !name.starts_with('@')
        || !name[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let flags = match (scope, value.is_some()) {
        (Scope::Pane(_), true) => "-p",
        (Scope::Pane(_), false) => "-pu",
        (Scope::Window(_), true) => "-w",
        (Scope::Window(_), false) => "-wu",
        (Scope::Session(_), true) => "",
        (Scope::Session(_), false) => "-u",
        (Scope::Global, true) => "-g",
        (Scope::Global, false) => "-gu",
    };
    let target = match scope {
        Scope::Pane(p) => format!(" -t {p}"),
        Scope::Window(t) | Scope::Session(t) => {
            if !valid_target(t) {
                return None;
            }
            format!(" -t {t}")
        }
        Scope::Global => String::new(),
    };
    let mut cmd = format!("set-option {flags}{target} {name}").replace("  ", " ");
    if let Some(v) = value {
        // A value starting with '-' would be read as a flag (3.3a has no `--` for set-option).
        let v = if v.starts_with('-') {
            format!(" {v}")
        } else {
            v.to_string()
        };
        cmd.push(' ');
        cmd.push_str(&quote(&v));
    }
    Some(cmd)
}

/// Remembers the last value written per option and queues only changes.
#[derive(Default, Debug)]
pub struct OptionsWriter {
    current: HashMap<(Scope, String), String>,
    queue: Vec<String>,
    /// Number of commands queued since start (for metrics and tests).
    pub written: u64,
}

impl OptionsWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Desire `value` (empty string = unset) for an option; queues a command if it changed.
    pub fn set(&mut self, scope: &Scope, name: &str, value: &str) {
        let key = (scope.clone(), name.to_string());
        let old = self.current.get(&key).map(String::as_str).unwrap_or("");
        if old == value {
            return;
        }
        let cmd = set_command(scope, name, (!value.is_empty()).then_some(value));
        let Some(cmd) = cmd else {
            log::warn!("option_refused scope={scope:?} name={name}");
            return;
        };
        if value.is_empty() {
            self.current.remove(&key);
        } else {
            self.current.insert(key, value.to_string());
        }
        self.queue.push(cmd);
        self.written += 1;
    }

    /// Forget a target that is gone (its options died with it); nothing is sent.
    pub(crate) fn forget(&mut self, scope: &Scope) {
        self.current.retain(|(s, _), _| s != scope);
    }

    /// An option holds a value this writer did not write (an earlier daemon's): the next
    /// `set` writes or unsets it whatever the value.
    pub(crate) fn assume_set(&mut self, scope: &Scope, name: &str) {
        self.current
            .entry((scope.clone(), name.to_string()))
            .or_insert_with(|| "\u{0}unknown".to_string());
    }

    /// Forget a single remembered value so the next `set` re-sends it (after a failed write).
    pub fn invalidate(&mut self, scope: &Scope, name: &str) {
        self.current.remove(&(scope.clone(), name.to_string()));
    }

    /// All remembered (scope, name) pairs with a value, e.g. to clear them at shutdown.
    pub fn remembered(&self) -> Vec<(Scope, String)> {
        let mut v: Vec<_> = self.current.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn value(&self, scope: &Scope, name: &str) -> Option<&str> {
        self.current
            .get(&(scope.clone(), name.to_string()))
            .map(String::as_str)
    }

    /// Take the queued commands (one per line).
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_text() {
        assert_eq!(quote("a'b"), "'a'\\''b'");
        assert_eq!(quote("x;\nkill-server"), "'x; kill-server'");
        assert_eq!(
            escape_format("#[fg=red]#(rm -rf /)"),
            "##[fg=red]##(rm -rf /)"
        );
    }

    #[test]
    fn only_changes_are_written() {
        let mut w = OptionsWriter::new();
        let p = Scope::Pane("%3".into());
        w.set(&p, "@agtmux_state", "running");
        w.set(&p, "@agtmux_state", "running");
        assert_eq!(
            w.take(),
            vec!["set-option -p -t %3 @agtmux_state 'running'".to_string()]
        );
        w.set(&p, "@agtmux_state", "");
        assert_eq!(
            w.take(),
            vec!["set-option -pu -t %3 @agtmux_state".to_string()]
        );
        w.set(&Scope::Global, "@agtmux_counts", "-x");
        assert_eq!(
            w.take(),
            vec!["set-option -g @agtmux_counts ' -x'".to_string()]
        );
    }

    #[test]
    fn bad_targets_and_names_are_refused() {
        assert_eq!(
            set_command(&Scope::Window("@1 ; kill-server".into()), "@a", Some("x")),
            None
        );
        assert_eq!(
            set_command(&Scope::Pane("%1".into()), "status", Some("x")),
            None
        );
        assert_eq!(
            set_command(&Scope::Window("@2".into()), "@a b", Some("x")),
            None
        );
        assert_eq!(
            set_command(
                &Scope::Session("$0".into()),
                "@agtmux_session_icon",
                Some("!")
            )
            .as_deref(),
            Some("set-option -t $0 @agtmux_session_icon '!'")
        );
    }
}
