//! C-007 `agtmux-source-file`: a file-observation source. It watches the transcript of every
//! live Claude session (the `transcript_path` its hooks name) and reports what no hook does:
//! Claude fires no hook when the user presses Esc to interrupt a turn or to deny a permission,
//! but it writes a line to the transcript at once:
//!
//! ```text
//! {"type":"user","isSidechain":false,"message":{"role":"user","content":[{"type":"text",
//!  "text":"[Request interrupted by user]"}]},"uuid":"…","timestamp":"2026-12-03T12:53:36.059Z",
//!  "sessionId":"…",…}
//! ```
//!
//! (`[Request interrupted by user for tool use]` for an Esc deny; seen with Claude Code
//! 2.1.197). Such a line becomes an idle event of source `claude_transcript`, which the resolver
//! lets supersede the hooks' running/waiting state when it is newer (`turn_end` in the
//! capability table): the pane is idle, deterministically, within milliseconds instead of
//! after the screen's idle window.
//!
//! Codex (0.169.0) writes its session's rollout (the `transcript_path` its hooks name) the same
//! way. When a turn fails on an API error, Codex fires no hook, and without an app-server to
//! read, only the rollout says so:
//!
//! ```text
//! {"timestamp":"…","type":"event_msg","payload":{"type":"task_complete","turn_id":"…",
//!  "last_agent_message":null,"error":{"message":"…","codex_error_info":"other"},…}}
//! ```
//!
//! Such a line becomes an error event of source `codex_rollout`, and a `turn_aborted` with reason
//! `interrupted` (an Esc, which the `Interrupt` hook also reports) an idle one. A turn that ends
//! normally is left to the hooks and the app-server.
//!
//! Rules, so that it can only ever say what the file says:
//! - Only lines appended after the session was first seen count (a resumed session's old
//!   interrupts are history). A line must be a whole JSON object of `type:"user"`, not a
//!   sidechain (sub-agent), whose content is an *array* of text parts the first of which starts
//!   with the marker: a prompt the user typed is a plain string, so typing the marker text
//!   triggers nothing. Its `sessionId` must be the watched session's.
//! - The event time is the line's own `timestamp`, so a line read late (after the next prompt's
//!   hook) is older than that hook's state and changes nothing.
//! - Its events never link a pane to a session (`links: false`): they apply only while the
//!   pane still holds that session.
//! - Event ids come from the line's `uuid` (Claude) or its turn id (Codex): a re-read gives
//!   the same id (dedup).
//! - A Codex rollout is followed only when it belongs to the session: its file name or its
//!   first line (`session_meta`) names the session id.
//!
//! Cost: one file watch (`sys::watch`: inotify on Linux, kqueue on macOS, a stat poll once a
//! second for a file the kernel will not watch) per live Claude or hook-reporting Codex session
//! (bounded, least recently used dropped first);
//! a file is read only when it grew, from the last offset to its end, in chunks of
//! [`MAX_READ`] (more than 64 MiB at once is skipped). An idle session writes nothing, so it
//! costs nothing.
use super::seq_queue::SeqQueue;
use super::{Batch, Pulled, Source};
use crate::core::event::{NormalizedEvent, Signal};
use crate::core::lru::least_recent;
use crate::core::time::parse_iso_ms;
use crate::core::types::{Activity, Health, Millis, PaneId, Provider, SourceKind};
use crate::sys::watch::{Change, Kind, WatchId, Watcher};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Cursor id of this source in `cursor_state_v2`.
pub(crate) const CURSOR: &str = "claude_transcript";
/// What an interrupt line starts its text with.
pub(crate) const MARKER: &str = "[Request interrupted by user";
/// The first line of a rollout read at most, to check whose it is.
const MAX_META: u64 = 1 << 20;
/// Sessions watched at most.
pub(crate) const MAX_WATCHES: usize = 256;
/// Bytes read from a file at a time; a wake-up reads chunks up to the end of the file.
pub(crate) const MAX_READ: u64 = 1 << 20;
/// More than this appended between two wake-ups is not read: the watch jumps to the end.
const MAX_CATCH_UP: u64 = 64 << 20;
/// A longer line (a huge tool result) is skipped unparsed.
const MAX_LINE: usize = 1 << 20;
/// Raw bytes kept with an event.
const MAX_RAW: usize = 4096;
/// Items buffered for the gateway at most.
const MAX_QUEUE: usize = 4096;

