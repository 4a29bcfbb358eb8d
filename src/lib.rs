//! agtmux: tells which AI coding agent in which tmux pane is working, waiting for the user,
//! asking for an approval, or failed — without looking at the pane.
//!
//! The module tree mirrors the seed architecture (`docs/architecture.md`):
//! sources → gateway → daemon projection (single writer) → read model → surfaces.
pub mod cli;
pub mod core;
pub mod daemon;
pub mod delivery;
pub mod exit;
pub mod gateway;
pub mod paths;
pub mod projection;
pub mod sources;
pub mod store;
pub mod supervisor;
pub mod sys;
#[cfg(test)]
mod testutil;
pub mod tmux;
