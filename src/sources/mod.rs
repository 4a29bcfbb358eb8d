//! C-004..C-006: sources turn raw input (hook spool lines, app-server messages, screens) into
//! normalized events behind one pull interface: the events after a cursor, up to a batch size.
//! The gateway (C-003) is the only caller of `pull`.
use crate::core::event::NormalizedEvent;
use crate::core::types::SourceKind;

/// An opaque, source-defined position. Stored as text in `cursor_state_v2`.
pub type Cursor = String;

/// One item a source hands to the gateway.
#[derive(Debug, Clone)]
pub enum Pulled {
    /// A valid event, with the raw bytes it came from (kept in `events_raw_v2`).
    Event { event: NormalizedEvent, raw: String },
    /// Input that failed validation. It is stored with its reason and never applied.
    Rejected {
        event_id: String,
        reason: String,
        raw: String,
        ts: i64,
    },
}

/// A batch of pulled items and the cursor that follows the last of them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub items: Vec<Pulled>,
    pub next_cursor: Cursor,
}

/// The pull interface every source answers.
pub trait Source {
    fn kind(&self) -> SourceKind;
    /// Events after `after`, at most `max`. Must not block.
    fn pull(&mut self, after: &str, max: usize) -> Batch;
}

pub mod claude_hooks;
pub mod claude_transcript;
pub mod codex_appserver;
pub mod codex_correlate;
pub mod codex_hooks;
#[cfg(feature = "testserver")]
pub mod codex_testserver;
pub mod gemini_hooks;
pub mod generic_hook;
pub(crate) mod hook_map;
pub mod hook_spool;
pub mod opencode_plugin;
pub mod remote;
pub(crate) mod seq_queue;
pub mod spool;
pub mod transcript_watch;
pub mod ws;
