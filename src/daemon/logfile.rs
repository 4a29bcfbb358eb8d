//! `daemon.log` with a size cap: past [`LOG_MAX_BYTES`] the file becomes `daemon.log.1`
//! (replacing the older one) and a fresh `daemon.log` is started, so the log never grows
//! without bound and the lines just before a problem are still there.
//!
//! WHY hand-written: one rename and one reopen, no new crate. The keeper and the daemon each
//! log to the same path through their own writer; a writer that finds the path already
//! rotated by the other process only reopens it, so one process never rotates away what the
//! other has just started. The worker's stderr (panic reports) is appended to the file that
//! was current when the keeper started it, which can be `daemon.log.1` after a rotation.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The size at which `daemon.log` is rotated.
pub(crate) const LOG_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// An append-only log file that rotates itself at a size cap, keeping one old file.
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file as far as this writer knows (its size at open plus what it wrote).
    size: u64,
    cap: u64,
}

impl LogFile {
    pub(crate) fn open(path: &Path, cap: u64) -> io::Result<LogFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            cap,
        })
    }

    /// The rotated file's path: `daemon.log.1`.
    pub(crate) fn old_path(path: &Path) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(".1");
        PathBuf::from(p)
    }

    /// Rotate if the file is full: unless another writer already did (the path names a
    /// different file than ours), move it to `.1`; then continue in a fresh file at the path.
    fn rotate_if_full(&mut self) -> io::Result<()> {
        if self.size < self.cap {
            return Ok(());
        }
        let ours = self.file.metadata()?;
        let rotated_by_other = std::fs::metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) != (ours.dev(), ours.ino()));
        if !rotated_by_other {
            std::fs::rename(&self.path, Self::old_path(&self.path))?;
        }
        self.file = open_append(&self.path)?;
        self.size = self.file.metadata()?.len();
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A failed rotation keeps writing to the file we have: better a long log than none.
        let _ = self.rotate_if_full();
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::TempDir;

    fn size(p: &Path) -> u64 {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn rotates_at_the_cap_and_keeps_one_old_file() {
        let d = TempDir::new("logfile-rotate");
        let path = d.0.join("daemon.log");
        std::fs::write(&path, "from before\n").unwrap();
        let mut log = LogFile::open(&path, 100).unwrap();
        for i in 0..50 {
            writeln!(log, "line {i:04} xxxxxxxxxx").unwrap(); // 21 bytes
        }
        let old = LogFile::old_path(&path);
        assert_eq!(old, d.0.join("daemon.log.1"));
        // Each file holds at most the cap plus the one line that crossed it.
        assert!(
            size(&path) > 0 && size(&path) <= 100 + 21,
            "{}",
            size(&path)
        );
        assert!(size(&old) > 100 && size(&old) <= 100 + 21, "{}", size(&old));
        let cur = std::fs::read_to_string(&path).unwrap();
        let prev = std::fs::read_to_string(&old).unwrap();
        assert!(cur.ends_with("line 0049 xxxxxxxxxx\n"), "{cur}");
        // The old file is the one just before the current one: nothing in between is lost.
        let last_old: u32 = prev.lines().last().unwrap()[5..9].parse().unwrap();
        let first_cur: u32 = cur.lines().next().unwrap()[5..9].parse().unwrap();
        assert_eq!(first_cur, last_old + 1);
        assert!(!d.0.join("daemon.log.2").exists());
        assert!(
            !prev.contains("from before"),
            "the oldest lines were dropped"
        );
    }

    #[test]
    fn a_file_rotated_by_another_writer_is_reopened_not_rotated_again() {
        let d = TempDir::new("logfile-two");
        let path = d.0.join("daemon.log");
        let mut a = LogFile::open(&path, 50).unwrap();
        let mut b = LogFile::open(&path, 50).unwrap();
        a.write_all(&[b'a'; 60]).unwrap();
        b.write_all(&[b'b'; 10]).unwrap(); // b thinks 10 bytes: no rotation yet
        a.write_all(b"A\n").unwrap(); // a rotates: daemon.log (70 bytes) → .1
        let old = LogFile::old_path(&path);
        assert_eq!(size(&old), 70);
        b.write_all(&[b'b'; 50]).unwrap(); // b still writes to .1: 120 bytes
        assert_eq!(size(&old), 120);
        b.write_all(b"B\n").unwrap(); // b is full; the path is a new file: reopen only
        assert_eq!(size(&old), 120, "b did not rotate a's fresh file away");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A\nB\n");
    }
}
