//! Calendar arithmetic for the few timestamps agtmux reads or writes as text: ISO-8601 times
//! in agent transcripts (`2026-12-03T12:53:36.059Z`) and the compact UTC stamps of backup file
//! names. Pure: the caller passes the time in.
//!
//! WHY hand-written and not `jiff` (which env_logger pulls in): agtmux needs two conversions
//! between a civil date and days since 1970 (Howard Hinnant's algorithms) and one strict
//! parser; a direct dependency on a full date-time crate would be larger than all of this, and
//! its more lenient parser would accept timestamps the transcripts never write.
use crate::core::types::Millis;

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12, `day` 1–31).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-12-03T12:53:36.059Z` (or with `+HH:MM` / `-HH:MM`) → epoch ms; `None` for anything
/// else. Never panics, whatever the text holds.
pub fn parse_iso_ms(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = digits.parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        // Byte checks only: the text is whatever a file says, so it may hold a multi-byte
        // character where a digit belongs (slicing `&t[3..4]` there once killed the daemon).
        t if t.len() == 6
            && (t.starts_with('+') || t.starts_with('-'))
            && t.as_bytes()[3] == b':' =>
        {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if t.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3_600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1_000 + ms)
}

/// `YYYYmmddTHHMMSS` in UTC for epoch seconds (backup file names).
pub(crate) fn utc_stamp(epoch_secs: u64) -> String {
    let (y, m, d) = civil_from_days((epoch_secs / 86_400) as i64);
    let rem = epoch_secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `2026-12-03T12:53:36.059Z` for epoch ms: how Claude stamps transcript entries and Codex
/// its rollout lines (the inverse of [`parse_iso_ms`]).
pub fn iso_utc_ms(ms: Millis) -> String {
    let secs = ms.div_euclid(1_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms.rem_euclid(1_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        for days in (-146_097..2 * 146_097).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    #[test]
    fn iso_text_round_trips_and_stamps_are_utc() {
        for ms in [0, 1, 951_782_400_000, 1_796_302_416_059, 4_102_444_799_999] {
            assert_eq!(parse_iso_ms(&iso_utc_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(iso_utc_ms(1_796_302_416_059), "2026-12-03T12:53:36.059Z");
        assert_eq!(utc_stamp(0), "19700101T000000");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000");
        assert_eq!(utc_stamp(1_795_633_842), "20261125T191042");
    }

    #[test]
    fn iso_timestamps_parse_to_epoch_ms() {
        assert_eq!(parse_iso_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(
            parse_iso_ms("2000-03-01T00:00:00.000Z"),
            Some(951_868_800_000)
        );
        assert_eq!(
            parse_iso_ms("2026-12-03T13:53:36.059+01:00"),
            parse_iso_ms("2026-12-03T12:53:36.059Z")
        );
        for bad in [
            "",
            "2026-12-03",
            "2026-13-03T00:00:00Z",
            "2026-12-03T00:00:00",
            "x026-12-03T00:00:00Z",
            "2026-12-03T00:00:00.Z",
        ] {
            assert_eq!(parse_iso_ms(bad), None, "{bad}");
        }
    }

    /// Issue 16: a multi-byte character inside a timestamp panicked (`&t[3..4]` cut into it).
    /// Every position of every valid shape, with a 2-, 3- and 4-byte character, gives `None`.
    #[test]
    fn multibyte_characters_in_a_timestamp_are_rejected_not_a_panic() {
        assert_eq!(parse_iso_ms("2026-12-04T10:00:00+0\u{e9}00"), None);
        assert_eq!(parse_iso_ms("2026-12-04T10:00:00+01\u{e9}0"), None);
        assert_eq!(parse_iso_ms("2026-12-04T10:00:00+1:00"), None);
        assert_eq!(parse_iso_ms("2026-12-04T10:00:00++1:00"), None);
        assert_eq!(parse_iso_ms("2026-12-04T10:00:00+01:+1"), None);
        for good in [
            "2026-12-04T10:00:00+01:00",
            "2026-12-04T10:00:00.123-05:30",
            "2026-12-04T10:00:00Z",
        ] {
            assert!(parse_iso_ms(good).is_some(), "{good}");
            for ch in ['\u{e9}', '\u{20ac}', '\u{1f600}'] {
                for at in 0..=good.len() {
                    let mut t = good.to_string();
                    t.insert(at, ch);
                    assert_eq!(parse_iso_ms(&t), None, "{t}");
                    if at < good.len() {
                        let t = format!("{}{ch}{}", &good[..at], &good[at + 1..]);
                        assert_eq!(parse_iso_ms(&t), None, "{t}");
                    }
                }
            }
        }
    }
}
