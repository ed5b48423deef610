//! Finished-call records waiting for delivery: the media thread pushes one when a session
//! ends, the reporter sends them in batches and removes a batch only once the control plane
//! accepted it. Bounded: past [`MAX_PENDING_RECORDS`] the oldest are dropped (and counted).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use shared::control::report::CallRecord;

/// Most records kept while the control plane is unreachable (~2 MB).
pub const MAX_PENDING_RECORDS: usize = 10_000;

/// A batch taken for one report; [`FinishedCalls::confirm`] it after delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The records, oldest first.
    pub records: Vec<CallRecord>,
    /// Sequence number of the last record in the batch (`None`: empty batch).
    last_seq: Option<u64>,
}

#[derive(Debug, Default)]
struct Queue {
    records: VecDeque<(u64, CallRecord)>,
    next_seq: u64,
    dropped: u64,
}

/// The queue shared by the media thread (push, once per ended session) and the reporter.
#[derive(Debug)]
pub struct FinishedCalls {
    queue: Mutex<Queue>,
    capacity: usize,
}

impl Default for FinishedCalls {
    fn default() -> Self {
        Self::with_capacity(MAX_PENDING_RECORDS)
    }
}

impl FinishedCalls {
    /// A queue keeping at most `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            queue: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue (every change is one call).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the record of a session that ended; drops the oldest one if the queue is full.
    pub fn push(&self, record: CallRecord) {
        let mut queue = self.lock();
        if queue.records.len() >= self.capacity {
            queue.records.pop_front();
            queue.dropped += 1;
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.records.push_back((seq, record));
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records dropped because the queue was full, since the last call (for a log line).
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }

    /// A copy of the oldest `max` records; they stay queued until confirmed.
    pub fn batch(&self, max: usize) -> Batch {
        let queue = self.lock();
        let taken: Vec<_> = queue.records.iter().take(max).collect();
        Batch {
            last_seq: taken.last().map(|(seq, _)| *seq),
            records: taken.into_iter().map(|(_, r)| r.clone()).collect(),
        }
    }

    /// Removes the records of a delivered `batch` (those the queue still holds: some may
    /// have been dropped for room meanwhile).
    pub fn confirm(&self, batch: &Batch) {
        if let Some(last) = batch.last_seq {
            let mut queue = self.lock();
            while queue.records.front().is_some_and(|(seq, _)| *seq <= last) {
                queue.records.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::control::SessionStats;

    fn record(n: u32) -> CallRecord {
        CallRecord {
            session_id: format!("s{n}"),
            call_id: format!("c{n}"),
            duration_ms: 1_000,
            end_reason: "released".into(),
            stats: SessionStats::default(),
        }
    }

    fn ids(batch: &Batch) -> Vec<String> {
        batch.records.iter().map(|r| r.session_id.clone()).collect()
    }

    #[test]
    fn records_stay_until_their_batch_is_confirmed() {
        let calls = FinishedCalls::default();
        calls.push(record(1));
        calls.push(record(2));
        let first = calls.batch(10);
        assert_eq!(ids(&first), ["s1", "s2"]);
        // Not confirmed (delivery failed): the next batch has them again, plus newer ones.
        calls.push(record(3));
        let again = calls.batch(10);
        assert_eq!(ids(&again), ["s1", "s2", "s3"]);
        // Confirming the older batch keeps what came after it.
        calls.confirm(&first);
        assert_eq!(ids(&calls.batch(10)), ["s3"]);
        calls.confirm(&again);
        assert!(calls.is_empty());
    }

    #[test]
    fn a_batch_takes_at_most_max_oldest_first() {
        let calls = FinishedCalls::default();
        for n in 0..5 {
            calls.push(record(n));
        }
        let batch = calls.batch(2);
        assert_eq!(ids(&batch), ["s0", "s1"]);
        calls.confirm(&batch);
        assert_eq!(calls.len(), 3);
        let empty = FinishedCalls::default().batch(2);
        assert!(empty.records.is_empty());
        calls.confirm(&empty);
        assert_eq!(calls.len(), 3);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let calls = FinishedCalls::with_capacity(3);
        let batch = {
            calls.push(record(0));
            calls.batch(10)
        };
        for n in 1..=4 {
            calls.push(record(n));
        }
        assert_eq!(calls.len(), 3);
        assert_eq!(calls.take_dropped(), 2);
        assert_eq!(calls.take_dropped(), 0);
        // Confirming a batch whose records were dropped meanwhile removes nothing newer.
        calls.confirm(&batch);
        assert_eq!(ids(&calls.batch(10)), ["s2", "s3", "s4"]);
    }
}
