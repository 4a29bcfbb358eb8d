//! Registry sync: what tmux tells the daemon (command replies and notifications) goes into the
//! pane registry and the projection's panes: list-panes, change hints, clients, names, user
//! options, and the pane subscription (captures go to `poller.rs`). It also asks for those
//! (full refresh, change hints).
//!
//! WHY a module of its own: decoding tmux's answers and keeping the registry current is one
//! job; the loop only hands each reply or notification here.
use super::Runtime;
use crate::core::attention::Style;
use crate::core::classifier::process_hint;
use crate::core::types::{Millis, PaneId};
use crate::daemon::publish;
use crate::projection::Projection;
use crate::supervisor::Stage;
use crate::sys::procs;
use crate::tmux::client::ReplyKind;
use crate::tmux::control_session;
use crate::tmux::options::Scope;
use crate::tmux::parser::{Notification, Reply};
use crate::tmux::registry::{self, Registry};

impl Runtime {
    pub(super) fn on_reply(&mut self, kind: ReplyKind, reply: Reply, now: Millis) {
        log::trace!(
            "tmux_reply kind={kind:?} ok={} lines={} first={:?}",
            reply.ok,
            reply.lines.len(),
            reply
                .lines
                .first()
                .map(|l| String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned())
        );
        match kind {
            ReplyKind::Identity => self.on_identity(&reply),
            ReplyKind::ListPanes => self.on_list_panes(&reply, now),
            ReplyKind::Hints(pane) => self.on_hints(&reply, pane, now),
            ReplyKind::ListClients => self.on_list_clients(&reply),
            ReplyKind::Capture(pane) => self.on_capture(&reply, pane, now),
            ReplyKind::Subscribe => self.on_subscribe(&reply),
            ReplyKind::SetOption(what) => self.on_set_option(&reply, what),
            ReplyKind::Notify(tag) => self.publish.notify.on_reply(
                &tag,
                reply.ok,
                &reply.lines,
                (&self.projection, &self.registry, &self.sources.remotes),
                self.tmux.client.as_mut(),
                now,
            ),
            ReplyKind::UserOptions => {
                if reply.ok {
                    self.apply_user_options(&reply.lines);
                }
            }
            ReplyKind::Other => self.on_other(&reply),
            ReplyKind::ListSessions => self.on_list_sessions(&reply),
            ReplyKind::EnterSession => self.tmux.on_enter_session(&reply),
            ReplyKind::OwnWindow => self.tmux.on_own_window(&reply),
            ReplyKind::Arrival(client) => self.tmux.on_arrival(&reply, client, &self.registry),
        }
    }

    /// The server's identity (`IDENTITY`): a new server on the same socket resets everything
    /// learnt about the old one.
    fn on_identity(&mut self, reply: &Reply) {
        let (id, version) = registry::parse_identity(&reply.lines);
        let changed = self.tmux.identity.as_deref() != Some(id.as_str());
        if changed {
            log::info!("tmux_server_identity id={id} version={version}");
            if self.tmux.identity.is_some() {
                // A new server on the same socket: nothing carries over.
                self.projection = Projection::new(crate::sys::host::hostname());
                self.publish.notify = Default::default();
                self.registry = Registry::default();
                self.screens.captures.clear();
                self.screens.settle.clear();
            }
            self.tmux.identity = Some(id.clone());
            self.gateway.set_server_id(&id);
        }
        if !self.publish.restored {
            self.publish.restored = true;
        }
    }

    /// The full `list-panes -a`: panes added, gone, or whose process changed.
    fn on_list_panes(&mut self, reply: &Reply, now: Millis) {
        if !reply.ok {
            log::warn!(
                "list_panes_failed msg={:?}",
                reply
                    .lines
                    .first()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            );
            return;
        }
        let first_load = !self.registry.loaded;
        let diff = self.registry.apply(&reply.lines);
        log::debug!(
            "registry_refresh panes={} added={} removed={} process_changed={}",
            self.registry.panes.len(),
            diff.added.len(),
            diff.removed.len(),
            diff.process_changed.len()
        );
        self.gateway.registry_refreshed(now);
        self.apply_added_removed(&diff, first_load, now);
        // Keep session/window ids and titles current; re-check processes where needed.
        let ids: Vec<PaneId> = self.registry.panes.keys().cloned().collect();
        for id in ids {
            self.refresh_pane(&id, &diff, now);
        }
        for id in diff.focus_changed.iter().chain(diff.added.iter()) {
            self.projection.mark_dirty(id);
        }
        if first_load {
            // Flow-011: server identity and panes known → the gateway may ingest;
            // state restored → the daemon stage; the API opens after the first publish.
            self.health.startup.mark_ready(Stage::Gateway, now);
            self.restore_state(now);
            self.health.startup.mark_ready(Stage::Daemon, now);
        }
    }

