//! Publishing (README "What you see"): turns the read model into tmux user options through the
//! options writer, which sends only values that changed. Pane, window, session and global
//! options are all derived here from one read model, so no surface computes state itself.
use crate::core::attention::{self, PaneView, Style};
use crate::core::types::PaneId;
use crate::projection::{PaneModel, Projection};
use crate::tmux::options::{OptionsWriter, Scope};
use std::collections::BTreeMap;

pub(crate) const PANE_OPTIONS: [&str; 11] = [
    "@agtmux_presence",
    "@agtmux_provider",
    "@agtmux_state",
    "@agtmux_evidence",
    "@agtmux_attention_kind",
    "@agtmux_title",
    "@agtmux_since",
    "@agtmux_icon",
    "@agtmux_until",
    "@agtmux_background",
    "@agtmux_detail",
];

/// The attention view of one pane (also `ls`'s icon).
pub(crate) fn view(p: &PaneModel) -> PaneView {
    PaneView {
        managed: p.is_managed(),
        activity: p.activity(),
        attention: p.attention,
        background: p.extras.background,
        until: p.extras.until,
    }
}

/// Desired options of one pane (empty values = unset).
pub(crate) fn pane_values(
    p: &PaneModel,
    style: &Style,
    utc_offset_s: i64,
) -> [(&'static str, String); 11] {
    if !p.is_managed() {
        return PANE_OPTIONS.map(|n| (n, String::new()));
    }
    [
        ("@agtmux_presence", p.presence().as_str().to_string()),
        (
            "@agtmux_provider",
            p.provider()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("@agtmux_state", p.activity().as_str().to_string()),
        ("@agtmux_evidence", p.evidence().as_str().to_string()),
        (
            "@agtmux_attention_kind",
            p.attention
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("@agtmux_title", attention::escape_format(&p.title)),
        ("@agtmux_since", (p.since / 1000).to_string()),
        ("@agtmux_icon", attention::icon(&view(p), style).to_string()),
        // Issue 23: the usage limit's reset (epoch s), background tasks still running, and
        // the one-line detail (`limit until 15:00`, `retrying 3/10`, `compacting`).
        (
            "@agtmux_until",
            p.extras
                .until
                .map(|u| (u / 1000).to_string())
                .unwrap_or_default(),
        ),
        (
            "@agtmux_background",
            if p.extras.background > 0 {
                p.extras.background.to_string()
            } else {
                String::new()
            },
        ),
        (
            "@agtmux_detail",
            attention::escape_format(&p.extras.label(p.activity(), utc_offset_s)),
        ),
    ]
}

/// What the remote hosts (issue 24) add to the global summaries: their live agent panes
/// (empty with `@agtmux-remote-status local`) and how many hosts are unreachable.
#[derive(Debug, Default)]
pub struct Remote {
    pub views: Vec<PaneView>,
    pub unreachable: usize,
}

/// Write every option that changed. `daemon_status` is the `@agtmux_daemon` value.
pub fn publish(
    proj: &Projection,
    changed: &[PaneId],
    all: bool,
    style: &Style,
    daemon_status: &str,
    remote: &Remote,
    w: &mut OptionsWriter,
) {
    let ids: Vec<&PaneId> = if all {
        proj.panes.keys().collect()
    } else {
        changed.iter().collect()
    };
    for id in ids {
        if let Some(p) = proj.panes.get(id) {
            let scope = Scope::Pane(id.clone());
            for (name, value) in pane_values(p, style, proj.utc_offset_s) {
                w.set(&scope, name, &value);
            }
        }
    }
    let mut windows: BTreeMap<&str, Vec<PaneView>> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, Vec<PaneView>> = BTreeMap::new();
    let mut every = Vec::new();
    for p in proj.panes.values() {
        let v = view(p);
        windows.entry(&p.window_id).or_default().push(v);
        sessions.entry(&p.session_id).or_default().push(v);
        every.push(v);
    }
    for (wid, views) in &windows {
        if !wid.is_empty() {
            w.set(
                &Scope::Window(wid.to_string()),
                "@agtmux_window_icon",
                &attention::window_icon(views, style),
            );
        }
    }
    for (sid, views) in &sessions {
        if !sid.is_empty() {
            let scope = Scope::Session(sid.to_string());
            w.set(
                &scope,
                "@agtmux_session_icon",
                &attention::session_icon(views, style),
            );
            w.set(
                &scope,
                "@agtmux_session_counts",
                &attention::session_counts(views, style),
            );
        }
    }
    every.extend(remote.views.iter().copied());
    let mut summary = attention::attention_summary(&every, style, proj.utc_offset_s);
    if remote.unreachable > 0 {
        // Remote hosts whose panes are stale: the summary does not count them, and says so.
        let m = style.mark(crate::core::types::AttentionKind::Error);
        let text = format!("✗{}", remote.unreachable);
        if !summary.is_empty() {
            summary.push(' ');
        }
        style.push_badge(&mut summary, m, &text);
    }
    w.set(&Scope::Global, "@agtmux_attention", &summary);
    w.set(
        &Scope::Global,
        "@agtmux_counts",
        &attention::counts_string(&every),
    );
    w.set(&Scope::Global, "@agtmux_daemon", daemon_status);
}
