//! The byte layout of a ring segment: the header page, the producer registry and the record
//! frame header. This module owns offsets, sizes and the meaning of every shared word; it never
//! touches memory itself (see [`crate::memory`] for that).
//!
//! ```text
//! 0        HEADER_SIZE        HEADER_SIZE + slots*SLOT_SIZE = data_offset      + capacity
//! | Header | registry: Slot[slots]                            | data region (records) |
//! ```
//!
//! Words written by producers and words written by the drain sit on separate 128-byte lines
//! (two 64-byte lines, because x86's adjacent-line prefetcher pairs them).

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

/// `b"RINGLOG\0"` read as a little-endian `u64`: the first word of every segment.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RINGLOG\0");
/// The layout version this build reads and writes. Bumped on any incompatible change. A word
/// taken from padding is not one when zero means "nothing recorded" and a build that ignores
/// it still does the right thing: every segment is created zeroed, and older builds never
/// write their padding (so `ckpt_written`, `ckpt_born` and the slots' `abandoned_pending` came
/// without a bump). Version 2: frame headers carry a check word (see [`crate::frame`]) and the
/// header the segment's [`Header::frame_key`]; the drain no longer zeroes what it consumes.
/// Version 3: small records are claimed inside per-producer chunks (see [`crate::chunk`]): a
/// frame kind for the chunk header, each slot's [`Slot::chunk`] cursor, and the header's
/// record of the chunk the drain sealed last.
pub const LAYOUT_VERSION: u32 = 3;
/// Bytes in the fixed header, before the registry.
pub const HEADER_SIZE: usize = 4096;
/// Bytes per producer registry slot.
pub const SLOT_SIZE: usize = 128;
/// Registry slots created by default (one per producer thread attached at a time).
pub const DEFAULT_SLOTS: u32 = 1024;
/// Records start at multiples of this, so every frame header is 8-byte aligned.
pub const RECORD_ALIGN: u64 = 8;
/// Smallest data region accepted.
#[cfg(not(loom))]
pub const MIN_CAPACITY: u64 = 4096;
/// Smallest data region accepted. Under `cfg(loom)` only: a 128-byte region (two 64-byte frames)
/// keeps model checks of wrap-around and a full ring tractable; production builds never see it.
#[cfg(loom)]
pub const MIN_CAPACITY: u64 = 128;
/// Largest data region accepted (frame lengths are stored as `i32`).
pub const MAX_CAPACITY: u64 = 1 << 30;
/// Data region of a ring created with default options. 4 MiB holds about 25,000 records of
/// 128 B (a millisecond of the drain at full speed, far more at a service's usual rate) and a
/// record of up to 1 MiB. Small enough that what producers write is still in the last-level
/// cache when the drain hands it to the kernel: measured against 16 MiB, 4 x 4 KiB records
/// went ~25% faster and 64 KiB ones ~8% on the development machine. Larger rings
/// (`--capacity`, `WriterBuilder::capacity`) absorb longer drain stalls.
pub const DEFAULT_CAPACITY: u64 = 4 << 20;

/// Value of [`Header::version`] while the segment is still being built.
pub const VERSION_UNPUBLISHED: u32 = 0;

