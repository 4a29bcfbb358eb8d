//! Randomness from the OS: bytes for secrets (the Codex socket's nonce, WebSocket keys) and
//! seeds for `core::rng::XorShift64`.
//!
//! WHY here: `/dev/urandom` is an OS interface, and three places read it on their own before.
use std::io::{self, Read};

/// Fills `buf` from `/dev/urandom`.
pub(crate) fn fill(buf: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A seed for a non-cryptographic generator: from `/dev/urandom`, or from the clock and the
/// pid when that cannot be read.
pub(crate) fn seed() -> u64 {
    let mut b = [0u8; 8];
    if fill(&mut b).is_ok() {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    t ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_and_seeds_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a).unwrap();
        super::fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(super::seed(), super::seed());
    }
}
