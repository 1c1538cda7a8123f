//! Chunks: small records claimed without touching the shared tail.
//!
//! With every claim a CAS on the one `tail`, the tail's cache line moves between CPUs on nearly
//! every record once producers run on more than one; when the host keeps those CPUs far apart
//! that move costs more than the rest of a 128-byte record (see `benches/HISTORY.md`, "Claims
//! from per-producer chunks"). So a producer claims small records inside a chunk of its own:
//!
//! - A **chunk** is claimed from the tail like any frame ([`Ring::claim`]: intent, CAS, header
//!   with the producer's slot), [`chunk_len`] bytes, then turned into a committed frame of kind
//!   [`Kind::Chunk`] of [`CHUNK_HEADER`] bytes followed by the owner's frames. Its **cursor**
//!   lives in the owner's registry slot ([`crate::layout::Slot::chunk`]), never in ring space
//!   the drain may release: the chunk's position, the offset of its first free byte, and who
//!   sealed it.
//! - The owner claims inside with a CAS on that word (after storing its intent, as for a tail
//!   claim), then writes an ordinary frame: negative length, check word, copy, commit. Frames in
//!   a chunk span multiples of [`CHUNK_ALIGN`], so the rest of a chunk is never the 8 bytes a
//!   padding with a check word cannot fill.
//! - A chunk is **sealed** by a CAS that sets a bit in the cursor. The owner seals when a record
//!   does not fit, before any claim from the tail (a record too large for a chunk, a claim filled
//!   in place), and before it gives its slot back; then it writes a padding frame over the rest.
//!   So a producer's records keep their order, and a producer waiting for space never holds an
//!   open chunk. The drain seals a chunk whose cursor it has reached and whose owner is idle,
//!   dead or stopped; it writes nothing: it steps over the rest, and records where that rest is
//!   in the header (`chunk_sealed_at`, `chunk_sealed_end`) before the CAS, for a drain restarted
//!   after the owner moved on.
//!
//! What the drain finds at a position inside a chunk with nothing written there, from the
//! owner's cursor ([`Ring::chunk_frame`]): before the cursor, a claim whose header is on its
//! way (the owner's; skipped only when the owner is dead); at an open cursor, free space the
//! drain may seal ([`ChunkFrame::Open`]); at a cursor the owner sealed, its padding on the way;
//! at a cursor the drain sealed, the rest to step over. A slot whose chunk the drain has not
//! passed is not given to a new owner ([`Ring::slot_reusable`]), so a cursor is never lost while
//! the drain may still need it.
//!
//! Records of different producers reach the output grouped by chunk, in ring order; each
//! producer's own records keep their order.

use crate::abandon::{ClaimVerdict, Liveness};
use crate::frame::{self, Kind, Level, Word0};
use crate::layout::{self, off, slot_off};
use crate::memory::Memory;
use crate::ring::{Claim, ClaimError, Ring};
use crate::sync::{AtomicU64, Ordering};

/// Bytes of a chunk's header frame: word 0 and the check word.
pub const CHUNK_HEADER: u64 = 16;
/// Frames inside a chunk start and end at multiples of this.
pub const CHUNK_ALIGN: u64 = 16;

/// The longest chunk: 16 KiB holds a hundred 128-byte records.
#[cfg(not(loom))]
const CHUNK_MAX: u64 = 16 << 10;
/// The shortest chunk worth having; smaller rings claim every record from the tail.
#[cfg(not(loom))]
const CHUNK_MIN: u64 = 1 << 10;

/// Bytes of each chunk in a ring of `capacity` bytes, `None` if its records are claimed from
/// the tail: a 64th of the ring, at most 16 KiB, so the chunks producers hold open never take
/// more than a small part of it.
#[cfg(not(loom))]
pub fn chunk_len(capacity: u64) -> Option<u64> {
    let len = (capacity / 64).min(CHUNK_MAX);
    (len >= CHUNK_MIN).then_some(len)
}

/// Under `cfg(loom)`: half the ring, so a model's 256-byte ring holds a chunk with two small
/// frames and a rest, and the wrap around it.
#[cfg(loom)]
pub fn chunk_len(capacity: u64) -> Option<u64> {
    (capacity >= 256).then_some(capacity / 2)
}

/// The longest frame that opens a new chunk of `len` bytes (a quarter of it, at most 1 KiB);
/// a larger one goes into the open chunk only if it fits there. Larger records gain little from
/// skipping the tail, and a chunk opened for one would leave more of it to waste.
#[cfg(not(loom))]
pub fn chunk_frame_max(len: u64) -> u64 {
    (len / 4).min(1 << 10)
}