/// One interrupt line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupt {
    pub uuid: String,
    pub session: String,
    pub ts: Option<Millis>,
    /// An Esc on a permission dialog (`… for tool use`), not mid-turn.
    pub(crate) tool_use: bool,
}

/// How a Codex turn ended, as its rollout records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutEnd {
    pub turn_id: String,
    pub ts: Option<Millis>,
    /// `task_complete` with an `error` (an API error); otherwise an Esc (`turn_aborted`).
    pub failed: bool,
    /// The error is the account's usage limit (`codex_error_info: "usage_limit_exceeded"`),
    /// with its message (`You've hit your usage limit. … try again at 7:13 PM.`).
    pub usage_limit: Option<String>,
}

/// Is this rollout line Codex's record of a failed or interrupted turn? Pure.
pub fn parse_rollout_end(line: &[u8]) -> Option<RolloutEnd> {
    if !contains(line, b"\"task_complete\"") && !contains(line, b"\"turn_aborted\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    if v.get("type")?.as_str()? != "event_msg" {
        return None;
    }
    let p = v.get("payload")?;
    let usage_limit = (p
        .pointer("/error/codex_error_info")
        .and_then(|x| x.as_str())
        == Some("usage_limit_exceeded"))
    .then(|| {
        p.pointer("/error/message")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .chars()
            .take(400)
            .collect::<String>()
    });
    let failed = match p.get("type")?.as_str()? {
        "task_complete" => {
            if !p.get("error").is_some_and(|e| e.is_object()) {
                return None;
            }
            true
        }
        "turn_aborted" if p.get("reason").and_then(|r| r.as_str()) == Some("interrupted") => false,
        _ => return None,
    };
    Some(RolloutEnd {
        turn_id: p
            .get("turn_id")?
            .as_str()
            .filter(|t| !t.is_empty())?
            .to_string(),
        ts: v
            .get("timestamp")
            .and_then(|t| t.as_str())
            .and_then(parse_iso_ms),
        failed,
        usage_limit,
    })
}

