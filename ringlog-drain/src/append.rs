//! The checkpointed append of a gathered batch (intent, write, advance; see
//! [`ringlog_core::checkpoint`]), the release of its ring range afterwards, and the health of
//! the output: following a replaced file, rotating, and reporting a failing output once and its
//! recovery once.

use crate::drain::Drain;
use crate::events::{DrainEvent, OutputFailure};
use crate::output::FileState;
use crate::pass::BatchEffects;
use ringlog_core::fault::{self, Point};
use ringlog_core::{BatchIntent, Counter, SharedFutex, SlotReports};
use std::io;
use std::time::Instant;

impl Drain {
    /// Before a write: follows the path if the file there changed (removed, rotated away
    /// without SIGHUP) and rotates if due. False if the output cannot be made ready.
    pub(crate) fn prepare_output(&mut self) -> bool {
        match self.output.follow_path() {
            Ok(true) => {
                let path = self.output.path().map(|p| p.display().to_string());
                self.events.emit(DrainEvent::OutputReplaced {
                    path: path.unwrap_or_default(),
                });
            }
            Ok(false) => {}
            Err(e) => {
                self.output_failed(OutputFailure::PathCheck(e));
                return false;
            }
        }
        if let Err(e) = self.output.rotate_if_due(self.batch.len() as u64) {
            self.output_failed(OutputFailure::Rotate(e));
            return false;
        }
        true
    }

    /// Checkpointed append of the batch the consumer read, already formatted; on success it is
    /// released. False if the output failed (nothing released, nothing left in the output, the
    /// consumer back at its head to read it again).
    pub(crate) fn write_batch(&mut self, effects: &BatchEffects) -> bool {
        let before = self.output.state();
        let counts = checkpointed_counts(effects, self.batch.len() as u64);
        let abandoned = self.abandoned_after(effects);
        let slots = SlotReports {
            drops: &effects.drop_reports,
            abandoned: &abandoned,
        };
        let intent = before.map(|s| BatchIntent {
            start: self.consumer.head(),
            end: self.consumer.position(),
            out_len: s.len,
            bytes: self.batch.len() as u64,
            dev: s.dev,
            ino: s.ino,
            records: effects.records,
            born: s.born,
            counters_after: self.ring().counters_after(counts),
        });
        if let Some(intent) = &intent {
            // The drop reports and abandoned counts this batch carries are part of its intent.
            self.ring().record_intent(intent, slots);
        }
        fault::hit(Point::DrainIntentStored);
        self.output.begin_batch(self.consumer.head());
        if let Err(e) = self.append() {
            let kept = self.consumer.unreleased();
            self.consumer.rewind();
            self.append_failed(e, kept, before, slots);
            return false;
        }
        fault::hit(Point::DrainWrittenNotMarked);
        if let Some(intent) = &intent {
            // At once: from here on a restarted drain knows the batch is out, even if the file
            // is moved away or compressed before it starts.
            self.ring().mark_written(intent);
        }
        if let Some(since) = self.output_failing_since.take() {
            // Records committed and not yet written, this batch's included (producers count
            // what they commit per slot; the drain what it wrote).
            let ring = self.consumer.ring();
            let committed: u64 = (0..ring.slots() as u16)
                .map(|s| ring.slot_info(s).written)
                .sum();
            let written = ring.count(Counter::RecordsOut);
            self.events.emit(DrainEvent::OutputRecovered {
                output: self.output.describe(),
                after: since.elapsed(),
                waited_records: committed.saturating_sub(written),
            });
        }
        self.durability.wrote();
        self.sync_if_due(false);
        fault::hit(Point::DrainWrittenBeforeRelease);
        if self.consumer.release() {
            self.ring().wake_space_waiters(&SharedFutex);
        }
        fault::hit(Point::DrainReleased);
        let ring = self.consumer.ring();
        ring.count_batch(counts);
        ring.complete_intent(slots);
        self.summary.batches += 1;
        self.summary.bytes += self.batch.len() as u64;
        true
    }

    /// Writes the batch to the output.
    fn append(&mut self) -> io::Result<()> {
        match self.batch.contiguous() {
            Some(bytes) if fault::active() => {
                // Two writes, so a test can crash the drain between them.
                let (first, rest) = bytes.split_at(bytes.len() / 2);
                self.output.append(first).and_then(|()| {
                    fault::hit(Point::DrainHalfWritten);
                    self.output.append(rest)
                })
            }
            _ => self.output.append_batch(&mut self.batch, &self.consumer),
        }
    }

    /// The append failed: report it (once per failing spell), cut the output back to where it
    /// was, and void the intent, so the batch is retried from the ring.
    fn append_failed(
        &mut self,
        error: io::Error,
        kept: u64,
        before: Option<FileState>,
        slots: SlotReports<'_>,
    ) {
        self.output_failed(OutputFailure::Write { bytes: kept, error });
        if let Some(s) = before {
            if self.output.truncate_to(s.len).is_err() {
                // The intent stays: a restarted drain repairs the file.
                let _ = self.output.reopen();
                return;
            }
        }
        // Pick up a repaired path (a new file, a fixed mount) on the next attempt.
        let _ = self.output.reopen();
        self.ring().cancel_intent(slots);
    }

    /// Reports a failing output once per spell (the first failure, with its cause); later
    /// failures of the same spell are retried silently.
    pub(crate) fn output_failed(&mut self, failure: OutputFailure) {
        if self.output_failing_since.is_none() {
            self.output_failing_since = Some(Instant::now());
            self.events.emit(DrainEvent::OutputFailed {
                output: self.output.describe(),
                failure,
            });
        }
    }

    /// What each slot's abandoned count becomes once the batch is written: (slot, count after)
    /// for [`SlotReports::abandoned`], so the counts ride with the batch's checkpoint.
    fn abandoned_after(&self, effects: &BatchEffects) -> Vec<(u16, u64)> {
        let mut after: Vec<(u16, u64)> = Vec::new();
        for &slot in &effects.abandoned_slots {
            match after.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, n)) => *n += 1,
                None => after.push((slot, self.ring().abandoned_after(slot, 1))),
            }
        }
        after
    }

    /// Counts what a written batch did beyond its checkpoint, in this drain's summary.
    pub(crate) fn apply(&mut self, effects: BatchEffects) {
        if let Some(ev) = effects.drop_events {
            self.drop_events_seen = ev;
        }
        self.summary.records += effects.records;
        self.summary.abandoned += effects.abandoned;
        self.summary.corrupt += effects.corrupt;
    }
}

/// What a written batch adds to each of [`Counter::CHECKPOINTED`], in that order.
fn checkpointed_counts(effects: &BatchEffects, bytes: u64) -> [u64; 5] {
    [
        effects.records,
        bytes,
        effects.abandoned,
        effects.abandoned_bytes,
        effects.corrupt,
    ]
}
