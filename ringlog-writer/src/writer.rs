//! [`Writer`]: a process's handle on one ring. Owns the mapping, the process-local head cache,
//! the descriptor whose OFD locks prove this process's producer slots alive, and the full
//! policy. Each thread that writes gets its own registry slot on first use (kept in a
//! thread-local), so the steady path is: a thread-local read, a CAS, a copy, a Release store.
//! No syscall, no lock, no allocation. A slot is given back when its thread exits or when the
//! last clone of the `Writer` is dropped, whichever comes first.

use crate::error::WriteError;
use crate::fork;
use ringlog_core::chunk::OpenChunk;
use ringlog_core::fault::{self, Point};
use ringlog_core::frame::FLAG_TICKS;
use ringlog_core::layout;
use ringlog_core::lock;
use ringlog_core::memory::MappedMemory;
use ringlog_core::{
    clock, ClaimError, Level, Location, OpenError, RecordMeta, Ring, Segment, SegmentOptions,
    SharedFutex, SlotInfo,
};
use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a producer facing a full ring waits for a drain that is not running (one that is
/// starting up, or restarting) before `Block` gives up and drops.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A producer blocked on a full ring wakes at least this often to check that a drain still
/// holds the ring (a dead drain never wakes it).
const DRAIN_CHECK_EVERY: Duration = Duration::from_millis(50);

/// Claims a producer facing a full ring retries, a spin-loop hint apart, before it sleeps on
/// the futex: a drain that keeps up frees space within microseconds, sooner than a futex sleep
/// and wake-up (two syscalls) would return.
const FULL_RETRIES_BEFORE_SLEEP: u32 = 256;

/// What a producer does when the ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Wait for the drain to free space: spin briefly, then sleep on a futex until woken. If no
    /// drain is running (dead, or not started) for [`DRAIN_GRACE`], drop and count instead of
    /// hanging the service; while it stays absent, later records on a full ring drop at once.
    /// A thread that waits behind its own uncommitted [`RecordClaim`] gets
    /// [`WriteError::WouldDeadlock`] instead of waiting forever.
    #[default]
    Block,
    /// Drop the record at once and count it; the drain writes the exact count into the log.
    Drop,
    /// Block at most this long, then drop and count.
    BlockFor(Duration),
}

/// Options for [`Writer`]; start with [`Writer::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct WriterBuilder {
    location: Location,
    options: SegmentOptions,
    policy: FullPolicy,
    drain_grace: Duration,
}

impl WriterBuilder {
    /// Opens the ring at an explicit file path instead of `/dev/shm/ringlog-<name>`.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.location = Location::Path(path.into());
        self
    }
    /// Data region size when this call creates the ring (a power of two; default 4 MiB).
    /// When the ring exists it must have this capacity.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.options.capacity = Some(bytes);
        self
    }
    /// Largest record when this call creates the ring (default a quarter of the capacity).
    pub fn max_record(mut self, bytes: u64) -> Self {
        self.options.max_record = Some(bytes);
        self
    }
    /// Whether to create the ring when it does not exist (default true: start order does not
    /// matter).
    pub fn create(mut self, create: bool) -> Self {
        self.options.create = create;
        self
    }
    /// File mode when creating (default 0o600).
    pub fn mode(mut self, mode: u32) -> Self {
        self.options.mode = mode;
        self
    }
    /// Group owner when creating (combine with `mode(0o660)`).
    pub fn group(mut self, gid: u32) -> Self {
        self.options.group = Some(gid);
        self
    }
    /// What to do when the ring is full (default [`FullPolicy::Block`]).
    pub fn full_policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// How long `Block` waits for a drain that is not running before it drops (default
    /// [`DRAIN_GRACE`]): longer where drains may take long to (re)start.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }
    /// Opens (or creates) the ring.
    pub fn open(self) -> Result<Writer, OpenError> {
        fork::install();
        let segment = Segment::open(&self.location, &self.options)?;
        let shared = Shared::new(segment, self.policy, self.drain_grace)?;
        Ok(Writer {
            shared: Arc::new(shared),
        })
    }
}

/// A handle on a ring. `Send + Sync + Clone`: share it between threads, clone it freely; it
/// keeps working in a child after `fork()`.
///
/// Each thread that writes through it holds a producer slot of the ring (the drain counts it as
/// an attached producer) until the thread exits or the last clone of this `Writer` is dropped,
/// whichever comes first: dropping the last clone gives back the slots of every thread that
/// wrote through it, and unmaps the ring.
#[derive(Clone, Debug)]
pub struct Writer {
    shared: Arc<Shared>,
}

/// A [`Writer`] that does not keep the ring open: made by [`Writer::downgrade`], it gives the
/// `Writer` back while some clone of it is still alive. For caches of open writers that must
/// not keep a writer attached after its users dropped it.
#[derive(Clone, Debug)]
pub struct WeakWriter {
    shared: Weak<Shared>,
}

impl WeakWriter {
    /// The `Writer`, if a clone of it is still alive.
    pub fn upgrade(&self) -> Option<Writer> {
        self.shared.upgrade().map(|shared| Writer { shared })
    }
}

/// Per-process state of one opened ring.
#[derive(Debug)]
struct Shared {
    segment: Segment,
    /// Cached copy of the ring's head, shared by this process's threads (see `Ring::claim`).
    head_cache: AtomicU64,
    policy: FullPolicy,
    /// Identity for the thread-local slot cache.
    id: u64,
    /// The segment file's device and inode: which `Shared`s of this process are one ring.
    file_id: (u64, u64),
    /// The lock descriptor and the fork generation it belongs to, packed as
    /// `generation << 32 | fd` so a child can swap in its own with one CAS.
    lock: AtomicU64,
    /// Table index of the registered lock fd (`u64::MAX` if not registered).
    lock_registration: AtomicU64,
    /// Slots this process owns, one bit each (OFD locks do not conflict within a process).
    owned: Box<[AtomicU64]>,
    /// Each slot's open chunk (`ringlog_core::chunk`), used by the thread that owns the slot.
    open_chunks: Box<[OpenChunk]>,
    /// Stamp records with TSC ticks (see `ringlog_core::clock::ticks_usable`).
    stamp_ticks: bool,
    /// When this process first found no drain while facing a full ring (ns), 0 while one runs.
    drain_missing_since: AtomicU64,
    /// How long `Block` waits for an absent drain.
    drain_grace: Duration,
    /// What [`Writer::stats`] sums. Reset in a child after `fork()`.
    stats: StatsBook,
}

