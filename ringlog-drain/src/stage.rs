//! The drain in two stages ([`crate::DrainOptions::write_thread`], `--write-thread`): while one
//! thread writes a batch, the other gathers the next. By default only for spells, while the
//! drain is behind and a CPU is free ([`crate::catch_up`]).
//!
//! One thread alone copies a batch out of the ring, then waits in `write(2)` while the kernel
//! copies it into the page cache, then copies the next: the two copies never overlap, and on
//! this machine the drain reached 63-87% of plain 1 MiB writes of the same bytes that way. So
//! here [`Drain::run`] reads on the calling thread (gathering and formatting batches exactly as
//! [`Drain::pump`] does, then handing each off with its ring range) and writes on a second one,
//! which takes the batches in order and, for each, does what a one-thread drain does after
//! gathering: intent, write, mark, release, counts ([`crate::append`]). The checkpoint keeps
//! its one intent: only the batch being written has one, and the batches queued behind it are
//! simply read again by a restarted drain, from the released head.
//!
//! The queue is short (a few batches; at most half the ring read and not released, as for one
//! thread), and the threads sleep on a condition variable when one waits for the other: with a
//! batch queued the writer rarely waits, so the wake-ups (27-74 us on this VM) fall while the
//! other thread still has work.
//!
//! It pays when the second thread has a core to run on: a drain emptying a full 128 MiB ring
//! alone wrote 1.4x as fast. On two vCPUs shared with busy producers it did not (the producers
//! need the core; the hand-offs and wake-ups cost CPU and the read-ahead holds ring space), so
//! by default it runs only while [`crate::catch_up`] says so. See the README's Performance
//! section.
//!
//! What the two threads share, beyond the queue: drop reports are collected only while no batch
//! carrying some is queued (each is computed against the counts the last one completes); a
//! batch that cannot be written is retried by the writer, as the same bytes, until it is
//! written or the drain stops (then every batch not written is taken back, and stays in the
//! ring for the next drain). Outputs with a size limit, whose batches are cut at the room left
//! in the current file, and syslog outputs keep the one-thread drain.

use crate::append::Appender;
use crate::batch::Batch;
use crate::drain::Drain;
use crate::idle::OUTPUT_RETRY;
use crate::options::WriteThread;
use crate::pass::{BatchEffects, Pass};
use ringlog_core::backoff::{Backoff, Step};
use ringlog_core::fault::{self, Point};
use ringlog_core::{clock, ReadRange, Releaser, Segment};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Batches in flight at most: one being written, one queued, one being gathered.
const BATCHES: usize = 3;

/// How long the writer waits for a batch before it syncs an interval fsync policy (as a
/// one-thread drain does before it sleeps, after its quiet naps: about as long) and checks for
/// SIGHUP; afterwards it checks again this often while nothing comes.
const WRITER_IDLE: Duration = Duration::from_millis(2);
const WRITER_IDLE_CHECK: Duration = Duration::from_millis(100);

/// A gathered batch on its way to the writer.
#[derive(Debug)]
struct Handoff {
    batch: Batch,
    effects: BatchEffects,
    range: ReadRange,
}

#[derive(Debug, Default)]
struct Queue {
    /// Empty batches for the reader to gather into.
    free: Vec<Batch>,
    /// Gathered, not yet written, in order.
    queued: VecDeque<Handoff>,
    /// True while the writer has a batch out of the queue.
    writing: bool,
    /// Queued or being written batches that carry drop reports.
    drops_in_flight: usize,
    /// The reader is done: the writer writes what is queued and returns.
    closed: bool,
    /// The writer stopped (it gave up on a failing output, or panicked): the reader stops too.
    writer_gone: bool,
    /// The writing thread's id, once it runs (for [`crate::catch_up`]'s look at its waits).
    writer_tid: Option<i32>,
}

/// The queue between the two threads.
#[derive(Debug, Default)]
pub(crate) struct Stage {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Stage {
    /// A stage with `BATCHES - 1` empty batches (the reader holds one): `spares`, and new ones
    /// of `capacity` bytes if they are fewer.
    fn new(mut free: Vec<Batch>, capacity: usize) -> Stage {
        free.truncate(BATCHES - 1);
        while free.len() < BATCHES - 1 {
            free.push(Batch::with_capacity(capacity));
        }
        Stage {
            queue: Mutex::new(Queue {
                free,
                ..Queue::default()
            }),
            changed: Condvar::new(),
        }
    }

