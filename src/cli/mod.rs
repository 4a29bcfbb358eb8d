//! One file per subcommand; `main.rs` only parses and dispatches.
pub mod classify;
pub mod hook;
pub mod setup;