    /// Panes the refresh found new (a capture soon) or gone (forgotten everywhere).
    fn apply_added_removed(&mut self, diff: &registry::Diff, first_load: bool, now: Millis) {
        for id in &diff.added {
            if let Some(p) = self.registry.panes.get(id) {
                self.projection
                    .pane_added(id, &p.session_id, &p.window_id, now);
                self.screens.captures.entry(id.clone()).or_default().want = true;
            }
        }
        for p in &diff.removed {
            self.projection.pane_removed(&p.pane_id, now);
            self.publish.notify.forget(&p.pane_id);
            self.screens.captures.remove(&p.pane_id);
            self.publish.options.forget(&Scope::Pane(p.pane_id.clone()));
            self.publish.all = true;
        }
        if !diff.removed.is_empty() && !first_load {
            let gone: Vec<PaneId> = diff.removed.iter().map(|p| p.pane_id.clone()).collect();
            self.gateway.forget_panes(&gone);
        }
    }

    /// Keep one pane's session/window ids and title current; re-check its process where
    /// needed (new or changed, or an agent pane's periodic look).
    fn refresh_pane(&mut self, id: &PaneId, diff: &registry::Diff, now: Millis) {
        let Some(p) = self.registry.panes.get(id).cloned() else {
            return;
        };
        self.projection
            .pane_added(id, &p.session_id, &p.window_id, now);
        self.projection.set_pane_title(id, &p.title);
        let cs = self.screens.captures.entry(id.clone()).or_default();
        let new_proc =
            diff.added.iter().any(|x| x == id) || diff.process_changed.iter().any(|x| x == id);
        let agentish = self
            .projection
            .panes
            .get(id)
            .is_some_and(|m| m.process.is_some());
        if new_proc || (agentish && now - cs.last_proc_check >= self.due.timing.process_recheck) {
            cs.last_proc_check = now;
            self.recheck_process(id, now);
        }
        self.check_anchor(id);
        if new_proc {
            self.screens.start_settle(id, now);
        }
    }

    /// One pane's change hints (`display -p`): process, focus and title changes.
    fn on_hints(&mut self, reply: &Reply, pane: PaneId, now: Millis) {
        if !reply.ok {
            // The pane is gone (no notification says so outside the attached session).
            self.due.refresh_requested = true;
            return;
        }
        let Some(line) = reply.lines.first() else {
            return;
        };
        // Once a second per agent pane: is the process its hooks came from still
        // there? (one /proc read, no fork)
        self.check_anchor(&pane);
        match self.registry.apply_hints(&pane, line) {
            Some(h) => {
                let settling = self.screens.settle.contains_key(&pane);
                let agentish =
                    (self.projection.panes.get(&pane)).is_some_and(|m| m.process.is_some());
                if h.process_changed {
                    // The agent may have left (or been replaced): read its tree now,
                    // and follow the pane until its command settles.
                    self.recheck_process(&pane, now);
                    self.screens.start_settle(&pane, now);
                } else if settling && !agentish {
                    // Same command, but a child may have appeared under it (`sh -c`
                    // forking the agent keeps `sh` in front).
                    self.recheck_process(&pane, now);
                }
                if h.focus_changed {
                    self.projection.mark_dirty(&pane);
                }
                if h.title_changed
                    && let Some(p) = self.registry.panes.get(&pane)
                {
                    let title = p.title.clone();
                    self.projection.set_pane_title(&pane, &title);
                }
            }
            None => log::debug!("hints_bad_row pane={pane}"),
        }
    }

    /// Which sessions have a viewer (`list-clients`).
    fn on_list_clients(&mut self, reply: &Reply) {
        let viewers = registry::parse_clients(&reply.lines);
        if viewers != self.registry.viewers {
            log::info!("viewers_changed sessions={}", viewers.len());
            self.registry.viewers = viewers;
            let ids: Vec<PaneId> = self.projection.panes.keys().cloned().collect();
            for id in ids {
                self.projection.mark_dirty(&id);
            }
        }
    }

