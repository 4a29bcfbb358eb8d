//! `agtmux snapshot create|list|restore` (Flow-010): operator access to the state snapshots
//! the daemon takes every 15 minutes and at shutdown (`src/daemon/snapshot.rs`).
//!
//! - `create` copies the database now (its own connection, one backup step: works whether the
//!   daemon runs or not, and never blocks it) and records it in `state_snapshot_v2`;
//! - `list` shows the snapshot files with their metadata;
//! - `restore --dry-run [--from PATH]` checks a snapshot's cursors, bindings and state against
//!   each other and the live spool, and reports (text or `--json`); exit 1 when inconsistent;
//! - `restore [--from PATH] [--force]` replaces the database with the snapshot, only while no
//!   daemon runs for the server, keeping the old file as `agtmux.db.pre-restore-<ms>`.
//!
//! Every restore (dry-run included) counts in the restore success rate.
use super::client::ServerOpts;
use crate::daemon::snapshot::{self, RestoreStats, SnapshotError};
use crate::exit::ExitCode;
use crate::store::Store;
use crate::sys::clock::now_ms;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub action: SnapshotAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotAction {
    /// Copy the database now.
    Create {
        #[command(flatten)]
        server: ServerOpts,
        #[arg(long)]
        json: bool,
    },
    /// List snapshots, newest first.
    List {
        #[command(flatten)]
        server: ServerOpts,
        #[arg(long)]
        json: bool,
    },
    /// Check a snapshot (--dry-run) or put it in place of the database (daemon stopped).
    Restore {
        #[command(flatten)]
        server: ServerOpts,
        /// Only check and report; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The snapshot file (default: the newest one).
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
        /// Restore even when the check finds errors.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: &SnapshotArgs) -> ExitCode {
    match run_inner(args, &mut std::io::stdout()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agtmux: snapshot: {e}");
            ExitCode::Failure
        }
    }
}

fn run_inner(args: &SnapshotArgs, out: &mut dyn std::io::Write) -> Result<ExitCode, SnapshotError> {
    let sp = match &args.action {
        SnapshotAction::Create { server, .. }
        | SnapshotAction::List { server, .. }
        | SnapshotAction::Restore { server, .. } => server.paths(),
    };
    let db = sp.db();
    let at = Where {
        dir: snapshot::snapshot_dir(&db),
        db,
        sp,
    };
    match &args.action {
        SnapshotAction::Create { json, .. } => create(&at, *json, out),
        SnapshotAction::List { json, .. } => list(&at, *json, out),
        SnapshotAction::Restore {
            dry_run,
            from,
            force,
            json,
            ..
        } => {
            let src = match from {
                Some(p) => p.clone(),
                None => snapshot::list_files(&at.dir)
                    .first()
                    .map(|f| f.path.clone())
                    .ok_or_else(|| SnapshotError::NoSnapshot(at.dir.clone()))?,
            };
            restore(&at, &src, *dry_run, *force, *json, out)
        }
    }
}

/// The server's database and its snapshot directory.
struct Where {
    sp: crate::paths::ServerPaths,
    db: PathBuf,
    dir: PathBuf,
}

fn w(out: &mut dyn std::io::Write, s: String) {
    let _ = writeln!(out, "{s}");
}

/// `snapshot create`: a manual snapshot now, recorded, the oldest beyond the kept count pruned.
fn create(at: &Where, json: bool, out: &mut dyn std::io::Write) -> Result<ExitCode, SnapshotError> {
    if !at.db.exists() {
        return Err(SnapshotError::NoSnapshot(at.db.clone()));
    }
    let mut store = Store::open(&at.db)?;
    let t = snapshot::take(&store, &at.dir, "manual", now_ms())?;
    let keep = snapshot::SnapshotConfig::from_env().keep;
    snapshot::record_and_prune(&mut store, &t, keep)?;
    if json {
        w(
            out,
            json!({"path": t.path.to_string_lossy(), "size": t.size, "took_ms": t.took_ms, "created_ts": t.created_ts})
                .to_string(),
        );
    } else {
        w(
            out,
            format!(
                "snapshot {} ({} bytes, {} ms)",
                t.path.display(),
                t.size,
                t.took_ms
            ),
        );
    }
    Ok(ExitCode::Ok)
}

/// `snapshot list`: the snapshot files, newest first, and (JSON) the restore record.
fn list(at: &Where, json: bool, out: &mut dyn std::io::Write) -> Result<ExitCode, SnapshotError> {
    let files = snapshot::list_files(&at.dir);
    let rows = if at.db.exists() {
        Store::open(&at.db)
            .and_then(|s| s.snapshots())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let now = now_ms();
    if json {
        let stats = RestoreStats::load(&at.dir);
        let v = json!({
            "dir": at.dir.to_string_lossy(),
            "snapshots": files.iter().map(|f| {
                let p = f.path.to_string_lossy();
                json!({"path": p, "created_ts": f.created_ts, "reason": f.reason,
                       "size": f.size, "age_ms": now - f.created_ts,
                       "recorded": rows.iter().any(|r| r.path == p)})
            }).collect::<Vec<_>>(),
            "restore": {"attempts": stats.attempts, "successes": stats.successes,
                        "success_rate": stats.success_rate()},
        });
        w(out, v.to_string());
    } else if files.is_empty() {
        w(out, format!("no snapshots in {}", at.dir.display()));
    } else {
        for f in &files {
            w(
                out,
                format!(
                    "{}  {:>9} bytes  {:<8}  {} ago",
                    f.path.display(),
                    f.size,
                    f.reason,
                    super::client::age(now, f.created_ts)
                ),
            );
        }
    }
    Ok(ExitCode::Ok)
}

/// `snapshot restore`: check `src` against the spool; with `--dry-run` report only, else put
/// it in place of the database (no daemon running; an inconsistent one only with `--force`).
/// Every attempt is counted in the restore record.
fn restore(
    at: &Where,
    src: &std::path::Path,
    dry_run: bool,
    force: bool,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<ExitCode, SnapshotError> {
    let checked = snapshot::check(src, &at.sp.spool());
    let rep = match checked {
        Ok(r) => r,
        Err(e) => {
            RestoreStats::record(&at.dir, false, now_ms());
            return Err(e);
        }
    };
    if dry_run {
        RestoreStats::record(&at.dir, rep.is_consistent(), now_ms());
        if json {
            w(out, rep.to_json().to_string());
        } else {
            let _ = write!(out, "{}", rep.to_text());
        }
        return Ok(if rep.is_consistent() {
            ExitCode::Ok
        } else {
            ExitCode::Failure
        });
    }
    let result = (|| {
        if crate::daemon::lock_held(&at.sp) {
            return Err(SnapshotError::DaemonRunning);
        }
        if !rep.is_consistent() && !force {
            return Err(SnapshotError::Inconsistent(rep.errors()));
        }
        snapshot::restore_file(&at.db, src, now_ms())
    })();
    RestoreStats::record(&at.dir, result.is_ok(), now_ms());
    let old = result?;
    if json {
        w(
            out,
            json!({"restored": src.to_string_lossy(), "previous": old.to_string_lossy(),
                   "report": rep.to_json()})
            .to_string(),
        );
    } else {
        w(
            out,
            format!(
                "restored {} into {}; the previous database is {}",
                src.display(),
                at.db.display(),
                old.display()
            ),
        );
    }
    Ok(ExitCode::Ok)
}
