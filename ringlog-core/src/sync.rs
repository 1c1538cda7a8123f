//! The atomics the protocol uses, from `core` normally and from `loom` under `cfg(loom)`, so
//! the same claim/commit/consume code is model-checked. Nothing else lives here.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Hint to the CPU that we are spinning (a plain `pause`), or a loom yield so models progress.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// The accesses of a Dekker pair that rests on the single total order of SeqCst accesses: each
/// of two threads stores to one word, then loads the other's, and one of them must see the
/// other's store (the drain's sleep: it sets `drain_sleeping` then loads `tail`; a producer moves
/// `tail` then loads `drain_sleeping`).
///
/// In a normal build each method is the plain atomic operation, inlined: not one instruction
/// more. Under loom, which treats a SeqCst access as AcqRel (tokio-rs/loom#180) but does model
/// SeqCst fences, a SeqCst load that follows a SeqCst store or read-modify-write on the same
/// thread is preceded by a SeqCst fence: that is the order the language promises between SeqCst
/// accesses, and only that. Weaken either access of a pair, or load before storing, and the
/// fence is gone: the loom models then find the lost wake-up.
pub(crate) trait Dekker {
    /// The word's value type.
    type Value;
    /// `load(order)`.
    fn dekker_load(&self, order: Ordering) -> Self::Value;
    /// `store(value, order)`.
    fn dekker_store(&self, value: Self::Value, order: Ordering);
    /// `swap(value, order)`.
    fn dekker_swap(&self, value: Self::Value, order: Ordering) -> Self::Value;
    /// `compare_exchange_weak(current, new, success, failure)`.
    fn dekker_compare_exchange_weak(
        &self,
        current: Self::Value,
        new: Self::Value,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self::Value, Self::Value>;
}

macro_rules! dekker {
    ($atomic:ty, $value:ty) => {
        impl Dekker for $atomic {
            type Value = $value;

            #[inline(always)]
            fn dekker_load(&self, order: Ordering) -> $value {
                seq_cst::before_load(order);
                self.load(order)
            }

            #[inline(always)]
            fn dekker_store(&self, value: $value, order: Ordering) {
                self.store(value, order);
                seq_cst::after_store(order);
            }

            #[inline(always)]
            fn dekker_swap(&self, value: $value, order: Ordering) -> $value {
                // A read-modify-write reads the latest value: no fence before it.
                let old = self.swap(value, order);
                seq_cst::after_store(order);
                old
            }

            #[inline(always)]
            fn dekker_compare_exchange_weak(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                let result = self.compare_exchange_weak(current, new, success, failure);
                if result.is_ok() {
                    seq_cst::after_store(success);
                }
                result
            }
        }
    };
}

dekker!(AtomicU32, u32);
dekker!(AtomicU64, u64);

/// Normal builds: nothing to do, the hardware orders SeqCst accesses.
#[cfg(not(loom))]
mod seq_cst {
    use super::Ordering;

    #[inline(always)]
    pub(super) fn before_load(_: Ordering) {}

    #[inline(always)]
    pub(super) fn after_store(_: Ordering) {}
}

/// Loom: a SeqCst store or read-modify-write is noted per thread; the next SeqCst load on that
/// thread is preceded by a SeqCst fence (see [`super::Dekker`]).
#[cfg(loom)]
mod seq_cst {
    use super::{fence, Ordering};
    use std::cell::Cell;

    loom::thread_local! {
        static STORED: Cell<bool> = Cell::new(false);
    }

    pub(super) fn before_load(order: Ordering) {
        if order == Ordering::SeqCst && STORED.with(|s| s.replace(false)) {
            fence(Ordering::SeqCst);
        }
    }

    pub(super) fn after_store(order: Ordering) {
        if order == Ordering::SeqCst {
            STORED.with(|s| s.set(true));
        }
    }
}
