//! Cutting text to a size without splitting a UTF-8 character: the one copy of the helpers
//! that keep reject reasons, stored raw lines, screen tails and popup rows bounded.
//!
//! WHY here: sources, the gateway, the daemon and the CLI all bound text they did not write
//! (payloads, pane screens), and a cut inside a multi-byte character panics; `core` is the
//! layer every one of them may import. `str::floor_char_boundary` is not stable on the MSRV.

/// The largest char boundary of `s` at or below byte `i` (`s.len()` when `i` is past it).
pub(crate) fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

/// The smallest char boundary of `s` at or above byte `i` (`s.len()` when `i` is past it).
pub(crate) fn ceil_char_boundary(s: &str, i: usize) -> usize {
    (i..s.len())
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(s.len())
}

/// `s` when it fits in `max` bytes, else its longest prefix that does, followed by `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}…", &s[..floor_char_boundary(s, max)])
}

/// `s` when it has at most `n` characters, else its first `n - 1` characters and `…` (a
/// column-bounded display cell).
pub(crate) fn clip_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The first `n` characters of `s` (all of it when shorter): a short quote of hostile text in
/// a reject reason.
pub(crate) fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The last at most `max` bytes of `s`, starting on a char boundary.
pub fn tail(s: &str, max: usize) -> &str {
    &s[ceil_char_boundary(s, s.len().saturating_sub(max))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_never_split_a_character() {
        let s = "aé€😀z"; // 1 + 2 + 3 + 4 + 1 bytes
        for i in 0..=s.len() + 2 {
            let f = floor_char_boundary(s, i);
            let c = ceil_char_boundary(s, i);
            assert!(f <= i.min(s.len()) && s.is_char_boundary(f), "{i}");
            assert!(c >= i.min(s.len()) && s.is_char_boundary(c), "{i}");
            assert!(clip(s, i).len() <= i.max(s.len()) + '…'.len_utf8());
            assert!(tail(s, i).len() <= i);
            assert!(first_chars(s, i).chars().count() <= i);
        }
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("aé", 2), "a…");
        assert_eq!(clip_chars("abcdef", 4), "abc…");
        assert_eq!(clip_chars("aéé", 3), "aéé");
        assert_eq!(first_chars("aébc", 2), "aé");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }
}
