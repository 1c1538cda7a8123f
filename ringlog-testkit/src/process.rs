//! Waiting on other processes: for a drain to run, for a condition only visible from
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

/// True once the drain process `pid` runs its loop on ring `ring`: it holds the ring and its
/// loop has gone round (its heartbeat is later than its start), so everything it does before
/// (opening its output, the spare link to the segment, recovering a dead drain's batch) is
/// done. A drain that found a segment a previous drain left behind drains that one first: its
/// heartbeat is there, at the spare link.
pub fn drain_runs(ring: &str, pid: u32) -> bool {
    let Ok(path) = Location::Name(ring.to_owned()).path() else {
        return false;
    };
    let spare = ringlog_drain::segment_name::spare_path(&path);
    [path, spare].into_iter().any(|p| {
        ringlog_drain::stat::snapshot(&Location::Path(p)).is_ok_and(|s| {
            let d = s.drain;
            d.alive && d.pid == pid && d.heartbeat_ns >= d.started_ns
        })
    })
}

/// Why a drain process was not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The process exited first.
    Exited(ExitStatus),
    /// The drain was not running its loop within this long.
    TimedOut(Duration),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::Exited(status) => write!(f, "the drain exited at start ({status})"),
            NotReady::TimedOut(t) => write!(f, "the drain was not running its loop within {t:?}"),
        }
    }
}

impl std::error::Error for NotReady {}

/// Waits until the drain process `pid` runs its loop on ring `ring` ([`drain_runs`]),
/// checking every `every`; `exited` answers whether the drain process has exited (e.g.
/// `Child::try_wait`), which ends the wait. A drain installs its signal handlers before it
/// takes the ring: once this returns, SIGTERM makes it drain everything and exit 0.
pub fn wait_for_drain(
    ring: &str,
    pid: u32,
    timeout: Duration,
    every: Duration,
    mut exited: impl FnMut() -> Option<ExitStatus>,
) -> Result<(), NotReady> {
    let mut exit = None;
    let running = wait_until_every(timeout, every, || {
        exit = exited();
        exit.is_some() || drain_runs(ring, pid)
    });
    match exit {
        Some(status) => Err(NotReady::Exited(status)),
        None if running => Ok(()),
        None => Err(NotReady::TimedOut(timeout)),
    }
}
