//! The hook spool (C-005 transport): an append-only JSON-lines file per tmux server that the
//! `agtmux hook …` command writes and the daemon reads after its committed cursor.
//!
//! Why a file and not a socket: the hook runs on the agent's critical path and must succeed in
//! a few ms even when the daemon is down or restarting. An `O_APPEND` write of one line is
//! atomic with respect to other appenders, so a crash at any point leaves whole lines; the
//! daemon replays from its committed cursor, and `events_raw_v2`'s unique event id turns the
//! at-least-once replay into an exactly-once effect.
//!
//! Rotation: when the daemon has consumed the whole file and it is large, it takes the flock,
//! renames it to `spool.<ns>.old`, and commits the cursor for the fresh file. A hook that opened
//! the old inode before the rename notices (after taking the flock) that the path now names
//! another inode and reopens; one that gave up waiting for the flock may still append to the
//! renamed file. So a rotated file is never deleted on sight: the reader keeps reading its tail,
//! and deletes it only when told the store has everything read from it
//! ([`SpoolReader::release_rotated`]) and the committed cursor no longer names it (its inode
//! cannot be reused under that cursor). Rotated files found at start-up (a crash or a store
//! outage before they went) are read again, from the committed cursor when it names them, else
//! from their start; dedup drops what was applied already.
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Envelope format version written by this build.
pub(crate) const ENVELOPE_VERSION: u32 = 1;
/// Largest hook payload accepted; larger ones are recorded as rejected-too-large.
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;
/// Longest spool line the reader accepts (payload plus envelope, with JSON escaping slack).
pub(crate) const MAX_LINE: usize = 3 * MAX_PAYLOAD;
/// Deepest nesting of arrays/objects a payload may have. One limit for the hook (which rejects
/// deeper payloads as `too_deep`) and the daemon (which checks the envelope, one level more,
/// before parsing): serde_json's own limit (128) is never what decides, so a payload the hook
/// kept is never lost to the daemon's parser.
pub const MAX_DEPTH: usize = 100;

/// The deepest array/object nesting in `bytes` read as JSON (strings skipped; no validation).
/// Stops counting past `stop`, so a 100k-deep input costs no more than a shallow one.
pub(crate) fn json_depth(bytes: &[u8], stop: usize) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > stop {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// One hook invocation as written to the spool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Envelope {
    pub v: u32,
    /// `claude`, `codex` or `codex-notify`.
    pub source: String,
    /// Receive time, epoch nanoseconds.
    pub(crate) recv_ns: i64,
    /// The tmux socket from `$TMUX`.
    pub tmux: String,
    /// `$TMUX_PANE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane: Option<String>,
    pub pid: i32,
    pub(crate) ppid: i32,
    /// The payload when it parsed as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The payload as (lossy) text when it did not parse; the daemon rejects it with a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payload_text: Option<String>,
    /// Set when the hook itself refused the payload (e.g. `too_large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
    /// Original payload size in bytes (all that was read, also past the limit).
    pub size: usize,
    /// The tmux server's pid from `$TMUX` (`socket,pid,session`): binds the hook to one
    /// server instance, so a late hook from a killed server is not applied to a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pid: Option<i32>,
    /// The hook's process and its ancestors, `[pid, start_ticks]`, from the hook up to the
    /// pane's process (the one whose parent is the tmux server), bounded. Empty where the
    /// platform cannot tell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) anc: Vec<(i32, u64)>,
    /// The pane process the hook runs under (the last of `anc`), when the chain reached the
    /// tmux server; `None` when the hook did not run inside a pane of that server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pane_pid: Option<i32>,
    /// The terminal's foreground process group when the hook ran: its leader is the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tpgid: Option<i32>,
}

/// Where a hook that could not write the spool leaves its trace: the runtime dir (not the
/// state dir, which may be the very thing that fails). `{"ts_ms","count","error"}`.
pub(crate) fn failure_marker(sp: &crate::paths::ServerPaths) -> PathBuf {
    sp.runtime_dir.join(format!("{}.hookfail", sp.key))
}