/// The segment header. `#[repr(C)]`, plain integers only, so it is `Pod` and its offsets are
/// fixed; runtime access to the mutable words goes through atomics at these offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Header {
    // ---- line 0: identity, written once by the creator before `version` is published ----
    /// [`MAGIC`]. Written before `version`.
    pub magic: u64,
    /// [`LAYOUT_VERSION`], stored last with Release: an opener that reads it with Acquire sees
    /// every other identity field initialised. Zero means "still being built".
    pub version: u32,
    /// Bytes from the start of the segment to the data region (header + registry).
    pub data_offset: u32,
    /// Size of the data region in bytes; a power of two.
    pub capacity: u64,
    /// Largest payload a record may carry, in bytes.
    pub max_record: u64,
    /// Wall-clock creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// Number of registry slots.
    pub slots: u32,
    /// File mode the creator asked for (informational).
    pub mode: u32,
    /// A random odd number chosen at creation: every frame's check word is its position XOR
    /// this key ([`crate::frame::check_word`]), so no benign payload bytes can pass for one.
    pub frame_key: u64,
    pub _pad0: [u64; 9],

    // ---- line 1: written by producers on every claim ----
    /// Next free position (monotonic byte count, never wraps). Producers CAS it forward.
    /// Invariant: `head <= tail <= head + capacity`.
    pub tail: u64,
    pub _pad1: [u64; 15],

    // ---- line 2: written by producers only when the ring is full ----
    /// Producers currently blocked waiting for space.
    pub space_waiters: u32,
    /// Futex word: bumped by the drain whenever it frees space and someone waits.
    pub space_seq: u32,
    /// Bumped by a producer each time it drops a record, so the drain scans the registry for
    /// drops to report only when something was dropped.
    pub drop_events: u64,
    pub _pad2: [u64; 14],

    // ---- line 3: written by the drain on every batch ----
    /// Everything before `head` is consumed and free for producers. Only the drain stores it.
    pub head: u64,
    /// Records and payload bytes written to the output.
    pub records_out: u64,
    pub bytes_out: u64,
    /// Claims abandoned by dead producers, and their bytes.
    pub abandoned: u64,
    pub abandoned_bytes: u64,
    /// Stalls seen (a live producer holding a claim longer than the stall threshold).
    pub stalls: u64,
    /// Corrupt frames found and skipped.
    pub corrupt: u64,
    /// The rest of the chunk the drain sealed last, `[chunk_sealed_at, chunk_sealed_end)`, which
    /// nobody writes (see [`crate::chunk`]): stored before the seal, so a restarted drain can
    /// skip it when the chunk's owner has since moved on. 0, 0 when none.
    pub chunk_sealed_at: u64,
    pub chunk_sealed_end: u64,
    pub _pad3: [u64; 7],

    // ---- line 4: drain sleep/wake ----
    /// 1 while the drain is about to sleep or sleeping on `wake_seq`.
    pub drain_sleeping: u32,
    /// Futex word producers bump to wake a sleeping drain.
    pub wake_seq: u32,
    pub _pad4: [u64; 15],

    // ---- line 5: drain identity and liveness (the OFD lock on DRAIN_LOCK_BYTE is the truth) ----
    pub drain_pid: u32,
    pub _pad5a: u32,
    pub drain_started_ns: u64,
    pub drain_heartbeat_ns: u64,
    /// The last drain's measured ns per TSC tick (`f64` bits), so a restarted drain converts
    /// tick stamps precisely from the start; 0 if never measured.
    pub ns_per_tick_bits: u64,
    pub _pad5: [u64; 12],

    // ---- line 6: the drain's output checkpoint (intent, write, advance) ----
    /// 0: no batch in flight; 1: a batch `[ckpt_start, ckpt_end)` of `ckpt_bytes` bytes is
    /// being appended to the output whose length was `ckpt_out_len` (device/inode below).
    pub ckpt_state: u64,
    pub ckpt_start: u64,
    pub ckpt_end: u64,
    pub ckpt_out_len: u64,
    pub ckpt_bytes: u64,
    pub ckpt_dev: u64,
    pub ckpt_ino: u64,
    pub ckpt_records: u64,
    /// What the counters `records_out`, `bytes_out`, `abandoned`, `abandoned_bytes` and
    /// `corrupt` become once the batch in flight is written: stored with its intent, so a
    /// restarted drain sets them exactly (whether or not the dead one got to), and they count
    /// every batch in the output once, across any crash.
    pub ckpt_counters_after: [u64; 5],
    /// A digest of the intent's words (`ckpt_start` to `ckpt_records`, `ckpt_born`), stored once the
    /// append returned whole: when it matches the intent in flight, that batch is in the file
    /// it went to, wherever the file went since (moved to another directory, compressed). Any
    /// other value (0 in a segment an older drain wrote) says nothing: the file's length must
    /// tell. Older drains ignore it and recover as before.
    pub ckpt_written: u64,
    /// Birth time (ns since the Unix epoch, from `statx`) of the file `ckpt_dev`/`ckpt_ino`;
    /// 0 where the filesystem does not keep one (or an older drain recorded the intent). Tells
    /// the file from a later one that got its inode number after it was deleted (logrotate's
    /// `compress` frees the inode; its state file may take it a moment later).
    pub ckpt_born: u64,
    pub _pad6: [u64; 1],
    pub _reserved: [u64; 512 - 7 * 16],
}

const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, tail) == 128);
    assert!(offset_of!(Header, space_waiters) == 256);
    assert!(offset_of!(Header, head) == 384);
    assert!(offset_of!(Header, drain_sleeping) == 512);
    assert!(offset_of!(Header, drain_pid) == 640);
    assert!(offset_of!(Header, ckpt_state) == 768);
    // Where older builds had padding: they never write it.
    assert!(offset_of!(Header, ckpt_written) == 768 + 13 * 8);
};