    /// The free batches, once both threads are done, to keep for the next stage: fresh memory
    /// costs a page fault per page on first touch (on a VM that gave it back to its host, ~9 us
    /// a page), 2.5 MiB of it per stage.
    fn into_free(self) -> Vec<Batch> {
        self.queue
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .free
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Neither thread leaves the queue half-updated: a panic elsewhere does not make it wrong.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed
            .wait(queue)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reader: an empty batch to gather into, once one is free and `room` says the ring has room
    /// for another batch read ahead (or nothing is in flight). `None` once the writer is gone.
    fn take_free(&self, room: impl Fn() -> bool) -> Option<Batch> {
        let mut queue = self.lock();
        loop {
            if queue.writer_gone {
                return None;
            }
            let idle = queue.queued.is_empty() && !queue.writing;
            if !queue.free.is_empty() && (idle || room()) {
                return queue.free.pop();
            }
            queue = self.wait(queue);
        }
    }

    /// Reader: true once the writer stopped (gave up, or panicked).
    pub(crate) fn writer_gone(&self) -> bool {
        self.lock().writer_gone
    }

    /// Reader: the writing thread's id, once it runs.
    fn writer_tid(&self) -> Option<i32> {
        self.lock().writer_tid
    }

    /// Writer: its thread's id.
    fn writer_started(&self) {
        self.lock().writer_tid = Some(rustix::thread::gettid().as_raw_nonzero().get());
    }

    /// Reader: true while a batch with drop reports is queued or being written.
    fn drops_in_flight(&self) -> bool {
        self.lock().drops_in_flight > 0
    }

    /// Reader: queues a gathered batch; gives it back if the writer is gone.
    fn queue(&self, handoff: Handoff) -> Result<(), Box<Handoff>> {
        let mut queue = self.lock();
        if queue.writer_gone {
            return Err(Box::new(handoff));
        }
        if !handoff.effects.drop_reports.is_empty() {
            queue.drops_in_flight += 1;
        }
        queue.queued.push_back(handoff);
        self.changed.notify_all();
        Ok(())
    }

    /// Reader: no more batches.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Writer: the next batch, or `None` once the reader closed the queue and it is empty.
    /// While it waits, `idle` runs after [`WRITER_IDLE`] and then every [`WRITER_IDLE_CHECK`].
    fn next(&self, mut idle: impl FnMut()) -> Option<Handoff> {
        let mut queue = self.lock();
        let mut wait = WRITER_IDLE;
        loop {
            if let Some(handoff) = queue.queued.pop_front() {
                queue.writing = true;
                return Some(handoff);
            }
            if queue.closed {
                return None;
            }
            let (q, timeout) = self
                .changed
                .wait_timeout(queue, wait)
                .unwrap_or_else(PoisonError::into_inner);
            queue = q;
            if timeout.timed_out() && queue.queued.is_empty() {
                drop(queue);
                idle();
                wait = WRITER_IDLE_CHECK;
                queue = self.lock();
            }
        }
    }

    /// Writer: `batch` is written (and released); it is free again.
    fn written(&self, mut batch: Batch, had_drops: bool) {
        batch.clear();
        let mut queue = self.lock();
        queue.free.push(batch);
        queue.writing = false;
        if had_drops {
            queue.drops_in_flight -= 1;
        }
        self.changed.notify_all();
    }

    /// Writer: gives up; returns the ranges of every batch not written, oldest first.
    fn give_up(&self, unwritten: ReadRange) -> Vec<ReadRange> {
        let mut queue = self.lock();
        queue.writer_gone = true;
        queue.writing = false;
        let mut ranges = vec![unwritten];
        ranges.extend(queue.queued.drain(..).map(|h| h.range));
        self.changed.notify_all();
        ranges
    }
}

/// Marks the writer gone when its thread ends, however it ends, so a reader waiting for a free
/// batch does not wait forever.
struct WriterExit<'a>(&'a Stage);

impl Drop for WriterExit<'_> {
    fn drop(&mut self) {
        self.0.lock().writer_gone = true;
        self.0.changed.notify_all();
    }
}

