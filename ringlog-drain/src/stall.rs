//! Claims that stall the ring: a claim at head that is not committed. The drain waits for it;
//! every `abandon_check_after` it asks the core for a verdict ([`Ring::claim_verdict`]): a dead
//! owner's claim is skipped, a live owner that holds the ring past `stall_report_after` is
//! reported once (event, counter, the slot's `stall_since`) and reported resolved when the
//! drain moves past it.

use crate::drain::Drain;
use crate::events::{DrainEvent, Events};
use crate::options::DrainOptions;
use ringlog_core::memory::MappedMemory;
use ringlog_core::{clock, Counter, PendingVerdict, Ring, Skip};
use std::time::{Duration, Instant};

/// The stall being watched.
#[derive(Debug)]
struct Stall {
    pos: u64,
    since: Instant,
    last_check: Option<Instant>,
    reported: bool,
}

/// A claim at head worth skipping, and whose it was.
#[derive(Debug)]
pub(crate) struct Abandoned {
    pub(crate) skip: Skip,
    pub(crate) pid: u32,
    pub(crate) owner: Option<u16>,
}

/// What the drain may step over at head, once it has waited long enough.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A dead producer's claim: reported and counted.
    Abandoned(Abandoned),
    /// Space a dead producer never claimed a record in: nothing lost.
    Unused(Skip),
}

/// Watches the claim at head that does not commit.
#[derive(Debug)]
pub(crate) struct StallWatch {
    stall: Option<Stall>,
    abandon_check_after: Duration,
    stall_report_after: Duration,
}

impl StallWatch {
    pub(crate) fn new(options: &DrainOptions) -> StallWatch {
        StallWatch {
            stall: None,
            abandon_check_after: options.abandon_check_after,
            stall_report_after: options.stall_report_after,
        }
    }

    /// How long the drain has stood at `pos` (zero if it just got there).
    pub(crate) fn waited(&mut self, pos: u64) -> Duration {
        self.at(pos).since.elapsed()
    }

    /// How long the current stall has lasted (zero if none).
    pub(crate) fn age(&self) -> Duration {
        self.stall
            .as_ref()
            .map_or(Duration::ZERO, |s| s.since.elapsed())
    }

    /// The stall at `pos`, started now if it is a new one.
    fn at(&mut self, pos: u64) -> &mut Stall {
        if !self.stall.as_ref().is_some_and(|s| s.pos == pos) {
            self.stall = Some(Stall {
                pos,
                since: Instant::now(),
                last_check: None,
                reported: false,
            });
        }
        self.stall.as_mut().expect("just set")
    }

    /// Reports the stall at `pos` with `event`, once per stall.
    pub(crate) fn report_once(&mut self, pos: u64, event: DrainEvent, events: &mut Events) {
        let stall = self.at(pos);
        if !stall.reported {
            stall.reported = true;
            events.emit(event);
        }
    }

    /// The drain moved on to `pos`: a stall before it is over. Called once per record, so the
    /// common case (no stall) is inlined and the rest is out of line.
    #[inline]
    pub(crate) fn passed(&mut self, ring: &Ring<MappedMemory>, pos: u64, events: &mut Events) {
        if let Some(s) = self.stall.take_if(|s| pos > s.pos) {
            Self::resolved(s, ring, events);
        }
    }

    #[cold]
    fn resolved(s: Stall, ring: &Ring<MappedMemory>, events: &mut Events) {
        if s.reported {
            for slot in 0..ring.slots() as u16 {
                if ring.slot_info(slot).stall_since_ns != 0 {
                    ring.set_stall_since(slot, 0);
                }
            }
            events.emit(DrainEvent::StallResolved {
                pos: s.pos,
                after_ms: s.since.elapsed().as_millis(),
            });
        }
    }
}

impl Drain {
    /// Decides about a claim that is not committed at `pos`: `Some` to skip it because every
    /// possible owner is dead (or, in a chunk, because no claim is there), `None` to keep
    /// waiting.
    pub(crate) fn resolve_pending(
        &mut self,
        pos: u64,
        slot: Option<u16>,
        len: Option<u32>,
    ) -> Option<Resolved> {
        let now = Instant::now();
        let check_every = self.stall.abandon_check_after;
        let stall = self.stall.at(pos);
        let waited = now - stall.since;
        if waited < check_every || stall.last_check.is_some_and(|t| now - t < check_every) {
            return None;
        }
        stall.last_check = Some(now);
        ringlog_core::fault::hit(ringlog_core::fault::Point::DrainBeforeVerdict);
        match self.consumer.pending_verdict(slot, len) {
            PendingVerdict::Abandoned { skip, owner, pid } => {
                self.stall.stall = None;
                Some(Resolved::Abandoned(Abandoned { skip, pid, owner }))
            }
            PendingVerdict::Unused(skip) => {
                self.stall.stall = None;
                Some(Resolved::Unused(skip))
            }
            PendingVerdict::Alive(s) if waited >= self.stall.stall_report_after => {
                self.report_live_stall(pos, s, waited);
                None
            }
            PendingVerdict::Alive(_) | PendingVerdict::Changed => None,
        }
    }

    /// A live producer in slot `slot` has held the claim at `pos` for `waited`.
    fn report_live_stall(&mut self, pos: u64, slot: u16, waited: Duration) {
        if self.stall.at(pos).reported {
            return;
        }
        let ring = self.consumer.ring();
        let info = ring.slot_info(slot);
        let since = clock::now_ns() - waited.as_nanos() as u64;
        ring.add_count(Counter::Stalls, 1);
        ring.set_stall_since(slot, since);
        let event = DrainEvent::Stalled {
            pos,
            pid: info.pid,
            tid: info.tid,
            waited_ms: waited.as_millis(),
        };
        self.stall.report_once(pos, event, &mut self.events);
    }
}
