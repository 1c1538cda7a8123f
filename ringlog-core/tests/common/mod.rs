//! Helpers shared by the heap-backed test files: building a ring, writing one record, and a
//! checking consumer. Each test file uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use ringlog_core::abandon::Liveness;
use ringlog_core::layout;
use ringlog_core::memory::HeapMemory;
use ringlog_core::{ClaimError, Geometry, Level, Next, RecordMeta, Ring, FRAME_HEADER_SIZE};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The small ring most unit tests use: 4 KiB of data, 4 registry slots.
pub const SMALL: Geometry = Geometry {
    capacity: 4096,
    max_record: 1000,
    slots: 4,
};

/// A fresh heap ring of `geometry`.
pub fn heap_ring(geometry: Geometry) -> Ring<HeapMemory> {
    let mem = HeapMemory::new(geometry.segment_len() as usize);
    Ring::create(mem, geometry, 42, 0o600).expect("valid test geometry")
}

/// Bytes from a frame's start to the next one for a payload of `payload_len` bytes.
pub fn span_of(payload_len: usize) -> u64 {
    layout::align_record((FRAME_HEADER_SIZE + payload_len) as u64)
}

/// Header fields for a plain record of `payload_len` bytes.
pub fn meta(payload_len: usize) -> RecordMeta {
    RecordMeta {
        payload_len: payload_len as u32,
        level: Level::Info,
        ..RecordMeta::default()
    }
}

/// Claims, fills and commits one record; returns its position.
pub fn write(
    ring: &Ring<HeapMemory>,
    slot: u16,
    head_cache: &AtomicU64,
    payload: &[u8],
) -> Result<u64, ClaimError> {
    let claim = ring.claim(slot, payload.len(), head_cache)?;
    let pos = claim.pos();
    ring.write_payload(&claim, 0, payload);
    let _ = ring.commit(claim, &meta(payload.len()));
    Ok(pos)
}

/// Byte offset in the segment of the data-region word at ring position `pos`.
pub fn data_word_offset(ring: &Ring<HeapMemory>, pos: u64) -> usize {
    let g = ring.geometry();
    layout::data_offset(g.slots) + (pos & (g.capacity - 1)) as usize
}

/// Stores `value` into the data-region word at ring position `pos`, as a misbehaving producer
/// would.
pub fn poke(ring: &Ring<HeapMemory>, pos: u64, value: u64) {
    ring.word_at(data_word_offset(ring, pos))
        .store(value, Ordering::Relaxed);
}

/// Stores the check word of a frame at ring position `pos` (its word 1), as a producer's claim
/// does, so that whatever word 0 holds reads as written in this lap.
pub fn poke_check(ring: &Ring<HeapMemory>, pos: u64) {
    poke(
        ring,
        pos + 8,
        ringlog_core::frame::check_word(pos, ring.frame_key()),
    );
}

/// Reads the data-region word at ring position `pos`.
pub fn peek(ring: &Ring<HeapMemory>, pos: u64) -> u64 {
    ring.word_at(data_word_offset(ring, pos))
        .load(Ordering::Relaxed)
}

/// A raw frame word 0, able to express what [`ringlog_core::frame::Word0::encode`] refuses to
/// (unknown kinds, any length).
pub fn raw_word0(len: i32, kind: u8, level: u8, slot: u16) -> u64 {
    (len as u32 as u64) | (kind as u64) << 32 | (level as u64) << 40 | (slot as u64) << 48
}

/// What the consumer found, one frame at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Record { slot: u16, payload: Vec<u8> },
    Padding { span: u64 },
}

/// Consumes everything committed at the head (stopping at `Empty` or `Pending`), releasing
/// each frame as it goes. Panics on corruption.
pub fn drain(ring: &Ring<HeapMemory>) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut head = ring.head();
    let mut tail_cache = head;
    loop {
        match ring.next_at(head, &mut tail_cache) {
            Next::Record { meta, span } => {
                let mut payload = vec![0; meta.payload_len as usize];
                ring.read_at(head, 0, &mut payload);
                out.push(Seen::Record {
                    slot: meta.slot,
                    payload,
                });
                ring.release_at(head, head + span);
                head += span;
            }
            Next::Padding { span } => {
                out.push(Seen::Padding { span });
                ring.release_at(head, head + span);
                head += span;
            }
            Next::Chunk { .. } => {
                let span = ringlog_core::chunk::CHUNK_HEADER;
                out.push(Seen::Padding { span });
                ring.release_at(head, head + span);
                head += span;
            }
            Next::Empty | Next::Pending { .. } => return out,
            Next::Corrupt(c) => panic!("corrupt frame at {head}: {c}"),
        }
    }
}

/// Only the record payloads of `seen`.
pub fn payloads(seen: &[Seen]) -> Vec<Vec<u8>> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Record { payload, .. } => Some(payload.clone()),
            Seen::Padding { .. } => None,
        })
        .collect()
}

mod raw_access;
pub use raw_access::RawAccess;

/// An owner that finishes one last act (`last_act`: commits, or writes its header) the first
/// time a verdict asks whether it is dead, and is then as `then` says: the race of a slow owner
/// that writes and exits between the drain's look at its claim and the verdict, at the worst
/// moment.
pub struct ActsThenDies<F: FnOnce(), L: Liveness> {
    pub last_act: Cell<Option<F>>,
    pub then: L,
}

impl<F: FnOnce(), L: Liveness> ActsThenDies<F, L> {
    pub fn new(last_act: F, then: L) -> Self {
        ActsThenDies {
            last_act: Cell::new(Some(last_act)),
            then,
        }
    }
}

impl<F: FnOnce(), L: Liveness> Liveness for ActsThenDies<F, L> {
    fn hold_if_dead(&self, slot: u16) -> bool {
        if let Some(act) = self.last_act.take() {
            act();
        }
        self.then.hold_if_dead(slot)
    }
    fn let_go(&self, slot: u16) {
        self.then.let_go(slot)
    }
}
