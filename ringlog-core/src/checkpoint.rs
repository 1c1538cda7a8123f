//! The drain's output checkpoint, which makes a SIGKILLed drain restart without losing or
//! duplicating a record: before it appends a batch, the drain records its *intent* (the ring
//! range, the output file's identity and length, the drop reports the batch carries); once the
//! append returned whole it marks the intent *written*; then it releases the range and voids
//! the intent. A new drain that finds an intent marked written releases the batch, wherever its
//! file went meanwhile (logrotate's `olddir`, `compress`); otherwise it compares the file with
//! the intent ([`Ring::recovery_verdict`]) and finishes, cuts back or redoes the batch, and when
//! the file cannot tell (it is gone), redoes it and says that it may now be there twice.
//!
//! The mark is a digest of the intent's words in a word older builds left as padding: an older
//! drain ignores it and recovers as it always did; a mark left over from another intent (or by
//! a build that raced an older one) does not match, and so says nothing.
//!
//! Ordering: the intent's words are stored Relaxed and published to a later drain by a SeqCst
//! fence before the write starts; a later drain reads them Relaxed, because it holds the drain
//! lock only after the previous holder died, and a dead process's stores are in the mapping.

use crate::drain_words::Counter;
use crate::layout::{off, slot_off};
use crate::memory::Memory;
use crate::ring::Ring;
use crate::sync::{fence, Ordering};

/// `ckpt_state` when no batch is in flight.
const STATE_IDLE: u64 = 0;
/// `ckpt_state` while a batch is being appended.
const STATE_IN_FLIGHT: u64 = 1;

/// Whether a batch is being appended to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointState {
    /// No batch in flight: the output holds exactly what was released.
    Idle,
    /// A batch described by a [`BatchIntent`] is being appended.
    InFlight,
}

/// The batch being appended: ring range `[start, end)`, `bytes` formatted bytes of `records`
/// records, appended to the file `dev`/`ino` whose length was `out_len`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchIntent {
    /// First ring position of the batch.
    pub start: u64,
    /// Ring position after the batch.
    pub end: u64,
    /// Output file length before the append.
    pub out_len: u64,
    /// Bytes the append adds.
    pub bytes: u64,
    /// Output file device.
    pub dev: u64,
    /// Output file inode.
    pub ino: u64,
    /// Records in the batch.
    pub records: u64,
    /// Output file birth time (ns since the Unix epoch), 0 if unknown: with `dev` and `ino`,
    /// it names the file even after its inode number was given to another.
    pub born: u64,
    /// What each of [`Counter::CHECKPOINTED`] becomes once this batch is counted: the counters
    /// ride with their batch, so they are exact across any drain kill.
    pub counters_after: [u64; 5],
}

impl BatchIntent {
    /// What [`Ring::mark_written`] stores for this intent: a digest of its words, never 0
    /// (the value of a segment no drain marked). An FNV-style fold over the words: each step is
    /// a bijection, so intents that differ in one word get different digests (unless one of
    /// them folds to 0, stored as 1).
    fn digest(&self) -> u64 {
        let words = [
            self.start,
            self.end,
            self.out_len,
            self.bytes,
            self.dev,
            self.ino,
            self.records,
            self.born,
        ];
        let hash = words.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, w| {
            (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
        });
        hash.max(1)
    }
}

/// What a batch changes in registry slots, carried by its checkpoint like the counters, so a
/// restarted drain finishes or forgets each change exactly as it finishes or redoes the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotReports<'a> {
    /// (slot, what its `dropped_reported` becomes) for each drop report the batch carries.
    pub drops: &'a [(u16, u64)],
    /// (slot, what its `abandoned` count becomes) for each slot whose claims the batch skips.
    pub abandoned: &'a [(u16, u64)],
}

/// The output file as a restarted drain finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Length in bytes.
    pub len: u64,
    /// Birth time (ns since the Unix epoch), 0 if unknown.
    pub born: u64,
}

