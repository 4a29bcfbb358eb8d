//! Store faults on real tmux servers with a real SQLite file (issue 16 items 4 and 5): a store
//! outage longer than every redelivery loses no accepted event, a daemon started on an
//! unwritable database recovers once it is writable, and a database deleted or overwritten
//! under a running daemon is noticed, said, and rebuilt without losing what was stored.
mod support;
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use support::*;

/// Stored events whose payload carries `tag`, read from the file at the db path.
fn stored_with(s: &Server, tag: &str) -> u64 {
    let Ok(c) = rusqlite::Connection::open_with_flags(
        s.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    c.busy_timeout(Duration::from_secs(2)).ok();
    c.query_row(
        "SELECT COUNT(DISTINCT event_id) FROM events_raw_v2 WHERE payload LIKE ?1",
        [format!("%{tag}%")],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Waits until `n` stored events carry `tag`; fails with the daemon's log otherwise.
fn wait_stored(s: &Server, tag: &str, n: u64, secs: u64) {
    assert!(
        wait_until(secs, || stored_with(s, tag) == n),
        "{} of {n} {tag} stored\n{}",
        stored_with(s, tag),
        s.log_tail()
    );
}

/// Waits until exactly one stored event carries `tag`; fails with the daemon's log otherwise.
fn wait_stored_once(s: &Server, tag: &str) {
    wait_stored(s, tag, 1, 20);
}

fn prompt(s: &Server, pane: &str, sid: &str, text: &str) {
    s.claude(
        pane,
        json!({"session_id": sid, "hook_event_name": "UserPromptSubmit", "prompt": text}),
    );
}

fn stop(s: &Server, pane: &str, sid: &str) {
    s.claude(pane, json!({"session_id": sid, "hook_event_name": "Stop"}));
}

/// A prompt carrying `tag` and its Stop: the pane is idle and the prompt stored once.
fn settled_turn(s: &Server, pane: &str, sid: &str, tag: &str) {
    prompt(s, pane, sid, tag);
    stop(s, pane, sid);
    s.wait_pane(pane, "@agtmux_state", "idle", 15);
    wait_stored_once(s, tag);
}

/// Waits until the registry row of `sock` is in the database file at the db path.
fn wait_registered(s: &Server, sock: &str) {
    assert!(
        wait_until(30, || registry_rows(s).iter().any(|r| r.1 == sock)),
        "rows at the path: {:?}\n{}",
        registry_rows(s),
        s.log_tail()
    );
}

#[test]
fn a_store_outage_longer_than_every_redelivery_drops_no_accepted_event() {
    let mut s = Server::start("outage");
    let pane = s.silent_agent("claude");
    // Redeliveries run out after ~1 s here, as after ~10 s with the defaults.
    s.daemon_on_fresh_store(&[
        ("AGTMUX_ACK_TIMEOUT_MS", "200"),
        ("AGTMUX_ACK_MAX_ATTEMPTS", "3"),
    ]);
    let holder = s.lock_store();
    for i in 0..20 {
        prompt(&s, &pane, "o1", &format!("heldprompt-{i}"));
        stop(&s, &pane, "o1");
    }
    prompt(&s, &pane, "o1", "heldprompt-last");
    // Applied from memory at once; the outage is shown while it lasts.
    s.wait_pane(&pane, "@agtmux_state", "running", 15);
    let st = s.wait_global(
        "@agtmux_daemon",
        |v| {
            v.contains("degraded")
                && v.contains("store:locked")
                && v.contains("ack_retry_exhausted")
        },
        30,
    );
    assert!(!st.contains(" ok"), "{st}");
    // Exhausted, yet nothing dropped: the batches are held, rows and cursor.
    let h = s.health();
    assert_eq!(h["result"]["delivery"]["drops"], 0, "{h}");
    s.wait_log("delivery_held token=", 20);
    let h = s.health();
    assert!(
        h["result"]["store"]["held_rows"].as_u64().unwrap_or(0) >= 1,
        "{h}"
    );
    // Longer than every retry: nothing is dropped, the cursor stays before the held events.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!s.log().contains("delivery_dropped"), "{}", s.log_tail());
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    // The store is back: every held event is stored, once, and the status is ok again.
    wait_stored(&s, "heldprompt-", 21, 30);
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
    let (n, d): (u64, u64) =
        s.db_two("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events_raw_v2");
    assert_eq!(n, d, "nothing stored twice");
    assert_eq!(n, 41, "20 prompts, 20 stops, 1 prompt");
    let (committed, fetched): (String, Option<String>) = s.db_two("SELECT committed_cursor, fetched_cursor FROM cursor_state_v2 WHERE source_id='hooks_spool'");
    assert_eq!(Some(committed), fetched, "the cursor caught up");
}

/// Makes a file unwritable even for root (`chattr +i`), or by mode for anyone else; undone on
/// drop so the test dir can go.
struct Unwritable(std::path::PathBuf);

impl Unwritable {
    fn new(p: &std::path::Path) -> Unwritable {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        Unwritable(p.to_path_buf())
    }
    fn undo(&self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o600));
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        self.undo();
    }
}

#[test]
fn a_daemon_started_on_an_unwritable_database_recovers_once_it_is_writable() {
    let mut s = Server::start("rodb");
    let pane = s.silent_agent("claude");
    {
        let st = agtmux::store::Store::open(&s.db_path()).unwrap();
        drop(st);
    }
    let ro = Unwritable::new(&s.db_path());
    s.start_daemon();
    prompt(&s, &pane, "r1", "readonly-1");
    s.wait_pane(&pane, "@agtmux_state", "running", 15);
    let st = s.wait_global("@agtmux_daemon", |v| v.contains("store:"), 20);
    ro.undo();
    wait_stored(&s, "readonly-1", 1, 30);
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 20);
    assert!(
        st.contains("store:readonly"),
        "the status named the fault: {st}"
    );
    prompt(&s, &pane, "r1", "readonly-2");
    wait_stored_once(&s, "readonly-2");
    // Not flapping between recovered and failed.
    let l = s.log();
    assert!(
        l.matches("store_recovered").count() + l.matches("store_reopened").count() <= 2,
        "{l}"
    );
}

