//! Claude session titles from the transcript (C-010 input, Flow-005): the transcript named by
//! a hook's `transcript_path` is read incrementally from the last offset, never re-read whole,
//! and fed to the pure `TranscriptTitle` tracker (custom-title > ai-title > summary).
use crate::core::lru::least_recent;
use crate::core::title::TranscriptTitle;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this much is read per look, so a huge resumed transcript costs a bounded amount per
/// event; the rest is read on the following events.
const MAX_READ: u64 = 4 << 20;
/// Sessions remembered at most (oldest forgotten first).
const MAX_SESSIONS: usize = 512;

struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    title: TranscriptTitle,
    used: u64,
}

#[derive(Default)]
pub struct TranscriptTitles {
    tails: HashMap<String, Tail>,
    clock: u64,
}

impl TranscriptTitles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read what was appended to the session's transcript since the last look. Returns the
    /// best title when it changed.
    pub fn update(&mut self, session: &str, path: &str) -> Option<String> {
        let p = Path::new(path);
        // Only an absolute `.jsonl` path: the payload is trusted no further than that.
        if !p.is_absolute() || p.extension().is_none_or(|e| e != "jsonl") {
            return None;
        }
        self.clock += 1;
        if self.tails.len() >= MAX_SESSIONS
            && !self.tails.contains_key(session)
            && let Some(k) = least_recent(&self.tails, |t| t.used)
        {
            self.tails.remove(&k);
        }
        let clock = self.clock;
        let tail = self
            .tails
            .entry(session.to_string())
            .or_insert_with(|| Tail {
                path: p.to_path_buf(),
                offset: 0,
                partial: Vec::new(),
                title: TranscriptTitle::new(),
                used: clock,
            });
        tail.used = clock;
        if tail.path != p {
            tail.path = p.to_path_buf();
            tail.offset = 0;
            tail.partial.clear();
        }
        let mut f = std::fs::File::open(p).ok()?;
        let len = f.metadata().ok()?.len();
        if len < tail.offset {
            // Rewritten: start again.
            tail.offset = 0;
            tail.partial.clear();
            tail.title = TranscriptTitle::new();
        }
        if len == tail.offset {
            return None;
        }
        f.seek(SeekFrom::Start(tail.offset)).ok()?;
        let mut buf = Vec::new();
        f.take(MAX_READ).read_to_end(&mut buf).ok()?;
        tail.offset += buf.len() as u64;
        let before = tail.title.best().map(str::to_string);
        let mut data = std::mem::take(&mut tail.partial);
        data.extend_from_slice(&buf);
        let complete = data
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        for line in data[..complete].split(|b| *b == b'\n') {
            if !line.is_empty() {
                tail.title.feed_line(&String::from_utf8_lossy(line));
            }
        }
        // Keep an unfinished last line for next time (bounded: a giant line is dropped).
        if data.len() - complete <= 1 << 20 {
            tail.partial = data[complete..].to_vec();
        }
        let after = tail.title.best().map(str::to_string);
        (after != before).then_some(after).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_only_what_was_appended_and_prefers_custom_titles() {
        let dir = std::env::temp_dir().join(format!("agtmux-tt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.jsonl");
        std::fs::write(
            &path,
            "{\"type\":\"ai-title\",\"aiTitle\":\"Fix the bug\"}\n{\"type\":\"user\"",
        )
        .unwrap();
        let mut t = TranscriptTitles::new();
        let p = path.to_str().unwrap();
        assert_eq!(t.update("s", p).as_deref(), Some("Fix the bug"));
        assert_eq!(t.update("s", p), None, "nothing new");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"}\n{\"type\":\"custom-title\",\"customTitle\":\"Mine\"}\n")
            .unwrap();
        assert_eq!(t.update("s", p).as_deref(), Some("Mine"));
        assert_eq!(t.update("s", "relative.jsonl"), None);
        assert_eq!(t.update("s", "/etc/passwd"), None);
    }
}
