//! C-004: the Codex app-server observer against the project's test app-server (replaying the
//! recorded codex-cli 0.169 streams) and against hand-made misbehaving servers.
use agtmux::core::event::{NormalizedEvent, Signal};
use agtmux::core::types::{Activity, Health, Millis};
use agtmux::sources::codex_appserver::CodexObserver;
use agtmux::sources::codex_testserver::{Recording, TestServer, load_recording};
use agtmux::sources::ws::{self, Decoder, Opcode};
use agtmux::sources::{Pulled, Source};
use mio::{Events, Interest, Poll, Token};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
use support::scratch_dir;

const SUBSCRIBED: &str = "fixtures/codex/appserver/codex_observer_subscribed.jsonl";
const MAIN: &str = "fixtures/codex/appserver/codex_main.jsonl";
const TUI_THREAD: &str = "01a213de-bb84-7543-91e7-db516a36dc9a";
const MAIN_THREAD: &str = "01a213dd-7d3f-70a0-8c66-8d46bfaa79a4";

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

fn sock_path(tag: &str) -> PathBuf {
    scratch_dir(&format!("cx-{tag}")).join("app-server-control.sock")
}

struct Loop {
    poll: Poll,
    events: Events,
}

impl Loop {
    fn new() -> Self {
        Loop {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(64),
        }
    }
    /// Runs the observer like the daemon does, until `done` or the wall-clock limit.
    fn drive(
        &mut self,
        obs: &mut CodexObserver,
        limit: Duration,
        mut done: impl FnMut(&mut CodexObserver) -> bool,
    ) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if obs.take_new_stream()
                && let Some(s) = obs.stream_mut()
            {
                self.poll
                    .registry()
                    .register(s, Token(0), Interest::READABLE | Interest::WRITABLE)
                    .unwrap();
            }
            let now = now_ms();
            let wait = obs
                .next_deadline()
                .map(|d| (d - now).clamp(0, 20))
                .unwrap_or(20);
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(wait as u64)))
                .unwrap();
            let now = now_ms();
            for ev in self.events.iter() {
                if ev.is_readable() || ev.is_read_closed() {
                    obs.on_readable(now);
                }
                if ev.is_writable() {
                    obs.on_writable(now);
                }
            }
            obs.tick(now_ms());
            if done(obs) {
                return true;
            }
        }
        false
    }
}

fn drain(obs: &mut CodexObserver, cursor: &mut String, out: &mut Vec<NormalizedEvent>) -> usize {
    let mut rejected = 0;
    loop {
        let b = obs.pull(cursor, 100);
        if b.items.is_empty() {
            return rejected;
        }
        *cursor = b.next_cursor;
        for it in b.items {
            match it {
                Pulled::Event { event, .. } => out.push(event),
                Pulled::Rejected { .. } => rejected += 1,
            }
        }
    }
}

/// A test app-server at `sock` replaying `rec` at `speed`, and an observer connected to it,
/// driven for up to 30 s until `done` holds for the events pulled so far. Returns the server,
/// the observer, the events, and whether `done` held.
fn replay_until(
    sock: &Path,
    rec: Recording,
    speed: f64,
    done: impl Fn(&[NormalizedEvent]) -> bool,
) -> (TestServer, CodexObserver, Vec<NormalizedEvent>, bool) {
    let server = TestServer::spawn(sock, rec, speed).unwrap();
    let mut obs = CodexObserver::connect(sock, now_ms()).unwrap();
    let (mut cursor, mut evs) = (String::new(), Vec::new());
    let ok = Loop::new().drive(&mut obs, Duration::from_secs(30), |o| {
        drain(o, &mut cursor, &mut evs);
        done(&evs)
    });
    (server, obs, evs, ok)
}

fn activities(evs: &[NormalizedEvent], thread: &str) -> Vec<Activity> {
    let mut v: Vec<Activity> = Vec::new();
    for e in evs
        .iter()
        .filter(|e| e.session_key.as_deref() == Some(thread))
    {
        if let Signal::Activity(a) = e.signal
            && v.last() != Some(&a)
        {
            v.push(a);
        }
    }
    v
}

