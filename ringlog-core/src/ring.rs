//! The lock-free multi-producer, single-consumer ring over any [`Memory`]: the claim / commit /
//! abort protocol producers run, the consume / release protocol the drain runs, and the
//! registry queries the drain needs to attribute claims. It never makes a syscall, never
//! allocates, and never trusts a length it read from the region without checking it.
//!
//! The framing follows Agrona's `ManyToOneRingBuffer` (Thompson et al.): producers reserve space
//! by a CAS on the 64-bit `tail` after checking capacity against a cached `head`, write the
//! frame's first word at once with a negative length and their slot id, copy the payload, then
//! publish with a Release store of the positive length. A claim that would straddle the end of
//! the region first covers the rest of the region with a padding frame. The consumer reads
//! frames in order with Acquire loads and moves `head` on with Release once it has used them.
//!
//! Unlike Agrona, the consumer does not zero what it consumed (a second pass over every byte):
//! free space keeps an earlier lap's bytes, and a frame tells that it was written in this lap by
//! its check word (word 1), its own position XOR the segment's random key. A producer stores
//! word 0, then the check word with Release; the consumer Acquire-loads the check word first and
//! reads word 0 only if it matches, so it never pairs an earlier lap's word 0 with this lap's
//! check word. A check word that does not match means "not written yet", what a zero word 0
//! meant when the consumer zeroed. The one frame too short for a check word, an 8-byte padding
//! at region offset `capacity - 8`, keeps that rule: `release` zeroes that single word each lap
//! (see [`crate::frame`]).
//!
//! Two additions make crashes survivable (see DESIGN.md, "Faults"): each producer stores the
//! position it is about to claim in its registry slot (`intent`) before the CAS, so a claim whose
//! header was never written can still be attributed; and at a wrap the record header is written
//! before the padding frame in front of it, so the drain only ever stops at claim starts.

use crate::frame::{
    self, check_word, Kind, Level, Word0, FRAME_HEADER_SIZE, IDS_WORD, LENGTHS_WORD, TIMESTAMP_WORD,
};
use crate::layout::{self, off, slot_off, slot_offset, Header, LAYOUT_VERSION, MAGIC};
use crate::memory::Memory;
use crate::sync::{AtomicU32, AtomicU64, Dekker, Ordering};

mod messages;
pub use messages::MessageLimits;

/// How far past its claim a producer prefetches ([`Ring::prefetch_ahead`]): a few records
/// ahead, about one memory latency of writing at full speed.
const PREFETCH_DISTANCE: u64 = 1024;
/// At most this many lines prefetched per claim.
const PREFETCH_LINES: u64 = 4;
const CACHE_LINE: u64 = 64;
/// How far past the frame it reads the consumer prefetches ([`Ring::next`]).
const CONSUMER_PREFETCH_DISTANCE: u64 = 2048;

/// The shape of a ring, fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Data region size in bytes, a power of two.
    pub capacity: u64,
    /// Largest payload in bytes; at most `capacity / 2 - FRAME_HEADER_SIZE` so any record fits an
    /// empty ring.
    pub max_record: u64,
    /// Registry slots.
    pub slots: u32,
}

impl Geometry {
    /// A ring of `capacity` bytes with the default max record (a quarter) and slot count.
    pub fn with_capacity(capacity: u64) -> Geometry {
        Geometry {
            capacity,
            max_record: layout::default_max_record(capacity),
            slots: layout::DEFAULT_SLOTS,
        }
    }

    /// Checks the invariants the protocol relies on.
    pub fn validate(&self) -> Result<(), GeometryError> {
        let c = self.capacity;
        if !c.is_power_of_two() || !(layout::MIN_CAPACITY..=layout::MAX_CAPACITY).contains(&c) {
            return Err(GeometryError::Capacity { capacity: c });
        }
        let max_allowed = c / 2 - FRAME_HEADER_SIZE as u64;
        if self.max_record == 0 || self.max_record > max_allowed {
            return Err(GeometryError::MaxRecord {
                max_record: self.max_record,
                allowed: max_allowed,
                capacity: c,
            });
        }
        if self.slots == 0 || self.slots > u16::MAX as u32 {
            return Err(GeometryError::Slots { slots: self.slots });
        }
        Ok(())
    }

    /// Bytes of memory a segment of this geometry needs.
    pub fn segment_len(&self) -> u64 {
        layout::segment_len(self.slots, self.capacity)
    }
}

/// Why a region is not a usable ring.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// Shorter than its own header says.
    TooShort {
        /// Bytes present.
        len: u64,
        /// Bytes needed.
        need: u64,
    },
    /// The first word is not [`MAGIC`].
    BadMagic(u64),
    /// The creator has not published the version word yet.
    NotYetInitialized,
    /// Written by a build with another layout.
    VersionMismatch {
        /// Version in the segment.
        found: u32,
    },
    /// Sizes that break the protocol's rules, asked for or found in a header.
    BadGeometry(GeometryError),
}

/// Which rule a ring's sizes break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeometryError {
    /// The capacity is not a power of two in
    /// [`MIN_CAPACITY`](layout::MIN_CAPACITY)..=[`MAX_CAPACITY`](layout::MAX_CAPACITY).
    Capacity {
        /// The capacity asked for or found.
        capacity: u64,
    },
    /// The max record size is 0 or more than `allowed` (half the ring, less a frame header).
    MaxRecord {
        /// The max record size asked for or found.
        max_record: u64,
        /// The largest allowed for `capacity`.
        allowed: u64,
        /// The ring's capacity.
        capacity: u64,
    },
    /// The registry has 0 or more than 65535 slots.
    Slots {
        /// The slot count asked for or found.
        slots: u32,
    },
    /// The header's data offset is not where `slots` registry slots end.
    DataOffset {
        /// The offset found.
        offset: usize,
        /// The header's slot count.
        slots: u32,
    },
    /// The frame key is even (a correct creator makes it odd, so no check word is zero).
    FrameKey {
        /// The key found.
        key: u64,
    },
    /// The file is longer than the header describes.
    Length {
        /// Bytes present.
        len: u64,
        /// Bytes the header describes.
        need: u64,
    },
}

