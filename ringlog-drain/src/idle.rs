//! What the drain does when there is nothing to write: nap quietly a few times (producers are
//! not asked to wake it, so they make no syscall while records keep coming), then announce a
//! real sleep that producers end with a futex wake. Also the drain's other wait schedules.

use crate::drain::Drain;
use ringlog_core::backoff::{Backoff, Schedule, Step};
use ringlog_core::SharedFutex;
use std::time::Duration;

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
