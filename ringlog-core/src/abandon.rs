//! The verdict on a claim that does not commit: is its owner dead, so the drain may skip it
//! (with a marker line in the log), or alive, so the drain must wait? DESIGN.md forbids
//! skipping a live producer's claim; this module is the one place that decides. Whether an owner
//! is alive is asked through [`Liveness`] (OFD locks in production, [`SlotLocks`]; a model in
//! tests), so the tests run this very decision.

use crate::layout;
use crate::memory::Memory;
use crate::ring::{Next, Ring};

/// Whether the producer owning a registry slot is alive.
pub trait Liveness {
    /// True if slot `slot`'s owner is dead. Then the slot stays held (no new owner can attach
    /// and claim) until [`Liveness::let_go`], so the verdict cannot go stale while it is used.
    fn hold_if_dead(&self, slot: u16) -> bool;
    /// Ends a hold taken by [`Liveness::hold_if_dead`].
    fn let_go(&self, slot: u16);
}

/// Liveness by the OFD lock each producer keeps on its slot's byte of the segment file: the
/// kernel drops it when the owner dies, however it dies.
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug)]
pub struct SlotLocks<'fd>(pub std::os::fd::BorrowedFd<'fd>);

#[cfg(not(loom))]
impl Liveness for SlotLocks<'_> {
    fn hold_if_dead(&self, slot: u16) -> bool {
        // An error (not a conflict) is taken for "alive": never skip a claim on a doubt.
        crate::lock::try_lock(self.0, layout::slot_lock_byte(slot as u32)).unwrap_or(false)
    }
    fn let_go(&self, slot: u16) {
        // Failing to unlock leaves the slot held by the drain until it exits; nothing is lost.
        let _ = crate::lock::unlock(self.0, layout::slot_lock_byte(slot as u32));
    }
}

#[cfg(not(loom))]
impl Liveness for crate::segment::Segment {
    fn hold_if_dead(&self, slot: u16) -> bool {
        use std::os::fd::AsFd;
        SlotLocks(self.file().as_fd()).hold_if_dead(slot)
    }
    fn let_go(&self, slot: u16) {
        use std::os::fd::AsFd;
        SlotLocks(self.file().as_fd()).let_go(slot)
    }
}

/// The verdict on a claim that is not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimVerdict {
    /// Every possible owner is dead: skip to `end`.
    Abandoned {
        /// Where the next frame starts.
        end: u64,
        /// The owner's slot, if known.
        owner: Option<u16>,
        /// The owner's pid (0 if unknown).
        pid: u32,
    },
    /// The owner in this slot is alive: wait for it.
    Alive(u16),
    /// Space no record was claimed in (the rest of a chunk whose owner died before writing its
    /// padding): skip to `end`; nothing was lost.
    Unused {
        /// Where the next frame starts.
        end: u64,
    },
    /// The claim changed while it was looked at (its owner wrote its header): look again.
    Changed,
}

impl<M: Memory> Ring<M> {
    /// Decides about the claim at `pos` that [`Ring::next`] reported as
    /// `Next::Pending { slot, len }`. `tail_cache` is the consumer's, as for `next`.
    /// [`crate::Consumer::pending_verdict`] is the safe way.
    ///
    /// # Safety
    /// As for [`Ring::next`] at `pos`.
    pub unsafe fn claim_verdict(
        &self,
        pos: u64,
        slot: Option<u16>,
        len: Option<u32>,
        tail_cache: &mut u64,
        liveness: &impl Liveness,
    ) -> ClaimVerdict {
        let owners: Vec<u16> = match slot {
            Some(s) => vec![s],
            None => {
                // Load the tail first (see `claimants`), then the intents, then word 0 again.
                let _ = self.tail();
                let owners = self.claimants(pos).collect();
                // An owner that moved on wrote its header first: look again.
                // SAFETY: the caller's promise about `pos`.
                let again = unsafe { self.next(pos, tail_cache) };
                if !matches!(again, Next::Pending { slot: None, .. }) {
                    return ClaimVerdict::Changed;
                }
                owners
            }
        };
        let mut held = Vec::with_capacity(owners.len());
        let mut alive = None;
        for &s in &owners {
            if liveness.hold_if_dead(s) {
                held.push(s);
            } else {
                alive = Some(s);
            }
        }
        let verdict = match alive {
            Some(s) => ClaimVerdict::Alive(s),
            None => {
                let end = match len {
                    Some(l) => pos + layout::align_record(l as u64),
                    // SAFETY: the caller's promise about `pos`, and every owner is dead.
                    None => unsafe { self.unwritten_claim_end(pos, self.tail()) },
                };
                let owner = owners.first().copied();
                let pid = owner.map_or(0, |s| self.slot_info(s).pid);
                ClaimVerdict::Abandoned { end, owner, pid }
            }
        };
        for s in held {
            liveness.let_go(s);
        }
        verdict
    }
}
