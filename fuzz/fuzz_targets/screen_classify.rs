//! Pane screens and titles (src/core/screen.rs `classify_screen`, `strip_ansi`,
//! `normalize_lines`; src/core/patterns `layout_for`; src/core/title.rs `clean_pane_title`,
//! `normalize_title`): whatever a program in a pane prints or sets as its title. Never a panic;
//! a normalised title has no control character and is never empty.
#![no_main]
use agtmux::core::patterns::layout_for;
use agtmux::core::screen::{ScreenInput, classify_screen, normalize_lines, strip_ansi};
use agtmux::core::title::{clean_pane_title, normalize_title};
use agtmux::core::types::Provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (ctl, body) = data.split_at(3);
    let text = String::from_utf8_lossy(body);
    // The first line doubles as the pane title and the command.
    let title = text.lines().next().unwrap_or("");
    let hint = match ctl[0] % 3 {
        0 => None,
        1 => Some(Provider::Claude),
        _ => Some(Provider::Codex),
    };
    let input = ScreenInput {
        text: &text,
        title,
        command: title,
        cols: u16::from(ctl[1]),
        rows: u16::from(ctl[2]),
        provider_hint: hint,
    };
    let _ = classify_screen(&input);
    let _ = strip_ansi(&text);
    let lines = normalize_lines(&text);
    for p in [Provider::Claude, Provider::Codex] {
        let _ = layout_for(p, &lines);
    }
    for t in [clean_pane_title(&text, "host"), normalize_title(&text)]
        .into_iter()
        .flatten()
    {
        assert!(!t.is_empty(), "empty title");
        assert!(!t.chars().any(char::is_control), "control char in {t:?}");
    }
});
