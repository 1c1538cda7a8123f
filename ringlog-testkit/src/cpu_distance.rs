//! How far apart two of this machine's CPUs are right now: the time one cache line takes to
//! move from one to the other, measured by two threads, one pinned to each, handing a counter
//! back and forth.
//!
//! Every process that writes into a ring moves the line holding its tail (and often the line
//! the previous record ended in) to its own CPU, so when producers on two CPUs write at once,
//! each record costs about one such move. On a VM the host decides whether the vCPUs sit on
//! one core's two hyperthreads, presumably (a move of ~15 ns on the development machine), on
//! cores that share a cache (~30-50 ns) or not (~150-240 ns), and it changes its mind while a
//! benchmark runs: ringlog's rate with several producers
//! follows it, and the benchmark and the demo print it beside their figures. Nothing here is
//! set or changed; it only looks.

use crossbeam_utils::CachePadded;
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Round trips per burst: ~1.5 ms when the CPUs share a cache, ~8 ms when they do not.
const ROUND_TRIPS: u64 = 20_000;
/// Round trips before the clock starts: both threads are running by then (not the other one's
/// start-up).
const WARM_UP: u64 = 200;
/// Bursts measured; the figure is their median.
const BURSTS: usize = 3;
/// A burst that takes longer had a thread waiting for its CPU (the machine is busy): no figure.
const BURST_LIMIT: Duration = Duration::from_millis(200);

/// The median time, in ns, one cache line took to move between the first two CPUs the calling
/// thread may run on, over a few short bursts. `None` when it may run on only one CPU, when a
/// thread cannot be pinned, or when a burst ran too long for the figure to mean anything (the
/// other CPU was busy).
pub fn line_transfer_ns() -> Option<f64> {
    let allowed = sched_getaffinity(None).ok()?;
    let mut cpus = (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c));
    let (a, b) = (cpus.next()?, cpus.next()?);
    let mut bursts: Vec<f64> = (0..BURSTS)
        .map(|_| burst(a, b))
        .collect::<Option<Vec<_>>>()?;
    bursts.sort_by(f64::total_cmp);
    Some(bursts[BURSTS / 2])
}

/// [`line_transfer_ns`] now, for a report line: `a cache line moves between two CPUs in 36 ns`.
pub fn line_now() -> String {
    match line_transfer_ns() {
        Some(ns) => format!("a cache line moves between two CPUs in {ns:.0} ns"),
        None => "how fast a cache line moves between two CPUs: not measurable now".to_owned(),
    }
}

/// One burst between CPUs `a` and `b`: ns per one-way move.
fn burst(a: usize, b: usize) -> Option<f64> {
    // Its own line: nothing else the threads touch moves with it.
    let counter = CachePadded::new(AtomicU64::new(0));
    let deadline = Instant::now() + BURST_LIMIT;
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| bounce(&counter, a, 0, deadline));
        let second = s.spawn(|| bounce(&counter, b, 1, deadline));
        (first.join(), second.join())
    });
    let elapsed = first.ok()??;
    second.ok()??;
    Some(elapsed.as_nanos() as f64 / (2 * (ROUND_TRIPS - WARM_UP)) as f64)
}

/// Pins the calling thread to `cpu`, then, for each round trip, waits for the counter to reach
/// its turn (`parity`: 0 moves it from even to odd, 1 from odd to even) and moves it on. Returns
/// the time of the round trips after the warm-up, or `None` if it could not be pinned or the
/// deadline passed.
fn bounce(counter: &AtomicU64, cpu: usize, parity: u64, deadline: Instant) -> Option<Duration> {
    let mut only = CpuSet::new();
    only.set(cpu);
    sched_setaffinity(None, &only).ok()?;
    let mut started = None;
    for turn in 0..ROUND_TRIPS {
        let mine = 2 * turn + parity;
        if turn == WARM_UP {
            started = Some(Instant::now());
        }
        let mut spins = 0u32;
        // Acquire/Release: the counter is the only data; the orderings make each move one
        // hand-over of the line, as a producer's claim is.
        while counter.load(Ordering::Acquire) != mine {
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 && Instant::now() > deadline {
                // The other thread stops at its own deadline check.
                return None;
            }
            std::hint::spin_loop();
        }
        counter.store(mine + 1, Ordering::Release);
    }
    Some(started?.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpus_give_a_figure_and_one_gives_none() {
        let Some(ns) = line_transfer_ns() else {
            crate::skip!("this process may run on one CPU only: no line can move between two");
        };
        assert!(ns > 0.0 && ns < 1_000_000.0, "{ns} ns per move");
        // A thread confined to one CPU has no second one to measure against.
        let confined = std::thread::spawn(|| {
            let allowed = sched_getaffinity(None).unwrap();
            let first = (0..CpuSet::MAX_CPU).find(|&c| allowed.is_set(c)).unwrap();
            let mut only = CpuSet::new();
            only.set(first);
            sched_setaffinity(None, &only).unwrap();
            line_transfer_ns()
        });
        assert_eq!(confined.join().unwrap(), None);
    }
}
