//! One pass of the drain over the ring: gather committed frames from head into a batch (up to
//! the batch size, half the ring, or the room left before rotation), deciding on the way about
//! claims that do not commit and about corrupt bytes; then append the batch and release it (or,
//! with a writing thread, queue it for that thread: [`crate::stage`]).

use crate::batch::ZERO_COPY_MIN;
use crate::drain::{Drain, APPENDER_HOME};
use crate::events::DrainEvent;
use crate::stall::Resolved;
use ringlog_core::{Corruption, Frame, MessageLimits, OpenCursor};
use std::time::Duration;

/// How long the cursor of a producer's open chunk stands still, with claims waiting behind the
/// chunk, before the drain seals it. A producer writing a burst claims every few hundred
/// nanoseconds; one that waits longer is idle, stopped or dead, and the records behind its
/// chunk should not wait for it. Short: the drain spins while it waits.
const CHUNK_IDLE: Duration = Duration::from_micros(5);

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
    /// Go on with the next frame.
    Continue,
    /// End the gathering here with this outcome.
    Stop(Pass),
}

impl Drain {
    pub(crate) fn pass(&mut self) -> Pass {
        if let Some(stage) = self.stage.clone() {
            return self.queue_pass(&stage);
        }
        let (effects, outcome) = self.gather(true);
        if self.nothing_gathered() {
            return outcome;
        }
        let appender = self.appender.as_mut().expect(APPENDER_HOME);
        if !appender.prepare_output(self.batch.len() as u64) {
            self.consumer.rewind();
            return Pass::OutputFailed;
        }
        let range = self.consumer.hand_off();
        match appender.write_batch(&mut self.batch, &effects, range, &self.releaser) {
            Ok(()) => {
                self.notices.clear();
                let bytes = self.batch.len() as u64;
                self.handed_off(effects.records, bytes, effects.drop_events);
                Pass::Wrote
            }
            Err(range) => {
                self.consumer.take_back(range);
                Pass::OutputFailed
            }
        }
    }

    /// True when the last gathering read nothing and has nothing to write.
    pub(crate) fn nothing_gathered(&self) -> bool {
        self.consumer.position() == self.consumer.head() && self.batch.is_empty()
    }

    /// A gathered batch went to the output (or, with two stages, to the writer): the drain's
    /// own account of it.
    pub(crate) fn handed_off(&mut self, records: u64, bytes: u64, drop_events: Option<u64>) {
        if let Some(events) = drop_events {
            self.drop_events_seen = events;
        }
        self.records_handed_off += records;
        self.bytes_handed_off += bytes;
        self.last_batch_bytes = bytes;
    }

    /// Formats frames from head into the batch until it is full or a frame stops it; collects
    /// drop reports first if `drop_reports`.
    pub(crate) fn gather(&mut self, drop_reports: bool) -> (BatchEffects, Pass) {
        let capacity = self.ring().geometry().capacity;
        let start = self.consumer.head();
        let mut effects = BatchEffects::default();
        self.batch.clear();
        self.ticks.new_pass();
        // A batch stops short of the rotation size, so each file stays under it (unless a single
        // record is larger).
        let room = self.appender.as_ref().and_then(|a| a.output.room());
        let limit = room.map_or(self.options.batch_bytes, |room| {
            (room as usize).clamp(1, self.options.batch_bytes)
        });
        if drop_reports {
            self.collect_drop_reports(&mut effects);
        }
        for text in &self.notices {
            self.formatter
                .notice(self.batch.buf(), ringlog_core::clock::now_ns(), text);
        }
        let raw = self.formatter.is_raw();
        while self.batch.len() < limit && self.consumer.unreleased() < capacity / 2 {
            if raw && self.gather_messages(limit, capacity, &mut effects) {
                continue;
            }
            let pos = self.consumer.position();
            let frame = self.consumer.peek();
            let span = match &frame {
                Frame::Record(r) => r.span(),
                Frame::Padding(p) => p.len(),
                _ => 0,
            };
            // A frame longer than what one pass may release: only garbage gets here.
            if pos + span - start > capacity {
                self.stall
                    .report_once(pos, DrainEvent::FrameTooLong { pos }, &mut self.events);
                return (effects, Pass::Stalled);
            }
            let step = match frame {
                Frame::Record(record) => {
                    let mark = self.batch.mark();
                    let before = self.batch.len();
                    self.render(&record);
                    if self.batch.len() > limit && before > 0 {
                        // It would cross the rotation size: it opens the next file instead.
                        self.batch.truncate(mark);
                        Step::Stop(Pass::Idle)
                    } else {
                        effects.records += 1;
                        self.consumer.pass(&record);
                        self.passed()
                    }
                }
                Frame::Padding(skip) => {
                    self.consumer.skip(skip);
                    self.passed()
                }
                Frame::Empty => Step::Stop(Pass::Idle),
                // Write what we have first; the claim is looked at on the next pass.
                Frame::Pending { .. } if pos > start => Step::Stop(Pass::Stalled),
                Frame::Pending { slot, len } => self.on_pending(pos, slot, len, &mut effects),
                Frame::OpenChunk(_) if pos > start => Step::Stop(Pass::Stalled),
                Frame::OpenChunk(cursor) => self.on_open_chunk(pos, cursor),
                Frame::Corrupt(why) => self.on_corrupt(pos, why, &mut effects),
            };
            if let Step::Stop(outcome) = step {
                return (effects, outcome);
            }
        }
        (effects, Pass::Idle)
    }

