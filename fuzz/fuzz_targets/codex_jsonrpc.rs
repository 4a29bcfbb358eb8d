//! Codex app-server JSON-RPC handling (src/sources/codex_appserver.rs): each input line is one
//! text message as the WebSocket layer would deliver it; then the queued events are pulled.
//! A dictionary of real method names (fuzz/dict/codex.dict) helps reach the handlers.
#![no_main]
use agtmux::sources::Source;
use agtmux::sources::codex_appserver::CodexObserver;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut o = CodexObserver::new(std::path::Path::new("/nonexistent/agtmux-fuzz.sock"), 1_000);
    for (i, line) in text.split('\n').enumerate() {
        let _ = o.handle_text(line, 1_000 + i as i64 * 10);
    }
    let b = o.pull("", 1_000);
    let _ = o.pull(&b.next_cursor, 1_000);
    o.tick(100_000);
});
