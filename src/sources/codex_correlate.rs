//! C-004: binds a Codex thread to the tmux pane that shows it, by correlation, with a confidence.
//!
//! WHY: Codex hooks run inside the shared app-server daemon, so a hook's `$TMUX_PANE` is the
//! pane of the TUI that started the daemon, and the app-server never names a pane
//! (observed on codex-cli: hooks run inside the app-server daemon). So a thread is bound to a pane
//! from
//! evidence, strongest first:
//! 1. the hook's `$TMUX_PANE`, trusted only when the hook's parent process lives in that pane's
//!    process tree (then the hook really ran for that TUI) — confidence 95;
//! 2. the latest user prompt appearing on exactly one candidate pane's screen, shortly after it
//!    was sent — 90 (85 when it needs the cwd to break a tie);
//! 3. a unique cwd match between the thread and a Codex TUI process — 70;
//! 4. a turn start/end that coincides with a screen change on exactly one same-cwd pane — 45
//!    (weak: callers should treat it as heuristic).
//!
//! Anything else is `Undecided { candidates, reason }`: the pane stays heuristic (screen only).
//! One call yields at most one pane, so a thread is never bound to two panes; panes already bound
//! to another live thread are only taken on prompt evidence. Pure: no I/O, time is an input.
use crate::core::types::{Millis, PaneId};

/// How far back a prompt may have been sent to count as "just typed" (ms).
pub(crate) const PROMPT_WINDOW_MS: Millis = 15_000;
/// Screen change within this distance of a turn start/end counts as coinciding (ms).
pub(crate) const TIMING_WINDOW_MS: Millis = 1_500;
/// Prompt prefix length used for matching (wrapping and truncation make the tail unreliable).
const PROMPT_MATCH_CHARS: usize = 48;
/// Shorter prompts are too likely to appear by chance ("yes", "ok").
const PROMPT_MIN_CHARS: usize = 6;

/// A pane that runs a Codex TUI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaneCandidate {
    pub pane_id: PaneId,
    /// cwd of the TUI process (not of the pane's shell).
    pub(crate) tui_cwd: Option<String>,
    /// Recent screen text (`capture-pane -p -J`).
    pub screen: String,
    pub(crate) last_screen_change: Option<Millis>,
    /// The thread this pane is already bound to, if any.
    pub(crate) bound_thread: Option<String>,
}

/// What we know about a thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ThreadEvidence {
    pub thread_id: String,
    pub cwd: Option<String>,
    pub prompt: Option<String>,
    pub(crate) prompt_ts: Option<Millis>,
    pub(crate) turn_started: Option<Millis>,
    pub(crate) turn_ended: Option<Millis>,
    /// `$TMUX_PANE` of a hook for this thread.
    pub(crate) hook_pane: Option<PaneId>,
    /// Whether that hook's parent process is in the hook pane's process tree.
    pub(crate) hook_parent_in_pane_tree: bool,
}

/// The outcome of correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Bound {
        pane_id: PaneId,
        /// 0..=100.
        confidence: u8,
        reason: String,
    },
    Undecided {
        candidates: Vec<PaneId>,
        reason: String,
    },
}

