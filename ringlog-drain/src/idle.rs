//! What the drain does when there is nothing to write: nap quietly a few times (producers are
//! not asked to wake it, so they make no syscall while records keep coming), then announce a
//! real sleep that producers end with a futex wake; and when records only trickle in, linger
//! after a small batch so the next one is larger. Also the drain's other wait schedules.

use crate::drain::Drain;
use ringlog_core::backoff::{Backoff, Schedule, Step};
use ringlog_core::SharedFutex;
use std::time::{Duration, Instant};

/// Naps taken before the drain announces it sleeps.
pub(crate) const QUIET_NAPS: u32 = 8;

/// Idle naps of 250 us: [`QUIET_NAPS`] of them bound the extra latency of the first record after
/// a pause at about 2 ms, while a busy service's records keep arriving without a wake-up.
pub(crate) const QUIET: Schedule = Schedule {
    spin_for: Duration::ZERO,
    yield_until: Duration::ZERO,
    first_nap: Duration::from_micros(250),
    max_nap: Duration::from_micros(250),
};

/// A batch smaller than this, written while records trickle in, makes the drain linger before
/// it gathers the next one (DESIGN.md: writes of at least 64 KiB when the backlog allows).
pub(crate) const SMALL_BATCH: u64 = 64 << 10;

/// How long the drain lingers after a small batch while records keep coming. Without it, a
/// drain facing a steady 100 k records/s wrote and woke every ~15 records (a `write`, a path
/// check and a timed futex wait per pass; a wake-up alone costs ~20 us of CPU on this VM) and
/// spent 600-800 ns of CPU per 128-byte record, ~2 us at 30 k/s; lingering 2 ms gathers ~200
/// records per write and wake-up: 220-360 ns, 600 ns at 30 k/s. A record that arrives while
/// the drain lingers reaches the file at most this much later.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// The drain lingers only when, at the rate the last batch came in, a linger gathers at least
/// this many records (8 k records/s and up): a sparse trickle, say one record a millisecond,
/// is written as soon as a quiet nap or a wake-up finds it, as from an idle ring.
pub(crate) const MIN_GATHER: u64 = 16;

/// Waiting for a claim at head to commit: it usually commits within nanoseconds, so spin for
/// 50 us, yield up to 2 ms (its producer may be descheduled), then nap 1 ms at a time.
pub(crate) const STALL_WAIT: Schedule = Schedule {
    spin_for: Duration::from_micros(50),
    yield_until: Duration::from_millis(2),
    first_nap: Duration::from_millis(1),
    max_nap: Duration::from_millis(1),
};

/// Retrying a failed output: 100 ms, doubling to 800 ms, so a full disk or a dead receiver is
/// retried promptly at first and then without spinning on errors.
pub(crate) const OUTPUT_RETRY: Schedule = Schedule {
    spin_for: Duration::ZERO,
    yield_until: Duration::ZERO,
    first_nap: Duration::from_millis(100),
    max_nap: Duration::from_millis(800),
};

impl Drain {
    /// One idle round: a quiet nap while `quiet` has naps left, else a sleep until woken.
    pub(crate) fn idle(&mut self, quiet: &mut Backoff) {
        if quiet.naps() < QUIET_NAPS {
            self.sync_if_due(false);
            if let Step::Nap(d) = quiet.step(Duration::MAX) {
                self.nap(d);
            }
        } else {
            self.sleep();
        }
    }

    /// After a written batch: lingers ([`LINGER`]) while records keep coming ([`lingers`]).
    pub(crate) fn after_write(&mut self) {
        let now = Instant::now();
        let records = self.summary.records;
        let previous = self.last_write.replace((now, records));
        let came_in = previous.map(|(at, before)| (records - before, now - at));
        if lingers(self.batch.len() as u64, came_in, self.consumer.backlog()) {
            self.sync_if_due(false);
            self.nap(LINGER);
        }
    }

    /// Sleeps until a producer wakes us (or the safety-net timeout).
    fn sleep(&mut self) {
        self.sync_if_due(true);
        let timeout = self.options.idle_timeout;
        self.consumer.sleep(&SharedFutex, timeout);
    }

    /// Waits a little without announcing a sleep (producers will not wake us).
    pub(crate) fn nap(&self, d: Duration) {
        self.ring().drain_nap(&SharedFutex, d);
    }
}

/// Whether the drain lingers after writing a batch of `batch` bytes that held the records that
/// `came_in` (how many, over how long: since the previous batch was written), with `backlog`
/// bytes waiting in the ring: when the batch was small, little waits, and at that rate a linger
/// gathers at least [`MIN_GATHER`] records.
fn lingers(batch: u64, came_in: Option<(u64, Duration)>, backlog: u64) -> bool {
    let gathers = came_in.is_some_and(|(records, over)| {
        records as u128 * LINGER.as_nanos() >= MIN_GATHER as u128 * over.as_nanos()
    });
    gathers && batch < SMALL_BATCH && backlog < SMALL_BATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingers_only_after_a_small_batch_of_a_steady_stream() {
        let ms = Duration::from_millis;
        // 100 k records/s: 200 records over the last 2 ms.
        assert!(lingers(25_600, Some((200, ms(2))), 0));
        assert!(lingers(
            SMALL_BATCH - 1,
            Some((200, ms(2))),
            SMALL_BATCH - 1
        ));
        // Just enough records for MIN_GATHER per linger, and just too few.
        assert!(lingers(4096, Some((MIN_GATHER, LINGER)), 0));
        assert!(!lingers(4096, Some((MIN_GATHER - 1, LINGER)), 0));
        // A sparse trickle (one record after a 1 ms pause), the first batch ever: no linger.
        assert!(!lingers(128, Some((1, ms(1))), 0));
        assert!(!lingers(128, None, 0));
        // A large batch, or a backlog worth a large write: no linger.
        assert!(!lingers(SMALL_BATCH, Some((200, ms(2))), 0));
        assert!(!lingers(4096, Some((200, ms(2))), SMALL_BATCH));
    }
}
