//! C-008 `agtmux-core`: pure decisions. No I/O and no clock reads: plain data in, decisions
//! out, so every flow is tested by tables of scenarios.
pub mod attention;
pub mod binding;
pub mod capability;
pub mod classifier;
pub mod dialog;
pub mod event;
pub mod extras;
pub mod hash;
pub mod hysteresis;
pub(crate) mod lru;
pub(crate) mod notify;
pub mod patterns;
pub mod resolver;
pub mod rng;
pub mod screen;
pub(crate) mod seeded;
pub mod text;
pub mod time;
pub mod title;
pub mod types;
