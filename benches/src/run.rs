//! One timed run: N producers of one contender each write M records into one log file. The
//! clock starts when every process is set up (ring created and drained, files open, sockets
//! connected) and the harness says go; it stops when every record is in the file (for ringlog:
//! when the drain's `records_out` counter reaches the total, i.e. its last `write(2)` returned;
//! for the collector: when it has written its last batch; for the tracing reference: when its
//! file holds every byte; for the others: when the last producer has returned from its last
//! write). Process exits are not timed: a producer's exit (unmapping a prefaulted ring, say)
//! is not part of logging. The file is verified before the run returns anything: a violation is
//! an [`IntegrityViolation`] and the log is kept for inspection.

use crate::child::Fields;
use crate::child::Worker;
use crate::cpu::{process_counters, process_cpu_ns, Counters};
use crate::latency;
use crate::record::{self, SizeSpec};
use crate::roles::Contender;
use crate::{BoxError, IntegrityViolation};
use hdrhistogram::Histogram;
use ringlog_core::{Location, Segment, SegmentOptions};
use ringlog_drain::WriteThread;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often the harness looks at the drain's `records_out` counter.
pub const POLL: Duration = Duration::from_micros(500);

/// What every run shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This binary (re-executed for the producer and collector roles).
    pub exe: PathBuf,
    /// The `ringlog-drain` binary.
    pub drain: PathBuf,
    /// Where the logs go (each run gets a fresh subdirectory, removed after it).
    pub dir: PathBuf,
    /// Ring capacity for ringlog runs.
    pub ring_capacity: u64,
    /// The drain's `--write-thread` (when to write on a second thread while gathering).
    pub drain_write_thread: WriteThread,
    /// Longest a run may take.
    pub timeout: Duration,
    /// Time about one write in this many (1: every write); `None`: see
    /// [`latency::auto_sample_every`].
    pub sample_every: Option<u64>,
}

/// The work of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Config {
    /// Record sizes.
    pub size: SizeSpec,
    /// Producer processes (threads, for the tracing reference).
    pub producers: u32,
    /// Records each producer writes.
    pub per_producer: u64,
}

impl Config {
    /// Records in all.
    pub fn records(&self) -> u64 {
        self.per_producer * u64::from(self.producers)
    }
}

/// What one verified run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Who ran.
    pub contender: Contender,
    /// The work.
    pub config: Config,
    /// Payload bytes in the file (verified).
    pub bytes: u64,
    /// From the go to every record in the file.
    pub wall: Duration,
    /// From the go to the last producer's report that its writes are done.
    pub producers_done: Duration,
    /// CPU of the producer processes during their timed phase.
    pub cpu_producers_ns: u64,
    /// CPU of the drain or collector between the go and the end.
    pub cpu_server_ns: u64,
    /// Producer-side latency of each timed write call, all producers merged.
    pub hist: Histogram<u64>,
    /// For ringlog: the `write(2)` batches the drain made (from its exit report).
    pub drain_batches: Option<u64>,
    /// For ringlog: the drain's spells writing on a second thread (from its exit report).
    pub drain_spells: Option<u64>,
    /// Page faults and context switches of the producers during their timed phase.
    pub producer_counters: Counters,
    /// The same for the drain or collector, between the go and the end.
    pub server_counters: Counters,
    /// About one write in this many was timed.
    pub sample_every: u64,
}

impl Outcome {
    /// Records per second, end to end.
    pub fn records_per_sec(&self) -> f64 {
        self.config.records() as f64 / self.wall.as_secs_f64()
    }
    /// Megabytes (1e6) per second, end to end.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }
    /// CPU time of every process involved.
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_producers_ns + self.cpu_server_ns
    }
    /// CPU nanoseconds per record, all processes.
    pub fn cpu_per_record_ns(&self) -> f64 {
        self.cpu_ns() as f64 / self.config.records() as f64
    }
}

/// A name no other ring on this machine uses: `bench-<pid>-<n>` (what [`sweep_stale_rings`]
/// recognises).
pub fn unique_ring() -> String {
    ringlog_testkit::unique_ring("bench")
}