#[test]
fn a_deleted_database_is_noticed_and_rebuilt_with_everything_it_held() {
    let (s, pane) = Server::with_agent("deldb", "claude");
    prompt(&s, &pane, "d1", "before-delete");
    wait_stored_once(&s, "before-delete");
    let old_ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(s.db_path()).unwrap().ino()
    };
    std::fs::remove_file(s.db_path()).unwrap();
    // Written while the path is gone: it must not vanish with the unlinked file.
    prompt(&s, &pane, "d1", "while-deleted");
    s.wait_log("store_file_problem problem=deleted", 30);
    assert!(
        wait_until(30, || stored_with(&s, "before-delete") == 1
            && stored_with(&s, "while-deleted") == 1),
        "{}",
        s.log_tail()
    );
    {
        use std::os::unix::fs::MetadataExt;
        assert_ne!(std::fs::metadata(s.db_path()).unwrap().ino(), old_ino);
    }
    prompt(&s, &pane, "d1", "after-rebuild");
    wait_stored_once(&s, "after-rebuild");
    let h = s.health();
    assert_eq!(
        h["result"]["store"]["last_incident"]["problem"], "deleted",
        "{h}"
    );
    assert!(h["result"]["store"]["problem"].is_null(), "{h}");
    let out = s.agtmux(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recovered from: deleted"), "{text}");
}

#[test]
fn a_database_overwritten_with_garbage_is_moved_aside_and_refilled_from_the_spool() {
    let (s, pane) = Server::with_agent("garbage", "claude");
    settled_turn(&s, &pane, "g1", "before-garbage");
    // Same inode, new content.
    std::fs::write(s.db_path(), vec![b'x'; 64 * 1024]).unwrap();
    s.wait_log("store_file_problem problem=not_a_database", 30);
    wait_stored(&s, "before-garbage", 1, 30);
    // The backfilled rows keep the status they were applied with.
    let status: String =
        s.db_one("SELECT status FROM events_raw_v2 WHERE payload LIKE '%before-garbage%'");
    assert_eq!(status, "accepted");
    prompt(&s, &pane, "g1", "after-garbage");
    wait_stored_once(&s, "after-garbage");
    s.wait_pane(&pane, "@agtmux_state", "running", 15);
    assert!(s.has_corrupt_copy(), "the garbage was kept aside");
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 20);
}

#[test]
fn what_is_held_for_a_down_store_is_bounded_and_the_spool_is_read_on_after_it() {
    let mut s = Server::start("holdcap");
    let pane = s.silent_agent("claude");
    s.daemon_on_fresh_store(&[
        ("AGTMUX_ACK_TIMEOUT_MS", "200"),
        ("AGTMUX_ACK_MAX_ATTEMPTS", "2"),
        ("AGTMUX_HOLD_MAX_ROWS", "5"),
    ]);
    let holder = s.lock_store();
    for i in 0..12 {
        prompt(&s, &pane, "h1", &format!("capped-{i}"));
    }
    // Past the bound the daemon stops reading the spool (it keeps the lines).
    s.wait_log("ingest_paused reason=store_unavailable", 30);
    let h = s.health();
    let held = h["result"]["store"]["held_rows"].as_u64().unwrap_or(0);
    assert!(h["result"]["store"]["ingest_paused"] == true, "{h}");
    assert_eq!(held, 5, "never past the bound: {h}");
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    // Back: what was held is stored, the rest read from the spool, all once.
    wait_stored(&s, "capped-", 12, 30);
    assert!(s.log().contains("ingest_resumed"), "{}", s.log_tail());
    s.wait_global("@agtmux_daemon", |v| v.ends_with(" ok"), 30);
}

