//! FNV-1a, 64 bit: the one tiny stable hash agtmux derives ids and keys from (server keys,
//! hook event ids, Codex event ids). Not for security: ids only need to be stable across
//! runs and versions, which `std`'s `DefaultHasher` does not promise.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

fn feed(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// FNV-1a of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    feed(OFFSET, bytes)
}

/// FNV-1a of `parts`, each followed by the unit separator 0x1f, so `["ab", "c"]` and
/// `["a", "bc"]` differ.
pub(crate) fn fnv1a64_parts(parts: &[&str]) -> u64 {
    parts
        .iter()
        .fold(OFFSET, |h, p| feed(feed(h, p.as_bytes()), &[0x1f]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_separated_parts() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64_parts(&["a"]), fnv1a64(b"a\x1f"));
        assert_ne!(fnv1a64_parts(&["ab", "c"]), fnv1a64_parts(&["a", "bc"]));
    }
}
