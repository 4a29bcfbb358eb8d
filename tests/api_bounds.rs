//! API resource bounds on a real daemon (issue 16 item 7): many same-uid clients pipelining
//! requests without reading keep the daemon's buffers bounded and `ls` answering, and a
//! daemon short of file descriptors keeps its listener alive.
mod support;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

fn rss_kb(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `n` clients, each pipelining `per` metrics requests and never reading.
fn flood(s: &Server, n: usize, per: usize) -> Vec<UnixStream> {
    let mut req = String::new();
    for i in 0..per {
        req.push_str(&format!(
            "{{\"v\":1,\"id\":{i},\"method\":\"metrics\",\"params\":{{}}}}\n"
        ));
    }
    let mut v = Vec::new();
    for _ in 0..n {
        let Ok(mut c) = UnixStream::connect(s.api_socket()) else {
            continue;
        };
        c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(req.as_bytes());
        v.push(c);
    }
    v
}

/// `agtmux ls` answers (exits 0); fails the test with the daemon's log otherwise.
fn ls_answers(s: &Server) {
    let out = s.agtmux(&["ls"]);
    assert!(
        out.status.success(),
        "ls: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_tail()
    );
}

#[test]
fn clients_that_pipeline_without_reading_stay_bounded_and_ls_answers() {
    let mut s = Server::start("apiflood");
    s.start_daemon();
    let pid = s.daemon.as_ref().unwrap().id();
    let before = rss_kb(pid);
    let one = {
        let h = s.health();
        h.to_string().len()
    };
    let clients = flood(&s, 200, 300);
    assert_eq!(clients.len(), 200);
    // `ls` answers while the flood is being served.
    let t0 = std::time::Instant::now();
    ls_answers(&s);
    eprintln!("ls during the flood: {:?}", t0.elapsed());
    // Positive sign that the flood was served as far as it goes: most clients are paused
    // (their unread answers reached the mark; the rest of their requests wait in the kernel).
    let mut last = serde_json::Value::Null;
    assert!(
        wait_until(180, || {
            last = s.health();
            last["result"]["api"]["paused_clients"]
                .as_u64()
                .unwrap_or(0)
                >= 100
        }),
        "{last}\n{}",
        s.log_tail()
    );
    ls_answers(&s);
    let h = s.health();
    let api = &h["result"]["api"];
    let per_client = api["max_client_out_bytes"].as_u64().unwrap();
    let total = api["buffered_out_bytes"].as_u64().unwrap();
    let rss = rss_kb(pid);
    eprintln!(
        "api flood: health answer {one} B, max per client {per_client} B, total buffered {total} B, rss {before} kB -> {rss} kB, api {api}"
    );
    // Per client: the pause mark plus one answer at most.
    assert!(per_client <= 256 * 1024 + 64 * 1024, "{api}");
    assert!(total <= 200 * (256 + 64) * 1024, "{api}");
    // Without the bound the 60 000 answers pile up in memory (hundreds of MB).
    assert!(rss < before + 120 * 1024, "rss {before} kB -> {rss} kB");
    drop(clients);
    // The freed buffers leave, and the daemon still serves.
    assert!(wait_until(30, || s.health()["result"]["api"]["clients"]
        .as_u64()
        == Some(1)));
}

#[test]
fn a_daemon_short_of_file_descriptors_keeps_accepting() {
    let mut s = Server::start("apifd");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("ulimit -n 256 && exec \"$@\"").arg("sh");
    let d = s.daemon_cmd();
    cmd.arg(d.get_program());
    cmd.args(d.get_args());
    for (k, v) in d.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    s.daemon = Some(cmd.spawn().unwrap());
    s.wait_global("@agtmux_daemon", |v| !v.is_empty(), 15);
    // More clients than fds: each sends a request and never reads.
    let clients = flood(&s, 400, 20);
    let h = s.health();
    let api = &h["result"]["api"];
    eprintln!("fd flood: {api}");
    assert!(api["max_clients"].as_u64().unwrap() <= 256, "{api}");
    assert!(api["clients"].as_u64().unwrap() <= 256, "{api}");
    ls_answers(&s);
    drop(clients);
    ls_answers(&s);
}
