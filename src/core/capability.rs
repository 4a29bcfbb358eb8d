//! C-009 capability registry: ONE declared table of which sources can speak for which provider,
//! how much each is trusted (rank: lower = preferred) and what each can tell (activity, approval,
//! input questions, title, pane binding), plus the process names that identify the provider.
//!
//! Why a table: the resolver (Flow-003) and the daemon must never hard-code "app-server beats
//! hooks" or "claude hooks can bind a pane". Adding a provider or a source is one entry here,
//! and every decision that depends on it follows.
use super::types::{Provider, SourceKind};

/// What one source can tell about one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceCapability {
    pub source: SourceKind,
    /// Lower is preferred. Deterministic sources rank below the poller (9).
    pub(crate) rank: u8,
    /// Reports running/idle/error.
    pub activity: bool,
    /// Reports an open approval/permission dialog.
    pub approval: bool,
    /// Reports a question to the user (waiting_input).
    pub input: bool,
    /// Carries a session title.
    pub title: bool,
    /// Its events name the pane they belong to reliably enough to bind a session to a pane
    /// (Claude hooks carry `$TMUX_PANE`; Codex hooks run in the shared app-server daemon, so their
    /// pane is only a hint).
    pub binding: bool,
    /// Applying its events may link a session to a pane. A source that only follows what
    /// others linked (a transcript file of a session) never moves a pane to another session.
    pub links: bool,
    /// It sees turn ends that fire no hook (Claude's Esc interrupt and Esc deny are written to
    /// the transcript only; a Codex API error to the rollout only): its idle or error, newer
    /// than a higher-ranked source's running or waiting state, supersedes that state.
    pub(crate) turn_end: bool,
}

/// One provider: how to recognise its process and which sources speak for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderEntry {
    pub provider: Provider,
    /// Process basenames (argv[0] or comm) that mean "this agent runs here". Launchers such as
    /// `node` are not listed: the process hint resolves them through their children/arguments.
    pub(crate) process_names: &'static [&'static str],
    /// Sources, most preferred first.
    pub sources: &'static [SourceCapability],
}

/// The rank of the screen poller: the fallback for every provider.
pub(crate) const POLLER_RANK: u8 = 9;

const POLLER: SourceCapability = SourceCapability {
    source: SourceKind::Poller,
    rank: POLLER_RANK,
    activity: true,
    approval: true,
    input: true,
    title: true,
    binding: false,
    links: false,
    turn_end: false,
};

/// A source that sees the agent live (a hook, a plugin, the app-server): it tells activity,
/// approvals and questions, and its events may link a session to a pane. No title and no
/// binding unless declared with [`SourceCapability::titled`] / [`SourceCapability::binds`].
const fn live(source: SourceKind, rank: u8) -> SourceCapability {
    SourceCapability {
        source,
        rank,
        activity: true,
        approval: true,
        input: true,
        title: false,
        binding: false,
        links: true,
        turn_end: false,
    }
}

/// A file that follows one session (C-007: a transcript or a rollout), for the turn ends no hook
/// tells: activity only, and it never links a session to a pane.
const fn follower(source: SourceKind, rank: u8) -> SourceCapability {
    SourceCapability {
        source,
        rank,
        activity: true,
        approval: false,
        input: false,
        title: false,
        binding: false,
        links: false,
        turn_end: true,
    }
}

impl SourceCapability {
    /// It carries a session title too.
    const fn titled(self) -> Self {
        SourceCapability {
            title: true,
            ..self
        }
    }

    /// Its events name their pane reliably (see `binding`).
    const fn binds(self) -> Self {
        SourceCapability {
            binding: true,
            ..self
        }
    }
}

/// The declared table. Keep each provider's `sources` sorted by rank.
pub(crate) static REGISTRY: &[ProviderEntry] = &[
    ProviderEntry {
        provider: Provider::Claude,
        process_names: &["claude"],
        sources: &[
            live(SourceKind::ClaudeHooks, 0).titled().binds(),
            // The transcript file, for what no hook tells (Esc interrupt, Esc deny).
            follower(SourceKind::ClaudeTranscript, 1),
            POLLER,
        ],
    },
    ProviderEntry {
        provider: Provider::Codex,
        process_names: &["codex"],
        sources: &[
            live(SourceKind::CodexAppServer, 0).titled(),
            live(SourceKind::CodexHooks, 1),
            // The session's rollout file, for what no hook tells without an app-server (an API
            // error ends the turn with no Stop hook).
            follower(SourceKind::CodexRollout, 2),
            POLLER,
        ],
    },
    // Gemini CLI hooks run in the gemini process of the pane (`$TMUX_PANE` is right). No hook
    // carries a title; Esc on an approval dialog fires none (the screen tells).
    ProviderEntry {
        provider: Provider::Gemini,
        process_names: &["gemini"],
        sources: &[live(SourceKind::GeminiHooks, 0).binds(), POLLER],
    },
    // agtmux's OpenCode plugin runs inside the opencode process of the pane.
    ProviderEntry {
        provider: Provider::OpenCode,
        process_names: &["opencode"],
        sources: &[live(SourceKind::OpenCodePlugin, 0).binds(), POLLER],
    },
    // Any other agent, through `agtmux hook generic`. No process name identifies it and no
    // screen rule knows it: only its own hook (run inside its pane) makes a pane managed.
    ProviderEntry {
        provider: Provider::Generic,
        process_names: &[],
        sources: &[live(SourceKind::GenericHook, 0).titled().binds(), POLLER],
    },
];

