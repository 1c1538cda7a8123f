//! Surviving `fork()`. A child inherits the mapping (good: it keeps logging into the same ring)
//! but also the parent's open file descriptions, whose OFD locks say "the parent is alive".
//! If the child kept them open, a parent that died mid-claim would look alive for as long as the
//! child lives, and the drain would wait on it. So a `pthread_atfork` child handler bumps a
//! generation counter (the hot path compares it with one relaxed load, no `getpid()` syscall)
//! and closes every registered lock descriptor (`close` is async-signal-safe); the child then
//! attaches afresh, with its own pid, slots and locks, on its next write. The table holds every
//! lock descriptor the process has open, however many writers it opened: it grows in blocks.
//!
//! A descriptor is registered right after it is opened, and a `fork()` must never fall in
//! between: its child would hold a description the table does not name, and with it, the
//! locks the parent takes through it later. So every change to a process's lock descriptors
//! runs in a [`without_fork`] section, and the prepare handler waits until none is in progress
//! (sections start again once the fork is done). The gate is a counter, not a mutex: a child
//! resets it, and a mutex a fork copied while locked would stay locked in the child. This
//! module never runs on the steady write path: a section is the open-once (or once after each
//! fork) path.

use ringlog_core::fault::{self, Point};
use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// Entries per block of the lock-descriptor table.
const BLOCK: usize = 64;

/// The lock descriptors a child must close: a chain of blocks, the first static, the others
/// added when every entry is taken (by `register`, in a [`without_fork`] section, where
/// allocating is fine) and kept for the life of the process, their entries reused. The child
/// handler walks the chain without allocating: loads and `close` only.
struct Block {
    /// Registered descriptors; -1 for a free entry.
    fds: [AtomicI32; BLOCK],
    /// The next block, null at the end of the chain.
    next: AtomicPtr<Block>,
}