/// `want` appears in `got` in order (not necessarily contiguous).
fn in_order(got: &[Activity], want: &[Activity]) -> bool {
    let mut it = got.iter();
    want.iter().all(|w| it.any(|g| g == w))
}

#[test]
fn subscribed_stream_states_follow_the_recording_including_approval() {
    let sock = sock_path("sub");
    let rec = load_recording(Path::new(SUBSCRIBED)).unwrap();
    let total = rec.replay.len();
    assert!(total > 100);
    let (server, obs, evs, finished) = replay_until(&sock, rec, 40.0, |evs| {
        evs.iter()
            .any(|e| e.name == "turn/completed" && e.detail.as_deref() == Some("interrupted"))
    });
    assert!(
        finished,
        "replay did not reach the interrupted turn; problems: {:?}",
        obs.problems()
    );
    assert_eq!(obs.health(), Health::Healthy);

    let acts = activities(&evs, TUI_THREAD);
    use Activity::*;
    assert!(
        in_order(
            &acts,
            &[
                Running,
                Idle,
                Running,
                Idle,
                Running,
                WaitingApproval,
                Running,
                Idle,
                Running,
                Error,
                Running,
                Idle
            ]
        ),
        "activity sequence {acts:?}"
    );
    // The approval request itself was mapped, and never answered.
    let req = evs
        .iter()
        .find(|e| e.name == "item/commandExecution/requestApproval")
        .expect("approval request event");
    assert_eq!(req.signal, Signal::Activity(WaitingApproval));
    assert_eq!(
        req.turn_id.as_deref(),
        Some("01a213de-ebc1-7bf2-b7a0-0db6e31c3544")
    );
    let sent = server.client_messages();
    assert!(
        sent.iter()
            .all(|m| m.get("result").is_none() && m.get("error").is_none()),
        "observer answered a server request: {sent:?}"
    );
    let init = &sent[0];
    assert_eq!(init["method"], "initialize");
    assert_eq!(init["params"]["clientInfo"]["name"], "agtmux");
    assert!(
        init["params"]["capabilities"]["optOutNotificationMethods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "item/agentMessage/delta")
    );
    assert_eq!(sent[1]["method"], "initialized");
    assert!(sent.iter().any(|m| m["method"] == "thread/resume"));
    // Title-generation threads never produce an activity.
    let title_threads: Vec<_> = obs
        .threads()
        .filter(|t| t.ephemeral)
        .map(|t| t.thread_id.clone())
        .collect();
    assert!(!title_threads.is_empty());
    for t in &title_threads {
        assert!(
            activities(&evs, t).is_empty(),
            "title thread {t} produced activities"
        );
    }
    // Facts for correlation.
    let f = obs.thread(TUI_THREAD).unwrap();
    assert_eq!(f.cwd.as_deref(), Some("/home/dev/proj-codex"));
    assert_eq!(f.last_prompt.as_deref(), Some("slow30 please"));
    assert!(evs.iter().all(|e| e.pane_id.is_none()));
    // Event ids are unique.
    let mut ids: Vec<_> = evs.iter().map(|e| e.event_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), evs.len());
    server.stop().unwrap();
}

#[test]
fn unsubscribed_stream_still_tracks_status_for_every_thread() {
    let sock = sock_path("main");
    let rec = load_recording(Path::new(MAIN)).unwrap();
    let (server, obs, evs, ok) = replay_until(&sock, rec, 50.0, |evs| {
        // The last status change of the recording: the second TUI thread goes idle.
        evs.iter()
            .filter(|e| e.session_key.as_deref() == Some(TUI_THREAD))
            .count()
            >= 12
            && activities(evs, TUI_THREAD).last() == Some(&Activity::Idle)
            && evs.iter().any(|e| e.name == "thread/closed")
    });
    assert!(ok, "problems: {:?}", obs.problems());
    use Activity::*;
    let acts = activities(&evs, MAIN_THREAD);
    assert!(
        in_order(
            &acts,
            &[
                Running,
                WaitingApproval,
                Running,
                Idle,
                Running,
                WaitingApproval,
                Running,
                Idle,
                Running,
                Error
            ]
        ),
        "{acts:?}"
    );
    // thread/closed in this recording is only for title threads: Ignore, never SessionEnd.
    assert!(
        evs.iter()
            .filter(|e| e.name == "thread/closed")
            .all(|e| e.signal == Signal::Ignore)
    );
    server.stop().unwrap();
}

