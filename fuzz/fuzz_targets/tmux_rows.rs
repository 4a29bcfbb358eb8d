//! The daemon's own tmux format rows (src/tmux/registry.rs): `AGTP` pane rows, `AGTH` hint
//! rows, `AGTC` client rows and `AGTS`/`AGTW` name rows. Their free-text fields (titles,
//! session and window names, commands) are set by whatever runs in a pane. Never a panic; a
//! parsed pane always has a valid pane id.
#![no_main]
use agtmux::core::types::valid_pane_id;
use agtmux::tmux::registry::{Registry, parse_clients, parse_names, parse_pane_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    for l in &lines {
        if let Some(p) = parse_pane_line(l) {
            assert!(valid_pane_id(&p.pane_id), "{:?}", p.pane_id);
        }
    }
    let _ = parse_clients(&lines);
    let _ = parse_names(&lines, "AGTS");
    let _ = parse_names(&lines, "AGTW");
    let mut r = Registry::default();
    let _ = r.apply(&lines);
    let ids: Vec<agtmux::core::types::PaneId> = r.panes.keys().cloned().collect();
    for id in ids {
        for l in &lines {
            let _ = r.apply_hints(&id, l);
        }
        let _ = r.focused(&id);
    }
    let _ = r.apply(&lines[..lines.len() / 2]);
});
