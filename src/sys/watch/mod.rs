//! File watching: one watcher type for the transcripts and rollouts (`sources::transcript_watch`)
//! and the state dir that holds the hook spool (`daemon::runtime`).
//!
//! WHY here: the kernel interface differs by OS. Linux has inotify ([`inotify`]); macOS has
//! kqueue `EVFILT_VNODE` ([`kqueue`]), one open descriptor per watched file in a kqueue whose own
//! fd is registered with the mio poll like inotify's. Both give one pollable fd ([`raw_fd`]) and
//! the same two changes: a file was written ([`Change::Modified`]), or it is gone (deleted,
//! renamed away: [`Change::Gone`]).
//!
//! A path the kernel will not watch (the inotify watch limit, too many open files on macOS, a
//! file system without notifications, or no kernel watcher at all) is not dropped: it falls
//! back to a cheap stat poll (size, mtime, inode, once per [`POLL_MS`]), so it never goes
//! silent. The first fallback of a watcher is logged with its reason at warn level, later ones
//! at debug. The owner asks [`Watcher::next_deadline`] and calls [`Watcher::poll`] when due.
//!
//! [`raw_fd`]: Watcher::raw_fd
use crate::core::types::Millis;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
mod inotify;
#[cfg(target_os = "linux")]
use inotify as os;
#[cfg(target_os = "macos")]
mod kqueue;
#[cfg(target_os = "macos")]
use kqueue as os;
#[cfg(test)]
pub(crate) mod test_files;

/// `AGTMUX_FILE_WATCH=poll` makes every watcher stat-poll (a file system whose changes the
/// kernel does not report, e.g. some network mounts; and the tests of the fallback).
pub(crate) const FORCE_POLL_ENV: &str = "AGTMUX_FILE_WATCH";

/// How often a path the kernel does not watch is stat'ed.
pub(crate) const POLL_MS: Millis = 1_000;

/// One watch, as handed out by [`Watcher::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WatchId(u64);

/// What is watched: a file's own content, or a directory's entries (files created, renamed
/// into it and, on Linux, written in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
}

/// What happened to a watched path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Written (grown, truncated, or for a directory: an entry changed).
    Modified,
    /// Deleted or renamed away: the watch has ended.
    Gone,
}

/// How one path is watched.
#[derive(Debug)]
enum How {
    Kernel(os::Key),
    /// Stat poll: the last signature seen (`None`: the path was missing).
    Polled(Option<Sig>),
}

/// A file's size, mtime (ns) and inode: any write or replacement changes one of them.
type Sig = (u64, i128, u64);

fn sig(path: &Path) -> Option<Sig> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    Some((m.len(), mtime, m.ino()))
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    how: How,
}

/// The watcher: a kernel watch where the OS gives one, a stat poll where not.
pub(crate) struct Watcher {
    /// For log lines: what this watcher watches.
    what: &'static str,
    backend: Option<os::Backend>,
    entries: HashMap<WatchId, Entry>,
    /// Kernel key → watches (inotify gives one key to two watches of the same inode).
    by_key: HashMap<os::Key, Vec<WatchId>>,
    next_id: u64,
    /// Entries watched by stat poll (kept, not counted per wake-up).
    polled: usize,
    next_poll: Millis,
    fallback_logged: bool,
}

impl Watcher {
    /// A watcher with the OS's kernel backend; without one (logged), every path is polled.
    pub(crate) fn new(what: &'static str) -> Watcher {
        if std::env::var_os(FORCE_POLL_ENV).is_some_and(|v| v == "poll") {
            log::warn!(
                "watch_unavailable what={what} reason={FORCE_POLL_ENV}=poll fallback=stat_poll"
            );
            return Watcher::with_backend(what, None);
        }
        let backend = match os::Backend::new() {
            Ok(b) => Some(b),
            Err(e) => {
                log::warn!("watch_unavailable what={what} err={e} fallback=stat_poll");
                None
            }
        };
        Watcher::with_backend(what, backend)
    }

    /// A watcher that polls every path (what `new` falls back to), for tests.
    #[cfg(test)]
    pub(crate) fn stat_poll_only(what: &'static str) -> Watcher {
        Watcher::with_backend(what, None)
    }