/// Issue 16 (follow-up): a rotated spool file (`spool.<ns>.old`) is the only copy of the lines
/// in it that the store does not have yet; a crash mid-rotation leaves one, and a hook that
/// opened the file before the rename may append to it after. Such a file is read at start-up;
/// it must be kept until the store has its lines, even when the store is down then and the
/// daemon is killed again before it is back.
#[test]
fn a_rotated_spool_is_kept_until_the_store_has_its_lines_across_an_outage_and_a_restart() {
    let (mut s, pane) = Server::with_agent("oldspool", "claude");
    settled_turn(&s, &pane, "r1", "rot-before");
    s.kill_daemon_hard();
    // Accepted by the hook (in the spool), never stored: the daemon is down.
    for i in 0..5 {
        prompt(&s, &pane, "r1", &format!("rot-late-{i}"));
    }
    // The state a crash mid-rotation leaves: the spool renamed aside, nothing at its path.
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let old = s.server_dir().join(format!("spool.{ns:020}.old"));
    std::fs::rename(s.spool_path(), &old).unwrap();
    // The store is down when the next daemon starts and reads that file.
    let holder = s.lock_store();
    s.start_daemon();
    // Applied from memory (a positive sign the file was read), held for the store.
    s.wait_pane(&pane, "@agtmux_state", "running", 20);
    assert!(
        wait_until(20, || s.health()["result"]["store"]["held_rows"]
            .as_u64()
            .unwrap_or(0)
            >= 1),
        "{}\n{}",
        s.health(),
        s.log_tail()
    );
    // Killed before the store is back: the rotated file is still the only copy.
    s.kill_daemon_hard();
    assert!(
        old.exists(),
        "the rotated spool was deleted before its lines were stored"
    );
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.start_daemon();
    prompt(&s, &pane, "r1", "rot-marker");
    wait_stored(&s, "rot-marker", 1, 30);
    wait_stored(&s, "rot-late-", 5, 30);
    // Once the store has them, the rotated file goes.
    assert!(
        wait_until(30, || !old.exists()),
        "the drained rotated spool stays\n{}",
        s.log_tail()
    );
}

/// Source registry rows in the database file at the db path.
fn registry_rows(s: &Server) -> Vec<(String, String, String)> {
    let Ok(c) = rusqlite::Connection::open_with_flags(
        s.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    c.busy_timeout(Duration::from_secs(2)).ok();
    let Ok(mut st) = c
        .prepare("SELECT source_id, socket_path, state FROM source_registry_v1 ORDER BY source_id")
    else {
        return Vec::new();
    };
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// Issue 16 (follow-up): every connection the daemon holds moves to the rebuilt database, the
/// source registry's too: its writes must not go on into the deleted (or garbage) file.
#[test]
fn after_a_rebuild_the_source_registry_writes_the_new_database() {
    let (s, pane) = Server::with_agent("regdb", "claude");
    let reg = |sock: &str| {
        let r = s.api(
            "source.register",
            json!({"source_kind": "codex_appserver", "socket_path": sock}),
        );
        assert!(r["error"].is_null(), "{r}");
    };
    reg("/tmp/agtmux-regdb-a.sock");
    wait_registered(&s, "/tmp/agtmux-regdb-a.sock");
    prompt(&s, &pane, "x1", "reg-before");
    wait_stored_once(&s, "reg-before");
    std::fs::remove_file(s.db_path()).unwrap();
    s.wait_log("store_reopened", 30);
    // A socket rotation after the rebuild: the row in the file at the path follows.
    reg("/tmp/agtmux-regdb-b.sock");
    wait_registered(&s, "/tmp/agtmux-regdb-b.sock");
    // Overwritten with garbage: moved aside, started fresh, and the registry written again.
    std::fs::write(s.db_path(), vec![b'x'; 64 * 1024]).unwrap();
    s.wait_log("store_file_problem problem=not_a_database", 30);
    wait_registered(&s, "/tmp/agtmux-regdb-b.sock");
}
