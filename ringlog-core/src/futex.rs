//! Waiting and waking across processes on 32-bit words in the shared segment: shared (not
//! `FUTEX_PRIVATE`) futexes, because waiter and waker are different processes. Used only off
//! the hot path: by an idle drain, and by producers facing a full ring.

use core::sync::atomic::AtomicU32;
use rustix::thread::futex;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout`. Returns on a wake-up, a changed word,
/// a signal or the timeout; the caller re-checks its condition in every case.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::fs::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // Errors (EAGAIN: the word changed; EINTR; ETIMEDOUT) all mean "re-check", which the
    // caller does anyway.
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes up to `n` waiters on `word`.
pub fn wake(word: &AtomicU32, n: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), n);
}
