//! The ring's two wait/wake pairs, both halves of each: a producer waiting for space and the
//! drain waking it after a release; the drain going to sleep when the ring is empty and a
//! producer waking it after a commit. The futex is a parameter ([`Futex`]), so production code
//! uses the kernel's shared futex ([`SharedFutex`]) and the loom models and heap tests run this
//! very code over a model of one.

use crate::layout::off;
use crate::memory::Memory;
use crate::ring::{Claim, ClaimError, Ring};
use crate::sync::{AtomicU32, AtomicU64, Dekker, Ordering};
use std::time::Duration;

/// Waiting on and waking a 32-bit word, as a futex does: `wait` returns at once if the word no
/// longer holds `expected`, else sleeps until a `wake` on the word or the timeout (either may
/// also return early; callers re-check their condition in every case).
pub trait Futex {
    /// Sleeps while `*word == expected`, at most `timeout`.
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Duration);
    /// Wakes up to `n` waiters on `word`.
    fn wake(&self, word: &AtomicU32, n: u32);
}

/// The kernel's futex, shared between processes ([`crate::futex`]).
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedFutex;

#[cfg(not(loom))]
impl Futex for SharedFutex {
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Duration) {
        crate::futex::wait(word, expected, timeout)
    }
    fn wake(&self, word: &AtomicU32, n: u32) {
        crate::futex::wake(word, n)
    }
}

impl<M: Memory> Ring<M> {
    // ------------------------------------------------------------- space: producer waits

    /// Claims space for `payload_len` bytes for `slot`, sleeping on the space futex while the
    /// ring is full. Before each sleep it asks `patience` how long it may sleep; `None` ends the
    /// wait with [`ClaimError::Full`]. Pairs with [`Ring::wake_space_waiters`].
    pub fn claim_waiting(
        &self,
        futex: &impl Futex,
        slot: u16,
        payload_len: usize,
        head_cache: &AtomicU64,
        mut patience: impl FnMut() -> Option<Duration>,
    ) -> Result<Claim, ClaimError> {
        let space_seq = self.word32(off::SPACE_SEQ);
        loop {
            self.begin_space_wait();
            // Acquire: pairs with the drain's Release bump; a changed value cancels the wait.
            let seq = space_seq.load(Ordering::Acquire);
            let claimed = self.claim(slot, payload_len, head_cache);
            let nap = match claimed {
                Err(ClaimError::Full) => patience(),
                _ => None,
            };
            let Some(nap) = nap else {
                self.end_space_wait();
                return claimed;
            };
            futex.wait(space_seq, seq, nap);
            self.end_space_wait();
        }
    }

    /// A producer registers as waiting for space, then checks again (the Dekker pair with
    /// [`Ring::release`]).
    fn begin_space_wait(&self) {
        // Relaxed + the fence below: the Dekker pair with `release`.
        self.word32(off::SPACE_WAITERS)
            .fetch_add(1, Ordering::Relaxed);
        crate::sync::fence(Ordering::SeqCst);
    }

    /// Undoes `begin_space_wait`.
    fn end_space_wait(&self) {
        // Relaxed: a counter the drain only compares with zero.
        self.word32(off::SPACE_WAITERS)
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// The drain's half: after a release that reported waiters, bumps the space word and wakes
    /// every waiter (each re-checks the ring).
    pub fn wake_space_waiters(&self, futex: &impl Futex) {
        let seq = self.word32(off::SPACE_SEQ);
        // Release: producers re-check the ring after waking.
        seq.fetch_add(1, Ordering::Release);
        futex.wake(seq, u32::MAX);
    }

    // ------------------------------------------------------------- drain sleeps

    /// The drain sleeps until a producer commits (or `timeout`), if the ring is still empty at
    /// `head` once it has announced the sleep. Pairs with [`Ring::wake_drain`].
    pub fn drain_sleep(&self, futex: &impl Futex, head: u64, timeout: Duration) {
        let wake = self.word32(off::WAKE_SEQ);
        // Acquire: pairs with the producers' Release bump; read before announcing the sleep so
        // a bump after the announcement makes the futex wait return at once.
        let seq = wake.load(Ordering::Acquire);
        if self.prepare_sleep(head) {
            futex.wait(wake, seq, timeout);
        }
        self.end_sleep();
    }

    /// The drain waits up to `d` without announcing a sleep (producers will not wake it, so
    /// they make no syscall; a wake-up meant for a sleep may still end it early).
    pub fn drain_nap(&self, futex: &impl Futex, d: Duration) {
        let wake = self.word32(off::WAKE_SEQ);
        // Acquire: as in `drain_sleep`.
        futex.wait(wake, wake.load(Ordering::Acquire), d);
    }

    /// A producer's half, after a commit returned true (the drain announced a sleep): bumps
    /// the wake word and wakes the drain.
    pub fn wake_drain(&self, futex: &impl Futex) {
        let word = self.word32(off::WAKE_SEQ);
        // Release: the drain re-reads the ring after waking; the commit was already Released.
        word.fetch_add(1, Ordering::Release);
        futex.wake(word, 1);
    }

    /// The drain announces it is about to sleep; returns false if a claim arrived meanwhile.
    /// Pairs with `drain_needs_wake` in [`Ring::commit`].
    fn prepare_sleep(&self, head: u64) -> bool {
        let sleeping = self.word32(off::DRAIN_SLEEPING);
        // SeqCst: Dekker pair with the producers' SeqCst tail CAS and flag load (see
        // `drain_needs_wake`).
        sleeping.dekker_store(1, Ordering::SeqCst);
        // If a claim arrived meanwhile there is no sleep; `drain_sleep` clears the flag with
        // `end_sleep` (a producer that saw it set only makes a spare wake-up).
        self.word(off::TAIL).dekker_load(Ordering::SeqCst) == head
    }

    /// Whether the drain has announced a sleep (producers will wake it): for observers (`stat`,
    /// benchmarks of the idle drain).
    pub fn drain_announced_sleep(&self) -> bool {
        // Relaxed: an observation, not a synchronisation.
        self.word32(off::DRAIN_SLEEPING).load(Ordering::Relaxed) != 0
    }

    /// Clears the drain's sleeping flag after it woke up or did not sleep.
    fn end_sleep(&self) {
        // SeqCst, though the language would take Relaxed: a producer whose SeqCst load of the
        // flag reads this 0 precedes our next announcement in the SeqCst order (it read a value
        // older than it), which keeps the next sleep's Dekker pair sound. loom derives that order
        // only from SeqCst stores, so with Relaxed its two-producer model reports a lost wake-up
        // the language rules out. Once per sleep, beside a futex syscall: off the hot path.
        self.word32(off::DRAIN_SLEEPING)
            .dekker_store(0, Ordering::SeqCst);
    }
}
