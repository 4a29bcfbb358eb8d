//! Remote hosts through a REAL OpenSSH server on 127.0.0.1 (issue 24).
//!
//! Each test starts its own `sshd -D` on a free loopback port with a throwaway host key, user
//! key, `authorized_keys` and `known_hosts` in its temp dir (never the system's sshd, never
//! `~/.ssh`), and `SetEnv` in that sshd's config gives the remote session its own `HOME` and
//! agtmux dirs. The "remote" is a second private tmux server with its own daemon; the local
//! daemon reaches it with `@agtmux-ssh-command "ssh -F <test ssh_config>"` and
//! `@agtmux-remote-command <this build's agtmux>`. Skipped, with the reason printed, when
//! `sshd` or `ssh-keygen` is not installed (`.ci/run` installs `openssh-server`).
mod support;

use serde_json::json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::*;

const ALIAS: &str = "agtmux-remote-test";

struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn find_sshd() -> Option<PathBuf> {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn keygen(path: &Path) -> bool {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Sshd {
    /// Keys, configs, and a started sshd; `None` (reason printed) when it cannot run here.
    /// `remote_env`: what the remote session gets through `SetEnv`.
    fn start(dir: &Path, remote_env: &[(&str, &Path)]) -> Option<Sshd> {
        let Some(sshd) = find_sshd() else {
            eprintln!("SKIP: no sshd (install openssh-server)");
            return None;
        };
        let dir = dir.join("ssh");
        std::fs::create_dir_all(dir.join("home")).unwrap();
        if !keygen(&dir.join("host_key")) || !keygen(&dir.join("user_key")) {
            eprintln!("SKIP: ssh-keygen failed or is missing");
            return None;
        }
        // As root, sshd wants its privilege separation dir (the package's init script makes it).
        let privsep = Path::new("/run/sshd");
        if !privsep.exists() && std::fs::create_dir_all(privsep).is_err() {
            eprintln!("SKIP: {} is missing and cannot be made", privsep.display());
            return None;
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_string();
        let mut env = format!("HOME={}", dir.join("home").display());
        // The test's PATH, so the remote side runs the same tmux (the version matrix puts its
        // tmux first on PATH).
        if let Ok(path) = std::env::var("PATH")
            && !path.is_empty()
            && !path.contains(|c: char| c.is_whitespace() || c == '"')
        {
            env.push_str(&format!(" PATH={path}"));
        }
        for (k, v) in remote_env {
            env.push_str(&format!(" {k}={}", v.display()));
        }
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\nSetEnv {env}\n"
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host {ALIAS} {ALIAS}-badkey\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  LogLevel ERROR\n  ControlMaster no\n\
                 Host {ALIAS}\n  IdentityFile {d}/user_key\n\
                 Host {ALIAS}-badkey\n  IdentityFile {d}/host_key\n"
            ),
        )
        .unwrap();
        let mut s = Sshd {
            dir,
            port,
            child: None,
        };
        let _ = sshd;
        s.run();
        Some(s)
    }

    /// [`Sshd::start`] in `r`'s dir, its sessions given `r`'s state and runtime dirs (the
    /// remote agtmux talks to `r`'s daemon).
    fn for_server(r: &Server) -> Option<Sshd> {
        Sshd::start(
            &r.dir,
            &[
                ("AGTMUX_RUNTIME_DIR", &r.runtime_dir),
                ("AGTMUX_STATE_DIR", &r.state_dir),
            ],
        )
    }

    fn run(&mut self) {
        let child = Command::new(find_sshd().unwrap())
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(20, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "sshd never listened on {port}"
        );
    }

    /// Kill sshd and every session it forked (the live stream goes with them).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pids = descendants(c.id());
            let _ = c.kill();
            let _ = c.wait();
            for p in pids {
                let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
            }
        }
        let port = self.port;
        assert!(wait_until(20, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()));
    }

    /// `agtmux ls --remote ARGS` with `r`'s dirs, through this sshd, running `remote_command`
    /// on the remote side.
    fn ls_remote(
        &self,
        r: &Server,
        args: &[&str],
        remote_command: impl AsRef<std::ffi::OsStr>,
    ) -> std::process::Output {
        let mut ls = Command::new(BIN);
        ls.args(["ls", "--remote"])
            .args(args)
            .env("AGTMUX_SSH", self.ssh_command())
            .env("AGTMUX_REMOTE_COMMAND", remote_command)
            .stdin(Stdio::null());
        r.env(&mut ls);
        ls.output().unwrap()
    }

    fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.dir.join("ssh_config").display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// Every process below `pid` (from /proc's parent links).
