//! Flow-014 binding serial projection: the projection loop is the single writer of pane and
//! session state, and every write is a `state_version` compare-and-swap
//! ([`crate::store::Tx::cas_pane_state`], [`crate::store::Tx::cas_session_state`]).
//!
//! The writer reads the stored row, re-evaluates against it, and swaps only from the version
//! it read. A conflict (someone wrote in between: a second daemon on a shared file, a restore
//! racing a write) means re-read and re-evaluate, a bounded number of times. Re-evaluation
//! refuses a row that is *older* than what is stored (same pane instance, earlier
//! `updated_ts`): an old event delivered late or redelivered never rolls state back.
//!
//! WHY in the store path too: the projection already refuses stale events in memory
//! (`stale_event`), but the durable copy is what a restarted daemon restores from, so it must
//! hold the same guarantee on its own.
use crate::store::{PaneStateRow, SessionStateRow, StoreError, Tx};

/// Re-reads after a CAS conflict before giving up on one row.
pub(crate) const MAX_CAS_RETRIES: u32 = 3;

/// What a serial write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CasOutcome {
    /// Written at this new `state_version`.
    Written(i64),
    /// The stored row is newer: nothing written (no rollback).
    StaleSkipped,
    /// Still conflicting after the retries.
    Conflict,
}

/// Is `row` older than `stored` for the same pane instance? Decided on `updated_ts` (when the
/// single writer evaluated it): `since_ts` may legitimately move back (a fallback to the
/// screen's view), the evaluation time never does.
fn pane_older(row: &PaneStateRow, stored: &PaneStateRow) -> bool {
    stored.server_id == row.server_id
        && stored.generation == row.generation
        && row.updated_ts < stored.updated_ts
}

/// Write a pane row by compare-and-swap (Flow-014).
pub(crate) fn write_pane(tx: &mut Tx<'_>, row: &PaneStateRow) -> Result<CasOutcome, StoreError> {
    for _ in 0..=MAX_CAS_RETRIES {
        let stored = tx.pane_state(&row.server_key, &row.pane_id)?;
        let expected = match &stored {
            Some(s) if pane_older(row, s) => {
                log::info!(
                    "cas_stale_skipped pane={} stored_version={} stored_since={} row_since={}",
                    row.pane_id,
                    s.state_version,
                    s.since_ts,
                    row.since_ts
                );
                return Ok(CasOutcome::StaleSkipped);
            }
            Some(s) => s.state_version,
            None => 0,
        };
        if tx.cas_pane_state(row, expected)? {
            return Ok(CasOutcome::Written(expected + 1));
        }
        log::warn!(
            "cas_conflict pane={} expected_version={expected} action=reread",
            row.pane_id
        );
    }
    Ok(CasOutcome::Conflict)
}

