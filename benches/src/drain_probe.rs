//! Two measurements of the drain on its own, beside the contender runs.
//!
//! - **Drain alone**: a ring is filled with records while the drain does nothing, then an
//!   in-process [`Drain`] empties it (`run`, told to stop once all is written) into a file on
//!   the log directory's filesystem (or /dev/null); the time of that alone gives the drain's
//!   throughput into the page cache, per format. The first lap finds the drain's mapping
//!   untouched (a restarted drain pays a page fault per 64 KiB or so), the next ones are the
//!   steady state. After each of those, the same bytes are written three other ways to compare
//!   with: plain 1 MiB
//!   `write(2)` calls as any program makes them; the same with the blocks reserved ahead as the
//!   drain reserves them ([`ringlog_drain::preallocate`]); and, for the raw format, copied out
//!   of a buffer laid out like the ring and written in batches in one thread, the floor of a
//!   one-thread drain ([`copy_then_write`]).
//! - **Idle latency**: a real `ringlog-drain` process on an idle ring; a record is written after
//!   a pause and the time until the file has grown by it is measured (busy-polling `fstat`),
//!   repeated, for a short pause (the drain is still napping) and a long one (it has announced
//!   its sleep and must be woken by the producer's futex call), each beside the machine's own
//!   wake-up floor measured the same way (a thread woken through a socket appends a line).
//!   The drain's CPU while nothing is written is measured too.

use crate::cpu::process_cpu_ns;
use crate::latency::{self, Percentiles};
use crate::record::{self, RecordBuf, SizeSpec};
use crate::run::{self, RingGuard, Settings};
use crate::{BoxError, IntegrityViolation};
use hdrhistogram::Histogram;
use ringlog_core::{layout, Location, Segment, SegmentOptions, FRAME_HEADER_SIZE};
use ringlog_drain::preallocate::Preallocation;
use ringlog_drain::{Drain, DrainOptions, Format, OutputSpec, WriteThread};
use ringlog_writer::{FullPolicy, Writer};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Where a drain-alone run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A file in the log directory (the page cache of its filesystem).
    File,
    /// /dev/null: the drain's own cost, no filesystem.
    DevNull,
}

/// The drain emptying a full ring, nothing else running.
#[derive(Debug, Clone)]
pub struct DrainAlone {
    /// Output format.
    pub format: Format,
    /// Where it wrote.
    pub sink: Sink,
    /// Record size (bytes, newline included).
    pub size: usize,
    /// Capacity of the ring it emptied.
    pub capacity: u64,
    /// When the drain wrote on a second thread ([`DrainOptions::write_thread`]).
    pub write_thread: WriteThread,
    /// Steady laps in which it did (of [`WARM_LAPS`]).
    pub laps_with_write_thread: usize,
    /// Spells of the writing thread in the steady laps that were cut short (its threads waited
    /// for a CPU, or wrote no faster than one thread; [`WriteThread::Auto`]).
    pub spells_cut_short: u64,
    /// Records drained per lap.
    pub records: u64,
    /// Bytes the drain wrote per lap.
    pub bytes_out: u64,
    /// Time to empty the ring the first time (the drain's mapping untouched, as after a drain
    /// restart).
    pub cold: Duration,
    /// Time to empty it again, steady state: the median of [`WARM_LAPS`] laps.
    pub elapsed: Duration,
    /// The fastest of those laps.
    pub best: Duration,
    /// Every steady-state lap, in order.
    pub laps: Vec<Duration>,
    /// Time plain 1 MiB `write(2)`s of as many bytes took, to a fresh file beside it (for a
    /// file sink): the median of [`WARM_LAPS`] timings, one right after each steady lap.
    pub plain_write: Option<Duration>,
    /// The same, with blocks reserved ahead of the file's end as the drain reserves them.
    pub plain_write_reserved: Option<Duration>,
    /// The floor of this design in one thread ([`copy_then_write`]): the same payloads copied
    /// out of a ring-sized buffer laid out like the ring into 1 MiB batches, each written into
    /// reserved blocks before the next is copied.
    pub copy_then_write: Option<Duration>,
}

