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