fn descendants(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok());
        if let Some(pp) = ppid {
            all.push((p, pp));
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(x) = frontier.pop() {
        for (p, pp) in &all {
            if *pp == x && !out.contains(p) {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

/// The remote host: a private tmux server with its own daemon, dirs passed to sshd's SetEnv.
fn remote_server() -> Server {
    let mut r = Server::start("rhost");
    r.start_daemon();
    r
}

/// The local server with `@agtmux-remotes` set before its daemon starts.
fn local_server(sshd: &Sshd, ssh_command: &str, remote_command: &str) -> Server {
    let l = Server::start("rlocal");
    for (k, v) in [
        ("@agtmux-remotes", ALIAS),
        ("@agtmux-ssh-command", ssh_command),
        ("@agtmux-remote-command", remote_command),
    ] {
        assert!(l.tmux(&["set", "-g", k, v]).status.success());
    }
    let _ = sshd;
    l
}

fn start_local_daemon(l: &mut Server) {
    // Fast reconnects; no hold-down while the test keeps sshd away.
    l.spawn_daemon_with(&[
        ("AGTMUX_SUPERVISOR_BACKOFF_MS", "200,1000"),
        ("AGTMUX_SUPERVISOR_FAIL_LIMIT", "1000"),
    ]);
    l.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
}

/// A local server whose daemon follows the remote host through `ssh_command`, running
/// `remote_command` there; then an approval in a new agent pane of `r` (session `session`)
/// that reaches the local status line. Returns the local server and the remote pane.
fn local_sees_remote_approval(
    r: &Server,
    sshd: &Sshd,
    ssh_command: &str,
    remote_command: &str,
    session: &str,
) -> (Server, String) {
    let mut l = local_server(sshd, ssh_command, remote_command);
    start_local_daemon(&mut l);
    let rp = r.silent_agent("claude");
    approval(r, &rp, session);
    l.wait_global("@agtmux_attention", |v| v.contains("!1"), 60);
    (l, rp)
}

fn remotes(l: &Server) -> serde_json::Value {
    l.api("list", serde_json::json!({}))["result"]["remotes"].clone()
}

fn remote_pane(l: &Server, pane: &str) -> serde_json::Value {
    for h in remotes(l).as_array().into_iter().flatten() {
        for s in h["servers"].as_array().into_iter().flatten() {
            for se in s["sessions"].as_array().into_iter().flatten() {
                for w in se["windows"].as_array().into_iter().flatten() {
                    for p in w["panes"].as_array().into_iter().flatten() {
                        if p["pane_id"] == pane {
                            return p.clone();
                        }
                    }
                }
            }
        }
    }
    serde_json::Value::Null
}

fn approval(r: &Server, pane: &str, session: &str) {
    // The hook is judged against the pane's agent process: wait until the daemon saw it.
    r.wait_pane(pane, "@agtmux_presence", "managed", 15);
    let payload = format!(
        r#"{{"session_id":"{session}","hook_event_name":"PermissionRequest","tool_name":"Bash"}}"#
    );
    r.claude(pane, payload);
    r.wait_pane(pane, "@agtmux_state", "waiting_approval", 15);
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Remote states reach the local status line, `ls --all` and the popup; killing sshd makes the
/// host unreachable (its pane stale, not counted, not dropped); a restarted sshd brings it back
/// with no second attention for the same approval.
#[test]
fn remote_states_reach_the_status_line_and_survive_an_sshd_restart_without_duplicates() {
    let r = remote_server();
    let Some(mut sshd) = Sshd::for_server(&r) else {
        return;
    };
    // The status line counts the remote approval (the local server has no agent at all).
    let (l, rp) = local_sees_remote_approval(&r, &sshd, &sshd.ssh_command(), BIN, "remote-s1");
    let p = remote_pane(&l, &rp);
    assert_eq!(p["state"], "waiting_approval", "{p}");
    assert_eq!(p["host"], ALIAS);
    assert_eq!(p["stale"], false);
    assert_eq!(p["session_name"], "main");

    // ls --all: every local server (this one) and the remote host, in JSON and as a table.
    let mut ls = Command::new(BIN);
    ls.args(["ls", "--all", "--json", "-L", &l.name]);
    l.env(&mut ls);
    let o = ls.env_remove("TMUX").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["servers"].as_array().map(|a| a.len()), Some(1), "{v}");
    assert_eq!(v["remotes"][0]["host"], ALIAS, "{v}");
    assert_eq!(v["remotes"][0]["status"], "live", "{v}");
    let mut ls = Command::new(BIN);
    ls.args(["ls", "--all", "-L", &l.name]);
    l.env(&mut ls);
    let table =
        String::from_utf8_lossy(&ls.env_remove("TMUX").output().unwrap().stdout).into_owned();
    assert!(table.contains(&format!("== host {ALIAS} live")), "{table}");
    assert!(
        table
            .lines()
            .any(|x| x.contains(&rp) && x.contains("waiting_approval")),
        "{table}"
    );

    // The popup groups the row under its host.
    let popup = l.new_pane(&format!("{BIN} popup -L {}", l.name));
    let mut screen = String::new();
    let shown = wait_until(20, || {
        screen = l.tmux_out(&["capture-pane", "-p", "-t", &popup]);
        screen.contains(&format!("⇄ {ALIAS}")) && screen.contains(&rp)
    });
    assert!(shown, "popup:\n{screen}");
    let _ = l.tmux(&["kill-pane", "-t", &popup]);

    // sshd dies under the live stream: the host is unreachable, its pane stale and uncounted.
    let log = l.log();
    assert_eq!(
        count(&log, &format!("remote_attention host={ALIAS}")),
        1,
        "{log}"
    );
    sshd.kill();
    l.wait_global(
        "@agtmux_attention",
        |v| v.contains("✗1") && !v.contains("!1"),
        60,
    );
    let h = &remotes(&l)[0];
    assert_eq!(h["status"], "unreachable", "{h}");
    assert!(h["since_ms"].as_i64().is_some(), "{h}");
    let p = remote_pane(&l, &rp);
    assert_eq!(p["stale"], true, "{p}");
    assert_eq!(p["attention"], serde_json::Value::Null, "{p}");
    // doctor names it, as a warning with ssh's reason.
    let mut doctor = Command::new(BIN);
    doctor.args(["doctor", "-L", &l.name]);
    l.env(&mut doctor);
    let o = doctor.env_remove("TMUX").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text.lines().any(
            |x| x.contains(&format!("remote host {ALIAS} unreachable since")) && x.contains("ssh")
        ),
        "{text}"
    );

    // Back: the same approval is live again, and was announced once in all.
    sshd.run();
    l.wait_global(
        "@agtmux_attention",
        |v| v.contains("!1") && !v.contains('✗'),
        60,
    );
    let health = l.api("health", serde_json::json!({}));
    let connects = health["result"]["remotes"][0]["connects"]
        .as_u64()
        .unwrap_or(0);
    assert!(connects >= 2, "{health}");
    assert_eq!(remote_pane(&l, &rp)["stale"], false);
    let log = l.log();
    assert_eq!(
        count(&log, &format!("remote_attention host={ALIAS}")),
        1,
        "a reconnect announced the approval again:\n{log}"
    );
    // A new approval after the reconnect is news, and announced once.
    r.claude(&rp, claude::prompt("remote-s1", "go"));
    assert!(wait_until(30, || remote_pane(&l, &rp)["state"] == "running"));
    approval(&r, &rp, "remote-s1");
    assert!(wait_until(30, || count(
        &l.log(),
        &format!("remote_attention host={ALIAS}")
    ) == 2));
}

/// A slow link (every byte of the stream trickles through a throttle) and bad remote output
/// (garbage, an oversized line, hostile ids) are refused with logged reasons; the daemon does
/// not panic and the remote state still arrives.
#[test]
fn a_slow_link_and_bad_remote_output_are_rejected_and_logged_never_fatal() {
    let r = remote_server();
    let Some(sshd) = Sshd::for_server(&r) else {
        return;
    };
    // The throttle: 256-byte chunks, 20 ms apart (≈ 12 KiB/s), lines cut anywhere.
    let slow = write_script(
        &r.dir.join("slow-ssh"),
        "#!/bin/sh\nssh \"$@\" | python3 -c 'import sys,time\nr=sys.stdin.buffer\nw=sys.stdout.buffer\nwhile True:\n  b=r.read1(256)\n  if not b: break\n  w.write(b); w.flush(); time.sleep(0.02)'\n",
    );
    // The remote agtmux says hello, then garbage, then runs the real stream.
    let bad = write_script(
        &r.dir.join("bad-agtmux"),
        format!(
            "#!/bin/sh\n\
             printf '%s\\n' '{{\"v\":1,\"event\":\"hello\",\"agtmux\":\"0.1.0\",\"protocol\":1}}'\n\
             printf 'not json at all\\n'\n\
             head -c 200000 /dev/zero | tr '\\0' x; printf '\\n'\n\
             printf '%s\\n' '{{\"v\":1,\"event\":\"pane\",\"server\":\"x;rm -rf\",\"pane\":{{}}}}'\n\
             printf '%s\\n' '{{\"v\":1,\"event\":\"snapshot\",\"server\":\"s1\",\"socket\":\"/tmp/x\",\"list\":{{\"sessions\":[{{\"windows\":[{{\"panes\":[{{\"pane_id\":\"%%1;kill-server\",\"session_id\":\"$1\",\"window_id\":\"@1\",\"presence\":\"managed\",\"state\":\"running\"}}]}}]}}]}}}}'\n\
             exec {BIN} \"$@\"\n"
        ),
    );
    let ssh = format!(
        "{} -F {}",
        slow.display(),
        sshd.dir.join("ssh_config").display()
    );
    let (l, _) =
        local_sees_remote_approval(&r, &sshd, &ssh, &bad.display().to_string(), "remote-s2");
    let log = l.log();
    for reason in ["not_json", "line_too_long", "bad_server_key", "bad_pane_id"] {
        assert!(
            log.lines()
                .any(|x| x.contains("remote_reject") && x.contains(reason)),
            "no remote_reject {reason}:\n{log}"
        );
    }
    assert!(!log.contains("panic"), "{log}");
    let health = l.api("health", serde_json::json!({}));
    assert!(
        health["result"]["remotes"][0]["rejects"]
            .as_u64()
            .unwrap_or(0)
            >= 4,
        "{health}"
    );
}

/// BatchMode: a key the server does not accept fails at once (no prompt), and the message
/// says what to fix; `ls --remote` is the ad-hoc way to ask a host.
#[test]
fn an_auth_failure_never_prompts_and_says_what_to_fix() {
    let r = Server::start("rauth");
    let Some(sshd) = Sshd::for_server(&r) else {
        return;
    };
    let o = sshd.ls_remote(&r, &[&format!("{ALIAS}-badkey")], BIN);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("authentication failed") && out.contains("BatchMode"),
        "{out}"
    );
    // The same host with the right key answers, ad hoc.
    let o = sshd.ls_remote(&r, &[ALIAS, "--json"], BIN);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["remotes"][0]["status"], "live", "{v}");
}

/// Go there: Enter on a remote row in the popup opens a local window running `ssh -t HOST
/// tmux attach` that shows the remote pane; Enter again reuses that window.
#[test]
fn enter_on_a_remote_row_attaches_there_in_one_local_window() {
    let r = remote_server();
    let Some(sshd) = Sshd::for_server(&r) else {
        return;
    };
    let (l, rp) = local_sees_remote_approval(&r, &sshd, &sshd.ssh_command(), BIN, "remote-s3");
    let rwin = r.tmux_out(&["display-message", "-p", "-t", &rp, "#{window_id}"]);
    // The remote session shows another window before we go there.
    r.tmux(&["select-window", "-t", "main:0"]);
    let tagged = |l: &Server| {
        l.tmux_out(&[
            "list-windows",
            "-a",
            "-F",
            "#{window_id} #{@agtmux_remote_target}",
        ])
        .lines()
        .filter(|x| x.contains(ALIAS))
        .map(|x| x.split(' ').next().unwrap_or("").to_string())
        .collect::<Vec<_>>()
    };
    for round in 0..2 {
        let popup = l.new_pane(&format!("{BIN} popup -L {}", l.name));
        let mut screen = String::new();
        assert!(
            wait_until(20, || {
                screen = l.tmux_out(&["capture-pane", "-p", "-t", &popup]);
                screen.lines().any(|x| x.contains('>') && x.contains(&rp))
            }),
            "round {round}: the remote row is not selected:\n{screen}"
        );
        if round == 0 {
            // `y` on a remote row runs `ssh HOST agtmux approve -S SOCKET %N` there; the pane
            // shows no dialog, so the remote agtmux refuses, and its words come back.
            l.tmux(&["send-keys", "-t", &popup, "y"]);
            let want = format!("{ALIAS} {rp}:");
            assert!(
                wait_until(30, || {
                    screen = l.tmux_out(&["capture-pane", "-p", "-t", &popup]);
                    screen.contains(&want)
                }),
                "no answer from the remote approve:\n{screen}"
            );
            assert!(!screen.contains("nothing sent"), "{screen}");
        }
        l.tmux(&["send-keys", "-t", &popup, "Enter"]);
        assert!(
            wait_until(30, || tagged(&l).len() == 1),
            "round {round}: {:?}",
            tagged(&l)
        );
        // The remote tmux has a client attached to that session, showing the pane's window.
        let mut clients = String::new();
        assert!(
            wait_until(30, || {
                clients = r.tmux_out(&[
                    "list-clients",
                    "-F",
                    "#{client_session} #{window_id} #{pane_id} #{client_control_mode}",
                ]);
                clients.lines().any(|x| {
                    x.starts_with("main ")
                        && x.ends_with(" 0")
                        && x.contains(&rwin)
                        && x.contains(&rp)
                })
            }),
            "round {round}: no remote client on {rwin} {rp}: {clients}"
        );
        r.tmux(&["select-window", "-t", "main:0"]);
    }
    assert_eq!(
        tagged(&l).len(),
        1,
        "the second Enter opened another window"
    );
}

/// A remote agtmux that speaks another stream protocol, or one too old for `watch --all`, is
/// named as such, with the version to install.
#[test]
fn another_remote_version_gets_a_clear_message() {
    let r = Server::start("rver");
    let Some(sshd) = Sshd::for_server(&r) else {
        return;
    };
    let newer = write_script(
        &r.dir.join("newer-agtmux"),
        "#!/bin/sh\nprintf '%s\\n' '{\"v\":1,\"event\":\"hello\",\"agtmux\":\"9.0.0\",\"protocol\":7}'\nsleep 30\n",
    );
    let older = write_script(
        &r.dir.join("older-agtmux"),
        "#!/bin/sh\necho \"error: unexpected argument '--all' found\" >&2\nexit 2\n",
    );
    for (cmd, want) in [(&newer, "protocol 7"), (&older, "too old")] {
        let o = sshd.ls_remote(&r, &[ALIAS], cmd);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success(), "{out}");
        assert!(
            out.contains(want) && out.contains("install agtmux"),
            "{out}"
        );
    }
}

