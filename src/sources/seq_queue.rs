//! The buffer behind an in-process source's `Source::pull` (the Codex app-server observer, the
//! transcript watch): items numbered in arrival order, handed out after the gateway's cursor,
//! and dropped once the gateway has acknowledged them (its cursor moved past them).
//!
//! Why numbers from the clock: the caller starts the numbering at `now * 1000`, so a cursor the
//! gateway stored before a restart is always behind the new items. The buffer is bounded: when
//! it is full the oldest item goes (the caller decides whether to say so).
use super::{Batch, Pulled};
use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct SeqQueue {
    items: VecDeque<(u64, Pulled)>,
    /// The number the next pushed item gets.
    next: u64,
    cap: usize,
}

impl SeqQueue {
    /// An empty queue whose first item is numbered `first`, holding at most `cap` items.
    pub(crate) fn new(first: u64, cap: usize) -> Self {
        SeqQueue {
            items: VecDeque::new(),
            next: first,
            cap,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Append `item` with the next number. True when the queue was full and its oldest item
    /// was dropped to make room.
    pub(crate) fn push(&mut self, item: Pulled) -> bool {
        let full = self.items.len() >= self.cap;
        if full {
            self.items.pop_front();
        }
        self.items.push_back((self.next, item));
        self.next += 1;
        full
    }

    /// Items after the number `after` (empty or unparsable = from the start of the buffer), at
    /// most `max`. Acknowledged items (number <= after) are dropped from the buffer.
    pub(crate) fn pull(&mut self, after: &str, max: usize) -> Batch {
        let after_n: u64 = after.trim().parse().unwrap_or(0);
        while self.items.front().is_some_and(|(s, _)| *s <= after_n) {
            self.items.pop_front();
        }
        let mut items = Vec::new();
        let mut last = after_n;
        for (s, item) in self.items.iter().take(max) {
            items.push(item.clone());
            last = *s;
        }
        Batch {
            items,
            next_cursor: if last == 0 {
                after.to_string()
            } else {
                last.to_string()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: i64) -> Pulled {
        Pulled::Rejected {
            event_id: format!("e{n}"),
            reason: "r".into(),
            raw: String::new(),
            ts: n,
        }
    }

    fn ids(b: &Batch) -> Vec<String> {
        b.items
            .iter()
            .map(|p| match p {
                Pulled::Rejected { event_id, .. } => event_id.clone(),
                Pulled::Event { event, .. } => event.event_id.clone(),
            })
            .collect()
    }

    #[test]
    fn items_after_the_cursor_then_acknowledged_ones_leave() {
        let mut q = SeqQueue::new(5000, 3);
        assert!(!q.push(item(1)));
        assert!(!q.push(item(2)));
        let b = q.pull("", 1);
        assert_eq!(
            (ids(&b), b.next_cursor.as_str()),
            (vec!["e1".into()], "5000")
        );
        let b = q.pull("5000", 10);
        assert_eq!(
            (ids(&b), b.next_cursor.as_str()),
            (vec!["e2".into()], "5001")
        );
        assert_eq!(q.len(), 1, "5000 was acknowledged");
        let b = q.pull("5001", 10);
        assert_eq!((b.items.len(), b.next_cursor.as_str()), (0, "5001"));
        assert_eq!(q.len(), 0);
        // Full: the oldest goes.
        for n in 3..=5 {
            assert!(!q.push(item(n)));
        }
        assert!(q.push(item(6)));
        assert_eq!(ids(&q.pull("junk", 10)), ["e4", "e5", "e6"]);
    }
}