#[test]
fn observer_reconnects_when_the_server_restarts() {
    let sock = sock_path("restart");
    let rec = load_recording(Path::new(MAIN)).unwrap();
    let server = TestServer::spawn(&sock, rec.clone(), 1000.0).unwrap();
    let mut obs = CodexObserver::connect(&sock, now_ms()).unwrap();
    let mut lp = Loop::new();
    assert!(lp.drive(&mut obs, Duration::from_secs(10), |o| o.is_connected()));
    server.stop().unwrap();
    assert!(
        lp.drive(&mut obs, Duration::from_secs(10), |o| o.health()
            == Health::Down),
        "server stop not noticed"
    );
    assert!(
        obs.problems()
            .iter()
            .any(|p| p.contains("connection reset"))
    );
    let server = TestServer::spawn(&sock, rec, 1000.0).unwrap();
    assert!(
        lp.drive(&mut obs, Duration::from_secs(20), |o| o.is_connected()),
        "no reconnect: {:?}",
        obs.problems()
    );
    assert_eq!(obs.health(), Health::Healthy);
    server.stop().unwrap();
}

/// A raw misbehaving server: completes the upgrade, answers initialize, then runs `script`.
fn raw_server(
    sock: &Path,
    script: impl FnOnce(&mut std::os::unix::net::UnixStream) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let _ = std::fs::remove_file(sock);
    let l = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let rest = loop {
            let n = s.read(&mut buf).unwrap();
            head.extend_from_slice(&buf[..n]);
            if let Some((n, key)) = ws::parse_handshake_request(&head).unwrap() {
                s.write_all(&ws::server_handshake_response(&key)).unwrap();
                break head[n..].to_vec();
            }
        };
        let mut dec = Decoder::server();
        dec.feed(&rest);
        loop {
            if let Some(ws::WsMessage::Text(t)) = dec.next_message().unwrap() {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["method"] == "initialize" {
                    let r = serde_json::json!({"id": v["id"], "result": {}});
                    s.write_all(&ws::encode_frame(
                        true,
                        Opcode::Text,
                        r.to_string().as_bytes(),
                        None,
                    ))
                    .unwrap();
                    break;
                }
                continue;
            }
            let n = s.read(&mut buf).unwrap();
            dec.feed(&buf[..n]);
        }
        script(&mut s);
        // Keep the socket open a little so the observer sees the data before EOF.
        std::thread::sleep(Duration::from_millis(300));
    })
}

fn text_frame(s: &str) -> Vec<u8> {
    ws::encode_frame(true, Opcode::Text, s.as_bytes(), None)
}

