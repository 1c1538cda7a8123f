//! The drain's output checkpoint, which makes a SIGKILLed drain restart without losing or
//! duplicating a record: before it appends a batch, the drain records its *intent* (the ring
//! range, the output file's identity and length, the drop reports the batch carries); after the
//! append it releases the range and voids the intent. A new drain that finds an intent compares
//! the output with it ([`Ring::recovery_verdict`]) and finishes, cuts back or redoes the batch.
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
    /// What each of [`Counter::CHECKPOINTED`] becomes once this batch is counted: the counters
    /// ride with their batch, so they are exact across any drain kill.
    pub counters_after: [u64; 5],
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
}

/// What a restarted drain does about the batch its predecessor left in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// No batch was in flight.
    Clean,
    /// The batch was released before the crash (the intent was not voided yet): its drop
    /// reports are in the output.
    Released,
    /// The output holds the whole batch: release it ([`Ring::release_recovered`]) and resume
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
    /// Nothing of the batch is in the output (or it is another file now): write it again.
    Redo,
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
        let same_file = probe()?.filter(|f| f.dev == intent.dev && f.ino == intent.ino);
        let plausible_range =
            intent.end >= intent.start && intent.end - intent.start <= self.geometry().capacity;
        Ok(match same_file {
            Some(f) if f.len == intent.out_len + intent.bytes && plausible_range => {
                Recovery::Written(intent)
            }
            Some(f) if f.len > intent.out_len && f.len < intent.out_len + intent.bytes => {
                Recovery::HalfWritten {
                    intent,
                    written: f.len - intent.out_len,
                }
            }
            _ => Recovery::Redo,
        })
    }

    /// Releases the batch a dead drain wrote whole ([`Recovery::Written`]); it is counted by
    /// [`Ring::finish_recovery`].
    /// Does nothing unless that batch is still in flight and starts at head, so it never
    /// releases a range the checkpoint does not name.
    pub fn release_recovered(&self) {
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
        self.word(off::CKPT_STATE)
            .store(STATE_IDLE, Ordering::Relaxed);
    }

    /// Records the intent to append `intent`, carrying `slots` (drop reports and abandoned
    /// counts), before the append starts.
    pub fn record_intent(&self, intent: &BatchIntent, slots: SlotReports<'_>) {
        let w = |o, v| self.word(o).store(v, Ordering::Relaxed);
        w(off::CKPT_START, intent.start);
        w(off::CKPT_END, intent.end);
        w(off::CKPT_OUT_LEN, intent.out_len);
        w(off::CKPT_BYTES, intent.bytes);
        w(off::CKPT_DEV, intent.dev);
        w(off::CKPT_INO, intent.ino);
        w(off::CKPT_RECORDS, intent.records);
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
                self.slot_word(slot, field).store(value, Ordering::Relaxed);
            }
        }
    }

    /// Voids an intent whose batch left nothing in the output (the append failed and was cut
    /// back): its drop reports will be made again, its abandoned claims counted again.
    pub fn cancel_intent(&self, slots: SlotReports<'_>) {
        self.set_pending(slots, false);
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
