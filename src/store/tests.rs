//! Store tests on real SQLite files in unique temp dirs.
use super::*;
use crate::core::types::{Activity, AttentionKind, Evidence, Health, Presence, Provider};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique temp dir removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "agtmux-store-{name}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn db(&self) -> PathBuf {
        self.0.join("state").join("agtmux.db")
    }
}

/// The event ids of a read, in its order.
fn ids(events: Result<Vec<EventRow>, StoreError>) -> Vec<String> {
    events.unwrap().into_iter().map(|e| e.event_id).collect()
}

/// A store in a fresh temp dir, which lives as long as the returned guard.
fn temp_store(tag: &str) -> (TempDir, Store) {
    let dir = TempDir::new(tag);
    let s = Store::open(&dir.db()).unwrap();
    (dir, s)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ev(id: &str, pane: &str, ts: Millis) -> EventRow {
    EventRow {
        seq: 0,
        event_id: id.to_string(),
        server_key: "srv".to_string(),
        source: "claude_hooks".to_string(),
        provider: Some("claude".to_string()),
        pane_id: Some(pane.into()),
        session_key: Some(format!("sess-{pane}")),
        name: "PreToolUse".to_string(),
        status: EventStatus::Accepted,
        reason: None,
        recv_ts: ts,
        ingest_ts: ts,
        payload: r#"{"tool":"Bash"}"#.to_string(),
        hops: "{}".to_string(),
    }
}

fn pane(id: &str, activity: Activity) -> PaneStateRow {
    PaneStateRow {
        server_key: "srv".to_string(),
        server_id: "srv-1".to_string(),
        pane_id: id.into(),
        generation: 1,
        birth_ts: 100,
        presence: Presence::Managed,
        provider: Some(Provider::Claude),
        evidence: Evidence::Deterministic,
        activity,
        attention: activity.attention(),
        title: "fix the bug".to_string(),
        title_source: "session".to_string(),
        session_key: Some("s1".to_string()),
        winner_source: Some("claude_hooks".to_string()),
        since_ts: 200,
        updated_ts: 300,
        state_version: 0,
        extra: "{}".to_string(),
    }
}

fn binding(pane_id: &str, linked: Millis) -> BindingRow {
    BindingRow {
        id: 0,
        server_key: "srv".to_string(),
        server_id: "srv-1".to_string(),
        pane_id: pane_id.into(),
        generation: 1,
        birth_ts: 100,
        session_key: format!("sess-{pane_id}"),
        provider: Provider::Codex,
        linked_ts: linked,
        unlinked_ts: None,
        reason: "handshake".to_string(),
        tombstone_until: None,
    }
}

fn tables(path: &Path) -> Vec<String> {
    let c = Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

const ALL_TABLES: &[&str] = &[
    "alert_ledger_v1",
    "binding_link_v2",
    "cursor_state_v2",
    "events_raw_v2",
    "meta_kv",
    "pane_state_v2",
    "session_state_v2",
    "source_health_v2",
    "source_registry_v1",
    "state_snapshot_v2",
];

#[test]
fn migrates_from_empty_and_reopen_is_a_no_op() {
    let dir = TempDir::new("migrate");
    let path = dir.db();
    {
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let mut tx = s.begin().unwrap();
        tx.set_meta("server_identity", "abc").unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(tables(&path), ALL_TABLES);
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let pragma =
        |name: &str| -> i64 { s.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap() };
    assert_eq!(pragma("synchronous"), 1, "synchronous=NORMAL");
    assert_eq!(pragma("busy_timeout"), 2000);
    assert_eq!(s.meta("server_identity").unwrap().as_deref(), Some("abc"));
    assert_eq!(tables(&path), ALL_TABLES);
}

#[test]
fn second_migration_applies_on_top_of_the_first() {
    let dir = TempDir::new("migrate2");
    let path = dir.db();
    {
        let mut s = Store::open_to(&path, &StoreOptions::default(), 1).unwrap();
        assert_eq!(s.schema_version().unwrap(), 1);
        let mut tx = s.begin().unwrap();
        assert!(tx.insert_event(&ev("e1", "%1", 10)).unwrap());
        tx.commit().unwrap();
    }
    assert!(!tables(&path).contains(&"alert_ledger_v1".to_string()));
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.has_event("e1").unwrap());
    assert_eq!(tables(&path), ALL_TABLES);
}

#[test]
fn registry_rows_of_version_2_read_as_operator_registrations() {
    let dir = TempDir::new("migrate3");
    let path = dir.db();
    {
        let _ = Store::open_to(&path, &StoreOptions::default(), 2).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "INSERT INTO source_registry_v1 (source_id, source_kind, socket_path, owner_uid, \
                 state, updated_ts) VALUES ('x:0', 'x', '/run/x.sock', 0, 'active', 1)",
            )
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let rows = s.source_registry().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].registered_by, "operator");
    assert_eq!(rows[0].state, "active");
}

