//! C-012 pane signature classifier (Flow-002 guards): is an agent in this pane, which one, and
//! how do we know (deterministic binding, heuristic process+screen, or not at all), plus the
//! presence hysteresis that keeps one odd poll from dropping a pane.
//!
//! WHY these guards: agtmux must never call a pane without an agent an agent. Words and titles
//! lie: `vim CLAUDE.md`, `less` on a log full of agent UI, `cat` of a recorded screen, a shell
//! whose cwd is `~/claude`. So presence needs the agent's own process (argv[0] `claude`/`codex`
//! or node/bun running their entry points) or a live deterministic binding (hooks/app-server).
//! A screen or a title alone only ever adds confidence to one of those.
//!
//! Pure: no I/O, no clock. Transitions are returned to the caller, which logs them
//! (`Transition::log_line` gives the key=value form).
use crate::core::types::{Presence, Provider, str_enum};

/// One process of the pane's process tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub(crate) ppid: i32,
    pub argv: Vec<String>,
}

/// Foreground commands that are never an agent, whatever their arguments or the screen say.
const NEVER_AGENT: &[&str] = &[
    "bash",
    "zsh",
    "fish",
    "sh",
    "dash",
    "ksh",
    "tcsh",
    "csh",
    "nu",
    "elvish",
    "xonsh",
    "vim",
    "nvim",
    "vi",
    "view",
    "nano",
    "emacs",
    "hx",
    "helix",
    "micro",
    "kak",
    "less",
    "more",
    "most",
    "bat",
    "man",
    "tail",
    "head",
    "cat",
    "grep",
    "rg",
    "ag",
    "watch",
    "htop",
    "top",
    "btop",
    "atop",
    "python",
    "python3",
    "ipython",
    "ruby",
    "irb",
    "perl",
    "lua",
    "ssh",
    "mosh",
    "tmux",
    "screen",
    "git",
    "tig",
    "lazygit",
    "make",
    "cargo",
    "jq",
    "fzf",
    "sleep",
    "journalctl",
];

