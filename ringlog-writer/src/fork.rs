//! Surviving `fork()`. A child inherits the mapping (good: it keeps logging into the same ring)
//! but also the parent's open file descriptions, whose OFD locks say "the parent is alive".
//! If the child kept them open, a parent that died mid-claim would look alive for as long as the
//! child lives, and the drain would wait on it. So a `pthread_atfork` child handler bumps a
//! generation counter (the hot path compares it with one relaxed load, no `getpid()` syscall)
//! and closes every registered lock descriptor (`close` is async-signal-safe); the child then
//! attaches afresh, with its own pid, slots and locks, on its next write.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
const TABLE: usize = 64;
static LOCK_FDS: [AtomicI32; TABLE] = [const { AtomicI32::new(-1) }; TABLE];
static INSTALL: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Relaxed: the child is single-threaded here; later threads are spawned after it (spawn
    // synchronises).
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for slot in &LOCK_FDS {
        let fd = slot.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: `fd` was registered by `register` and is owned by the lock table; in the
            // child it is a copy of the parent's descriptor that nobody else uses.
            unsafe { libc::close(fd) };
        }
    }
}

/// The current fork generation: changes in a child after every `fork()`.
#[inline]
pub fn generation() -> u64 {
    // Relaxed: a process reads its own counter; the child's bump happened before any of its
    // threads could run.
    GENERATION.load(Ordering::Relaxed)
}

/// Installs the child handler once per process.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registers a handler that only touches atomics and calls `close`, both
        // async-signal-safe as required for atfork child handlers.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// Registers a lock descriptor to be closed in children. Returns its table index, or `None`
/// if the table is full (the caller then closes it itself after a fork).
pub fn register(fd: RawFd) -> Option<usize> {
    LOCK_FDS.iter().position(|slot| {
        // Relaxed: the table is only read by the child handler, in a single-threaded child.
        slot.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Removes a registration made by [`register`] (same generation only).
pub fn unregister(index: usize, fd: RawFd) {
    // Relaxed: as in `register`.
    let _ = LOCK_FDS[index].compare_exchange(fd, -1, Ordering::Relaxed, Ordering::Relaxed);
}