/// Under `cfg(loom)`: half the chunk. A quarter of a model's 128-byte chunk is 32 bytes, less
/// than the smallest frame (a 40-byte header), so no record would ever open a chunk there; half
/// lets the models' 48- and 64-byte frames in.
#[cfg(loom)]
pub fn chunk_frame_max(len: u64) -> u64 {
    len / 2
}

/// Bytes a frame for `payload_len` bytes takes in a chunk.
fn chunk_span(payload_len: usize) -> u64 {
    (frame::frame_len(payload_len) as u64).next_multiple_of(CHUNK_ALIGN)
}

// The cursor word: bits 0..15 the offset of the chunk's first free byte, bit 15 sealed by the
// owner, bit 16 sealed by the drain, bits 17.. the chunk's position / 8 (its low 47 bits: a
// petabyte of positions, far more than the capacity any two live chunks are apart). 0: none.
const OFFSET_MASK: u64 = (1 << 15) - 1;
const OWNER_SEALED: u64 = 1 << 15;
const DRAIN_SEALED: u64 = 1 << 16;
const POS_SHIFT: u32 = 17;
const POS_MASK: u64 = (1 << 47) - 1;

/// The cursor word of a chunk at `pos` whose first free byte is at offset `offset`.
fn cursor_word(pos: u64, offset: u64) -> u64 {
    (pos >> 3) << POS_SHIFT | offset
}

/// Whether cursor word `word` is of the chunk at `pos`.
fn names(word: u64, pos: u64) -> bool {
    word != 0 && word >> POS_SHIFT == (pos >> 3) & POS_MASK
}

/// The position of the chunk cursor word `word` names, taken as the one nearest to `near`.
fn position_near(word: u64, near: u64) -> u64 {
    let diff = ((word >> POS_SHIFT).wrapping_sub(near >> 3)) & POS_MASK;
    // Sign-extend the 47-bit difference.
    let signed = ((diff << 17) as i64) >> 17;
    near.wrapping_add((signed as u64).wrapping_mul(8))
}

fn offset(word: u64) -> u64 {
    word & OFFSET_MASK
}

fn sealed(word: u64) -> bool {
    word & (OWNER_SEALED | DRAIN_SEALED) != 0
}

/// A producer's open chunk as its own process remembers it: the chunk's full position (the
/// slot's cursor word keeps only its low bits), or, while none is open, how many small records
/// in a row it claimed from the tail. One per registry slot, used only by the thread that owns
/// the slot; only this module reads or sets it.
#[derive(Debug)]
pub struct OpenChunk(AtomicU64);

/// A producer opens a chunk once it has claimed this many small records in a row from the tail.
/// So one that writes a few records and goes (a short-lived thread or process) never holds a
/// chunk: without a drain running, the rests of such chunks would fill the ring (a 4 MiB ring
/// holds 256 chunks of 16 KiB, and 25,000 records of 128 bytes). A busy producer gets there in
/// its first microseconds.
#[cfg(not(loom))]
pub const TAIL_RECORDS_BEFORE_A_CHUNK: u64 = 16;
/// Under `cfg(loom)`: none, so the models' few records go into chunks at once (the count
/// itself is tested over a heap ring, `tests/chunk.rs`).
#[cfg(loom)]
pub const TAIL_RECORDS_BEFORE_A_CHUNK: u64 = 0;

/// [`OpenChunk`] values from here up count small records claimed from the tail; below, they are
/// chunk positions (a ring's positions never get near).
const TAIL_STREAK: u64 = u64::MAX - 255;

/// What an [`OpenChunk`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// The chunk at this position is open (as far as its owner knows).
    Open(u64),
    /// None is open; this many small records in a row went to the tail.
    Tail(u64),
}

impl OpenChunk {
    /// No chunk open.
    pub fn new() -> OpenChunk {
        OpenChunk(AtomicU64::new(TAIL_STREAK))
    }

    /// Forgets the chunk (a new owner of the slot, which never had one).
    pub fn forget(&self) {
        self.set_state(ChunkState::Tail(0));
    }

    fn state(&self) -> ChunkState {
        // Relaxed: process-local, used by the slot's owning thread.
        match self.0.load(Ordering::Relaxed) {
            v if v >= TAIL_STREAK => ChunkState::Tail(v - TAIL_STREAK),
            pos => ChunkState::Open(pos),
        }
    }