/// Interpreters that can run an agent's JS entry point.
const JS_RUNTIMES: &[&str] = &["node", "nodejs", "bun", "deno"];

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Strips a trailing version-ish suffix the way some launchers name processes (`python3.11`).
fn is_never_agent(cmd: &str) -> bool {
    let b = basename(cmd);
    NEVER_AGENT.contains(&b)
        || (b.starts_with("python") && b[6..].chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The provider an agent binary or entry-point path names, if any. Only whole path parts count.
fn provider_of_program(path: &str) -> Option<Provider> {
    let b = basename(path);
    match b {
        "claude" => return Some(Provider::Claude),
        "codex" => return Some(Provider::Codex),
        "gemini" => return Some(Provider::Gemini),
        "opencode" => return Some(Provider::OpenCode),
        _ => {}
    }
    // Gemini CLI's bin is `bundle/gemini.js`; it relaunches itself with the same script.
    if path.contains("/@google/gemini-cli/") && (b.ends_with(".js") || b.ends_with(".mjs")) {
        return Some(Provider::Gemini);
    }
    if path.contains("/@anthropic-ai/claude-code/") && (b.ends_with(".js") || b.ends_with(".mjs")) {
        return Some(Provider::Claude);
    }
    if path.contains("/@openai/codex/") && (b.ends_with(".js") || b.ends_with(".mjs")) {
        return Some(Provider::Codex);
    }
    None
}

/// The provider one process runs, with the reason.
fn proc_hint(argv: &[String]) -> Option<(Provider, &'static str)> {
    let argv0 = argv.first()?;
    if let Some(p) = provider_of_program(argv0).filter(|_| !argv0.ends_with(".js")) {
        return Some((p, "argv0_is_agent"));
    }
    if JS_RUNTIMES.contains(&basename(argv0)) {
        // the script is the first argument that is not an option
        let script = argv[1..].iter().find(|a| !a.starts_with('-'))?;
        return provider_of_program(script).map(|p| (p, "js_runtime_runs_agent_entry"));
    }
    None
}

/// Provider from `pane_current_command` and the pane's process tree. A foreground command in
/// the never-agent list (shells, editors, pagers, REPLs, monitors) wins over the tree.
pub fn process_hint(command: &str, tree: &[ProcInfo]) -> Option<(Provider, &'static str)> {
    let cmd = command.trim();
    if is_never_agent(cmd) {
        return None;
    }
    match basename(cmd) {
        "claude" => return Some((Provider::Claude, "pane_current_command_claude")),
        "codex" => return Some((Provider::Codex, "pane_current_command_codex")),
        "opencode" => return Some((Provider::OpenCode, "pane_current_command_opencode")),
        _ => {}
    }
    let mut found: Option<(Provider, &'static str)> = None;
    for p in tree {
        if let Some(h) = proc_hint(&p.argv) {
            match found {
                None => found = Some(h),
                // two different agents behind one non-agent foreground: ambiguous, claim nothing
                Some((prev, _)) if prev != h.0 => return None,
                _ => {}
            }
        }
    }
    found
}

str_enum!(
    /// How we know there is an agent.
    SignatureClass {
        Deterministic => "deterministic",
        Heuristic => "heuristic",
        None => "none",
    }
);

/// The evidence for one pane at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SignatureInput {
    /// A live hook/app-server binding.
    pub deterministic: Option<Provider>,
    /// From [`process_hint`].
    pub process: Option<Provider>,
    /// The screen's own signature (`ScreenVerdict::signature`): provider and confidence.
    pub screen: Option<(Provider, f32)>,
    /// A provider the pane title suggests (never enough by itself).
    pub title: Option<Provider>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub class: SignatureClass,
    pub provider: Option<Provider>,
    pub reason: String,
    pub(crate) confidence: f32,
}

/// Signature classification with the guards: deterministic binding > process hint (screen and
/// title only add or lower confidence) > nothing. Screen-only and title-only never manage.
pub(crate) fn classify_signature(input: &SignatureInput) -> Signature {
    if let Some(p) = input.deterministic {
        let mut reason = format!("deterministic_binding provider={p}");
        if let Some(q) = input.process.filter(|q| *q != p) {
            reason.push_str(&format!(" process_disagrees={q}"));
        }
        return Signature {
            class: SignatureClass::Deterministic,
            provider: Some(p),
            reason,
            confidence: 1.0,
        };
    }
    if let Some(p) = input.process {
        let (confidence, screen_note) = match input.screen {
            Some((s, c)) if s == p => ((0.7 + 0.3 * c).min(1.0), format!(" screen_agrees={c:.2}")),
            Some((s, _)) => (0.5, format!(" screen_disagrees={s}")),
            None => (0.7, String::new()),
        };
        let reason = format!("process_hint provider={p}{screen_note}");
        return Signature {
            class: SignatureClass::Heuristic,
            provider: Some(p),
            reason,
            confidence,
        };
    }
    let reason = match (input.screen, input.title) {
        (Some((s, _)), _) => format!("screen_only provider={s} (no agent process)"),
        (None, Some(t)) => format!("title_only provider={t} (no agent process)"),
        (None, None) => "no_signature".to_string(),
    };
    Signature {
        class: SignatureClass::None,
        provider: None,
        reason,
        confidence: 0.0,
    }
}

/// A change of signature class or presence, for the caller to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: SignatureClass,
    pub to: SignatureClass,
    pub presence: Presence,
    pub provider: Option<Provider>,
    pub reason: String,
}

impl Transition {
    /// `signature_transition from=none to=heuristic presence=managed provider=claude reason="…"`
    pub fn log_line(&self) -> String {
        format!(
            "signature_transition from={} to={} presence={} provider={} reason={:?}",
            self.from,
            self.to,
            self.presence,
            self.provider.map_or("none", Provider::as_str),
            self.reason
        )
    }
}

/// Presence hysteresis: managed while the class is not `None`; unmanaged only after
/// `drop_after` consecutive observations without a signature (default 2).
#[derive(Debug, Clone)]
pub struct PresenceTracker {
    drop_after: u32,
    misses: u32,
    class: SignatureClass,
    presence: Presence,
    provider: Option<Provider>,
}

impl Default for PresenceTracker {
    fn default() -> Self {
        Self::new(2)
    }
}

impl PresenceTracker {
    /// `drop_after` is clamped to at least 1.
    pub fn new(drop_after: u32) -> Self {
        PresenceTracker {
            drop_after: drop_after.max(1),
            misses: 0,
            class: SignatureClass::None,
            presence: Presence::Unmanaged,
            provider: None,
        }
    }

    pub fn presence(&self) -> Presence {
        self.presence
    }

    /// The provider of the last managed observation (kept through the grace period).
    pub fn provider(&self) -> Option<Provider> {
        self.provider
    }

    pub(crate) fn observe(&mut self, sig: &Signature) -> (Presence, Option<Transition>) {
        let before = (self.class, self.presence);
        if sig.class == SignatureClass::None {
            self.misses = self.misses.saturating_add(1);
            if self.misses >= self.drop_after {
                self.presence = Presence::Unmanaged;
                self.provider = None;
            }
        } else {
            self.misses = 0;
            self.presence = Presence::Managed;
            self.provider = sig.provider;
        }
        self.class = sig.class;
        let transition = (before != (self.class, self.presence)).then(|| Transition {
            from: before.0,
            to: self.class,
            presence: self.presence,
            provider: self.provider,
            reason: sig.reason.clone(),
        });
        (self.presence, transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(argv: &[&str]) -> ProcInfo {
        ProcInfo {
            pid: 2,
            ppid: 1,
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn shell() -> ProcInfo {
        p(&["-bash"])
    }

    /// macOS with Homebrew: `npm i -g` under /opt/homebrew (Apple silicon) or /usr/local
    /// (Intel) puts a symlink in bin/, and `#!/usr/bin/env node` makes node's argv name that
    /// symlink (as KERN_PROCARGS2 reports it); casks and formulae install native binaries. The
    /// pane's command is `node` or the binary's name, as tmux reads it on macOS.
    #[test]
    fn homebrew_installs_are_recognised_by_argv() {
        let cases: &[(&str, &[&str], Provider)] = &[
            (
                "node",
                &["node", "/opt/homebrew/bin/codex"],
                Provider::Codex,
            ),
            (
                "node",
                &["node", "/usr/local/bin/codex", "--yolo"],
                Provider::Codex,
            ),
            (
                "node",
                &[
                    "/opt/homebrew/Cellar/node/23.3.0/bin/node",
                    "/opt/homebrew/lib/node_modules/@openai/codex/bin/codex.js",
                ],
                Provider::Codex,
            ),
            (
                "codex",
                &["/opt/homebrew/Cellar/codex/0.169.0/bin/codex"],
                Provider::Codex,
            ),
            (
                "node",
                &["node", "/opt/homebrew/bin/claude"],
                Provider::Claude,
            ),
            (
                "node",
                &[
                    "node",
                    "--no-warnings",
                    "/usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js",
                ],
                Provider::Claude,
            ),
            // Gemini CLI (observed): `node …/gemini`, relaunched as a child
            // `node --max-old-space-size=… …/gemini.js`; OpenCode is one binary.
            ("node", &["node", "/usr/local/bin/gemini"], Provider::Gemini),
            (
                "node",
                &[
                    "/usr/bin/node",
                    "--max-old-space-size=8192",
                    "/usr/lib/node_modules/@google/gemini-cli/bundle/gemini.js",
                ],
                Provider::Gemini,
            ),
            (
                "opencode",
                &["/home/u/.npm/bin/opencode"],
                Provider::OpenCode,
            ),
            (
                "claude",
                &["/opt/homebrew/bin/claude", "--resume"],
                Provider::Claude,
            ),
        ];
        for (cmd, argv, want) in cases {
            assert_eq!(
                process_hint(cmd, &[shell(), p(argv)]).map(|h| h.0),
                Some(*want),
                "{cmd} {argv:?}"
            );
        }
        // Homebrew's tmux, a bare node REPL and npm are no agents.
        let none: &[(&str, &[&str])] = &[
            ("tmux", &["/opt/homebrew/bin/tmux"]),
            ("node", &["/opt/homebrew/bin/node"]),
            (
                "node",
                &[
                    "node",
                    "/opt/homebrew/lib/node_modules/npm/bin/npm-cli.js",
                    "i",
                    "-g",
                    "@openai/codex",
                ],
            ),
        ];
        for (cmd, argv) in none {
            assert_eq!(
                process_hint(cmd, &[shell(), p(argv)]),
                None,
                "{cmd} {argv:?}"
            );
        }
    }

    #[test]
    fn agents_are_recognised_from_command_and_tree() {
        assert_eq!(
            process_hint("claude", &[]).map(|h| h.0),
            Some(Provider::Claude)
        );
        assert_eq!(
            process_hint("codex", &[]).map(|h| h.0),
            Some(Provider::Codex)
        );
        let codex_tree = [
            shell(),
            p(&["node", "/usr/lib/node_modules/@openai/codex/bin/codex.js"]),
            p(&[
                "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex",
            ]),
        ];
        assert_eq!(
            process_hint("node", &codex_tree).map(|h| h.0),
            Some(Provider::Codex)
        );
        let claude_node = [
            shell(),
            p(&[
                "node",
                "--no-warnings",
                "/x/@anthropic-ai/claude-code/cli.js",
            ]),
        ];
        assert_eq!(
            process_hint("node", &claude_node).map(|h| h.0),
            Some(Provider::Claude)
        );
        // native install: comm is the version file name, argv[0] is the symlink
        let native = [shell(), p(&["claude", "--resume"])];
        assert_eq!(
            process_hint("2.1.197", &native).map(|h| h.0),
            Some(Provider::Claude)
        );
    }

    #[test]
    fn wrappers_are_never_agents() {
        let cases: &[(&str, &[&str])] = &[
            ("vim", &["vim", "CLAUDE.md"]),
            ("less", &["less", "codex.log"]),
            ("tail", &["tail", "-f", "/home/u/.claude/projects/x.jsonl"]),
            ("grep", &["grep", "-r", "claude", "."]),
            ("node", &["node", "server.js", "claude"]),
            ("node", &["node", "/home/u/claude/index.js"]),
            ("bash", &["bash", "/home/u/bin/codex-helper.sh"]),
            ("python3", &["python3", "-m", "claude"]),
        ];
        for (cmd, argv) in cases {
            assert_eq!(
                process_hint(cmd, &[shell(), p(argv)]),
                None,
                "{cmd} {argv:?}"
            );
        }
        // a shell whose cwd/prompt says claude: the tree holds only the shell
        assert_eq!(process_hint("bash", &[p(&["-bash"])]), None);
        // a suspended or background claude behind a foreground shell does not count
        assert_eq!(process_hint("bash", &[shell(), p(&["claude"])]), None);
        // vim opened by an agent: the foreground is vim
        assert_eq!(
            process_hint("vim", &[p(&["claude"]), p(&["vim", "/tmp/prompt.md"])]),
            None
        );
    }

    #[test]
    fn title_only_is_never_managed() {
        let sig = classify_signature(&SignatureInput {
            title: Some(Provider::Claude),
            ..Default::default()
        });
        assert_eq!(sig.class, SignatureClass::None);
        assert!(sig.reason.starts_with("title_only"));
        let mut t = PresenceTracker::default();
        for _ in 0..5 {
            assert_eq!(t.observe(&sig).0, Presence::Unmanaged);
        }
    }

    #[test]
    fn screen_only_is_never_managed() {
        // e.g. `cat` of a Claude screen in bash: the screen matches strongly, no process hint
        let process = process_hint("bash", &[shell(), p(&["cat", "claude_05.ansi.txt"])]);
        let sig = classify_signature(&SignatureInput {
            process: process.map(|h| h.0),
            screen: Some((Provider::Claude, 0.95)),
            title: Some(Provider::Claude),
            ..Default::default()
        });
        assert_eq!((sig.class, sig.provider), (SignatureClass::None, None));
        assert!(sig.reason.starts_with("screen_only"), "{}", sig.reason);
    }

    #[test]
    fn process_and_deterministic_classes() {
        let h = classify_signature(&SignatureInput {
            process: Some(Provider::Codex),
            screen: Some((Provider::Codex, 0.9)),
            ..Default::default()
        });
        assert_eq!(
            (h.class, h.provider),
            (SignatureClass::Heuristic, Some(Provider::Codex))
        );
        assert!(h.confidence > 0.9);
        let d = classify_signature(&SignatureInput {
            deterministic: Some(Provider::Claude),
            process: Some(Provider::Claude),
            ..Default::default()
        });
        assert_eq!(d.class, SignatureClass::Deterministic);
        let disagree = classify_signature(&SignatureInput {
            process: Some(Provider::Claude),
            screen: Some((Provider::Codex, 0.9)),
            ..Default::default()
        });
        assert!(disagree.confidence < h.confidence);
    }

    #[test]
    fn hysteresis_drops_only_after_consecutive_misses_and_reports_transitions() {
        let none = classify_signature(&SignatureInput::default());
        let heur = classify_signature(&SignatureInput {
            process: Some(Provider::Claude),
            ..Default::default()
        });
        let det = classify_signature(&SignatureInput {
            deterministic: Some(Provider::Claude),
            ..Default::default()
        });
        let mut t = PresenceTracker::new(2);
        assert_eq!(t.observe(&none), (Presence::Unmanaged, None));
        let (pr, tr) = t.observe(&heur);
        let tr = tr.expect("none -> heuristic");
        assert_eq!(
            (pr, tr.from, tr.to),
            (
                Presence::Managed,
                SignatureClass::None,
                SignatureClass::Heuristic
            )
        );
        assert!(
            tr.log_line()
                .contains("from=none to=heuristic presence=managed provider=claude")
        );
        let (_, tr) = t.observe(&det);
        assert_eq!(tr.map(|t| t.to), Some(SignatureClass::Deterministic));
        assert_eq!(t.observe(&det), (Presence::Managed, None));
        // one miss keeps the pane, a hit resets the count
        assert_eq!(t.observe(&none).0, Presence::Managed);
        assert_eq!(t.observe(&heur).0, Presence::Managed);
        assert_eq!(t.observe(&none).0, Presence::Managed);
        let (pr, tr) = t.observe(&none);
        assert_eq!(pr, Presence::Unmanaged);
        let tr = tr.expect("presence change is reported");
        assert_eq!(
            (tr.from, tr.to, tr.presence),
            (
                SignatureClass::None,
                SignatureClass::None,
                Presence::Unmanaged
            )
        );
        // configurable
        let mut t3 = PresenceTracker::new(3);
        t3.observe(&heur);
        t3.observe(&none);
        t3.observe(&none);
        assert_eq!(t3.presence(), Presence::Managed);
        t3.observe(&none);
        assert_eq!(t3.presence(), Presence::Unmanaged);
    }
}