/// `ls --all` lists every local tmux server whose daemon answers (the runtime dir holds one
/// API socket per server), the selected one first; no sshd needed.
#[test]
fn ls_all_lists_every_local_server() {
    let mut a = Server::start("lsall-a");
    let mut b = Server::start("lsall-b");
    b.runtime_dir = a.runtime_dir.clone();
    b.state_dir = a.state_dir.clone();
    a.start_daemon();
    b.start_daemon();
    let pa = a.silent_agent("claude");
    let pb = b.silent_agent("codex");
    a.wait_pane(&pa, "@agtmux_presence", "managed", 15);
    b.wait_pane(&pb, "@agtmux_presence", "managed", 15);
    let run = |json: bool| {
        let mut ls = Command::new(BIN);
        ls.args(["ls", "--all", "-L", &b.name]);
        if json {
            ls.arg("--json");
        }
        b.env(&mut ls);
        let o = ls.env_remove("TMUX").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let v: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let servers = v["servers"].as_array().cloned().unwrap_or_default();
    assert_eq!(servers.len(), 2, "{v}");
    let key_b = agtmux::paths::server_key(&b.socket());
    assert_eq!(
        servers[0]["server"],
        key_b.as_str(),
        "the selected server first: {v}"
    );
    let s = v.to_string();
    assert!(
        s.contains(&format!("\"{pa}\"")) && s.contains(&format!("\"{pb}\"")),
        "{v}"
    );
    let table = run(false);
    assert_eq!(table.matches("== server ").count(), 2, "{table}");
    assert!(table.contains(&b.socket().display().to_string()), "{table}");
}

/// Issue 24 × 21: a remote approval goes through the local notifier (here its `command`
/// channel, which appends one line per notice to a file) exactly once; an sshd restart and the
/// reconnect's fresh snapshot notify nothing again, while a new approval afterwards does.
/// Issue 23's fields (background, a usage limit's reset and detail) reach `ls --all --json`.
#[test]
fn a_remote_approval_notifies_once_across_an_sshd_restart_and_issue_23_fields_arrive() {
    let r = remote_server();
    let Some(mut sshd) = Sshd::for_server(&r) else {
        return;
    };
    let mut l = local_server(&sshd, &sshd.ssh_command(), BIN);
    let out = l.dir.join("notices");
    let script = write_script(
        &l.dir.join("record.sh"),
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {0}\nprintf '\\n' >> {0}\n",
            out.display()
        ),
    );
    let template = format!(
        "{} {{host}} {{pane}} {{kind}} {{message}}",
        script.display()
    );
    for (k, v) in [
        ("@agtmux-notify", "command"),
        ("@agtmux-notify-command", template.as_str()),
        ("@agtmux-notify-interval", "0"),
        ("@agtmux-notify-coalesce", "0"),
    ] {
        assert!(l.tmux(&["set", "-g", k, v]).status.success());
    }
    start_local_daemon(&mut l);
    let rp = r.silent_agent("claude");
    // The remote server's first snapshot is in: what follows is news, not first sight.
    assert!(
        wait_until(30, || remotes(&l)[0]["servers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())),
        "{}",
        remotes(&l)
    );
    let notices = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    approval(&r, &rp, "remote-n1");
    assert!(wait_until(30, || !notices().is_empty()), "{}", l.log());
    let n = notices();
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].starts_with(&format!(
            "{ALIAS}|{rp}|approval|agtmux: {ALIAS}: {rp} main:"
        )),
        "{n:?}"
    );
    assert!(n[0].contains("claude needs approval"), "{n:?}");

    // sshd dies and comes back: the reconnect's snapshot still shows the approval.
    sshd.kill();
    l.wait_global("@agtmux_attention", |v| v.contains("✗1"), 60);
    sshd.run();
    l.wait_global(
        "@agtmux_attention",
        |v| v.contains("!1") && !v.contains('✗'),
        60,
    );
    // A new approval after the reconnect is one notice more; the old one gave none again
    // (coalescing is off, so a duplicate would have been a notice of its own before this).
    r.claude(&rp, claude::prompt("remote-n1", "go"));
    assert!(wait_until(30, || remote_pane(&l, &rp)["state"] == "running"));
    approval(&r, &rp, "remote-n1");
    assert!(wait_until(30, || notices().len() >= 2), "{:?}", notices());
    let n = notices();
    assert_eq!(n.len(), 2, "a reconnect notified again: {n:?}");
    assert!(
        n[1].starts_with(&format!("{ALIAS}|{rp}|approval|")),
        "{n:?}"
    );
    let log = l.log();
    assert_eq!(count(&log, "notify_sent"), 2, "{log}");

    // Issue 23's fields, through the stream into `ls --all --json`.
    let ls_pane = || {
        let mut ls = Command::new(BIN);
        ls.args(["ls", "--all", "--json", "-L", &l.name]);
        l.env(&mut ls);
        let o = ls.env_remove("TMUX").output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let mut found = serde_json::Value::Null;
        for s in v["remotes"][0]["servers"].as_array().into_iter().flatten() {
            for se in s["sessions"].as_array().into_iter().flatten() {
                for w in se["windows"].as_array().into_iter().flatten() {
                    for p in w["panes"].as_array().into_iter().flatten() {
                        if p["pane_id"] == rp.as_str() {
                            found = p.clone();
                        }
                    }
                }
            }
        }
        found
    };
    r.claude(&rp, claude::prompt("remote-n1", "bg"));
    let task = json!({"id":"b1","type":"shell","status":"running","description":"sleep 30"});
    r.claude(
        &rp,
        claude::ev("remote-n1", "Stop", json!({"background_tasks": [task]})),
    );
    let mut p = serde_json::Value::Null;
    assert!(
        wait_until(30, || {
            p = ls_pane();
            p["background"] == 1
        }),
        "{p}"
    );
    assert_eq!(p["detail"], "1 background", "{p}");
    // A reset two hours ahead, to the minute, in UTC as `(UTC)` says.
    let reset = (now_s() / 60 + 120) * 60;
    r.claude(&rp, claude::prompt("remote-n1", "go"));
    r.claude(
        &rp,
        json!({"session_id":"remote-n1","hook_event_name":"StopFailure",
        "error":"rate_limit","background_tasks":[],
        "last_assistant_message": session_limit_message(reset)}),
    );
    assert!(
        wait_until(30, || {
            p = ls_pane();
            p["state"] == "limited"
        }),
        "{p}"
    );
    assert_eq!(p["until_ms"], reset * 1000, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("limit until ")),
        "{p}"
    );
}
