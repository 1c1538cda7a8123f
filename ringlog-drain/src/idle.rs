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

/// How long the drain lingers after a small batch while records trickle in. Without it, a
/// drain facing a steady 100 k records/s wrote and woke every ~15 records (a `write`, a path
/// check and a timed futex wait per pass; a wake-up alone costs ~20 us of CPU on this VM) and
/// spent 600-800 ns of CPU per 128-byte record, ~2 us at 30 k/s; lingering 2 ms gathers ~200
/// records per write and wake-up: 220-360 ns, 600 ns at 30 k/s. A record that arrives while
/// the drain lingers reaches the file at most this much later; the first record after a pause
/// is still written as soon as a quiet nap or a wake-up finds it.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// Records trickle in when a batch follows the previous one within this time: a few lingers,
/// so a steady stream keeps lingering from batch to batch.
pub(crate) const TRICKLE: Duration = Duration::from_millis(10);

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

    /// After a written batch: lingers ([`LINGER`]) while records trickle in ([`lingers`]).
    pub(crate) fn after_write(&mut self) {
        let now = Instant::now();
        let since_previous = self.last_write.replace(now).map(|before| now - before);
        if lingers(
            self.batch.len() as u64,
            self.consumer.backlog(),
            since_previous,
        ) {
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

/// Whether the drain lingers after writing a batch of `batch` bytes, with `backlog` bytes
/// waiting in the ring, the batch before it written `since_previous` ago: when the batch was
/// small, little waits, and the previous batch was recent.
fn lingers(batch: u64, backlog: u64, since_previous: Option<Duration>) -> bool {
    let trickling = since_previous.is_some_and(|d| d < TRICKLE);
    trickling && batch < SMALL_BATCH && backlog < SMALL_BATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingers_only_after_a_small_batch_of_a_steady_trickle() {
        let recent = Some(LINGER + Duration::from_micros(100));
        assert!(lingers(4096, 0, recent));
        assert!(lingers(SMALL_BATCH - 1, SMALL_BATCH - 1, recent));
        // The first batch after a pause, or the first ever: written at once, no linger.
        assert!(!lingers(4096, 0, Some(TRICKLE)));
        assert!(!lingers(4096, 0, None));
        // A large batch, or a backlog worth a large write: no linger.
        assert!(!lingers(SMALL_BATCH, 0, recent));
        assert!(!lingers(4096, SMALL_BATCH, recent));
        // A stream lingering from batch to batch stays a trickle.
        assert!(TRICKLE > LINGER * 2);
    }
}
