//! One line of a Claude transcript or a Codex rollout (src/sources/transcript_watch.rs
//! `parse_interrupt`, `parse_rollout_end`, `core::time::parse_iso_ms`; src/core/title.rs
//! `TranscriptTitle`). Any process that can write a followed file controls these bytes
//! (issue 16: a multi-byte character in a timestamp killed the daemon). Never a panic; a
//! parsed time only ever comes from an ASCII timestamp, and it is the line's own.
#![no_main]
use agtmux::core::title::TranscriptTitle;
use agtmux::core::time::parse_iso_ms;
use agtmux::sources::transcript_watch::{parse_interrupt, parse_rollout_end};
use libfuzzer_sys::fuzz_target;

fn line_ts(line: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    parse_iso_ms(v.get("timestamp")?.as_str()?)
}

fuzz_target!(|data: &[u8]| {
    if let Some(i) = parse_interrupt(data) {
        assert_eq!(i.ts, line_ts(data), "interrupt time is not the line's own");
    }
    if let Some(e) = parse_rollout_end(data) {
        assert!(!e.turn_id.is_empty(), "rollout end without a turn id");
        assert_eq!(e.ts, line_ts(data), "rollout time is not the line's own");
    }
    let text = String::from_utf8_lossy(data);
    if parse_iso_ms(&text).is_some() {
        assert!(
            text.is_ascii(),
            "a time parsed from non-ASCII text: {text:?}"
        );
    }
    let mut t = TranscriptTitle::new();
    t.feed_line(&text);
    t.feed_lines(text.split('\n'));
    if let Some(best) = t.best() {
        assert!(!best.is_empty());
        assert!(!best.contains('\n'), "multi-line title {best:?}");
    }
});
