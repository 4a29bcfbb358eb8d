//! Test harness: a private tmux server per test (`tmux -L agtmux-test-…`, `-f /dev/null`),
//! killed by name on drop, with its own state and runtime dirs, plus helpers to run the real
//! `agtmux` binary against it and to wait for option values without timed assertions.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_agtmux");
/// The tmux arguments that start a test server: session `main`, 120x40, no config.
pub const MAIN_SESSION: [&str; 10] = [
    "-f",
    "/dev/null",
    "new-session",
    "-d",
    "-s",
    "main",
    "-x",
    "120",
    "-y",
    "40",
];
static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    pub name: String,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub daemon: Option<Child>,
    /// Extra environment for every daemon [`Server::daemon_cmd`] starts.
    pub daemon_env: Vec<(&'static str, String)>,
}

impl Server {
    pub fn start(tag: &str) -> Server {
        Server::start_with(tag, &MAIN_SESSION)
    }

    /// [`Server::start`], with `new_session` (tmux arguments, as [`MAIN_SESSION`]) starting the
    /// server instead of the default session `main`. [`Server::new_session`], [`Server::new_pane`]
    /// and the attach helpers still name `main`.
    pub fn start_with(tag: &str, new_session: &[&str]) -> Server {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("agtmux-test-{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Server {
            state_dir: dir.join("state"),
            runtime_dir: dir.join("run"),
            name,
            dir,
            daemon: None,
            daemon_env: Vec::new(),
        };
        let out = s.tmux(new_session);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    /// Start the server (again, after a `kill-server`): [`MAIN_SESSION`].
    pub fn new_session(&self) -> Output {
        self.tmux(&MAIN_SESSION)
    }

    /// Load the plugin as TPM does: `run-shell agtmux.tmux` inside the server, with this
    /// test's binary (`@agtmux-bin`), Codex socket and `RUST_LOG=info` in the server's global
    /// environment.
    pub fn run_plugin(&self) -> Output {
        self.tmux(&[
            "set-environment",
            "-g",
            "AGTMUX_CODEX_SOCK",
            &self.codex_sock().display().to_string(),
        ]);
        self.tmux(&["set-environment", "-g", "RUST_LOG", "info"]);
        self.tmux(&["set-option", "-g", "@agtmux-bin", BIN]);
        self.tmux(&["run-shell", &plugin_script().display().to_string()])
    }

    /// Run agtmux.tmux as TPM does, as a child of the test (not through `run-shell`): `tmux`
    /// inside it talks to this server through `$TMUX`. Fails the test if the script fails.
    pub fn run_plugin_direct(&self) {
        self.tmux(&["set", "-g", "@agtmux-bin", BIN]);
        let mut c = Command::new("bash");
        c.arg(plugin_script())
            .env("TMUX", self.tmux_env())
            .env("AGTMUX_CODEX_SOCK", self.codex_sock());
        self.env(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "agtmux.tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run tmux against this server with the test's environment.
    pub fn tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.name).args(args);
        self.env(&mut c);
        c.env_remove("TMUX").env_remove("TMUX_PANE");
        c.stdin(Stdio::null()).output().unwrap()
    }

    /// The prefix table's binding of `key` (its `list-keys` line), or "". The whole table is
    /// listed and filtered here: given a key, tmux 3.7 shows a single match as a status
    /// message instead of printing it.
    pub fn prefix_binding(&self, key: &str) -> String {
        self.tmux_out(&["list-keys", "-T", "prefix"])
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.iter()
                    .position(|w| *w == "-T")
                    .is_some_and(|i| f.get(i + 2) == Some(&key))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// [`Server::tmux_out`], failing the test unless tmux exits 0.
    pub fn tmux_ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string()
    }

    pub fn tmux_out(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.tmux(args).stdout)
            .trim_end_matches('\n')
            .to_string()
    }

    pub fn env(&self, c: &mut Command) {
        c.env("AGTMUX_STATE_DIR", &self.state_dir)
            .env("AGTMUX_RUNTIME_DIR", &self.runtime_dir);
    }

    pub fn socket(&self) -> PathBuf {
        PathBuf::from(self.tmux_out(&["display-message", "-p", "#{socket_path}"]))
    }

    pub fn server_pid(&self) -> String {
        self.tmux_out(&["display-message", "-p", "#{pid}"])
    }

    /// A new window running `cmd` (through the default shell); returns its pane id.
    pub fn new_pane(&self, cmd: &str) -> String {
        self.tmux_out(&[
            "new-window",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-t",
            "main",
            cmd,
        ])
    }

