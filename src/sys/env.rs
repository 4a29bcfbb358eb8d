//! Numeric knobs from the environment (`AGTMUX_*_MS` and the like, for operators and tests).
//!
//! WHY one module: every override follows one rule — the value trimmed, then parsed as a
//! number; unset or unparsable is ignored (the default stays) — and each config's `from_env`
//! says only which knob sets which field and what range it accepts.
use std::str::FromStr;

/// The variable `key` as a number, if it is set and parses (surrounding blanks allowed). A set
/// value that does not parse is logged (`env_ignored`) so an operator sees why it had no effect.
pub(crate) fn number<T: FromStr>(key: &str) -> Option<T> {
    let raw = std::env::var(key).ok()?;
    let v = raw.trim().parse().ok();
    if v.is_none() {
        log::warn!("env_ignored key={key} value={raw:?} reason=not_a_number");
    }
    v
}

/// [`number`], kept only when above zero (a zero or negative value is logged and ignored).
pub(crate) fn positive<T: FromStr + PartialOrd + Default>(key: &str) -> Option<T> {
    let v = number(key)?;
    if v > T::default() {
        Some(v)
    } else {
        log::warn!("env_ignored key={key} reason=not_above_zero");
        None
    }
}