/// The slots this process's threads attached through one [`Shared`], and the counts of those
/// they have detached (threads that exited), so [`Writer::stats`] is exact once threads are
/// done, even while their thread-local destructors still run (`thread::scope` may return
/// before those).
///
/// A seqlock: attach and detach (cold: a thread's first write, its exit) update the bitmap and
/// the retired counts inside a write section; `read` retries until it saw none. The
/// per-record counters in the slots are written by their owners outside it (monotonic).
#[derive(Debug)]
struct StatsBook {
    /// Even when no update is in progress; an updater makes it odd by CAS (so updaters also
    /// exclude each other without a mutex, which a `fork()` could leave locked).
    seq: AtomicU64,
    /// Slots attached and not yet detached, one bit each.
    counted: Box<[AtomicU64]>,
    /// Records written and dropped and time blocked by slots since detached.
    written: AtomicU64,
    dropped: AtomicU64,
    blocked_ns: AtomicU64,
}

impl StatsBook {
    fn new(slots: u32) -> StatsBook {
        StatsBook {
            seq: AtomicU64::new(0),
            counted: (0..slots.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            blocked_ns: AtomicU64::new(0),
        }
    }

    /// Forgets the parent's counts in a child after `fork()` (called before the child's first
    /// attach, while no other thread of the child uses this book).
    fn reset(&self) {
        // Relaxed: see above; the next `update`'s CAS orders these before later sections.
        for w in self.counted.iter() {
            w.store(0, Ordering::Relaxed);
        }
        for c in [&self.written, &self.dropped, &self.blocked_ns] {
            c.store(0, Ordering::Relaxed);
        }
        self.seq.store(0, Ordering::Relaxed);
    }

    /// Runs `f` as a write section.
    fn update(&self, f: impl FnOnce(&StatsBook)) {
        // Relaxed: a guess for the CAS.
        let mut seq = self.seq.load(Ordering::Relaxed);
        loop {
            if seq & 1 == 1 {
                std::hint::spin_loop();
                seq = self.seq.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: the previous section's writes happen-before ours.
            match self
                .seq
                .compare_exchange_weak(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => seq = now,
            }
        }
        // SYNC POINT: Release fence, pairs with the Acquire fence in `read`: a reader that sees
        // any write of the section below sees the odd `seq` on its re-check.
        std::sync::atomic::fence(Ordering::Release);
        f(self);
        // SYNC POINT: Release pairs with the Acquire load at the start of `read`.
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// Sets or clears `slot`'s bit (inside `update`).
    fn mark(&self, slot: u16, attached: bool) {
        let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
        // Relaxed: inside a write section.
        if attached {
            self.counted[word].fetch_or(bit, Ordering::Relaxed);
        } else {
            self.counted[word].fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// Adds a detaching slot's counts to the retired ones (inside `update`).
    fn retire(&self, info: &SlotInfo) {
        // Relaxed: inside a write section.
        let written = info.written.wrapping_sub(info.written_base);
        self.written.fetch_add(written, Ordering::Relaxed);
        let dropped = info.dropped.wrapping_sub(info.dropped_base);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        self.blocked_ns
            .fetch_add(info.blocked_ns, Ordering::Relaxed);
    }

    /// A consistent sum: retired counts plus the attached slots' current ones.
    fn read(&self, ring: &Ring<MappedMemory>) -> WriterStats {
        loop {
            // SYNC POINT: Acquire pairs with the Release store ending `update`.
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::thread::yield_now();
                continue;
            }
            // Relaxed loads: validated by the `seq` re-check below.
            let mut written = self.written.load(Ordering::Relaxed);
            let mut dropped = self.dropped.load(Ordering::Relaxed);
            let mut blocked_ns = self.blocked_ns.load(Ordering::Relaxed);
            for (w, word) in self.counted.iter().enumerate() {
                let mut bits = word.load(Ordering::Relaxed);
                while bits != 0 {
                    let slot = (w * 64) as u32 + bits.trailing_zeros();
                    bits &= bits - 1;
                    let info = ring.slot_info(slot as u16);
                    written += info.written.wrapping_sub(info.written_base);
                    dropped += info.dropped.wrapping_sub(info.dropped_base);
                    blocked_ns += info.blocked_ns;
                }
            }
            // SYNC POINT: Acquire fence, pairs with the Release fence in `update`.
            std::sync::atomic::fence(Ordering::Acquire);
            // Relaxed: ordered by the fence above.
            if self.seq.load(Ordering::Relaxed) == before {
                return WriterStats {
                    written,
                    dropped,
                    blocked: Duration::from_nanos(blocked_ns),
                };
            }
        }
    }
}

/// Counters of the records one process wrote through one opened ring: see [`Writer::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records committed to the ring.
    pub written: u64,
    /// Records the full policy dropped (the drain reports them in the log).
    pub dropped: u64,
    /// Time spent waiting for space in a full ring.
    pub blocked: Duration,
}

/// What [`Writer::put_record`] does when the ring is full.
#[derive(Clone, Copy)]
enum OnFull {
    /// Follow the writer's [`FullPolicy`].
    ApplyPolicy,
    /// Return at once: nothing written, nothing counted.
    GiveUp,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

// `Writer` is shared between threads and cloned freely: keep it so.
const _: fn() = || {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Writer>();
};

impl Shared {
    fn new(
        segment: Segment,
        policy: FullPolicy,
        drain_grace: Duration,
    ) -> Result<Shared, OpenError> {
        let slots = segment.ring().slots();
        let file_id = {
            use std::os::unix::fs::MetadataExt;
            let meta = segment.file().metadata().map_err(|e| OpenError::Io {
                ring: segment.name().to_owned(),
                context: "cannot stat",
                path: segment.path().to_owned(),
                source: e,
            })?;
            (meta.dev(), meta.ino())
        };
        let shared = Shared {
            file_id,
            head_cache: AtomicU64::new(segment.ring().head()),
            policy,
            // Relaxed: a unique number, nothing to order.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lock: AtomicU64::new(u64::MAX),
            lock_registration: AtomicU64::new(u64::MAX),
            owned: (0..slots.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            open_chunks: (0..slots).map(|_| OpenChunk::new()).collect(),
            stamp_ticks: clock::ticks_usable(),
            drain_missing_since: AtomicU64::new(0),
            drain_grace,
            stats: StatsBook::new(slots),
            segment,
        };
        shared.lock_fd()?;
        Ok(shared)
    }

    fn ring(&self) -> &Ring<MappedMemory> {
        self.segment.ring()
    }

    fn io_error(&self, context: &'static str, source: io::Error) -> OpenError {
        OpenError::Io {
            ring: self.segment.name().to_owned(),
            context,
            path: self.segment.path().to_owned(),
            source,
        }
    }

    /// This process's lock descriptor, opening a fresh one after a fork (the inherited one was
    /// closed by the fork handler, or is closed here if it could not be registered).
    fn lock_fd(&self) -> Result<RawFd, OpenError> {
        self.lock_fd_opening_with(|| self.segment.reopen_file())
    }

    /// [`Self::lock_fd`], with the open of a fresh descriptor passed in (tests order racing
    /// threads through it).
    #[inline]
    fn lock_fd_opening_with(
        &self,
        open: impl FnOnce() -> io::Result<std::fs::File>,
    ) -> Result<RawFd, OpenError> {
        let generation = fork::generation();
        // Acquire: pairs with the Release CAS in `replace_lock_fd` by another thread.
        let packed = self.lock.load(Ordering::Acquire);
        if packed != u64::MAX && packed >> 32 == generation & 0xffff_ffff {
            return Ok(packed as u32 as RawFd);
        }
        // A fork must not fall between the open and the registration (its child would keep a
        // description the table does not name, and the locks taken through it), nor between
        // the publication and the closing of what it replaces.
        fork::without_fork(|| self.replace_lock_fd(packed, generation, open))
    }

    /// Opens, registers and publishes a lock descriptor of fork generation `generation` in
    /// place of `packed` (none, or an earlier generation's), unless another thread did first.
    /// Runs in a [`fork::without_fork`] section.
    fn replace_lock_fd(
        &self,
        packed: u64,
        generation: u64,
        open: impl FnOnce() -> io::Result<std::fs::File>,
    ) -> Result<RawFd, OpenError> {
        // An inherited descriptor the fork handler did not close (it was not in its table: the
        // fork came from a signal handler that interrupted the section registering it) is
        // closed below by whichever thread replaces it, and by no other: every thread of a
        // child may get here at once. Read before our CAS, which alone may let another thread
        // store a new registration.
        // Relaxed: read only by this process after a fork (ordered by fork itself).
        let inherited_open =
            packed != u64::MAX && self.lock_registration.load(Ordering::Relaxed) == u64::MAX;
        let fd = open()
            .map_err(|e| self.io_error("cannot open for locking", e))?
            .into_raw_fd();
        fault::hit(Point::LockFdOpened);
        let reg = fork::register(fd);
        let new = (generation & 0xffff_ffff) << 32 | fd as u32 as u64;
        // Release: publishes the descriptor to other threads of this process.
        match self
            .lock
            .compare_exchange(packed, new, Ordering::Release, Ordering::Acquire)
        {
            Ok(_) => {
                if inherited_open {
                    // SAFETY: the parent's descriptor, unregistered so still open; our CAS
                    // replaced it, so no thread of this process uses it or closes it again.
                    unsafe { libc::close(packed as u32 as RawFd) };
                }
                // Relaxed: read only by this process after a fork (ordered by fork itself).
                self.lock_registration.store(reg as u64, Ordering::Relaxed);
                // The bitmap describes the parent's slots: start empty in a child.
                if packed != u64::MAX {
                    for w in self.owned.iter() {
                        // Relaxed: single-threaded right after fork in practice; a racing
                        // thread retries its slot search.
                        w.store(0, Ordering::Relaxed);
                    }
                    // The parent's statistics are not the child's.
                    self.stats.reset();
                }
                Ok(fd)
            }
            Err(winner) => {
                fork::unregister(reg, fd);
                // SAFETY: our fd lost the race and was never shared.
                unsafe { libc::close(fd) };
                Ok(winner as u32 as RawFd)
            }
        }
    }

    /// Finds and locks a free registry slot for the calling thread.
    fn attach_slot(&self, pid: u32, tid: u32) -> Result<u16, OpenError> {
        let fd = self.lock_fd()?;
        // SAFETY: `fd` stays open while `self` lives in this fork generation.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let ring = self.ring();
        let slots = ring.slots();
        let start = (pid.wrapping_mul(2654435761) ^ tid) % slots;
        for k in 0..slots {
            let i = (start + k) % slots;
            let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            // Relaxed: the bitmap only keeps this process's threads apart; the OFD lock below
            // arbitrates between processes.
            if self.owned[word].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let byte = layout::slot_lock_byte(i);
            match lock::try_lock(fd, byte) {
                Ok(true) if ring.slot_reusable(i as u16) => {
                    self.open_chunks[i as usize].forget();
                    self.stats.update(|book| {
                        ring.take_slot(i as u16, pid, tid, clock::now_ns());
                        book.mark(i as u16, true);
                    });
                    return Ok(i as u16);
                }
                Ok(true) => {
                    let _ = lock::unlock(fd, byte);
                }
                Ok(false) => {}
                Err(e) => {
                    // Relaxed: the bitmap only keeps this process's threads apart (above).
                    self.owned[word].fetch_and(!bit, Ordering::Relaxed);
                    return Err(self.io_error("cannot lock a producer slot in", e));
                }
            }
            // Relaxed: as above; the slot is not ours, another thread may try it.
            self.owned[word].fetch_and(!bit, Ordering::Relaxed);
        }
        Err(OpenError::RegistryFull {
            ring: self.segment.name().to_owned(),
            slots,
        })
    }

    /// Gives back `slot`, which the calling thread attached through this `Shared` (its
    /// thread-local entry is being dropped: the thread exits).
    fn detach_slot(&self, slot: u16) {
        // Its records keep their place: the drain never waits at the chunk of a slot let go.
        self.ring()
            .seal_own_chunk(slot, &self.open_chunks[slot as usize]);
        // Move the slot's counts (final: the caller owns the slot) to the retired ones, in the
        // same section that stops counting the slot, so `stats` sees one or the other.
        self.stats.update(|book| {
            book.retire(&self.ring().slot_info(slot));
            book.mark(slot, false);
            self.ring().detach_slot(slot);
        });
        // Acquire: as in `lock_fd`.
        let packed = self.lock.load(Ordering::Acquire);
        if packed != u64::MAX && packed >> 32 == fork::generation() & 0xffff_ffff {
            // SAFETY: current-generation descriptor, open while `self` lives.
            let fd = unsafe { BorrowedFd::borrow_raw(packed as u32 as RawFd) };
            let _ = lock::unlock(fd, layout::slot_lock_byte(slot as u32));
            let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
            // Relaxed: see `attach_slot`.
            self.owned[word].fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// True when no drain has held the ring for [`DRAIN_GRACE`] (as seen by this process).
    fn drain_gone(&self) -> bool {
        let now = clock::now_ns();
        if self.drain_alive() {
            // Relaxed: a process-local timestamp; any value is safe, only the delay varies.
            self.drain_missing_since.store(0, Ordering::Relaxed);
            return false;
        }
        let since = match self.drain_missing_since.load(Ordering::Relaxed) {
            0 => {
                self.drain_missing_since.store(now, Ordering::Relaxed);
                now
            }
            t => t,
        };
        now.saturating_sub(since) >= self.drain_grace.as_nanos() as u64
    }

    fn drain_alive(&self) -> bool {
        let Ok(fd) = self.lock_fd() else { return false };
        // SAFETY: as in `attach_slot`.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        lock::is_locked(fd, layout::DRAIN_LOCK_BYTE).unwrap_or(false)
    }

    /// See [`Writer::stats`].
    fn stats(&self) -> WriterStats {
        // Acquire: as in `lock_fd`.
        let packed = self.lock.load(Ordering::Acquire);
        if packed == u64::MAX || packed >> 32 != fork::generation() & 0xffff_ffff {
            // A child after `fork()` that has not written yet: the book still describes the
            // parent.
            return WriterStats::default();
        }
        self.stats.read(self.ring())
    }

    fn wake_drain(&self) {
        self.ring().wake_drain(&SharedFutex);
    }
}

impl Drop for Shared {
    /// The last `Writer` clone is gone, and with it every way to write through this `Shared`:
    /// the slots of all of this process's threads that wrote through it are given back at once
    /// (the threads may live on for long), and closing the lock descriptor tells the drain so.
    fn drop(&mut self) {
        let packed = *self.lock.get_mut();
        if packed != u64::MAX && packed >> 32 == fork::generation() & 0xffff_ffff {
            // Owned bits describe this generation's slots (a child clears the parent's when it
            // swaps in its own descriptor, which this generation check has seen).
            let ring = self.segment.ring();
            for (w, word) in self.owned.iter_mut().enumerate() {
                let mut bits = std::mem::take(word.get_mut());
                while bits != 0 {
                    let slot = (w * 64) as u32 + bits.trailing_zeros();
                    bits &= bits - 1;
                    // No claim of ours is open: a claim borrows a `Writer`, and none is left;
                    // so no thread uses the slot's chunk either.
                    ring.seal_own_chunk(slot as u16, &self.open_chunks[slot as usize]);
                    ring.detach_slot(slot as u16);
                }
            }
            let reg = *self.lock_registration.get_mut();
            // No fork between the two: its child would keep the description, and with it
            // the locks of the slots just given back.
            fork::without_fork(|| {
                if reg != u64::MAX {
                    fork::unregister(reg as usize, packed as u32 as RawFd);
                }
                // SAFETY: our own current-generation descriptor, closed once, here.
                unsafe { libc::close(packed as u32 as RawFd) };
            });
        }
    }
}

/// The calling thread's attachment to one ring. Weak: a thread that wrote once must not keep
/// the ring (its mapping, its lock descriptor, its slot) after the last `Writer` is dropped;
/// that drop gives back every thread's slot (see `Drop for Shared`).
struct ThreadSlot {
    shared: Weak<Shared>,
    /// `Shared::id` and `Shared::file_id`, readable after the `Shared` is gone.
    id: u64,
    file_id: (u64, u64),
    slot: u16,
    generation: u64,
    pid: u32,
    tid: u32,
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // After a fork the slot belongs to the parent; leave it alone. A `Shared` that is gone
        // gave the slot back when it went.
        if self.generation == fork::generation() {
            if let Some(shared) = self.shared.upgrade() {
                shared.detach_slot(self.slot);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Fast {
    id: u64,
    generation: u64,
    slot: u16,
    pid: u32,
    tid: u32,
}

thread_local! {
    /// The last ring this thread wrote to: the steady-path lookup, no borrow, no allocation.
    static LAST: Cell<Option<Fast>> = const { Cell::new(None) };
    /// Every ring this thread is attached to; dropping an entry detaches its slot.
    static ATTACHED: RefCell<Vec<ThreadSlot>> = const { RefCell::new(Vec::new()) };
}

impl Writer {
    /// Attaches to ring `name` (`/dev/shm/ringlog-<name>`), creating it with default options if
    /// the drain has not started yet.
    pub fn open(name: &str) -> Result<Writer, OpenError> {
        Writer::builder(name).open()
    }

    /// Options for attaching to ring `name`.
    pub fn builder(name: &str) -> WriterBuilder {
        WriterBuilder {
            location: Location::Name(name.to_owned()),
            options: SegmentOptions::default(),
            policy: FullPolicy::default(),
            drain_grace: DRAIN_GRACE,
        }
    }

    /// A handle that does not keep this writer open (see [`WeakWriter`]).
    pub fn downgrade(&self) -> WeakWriter {
        WeakWriter {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The ring's largest record (payload bytes, target included).
    pub fn max_record(&self) -> u64 {
        self.shared.ring().geometry().max_record
    }

    /// The ring's name as given (or its path).
    pub fn ring_name(&self) -> &str {
        self.shared.segment.name()
    }

    /// True while a drain holds this ring.
    pub fn drain_alive(&self) -> bool {
        self.shared.drain_alive()
    }

    /// Records written and dropped, and time spent blocked on a full ring, by **this process**
    /// through this `Writer` and its clones: the sum over the producer slots of every thread
    /// that wrote through it, including threads that have exited (exact once they are done). A
    /// thread attaches on its first write, so one that never wrote counts nothing. In a child
    /// after `fork()` the counts start at zero. A snapshot that walks this process's slots:
    /// cheap, but not meant for the per-record path.
    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }

    /// Writes one record with no level and no target: whole, or not at all.
    #[inline]
    pub fn write(&self, message: &[u8]) -> Result<(), WriteError> {
        self.write_record(Level::None, "", message)
    }

    /// Writes one record with a level and a target (module path or component; at most 65535
    /// bytes are kept).
    #[inline]
    pub fn write_record(
        &self,
        level: Level,
        target: &str,
        message: &[u8],
    ) -> Result<(), WriteError> {
        self.put_record(level, target, message, OnFull::ApplyPolicy)
            .map(|_| ())
    }

    /// Writes one record if the ring has room now. On a full ring it returns `Ok(false)` with
    /// nothing written and nothing counted, without applying the full policy: a later
    /// [`Writer::write_record`] does that (waits, or drops and counts). For callers that hold a
    /// lock on the fast path and must release it before they wait, like Python's GIL.
    #[inline]
    pub fn try_write_record(
        &self,
        level: Level,
        target: &str,
        message: &[u8],
    ) -> Result<bool, WriteError> {
        self.put_record(level, target, message, OnFull::GiveUp)
    }

    /// The steady path, spelled out (no claim guard): slot, stamp, claim, copy, commit.
    /// Returns false only when the ring was full and `on_full` said to give up.
    #[inline(always)]
    fn put_record(
        &self,
        level: Level,
        target: &str,
        message: &[u8],
        on_full: OnFull,
    ) -> Result<bool, WriteError> {
        let target = &target.as_bytes()[..target.len().min(u16::MAX as usize)];
        let me = self.thread_slot()?;
        let (timestamp_ns, flags) = self.stamp();
        let ring = self.shared.ring();
        let len = target.len() + message.len();
        let open = &self.shared.open_chunks[me.slot as usize];
        let claim = match ring.claim_in_chunk(me.slot, len, &self.shared.head_cache, open) {
            Ok(claim) => claim,
            Err(ClaimError::Full) => match on_full {
                OnFull::ApplyPolicy => self.full(me.slot, len)?,
                OnFull::GiveUp => return Ok(false),
            },
            Err(other) => return Err(self.refused(me.slot, other)),
        };
        fault::hit(Point::BeforeCopy);
        if !target.is_empty() {
            ring.write_payload(&claim, 0, target);
        }
        if fault::active() {
            // Test builds: two copies, so a test can crash the producer between them.
            let (first, rest) = message.split_at(message.len() / 2);
            ring.write_payload(&claim, target.len(), first);
            fault::hit(Point::MidCopy);
            ring.write_payload(&claim, target.len() + first.len(), rest);
        } else {
            ring.write_payload(&claim, target.len(), message);
        }
        fault::hit(Point::BeforeCommit);
        let meta = RecordMeta {
            timestamp_ns,
            pid: me.pid,
            tid: me.tid,
            level,
            payload_len: len as u32,
            target_len: target.len() as u16,
            flags,
            slot: me.slot,
        };
        if ring.commit(claim, &meta) {
            self.shared.wake_drain();
        }
        Ok(true)
    }

    /// The record stamp: TSC ticks where the kernel vouches for the TSC (~13 ns), else the
    /// wall clock (~40 ns); the drain converts ticks when it formats.
    #[inline]
    fn stamp(&self) -> (u64, u16) {
        if self.shared.stamp_ticks {
            (clock::ticks(), FLAG_TICKS)
        } else {
            (clock::now_ns(), 0)
        }
    }

    /// Reserves space for a record of up to `len` bytes, to fill in place through
    /// [`std::io::Write`] (e.g. `write!(claim, ...)`). `commit()` publishes what was written;
    /// dropping the claim aborts it (it becomes padding, never a stall).
    pub fn claim(&self, len: usize) -> Result<RecordClaim<'_>, WriteError> {
        self.claim_with(len, Level::None)
    }

    /// Reserves space for a record with `level` and `target` (written at once) and up to `len`
    /// message bytes, to fill through [`std::io::Write`]. Used by the `log` and `tracing`
    /// integrations to format straight into the ring.
    #[cfg(any(feature = "log", feature = "tracing"))]
    pub(crate) fn claim_record(
        &self,
        level: Level,
        target: &str,
        len: usize,
    ) -> Result<RecordClaim<'_>, WriteError> {
        let target = &target.as_bytes()[..target.len().min(u16::MAX as usize)];
        let mut claim = self.claim_with(target.len() + len, level)?;
        claim.put(target);
        claim.target_len = target.len() as u16;
        Ok(claim)
    }

    fn claim_with(&self, len: usize, level: Level) -> Result<RecordClaim<'_>, WriteError> {
        let me = self.thread_slot()?;
        let (timestamp_ns, flags) = self.stamp();
        let ring = self.shared.ring();
        // In the thread's chunk like any record: a claim this thread holds while it writes
        // another (which the formatting integrations never do) is its own frame before the
        // other's, committed or aborted on its own.
        let open = &self.shared.open_chunks[me.slot as usize];
        let claim = match ring.claim_in_chunk(me.slot, len, &self.shared.head_cache, open) {
            Ok(claim) => claim,
            Err(ClaimError::Full) => self.full(me.slot, len)?,
            Err(other) => return Err(self.refused(me.slot, other)),
        };
        Ok(RecordClaim {
            writer: self,
            claim: Some(claim),
            written: 0,
            target_len: 0,
            meta: RecordMeta {
                timestamp_ns,
                pid: me.pid,
                tid: me.tid,
                level,
                slot: me.slot,
                flags,
                ..Default::default()
            },
            _not_send: PhantomData,
        })
    }

    /// The error for a claim refused for another reason than a full ring. `ClaimError` is
    /// non-exhaustive: a reason this version does not know drops the record and counts it (the
    /// drain reports the count), as `FullPolicy::Drop` does.
    #[cold]
    fn refused(&self, slot: u16, refusal: ClaimError) -> WriteError {
        match refusal {
            ClaimError::TooLarge { len, max } => WriteError::TooLarge { len, max },
            _ => {
                self.shared.ring().count_drop(slot);
                WriteError::Dropped
            }
        }
    }

    /// Applies the full policy. Only reached when the ring is full.
    #[cold]
    fn full(&self, slot: u16, len: usize) -> Result<ringlog_core::Claim, WriteError> {
        let ring = self.shared.ring();
        let deadline = match self.shared.policy {
            FullPolicy::Drop => {
                ring.count_drop(slot);
                return Err(WriteError::Dropped);
            }
            FullPolicy::Block => None,
            FullPolicy::BlockFor(d) => Some(Instant::now() + d),
        };
        let started = Instant::now();
        let claimed = |c| {
            ring.count_blocked(slot, started.elapsed().as_nanos() as u64);
            Ok(c)
        };
        for _ in 0..FULL_RETRIES_BEFORE_SLEEP {
            std::hint::spin_loop();
            if let Ok(c) = ring.claim(slot, len, &self.shared.head_cache) {
                return claimed(c);
            }
        }
        let mut would_deadlock = false;
        let waited = ring.claim_waiting(&SharedFutex, slot, len, &self.shared.head_cache, || {
            if self.waits_for_itself(slot) {
                would_deadlock = true;
                return None;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) || self.shared.drain_gone() {
                return None;
            }
            // Re-check drain liveness at least every DRAIN_CHECK_EVERY.
            Some(deadline.map_or(DRAIN_CHECK_EVERY, |d| (d - now).min(DRAIN_CHECK_EVERY)))
        });
        match waited {
            Ok(c) => claimed(c),
            Err(_) => {
                ring.count_blocked(slot, started.elapsed().as_nanos() as u64);
                ring.count_drop(slot);
                Err(if would_deadlock {
                    WriteError::WouldDeadlock
                } else {
                    WriteError::Dropped
                })
            }
        }
    }

    /// True when the drain stands at a claim this thread holds (through this `Writer` or another
    /// one on the same ring): no space can come free until the thread commits or aborts it, which
    /// it cannot do while it waits here. Cold: only asked on a full ring, between naps.
    #[cold]
    fn waits_for_itself(&self, slot: u16) -> bool {
        let Some(holder) = self.shared.ring().head_held_by() else {
            return false;
        };
        if holder == slot {
            return true;
        }
        let generation = fork::generation();
        ATTACHED.with(|attached| {
            // Not borrowed here in practice (no write happens inside `thread_slot_slow`); if it
            // were, "unknown" keeps the old behaviour: wait.
            attached.try_borrow().is_ok_and(|attached| {
                attached.iter().any(|t| {
                    t.generation == generation
                        && t.slot == holder
                        && t.file_id == self.shared.file_id
                        // A dropped writer gave its slot back: someone else's now.
                        && t.shared.strong_count() > 0
                })
            })
        })
    }

    /// The calling thread's slot, attaching it on first use (or first use after a fork).
    #[inline]
    fn thread_slot(&self) -> Result<Fast, WriteError> {
        let generation = fork::generation();
        if let Some(fast) = LAST.with(Cell::get) {
            if fast.id == self.shared.id && fast.generation == generation {
                return Ok(fast);
            }
        }
        self.thread_slot_slow(generation)
    }

    #[cold]
    fn thread_slot_slow(&self, generation: u64) -> Result<Fast, WriteError> {
        ATTACHED.with(|attached| {
            let mut attached = attached.borrow_mut();
            // Entries from before a fork belong to the parent: forget them without detaching.
            // Entries of rings whose last `Writer` was dropped were detached by that drop.
            attached.retain(|t| t.generation == generation && t.shared.strong_count() > 0);
            let fast = match attached.iter().find(|t| t.id == self.shared.id) {
                Some(t) => Fast {
                    id: t.id,
                    generation,
                    slot: t.slot,
                    pid: t.pid,
                    tid: t.tid,
                },
                None => {
                    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
                    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                    let slot = self
                        .shared
                        .attach_slot(pid, tid)
                        .map_err(WriteError::Attach)?;
                    attached.push(ThreadSlot {
                        shared: Arc::downgrade(&self.shared),
                        id: self.shared.id,
                        file_id: self.shared.file_id,
                        slot,
                        generation,
                        pid,
                        tid,
                    });
                    Fast {
                        id: self.shared.id,
                        generation,
                        slot,
                        pid,
                        tid,
                    }
                }
            };
            LAST.with(|l| l.set(Some(fast)));
            Ok(fast)
        })
    }
}

/// Space reserved in the ring for one record, filled through [`std::io::Write`]. Not `Send`:
/// it belongs to the thread that claimed it. Drop without `commit` aborts.
#[must_use = "dropping a claim aborts the record"]
pub struct RecordClaim<'a> {
    writer: &'a Writer,
    claim: Option<ringlog_core::Claim>,
    written: usize,
    target_len: u16,
    meta: RecordMeta,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for RecordClaim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordClaim")
            .field("claim", &self.claim)
            .field("written", &self.written)
            .finish()
    }
}

impl RecordClaim<'_> {
    /// Bytes still free in the claim.
    pub fn remaining(&self) -> usize {
        self.claim
            .as_ref()
            .map_or(0, |c| c.capacity() - self.written)
    }

    /// Sets the record's level.
    pub fn set_level(&mut self, level: Level) {
        self.meta.level = level;
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.remaining());
        if let Some(claim) = &self.claim {
            self.writer
                .shared
                .ring()
                .write_payload(claim, self.written, &bytes[..n]);
        }
        self.written += n;
        n
    }

    /// Publishes the record (the bytes written so far).
    #[inline]
    pub fn commit(mut self) {
        if let Some(claim) = self.claim.take() {
            fault::hit(Point::BeforeCommit);
            self.meta.payload_len = self.written as u32;
            self.meta.target_len = self.target_len;
            if self.writer.shared.ring().commit(claim, &self.meta) {
                self.writer.shared.wake_drain();
            }
        }
    }
}

impl io::Write for RecordClaim<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.put(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordClaim<'_> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            self.writer.shared.ring().abort(claim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_this_writers_records_in_every_thread_including_exited_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let writer = Writer::builder("stats")
            .path(&path)
            .capacity(64 << 10)
            .full_policy(FullPolicy::Drop)
            .open()
            .unwrap();
        assert_eq!(writer.stats(), WriterStats::default());
        let clone = writer.clone();
        std::thread::spawn(move || {
            for _ in 0..10 {
                clone.write(b"from a thread that then exits").unwrap();
            }
        })
        .join()
        .unwrap();
        assert_eq!(writer.stats().written, 10);
        // No drain: the ring fills up and the Drop policy starts dropping.
        let (mut written, mut dropped) = (10, 0);
        for _ in 0..1000 {
            match writer.write(&[b'x'; 200]) {
                Ok(()) => written += 1,
                Err(WriteError::Dropped) => dropped += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(dropped > 0);
        let stats = writer.stats();
        assert_eq!((stats.written, stats.dropped), (written, dropped));
        assert_eq!(stats.blocked, Duration::ZERO, "Drop never waits");

        // Another handle on the same ring counts only its own records, and its waiting.
        let blocking = Writer::builder("stats")
            .path(&path)
            .full_policy(FullPolicy::BlockFor(Duration::from_millis(5)))
            .open()
            .unwrap();
        assert!(matches!(
            blocking.write(&[b'y'; 200]),
            Err(WriteError::Dropped)
        ));
        let theirs = blocking.stats();
        assert_eq!((theirs.written, theirs.dropped), (0, 1));
        assert!(theirs.blocked > Duration::ZERO);
        assert_eq!(writer.stats(), stats);
    }

    #[test]
    fn dropping_the_last_writer_gives_back_every_threads_slot_while_the_threads_live_on() {
        use std::os::fd::AsFd;
        // Bug: each thread's slot entry kept the writer's state alive, so its slot stayed
        // attached (lock held) until the thread exited, long after the writer was dropped.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let writer = Writer::builder("gone")
            .path(&path)
            .capacity(64 << 10)
            .open()
            .unwrap();
        let observer = std::fs::File::open(&path).unwrap();
        let locked = |slot: u16| {
            lock::is_locked(observer.as_fd(), layout::slot_lock_byte(slot as u32)).unwrap()
        };
        let my_slot = || LAST.with(Cell::get).unwrap().slot;
        let (slot_tx, slot_rx) = std::sync::mpsc::channel();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let clone = writer.clone();
        let other = std::thread::spawn(move || {
            clone.write(b"from a thread that lives on").unwrap();
            drop(clone);
            slot_tx.send(my_slot()).unwrap();
            // Lives on until the test drops `end_tx`.
            let _ = end_rx.recv();
        });
        writer.write(b"from this thread").unwrap();
        let slots = [my_slot(), slot_rx.recv().unwrap()];
        assert!(slots.iter().all(|&s| locked(s)), "both slots attached");
        let segment = Segment::open(
            &Location::Path(path.clone()),
            &SegmentOptions {
                create: false,
                ..Default::default()
            },
        )
        .unwrap();
        drop(writer);
        for slot in slots {
            assert!(!locked(slot), "slot {slot} still locked");
            assert_eq!(
                segment.ring().slot_info(slot).state,
                ringlog_core::SlotState::Detached
            );
        }
        // This thread writes again through a new writer on the same ring: it attaches afresh.
        let again = Writer::builder("gone").path(&path).open().unwrap();
        again.write(b"again").unwrap();
        assert!(locked(my_slot()));
        drop(end_tx);
        other.join().unwrap();
    }

    #[test]
    fn try_write_on_a_full_ring_writes_nothing_counts_nothing_and_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        // Block with no drain would wait DRAIN_GRACE: `try_write_record` must not.
        let writer = Writer::builder("try")
            .path(dir.path().join("ring"))
            .capacity(64 << 10)
            .open()
            .unwrap();
        let mut written = 0;
        while writer
            .try_write_record(Level::Info, "t", &[b'x'; 200])
            .unwrap()
        {
            written += 1;
            assert!(
                written < 1000,
                "a 64 KiB ring cannot take 1000 records of 200 bytes"
            );
        }
        let stats = writer.stats();
        assert_eq!((stats.written, stats.dropped), (written, 0));
        assert_eq!(stats.blocked, Duration::ZERO);
        assert!(matches!(
            writer.try_write_record(Level::Info, "t", &[b'x'; 64 << 10]),
            Err(WriteError::TooLarge { .. })
        ));
    }

    #[test]
    fn of_two_threads_replacing_an_inherited_lock_fd_only_the_winner_closes_it() {
        // The interleaving that closed a published descriptor, forced: thread A opens its fresh
        // descriptor, then thread B (which also saw the inherited one) runs its whole swap
        // before A goes on to its CAS.
        // In a child of its own: thread A stays inside its fork-excluding section until B is
        // done, so a fork by another test meanwhile would wait for A while B waits for it.
        let code = in_child(|| {
            use std::os::unix::fs::MetadataExt;
            use std::sync::Barrier;
            let dir = tempfile::tempdir().unwrap();
            let writer = Writer::builder("swap")
                .path(dir.path().join("ring"))
                .capacity(64 << 10)
                .open()
                .unwrap();
            let shared = &writer.shared;
            // As in a child after fork whose inherited descriptor the fork handler did not close:
            // another generation's, unregistered, still open.
            let inherited = shared.segment.reopen_file().unwrap().into_raw_fd();
            let other_generation = (fork::generation() + 1) & 0xffff_ffff;
            shared.lock.store(
                other_generation << 32 | inherited as u32 as u64,
                Ordering::Release,
            );
            shared.lock_registration.store(u64::MAX, Ordering::Relaxed);

            let (b_may_start, b_done) = (Barrier::new(2), Barrier::new(2));
            std::thread::scope(|s| {
                s.spawn(|| {
                    shared.lock_fd_opening_with(|| {
                        let fresh = shared.segment.reopen_file();
                        b_may_start.wait();
                        b_done.wait();
                        fresh
                    })
                });
                s.spawn(|| {
                    b_may_start.wait();
                    let fd = shared.lock_fd_opening_with(|| shared.segment.reopen_file());
                    b_done.wait();
                    fd
                });
            });

            let published = shared.lock.load(Ordering::Acquire);
            assert_eq!(published >> 32, fork::generation() & 0xffff_ffff);
            let fd = published as u32 as RawFd;
            // SAFETY: `stat` is plain old data; all zeros is a valid value.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: fstat writes into the local struct; a closed number fails with EBADF.
            let found = unsafe { libc::fstat(fd, &mut stat) };
            assert_eq!(
                found,
                0,
                "the published lock descriptor {fd} was closed: {}",
                io::Error::last_os_error()
            );
            assert_eq!(stat.st_ino, shared.segment.file().metadata().unwrap().ino());
            // The inherited descriptor was closed exactly once, by the winner.
            // SAFETY: fcntl(F_GETFD) only asks whether the number is open.
            let inherited_still_open = unsafe { libc::fcntl(inherited, libc::F_GETFD) } != -1;
            assert!(
                !inherited_still_open || inherited == fd,
                "the inherited descriptor was left open"
            );
            // The writer works on with it.
            writer.write(b"after the swap").unwrap();
            CHILD_OK
        });
        assert_eq!(code, CHILD_OK);
    }

    /// Runs `f` in a forked child and returns its exit code (101 if it panicked). The child
    /// never returns into the test harness.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `f` (which spawns threads of its own, allocates and makes
        // syscalls; glibc's malloc is fork-safe) and then `_exit`s without unwinding.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            0 => {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
                // SAFETY: ends the child without running the harness's destructors.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    CHILD_KILLED
                }
            }
        }
    }

