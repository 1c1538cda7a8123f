//! The consumer's fast path for the raw format: runs of committed data records copied as their
//! messages (payload after the target), each ended by a newline unless it ends with one, with
//! one loop iteration per record and no token per record. It takes exactly the frames
//! [`Ring::next`] would return as [`Next::Record`](super::Next::Record) and stops at the first
//! other one (empty, pending, padding, corrupt), which the caller then reads frame by frame.
//!
//! Where the region is plain memory ([`Memory::raw_range`]), the data region's bounds are
//! checked once per run and each frame is checked to lie inside it (its span within the room
//! left before the region's end), so the accesses inside a frame need no check of their own.
//! Elsewhere (loom) the fast path takes nothing and every frame goes through [`Ring::next`].

use super::{Ring, CACHE_LINE, CONSUMER_PREFETCH_DISTANCE};
use crate::frame::{self, check_word, Kind, Word0, CHECK_WORD, FRAME_HEADER_SIZE};
use crate::layout::RECORD_ALIGN;
use crate::memory::Memory;
// std's atomics, not `crate::sync`'s: these are formed over plain memory with `from_ptr`, which
// only a region that hands out pointers allows (never loom's).
use std::sync::atomic::{AtomicU64, Ordering};

/// Where [`Ring::append_messages`] stops, besides at a frame that is not a committed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// The output is not taken past this many bytes: the run stops before a record that does
    /// not fit (the caller decides about it).
    pub out_len: usize,
    /// Messages this long or longer are left to the caller (to write them in place).
    pub message_below: usize,
    /// No record is started once this many bytes lie between the ring's released head and the
    /// read position.
    pub unreleased_below: u64,
}

/// A committed data record's message, checked.
struct Message {
    /// Its first byte.
    start: *const u8,
    /// Bytes.
    len: usize,
    /// Bytes it adds to the output (a newline unless it ends with one).
    out_len: usize,
    /// Bytes from its frame to the next.
    span: u64,
}

impl<M: Memory> Ring<M> {
    /// Appends the messages of the committed data records from `from` on to `out` (the raw
    /// format) until [`MessageLimits`] or a frame that is not a committed data record stops it.
    /// Returns the position after the last record taken and how many were taken. `released` is
    /// the ring's head; `tail_cache` as in [`Ring::next`].
    /// [`crate::Consumer::append_messages`] is the safe way.
    ///
    /// Not inlined: on its own, the loop keeps its values in registers (inlined into the
    /// drain's pass it spilled them to the stack on every record).
    ///
    /// # Safety
    /// As [`Ring::next`] at `from`: the caller is the ring's only consumer and `from` is a frame
    /// boundary it reached from the ring's head through frames it read.
    #[inline(never)]
    pub unsafe fn append_messages(
        &self,
        released: u64,
        from: u64,
        tail_cache: &mut u64,
        out: &mut Vec<u8>,
        limits: MessageLimits,
    ) -> (u64, u64) {
        let capacity = self.capacity as usize;
        let Some(region) = self.mem.raw_range(self.data, capacity) else {
            return (from, 0);
        };
        if from % RECORD_ALIGN != 0 {
            return (from, 0);
        }
        let mut pos = from;
        let mut records = 0;
        // The next line to prefetch (see `prefetch_for_consumer`): one prefetch per line read.
        let mut ahead = (from + CONSUMER_PREFETCH_DISTANCE) & !(CACHE_LINE - 1);
        while pos - released < limits.unreleased_below {
            if pos >= *tail_cache && !self.refresh_tail(pos, tail_cache) {
                break;
            }
            // SAFETY: `region` is the data region, `pos` an aligned frame boundary the caller
            // reached by reading (its contract), the frames up to it checked to lie inside.
            let Some(m) = (unsafe { self.message_at(region, pos, *tail_cache) }) else {
                break;
            };
            if m.len >= limits.message_below || out.len() + m.out_len > limits.out_len {
                break;
            }
            // SAFETY: the record is committed (`message_at` Acquire-loaded its length) and not
            // released, so nobody writes it until we do; `message_at` checked it lies inside
            // the region.
            unsafe { copy_message(&m, out) };
            pos += m.span;
            records += 1;
            let until = (pos + CONSUMER_PREFETCH_DISTANCE).min(*tail_cache);
            while ahead < until {
                self.mem
                    .prefetch_for_read(self.data + (ahead & self.mask) as usize);
                ahead += CACHE_LINE;
            }
        }
        (pos, records)
    }

