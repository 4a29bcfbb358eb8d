//! The daemon's own tmux session at run time (`tmux::control_session` says why it exists):
//! entering it once attached, ending it when no session of the user's is left, moving a real
//! client that lands in it on its way, and moving a window someone made in it to the user's
//! session.
//!
//! WHY a module of its own: keeping our session out of the user's way is one job; the control
//! connection and the registry sync only hand the matching replies and notifications here.
use super::Runtime;
use super::tmux_control::TmuxSide;
use crate::tmux::client::ReplyKind;
use crate::tmux::control_session;
use crate::tmux::parser::Reply;
use crate::tmux::registry::Registry;

impl Runtime {
    /// The user's sessions (ours filtered out): names for the API, and when none is left, ours
    /// ends too, so tmux ends the server (`exit-empty`) as it would have without agtmux. With
    /// `exit-empty off` the server stays, and the control client waits for a session.
    pub(super) fn on_list_sessions(&mut self, reply: &Reply) {
        self.apply_names(&reply.lines);
        if reply.ok && !reply.lines.iter().any(|l| l.starts_with(b"AGTS ")) {
            log::info!("control_session_kill reason=no_user_sessions");
            if let Some(t) = self.tmux.client.as_mut() {
                t.send(control_session::KILL, ReplyKind::Other);
            }
        }
    }
}

impl TmuxSide {
    /// The `ENTER` reply: once in, learn our window and the session we came from.
    pub(super) fn on_enter_session(&mut self, reply: &Reply) {
        if reply.ok {
            log::info!("control_session_entered name={}", control_session::NAME);
            if let Some(t) = self.client.as_mut() {
                t.send(control_session::OWN, ReplyKind::OwnWindow);
            }
        } else {
            log::warn!(
                "control_session_enter_failed msg={:?}",
                reply
                    .lines
                    .first()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            );
        }
    }

    pub(super) fn on_own_window(&mut self, reply: &Reply) {
        if let Some((w, home)) = reply
            .lines
            .first()
            .and_then(|l| control_session::parse_own(l))
        {
            log::info!("control_session_home window={w} home={home:?}");
            self.own_window = Some((w, home));
        }
    }

    /// `%client-session-changed` into our session: ask where the client came from.
    pub(super) fn on_client_arrived(&mut self, client: &[u8]) {
        let client = String::from_utf8_lossy(client).into_owned();
        if let Some(t) = self.client.as_mut() {
            t.send(
                &control_session::arrival_query(&client),
                ReplyKind::Arrival(client),
            );
        }
    }

    /// A real client (not a control client) in our session goes on its way.
    pub(super) fn on_arrival(&mut self, reply: &Reply, client: String, reg: &Registry) {
        let Some((control, last)) = reply
            .lines
            .first()
            .and_then(|l| control_session::parse_arrival(l))
        else {
            return;
        };
        if control {
            return;
        }
        let users: Vec<String> = reg.session_names.values().cloned().collect();
        let cmd = control_session::onward(&client, &last, &users);
        log::info!("control_session_move_client client={client:?} last={last:?}");
        if let Some(t) = self.client.as_mut() {
            t.send(&cmd, ReplyKind::Other);
        }
    }

    /// Is `window` (from `%window-add`, so in our session) someone else's?
    pub(super) fn is_stray_window(&self, window: &str) -> bool {
        self.own_window
            .as_ref()
            .is_some_and(|(own, _)| own != window)
    }

    /// A window that a command without a target made in our session (ours had tmux's newest
    /// activity) goes where the user would have had it.
    pub(super) fn move_stray_window(&mut self, window: &str, reg: &Registry) {
        let home = self
            .own_window
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        let users: Vec<String> = reg.session_names.values().cloned().collect();
        if let Some(cmd) = control_session::relocate(window, &home, &users)
            && let Some(t) = self.client.as_mut()
        {
            log::info!("control_session_move_window window={window} home={home:?}");
            t.send(&cmd, ReplyKind::Other);
        }
    }
}
