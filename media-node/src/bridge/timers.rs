//! Session deadlines in an indexed binary min-heap: one entry per session slot, moved in place
//! when its deadline changes (O(log n)), so the earliest deadline is known without scanning
//! every session and nothing piles up between wakeups.

use std::time::Instant;

/// Marks a slot with no entry.
const ABSENT: usize = usize::MAX;

/// Deadlines by session slot.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// (deadline, slot), a binary min-heap by deadline.
    heap: Vec<(Instant, usize)>,
    /// Slot -> its index in `heap`, or [`ABSENT`].
    index: Vec<usize>,
}

impl Timers {
    /// The earliest deadline and its slot.
    pub(crate) fn peek(&self) -> Option<(Instant, usize)> {
        self.heap.first().copied()
    }

    /// Entries (one per scheduled slot).
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Sets (or moves) the deadline of `slot`.
    pub(crate) fn set(&mut self, slot: usize, at: Instant) {
        if slot >= self.index.len() {
            self.index.resize(slot + 1, ABSENT);
        }
        match self.index[slot] {
            ABSENT => {
                self.heap.push((at, slot));
                let i = self.heap.len() - 1;
                self.index[slot] = i;
                self.sift_up(i);
            }
            i => {
                let before = self.heap[i].0;
                self.heap[i].0 = at;
                if at < before {
                    self.sift_up(i);
                } else {
                    self.sift_down(i);
                }
            }
        }
    }

    /// Forgets `slot`.
    pub(crate) fn remove(&mut self, slot: usize) {
        let Some(&i) = self.index.get(slot).filter(|&&i| i != ABSENT) else {
            return;
        };
        self.index[slot] = ABSENT;
        let last = self.heap.len() - 1;
        if i != last {
            self.heap.swap(i, last);
            self.index[self.heap[i].1] = i;
        }
        self.heap.pop();
        if i < self.heap.len() {
            self.sift_up(i);
            self.sift_down(i);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.index[self.heap[a].1] = a;
        self.index[self.heap[b].1] = b;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].0 >= self.heap[parent].0 {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let left = 2 * i + 1;
            let right = left + 1;
            let mut smallest = i;
            if left < self.heap.len() && self.heap[left].0 < self.heap[smallest].0 {
                smallest = left;
            }
            if right < self.heap.len() && self.heap[right].0 < self.heap[smallest].0 {
                smallest = right;
            }
            if smallest == i {
                return;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn drain(timers: &mut Timers) -> Vec<usize> {
        let mut order = Vec::new();
        while let Some((_, slot)) = timers.peek() {
            order.push(slot);
            timers.remove(slot);
        }
        order
    }

    #[test]
    fn the_earliest_deadline_comes_first_whatever_the_order_of_setting() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for (slot, ms) in [(3, 30), (0, 50), (7, 10), (2, 40), (5, 20)] {
            timers.set(slot, t0 + Duration::from_millis(ms));
        }
        assert_eq!(timers.peek(), Some((t0 + Duration::from_millis(10), 7)));
        assert_eq!(drain(&mut timers), vec![7, 5, 3, 2, 0]);
    }

    #[test]
    fn moving_a_deadline_keeps_one_entry_per_slot_and_reorders() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for slot in 0..10 {
            timers.set(slot, t0 + Duration::from_millis(10 * slot as u64 + 10));
        }
        timers.set(9, t0); // earlier
        timers.set(0, t0 + Duration::from_secs(1)); // later
        for _ in 0..100 {
            timers.set(4, t0 + Duration::from_millis(45));
        }
        assert_eq!(timers.len(), 10);
        assert_eq!(drain(&mut timers), vec![9, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
    }

    #[test]
    fn removed_slots_never_come_up_and_removing_twice_is_harmless() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for slot in 0..6 {
            timers.set(slot, t0 + Duration::from_millis(slot as u64));
        }
        timers.remove(0);
        timers.remove(3);
        timers.remove(3);
        timers.remove(42);
        assert_eq!(drain(&mut timers), vec![1, 2, 4, 5]);
        assert_eq!(timers.peek(), None);
    }
}
