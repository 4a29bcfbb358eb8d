//! `agtmux setup` through the library API, on temp dirs (no process env is mutated).
use agtmux::cli::setup::{
    Agent, CLAUDE_EVENTS, CODEX_EVENTS, Outcome, SetupArgs, SetupEnv, SetupError, is_ours_command,
    run_with_env,
};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temp dir removed on drop.
struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "agtmux-setup-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const BIN: &str = "/opt/agtmux/bin/agtmux";

fn env_for(t: &Tmp, bin: &str) -> SetupEnv {
    SetupEnv {
        home: Some(t.0.join("home")),
        claude_config_dir: None,
        codex_home: None,
        bin: Some(PathBuf::from(bin)),
        ..SetupEnv::default()
    }
}

/// A fresh [`Tmp`] (`tag`) and a setup env with its `home` and the default binary.
fn tmp_env(tag: &str) -> (Tmp, SetupEnv) {
    let t = Tmp::new(tag);
    let env = env_for(&t, BIN);
    (t, env)
}

fn args(agent: Agent, uninstall: bool, dry_run: bool) -> SetupArgs {
    SetupArgs {
        agent,
        uninstall,
        dry_run,
        bin: None,
    }
}

fn go(a: &SetupArgs, env: &SetupEnv) -> (Result<Outcome, SetupError>, String) {
    let mut out = Vec::new();
    let r = run_with_env(a, env, &mut out);
    (r, String::from_utf8(out).unwrap())
}

/// `agtmux setup claude` (or its `uninstall`) with `env`, which must succeed.
fn claude(env: &SetupEnv, uninstall: bool) -> Outcome {
    go(&args(Agent::Claude, uninstall, false), env).0.unwrap()
}

/// `home/.claude` in `t`, created, and the path of its `settings.json`.
fn claude_dir(t: &Tmp) -> (PathBuf, PathBuf) {
    let dir = t.0.join("home/.claude");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("settings.json");
    (dir, path)
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn backups(dir: &Path, file: &str) -> Vec<PathBuf> {
    let prefix = format!("{file}.agtmux-bak-");
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn stray_temp_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("agtmux-tmp"))
        .count()
}

/// All our handlers (command strings) per event for `agent`.
fn ours(doc: &Value, agent: Agent) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(hooks) = doc.get("hooks").and_then(Value::as_object) {
        for (ev, groups) in hooks {
            for g in groups.as_array().into_iter().flatten() {
                for h in g["hooks"].as_array().into_iter().flatten() {
                    if let Some(c) = h["command"].as_str()
                        && is_ours_command(c, agent)
                    {
                        v.push((ev.clone(), c.to_string()));
                    }
                }
            }
        }
    }
    v
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

/// A Claude settings file with odd key order, unknown keys and foreign hooks.
fn claude_original() -> Value {
    json!({
        "zeta": 1,
        "env": {"B": "2", "A": "1"},
        "hooks": {
            "Stop": [
                {"matcher": "", "hooks": [
                    {"type": "command", "command": "echo foreign-stop", "timeout": 30, "x-extra": true}
                ]}
            ],
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/guard.sh"}]}
            ],
            "PermissionDenied": [
                {"hooks": [{"type": "command", "command": "python3 log.py agtmux hook claude"}]}
            ]
        },
        "alpha": [3, 2, 1],
        "model": "opus",
        "permissions": {"allow": ["Bash(ls:*)"], "deny": []}
    })
}

