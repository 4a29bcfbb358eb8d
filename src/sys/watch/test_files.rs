//! Tests only: scratch files for the tests of file watches (this module's and the transcript
//! watch's), which all make a fresh directory, put a file in it and append to that file.
use crate::testutil::TempDir;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh directory ([`TempDir`]) holding the file `name` with `content`: (dir, file).
pub(crate) fn file_in(tag: &str, name: &str, content: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new(tag);
    let p = d.join(name);
    std::fs::write(&p, content).unwrap();
    (d, p)
}

/// Append `s` to the file `p`.
pub(crate) fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}