/// Byte offsets of header words, for atomic access.
pub mod off {
    use super::Header;
    use core::mem::offset_of;
    pub const MAGIC: usize = offset_of!(Header, magic);
    pub const VERSION: usize = offset_of!(Header, version);
    pub const DATA_OFFSET: usize = offset_of!(Header, data_offset);
    pub const CAPACITY: usize = offset_of!(Header, capacity);
    pub const MAX_RECORD: usize = offset_of!(Header, max_record);
    pub const CREATED_NS: usize = offset_of!(Header, created_ns);
    pub const SLOTS: usize = offset_of!(Header, slots);
    pub const MODE: usize = offset_of!(Header, mode);
    pub const FRAME_KEY: usize = offset_of!(Header, frame_key);
    pub const TAIL: usize = offset_of!(Header, tail);
    pub const SPACE_WAITERS: usize = offset_of!(Header, space_waiters);
    pub const SPACE_SEQ: usize = offset_of!(Header, space_seq);
    pub const DROP_EVENTS: usize = offset_of!(Header, drop_events);
    pub const HEAD: usize = offset_of!(Header, head);
    pub const RECORDS_OUT: usize = offset_of!(Header, records_out);
    pub const BYTES_OUT: usize = offset_of!(Header, bytes_out);
    pub const ABANDONED: usize = offset_of!(Header, abandoned);
    pub const ABANDONED_BYTES: usize = offset_of!(Header, abandoned_bytes);
    pub const STALLS: usize = offset_of!(Header, stalls);
    pub const CORRUPT: usize = offset_of!(Header, corrupt);
    pub const CHUNK_SEALED_AT: usize = offset_of!(Header, chunk_sealed_at);
    pub const CHUNK_SEALED_END: usize = offset_of!(Header, chunk_sealed_end);
    pub const DRAIN_SLEEPING: usize = offset_of!(Header, drain_sleeping);
    pub const WAKE_SEQ: usize = offset_of!(Header, wake_seq);
    pub const DRAIN_PID: usize = offset_of!(Header, drain_pid);
    pub const DRAIN_STARTED_NS: usize = offset_of!(Header, drain_started_ns);
    pub const DRAIN_HEARTBEAT_NS: usize = offset_of!(Header, drain_heartbeat_ns);
    pub const NS_PER_TICK_BITS: usize = offset_of!(Header, ns_per_tick_bits);
    pub const CKPT_STATE: usize = offset_of!(Header, ckpt_state);
    pub const CKPT_START: usize = offset_of!(Header, ckpt_start);
    pub const CKPT_END: usize = offset_of!(Header, ckpt_end);
    pub const CKPT_OUT_LEN: usize = offset_of!(Header, ckpt_out_len);
    pub const CKPT_BYTES: usize = offset_of!(Header, ckpt_bytes);
    pub const CKPT_DEV: usize = offset_of!(Header, ckpt_dev);
    pub const CKPT_INO: usize = offset_of!(Header, ckpt_ino);
    pub const CKPT_RECORDS: usize = offset_of!(Header, ckpt_records);
    pub const CKPT_COUNTERS_AFTER: usize = offset_of!(Header, ckpt_counters_after);
    pub const CKPT_WRITTEN: usize = offset_of!(Header, ckpt_written);
    pub const CKPT_BORN: usize = offset_of!(Header, ckpt_born);
    /// The counters the checkpoint carries, in the order of `ckpt_counters_after`.
    pub const CHECKPOINTED_COUNTERS: [usize; 5] =
        [RECORDS_OUT, BYTES_OUT, ABANDONED, ABANDONED_BYTES, CORRUPT];
}

/// One producer registry slot: a producer (one thread of one process) owns it while attached.
/// Liveness is not stored here: the owner holds an OFD write lock on byte
/// [`slot_lock_byte`]`(index)` of the segment file, which the kernel drops when it dies, and
/// which cannot be fooled by pid reuse or pid namespaces.
///
/// Counters are cumulative over the slot's owners, so the drain can diff them without racing a
/// takeover; an owner's own numbers are `written - written_base` and `dropped - dropped_base`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Slot {
    // ---- written only by the owning thread (words 0..10; the drain may seal `chunk`) ----
    /// [`SLOT_FREE`], [`SLOT_ATTACHED`] or [`SLOT_DETACHED`].
    pub state: u64,
    pub pid: u32,
    pub tid: u32,
    /// One plus the position the owner is claiming at, stored before its tail CAS and left in
    /// place after; [`NO_INTENT`] (0, so zeroed memory means "none") when it is not claiming.
    /// Lets the drain attribute a claim whose frame header is not written yet.
    pub intent: u64,
    /// Records committed through this slot (all owners).
    pub written: u64,
    /// The owner's open chunk and its cursor (see [`crate::chunk`]): the chunk's position, the
    /// offset of its first free byte and who sealed it. 0 when the slot never had one. The
    /// owner moves the cursor with a CAS; the drain's one write is the CAS that seals it.
    pub chunk: u64,
    /// Records dropped because the ring was full (all owners).
    pub dropped: u64,
    /// Nanoseconds the current owner spent blocked on a full ring.
    pub blocked_ns: u64,
    /// When the current owner attached, ns since the Unix epoch.
    pub attached_ns: u64,
    /// `written` when the current owner attached.
    pub written_base: u64,
    /// `dropped` when the current owner attached.
    pub dropped_base: u64,
    // ---- written only by the drain ----
    /// How many of `dropped` the drain has already reported in the output.
    pub dropped_reported: u64,
    /// When the drain first saw this producer stall the ring (ns), or 0.
    pub stall_since_ns: u64,
    /// Claims of this slot's owners the drain skipped because the owner died mid-record.
    pub abandoned: u64,
    /// The value `dropped_reported` takes once the batch in flight (see the header's
    /// checkpoint) is written; 0 when no report is in flight. Lets a restarted drain finish or
    /// forget a drop report exactly as it finishes or redoes the batch carrying it.
    pub dropped_pending: u64,
    /// The value `abandoned` takes once the batch in flight is written (the batch skips claims
    /// of this slot); 0 when none is in flight. Makes the per-producer count exact across a
    /// drain kill, as `dropped_pending` does for drop reports.
    pub abandoned_pending: u64,
    pub _pad1: [u64; 1],
}