impl DrainAlone {
    /// GB/s (1e9) of this run's bytes written in `took`.
    fn gb_per_sec_in(&self, took: Duration) -> f64 {
        self.bytes_out as f64 / 1e9 / took.as_secs_f64()
    }
    /// GB/s (1e9) written by the drain, steady state.
    pub fn gb_per_sec(&self) -> f64 {
        self.gb_per_sec_in(self.elapsed)
    }
    /// GB/s of the fastest steady-state lap.
    pub fn best_gb_per_sec(&self) -> f64 {
        self.gb_per_sec_in(self.best)
    }
    /// GB/s written by the drain on its first lap.
    pub fn cold_gb_per_sec(&self) -> f64 {
        self.gb_per_sec_in(self.cold)
    }
    /// GB/s of plain 1 MiB writes.
    pub fn plain_gb_per_sec(&self) -> Option<f64> {
        self.plain_write.map(|d| self.gb_per_sec_in(d))
    }
    /// GB/s of plain 1 MiB writes into reserved blocks.
    pub fn plain_reserved_gb_per_sec(&self) -> Option<f64> {
        self.plain_write_reserved.map(|d| self.gb_per_sec_in(d))
    }
    /// GB/s of [`copy_then_write`].
    pub fn copy_then_write_gb_per_sec(&self) -> Option<f64> {
        self.copy_then_write.map(|d| self.gb_per_sec_in(d))
    }
    /// Nanoseconds per record.
    pub fn ns_per_record(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.records as f64
    }
}

/// Settings of the drain-alone runs.
#[derive(Debug, Clone, Copy)]
pub struct DrainAloneKnobs {
    /// Ring capacity.
    pub capacity: u64,
    /// Warm the page cache before each timed lap (see [`run::warm_page_cache`]).
    pub warm: bool,
    /// The drain's target bytes per `write(2)` (default: the drain's own default).
    pub batch_bytes: Option<usize>,
    /// When to write on a second thread while gathering ([`DrainOptions::write_thread`]).
    pub write_thread: WriteThread,
}

/// Steady-state laps of a drain-alone run (their median is reported).
pub const WARM_LAPS: u64 = 5;

