//! Typed access to the words of the segment only the drain writes: its counters, its identity
//! and heartbeat (for `stat`), the tick rate it measured (for the next drain), and its per-slot
//! bookkeeping (drops reported, stall start, abandoned claims). Readers outside the drain
//! (`stat`, tests, benches) get snapshots. No offset leaves this crate.
//!
//! Every access here is Relaxed: these are statistics and hints written by one process (the
//! drain, which holds the drain lock) and read as a snapshot; nothing is published through them.
//! The one exception, [`Ring::drop_events`], says why at the operation.

use crate::layout::{off, slot_off};
use crate::memory::Memory;
use crate::ring::Ring;
use crate::sync::Ordering;

/// A drain-owned counter in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Records written to the output.
    RecordsOut,
    /// Bytes written to the output (formatted).
    BytesOut,
    /// Claims skipped because their producer died.
    Abandoned,
    /// Bytes of those claims.
    AbandonedBytes,
    /// Stalls seen (a live producer holding a claim longer than the stall threshold).
    Stalls,
    /// Corrupt stretches found and skipped.
    Corrupt,
}

impl Counter {
    /// The counters that ride with a batch through the checkpoint (`ckpt_counters_after`), in
    /// the order of [`off::CHECKPOINTED_COUNTERS`]: exact across any drain kill.
    pub const CHECKPOINTED: [Counter; 5] = [
        Counter::RecordsOut,
        Counter::BytesOut,
        Counter::Abandoned,
        Counter::AbandonedBytes,
        Counter::Corrupt,
    ];

    fn offset(self) -> usize {
        match self {
            Counter::RecordsOut => off::RECORDS_OUT,
            Counter::BytesOut => off::BYTES_OUT,
            Counter::Abandoned => off::ABANDONED,
            Counter::AbandonedBytes => off::ABANDONED_BYTES,
            Counter::Stalls => off::STALLS,
            Counter::Corrupt => off::CORRUPT,
        }
    }
}

/// A snapshot of the drain's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records written to the output.
    pub records_out: u64,
    /// Bytes written to the output.
    pub bytes_out: u64,
    /// Claims skipped because their producer died.
    pub abandoned: u64,
    /// Bytes of those claims.
    pub abandoned_bytes: u64,
    /// Stalls seen.
    pub stalls: u64,
    /// Corrupt stretches skipped.
    pub corrupt: u64,
}

/// What the last (or current) drain recorded about itself. The drain lock is the truth about
/// whether it is alive; these words are informational.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainIdentity {
    /// Its pid, 0 once it stopped cleanly.
    pub pid: u32,
    /// When it started, ns since the Unix epoch.
    pub started_ns: u64,
    /// When its loop last went round, ns since the Unix epoch.
    pub heartbeat_ns: u64,
}

impl<M: Memory> Ring<M> {
    /// A snapshot of the drain's counters.
    pub fn counters(&self) -> Counters {
        let c = |counter: Counter| self.word(counter.offset()).load(Ordering::Relaxed);
        Counters {
            records_out: c(Counter::RecordsOut),
            bytes_out: c(Counter::BytesOut),
            abandoned: c(Counter::Abandoned),
            abandoned_bytes: c(Counter::AbandonedBytes),
            stalls: c(Counter::Stalls),
            corrupt: c(Counter::Corrupt),
        }
    }

    /// One drain counter's value now.
    pub fn count(&self, counter: Counter) -> u64 {
        self.word(counter.offset()).load(Ordering::Relaxed)
    }

    /// Raises a drain counter to `value` if it is below it (recovery: the dead drain may or may
    /// not have counted its last batch). Only the drain calls this.
    pub(crate) fn raise_count(&self, counter: Counter, value: u64) {
        let w = self.word(counter.offset());
        if value > w.load(Ordering::Relaxed) {
            w.store(value, Ordering::Relaxed);
        }
    }

    /// Adds `n` to a drain counter. Only the drain (the drain lock's holder) calls this.
    pub fn add_count(&self, counter: Counter, n: u64) {
        let w = self.word(counter.offset());
        // Relaxed load + store, not an RMW: only the drain writes these statistics.
        w.store(w.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// What the drain recorded about itself.
    pub fn drain_identity(&self) -> DrainIdentity {
        DrainIdentity {
            pid: self.word32(off::DRAIN_PID).load(Ordering::Relaxed),
            started_ns: self.word(off::DRAIN_STARTED_NS).load(Ordering::Relaxed),
            heartbeat_ns: self.word(off::DRAIN_HEARTBEAT_NS).load(Ordering::Relaxed),
        }
    }

    /// Records the drain that just took the drain lock.
    pub fn announce_drain(&self, pid: u32, started_ns: u64) {
        self.word32(off::DRAIN_PID).store(pid, Ordering::Relaxed);
        self.word(off::DRAIN_STARTED_NS)
            .store(started_ns, Ordering::Relaxed);
    }

    /// Records that the drain stopped cleanly (its lock goes with its file descriptor).
    pub fn retire_drain(&self) {
        self.word32(off::DRAIN_PID).store(0, Ordering::Relaxed);
    }

    /// Records that the drain's loop is still going round.
    pub fn heartbeat(&self, now_ns: u64) {
        self.word(off::DRAIN_HEARTBEAT_NS)
            .store(now_ns, Ordering::Relaxed);
    }

    /// The ns per TSC tick a drain measured, if one did: a restarted drain converts tick
    /// stamps precisely from its first record.
    pub fn ns_per_tick_hint(&self) -> Option<f64> {
        let bits = self.word(off::NS_PER_TICK_BITS).load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Leaves the measured ns per TSC tick for the next drain.
    pub fn store_ns_per_tick_hint(&self, ns_per_tick: f64) {
        self.word(off::NS_PER_TICK_BITS)
            .store(ns_per_tick.to_bits(), Ordering::Relaxed);
    }

    /// How many times producers dropped a record (the drain scans the registry for drop
    /// counts only when this moved).
    pub fn drop_events(&self) -> u64 {
        // SYNC POINT: Acquire pairs with the producers' Release bump in `count_drop`: a drain
        // that sees the event also sees the slot's count.
        self.word(off::DROP_EVENTS).load(Ordering::Acquire)
    }

    /// Records how many of slot `slot`'s drops are reported in the output.
    pub fn set_dropped_reported(&self, slot: u16, reported: u64) {
        self.slot_word(slot, slot_off::DROPPED_REPORTED)
            .store(reported, Ordering::Relaxed);
    }

    /// Records when slot `slot`'s owner started stalling the ring (ns), or 0 for "not".
    pub fn set_stall_since(&self, slot: u16, since_ns: u64) {
        self.slot_word(slot, slot_off::STALL_SINCE_NS)
            .store(since_ns, Ordering::Relaxed);
    }
}