    /// A pane whose foreground process is named `claude` (argv[0]) but only sleeps: a silent
    /// agent stand-in for hook-driven tests.
    pub fn silent_agent(&self, name: &str) -> String {
        self.new_pane(&format!("bash -c 'exec -a {name} sleep 100000'"))
    }

    /// A real client of this server's `main` session: `tmux attach` in pane `main:0` of a
    /// second private server (`tag`), which is returned (its pane is the client's terminal).
    pub fn attach_from(&self, tag: &str) -> Server {
        self.attach_session_from(tag, "main")
    }

    /// [`Server::attach_from`], the client attached to `session`.
    pub fn attach_session_from(&self, tag: &str, session: &str) -> Server {
        let outer = Server::start(tag);
        let attach = format!("env -u TMUX tmux -L {} attach -t {session}", self.name);
        outer.tmux(&["respawn-pane", "-k", "-t", "main:0", &attach]);
        outer
    }

    /// In the client [`Server::attach_from`] put in this (outer) server's `main:0`: once it
    /// drew its status line, press prefix (C-b) and `key`, then wait up to 30 s until its
    /// screen satisfies `pred`. Returns that screen; fails the test with it otherwise.
    pub fn press_prefix_in_client(&self, key: &str, pred: impl Fn(&str) -> bool) -> String {
        let screen = || self.tmux_out(&["capture-pane", "-p", "-t", "main:0"]);
        assert!(wait_until(30, || screen().contains("[main]")));
        self.tmux(&["send-keys", "-t", "main:0", "C-b"]);
        self.tmux(&["send-keys", "-t", "main:0", key]);
        let mut last = String::new();
        let seen = wait_until(30, || {
            last = screen();
            pred(&last)
        });
        assert!(seen, "after prefix + {key}:\n{last}");
        last
    }

    /// The name of the first attached client that is not a control client (a user's).
    pub fn client_name(&self) -> String {
        self.tmux_out(&[
            "list-clients",
            "-F",
            "#{client_control_mode} #{client_name}",
        ])
        .lines()
        .find_map(|l| l.strip_prefix("0 "))
        .expect("an attached client")
        .to_string()
    }

    pub fn pane_opt(&self, pane: &str, opt: &str) -> String {
        self.tmux_out(&["show-options", "-pqv", "-t", pane, opt])
    }

    pub fn global_opt(&self, opt: &str) -> String {
        self.tmux_out(&["show-options", "-gqv", opt])
    }

    pub fn daemon_cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(["daemon", "-L", &self.name]);
        self.env(&mut c);
        // Never the user's real Codex daemon: a socket of this test's own (absent unless a
        // test starts a test app-server there).
        c.env("AGTMUX_CODEX_SOCK", self.codex_sock());
        c.env_remove("TMUX").env_remove("TMUX_PANE");
        c.envs(self.daemon_env.iter().map(|(k, v)| (k, v)));
        if std::env::var_os("RUST_LOG").is_none() {
            c.env("RUST_LOG", "info");
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// The Codex app-server socket this test's daemon watches.
    pub fn codex_sock(&self) -> PathBuf {
        self.dir.join("codex-app-server.sock")
    }

    pub fn start_daemon(&mut self) {
        let child = self.daemon_cmd().spawn().unwrap();
        self.daemon = Some(child);
        self.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    }

    /// Spawn the daemon with `env` added to [`Server::daemon_cmd`]'s environment; the caller
    /// waits for what it needs to see (its status line, a log line).
    pub fn spawn_daemon_with(&mut self, env: &[(&str, &str)]) {
        let mut c = self.daemon_cmd();
        c.envs(env.iter().copied());
        self.daemon = Some(c.spawn().unwrap());
    }

    /// Creates the database, then spawns the daemon with `env`; returns once its status says
    /// ` ok` (the store opened), so a test can take the store away after that.
    pub fn daemon_on_fresh_store(&mut self, env: &[(&str, &str)]) {
        drop(agtmux::store::Store::open(&self.db_path()).unwrap());
        self.spawn_daemon_with(env);
        self.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 15);
    }

    /// Holds the database's write lock (`BEGIN EXCLUSIVE`) until the returned connection
    /// commits or drops: a store that is down for the daemon.
    pub fn lock_store(&self) -> rusqlite::Connection {
        let holder = rusqlite::Connection::open(self.db_path()).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        holder
    }