const _: () = {
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(offset_of!(Slot, dropped_reported) == 80);
    // The words the owner writes on every claim share its first line.
    assert!(offset_of!(Slot, chunk) < 64 && offset_of!(Slot, written) < 64);
};

/// Byte offsets within a [`Slot`].
pub mod slot_off {
    use super::Slot;
    use core::mem::offset_of;
    pub const STATE: usize = offset_of!(Slot, state);
    pub const PID_TID: usize = offset_of!(Slot, pid);
    pub const INTENT: usize = offset_of!(Slot, intent);
    pub const WRITTEN: usize = offset_of!(Slot, written);
    pub const CHUNK: usize = offset_of!(Slot, chunk);
    pub const DROPPED: usize = offset_of!(Slot, dropped);
    pub const BLOCKED_NS: usize = offset_of!(Slot, blocked_ns);
    pub const ATTACHED_NS: usize = offset_of!(Slot, attached_ns);
    pub const WRITTEN_BASE: usize = offset_of!(Slot, written_base);
    pub const DROPPED_BASE: usize = offset_of!(Slot, dropped_base);
    pub const DROPPED_REPORTED: usize = offset_of!(Slot, dropped_reported);
    pub const STALL_SINCE_NS: usize = offset_of!(Slot, stall_since_ns);
    pub const ABANDONED: usize = offset_of!(Slot, abandoned);
    pub const DROPPED_PENDING: usize = offset_of!(Slot, dropped_pending);
    pub const ABANDONED_PENDING: usize = offset_of!(Slot, abandoned_pending);
}

/// Slot never used, or released cleanly with nothing left to report.
pub const SLOT_FREE: u64 = 0;
/// Slot owned by a producer (which may since have died: ask the lock).
pub const SLOT_ATTACHED: u64 = 1;
/// Slot released cleanly by its owner; its counters remain for the drain and `stat`.
pub const SLOT_DETACHED: u64 = 2;
/// [`Slot::intent`] when the owner is not claiming.
pub const NO_INTENT: u64 = 0;

/// Byte of the segment file a producer in slot `index` keeps write-locked (OFD lock) while alive.
pub const fn slot_lock_byte(index: u32) -> u64 {
    HEADER_SIZE as u64 + index as u64 * SLOT_SIZE as u64
}
/// Byte of the segment file the drain keeps write-locked while it runs (one drain per ring).
pub const DRAIN_LOCK_BYTE: u64 = off::DRAIN_PID as u64;

/// Offset of slot `index` in the segment.
pub const fn slot_offset(index: u32) -> usize {
    HEADER_SIZE + index as usize * SLOT_SIZE
}

/// Offset of the data region for a registry of `slots` slots (page aligned).
pub const fn data_offset(slots: u32) -> usize {
    let raw = HEADER_SIZE + slots as usize * SLOT_SIZE;
    (raw + 4095) & !4095
}

/// Total segment length for the given geometry.
pub const fn segment_len(slots: u32, capacity: u64) -> u64 {
    data_offset(slots) as u64 + capacity
}

/// Round `n` up to [`RECORD_ALIGN`].
pub const fn align_record(n: u64) -> u64 {
    (n + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// The default largest payload (message bytes) for a data region of `capacity` bytes: a quarter
/// of it, so the default ring takes messages of up to 1 MiB.
pub const fn default_max_record(capacity: u64) -> u64 {
    capacity / 4
}
