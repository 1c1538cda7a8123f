//! The one wait schedule every loop that waits for another party uses: spin while the other
//! side is probably mid-operation (nanoseconds), yield the CPU while it may be descheduled
//! (microseconds to a couple of milliseconds), then nap for growing intervals up to a cap.
//! A [`Schedule`] names the phases; [`Backoff`] says which step comes next. The caller carries
//! the step out (a nap is usually a futex wait a wake-up can cut short).

use std::time::Duration;

/// Spin-loop hints per [`Step::Spin`]: about a hundred nanoseconds on current x86, short next
/// to a syscall, long enough not to hammer the line the other side is writing.
pub const SPINS_PER_STEP: u32 = 64;

/// The phases of a wait, by time waited so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Spin while less than this has passed.
    pub spin_for: Duration,
    /// Then yield while less than this has passed (counted from the start, not after spinning).
    pub yield_until: Duration,
    /// Then nap this long first...
    pub first_nap: Duration,
    /// ...doubling each time up to this.
    pub max_nap: Duration,
}

/// One step of a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Spin ([`spin`]).
    Spin,
    /// Give the CPU to another thread (`std::thread::yield_now`).
    Yield,
    /// Sleep (or futex-wait) this long.
    Nap(Duration),
}

/// Where a wait is in its [`Schedule`].
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    schedule: Schedule,
    naps: u32,
}

impl Backoff {
    /// A wait at its start.
    pub const fn new(schedule: Schedule) -> Backoff {
        Backoff { schedule, naps: 0 }
    }

    /// Back to the start of the schedule (the awaited thing happened).
    pub fn reset(&mut self) {
        self.naps = 0;
    }

    /// Naps taken since the start.
    pub fn naps(&self) -> u32 {
        self.naps
    }

    /// The next step, after waiting `waited` so far.
    pub fn step(&mut self, waited: Duration) -> Step {
        let s = &self.schedule;
        if waited < s.spin_for {
            return Step::Spin;
        }
        if waited < s.yield_until {
            return Step::Yield;
        }
        let nap = s
            .first_nap
            .saturating_mul(1u32 << self.naps.min(16))
            .min(s.max_nap);
        self.naps = self.naps.saturating_add(1);
        Step::Nap(nap)
    }

    /// The next nap of a wait that never spins or yields (a schedule whose `spin_for` and
    /// `yield_until` are zero, such as retry delays).
    pub fn next_nap(&mut self) -> Duration {
        match self.step(Duration::MAX) {
            Step::Nap(nap) => nap,
            Step::Spin | Step::Yield => Duration::ZERO,
        }
    }
}

/// [`SPINS_PER_STEP`] spin-loop hints.
#[inline]
pub fn spin() {
    for _ in 0..SPINS_PER_STEP {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_then_yields_then_naps_doubling_up_to_the_cap() {
        let mut b = Backoff::new(Schedule {
            spin_for: Duration::from_micros(50),
            yield_until: Duration::from_millis(2),
            first_nap: Duration::from_millis(100),
            max_nap: Duration::from_millis(800),
        });
        assert_eq!(b.step(Duration::ZERO), Step::Spin);
        assert_eq!(b.step(Duration::from_micros(60)), Step::Yield);
        let naps: Vec<_> = (0..5).map(|_| b.step(Duration::from_secs(1))).collect();
        let ms = |m| Step::Nap(Duration::from_millis(m));
        assert_eq!(naps, [ms(100), ms(200), ms(400), ms(800), ms(800)]);
        assert_eq!(b.naps(), 5);
        b.reset();
        assert_eq!(b.step(Duration::from_secs(1)), ms(100));
        assert_eq!(b.next_nap(), Duration::from_millis(200));
    }
}