/// Removes the `/dev/shm/ringlog-bench-<pid>-*` segments of harness processes that are gone:
/// leftovers of an interrupted run. Returns how many it removed.
pub fn sweep_stale_rings() -> usize {
    sweep_stale(Path::new(ringlog_core::segment::SHM_DIR), |p| {
        std::fs::remove_file(p)
    })
}

/// Removes the temporary log directories (`ringlog-bench-<pid>-*` in `tmp`) of harness
/// processes that are gone. Returns how many it removed.
pub fn sweep_stale_dirs(tmp: &Path) -> usize {
    sweep_stale(tmp, |p| std::fs::remove_dir_all(p))
}

/// Removes, with `remove`, the entries `ringlog-bench-<pid>-*` of `dir` whose harness process
/// (pid) is gone. Returns how many it removed.
fn sweep_stale(dir: &Path, remove: impl Fn(&Path) -> std::io::Result<()>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("ringlog-bench-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && remove(&entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

pub use ringlog_testkit::{ring_path, RingGuard};

/// A run's directory, removed when dropped unless kept.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Starts `ringlog-drain --ring RING --out LOG --format raw` and waits until it runs.
pub fn start_drain(
    s: &Settings,
    ring: &str,
    log: &Path,
    stderr: &Path,
) -> Result<Worker, BoxError> {
    let mut cmd = Command::new(&s.drain);
    cmd.args(["--ring", ring, "--out"])
        .arg(log)
        .args([
            "--format",
            "raw",
            "--capacity",
            &s.ring_capacity.to_string(),
        ])
        .arg(format!(
            "--write-thread={}",
            match s.drain_write_thread {
                WriteThread::Auto => "auto",
                WriteThread::Always => "always",
                WriteThread::Never => "never",
            }
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(stderr)?);
    let mut drain = Worker::spawn("ringlog-drain", cmd)?;
    let ready = ringlog_testkit::wait_for_drain(
        ring,
        drain.pid(),
        Duration::from_secs(20),
        Duration::from_millis(1),
        || drain.try_exit(),
    );
    match ready {
        Ok(()) => Ok(drain),
        Err(e) => Err(format!(
            "ringlog-drain, ring {ring}: {e}: {}",
            std::fs::read_to_string(stderr).unwrap_or_default().trim()
        )
        .into()),
    }
}

/// The process that receives the records, if the contender has one.
enum Server {
    Drain {
        worker: Worker,
        /// Boxed: the variant would otherwise be hundreds of bytes larger than the other.
        segment: Box<Segment>,
        cpu0: u64,
        counters0: Counters,
        stderr: PathBuf,
        _ring: RingGuard,
    },
    Collector(Worker),
}

/// Hands page-cache pages from one run to the next. The log of a run is deleted only when the
/// next run is set up and about to start, so the pages it frees are the ones the next run's
/// file gets (on a VM whose host reclaims free guest memory, pages freed long before cost a
/// host fault when touched again; and setting up a ringlog run allocates its ring, which
/// would take recently freed pages first); then as many bytes as the run will write are
/// written in 1 MiB writes and deleted ([`warm_page_cache`]). Every contender is treated the
/// same way.
#[derive(Debug, Default)]
pub struct PageRecycler {
    previous: Option<RunDir>,
    /// Off: logs are deleted at once and nothing is warmed.
    pub disabled: bool,
}

impl PageRecycler {
    /// A recycler; `enabled` false deletes each log at once and warms nothing.
    pub fn new(enabled: bool) -> PageRecycler {
        PageRecycler {
            previous: None,
            disabled: !enabled,
        }
    }

    /// Frees the previous run's log, then writes and deletes `bytes` in 1 MiB writes, for a
    /// run writing `bytes`. The 1 MiB writes matter: the kernel serves large writes with large
    /// folios, which come from large free blocks; freeing the previous log (small folios, if
    /// its writer made small writes) does not make those warm, and a drain writing 1 MiB
    /// batches would get cold ones while small-write contenders get recycled pages.
    fn release_for(&mut self, dir: &Path, bytes: u64) -> std::io::Result<()> {
        drop(self.previous.take());
        if !self.disabled {
            warm_page_cache(dir, bytes)?;
        }
        Ok(())
    }

    /// Keeps a finished run's directory until the next run is about to start.
    fn keep(&mut self, dir: RunDir) {
        if !self.disabled {
            self.previous = Some(dir);
        }
    }
}

/// Runs `contender` on `config` once and verifies the log. `pages` holds the previous run's
/// log until this run's setup is done (see [`PageRecycler`]).
pub fn run(
    s: &Settings,
    contender: Contender,
    config: Config,
    pages: &mut PageRecycler,
) -> Result<Outcome, BoxError> {
    let ring = unique_ring();
    let mut dir = RunDir {
        path: s.dir.join(&ring),
        keep: false,
    };
    std::fs::create_dir_all(&dir.path)?;
    let log = dir.path.join("log");
    let deadline = Instant::now() + s.timeout;
    let n = config.producers;
    let total = config.records();

    let mut server = match contender {
        Contender::Ringlog => {
            let guard = RingGuard(ring.clone());
            let stderr = dir.path.join("drain.stderr");
            let worker = start_drain(s, &ring, &log, &stderr)?;
            let segment = Segment::open(
                &Location::Name(ring.clone()),
                &SegmentOptions {
                    create: false,
                    ..Default::default()
                },
            )?;
            Some(Server::Drain {
                worker,
                segment: Box::new(segment),
                cpu0: 0,
                counters0: Counters::default(),
                stderr,
                _ring: guard,
            })
        }
        Contender::Socket => {
            let mut cmd = Command::new(&s.exe);
            cmd.arg("__collect")
                .arg("--socket")
                .arg(dir.path.join("sock"))
                .arg("--out")
                .arg(&log)
                .args(["--producers", &n.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped());
            let mut w = Worker::spawn("collector", cmd)?;
            w.expect("ready", deadline)?;
            Some(Server::Collector(w))
        }
        _ => None,
    };

    let hist_path = |id: u32| dir.path.join(format!("hist-{id}"));
    let sample_every = s
        .sample_every
        .unwrap_or_else(|| latency::auto_sample_every(config.per_producer));
    let mut producers = Vec::new();
    if contender == Contender::Tracing {
        let mut cmd = Command::new(&s.exe);
        cmd.arg("__threads")
            .args(["--threads", &n.to_string()])
            .args(["--records", &config.per_producer.to_string()])
            .args(["--size", &config.size.arg()])
            .arg("--out")
            .arg(&log)
            .arg("--hist")
            .arg(hist_path(0))
            .args(["--sample-every", &sample_every.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        producers.push(Worker::spawn("tracing reference", cmd)?);
    } else {
        let target = match contender {
            Contender::Ringlog => ring.clone(),
            Contender::Socket => dir.path.join("sock").display().to_string(),
            _ => log.display().to_string(),
        };
        for id in 0..n {
            let mut cmd = Command::new(&s.exe);
            cmd.arg("__produce")
                .args(["--contender", contender.name()])
                .args(["--id", &id.to_string()])
                .args(["--records", &config.per_producer.to_string()])
                .args(["--size", &config.size.arg()])
                .args(["--target", &target])
                .arg("--hist")
                .arg(hist_path(id))
                .args(["--sample-every", &sample_every.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            producers.push(Worker::spawn(
                format!("{} producer {id}", contender.name()),
                cmd,
            )?);
        }
    }
    for p in &mut producers {
        p.expect("ready", deadline)?;
    }

    if let Some(Server::Drain {
        worker,
        cpu0,
        counters0,
        ..
    }) = &mut server
    {
        *counters0 = process_counters(worker.pid())?;
        *cpu0 = process_cpu_ns(worker.pid())?;
    }
    pages.release_for(&s.dir, config.size.total_bytes(n, config.per_producer))?;
    let t0 = Instant::now();
    for p in &mut producers {
        p.go()?;
    }
    let mut cpu_producers_ns = 0;
    let mut producer_counters = Counters::default();
    for p in &mut producers {
        let done = p.expect("done", deadline)?;
        cpu_producers_ns += done.u64("cpu_ns")?;
        add_counters(&mut producer_counters, &done);
    }
    // Every producer has returned from its last write. Their exits (unmapping a ring, closing
    // files) are not part of the work: they linger until `wait` closes their stdin, after the
    // clock has stopped, so their teardown does not compete with a drain still being timed.
    let producers_done = t0.elapsed();

    let mut drain_batches = None;
    let mut drain_spells = None;
    let mut server_counters = Counters::default();
    let (wall, cpu_server_ns) = match &mut server {
        None => (producers_done, 0),
        Some(Server::Collector(w)) => {
            let done = w.expect("done", deadline)?;
            let wall = t0.elapsed();
            w.wait(deadline)?;
            add_counters(&mut server_counters, &done);
            (wall, done.u64("cpu_ns")?)
        }
        Some(Server::Drain {
            worker,
            segment,
            cpu0,
            counters0,
            stderr,
            ..
        }) => {
            loop {
                // A counter; the file is checked afterwards anyway.
                let written = segment.ring().counters().records_out;
                if written >= total {
                    break;
                }
                if let Some(status) = worker.try_exit() {
                    return Err(format!(
                        "ringlog-drain exited mid-run ({status}) after {written} of {total} records: {}",
                        std::fs::read_to_string(&*stderr).unwrap_or_default().trim()
                    )
                    .into());
                }
                if Instant::now() > deadline {
                    dir.keep = true;
                    return Err(format!(
                        "ringlog-drain wrote {written} of {total} records before the timeout; \
                         logs kept in {}",
                        dir.path.display()
                    )
                    .into());
                }
                // Every 500 us: finer polling would steal CPU from the drain on a small machine
                // (the end time is late by at most this much).
                std::thread::sleep(POLL);
            }
            let wall = t0.elapsed();
            let cpu = process_cpu_ns(worker.pid())? - *cpu0;
            server_counters = process_counters(worker.pid())?.since(counters0);
            worker.signal(rustix::process::Signal::TERM)?;
            worker.wait(Instant::now() + Duration::from_secs(30))?;
            let exit = std::fs::read_to_string(&*stderr).unwrap_or_default();
            drain_batches = reported(&exit, "batches;");
            drain_spells = reported(&exit, "spells");
            (wall, cpu)
        }
    };

    for p in &mut producers {
        p.wait(deadline)?;
    }
    let verdict = record::verify(&log, n, config.per_producer, config.size)?;
    if !verdict.is_perfect() {
        dir.keep = true;
        return Err(Box::new(IntegrityViolation(format!(
            "{} with {n} producers x {} records of {}: {}; log kept at {}",
            contender.name(),
            config.per_producer,
            config.size.label(),
            verdict.summary(),
            log.display()
        ))));
    }
    let mut hist = latency::histogram();
    for id in 0..producers.len() as u32 {
        latency::merge(&mut hist, &latency::load(&hist_path(id))?);
    }
    drop(server);
    pages.keep(dir);
    Ok(Outcome {
        contender,
        config,
        bytes: verdict.bytes,
        wall,
        producers_done,
        cpu_producers_ns,
        cpu_server_ns,
        hist,
        drain_batches,
        drain_spells,
        producer_counters,
        server_counters,
        sample_every,
    })
}

fn add_counters(into: &mut Counters, report: &Fields) {
    into.minflt += report.u64("minflt").unwrap_or(0);
    into.nvcsw += report.u64("nvcsw").unwrap_or(0);
    into.nivcsw += report.u64("nivcsw").unwrap_or(0);
}

/// The number before `word` in the drain's exit line (`... N bytes in B batches; ...; S spells
/// writing on a second thread ...`).
fn reported(stderr: &str, word: &str) -> Option<u64> {
    let line = stderr.lines().rev().find(|l| l.contains(" stopped: "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == word)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

pub use ringlog_testkit::warm_page_cache;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_exit_line_gives_its_batches_and_spells() {
        let line = "ringlog-drain: ring 'bench-1-0' stopped: 1000 records, 128000 bytes in 7 batches; 0 abandoned claims skipped, 0 corrupt stretches; 3 spells writing on a second thread (1 cut short)\n";
        assert_eq!(reported(line, "batches;"), Some(7));
        assert_eq!(reported(line, "spells"), Some(3));
        assert_eq!(reported("nothing", "batches;"), None);
    }
}