    #[test]
    fn a_child_closes_the_lock_descriptors_of_every_writer_however_many() {
        // Bug: the at-fork table had 64 entries: a child kept the lock descriptors of a
        // process's 65th and later writers open (and with them the parent's locks, so a parent
        // that died looked alive) until the child's first write through each.
        const WRITERS: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        // In a child of its own, so the at-fork table is this test's alone.
        let code = in_child(|| {
            let writers: Vec<Writer> = (0..WRITERS)
                .map(|_| {
                    Writer::builder("many")
                        .path(&path)
                        .capacity(1 << 16)
                        .open()
                        .unwrap()
                })
                .collect();
            for w in &writers {
                w.write(b"parent").unwrap();
            }
            let fds: Vec<RawFd> = writers
                .iter()
                .map(|w| w.shared.lock.load(Ordering::Acquire) as u32 as RawFd)
                .collect();
            in_child(|| {
                // SAFETY: fcntl(F_GETFD) only asks whether the number is open.
                let open = |fd: &&RawFd| unsafe { libc::fcntl(**fd, libc::F_GETFD) } != -1;
                if fds.iter().filter(open).count() == 0 {
                    CHILD_OK
                } else {
                    PARENT_FDS_OPEN_IN_CHILD
                }
            })
        });
        assert_eq!(code, CHILD_OK);
    }

