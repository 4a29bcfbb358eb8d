//! The WebSocket codec (src/sources/ws.rs): frame decoder (both directions, small message
//! limit, arbitrary splits), the HTTP upgrade parsers and the client connection state machine.
#![no_main]
use agtmux::sources::ws::{self, ClientConn, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let max = 1 + (ctl as usize) * 64;
    let step = 1 + (ctl as usize % 13);
    for mut d in [Decoder::client(), Decoder::server()] {
        d = d.with_max_message(max);
        'outer: for chunk in rest.chunks(step) {
            d.feed(chunk);
            loop {
                match d.next_message() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }
    let _ = ws::parse_handshake_response(rest, "dGhlIHNhbXBsZSBub25jZQ==");
    let _ = ws::parse_handshake_request(rest);
    let mut c = ClientConn::new(max);
    for chunk in rest.chunks(step) {
        if c.on_bytes(chunk).is_err() {
            break;
        }
        let n = c.pending_out().len();
        c.consume_out(n);
    }
});
