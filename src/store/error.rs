//! `StoreError`: every way the store can fail, sorted so the daemon can react without parsing
//! strings (a corrupt file is moved aside and rebuilt, a busy file is retried later, everything
//! else is logged while the daemon keeps serving from memory).
use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;

/// A storage failure. Never a panic: the daemon keeps its in-memory state when the store fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The state directory or the database file could not be created or opened.
    Open { path: PathBuf, detail: String },
    /// The file is not an SQLite database or its pages are damaged
    /// (`SQLITE_CORRUPT` / `SQLITE_NOTADB`).
    Corrupt { detail: String },
    /// Another connection held the write lock longer than the busy timeout
    /// (`SQLITE_BUSY` / `SQLITE_LOCKED`).
    Locked { detail: String },
    /// The file or its directory is not writable for us (`SQLITE_READONLY`, or SQLite opened
    /// the file read-only). Such a connection never becomes writable: reopen it.
    ReadOnly { detail: String },
    /// Schema migration `version` failed; the step was rolled back as a whole.
    Migration { version: i64, detail: String },
    /// The file was written by a newer agtmux whose schema this build does not know.
    TooNew { found: i64, supported: i64 },
    /// Any other SQL failure (constraint, malformed JSON, unknown stored value, ...).
    Sql { op: &'static str, detail: String },
    /// A file-system failure outside SQLite (snapshot rename, size).
    Io { op: &'static str, detail: String },
}

impl StoreError {
    /// True when the database file is damaged or not a database at all.
    pub(crate) fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }

    /// True when the database cannot be written through this connection.
    pub(crate) fn is_readonly(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
    }

    /// True when another connection held the lock past the busy timeout.
    pub(crate) fn is_locked(&self) -> bool {
        matches!(self, StoreError::Locked { .. })
    }

    /// Sorts a rusqlite error: corruption and lock contention keep their own kinds whatever
    /// the operation; anything else becomes `Sql { op }`.
    pub(crate) fn sql(op: &'static str, e: rusqlite::Error) -> StoreError {
        match Self::classify(e, |detail| StoreError::Sql { op, detail }) {
            StoreError::Corrupt { detail } => StoreError::Corrupt {
                detail: format!("{op}: {detail}"),
            },
            StoreError::Locked { detail } => StoreError::Locked {
                detail: format!("{op}: {detail}"),
            },
            StoreError::ReadOnly { detail } => StoreError::ReadOnly {
                detail: format!("{op}: {detail}"),
            },
            other => other,
        }
    }

    /// Like [`StoreError::sql`] but with a caller-chosen fallback kind.
    pub(crate) fn classify(
        e: rusqlite::Error,
        otherwise: impl FnOnce(String) -> StoreError,
    ) -> StoreError {
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt { detail }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { detail }
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { detail },
            _ => otherwise(detail),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, detail } => {
                write!(
                    f,
                    "cannot open or create database {}: {detail}",
                    path.display()
                )
            }
            StoreError::Corrupt { detail } => {
                write!(f, "database is corrupt or not an SQLite database: {detail}")
            }
            StoreError::Locked { detail } => {
                write!(
                    f,
                    "database is locked by another connection (busy timeout): {detail}"
                )
            }
            StoreError::ReadOnly { detail } => {
                write!(f, "database is not writable: {detail}")
            }
            StoreError::Migration { version, detail } => {
                write!(
                    f,
                    "schema migration {version} failed and was rolled back: {detail}"
                )
            }
            StoreError::TooNew { found, supported } => write!(
                f,
                "database schema version {found} is newer than this agtmux supports \
                 ({supported}); upgrade agtmux or move the database aside"
            ),
            StoreError::Sql { op, detail } => write!(f, "sql error during {op}: {detail}"),
            StoreError::Io { op, detail } => write!(f, "i/o error during {op}: {detail}"),
        }
    }
}

impl std::error::Error for StoreError {}