/// Fills a ring of `capacity` bytes to 15/16 with records of `size` bytes, then times an
/// in-process drain emptying it into `sink` (a file under `dir`, or /dev/null); once cold, then
/// [`WARM_LAPS`] times warm. For a file, every lap starts from an empty file (the page cache
/// warmed by the previous lap's pages, or by [`run::warm_page_cache`] for the first), and after
/// each steady lap the references are timed writing the same bytes: plain 1 MiB writes, the
/// same into reserved blocks, and (raw format) [`copy_then_write`].
///
/// `frames` is the buffer [`copy_then_write`] copies from, kept by the caller from run to run
/// (grown as needed): allocating and freeing 128 MiB in every run would hand those pages back
/// to the kernel, and on a VM that reports free pages to its host, make the next run's page
/// cache cold (see `run::warm_page_cache`).
pub fn drain_alone(
    dir: &Path,
    size: usize,
    format: Format,
    sink: Sink,
    knobs: &DrainAloneKnobs,
    frames: &mut Vec<u8>,
) -> Result<DrainAlone, BoxError> {
    let capacity = knobs.capacity;
    let warm_cache = knobs.warm;
    let ring = run::unique_ring();
    let _guard = RingGuard(ring.clone());
    let writer = Writer::builder(&ring)
        .capacity(capacity)
        .full_policy(FullPolicy::Drop)
        .open()?;
    let out = match sink {
        Sink::File => dir.join(format!("{ring}.log")),
        Sink::DevNull => "/dev/null".into(),
    };
    let mut options = DrainOptions::new(
        ringlog_core::Location::Name(ring.clone()),
        OutputSpec::File(out.clone()),
    );
    options.format = format;
    if let Some(b) = knobs.batch_bytes {
        options.batch_bytes = b;
    }
    options.write_thread = knobs.write_thread;
    // `run` with its stop already asked for writes everything committed, then returns: the
    // drain as ringlog-drain runs it (a writing thread, if asked for, is started and joined
    // within the timed lap), without the wait for more.
    let (stop, no_reopen) = (AtomicBool::new(true), AtomicBool::new(false));
    let mut drain = Drain::open(options)?;
    let span = layout::align_record((FRAME_HEADER_SIZE + size) as u64);
    let records = capacity / 16 * 15 / span;
    let mut rec = RecordBuf::new(0, SizeSpec::Fixed(size));
    let mut seq = 0u64;
    // The first lap finds the drain's mapping of the ring untouched (a restarted drain), the
    // others find it mapped (a drain that has been running).
    let mut lap = || -> Result<(Duration, u64, bool, u64), BoxError> {
        for _ in 0..records {
            writer.write(rec.make(seq)).map_err(|e| {
                let e = ringlog_core::ErrorChain(&e);
                format!("filling the ring for the drain-alone run: {e}")
            })?;
            seq += 1;
        }
        let before = drain.summary();
        if sink == Sink::File {
            // Each lap starts from an empty file: truncating frees the previous lap's pages
            // just before this lap needs as many (see `run::warm_page_cache`), as deleting the
            // previous run's log does between contender runs. The drain appends (O_APPEND).
            let len = std::fs::metadata(&out)?.len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&out)?
                .set_len(0)?;
            if len == 0 && warm_cache {
                run::warm_page_cache(dir, records * (size as u64 + 64))?;
            }
        }
        let start = Instant::now();
        drain.run(&stop, &no_reopen);
        let elapsed = start.elapsed();
        let after = drain.summary();
        if after.records - before.records != records {
            return Err(format!(
                "drain-alone: the drain wrote {} of {records} records",
                after.records - before.records
            )
            .into());
        }
        let two_threads = knobs.write_thread == WriteThread::Always
            || after.write_thread_spells > before.write_thread_spells;
        let cut_short = after.write_thread_spells_cut_short - before.write_thread_spells_cut_short;
        Ok((elapsed, after.bytes - before.bytes, two_threads, cut_short))
    };
    let result = (|| -> Result<DrainAlone, BoxError> {
        let (cold, _, _, _) = lap()?;
        let mut warm = Vec::new();
        let mut bytes_out = 0;
        let mut laps_with_write_thread = 0;
        let mut spells_cut_short = 0;
        // The references, each timed right after every steady drain lap, so that each of their
        // medians meets the page cache in the states the drain's did (one timing after all the
        // laps could land on pages the machine has just made cold, or on the warmest ones).
        let (mut plain, mut reserved, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..WARM_LAPS {
            let (t, b, two_threads, cut_short) = lap()?;
            warm.push(t);
            laps_with_write_thread += usize::from(two_threads);
            spells_cut_short += cut_short;
            bytes_out = b;
            if sink == Sink::File {
                plain.push(plain_writes(dir, &ring, b, warm_cache, false)?);
                reserved.push(plain_writes(dir, &ring, b, warm_cache, true)?);
                if format == Format::Raw {
                    floor.push(copy_then_write(
                        dir, &ring, frames, capacity, size, records, warm_cache,
                    )?);
                }
            }
        }
        let laps = warm.clone();
        warm.sort();
        if format == Format::Raw && sink == Sink::File {
            // The file holds the last lap.
            let v =
                record::verify_from(&out, 1, WARM_LAPS * records, records, SizeSpec::Fixed(size))?;
            if !v.is_perfect() {
                return Err(Box::new(IntegrityViolation(format!(
                    "drain-alone, {size}-byte records: {}",
                    v.summary()
                ))));
            }
        }
        Ok(DrainAlone {
            format,
            sink,
            size,
            capacity,
            write_thread: knobs.write_thread,
            laps_with_write_thread,
            spells_cut_short,
            records,
            bytes_out,
            cold,
            elapsed: warm[warm.len() / 2],
            best: warm[0],
            laps,
            plain_write: median(plain),
            plain_write_reserved: median(reserved),
            copy_then_write: median(floor),
        })
    })();
    // The writer first: a drain that stops with a producer attached keeps its spare link.
    drop(writer);
    drop(drain);
    if sink == Sink::File {
        let _ = std::fs::remove_file(&out);
    }
    result
}

/// The median of `times`, `None` if there are none.
fn median(mut times: Vec<Duration>) -> Option<Duration> {
    times.sort();
    times.get(times.len() / 2).copied()
}

/// A scratch file the references append to, with blocks reserved ahead as the drain reserves
/// them (or none); removed when dropped.
struct ScratchFile {
    path: std::path::PathBuf,
    file: File,
    reservation: Preallocation,
    len: u64,
}

impl ScratchFile {
    fn create(path: std::path::PathBuf, reserve: bool) -> Result<ScratchFile, BoxError> {
        let file = File::create(&path)?;
        let mut reservation = Preallocation::new(if reserve {
            ringlog_drain::preallocate::DEFAULT_CHUNK
        } else {
            0
        });
        reservation.attach(&file);
        Ok(ScratchFile {
            path,
            file,
            reservation,
            len: 0,
        })
    }

