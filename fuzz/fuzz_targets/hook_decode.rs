//! Hook spool lines: envelope + Claude/Codex payload decoding and validation
//! (src/sources/hook_spool.rs `decode_line`). Any bytes must give an event or a reject with a
//! reason, never a panic; the event id is stable for the same bytes.
#![no_main]
use agtmux::sources::Pulled;
use agtmux::sources::hook_spool::{decode_line, decode_line_with, line_event_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = "fuzzkey";
    for truncated in [false, true] {
        match decode_line(data, truncated, key) {
            Pulled::Rejected { reason, .. } => assert!(!reason.is_empty(), "reject without reason"),
            Pulled::Event { event, .. } => {
                assert!(!truncated, "truncated line accepted: {event:?}")
            }
        }
    }
    let _ = decode_line_with(data, false, key, &|_, _| true);
    assert_eq!(line_event_id(data), line_event_id(data));
});
