//! Who owns what agtmux relies on (issue 16 items 6 and 8), on real tmux servers with real
//! second uids: a runtime dir squatted by another user (`/tmp/agtmux-<uid>` created first, mode
//! 0777, with a fake daemon socket in it) neither stops the daemon nor feeds the CLI fake
//! panes; a deleted lock file does not let a second daemon start; a daemon whose lock path
//! another process holds keeps serving while its socket is its own and leaves once it is not;
//! and a daemon never removes a socket it does not own.
mod support;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const NOBODY: u32 = 65534;

fn as_uid(uid: u32, prog: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(prog);
    c.env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TMUX_TMPDIR")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("AGTMUX_RUNTIME_DIR")
        .env_remove("XDG_STATE_HOME");
    c.stdin(Stdio::null());
    c
}

/// A victim user with a tmux server of its own, its state dir private to it.
struct Victim {
    uid: u32,
    name: String,
    home: PathBuf,
    squat: PathBuf,
    fake: Option<std::process::Child>,
    daemon: Option<std::process::Child>,
}

impl Victim {
    fn new() -> Victim {
        let uid = 40_000 + std::process::id() % 20_000;
        let name = format!("agtmux-test-squat-{}", std::process::id());
        let home = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        let squat = PathBuf::from(format!("/tmp/agtmux-{uid}"));
        let _ = std::fs::remove_dir_all(&squat);
        Victim {
            uid,
            name,
            home,
            squat,
            fake: None,
            daemon: None,
        }
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = as_uid(self.uid, prog);
        c.env("HOME", &self.home)
            .env("AGTMUX_STATE_DIR", self.home.join("state"));
        c
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self
            .cmd("tmux")
            .arg("-L")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/tmux-{}/{}", self.uid, self.name))
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self
            .cmd("tmux")
            .args(["-L", &self.name, "kill-server"])
            .stderr(Stdio::null())
            .status();
        for c in [self.daemon.take(), self.fake.take()].into_iter().flatten() {
            reap_daemon(c);
        }
        let _ = std::fs::remove_dir_all(&self.squat);
        let _ = std::fs::remove_dir_all(&self.home);
        // tmux leaves its socket (and the per-uid dir it made) behind.
        let _ = std::fs::remove_file(self.socket());
        if let Some(d) = self.socket().parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn setpriv_works() -> bool {
    as_uid(NOBODY, "true").status().is_ok_and(|s| s.success())
}

#[test]
fn a_runtime_dir_squatted_by_another_user_is_refused_and_the_cli_trusts_only_its_own_uid() {
    if !setpriv_works() {
        eprintln!("skipped: setpriv cannot switch uid here");
        return;
    }
    let mut v = Victim::new();
    // The attacker is first: /tmp/agtmux-<victim uid>, mode 0777, with a fake daemon in it.
    run_ok(as_uid(NOBODY, "mkdir").args(["-m", "0777"]).arg(&v.squat));
    run_ok(v.cmd("tmux").args(["-L", &v.name]).args(MAIN_SESSION));
    let key = agtmux::paths::server_key(&v.socket());
    let fake_sock = v.squat.join(format!("{key}.sock"));
    let fake = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 5) or die "$!"; chmod 0777, $ARGV[0]; while (my $c = $s->accept) { while (my $l = <$c>) { print $c qq({"v":1,"id":1,"result":{"panes":[{"pane_id":"%0","provider":"claude","activity":"waiting_approval","title":"FAKE"}]}}\n); } }"#;
    v.fake = Some(
        as_uid(NOBODY, "perl")
            .arg("-e")
            .arg(fake)
            .arg(&fake_sock)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(10, || fake_sock.exists()),
        "fake daemon did not start"
    );

    // The victim's daemon starts anyway, in a safe place, and says why.
    v.daemon = Some(
        v.cmd(BIN)
            .args(["daemon", "-L", &v.name])
            .env("RUST_LOG", "info")
            .env("AGTMUX_CODEX_SOCK", v.home.join("codex.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ok = wait_until(20, || {
        !v.tmux(&["show-options", "-gqv", "@agtmux_daemon"])
            .is_empty()
    });
    let log_path = v.home.join("state").join(&key).join("daemon.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(ok, "the victim's daemon did not start\n{}", log());
    assert!(log().contains("runtime_dir_fallback"), "{}", log());
    let fallback_sock = v.home.join("state/run").join(format!("{key}.sock"));
    assert!(wait_until(10, || fallback_sock.exists()), "{}", log());

    // The victim's CLI finds its own daemon, never the fake one.
    let out = v.cmd(BIN).args(["ls", "-L", &v.name]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("FAKE"), "{text}");
    // Pointed at the squatted dir on purpose, it refuses the answer of another uid.
    let out = v
        .cmd(BIN)
        .args(["ls", "-L", &v.name])
        .env("AGTMUX_RUNTIME_DIR", &v.squat)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("FAKE"), "{text}");
    assert!(text.contains(&format!("uid {NOBODY}")), "{text}");
    // And doctor names the problem.
    let out = v.cmd(BIN).args(["doctor", "-L", &v.name]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("owned by uid {NOBODY}")), "{text}");
}

fn api_socket(s: &Server) -> PathBuf {
    s.runtime_dir
        .join(format!("{}.sock", agtmux::paths::server_key(&s.socket())))
}

fn lock_file(s: &Server) -> PathBuf {
    s.runtime_dir
        .join(format!("{}.lock", agtmux::paths::server_key(&s.socket())))
}

fn health_pid(sock: &Path) -> Option<u64> {
    let mut c = UnixStream::connect(sock).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.write_all(b"{\"v\":1,\"id\":1,\"method\":\"health\",\"params\":{}}\n")
        .ok()?;
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).ok()?;
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    v["result"]["daemon_pid"].as_u64()
}