impl OutputFile {
    /// Whether this is the file `intent` was appended to: same device and inode, and the same
    /// birth time where both are known (an inode number is reused once its file is deleted).
    pub fn is_file_of(&self, intent: &BatchIntent) -> bool {
        (self.dev, self.ino) == (intent.dev, intent.ino)
            && (self.born == 0 || intent.born == 0 || self.born == intent.born)
    }
}

/// What a restarted drain does about the batch its predecessor left in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// No batch was in flight.
    Clean,
    /// The batch was released before the crash (the intent was not voided yet): its drop
    /// reports are in the output.
    Released,
    /// The output holds the whole batch: release it (`Consumer::release_recovered`) and resume
    /// after it.
    Written(BatchIntent),
    /// The output holds `written` bytes of the batch: cut the file back to `intent.out_len`,
    /// then write the batch again.
    HalfWritten {
        /// What was in flight.
        intent: BatchIntent,
        /// Bytes of it that reached the file.
        written: u64,
    },
    /// Nothing of the batch is in the output: write it again.
    Redo,
    /// The checkpoint does not say whether the append finished and the file cannot tell (it is
    /// neither at the output path nor beside it, or its length is neither before nor after the
    /// batch): write it again, and say that up to `records` records of it may now be in the log
    /// twice (and the file it went to may end inside it). Only a drain killed between the start
    /// of its append and the mark gets here.
    Unsure(BatchIntent),
}

impl Recovery {
    /// Whether the batch reached the output whole, so the drop reports it carried count.
    pub fn batch_written(&self) -> bool {
        matches!(self, Recovery::Released | Recovery::Written(_))
    }
}

impl<M: Memory> Ring<M> {
    /// Whether a batch is in flight.
    pub fn checkpoint_state(&self) -> CheckpointState {
        // Relaxed: see the module docs (the writer of this word is dead or is us).
        match self.word(off::CKPT_STATE).load(Ordering::Relaxed) {
            STATE_IN_FLIGHT => CheckpointState::InFlight,
            _ => CheckpointState::Idle,
        }
    }

    /// The batch in flight, if any.
    pub fn batch_in_flight(&self) -> Option<BatchIntent> {
        if self.checkpoint_state() == CheckpointState::Idle {
            return None;
        }
        // Relaxed: see the module docs (the writer of these words is dead or is us).
        let w = |o| self.word(o).load(Ordering::Relaxed);
        Some(BatchIntent {
            start: w(off::CKPT_START),
            end: w(off::CKPT_END),
            out_len: w(off::CKPT_OUT_LEN),
            bytes: w(off::CKPT_BYTES),
            dev: w(off::CKPT_DEV),
            ino: w(off::CKPT_INO),
            records: w(off::CKPT_RECORDS),
            born: w(off::CKPT_BORN),
            counters_after: std::array::from_fn(|i| w(off::CKPT_COUNTERS_AFTER + 8 * i)),
        })
    }

    /// Decides what to do about the batch a dead drain left in flight. `probe` tells how the
    /// output file at the configured path looks now (`None`: not a file); it is asked only when
    /// the answer matters.
    pub fn recovery_verdict<E>(
        &self,
        probe: impl FnOnce() -> Result<Option<OutputFile>, E>,
    ) -> Result<Recovery, E> {
        let Some(intent) = self.batch_in_flight() else {
            return Ok(Recovery::Clean);
        };
        let head = self.head();
        if head == intent.end && head != intent.start {
            return Ok(Recovery::Released);
        }
        if head != intent.start {
            return Ok(Recovery::Redo);
        }
        let plausible_range =
            intent.end >= intent.start && intent.end - intent.start <= self.geometry().capacity;
        if plausible_range && self.marked_written(&intent) {
            return Ok(Recovery::Written(intent));
        }
        let same_file = probe()?.filter(|f| f.is_file_of(&intent));
        let after = intent.out_len + intent.bytes;
        Ok(match same_file {
            Some(f) if f.len == after && plausible_range => Recovery::Written(intent),
            Some(f) if f.len > intent.out_len && f.len < after => Recovery::HalfWritten {
                intent,
                written: f.len - intent.out_len,
            },
            Some(f) if f.len == intent.out_len => Recovery::Redo,
            // Nothing that could appear twice.
            _ if intent.bytes == 0 => Recovery::Redo,
            _ => Recovery::Unsure(intent),
        })
    }

