//! A xorshift64 generator: the one copy of the small, fast, non-cryptographic random numbers
//! agtmux needs (restart jitter, WebSocket masking keys, test noise). The caller seeds it
//! (`sys::random::seed` for a fresh seed), so this stays pure.

/// Marsaglia's xorshift64 (13, 7, 17). Not for secrets: use `sys::random::fill` for those.
#[derive(Debug, Clone)]
pub(crate) struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (a zero seed would stay zero, so the low bit is set).
    pub fn new(seed: u64) -> XorShift64 {
        XorShift64(seed | 1)
    }

    /// The next number.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_sticks_at_zero_and_replays_from_a_seed() {
        let mut a = XorShift64::new(0);
        let first: Vec<u64> = (0..3).map(|_| a.next_u64()).collect();
        assert_eq!(
            first,
            [0x4082_2041, 0x1000_4106_0c01_1441, 0x9b1e_842f_6e86_2629]
        );
        let mut b = XorShift64::new(1);
        assert_eq!((0..3).map(|_| b.next_u64()).collect::<Vec<_>>(), first);
    }
}