    /// What one thread of a forked child found after its first write.
    const CHILD_OK: i32 = 0;
    const CHILD_WRITE_FAILED: i32 = 10;
    const CHILD_SLOT_NOT_LOCKED: i32 = 11;
    const CHILD_LOCK_FD_ELSEWHERE: i32 = 12;
    const PARENT_FD_NOT_REGISTERED: i32 = 13;
    const CHILD_KILLED: i32 = 14;
    const PARENT_FDS_OPEN_IN_CHILD: i32 = 15;

    #[test]
    fn many_threads_of_a_forked_child_swap_an_unregistered_lock_fd_once() {
        // Bug: every thread racing to replace the inherited, unregistered lock descriptor closed
        // it before its CAS; a loser could so close the fresh descriptor a winner had just
        // opened under the same number and published, and the child's slots lost their locks.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        // In a child of its own, so the at-fork table is this test's alone.
        let code = in_child(|| {
            let writer = Writer::builder("fork")
                .path(&path)
                .capacity(1 << 20)
                .open()
                .unwrap();
            writer.write(b"parent").unwrap();
            // As after a fork from a signal handler that interrupted the registration: the
            // descriptor open, published, and not in the at-fork table.
            let shared = &writer.shared;
            let reg = shared.lock_registration.swap(u64::MAX, Ordering::Relaxed);
            if reg == u64::MAX {
                return PARENT_FD_NOT_REGISTERED;
            }
            let fd = shared.lock.load(Ordering::Acquire) as u32 as RawFd;
            fork::unregister(reg as usize, fd);
            for _ in 0..100 {
                let code = in_child(|| child_threads_write_and_check(&writer, &path));
                if code != CHILD_OK {
                    return code;
                }
            }
            CHILD_OK
        });
        assert_eq!(code, CHILD_OK);
    }

