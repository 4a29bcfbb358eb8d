//! Tests only: scratch files for the tests of file watches (this module's and the transcript
//! watch's), which all make a fresh directory, put a file in it and append to that file.
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh, empty directory `agtmux-<tag>-<pid>` in the temp dir.
pub(crate) fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("agtmux-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh directory ([`dir`]) holding the file `name` with `content`: (dir, file).
pub(crate) fn file_in(tag: &str, name: &str, content: &str) -> (PathBuf, PathBuf) {
    let d = dir(tag);
    let p = d.join(name);
    std::fs::write(&p, content).unwrap();
    (d, p)
}

/// Append `s` to the file `p`.
pub(crate) fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}