#[test]
fn concurrent_first_opens_migrate_once() {
    let dir = TempDir::new("race");
    let path = dir.db();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || Store::open(&p).map(|s| s.schema_version()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
    }
    assert_eq!(tables(&path), ALL_TABLES);
}

#[test]
fn newer_schema_is_refused() {
    let dir = TempDir::new("newer");
    let path = dir.db();
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err,
        StoreError::TooNew {
            found: SCHEMA_VERSION + 5,
            supported: SCHEMA_VERSION
        }
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(!err.is_corrupt() && !err.is_locked());
}

#[test]
fn failed_migration_rolls_back_as_a_whole() {
    let dir = TempDir::new("failmig");
    let path = dir.db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A stray table that clashes with the last statement of migration 1.
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE meta_kv (x INTEGER)")
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("migration 1"), "{err}");
    // Nothing of step 1 survived, and the version did not move.
    assert_eq!(tables(&path), vec!["meta_kv".to_string()]);
    let v: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 0);
}

#[test]
fn open_fails_cleanly_when_the_parent_is_a_file() {
    let dir = TempDir::new("openfail");
    let blocker = dir.0.join("state");
    std::fs::write(&blocker, b"not a dir").unwrap();
    let err = Store::open(&blocker.join("agtmux.db")).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("cannot open or create"),
        "{err}"
    );
}