    /// The answer to the pane subscription (tmux ≥ 3.2 accepts it).
    fn on_subscribe(&mut self, reply: &Reply) {
        if reply.ok {
            log::info!("tmux_subscribed name={}", registry::PANES_SUBSCRIPTION);
        } else {
            // tmux < 3.2: new panes come through notifications and their settle
            // re-checks; a command typed into an existing pane waits for the full scan.
            log::info!(
                "tmux_subscription_unavailable msg={:?}",
                reply
                    .lines
                    .first()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            );
        }
    }

    /// An option write's answer: a failure asks for a full refresh.
    fn on_set_option(&mut self, reply: &Reply, what: String) {
        if !reply.ok {
            log::debug!(
                "option_write_failed what={what} msg={:?}",
                reply
                    .lines
                    .first()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            );
            self.due.refresh_requested = true;
        }
    }

    /// Untagged replies: published panes (`AGTO` rows) and session/window names.
    fn on_other(&mut self, reply: &Reply) {
        if let Some(panes) = registry::parse_published(&reply.lines) {
            for pane in panes {
                let scope = Scope::Pane(pane);
                for name in publish::PANE_OPTIONS {
                    self.publish.options.assume_set(&scope, name);
                }
            }
            self.publish.all = true;
        }
        self.apply_names(&reply.lines);
    }

    /// The agent process a pane's hooks came from has exited: its deterministic state ends.
    fn check_anchor(&mut self, id: &PaneId) {
        if let Some((pid, start)) = self.projection.live_anchor(id)
            && !procs::alive(pid, start)
        {
            self.projection.anchor_gone(id);
        }
    }

    /// Read a pane's foreground process tree and update its process hint.
    fn recheck_process(&mut self, id: &PaneId, now: Millis) {
        let Some(p) = self.registry.panes.get(id) else {
            return;
        };
        let tree = procs::foreground_tree(p.pane_pid);
        let hint = process_hint(&p.current_command, &tree);
        let pid = hint.and(tree.first().map(|t| t.pid));
        self.projection.set_process(id, hint, pid, now);
    }

    /// `@agtmux-*` user options (icons, colours, theme) from `show-options -g`: the whole
    /// style is rebuilt from the defaults, so an option the user unset goes back to its default.
    /// The theme goes first (it resets icons and colours; tmux lists options sorted by name).
    fn apply_user_options(&mut self, lines: &[Vec<u8>]) {
        let mut opts: Vec<(String, String)> = lines
            .iter()
            .filter_map(|l| {
                let l = String::from_utf8_lossy(l);
                let (name, value) = l.split_once(' ')?;
                name.starts_with("@agtmux-")
                    .then(|| (name.to_string(), value.trim().trim_matches('"').to_string()))
            })
            .collect();
        opts.sort_by_key(|(name, _)| name != "@agtmux-theme");
        let mut style = Style::default();
        for (name, value) in &opts {
            if let Err(e) = style.apply_option(name, value) {
                log::debug!("user_option_ignored name={name} err={e:?}");
            }
        }
        if style != self.publish.style {
            log::info!("user_options_applied count={}", opts.len());
        }
        self.publish.style = style;
        self.publish.all = true;
        // Issue 24: @agtmux-remotes and friends (new hosts start, removed ones stop).
        self.sources.remotes.configure(
            crate::daemon::remote::RemoteConfig::from_options(&opts),
            self.poll.registry(),
            crate::sys::clock::now_ms(),
        );
    }

