//! `agtmux classify`: the single-snapshot verdict for one captured screen (C-012 + C-006,
//! Flow-002/Flow-008), with no hysteresis and no daemon.
//!
//! WHY one pure [`verdict`] function: the CLI and the accuracy gate (`tests/accuracy.rs`) must
//! judge a screen by the same code path, so what the gate measures is what users get.
//! The process hint comes from `--command` (and `--argv`): `claude`/`codex` name the provider;
//! `node` without argv is ambiguous and is accepted only on a strong screen signature; shells,
//! editors, pagers and REPLs are unmanaged whatever the screen shows.
use crate::core::classifier::{self, ProcInfo, SignatureClass, SignatureInput};
use crate::core::screen::{self, STRONG_SIGNATURE, ScreenInput};
use crate::core::types::{Activity, Presence, Provider};
use serde::Serialize;
use std::fmt;
use std::io::{Read, Write};

/// Largest capture accepted (a 500×500 pane with escapes is far below this).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, clap::Args)]
pub struct ClassifyArgs {
    /// Captured screen: a file path, or `-` for stdin (plain or with SGR escapes).
    pub input: String,
    /// The pane title (`#{pane_title}`).
    #[arg(long, default_value = "")]
    pub title: String,
    /// `#{pane_current_command}` of the pane.
    #[arg(long, default_value = "")]
    pub command: String,
    /// argv of the foreground process: repeat the flag per word, or give one quoted string.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    pub argv: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub cols: u16,
    #[arg(long, default_value_t = 0)]
    pub rows: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug)]
pub enum ClassifyError {
    Read { path: String, error: std::io::Error },
    TooLarge { path: String },
    Write(std::io::Error),
    Json(serde_json::Error),
}

impl fmt::Display for ClassifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassifyError::Read { path, error } => {
                write!(f, "cannot read screen {path:?}: {error}")
            }
            ClassifyError::TooLarge { path } => {
                write!(f, "screen {path:?} is larger than {MAX_INPUT} bytes")
            }
            ClassifyError::Write(e) => write!(f, "cannot write output: {e}"),
            ClassifyError::Json(e) => write!(f, "cannot encode JSON: {e}"),
        }
    }
}

impl std::error::Error for ClassifyError {}

/// The single-snapshot verdict. `activity` is `None` for unmanaged panes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub presence: Presence,
    pub provider: Option<Provider>,
    pub activity: Option<Activity>,
    /// The screen rule that decided the activity, or why the pane is unmanaged.
    pub rule: String,
    pub(crate) confidence: f32,
    /// How the provider was known: `process:<reason>`, `node+screen:<rule>`, or why not.
    pub signature: String,
    pub lines: Vec<String>,
}

impl Verdict {
    /// The activity as the labels spell it (`none` for unmanaged).
    pub fn activity_str(&self) -> &'static str {
        self.activity.map_or("none", Activity::as_str)
    }
    pub fn provider_str(&self) -> &'static str {
        self.provider.map_or("none", Provider::as_str)
    }
}

/// Splits `--argv` values: one value holding spaces is a whole command line.
fn argv_words(argv: &[String]) -> Vec<String> {
    if argv.len() == 1 {
        argv[0].split_whitespace().map(str::to_string).collect()
    } else {
        argv.to_vec()
    }
}

/// Pure: judge one screen. Same code path for the CLI and the accuracy gate.
pub fn verdict(
    screen: &str,
    title: &str,
    command: &str,
    argv: &[String],
    cols: u16,
    rows: u16,
) -> Verdict {
    let argv = argv_words(argv);
    let tree: Vec<ProcInfo> = if argv.is_empty() {
        Vec::new()
    } else {
        vec![ProcInfo {
            pid: 0,
            ppid: 0,
            argv: argv.clone(),
        }]
    };
    let command = command.trim();
    let hint = classifier::process_hint(command, &tree);
    let cmd_base = command.rsplit('/').next().unwrap_or(command);
    let ambiguous_runtime =
        hint.is_none() && argv.is_empty() && matches!(cmd_base, "node" | "nodejs" | "bun");

    let mut input = ScreenInput {
        text: screen,
        title,
        command,
        cols,
        rows,
        provider_hint: hint.map(|h| h.0),
    };
    let first = screen::classify_screen(&input);

    let (process, signature_note, scale) = match (hint, ambiguous_runtime, &first.signature) {
        (Some((p, why)), _, _) => (Some(p), format!("process:{why}"), 1.0),
        (None, true, Some(sig)) if sig.confidence >= STRONG_SIGNATURE => (
            Some(sig.provider),
            format!("node+screen:{} (command node without argv)", sig.rule),
            0.9,
        ),
        (None, true, _) => (None, "node_without_argv_and_weak_screen".to_string(), 0.0),
        (None, false, _) => (None, format!("no_agent_process command={command:?}"), 0.0),
    };
    let sig = classifier::classify_signature(&SignatureInput {
        deterministic: None,
        process,
        screen: first.signature.as_ref().map(|s| (s.provider, s.confidence)),
        title: None,
    });
    if sig.class == SignatureClass::None {
        return Verdict {
            presence: Presence::Unmanaged,
            provider: None,
            activity: None,
            rule: sig.reason,
            confidence: 0.0,
            signature: signature_note,
            lines: Vec::new(),
        };
    }
    // re-run with the accepted provider so its title rules apply too
    let v = if first.provider == sig.provider {
        first
    } else {
        input.provider_hint = sig.provider;
        screen::classify_screen(&input)
    };
    Verdict {
        presence: Presence::Managed,
        provider: sig.provider,
        activity: Some(v.activity),
        rule: v.rule.to_string(),
        confidence: v.confidence * scale,
        signature: signature_note,
        lines: v.lines,
    }
}