/// A hook's spool write failed: count it in the marker (best effort, never blocks).
pub(crate) fn record_failure(sp: &crate::paths::ServerPaths, error: &str) {
    let path = failure_marker(sp);
    let count = read_failure(sp).map(|f| f.count).unwrap_or(0) + 1;
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let v = serde_json::json!({"ts_ms": ts_ms, "count": count, "error": error});
    if crate::paths::ensure_private_dir(&sp.runtime_dir).is_ok() {
        let tmp = path.with_extension(format!("hookfail.{}", std::process::id()));
        let ok = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(v.to_string().as_bytes()));
        if ok.is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// A hook wrote the spool: the failure (if any) is over. One `unlink`, ENOENT when none.
pub(crate) fn clear_failure(sp: &crate::paths::ServerPaths) {
    let _ = std::fs::remove_file(failure_marker(sp));
}

/// The hooks' last spool failure, while it stands (no hook has written the spool since).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct HookFailure {
    pub ts_ms: i64,
    pub count: u64,
    pub error: String,
}

pub(crate) fn read_failure(sp: &crate::paths::ServerPaths) -> Option<HookFailure> {
    let mut s = String::new();
    File::open(failure_marker(sp))
        .ok()?
        .take(4096)
        .read_to_string(&mut s)
        .ok()?;
    serde_json::from_str(&s).ok()
}