    /// Loads the tail when the cached one is not past `pos`; true if there is something at
    /// `pos` (the tail is past it, and plausible: anything else is for [`Ring::next`] to say).
    #[inline(always)]
    fn refresh_tail(&self, pos: u64, tail_cache: &mut u64) -> bool {
        let tail = self.tail();
        if !self.tail_plausible(pos, tail) {
            return false;
        }
        *tail_cache = tail;
        tail > pos
    }

    /// The message of the frame at `pos`, if it is a committed data record that [`Ring::next`]
    /// would accept, with the same checks.
    ///
    /// # Safety
    /// `region` points at the data region; `pos` is 8-byte aligned and, as in [`Ring::next`],
    /// a frame boundary the ring's only consumer reached by reading.
    #[inline(always)]
    unsafe fn message_at(&self, region: *const u8, pos: u64, tail: u64) -> Option<Message> {
        let index = (pos & self.mask) as usize;
        // At `capacity - 8` only an 8-byte padding can start, with no check word: `next`'s.
        if index as u64 == self.capacity - 8 {
            return None;
        }
        // SAFETY: `index` is 8-byte aligned (so is the page-aligned region) and at most
        // `capacity - 16` (checked above), so words 0 and 1 lie inside the region; the region
        // lives as long as `self`, and a frame start's first two words are only ever accessed
        // atomically.
        let (word0, check) = unsafe {
            let at = region.add(index).cast_mut().cast::<u64>();
            (
                AtomicU64::from_ptr(at),
                AtomicU64::from_ptr(at.add(CHECK_WORD)),
            )
        };
        // SYNC POINT: Acquire pairs with the producer's Release of the check word (claim): this
        // lap's word 0 is visible once it is. Loaded first, as in `Ring::fresh_word0`.
        if check.load(Ordering::Acquire) != check_word(pos, self.key) {
            return None;
        }
        // SYNC POINT: Acquire pairs with the producers' Release of word 0 (commit): the header
        // words and payload are visible once the length is.
        let w0 = Word0::decode(word0.load(Ordering::Acquire))?;
        let len = w0.len as u64;
        let span = w0.span();
        let header = FRAME_HEADER_SIZE as u64;
        if !w0.committed
            || w0.kind != Kind::Data as u8
            || w0.slot as u32 >= self.slots
            || len < header
            || len > header + self.max_record
            || span > self.capacity - index as u64
            || pos + span > tail
        {
            return None;
        }
        // SAFETY: the frame `[index, index + span)` lies inside the region (checked above) and
        // is at least a header long; word 3 is aligned like word 0 and, while the record is
        // committed and unreleased, written by nobody.
        let frame = unsafe { region.add(index) };
        // SAFETY: as above.
        let word3 =
            unsafe { AtomicU64::from_ptr(frame.add(frame::LENGTHS_OFFSET).cast_mut().cast()) };
        // Relaxed: ordered after the Acquire of word 0.
        let (payload_len, target_len, _) = frame::decode_lengths(word3.load(Ordering::Relaxed));
        if payload_len as u64 > len - header || target_len as u32 > payload_len {
            return None;
        }
        // SAFETY: the payload lies inside the frame (checked above).
        let payload = unsafe { frame.add(FRAME_HEADER_SIZE) };
        let message_len = (payload_len - target_len as u32) as usize;
        // SAFETY: the payload's last byte, inside the frame; committed, so nobody writes it.
        let ends_line =
            message_len > 0 && unsafe { payload.add(payload_len as usize - 1).read() } == b'\n';
        Some(Message {
            // SAFETY: inside the payload (`target_len <= payload_len`).
            start: unsafe { payload.add(target_len as usize) },
            len: message_len,
            out_len: message_len + usize::from(!ends_line),
            span,
        })
    }
}

/// Appends `m` (and its newline) to `out`.
///
/// # Safety
/// `m` is a committed record's message inside the ring's region that the caller has not
/// released.
#[inline(always)]
unsafe fn copy_message(m: &Message, out: &mut Vec<u8>) {
    out.reserve(m.out_len);
    let at = out.len();
    // SAFETY: `m.len` bytes of a committed, unreleased record: nobody writes them while we
    // copy; `out` has room for them (reserved above) and is local memory, so no overlap.
    unsafe { std::ptr::copy_nonoverlapping(m.start, out.as_mut_ptr().add(at), m.len) };
    // SAFETY: the copy initialised the `m.len` bytes after the old length.
    unsafe { out.set_len(at + m.len) };
    if m.out_len > m.len {
        out.push(b'\n');
    }
}