impl std::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            GeometryError::Capacity { capacity } => write!(
                f,
                "capacity {capacity} must be a power of two between {} and {}",
                layout::MIN_CAPACITY,
                layout::MAX_CAPACITY
            ),
            GeometryError::MaxRecord {
                max_record,
                allowed,
                capacity,
            } => write!(
                f,
                "max record size {max_record} must be between 1 and {allowed} for a \
                 {capacity}-byte ring"
            ),
            GeometryError::Slots { slots } => write!(
                f,
                "registry slots {slots} must be between 1 and {}",
                u16::MAX
            ),
            GeometryError::DataOffset { offset, slots } => write!(
                f,
                "data offset {offset} does not match {slots} registry slots"
            ),
            GeometryError::FrameKey { key } => write!(f, "frame key {key:#x} is not odd"),
            GeometryError::Length { len, need } => {
                write!(f, "segment is {len} bytes but its header describes {need}")
            }
        }
    }
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::TooShort { len, need } => {
                write!(
                    f,
                    "segment is {len} bytes but its header needs {need} (truncated?)"
                )
            }
            LayoutError::BadMagic(m) => write!(f, "not a ringlog segment (first word {m:#018x})"),
            LayoutError::NotYetInitialized => write!(f, "segment is still being initialised"),
            LayoutError::VersionMismatch { found } => write!(
                f,
                "segment layout version {found}, this build understands version {LAYOUT_VERSION}"
            ),
            LayoutError::BadGeometry(_) => write!(f, "inconsistent segment header"),
        }
    }
}

impl std::error::Error for LayoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LayoutError::BadGeometry(why) => Some(why),
            _ => None,
        }
    }
}

impl std::error::Error for GeometryError {}

impl From<GeometryError> for LayoutError {
    fn from(e: GeometryError) -> LayoutError {
        LayoutError::BadGeometry(e)
    }
}

/// A producer's reservation: `len` bytes of frame (header included) at position `pos`.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a claim stalls the ring until it is committed or aborted"]
pub struct Claim {
    pos: u64,
    /// The frame's length (its word 0 says so once committed).
    len: u32,
    slot: u16,
    /// Payload bytes asked for; the frame may have room for more (a chunk's frames span
    /// multiples of 16 bytes), which the claim does not hand out.
    capacity: u32,
}

impl Claim {
    /// Position of the frame (monotonic byte count).
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Payload bytes reserved: what was asked for.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The same claim, handing out only `payload_len` of its frame's payload bytes.
    pub(crate) fn asked_for(mut self, payload_len: usize) -> Claim {
        debug_assert!(payload_len <= self.len as usize - FRAME_HEADER_SIZE);
        self.capacity = payload_len as u32;
        self
    }
}

/// Why a claim failed. Nothing was reserved. More reasons may come: handle the ones you know
/// and treat the others as "not written".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimError {
    /// The payload is larger than the ring's max record size; it never fits.
    TooLarge {
        /// Payload bytes asked for.
        len: usize,
        /// The ring's max record size.
        max: u64,
    },
    /// Not enough free space now; the drain has not caught up.
    Full,
}

/// The header fields of a committed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecordMeta {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Producer process.
    pub pid: u32,
    /// Producer thread.
    pub tid: u32,
    /// Severity.
    pub level: Level,
    /// Payload bytes (target + message).
    pub payload_len: u32,
    /// Leading payload bytes that are the target (module path or component).
    pub target_len: u16,
    /// Reserved flag bits.
    pub flags: u16,
    /// Registry slot of the producer.
    pub slot: u16,
}

/// What the consumer finds at its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing claimed: `tail == head`.
    Empty,
    /// A committed data record spanning `span` bytes.
    Record {
        /// Its header fields.
        meta: RecordMeta,
        /// Bytes to the next frame.
        span: u64,
    },
    /// A committed padding frame (a wrap or an aborted claim) spanning `span` bytes.
    Padding {
        /// Bytes to the next frame.
        span: u64,
    },
    /// The header of a chunk ([`crate::chunk`]) owned by `slot`: the frames after it, to the
    /// chunk's end, are that slot's. The next frame is [`crate::chunk::CHUNK_HEADER`] bytes on.
    Chunk {
        /// The chunk's owner.
        slot: u16,
    },
    /// Claimed, not committed yet. `slot` is the claimer's slot once its header is written;
    /// `None` while only its registry intent names it.
    Pending {
        /// The claimer's slot, if its frame header is written.
        slot: Option<u16>,
        /// Frame length, if its frame header is written.
        len: Option<u32>,
    },
    /// The frame at head breaks the framing rules: a buggy or hostile producer wrote it.
    Corrupt(Corruption),
}

/// How a frame broke the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Unknown kind byte.
    Kind(u8),
    /// Length impossible for its kind or position.
    Length(u32),
    /// Slot id outside the registry.
    Slot(u16),
    /// Payload or target length larger than the frame.
    PayloadLength(u32),
    /// The frame runs past the tail.
    PastTail,
    /// The tail is behind the head, more than a capacity ahead, or misaligned.
    Tail(u64),
    /// Nothing written at a position inside a chunk that its owner's cursor says it never
    /// reached, or a chunk header where the ring has no chunks.
    Chunk,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::Kind(k) => write!(f, "unknown frame kind {k}"),
            Corruption::Length(l) => write!(f, "impossible frame length {l}"),
            Corruption::Slot(s) => write!(f, "producer slot {s} outside the registry"),
            Corruption::PayloadLength(l) => write!(f, "payload length {l} larger than its frame"),
            Corruption::PastTail => write!(f, "frame runs past the ring's tail"),
            Corruption::Tail(t) => write!(
                f,
                "tail {t} is not an aligned position within one capacity of head"
            ),
            Corruption::Chunk => write!(f, "a chunk whose cursor does not match its frames"),
        }
    }
}

/// What a registry slot is used for (its `state` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlotState {
    /// Never used, or released cleanly with nothing left to report ([`layout::SLOT_FREE`]).
    #[default]
    Free,
    /// Owned by a producer, which may since have died: ask its lock ([`layout::SLOT_ATTACHED`]).
    Attached,
    /// Released cleanly by its owner; its counters remain for the drain and `stat`
    /// ([`layout::SLOT_DETACHED`]).
    Detached,
    /// A value no ringlog writes: the segment is corrupt.
    Unknown(u64),
}

impl SlotState {
    /// Decodes a slot's `state` word.
    pub fn from_word(word: u64) -> SlotState {
        match word {
            layout::SLOT_FREE => SlotState::Free,
            layout::SLOT_ATTACHED => SlotState::Attached,
            layout::SLOT_DETACHED => SlotState::Detached,
            other => SlotState::Unknown(other),
        }
    }
}

/// A snapshot of one registry slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlotInfo {
    /// Free, attached or detached.
    pub state: SlotState,
    /// Owner process and thread.
    pub pid: u32,
    /// Owner thread.
    pub tid: u32,
    /// Claim position + 1, or 0.
    pub intent: u64,
    /// Records committed.
    pub written: u64,
    /// Records dropped on a full ring.
    pub dropped: u64,
    /// Nanoseconds spent blocked on a full ring.
    pub blocked_ns: u64,
    /// How many drops the drain has reported.
    pub dropped_reported: u64,
    /// `written` when the current owner attached.
    pub written_base: u64,
    /// `dropped` when the current owner attached.
    pub dropped_base: u64,
    /// When the current owner attached (ns since the epoch).
    pub attached_ns: u64,
    /// When the drain first saw this producer stall it, or 0.
    pub stall_since_ns: u64,
    /// Claims of this slot the drain skipped because their owner died.
    pub abandoned: u64,
}

