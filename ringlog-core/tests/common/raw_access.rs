//! `RawAccess`: the ring's `unsafe` consumer-side calls at positions a test works out itself.
//! Shared by the heap tests (through `common`) and the loom models (`loom.rs` includes this file
//! by path); each includer brings `AtomicU32` and `AtomicU64` into scope (std's or loom's, the
//! ones its `Memory` hands out).

use super::{AtomicU32, AtomicU64};
use ringlog_core::memory::Memory;
use ringlog_core::{Next, Ring};

/// The raw calls these tests make at positions they work out themselves, where the library's
/// `Consumer` would keep positions to itself. Each caller is its ring's only consumer, reads
/// only at frame boundaries it reached by reading, releases only what it read, and scribbles
/// over words only while no producer is writing them: the `# Safety` terms of the `unsafe`
/// functions wrapped here.
pub trait RawAccess<M: Memory> {
    fn next_at(&self, pos: u64, tail_cache: &mut u64) -> Next;
    fn read_at(&self, pos: u64, offset: usize, dst: &mut [u8]);
    fn release_at(&self, from: u64, to: u64) -> bool;
    fn unwritten_claim_end_at(&self, pos: u64, tail: u64) -> u64;
    fn raw_memory(&self) -> &M;
    fn word_at(&self, offset: usize) -> &AtomicU64;
    fn word32_at(&self, offset: usize) -> &AtomicU32;
}

impl<M: Memory> RawAccess<M> for Ring<M> {
    fn next_at(&self, pos: u64, tail_cache: &mut u64) -> Next {
        // SAFETY: see the trait's docs.
        unsafe { self.next(pos, tail_cache) }
    }
    fn read_at(&self, pos: u64, offset: usize, dst: &mut [u8]) {
        // SAFETY: see the trait's docs.
        unsafe { self.read_payload(pos, offset, dst) }
    }
    fn release_at(&self, from: u64, to: u64) -> bool {
        // SAFETY: see the trait's docs.
        unsafe { self.release(from, to) }
    }
    fn unwritten_claim_end_at(&self, pos: u64, tail: u64) -> u64 {
        // SAFETY: see the trait's docs.
        unsafe { self.unwritten_claim_end(pos, tail) }
    }
    fn raw_memory(&self) -> &M {
        // SAFETY: see the trait's docs.
        unsafe { self.memory() }
    }
    fn word_at(&self, offset: usize) -> &AtomicU64 {
        self.raw_memory().u64_at(offset)
    }
    fn word32_at(&self, offset: usize) -> &AtomicU32 {
        self.raw_memory().u32_at(offset)
    }
}