    /// In a forked child: 16 threads write at once, then each checks that its slot is locked
    /// (as another open file description sees it) and that the published lock descriptor is
    /// the segment's file.
    fn child_threads_write_and_check(writer: &Writer, path: &std::path::Path) -> i32 {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        const THREADS: usize = 32;
        // A child whose descriptors were closed under it may hang: SIGALRM ends it, counted.
        // SAFETY: alarm only arms a timer.
        unsafe { libc::alarm(10) };
        let observer = std::fs::File::open(path).unwrap();
        let segment_inode = observer.metadata().unwrap().ino();
        let start = std::sync::Barrier::new(THREADS);
        let checked = std::sync::Barrier::new(THREADS);
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let result = writer.write(b"child");
                        let code = if result.is_err() {
                            CHILD_WRITE_FAILED
                        } else {
                            let slot = LAST.with(Cell::get).unwrap().slot;
                            let byte = layout::slot_lock_byte(slot as u32);
                            let fd = writer.shared.lock.load(Ordering::Acquire) as u32 as RawFd;
                            // SAFETY: plain old data; all zeros is a valid value.
                            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
                            // SAFETY: fstat writes into our local struct; a bad fd just fails.
                            let fstat = unsafe { libc::fstat(fd, &mut stat) };
                            if !lock::is_locked(observer.as_fd(), byte).unwrap_or(false) {
                                CHILD_SLOT_NOT_LOCKED
                            } else if fstat != 0 || stat.st_ino != segment_inode {
                                CHILD_LOCK_FD_ELSEWHERE
                            } else {
                                CHILD_OK
                            }
                        };
                        // Keep every slot attached until all have checked theirs.
                        checked.wait();
                        code
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .max()
                .unwrap()
        })
    }

    #[test]
    fn stats_are_exact_as_soon_as_scoped_threads_are_done() {
        // `thread::scope` returns before the threads' thread-local destructors (which detach
        // their slots) have necessarily run: `stats` must not count a slot twice or not at all.
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::builder("exact")
            .path(dir.path().join("ring"))
            .capacity(1 << 20)
            .open()
            .unwrap();
        for round in 1..=50u64 {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..10 {
                            writer.write(b"x").unwrap();
                        }
                    });
                }
            });
            assert_eq!(writer.stats().written, round * 80, "round {round}");
        }
    }
}