/// A server with a daemon that answers `health`, and the daemon's pid.
fn serving_daemon(tag: &str) -> (Server, u64) {
    let mut s = Server::start(tag);
    s.start_daemon();
    let pid = s.daemon.as_ref().unwrap().id() as u64;
    assert_eq!(health_pid(&api_socket(&s)), Some(pid));
    (s, pid)
}

#[test]
fn a_deleted_lock_file_lets_no_second_daemon_start_and_is_put_back() {
    let (s, first) = serving_daemon("lockdel");
    std::fs::remove_file(lock_file(&s)).unwrap();
    let mut second = s.daemon_cmd().spawn().unwrap();
    let exited = wait_until(20, || second.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = second.kill();
    }
    let _ = second.wait();
    assert!(
        exited,
        "a second daemon runs beside the first\n{}",
        s.log_tail()
    );
    // The first still serves, and its lock is at the path again.
    assert_eq!(health_pid(&api_socket(&s)), Some(first));
    assert!(
        wait_until(10, || lock_file(&s).exists()
            && std::fs::read_to_string(lock_file(&s))
                .unwrap_or_default()
                .trim()
                == first.to_string()),
        "{}",
        s.log_tail()
    );
    // With the lock back, a third one does not start either.
    let status = s.daemon_cmd().status().unwrap();
    assert!(status.success());
    assert_eq!(health_pid(&api_socket(&s)), Some(first));
}

/// Takes the lock path away from the running daemon: a new lock file, flock-ed by this test
/// process (retried if the daemon put its own back in between).
fn take_lock_path(s: &Server) -> std::fs::File {
    for _ in 0..50 {
        let _ = std::fs::remove_file(lock_file(s));
        let f = std::fs::File::create(lock_file(s)).unwrap();
        if f.try_lock().is_ok() {
            return f;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("could not take the lock path\n{}", s.log_tail());
}

#[test]
fn a_daemon_whose_lock_another_process_holds_serves_while_its_socket_is_its_own_then_leaves() {
    let (mut s, first) = serving_daemon("locklost");
    let _held = take_lock_path(&s);
    // Its API socket is still the one at the path: nobody has taken the server over, so it
    // keeps serving (and says so in its log).
    s.wait_log("lock_contended reason=our_api_socket_still_serves", 30);
    assert_eq!(health_pid(&api_socket(&s)), Some(first));
    // Now another process serves the socket path too: the server is no longer ours, so the
    // daemon leaves, with an error, and leaves the other's socket and lock where they are.
    std::fs::remove_file(api_socket(&s)).unwrap();
    let _other = UnixListener::bind(api_socket(&s)).unwrap();
    let mut child = s.daemon.take().unwrap();
    let exited = wait_until(30, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(
        exited,
        "the daemon stayed after losing its server\n{}",
        s.log_tail()
    );
    assert_eq!(status.code(), Some(1), "{}", s.log_tail());
    assert!(
        s.log().contains("daemon_exit reason=lock_lost"),
        "{}",
        s.log_tail()
    );
    assert!(api_socket(&s).exists() && lock_file(&s).exists());
}

#[test]
fn a_daemon_that_exits_never_removes_a_socket_it_does_not_own() {
    let mut s = Server::start("sockown");
    s.start_daemon();
    let sock = api_socket(&s);
    // Another daemon's socket now sits at the path (as after a takeover).
    std::fs::remove_file(&sock).unwrap();
    let other = UnixListener::bind(&sock).unwrap();
    let pid = s.daemon.as_ref().unwrap().id();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let mut child = s.daemon.take().unwrap();
    assert!(wait_until(20, || child.try_wait().ok().flatten().is_some()));
    let _ = child.wait();
    assert!(
        std::fs::read_to_string(s.server_dir().join("daemon.log"))
            .unwrap_or_default()
            .contains("daemon_stop"),
        "{}",
        s.log_tail()
    );
    assert!(
        sock.exists(),
        "the exiting daemon removed a socket it did not own"
    );
    assert!(UnixStream::connect(&sock).is_ok());
    drop(other);
}
