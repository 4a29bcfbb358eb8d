//! `agtmux setup claude|codex [--uninstall] [--dry-run]`: installs agtmux's hook handler into
//! the user's agent settings (README "Install" and "Commands"). It switches on the deterministic
//! hook
//! evidence of C-005 (Claude hooks source) and the Codex hooks beside C-004, which Flow-001
//! (a new agent session becomes managed + deterministic) depends on.
//!
//! WHY it exists: hooks are the deterministic evidence for Claude Code and Codex, but their
//! config files are the user's and often hold other tools' hooks. This merges, never
//! overwrites: our handler is recognised by its command (`<any path>/agtmux hook <agent>`),
//! foreign content keeps its values and key order, a rewrite happens only when something
//! changes, atomically and after a timestamped backup, and a second run is a no-op.
//!
//! Files: Claude `$CLAUDE_CONFIG_DIR/settings.json` (else `~/.claude/settings.json`);
//! Codex `$CODEX_HOME/hooks.json` (else `~/.codex/hooks.json`). Codex's `config.toml` is never
//! edited (its single `notify` slot may be the user's); we only print a hint.
pub mod fsio;
pub mod json_merge;
pub mod opencode;

pub(crate) use json_merge::{Changes, MergeError};
pub use json_merge::{install, is_ours_command, uninstall};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Which agent's settings to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agent {
    /// Claude Code: `settings.json` hooks.
    Claude,
    /// Codex CLI: `hooks.json`.
    Codex,
    /// Gemini CLI: `~/.gemini/settings.json` hooks (and `hooksConfig.enabled`).
    Gemini,
    /// OpenCode: a plugin file in `~/.config/opencode/plugins/`.
    #[value(name = "opencode")]
    OpenCode,
}

/// Claude Code hook events agtmux listens to (Claude Code's hooks reference).
pub const CLAUDE_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SubagentStop",
    "SessionEnd",
    "PreCompact",
    // Issue 23: the end of a compaction (a manual `/compact` fires no Stop).
    "PostCompact",
];

/// Codex hook events agtmux listens to (Codex's hooks; seen with codex-cli 0.169).
pub const CODEX_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Stop",
    "Interrupt",
    "SessionEnd",
    // Issue 23: compaction (docs/usage-states.md: automatic ones fire before UserPromptSubmit).
    "PreCompact",
    "PostCompact",
];

impl Agent {
    /// The word used on the command line and in `agtmux hook <name>`.
    pub fn name(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
            Agent::OpenCode => "opencode",
        }
    }

    /// The events installed for this agent (OpenCode's plugin forwards its own set).
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Agent::Claude => CLAUDE_EVENTS,
            Agent::Codex => CODEX_EVENTS,
            Agent::Gemini => crate::sources::gemini_hooks::EVENTS,
            Agent::OpenCode => &[],
        }
    }

    /// Handler timeout in seconds. The hook exits within ms (README "Performance"); the timeout
    /// only
    /// bounds a stuck disk. Codex 0.169 clamps SessionEnd/Interrupt to 3 s and warns on every
    /// start when a larger value is set, so Codex gets 3 everywhere.
    pub(crate) fn timeout_secs(self) -> u64 {
        match self {
            Agent::Claude | Agent::Gemini | Agent::OpenCode => 5,
            Agent::Codex => 3,
        }
    }

    /// Claude and Gemini groups carry `"matcher": ""` (all tools); Codex's carry none.
    pub(crate) fn uses_matcher(self) -> bool {
        matches!(self, Agent::Claude | Agent::Gemini)
    }

    /// File name inside the agent's config dir.
    pub fn file_name(self) -> &'static str {
        match self {
            Agent::Claude | Agent::Gemini => "settings.json",
            Agent::Codex => "hooks.json",
            Agent::OpenCode => opencode::PLUGIN_FILE,
        }
    }
}

/// `agtmux setup` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// Which agent to set up.
    #[arg(value_enum)]
    pub agent: Agent,
    /// Remove agtmux's hooks (foreign hooks stay).
    #[arg(long)]
    pub uninstall: bool,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Absolute path of the agtmux binary the hooks should run (default: this binary).
    #[arg(long, hide = true, value_name = "PATH")]
    pub bin: Option<PathBuf>,
}

/// Everything `setup` reads from the environment, injectable for tests.
#[derive(Debug, Clone, Default)]
pub struct SetupEnv {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$CLAUDE_CONFIG_DIR`.
    pub claude_config_dir: Option<PathBuf>,
    /// `$CODEX_HOME`.
    pub codex_home: Option<PathBuf>,
    /// `$AGTMUX_BIN`: the binary the hooks should run, instead of the running one.
    pub bin: Option<PathBuf>,
    /// `$GEMINI_CLI_HOME`: Gemini CLI's home (its settings live in `.gemini/` under it).
    pub gemini_cli_home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`: where OpenCode's config dir lives.
    pub xdg_config_home: Option<PathBuf>,
}