    /// A started server with one [`Server::silent_agent`] pane named `agent`, then its daemon:
    /// the setup most hook-driven tests begin with.
    pub fn with_agent(tag: &str, agent: &str) -> (Server, String) {
        let mut s = Server::start(tag);
        let pane = s.silent_agent(agent);
        s.start_daemon();
        (s, pane)
    }

    pub fn kill_daemon_hard(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `TMUX` as tmux sets it inside a pane of this server.
    pub fn tmux_env(&self) -> String {
        format!("{},{},0", self.socket().display(), self.server_pid())
    }

    /// Run the real `agtmux hook <agent>` as the agent would, for `pane`.
    pub fn hook(&self, agent: &str, pane: &str, payload: &[u8]) -> Output {
        self.hook_under_pid(&self.server_pid(), agent, pane, payload)
    }

    /// [`Server::hook`] with `$TMUX` naming server pid `pid` (a hook from another server).
    pub fn hook_under_pid(&self, pid: &str, agent: &str, pane: &str, payload: &[u8]) -> Output {
        let mut c = Command::new(BIN);
        c.args(["hook", agent])
            .env("TMUX", format!("{},{pid},0", self.socket().display()))
            .env("TMUX_PANE", pane);
        self.env(&mut c);
        run_with_input(&mut c, payload)
    }

    /// [`Server::hook`] for a Claude pane with `payload` (JSON text or a `serde_json::Value`);
    /// fails the test unless the hook exits 0, as it always must.
    pub fn claude(&self, pane: &str, payload: impl std::fmt::Display) {
        let out = self.hook("claude", pane, payload.to_string().as_bytes());
        assert!(
            out.status.success(),
            "agtmux hook claude: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `agtmux ARGS` with the test's dirs, outside tmux (no `$TMUX`), stdin from /dev/null.
    pub fn agtmux_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args);
        self.env(&mut c);
        c.env_remove("TMUX").env_remove("TMUX_PANE");
        c.stdin(Stdio::null());
        c
    }

    /// Run `agtmux ARGS -L <this server>` as [`Server::agtmux_cmd`] does.
    pub fn agtmux(&self, args: &[&str]) -> Output {
        self.agtmux_cmd(args)
            .args(["-L", &self.name])
            .output()
            .unwrap()
    }

    /// [`Server::agtmux`]'s exit code (-1 for a signal) and stdout.
    pub fn agtmux_code_out(&self, args: &[&str]) -> (i32, String) {
        let out = self.agtmux(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Waits until the status line says the daemon escalated, then checks that it names
    /// `component` as held down, and so does the log. Returns the log.
    pub fn wait_held_down(&self, component: &str, secs: u64) -> String {
        let v = self.wait_global("@agtmux_daemon", |v| v.contains("escalate"), secs);
        assert!(v.contains(&format!("{component}:hold_down")), "{v}");
        let l = self.log();
        assert!(
            l.contains(&format!(
                "supervisor_hold_down component={component} escalate=true"
            )),
            "{l}"
        );
        l
    }

    /// Waits until the daemon log contains `needle`; fails with the log's tail otherwise.
    pub fn wait_log(&self, needle: &str, secs: u64) {
        assert!(
            wait_until(secs, || self.log().contains(needle)),
            "the log never said {needle:?} in {secs}s\n{}",
            self.log_tail()
        );
    }

    pub fn wait_pane(&self, pane: &str, opt: &str, want: &str, secs: u64) {
        let mut last = String::new();
        let ok = wait_until(secs, || {
            last = self.pane_opt(pane, opt);
            last == want
        });
        assert!(
            ok,
            "{pane} {opt}: wanted {want:?}, still {last:?} after {secs}s\n{}",
            self.log_tail()
        );
    }

    pub fn wait_global(&self, opt: &str, pred: impl Fn(&str) -> bool, secs: u64) -> String {
        let mut last = String::new();
        let ok = wait_until(secs, || {
            last = self.global_opt(opt);
            pred(&last)
        });
        assert!(
            ok,
            "{opt}: condition not met, last {last:?}\n{}",
            self.log_tail()
        );
        last
    }

    pub fn server_dir(&self) -> PathBuf {
        self.state_dir
            .join(agtmux::paths::server_key(&self.socket()))
    }

    pub fn db_path(&self) -> PathBuf {
        self.server_dir().join("agtmux.db")
    }

    pub fn spool_path(&self) -> PathBuf {
        self.server_dir().join("spool.jsonl")
    }

    /// The whole daemon log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.server_dir().join("daemon.log")).unwrap_or_default()
    }

    /// The daemon's local API socket.
    pub fn api_socket(&self) -> PathBuf {
        self.runtime_dir.join(format!(
            "{}.sock",
            agtmux::paths::server_key(&self.socket())
        ))
    }

    /// The daemon's `health` answer; `Value::Null` when it cannot be asked.
    pub fn health(&self) -> serde_json::Value {
        self.api("health", serde_json::json!({}))
    }

    /// One request to the daemon's local API; `Value::Null` when it cannot be asked.
    pub fn api(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, BufReader, Write};
        let Ok(mut c) = std::os::unix::net::UnixStream::connect(self.api_socket()) else {
            return serde_json::Value::Null;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
        let mut line =
            serde_json::json!({"v":1,"id":1,"method":method,"params":params}).to_string();
        line.push('\n');
        if c.write_all(line.as_bytes()).is_err() {
            return serde_json::Value::Null;
        }
        let mut out = String::new();
        BufReader::new(c).read_line(&mut out).unwrap_or(0);
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    }

    /// The pane's state in the daemon's read model (`get`), "" when it cannot be asked.
    pub fn api_state(&self, pane: &str) -> String {
        let v = self.api("get", serde_json::json!({"pane": pane}));
        v["result"]["state"].as_str().unwrap_or("").to_string()
    }

    /// The first row of `sql` (no parameters) in the database file: one column.
    pub fn db_one<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        let c = rusqlite::Connection::open(self.db_path()).unwrap();
        c.query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first row of `sql` (no parameters) in the database file: two columns.
    pub fn db_two<A, B>(&self, sql: &str) -> (A, B)
    where
        A: rusqlite::types::FromSql,
        B: rusqlite::types::FromSql,
    {
        let c = rusqlite::Connection::open(self.db_path()).unwrap();
        c.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row of `sql` (no parameters), as text; empty while the
    /// database cannot be read.
    pub fn db_strings(&self, sql: &str) -> Vec<String> {
        let Ok(c) = rusqlite::Connection::open(self.db_path()) else {
            return Vec::new();
        };
        let Ok(mut st) = c.prepare(sql) else {
            return Vec::new();
        };
        st.query_map([], |r| r.get::<_, String>(0))
            .map(|rows| rows.filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    /// The reasons of the rejected events in the database, in order.
    pub fn rejected_reasons(&self) -> Vec<String> {
        self.db_strings("SELECT reason FROM events_raw_v2 WHERE status='rejected' ORDER BY seq")
    }

    /// Waits up to 20 s until the number of rejected events whose reason starts with
    /// `prefix` satisfies `want`; fails with the reasons and the log otherwise.
    pub fn wait_rejected(&self, prefix: &str, want: impl Fn(usize) -> bool) {
        let n = || {
            self.rejected_reasons()
                .iter()
                .filter(|r| r.starts_with(prefix))
                .count()
        };
        assert!(
            wait_until(20, || want(n())),
            "{prefix}: {:?}\n{}",
            self.rejected_reasons(),
            self.log_tail()
        );
    }

    /// Whether a database set aside as corrupt (`*.corrupt-*`) is in the server's dir.
    pub fn has_corrupt_copy(&self) -> bool {
        std::fs::read_dir(self.server_dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
    }

    /// Events stored in the database (any status).
    pub fn stored_events(&self) -> i64 {
        let Ok(db) = rusqlite::Connection::open(self.db_path()) else {
            return -1;
        };
        db.query_row("SELECT count(*) FROM events_raw_v2", [], |r| r.get(0))
            .unwrap_or(-1)
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(30);
        format!("--- daemon.log tail ---\n{}", lines[start..].join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_tmux_server(&self.name);
        if let Some(c) = self.daemon.take() {
            reap_daemon(c);
        }
        if std::env::var_os("AGTMUX_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Claude hook payloads, as [`Server::claude`] sends them.
pub mod claude {
    use serde_json::{Value, json};

    /// `{"session_id": sid, "hook_event_name": event}` with the fields of `extra` (an object).
    pub fn ev(sid: &str, event: &str, extra: Value) -> Value {
        let mut v = json!({"session_id": sid, "hook_event_name": event});
        if let (Some(m), Value::Object(x)) = (v.as_object_mut(), extra) {
            m.extend(x);
        }
        v
    }

    /// `UserPromptSubmit` with `prompt`.
    pub fn prompt(sid: &str, prompt: &str) -> Value {
        ev(sid, "UserPromptSubmit", json!({"prompt": prompt}))
    }

    /// `PermissionRequest` for the `Bash` tool.
    pub fn permission(sid: &str) -> Value {
        ev(sid, "PermissionRequest", json!({"tool_name": "Bash"}))
    }

    /// `SessionStart` from `startup`.
    pub fn start(sid: &str) -> Value {
        ev(sid, "SessionStart", json!({"source": "startup"}))
    }

    pub fn stop(sid: &str) -> Value {
        ev(sid, "Stop", json!({}))
    }
}

/// The string `key` of each object in the JSON array `list` that has one; fails the test if
/// `list` is no array.
pub fn field_strs<'a>(list: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("no array: {list}"))
        .iter()
        .filter_map(|x| x[key].as_str())
        .collect()
}

/// Fails the test unless every one of `wants` starts some line of `got`.
pub fn assert_prefixes(got: &[String], wants: &[&str]) {
    for want in wants {
        assert!(
            got.iter().any(|r| r.starts_with(want)),
            "no {want} in {got:?}"
        );
    }
}

/// Fails the test unless `out` exited 0, showing its stderr.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `c` to its end; fails the test unless it exits 0, showing the command and its stderr.
pub fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `c` to its end with `input` on its stdin (a write error, e.g. it exited early, is
/// ignored); its output.
pub fn run_with_input(c: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).ok();
    child.wait_with_output().unwrap()
}

/// A command's stdout then stderr, as one text.
pub fn out_and_err(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `f` every 25 ms for up to `secs`. Returns whether it became true.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Writes `text` to `path` as an executable script (mode 0755): the stand-in commands tests put
/// on a PATH or hand to a daemon (a fake tmux, a throttling ssh, a recording notifier).
/// Returns `path`.
pub fn write_script(path: &Path, text: impl AsRef<str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text.as_ref()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// A new empty directory `agtmux-<tag>-<pid>` in the temp dir (emptied if a run before left
/// it); the test removes it.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agtmux-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The plugin's entry script, `agtmux.tmux`, in this checkout.
pub fn plugin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agtmux.tmux")
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// Now in UTC with milliseconds (`2026-12-03T12:53:36.059Z`): how Claude stamps transcript
/// entries and Codex its rollout lines.
pub fn iso_now() -> String {
    agtmux::core::time::iso_utc_ms(agtmux::sys::clock::now_ms())
}

/// Now in whole seconds since the Unix epoch.
pub fn now_s() -> i64 {
    (agtmux::sys::clock::now_ms() / 1000) as i64
}

/// Claude's message for a session limit that resets at `reset_s` (Unix seconds), with the
/// time as Claude prints it: 12-hour, to the minute, in UTC.
pub fn session_limit_message(reset_s: i64) -> String {
    let (h, m) = ((reset_s % 86_400) / 3600, (reset_s % 3600) / 60);
    let (h12, ampm) = match h {
        0 => (12, "am"),
        1..=11 => (h, "am"),
        12 => (12, "pm"),
        _ => (h - 12, "pm"),
    };
    format!("You've hit your session limit · resets {h12}:{m:02}{ampm} (UTC)")
}

/// Kills the tmux server named `name` (`tmux -L name kill-server`), quietly: one this test
/// started.
pub fn kill_tmux_server(name: &str) {
    let _ = Command::new("tmux")
        .args(["-L", name, "kill-server"])
        .stderr(Stdio::null())
        .status();
}

/// After `kill-server`: let the daemon exit by itself (it does once its server is gone), then
/// make sure. Killing it at once leaves its control client half-closed while the server waits
/// for that client to leave, and tmux 3.3a then keeps the server (and the client) forever.
pub fn reap_daemon(mut c: Child) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Every published (state, evidence) of `pane`, in order, from the daemon log's `pane_state`
/// lines (needs `RUST_LOG=info`): the whole history, so a state that did not last is still
/// there. A pane without an agent is `("", "")`, as its options are.
pub fn state_history(log: &str, pane: &str) -> Vec<(String, String)> {
    let key = format!("pane_state pane={pane} ");
    let mut h: Vec<(String, String)> = Vec::new();
    for l in log.lines() {
        let Some(i) = l.find(&key) else { continue };
        let field = |name: &str| {
            l[i..]
                .split(' ')
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or("")
                .to_string()
        };
        let s = if field("presence=") == "managed" {
            (field("activity="), field("evidence="))
        } else {
            (String::new(), String::new())
        };
        if h.last() != Some(&s) {
            h.push(s);
        }
    }
    h
}
