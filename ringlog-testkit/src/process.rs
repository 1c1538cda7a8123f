//! Waiting on other processes: for a drain to take its ring, for a condition only visible from
//! outside (a file's contents). Polling with a timeout, never a sleep standing in for an event
//! this process could wait on.

use ringlog_core::Location;
use std::fmt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Polls `cond` until it holds or `timeout` passes (for conditions only observable from
/// outside, such as a file's contents). Returns whether it held.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(timeout, Duration::from_millis(2), cond)
}

/// [`wait_until`] for a condition that costs something to check (reading a growing file):
/// checked every `every`, so the check does not take the CPU from the processes it waits for.
pub fn wait_until_every(
    timeout: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// True when a drain holds ring `ring` (its drain lock; `ringlog-drain stat` shows it as
/// `drain.alive`). False when there is no such ring yet.
pub fn drain_holds(ring: &str) -> bool {
    let location = Location::Name(ring.to_owned());
    ringlog_drain::stat::snapshot(&location).is_ok_and(|s| s.drain.alive)
}

/// Why a drain process did not take its ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The process exited first.
    Exited(ExitStatus),
    /// Nothing held the ring within this long.
    TimedOut(Duration),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::Exited(status) => write!(f, "the drain exited at start ({status})"),
            NotReady::TimedOut(t) => write!(f, "the drain did not take its ring within {t:?}"),
        }
    }
}

impl std::error::Error for NotReady {}

/// Waits until a drain holds ring `ring`, checking every `every`; `exited` answers whether
/// the drain process has exited (e.g. `Child::try_wait`), which ends the wait. A drain
/// installs its signal handlers before it takes the ring: once this returns, SIGTERM makes it
/// drain everything and exit 0.
pub fn wait_for_drain(
    ring: &str,
    timeout: Duration,
    every: Duration,
    mut exited: impl FnMut() -> Option<ExitStatus>,
) -> Result<(), NotReady> {
    let mut exit = None;
    let held = wait_until_every(timeout, every, || {
        exit = exited();
        exit.is_some() || drain_holds(ring)
    });
    match exit {
        Some(status) => Err(NotReady::Exited(status)),
        None if held => Ok(()),
        None => Err(NotReady::TimedOut(timeout)),
    }
}