    /// Whether the batch `intent` is marked written ([`Ring::mark_written`]).
    fn marked_written(&self, intent: &BatchIntent) -> bool {
        // Relaxed: see the module docs.
        self.word(off::CKPT_WRITTEN).load(Ordering::Relaxed) == intent.digest()
    }

    /// Marks the batch in flight, `intent`, written: its append returned whole. Call it right
    /// after the append, before anything else: a drain killed before it leaves the file's
    /// length as the only witness, and a file moved away meanwhile cannot testify.
    pub fn mark_written(&self, intent: &BatchIntent) {
        self.word(off::CKPT_WRITTEN)
            .store(intent.digest(), Ordering::Relaxed);
        // SeqCst fence, as for the intent: the mark is in the shared mapping before the release
        // that follows starts, so no later state of the ring is seen without it.
        fence(Ordering::SeqCst);
    }

    /// Releases the batch a dead drain wrote whole ([`Recovery::Written`]); it is counted by
    /// [`Ring::finish_recovery`].
    /// Does nothing unless that batch is still in flight and starts at head, so it never
    /// releases a range the checkpoint does not name. Crate-private: only the ring's
    /// [`Consumer`](crate::Consumer) calls it (`Consumer::release_recovered`), before it has read
    /// anything, so no frame it handed out can lie in the range.
    pub(crate) fn release_recovered(&self) {
        let Some(intent) = self.batch_in_flight() else {
            return;
        };
        let capacity = self.geometry().capacity;
        if self.head() != intent.start
            || intent.end < intent.start
            || intent.end - intent.start > capacity
        {
            return;
        }
        // SAFETY: the range is the batch a dead drain (this ring's only consumer, per the drain
        // lock this one now holds) read and wrote whole; it starts at head (checked above).
        unsafe { self.release(intent.start, intent.end) };
    }

    /// Ends recovery: the counters, drop reports and per-slot abandoned counts the batch
    /// carried count if `recovery` says the batch was written (each set to what the intent says
    /// it becomes, if the dead drain had not got to it: a value below the current one means it
    /// had), and the reports are forgotten (to be made again) otherwise; the intent is void.
    pub fn finish_recovery(&self, recovery: &Recovery) {
        let written = recovery.batch_written();
        if written {
            if let Some(intent) = self.batch_in_flight() {
                for (counter, after) in Counter::CHECKPOINTED.into_iter().zip(intent.counters_after)
                {
                    self.raise_count(counter, after);
                }
            }
        }
        // Relaxed throughout: the drain's own words (see the module docs); the SeqCst fence
        // below orders them before the intent is void.
        for slot in 0..self.slots() as u16 {
            let pending = self.slot_word(slot, slot_off::DROPPED_PENDING);
            let reported = pending.load(Ordering::Relaxed);
            if reported != 0 {
                if written {
                    self.set_dropped_reported(slot, reported);
                }
                pending.store(0, Ordering::Relaxed);
            }
            let pending = self.slot_word(slot, slot_off::ABANDONED_PENDING);
            let after = pending.load(Ordering::Relaxed);
            if after != 0 {
                let count = self.slot_word(slot, slot_off::ABANDONED);
                if written && after > count.load(Ordering::Relaxed) {
                    count.store(after, Ordering::Relaxed);
                }
                pending.store(0, Ordering::Relaxed);
            }
        }
        // SeqCst fence, as in `complete_intent`: the counts and cleared reports above are in
        // the mapping before the intent is void, so a drain killed in between recovers again
        // (each value is what a count becomes, so doing it twice counts nothing twice) and never
        // finds the intent void with reports still pending.
        fence(Ordering::SeqCst);
        // Relaxed: published by the fence above (module docs).
        self.word(off::CKPT_STATE)
            .store(STATE_IDLE, Ordering::Relaxed);
    }

