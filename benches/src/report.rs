//! What a harness invocation prints and saves: the tables on stdout and the JSON document.
//! Everything here reads verified results; nothing here measures.

use crate::drain_probe::{DrainAlone, IdleReport, PageCacheProbe, Sink};
use crate::latency::{self, fmt_ns, Percentiles};
use crate::machine::{Load, Machine};
use crate::plan::{Plan, Summary};
use crate::record::SizeSpec;
use crate::roles::Contender;
use ringlog_drain::WriteThread;
use serde_json::{json, Value};
use std::fmt::Write;

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Results<'a> {
    /// The machine.
    pub machine: &'a Machine,
    /// What was run.
    pub plan: &'a Plan,
    /// `quick`, `full` or `custom`.
    pub mode: &'a str,
    /// The median cost of timing nothing, included in every producer latency.
    pub timer_floor_ns: u64,
    /// What the producers timed with ([`crate::latency::Stopwatch::source`]).
    pub timer_source: &'static str,
    /// About one write in this many was timed (`None`: automatic, per run).
    pub sample_every: Option<u64>,
    /// Per configuration and contender.
    pub summaries: &'a [Summary],
    /// Drain-alone runs.
    pub drain_alone: &'a [DrainAlone],
    /// The idle drain, if measured.
    pub idle: Option<&'a IdleReport>,
    /// How busy the machine was at the start and at the end.
    pub load: (Load, Load),
    /// Plain writes by size after a pause.
    pub page_cache: &'a [PageCacheProbe],
}

fn find(s: &[Summary], c: Contender, size: SizeSpec, n: u32) -> Option<&Summary> {
    s.iter()
        .find(|x| x.contender == c && x.config.size == size && x.config.producers == n)
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "-".to_owned()
    }
}