impl SetupEnv {
    /// Reads HOME, CLAUDE_CONFIG_DIR, CODEX_HOME and AGTMUX_BIN (empty counts as unset).
    pub(crate) fn from_process() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SetupEnv {
            home: var("HOME"),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
            codex_home: var("CODEX_HOME"),
            bin: var("AGTMUX_BIN"),
            gemini_cli_home: var("GEMINI_CLI_HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
        }
    }
}

/// What a run did (also printed to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The settings file (after following a symlink).
    pub path: PathBuf,
    pub changes: Changes,
    /// True when the file was (re)written.
    pub written: bool,
    /// The backup of the previous file, when one was made.
    pub backup: Option<PathBuf>,
}

/// Why setup failed. The settings file is untouched in every case.
#[derive(Debug)]
pub enum SetupError {
    /// Neither the agent's config dir variable nor HOME is set.
    NoHome {
        agent: Agent,
    },
    /// The agtmux binary path is unusable.
    Bin {
        path: PathBuf,
        reason: String,
    },
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// The existing file is not valid JSON.
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON, but a shape we refuse to rewrite.
    Shape {
        path: PathBuf,
        source: MergeError,
    },
    Backup {
        path: PathBuf,
        source: io::Error,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not agtmux's (the OpenCode plugin path holds someone else's file).
    Foreign {
        path: PathBuf,
    },
    /// Writing the report to the output failed.
    Output(io::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoHome { agent } => {
                let var = match agent {
                    Agent::Claude => "CLAUDE_CONFIG_DIR",
                    Agent::Codex => "CODEX_HOME",
                    Agent::Gemini => "GEMINI_CLI_HOME",
                    Agent::OpenCode => "XDG_CONFIG_HOME",
                };
                write!(
                    f,
                    "cannot find the {} config dir: neither {var} nor HOME is set",
                    agent.name()
                )
            }
            SetupError::Bin { path, reason } => {
                write!(
                    f,
                    "cannot use {} as the agtmux binary: {reason}",
                    path.display()
                )
            }
            SetupError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            SetupError::Parse {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "{} is not valid JSON (line {line}, column {column}: {message}). Comments and \
                 trailing commas (JSONC) are not accepted by the agent either. Fix the file and \
                 run setup again; it was not changed.",
                path.display()
            ),
            SetupError::Shape { path, source } => write!(
                f,
                "{}: {source}. Fix the file and run setup again; it was not changed.",
                path.display()
            ),
            SetupError::Backup { path, source } => {
                write!(
                    f,
                    "cannot write backup {}: {source}; nothing was changed",
                    path.display()
                )
            }
            SetupError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            SetupError::Foreign { path } => write!(
                f,
                "{} exists and was not written by agtmux setup; move it away and run setup \
                 again; it was not changed",
                path.display()
            ),
            SetupError::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Read { source, .. }
            | SetupError::Backup { source, .. }
            | SetupError::Write { source, .. }
            | SetupError::Output(source) => Some(source),
            SetupError::Shape { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The settings file for `agent` under `env` (before following symlinks).
pub(crate) fn settings_path(agent: Agent, env: &SetupEnv) -> Result<PathBuf, SetupError> {
    let (var, home_sub) = match agent {
        Agent::Claude => (&env.claude_config_dir, ".claude"),
        Agent::Codex => (&env.codex_home, ".codex"),
        // Gemini CLI reads `$GEMINI_CLI_HOME/.gemini/settings.json` (default HOME).
        Agent::Gemini => {
            let home = env.gemini_cli_home.as_ref().or(env.home.as_ref());
            return match home {
                Some(h) => Ok(h.join(".gemini").join(agent.file_name())),
                None => Err(SetupError::NoHome { agent }),
            };
        }
        // OpenCode loads plugins from `$XDG_CONFIG_HOME/opencode/plugins` (default ~/.config).
        Agent::OpenCode => {
            let base = match (&env.xdg_config_home, &env.home) {
                (Some(x), _) => x.clone(),
                (None, Some(h)) => h.join(".config"),
                (None, None) => return Err(SetupError::NoHome { agent }),
            };
            return Ok(base
                .join("opencode")
                .join("plugins")
                .join(agent.file_name()));
        }
    };
    let dir = match (var, &env.home) {
        (Some(d), _) => d.clone(),
        (None, Some(h)) => h.join(home_sub),
        (None, None) => return Err(SetupError::NoHome { agent }),
    };
    Ok(dir.join(agent.file_name()))
}

/// Quotes `s` as one word for a POSIX shell (single quotes; `'` becomes `'\''`).
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook command for `agent` running `bin`: `'<bin>' hook <agent>`.
pub(crate) fn hook_command(agent: Agent, bin: &Path) -> Result<String, SetupError> {
    let s = bin.to_str().ok_or_else(|| SetupError::Bin {
        path: bin.to_path_buf(),
        reason: "the path is not valid UTF-8, so it cannot go into a JSON settings file".into(),
    })?;
    if s.contains('\n') || s.contains('\0') {
        return Err(SetupError::Bin {
            path: bin.to_path_buf(),
            reason: "the path contains a newline".into(),
        });
    }
    // Our handlers are recognised by the program name; any other name would make the next
    // run add a duplicate instead of replacing.
    if bin.file_name().and_then(|n| n.to_str()) != Some("agtmux") {
        return Err(SetupError::Bin {
            path: bin.to_path_buf(),
            reason: "the program must be named `agtmux` (pass the installed binary's path with \
                     --bin or AGTMUX_BIN)"
                .into(),
        });
    }
    Ok(format!("{} hook {}", shell_quote(s), agent.name()))
}

/// The binary the hooks run: `--bin`, else `$AGTMUX_BIN`, else this executable; canonicalized
/// when it exists, and always absolute (agents run hooks from any cwd).
pub(crate) fn resolve_bin(arg: Option<&Path>, env: &SetupEnv) -> Result<PathBuf, SetupError> {
    let raw = match arg.or(env.bin.as_deref()) {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| SetupError::Bin {
            path: PathBuf::from("agtmux"),
            reason: format!("cannot find the running executable: {e}"),
        })?,
    };
    let resolved = std::fs::canonicalize(&raw).unwrap_or_else(|_| raw.clone());
    if !resolved.is_absolute() {
        return Err(SetupError::Bin {
            path: raw,
            reason: "it is not an absolute path and does not exist".into(),
        });
    }
    Ok(resolved)
}

/// Runs setup with the process environment, printing a report to `out`.
pub fn run(args: &SetupArgs, out: &mut dyn io::Write) -> Result<(), SetupError> {
    run_with_env(args, &SetupEnv::from_process(), out).map(|_| ())
}

pub(crate) fn now_epoch_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs setup with an explicit environment; returns what it did.
pub fn run_with_env(
    args: &SetupArgs,
    env: &SetupEnv,
    out: &mut dyn io::Write,
) -> Result<Outcome, SetupError> {
    let agent = args.agent;
    if agent == Agent::OpenCode {
        return opencode::run(args, env, out);
    }
    let path = fsio::resolve_target(&settings_path(agent, env)?)?;
    let cmd = if args.uninstall {
        None
    } else {
        Some(hook_command(
            agent,
            &resolve_bin(args.bin.as_deref(), env)?,
        )?)
    };
    let existing = fsio::read_existing(&path)?;
    let doc = match &existing {
        Some(e) => fsio::parse(&e.text, &path)?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let shape = |source| SetupError::Shape {
        path: path.clone(),
        source,
    };
    let (mut new_doc, mut changes) = match &cmd {
        Some(cmd) => install(doc, agent, cmd, agent.events()).map_err(shape)?,
        None => uninstall(doc, agent).map_err(shape)?,
    };
    if agent == Agent::Gemini && cmd.is_some() && gemini_enable_hooks(&mut new_doc) {
        changes.added.push("hooksConfig.enabled=true".into());
    }
    let mut outcome = Outcome {
        path: path.clone(),
        changes,
        written: false,
        backup: None,
    };
    if !outcome.changes.is_empty() && !args.dry_run {
        let mode = existing.as_ref().map_or(0o600, |e| e.mode);
        if existing.is_some() {
            outcome.backup = Some(fsio::backup(&path, now_epoch_secs())?);
        }
        let text = fsio::render(&new_doc, &path)?;
        fsio::write_atomic(&path, text.as_bytes(), mode)?;
        outcome.written = true;
    }
    report(args, env, cmd.as_deref(), existing.is_some(), &outcome, out)
        .and_then(|()| {
            // Gemini skips every hook whose name is in `hooksConfig.disabled`.
            if agent == Agent::Gemini
                && cmd.is_some()
                && new_doc
                    .pointer("/hooksConfig/disabled")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|d| d.iter().any(|n| n.as_str() == Some("agtmux")))
            {
                writeln!(
                    out,
                    "warning: {} lists \"agtmux\" in hooksConfig.disabled, so Gemini CLI skips \
                     agtmux's hooks until you remove it",
                    path.display()
                )?;
            }
            // Claude's kill switch silently disables every hook, ours included.
            if agent == Agent::Claude
                && cmd.is_some()
                && new_doc.get("disableAllHooks") == Some(&serde_json::Value::Bool(true))
            {
                writeln!(
                    out,
                    "warning: {} sets \"disableAllHooks\": true, so Claude Code runs no hooks \
                     (agtmux's included) until you remove it",
                    path.display()
                )?;
            }
            Ok(())
        })
        .map_err(SetupError::Output)?;
    Ok(outcome)
}

/// Gemini CLI runs hooks only while `hooksConfig.enabled` is true (the default in 0.61, but a
/// user may have switched it off). Sets it when it is absent or not `true`; true if changed.
/// A `hooksConfig` that is not an object is left alone (never guessed over).
fn gemini_enable_hooks(doc: &mut serde_json::Value) -> bool {
    let Some(root) = doc.as_object_mut() else {
        return false;
    };
    let cfg = root
        .entry("hooksConfig")
        .or_insert_with(|| serde_json::json!({}));
    let Some(cfg) = cfg.as_object_mut() else {
        return false;
    };
    if cfg.get("enabled") == Some(&serde_json::Value::Bool(true)) {
        return false;
    }
    cfg.insert("enabled".into(), serde_json::Value::Bool(true));
    true
}

fn list(events: &[String]) -> String {
    events.join(", ")
}

fn report(
    args: &SetupArgs,
    env: &SetupEnv,
    cmd: Option<&str>,
    existed: bool,
    o: &Outcome,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let agent = args.agent;
    let p = o.path.display();
    let c = &o.changes;
    if c.is_empty() {
        if args.uninstall {
            writeln!(
                out,
                "no agtmux hooks for {} in {p}; nothing to do",
                agent.name()
            )?;
        } else {
            writeln!(
                out,
                "agtmux hooks for {} already installed in {p} ({} events); nothing to do",
                agent.name(),
                c.unchanged.len()
            )?;
        }
    } else {
        if args.dry_run {
            let what = if existed { "change" } else { "create" };
            writeln!(out, "dry run: would {what} {p} (nothing written)")?;
        } else if existed {
            writeln!(out, "updated {p}")?;
        } else {
            writeln!(out, "created {p}")?;
        }
        for (would, did, evs) in [
            ("would add", "added", &c.added),
            ("would replace", "replaced", &c.replaced),
            ("would remove", "removed", &c.removed),
        ] {
            if !evs.is_empty() {
                let verb = if args.dry_run { would } else { did };
                writeln!(out, "  {verb}: {}", list(evs))?;
            }
        }
        if !c.unchanged.is_empty() {
            writeln!(out, "  already there: {}", list(&c.unchanged))?;
        }
        if let Some(b) = &o.backup {
            writeln!(out, "  backup of the previous file: {}", b.display())?;
        }
    }
    if let Some(cmd) = cmd {
        writeln!(out, "  hook command: {cmd}")?;
    }
    if agent == Agent::Codex {
        codex_notes(args, env, cmd, o, out)?;
    }
    Ok(())
}

/// Whether Codex's config.toml sets a top-level `notify`, and whether it runs agtmux.
fn codex_notify_state(env: &SetupEnv) -> Option<bool> {
    let dir = env
        .codex_home
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".codex")))?;
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            break;
        }
        if let Some(rest) = t.strip_prefix("notify")
            && rest.trim_start().starts_with('=')
        {
            return Some(rest.contains("agtmux"));
        }
    }
    None
}

