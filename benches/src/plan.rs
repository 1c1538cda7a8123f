//! The schedule of a harness invocation and what it sums up to. For each record size and each
//! producer count, every repetition runs every contender once, starting with a different one
//! each time (round-robin), so a contender's neighbours in time are the others on the same
//! work and a noisy machine shifts them all alike. A configuration's summary is the median of
//! its repetitions (throughput, CPU) and the merge of their latency histograms.

use crate::cpu::Counters;
use crate::cpu_distance;
use crate::latency::{self, Percentiles};
use crate::record::SizeSpec;
use crate::roles::Contender;
use crate::run::{self, Config, Outcome, Settings};
use crate::BoxError;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Contenders, in table order.
    pub contenders: Vec<Contender>,
    /// Record sizes.
    pub sizes: Vec<SizeSpec>,
    /// Producer counts.
    pub producers: Vec<u32>,
    /// Records per run, over all producers (at most; see `max_bytes`).
    pub records: u64,
    /// Bytes per run, over all producers (at most): large records get fewer of them.
    pub max_bytes: u64,
    /// Repetitions of every configuration.
    pub reps: u32,
    /// Recycle page-cache pages from run to run (see [`run::PageRecycler`]).
    pub warm: bool,
}

impl Plan {
    /// The work of one configuration: the same total for every producer count, split evenly.
    pub fn config(&self, size: SizeSpec, producers: u32) -> Config {
        let by_bytes = (self.max_bytes as f64 / size.mean_len()) as u64;
        let total = self.records.min(by_bytes).max(u64::from(producers));
        Config {
            size,
            producers,
            per_producer: total / u64::from(producers),
        }
    }

    /// Runs in all.
    pub fn runs(&self) -> usize {
        self.contenders.len() * self.sizes.len() * self.producers.len() * self.reps as usize
    }
}

/// One repetition's numbers (the histogram goes into the summary's merge).
#[derive(Debug, Clone, Copy)]
pub struct RepStats {
    /// From the go to every record in the file.
    pub wall: Duration,
    /// From the go to the last producer's report that its writes are done.
    pub producers_done: Duration,
    /// Producer CPU, ns.
    pub cpu_producers_ns: u64,
    /// Drain or collector CPU, ns.
    pub cpu_server_ns: u64,
    /// Verified payload bytes.
    pub bytes: u64,
    /// For ringlog: the drain's `write(2)` batches.
    pub drain_batches: Option<u64>,
    /// For ringlog: the drain's spells writing on a second thread.
    pub drain_spells: Option<u64>,
    /// Producers' page faults and context switches.
    pub producer_counters: Counters,
    /// The drain's or collector's.
    pub server_counters: Counters,
    /// About one write in this many was timed.
    pub sample_every: u64,
    /// How long a cache line took to move between two CPUs, ns, just before and just after
    /// the run ([`crate::cpu_distance`]; `None`: not measurable then).
    pub cpus_apart_ns: [Option<f64>; 2],
}

/// A configuration's result for one contender.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Who.
    pub contender: Contender,
    /// The work.
    pub config: Config,
    /// Every repetition.
    pub reps: Vec<RepStats>,
    /// All repetitions' latencies.
    pub hist: Histogram<u64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Summary {
    fn new(o: &Outcome) -> Summary {
        Summary {
            contender: o.contender,
            config: o.config,
            reps: Vec::new(),
            hist: latency::histogram(),
        }
    }

    fn add(&mut self, o: Outcome, cpus_apart_ns: [Option<f64>; 2]) {
        latency::merge(&mut self.hist, &o.hist);
        self.reps.push(RepStats {
            wall: o.wall,
            producers_done: o.producers_done,
            cpu_producers_ns: o.cpu_producers_ns,
            cpu_server_ns: o.cpu_server_ns,
            bytes: o.bytes,
            drain_batches: o.drain_batches,
            drain_spells: o.drain_spells,
            producer_counters: o.producer_counters,
            server_counters: o.server_counters,
            sample_every: o.sample_every,
            cpus_apart_ns,
        });
    }

    /// The shortest and the longest move of a cache line between two CPUs measured around
    /// its repetitions, ns (`None` if none was measurable).
    pub fn cpus_apart_range(&self) -> Option<(f64, f64)> {
        let all = self.reps.iter().flat_map(|r| r.cpus_apart_ns).flatten();
        all.fold(None, |range, ns| match range {
            None => Some((ns, ns)),
            Some((lo, hi)) => Some((f64::min(lo, ns), f64::max(hi, ns))),
        })
    }

    /// Median records per second.
    pub fn records_per_sec(&self) -> f64 {
        let n = self.config.records() as f64;
        median(self.reps.iter().map(|r| n / r.wall.as_secs_f64()).collect())
    }

    /// Median MB/s.
    pub fn mb_per_sec(&self) -> f64 {
        median(
            self.reps
                .iter()
                .map(|r| r.bytes as f64 / 1e6 / r.wall.as_secs_f64())
                .collect(),
        )
    }

    /// Median CPU ns per record, all processes.
    pub fn cpu_per_record_ns(&self) -> f64 {
        let n = self.config.records() as f64;
        median(
            self.reps
                .iter()
                .map(|r| (r.cpu_producers_ns + r.cpu_server_ns) as f64 / n)
                .collect(),
        )
    }

    /// Median share of the CPU spent by the drain or collector.
    pub fn server_cpu_share(&self) -> f64 {
        median(
            self.reps
                .iter()
                .map(|r| {
                    r.cpu_server_ns as f64 / (r.cpu_producers_ns + r.cpu_server_ns).max(1) as f64
                })
                .collect(),
        )
    }

    /// Median wall time.
    pub fn wall(&self) -> Duration {
        Duration::from_secs_f64(median(
            self.reps.iter().map(|r| r.wall.as_secs_f64()).collect(),
        ))
    }

    /// Latency percentiles over all repetitions.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.hist)
    }
}