    /// Raw format: takes the run of committed records at the read position in one go, exactly
    /// those the frame-by-frame loop would take (see [`ringlog_core::Consumer::append_messages`]);
    /// whatever stops it is for that loop. True if it took any.
    fn gather_messages(&mut self, limit: usize, capacity: u64, effects: &mut BatchEffects) -> bool {
        let limits = MessageLimits {
            out_len: self.batch.buf_limit(limit),
            // Large messages are written in place (see `render_raw`).
            message_below: ZERO_COPY_MIN,
            unreleased_below: capacity / 2,
        };
        let records = self.consumer.append_messages(self.batch.buf(), limits);
        if records == 0 {
            return false;
        }
        effects.records += records;
        self.passed();
        true
    }

    /// The consumer moved past a frame.
    fn passed(&mut self) -> Step {
        let at = self.consumer.position();
        self.stall
            .passed(self.consumer.ring(), at, &mut self.events);
        Step::Continue
    }

    /// A claim at head that is not committed: skip it if its owner died, else wait.
    fn on_pending(
        &mut self,
        pos: u64,
        slot: Option<u16>,
        len: Option<u32>,
        effects: &mut BatchEffects,
    ) -> Step {
        let abandoned = match self.resolve_pending(pos, slot, len) {
            None => return Step::Stop(Pass::Stalled),
            Some(Resolved::Unused(skip)) => {
                self.consumer.skip(skip);
                return self.passed();
            }
            Some(Resolved::Abandoned(abandoned)) => abandoned,
        };
        let bytes = abandoned.skip.len();
        self.report_in_band(DrainEvent::AbandonedClaim {
            bytes,
            pid: abandoned.pid,
        });
        effects.abandoned += 1;
        effects.abandoned_bytes += bytes;
        effects.abandoned_slots.extend(abandoned.owner);
        self.consumer.skip(abandoned.skip);
        Step::Continue
    }

    /// The open cursor of a producer's chunk: wait for the producer while it keeps claiming, or
    /// while nothing else is behind its chunk (the drain then idles as at an empty ring, and
    /// seals the chunk before it sleeps); seal it once the cursor has stood still for
    /// [`CHUNK_IDLE`] with claims waiting behind the chunk.
    fn on_open_chunk(&mut self, pos: u64, cursor: OpenCursor) -> Step {
        if !self.consumer.others_wait(&cursor) {
            return Step::Stop(Pass::Idle);
        }
        if self.stall.waited(pos) < CHUNK_IDLE {
            return Step::Stop(Pass::Stalled);
        }
        self.consumer.seal(cursor);
        Step::Continue
    }

    /// A frame that breaks the rules: resynchronise at the next certain boundary.
    fn on_corrupt(&mut self, pos: u64, why: Corruption, effects: &mut BatchEffects) -> Step {
        if let Corruption::Tail(bad) = why {
            // Producers would claim from a garbage position: put the tail back at the last
            // sound boundary and let them continue from there.
            if self.consumer.repair_tail(bad) {
                self.report_in_band(DrainEvent::TailRepaired { bad, to: pos });
                effects.corrupt += 1;
            }
            return Step::Stop(Pass::Stalled);
        }
        let Some(skip) = self.consumer.resync() else {
            let event = DrainEvent::Unrecoverable { pos, why };
            self.stall.report_once(pos, event, &mut self.events);
            return Step::Stop(Pass::Stalled);
        };
        self.report_in_band(DrainEvent::CorruptSkipped {
            bytes: skip.len(),
            pos,
            why,
        });
        effects.corrupt += 1;
        self.consumer.skip(skip);
        Step::Continue
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