#[test]
fn claude_install_keeps_foreign_content_and_order() {
    let (t, env) = tmp_env("claude-foreign");
    let (dir, path) = claude_dir(&t);
    let original = claude_original();
    fs::write(&path, serde_json::to_string(&original).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

    let (r, out) = go(&args(Agent::Claude, false, false), &env);
    let o = r.unwrap();
    assert!(o.written);
    assert_eq!(o.changes.added.len(), CLAUDE_EVENTS.len(), "{out}");
    assert!(out.contains("added:"), "{out}");
    assert!(out.contains(&path.display().to_string()), "{out}");

    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("}\n"));
    assert!(
        text.contains("\n  \"zeta\": 1,\n"),
        "2-space pretty: {text}"
    );
    let doc: Value = serde_json::from_str(&text).unwrap();
    // Root keys and env keys keep their order; non-hook values are untouched.
    assert_eq!(keys(&doc), keys(&original));
    assert_eq!(keys(&doc["env"]), vec!["B", "A"]);
    for k in ["zeta", "env", "alpha", "model", "permissions"] {
        assert_eq!(doc[k], original[k], "{k}");
    }
    // Existing event keys come first in their order, new ones after.
    let hook_keys = keys(&doc["hooks"]);
    assert_eq!(&hook_keys[..3], &["Stop", "PreToolUse", "PermissionDenied"]);
    // Foreign groups stay exactly, at their positions; ours is appended.
    for ev in ["Stop", "PreToolUse", "PermissionDenied"] {
        let old = original["hooks"][ev].as_array().unwrap();
        let new = doc["hooks"][ev].as_array().unwrap();
        assert_eq!(&new[..old.len()], &old[..], "{ev}");
    }
    assert_eq!(
        doc["hooks"]["PermissionDenied"],
        original["hooks"]["PermissionDenied"]
    );
    // Exactly one handler of ours per event, with the quoted absolute path.
    let cmd = format!("'{BIN}' hook claude");
    let mine = ours(&doc, Agent::Claude);
    assert_eq!(mine.len(), CLAUDE_EVENTS.len());
    for ev in CLAUDE_EVENTS {
        assert!(mine.contains(&(ev.to_string(), cmd.clone())), "{ev}");
    }
    assert_eq!(
        doc["hooks"]["SessionStart"],
        json!([{"matcher": "", "hooks": [{"type": "command", "command": cmd, "timeout": 5}]}])
    );
    // Permissions kept, one backup holding the old bytes, no temp left.
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let b = backups(&dir, "settings.json");
    assert_eq!(b.len(), 1);
    assert_eq!(o.backup.as_ref(), Some(&b[0]));
    assert_eq!(read_json(&b[0]), original);
    assert_eq!(stray_temp_files(&dir), 0);
}

#[test]
fn claude_no_file_creates_dir_and_file() {
    let (t, mut env) = tmp_env("claude-nofile");
    let cfg = t.0.join("custom/claude-config");
    env.claude_config_dir = Some(cfg.clone());
    let (r, out) = go(&args(Agent::Claude, false, false), &env);
    let o = r.unwrap();
    let path = cfg.join("settings.json");
    assert_eq!(o.path, path);
    assert!(out.contains("created"), "{out}");
    assert!(o.backup.is_none());
    let doc = read_json(&path);
    assert_eq!(keys(&doc), vec!["hooks"]);
    assert_eq!(keys(&doc["hooks"]), CLAUDE_EVENTS.to_vec());
    assert_eq!(ours(&doc, Agent::Claude).len(), CLAUDE_EVENTS.len());
    assert!(
        !t.0.join("home/.claude").exists(),
        "CLAUDE_CONFIG_DIR wins over HOME"
    );
    assert!(backups(&cfg, "settings.json").is_empty());
}

#[test]
fn claude_twice_is_a_noop() {
    let (t, env) = tmp_env("claude-twice");
    let (dir, path) = claude_dir(&t);
    fs::write(
        &path,
        serde_json::to_string_pretty(&claude_original()).unwrap(),
    )
    .unwrap();

    claude(&env, false);
    let first = fs::read(&path).unwrap();
    let (r, out) = go(&args(Agent::Claude, false, false), &env);
    let o = r.unwrap();
    assert!(!o.written && o.changes.is_empty() && o.backup.is_none());
    assert!(out.contains("already installed"), "{out}");
    assert_eq!(fs::read(&path).unwrap(), first);
    assert_eq!(backups(&dir, "settings.json").len(), 1);
}