/// The ring protocol over a region `M`.
#[derive(Debug)]
pub struct Ring<M: Memory> {
    mem: M,
    capacity: u64,
    mask: u64,
    data: usize,
    max_record: u64,
    slots: u32,
    /// The segment's [`Header::frame_key`](layout::Header::frame_key): odd, fixed at creation.
    key: u64,
    /// Set while a [`crate::Consumer`] of this ring exists (one per `Ring` value).
    ///
    /// Boxed, not inline: an atomic inside `Ring` would make it interior-mutable (not `Freeze`),
    /// so `&Ring` would lose LLVM's `readonly` promise and the hot path would reload the
    /// mapping's pointer and length and re-check bounds after every atomic operation
    /// (measured: +25 instructions per `Writer::write` at 128 B, +14%).
    pub(crate) consumer_taken: Box<std::sync::atomic::AtomicBool>,
}

impl<M: Memory> Ring<M> {
    /// Initialises a fresh, zeroed, unshared region as a ring and publishes it.
    ///
    /// The identity fields are stored first, the version word last with Release, so an opener
    /// that Acquire-loads a non-zero version sees a complete header.
    pub fn create(
        mem: M,
        geometry: Geometry,
        created_ns: u64,
        mode: u32,
    ) -> Result<Self, LayoutError> {
        geometry.validate()?;
        let need = geometry.segment_len();
        if (mem.len() as u64) < need {
            return Err(LayoutError::TooShort {
                len: mem.len() as u64,
                need,
            });
        }
        let data = layout::data_offset(geometry.slots);
        // Relaxed: the region is not visible to anyone until the version store below.
        mem.u64_at(off::MAGIC).store(MAGIC, Ordering::Relaxed);
        mem.u32_at(off::DATA_OFFSET)
            .store(data as u32, Ordering::Relaxed);
        mem.u64_at(off::CAPACITY)
            .store(geometry.capacity, Ordering::Relaxed);
        mem.u64_at(off::MAX_RECORD)
            .store(geometry.max_record, Ordering::Relaxed);
        mem.u64_at(off::CREATED_NS)
            .store(created_ns, Ordering::Relaxed);
        mem.u32_at(off::SLOTS)
            .store(geometry.slots, Ordering::Relaxed);
        mem.u32_at(off::MODE).store(mode, Ordering::Relaxed);
        let key = new_frame_key(created_ns);
        mem.u64_at(off::FRAME_KEY).store(key, Ordering::Relaxed);
        // SYNC POINT: Release pairs with the Acquire load of the version in `open`: everything
        // above happens-before any opener's validation.
        mem.u32_at(off::VERSION)
            .store(LAYOUT_VERSION, Ordering::Release);
        Ok(Ring {
            mem,
            capacity: geometry.capacity,
            mask: geometry.capacity - 1,
            data,
            max_record: geometry.max_record,
            slots: geometry.slots,
            key,
            consumer_taken: Box::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Validates a region someone else created and returns the ring over it.
    pub fn open(mem: M) -> Result<Self, LayoutError> {
        let len = mem.len() as u64;
        if len < layout::HEADER_SIZE as u64 {
            return Err(LayoutError::TooShort {
                len,
                need: layout::HEADER_SIZE as u64,
            });
        }
        // SYNC POINT: Acquire pairs with the creator's Release of the version: once we see it,
        // the identity fields are complete.
        let version = mem.u32_at(off::VERSION).load(Ordering::Acquire);
        let magic = mem.u64_at(off::MAGIC).load(Ordering::Relaxed);
        if version == layout::VERSION_UNPUBLISHED {
            return Err(if magic == 0 || magic == MAGIC {
                LayoutError::NotYetInitialized
            } else {
                LayoutError::BadMagic(magic)
            });
        }
        if magic != MAGIC {
            return Err(LayoutError::BadMagic(magic));
        }
        if version != LAYOUT_VERSION {
            return Err(LayoutError::VersionMismatch { found: version });
        }
        // Relaxed: immutable since the version was published (ordered by the Acquire above).
        let data = mem.u32_at(off::DATA_OFFSET).load(Ordering::Relaxed) as usize;
        let geometry = Geometry {
            capacity: mem.u64_at(off::CAPACITY).load(Ordering::Relaxed),
            max_record: mem.u64_at(off::MAX_RECORD).load(Ordering::Relaxed),
            slots: mem.u32_at(off::SLOTS).load(Ordering::Relaxed),
        };
        geometry.validate()?;
        if data != layout::data_offset(geometry.slots) {
            return Err(LayoutError::BadGeometry(GeometryError::DataOffset {
                offset: data,
                slots: geometry.slots,
            }));
        }
        // Relaxed: immutable since the version was published, as above.
        let key = mem.u64_at(off::FRAME_KEY).load(Ordering::Relaxed);
        if key % 2 == 0 {
            return Err(LayoutError::BadGeometry(GeometryError::FrameKey { key }));
        }
        let need = geometry.segment_len();
        if len < need {
            return Err(LayoutError::TooShort { len, need });
        }
        if len > need {
            return Err(LayoutError::BadGeometry(GeometryError::Length {
                len,
                need,
            }));
        }
        Ok(Ring {
            mem,
            capacity: geometry.capacity,
            mask: geometry.capacity - 1,
            data,
            max_record: geometry.max_record,
            slots: geometry.slots,
            key,
            consumer_taken: Box::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            capacity: self.capacity,
            max_record: self.max_record,
            slots: self.slots,
        }
    }

    /// The underlying region, for this crate (which knows which words are whose).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn mem(&self) -> &M {
        &self.mem
    }

    /// The underlying region.
    ///
    /// # Safety
    /// Its words are reachable by offset: the caller must not access (atomically or not) a word
    /// of the data region some other party writes non-atomically, i.e. a claim's payload; tests
    /// that scribble over a ring do so while no producer is writing it.
    pub unsafe fn memory(&self) -> &M {
        &self.mem
    }

    /// The segment's frame key: every frame's check word is its position XOR it
    /// ([`frame::check_word`]).
    pub fn frame_key(&self) -> u64 {
        self.key
    }

    /// Creation time, ns since the Unix epoch.
    pub fn created_ns(&self) -> u64 {
        self.mem.u64_at(off::CREATED_NS).load(Ordering::Relaxed)
    }

    /// A header word by offset (see [`layout::off`]).
    #[inline]
    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        self.mem.u64_at(offset)
    }

    /// A 32-bit header word by offset (futex words).
    #[inline]
    pub(crate) fn word32(&self, offset: usize) -> &AtomicU32 {
        self.mem.u32_at(offset)
    }

    /// A word of registry slot `slot`.
    #[inline]
    pub(crate) fn slot_word(&self, slot: u16, field: usize) -> &AtomicU64 {
        assert!(
            (slot as u32) < self.slots,
            "slot {slot} outside the registry"
        );
        self.mem.u64_at(slot_offset(slot as u32) + field)
    }

    /// Word 0 and the check word of a frame at `pos` (not at region offset `capacity - 8`).
    #[inline(always)]
    pub(crate) fn frame_start(&self, pos: u64) -> (&AtomicU64, &AtomicU64) {
        self.mem.u64_pair_at(self.data + (pos & self.mask) as usize)
    }

    #[inline]
    fn frame_word(&self, pos: u64, word: usize) -> &AtomicU64 {
        self.mem
            .u64_at(self.data + (pos & self.mask) as usize + word * 8)
    }

    // ------------------------------------------------------------------ producer side

    /// Reserves a frame for `payload_len` bytes on behalf of registry slot `slot`.
    ///
    /// `head_cache` is the caller's cached copy of `head` (shared by the threads of one process);
    /// the shared `head` line is read only when the cached value says the ring is full.
    /// Lock-free: a failed CAS means another producer succeeded.
    #[inline]
    pub fn claim(
        &self,
        slot: u16,
        payload_len: usize,
        head_cache: &AtomicU64,
    ) -> Result<Claim, ClaimError> {
        if payload_len as u64 > self.max_record {
            return Err(ClaimError::TooLarge {
                len: payload_len,
                max: self.max_record,
            });
        }
        self.claim_from_tail(
            slot,
            frame::frame_len(payload_len) as u64,
            Kind::Data,
            head_cache,
        )
    }

    /// Reserves a frame of `len` bytes (header included) of kind `kind` from the tail: the
    /// protocol of [`Ring::claim`], which also claims chunks ([`crate::chunk`]).
    #[inline(always)]
    pub(crate) fn claim_from_tail(
        &self,
        slot: u16,
        len: u64,
        kind: Kind,
        head_cache: &AtomicU64,
    ) -> Result<Claim, ClaimError> {
        let span = layout::align_record(len);
        let intent = self.slot_word(slot, slot_off::INTENT);
        let tail = self.word(off::TAIL);
        // Relaxed: the value is only a guess for the CAS, which validates it.
        let mut start = tail.load(Ordering::Relaxed);
        loop {
            let (pad, end) = self.place(start, span);
            let head = self.room_until(end, head_cache, intent)?;
            // Published by the CAS below (Release half), which the drain's Acquire of `tail`
            // synchronises with before it reads intents. SYNC POINT: Release also pairs with the
            // Acquire load in `claimants` / `unwritten_claim_end`: a drain that sees this newer
            // intent sees the header of our previous claim (written before) on its re-check of
            // the frame. Relaxed would let it read the new intent and still find that header
            // unwritten, and take a live claim for an unattributable one. (Free on x86; `stlr`
            // on ARM.)
            intent.store(start + 1, Ordering::Release);
            // SeqCst: Release publishes the intent; SeqCst also orders this CAS before our later
            // SeqCst load of `drain_sleeping` against the drain's SeqCst store of it and load
            // of `tail` (the Dekker pair of the wake-up protocol, see `commit`).
            match tail.dekker_compare_exchange_weak(start, end, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    crate::fault::hit(crate::fault::Point::AfterClaimCas);
                    self.prefetch_ahead(end, span, head);
                    return Ok(self.mark_claimed(start, pad, len as u32, slot, kind));
                }
                Err(actual) => {
                    start = actual;
                    crate::sync::spin_hint();
                }
            }
        }
    }

    /// Where a frame of `span` bytes claimed at `start` lies: `(pad, end)`, `pad` bytes of
    /// padding first when the frame would straddle the end of the region, then the frame, which
    /// ends at `end`.
    #[inline(always)]
    fn place(&self, start: u64, span: u64) -> (u64, u64) {
        let index = start & self.mask;
        let pad = if index + span > self.capacity {
            self.capacity - index
        } else {
            0
        };
        (pad, start + pad + span)
    }

    /// The head, if the space up to `end` is free: checked against `head_cache`, and against
    /// the shared `head` only when the cache says the ring is full. [`ClaimError::Full`] (and
    /// `intent` cleared) if it is full.
    #[inline(always)]
    fn room_until(
        &self,
        end: u64,
        head_cache: &AtomicU64,
        intent: &AtomicU64,
    ) -> Result<u64, ClaimError> {
        // Acquire: pairs with the Release store below by another thread of this process, so
        // the drain's reads and zeroing that thread saw (through its Acquire of `head`)
        // happen-before our writes into the freed space.
        let mut head = head_cache.load(Ordering::Acquire);
        if end > head + self.capacity {
            // SYNC POINT: Acquire pairs with the drain's Release in `release`: its reads of the
            // space it freed (and its zeroing of the word at `capacity - 8`) happen-before our
            // writes into it.
            head = self.word(off::HEAD).load(Ordering::Acquire);
            // Release: hands that happens-before edge on to the other threads (see above).
            head_cache.fetch_max(head, Ordering::Release);
            if end > head + self.capacity {
                // No claim is in flight; leaving no stale intent behind keeps the drain from
                // waiting on a producer that is only waiting for space. Release, as below:
                // a drain that sees the intent cleared sees our earlier headers too.
                intent.store(layout::NO_INTENT, Ordering::Release);
                return Err(ClaimError::Full);
            }
        }
        Ok(head)
    }

    /// Marks the frame of `len` bytes just claimed at `start + pad` as `slot`'s claim of kind
    /// `kind`, then the `pad` bytes of padding before it, if any.
    #[inline(always)]
    pub(crate) fn mark_claimed(
        &self,
        start: u64,
        pad: u64,
        len: u32,
        slot: u16,
        kind: Kind,
    ) -> Claim {
        let pos = start + pad;
        let claimed = Word0::encode(len, false, kind, Level::None, slot);
        let (word0, check) = self.frame_start(pos);
        // Relaxed: published by the Release store of the check word below. The negative length
        // only tells the drain "claimed by `slot`"; it publishes no data.
        word0.store(claimed, Ordering::Relaxed);
        // SYNC POINT: Release pairs with the drain's Acquire of the check word (`fresh_word0`):
        // a drain that finds this lap's check word finds this lap's word 0 (the store above or a
        // later one), never an earlier lap's. Written before the padding, so the drain never
        // stops mid-claim (see module docs).
        check.store(check_word(pos, self.key), Ordering::Release);
        if pad > 0 {
            self.mark_padding(start, pad, slot);
        }
        Claim {
            pos,
            len,
            slot,
            capacity: len - FRAME_HEADER_SIZE as u32,
        }
    }

    /// Writes the committed padding of `pad` bytes at `start`, in front of a claim that wraps.
    #[cold]
    fn mark_padding(&self, start: u64, pad: u64, slot: u16) {
        crate::fault::hit(crate::fault::Point::BeforePadding);
        self.write_padding(start, pad, slot);
    }

    /// Writes a committed padding frame of `pad` bytes at `start` on behalf of `slot`: in front
    /// of a claim that wraps, or over the rest of a sealed chunk ([`crate::chunk`]). The caller
    /// owns the space.
    pub(crate) fn write_padding(&self, start: u64, pad: u64, slot: u16) {
        let padding = Word0::encode(pad as u32, true, Kind::Padding, Level::None, slot);
        if pad == 8 {
            // The padding at `capacity - 8`, too short for a check word: its word 0 is zero until
            // written (`release` zeroes it). Release: orders what this thread wrote before (a
            // wrapping claim's header) before the padding, so a drain that passes the padding
            // finds it.
            self.frame_word(start, 0).store(padding, Ordering::Release);
        } else {
            let (word0, check) = self.frame_start(start);
            // Relaxed: published by the Release store of the check word below.
            word0.store(padding, Ordering::Relaxed);
            // SYNC POINT: Release pairs with the drain's Acquire of the check word
            // (`fresh_word0`): the padding's word 0, and what this thread wrote before (a
            // wrapping claim's header, a chunk's frames), are visible to a drain that reads it.
            check.store(check_word(start, self.key), Ordering::Release);
        }
    }

    /// Asks for the cache lines a later claim will likely write, [`PREFETCH_DISTANCE`] bytes past
    /// the end of ours, up to [`PREFETCH_LINES`] lines (one claim's worth, for small records),
    /// and only in space the drain has released (per `head`, as last seen), so a nearly full
    /// ring never has its unread lines pulled away from the drain.
    /// Each claim's `lock cmpxchg` drains the store buffer, so it waits for the previous
    /// record's stores, which miss when the lines were last written a lap ago or read by the
    /// drain on the other core. Measured on the development VM: the `lock cmpxchg` held 45% of
    /// a 128-byte write's profile samples without this and 34% with it; criterion shows writes
    /// 0-8% faster (more for larger records).
    #[inline]
    fn prefetch_ahead(&self, end: u64, span: u64, head: u64) {
        let first = end + PREFETCH_DISTANCE;
        let lines = span.div_ceil(CACHE_LINE).min(PREFETCH_LINES);
        if first + lines * CACHE_LINE > head + self.capacity {
            return;
        }
        for i in 0..lines {
            let index = ((first + i * CACHE_LINE) & self.mask) as usize;
            self.mem.prefetch_for_write(self.data + index);
        }
    }

    /// Copies `bytes` into the claim's payload at `offset`.
    ///
    /// # Panics
    /// If `offset + bytes.len()` exceeds the claim's capacity.
    #[inline]
    pub fn write_payload(&self, claim: &Claim, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= claim.capacity(),
            "write past the end of a claim"
        );
        let at = self.data + (claim.pos & self.mask) as usize + FRAME_HEADER_SIZE + offset;
        // SAFETY: the claim reserved `[pos, pos + len)`, which never straddles the end of the
        // region; nobody else reads or writes it until we commit or abort.
        unsafe { self.mem.copy_in(at, bytes) }
    }