    fn set_state(&self, state: ChunkState) {
        let value = match state {
            ChunkState::Open(pos) => pos,
            ChunkState::Tail(n) => TAIL_STREAK + n.min(255),
        };
        // Relaxed: as in `state`.
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Default for OpenChunk {
    fn default() -> Self {
        OpenChunk::new()
    }
}

/// Why a producer's open chunk closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// A record did not fit: the producer sealed it, and is busy.
    Full,
    /// The drain sealed it while its owner paused (or it was never this chunk's owner's).
    ByDrain,
}

/// What a chunk's cursor says about a position inside the chunk where no frame is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkFrame {
    /// The owner claimed it; its header is on its way.
    Claimed,
    /// The chunk is open and this is its first free byte: the drain may seal it here. `word`
    /// is the cursor as read, for the seal's CAS.
    Open {
        /// The cursor word read.
        word: u64,
    },
    /// The owner sealed the chunk here; its padding over the rest is on its way.
    OwnerSealed,
    /// The drain sealed the chunk here: nothing will be written up to `end`.
    DrainSealed {
        /// The chunk's end.
        end: u64,
    },
    /// The owner has moved on to another chunk, so every frame it claimed in this one is
    /// written (and sealed, with its padding): look again.
    MovedOn,
    /// The cursor says this position was never reached: the segment is corrupt.
    Impossible,
}

impl<M: Memory> Ring<M> {
    /// Bytes of each chunk of this ring, `None` if it has none ([`chunk_len`]).
    pub fn chunk_len(&self) -> Option<u64> {
        chunk_len(self.geometry().capacity)
    }

    /// Reserves a frame for `payload_len` bytes on behalf of slot `slot`, as [`Ring::claim`]
    /// does, but inside the slot's open chunk when there is room: a CAS on a word of the slot's
    /// own registry line instead of the shared tail. `open` is the slot's [`OpenChunk`], used by
    /// the slot's owning thread only.
    ///
    /// A record that does not fit seals the chunk and opens the next if it is small
    /// ([`chunk_frame_max`]); a larger one is claimed from the tail. A chunk is opened only
    /// after [`TAIL_RECORDS_BEFORE_A_CHUNK`] small records in a row went to the tail (since the
    /// slot was taken, a large record, or the drain sealed the last chunk because its owner
    /// paused): a chunk is for a producer that keeps writing.
    #[inline]
    pub fn claim_in_chunk(
        &self,
        slot: u16,
        payload_len: usize,
        head_cache: &AtomicU64,
        open: &OpenChunk,
    ) -> Result<Claim, ClaimError> {
        let Some(chunk) = self.chunk_len() else {
            return self.claim(slot, payload_len, head_cache);
        };
        if payload_len as u64 > self.geometry().max_record {
            return self.claim(slot, payload_len, head_cache);
        }
        let span = chunk_span(payload_len);
        let streak = match open.state() {
            ChunkState::Open(pos) => match self.claim_inside(slot, pos, chunk, payload_len, open) {
                Ok(claim) => return Ok(claim),
                Err(Closed::Full) => TAIL_RECORDS_BEFORE_A_CHUNK,
                Err(Closed::ByDrain) => 0,
            },
            ChunkState::Tail(n) => n,
        };
        if span > chunk_frame_max(chunk) {
            let claim = self.claim(slot, payload_len, head_cache)?;
            open.set_state(ChunkState::Tail(0));
            return Ok(claim);
        }
        if streak < TAIL_RECORDS_BEFORE_A_CHUNK {
            let claim = self.claim(slot, payload_len, head_cache)?;
            open.set_state(ChunkState::Tail(streak + 1));
            return Ok(claim);
        }
        match self.open_chunk(slot, chunk, payload_len, head_cache, open) {
            // No room for a chunk is not no room for the record: the ring is nearly full, and
            // the record is dropped (or waits) only if it does not fit by itself.
            Err(ClaimError::Full) => {
                let claim = self.claim(slot, payload_len, head_cache)?;
                open.set_state(ChunkState::Tail(0));
                Ok(claim)
            }
            opened => opened,
        }
    }