fn read_input(path: &str) -> Result<String, ClassifyError> {
    let mut buf = Vec::new();
    let res = if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut buf))
    };
    res.map_err(|error| ClassifyError::Read {
        path: path.to_string(),
        error,
    })?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(ClassifyError::TooLarge {
            path: path.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `agtmux classify`.
pub fn run(args: &ClassifyArgs, out: &mut dyn Write) -> Result<(), ClassifyError> {
    let screen = read_input(&args.input)?;
    let v = verdict(
        &screen,
        &args.title,
        &args.command,
        &args.argv,
        args.cols,
        args.rows,
    );
    if args.json {
        let s = serde_json::to_string_pretty(&v).map_err(ClassifyError::Json)?;
        writeln!(out, "{s}").map_err(ClassifyError::Write)?;
    } else {
        let mut s = format!(
            "presence: {}\nprovider: {}\nactivity: {}\nrule: {}\nconfidence: {:.2}\nsignature: {}\n",
            v.presence,
            v.provider_str(),
            v.activity_str(),
            v.rule,
            v.confidence,
            v.signature
        );
        for l in &v.lines {
            s.push_str(&format!("line: {l}\n"));
        }
        out.write_all(s.as_bytes()).map_err(ClassifyError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAUDE_IDLE: &str =
        "❯ hi\n\n● Hello\n\n────────────────────\n❯ \n────────────────────\n  ? for shortcuts\n";
    const CODEX_IDLE: &str =
        "› hi\n\n• Hello\n\n› Ask Codex to do anything\n\n  gpt-5 · /w\n  ? for shortcuts\n";

    #[test]
    fn command_decides_presence() {
        let v = verdict(CLAUDE_IDLE, "✳ x", "claude", &[], 80, 24);
        assert_eq!(
            (v.presence, v.provider_str(), v.activity_str()),
            (Presence::Managed, "claude", "idle")
        );
        for cmd in ["bash", "vim", "less", "python3", "htop", "cat", ""] {
            let v = verdict(CLAUDE_IDLE, "✳ x", cmd, &[], 80, 24);
            assert_eq!(
                (v.presence, v.activity_str()),
                (Presence::Unmanaged, "none"),
                "{cmd}"
            );
        }
    }

    #[test]
    fn node_needs_a_strong_screen_or_argv() {
        let v = verdict(CODEX_IDLE, "w", "node", &[], 80, 24);
        assert_eq!((v.presence, v.provider_str()), (Presence::Managed, "codex"));
        assert!(v.signature.starts_with("node+screen:"), "{}", v.signature);
        let v = verdict("hello\n", "⠋ w", "node", &[], 80, 24);
        assert_eq!(v.presence, Presence::Unmanaged);
        let other = ["node server.js".to_string()];
        assert_eq!(
            verdict(CODEX_IDLE, "w", "node", &other, 80, 24).presence,
            Presence::Unmanaged
        );
        let codex = [
            "node".to_string(),
            "/usr/lib/node_modules/@openai/codex/bin/codex.js".to_string(),
        ];
        assert_eq!(
            verdict("", "w", "node", &codex, 80, 24).provider_str(),
            "codex"
        );
    }

    #[test]
    fn run_reads_a_file_and_writes_text_and_json() {
        let dir = std::env::temp_dir().join(format!("agtmux-classify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("s.txt");
        std::fs::write(&path, CLAUDE_IDLE).ok();
        let mut args = ClassifyArgs {
            input: path.to_string_lossy().into_owned(),
            title: String::new(),
            command: "claude".into(),
            argv: vec![],
            cols: 80,
            rows: 24,
            json: false,
        };
        let mut out = Vec::new();
        assert!(run(&args, &mut out).is_ok());
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(text.contains("activity: idle"), "{text}");
        args.json = true;
        let mut out = Vec::new();
        assert!(run(&args, &mut out).is_ok());
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(j["presence"], "managed");
        args.input = dir.join("missing").to_string_lossy().into_owned();
        assert!(matches!(
            run(&args, &mut Vec::new()),
            Err(ClassifyError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