    /// Records the intent to append `intent`, carrying `slots` (drop reports and abandoned
    /// counts), before the append starts.
    pub fn record_intent(&self, intent: &BatchIntent, slots: SlotReports<'_>) {
        let w = |o, v| self.word(o).store(v, Ordering::Relaxed);
        // First, so that no mark of an earlier batch stands beside a half-stored intent (the
        // digest would not match it anyway).
        w(off::CKPT_WRITTEN, 0);
        w(off::CKPT_START, intent.start);
        w(off::CKPT_END, intent.end);
        w(off::CKPT_OUT_LEN, intent.out_len);
        w(off::CKPT_BYTES, intent.bytes);
        w(off::CKPT_DEV, intent.dev);
        w(off::CKPT_INO, intent.ino);
        w(off::CKPT_RECORDS, intent.records);
        w(off::CKPT_BORN, intent.born);
        for (i, &after) in intent.counters_after.iter().enumerate() {
            w(off::CKPT_COUNTERS_AFTER + 8 * i, after);
        }
        self.set_pending(slots, true);
        w(off::CKPT_STATE, STATE_IN_FLIGHT);
        // SeqCst fence: the intent is complete in the shared mapping before the append starts
        // (a SIGKILL at any later point finds it whole).
        fence(Ordering::SeqCst);
    }

    /// Stores (`set`) or clears the pending per-slot values of `slots`.
    fn set_pending(&self, slots: SlotReports<'_>, set: bool) {
        for (field, list) in [
            (slot_off::DROPPED_PENDING, slots.drops),
            (slot_off::ABANDONED_PENDING, slots.abandoned),
        ] {
            for &(slot, after) in list {
                let value = if set { after } else { 0 };
                // Relaxed: the drain's own words, ordered by the callers' fences (module docs).
                self.slot_word(slot, field).store(value, Ordering::Relaxed);
            }
        }
    }

    /// Voids an intent whose batch left nothing in the output (the append failed and was cut
    /// back): its drop reports will be made again, its abandoned claims counted again.
    pub fn cancel_intent(&self, slots: SlotReports<'_>) {
        self.set_pending(slots, false);
        // SeqCst fence: the cleared reports reach the mapping before the intent is void, so no
        // pending report outlives it (a later recovery would take it for its own batch's).
        fence(Ordering::SeqCst);
        // Relaxed: published by the fence above (module docs).
        self.word(off::CKPT_STATE)
            .store(STATE_IDLE, Ordering::Relaxed);
    }

    /// What [`Counter::CHECKPOINTED`] become once a batch adding `counts` (in that order) is
    /// counted: the [`BatchIntent::counters_after`] of that batch.
    pub fn counters_after(&self, counts: [u64; 5]) -> [u64; 5] {
        std::array::from_fn(|i| self.count(Counter::CHECKPOINTED[i]) + counts[i])
    }

    /// Counts a written batch: adds `counts` to [`Counter::CHECKPOINTED`] (in that order).
    pub fn count_batch(&self, counts: [u64; 5]) {
        for (counter, n) in Counter::CHECKPOINTED.into_iter().zip(counts) {
            self.add_count(counter, n);
        }
    }

    /// Voids the intent of a batch that was written and released: its drop reports are in the
    /// output and its abandoned claims counted, recorded before the intent goes so a crash in
    /// between cannot count them twice (or a restarted drain finish them again: each value is
    /// what the count becomes, not an increment).
    pub fn complete_intent(&self, slots: SlotReports<'_>) {
        for &(slot, reported) in slots.drops {
            self.set_dropped_reported(slot, reported);
        }
        for &(slot, after) in slots.abandoned {
            self.slot_word(slot, slot_off::ABANDONED)
                .store(after, Ordering::Relaxed);
        }
        self.set_pending(slots, false);
        // SeqCst fence: the reports above reach the mapping before the intent is void.
        fence(Ordering::SeqCst);
        // Relaxed: published by the fence above (module docs).
        self.word(off::CKPT_STATE)
            .store(STATE_IDLE, Ordering::Relaxed);
    }