    /// Publishes the claim as a record whose payload is its first `payload_len` bytes.
    /// Returns true when the drain is asleep and the caller should wake it.
    #[inline]
    pub fn commit(&self, claim: Claim, meta: &RecordMeta) -> bool {
        debug_assert!(meta.payload_len as usize <= claim.capacity());
        let payload_len = (meta.payload_len as usize).min(claim.capacity()) as u32;
        // Relaxed: published by the Release store of word 0 below.
        self.frame_word(claim.pos, TIMESTAMP_WORD)
            .store(meta.timestamp_ns, Ordering::Relaxed);
        self.frame_word(claim.pos, IDS_WORD)
            .store(frame::encode_ids(meta.pid, meta.tid), Ordering::Relaxed);
        let lengths = frame::encode_lengths(payload_len, meta.target_len, meta.flags);
        self.frame_word(claim.pos, LENGTHS_WORD)
            .store(lengths, Ordering::Relaxed);
        let committed = Word0::encode(claim.len, true, Kind::Data, meta.level, claim.slot);
        // SYNC POINT: Release pairs with the drain's Acquire load of word 0 in `next`: header
        // words and payload copies happen-before the drain reads them.
        self.frame_word(claim.pos, 0)
            .store(committed, Ordering::Release);
        self.bump_written(claim.slot);
        self.drain_needs_wake()
    }