/// Write a session row by compare-and-swap (Flow-014); an older `updated_ts` is refused.
pub(crate) fn write_session(
    tx: &mut Tx<'_>,
    row: &SessionStateRow,
) -> Result<CasOutcome, StoreError> {
    for _ in 0..=MAX_CAS_RETRIES {
        let stored = tx.session_state(&row.session_key)?;
        let expected = match &stored {
            Some(s) if row.updated_ts < s.updated_ts => return Ok(CasOutcome::StaleSkipped),
            Some(s) => s.state_version,
            None => 0,
        };
        if tx.cas_session_state(row, expected)? {
            return Ok(CasOutcome::Written(expected + 1));
        }
        log::warn!(
            "cas_conflict session={} expected_version={expected} action=reread",
            row.session_key
        );
    }
    Ok(CasOutcome::Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{NormalizedEvent, Signal};
    use crate::core::types::{Activity, Evidence, Presence, Provider, SourceKind};
    use crate::projection::{IgnoreReason, Projection};
    use crate::store::Store;

    fn row(since: i64, updated: i64, activity: Activity) -> PaneStateRow {
        PaneStateRow {
            server_key: "k".into(),
            server_id: "1:2".into(),
            pane_id: "%1".into(),
            generation: 1,
            birth_ts: 0,
            presence: Presence::Managed,
            provider: Some(Provider::Claude),
            evidence: Evidence::Deterministic,
            activity,
            attention: None,
            title: String::new(),
            title_source: String::new(),
            session_key: Some("s1".into()),
            winner_source: Some("claude_hooks".into()),
            since_ts: since,
            updated_ts: updated,
            state_version: 0,
            extra: "{}".into(),
        }
    }

    #[test]
    fn an_old_row_never_rolls_the_stored_state_back() {
        let mut s = Store::open_memory().unwrap();
        let mut tx = s.begin().unwrap();
        assert_eq!(
            write_pane(&mut tx, &row(2_000, 2_000, Activity::Running)).unwrap(),
            CasOutcome::Written(1)
        );
        assert_eq!(
            write_pane(&mut tx, &row(3_000, 3_000, Activity::WaitingApproval)).unwrap(),
            CasOutcome::Written(2)
        );
        // Late / redelivered old state: skipped, version and state untouched.
        assert_eq!(
            write_pane(&mut tx, &row(2_500, 2_900, Activity::Running)).unwrap(),
            CasOutcome::StaleSkipped
        );
        tx.commit().unwrap();
        let stored = s.pane_state("k", &"%1".into()).unwrap().unwrap();
        assert_eq!(stored.activity, Activity::WaitingApproval);
        assert_eq!(stored.state_version, 2);
        // A new generation (pane reused) is not "older": it is written.
        let mut tx = s.begin().unwrap();
        let mut g2 = row(10, 10, Activity::Idle);
        g2.generation = 2;
        assert_eq!(write_pane(&mut tx, &g2).unwrap(), CasOutcome::Written(3));
    }

    #[test]
    fn sessions_are_swapped_by_version_and_never_rolled_back() {
        let mut s = Store::open_memory().unwrap();
        let mk = |ts: i64, a: Activity| SessionStateRow {
            session_key: "s1".into(),
            provider: Provider::Claude,
            server_key: Some("k".into()),
            pane_id: Some("%1".into()),
            generation: Some(1),
            activity: a,
            title: String::new(),
            updated_ts: ts,
            state_version: 0,
        };
        let mut tx = s.begin().unwrap();
        assert_eq!(
            write_session(&mut tx, &mk(5, Activity::Running)).unwrap(),
            CasOutcome::Written(1)
        );
        assert_eq!(
            write_session(&mut tx, &mk(4, Activity::Idle)).unwrap(),
            CasOutcome::StaleSkipped
        );
        // A writer that raced us (version moved): our expected version is re-read.
        tx.upsert_session_state(&SessionStateRow {
            state_version: 7,
            ..mk(6, Activity::Running)
        })
        .unwrap();
        assert_eq!(
            write_session(&mut tx, &mk(8, Activity::Idle)).unwrap(),
            CasOutcome::Written(8)
        );
        tx.commit().unwrap();
        assert_eq!(
            s.session_state("s1").unwrap().unwrap().activity,
            Activity::Idle
        );
    }

    fn ev(id: &str, name: &str, signal: Signal, ts: i64) -> NormalizedEvent {
        NormalizedEvent {
            event_id: id.into(),
            source: SourceKind::ClaudeHooks,
            provider: Provider::Claude,
            pane_id: Some("%1".into()),
            session_key: Some("s1".into()),
            turn_id: None,
            name: name.into(),
            signal,
            title: None,
            cwd: None,
            detail: None,
            ts,
            extra: Default::default(),
        }
    }

    #[test]
    fn an_old_event_delivered_late_leaves_state_and_version_untouched() {
        let mut p = Projection::new("h".into());
        p.pane_added(&"%1".into(), "$1", "@1", 1_000);
        let no_focus = |_: &crate::core::types::PaneId| false;
        p.apply_event(
            &ev(
                "e1",
                "UserPromptSubmit",
                Signal::Activity(Activity::Running),
                2_000,
            ),
            2_000,
        )
        .unwrap();
        p.apply_event(
            &ev(
                "e2",
                "PermissionRequest",
                Signal::Activity(Activity::WaitingApproval),
                3_000,
            ),
            3_000,
        )
        .unwrap();
        p.resolve_dirty(3_000, &no_focus);
        let (state, version) = (p.panes["%1"].activity(), p.panes["%1"].version);
        assert_eq!(state, Activity::WaitingApproval);
        // An event older than the applied state arrives late (or is redelivered).
        let late = p.apply_event(
            &ev("e0", "Stop", Signal::Activity(Activity::Idle), 2_500),
            3_100,
        );
        assert_eq!(late, Err(IgnoreReason::StaleEvent));
        assert_eq!(IgnoreReason::StaleEvent.as_str(), "stale_event");
        let changed = p.resolve_dirty(3_100, &no_focus);
        assert!(!changed.contains(&"%1".into()) || p.panes["%1"].version == version);
        assert_eq!(p.panes["%1"].activity(), state);
        assert_eq!(p.panes["%1"].version, version);
        // The same event redelivered with its id: a duplicate, no effect either.
        let again = p.apply_event(
            &ev(
                "e2",
                "PermissionRequest",
                Signal::Activity(Activity::WaitingApproval),
                3_000,
            ),
            3_200,
        );
        assert_eq!(again, Err(IgnoreReason::Duplicate));
        assert!(again.unwrap_err().is_no_effect());
        // The stored text of a reason is its old string.
        assert_eq!(IgnoreReason::Duplicate.to_string(), "duplicate");
        assert_eq!(IgnoreReason::State("x y".into()).as_str(), "x y");
        assert_eq!(p.panes["%1"].version, version);
    }
}