impl Block {
    const fn new() -> Block {
        Block {
            fds: [const { AtomicI32::new(-1) }; BLOCK],
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The block after this one, if any.
    fn next(&self) -> Option<&'static Block> {
        // Acquire: pairs with the Release of the CAS that linked it in `next_or_grow`: the
        // block's initialised entries are visible before its address is.
        let next = self.next.load(Ordering::Acquire);
        // SAFETY: a non-null `next` was leaked from a `Box` by `next_or_grow`, never freed.
        (!next.is_null()).then(|| unsafe { &*next })
    }

    /// The block after this one, linked in first if there is none (by this thread or,
    /// racing, another one).
    fn next_or_grow(&self) -> &'static Block {
        if let Some(next) = self.next() {
            return next;
        }
        let fresh = Box::into_raw(Box::new(Block::new()));
        // Release: publishes the fresh block's entries with its address; Acquire on failure:
        // the winner's block, as in `next`.
        match self.next.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: leaked just above and now linked: it lives for the rest of the process.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` was never shared (our CAS failed); `winner` is a linked
                // block, leaked from a `Box` and never freed.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*winner
                }
            }
        }
    }
}

static LOCK_FDS: Block = Block::new();

/// [`without_fork`] sections in progress (low half) and forks waiting to start (high half).
/// A fork waits until no section is in progress; no section starts while a fork waits.
static GATE: AtomicU64 = AtomicU64::new(0);
const ONE_SECTION: u64 = 1;
const ONE_FORK: u64 = 1 << 32;
const SECTIONS: u64 = ONE_FORK - 1;

thread_local! {
    /// True while this thread runs a [`without_fork`] section: a fork from a signal handler
    /// that interrupted it must not wait for it (it would wait for itself forever). That fork
    /// is the one this gate cannot order: its child may inherit the descriptor being opened.
    static IN_SECTION: Cell<bool> = const { Cell::new(false) };
}

/// The sections the forking thread itself is in the middle of (0 or 1).
fn own_sections() -> u64 {
    IN_SECTION.with(Cell::get) as u64
}

extern "C" fn before_fork() {
    let own = own_sections();
    // Acquire (here and in the loop): pairs with the Release in `without_fork`'s exit; the
    // descriptors a finished section opened are in the table before the fork copies it.
    let gate = GATE.fetch_add(ONE_FORK, Ordering::Acquire) + ONE_FORK;
    if gate & SECTIONS != own {
        fault::hit(Point::ForkWaitsForOpen);
    }
    // Bounded by the sections in progress: each is an `open` and a few atomics (no new one
    // starts now).
    while GATE.load(Ordering::Acquire) & SECTIONS != own {
        std::thread::yield_now();
    }
}

extern "C" fn after_fork_in_parent() {
    // Release (a write lock's): pairs with the Acquire CAS that starts a section; lets waiting
    // sections start.
    GATE.fetch_sub(ONE_FORK, Ordering::Release);
}

extern "C" fn after_fork_in_child() {
    // Relaxed: the child is single-threaded here; later threads are spawned after it (spawn
    // synchronises). Only the forking thread exists: no fork waits, and only its own section
    // (if a signal handler forked in it) is in progress.
    GATE.store(own_sections(), Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Relaxed);
    let mut block = Some(&LOCK_FDS);
    while let Some(b) = block {
        for entry in &b.fds {
            let fd = entry.swap(-1, Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: `fd` was registered by `register` and is owned by the lock table; in
                // the child it is a copy of the parent's descriptor that nobody else uses.
                unsafe { libc::close(fd) };
            }
        }
        block = b.next();
    }
}

/// The current fork generation: changes in a child after every `fork()`.
#[inline]
pub fn generation() -> u64 {
    // Relaxed: a process reads its own counter; the child's bump happened before any of its
    // threads could run.
    GENERATION.load(Ordering::Relaxed)
}

/// Installs the fork handlers once per process.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registers handlers that only touch atomics and thread-locals without
        // destructors, call the fault hook (a test's), `sched_yield` and `close`. The child
        // handler is async-signal-safe, as required.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
    });
}

/// Runs `f` with no `fork()` starting meanwhile (one waits for it to end): for opening a lock
/// descriptor and registering it, publishing it, or unregistering and closing it, as one step
/// a child cannot see half done. Not for the steady path: it waits while a fork is under way.
///
/// A reader-writer lock in effect, sections the readers and forks the writers, over one
/// counter a child can reset.
pub fn without_fork<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the section however `f` ends: a section left counted would hang every later fork.
    struct Section {
        was_in: bool,
    }
    impl Drop for Section {
        fn drop(&mut self) {
            IN_SECTION.with(|s| s.set(self.was_in));
            // SYNC POINT: Release pairs with the Acquire loads in `before_fork`: what the
            // section did to the table happens-before the fork that waited for it.
            GATE.fetch_sub(ONE_SECTION, Ordering::Release);
        }
    }
    // Relaxed: a guess for the CAS.
    let mut gate = GATE.load(Ordering::Relaxed);
    loop {
        if gate >= ONE_FORK {
            // A fork waits for the sections in progress, or is under way: let it be done.
            std::thread::yield_now();
            gate = GATE.load(Ordering::Relaxed);
            continue;
        }
        // Sections and forks exclude each other by being read-modify-writes of one word:
        // either this section counts before a fork looks (and the fork waits), or the fork's
        // mark makes this CAS fail. Acquire (a read lock's): the section's work stays after
        // it, and after the end of the fork that came before (Release in the parent handler).
        match GATE.compare_exchange_weak(
            gate,
            gate + ONE_SECTION,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(now) => gate = now,
        }
    }
    let _section = Section {
        was_in: IN_SECTION.with(|s| s.replace(true)),
    };
    f()
}

/// Registers a lock descriptor to be closed in children; returns its index in the table (which
/// grows as needed). Call it in the [`without_fork`] section that opened `fd`.
pub fn register(fd: RawFd) -> usize {
    let mut block = &LOCK_FDS;
    let mut base = 0;
    loop {
        // Relaxed: the table is only read by the child handler, in a single-threaded child
        // (the fork ordered after this section by the gate), and by `unregister` of the same
        // index.
        let free = block.fds.iter().position(|entry| {
            entry
                .compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = free {
            return base + i;
        }
        block = block.next_or_grow();
        base += BLOCK;
    }
}

/// Removes a registration made by [`register`] (same generation only). Call it in the
/// [`without_fork`] section that closes `fd`.
pub fn unregister(index: usize, fd: RawFd) {
    let mut block = Some(&LOCK_FDS);
    for _ in 0..index / BLOCK {
        block = block.and_then(Block::next);
    }
    if let Some(b) = block {
        // Relaxed: as in `register`.
        let _ = b.fds[index % BLOCK].compare_exchange(fd, -1, Ordering::Relaxed, Ordering::Relaxed);
    }
}
