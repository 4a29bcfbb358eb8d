//! Issue 19: the plugin installs like a tmux plugin. A copy of the plugin (agtmux.tmux,
//! scripts/, Cargo.toml) with no binary runs inside a real tmux server (private socket); the
//! release assets are served by `python3 -m http.server` on 127.0.0.1 from a temp dir, built
//! from the freshly built binary; cargo is a fake script on PATH that "builds" by copying that
//! binary (real cargo is not what is tested: the fall-back logic is). The upgrade test runs
//! the same binary as "another version" through `AGTMUX_TEST_VERSION`, which only debug
//! builds honour.
mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::{BIN, Server, wait_until, write_script};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The platform triple the installer picks here.
fn triple() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("no release triple for {other:?}"),
    }
}

fn asset_name() -> String {
    format!("agtmux-{VERSION}-{}.tar.gz", triple())
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn sha256(path: &Path) -> String {
    let o = Command::new("sh")
        .args([
            "-c",
            "sha256sum \"$0\" 2>/dev/null || shasum -a 256 \"$0\"",
            &path.display().to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A test's world: a tmux server, a plugin copy without a binary, a bin dir for PATH (fake
/// cargo goes there), a release dir, and maybe an HTTP server over it.
struct World {
    s: Server,
    plugin: PathBuf,
    fakebin: PathBuf,
    release: PathBuf,
    http: Option<Child>,
}

impl World {
    fn new(tag: &str) -> World {
        let s = Server::start(tag);
        let plugin = s.dir.join("plugin");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(plugin.join("scripts")).unwrap();
        for f in ["agtmux.tmux", "Cargo.toml"] {
            std::fs::copy(root.join(f), plugin.join(f)).unwrap();
        }
        for f in ["helpers.sh", "install.sh"] {
            std::fs::copy(root.join("scripts").join(f), plugin.join("scripts").join(f)).unwrap();
        }
        let fakebin = s.dir.join("fakebin");
        let release = s.dir.join("release");
        std::fs::create_dir_all(&fakebin).unwrap();
        std::fs::create_dir_all(&release).unwrap();
        // The plugin runs inside the server (run-shell) with its global environment: no
        // cargo and no agtmux on PATH unless a test puts one in fakebin; HOME without
        // ~/.cargo; the test's own Codex socket.
        // The same tmux as the test's (the version matrix puts another one first on PATH): a
        // plugin talking to the server through a tmux of another version gets nowhere.
        let tmux = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tmux"))
                .find(|c| c.is_file())
        });
        if let Some(t) = tmux {
            std::os::unix::fs::symlink(t, fakebin.join("tmux")).unwrap();
        }
        let path = format!("{}:/usr/bin:/bin", fakebin.display());
        for (k, v) in [
            ("PATH", path.as_str()),
            ("HOME", &s.dir.display().to_string()),
            ("AGTMUX_CODEX_SOCK", &s.codex_sock().display().to_string()),
            ("RUST_LOG", "info"),
        ] {
            s.tmux(&["set-environment", "-g", k, v]);
        }
        World {
            s,
            plugin,
            fakebin,
            release,
            http: None,
        }
    }

    /// Serve the release dir on a free loopback port; `@agtmux-release-url` points there.
    fn serve(&mut self) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(&self.release)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.http = Some(child);
        assert!(
            wait_until(20, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "http server did not start"
        );
        self.release_url(&format!("http://127.0.0.1:{port}"));
    }

    fn release_url(&self, url: &str) {
        self.s
            .tmux(&["set-option", "-g", "@agtmux-release-url", url]);
    }

    /// The release asset, holding `bin` as `agtmux`, and its `.sha256` (right, or `sha`).
    fn publish(&self, bin: &Path, sha: Option<&str>) {
        let stage = self.s.dir.join("stage");
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::copy(bin, stage.join("agtmux")).unwrap();
        let asset = self.release.join(asset_name());
        sh(&format!(
            "tar -czf '{}' -C '{}' agtmux",
            asset.display(),
            stage.display()
        ));
        let sum = sha.map_or_else(|| sha256(&asset), str::to_string);
        std::fs::write(
            self.release.join(format!("{}.sha256", asset_name())),
            format!("{sum}  {}\n", asset_name()),
        )
        .unwrap();
    }

    /// A `cargo` on the server's PATH that "builds" by copying the test binary, after
    /// `before` (shell).
    fn fake_cargo(&self, before: &str) {
        let script = format!(
            "#!/bin/sh\necho \"fake cargo $*\"\n{before}\nmkdir -p target/release && cp '{BIN}' target/release/agtmux\n"
        );
        write_script(&self.fakebin.join("cargo"), script);
    }

    /// Load the plugin as TPM does (run-shell, which waits for it).
    fn load(&self) {
        let out = self.s.tmux(&[
            "run-shell",
            &self.plugin.join("agtmux.tmux").display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn install_log(&self) -> String {
        std::fs::read_to_string(self.s.state_dir.join("install.log")).unwrap_or_default()
    }

    /// Wait for the installer's last line; returns the log.
    fn wait_result(&self) -> String {
        let mut log = String::new();
        let done = wait_until(60, || {
            log = self.install_log();
            log.contains("result: ")
        });
        assert!(done, "the install did not finish:\n{log}");
        log
    }

    fn doctor(&self) -> String {
        let o = self.s.agtmux(&["doctor"]);
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut c) = self.http.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_first_load_downloads_checks_and_installs_the_release_binary() {
    let mut w = World::new("inst-ok");
    // What the plugin checks a binary with.
    let v = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&v.stdout),
        format!("agtmux {VERSION}\n")
    );
    w.publish(Path::new(BIN), None);
    w.serve();
    w.load();
    let log = w.wait_result();
    assert!(log.contains("result: ok"), "{log}");
    assert!(log.contains("sha256 ok"), "{log}");
    let installed = w.plugin.join("bin/agtmux");
    assert_eq!(sha256(&installed), sha256(Path::new(BIN)), "{log}");
    // The installer ran the plugin again: the daemon runs and the keys are bound.
    w.s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    let keys = w.s.tmux_out(&["list-keys", "-T", "prefix"]);
    assert!(
        keys.contains(&format!("{} popup", installed.display())),
        "{keys}"
    );
    let inst = w.s.global_opt("@agtmux_install");
    assert!(
        inst.starts_with(&format!("ok {VERSION} (downloaded")),
        "{inst}"
    );
    // The next load finds the binary and installs nothing.
    std::fs::remove_file(w.s.state_dir.join("install.log")).unwrap();
    w.load();
    let keeper = w.s.global_opt("@agtmux_daemon");
    assert!(keeper.ends_with(" ok"), "{keeper}");
    assert!(!w.s.state_dir.join("install.log").exists());
}

#[test]
fn a_checksum_mismatch_installs_and_runs_nothing_and_says_so() {
    let mut w = World::new("inst-sum");
    // The "binary" would leave a mark if anything ran it.
    let ran = w.s.dir.join("ran");
    let evil = write_script(
        &w.s.dir.join("evil"),
        format!(
            "#!/bin/sh\ntouch '{}'\necho agtmux {VERSION}\n",
            ran.display()
        ),
    );
    w.publish(&evil, Some(&"0".repeat(64)));
    // Even with cargo at hand, a tampered release is not papered over by a build.
    w.fake_cargo("");
    w.serve();
    w.load();
    let log = w.wait_result();
    assert!(log.contains("result: failed"), "{log}");
    let d = w.s.global_opt("@agtmux_daemon");
    assert!(
        d.starts_with("install failed: checksum mismatch") && d.contains("Fix:"),
        "{d}"
    );
    assert!(!w.plugin.join("bin/agtmux").exists());
    assert!(!w.plugin.join("target").exists(), "cargo ran");
    assert!(!ran.exists(), "the unchecked file ran");
    assert!(
        w.s.global_opt("@agtmux_attention")
            .contains("install failed")
    );
    let doc = w.doctor();
    assert!(
        doc.contains("install failed: checksum mismatch"),
        "doctor:\n{doc}"
    );
}

#[test]
fn a_missing_asset_falls_back_to_cargo_with_a_log() {
    let mut w = World::new("inst-cargo");
    w.fake_cargo("");
    w.serve(); // an empty release: 404
    w.load();
    let log = w.wait_result();
    assert!(log.contains("result: ok"), "{log}");
    assert!(log.contains("404"), "{log}");
    assert!(log.contains("fake cargo build --release"), "{log}");
    let inst = w.s.global_opt("@agtmux_install");
    assert!(
        inst.starts_with(&format!("ok {VERSION} (built with cargo")),
        "{inst}"
    );
    w.s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    let keys = w.s.tmux_out(&["list-keys", "-T", "prefix"]);
    let built = w.plugin.join("target/release/agtmux");
    assert!(
        keys.contains(&format!("{} popup", built.display())),
        "{keys}"
    );
}

#[test]
fn no_download_and_no_cargo_says_what_to_do() {
    let w = World::new("inst-none");
    // A user's terminal: a client attached to the server, running in a pane of another
    // private server whose screen the test reads.
    let term = Server::start("inst-term");
    term.tmux(&["set-option", "-g", "status", "off"]);
    let pane = term.new_pane(&format!("env -u TMUX tmux -L {} attach", w.s.name));
    assert!(wait_until(20, || !w
        .s
        .tmux_out(&["list-clients", "-F", "#{client_name}"])
        .is_empty()));
    // Nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.release_url(&format!("http://127.0.0.1:{port}"));
    w.load();
    let log = w.wait_result();
    assert!(log.contains("result: failed"), "{log}");
    let d = w.s.global_opt("@agtmux_daemon");
    assert!(
        d.starts_with("install failed: could not download")
            && d.contains("cargo is not installed")
            && d.contains("rustup.rs"),
        "{d}"
    );
    assert!(!w.plugin.join("bin/agtmux").exists());
    assert!(w.doctor().contains("cargo is not installed"));
    // The attached client shows the failure at once (a message on its status line).
    let mut screen = String::new();
    assert!(
        wait_until(10, || {
            screen = term.tmux_out(&["capture-pane", "-p", "-t", &pane]);
            screen.contains("agtmux: install failed: could not download")
        }),
        "{screen}"
    );
    // ... and the installer's own run-shell job does not cover the user's pane (a failed or
    // talking run-shell -b job would be shown in view mode).
    assert!(!screen.contains("install.sh"), "{screen}");
    // A reload tries again (and fails the same way): nothing is stuck.
    std::fs::remove_file(w.s.state_dir.join("install.log")).unwrap();
    w.load();
    assert!(w.wait_result().contains("result: failed"));
}

#[test]
fn an_unsupported_platform_without_cargo_says_so() {
    let w = World::new("inst-plat");
    // uname on the server's PATH says a platform no release is built for.
    write_script(
        &w.fakebin.join("uname"),
        "#!/bin/sh\ncase \"$1\" in -s) echo Plan9 ;; -m) echo mips ;; *) echo Plan9 ;; esac\n",
    );
    w.load();
    let log = w.wait_result();
    assert!(log.contains("result: failed"), "{log}");
    let d = w.s.global_opt("@agtmux_daemon");
    assert!(
        d.starts_with(
            "install failed: no prebuilt agtmux for Plan9/mips and cargo is not installed"
        ) && d.contains("rustup.rs"),
        "{d}"
    );
    assert!(
        !log.contains("download http"),
        "nothing was downloaded:\n{log}"
    );
}

#[test]
fn the_config_load_returns_while_the_install_runs() {
    let w = World::new("inst-bg");
    let started = w.s.dir.join("cargo-started");
    let gate = w.s.dir.join("gate");
    // The build waits for the test to open the gate: the install cannot end before that.
    w.fake_cargo(&format!(
        "touch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done",
        started.display(),
        gate.display()
    ));
    w.release_url("http://127.0.0.1:9/none");
    let conf = w.s.dir.join("tmux.conf");
    std::fs::write(
        &conf,
        format!("run-shell '{}'\n", w.plugin.join("agtmux.tmux").display()),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let mut c = Command::new("tmux");
    c.args(["-L", &w.s.name, "source-file", &conf.display().to_string()]);
    w.s.env(&mut c);
    let mut load = c
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // A load that waited for the install would wait for the gate forever: fail, not hang.
    let mut status = None;
    wait_until(30, || {
        status = load.try_wait().unwrap();
        status.is_some()
    });
    let took = t0.elapsed();
    if status.is_none() {
        let _ = load.kill();
        let _ = load.wait();
        std::fs::write(&gate, b"").unwrap();
        panic!("the config load still runs after {took:?}: it waits for the install");
    }
    assert!(status.unwrap().success());
    // The install runs (the build started) and has not finished: the load returned first.
    assert!(wait_until(30, || started.exists()), "{}", w.install_log());
    assert!(!w.install_log().contains("result: "), "{}", w.install_log());
    let d = w.s.global_opt("@agtmux_daemon");
    assert!(d.starts_with("installing…"), "{d}");
    eprintln!("config load returned after {took:?} while the install ran");
    std::fs::write(&gate, b"").unwrap();
    assert!(w.wait_result().contains("result: ok"));
    w.s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
}

fn ls_json(s: &Server) -> serde_json::Value {
    let o = s.agtmux(&["ls", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
}

fn hook_prompt(s: &Server, pane: &str, prompt: &str) {
    let p = serde_json::json!({"session_id": "up1", "hook_event_name": "UserPromptSubmit",
        "prompt": prompt, "cwd": "/tmp"});
    let out = s.hook("claude", pane, p.to_string().as_bytes());
    assert!(out.status.success());
}

/// The pid the daemon's keeper wrote into its lock file (`<key>.supervisor.lock`).
fn keeper_pid(s: &Server) -> String {
    let lock = s.runtime_dir.join(format!(
        "{}.supervisor.lock",
        agtmux::paths::server_key(&s.socket())
    ));
    std::fs::read_to_string(&lock).unwrap().trim().to_string()
}

fn dead(pid: &str) -> bool {
    !Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn an_upgrade_takes_over_and_applies_every_hook_event_once() {
    let s = Server::start("upgrade");
    let pane = s.silent_agent("claude");
    // Version X: the same binary, told to be another version (debug builds only).
    let mut c = s.daemon_cmd();
    c.arg("--detach").env("AGTMUX_TEST_VERSION", "0.0.1-old");
    assert!(c.status().unwrap().success());
    let old = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    let old_worker = old.split_whitespace().next().unwrap().to_string();
    assert!(wait_until(15, || ls_json(&s)["daemon_version"] == "0.0.1-old"));
    let old_keeper = keeper_pid(&s);

    let prompts = || -> Vec<String> {
        s.db_strings("SELECT payload FROM events_raw_v2 WHERE name='UserPromptSubmit'")
            .iter()
            .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .filter_map(|v| v["payload"]["prompt"].as_str().map(str::to_string))
            .collect()
    };
    for i in 0..80 {
        hook_prompt(&s, &pane, &format!("upgrade {i}"));
    }
    // The old daemon applied these (its cursor is committed past them): the new one must not
    // apply them again, and must apply everything after.
    assert!(
        wait_until(30, || prompts().iter().any(|p| p == "upgrade 79")),
        "{}",
        s.log_tail()
    );
    // The plugin (version Y) loads: it finds X running and its daemon takes over.
    assert!(s.run_plugin().status.success());
    // Sent while the hand-over runs.
    for i in 80..140 {
        hook_prompt(&s, &pane, &format!("upgrade {i}"));
    }
    assert!(
        wait_until(30, || ls_json(&s)["daemon_version"] == VERSION),
        "{}",
        s.log_tail()
    );
    for i in 140..200 {
        hook_prompt(&s, &pane, &format!("upgrade {i}"));
    }
    // A last event after all of them: once it is stored, so is anything sent before it.
    hook_prompt(&s, &pane, "upgrade end");
    let mut got = Vec::new();
    assert!(
        wait_until(30, || {
            got = prompts();
            got.iter().any(|p| p == "upgrade end")
        }),
        "the last event was not stored: {} of 201\n{}",
        got.len(),
        s.log_tail()
    );
    for i in 0..200 {
        let want = format!("upgrade {i}");
        let n = got.iter().filter(|p| **p == want).count();
        assert_eq!(n, 1, "{want} stored {n} times\n{}", s.log_tail());
    }
    assert_eq!(got.len(), 201);
    // The old daemon and its keeper are gone, and the keeper did not restart it.
    assert!(wait_until(15, || dead(&old_worker) && dead(&old_keeper)));
    let log = std::fs::read_to_string(s.server_dir().join("daemon.log")).unwrap();
    assert!(log.contains("supervisor_stop reason=upgrade"), "{log}");
    assert!(log.contains("takeover_done"), "{log}");
    let now = s.global_opt("@agtmux_daemon");
    assert!(
        now.ends_with(" ok") && !now.starts_with(&old_worker),
        "{now}"
    );
    // doctor names the daemon's version.
    let doc = String::from_utf8_lossy(&s.agtmux(&["doctor"]).stdout).to_string();
    assert!(doc.contains(&format!("version {VERSION}")), "{doc}");
}

#[test]
fn an_upgrade_also_replaces_an_old_keeper_whose_daemon_is_down() {
    let s = Server::start("upgrade-down");
    // Version X, with a restart pause longer than the test.
    let mut c = s.daemon_cmd();
    c.arg("--detach")
        .env("AGTMUX_TEST_VERSION", "0.0.1-old")
        .env("AGTMUX_SUPERVISOR_BACKOFF_MS", "60000,60000");
    assert!(c.status().unwrap().success());
    let old = s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    let old_worker = old.split_whitespace().next().unwrap().to_string();
    let old_keeper = keeper_pid(&s);
    sh(&format!("kill -9 {old_worker}"));
    s.wait_global("@agtmux_daemon", |v| v.contains(" down "), 30);
    // Nobody answers the API: the new keeper stops the old one itself and starts.
    assert!(s.run_plugin().status.success());
    assert!(
        wait_until(30, || ls_json(&s)["daemon_version"] == VERSION),
        "{}",
        s.log_tail()
    );
    assert!(wait_until(15, || dead(&old_keeper)), "old keeper lives");
    let log = std::fs::read_to_string(s.server_dir().join("daemon.log")).unwrap();
    assert!(log.contains("takeover_sigterm"), "{log}");
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
}