#[test]
fn claude_uninstall_restores_original() {
    let (t, env) = tmp_env("claude-uninstall");
    let (dir, path) = claude_dir(&t);
    let original = claude_original();
    let mut canonical = serde_json::to_string_pretty(&original).unwrap();
    canonical.push('\n');
    fs::write(&path, &canonical).unwrap();

    claude(&env, false);
    let (r, out) = go(&args(Agent::Claude, true, false), &env);
    let o = r.unwrap();
    assert_eq!(o.changes.removed.len(), CLAUDE_EVENTS.len(), "{out}");
    assert!(out.contains("removed:"), "{out}");
    let doc = read_json(&path);
    assert_eq!(doc, original);
    assert_eq!(keys(&doc["hooks"]), keys(&original["hooks"]));
    assert_eq!(fs::read_to_string(&path).unwrap(), canonical);
    assert_eq!(backups(&dir, "settings.json").len(), 2);

    // Nothing left of ours: a second uninstall changes nothing.
    let (r, out) = go(&args(Agent::Claude, true, false), &env);
    assert!(!r.unwrap().written);
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(backups(&dir, "settings.json").len(), 2);
}

#[test]
fn uninstall_drops_hooks_key_only_when_emptied_by_us() {
    let (t, env) = tmp_env("claude-uninstall-empty");
    claude(&env, false);
    claude(&env, true);
    let path = t.0.join("home/.claude/settings.json");
    assert_eq!(read_json(&path), json!({}));
}

#[test]
fn reinstall_from_new_path_replaces() {
    let (t, env) = tmp_env("claude-newpath");
    let path = t.0.join("home/.claude/settings.json");
    claude(&env, false);
    let before = read_json(&path);

    // A path with a space and a quote must survive shell quoting and still count as ours.
    let new_bin = "/home/u/my tools/it's/agtmux";
    let env2 = env_for(&t, new_bin);
    let (r, out) = go(&args(Agent::Claude, false, false), &env2);
    let o = r.unwrap();
    assert_eq!(o.changes.replaced.len(), CLAUDE_EVENTS.len(), "{out}");
    assert!(o.changes.added.is_empty());
    let doc = read_json(&path);
    let cmd = r"'/home/u/my tools/it'\''s/agtmux' hook claude";
    let mine = ours(&doc, Agent::Claude);
    assert_eq!(mine.len(), CLAUDE_EVENTS.len());
    assert!(mine.iter().all(|(_, c)| c == cmd), "{mine:?}");
    // Same keys and group count as before: replaced in place.
    assert_eq!(keys(&doc["hooks"]), keys(&before["hooks"]));
    // And it is idempotent from the new path too.
    let (r, _) = go(&args(Agent::Claude, false, false), &env2);
    assert!(!r.unwrap().written);
}

#[test]
fn bin_flag_overrides_env() {
    let (t, env) = tmp_env("claude-binflag");
    let mut a = args(Agent::Claude, false, false);
    a.bin = Some(PathBuf::from("/flag/agtmux"));
    go(&a, &env).0.unwrap();
    let doc = read_json(&t.0.join("home/.claude/settings.json"));
    assert!(
        ours(&doc, Agent::Claude)
            .iter()
            .all(|(_, c)| c == "'/flag/agtmux' hook claude")
    );

    a.bin = Some(PathBuf::from("relative/agtmux-does-not-exist"));
    assert!(matches!(go(&a, &env).0, Err(SetupError::Bin { .. })));
    // A binary not named agtmux could not be recognised as ours next time: refused.
    a.bin = Some(PathBuf::from("/opt/bin/agtmux-0.1"));
    let before = fs::read(t.0.join("home/.claude/settings.json")).unwrap();
    assert!(matches!(go(&a, &env).0, Err(SetupError::Bin { .. })));
    assert_eq!(
        fs::read(t.0.join("home/.claude/settings.json")).unwrap(),
        before
    );
}

