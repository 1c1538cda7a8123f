//! Wall-clock time as nanoseconds since the Unix epoch: `clock_gettime(CLOCK_REALTIME)`, which
//! glibc and musl serve from the vDSO, so reading it is not a syscall.

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
#[inline]
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