/// Does the rollout at `path` belong to `session`? Its file name
/// (`rollout-<time>-<session>.jsonl`) or its first line (`session_meta`) says so.
fn rollout_belongs(path: &Path, session: &str) -> bool {
    if path
        .file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with(session))
    {
        return true;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = Vec::new();
    let mut r = io::BufReader::new(f.take(MAX_META));
    if io::BufRead::read_until(&mut r, b'\n', &mut first).is_err() {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(&first)
        .ok()
        .and_then(|v| {
            let p = v.get("payload")?;
            Some(
                p.get("id").and_then(|x| x.as_str()) == Some(session)
                    || p.get("session_id").and_then(|x| x.as_str()) == Some(session),
            )
        })
        .unwrap_or(false)
}

/// A line that says a turn ended.
enum Found {
    Claude(Interrupt),
    Codex(RolloutEnd),
}

/// Is this transcript line Claude's record of an interrupted turn? Pure.
pub fn parse_interrupt(line: &[u8]) -> Option<Interrupt> {
    // Cheap first: most lines (tool output, assistant text) are not even candidates.
    if !contains(line, MARKER.as_bytes()) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    if v.get("type")?.as_str()? != "user"
        || v.get("isSidechain").and_then(|x| x.as_bool()) == Some(true)
    {
        return None;
    }
    let parts = v.pointer("/message/content")?.as_array()?;
    let first = parts.first()?;
    let all_text = parts
        .iter()
        .all(|p| p.get("type").and_then(|t| t.as_str()) == Some("text"));
    let text = first.get("text")?.as_str()?;
    if !all_text || !text.starts_with(MARKER) {
        return None;
    }
    Some(Interrupt {
        uuid: v.get("uuid")?.as_str()?.to_string(),
        session: v.get("sessionId")?.as_str()?.to_string(),
        ts: v
            .get("timestamp")
            .and_then(|t| t.as_str())
            .and_then(parse_iso_ms),
        tool_use: text.contains("for tool use"),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Watch {
    provider: Provider,
    pane: PaneId,
    path: PathBuf,
    id: WatchId,
    offset: u64,
    partial: Vec<u8>,
    /// The partial line is too long: skip to its end.
    skipping: bool,
    used: u64,
}

/// The C-007 source: a file watch on live sessions' transcripts, events behind `Source::pull`.
pub struct TranscriptWatch {
    watcher: Watcher,
    watches: HashMap<String, Watch>,
    by_id: HashMap<WatchId, String>,
    queue: SeqQueue,
    clock: u64,
    /// Lines that looked like interrupts but named another session (counted, logged once).
    pub(crate) foreign_lines: u64,
    /// Tests only: a line holding this text panics (see [`test_panic_marker`]).
    panic_on: Option<Vec<u8>>,
}

/// `AGTMUX_TEST_PANIC_ON=<marker>` (at least 8 bytes), read once when the source starts: a
/// transcript line holding the marker panics, so tests can show that a panic in a source is
/// logged with its location and the daemon comes back. Only whoever starts the daemon sets its
/// environment; without it no input can reach this. A release build ignores it.
fn test_panic_marker() -> Option<Vec<u8>> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("AGTMUX_TEST_PANIC_ON")
        .ok()
        .filter(|m| m.len() >= 8)
        .map(String::into_bytes)
}

impl Source for TranscriptWatch {
    fn kind(&self) -> SourceKind {
        SourceKind::ClaudeTranscript
    }

    /// Items after the sequence number `after`; acknowledged ones leave the buffer.
    fn pull(&mut self, after: &str, max: usize) -> Batch {
        self.queue.pull(after, max)
    }
}

impl TranscriptWatch {
    /// Sequence numbers start at `now * 1000`, so cursors stay monotonic across restarts.
    pub fn new(now: Millis) -> Self {
        Self::with_watcher(now, Watcher::new("transcripts"))
    }

    fn with_watcher(now: Millis, watcher: Watcher) -> Self {
        TranscriptWatch {
            watcher,
            watches: HashMap::new(),
            by_id: HashMap::new(),
            // The first item is numbered `now * 1000 + 1`.
            queue: SeqQueue::new((now.max(1) as u64).saturating_mul(1000) + 1, MAX_QUEUE),
            clock: 0,
            foreign_lines: 0,
            panic_on: test_panic_marker(),
        }
    }

    /// The file watch's fd, for the mio registry (`None`: every file is stat-polled).
    pub(crate) fn raw_fd(&self) -> Option<i32> {
        self.watcher.raw_fd()
    }

    /// Healthy while files are followed: by the kernel, or by the stat poll it falls back to
    /// (slower by up to a second, never silent).
    pub fn health(&self) -> Health {
        Health::Healthy
    }

    /// When the stat poll of files the kernel does not watch is due (`None`: none).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.watcher.next_deadline()
    }

    /// Stat-poll the files the kernel does not watch, when due. Returns true when events were
    /// queued.
    pub(crate) fn on_tick(&mut self, now: Millis) -> bool {
        let mut changes = Vec::new();
        self.watcher.poll(now, &mut changes);
        self.apply(changes, now)
    }

    pub fn watched(&self) -> usize {
        self.watches.len()
    }

    /// Follow `session`'s transcript (Claude) or rollout (Codex) at `path` for `pane`, from its
    /// current end. Idempotent; a new path or pane for a known session replaces the old one.
    pub fn watch(&mut self, provider: Provider, session: &str, pane: &PaneId, path: &str) {
        let p = Path::new(path);
        // Trusted no further than the title reader trusts it: an absolute `.jsonl` file.
        if !p.is_absolute() || p.extension().is_none_or(|e| e != "jsonl") {
            return;
        }
        self.clock += 1;
        if let Some(w) = self.watches.get_mut(session) {
            w.used = self.clock;
            if w.path == p {
                w.pane = pane.clone();
                return;
            }
            self.unwatch(session);
        }
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        if provider == Provider::Codex && !rollout_belongs(p, session) {
            log::warn!(
                "transcript_watch_refused session={session} path={} reason=rollout_of_another_session",
                p.display()
            );
            return;
        }
        if self.watches.len() >= MAX_WATCHES
            && let Some(oldest) = least_recent(&self.watches, |w| w.used)
        {
            self.unwatch(&oldest);
        }
        // Two sessions cannot share a transcript: the same file again is the newer session's.
        if let Some(other) = self
            .watches
            .iter()
            .find(|(s, w)| w.path == p && s.as_str() != session)
            .map(|(s, _)| s.clone())
        {
            self.unwatch(&other);
        }
        // Never fails: a file the kernel will not watch is stat-polled (logged once).
        let id = self.watcher.add(p, Kind::File);
        log::debug!(
            "transcript_watch session={session} pane={pane} path={}",
            p.display()
        );
        self.by_id.insert(id, session.to_string());
        self.watches.insert(
            session.to_string(),
            Watch {
                provider,
                pane: pane.clone(),
                path: p.to_path_buf(),
                id,
                offset: meta.len(),
                partial: Vec::new(),
                skipping: false,
                used: self.clock,
            },
        );
    }

    /// Stop following a session (it ended).
    pub(crate) fn unwatch(&mut self, session: &str) {
        if let Some(w) = self.watches.remove(session) {
            self.by_id.remove(&w.id);
            self.watcher.remove(w.id);
        }
    }

    /// The watch fd is readable: read what the watched files gained. Returns true when
    /// events were queued.
    pub fn on_readable(&mut self, now: Millis) -> bool {
        let mut changes = Vec::new();
        self.watcher.read(&mut changes);
        self.apply(changes, now)
    }

    /// Read what the changed files gained; drop the watches of files that are gone.
    fn apply(&mut self, changes: Vec<(WatchId, Change)>, now: Millis) -> bool {
        let mut grown: Vec<String> = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for (id, change) in changes {
            let Some(s) = self.by_id.get(&id).cloned() else {
                continue;
            };
            match change {
                Change::Gone => gone.push(s),
                Change::Modified if !grown.contains(&s) => grown.push(s),
                Change::Modified => {}
            }
        }
        let before = self.queue.len();
        for s in grown {
            self.read_new(&s, now);
        }
        for s in gone {
            self.unwatch(&s);
        }
        self.queue.len() != before
    }

    /// Read a session's transcript from its offset and queue its interrupt lines.
    fn read_new(&mut self, session: &str, now: Millis) {
        let Some(w) = self.watches.get_mut(session) else {
            return;
        };
        let Ok(mut f) = std::fs::File::open(&w.path) else {
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < w.offset {
            // Truncated or replaced: follow from its end again.
            w.offset = len;
            w.partial.clear();
            return;
        }
        if len - w.offset > MAX_CATCH_UP {
            log::warn!(
                "transcript_skipped session={session} bytes={} reason=too_much_at_once",
                len - w.offset
            );
            w.offset = len;
            w.partial.clear();
            w.skipping = false;
            return;
        }
        if f.seek(SeekFrom::Start(w.offset)).is_err() {
            return;
        }
        let mut found = Vec::new();
        let mut data = Vec::new();
        loop {
            data.clear();
            match (&mut f).take(MAX_READ).read_to_end(&mut data) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            w.offset += data.len() as u64;
            for chunk in data.split_inclusive(|b| *b == b'\n') {
                let complete = chunk.ends_with(b"\n");
                if w.skipping {
                    w.skipping = !complete;
                    continue;
                }
                w.partial.extend_from_slice(chunk);
                if w.partial.len() > MAX_LINE {
                    w.partial.clear();
                    w.skipping = !complete;
                    continue;
                }
                if !complete {
                    continue;
                }
                let line = std::mem::take(&mut w.partial);
                if let Some(m) = &self.panic_on
                    && contains(&line, m)
                {
                    // Deliberate (tests only, see `test_panic_marker`).
                    panic!("AGTMUX_TEST_PANIC_ON marker in a transcript line");
                }
                let hit = match w.provider {
                    Provider::Codex => parse_rollout_end(&line).map(Found::Codex),
                    _ => parse_interrupt(&line).map(Found::Claude),
                };
                if let Some(f) = hit {
                    found.push((f, line));
                }
            }
            if (data.len() as u64) < MAX_READ {
                break;
            }
        }
        let pane = w.pane.clone();
        for (f, line) in found {
            match f {
                // A rollout names no session per line; the file was checked when watched.
                Found::Codex(e) => self.push_rollout(session, e, &pane, line, now),
                Found::Claude(i) if i.session != session => {
                    self.foreign_lines += 1;
                    log::warn!(
                        "transcript_line_ignored session={session} line_session={} reason=other_session",
                        i.session
                    );
                }
                Found::Claude(i) => self.push(i, &pane, line, now),
            }
        }
    }

    fn push_rollout(
        &mut self,
        session: &str,
        e: RolloutEnd,
        pane: &PaneId,
        line: Vec<u8>,
        now: Millis,
    ) {
        let id =
            crate::core::hash::fnv1a64(format!("{session}|{}|{}", e.turn_id, e.failed).as_bytes());
        let ts = e.ts.unwrap_or(now);
        let mut extra = crate::core::extras::EventExtra::default();
        let (name, detail, activity) = if let Some(msg) = &e.usage_limit {
            extra.until = crate::core::extras::parse_reset(
                msg,
                ts,
                crate::sys::clock::utc_offset_s(ts.div_euclid(1000)),
            );
            ("rollout/turn_failed", "usage_limit", Activity::Limited)
        } else if e.failed {
            ("rollout/turn_failed", "api_error", Activity::Error)
        } else {
            (
                "rollout/turn_aborted",
                "interrupted_with_esc",
                Activity::Idle,
            )
        };
        log::info!("rollout_turn_end session={session} pane={pane} kind={detail}");
        let event = NormalizedEvent {
            event_id: format!("cr-{id:016x}"),
            source: SourceKind::CodexRollout,
            provider: Provider::Codex,
            pane_id: Some(pane.clone()),
            session_key: Some(session.to_string()),
            turn_id: Some(e.turn_id),
            name: name.into(),
            signal: Signal::Activity(activity),
            title: None,
            cwd: None,
            detail: Some(detail.into()),
            ts,
            extra,
        };
        self.enqueue(event, &line);
    }

    fn push(&mut self, i: Interrupt, pane: &PaneId, line: Vec<u8>, now: Millis) {
        let id = crate::core::hash::fnv1a64(format!("{}|{}", i.session, i.uuid).as_bytes());
        let (name, detail) = if i.tool_use {
            ("transcript/interrupted_tool_use", "denied_with_esc")
        } else {
            ("transcript/interrupted", "interrupted_with_esc")
        };
        log::info!(
            "transcript_interrupt session={} pane={pane} kind={detail}",
            i.session
        );
        let event = NormalizedEvent {
            event_id: format!("ct-{id:016x}"),
            source: SourceKind::ClaudeTranscript,
            provider: Provider::Claude,
            pane_id: Some(pane.clone()),
            session_key: Some(i.session),
            turn_id: None,
            name: name.into(),
            signal: Signal::Activity(Activity::Idle),
            title: None,
            cwd: None,
            detail: Some(detail.into()),
            ts: i.ts.unwrap_or(now),
            extra: Default::default(),
        };
        self.enqueue(event, &line);
    }

    fn enqueue(&mut self, event: NormalizedEvent, line: &[u8]) {
        let mut raw = String::from_utf8_lossy(line).trim_end().to_string();
        if raw.len() > MAX_RAW {
            raw.truncate(crate::core::text::floor_char_boundary(&raw, MAX_RAW));
        }
        self.queue.push(Pulled::Event { event, raw });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::watch::test_files::{append, file_in};
    use crate::testutil::TempDir;

    // Shapes as Claude Code 2.1.197 wrote them.
    const ESC: &str = r#"{"parentUuid":"fe48","isSidechain":false,"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]},"uuid":"906da03b","timestamp":"2026-12-03T12:53:36.059Z","interruptedMessageId":"msg_1","sessionId":"s1"}"#;
    const DENY: &str = r#"{"isSidechain":false,"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user for tool use]"}]},"uuid":"59981dbc","timestamp":"2026-12-03T12:53:30.874Z","sessionId":"s1"}"#;

    #[test]
    fn interrupt_lines_are_recognised_by_their_shape_only() {
        let i = parse_interrupt(ESC.as_bytes()).unwrap();
        assert_eq!(
            i,
            Interrupt {
                uuid: "906da03b".into(),
                session: "s1".into(),
                ts: Some(1_796_302_416_059),
                tool_use: false,
            }
        );
        assert!(parse_interrupt(DENY.as_bytes()).unwrap().tool_use);
        // A prompt the user typed is a plain string: typing the marker triggers nothing.
        let typed = r#"{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"},"uuid":"u","sessionId":"s1"}"#;
        assert_eq!(parse_interrupt(typed.as_bytes()), None);
        // Sub-agents, assistant text quoting it, tool results, broken JSON: no.
        for l in [
            ESC.replace("\"isSidechain\":false", "\"isSidechain\":true"),
            ESC.replace("\"type\":\"user\",", "\"type\":\"assistant\","),
            ESC.replace("\"type\":\"text\",", "\"type\":\"tool_result\","),
            ESC.replace("[Request interrupted", "I saw [Request interrupted"),
            ESC[..ESC.len() - 5].to_string(),
            ESC.replace("\"uuid\":\"906da03b\",", ""),
        ] {
            assert_eq!(parse_interrupt(l.as_bytes()), None, "{l}");
        }
    }

    /// Follow Claude session `s1` of pane %3 in the transcript `p`.
    fn watch_s1(w: &mut TranscriptWatch, p: &Path) {
        w.watch(Provider::Claude, "s1", &"%3".into(), p.to_str().unwrap());
    }

    fn events(w: &mut TranscriptWatch) -> Vec<NormalizedEvent> {
        w.pull("0", 100)
            .items
            .into_iter()
            .filter_map(|i| match i {
                Pulled::Event { event, .. } => Some(event),
                Pulled::Rejected { .. } => None,
            })
            .collect()
    }

    #[test]
    fn only_lines_appended_after_the_first_look_count_and_partial_lines_wait() {
        // An old interrupt, from before we looked: history.
        let (_dir, p) = file_in("tw-tail", "s1.jsonl", &format!("{ESC}\n"));
        let mut w = TranscriptWatch::new(1);
        assert_eq!(w.health(), Health::Healthy);
        watch_s1(&mut w, &p);
        assert_eq!(w.watched(), 1);
        assert!(!w.on_readable(10));
        // Half a line, then the rest.
        let (a, b) = DENY.split_at(40);
        append(&p, a);
        assert!(!w.on_readable(20));
        append(&p, &format!("{b}\n{{\"type\":\"assistant\"}}\n"));
        assert!(w.on_readable(30));
        let ev = events(&mut w);
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.source, SourceKind::ClaudeTranscript);
        assert_eq!(e.pane_id.as_deref(), Some("%3"));
        assert_eq!(e.session_key.as_deref(), Some("s1"));
        assert_eq!(e.signal, Signal::Activity(Activity::Idle));
        assert_eq!(e.detail.as_deref(), Some("denied_with_esc"));
        assert_eq!(e.ts, 1_796_302_410_874, "the line's own time");
        assert!(e.event_id.starts_with("ct-"));
        // Another session's line in this file is not this session's.
        append(&p, &format!("{}\n", ESC.replace("\"s1\"", "\"s2\"")));
        assert!(!w.on_readable(40));
        assert_eq!(w.foreign_lines, 1);
        // An oversized line is skipped whole, and the next line still counts.
        append(&p, &format!("{}\n{ESC}\n", "x".repeat(MAX_LINE + 10)));
        assert!(w.on_readable(50));
        // Nothing acknowledged yet: both are buffered. The cursor acknowledges: pulling after
        // the last seq gives nothing.
        let b = w.pull("0", 100);
        assert_eq!(b.items.len(), 2);
        assert!(w.pull(&b.next_cursor, 100).items.is_empty());
        // Deleted: the watch goes.
        std::fs::remove_file(&p).unwrap();
        w.on_readable(60);
        assert_eq!(w.watched(), 0);
    }

    // Shapes as codex-cli 0.169.0 wrote them (payloads shortened).
    const FAILED: &str = r#"{"timestamp":"2026-12-03T18:55:57.889Z","ordinal":53,"type":"event_msg","payload":{"type":"task_complete","root_turn_id":"t3","turn_id":"t3","last_agent_message":null,"error":{"message":"{\"error\": {\"message\": \"e2e scripted 400\"}}","codex_error_info":"other"},"duration_ms":110}}"#;
    const DONE: &str = r#"{"timestamp":"2026-12-03T18:55:49.604Z","ordinal":20,"type":"event_msg","payload":{"type":"task_complete","turn_id":"t1","last_agent_message":"ok"}}"#;
    const ABORTED: &str = r#"{"timestamp":"2026-12-03T18:55:55.684Z","ordinal":40,"type":"event_msg","payload":{"type":"turn_aborted","turn_id":"t2","reason":"interrupted","duration_ms":1166}}"#;
    const META: &str = r#"{"timestamp":"2026-12-03T18:55:41.055Z","ordinal":0,"type":"session_meta","payload":{"session_id":"th1","id":"th1","cwd":"/tmp"}}"#;

    #[test]
    fn rollout_turn_ends_are_recognised_by_their_shape_only() {
        let f = parse_rollout_end(FAILED.as_bytes()).unwrap();
        assert_eq!(
            f,
            RolloutEnd {
                turn_id: "t3".into(),
                ts: parse_iso_ms("2026-12-03T18:55:57.889Z"),
                failed: true,
                usage_limit: None,
            }
        );
        // Issue 23: the usage limit is its own kind, with the message that names the reset.
        let limit = FAILED
            .replace("\"other\"", "\"usage_limit_exceeded\"")
            .replace(
                "{\\\"error\\\": {\\\"message\\\": \\\"e2e scripted 400\\\"}}",
                "You've hit your usage limit. Try again at 7:13 PM.",
            );
        let l = parse_rollout_end(limit.as_bytes()).unwrap();
        assert_eq!(
            l.usage_limit.as_deref(),
            Some("You've hit your usage limit. Try again at 7:13 PM."),
            "{limit}"
        );
        let a = parse_rollout_end(ABORTED.as_bytes()).unwrap();
        assert!(!a.failed);
        assert_eq!(a.turn_id, "t2");
        // A turn that ended well is the hooks' and the app-server's to tell.
        assert_eq!(parse_rollout_end(DONE.as_bytes()), None);
        for l in [
            FAILED.replace(r#""error":{"#, r#""error":null,"x":{"#),
            FAILED.replace("\"event_msg\"", "\"response_item\""),
            FAILED.replace("\"turn_id\":\"t3\",", ""),
            ABORTED.replace("interrupted", "replaced"),
            FAILED[..FAILED.len() - 3].to_string(),
            // Assistant text that quotes the words is a response item, not an event.
            r#"{"type":"response_item","payload":{"type":"message","content":"task_complete turn_aborted"}}"#.to_string(),
        ] {
            assert_eq!(parse_rollout_end(l.as_bytes()), None, "{l}");
        }
    }

    #[test]
    fn a_rollout_is_followed_only_for_its_own_session_and_reports_failed_turns() {
        // Named after its session: followed without reading it.
        let name = "rollout-2026-12-03T18-55-38-th1.jsonl";
        let (d, named) = file_in("tw-rollout", name, &format!("{META}\n{FAILED}\n"));
        let mut w = TranscriptWatch::new(1);
        // Follow Codex thread `th` of pane `pane` in the rollout `p`.
        let follow = |w: &mut TranscriptWatch, th: &str, pane: &str, p: &Path| {
            w.watch(Provider::Codex, th, &pane.into(), p.to_str().unwrap())
        };
        follow(&mut w, "th1", "%4", &named);
        assert_eq!(w.watched(), 1);
        // Another name, but its session_meta says th2: followed. One that says th1: refused.
        let other = d.join("renamed.jsonl");
        std::fs::write(&other, format!("{}\n", META.replace("th1", "th2"))).unwrap();
        follow(&mut w, "th2", "%5", &other);
        assert_eq!(w.watched(), 2);
        follow(&mut w, "th9", "%6", &other);
        assert_eq!(w.watched(), 2, "a rollout of another session is refused");
        // The old failure is history; new lines count, a good turn end is not reported.
        assert!(!w.on_readable(10));
        append(&named, &format!("{DONE}\n{ABORTED}\n{FAILED}\n"));
        assert!(w.on_readable(20));
        let ev = events(&mut w);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].source, SourceKind::CodexRollout);
        assert_eq!(ev[0].provider, Provider::Codex);
        assert_eq!(ev[0].signal, Signal::Activity(Activity::Idle));
        assert_eq!(ev[0].turn_id.as_deref(), Some("t2"));
        assert_eq!(ev[1].signal, Signal::Activity(Activity::Error));
        assert_eq!(ev[1].detail.as_deref(), Some("api_error"));
        assert_eq!(ev[1].session_key.as_deref(), Some("th1"));
        assert_eq!(ev[1].pane_id.as_deref(), Some("%4"));
        assert_eq!(ev[1].ts, parse_iso_ms("2026-12-03T18:55:57.889Z").unwrap());
        assert!(ev[1].event_id.starts_with("cr-"));
        // The same line again (a rewrite) has the same id: the gateway drops it.
        append(&named, &format!("{FAILED}\n"));
        assert!(w.on_readable(30));
        let again = events(&mut w);
        assert_eq!(again.last().unwrap().event_id, ev[1].event_id);
        // Claude's interrupt shape in a rollout means nothing there.
        append(&named, &format!("{ESC}\n"));
        let before = events(&mut w).len();
        w.on_readable(40);
        assert_eq!(events(&mut w).len(), before);
    }

    #[test]
    fn without_a_kernel_watch_the_stat_poll_still_reports_interrupts() {
        let (_dir, p) = file_in("tw-poll", "s1.jsonl", "");
        let mut w = TranscriptWatch::with_watcher(1, Watcher::stat_poll_only("test"));
        assert_eq!(w.raw_fd(), None);
        watch_s1(&mut w, &p);
        assert_eq!(w.watched(), 1);
        let first = w.next_deadline().expect("a poll is scheduled");
        assert!(!w.on_tick(first));
        append(&p, &format!("{ESC}\n"));
        // Not due yet: not read. Due: read, the event queued.
        assert!(!w.on_tick(first + 1));
        let due = w.next_deadline().unwrap();
        assert!(due > first);
        assert!(w.on_tick(due));
        let ev = events(&mut w);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].detail.as_deref(), Some("interrupted_with_esc"));
        // Deleted: the watch goes, and nothing is polled any more.
        std::fs::remove_file(&p).unwrap();
        w.on_tick(due + crate::sys::watch::POLL_MS);
        assert_eq!(w.watched(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn watches_are_bounded_and_paths_are_checked() {
        let d = TempDir::new("tw-bound");
        let mut w = TranscriptWatch::new(1);
        w.watch(Provider::Claude, "rel", &"%1".into(), "relative/x.jsonl");
        w.watch(
            Provider::Claude,
            "ext",
            &"%1".into(),
            d.join("x.txt").to_str().unwrap(),
        );
        w.watch(
            Provider::Claude,
            "missing",
            &"%1".into(),
            d.join("missing.jsonl").to_str().unwrap(),
        );
        assert_eq!(w.watched(), 0);
        for i in 0..(MAX_WATCHES + 3) {
            let p = d.join(format!("{i}.jsonl"));
            std::fs::write(&p, b"").unwrap();
            w.watch(
                Provider::Claude,
                &format!("s{i}"),
                &"%1".into(),
                p.to_str().unwrap(),
            );
        }
        assert_eq!(w.watched(), MAX_WATCHES);
        assert!(
            !w.watches.contains_key("s0"),
            "the least recently used went first"
        );
    }

    /// Issue 16: a multi-byte character inside a line's timestamp leaves the time unknown,
    /// not a panic (the parser itself is tested in `core::time`).
    #[test]
    fn a_multibyte_character_in_a_timestamp_leaves_the_time_unknown() {
        let line = format!(
            r#"{{"type":"user","isSidechain":false,"message":{{"role":"user","content":[{{"type":"text","text":"{MARKER}]"}}]}},"uuid":"u1","timestamp":"2026-12-04T10:00:00+0é00","sessionId":"s1"}}"#
        );
        let i = parse_interrupt(line.as_bytes()).unwrap();
        assert_eq!((i.uuid.as_str(), i.ts), ("u1", None));
        let line = r#"{"timestamp":"2026-12-04T10:00:00+0é00","type":"event_msg","payload":{"type":"turn_aborted","turn_id":"t1","reason":"interrupted"}}"#;
        let r = parse_rollout_end(line.as_bytes()).unwrap();
        assert_eq!((r.turn_id.as_str(), r.ts), ("t1", None));
    }
}
