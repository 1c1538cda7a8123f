//! The producer registry: taking a slot when a producer thread attaches, giving it back when it
//! detaches. Who is alive is decided by OFD locks (see [`crate::lock`]), not here: the caller
//! holds the slot's lock across [`Ring::take_slot`].

use crate::layout::{slot_off, NO_INTENT, SLOT_ATTACHED, SLOT_DETACHED};
use crate::memory::Memory;
use crate::ring::Ring;
use crate::sync::Ordering;

impl<M: Memory> Ring<M> {
    /// True when slot `slot` has no claim the drain may still need to attribute: its last
    /// intent is resolved (the drain's head has passed it) or it never claimed.
    /// A new owner may take it only then (and only while holding its lock).
    pub fn slot_reusable(&self, slot: u16) -> bool {
        // Relaxed: the caller holds the slot's lock, so its previous owner is gone and the value
        // is final; `head` only grows, so a stale head errs on the side of "not reusable".
        let intent = self
            .slot_word(slot, slot_off::INTENT)
            .load(Ordering::Relaxed);
        intent == NO_INTENT || intent - 1 < self.head()
    }

    /// Makes `slot` the caller's. The caller holds the slot's lock and checked
    /// [`Ring::slot_reusable`].
    pub fn take_slot(&self, slot: u16, pid: u32, tid: u32, now_ns: u64) {
        // Relaxed throughout: the slot is exclusively ours (lock held); the drain reads these
        // words only as statistics or after synchronising through `tail`.
        let w = |f| self.slot_word(slot, f);
        w(slot_off::INTENT).store(NO_INTENT, Ordering::Relaxed);
        w(slot_off::PID_TID).store(pid as u64 | (tid as u64) << 32, Ordering::Relaxed);
        w(slot_off::WRITTEN_BASE).store(
            w(slot_off::WRITTEN).load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        w(slot_off::DROPPED_BASE).store(
            w(slot_off::DROPPED).load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        w(slot_off::BLOCKED_NS).store(0, Ordering::Relaxed);
        w(slot_off::ATTACHED_NS).store(now_ns, Ordering::Relaxed);
        w(slot_off::STATE).store(SLOT_ATTACHED, Ordering::Relaxed);
    }

    /// The owner gives `slot` back cleanly (no claim outstanding). Its counters stay for the
    /// drain to report and for `stat`.
    pub fn detach_slot(&self, slot: u16) {
        // Release: as for the intents stored in `claim`, a drain that sees the intent cleared
        // (Acquire in `claimants`) must see our last frame header on its re-check of word 0.
        self.slot_word(slot, slot_off::INTENT)
            .store(NO_INTENT, Ordering::Release);
        self.slot_word(slot, slot_off::STATE)
            .store(SLOT_DETACHED, Ordering::Relaxed);
    }
}