    /// One `write(2)` of `bytes` at the end (more if the kernel takes less).
    fn append(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        self.reservation
            .before_append(&self.file, self.len, bytes.len() as u64)?;
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The ceiling for a drain writing `bytes` into a file of `dir`: the same number of bytes in
/// 1 MiB `write(2)`s to a fresh file, after the same page-cache warming; with `reserve`, with
/// blocks reserved ahead as the drain reserves them.
fn plain_writes(
    dir: &Path,
    ring: &str,
    bytes: u64,
    warm: bool,
    reserve: bool,
) -> Result<Duration, BoxError> {
    if warm {
        run::warm_page_cache(dir, bytes)?;
    }
    let chunk = vec![b'x'; 1 << 20];
    let mut out = ScratchFile::create(dir.join(format!("{ring}.plain")), reserve)?;
    let t = Instant::now();
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        out.append(&chunk[..n])?;
        left -= n;
    }
    Ok(t.elapsed())
}

/// What any drain of this design costs at least, done in one thread: `records` payloads of
/// `size` bytes, laid out in the first `capacity` bytes of `frames` one frame apart as in the
/// ring (a frame header before each), copied into a 1 MiB buffer, which is written with one
/// `write(2)` into blocks reserved as the drain reserves them before the next is copied. No
/// frame is parsed, checked or released: only the copy out and the write, one after the other,
/// as one thread must do them. Timed after the same page-cache warming as the other writes.
fn copy_then_write(
    dir: &Path,
    ring: &str,
    frames: &mut Vec<u8>,
    capacity: u64,
    size: usize,
    records: u64,
    warm: bool,
) -> Result<Duration, BoxError> {
    let span = layout::align_record((FRAME_HEADER_SIZE + size) as u64) as usize;
    // Written through, as a filled ring is, so its pages exist before the clock starts.
    if frames.len() < capacity as usize {
        frames.resize(capacity as usize, b'x');
    }
    let bytes = records * size as u64;
    if warm {
        run::warm_page_cache(dir, bytes)?;
    }
    let mut out = ScratchFile::create(dir.join(format!("{ring}.copied")), true)?;
    let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
    let t = Instant::now();
    for i in 0..records as usize {
        let at = i * span + FRAME_HEADER_SIZE;
        batch.extend_from_slice(&frames[at..at + size]);
        if batch.len() + size > batch.capacity() || i + 1 == records as usize {
            out.append(&batch)?;
            batch.clear();
        }
    }
    let took = t.elapsed();
    if out.len != bytes {
        return Err(format!("copy then write: wrote {} of {bytes} bytes", out.len).into());
    }
    Ok(took)
}

/// Latency from `write` to the file, after one pause length.
#[derive(Debug, Clone)]
pub struct IdleGap {
    /// Pause before each record.
    pub gap: Duration,
    /// Samples, ns.
    pub hist: Histogram<u64>,
    /// The samples where the drain had announced its sleep (the producer's write made the
    /// futex wake-up call); the others found it napping (it polls every 250 us for ~2 ms before
    /// it announces a sleep).
    pub asleep: Histogram<u64>,
    /// The machine's own wake-up floor measured the same way: a thread blocked in `read(2)` on
    /// a socket is sent one byte, then appends a 128-byte line to a file; time until the file
    /// has grown.
    pub baseline: Histogram<u64>,
}

impl IdleGap {
    /// The percentiles.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.hist)
    }
}

/// The idle drain.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// Drain CPU while idle, percent of one CPU.
    pub idle_cpu_percent: f64,
    /// How long the idle CPU was measured.
    pub idle_measured: Duration,
    /// Latency per pause length.
    pub gaps: Vec<IdleGap>,
}

/// Polls `file`'s length until it reaches `len`; returns the ns since `t`. Yields the CPU
/// between polls, so a drain (or thread) woken on the same CPU is not kept waiting for the
/// poller's time slice to end.
fn wait_for_len(file: &File, len: u64, t: Instant) -> Result<u64, BoxError> {
    loop {
        if file.metadata()?.len() >= len {
            return Ok(t.elapsed().as_nanos() as u64);
        }
        if t.elapsed() > Duration::from_secs(2) {
            return Err("a line written after a pause was not in the file after 2 s".into());
        }
        std::thread::yield_now();
    }
}

/// The wake-up floor of this machine right now: `samples` times, after `gap`, wake a thread
/// blocked on a socket and time until the line it appends is in a file.
fn wake_baseline(dir: &Path, samples: u32, gap: Duration) -> Result<Histogram<u64>, BoxError> {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let path = dir.join("baseline");
    let (mut tx, mut rx) = UnixStream::pair()?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let waker = std::thread::spawn(move || -> std::io::Result<()> {
        let mut out = out;
        let line = [b'x'; 128];
        let mut byte = [0u8; 1];
        while rx.read(&mut byte)? == 1 {
            out.write_all(&line)?;
        }
        Ok(())
    });
    let file = File::open(&path)?;
    let mut hist = latency::histogram();
    for i in 1..=u64::from(samples) {
        std::thread::sleep(gap);
        let t = Instant::now();
        tx.write_all(b"w")?;
        hist.saturating_record(wait_for_len(&file, 128 * i, t)?);
    }
    drop(tx);
    waker.join().map_err(|_| "the baseline thread panicked")??;
    let _ = std::fs::remove_file(&path);
    Ok(hist)
}