/// Runs the plan; `progress` gets one line per run. Stops at the first failure (an integrity
/// violation included).
pub fn execute(
    settings: &Settings,
    plan: &Plan,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Summary>, BoxError> {
    let mut summaries: Vec<Summary> = Vec::new();
    let total = plan.runs();
    let k = plan.contenders.len();
    let mut done = 0;
    let started = Instant::now();
    let mut pages = run::PageRecycler::new(plan.warm);
    for &size in &plan.sizes {
        for &n in &plan.producers {
            let config = plan.config(size, n);
            for rep in 0..plan.reps {
                for i in 0..k {
                    let contender = plan.contenders[(i + rep as usize) % k];
                    done += 1;
                    let apart_before = cpu_distance::line_transfer_ns();
                    let outcome =
                        run::run(settings, contender, config, &mut pages).map_err(|e| {
                            format!(
                                "{} with {n} producers x {} records of {}: {e}",
                                contender.name(),
                                config.per_producer,
                                size.label()
                            )
                        })?;
                    let apart = [apart_before, cpu_distance::line_transfer_ns()];
                    let mut batches = outcome.drain_batches.map_or(String::new(), |b| {
                        format!(
                            "; {b} drain writes of {:.0} KiB avg",
                            outcome.bytes as f64 / b.max(1) as f64 / 1024.0
                        )
                    });
                    if let Some(spells @ 1..) = outcome.drain_spells {
                        batches += &format!(", {spells} spells on a second thread");
                    }
                    let records = config.records() as f64;
                    let pc = outcome.producer_counters;
                    let sc = outcome.server_counters;
                    let server = if outcome.cpu_server_ns > 0 {
                        format!(
                            "; server: {:.3} faults/rec, {:.4} sleeps/rec",
                            sc.minflt as f64 / records,
                            sc.nvcsw as f64 / records
                        )
                    } else {
                        String::new()
                    };
                    let batches = format!(
                        "; producers: {:.3} faults/rec, {:.3} blocks/rec{server}{batches}",
                        pc.minflt as f64 / records,
                        pc.nvcsw as f64 / records
                    );
                    progress(&format!(
                        "[{done:>3}/{total}] {:>7} x{n} rep {}/{}  {:<8} {:>6.2} M rec/s {:>7.0} MB/s  \
                         p50 {:>7}  {:>6.0} ns CPU/rec  ({:.2} s; {:.0} s elapsed; {}{batches})",
                        size.label(),
                        rep + 1,
                        plan.reps,
                        contender.name(),
                        outcome.records_per_sec() / 1e6,
                        outcome.mb_per_sec(),
                        latency::fmt_ns(outcome.hist.value_at_quantile(0.5)),
                        outcome.cpu_per_record_ns(),
                        outcome.wall.as_secs_f64(),
                        started.elapsed().as_secs_f64(),
                        cpus_apart_line(apart)
                    ));
                    let at = summaries
                        .iter()
                        .position(|s| s.contender == contender && s.config == config);
                    let summary = match at {
                        Some(i) => &mut summaries[i],
                        None => {
                            summaries.push(Summary::new(&outcome));
                            summaries.last_mut().expect("just pushed")
                        }
                    };
                    summary.add(outcome, apart);
                }
            }
        }
    }
    // Table order: size, producers, contender.
    summaries.sort_by_key(|s| (s.config.size, s.config.producers, s.contender));
    Ok(summaries)
}

/// How far apart the CPUs were around a run, for its progress line.
fn cpus_apart_line(apart: [Option<f64>; 2]) -> String {
    let ns = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    format!(
        "line move {} ns before, {} after",
        ns(apart[0]),
        ns(apart[1])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_split_one_budget_over_producers() {
        let plan = Plan {
            contenders: vec![Contender::Ringlog],
            sizes: vec![],
            producers: vec![],
            records: 100_000,
            max_bytes: 64 << 20,
            reps: 1,
            warm: false,
        };
        let small = plan.config(SizeSpec::Fixed(64), 4);
        assert_eq!(small.per_producer, 25_000);
        let big = plan.config(SizeSpec::Fixed(65536), 8);
        assert_eq!(big.records(), 1024);
    }

    #[test]
    fn a_rows_line_moves_span_every_reading_of_its_repetitions() {
        let rep = |cpus_apart_ns| RepStats {
            wall: Duration::from_millis(10),
            producers_done: Duration::from_millis(9),
            cpu_producers_ns: 1,
            cpu_server_ns: 1,
            bytes: 1,
            drain_batches: None,
            drain_spells: None,
            producer_counters: Counters::default(),
            server_counters: Counters::default(),
            sample_every: 1,
            cpus_apart_ns,
        };
        let mut summary = Summary {
            contender: Contender::Ringlog,
            config: Config {
                size: SizeSpec::Fixed(128),
                producers: 2,
                per_producer: 1,
            },
            reps: vec![rep([None, None])],
            hist: latency::histogram(),
        };
        assert_eq!(summary.cpus_apart_range(), None, "nothing measured");
        summary.reps.push(rep([Some(33.0), None]));
        summary.reps.push(rep([Some(158.0), Some(14.0)]));
        assert_eq!(summary.cpus_apart_range(), Some((14.0, 158.0)));
        assert_eq!(
            cpus_apart_line([Some(33.4), None]),
            "line move 33 ns before, - after"
        );
    }
}
