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

/// How long the drain lingers at most after a batch smaller than half its target while records
/// keep coming. Without it, a drain facing a steady 100 k records/s wrote and woke every ~15
/// records (a `write`, a path check and a timed futex wait per pass; a wake-up alone costs ~20
/// us of CPU on this VM) and spent 600-800 ns of CPU per 128-byte record, ~2 us at 30 k/s;
/// lingering 2 ms gathers ~200 records per write and wake-up: 220-360 ns, 600 ns at 30 k/s. A
/// record that arrives while the drain lingers reaches the file at most this much later.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// The drain lingers only when, at the rate the last batch came in, a linger gathers at least
/// this many records (8 k records/s and up): a sparse trickle, say one record a millisecond,
/// is written as soon as a quiet nap or a wake-up finds it, as from an idle ring.
pub(crate) const MIN_GATHER: u64 = 16;

/// A linger shorter than this is not worth its nap: the drain writes on at once.
pub(crate) const MIN_LINGER: Duration = Duration::from_micros(50);

/// A batch written (or handed to the writing thread): when, and the drain's record count and
/// handed-off ring position then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    pub at: Instant,
    pub records: u64,
    pub released: u64,
}

/// What came into the ring between two written batches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrivals {
    pub records: u64,
    /// Ring bytes (frames and padding).
    pub bytes: u64,
    pub over: Duration,
}

impl Arrivals {
    fn between(before: Written, now: Written) -> Arrivals {
        Arrivals {
            records: now.records - before.records,
            bytes: now.released - before.released,
            over: now.at - before.at,
        }
    }
}

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

    /// After a written batch: lingers while records keep coming (see [`linger`]).
    pub(crate) fn after_write(&mut self) {
        let now = Written {
            at: Instant::now(),
            records: self.records_handed_off,
            released: self.consumer.head(),
        };
        let came_in = self
            .last_write
            .replace(now)
            .map(|before| Arrivals::between(before, now));
        let gather = (self.ring().geometry().capacity / 4).min(self.options.batch_bytes as u64);
        if let Some(d) = linger(
            self.last_batch_bytes,
            came_in,
            self.consumer.backlog(),
            gather,
        ) {
            self.sync_if_due(false);
            self.nap(d);
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

/// How long the drain lingers after writing a batch of `batch` bytes, when `came_in` arrived
/// since the previous batch and `backlog` bytes wait in the ring: long enough for `gather` bytes
/// (a full batch, at most a quarter of the ring) to come in at the rate they came, at most
/// [`LINGER`]; and only when the batch was less than half of `gather`, as little waits, and at
/// that rate a linger gathers at least [`MIN_GATHER`] records.
///
/// Lingering also keeps the drain off the lines producers are writing. A drain that chases them
/// (a pass whenever anything is committed) reads each line while the producer on the other core
/// writes its neighbours, and both slow down: with a linger only after batches under 64 KiB,
/// 64 KiB records from one producer went to the file one `writev` each in 10 of 45 repetitions
/// (`ringlog-bench`, quiet machine), at 2.4-3.9 GB/s, the producer's write taking p50 8-28 us,
/// against 1 MiB batches at 3.8-5.1 GB/s and p50 1.6-2.8 us in the others; with this linger, 1
/// MiB batches in all of 35.
pub(crate) fn linger(
    batch: u64,
    came_in: Option<Arrivals>,
    backlog: u64,
    gather: u64,
) -> Option<Duration> {
    let came_in = came_in?;
    let steady =
        came_in.records as u128 * LINGER.as_nanos() >= MIN_GATHER as u128 * came_in.over.as_nanos();
    if !steady || batch >= gather / 2 || backlog >= gather / 2 {
        return None;
    }
    // Time for `gather` bytes at the rate `came_in.bytes` took `came_in.over`.
    let fill = came_in.over.as_nanos() * gather as u128 / (came_in.bytes.max(1)) as u128;
    let d = Duration::from_nanos(fill.min(LINGER.as_nanos()) as u64);
    (d >= MIN_LINGER).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn came_in(records: u64, bytes: u64, over: Duration) -> Option<Arrivals> {
        Some(Arrivals {
            records,
            bytes,
            over,
        })
    }

    const GATHER: u64 = 1 << 20;

    #[test]
    fn lingers_the_whole_linger_after_a_small_batch_of_a_steady_trickle() {
        let ms = Duration::from_millis;
        // 100 k records/s of 128 B: 200 records over the last 2 ms fill a batch in ~80 ms.
        assert_eq!(
            linger(25_600, came_in(200, 27_200, ms(2)), 0, GATHER),
            Some(LINGER)
        );
        // Just enough records for MIN_GATHER per linger, and just too few.
        let steady = came_in(MIN_GATHER, 4096, LINGER);
        assert_eq!(linger(4096, steady, 0, GATHER), Some(LINGER));
        let sparse = came_in(MIN_GATHER - 1, 4096, LINGER);
        assert_eq!(linger(4096, sparse, 0, GATHER), None);
        // A sparse trickle (one record after a 1 ms pause), the first batch ever: no linger.
        assert_eq!(linger(128, came_in(1, 136, ms(1)), 0, GATHER), None);
        assert_eq!(linger(128, None, 0, GATHER), None);
    }

    #[test]
    fn a_fast_stream_lingers_only_until_a_batch_has_come_in() {
        let us = Duration::from_micros;
        // 64 KiB records at ~4 GB/s: one record a ~16 us pass; a batch comes in in ~256 us.
        let d = linger(65_600, came_in(1, 65_600, us(16)), 0, GATHER).unwrap();
        assert!(d > us(250) && d < us(260), "{d:?}");
        // So fast that a batch comes in sooner than a nap is worth: no linger.
        assert_eq!(linger(65_600, came_in(1, 65_600, us(1)), 0, GATHER), None);
    }

    #[test]
    fn a_large_batch_or_backlog_or_a_small_ring_writes_on() {
        let ms = Duration::from_millis;
        let trickle = came_in(200, 27_200, ms(2));
        assert_eq!(linger(GATHER / 2, trickle, 0, GATHER), None);
        assert!(linger(GATHER / 2 - 1, trickle, 0, GATHER).is_some());
        assert_eq!(linger(4096, trickle, GATHER / 2, GATHER), None);
        // A 64 KiB ring gathers 16 KiB: a 4 KiB batch lingers, an 8 KiB one does not.
        assert!(linger(4096, trickle, 0, 16 << 10).is_some());
        assert_eq!(linger(8192, trickle, 0, 16 << 10), None);
    }
}