/// Measures the idle drain: CPU over `idle`, then `samples` records after each of `gaps`, each
/// beside the machine's wake-up floor for the same pause.
pub fn idle_latency(
    settings: &Settings,
    samples: u32,
    idle: Duration,
    gaps: &[Duration],
) -> Result<IdleReport, BoxError> {
    let ring = run::unique_ring();
    let _guard = RingGuard(ring.clone());
    let dir = settings.dir.join(&ring);
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<IdleReport, BoxError> {
        let log = dir.join("log");
        let mut drain = run::start_drain(settings, &ring, &log, &dir.join("drain.stderr"))?;
        let writer = Writer::builder(&ring).create(false).open()?;
        let segment = Segment::open(
            &Location::Name(ring.clone()),
            &SegmentOptions {
                create: false,
                ..Default::default()
            },
        )?;
        let file = File::open(&log)?;
        let size = SizeSpec::Fixed(128);
        let mut rec = RecordBuf::new(0, size);
        let mut expected = 0u64;
        let mut seq = 0u64;
        let mut one = |gap: Duration| -> Result<(u64, bool), BoxError> {
            std::thread::sleep(gap);
            let r = rec.make(seq);
            seq += 1;
            expected += r.len() as u64;
            // Only classifies the sample; the drain may change it a moment later.
            let asleep = segment.ring().drain_announced_sleep();
            let t = Instant::now();
            writer.write(r)?;
            Ok((wait_for_len(&file, expected, t)?, asleep))
        };
        one(Duration::ZERO)?;
        std::thread::sleep(Duration::from_millis(200));
        let cpu0 = process_cpu_ns(drain.pid())?;
        let t = Instant::now();
        std::thread::sleep(idle);
        let idle_cpu_ns = process_cpu_ns(drain.pid())? - cpu0;
        let idle_measured = t.elapsed();
        let mut out = Vec::new();
        for &gap in gaps {
            let mut hist = latency::histogram();
            let mut asleep = latency::histogram();
            for _ in 0..samples {
                let (ns, was_asleep) = one(gap)?;
                hist.saturating_record(ns);
                if was_asleep {
                    asleep.saturating_record(ns);
                }
            }
            let baseline = wake_baseline(&dir, samples, gap)?;
            out.push(IdleGap {
                gap,
                hist,
                asleep,
                baseline,
            });
        }
        // Gone before the drain stops, which then keeps no spare link for it.
        drop(writer);
        drain.signal(rustix::process::Signal::TERM)?;
        drain.wait(Instant::now() + Duration::from_secs(30))?;
        let v = record::verify(&log, 1, seq, size)?;
        if !v.is_perfect() {
            return Err(Box::new(IntegrityViolation(format!(
                "idle latency run: {}",
                v.summary()
            ))));
        }
        Ok(IdleReport {
            idle_cpu_percent: idle_cpu_ns as f64 / idle_measured.as_nanos() as f64 * 100.0,
            idle_measured,
            gaps: out,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The page cache of the log directory's filesystem, probed with plain writes of one size.
#[derive(Debug, Clone, Copy)]
pub struct PageCacheProbe {
    /// Bytes per `write(2)`.
    pub write_size: usize,
    /// Pause before the writes (lets free memory go back to the host, where it does).
    pub pause: Duration,
    /// Bytes written.
    pub bytes: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl PageCacheProbe {
    /// GB/s.
    pub fn gb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e9 / self.elapsed.as_secs_f64()
    }
}

/// Writes `bytes` to a fresh file in `dir` in `write_size` chunks after `pause`, and deletes it.
/// On a VM whose host reclaims free guest memory (free page reporting), large writes, which
/// the kernel serves with large folios carved from large free blocks (the ones reported to
/// the host), pay a host fault per page; small ones mostly reuse recently freed pages. This
/// shows how much on this machine, beside the drain's 1 MiB writes.
pub fn page_cache_probe(
    dir: &Path,
    write_size: usize,
    bytes: u64,
    pause: Duration,
) -> Result<PageCacheProbe, BoxError> {
    std::thread::sleep(pause);
    let path = dir.join(format!("page-cache-probe-{}", std::process::id()));
    let chunk = vec![b'p'; write_size];
    let mut f = File::create(&path)?;
    let t = Instant::now();
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(write_size);
        f.write_all(&chunk[..n])?;
        left -= n;
    }
    let elapsed = t.elapsed();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(PageCacheProbe {
        write_size,
        pause,
        bytes,
        elapsed,
    })
}