#[test]
fn garbage_file_is_reported_corrupt() {
    let dir = TempDir::new("garbage");
    let path = dir.db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // xorshift noise: deterministic, but nothing like an SQLite header.
    let mut x = crate::core::rng::XorShift64::new(0x9E37_79B9_7F4A_7C15);
    let bytes: Vec<u8> = (0..8192).map(|_| (x.next_u64() >> 24) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
    assert!(!err.is_locked());
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn damaged_pages_are_reported_corrupt_and_can_be_quarantined() {
    let dir = TempDir::new("damaged");
    let path = dir.db();
    {
        let mut s = Store::open(&path).unwrap();
        let mut tx = s.begin().unwrap();
        for i in 0..200 {
            tx.insert_event(&ev(&format!("e{i}"), "%1", i)).unwrap();
            tx.upsert_pane_state(&pane(&format!("%{i}"), Activity::Idle))
                .unwrap();
        }
        tx.commit().unwrap();
        s.quick_check().unwrap();
    } // Last close checkpoints the WAL into the main file.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
    // Keep page 1 (header + schema), smash every table and index page.
    for b in &mut bytes[4096..] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    // Damage shows up at open (or at the first read that touches a bad page): never a panic.
    match Store::open(&path) {
        Err(err) => assert!(err.is_corrupt(), "{err:?}"),
        Ok(s) => {
            assert!(s.quick_check().unwrap_err().is_corrupt());
            let err = s.pane_states("srv").unwrap_err();
            assert!(err.is_corrupt(), "{err:?}");
        }
    }
    let moved = Store::quarantine(&path, 42).unwrap();
    assert!(moved.to_string_lossy().ends_with(".corrupt-42"));
    assert!(moved.exists() && !path.exists());
    let fresh = Store::open(&path).unwrap();
    assert_eq!(fresh.event_count().unwrap(), 0);
}

#[test]
fn insert_event_dedups_on_event_id() {
    let (_dir, mut s) = temp_store("dedup");
    let mut tx = s.begin().unwrap();
    assert!(tx.insert_event(&ev("e1", "%1", 10)).unwrap());
    assert!(!tx.insert_event(&ev("e1", "%1", 11)).unwrap());
    assert!(tx.has_event("e1").unwrap());
    tx.commit().unwrap();
    let mut tx = s.begin().unwrap();
    let mut replay = ev("e1", "%2", 12);
    replay.status = EventStatus::Rejected;
    assert!(!tx.insert_event(&replay).unwrap());
    assert!(tx.insert_event(&ev("e2", "%1", 13)).unwrap());
    tx.commit().unwrap();
    assert_eq!(s.event_count().unwrap(), 2);
    // The first write wins; the replay changed nothing.
    let e1 = s.event("e1").unwrap().unwrap();
    assert_eq!(e1.recv_ts, 10);
    assert_eq!(e1.status, EventStatus::Accepted);
    assert!(s.has_event("e2").unwrap());
    assert!(!s.has_event("e3").unwrap());
}

#[test]
fn dropped_transaction_leaves_nothing() {
    let (dir, mut s) = temp_store("rollback");
    let path = dir.db();
    let mut tx = s.begin().unwrap();
    tx.set_cursor("claude_hooks", "c1", None, 1).unwrap();
    tx.commit().unwrap();
    {
        let mut tx = s.begin().unwrap();
        for i in 0..5 {
            assert!(tx.insert_event(&ev(&format!("e{i}"), "%1", i)).unwrap());
        }
        tx.upsert_pane_state(&pane("%1", Activity::Running))
            .unwrap();
        tx.set_cursor("claude_hooks", "c2", Some("c3"), 2).unwrap();
        assert_eq!(
            tx.cursor("claude_hooks").unwrap().unwrap().committed_cursor,
            "c2"
        );
        // Dropped here: the daemon died before commit.
    }
    let check = |s: &Store| {
        let c = s.cursor("claude_hooks").unwrap().unwrap();
        assert_eq!(
            (c.committed_cursor.as_str(), c.fetched_cursor, c.updated_ts),
            ("c1", None, 1)
        );
        assert_eq!(s.event_count().unwrap(), 0);
        assert!(s.pane_state("srv", &"%1".into()).unwrap().is_none());
    };
    check(&s);
    drop(s);
    check(&Store::open(&path).unwrap());
    // An explicit rollback behaves the same.
    let mut s = Store::open(&path).unwrap();
    let mut tx = s.begin().unwrap();
    tx.insert_event(&ev("e9", "%1", 9)).unwrap();
    tx.rollback().unwrap();
    assert!(!s.has_event("e9").unwrap());
}

#[test]
fn cas_detects_version_conflicts() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    assert!(
        tx.cas_pane_state(&pane("%1", Activity::Running), 0)
            .unwrap()
    );
    assert_eq!(
        tx.pane_state("srv", &"%1".into())
            .unwrap()
            .unwrap()
            .state_version,
        1
    );
    // A second creator loses.
    assert!(!tx.cas_pane_state(&pane("%1", Activity::Idle), 0).unwrap());
    assert!(
        tx.cas_pane_state(&pane("%1", Activity::WaitingApproval), 1)
            .unwrap()
    );
    // A writer that read version 1 is now stale: nothing is written.
    assert!(!tx.cas_pane_state(&pane("%1", Activity::Idle), 1).unwrap());
    // A version in the future is a conflict too.
    assert!(!tx.cas_pane_state(&pane("%1", Activity::Idle), 7).unwrap());
    tx.commit().unwrap();
    let row = s.pane_state("srv", &"%1".into()).unwrap().unwrap();
    assert_eq!(row.state_version, 2);
    assert_eq!(row.activity, Activity::WaitingApproval);
    assert_eq!(row.attention, Some(AttentionKind::Approval));
    // A CAS on a missing pane with a non-zero expectation writes nothing.
    let mut tx = s.begin().unwrap();
    assert!(!tx.cas_pane_state(&pane("%2", Activity::Idle), 3).unwrap());
    assert!(tx.pane_state("srv", &"%2".into()).unwrap().is_none());

    // Sessions follow the same contract.
    let sess = SessionStateRow {
        session_key: "s1".to_string(),
        provider: Provider::Codex,
        server_key: Some("srv".to_string()),
        pane_id: Some("%1".into()),
        generation: Some(1),
        activity: Activity::Running,
        title: "t".to_string(),
        updated_ts: 5,
        state_version: 0,
    };
    assert!(tx.cas_session_state(&sess, 0).unwrap());
    assert!(!tx.cas_session_state(&sess, 0).unwrap());
    assert!(
        tx.cas_session_state(
            &SessionStateRow {
                activity: Activity::Idle,
                ..sess.clone()
            },
            1
        )
        .unwrap()
    );
    tx.commit().unwrap();
    let got = s.session_state("s1").unwrap().unwrap();
    assert_eq!((got.state_version, got.activity), (2, Activity::Idle));
}

#[test]
fn upserts_and_reads_round_trip() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    let mut p1 = pane("%1", Activity::Running);
    p1.state_version = 4;
    let mut p2 = pane("%2", Activity::Idle);
    p2.provider = None;
    p2.presence = Presence::Unmanaged;
    p2.evidence = Evidence::None;
    p2.session_key = None;
    p2.winner_source = None;
    tx.upsert_pane_state(&p1).unwrap();
    tx.upsert_pane_state(&p2).unwrap();
    p1.activity = Activity::Error;
    p1.attention = Some(AttentionKind::Error);
    tx.upsert_pane_state(&p1).unwrap();
    tx.set_source_health("poller", Health::Healthy, "", 10)
        .unwrap();
    tx.set_source_health("claude_hooks", Health::Stale, "no heartbeat", 11)
        .unwrap();
    tx.set_meta("k", "v1").unwrap();
    tx.set_meta("k", "v2").unwrap();
    tx.commit().unwrap();
    assert_eq!(s.pane_states("srv").unwrap(), vec![p1.clone(), p2.clone()]);
    assert!(s.pane_states("other").unwrap().is_empty());
    assert_eq!(s.pane_state("srv", &"%2".into()).unwrap(), Some(p2));
    let health = s.source_health().unwrap();
    assert_eq!(health.len(), 2);
    assert_eq!(health[0].source_id, "claude_hooks");
    assert_eq!(health[0].health, Health::Stale);
    assert_eq!(health[0].reason, "no heartbeat");
    assert_eq!(s.meta("k").unwrap().as_deref(), Some("v2"));
    assert_eq!(s.meta("missing").unwrap(), None);
    let mut tx = s.begin().unwrap();
    assert!(tx.delete_pane_state("srv", &"%1".into()).unwrap());
    assert!(!tx.delete_pane_state("srv", &"%1".into()).unwrap());
    assert!(tx.delete_meta("k").unwrap());
    tx.commit().unwrap();
    assert_eq!(s.pane_states("srv").unwrap().len(), 1);
}

