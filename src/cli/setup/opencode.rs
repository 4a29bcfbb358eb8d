//! `agtmux setup opencode [--uninstall] [--dry-run]`: installs agtmux's OpenCode plugin
//! (`opencode.js` beside this file) as `$XDG_CONFIG_HOME/opencode/plugins/agtmux.js`.
//!
//! WHY a plugin file and not a settings merge: OpenCode has no hook commands; its plugins run
//! inside the opencode process and see every bus event (observed on opencode 1.18). WHY a plugin
//! and not
//! OpenCode's HTTP event stream: the TUI opens no TCP listener unless started with `--port`,
//! so a daemon cannot count on finding one for a pane (see `sources::opencode_plugin`).
//!
//! The file is ours alone (recognised by [`MARKER`]): a file of the same name without it is
//! the user's and is never overwritten. Like the JSON merges, a rewrite happens only when the
//! content changes, atomically, after a timestamped backup; a second run is a no-op.
use super::{Changes, Outcome, SetupArgs, SetupEnv, SetupError, fsio};
use std::io;
use std::path::Path;

/// The plugin's file name inside OpenCode's plugin directory.
pub(crate) const PLUGIN_FILE: &str = "agtmux.js";
/// The first-line marker that says the file is agtmux's.
pub(crate) const MARKER: &str = "agtmux-opencode-plugin";
const TEMPLATE: &str = include_str!("opencode.js");

/// The plugin text that runs `bin` (quoted as a JSON string, which is a JS string literal).
pub(crate) fn plugin_text(bin: &Path) -> Result<String, SetupError> {
    // Same rules as a hook command: UTF-8, no newline, a program named `agtmux`.
    super::hook_command(super::Agent::OpenCode, bin)?;
    let lit = serde_json::Value::String(bin.to_string_lossy().into_owned()).to_string();
    Ok(TEMPLATE.replace("__AGTMUX_BIN__", &lit))
}

/// Installs, updates or removes the plugin; reports to `out`.
pub fn run(
    args: &SetupArgs,
    env: &SetupEnv,
    out: &mut dyn io::Write,
) -> Result<Outcome, SetupError> {
    let path = fsio::resolve_target(&super::settings_path(super::Agent::OpenCode, env)?)?;
    let existing = fsio::read_existing(&path)?;
    let ours = existing.as_ref().is_some_and(|e| e.text.contains(MARKER));
    if existing.is_some() && !ours {
        return Err(SetupError::Foreign { path });
    }
    let want = if args.uninstall {
        None
    } else {
        Some(plugin_text(&super::resolve_bin(args.bin.as_deref(), env)?)?)
    };
    let mut changes = Changes::default();
    let item = "plugin".to_string();
    match (&existing, &want) {
        (None, None) => {}
        (None, Some(_)) => changes.added.push(item),
        (Some(e), Some(w)) if &e.text == w => changes.unchanged.push(item),
        (Some(_), Some(_)) => changes.replaced.push(item),
        (Some(_), None) => changes.removed.push(item),
    }
    let mut outcome = Outcome {
        path: path.clone(),
        changes,
        written: false,
        backup: None,
    };
    let c = &outcome.changes;
    let p = path.display();
    let w = |r: io::Result<()>| r.map_err(SetupError::Output);
    if c.is_empty() {
        w(if args.uninstall {
            writeln!(out, "no agtmux plugin at {p}; nothing to do")
        } else {
            writeln!(out, "agtmux plugin already installed at {p}; nothing to do")
        })?;
        return Ok(outcome);
    }
    let verb = match (args.dry_run, args.uninstall, existing.is_some()) {
        (true, true, _) => "dry run: would remove",
        (true, false, false) => "dry run: would create",
        (true, false, true) => "dry run: would update",
        (false, true, _) => "removed",
        (false, false, false) => "created",
        (false, false, true) => "updated",
    };
    if !args.dry_run {
        if existing.is_some() {
            outcome.backup = Some(fsio::backup(&path, super::now_epoch_secs())?);
        }
        match &want {
            Some(text) => fsio::write_atomic(&path, text.as_bytes(), 0o644)?,
            None => std::fs::remove_file(&path).map_err(|source| SetupError::Write {
                path: path.clone(),
                source,
            })?,
        }
        outcome.written = true;
    }
    w(writeln!(out, "{verb} {p}"))?;
    if let Some(b) = &outcome.backup {
        w(writeln!(
            out,
            "  backup of the previous file: {}",
            b.display()
        ))?;
    }
    if want.is_some() {
        w(writeln!(
            out,
            "  it forwards session status, permission, question, idle and error events to \
             `agtmux hook opencode`; restart running opencode sessions to load it"
        ))?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_embeds_the_binary_as_a_string_literal() {
        let t = plugin_text(Path::new("/opt/a \"b\"/agtmux")).unwrap();
        assert!(
            t.contains(r#"const AGTMUX = "/opt/a \"b\"/agtmux";"#),
            "{t}"
        );
        assert!(t.contains(MARKER));
        assert!(!t.contains("__AGTMUX_BIN__"));
        assert!(t.contains(r#"spawn(AGTMUX, ["hook", "opencode"]"#));
        assert!(!t.contains("shell: true"));
        assert!(plugin_text(Path::new("/opt/x/notagtmux")).is_err());
    }
}