    /// Claims a frame for `payload_len` bytes inside `slot`'s open chunk at `pos`; when it does
    /// not fit (and the chunk is sealed now) or the drain sealed the chunk, forgets the chunk and
    /// says which.
    #[inline]
    fn claim_inside(
        &self,
        slot: u16,
        pos: u64,
        chunk: u64,
        payload_len: usize,
        open: &OpenChunk,
    ) -> Result<Claim, Closed> {
        let span = chunk_span(payload_len);
        let cursor = self.slot_word(slot, slot_off::CHUNK);
        let intent = self.slot_word(slot, slot_off::INTENT);
        // Relaxed: our own word; the CAS below validates it. Only the drain's seal changes it
        // besides us.
        let mut word = cursor.load(Ordering::Relaxed);
        let mut closed = Closed::ByDrain;
        while names(word, pos) && !sealed(word) {
            let at = offset(word);
            if at + span > chunk {
                self.seal_own(slot, pos, chunk, word);
                closed = Closed::Full;
                break;
            }
            // Release: as for a tail claim's intent (see `Ring::claim`): a drain that sees this
            // newer intent sees our previous frame's header.
            intent.store(pos + at + 1, Ordering::Release);
            // AcqRel: Release orders the intent above before the claim, so a drain that reads
            // the moved cursor finds the intent naming the frame in flight (its resync bound);
            // the drain's seal is the only other write to this word, and exactly one of the two
            // CASes wins.
            match cursor.compare_exchange(word, word + span, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    crate::fault::hit(crate::fault::Point::AfterClaimCas);
                    let claim = self.mark_claimed(pos + at, 0, span as u32, slot, Kind::Data);
                    return Ok(claim.asked_for(payload_len));
                }
                Err(now) => word = now,
            }
        }
        open.forget();
        Err(closed)
    }

    /// Claims a new chunk from the tail for `slot`, and in it the first frame, for
    /// `payload_len` bytes.
    #[cold]
    fn open_chunk(
        &self,
        slot: u16,
        chunk: u64,
        payload_len: usize,
        head_cache: &AtomicU64,
        open: &OpenChunk,
    ) -> Result<Claim, ClaimError> {
        let span = chunk_span(payload_len);
        // The frame claimed here reads as an uncommitted chunk frame of the whole chunk until
        // the header below commits it: a drain that finds its owner dead before that skips all
        // of it, as it would an uncommitted record.
        let whole = self.claim_from_tail(slot, chunk, Kind::Chunk, head_cache)?;
        let pos = whole.pos();
        let first = pos + CHUNK_HEADER;
        // Release: with the intent below, published before the chunk header (Release) that
        // makes the chunk's frames reachable; a drain that reads either finds the other.
        self.slot_word(slot, slot_off::CHUNK)
            .store(cursor_word(pos, CHUNK_HEADER + span), Ordering::Release);
        // Release: as in `claim_inside`.
        self.slot_word(slot, slot_off::INTENT)
            .store(first + 1, Ordering::Release);
        let claim = self
            .mark_claimed(first, 0, span as u32, slot, Kind::Data)
            .asked_for(payload_len);
        let header = Word0::encode(CHUNK_HEADER as u32, true, Kind::Chunk, Level::None, slot);
        // SYNC POINT: Release pairs with the drain's Acquire of word 0 (`fresh_word0`): the
        // cursor and the first frame's claim above are visible to a drain that reads the chunk.
        // The check word at `pos` is the whole chunk's claim's, still right.
        self.claimed_word0(whole).store(header, Ordering::Release);
        open.set_state(ChunkState::Open(pos));
        Ok(claim)
    }

    /// Seals `slot`'s open chunk, if it has one, and forgets it: its owner calls this before it
    /// claims from the tail (its next small record then goes to the tail too) or gives the slot
    /// back.
    pub fn seal_own_chunk(&self, slot: u16, open: &OpenChunk) {
        let (ChunkState::Open(pos), Some(chunk)) = (open.state(), self.chunk_len()) else {
            open.set_state(ChunkState::Tail(0));
            return;
        };
        // Relaxed: our own word; the CAS in `seal_own` validates it.
        let word = self
            .slot_word(slot, slot_off::CHUNK)
            .load(Ordering::Relaxed);
        if names(word, pos) && !sealed(word) {
            self.seal_own(slot, pos, chunk, word);
        }
        open.set_state(ChunkState::Tail(0));
    }

    /// The owner seals its chunk at `pos` (cursor `word`) and writes the padding over its rest.
    /// If the drain sealed it first, the drain steps over the rest: nothing to write.
    fn seal_own(&self, slot: u16, pos: u64, chunk: u64, mut word: u64) {
        let cursor = self.slot_word(slot, slot_off::CHUNK);
        loop {
            // AcqRel: exactly one seal wins (the drain's CAS is the other); Release orders our
            // frames' headers before it for a drain that reads the sealed cursor.
            match cursor.compare_exchange(
                word,
                word | OWNER_SEALED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) if names(now, pos) && !sealed(now) => word = now,
                Err(_) => return,
            }
        }
        crate::fault::hit(crate::fault::Point::ChunkSealed);
        let at = offset(word);
        if at < chunk {
            // Never an 8-byte padding: the rest is a multiple of CHUNK_ALIGN.
            self.write_padding(pos + at, chunk - at, slot);
        }
    }

    // ------------------------------------------------------------------ the drain's side

    /// What `slot`'s cursor says about position `at` inside its chunk at `pos`, where no frame
    /// is written. Call after finding `at` unwritten; on [`ChunkFrame::MovedOn`] and
    /// [`ChunkFrame::Claimed`] look at the frame again.
    pub fn chunk_frame(&self, pos: u64, slot: u16, at: u64) -> ChunkFrame {
        let Some(chunk) = self.chunk_len() else {
            return ChunkFrame::Impossible;
        };
        // SYNC POINT: Acquire pairs with the owner's Release stores and CASes of the cursor:
        // once we see it moved past a frame or sealed (or naming a later chunk), we see what the
        // owner wrote before (the intent, the padding, every header of this chunk).
        let word = self
            .slot_word(slot, slot_off::CHUNK)
            .load(Ordering::Acquire);
        if !names(word, pos) {
            return ChunkFrame::MovedOn;
        }
        let rel = at - pos;
        let cursor = offset(word);
        match rel.cmp(&cursor) {
            std::cmp::Ordering::Less => ChunkFrame::Claimed,
            std::cmp::Ordering::Greater => ChunkFrame::Impossible,
            std::cmp::Ordering::Equal if cursor >= chunk => ChunkFrame::Impossible,
            std::cmp::Ordering::Equal if word & DRAIN_SEALED != 0 => {
                ChunkFrame::DrainSealed { end: pos + chunk }
            }
            std::cmp::Ordering::Equal if word & OWNER_SEALED != 0 => ChunkFrame::OwnerSealed,
            std::cmp::Ordering::Equal => ChunkFrame::Open { word },
        }
    }

    /// The drain seals `slot`'s chunk at `pos` whose open cursor it read as `word` (at position
    /// `at`; the chunk ends at `end`), if the owner has not claimed more meanwhile, and writes
    /// the padding over the rest. It records the rest in the header before the seal, for a
    /// drain restarted before the padding is written and after the owner moved on. Returns
    /// whether it sealed. [`crate::Consumer::seal`] is the safe way.
    ///
    /// # Safety
    /// The caller is the ring's only consumer, `at` is its read position (so nothing from `at`
    /// on is released) and `word` the cursor it read there ([`Ring::chunk_frame`]).
    pub(crate) unsafe fn seal_for_drain(
        &self,
        pos: u64,
        slot: u16,
        word: u64,
        at: u64,
        end: u64,
    ) -> bool {
        debug_assert!(names(word, pos) && pos + offset(word) == at);
        // Relaxed: read back only by a later drain, after it took the drain lock.
        self.word(off::CHUNK_SEALED_AT).store(at, Ordering::Relaxed);
        self.word(off::CHUNK_SEALED_END)
            .store(end, Ordering::Relaxed);
        // AcqRel: exactly one of this and the owner's next claim or seal wins; Release orders the
        // record above before the seal.
        let sealed = self
            .slot_word(slot, slot_off::CHUNK)
            .compare_exchange(
                word,
                word | DRAIN_SEALED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if !sealed {
            // Relaxed: as above. The owner claimed at `at`: nothing to skip there.
            self.word(off::CHUNK_SEALED_AT).store(0, Ordering::Relaxed);
            self.word(off::CHUNK_SEALED_END).store(0, Ordering::Relaxed);
            return false;
        }
        crate::fault::hit(crate::fault::Point::DrainChunkSealed);
        // Sealed, so no producer writes here any more.
        self.write_padding(at, end - at, slot);
        true
    }

    /// The rest of a chunk the last drain sealed: `(at, end)`, or `None`.
    pub(crate) fn chunk_sealed(&self) -> Option<(u64, u64)> {
        // Relaxed: the drain's own words (a restarted drain took the drain lock first).
        let at = self.word(off::CHUNK_SEALED_AT).load(Ordering::Relaxed);
        let end = self.word(off::CHUNK_SEALED_END).load(Ordering::Relaxed);
        (end > at).then_some((at, end))
    }

    /// The chunk that holds position `at` past its header, and its owner, if some slot's cursor
    /// still names it: for a drain that starts (or reads again) in the middle of a chunk, whose
    /// header it has not read. A cursor that names a chunk the drain has passed, or garbage, is
    /// not taken.
    pub fn chunk_holding(&self, at: u64) -> Option<(u64, u16)> {
        let chunk = self.chunk_len()?;
        (0..self.slots() as u16).find_map(|s| {
            // Acquire: as in `chunk_frame`.
            let word = self.slot_word(s, slot_off::CHUNK).load(Ordering::Acquire);
            if word == 0 {
                return None;
            }
            let pos = position_near(word, at);
            (pos < at && at < pos + chunk && pos % layout::RECORD_ALIGN == 0).then_some((pos, s))
        })
    }

    /// The nearest certain frame boundary after `at` and before `bound` that an open chunk
    /// gives: a chunk's start or its cursor. Frames in flight inside a chunk are named by their
    /// owners' intents; the cursor bounds what may still be claimed.
    pub(crate) fn chunk_boundary(&self, at: u64, mut bound: u64) -> u64 {
        let Some(chunk) = self.chunk_len() else {
            return bound;
        };
        for s in 0..self.slots() as u16 {
            // Acquire: as in `chunk_frame`.
            let word = self.slot_word(s, slot_off::CHUNK).load(Ordering::Acquire);
            if word == 0 {
                continue;
            }
            let pos = position_near(word, at);
            if pos % layout::RECORD_ALIGN != 0 || offset(word) > chunk {
                continue;
            }
            for b in [pos, pos + offset(word)] {
                if b > at && b < bound {
                    bound = b;
                }
            }
        }
        bound
    }

    /// True when `slot`'s last chunk, if any, lies before `head`: the drain has passed it, so
    /// nothing in it needs the slot's cursor any more.
    pub(crate) fn chunk_passed(&self, slot: u16, head: u64) -> bool {
        let Some(chunk) = self.chunk_len() else {
            return true;
        };
        // Relaxed: as in `slot_reusable` (the previous owner is gone; the drain's seal only sets
        // a bit).
        let word = self
            .slot_word(slot, slot_off::CHUNK)
            .load(Ordering::Relaxed);
        word == 0 || position_near(word, head) + chunk <= head
    }

    /// The verdict on a claim at `at` inside `slot`'s chunk at `pos` that does not commit
    /// (header written with length `len`, or not written yet). The owner of every frame in a
    /// chunk is the chunk's: no intent is needed to know whose it is.
    pub(crate) fn chunk_claim_verdict(
        &self,
        at: u64,
        pos: u64,
        slot: u16,
        len: Option<u32>,
        liveness: &impl Liveness,
    ) -> ClaimVerdict {
        let frame = match len {
            Some(_) => ChunkFrame::Claimed,
            None => self.chunk_frame(pos, slot, at),
        };
        if matches!(frame, ChunkFrame::MovedOn | ChunkFrame::Open { .. }) {
            return ClaimVerdict::Changed;
        }
        if !liveness.hold_if_dead(slot) {
            return ClaimVerdict::Alive(slot);
        }
        let chunk = self.chunk_len().unwrap_or(0);
        // Acquire: as in `chunk_frame`; the owner is dead, the word final.
        let word = self
            .slot_word(slot, slot_off::CHUNK)
            .load(Ordering::Acquire);
        let verdict = match (len, frame) {
            (Some(l), _) => ClaimVerdict::Abandoned {
                end: (at + layout::align_record(l as u64)).min(pos + chunk),
                owner: Some(slot),
                pid: self.slot_info(slot).pid,
            },
            // The owner claims one frame at a time: the one in flight ends at the cursor.
            (None, ChunkFrame::Claimed) if names(word, pos) => ClaimVerdict::Abandoned {
                end: pos + offset(word).min(chunk),
                owner: Some(slot),
                pid: self.slot_info(slot).pid,
            },
            // It died between sealing and writing its padding: nothing of it was lost.
            (None, ChunkFrame::OwnerSealed) => ClaimVerdict::Unused { end: pos + chunk },
            (None, ChunkFrame::DrainSealed { end }) => ClaimVerdict::Unused { end },
            _ => ClaimVerdict::Changed,
        };
        liveness.let_go(slot);
        verdict
    }
}
