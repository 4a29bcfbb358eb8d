//! The spool reader (src/sources/spool.rs): arbitrary file contents, appended in pieces, read
//! with arbitrary committed cursors and batch sizes. Must never panic, never hand out a line
//! containing a newline, and never move its cursor past the end of the file.
#![no_main]
use agtmux::sources::spool::{SpoolCursor, SpoolReader};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static N: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (ctl, body) = data.split_at(3);
    let dir = std::env::temp_dir().join(format!(
        "agtmux-fuzz-spool-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("spool.jsonl");
    // Cursor text from the input too (parse must reject garbage without panicking).
    let cursor_text = String::from_utf8_lossy(&body[..body.len().min(ctl[2] as usize % 24)]);
    let _ = SpoolCursor::parse(&cursor_text);
    let split = (ctl[0] as usize * body.len()) / 256;
    let (first, second) = body.split_at(split);
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let _ = f.write_all(first);
    let committed = if ctl[2] & 1 == 1 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&path).ok().map(|m| SpoolCursor {
            dev: m.dev(),
            ino: m.ino(),
            offset: u64::from(ctl[1]) * 3,
        })
    } else {
        None
    };
    let mut r = SpoolReader::new(&path, committed);
    let max = 1 + ctl[1] as usize % 5;
    for round in 0..4 {
        if round == 1 {
            let _ = f.write_all(second);
        }
        match r.read(max) {
            Ok(lines) => {
                for l in lines {
                    assert!(!l.bytes.contains(&b'\n'), "line with a newline");
                }
            }
            Err(_) => break,
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(r.position().offset <= len, "cursor past end of file");
    }
    let _ = std::fs::remove_dir_all(&dir);
});