#[test]
fn invalid_json_is_an_error_and_file_untouched() {
    let (t, env) = tmp_env("claude-invalid");
    let (dir, path) = claude_dir(&t);
    let bad = "{\n  // my comment\n  \"model\": \"opus\",\n}\n";
    fs::write(&path, bad).unwrap();
    for dry in [false, true] {
        let (r, _) = go(&args(Agent::Claude, false, dry), &env);
        let e = r.unwrap_err();
        assert!(matches!(e, SetupError::Parse { line: 2, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("not valid JSON") && msg.contains("JSONC"),
            "{msg}"
        );
    }
    assert!(matches!(
        go(&args(Agent::Claude, true, false), &env).0,
        Err(SetupError::Parse { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), bad);
    assert!(backups(&dir, "settings.json").is_empty());

    for shape in [
        "{\"hooks\": []}",
        "[1]",
        "{\"hooks\": {\"Stop\": {\"x\": 1}}}",
    ] {
        fs::write(&path, shape).unwrap();
        let e = go(&args(Agent::Claude, false, false), &env).0.unwrap_err();
        assert!(matches!(e, SetupError::Shape { .. }), "{shape}: {e:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), shape);
    }
    assert!(backups(&dir, "settings.json").is_empty());
    assert_eq!(stray_temp_files(&dir), 0);
}

#[test]
fn dry_run_writes_nothing() {
    let (t, env) = tmp_env("claude-dry");
    // No file: nothing created, not even the dir.
    let (r, out) = go(&args(Agent::Claude, false, true), &env);
    let o = r.unwrap();
    assert!(!o.written);
    assert_eq!(o.changes.added.len(), CLAUDE_EVENTS.len());
    assert!(
        out.contains("dry run") && out.contains("would add"),
        "{out}"
    );
    assert!(!t.0.join("home/.claude").exists());

    // Existing file: bytes unchanged, no backup; dry-run uninstall also writes nothing.
    claude(&env, false);
    let dir = t.0.join("home/.claude");
    let path = dir.join("settings.json");
    let before = fs::read(&path).unwrap();
    let (r, out) = go(&args(Agent::Claude, true, true), &env);
    assert_eq!(r.unwrap().changes.removed.len(), CLAUDE_EVENTS.len());
    assert!(out.contains("would remove"), "{out}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(backups(&dir, "settings.json").is_empty());
}

#[test]
fn symlinked_settings_are_written_through() {
    let (t, env) = tmp_env("claude-symlink");
    let dots = t.0.join("dotfiles");
    fs::create_dir_all(&dots).unwrap();
    let real = dots.join("claude-settings.json");
    fs::write(&real, "{\"model\": \"opus\"}").unwrap();
    let dir = t.0.join("home/.claude");
    fs::create_dir_all(&dir).unwrap();
    let link = dir.join("settings.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    claude(&env, false);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let doc = read_json(&real);
    assert_eq!(doc["model"], "opus");
    assert_eq!(ours(&doc, Agent::Claude).len(), CLAUDE_EVENTS.len());
}

fn codex_original() -> Value {
    json!({
        "hooks": {
            "Stop": [
                {"hooks": [{"type": "command", "command": "python3 /x/hooklog.py Stop"}]}
            ],
            "PreModelRequest": [
                {"hooks": [{"type": "command", "command": "python3 /x/hooklog.py PreModelRequest"}]}
            ],
            "SessionStart": [
                {"hooks": [{"type": "command", "command": "/x/other.sh", "timeout": 10}]}
            ]
        },
        "x-note": "kept"
    })
}

#[test]
fn codex_install_twice_and_uninstall() {
    let (t, mut env) = tmp_env("codex");
    let home = t.0.join("codex-home");
    env.codex_home = Some(home.clone());
    fs::create_dir_all(&home).unwrap();
    let path = home.join("hooks.json");
    let original = codex_original();
    fs::write(&path, serde_json::to_string_pretty(&original).unwrap()).unwrap();

    let (r, out) = go(&args(Agent::Codex, false, false), &env);
    let o = r.unwrap();
    assert_eq!(o.path, path);
    assert_eq!(o.changes.added.len(), CODEX_EVENTS.len());
    assert!(
        out.contains("Hooks need review") && out.contains("Trust all and continue"),
        "{out}"
    );
    assert!(
        out.contains(&format!("notify = [\"{BIN}\", \"hook\", \"codex-notify\"]")),
        "{out}"
    );
    let doc = read_json(&path);
    assert_eq!(keys(&doc), vec!["hooks", "x-note"]);
    let cmd = format!("'{BIN}' hook codex");
    // Foreign groups first (Codex keys trust by position), ours appended, no matcher.
    assert_eq!(doc["hooks"]["Stop"][0], original["hooks"]["Stop"][0]);
    assert_eq!(
        doc["hooks"]["Stop"][1],
        json!({"hooks": [{"type": "command", "command": cmd, "timeout": 3}]})
    );
    assert_eq!(
        doc["hooks"]["PreModelRequest"],
        original["hooks"]["PreModelRequest"]
    );
    let mine = ours(&doc, Agent::Codex);
    assert_eq!(mine.len(), CODEX_EVENTS.len());
    for ev in CODEX_EVENTS {
        assert!(mine.contains(&(ev.to_string(), cmd.clone())), "{ev}");
    }
    // Claude's setup does not see Codex handlers as its own.
    assert!(ours(&doc, Agent::Claude).is_empty());

    let bytes = fs::read(&path).unwrap();
    let (r, out) = go(&args(Agent::Codex, false, false), &env);
    assert!(!r.unwrap().written);
    assert!(out.contains("already installed"), "{out}");
    assert!(
        !out.contains("Trust all"),
        "no review prompt when nothing changed: {out}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(backups(&home, "hooks.json").len(), 1);

    let (r, _) = go(&args(Agent::Codex, true, false), &env);
    assert_eq!(r.unwrap().changes.removed.len(), CODEX_EVENTS.len());
    let doc = read_json(&path);
    assert_eq!(doc, original);
    assert_eq!(keys(&doc["hooks"]), keys(&original["hooks"]));
    assert!(
        !home.join("config.toml").exists(),
        "config.toml is never written"
    );
}

#[test]
fn codex_default_home_and_foreign_notify_hint() {
    let (t, env) = tmp_env("codex-notify");
    let home = t.0.join("home/.codex");
    fs::create_dir_all(&home).unwrap();
    let toml = "model = \"x\"\nnotify = [\"my-notifier\"]\n\n[tui]\nfoo = 1\n";
    fs::write(home.join("config.toml"), toml).unwrap();
    let (r, out) = go(&args(Agent::Codex, false, false), &env);
    assert_eq!(r.unwrap().path, home.join("hooks.json"));
    assert!(out.contains("already has a `notify`"), "{out}");
    assert_eq!(fs::read_to_string(home.join("config.toml")).unwrap(), toml);
}

#[test]
fn disable_all_hooks_is_warned_about() {
    let (t, env) = tmp_env("claude-disable");
    let dir = t.0.join("home/.claude");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("settings.json"), "{\"disableAllHooks\": true}").unwrap();
    let (r, out) = go(&args(Agent::Claude, false, false), &env);
    r.unwrap();
    assert!(out.contains("disableAllHooks"), "{out}");
    fs::write(dir.join("settings.json"), "{\"disableAllHooks\": false}").unwrap();
    let (_, out) = go(&args(Agent::Claude, false, false), &env);
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn no_home_is_an_error() {
    let env = SetupEnv {
        bin: Some(PathBuf::from(BIN)),
        ..SetupEnv::default()
    };
    assert!(matches!(
        go(&args(Agent::Claude, false, false), &env).0,
        Err(SetupError::NoHome { .. })
    ));
}