/// Append one line to the spool: `O_APPEND`, a short bounded wait for the flock (taken by the
/// daemon only while rotating), and a reopen if the file was rotated under us.
pub fn append(path: &Path, line: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(20);
    let mut file = open_append(path)?;
    for _ in 0..3 {
        let locked = lock_bounded(&file, deadline);
        // The rotation renames the path away while holding the lock; if our inode is no longer
        // the path's, reopen and try again so the line lands where the daemon reads.
        let same = match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same || !locked {
            let r = file.write_all(line);
            if locked {
                unlock(&file);
            }
            return r;
        }
        unlock(&file);
        file = open_append(path)?;
    }
    file.write_all(line)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// Try `LOCK_EX` until `deadline`. Returns whether the lock is held. An O_APPEND write without
/// the lock is still atomic per line, so giving up only risks landing in a just-rotated file.
fn lock_bounded(file: &File, deadline: Instant) -> bool {
    loop {
        if file.try_lock().is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn lock_blocking(file: &File) -> io::Result<()> {
    loop {
        match file.lock() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn unlock(file: &File) {
    let _ = file.unlock();
}

/// Identity and position of the active spool file, stored as the committed cursor text
/// `dev:ino:offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolCursor {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

impl SpoolCursor {
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split(':');
        let c = SpoolCursor {
            dev: it.next()?.parse().ok()?,
            ino: it.next()?.parse().ok()?,
            offset: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(c)
    }
    pub(crate) fn encode(&self) -> String {
        format!("{}:{}:{}", self.dev, self.ino, self.offset)
    }
}

/// One complete line read from the spool, with the cursor just after it.
#[derive(Debug, Clone)]
pub struct SpoolLine {
    pub bytes: Vec<u8>,
    /// True when the line exceeded `MAX_LINE` and was cut; it will be rejected.
    pub truncated: bool,
    pub cursor_after: SpoolCursor,
}

/// The daemon side: reads whole lines after a cursor, never a partial last line.
pub struct SpoolReader {
    path: PathBuf,
    file: Option<File>,
    pos: SpoolCursor,
    /// Bytes of an incomplete last line, not yet handed out.
    partial: Vec<u8>,
    /// Bytes of the incomplete last line seen so far (`partial` keeps at most `MAX_LINE`).
    pending: u64,
    /// Rotated files not deleted yet, oldest first: read to their end, kept until released.
    leftovers: Vec<Rotated>,
}

/// A rotated spool file (`spool.<ns>.old`) and how far it was read.
#[derive(Debug, Clone)]
struct Rotated {
    path: PathBuf,
    dev: u64,
    ino: u64,
    read_to: u64,
}

impl SpoolReader {
    /// Open the reader at a committed cursor (`None` = from the start of the current file).
    pub fn new(path: &Path, committed: Option<SpoolCursor>) -> Self {
        let mut paths = Vec::new();
        if let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) {
            let prefix = format!("{}.", stem.to_string_lossy());
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.starts_with(&prefix) && n.ends_with(".old") {
                        paths.push(e.path());
                    }
                }
            }
        }
        paths.sort();
        let leftovers = paths
            .into_iter()
            .filter_map(|p| {
                let m = std::fs::symlink_metadata(&p).ok().filter(|m| m.is_file())?;
                // The committed cursor in this file: what is before it is stored.
                let read_to = committed
                    .filter(|c| c.dev == m.dev() && c.ino == m.ino())
                    .map_or(0, |c| c.offset.min(m.len()));
                Some(Rotated {
                    path: p,
                    dev: m.dev(),
                    ino: m.ino(),
                    read_to,
                })
            })
            .collect();
        SpoolReader {
            path: path.to_path_buf(),
            file: None,
            pos: committed.unwrap_or_default(),
            partial: Vec::new(),
            pending: 0,
            leftovers,
        }
    }

    /// Cursor after the last line handed out.
    pub fn position(&self) -> SpoolCursor {
        self.pos
    }

    /// Read up to `max` complete lines. Rotated files are read first, to their end (their
    /// lines carry the current cursor, so committing them is harmless; the files stay until
    /// [`SpoolReader::release_rotated`]).
    pub fn read(&mut self, max: usize) -> io::Result<Vec<SpoolLine>> {
        let mut out = Vec::new();
        for i in 0..self.leftovers.len() {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                return Ok(out);
            }
            let lines = read_rotated(&mut self.leftovers[i], room);
            out.extend(lines.into_iter().map(|(bytes, truncated)| SpoolLine {
                bytes,
                truncated,
                cursor_after: self.pos,
            }));
        }
        if out.len() >= max {
            return Ok(out);
        }
        // Is the path still the file we read? A rotation, a deletion or something odd (a
        // directory) in its place must be noticed, not read around.
        let replaced = match std::fs::metadata(&self.path) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::other("spool path is a directory"));
            }
            Ok(m) => self.file.is_some() && (m.dev() != self.pos.dev || m.ino() != self.pos.ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if self.file.is_none() && !self.open_current()? {
            return Ok(out);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(out);
        };
        let meta = file.metadata()?;
        if meta.len() < self.pos.offset {
            // Truncated behind our back: start over; dedup makes re-reads harmless.
            log::warn!(
                "spool_truncated path={} offset={}",
                self.path.display(),
                self.pos.offset
            );
            self.pos.offset = 0;
            self.partial.clear();
            self.pending = 0;
        }
        let read_from = self.pos.offset + self.pending;
        if meta.len() <= read_from {
            if replaced {
                // The old file is drained: move on to the file now at the path.
                self.file = None;
                self.open_current()?;
            }
            return Ok(out);
        }
        file.seek(SeekFrom::Start(read_from))?;
        let mut buf = vec![0u8; (meta.len() - read_from).min(4 << 20) as usize];
        let n = file.read(&mut buf)?;
        buf.truncate(n);
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b != b'\n' {
                continue;
            }
            let seg = &buf[start..i];
            let total = self.pending + seg.len() as u64;
            self.keep_head(seg);
            let line = std::mem::take(&mut self.partial);
            self.pending = 0;
            self.pos.offset += total + 1;
            start = i + 1;
            if total > 0 {
                let truncated = total > MAX_LINE as u64;
                out.push(SpoolLine {
                    bytes: line,
                    truncated,
                    cursor_after: self.pos,
                });
            }
            if out.len() >= max {
                return Ok(out);
            }
        }
        let rest = &buf[start..];
        self.keep_head(rest);
        self.pending += rest.len() as u64;
        Ok(out)
    }

    /// Keep at most `MAX_LINE` bytes of the current line; the rest is only counted.
    fn keep_head(&mut self, seg: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial.extend_from_slice(&seg[..seg.len().min(room)]);
    }

    /// Open the active file; if it is not the file of our cursor, start at its beginning.
    fn open_current(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(f) => {
                let m = f.metadata()?;
                if m.dev() != self.pos.dev || m.ino() != self.pos.ino {
                    self.pos = SpoolCursor {
                        dev: m.dev(),
                        ino: m.ino(),
                        offset: 0,
                    };
                }
                self.partial.clear();
                self.pending = 0;
                self.file = Some(f);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Rotate when everything up to `committed` was consumed and the file exceeds `threshold`.
    /// The caller must have committed `committed` (the current position) first.
    pub(crate) fn maybe_rotate(&mut self, threshold: u64) -> io::Result<bool> {
        let Some(file) = self.file.as_ref() else {
            return Ok(false);
        };
        if self.pos.offset < threshold || self.pending != 0 {
            return Ok(false);
        }
        lock_blocking(file)?;
        let len = file.metadata()?.len();
        if len != self.pos.offset {
            unlock(file);
            return Ok(false);
        }
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let old = self.path.with_file_name(format!(
            "{}.{:020}.old",
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ns
        ));
        let r = std::fs::rename(&self.path, &old);
        unlock(file);
        r?;
        // Everything in it was consumed and committed, but a hook that gave up waiting for the
        // lock may still append to it: read on from here, delete it once released.
        self.leftovers.push(Rotated {
            path: old,
            dev: self.pos.dev,
            ino: self.pos.ino,
            read_to: self.pos.offset,
        });
        self.file = None;
        self.pos = SpoolCursor::default();
        Ok(true)
    }

    /// Whether rotated files wait for [`SpoolReader::release_rotated`].
    pub fn has_rotated(&self) -> bool {
        !self.leftovers.is_empty()
    }

    /// Everything read so far is stored and `stored` is the committed cursor in the store:
    /// delete each rotated file read to its end that `stored` does not name. Returns how many
    /// went. A file that grew since it was read stays, to be read on.
    pub fn release_rotated(&mut self, stored: Option<SpoolCursor>) -> usize {
        let before = self.leftovers.len();
        self.leftovers.retain(|r| {
            if stored.is_some_and(|c| c.dev == r.dev && c.ino == r.ino) {
                return true;
            }
            match std::fs::symlink_metadata(&r.path) {
                Ok(m) if m.dev() == r.dev && m.ino() == r.ino => {
                    if m.len() > r.read_to {
                        return true;
                    }
                    match std::fs::remove_file(&r.path) {
                        Ok(()) => {
                            log::info!("spool_rotated_released path={}", r.path.display());
                            false
                        }
                        Err(e) => {
                            log::warn!(
                                "spool_rotated_remove_failed path={} err={e}",
                                r.path.display()
                            );
                            true
                        }
                    }
                }
                // Gone, or another file in its place: nothing of ours to keep.
                _ => false,
            }
        });
        before - self.leftovers.len()
    }
}

/// Read up to `max` lines of a rotated file after `read_to`. A hook writes each line with its
/// newline in one `O_APPEND` write, so an unended last line is a torn write: it is handed out
/// as it is (and rejected), not waited for.
fn read_rotated(r: &mut Rotated, max: usize) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let Ok(mut f) = File::open(&r.path) else {
        return out;
    };
    let Ok(m) = f.metadata() else {
        return out;
    };
    if m.dev() != r.dev || m.ino() != r.ino || m.len() <= r.read_to {
        return out;
    }
    if f.seek(SeekFrom::Start(r.read_to)).is_err() {
        return out;
    }
    let mut data = Vec::new();
    if (&mut f)
        .take(m.len() - r.read_to)
        .read_to_end(&mut data)
        .is_err()
    {
        return out;
    }
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let chunk = &data[start..i];
        start = i + 1;
        r.read_to += chunk.len() as u64 + 1;
        if !chunk.is_empty() {
            out.push((
                chunk[..chunk.len().min(MAX_LINE)].to_vec(),
                chunk.len() > MAX_LINE,
            ));
            if out.len() >= max {
                return out;
            }
        }
    }
    let rest = &data[start..];
    if !rest.is_empty() {
        r.read_to += rest.len() as u64;
        out.push((
            rest[..rest.len().min(MAX_LINE)].to_vec(),
            rest.len() > MAX_LINE,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one line `r` reads next (it must read exactly one).
    #[track_caller]
    fn one_line(r: &mut SpoolReader) -> Vec<u8> {
        let lines = r.read(100).unwrap();
        assert_eq!(lines.len(), 1);
        lines.into_iter().next().unwrap().bytes
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("agtmux-spool-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("spool.jsonl")
    }

    #[test]
    fn reads_whole_lines_only_and_resumes_from_cursor() {
        let p = tmp("resume");
        append(&p, b"{\"a\":1}\n").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"b\":")
            .unwrap();
        let mut r = SpoolReader::new(&p, None);
        assert_eq!(one_line(&mut r), b"{\"a\":1}");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"2}\n")
            .unwrap();
        assert_eq!(one_line(&mut r), b"{\"b\":2}");
        let cur = r.position();
        append(&p, b"{\"c\":3}\n").unwrap();
        let mut r2 = SpoolReader::new(&p, Some(SpoolCursor::parse(&cur.encode()).unwrap()));
        assert_eq!(one_line(&mut r2), b"{\"c\":3}");
    }

    #[test]
    fn rotation_loses_nothing() {
        let p = tmp("rotate");
        for i in 0..10 {
            append(&p, format!("{{\"i\":{i}}}\n").as_bytes()).unwrap();
        }
        let mut r = SpoolReader::new(&p, None);
        assert_eq!(r.read(100).unwrap().len(), 10);
        assert!(r.maybe_rotate(1).unwrap());
        append(&p, b"{\"i\":10}\n").unwrap();
        assert_eq!(one_line(&mut r), b"{\"i\":10}");
    }

    #[test]
    fn leftover_rotated_files_are_drained_first() {
        let p = tmp("leftover");
        std::fs::write(
            p.with_file_name("spool.00000000000000000001.old"),
            b"{\"old\":1}\n",
        )
        .unwrap();
        append(&p, b"{\"new\":1}\n").unwrap();
        let mut r = SpoolReader::new(&p, None);
        let lines = r.read(100).unwrap();
        let texts: Vec<_> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect();
        assert_eq!(texts, vec!["{\"old\":1}", "{\"new\":1}"]);
        // Read, but not stored yet: kept until released, and then only when no cursor names it.
        let old = p.with_file_name("spool.00000000000000000001.old");
        assert!(old.exists());
        let m = std::fs::metadata(&old).unwrap();
        let names_old = SpoolCursor {
            dev: m.dev(),
            ino: m.ino(),
            offset: m.len(),
        };
        assert_eq!(r.release_rotated(Some(names_old)), 0);
        assert!(old.exists());
        assert_eq!(r.release_rotated(Some(r.position())), 1);
        assert!(!old.exists());
    }

    /// A hook that opened the spool before a rotation and gave up waiting for the lock appends
    /// to the renamed file: that line is read, and the file is not released before it is.
    #[test]
    fn a_line_appended_to_a_rotated_file_is_still_read() {
        let p = tmp("late");
        append(&p, b"{\"i\":0}\n").unwrap();
        let mut late = OpenOptions::new().append(true).open(&p).unwrap();
        let mut r = SpoolReader::new(&p, None);
        assert_eq!(r.read(100).unwrap().len(), 1);
        assert!(r.maybe_rotate(1).unwrap());
        late.write_all(b"{\"late\":1}\n").unwrap();
        // Released before it was read: the file stays, it grew.
        assert_eq!(r.release_rotated(None), 0);
        assert_eq!(one_line(&mut r), b"{\"late\":1}");
        assert_eq!(r.release_rotated(None), 1);
        assert!(r.read(100).unwrap().is_empty());
        // A reader made afresh (a restart) finds nothing left.
        assert!(SpoolReader::new(&p, None).read(100).unwrap().is_empty());
    }

    /// A restart with the committed cursor in a rotated file reads it on from there.
    #[test]
    fn a_rotated_file_named_by_the_cursor_is_read_from_the_cursor() {
        let p = tmp("oldcursor");
        append(&p, b"{\"i\":0}\n").unwrap();
        let mut r = SpoolReader::new(&p, None);
        assert_eq!(r.read(100).unwrap().len(), 1);
        let cur = r.position();
        append(&p, b"{\"i\":1}\n").unwrap();
        std::fs::rename(&p, p.with_file_name("spool.00000000000000000002.old")).unwrap();
        let mut r = SpoolReader::new(&p, Some(cur));
        assert_eq!(one_line(&mut r), b"{\"i\":1}");
    }

    #[test]
    fn overlong_line_is_cut_and_flagged_and_reader_stays_in_sync() {
        let p = tmp("long");
        let mut big = vec![b'x'; MAX_LINE + 10];
        big.push(b'\n');
        std::fs::write(&p, &big).unwrap();
        append(&p, b"{\"ok\":1}\n").unwrap();
        let mut r = SpoolReader::new(&p, None);
        let mut lines = Vec::new();
        for _ in 0..4 {
            lines.extend(r.read(100).unwrap());
        }
        assert_eq!(lines.len(), 2);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].bytes.len(), MAX_LINE);
        assert_eq!(lines[1].bytes, b"{\"ok\":1}");
    }

    #[test]
    fn cursor_text_round_trips_and_rejects_garbage() {
        let c = SpoolCursor {
            dev: 1,
            ino: 2,
            offset: 3,
        };
        assert_eq!(SpoolCursor::parse(&c.encode()), Some(c));
        assert_eq!(SpoolCursor::parse("1:2"), None);
        assert_eq!(SpoolCursor::parse("a:b:c"), None);
    }
}
