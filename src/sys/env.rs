//! Numeric knobs from the environment (`AGTMUX_*_MS` and the like, for operators and tests).
//!
//! WHY one module: every override follows one rule — the value trimmed, then parsed as a
//! number; unset or unparsable is ignored (the default stays) — and each config's `from_env`
//! says only which knob sets which field and what range it accepts.
use std::str::FromStr;

/// The variable `key` as a number, if it is set and parses (surrounding blanks allowed).
pub(crate) fn number<T: FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok()?.trim().parse().ok()
}

/// [`number`], kept only when above zero.
pub(crate) fn positive<T: FromStr + PartialOrd + Default>(key: &str) -> Option<T> {
    number(key).filter(|v| *v > T::default())
}
