//! The producer registry: taking a slot when a producer thread attaches, giving it back when it
//! detaches, and the drop reports that must name the process that dropped. Who is alive is
//! decided by OFD locks (see [`crate::lock`]), not here: the caller holds the slot's lock across
//! [`Ring::take_slot`].
//!
//! # Drops stay with the process that made them
//!
//! A slot's `dropped` counter is cumulative over its owners, and the drain reports what it has
//! not reported yet (`dropped - dropped_reported`) under the slot's pid. So a slot whose drops
//! are not all reported must not get a new owner: the new pid would be charged with the old
//! owner's drops, and the old owner never named. The protocol:
//!
//! 1. A producer counts a drop with a Release store of `dropped` ([`Ring::count_drop`]); it
//!    stored its `pid` (in [`Ring::take_slot`]) before any drop, in program order.
//! 2. The drain reads a slot's unreported drops with [`Ring::unreported_drops`]: `dropped` with
//!    Acquire first, then `pid`. If it sees a drop of a new owner, it sees that owner's pid.
//! 3. The drain stores `dropped_reported` only once the batch carrying the report is in the
//!    output (the report is part of that batch's checkpoint, see the drain).
//! 4. A new owner takes the slot only if [`Ring::slot_reusable`]: besides the claim rule, every
//!    drop of the previous owners is reported (`dropped == dropped_reported`). The previous
//!    owner is gone (the lock is ours), so `dropped` is final; a stale `dropped_reported` is
//!    smaller than the real one, which errs on the side of "not reusable".
//!
//! So every unreported drop in a slot belongs to its current pid. The cost: while no drain runs
//! (or its output fails), each process that dropped keeps its slot until a drain reports it;
//! a registry full of them refuses new producers ([`crate::OpenError::RegistryFull`]) rather
//! than misname a loss.

use crate::layout::{slot_off, NO_INTENT, SLOT_ATTACHED, SLOT_DETACHED};
use crate::memory::Memory;
use crate::ring::Ring;
use crate::sync::Ordering;

/// Drops of one producer the drain has not reported yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreportedDrops {
    /// The process that dropped them.
    pub pid: u32,
    /// How many.
    pub count: u64,
    /// The slot's `dropped_reported` once they are reported.
    pub reported_after: u64,
}

impl<M: Memory> Ring<M> {
    /// True when slot `slot` holds nothing the drain may still need to attribute to its
    /// previous owner: its last intent is resolved (the drain's head has passed it) or it never
    /// claimed, the drain has passed its last chunk (whose cursor tells the drain what is in it,
    /// see [`crate::chunk`]), and the drain has reported all its drops (see the module docs).
    /// A new owner may take it only then (and only while holding its lock).
    pub fn slot_reusable(&self, slot: u16) -> bool {
        // Relaxed: the caller holds the slot's lock, so its previous owner is gone and the value
        // is final; `head` only grows, so a stale head errs on the side of "not reusable".
        let intent = self
            .slot_word(slot, slot_off::INTENT)
            .load(Ordering::Relaxed);
        let claims_resolved = intent == NO_INTENT || intent - 1 < self.head();
        // Relaxed: `dropped` is final (previous owner gone, as above); `dropped_reported` only
        // grows, so a stale value errs on the side of "not reusable".
        let dropped = self
            .slot_word(slot, slot_off::DROPPED)
            .load(Ordering::Relaxed);
        let reported = self
            .slot_word(slot, slot_off::DROPPED_REPORTED)
            .load(Ordering::Relaxed);
        claims_resolved && dropped == reported && self.chunk_passed(slot, self.head())
    }

    /// The drops of slot `slot` the drain has not reported yet, with the pid that made them
    /// (the slot's current owner: see the module docs), or `None` if there are none.
    pub fn unreported_drops(&self, slot: u16) -> Option<UnreportedDrops> {
        // Acquire: pairs with the Release store in `count_drop`; the pid the owner stored
        // before its drop is visible to the load below.
        let dropped = self
            .slot_word(slot, slot_off::DROPPED)
            .load(Ordering::Acquire);
        // Relaxed: the drain's own word.
        let reported = self
            .slot_word(slot, slot_off::DROPPED_REPORTED)
            .load(Ordering::Relaxed);
        if dropped <= reported {
            return None;
        }
        // Relaxed: ordered after the Acquire above.
        let pid = self
            .slot_word(slot, slot_off::PID_TID)
            .load(Ordering::Relaxed) as u32;
        Some(UnreportedDrops {
            pid,
            count: dropped - reported,
            reported_after: dropped,
        })
    }

    /// Makes `slot` the caller's. The caller holds the slot's lock and checked
    /// [`Ring::slot_reusable`].
    pub fn take_slot(&self, slot: u16, pid: u32, tid: u32, now_ns: u64) {
        // Relaxed throughout: the slot is exclusively ours (lock held); the drain reads these
        // words only as statistics or after synchronising through `tail`.
        let w = |f| self.slot_word(slot, f);
        w(slot_off::INTENT).store(NO_INTENT, Ordering::Relaxed);
        // The previous owner's chunk is passed (`slot_reusable`): its cursor is not needed.
        w(slot_off::CHUNK).store(0, Ordering::Relaxed);
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
