//! One pass of the drain over the ring: gather committed frames from head into a batch (up to
//! the batch size, half the ring, or the room left before rotation), deciding on the way about
//! claims that do not commit and about corrupt bytes; then append the batch and release it.

use crate::drain::Drain;
use crate::events::DrainEvent;
use ringlog_core::{Corruption, Next};

/// What one pass over the ring found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Wrote a batch.
    Wrote,
    /// Nothing to do.
    Idle,
    /// A claim at head is not committed yet.
    Stalled,
    /// The output failed; nothing was released.
    OutputFailed,
}

/// A batch's effects that count only once it is written.
#[derive(Debug, Default)]
pub(crate) struct BatchEffects {
    pub(crate) records: u64,
    pub(crate) abandoned: u64,
    pub(crate) abandoned_bytes: u64,
    pub(crate) corrupt: u64,
    /// (slot, dropped count now reported) for each drop report in the batch.
    pub(crate) drop_reports: Vec<(u16, u64)>,
    pub(crate) abandoned_slots: Vec<u16>,
    pub(crate) drop_events: Option<u64>,
}

/// What to do after looking at one frame.
enum Step {
    /// Go on at this position.
    Continue(u64),
    /// End the gathering at the current position with this outcome.
    Stop(Pass),
}

/// The ring range a pass gathered.
struct Gathered {
    start: u64,
    end: u64,
    effects: BatchEffects,
    outcome: Pass,
}

impl Drain {
    pub(crate) fn pass(&mut self) -> Pass {
        let g = self.gather();
        if g.end == g.start && self.batch.is_empty() {
            return g.outcome;
        }
        if !self.prepare_output() {
            return Pass::OutputFailed;
        }
        if self.write_batch(g.start, g.end, &g.effects) {
            self.head = g.end;
            self.notices.clear();
            self.apply(g.effects);
            Pass::Wrote
        } else {
            Pass::OutputFailed
        }
    }

    /// Formats frames from head into the batch until it is full or a frame stops it.
    fn gather(&mut self) -> Gathered {
        let capacity = self.ring().geometry().capacity;
        let start = self.head;
        let mut pos = start;
        let mut effects = BatchEffects::default();
        self.batch.clear();
        self.ticks.new_pass();
        // A batch stops short of the rotation size, so each file stays under it (unless a single
        // record is larger).
        let limit = self.output.room().map_or(self.options.batch_bytes, |room| {
            (room as usize).clamp(1, self.options.batch_bytes)
        });
        self.collect_drop_reports(&mut effects);
        for text in &self.notices {
            self.formatter
                .notice(self.batch.buf(), ringlog_core::clock::now_ns(), text);
        }
        let mut outcome = Pass::Idle;
        while self.batch.len() < limit && pos - start < capacity / 2 {
            let next = self.segment.ring().next(pos, &mut self.tail_cache);
            let step = match next {
                // A frame longer than what one pass may release: only garbage gets here.
                Next::Record { span, .. } | Next::Padding { span }
                    if pos + span - start > capacity =>
                {
                    self.stall
                        .report_once(pos, DrainEvent::FrameTooLong { pos }, &mut self.events);
                    Step::Stop(Pass::Stalled)
                }
                Next::Record { meta, span } => {
                    let mark = self.batch.mark();
                    let before = self.batch.len();
                    self.render(pos, &meta);
                    if self.batch.len() > limit && before > 0 {
                        // It would cross the rotation size: it opens the next file instead.
                        self.batch.truncate(mark);
                        Step::Stop(Pass::Idle)
                    } else {
                        effects.records += 1;
                        self.passed(pos + span)
                    }
                }
                Next::Padding { span } => self.passed(pos + span),
                Next::Empty => Step::Stop(Pass::Idle),
                // Write what we have first; the claim is looked at on the next pass.
                Next::Pending { .. } if pos > start => Step::Stop(Pass::Stalled),
                Next::Pending { slot, len } => self.on_pending(pos, slot, len, &mut effects),
                Next::Corrupt(why) => self.on_corrupt(start, pos, why, &mut effects),
            };
            match step {
                Step::Continue(next) => pos = next,
                Step::Stop(why) => {
                    if why != Pass::Idle {
                        outcome = why;
                    }
                    break;
                }
            }
        }
        Gathered {
            start,
            end: pos,
            effects,
            outcome,
        }
    }

    /// The frame before `next` is consumed.
    fn passed(&mut self, next: u64) -> Step {
        self.stall
            .passed(self.segment.ring(), next, &mut self.events);
        Step::Continue(next)
    }

    /// A claim at head that is not committed: skip it if its owner died, else wait.
    fn on_pending(
        &mut self,
        pos: u64,
        slot: Option<u16>,
        len: Option<u32>,
        effects: &mut BatchEffects,
    ) -> Step {
        let Some(skip) = self.resolve_pending(pos, slot, len) else {
            return Step::Stop(Pass::Stalled);
        };
        let bytes = skip.end - pos;
        self.report_in_band(DrainEvent::AbandonedClaim {
            bytes,
            pid: skip.pid,
        });
        effects.abandoned += 1;
        effects.abandoned_bytes += bytes;
        effects.abandoned_slots.extend(skip.owner);
        Step::Continue(skip.end)
    }

    /// A frame that breaks the rules: resynchronise at the next certain boundary.
    fn on_corrupt(
        &mut self,
        start: u64,
        pos: u64,
        why: Corruption,
        effects: &mut BatchEffects,
    ) -> Step {
        let ring = self.segment.ring();
        if let Corruption::Tail(bad) = why {
            // Producers would claim from a garbage position: put the tail back at the last
            // sound boundary and let them continue from there.
            if ring.repair_tail(bad, pos) {
                self.report_in_band(DrainEvent::TailRepaired { bad, to: pos });
                effects.corrupt += 1;
            }
            self.tail_cache = pos;
            return Step::Stop(Pass::Stalled);
        }
        let capacity = ring.geometry().capacity;
        let end = ring.resync_point(pos, ring.tail());
        if end <= pos || end - start > capacity {
            let event = DrainEvent::Unrecoverable { pos, why };
            self.stall.report_once(pos, event, &mut self.events);
            return Step::Stop(Pass::Stalled);
        }
        self.report_in_band(DrainEvent::CorruptSkipped {
            bytes: end - pos,
            pos,
            why,
        });
        effects.corrupt += 1;
        Step::Continue(end)
    }

    /// Tells the operator about lost records, and says so in the log too (a notice line in the
    /// current batch).
    fn report_in_band(&mut self, event: DrainEvent) {
        if let Some(text) = event.notice() {
            self.formatter
                .notice(self.batch.buf(), ringlog_core::clock::now_ns(), &text);
        }
        self.events.emit(event);
    }
}