    fn with_backend(what: &'static str, backend: Option<os::Backend>) -> Watcher {
        Watcher {
            what,
            backend,
            entries: HashMap::new(),
            by_key: HashMap::new(),
            next_id: 0,
            polled: 0,
            next_poll: 0,
            fallback_logged: false,
        }
    }

    /// The fd to register with the mio poll (readable when the kernel has changes to report);
    /// `None` when every path is polled.
    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        self.backend.as_ref().map(|b| b.raw_fd())
    }

    /// Does the kernel watch paths for this watcher (rather than the stat poll)?
    #[cfg(test)]
    pub(crate) fn has_kernel_watch(&self) -> bool {
        self.backend.is_some()
    }

    /// Paths watched by stat poll.
    #[cfg(test)]
    pub(crate) fn polled(&self) -> usize {
        self.polled
    }

    /// Watch `path`. Never fails: what the kernel refuses is polled (logged once).
    pub(crate) fn add(&mut self, path: &Path, kind: Kind) -> WatchId {
        self.next_id += 1;
        let id = WatchId(self.next_id);
        let how = match self.backend.as_mut().map(|b| b.add(path, kind)) {
            Some(Ok(key)) => {
                self.by_key.entry(key).or_default().push(id);
                How::Kernel(key)
            }
            Some(Err(e)) => {
                self.log_fallback(path, &e.to_string());
                self.start_polling();
                How::Polled(sig(path))
            }
            None => {
                self.start_polling();
                How::Polled(sig(path))
            }
        };
        self.entries.insert(
            id,
            Entry {
                path: path.to_path_buf(),
                how,
            },
        );
        id
    }

    /// The first polled path: the poll is due at once (the next tick), then every `POLL_MS`.
    fn start_polling(&mut self) {
        if self.polled == 0 {
            self.next_poll = 0;
        }
        self.polled += 1;
    }

    fn log_fallback(&mut self, path: &Path, reason: &str) {
        if self.fallback_logged {
            log::debug!(
                "watch_fallback what={} path={} reason={reason} fallback=stat_poll",
                self.what,
                path.display()
            );
        } else {
            self.fallback_logged = true;
            log::warn!(
                "watch_fallback what={} path={} reason={reason} fallback=stat_poll every={POLL_MS}ms \
                 (later fallbacks of this watcher are logged at debug level)",
                self.what,
                path.display()
            );
        }
    }

    /// Stop watching. An id that already ended (`Gone`) is fine.
    pub(crate) fn remove(&mut self, id: WatchId) {
        let Some(e) = self.entries.remove(&id) else {
            return;
        };
        match e.how {
            How::Kernel(key) => self.forget_key(key, id),
            How::Polled(_) => self.polled = self.polled.saturating_sub(1),
        }
    }

    fn forget_key(&mut self, key: os::Key, id: WatchId) {
        let Some(ids) = self.by_key.get_mut(&key) else {
            return;
        };
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            self.by_key.remove(&key);
            if let Some(b) = self.backend.as_mut() {
                b.remove(key);
            }
        }
    }

    /// The fd is readable: what the kernel reports, drained. A `Gone` watch has ended (its id
    /// is forgotten).
    pub(crate) fn read(&mut self, out: &mut Vec<(WatchId, Change)>) {
        let Some(b) = self.backend.as_mut() else {
            return;
        };
        let mut raw = Vec::new();
        b.read(&mut raw);
        for (key, change) in raw {
            let Some(ids) = self.by_key.get(&key).cloned() else {
                continue;
            };
            for id in ids {
                if !out.contains(&(id, change)) {
                    out.push((id, change));
                }
                if change == Change::Gone {
                    self.entries.remove(&id);
                    self.forget_key(key, id);
                }
            }
        }
    }

    /// When the stat poll is due next (`None`: nothing is polled).
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        (self.polled > 0).then_some(self.next_poll)
    }

    /// The stat poll, when due: a polled path whose signature changed is `Modified`, one that
    /// is missing is `Gone` (and forgotten).
    pub(crate) fn poll(&mut self, now: Millis, out: &mut Vec<(WatchId, Change)>) {
        if self.polled == 0 || now < self.next_poll {
            return;
        }
        self.next_poll = now + POLL_MS;
        let mut gone = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            let How::Polled(last) = &mut e.how else {
                continue;
            };
            match sig(&e.path) {
                None => gone.push(*id),
                Some(s) if *last != Some(s) => {
                    *last = Some(s);
                    out.push((*id, Change::Modified));
                }
                Some(_) => {}
            }
        }
        for id in gone {
            self.remove(id);
            out.push((id, Change::Gone));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{append, file_in};
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn the_kernel_reports_writes_and_removal_of_a_file() {
        let (_dir, p) = file_in("watch-kernel", "a.jsonl", "x\n");
        let mut w = Watcher::new("test");
        assert!(w.has_kernel_watch() && w.raw_fd().is_some());
        let id = w.add(&p, Kind::File);
        assert_eq!(w.polled(), 0);
        let mut out = Vec::new();
        w.read(&mut out);
        assert!(out.is_empty(), "{out:?}");
        append(&p, "y\n");
        w.read(&mut out);
        assert_eq!(out, [(id, Change::Modified)]);
        out.clear();
        std::fs::remove_file(&p).unwrap();
        w.read(&mut out);
        assert!(out.contains(&(id, Change::Gone)), "{out:?}");
        // Ended: removing it again is fine.
        w.remove(id);
    }

    #[test]
    fn the_kernel_reports_a_file_created_in_a_directory() {
        let d = TempDir::new("watch-dirwatch");
        let mut w = Watcher::new("test");
        let id = w.add(&d, Kind::Dir);
        std::fs::write(d.join("spool.jsonl"), "x\n").unwrap();
        let mut out = Vec::new();
        w.read(&mut out);
        assert!(out.contains(&(id, Change::Modified)), "{out:?}");
    }

    #[test]
    fn two_watches_of_one_file_both_hear_and_end_separately() {
        let (_dir, p) = file_in("watch-shared", "a.jsonl", "");
        let mut w = Watcher::new("test");
        let a = w.add(&p, Kind::File);
        let b = w.add(&p, Kind::File);
        append(&p, "1\n");
        let mut out = Vec::new();
        w.read(&mut out);
        assert!(out.contains(&(a, Change::Modified)) && out.contains(&(b, Change::Modified)));
        // Removing one leaves the other watching.
        w.remove(a);
        out.clear();
        append(&p, "2\n");
        w.read(&mut out);
        assert_eq!(out, [(b, Change::Modified)]);
    }

    #[test]
    fn a_polled_file_is_stat_polled_when_due_and_never_goes_silent() {
        let (d, p) = file_in("watch-poll", "a.jsonl", "x\n");
        let mut w = Watcher::stat_poll_only("test");
        assert_eq!(w.raw_fd(), None);
        assert_eq!(w.next_deadline(), None);
        let id = w.add(&p, Kind::File);
        assert_eq!(w.polled(), 1);
        assert_eq!(w.next_deadline(), Some(0), "due at once");
        let mut out = Vec::new();
        w.poll(1_000, &mut out);
        assert!(out.is_empty(), "unchanged: {out:?}");
        assert_eq!(w.next_deadline(), Some(1_000 + POLL_MS));
        append(&p, "y\n");
        // Not due yet: nothing read.
        w.poll(1_001, &mut out);
        assert!(out.is_empty());
        w.poll(1_000 + POLL_MS, &mut out);
        assert_eq!(out, [(id, Change::Modified)]);
        out.clear();
        // Replaced by another file of the same size: a new inode is a change too.
        let q = d.join("b.jsonl");
        std::fs::write(&q, "x\ny\n").unwrap();
        std::fs::rename(&q, &p).unwrap();
        w.poll(1_000 + 2 * POLL_MS, &mut out);
        assert_eq!(out, [(id, Change::Modified)]);
        out.clear();
        std::fs::remove_file(&p).unwrap();
        w.poll(1_000 + 3 * POLL_MS, &mut out);
        assert_eq!(out, [(id, Change::Gone)]);
        assert_eq!(w.polled(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn a_path_the_kernel_refuses_is_polled_not_dropped() {
        let d = TempDir::new("watch-refused");
        let mut w = Watcher::new("test");
        // The kernel cannot watch what does not exist: polled, and reported once it is there.
        let p = d.join("later.jsonl");
        let id = w.add(&p, Kind::File);
        assert_eq!(w.polled(), 1);
        assert!(w.fallback_logged);
        std::fs::write(&p, "x\n").unwrap();
        let mut out = Vec::new();
        w.poll(POLL_MS, &mut out);
        assert_eq!(out, [(id, Change::Modified)]);
    }
}