#[test]
fn events_read_newest_first_with_status_counts_and_hops() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    for i in 0..6 {
        let mut e = ev(
            &format!("e{i}"),
            if i % 2 == 0 { "%1" } else { "%2" },
            100 + i,
        );
        if i == 3 {
            e.status = EventStatus::Rejected;
            e.reason = Some("source_inadmissible".to_string());
            e.provider = Some("gemini".to_string());
        }
        tx.insert_event(&e).unwrap();
    }
    let mut bare = ev("bare", "%9", 1);
    bare.hops = String::new();
    tx.insert_event(&bare).unwrap();
    assert!(tx.record_hop("bare", "source", 1).unwrap());
    assert!(tx.record_hop("e4", "daemon", 555).unwrap());
    assert!(tx.record_hop("e4", "client", 556).unwrap());
    assert!(!tx.record_hop("nope", "client", 1).unwrap());
    assert!(tx.record_hop("e4", "bad.hop", 1).is_err());
    tx.commit().unwrap();
    let p1 = ids(s.events_for_pane("srv", &"%1".into(), 2));
    assert_eq!(p1, vec!["e4", "e2"]);
    let sess = ids(s.events_for_session("sess-%2", 10));
    assert_eq!(sess, vec!["e5", "e3", "e1"]);
    let e3 = s.event("e3").unwrap().unwrap();
    assert_eq!(e3.status, EventStatus::Rejected);
    assert_eq!(e3.reason.as_deref(), Some("source_inadmissible"));
    assert_eq!(e3.provider.as_deref(), Some("gemini"));
    assert_eq!(e3.seq, 4);
    let hops: serde_json::Value =
        serde_json::from_str(&s.event("e4").unwrap().unwrap().hops).unwrap();
    assert_eq!(hops, serde_json::json!({"daemon": 555, "client": 556}));
    let counts = s.event_count_by_status().unwrap();
    assert_eq!(counts.get(&EventStatus::Accepted), Some(&6));
    assert_eq!(counts.get(&EventStatus::Rejected), Some(&1));
    assert_eq!(counts.get(&EventStatus::Ignored), None);
    assert_eq!(s.event("missing").unwrap(), None);
}

