//! Time for records. Producers stamp each record as cheaply as the machine allows; the drain,
//! which formats anyway, turns stamps into wall-clock time.
//!
//! - [`now_ns`]: wall-clock ns since the Unix epoch (`clock_gettime(CLOCK_REALTIME)` via the
//!   vDSO: no syscall, but ~40 ns on the development VM).
//! - [`ticks`]: the CPU's time-stamp counter (~13 ns there). Used for record stamps only when
//!   [`ticks_usable`]: on x86-64, when the kernel itself uses the TSC as its clocksource (it
//!   does so only when the TSC is invariant and synchronised across CPUs), unless
//!   `RINGLOG_CLOCK=realtime`. Such records carry [`crate::frame::FLAG_TICKS`].
//! - [`TickClock`]: the drain's conversion from ticks to wall-clock ns, anchored at a recent
//!   (ticks, ns) pair and with a rate measured over as long a baseline as it has.

use std::sync::OnceLock;

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
#[inline]
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The time-stamp counter (x86-64), or [`now_ns`] elsewhere.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` is available on every x86-64 CPU and has no preconditions.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    now_ns()
}

/// Whether producers may stamp records with [`ticks`] (decided once per process).
pub fn ticks_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::env::var("RINGLOG_CLOCK").as_deref() != Ok("realtime")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

/// A (ticks, ns) pair read as close together as possible: the ticks are the midpoint of two
/// reads around the clock read, retried while the window is wide (preempted).
fn pair() -> (u64, u64) {
    let mut best = (0, 0, u64::MAX);
    for _ in 0..16 {
        let a = ticks();
        let ns = now_ns();
        let b = ticks();
        let width = b.wrapping_sub(a);
        if width < best.2 {
            best = (a + width / 2, ns, width);
        }
        if width < 1_000 {
            break;
        }
    }
    (best.0, best.1)
}

/// Converts [`ticks`] stamps to wall-clock ns.
#[derive(Clone, Copy, Debug)]
pub struct TickClock {
    base: (u64, u64),
    anchor: (u64, u64),
    ns_per_tick: f64,
}

impl TickClock {
    /// A clock calibrated now. With `hint` (a rate measured earlier, e.g. by a previous drain)
    /// it starts from that rate; without, it measures one over `window` first (it sleeps).
    pub fn calibrate(hint: Option<f64>, window: std::time::Duration) -> TickClock {
        let base = pair();
        let ns_per_tick = match hint.filter(|r| r.is_finite() && *r > 0.0) {
            Some(r) => r,
            None => {
                std::thread::sleep(window);
                let now = pair();
                (now.1.saturating_sub(base.1)) as f64 / (now.0.wrapping_sub(base.0)).max(1) as f64
            }
        };
        TickClock {
            base,
            anchor: pair(),
            ns_per_tick,
        }
    }

    /// Takes a new anchor and, over a baseline of at least a second, re-measures the rate. A
    /// wall-clock step (NTP, settimeofday) shows up as a rate change over 0.1%: it then starts a
    /// new baseline instead of folding the step into the rate.
    pub fn refresh(&mut self) {
        let now = pair();
        let span_ticks = now.0.wrapping_sub(self.base.0);
        let span_ns = now.1 as f64 - self.base.1 as f64;
        let measured = span_ns / span_ticks.max(1) as f64;
        if span_ns >= 1e9 {
            if (measured / self.ns_per_tick - 1.0).abs() < 1e-3 {
                self.ns_per_tick = measured;
            } else {
                self.base = now;
            }
        }
        self.anchor = now;
    }

    /// Wall-clock ns of a [`ticks`] stamp.
    pub fn to_ns(&self, stamp: u64) -> u64 {
        let delta = stamp.wrapping_sub(self.anchor.0) as i64 as f64 * self.ns_per_tick;
        (self.anchor.1 as f64 + delta).max(0.0) as u64
    }

    /// The current rate, ns per tick.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_stamps_convert_to_the_wall_clock() {
        let mut clock = TickClock::calibrate(None, std::time::Duration::from_millis(20));
        for _ in 0..5 {
            let before = now_ns();
            let stamp = ticks();
            let after = now_ns();
            clock.refresh();
            let ns = clock.to_ns(stamp);
            // Within 1 ms of when it was taken (the calibration is far better than that).
            assert!(
                ns + 1_000_000 >= before && ns <= after + 1_000_000,
                "{before} <= {ns} <= {after}"
            );
        }
        let hinted = TickClock::calibrate(Some(clock.ns_per_tick()), std::time::Duration::ZERO);
        let stamp = ticks();
        let ns = hinted.to_ns(stamp);
        assert!(ns.abs_diff(now_ns()) < 1_000_000);
    }
}
