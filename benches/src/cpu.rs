//! CPU time, in nanoseconds, of this process or of another one (by its pid). The harness
//! charges every contender the CPU of all its processes between "go" and "all records in the
//! file": producers and collectors report their own, the drain (a binary we do not
//! instrument) is read from outside through its process CPU clock.

use std::io;

/// CPU time (user + system, all threads) this process has used.
pub fn self_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// CPU time (user + system, all threads) process `pid` has used so far: its
/// `clock_getcpuclockid` clock, nanosecond resolution (`/proc/<pid>/stat` only has 10 ms
/// ticks, and this kernel keeps no schedstats).
pub fn process_cpu_ns(pid: u32) -> io::Result<u64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: plain FFI call; `clock` is a valid out-pointer to a local.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain FFI call; `ts` is a valid out-pointer to a local, and `clock` came from
    // `clock_getcpuclockid` above.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Event counters of a process: page faults served without I/O (first touches of a mapping,
/// among others) and context switches (voluntary: it blocked; involuntary: it was preempted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Minor page faults.
    pub minflt: u64,
    /// Voluntary context switches.
    pub nvcsw: u64,
    /// Involuntary context switches.
    pub nivcsw: u64,
}

impl Counters {
    /// `self - earlier`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            minflt: self.minflt.saturating_sub(earlier.minflt),
            nvcsw: self.nvcsw.saturating_sub(earlier.nvcsw),
            nivcsw: self.nivcsw.saturating_sub(earlier.nivcsw),
        }
    }
}

/// This process's counters (all threads), from `getrusage(RUSAGE_SELF)`.
pub fn self_counters() -> Counters {
    // SAFETY: `rusage` is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain FFI call with a valid out-pointer to a local.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Counters::default();
    }
    Counters {
        minflt: ru.ru_minflt as u64,
        nvcsw: ru.ru_nvcsw as u64,
        nivcsw: ru.ru_nivcsw as u64,
    }
}

/// Process `pid`'s counters, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn process_counters(pid: u32) -> io::Result<Counters> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, minflt field 10.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("unexpected /proc/<pid>/stat format"))?;
    let minflt = after
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Counters {
        minflt,
        nvcsw: field("voluntary_ctxt_switches:"),
        nivcsw: field("nonvoluntary_ctxt_switches:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_clock_agrees_from_inside_and_outside() {
        // Spin on CPU time, not wall time: on a loaded machine 20 ms of wall time may hold
        // almost no CPU time, and the clocks' agreement is what is under test.
        let start = self_cpu_ns();
        while self_cpu_ns() - start < 20_000_000 {
            std::hint::black_box(0u64);
        }
        let inside = self_cpu_ns();
        let outside = process_cpu_ns(std::process::id()).unwrap();
        assert!(inside >= start + 20_000_000);
        assert!(
            outside >= inside,
            "outside {outside} ns < inside {inside} ns"
        );
    }

    #[test]
    fn own_counters_agree_from_inside_and_outside() {
        let v: Vec<u8> = vec![1; 8 << 20];
        std::hint::black_box(&v);
        let inside = self_counters();
        let outside = process_counters(std::process::id()).unwrap();
        assert!(inside.minflt > 0);
        assert!(outside.minflt >= inside.minflt);
    }
}
