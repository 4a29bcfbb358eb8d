//! The remote stream's line parser (src/sources/remote.rs `parse_line`, issue 24): every byte
//! comes from another machine over ssh; any line is parsed or refused with a reason, never a
//! panic, and what is accepted has tmux's id shapes and no control characters.
#![no_main]
use agtmux::sources::remote::{RemoteMsg, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_line(data) {
        Ok(RemoteMsg::Pane { server, pane }) => {
            assert!(pane.pane_id.starts_with('%'));
            assert!(!pane.title.chars().any(|c| c.is_control()));
            assert!(!server.is_empty());
        }
        Ok(RemoteMsg::Snapshot { panes, socket, .. }) => {
            assert!(socket.starts_with('/'));
            for p in panes {
                assert!(p.pane_id.starts_with('%'));
                assert!(!p.session_name.chars().any(|c| c.is_control()));
            }
        }
        Ok(_) => {}
        Err(r) => assert!(!r.0.is_empty()),
    }
});
