//! Producer-side latency: one HdrHistogram per producer (nanoseconds, 3 significant digits),
//! saved to a file with the V2 serializer by the producer process and merged by the harness;
//! and the quantiles the report and the chart read from it.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// Largest latency a histogram tracks (larger ones are recorded as this): one hour.
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// An empty latency histogram: 1 ns to [`MAX_TRACKED_NS`], 3 significant digits. Fixed bounds
/// (no auto-resize) keep the recording cost constant inside the producers' loops.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid histogram bounds")
}

/// Writes `h` to `path` (V2 format).
pub fn save(h: &Histogram<u64>, path: &Path) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    V2Serializer::new()
        .serialize(h, &mut out)
        .map_err(|e| io::Error::other(format!("cannot serialise a histogram: {e:?}")))?;
    out.flush()
}

/// Reads a histogram [`save`] wrote.
pub fn load(path: &Path) -> io::Result<Histogram<u64>> {
    let mut input = BufReader::new(File::open(path)?);
    Deserializer::new()
        .deserialize(&mut input)
        .map_err(|e| io::Error::other(format!("cannot read histogram {}: {e:?}", path.display())))
}

/// Adds `from` into `into`.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("histograms made by `histogram()` share their bounds and always merge");
}

/// The quantiles the CDF in the JSON and the chart is drawn from.
pub const CDF_QUANTILES: [f64; 22] = [
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 0.9995,
    0.9999, 0.99995, 0.99999, 0.999999, 1.0,
];

/// The latency summary of one configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median, ns.
    pub p50: u64,
    /// 99th percentile, ns.
    pub p99: u64,
    /// 99.9th percentile, ns.
    pub p999: u64,
    /// Largest, ns.
    pub max: u64,
}

impl Percentiles {
    /// Reads them off `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// `(quantile, ns)` points of the CDF, one per [`CDF_QUANTILES`] entry the sample count can
/// resolve.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    let n = h.len() as f64;
    CDF_QUANTILES
        .iter()
        .filter(|&&q| q == 1.0 || (1.0 - q) * n >= 1.0)
        .map(|&q| (q, h.value_at_quantile(q)))
        .collect()
}

/// The cost of the timing itself: the median of [`Stopwatch`] readings with nothing between
/// them. Every producer latency includes it once.
pub fn timer_floor_ns(watch: &Stopwatch) -> u64 {
    let mut h = histogram();
    for _ in 0..200_000 {
        let ((), ns) = watch.time(|| ());
        h.saturating_record(ns);
    }
    h.value_at_quantile(0.5)
}

/// Times one call as cheaply as the machine allows, so a ~30 ns write is not buried under its
/// own measurement. Where the kernel itself keeps time with the TSC (the condition under which
/// ringlog stamps records with it, [`ringlog_core::clock::ticks_usable`]): `lfence; rdtsc`
/// around the call (the fences keep the call's instructions between the two reads), converted
/// at a rate calibrated against the monotonic clock. Elsewhere: `Instant::now()` pairs.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    ns_per_tick: Option<f64>,
}

impl Stopwatch {
    /// A stopwatch, calibrated now (sleeps ~10 ms when it uses the TSC).
    pub fn calibrated() -> Stopwatch {
        #[cfg(target_arch = "x86_64")]
        if ringlog_core::clock::ticks_usable() {
            let (t0, c0) = (Instant::now(), fenced_ticks());
            std::thread::sleep(std::time::Duration::from_millis(10));
            let (c1, ns) = (fenced_ticks(), t0.elapsed().as_nanos());
            return Stopwatch {
                ns_per_tick: Some(ns as f64 / c1.wrapping_sub(c0).max(1) as f64),
            };
        }
        Stopwatch { ns_per_tick: None }
    }

    /// What it reads: `"TSC"` or `"Instant::now()"`.
    pub fn source(&self) -> &'static str {
        if self.ns_per_tick.is_some() {
            "TSC"
        } else {
            "Instant::now()"
        }
    }

    /// Runs `f`, returning its result and how long it took in ns.
    #[inline(always)]
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> (R, u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some(rate) = self.ns_per_tick {
            let start = fenced_ticks();
            let r = f();
            let ticks = fenced_ticks().wrapping_sub(start);
            return (r, (ticks as f64 * rate) as u64);
        }
        let start = Instant::now();
        let r = f();
        (r, start.elapsed().as_nanos() as u64)
    }
}

/// The TSC, read after every earlier instruction has completed and before any later one starts.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fenced_ticks() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` and `rdtsc` exist on every x86-64 CPU (SSE2 is baseline) and touch no
    // memory.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// Decides which write calls are timed: each with probability `1/every` (`every` a power of
/// two), drawn from a xorshift generator, so the timed writes do not fall into step with any
/// period of the work (record sizes, cache lines, pages), as every n-th would. Costs a couple
/// of nanoseconds per call; the timing it saves costs tens of ns (two clock reads and a
/// histogram update).
#[derive(Debug, Clone)]
pub struct Sampler {
    mask: u64,
    state: u64,
}

impl Sampler {
    /// Times about one call in `every` (rounded up to a power of two; 1 times all).
    pub fn new(every: u64, seed: u64) -> Sampler {
        Sampler {
            mask: every.max(1).next_power_of_two() - 1,
            state: seed | 1,
        }
    }

    /// Whether to time this call.
    #[inline]
    pub fn hit(&mut self) -> bool {
        if self.mask == 0 {
            return true;
        }
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x & self.mask == 0
    }
}

/// The sampling of a run with `per_producer` writes per producer when none is asked for: at
/// least about 10,000 timed writes per producer (50,000 and more per configuration over the
/// default 5 repetitions), as few as that allows.
pub fn auto_sample_every(per_producer: u64) -> u64 {
    let every = (per_producer / 10_000).max(1);
    // Round down to a power of two, so at least 10k remain.
    1 << (63 - every.leading_zeros())
}

/// Formats nanoseconds for tables: `35 ns`, `1.2 us`, `14 ms`.
pub fn fmt_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 10_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{} us", ns / 1_000)
    } else if ns < 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{} ms", ns / 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_a_file_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = histogram();
        for v in 1..=1000u64 {
            a.record(v * 10).unwrap();
        }
        let path = dir.path().join("h");
        save(&a, &path).unwrap();
        let b = load(&path).unwrap();
        assert_eq!(b.len(), 1000);
        let mut m = histogram();
        merge(&mut m, &a);
        merge(&mut m, &b);
        assert_eq!(m.len(), 2000);
        let p = Percentiles::of(&m);
        assert!((4990..=5010).contains(&p.p50), "{p:?}");
        assert_eq!(cdf(&m).last().unwrap().0, 1.0);
    }

    #[test]
    fn the_sampler_times_about_one_in_every() {
        let mut s = Sampler::new(8, 42);
        let hits = (0..80_000).filter(|_| s.hit()).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        let mut all = Sampler::new(1, 7);
        assert!((0..100).all(|_| all.hit()));
        assert_eq!(auto_sample_every(300_000), 16);
        assert_eq!(auto_sample_every(75_000), 4);
        assert_eq!(auto_sample_every(1_000), 1);
    }

    #[test]
    fn durations_format_for_tables() {
        assert_eq!(fmt_ns(35), "35 ns");
        assert_eq!(fmt_ns(1234), "1.2 us");
        assert_eq!(fmt_ns(45_000), "45 us");
        assert_eq!(fmt_ns(1_500_000), "1.5 ms");
        assert_eq!(fmt_ns(25_000_000), "25 ms");
    }
}