impl Results<'_> {
    /// The table of contender runs.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<7} {:>2}  {:<9} {:>8} {:>9} {:>7} {:>8}  {:>8} {:>8} {:>8} {:>8}  {:>9} {:>7} {:>8}  {:>11}",
            "size",
            "N",
            "contender",
            "records",
            "rec/s",
            "MB/s",
            "vs O_APP",
            "p50",
            "p99",
            "p99.9",
            "max",
            "CPU/rec",
            "server",
            "vs O_APP",
            "line move"
        );
        let mut last = None;
        for s in self.summaries {
            let key = (s.config.size, s.config.producers);
            if last.is_some_and(|l| l != key) {
                t.push('\n');
            }
            last = Some(key);
            let base = find(self.summaries, Contender::Append, key.0, key.1);
            let p = s.percentiles();
            let _ = writeln!(
                t,
                "{:<7} {:>2}  {:<9} {:>8} {:>9} {:>7.0} {:>8}  {:>8} {:>8} {:>8} {:>8}  {:>6.0} ns {:>6.0}% {:>8}  {:>11}",
                s.config.size.label(),
                s.config.producers,
                s.contender.name(),
                s.config.records(),
                si(s.records_per_sec()),
                s.mb_per_sec(),
                base.map_or("-".into(), |b| ratio(s.records_per_sec(), b.records_per_sec())),
                fmt_ns(p.p50),
                fmt_ns(p.p99),
                fmt_ns(p.p999),
                fmt_ns(p.max),
                s.cpu_per_record_ns(),
                s.server_cpu_share() * 100.0,
                base.map_or("-".into(), |b| ratio(s.cpu_per_record_ns(), b.cpu_per_record_ns())),
                s.cpus_apart_range()
                    .map_or("-".into(), |(lo, hi)| format!("{lo:.0}-{hi:.0} ns")),
            );
        }
        t
    }

    /// The drain-alone and idle sections.
    pub fn drain_table(&self) -> String {
        let mut t = String::new();
        if !self.drain_alone.is_empty() {
            let _ = writeln!(
                t,
                "drain alone (a full {} MiB ring emptied by an in-process Drain{}; \
                 file: in {} ({}){}; /dev/null: no filesystem):",
                self.drain_alone[0].capacity >> 20,
                match self.drain_alone[0].write_thread {
                    WriteThread::Always => " writing on a second thread",
                    WriteThread::Auto => ", a second thread writing while it is behind (auto)",
                    WriteThread::Never => " in one thread",
                },
                self.machine.dir,
                self.machine.dir_fs,
                if self.plan.warm {
                    ", page cache warmed"
                } else {
                    ""
                }
            );
            let main_ring = self.drain_alone[0].capacity;
            for d in self.drain_alone {
                let ring = if d.capacity == main_ring {
                    String::new()
                } else {
                    format!(" in a {} MiB ring", d.capacity >> 20)
                };
                let ring = match d.write_thread {
                    WriteThread::Auto => format!(
                        "{ring} (second thread in {} of {} laps, {} spells cut short)",
                        d.laps_with_write_thread,
                        crate::drain_probe::WARM_LAPS,
                        d.spells_cut_short
                    ),
                    _ => ring,
                };
                let _ = writeln!(
                    t,
                    "  {:<4} {:>6} B records{ring} -> {:<9} {:>7} records, {:>6.1} MB in {:>6.1} ms: {:>5.2} GB/s, \
                     {:>6.1} ns/record (best lap {:.2} GB/s; first lap, cold mapping: {:.2} GB/s){}",
                    format!("{:?}", d.format).to_lowercase(),
                    d.size,
                    match d.sink {
                        Sink::File => "file",
                        Sink::DevNull => "/dev/null",
                    },
                    d.records,
                    d.bytes_out as f64 / 1e6,
                    d.elapsed.as_secs_f64() * 1e3,
                    d.gb_per_sec(),
                    d.ns_per_record(),
                    d.best_gb_per_sec(),
                    d.cold_gb_per_sec(),
                    match (d.plain_gb_per_sec(), d.plain_reserved_gb_per_sec()) {
                        (Some(p), Some(r)) => format!(
                            "   (plain 1 MiB write(2)s of the same bytes: {p:.2} GB/s; into blocks reserved as the drain does: {r:.2} GB/s{})",
                            d.copy_then_write_gb_per_sec().map_or(String::new(), |c| format!(
                                "; copied out of a ring-like buffer, then written, in one thread: {c:.2} GB/s"
                            ))
                        ),
                        _ => String::new(),
                    }
                );
            }
        }
        if !self.page_cache.is_empty() {
            let _ = writeln!(
                t,
                "page cache of {} ({}), plain write(2)s of one size into a fresh file after a pause:",
                self.machine.dir, self.machine.dir_fs
            );
            for p in self.page_cache {
                let _ = writeln!(
                    t,
                    "  {:>7} B writes, {:.0} MB after a {:.0} s pause: {:.2} GB/s",
                    p.write_size,
                    p.bytes as f64 / 1e6,
                    p.pause.as_secs_f64(),
                    p.gb_per_sec()
                );
            }
        }
        if let Some(idle) = self.idle {
            let _ = writeln!(
                t,
                "idle drain: {:.3}% of one CPU over {:.1} s with nothing to write",
                idle.idle_cpu_percent,
                idle.idle_measured.as_secs_f64()
            );
            for g in &idle.gaps {
                let p = g.percentiles();
                let a = Percentiles::of(&g.asleep);
                let b = Percentiles::of(&g.baseline);
                let _ = writeln!(
                    t,
                    "  write -> in the file after a {:>3} ms pause: p50 {:>8}  p99 {:>8}  max {:>8}  ({} samples; \
                     {} found the drain asleep: p50 {}, max {})",
                    g.gap.as_millis(),
                    fmt_ns(p.p50),
                    fmt_ns(p.p99),
                    fmt_ns(p.max),
                    p.count,
                    a.count,
                    fmt_ns(a.p50),
                    fmt_ns(a.max)
                );
                let _ = writeln!(
                    t,
                    "    machine floor, same pause (a thread woken through a socket appends a line): p50 {:>8}  max {:>8}",
                    fmt_ns(b.p50),
                    fmt_ns(b.max)
                );
            }
        }
        t
    }

    /// The whole JSON document.
    pub fn to_json(&self, command: &[String]) -> Value {
        let results: Vec<Value> = self
            .summaries
            .iter()
            .map(|s| {
                let base = find(self.summaries, Contender::Append, s.config.size, s.config.producers);
                let p: Percentiles = s.percentiles();
                json!({
                    "contender": s.contender.name(),
                    "size": s.config.size.arg(),
                    "size_label": s.config.size.label(),
                    "mean_record_bytes": s.config.size.mean_len(),
                    "producers": s.config.producers,
                    "records": s.config.records(),
                    "records_per_producer": s.config.per_producer,
                    "records_per_sec": s.records_per_sec(),
                    "mb_per_sec": s.mb_per_sec(),
                    "wall_s_median": s.wall().as_secs_f64(),
                    "cpu_ns_per_record": s.cpu_per_record_ns(),
                    "server_cpu_share": s.server_cpu_share(),
                    "vs_o_append": base.map(|b| json!({
                        "records_per_sec": s.records_per_sec() / b.records_per_sec(),
                        "cpu_per_record": s.cpu_per_record_ns() / b.cpu_per_record_ns(),
                    })),
                    "latency_ns": {
                        "samples": p.count,
                        "p50": p.p50,
                        "p99": p.p99,
                        "p99_9": p.p999,
                        "max": p.max,
                        "cdf": latency::cdf(&s.hist).iter().map(|(q, v)| json!([q, v])).collect::<Vec<_>>(),
                    },
                    "reps": s.reps.iter().map(|r| json!({
                        "wall_s": r.wall.as_secs_f64(),
                        "producers_done_s": r.producers_done.as_secs_f64(),
                        "cpu_producers_ns": r.cpu_producers_ns,
                        "cpu_server_ns": r.cpu_server_ns,
                        "bytes": r.bytes,
                        "drain_write_batches": r.drain_batches,
                        "drain_write_thread_spells": r.drain_spells,
                        "latency_sample_every": r.sample_every,
                        "cpu_line_transfer_ns": {"before": r.cpus_apart_ns[0], "after": r.cpus_apart_ns[1]},
                        "producers": {"minor_faults": r.producer_counters.minflt,
                                      "voluntary_csw": r.producer_counters.nvcsw,
                                      "involuntary_csw": r.producer_counters.nivcsw},
                        "server": {"minor_faults": r.server_counters.minflt,
                                   "voluntary_csw": r.server_counters.nvcsw,
                                   "involuntary_csw": r.server_counters.nivcsw},
                        "verified": true,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let drain_alone: Vec<Value> = self
            .drain_alone
            .iter()
            .map(|d| {
                json!({
                    "format": format!("{:?}", d.format).to_lowercase(),
                    "sink": match d.sink { Sink::File => "file", Sink::DevNull => "/dev/null" },
                    "record_bytes": d.size,
                    "ring_capacity": d.capacity,
                    "write_thread": format!("{:?}", d.write_thread).to_lowercase(),
                    "laps_with_write_thread": d.laps_with_write_thread,
                    "write_thread_spells_cut_short": d.spells_cut_short,
                    "records": d.records,
                    "bytes_out": d.bytes_out,
                    "seconds": d.elapsed.as_secs_f64(),
                    "gb_per_sec": d.gb_per_sec(),
                    "best_lap_seconds": d.best.as_secs_f64(),
                    "best_lap_gb_per_sec": d.best_gb_per_sec(),
                    "steady_laps_seconds": d.laps.iter().map(|l| l.as_secs_f64()).collect::<Vec<_>>(),
                    "first_lap_seconds": d.cold.as_secs_f64(),
                    "first_lap_gb_per_sec": d.cold_gb_per_sec(),
                    "ns_per_record": d.ns_per_record(),
                    "plain_1mib_write_gb_per_sec": d.plain_gb_per_sec(),
                    "plain_1mib_write_reserved_gb_per_sec": d.plain_reserved_gb_per_sec(),
                    "copy_then_write_gb_per_sec": d.copy_then_write_gb_per_sec(),
                })
            })
            .collect();
        let idle = self.idle.map(|i| {
            json!({
                "idle_cpu_percent": i.idle_cpu_percent,
                "idle_measured_s": i.idle_measured.as_secs_f64(),
                "write_to_file_latency": i.gaps.iter().map(|g| {
                    let p = g.percentiles();
                    let a = Percentiles::of(&g.asleep);
                    let b = Percentiles::of(&g.baseline);
                    json!({"pause_ms": g.gap.as_millis() as u64, "samples": p.count,
                           "p50_ns": p.p50, "p99_ns": p.p99, "max_ns": p.max,
                           "drain_was_asleep": {"samples": a.count, "p50_ns": a.p50, "max_ns": a.max},
                           "machine_wakeup_floor": {"samples": b.count, "p50_ns": b.p50, "p99_ns": b.p99, "max_ns": b.max}})
                }).collect::<Vec<_>>(),
            })
        });
        json!({
            "tool": "ringlog-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "command": command,
            "mode": self.mode,
            "machine": self.machine.to_json(),
            "load_at_start": self.load.0.to_json(),
            "load_at_end": self.load.1.to_json(),
            "timer_floor_ns": self.timer_floor_ns,
            "timer_source": self.timer_source,
            "latency_sample_every": self.sample_every.map_or(json!("auto: at least ~20000 timed writes per producer per run"), |n| json!(n)),
            "plan": {
                "contenders": self.plan.contenders.iter().map(|c| json!({"name": c.name(), "what": c.description()})).collect::<Vec<_>>(),
                "sizes": self.plan.sizes.iter().map(|s| s.arg()).collect::<Vec<_>>(),
                "producers": self.plan.producers,
                "records_per_run_max": self.plan.records,
                "bytes_per_run_max": self.plan.max_bytes,
                "reps": self.plan.reps,
            },
            "integrity": "every run's log verified before reporting: each record exactly once, untorn, in order per producer",
            "results": results,
            "drain_alone": drain_alone,
            "page_cache_after_pause": self.page_cache.iter().map(|p| json!({
                "write_size": p.write_size,
                "pause_s": p.pause.as_secs_f64(),
                "bytes": p.bytes,
                "seconds": p.elapsed.as_secs_f64(),
                "gb_per_sec": p.gb_per_sec(),
            })).collect::<Vec<_>>(),
            "idle": idle,
        })
    }
}