#[test]
fn bindings_open_close_and_list() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    let a = tx.insert_binding(&binding("%1", 10)).unwrap();
    let b = tx.insert_binding(&binding("%1", 20)).unwrap();
    let c = tx.insert_binding(&binding("%2", 30)).unwrap();
    assert!(a < b && b < c);
    assert!(tx.close_binding(a, 19, "pane_reused", Some(50)).unwrap());
    assert!(!tx.close_binding(a, 25, "again", None).unwrap());
    assert!(!tx.close_binding(999, 25, "missing", None).unwrap());
    tx.commit().unwrap();
    let open: Vec<i64> = s
        .open_bindings("srv")
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open, vec![b, c]);
    let hist = s.bindings_for_pane("srv", &"%1".into(), 10).unwrap();
    assert_eq!(hist.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(hist[1].unlinked_ts, Some(19));
    assert_eq!(hist[1].reason, "pane_reused");
    assert_eq!(hist[1].tombstone_until, Some(50));
    assert_eq!(hist[1].provider, Provider::Codex);
    assert_eq!(
        s.bindings_for_pane("srv", &"%1".into(), 1).unwrap().len(),
        1
    );
}

#[test]
fn prune_bounds_events_by_count() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    for i in 0..10 {
        tx.insert_event(&ev(&format!("e{i}"), "%1", 1000 + i))
            .unwrap();
    }
    tx.commit().unwrap();
    let r = Retention {
        max_events: 3,
        max_age_ms: 1_000_000,
    };
    assert_eq!(s.prune(&r, 2000).unwrap(), 7);
    let left = ids(s.events_for_pane("srv", &"%1".into(), 100));
    assert_eq!(left, vec!["e9", "e8", "e7"]);
    // Idempotent, and new events keep their place after a prune.
    assert_eq!(s.prune(&r, 2000).unwrap(), 0);
    let mut tx = s.begin().unwrap();
    tx.insert_event(&ev("e10", "%1", 1010)).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.prune(&r, 2000).unwrap(), 1);
    assert!(!s.has_event("e7").unwrap());
    assert!(s.has_event("e10").unwrap());
    // A zero bound empties the log.
    assert_eq!(
        s.prune(
            &Retention {
                max_events: 0,
                max_age_ms: 1_000_000
            },
            2000
        )
        .unwrap(),
        3
    );
    assert_eq!(s.event_count().unwrap(), 0);
}

#[test]
fn prune_bounds_events_and_closed_bindings_by_age() {
    let mut s = Store::open_memory().unwrap();
    let mut tx = s.begin().unwrap();
    for i in 0..10 {
        tx.insert_event(&ev(&format!("e{i}"), "%1", i * 100))
            .unwrap();
    }
    let open_old = tx.insert_binding(&binding("%1", 0)).unwrap();
    let closed_old = tx.insert_binding(&binding("%2", 0)).unwrap();
    tx.close_binding(closed_old, 100, "gone", None).unwrap();
    let closed_recent = tx.insert_binding(&binding("%3", 0)).unwrap();
    tx.close_binding(closed_recent, 900, "gone", None).unwrap();
    let tombstoned = tx.insert_binding(&binding("%4", 0)).unwrap();
    tx.close_binding(tombstoned, 100, "reused", Some(5000))
        .unwrap();
    tx.commit().unwrap();
    // now = 1000, max age 500: events with ingest_ts < 500 (e0..e4) go, one binding goes.
    let r = Retention {
        max_events: 1000,
        max_age_ms: 500,
    };
    assert_eq!(s.prune(&r, 1000).unwrap(), 5 + 1);
    assert_eq!(s.event_count().unwrap(), 5);
    assert!(!s.has_event("e4").unwrap());
    assert!(s.has_event("e5").unwrap());
    let ids = |pane: &str| -> Vec<i64> {
        s.bindings_for_pane("srv", &pane.into(), 10)
            .unwrap()
            .iter()
            .map(|b| b.id)
            .collect()
    };
    assert_eq!(ids("%1"), vec![open_old]);
    assert!(ids("%2").is_empty());
    assert_eq!(ids("%3"), vec![closed_recent]);
    assert_eq!(ids("%4"), vec![tombstoned]);
}

