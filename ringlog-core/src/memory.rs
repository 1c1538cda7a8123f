//! Where a ring's bytes live. The protocol in [`crate::ring`] is written against [`Memory`],
//! so one implementation runs over a shared mapping in production ([`MappedMemory`]), over a
//! heap buffer in unit tests and property tests ([`HeapMemory`]), and over loom atomics in model
//! checks (`LoomMemory`, under `cfg(loom)`).
//!
//! This module never forms `&[u8]` or `&mut [u8]` over the region: other processes write it.
//! Words are reached as atomics (`AtomicU64::from_ptr`), bytes through raw-pointer copies.

use crate::sync::{AtomicU32, AtomicU64};

/// A contiguous, 8-byte aligned, zero-initialised region shared with other threads or processes.
///
/// # Safety
/// Implementors guarantee that `u64_at`/`u32_at` return atomics that alias exactly the bytes at
/// `offset..offset+8` / `offset..offset+4` for the whole lifetime of `self`, and that the copy
/// functions touch exactly the bytes they are given. All functions panic on an out-of-bounds or
/// misaligned offset rather than touch memory outside the region.
pub unsafe trait Memory {
    /// Length of the region in bytes.
    fn len(&self) -> usize;

    /// True for an empty region.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A raw pointer to `offset..offset+len`, for handing the bytes to the kernel (`writev`)
    /// without copying them; `None` where the region is not plain memory (loom). Forming the
    /// pointer is safe; reading through it is the caller's `unsafe` business, under the same
    /// contract as [`Memory::copy_out`].
    fn raw_range(&self, offset: usize, len: usize) -> Option<*const u8> {
        let _ = (offset, len);
        None
    }

    /// Hints the CPU to fetch the cache line at `offset` for writing; no effect on what any
    /// access returns, and a no-op where there is no such hint (or no plain memory).
    #[inline]
    fn prefetch_for_write(&self, offset: usize) {
        let _ = offset;
    }

    /// Hints the CPU to fetch the cache line at `offset` for reading; no effect on what any
    /// access returns, and a no-op where there is no such hint (or no plain memory).
    #[inline]
    fn prefetch_for_read(&self, offset: usize) {
        let _ = offset;
    }

    /// The 64-bit word at `offset` (8-byte aligned).
    fn u64_at(&self, offset: usize) -> &AtomicU64;

    /// The 64-bit words at `offset` and `offset + 8` (8-byte aligned): a frame's first word and
    /// its check word, with one bounds check where the region can make one for both.
    #[inline]
    fn u64_pair_at(&self, offset: usize) -> (&AtomicU64, &AtomicU64) {
        (self.u64_at(offset), self.u64_at(offset + 8))
    }

    /// The 32-bit word at `offset` (4-byte aligned). Futex words are 32-bit.
    fn u32_at(&self, offset: usize) -> &AtomicU32;

    /// Copies `src` into the region at `offset`, non-atomically.
    ///
    /// # Safety
    /// No other thread or process may access `offset..offset+src.len()` concurrently: the caller
    /// owns that range (a claim it made, not yet committed).
    unsafe fn copy_in(&self, offset: usize, src: &[u8]);

    /// Copies `dst.len()` bytes of the region at `offset` into `dst`, non-atomically.
    ///
    /// # Safety
    /// No other thread or process may write the range concurrently: it was committed with
    /// Release and the caller loaded the commit with Acquire.
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]);

    /// As [`Memory::copy_out`], into uninitialised memory (e.g. a `Vec`'s spare capacity), so
    /// the destination need not be zero-filled first. Initialises all of `dst`.
    ///
    /// # Safety
    /// As for [`Memory::copy_out`].
    unsafe fn copy_out_uninit(&self, offset: usize, dst: &mut [core::mem::MaybeUninit<u8>]);
}

#[cfg(not(loom))]
pub use pointer::{HeapMemory, MappedMemory};

#[cfg(not(loom))]
mod pointer {
    use super::Memory;
    use core::sync::atomic::{AtomicU32, AtomicU64};
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::ptr::NonNull;

    #[inline(always)]
    fn check(len: usize, offset: usize, n: usize, align: usize) {
        assert!(
            offset % align == 0 && offset.checked_add(n).is_some_and(|end| end <= len),
            "ring memory access out of bounds: {n} bytes at {offset} of {len}"
        );
    }

