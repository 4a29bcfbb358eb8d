//! The eviction rule of the daemon's bounded maps (transcript tails and watches, Codex hook
//! facts): when a map is full, the entry used least recently goes.
//!
//! WHY a module: each map keeps its own "last used" stamp (a counter or a timestamp); the rule
//! that picks the victim from it is the same everywhere, so it is written once.

/// The key of the entry whose `used` stamp is smallest (the least recently used), if any.
pub(crate) fn least_recent<'a, K, V, U>(
    entries: impl IntoIterator<Item = (&'a K, &'a V)>,
    used: impl Fn(&V) -> U,
) -> Option<K>
where
    K: Clone + 'a,
    V: 'a,
    U: Ord,
{
    entries
        .into_iter()
        .min_by_key(|(_, v)| used(v))
        .map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_smallest_stamp_is_chosen() {
        let m: HashMap<&str, u64> = [("a", 5), ("b", 2), ("c", 9)].into_iter().collect();
        assert_eq!(least_recent(&m, |v| *v), Some("b"));
        let empty: HashMap<&str, u64> = HashMap::new();
        assert_eq!(least_recent(&empty, |v| *v), None);
    }
}
