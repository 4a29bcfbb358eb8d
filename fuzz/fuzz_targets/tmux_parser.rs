//! The control-mode line parser (src/tmux/parser.rs): any bytes, in any split, with small
//! limits so the line/block cut paths are reached. Must never panic, and `finish` must leave
//! the parser reusable (not in a block).
#![no_main]
use agtmux::tmux::parser::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let max_line = 16 + (ctl as usize & 0x3f) * 8;
    let max_block = 64 + (ctl as usize >> 6) * 256;
    let mut p = Parser::with_limits(max_line, max_block);
    let mut out = Vec::new();
    // Split the input into chunks whose sizes come from the input itself.
    let step = 1 + (ctl as usize % 7);
    for chunk in rest.chunks(step) {
        p.feed(chunk, &mut out);
    }
    p.finish(&mut out);
    assert!(!p.in_block(), "finish left a block open");
    // The same bytes in one piece give the same events.
    let mut q = Parser::with_limits(max_line, max_block);
    let mut out2 = Vec::new();
    q.feed(rest, &mut out2);
    q.finish(&mut out2);
    assert_eq!(
        format!("{out:?}"),
        format!("{out2:?}"),
        "split-dependent parse"
    );
});
