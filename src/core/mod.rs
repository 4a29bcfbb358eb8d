//! C-008 `agtmux-core`: pure decisions. No I/O and no clock reads: plain data in, decisions
//! out, so every flow is tested by tables of scenarios.
pub mod event;
pub mod types;
