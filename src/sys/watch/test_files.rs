//! Tests only: scratch files for the tests of file watches (this module's and the transcript
//! watch's), which all make a fresh directory, put a file in it and append to that file.
use std::io::Write;
use std::path::{Path, PathBuf};

/// A scratch directory, removed (with what it holds) when dropped.
pub(crate) struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty directory `agtmux-<tag>-<pid>` in the temp dir.
pub(crate) fn dir(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("agtmux-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// A fresh directory ([`dir`]) holding the file `name` with `content`: (dir, file).
pub(crate) fn file_in(tag: &str, name: &str, content: &str) -> (Scratch, PathBuf) {
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