/// The writing thread: every queued batch in order, until the reader closes the queue; or,
/// stopping with an output that keeps failing, until it gives up. Returns the appender, and the
/// ranges of the batches it did not write (oldest first).
fn write_queued(
    stage: &Stage,
    mut appender: Appender,
    releaser: Releaser<Segment>,
    stop: &AtomicBool,
    reopen: &AtomicBool,
) -> (Appender, Vec<ReadRange>) {
    let _exit = WriterExit(stage);
    stage.writer_started();
    block_signals();
    let idle = |appender: &mut Appender| {
        appender.sync_if_due(true);
        appender.reopen_if_asked(reopen);
    };
    loop {
        let Some(handoff) = stage.next(|| idle(&mut appender)) else {
            return (appender, Vec::new());
        };
        let Handoff {
            mut batch,
            effects,
            range,
        } = handoff;
        let had_drops = !effects.drop_reports.is_empty();
        let mut range = Some(range);
        let mut retry = Backoff::new(OUTPUT_RETRY);
        while let Some(r) = range.take() {
            // The reading thread may wait for this batch: the drain's heartbeat is ours while
            // the output fails and we retry, as it was the one thread's.
            releaser.ring().heartbeat(clock::now_ns());
            // SIGHUP reopens the output before the next batch.
            appender.reopen_if_asked(reopen);
            let r = match appender.prepare_output(batch.len() as u64) {
                true => match appender.write_batch(&mut batch, &effects, r, &releaser) {
                    Ok(()) => break,
                    Err(r) => r,
                },
                false => r,
            };
            // Relaxed: a request flag, re-read on every retry.
            if stop.load(Ordering::Relaxed)
                && retry.naps() >= crate::drain::OUTPUT_RETRIES_WHEN_STOPPING
            {
                let unwritten = stage.give_up(r);
                return (appender, unwritten);
            }
            if let Step::Nap(d) = retry.step(Duration::MAX) {
                std::thread::sleep(d);
            }
            range = Some(r);
        }
        stage.written(batch, had_drops);
    }
}