#[test]
fn malformed_json_resets_with_a_reason_and_no_panic() {
    let sock = sock_path("badjson");
    let h = raw_server(&sock, |s| {
        s.write_all(&text_frame(r#"{"method":"thread/status/changed","params":{"threadId":"t1","status":{"type":"active","activeFlags":[]}},"emittedAtMs":1}"#)).unwrap();
        s.write_all(&text_frame("{not json")).unwrap();
    });
    let mut obs = CodexObserver::connect(&sock, now_ms()).unwrap();
    let mut lp = Loop::new();
    let (mut cursor, mut evs) = (String::new(), Vec::new());
    let mut rejected = 0;
    assert!(lp.drive(&mut obs, Duration::from_secs(10), |o| {
        rejected += drain(o, &mut cursor, &mut evs);
        o.problems().iter().any(|p| p.contains("malformed JSON"))
    }));
    rejected += drain(&mut obs, &mut cursor, &mut evs);
    assert_eq!(rejected, 1);
    assert_eq!(activities(&evs, "t1"), vec![Activity::Running]);
    assert_eq!(obs.health(), Health::Down);
    assert!(obs.next_deadline().is_some(), "a reconnect is scheduled");
    h.join().unwrap();
}

#[test]
fn bad_frames_and_oversized_messages_reset_the_connection() {
    for (tag, bytes, want) in [
        ("rsv", vec![0xC1u8, 0x01, b'x'], "reserved bits"),
        ("masked", vec![0x81, 0x81, 1, 2, 3, 4, b'x'], "masked"),
        ("big", text_frame(&"x".repeat(5000)), "oversized"),
    ] {
        let sock = sock_path(tag);
        let h = raw_server(&sock, move |s| s.write_all(&bytes).unwrap());
        let mut obs = CodexObserver::new(&sock, now_ms());
        obs.set_max_message(4096);
        let mut lp = Loop::new();
        let ok = lp.drive(&mut obs, Duration::from_secs(10), |o| {
            o.problems().iter().any(|p| p.contains(want))
        });
        assert!(ok, "{tag}: problems {:?}", obs.problems());
        assert_ne!(obs.health(), Health::Healthy);
        h.join().unwrap();
    }
}

#[test]
fn unknown_methods_become_ignore_events() {
    let sock = sock_path("unknown");
    let h = raw_server(&sock, |s| {
        for _ in 0..3 {
            s.write_all(&text_frame(
                r#"{"method":"thread/brandNew","params":{"threadId":"t9"},"emittedAtMs":5}"#,
            ))
            .unwrap();
        }
        s.write_all(&text_frame(
            r#"{"method":"item/agentMessage/delta","params":{"threadId":"t9","delta":"x"}}"#,
        ))
        .unwrap();
        s.write_all(&text_frame(r#"{"method":"thread/status/changed","params":{"threadId":"t9","status":{"type":"idle"}},"emittedAtMs":6}"#)).unwrap();
    });
    let mut obs = CodexObserver::connect(&sock, now_ms()).unwrap();
    let mut lp = Loop::new();
    let (mut cursor, mut evs) = (String::new(), Vec::new());
    assert!(lp.drive(&mut obs, Duration::from_secs(10), |o| {
        drain(o, &mut cursor, &mut evs);
        evs.iter().any(|e| e.name == "thread/status/changed")
    }));
    let unknown: Vec<_> = evs.iter().filter(|e| e.name == "thread/brandNew").collect();
    assert_eq!(unknown.len(), 1, "unknown methods are reported once");
    assert_eq!(unknown[0].signal, Signal::Ignore);
    assert!(evs.iter().all(|e| !e.name.ends_with("delta")));
    assert!(obs.problems().iter().any(|p| p.contains("thread/brandNew")));
    h.join().unwrap();
}

#[test]
fn a_server_that_stalls_mid_frame_is_not_a_stuck_loop() {
    let sock = sock_path("stall");
    // The server keeps the half-sent frame hanging until the test is done with it (not for a
    // fixed time a slow machine could outlast).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let h = raw_server(&sock, move |s| {
        let f = text_frame(
            r#"{"method":"thread/status/changed","params":{"threadId":"t1","status":{"type":"idle"}}}"#,
        );
        s.write_all(&f[..10]).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(120));
    });
    let mut obs = CodexObserver::connect(&sock, now_ms()).unwrap();
    let mut lp = Loop::new();
    // Initialized, then mid-frame: stale.
    assert!(
        lp.drive(&mut obs, Duration::from_secs(20), |o| o.is_connected()
            && o.health() == Health::Stale),
        "partial frame marks the source stale: {:?} {:?}",
        obs.health(),
        obs.problems()
    );
    // The loop keeps turning (poll timeouts) while the frame is incomplete.
    let mut turns = 0;
    lp.drive(&mut obs, Duration::from_millis(400), |_| {
        turns += 1;
        false
    });
    assert!(turns > 3);
    assert_eq!(obs.health(), Health::Stale, "still stale, not stuck");
    // The stall timer resets the connection (time is an input, so no waiting).
    obs.tick(now_ms() + 31_000);
    assert_eq!(obs.health(), Health::Down);
    assert!(
        obs.problems()
            .iter()
            .any(|p| p.contains("stalled mid-frame"))
    );
    done_tx.send(()).unwrap();
    h.join().unwrap();
}