    macro_rules! pointer_memory {
        ($ty:ty) => {
            // SAFETY: `base()` points at `len()` bytes, page aligned, valid and unmoved for the
            // lifetime of `self` (a mapping or an allocation `self` owns); every access below is
            // bounds- and alignment-checked before the pointer is formed.
            unsafe impl Memory for $ty {
                #[inline]
                fn len(&self) -> usize {
                    self.len
                }

                #[inline]
                fn raw_range(&self, offset: usize, len: usize) -> Option<*const u8> {
                    check(self.len, offset, len, 1);
                    // SAFETY: in bounds (checked), so the offset pointer stays in the allocation.
                    Some(unsafe { self.base().add(offset) }.cast_const())
                }

                #[inline]
                fn prefetch_for_write(&self, offset: usize) {
                    #[cfg(target_arch = "x86_64")]
                    if offset < self.len {
                        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
                        // SAFETY: a prefetch is only a hint: it never faults and changes no
                        // memory; the address is in bounds (checked) of our region anyway.
                        unsafe { _mm_prefetch::<_MM_HINT_ET0>(self.base().add(offset).cast()) };
                    }
                }

                #[inline]
                fn prefetch_for_read(&self, offset: usize) {
                    #[cfg(target_arch = "x86_64")]
                    if offset < self.len {
                        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                        // SAFETY: as in `prefetch_for_write`.
                        unsafe { _mm_prefetch::<_MM_HINT_T0>(self.base().add(offset).cast()) };
                    }
                }

                #[inline(always)]
                fn u64_at(&self, offset: usize) -> &AtomicU64 {
                    check(self.len, offset, 8, 8);
                    // SAFETY: in bounds and 8-aligned (checked); the region lives as long as
                    // `&self`; every process accesses this word only atomically while shared.
                    unsafe { AtomicU64::from_ptr(self.base().add(offset).cast()) }
                }

                #[inline]
                fn u64_pair_at(&self, offset: usize) -> (&AtomicU64, &AtomicU64) {
                    check(self.len, offset, 16, 8);
                    // SAFETY: both words in bounds and 8-aligned (checked); as in `u64_at`.
                    unsafe {
                        let first = self.base().add(offset).cast::<u64>();
                        (
                            AtomicU64::from_ptr(first),
                            AtomicU64::from_ptr(first.add(1)),
                        )
                    }
                }

                #[inline]
                fn u32_at(&self, offset: usize) -> &AtomicU32 {
                    check(self.len, offset, 4, 4);
                    // SAFETY: in bounds and 4-aligned (checked); as for `u64_at`.
                    unsafe { AtomicU32::from_ptr(self.base().add(offset).cast()) }
                }

                #[inline]
                unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
                    check(self.len, offset, src.len(), 1);
                    // SAFETY: in bounds (checked); the caller owns the destination range, and
                    // `src` is local memory, so the two cannot overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            src.as_ptr(),
                            self.base().add(offset),
                            src.len(),
                        )
                    }
                }

                #[inline]
                unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
                    check(self.len, offset, dst.len(), 1);
                    // SAFETY: in bounds (checked); nobody writes the source range (caller's
                    // contract); `dst` is local memory.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.base().add(offset),
                            dst.as_mut_ptr(),
                            dst.len(),
                        )
                    }
                }

                #[inline]
                unsafe fn copy_out_uninit(
                    &self,
                    offset: usize,
                    dst: &mut [core::mem::MaybeUninit<u8>],
                ) {
                    check(self.len, offset, dst.len(), 1);
                    // SAFETY: in bounds (checked); nobody writes the source range (caller's
                    // contract); `dst` is local memory and `MaybeUninit<u8>` has u8's layout.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.base().add(offset),
                            dst.as_mut_ptr().cast::<u8>(),
                            dst.len(),
                        )
                    }
                }
            }
        };
    }

    /// A segment file mapped `MAP_SHARED` (the production backing).
    #[derive(Debug)]
    pub struct MappedMemory {
        map: memmap2::MmapRaw,
        len: usize,
    }

    impl MappedMemory {
        /// Wraps a shared mapping.
        pub fn new(map: memmap2::MmapRaw) -> MappedMemory {
            let len = map.len();
            MappedMemory { map, len }
        }

        #[inline]
        fn base(&self) -> *mut u8 {
            self.map.as_mut_ptr()
        }

        /// Faults every page of the mapping in now (`MADV_POPULATE_WRITE`), so later accesses
        /// take no page faults. Best effort: kernels before 5.14 lack it, and then the pages
        /// fault in on first touch as usual.
        pub fn prefault(&self) {
            let _ = self.map.advise(memmap2::Advice::PopulateWrite);
        }
    }

    pointer_memory!(MappedMemory);

    /// A zeroed, page-aligned heap buffer: the same protocol, in one process, for tests.
    #[derive(Debug)]
    pub struct HeapMemory {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: the buffer is only reached through atomics and the `Memory` copy contracts, which
    // make cross-thread access well-defined, exactly as for a shared mapping.
    unsafe impl Send for HeapMemory {}
    // SAFETY: as above.
    unsafe impl Sync for HeapMemory {}

    impl HeapMemory {
        /// Allocates `len` zeroed bytes (rounded up to 8).
        pub fn new(len: usize) -> HeapMemory {
            let len = len.max(8).next_multiple_of(8);
            let layout = Layout::from_size_align(len, 4096).expect("heap ring layout");
            // SAFETY: `layout` has non-zero size.
            let ptr = unsafe { alloc_zeroed(layout) };
            let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            HeapMemory { ptr, len }
        }

        #[inline]
        fn base(&self) -> *mut u8 {
            self.ptr.as_ptr()
        }
    }

    impl Drop for HeapMemory {
        fn drop(&mut self) {
            let layout = Layout::from_size_align(self.len, 4096).expect("heap ring layout");
            // SAFETY: allocated in `new` with this very layout, freed once.
            unsafe { dealloc(self.ptr.as_ptr(), layout) }
        }
    }

    pointer_memory!(HeapMemory);
}

