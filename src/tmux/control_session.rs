//! The daemon's own tmux session, `_agtmux`, where its control client sits (issue 20, item 8).
//!
//! WHY: tmux counts every client attached to a session in `session_attached`, control clients
//! included (`recalculate_sizes_now` in resize.c, unchanged from 3.3a to 3.8; no client flag
//! such as `no-output`, `ignore-size` or `read-only` keeps one out). A control client that sat
//! on a user's session made that session look attached after every real client had left:
//! `tmux ls` said `(attached)`, `#{session_attached}` was 1, and `destroy-unattached` never
//! destroyed it. So the control client moves to a session of its own:
//! - It still attaches first to whatever session exists (`attach-session`, which never creates
//!   one), and only once attached creates and enters `_agtmux` ([`ENTER`]). A session created
//!   while a control client is still attaching crashes a tmux 3.3a server (upstream PR #4980),
//!   and attaching first also means an empty server never gets a session from us.
//! - Its one pane runs `tail -f /dev/null` directly (no shell, no rc files): it reads nothing
//!   and wakes for nothing.
//! - Every agtmux list filters it out with [`USER_SESSIONS`] (panes, windows, sessions, the
//!   pane digest, the choose-tree keys, the demo), so no surface of ours shows it.
//! - It must not keep a server alive that tmux would have ended: when no other session is left
//!   the daemon kills it ([`KILL`]), and tmux exits as it would have (`exit-empty`); the daemon
//!   kills it as well when it exits.
//!
//! - A real client that lands in it (`switch-client -n`/`-p` wrapping round, tmux's own
//!   choose-tree, `detach-on-destroy off`) is moved on at once ([`onward`]): in the direction
//!   it was going when it came from a neighbour, else back to the session it came from.
//!
//! - tmux's "best session" for a command run outside tmux without a target is the one with
//!   the newest activity, and entering ours makes it that until the user types somewhere. A
//!   window such a command creates in ours (`tmux new-window`) is moved at once to the session
//!   the control client came from ([`relocate`]), where the user would have had it.
//!
//! What it costs (measured and documented in the README): tmux's own lists (`tmux ls`, its
//! own choose-tree) and tmux-resurrect show `_agtmux`.
use super::options::{quote, valid_target};

/// The session's name. The leading underscore sorts it apart and marks it as internal.
pub(crate) const NAME: &str = "_agtmux";

/// A tmux format (for `-f` filters) that is true for every session but ours.
pub(crate) const USER_SESSIONS: &str = "#{!=:#{session_name},_agtmux}";

/// Create the session if it does not exist and switch this (already attached) client to it.
/// `-A` attaches when it exists (a daemon restart); the command after `--` runs without a
/// shell.
pub(crate) const ENTER: &str = "new-session -A -s _agtmux -x 80 -y 24 -- tail -f /dev/null";

/// End the session (exact name match).
pub(crate) const KILL: &str = "kill-session -t =_agtmux";

/// Asked right after [`ENTER`]: our own window, and the session we came from (tmux's best
/// session at attach time). One `AGTK @W <tab> name` line.
pub(crate) const OWN: &str = "display-message -p 'AGTK #{window_id}\t#{client_last_session}'";

/// `(own window, session we came from)` of an [`OWN`] reply line.
pub(crate) fn parse_own(line: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(line.strip_prefix(b"AGTK ")?);
    let (w, home) = text.split_once('\t').unwrap_or((&text, ""));
    w.starts_with('@')
        .then(|| (w.to_string(), home.to_string()))
}

/// Where a window that someone else created in our session goes: the session we came from when
/// it is still there, else the first of the user's sessions (by name); `None` with no user
/// session, or for a window id that is not one.
pub(crate) fn relocate(window: &str, home: &str, user_sessions: &[String]) -> Option<String> {
    if !(window.starts_with('@') && valid_target(window)) {
        return None;
    }
    let to = if user_sessions.iter().any(|u| u == home) {
        home.to_string()
    } else {
        user_sessions.iter().min()?.clone()
    };
    Some(format!(
        "move-window -s {window} -t {}",
        quote(&format!("={to}:"))
    ))
}

/// Ask about a client that entered our session: is it a control client, and where did it
/// come from? The reply is one `AGTL <control> <tab> <last session>` line.
pub(crate) fn arrival_query(client: &str) -> String {
    format!(
        "display-message -p -c {} 'AGTL #{{client_control_mode}}\t#{{client_last_session}}'",
        quote(client)
    )
}