/// Signals go to the reading thread, as they did to a one-thread drain: a stop or a SIGHUP
/// wakes it from its futex sleep at once.
fn block_signals() {
    // SAFETY: sigset_t is plain data that sigfillset initialises; pthread_sigmask changes only
    // this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

impl Drain {
    /// Whether [`Drain::run`] writes on a thread of its own now: asked for always, or in a
    /// spell ([`crate::catch_up`]), with an output that allows it.
    pub(crate) fn stages(&self) -> bool {
        self.output_allows_stages()
            && match self.options.write_thread {
                WriteThread::Always => true,
                WriteThread::Auto => self.catch_up.in_spell(),
                WriteThread::Never => false,
            }
    }

    /// An output whose batches do not depend on the one before (no size limit) and that is a
    /// file or stdout.
    fn output_allows_stages(&self) -> bool {
        self.options.rotation.max_bytes.is_none()
            && self
                .appender
                .as_ref()
                .is_some_and(|a| !a.output.is_syslog())
    }

    /// With [`WriteThread::Auto`], after a pass: true when a spell with the writing thread
    /// starts (one thread) or ends (two) now. A spell starts only after a batch that was mostly
    /// copied out of the ring: the second thread overlaps that copy with the write, and records
    /// that go from the ring to the file in place (raw, 4 KiB and more) have none (drained alone
    /// from a full 128 MiB ring, two threads wrote 4 KiB records at 4.4-4.8 GB/s and 64 KiB ones
    /// at 4.1-5.5 against one thread's 5.0-5.2 and 5.4-6.0).
    pub(crate) fn switch_threads(&mut self, pass: &Pass) -> bool {
        if self.options.write_thread != WriteThread::Auto {
            return false;
        }
        let batch = self.options.batch_bytes as u64;
        let backlog = self.consumer.backlog();
        let half_ring = self.ring().geometry().capacity / 2;
        let now = Instant::now();
        match &self.stage {
            None => {
                *pass == Pass::Wrote
                    && self.batch.copied() * 2 >= self.batch.len()
                    && self.output_allows_stages()
                    && self.catch_up.should_start(
                        now,
                        half_ring,
                        batch,
                        backlog,
                        self.bytes_handed_off,
                    )
            }
            Some(stage) => {
                let caught_up = *pass != Pass::Wrote || backlog < batch;
                let writer = stage.writer_tid();
                self.catch_up
                    .should_stop(now, caught_up, writer, self.bytes_handed_off)
                    .is_some()
            }
        }
    }

    /// Runs `read` (the reading loop) with the appender on a writing thread beside it; returns
    /// when both are done, the appender back in place.
    pub(crate) fn run_staged<T>(
        &mut self,
        stop: &AtomicBool,
        reopen: &AtomicBool,
        read: impl FnOnce(&mut Drain) -> T,
    ) -> T {
        let appender = self
            .appender
            .take()
            .expect("the appender is in place outside `run`");
        let spares = std::mem::take(&mut self.spare_batches);
        let stage = std::sync::Arc::new(Stage::new(spares, self.batch_capacity()));
        let releaser = self.consumer.releaser();
        let ((appender, unwritten), ended) = std::thread::scope(|s| {
            let writer = {
                let stage = std::sync::Arc::clone(&stage);
                s.spawn(move || write_queued(&stage, appender, releaser, stop, reopen))
            };
            self.stage = Some(std::sync::Arc::clone(&stage));
            let closer = ReaderExit(&stage);
            let ended = read(self);
            drop(closer);
            self.stage = None;
            let writer_done = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (writer_done, ended)
        });
        self.appender = Some(appender);
        // Both threads are done with it: the writer's handle went with its thread.
        if let Ok(stage) = std::sync::Arc::try_unwrap(stage) {
            self.spare_batches = stage.into_free();
        }
        if self.batch_away {
            self.batch = self.spare_batches.pop().unwrap_or_default();
            self.batch_away = false;
        }
        if !unwritten.is_empty() {
            for range in unwritten.into_iter().rev() {
                self.consumer.take_back(range);
            }
            // The drop reports those batches carried are made again.
            self.drop_events_seen = u64::MAX;
        }
        ended
    }

    /// One pass of the reading thread: gathers a batch, as a one-thread pass does, and queues it
    /// for the writer.
    pub(crate) fn queue_pass(&mut self, stage: &Stage) -> Pass {
        if self.batch_away {
            // Gathering stops at half the ring read and not released, as in one thread; a batch
            // is started once a quarter of a full one fits under that, so that on a small ring
            // the next batch is gathered (shorter) while the last is written, not after.
            let capacity = self.ring().geometry().capacity;
            let least = (self.options.batch_bytes as u64).min(capacity / 4) / 4;
            let consumer = &self.consumer;
            let Some(batch) = stage.take_free(|| consumer.unreleased() + least <= capacity / 2)
            else {
                return Pass::Idle;
            };
            self.batch = batch;
            self.batch_away = false;
        }
        let (effects, outcome) = self.gather(!stage.drops_in_flight());
        if self.nothing_gathered() {
            return outcome;
        }
        let range = self.consumer.hand_off();
        let batch = std::mem::take(&mut self.batch);
        let bytes = batch.len() as u64;
        let records = effects.records;
        let drop_events = effects.drop_events;
        match stage.queue(Handoff {
            batch,
            effects,
            range,
        }) {
            Ok(()) => {
                self.notices.clear();
                self.batch_away = true;
                self.handed_off(records, bytes, drop_events);
                fault::hit(Point::DrainBatchQueued);
                Pass::Wrote
            }
            Err(handoff) => {
                self.consumer.take_back(handoff.range);
                self.batch = handoff.batch;
                Pass::Idle
            }
        }
    }
}

/// Closes the queue when the reading loop ends, however it ends, so the writer returns.
struct ReaderExit<'a>(&'a Stage);

impl Drop for ReaderExit<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}
