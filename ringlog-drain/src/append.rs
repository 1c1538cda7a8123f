//! The writing half of the drain, [`Appender`]: the checkpointed append of a gathered batch
//! (intent, write, mark; see [`ringlog_core::checkpoint`]), the release of its ring range
//! afterwards, and the health of the output: following a replaced file, rotating, and reporting
//! a failing output once and its recovery once. It owns the output, so it can run on a thread of
//! its own ([`crate::stage`]) while the reading half gathers the next batch.

use crate::batch::Batch;
use crate::drain::DrainSummary;
use crate::durability::Durability;
use crate::events::{DrainEvent, Events, OutputFailure};
use crate::output::{FileState, Output};
use crate::pass::BatchEffects;
use ringlog_core::fault::{self, Point};
use ringlog_core::memory::MappedMemory;
use ringlog_core::{
    BatchIntent, Counter, ReadRange, Releaser, Ring, Segment, SharedFutex, SlotReports,
};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The output, and what the drain wrote to it.
#[derive(Debug)]
pub(crate) struct Appender {
    pub(crate) output: Output,
    pub(crate) durability: Durability,
    /// Since when the output fails, while it does: each failing spell is reported once when it
    /// starts and once when it ends, whatever fails (open, path check, rotation, write).
    output_failing_since: Option<Instant>,
    pub(crate) events: Events,
    /// Totals of the batches written.
    pub(crate) summary: DrainSummary,
}

impl Appender {
    pub(crate) fn new(output: Output, durability: Durability, events: Events) -> Appender {
        Appender {
            output,
            durability,
            output_failing_since: None,
            events,
            summary: DrainSummary::default(),
        }
    }

    /// Reopens the output path if `asked` is set (SIGHUP), and clears it.
    pub(crate) fn reopen_if_asked(&mut self, asked: &AtomicBool) {
        // Relaxed: a request flag; the reopen itself synchronises through the kernel.
        if asked.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.output.reopen() {
                self.output_failed(OutputFailure::Reopen(e));
            }
        }
    }

    /// Before writing `incoming` bytes: follows the path if the file there changed (removed,
    /// rotated away without SIGHUP) and rotates if due. False if the output cannot be made ready.
    pub(crate) fn prepare_output(&mut self, incoming: u64) -> bool {
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
        if let Err(e) = self.output.rotate_if_due(incoming) {
            self.output_failed(OutputFailure::Rotate(e));
            return false;
        }
        true
    }

    /// Checkpointed append of `batch`, formatted from the ring bytes of `range`; on success the
    /// range is released and the batch counted. If the output failed, nothing is released,
    /// nothing is left in the output, and the range comes back, to be written again.
    pub(crate) fn write_batch(
        &mut self,
        batch: &mut Batch,
        effects: &BatchEffects,
        range: ReadRange,
        releaser: &Releaser<Segment>,
    ) -> Result<(), ReadRange> {
        let ring = releaser.ring();
        let before = self.output.state();
        let counts = checkpointed_counts(effects, batch.len() as u64);
        let abandoned = abandoned_after(ring, effects);
        let slots = SlotReports {
            drops: &effects.drop_reports,
            abandoned: &abandoned,
        };
        let intent = before.map(|s| BatchIntent {
            start: range.start(),
            end: range.end(),
            out_len: s.len,
            bytes: batch.len() as u64,
            dev: s.dev,
            ino: s.ino,
            records: effects.records,
            born: s.born,
            counters_after: ring.counters_after(counts),
        });
        if let Some(intent) = &intent {
            // The drop reports and abandoned counts this batch carries are part of its intent.
            ring.record_intent(intent, slots);
        }
        fault::hit(Point::DrainIntentStored);
        self.output.begin_batch(range.start());
        if let Err(e) = self.append(batch, &range, releaser) {
            self.append_failed(ring, e, range.len(), before, slots);
            return Err(range);
        }
        fault::hit(Point::DrainWrittenNotMarked);
        if let Some(intent) = &intent {
            // At once: from here on a restarted drain knows the batch is out, even if the file
            // is moved away or compressed before it starts.
            ring.mark_written(intent);
        }
        if let Some(since) = self.output_failing_since.take() {
            // Records committed and not yet written, this batch's included (producers count
            // what they commit per slot; the drain what it wrote).
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
        if releaser.release(range) {
            ring.wake_space_waiters(&SharedFutex);
        }
        fault::hit(Point::DrainReleased);
        ring.count_batch(counts);
        ring.complete_intent(slots);
        self.summary.batches += 1;
        self.summary.bytes += batch.len() as u64;
        self.summary.records += effects.records;
        self.summary.abandoned += effects.abandoned;
        self.summary.corrupt += effects.corrupt;
        Ok(())
    }

    /// Writes the batch to the output.
    fn append(
        &mut self,
        batch: &mut Batch,
        range: &ReadRange,
        releaser: &Releaser<Segment>,
    ) -> io::Result<()> {
        match batch.contiguous() {
            Some(bytes) if fault::active() => {
                // Two writes, so a test can crash the drain between them.
                let (first, rest) = bytes.split_at(bytes.len() / 2);
                self.output.append(first).and_then(|()| {
                    fault::hit(Point::DrainHalfWritten);
                    self.output.append(rest)
                })
            }
            _ => self.output.append_batch(batch, range, releaser),
        }
    }

    /// The append failed: report it (once per failing spell), cut the output back to where it
    /// was, and void the intent, so the batch is retried from the ring.
    fn append_failed(
        &mut self,
        ring: &Ring<MappedMemory>,
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
        ring.cancel_intent(slots);
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
}

/// What each slot's abandoned count becomes once the batch is written: (slot, count after)
/// for [`SlotReports::abandoned`], so the counts ride with the batch's checkpoint.
fn abandoned_after(ring: &Ring<MappedMemory>, effects: &BatchEffects) -> Vec<(u16, u64)> {
    let mut after: Vec<(u16, u64)> = Vec::new();
    for &slot in &effects.abandoned_slots {
        match after.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, n)) => *n += 1,
            None => after.push((slot, ring.abandoned_after(slot, 1))),
        }
    }
    after
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
