//! Helpers for the unit tests, one copy each: a unique temp dir removed on drop, a tiny
//! deterministic random generator for fuzz-style loops, and a JSON list's names. Compiled only
//! for tests.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique temp dir (`agtmux-<tag>-<pid>-<n>-<nanos>`), removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let d =
            std::env::temp_dir().join(format!("agtmux-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tiny deterministic LCG so a fuzz loop needs no dependency and always replays.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// The `field` string of each element of the JSON array `list` (e.g. each step's name).
pub(crate) fn names<'v>(list: &'v serde_json::Value, field: &str) -> Vec<&'v str> {
    let items = list.as_array().expect("a JSON array");
    items
        .iter()
        .map(|x| x[field].as_str().expect("a string field"))
        .collect()
}