fn norm_path(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() { "/" } else { t }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn prompt_key(prompt: &str) -> Option<String> {
    let first = prompt.lines().map(str::trim).find(|l| !l.is_empty())?;
    let c = collapse(first);
    if c.chars().count() < PROMPT_MIN_CHARS {
        return None;
    }
    Some(c.chars().take(PROMPT_MATCH_CHARS).collect())
}

fn bound_elsewhere(p: &PaneCandidate, thread: &str) -> bool {
    p.bound_thread.as_deref().is_some_and(|b| b != thread)
}

fn bound(p: &PaneCandidate, confidence: u8, reason: impl Into<String>) -> Binding {
    Binding::Bound {
        pane_id: p.pane_id.clone(),
        confidence,
        reason: reason.into(),
    }
}

/// Chooses the pane for a thread among candidate Codex panes.
pub(crate) fn correlate(t: &ThreadEvidence, panes: &[PaneCandidate], now: Millis) -> Binding {
    // 1. A hook pane whose process tree holds the hook's parent.
    if let Some(hp) = t.hook_pane.as_ref()
        && t.hook_parent_in_pane_tree
        && let Some(p) = panes.iter().find(|p| p.pane_id == *hp)
    {
        return bound(
            p,
            95,
            "hook parent process lives in this pane's process tree",
        );
    }
    let cwd_matches: Vec<&PaneCandidate> = match t.cwd.as_deref() {
        Some(c) => panes
            .iter()
            .filter(|p| p.tui_cwd.as_deref().map(norm_path) == Some(norm_path(c)))
            .collect(),
        None => Vec::new(),
    };
    // 2. The prompt on exactly one screen.
    let fresh = t
        .prompt_ts
        .is_some_and(|ts| now - ts <= PROMPT_WINDOW_MS && ts - now <= 1_000);
    if fresh && let Some(key) = t.prompt.as_deref().and_then(prompt_key) {
        let showing: Vec<&PaneCandidate> = panes
            .iter()
            .filter(|p| collapse(&p.screen).contains(&key))
            .collect();
        if showing.len() == 1 {
            return bound(showing[0], 90, "prompt text is on exactly one Codex pane");
        }
        if showing.len() > 1 {
            let narrowed: Vec<&&PaneCandidate> = showing
                .iter()
                .filter(|p| cwd_matches.iter().any(|c| c.pane_id == p.pane_id))
                .collect();
            if narrowed.len() == 1 {
                return bound(
                    narrowed[0],
                    85,
                    "prompt text on several panes; one has the cwd",
                );
            }
        }
    }
    let free: Vec<&&PaneCandidate> = cwd_matches
        .iter()
        .filter(|p| !bound_elsewhere(p, &t.thread_id))
        .collect();
    // 3. A unique cwd.
    if free.len() == 1 {
        return bound(free[0], 70, "the only Codex pane with the thread's cwd");
    }
    // 4. Timing, only as a tie-breaker among same-cwd panes.
    if free.len() > 1 {
        let marks: Vec<Millis> = [t.turn_started, t.turn_ended]
            .into_iter()
            .flatten()
            .collect();
        let coincide: Vec<&&&PaneCandidate> = free
            .iter()
            .filter(|p| {
                p.last_screen_change
                    .is_some_and(|c| marks.iter().any(|m| (c - m).abs() <= TIMING_WINDOW_MS))
            })
            .collect();
        if coincide.len() == 1 && !marks.is_empty() {
            return bound(
                coincide[0],
                45,
                "only same-cwd pane whose screen changed with the turn",
            );
        }
        return Binding::Undecided {
            candidates: free.iter().map(|p| p.pane_id.clone()).collect(),
            reason: format!(
                "{} Codex panes share cwd {:?} and no prompt text or timing tells them apart",
                free.len(),
                t.cwd.as_deref().unwrap_or("?")
            ),
        };
    }
    Binding::Undecided {
        candidates: panes.iter().map(|p| p.pane_id.clone()).collect(),
        reason: if t.cwd.is_none() {
            "thread cwd unknown and no prompt text on a single pane".into()
        } else {
            "no free Codex pane has the thread's cwd".into()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, cwd: &str, screen: &str, changed: Option<Millis>) -> PaneCandidate {
        PaneCandidate {
            pane_id: id.into(),
            tui_cwd: Some(cwd.into()),
            screen: screen.into(),
            last_screen_change: changed,
            bound_thread: None,
        }
    }

    fn thread(cwd: &str, prompt: Option<&str>, prompt_ts: Option<Millis>) -> ThreadEvidence {
        ThreadEvidence {
            thread_id: "th".into(),
            cwd: Some(cwd.into()),
            prompt: prompt.map(str::to_string),
            prompt_ts,
            ..Default::default()
        }
    }

    /// A thread in `cwd` whose hooks said `$TMUX_PANE` was %1, their parent process in that
    /// pane's tree or not.
    fn hooked_from_1(parent_in_pane_tree: bool, cwd: &str) -> ThreadEvidence {
        ThreadEvidence {
            hook_pane: Some("%1".into()),
            hook_parent_in_pane_tree: parent_in_pane_tree,
            ..thread(cwd, None, None)
        }
    }

    fn pane_of(b: &Binding) -> Option<&str> {
        match b {
            Binding::Bound { pane_id, .. } => Some(pane_id),
            Binding::Undecided { .. } => None,
        }
    }

    const NOW: Millis = 1_000_000;

    #[test]
    fn table() {
        let idle = "› Ask Codex to do anything\n? for shortcuts";
        struct Case {
            name: &'static str,
            t: ThreadEvidence,
            panes: Vec<PaneCandidate>,
            want: Option<&'static str>,
        }
        let cases = vec![
            Case {
                name: "two panes, different cwds",
                t: thread("/home/dev/a", None, None),
                panes: vec![
                    pane("%1", "/home/dev/a/", idle, None),
                    pane("%2", "/home/dev/b", idle, None),
                ],
                want: Some("%1"),
            },
            Case {
                name: "same cwd told apart by prompt text",
                t: thread(
                    "/w",
                    Some("please refactor the parser module"),
                    Some(NOW - 2_000),
                ),
                panes: vec![
                    pane("%1", "/w", idle, None),
                    pane(
                        "%2",
                        "/w",
                        "› please refactor the parser module\n• Working (2s • esc to interrupt)",
                        None,
                    ),
                ],
                want: Some("%2"),
            },
            Case {
                name: "prompt too old to count",
                t: thread(
                    "/w",
                    Some("please refactor the parser module"),
                    Some(NOW - 60_000),
                ),
                panes: vec![
                    pane("%1", "/w", idle, None),
                    pane("%2", "/w", "› please refactor the parser module", None),
                ],
                want: None,
            },
            Case {
                name: "undecidable: same cwd, same screens",
                t: thread("/w", Some("hello there friend"), Some(NOW - 1_000)),
                panes: vec![pane("%1", "/w", idle, None), pane("%2", "/w", idle, None)],
                want: None,
            },
            Case {
                name: "wrong TMUX_PANE not trusted",
                t: hooked_from_1(false, "/b"),
                panes: vec![pane("%1", "/a", idle, None), pane("%2", "/b", idle, None)],
                want: Some("%2"),
            },
            Case {
                name: "TMUX_PANE trusted when the hook parent is in the pane tree",
                t: hooked_from_1(true, "/w"),
                panes: vec![pane("%1", "/w", idle, None), pane("%2", "/w", idle, None)],
                want: Some("%1"),
            },
            Case {
                name: "timing breaks a same-cwd tie",
                t: ThreadEvidence {
                    turn_started: Some(NOW - 500),
                    ..thread("/w", None, None)
                },
                panes: vec![
                    pane("%1", "/w", idle, Some(NOW - 400)),
                    pane("%2", "/w", idle, Some(NOW - 9_000)),
                ],
                want: Some("%1"),
            },
            Case {
                name: "a pane bound to another thread is not taken by cwd",
                t: thread("/w", None, None),
                panes: vec![
                    PaneCandidate {
                        bound_thread: Some("other".into()),
                        ..pane("%1", "/w", idle, None)
                    },
                    pane("%2", "/w", idle, None),
                ],
                want: Some("%2"),
            },
            Case {
                name: "no candidate with the cwd",
                t: thread("/x", None, None),
                panes: vec![pane("%1", "/w", idle, None)],
                want: None,
            },
        ];
        for c in cases {
            let b = correlate(&c.t, &c.panes, NOW);
            assert_eq!(pane_of(&b), c.want, "{}: {b:?}", c.name);
        }
    }

    #[test]
    fn undecided_lists_candidates_and_reason() {
        let t = thread("/w", None, None);
        let panes = vec![pane("%1", "/w", "", None), pane("%2", "/w", "", None)];
        match correlate(&t, &panes, NOW) {
            Binding::Undecided { candidates, reason } => {
                assert_eq!(candidates, vec![PaneId::from("%1"), "%2".into()]);
                assert!(reason.contains("share cwd"));
            }
            b => panic!("expected undecided, got {b:?}"),
        }
    }

    #[test]
    fn confidence_orders_evidence() {
        let conf = |b: Binding| match b {
            Binding::Bound { confidence, .. } => confidence,
            _ => 0,
        };
        let hook = ThreadEvidence {
            hook_pane: Some("%1".into()),
            hook_parent_in_pane_tree: true,
            ..thread("/w", None, None)
        };
        let panes = vec![pane("%1", "/w", "", None)];
        let prompt = thread("/w", Some("explain the borrow checker"), Some(NOW));
        let p2 = vec![pane("%1", "/w", "explain the borrow checker", None)];
        let c_hook = conf(correlate(&hook, &panes, NOW));
        let c_prompt = conf(correlate(&prompt, &p2, NOW));
        let c_cwd = conf(correlate(&thread("/w", None, None), &panes, NOW));
        assert!(c_hook > c_prompt && c_prompt > c_cwd && c_cwd > 0);
    }
}
