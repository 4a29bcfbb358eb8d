//! Following a transcript/rollout file as it grows (src/sources/transcript_watch.rs
//! `TranscriptWatch`, src/sources/claude_transcript.rs `TranscriptTitles`): input-chosen bytes
//! appended to a real file in input-chosen pieces, read through inotify and the incremental
//! title reader. Never a panic; every event pulled is one of this source's, for this pane.
#![no_main]
use agtmux::core::types::{PaneId, Provider, SourceKind};
use agtmux::sources::claude_transcript::TranscriptTitles;
use agtmux::sources::transcript_watch::TranscriptWatch;
use agtmux::sources::{Pulled, Source};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static N: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "agtmux-fuzz-follow-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&dir);
    let codex = ctl & 1 == 1;
    let session = "0199a213-81c0-7800-8aa1-bbab2a035a53";
    // A rollout is followed only when its name (or first line) names the session.
    let path = dir.join(format!("rollout-2026-12-04T10-00-00-{session}.jsonl"));
    let path_s = path.display().to_string();
    let _ = std::fs::write(&path, b"");
    let provider = if codex {
        Provider::Codex
    } else {
        Provider::Claude
    };
    let mut w = TranscriptWatch::new(1_000);
    let Some(pane) = PaneId::parse("%1") else {
        return;
    };
    w.watch(provider, session, &pane, &path_s);
    let mut titles = TranscriptTitles::new();
    // At most 16 pieces: each costs a write, an inotify read and a file read or two.
    let step = (1 + usize::from(ctl >> 1) * 4).max(body.len().div_ceil(16));
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
        for piece in body.chunks(step) {
            let _ = f.write_all(piece);
            w.on_readable(2_000);
            let _ = titles.update(session, &path_s);
        }
    }
    w.on_readable(3_000);
    let batch = w.pull("0", 10_000);
    for item in batch.items {
        if let Pulled::Event { event, .. } = item {
            assert!(matches!(
                event.source,
                SourceKind::ClaudeTranscript | SourceKind::CodexRollout
            ));
            assert_eq!(event.pane_id.as_deref(), Some("%1"));
        }
    }
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
});