/// The `(control_mode, last_session)` of an [`arrival_query`] reply line.
pub(crate) fn parse_arrival(line: &[u8]) -> Option<(bool, String)> {
    let rest = line.strip_prefix(b"AGTL ")?;
    let text = String::from_utf8_lossy(rest);
    let (ctl, last) = text.split_once('\t').unwrap_or((&text, ""));
    Some((ctl.trim() == "1", last.to_string()))
}

/// Where a real client that landed in our session goes, as a `switch-client` command. tmux
/// orders sessions by name (byte order): a client that came from the session just before ours
/// was going forward (`-n`, perhaps wrapping round), from the one just after, backward (`-p`);
/// from anywhere else it goes back where it came from, and with nowhere known, forward.
pub fn onward(client: &str, last: &str, user_sessions: &[String]) -> String {
    let mut order: Vec<&str> = user_sessions.iter().map(String::as_str).collect();
    order.push(NAME);
    order.sort_unstable();
    order.dedup();
    let c = quote(client);
    let i = order.iter().position(|n| *n == NAME).unwrap_or(0);
    let n = order.len();
    let before = order[(i + n - 1) % n];
    let after = order[(i + 1) % n];
    if last == before && last != NAME {
        format!("switch-client -c {c} -n")
    } else if last == after && last != NAME {
        format!("switch-client -c {c} -p")
    } else if !last.is_empty() && user_sessions.iter().any(|u| u == last) {
        format!("switch-client -c {c} -t {}", quote(&format!("={last}")))
    } else {
        format!("switch-client -c {c} -n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_lands_here_keeps_going_its_way() {
        let users = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Lowercase names sort after `_`: ours comes first, so `-n` from the last one and
        // `-p` from the first one wrap round into it.
        let u = users(&["alpha", "beta", "gamma"]);
        let c = "/dev/pts/3";
        assert_eq!(onward(c, "gamma", &u), "switch-client -c '/dev/pts/3' -n");
        assert_eq!(onward(c, "alpha", &u), "switch-client -c '/dev/pts/3' -p");
        assert_eq!(
            onward(c, "beta", &u),
            "switch-client -c '/dev/pts/3' -t '=beta'"
        );
        assert_eq!(onward(c, "", &u), "switch-client -c '/dev/pts/3' -n");
        assert_eq!(onward(c, "gone", &u), "switch-client -c '/dev/pts/3' -n");
        // tmux's default names are numbers, which sort before `_`: ours comes last.
        let u = users(&["0", "1"]);
        assert_eq!(onward(c, "1", &u), "switch-client -c '/dev/pts/3' -n");
        assert_eq!(onward(c, "0", &u), "switch-client -c '/dev/pts/3' -p");
        // One session of the user's: back to it either way.
        let u = users(&["main"]);
        assert!(onward(c, "main", &u).ends_with(" -n"));
        // A hostile client name stays one quoted argument.
        assert!(onward("a'b;c", "", &u).starts_with("switch-client -c 'a'\\''b;c' "));
        assert_eq!(
            parse_arrival(b"AGTL 0\tmy session"),
            Some((false, "my session".to_string()))
        );
        assert_eq!(parse_arrival(b"AGTL 1\t"), Some((true, String::new())));
        assert_eq!(parse_arrival(b"junk"), None);
        assert!(arrival_query("/dev/pts/3").starts_with("display-message -p -c '/dev/pts/3' "));
    }

    #[test]
    fn a_stray_window_goes_home_or_to_a_user_session() {
        let u = vec!["work".to_string(), "main".to_string()];
        assert_eq!(
            relocate("@7", "work", &u).as_deref(),
            Some("move-window -s @7 -t '=work:'")
        );
        assert_eq!(
            relocate("@7", "gone", &u).as_deref(),
            Some("move-window -s @7 -t '=main:'")
        );
        assert_eq!(relocate("@7", "", &[]), None);
        assert_eq!(relocate("@7; kill-server", "work", &u), None);
        assert_eq!(
            parse_own(b"AGTK @3\twork"),
            Some(("@3".to_string(), "work".to_string()))
        );
        assert_eq!(parse_own(b"AGTK @3\t"), Some(("@3".into(), String::new())));
        assert_eq!(parse_own(b"AGTK junk"), None);
    }

    #[test]
    fn every_command_names_the_one_session() {
        assert!(USER_SESSIONS.contains(&format!(",{NAME}}}")));
        assert!(ENTER.contains(&format!("-s {NAME} ")));
        assert!(KILL.ends_with(&format!("={NAME}")));
    }
}
