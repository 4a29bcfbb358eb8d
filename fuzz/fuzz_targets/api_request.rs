//! The local API request parser (src/daemon/api.rs `handle_line`): any request line gets
//! exactly one JSON answer line, never a panic.
#![no_main]
use agtmux::core::attention::Style;
use agtmux::daemon::api::{View, handle_line};
use agtmux::projection::Projection;
use agtmux::tmux::registry::Registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let projection = Projection::new("fuzzhost".into());
    let registry = Registry::default();
    let style = Style::default();
    let view = View::without_daemon(
        &projection,
        &registry,
        &style,
        Some("1:2"),
        std::path::Path::new("/tmp/agtmux-fuzz-none"),
        1_000,
    );
    let (answer, _) = handle_line(data, &view);
    assert!(answer.ends_with('\n'), "answer without newline");
    assert_eq!(answer.matches('\n').count(), 1, "answer is not one line");
    let v: serde_json::Value = serde_json::from_str(answer.trim_end()).expect("answer is JSON");
    assert!(v.get("result").is_some() || v.get("error").is_some());
});