#[test]
fn writer_waits_then_reports_locked() {
    let (dir, mut a) = temp_store("locked");
    let path = dir.db();
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(50),
    };
    let mut b = Store::open_with(&path, &opts).unwrap();
    let mut tx = a.begin().unwrap();
    tx.insert_event(&ev("a1", "%1", 1)).unwrap();
    let err = b.begin().unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    assert!(!err.is_corrupt());
    assert!(err.to_string().contains("locked"), "{err}");
    // Readers are not blocked in WAL, and do not see uncommitted data.
    assert!(!b.has_event("a1").unwrap());
    tx.commit().unwrap();
    let mut tx = b.begin().unwrap();
    assert!(!tx.insert_event(&ev("a1", "%1", 2)).unwrap());
    tx.commit().unwrap();
    // The same against a raw connection holding an exclusive transaction.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("BEGIN EXCLUSIVE; INSERT INTO meta_kv VALUES ('x', 'y');")
        .unwrap();
    assert!(b.begin().unwrap_err().is_locked());
    raw.execute_batch("COMMIT").unwrap();
    assert_eq!(b.meta("x").unwrap().as_deref(), Some("y"));
}

#[test]
fn two_handles_share_one_file() {
    let (dir, mut a) = temp_store("two");
    let path = dir.db();
    let mut b = Store::open(&path).unwrap();
    let mut tx = a.begin().unwrap();
    tx.insert_event(&ev("a1", "%1", 1)).unwrap();
    tx.set_cursor("poller", "10", None, 1).unwrap();
    tx.commit().unwrap();
    assert!(b.has_event("a1").unwrap());
    assert_eq!(b.cursor("poller").unwrap().unwrap().committed_cursor, "10");
    let mut tx = b.begin().unwrap();
    tx.insert_event(&ev("b1", "%2", 2)).unwrap();
    tx.set_cursor("poller", "11", Some("12"), 2).unwrap();
    tx.commit().unwrap();
    assert!(a.has_event("b1").unwrap());
    assert_eq!(
        a.cursor("poller")
            .unwrap()
            .unwrap()
            .fetched_cursor
            .as_deref(),
        Some("12")
    );
    assert_eq!(a.event_count().unwrap(), 2);
}

#[test]
fn unknown_stored_values_are_skipped_in_lists_and_errors_alone() {
    let (dir, mut s) = temp_store("unknown");
    let path = dir.db();
    let mut tx = s.begin().unwrap();
    tx.upsert_pane_state(&pane("%1", Activity::Running))
        .unwrap();
    tx.upsert_pane_state(&pane("%2", Activity::Idle)).unwrap();
    tx.commit().unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE pane_state_v2 SET provider = 'aider' WHERE pane_id = '%1'",
            [],
        )
        .unwrap();
    let rows = s.pane_states("srv").unwrap();
    assert_eq!(
        rows.iter().map(|r| r.pane_id.as_str()).collect::<Vec<_>>(),
        vec!["%2"]
    );
    let err = s.pane_state("srv", &"%1".into()).unwrap_err();
    assert!(matches!(err, StoreError::Sql { .. }), "{err:?}");
    assert!(err.to_string().contains("aider"), "{err}");
}

#[test]
fn snapshot_is_a_usable_copy() {
    let (dir, mut s) = temp_store("snap");
    let mut tx = s.begin().unwrap();
    tx.insert_event(&ev("e1", "%1", 1)).unwrap();
    tx.upsert_pane_state(&pane("%1", Activity::WaitingInput))
        .unwrap();
    tx.commit().unwrap();
    let snap = dir.0.join("snapshots").join("s1.db");
    let size = s.snapshot_to(&snap).unwrap();
    assert!(size > 0);
    assert_eq!(std::fs::metadata(&snap).unwrap().len(), size);
    let mut tx = s.begin().unwrap();
    tx.record_snapshot(5, &snap.to_string_lossy(), "periodic", size, true)
        .unwrap();
    tx.commit().unwrap();
    let copy = Store::open(&snap).unwrap();
    assert!(copy.has_event("e1").unwrap());
    assert_eq!(
        copy.pane_state("srv", &"%1".into())
            .unwrap()
            .unwrap()
            .activity,
        Activity::WaitingInput
    );
    assert_eq!(copy.schema_version().unwrap(), SCHEMA_VERSION);
    copy.quick_check().unwrap();
}

#[test]
fn a_thousand_events_batch_in_one_transaction() {
    let (_dir, mut s) = temp_store("batch");
    let start = Instant::now();
    let mut tx = s.begin().unwrap();
    for i in 0..1000 {
        assert!(tx.insert_event(&ev(&format!("e{i}"), "%1", i)).unwrap());
    }
    tx.set_cursor("claude_hooks", "1000", None, 1).unwrap();
    tx.commit().unwrap();
    // Timing is informational only (benchmarks own timing goals).
    eprintln!("1000 inserts + commit: {:?}", start.elapsed());
    assert_eq!(s.event_count().unwrap(), 1000);
}