    /// Word 0 of the frame `claim` reserved, to turn the claim into another frame (a chunk's
    /// header, [`crate::chunk`]) instead of committing or aborting it.
    pub(crate) fn claimed_word0(&self, claim: Claim) -> &AtomicU64 {
        self.frame_word(claim.pos, 0)
    }

    /// Gives the claim back as padding the drain skips; never stalls the ring.
    #[inline]
    pub fn abort(&self, claim: Claim) {
        let padding = Word0::encode(claim.len, true, Kind::Padding, Level::None, claim.slot);
        // Release: uniform with commits; the drain Acquire-loads word 0 and needs nothing else
        // (the check word, stored at the claim, stays).
        self.frame_word(claim.pos, 0)
            .store(padding, Ordering::Release);
    }

    #[inline]
    fn bump_written(&self, slot: u16) {
        let w = self.slot_word(slot, slot_off::WRITTEN);
        // Relaxed load + store, not an RMW: only the slot's owning thread writes it.
        w.store(w.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Counts a record dropped by `slot` because the ring was full.
    pub fn count_drop(&self, slot: u16) {
        let w = self.slot_word(slot, slot_off::DROPPED);
        // Release: pairs with the drain's Acquire of `drop_events` below, so a drain that sees
        // the event also sees the count.
        w.store(w.load(Ordering::Relaxed) + 1, Ordering::Release);
        // Release RMW: see above. Only on the drop path, never per written record.
        self.word(off::DROP_EVENTS).fetch_add(1, Ordering::Release);
    }

    /// Adds blocked time to `slot`'s counter.
    pub fn count_blocked(&self, slot: u16, ns: u64) {
        let w = self.slot_word(slot, slot_off::BLOCKED_NS);
        // Relaxed: owner-written statistic.
        w.store(w.load(Ordering::Relaxed) + ns, Ordering::Relaxed);
    }

    /// True if the drain announced it sleeps; clears the flag so only one producer wakes it.
    #[inline]
    pub fn drain_needs_wake(&self) -> bool {
        let sleeping = self.word32(off::DRAIN_SLEEPING);
        // SeqCst: the second half of the Dekker pair begun by the SeqCst tail CAS in `claim`;
        // pairs with the drain's SeqCst store of the flag and SeqCst load of `tail` in
        // `prepare_sleep`. Either the drain sees our claim, or we see its flag.
        sleeping.dekker_load(Ordering::SeqCst) != 0
            && sleeping.dekker_swap(0, Ordering::SeqCst) != 0
    }

    // ------------------------------------------------------------------ consumer side

    /// The consumer's position (only the drain stores it).
    pub fn head(&self) -> u64 {
        // Acquire: pairs with `release`; gives readers (stat, a restarted drain) the state
        // that came with it.
        self.word(off::HEAD).load(Ordering::Acquire)
    }

    /// The registry slot whose claim holds the consumer up: the frame at `head` is a claimed,
    /// uncommitted record whose header names `slot`. `None` when the frame at `head` is anything
    /// else, or `head` moved while we looked. A producer that owns this slot and waits for
    /// space waits for itself: only its own commit or abort can move `head`.
    pub fn head_held_by(&self) -> Option<u16> {
        let head = self.head();
        // As the consumer reads it: the slot bits of this lap's word 0 are all we use.
        let w0 = Word0::decode(self.fresh_word0(head)?)?;
        let held = !w0.committed && w0.kind == Kind::Data as u8 && (w0.slot as u32) < self.slots;
        (held && self.head() == head).then_some(w0.slot)
    }

    /// The producers' position.
    pub fn tail(&self) -> u64 {
        // SYNC POINT: Acquire pairs with the Release half of the producers' CAS: intents
        // stored before a claim are visible once its tail is.
        self.word(off::TAIL).load(Ordering::Acquire)
    }

    /// Reads the frame at `head` without consuming it. `tail_cache` is the consumer's last seen
    /// tail; it is refreshed only when needed. [`crate::Consumer::peek`] is the safe way.
    ///
    /// # Safety
    /// The caller is the ring's only consumer and `head` is a frame boundary it reached from
    /// the ring's head through frames it read: at any other position the atomic loads here
    /// could race with a producer's plain copy into its claim.
    #[inline(always)]
    pub unsafe fn next(&self, head: u64, tail_cache: &mut u64) -> Next {
        // The tail decides emptiness before the frame is read: a consumer that read a whole lap
        // without releasing it stands at `released head + capacity`, where the words are still
        // its own first unreleased frame, not free space.
        if *tail_cache <= head {
            *tail_cache = self.tail();
            if *tail_cache == head {
                return Next::Empty;
            }
            if !self.tail_plausible(head, *tail_cache) {
                return Next::Corrupt(Corruption::Tail(*tail_cache));
            }
        }
        let Some(word) = self.fresh_word0(head) else {
            if !self.tail_plausible(head, *tail_cache) {
                return Next::Corrupt(Corruption::Tail(*tail_cache));
            }
            return Next::Pending {
                slot: None,
                len: None,
            };
        };
        // Zero under a matching check word: no producer writes that.
        let Some(w0) = Word0::decode(word) else {
            return Next::Corrupt(Corruption::Length(0));
        };
        if w0.slot as u32 >= self.slots {
            return Next::Corrupt(Corruption::Slot(w0.slot));
        }
        let index = head & self.mask;
        let room = self.capacity - index;
        let span = w0.span();
        let data = w0.kind == Kind::Data as u8;
        let min = if data { FRAME_HEADER_SIZE as u64 } else { 8 };
        let max = if data {
            FRAME_HEADER_SIZE as u64 + self.max_record
        } else {
            self.capacity
        };
        if w0.kind == Kind::Chunk as u8 {
            return self.chunk_at(head, &w0, tail_cache);
        }
        if w0.kind != Kind::Data as u8 && w0.kind != Kind::Padding as u8 {
            return Next::Corrupt(Corruption::Kind(w0.kind));
        }
        if (w0.len as u64) < min || w0.len as u64 > max || span > room {
            return Next::Corrupt(Corruption::Length(w0.len));
        }
        if let Err(why) = self.ends_by_tail(head, head + span, tail_cache) {
            return Next::Corrupt(why);
        }
        if !w0.committed {
            return Next::Pending {
                slot: Some(w0.slot),
                len: Some(w0.len),
            };
        }
        if !data {
            return Next::Padding { span };
        }
        self.record_at(head, &w0, span, *tail_cache)
    }

    /// Checks that the frame at `head` ending at `end` lies behind the tail: against
    /// `tail_cache`, reloaded (and itself checked) only when the cached tail is short of `end`.
    #[inline(always)]
    fn ends_by_tail(&self, head: u64, end: u64, tail_cache: &mut u64) -> Result<(), Corruption> {
        if end <= *tail_cache {
            return Ok(());
        }
        *tail_cache = self.tail();
        if !self.tail_plausible(head, *tail_cache) {
            return Err(Corruption::Tail(*tail_cache));
        }
        if end > *tail_cache {
            return Err(Corruption::PastTail);
        }
        Ok(())
    }

    /// The chunk frame at `head` (first word `w0`): a committed header, or the claim of a
    /// whole chunk its owner has not turned into one yet (pending). Checked like any frame:
    /// its length, and the chunk inside the region and behind the tail.
    #[cold]
    fn chunk_at(&self, head: u64, w0: &Word0, tail_cache: &mut u64) -> Next {
        let Some(chunk) = self.chunk_len() else {
            return Next::Corrupt(Corruption::Chunk);
        };
        let len = if w0.committed {
            crate::chunk::CHUNK_HEADER
        } else {
            chunk
        };
        if w0.len as u64 != len || (head & self.mask) + chunk > self.capacity {
            return Next::Corrupt(Corruption::Length(w0.len));
        }
        if let Err(why) = self.ends_by_tail(head, head + chunk, tail_cache) {
            return Next::Corrupt(why);
        }
        if w0.committed {
            Next::Chunk { slot: w0.slot }
        } else {
            Next::Pending {
                slot: Some(w0.slot),
                len: Some(w0.len),
            }
        }
    }

    /// Word 0 of the frame at `pos`, if the frame was written in this lap: its check word is
    /// `pos`'s, or, at region offset `capacity - 8` (the one frame start with no room for a
    /// check word, always an 8-byte padding), word 0 is not zero. `None` means "not written
    /// yet" (or written by a hostile producer without a check word). Every word it loads is a
    /// frame start's word 0 or 1, which producers only ever store atomically.
    #[inline(always)]
    fn fresh_word0(&self, pos: u64) -> Option<u64> {
        if pos & self.mask == self.capacity - 8 {
            // SYNC POINT: Acquire pairs with the producer's Release of the 8-byte padding
            // (`mark_padding`): the record header it wrote first is visible once this is.
            // `release` zeroes this word in every lap, so zero means "not written yet".
            let word = self.frame_word(pos, 0).load(Ordering::Acquire);
            return (word != 0).then_some(word);
        }
        // SYNC POINT: Acquire pairs with the producer's Release of the check word
        // (`mark_claimed`, `mark_padding`): word 0 of this lap is visible once it is. Loaded
        // before word 0: the other order could pair an earlier lap's word 0 with it.
        let (word0, check) = self.frame_start(pos);
        if check.load(Ordering::Acquire) != check_word(pos, self.key) {
            return None;
        }
        // SYNC POINT: Acquire pairs with the producers' Release of word 0 (commit, abort): the
        // header words and payload are visible once the length is.
        Some(word0.load(Ordering::Acquire))
    }

    /// The committed data record at `head` (first word `w0`, `span` bytes to the next frame),
    /// its lengths checked against its frame; prefetches what the consumer reads next, up to
    /// `tail`.
    #[inline(always)]
    fn record_at(&self, head: u64, w0: &Word0, span: u64, tail: u64) -> Next {
        // Relaxed: ordered after the Acquire of word 0 in `next`.
        let (payload_len, target_len, flags) =
            frame::decode_lengths(self.frame_word(head, LENGTHS_WORD).load(Ordering::Relaxed));
        if payload_len as u64 > w0.len as u64 - FRAME_HEADER_SIZE as u64
            || target_len as u32 > payload_len
        {
            return Next::Corrupt(Corruption::PayloadLength(payload_len));
        }
        self.prefetch_for_consumer(head + span, span, tail);
        let ids = self.frame_word(head, IDS_WORD).load(Ordering::Relaxed);
        let meta = RecordMeta {
            timestamp_ns: self
                .frame_word(head, TIMESTAMP_WORD)
                .load(Ordering::Relaxed),
            pid: ids as u32,
            tid: (ids >> 32) as u32,
            level: Level::from_u8(w0.level),
            payload_len,
            target_len,
            flags,
            slot: w0.slot,
        };
        Next::Record { meta, span }
    }

    /// Asks for the cache lines the consumer will read a few records from now,
    /// [`CONSUMER_PREFETCH_DISTANCE`] bytes past `next` (the frame after the one just read), up
    /// to [`PREFETCH_LINES`] lines and never past `tail` (lines producers have not claimed yet
    /// would only be pulled away from them). The producer wrote those lines on the other core,
    /// so each first read of one misses; the drain's loads of the frame headers held most of its
    /// own profile samples at 128-byte records without this.
    #[inline]
    fn prefetch_for_consumer(&self, next: u64, span: u64, tail: u64) {
        let first = next + CONSUMER_PREFETCH_DISTANCE;
        let lines = span.div_ceil(CACHE_LINE).min(PREFETCH_LINES);
        for i in 0..lines {
            let at = first + i * CACHE_LINE;
            if at >= tail {
                return;
            }
            self.mem
                .prefetch_for_read(self.data + (at & self.mask) as usize);
        }
    }

    /// A tail a correct producer could have left: aligned, not behind `head`, at most a
    /// capacity ahead.
    pub(crate) fn tail_plausible(&self, head: u64, tail: u64) -> bool {
        tail >= head && tail - head <= self.capacity && tail % layout::RECORD_ALIGN == 0
    }

    /// Copies `dst.len()` payload bytes of the record at `pos`, from payload offset `offset`.
    ///
    /// # Safety
    /// The caller is the ring's only consumer, `pos` is a committed data record its `next`
    /// returned and it has not released since, and the range lies inside that record's payload
    /// ([`crate::Consumer::read_payload`] checks all of it).
    ///
    /// # Panics
    /// If the range leaves the data region.
    #[inline]
    pub unsafe fn read_payload(&self, pos: u64, offset: usize, dst: &mut [u8]) {
        let index = (pos & self.mask) as usize + FRAME_HEADER_SIZE + offset;
        assert!(
            index + dst.len() <= self.capacity as usize,
            "payload read outside the ring"
        );
        // SAFETY: the frame is committed (the caller got it from `next`, whose Acquire load
        // ordered the producer's writes before this read) and stays unwritten until we release.
        unsafe { self.mem.copy_out(self.data + index, dst) }
    }

    /// Appends `len` payload bytes of the record at `pos`, from payload offset `offset`, to
    /// `out`, copying straight into its spare capacity.
    ///
    /// # Safety
    /// As [`Ring::read_payload`].
    ///
    /// # Panics
    /// As [`Ring::read_payload`].
    #[inline]
    pub unsafe fn append_payload(&self, pos: u64, offset: usize, len: usize, out: &mut Vec<u8>) {
        let index = (pos & self.mask) as usize + FRAME_HEADER_SIZE + offset;
        assert!(
            index + len <= self.capacity as usize,
            "payload read outside the ring"
        );
        out.reserve(len);
        let spare = &mut out.spare_capacity_mut()[..len];
        // SAFETY: as in `read_payload`.
        unsafe { self.mem.copy_out_uninit(self.data + index, spare) };
        // SAFETY: `copy_out_uninit` initialised the `len` bytes after the old length.
        unsafe { out.set_len(out.len() + len) };
    }

    /// Where `len` payload bytes of the record at `pos`, from payload offset `offset`, are in
    /// memory, for a zero-copy `writev`; `None` if the region cannot hand out pointers.
    /// The bytes stay valid and unwritten until the caller releases the record (the same
    /// contract as [`Ring::read_payload`]).
    ///
    /// # Safety
    /// As [`Ring::read_payload`], for as long as the pointer is used.
    ///
    /// # Panics
    /// As [`Ring::read_payload`].
    pub unsafe fn payload_ptr(&self, pos: u64, offset: usize, len: usize) -> Option<*const u8> {
        let index = (pos & self.mask) as usize + FRAME_HEADER_SIZE + offset;
        assert!(
            index + len <= self.capacity as usize,
            "payload read outside the ring"
        );
        self.mem.raw_range(self.data + index, len)
    }

    /// Moves `head` to `to`, giving `[head, to)` back to producers, and zeroes the one word of
    /// it that must be zero in free space: the word at region offset `capacity - 8`, if the range
    /// covers it (see [`crate::frame`]). Nothing else is zeroed: check words tell this lap's
    /// frames from what earlier laps left.
    /// Returns true when producers are blocked waiting for space and should be woken.
    /// [`crate::Consumer::release`] is the safe way.
    ///
    /// # Safety
    /// The caller is the ring's only consumer, `head` is the ring's head, and `[head, to)`
    /// holds only frames it read (committed, or given up by dead or hostile producers): no
    /// live producer may be writing any of it.
    pub unsafe fn release(&self, head: u64, to: u64) -> bool {
        assert!(
            to >= head && to - head <= self.capacity,
            "release of an impossible range"
        );
        // The first position at or after `head` at region offset `capacity - 8`.
        let last_word = head + ((self.capacity - 8).wrapping_sub(head & self.mask) & self.mask);
        if last_word < to {
            // Relaxed: ordered before any producer's write into the freed space by the Release
            // of `head` below. Consumed (the caller's promise), so nobody else writes it now.
            self.frame_word(last_word, 0).store(0, Ordering::Relaxed);
        }
        // SYNC POINT: Release pairs with the producers' Acquire load of `head` in `claim`: our
        // reads of the freed frames and the zeroing above happen-before their writes into them.
        self.word(off::HEAD).store(to, Ordering::Release);
        // SeqCst fence: the Dekker pair with `wait_for_space` (fence after the waiter count
        // increment, then a head load): either the waiter sees our head, or we see the waiter.
        crate::sync::fence(Ordering::SeqCst);
        self.word32(off::SPACE_WAITERS).load(Ordering::Relaxed) > 0
    }

    // ------------------------------------------------------------------ registry and faults

    /// Number of registry slots.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// A snapshot of slot `slot`.
    pub fn slot_info(&self, slot: u16) -> SlotInfo {
        // Relaxed throughout: a statistics snapshot; fields may be mutually inconsistent.
        let w = |f| self.slot_word(slot, f).load(Ordering::Relaxed);
        let ids = w(slot_off::PID_TID);
        SlotInfo {
            state: SlotState::from_word(w(slot_off::STATE)),
            pid: ids as u32,
            tid: (ids >> 32) as u32,
            intent: w(slot_off::INTENT),
            written: w(slot_off::WRITTEN),
            dropped: w(slot_off::DROPPED),
            blocked_ns: w(slot_off::BLOCKED_NS),
            dropped_reported: w(slot_off::DROPPED_REPORTED),
            written_base: w(slot_off::WRITTEN_BASE),
            dropped_base: w(slot_off::DROPPED_BASE),
            attached_ns: w(slot_off::ATTACHED_NS),
            stall_since_ns: w(slot_off::STALL_SINCE_NS),
            abandoned: w(slot_off::ABANDONED),
        }
    }

    /// Slots whose intent says they are claiming at `pos` (their frame header may be unwritten).
    /// Call after loading `tail` (see [`Ring::tail`]) and re-check the frame afterwards: an
    /// owner that moved on wrote its header first.
    pub fn claimants(&self, pos: u64) -> impl Iterator<Item = u16> + '_ {
        (0..self.slots as u16).filter(move |&s| {
            // Acquire: if the owner has since stored a newer intent, its header write at `pos`
            // (made before) becomes visible to our re-check of word 0.
            self.slot_word(s, slot_off::INTENT).load(Ordering::Acquire) == pos + 1
        })
    }

    /// Where the claim starting at `pos` ends, when its owner died before writing its header:
    /// the nearest position after `pos` that is certainly a claim boundary, i.e. the first frame
    /// written in this lap (its check word matches its position, or, at region offset
    /// `capacity - 8`, its word 0 is not zero: see [`Ring::next`]), another slot's intent, or
    /// `tail`.
    ///
    /// The dead claim's own bytes cannot end the scan early. Its owner died before its header
    /// store, so it wrote nothing there at all (the header comes before the payload copy): the
    /// claim holds what earlier laps left. An earlier lap's check word names a position a
    /// multiple of the capacity away, so it never matches here; any other leftover word (a
    /// payload, a time stamp) matches only by equalling 64 bits of the segment's random key mixed
    /// with its position, which benign data does with probability 2^-64. The word at
    /// `capacity - 8` inside the claim was zeroed when the drain released it a lap ago. Past the
    /// claim's end the scan reads only frame starts' words 0 and 1 (the next frame's, or space
    /// no one has claimed), which producers store atomically.
    ///
    /// # Safety
    /// As [`Ring::next`], and the claim at `pos` belongs to a dead producer.
    pub unsafe fn unwritten_claim_end(&self, pos: u64, tail: u64) -> u64 {
        let bound = self.next_known_boundary(pos, tail);
        let mut at = pos + layout::RECORD_ALIGN;
        while at < bound {
            if self.fresh_word0(at).is_some() {
                return at;
            }
            at += layout::RECORD_ALIGN;
        }
        bound
    }

    /// Where to resume after corrupt bytes at `pos`: the nearest certain claim boundary after
    /// it (an intent, or `tail`). Everything between is lost, and reported by the caller.
    pub fn resync_point(&self, pos: u64, tail: u64) -> u64 {
        self.next_known_boundary(pos, tail)
    }

    /// The smallest of `tail` and the producers' intents after `pos`. Intents are claim starts
    /// (each was a tail value), so each is a frame boundary; values that cannot be one (not
    /// aligned, or a capacity or more ahead: garbage) are ignored. `tail` must be valid.
    fn next_known_boundary(&self, pos: u64, tail: u64) -> u64 {
        // The open chunks' starts and cursors first: a cursor read after an intent could have
        // moved past the frame that intent names (see `Ring::claim_in_chunk`).
        let mut bound = self.chunk_boundary(pos, tail);
        for s in 0..self.slots as u16 {
            // Acquire: as in `claimants`.
            let i = self.slot_word(s, slot_off::INTENT).load(Ordering::Acquire);
            let start = i.wrapping_sub(1);
            if i > pos + 1 && start % layout::RECORD_ALIGN == 0 && start < bound {
                bound = start;
            }
        }
        bound
    }

    /// Replaces the tail `bad` with `to`, if nobody changed it meanwhile. Producers' CAS then
    /// continue from `to`. Returns whether it replaced it. Only [`crate::Consumer::repair_tail`]
    /// calls it, once it has proved `bad` corrupt: a sound tail moved back would hand out space
    /// that claims in flight are writing.
    pub(crate) fn repair_tail(&self, bad: u64, to: u64) -> bool {
        // SeqCst: like the producers' CAS on the same word.
        self.word(off::TAIL)
            .compare_exchange(bad, to, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }
}

/// The header type, re-exported for documentation of offsets.
pub type SegmentHeader = Header;

/// A fresh [`Header::frame_key`]: 64 bits of std's randomly keyed SipHash (its keys come from
/// the operating system's random source) over the creation time and pid, made odd. No new
/// dependency, and unpredictable to anything that does not read the segment header.
fn new_frame_key(created_ns: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(created_ns);
    hasher.write_u32(std::process::id());
    hasher.finish() | 1
}