    pub(super) fn on_notification(&mut self, n: Notification, now: Millis) {
        log::trace!("tmux_notification name={}", n.name());
        match n {
            Notification::SubscriptionChanged { name, value, .. }
                if name == registry::PANES_SUBSCRIPTION =>
            {
                self.on_pane_digest(&value, now);
            }
            // The plugin was sourced again: read the @agtmux-* options again.
            Notification::SubscriptionChanged { name, .. }
                if name == registry::OPTIONS_SUBSCRIPTION =>
            {
                if let Some(t) = self.tmux.client.as_mut() {
                    t.send("show-options -g", ReplyKind::UserOptions);
                }
            }
            // automatic-rename follows the active pane's command: look at that pane (not at
            // every pane), and keep the name for the API.
            Notification::WindowRenamed { window, name }
            | Notification::UnlinkedWindowRenamed { window, name } => {
                let name = String::from_utf8_lossy(&name).into_owned();
                self.registry.window_names.insert(window.clone(), name);
                match self.registry.active_pane_of(&window).cloned() {
                    Some(p) => self.screens.start_settle(&p, now),
                    None => self.due.refresh_requested = true,
                }
            }
            // A real client landed in our session, or someone made a window there: see
            // `own_session.rs`.
            Notification::ClientSessionChanged { client, name, .. }
                if name == control_session::NAME.as_bytes() =>
            {
                self.tmux.on_client_arrived(&client);
                self.due.refresh_requested = true;
            }
            Notification::WindowAdd { window } if self.tmux.is_stray_window(&window) => {
                self.tmux.move_stray_window(&window, &self.registry);
                self.due.refresh_requested = true;
            }
            Notification::WindowAdd { .. }
            | Notification::WindowClose { .. }
            | Notification::UnlinkedWindowAdd { .. }
            | Notification::UnlinkedWindowClose { .. }
            | Notification::SessionsChanged
            | Notification::SessionChanged { .. }
            | Notification::ClientSessionChanged { .. }
            | Notification::ClientDetached { .. }
            | Notification::SessionWindowChanged { .. }
            | Notification::WindowPaneChanged { .. }
            | Notification::LayoutChange { .. }
            | Notification::PaneModeChanged { .. }
            | Notification::SessionRenamed { .. } => self.due.refresh_requested = true,
            // Named and deliberately ignored: pane output (the client runs with no-output),
            // flow control, other subscriptions, buffers, messages and config errors (logged).
            Notification::ConfigError { message } => log::info!(
                "tmux_config_error msg={:?}",
                String::from_utf8_lossy(&message[..message.len().min(300)])
            ),
            Notification::Other { name, .. } => {
                log::debug!("tmux_notification_unknown name={name}")
            }
            Notification::Output { .. }
            | Notification::ExtendedOutput { .. }
            | Notification::Pause { .. }
            | Notification::Continue { .. }
            | Notification::SubscriptionChanged { .. }
            | Notification::Message { .. }
            | Notification::PasteBufferChanged { .. }
            | Notification::PasteBufferDeleted { .. }
            | Notification::Exit { .. } => {}
        }
    }

    /// The pane subscription's value changed: panes whose pid or foreground command moved get
    /// their process tree read now and are followed until their command settles; a pane that
    /// appeared or went asks for the full refresh. Work grows with the panes that changed.
    fn on_pane_digest(&mut self, value: &[u8], now: Millis) {
        if !self.registry.loaded {
            return;
        }
        let digest = registry::parse_pane_digest(value);
        let (changed, structure) = self.registry.apply_digest(&digest);
        if structure {
            self.due.refresh_requested = true;
        }
        for id in changed {
            log::debug!("pane_command_changed pane={id} via=subscription");
            self.recheck_process(&id, now);
            self.screens.start_settle(&id, now);
        }
    }

    pub(super) fn request_refresh(&mut self, now: Millis) {
        let Some(t) = self.tmux.client.as_mut() else {
            return;
        };
        if !t.has_pending(&ReplyKind::ListPanes) {
            t.send(registry::LIST_PANES, ReplyKind::ListPanes);
            t.send(registry::LIST_CLIENTS, ReplyKind::ListClients);
            // Names for the API (replies tagged AGTS/AGTW); the user's sessions (is any left?).
            t.send(registry::LIST_SESSIONS, ReplyKind::ListSessions);
            t.send(registry::LIST_WINDOWS, ReplyKind::Other);
        }
        self.due.refresh_requested = false;
        self.due.next_refresh = now + self.due.timing.refresh_full;
        self.due.next_hints = now + self.due.timing.refresh_hints;
    }

    /// The cheap tick: change hints of agent panes only.
    pub(super) fn request_hints(&mut self, now: Millis) {
        self.due.next_hints = now + self.due.timing.refresh_hints;
        let Some(t) = self.tmux.client.as_mut() else {
            return;
        };
        for (id, m) in &self.projection.panes {
            if !m.is_candidate() || !self.registry.panes.contains_key(id) {
                continue;
            }
            let kind = ReplyKind::Hints(id.clone());
            if !t.has_pending(&kind) {
                t.send(&registry::pane_hints_command(id), kind);
            }
        }
    }

    /// Session and window names from `AGTS`/`AGTW` rows.
    pub(super) fn apply_names(&mut self, lines: &[Vec<u8>]) {
        if lines.iter().any(|l| l.starts_with(b"AGTS ")) {
            self.registry.session_names = registry::parse_names(lines, "AGTS")
                .into_iter()
                .map(|(id, (name, _))| (id, name))
                .collect();
        }
        if lines.iter().any(|l| l.starts_with(b"AGTW ")) {
            self.registry.window_names = registry::parse_names(lines, "AGTW")
                .into_iter()
                .map(|(id, (name, _))| (id, name))
                .collect();
        }
    }
}
