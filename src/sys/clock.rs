//! Clocks: wall time in Unix milliseconds (event times, deadlines), and the local time of day
//! for human-facing lines (`agtmux watch`).
//!
//! WHY here: every layer needs "now", and the CLI and the gateway took it from the daemon's
//! runtime; the local time zone needs `localtime_r`.
use crate::core::types::Millis;

/// Wall-clock time, Unix epoch milliseconds (0 for a clock before 1970).
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Hours, minutes and seconds of `unix_s` in the user's local time zone (UTC when the time
/// cannot be converted).
pub(crate) fn local_hms(unix_s: i64) -> (u32, u32, u32) {
    let utc = || {
        let d = unix_s.rem_euclid(86_400);
        ((d / 3600) as u32, (d / 60 % 60) as u32, (d % 60) as u32)
    };
    // time_t is 64 bits on every supported target.
    let t = unix_s as libc::time_t;
    // SAFETY: tm is plain data; localtime_r writes into our zeroed struct or returns null.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a local time_t and tm.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return utc();
    }
    (
        u32::try_from(tm.tm_hour).unwrap_or(0),
        u32::try_from(tm.tm_min).unwrap_or(0),
        u32::try_from(tm.tm_sec).unwrap_or(0),
    )
}

/// The local zone's offset from UTC at `unix_s`, seconds east (0 when it cannot be read).
/// Agents print reset times in local wall time (issue 23).
pub(crate) fn utc_offset_s(unix_s: i64) -> i64 {
    let t = unix_s as libc::time_t;
    // SAFETY: tm is plain data; localtime_r writes into our zeroed struct or returns null.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a local time_t and tm.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return 0;
    }
    // `c_long` is `i64` here, `i32` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let off = i64::from(tm.tm_gmtoff);
    off.clamp(-86_400, 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2025_and_local_time_is_in_range() {
        assert!(now_ms() > 1_735_689_600_000);
        let (h, m, s) = local_hms(now_ms() / 1000);
        assert!(h < 24 && m < 60 && s < 61);
        // Minutes and seconds agree with UTC in every whole-hour or half-hour time zone.
        let (_, m, s) = local_hms(3_600 * 24 * 365 + 7 * 60 + 9);
        assert_eq!(s, 9);
        assert!(m == 7 || m == 37 || m == 52 || m == 22, "{m}");
        let off = utc_offset_s(now_ms() / 1000);
        assert!((-86_400..=86_400).contains(&off));
    }
}