    /// What slot `slot`'s abandoned count becomes once `n` more of its claims are counted: a
    /// value for [`SlotReports::abandoned`].
    pub fn abandoned_after(&self, slot: u16, n: u64) -> u64 {
        self.slot_word(slot, slot_off::ABANDONED)
            .load(Ordering::Relaxed)
            + n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::memory::HeapMemory;
    use crate::ring::Geometry;

    const GEOMETRY: Geometry = Geometry {
        capacity: 4096,
        max_record: 1000,
        slots: 4,
    };

    /// A fresh ring with a batch `[0, 512)` of 3 records (300 bytes) in flight, to be appended
    /// to file 7/42 of 1000 bytes.
    fn ring_with_batch_in_flight() -> (Ring<HeapMemory>, BatchIntent) {
        let mem = HeapMemory::new(GEOMETRY.segment_len() as usize);
        let ring = Ring::create(mem, GEOMETRY, 1, 0o600).unwrap();
        let intent = BatchIntent {
            start: 0,
            end: 512,
            out_len: 1000,
            bytes: 300,
            dev: 7,
            ino: 42,
            records: 3,
            born: 5,
            counters_after: [3, 300, 0, 0, 0],
        };
        ring.record_intent(&intent, SlotReports::default());
        (ring, intent)
    }

    fn file(ino: u64, len: u64) -> Option<OutputFile> {
        Some(OutputFile {
            dev: 7,
            ino,
            len,
            born: 5,
        })
    }

    fn verdict(ring: &Ring<HeapMemory>, found: Option<OutputFile>) -> Recovery {
        ring.recovery_verdict(|| Ok::<_, ()>(found)).unwrap()
    }

    #[test]
    fn a_batch_marked_written_is_released_wherever_its_file_went() {
        let (ring, intent) = ring_with_batch_in_flight();
        ring.mark_written(&intent);
        let asked = std::cell::Cell::new(false);
        let found = ring.recovery_verdict(|| {
            asked.set(true);
            Ok::<_, ()>(None)
        });
        assert_eq!(found, Ok(Recovery::Written(intent)));
        assert!(!asked.get(), "the file is not needed to know");
        assert_eq!(verdict(&ring, file(99, 0)), Recovery::Written(intent));
    }

    #[test]
    fn without_the_mark_the_file_length_decides_and_a_file_gone_is_unsure() {
        let (ring, intent) = ring_with_batch_in_flight();
        assert_eq!(verdict(&ring, file(42, 1300)), Recovery::Written(intent));
        assert_eq!(
            verdict(&ring, file(42, 1100)),
            Recovery::HalfWritten {
                intent,
                written: 100
            }
        );
        assert_eq!(verdict(&ring, file(42, 1000)), Recovery::Redo);
        // Moved or compressed away, or cut since: nothing tells whether the batch reached it.
        assert_eq!(verdict(&ring, None), Recovery::Unsure(intent));
        assert_eq!(verdict(&ring, file(43, 0)), Recovery::Unsure(intent));
        assert_eq!(verdict(&ring, file(42, 10)), Recovery::Unsure(intent));
        // Its inode number, given to a file born later, after it was deleted.
        let reused = file(42, 1300).map(|f| OutputFile { born: 6, ..f });
        assert_eq!(verdict(&ring, reused), Recovery::Unsure(intent));
        assert!(!Recovery::Unsure(intent).batch_written());
    }

    #[test]
    fn a_mark_left_by_another_batch_says_nothing() {
        let (ring, intent) = ring_with_batch_in_flight();
        ring.mark_written(&intent);
        // The next batch's intent clears it ...
        let next = BatchIntent {
            out_len: 1300,
            ..intent
        };
        ring.record_intent(&next, SlotReports::default());
        assert_eq!(verdict(&ring, None), Recovery::Unsure(next));
        // ... and one left beside an intent it does not describe (an older drain recorded that
        // intent: it does not know the mark) does not match it.
        ring.mark_written(&intent);
        assert_eq!(verdict(&ring, None), Recovery::Unsure(next));
        ring.mark_written(&next);
        assert_eq!(verdict(&ring, None), Recovery::Written(next));
    }
}