fn codex_notes(
    args: &SetupArgs,
    env: &SetupEnv,
    cmd: Option<&str>,
    o: &Outcome,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let notify = codex_notify_state(env);
    if args.uninstall {
        if notify == Some(true) {
            writeln!(
                out,
                "note: config.toml still runs agtmux as `notify`; remove that line yourself if \
                 you no longer want it (setup never edits config.toml)"
            )?;
        }
        return Ok(());
    }
    if !o.changes.added.is_empty() || !o.changes.replaced.is_empty() {
        let when = if args.dry_run {
            "after installing"
        } else {
            "next start"
        };
        writeln!(
            out,
            "note ({when}): Codex asks once to review the new hooks (\"Hooks need review\"); \
             choose \"Trust all and continue\", or they will not run"
        )?;
    }
    let Some(cmd) = cmd else { return Ok(()) };
    match notify {
        Some(true) => {}
        other => {
            // Rebuild the binary path from the command: `'<bin>' hook codex`.
            let bin = json_merge::split_simple_command(cmd)
                .and_then(|w| w.into_iter().next())
                .unwrap_or_default();
            let arr = format!(
                "[{}, \"hook\", \"codex-notify\"]",
                serde_json::Value::String(bin)
            );
            if other == Some(false) {
                writeln!(
                    out,
                    "optional: config.toml already has a `notify` program (Codex runs only one); \
                     to use agtmux's instead, set: notify = {arr}"
                )?;
            } else {
                writeln!(
                    out,
                    "optional: to also get Codex's turn-complete notify, add to config.toml: \
                     notify = {arr}"
                )?;
            }
        }
    }
    Ok(())
}