/// The registry entry of a provider.
pub fn entry(provider: Provider) -> Option<&'static ProviderEntry> {
    REGISTRY.iter().find(|e| e.provider == provider)
}

/// Every source that can speak for `provider`, most preferred first (empty if unknown).
pub(crate) fn sources_for(provider: Provider) -> &'static [SourceCapability] {
    entry(provider).map(|e| e.sources).unwrap_or(&[])
}

/// What `source` can tell about `provider`, or `None` if it cannot speak for it at all.
pub(crate) fn capability(
    provider: Provider,
    source: SourceKind,
) -> Option<&'static SourceCapability> {
    sources_for(provider).iter().find(|c| c.source == source)
}

/// May `source`'s events link a session to a pane for `provider`? False only for a declared
/// source that merely follows a session (its transcript or rollout file); an undeclared source
/// is refused elsewhere, not here.
pub fn links(provider: Provider, source: SourceKind) -> bool {
    capability(provider, source).is_none_or(|c| c.links)
}

/// The rank of `source` for `provider` (lower = preferred), `None` if it cannot speak for it.
pub(crate) fn rank(provider: Provider, source: SourceKind) -> Option<u8> {
    capability(provider, source).map(|c| c.rank)
}

/// Process basenames that identify `provider`.
pub fn process_names(provider: Provider) -> &'static [&'static str] {
    entry(provider).map(|e| e.process_names).unwrap_or(&[])
}

/// The provider whose process is called `name` (a basename; a path is reduced to its basename).
pub fn provider_for_process(name: &str) -> Option<Provider> {
    let base = name.rsplit('/').next().unwrap_or(name);
    REGISTRY
        .iter()
        .find(|e| e.process_names.contains(&base))
        .map(|e| e.provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_an_entry_with_the_poller_last() {
        for &p in Provider::ALL {
            let srcs = sources_for(p);
            let Some(last) = srcs.last() else {
                panic!("{p} has no sources")
            };
            assert_eq!(
                last.source,
                SourceKind::Poller,
                "{p}: poller must be the fallback"
            );
            assert!(
                srcs.windows(2).all(|w| w[0].rank < w[1].rank),
                "{p}: sorted by rank"
            );
            assert_eq!(
                process_names(p).is_empty(),
                p == Provider::Generic,
                "{p}: only the generic provider has no process name"
            );
        }
    }

    #[test]
    fn ranks_are_declared_per_provider_and_source() {
        let table = [
            (Provider::Codex, SourceKind::CodexAppServer, Some(0)),
            (Provider::Codex, SourceKind::CodexHooks, Some(1)),
            (Provider::Codex, SourceKind::CodexRollout, Some(2)),
            (Provider::Codex, SourceKind::Poller, Some(9)),
            (Provider::Codex, SourceKind::ClaudeTranscript, None),
            (Provider::Codex, SourceKind::ClaudeHooks, None),
            (Provider::Claude, SourceKind::ClaudeHooks, Some(0)),
            (Provider::Claude, SourceKind::ClaudeTranscript, Some(1)),
            (Provider::Claude, SourceKind::Poller, Some(9)),
            (Provider::Claude, SourceKind::CodexRollout, None),
            (Provider::Claude, SourceKind::CodexAppServer, None),
            (Provider::Claude, SourceKind::CodexHooks, None),
            (Provider::Claude, SourceKind::GenericHook, None),
            (Provider::Gemini, SourceKind::GeminiHooks, Some(0)),
            (Provider::Gemini, SourceKind::ClaudeHooks, None),
            (Provider::OpenCode, SourceKind::OpenCodePlugin, Some(0)),
            (Provider::OpenCode, SourceKind::GeminiHooks, None),
            (Provider::Generic, SourceKind::GenericHook, Some(0)),
            (Provider::Generic, SourceKind::Poller, Some(9)),
        ];
        for (p, s, want) in table {
            assert_eq!(rank(p, s), want, "{p}/{s}");
        }
    }

    #[test]
    fn deterministic_sources_outrank_the_poller() {
        for p in Provider::ALL {
            for c in sources_for(*p) {
                if c.source.is_deterministic() {
                    assert!(c.rank < POLLER_RANK);
                }
            }
        }
    }

    #[test]
    fn binding_capability_follows_the_protocol_facts() {
        assert!(capability(Provider::Claude, SourceKind::ClaudeHooks).is_some_and(|c| c.binding));
        assert!(capability(Provider::Codex, SourceKind::CodexHooks).is_some_and(|c| !c.binding));
        assert!(capability(Provider::Codex, SourceKind::Poller).is_some_and(|c| !c.binding));
    }

    #[test]
    fn processes_map_to_providers() {
        assert_eq!(provider_for_process("claude"), Some(Provider::Claude));
        assert_eq!(
            provider_for_process("/usr/bin/codex"),
            Some(Provider::Codex)
        );
        assert_eq!(provider_for_process("gemini"), Some(Provider::Gemini));
        assert_eq!(provider_for_process("opencode"), Some(Provider::OpenCode));
        assert_eq!(provider_for_process("node"), None);
        assert_eq!(provider_for_process("vim"), None);
        assert_eq!(provider_for_process(""), None);
    }
}