#[cfg(loom)]
pub use model::LoomMemory;

#[cfg(loom)]
mod model {
    use super::Memory;
    use crate::sync::{AtomicU32, AtomicU64, Ordering};

    /// Loom-tracked words: byte copies become relaxed accesses of the words they cover (one
    /// store for a whole word, a load and a store for part of one), so loom explores the
    /// interleavings of payload copies against claims and commits. Word, not byte, granularity
    /// keeps the number of loom operations per copy (each a scheduling point) small; frames are
    /// 8-byte aligned, so no two owners ever share a word and the read-modify-write of a partial
    /// word cannot lose another owner's bytes.
    #[derive(Debug)]
    pub struct LoomMemory {
        words: Vec<AtomicU64>,
        halves: Vec<AtomicU32>,
    }

    impl LoomMemory {
        /// `len` zeroed bytes. 32-bit words live apart from 64-bit ones (loom cannot alias
        /// them); the protocol never reaches one location at both widths.
        pub fn new(len: usize) -> LoomMemory {
            let len = len.next_multiple_of(8);
            LoomMemory {
                words: (0..len / 8).map(|_| AtomicU64::new(0)).collect(),
                halves: (0..len / 4).map(|_| AtomicU32::new(0)).collect(),
            }
        }

        /// Calls `f(i, k, word, b)` for each word that `offset..offset + n` touches: bytes
        /// `i..i + k` of the caller's buffer are bytes `b..b + k` of `word`.
        fn word_op(
            &self,
            offset: usize,
            n: usize,
            mut f: impl FnMut(usize, usize, &AtomicU64, usize),
        ) {
            assert!(
                offset
                    .checked_add(n)
                    .is_some_and(|end| end <= self.words.len() * 8),
                "loom memory out of bounds"
            );
            let mut i = 0;
            while i < n {
                let at = offset + i;
                let b = at % 8;
                let k = (8 - b).min(n - i);
                f(i, k, &self.words[at / 8], b);
                i += k;
            }
        }
    }

    /// Mask of bytes `b..b + k` of a little-endian word.
    fn mask(b: usize, k: usize) -> u64 {
        if k == 8 {
            u64::MAX
        } else {
            ((1u64 << (8 * k)) - 1) << (8 * b)
        }
    }

    // SAFETY: bounds are checked by indexing; every location is an atomic.
    unsafe impl Memory for LoomMemory {
        fn len(&self) -> usize {
            self.words.len() * 8
        }
        fn u64_at(&self, offset: usize) -> &AtomicU64 {
            assert!(offset % 8 == 0);
            &self.words[offset / 8]
        }
        fn u32_at(&self, offset: usize) -> &AtomicU32 {
            assert!(offset % 4 == 0);
            &self.halves[offset / 4]
        }
        // Relaxed in the copies: they stand for the real mapping's plain byte copies, which the
        // protocol orders through the ring's own words (loom checks those orderings).
        unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
            self.word_op(offset, src.len(), |i, k, w, b| {
                let mut bytes = [0u8; 8];
                bytes[b..b + k].copy_from_slice(&src[i..i + k]);
                let value = u64::from_le_bytes(bytes);
                let new = if k == 8 {
                    value
                } else {
                    (w.load(Ordering::Relaxed) & !mask(b, k)) | value
                };
                w.store(new, Ordering::Relaxed);
            });
        }
        unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
            self.word_op(offset, dst.len(), |i, k, w, b| {
                let bytes = w.load(Ordering::Relaxed).to_le_bytes();
                dst[i..i + k].copy_from_slice(&bytes[b..b + k]);
            });
        }
        unsafe fn copy_out_uninit(&self, offset: usize, dst: &mut [core::mem::MaybeUninit<u8>]) {
            self.word_op(offset, dst.len(), |i, k, w, b| {
                let bytes = w.load(Ordering::Relaxed).to_le_bytes();
                for (d, &s) in dst[i..i + k].iter_mut().zip(&bytes[b..b + k]) {
                    d.write(s);
                }
            });
        }
    }
}
