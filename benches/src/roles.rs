//! The work each child process of the harness does: one producer process of a contender
//! (`ringlog`, `append`, `flock`, `socket`), the in-process `tracing` reference (one process,
//! N threads, tracing-appender's non-blocking writer), and the Unix-socket collector. The
//! harness runs its own binary with a hidden subcommand for each.
//!
//! A producer sets everything up (opens the ring, file or socket), says `ready`, waits for the
//! go, then writes its records, timing write calls alone with a [`latency::Stopwatch`] (the
//! record is built before the clock starts), and reports its CPU time and wall time of the
//! timed phase. Its latency histogram goes to a file the harness merges. Nothing here decides
//! when a run starts or ends, or checks the output: the harness does.

use crate::child::{ready_then_wait_for_go, report_done, wait_for_release};
use crate::cpu::{self_counters, self_cpu_ns, Counters};
use crate::latency;
use crate::record::{RecordBuf, SizeSpec};
use crate::BoxError;
use hdrhistogram::Histogram;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One process's way of getting records into the shared log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Contender {
    /// ringlog: `Writer::write` into the shared ring, a `ringlog-drain` process writes the file.
    Ringlog,
    /// One `write(2)` per record on an `O_APPEND` descriptor.
    Append,
    /// The same, with `flock(LOCK_EX)` / `flock(LOCK_UN)` around each write.
    Flock,
    /// One `write(2)` per record on a Unix stream socket to one collector process, which
    /// writes the file in its own buffered batches.
    Socket,
    /// Reference, in one process: N threads, tracing-appender's non-blocking channel writer
    /// (lossless mode) and its worker thread.
    Tracing,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Contender; 5] = [
        Contender::Ringlog,
        Contender::Append,
        Contender::Flock,
        Contender::Socket,
        Contender::Tracing,
    ];

    /// The command-line and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Ringlog => "ringlog",
            Contender::Append => "o_append",
            Contender::Flock => "flock",
            Contender::Socket => "socket",
            Contender::Tracing => "tracing",
        }
    }

    /// What it is, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Contender::Ringlog => "ringlog Writer::write into the shm ring + ringlog-drain process (raw)",
            Contender::Append => "O_APPEND, one write(2) per record",
            Contender::Flock => "O_APPEND + flock(LOCK_EX/LOCK_UN) around each write(2)",
            Contender::Socket => {
                "Unix stream socket, one write(2) per record, one collector process batching to the file"
            }
            Contender::Tracing => {
                "reference: tracing-appender non_blocking (lossless), N threads in ONE process"
            }
        }
    }

    /// Parses a name (also accepts `append`, `unix`, `tracing-appender`).
    pub fn parse(s: &str) -> Result<Contender, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ringlog" => Ok(Contender::Ringlog),
            "o_append" | "append" | "oappend" => Ok(Contender::Append),
            "flock" | "o_append+flock" => Ok(Contender::Flock),
            "socket" | "unix" | "collector" => Ok(Contender::Socket),
            "tracing" | "tracing-appender" => Ok(Contender::Tracing),
            other => Err(format!(
                "unknown contender {other:?}: use ringlog, o_append, flock, socket or tracing"
            )),
        }
    }
}

/// What a producer's timed phase did.
struct Timed {
    hist: Histogram<u64>,
    cpu_ns: u64,
    wall: Duration,
    counters: Counters,
}

/// Says ready, waits for the go, then writes `records` records through `write`, timing about
/// one call in `sample_every` (see [`latency::Sampler`]; the others run untimed).
fn timed_writes(
    records: u64,
    rec: &mut RecordBuf,
    sample_every: u64,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Timed> {
    let mut hist = latency::histogram();
    let watch = latency::Stopwatch::calibrated();
    ready_then_wait_for_go()?;
    let mut sampler =
        latency::Sampler::new(sample_every, 0x9e37_79b9 ^ u64::from(std::process::id()));
    let counters0 = self_counters();
    let cpu0 = self_cpu_ns();
    let start = Instant::now();
    for seq in 0..records {
        let r = rec.make(seq);
        if sampler.hit() {
            let (written, ns) = watch.time(|| write(r));
            written?;
            hist.saturating_record(ns);
        } else {
            write(r)?;
        }
    }
    Ok(Timed {
        hist,
        cpu_ns: self_cpu_ns() - cpu0,
        wall: start.elapsed(),
        counters: self_counters().since(&counters0),
    })
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

/// Exactly one `write(2)`; a short write is an error (it would tear the record).
#[inline]
fn write_once(mut file: &File, r: &[u8]) -> io::Result<()> {
    let n = file.write(r)?;
    if n != r.len() {
        return Err(io::Error::other(format!(
            "short write: {n} of {} bytes (the record would be torn)",
            r.len()
        )));
    }
    Ok(())
}

/// Options of one producer process.
#[derive(Debug, Clone)]
pub struct ProducerArgs {
    /// Which contender.
    pub contender: Contender,
    /// Producer id (in every record).
    pub id: u32,
    /// Records to write.
    pub records: u64,
    /// Record sizes.
    pub size: SizeSpec,
    /// Ring name, log path or socket path.
    pub target: String,
    /// Where to save the latency histogram.
    pub hist: std::path::PathBuf,
    /// Time every n-th write (1: all).
    pub sample_every: u64,
}

/// The hidden `__produce` role.
pub fn produce(a: &ProducerArgs) -> Result<(), BoxError> {
    let mut rec = RecordBuf::new(a.id, a.size);
    let timed = match a.contender {
        Contender::Ringlog => {
            let writer = ringlog_writer::Writer::builder(&a.target)
                .create(false)
                .open()
                .map_err(|e| format!("producer {}: {e}", a.id))?;
            // Attach this thread's registry slot before the clock starts (an aborted claim
            // leaves only padding, which the drain skips).
            drop(
                writer
                    .claim(0)
                    .map_err(|e| format!("producer {}: {e}", a.id))?,
            );
            timed_writes(a.records, &mut rec, a.sample_every, |r| {
                writer.write(r).map_err(io::Error::other)
            })?
        }
        Contender::Append => {
            let file = open_append(Path::new(&a.target))?;
            timed_writes(a.records, &mut rec, a.sample_every, |r| {
                write_once(&file, r)
            })?
        }
        Contender::Flock => {
            use rustix::fs::{flock, FlockOperation};
            let file = open_append(Path::new(&a.target))?;
            timed_writes(a.records, &mut rec, a.sample_every, |r| {
                flock(&file, FlockOperation::LockExclusive)?;
                let written = write_once(&file, r);
                flock(&file, FlockOperation::Unlock)?;
                written
            })?
        }
        Contender::Socket => {
            let mut stream = UnixStream::connect(&a.target)
                .map_err(|e| format!("producer {}: cannot connect to {}: {e}", a.id, a.target))?;
            timed_writes(a.records, &mut rec, a.sample_every, |r| stream.write_all(r))?
        }
        Contender::Tracing => {
            return Err("the tracing reference runs as one process: use __threads".into())
        }
    };
    // Report first (the harness stops its clock on the last report), linger until every clock
    // of the run has stopped (so unmapping the ring at exit takes no CPU from a drain still
    // being timed), then save the histogram, which the harness reads after this process exits.
    report_done(&[
        ("cpu_ns", timed.cpu_ns),
        ("wall_ns", timed.wall.as_nanos() as u64),
        ("minflt", timed.counters.minflt),
        ("nvcsw", timed.counters.nvcsw),
        ("nivcsw", timed.counters.nivcsw),
    ])?;
    wait_for_release()?;
    latency::save(&timed.hist, &a.hist)?;
    Ok(())
}

/// The hidden `__threads` role: the tracing-appender reference, `threads` threads in this one
/// process writing through one `NonBlocking` (lossless: a full channel blocks the caller, as
/// ringlog's default policy does). Done once every record is in the file.
pub fn threads(
    threads: u32,
    records: u64,
    size: SizeSpec,
    out: &Path,
    hist_path: &Path,
    sample_every: u64,
) -> Result<(), BoxError> {
    let file = open_append(out)?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("bench-appender")
        .finish(file);
    let expected = size.total_bytes(threads, records);
    let watch = latency::Stopwatch::calibrated();
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let workers: Vec<_> = (0..threads)
        .map(|id| {
            let mut w = writer.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || -> io::Result<Histogram<u64>> {
                let mut rec = RecordBuf::new(id, size);
                let mut hist = latency::histogram();
                let mut sampler = latency::Sampler::new(sample_every, 0x51_7cc1 ^ u64::from(id));
                barrier.wait();
                for seq in 0..records {
                    let r = rec.make(seq);
                    if sampler.hit() {
                        let (written, ns) = watch.time(|| w.write_all(r));
                        written?;
                        hist.saturating_record(ns);
                    } else {
                        w.write_all(r)?;
                    }
                }
                Ok(hist)
            })
        })
        .collect();
    drop(writer);
    ready_then_wait_for_go()?;
    let counters0 = self_counters();
    let cpu0 = self_cpu_ns();
    let start = Instant::now();
    barrier.wait();
    let mut hist = latency::histogram();
    for w in workers {
        let h = w.join().map_err(|_| "a tracing writer thread panicked")??;
        latency::merge(&mut hist, &h);
    }
    // The worker may still hold a backlog; WorkerGuard::drop waits only 100 ms + 1 s for it,
    // so wait for the file itself.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let len = std::fs::metadata(out)?.len();
        if len >= expected {
            break;
        }
        if Instant::now() > deadline {
            return Err(
                format!("tracing-appender wrote {len} of {expected} bytes in 10 minutes").into(),
            );
        }
        std::thread::sleep(crate::run::POLL);
    }
    let wall = start.elapsed();
    let cpu_ns = self_cpu_ns() - cpu0;
    let c = self_counters().since(&counters0);
    report_done(&[
        ("cpu_ns", cpu_ns),
        ("wall_ns", wall.as_nanos() as u64),
        ("minflt", c.minflt),
        ("nvcsw", c.nvcsw),
        ("nivcsw", c.nivcsw),
    ])?;
    wait_for_release()?;
    drop(guard);
    latency::save(&hist, hist_path)?;
    Ok(())
}

/// Bytes a collector batches before writing.
const COLLECTOR_BATCH: usize = 1 << 20;
/// Bytes a collector reads from one connection at a time.
const COLLECTOR_READ: usize = 256 << 10;

/// One producer's connection to the collector.
struct Connection {
    stream: UnixStream,
    /// The start of a record whose end has not arrived yet.
    partial: Vec<u8>,
}

impl Connection {
    /// Reads once into `out`, keeping only whole records there. Returns false at end of stream.
    fn read_into(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let base = out.len();
        out.extend_from_slice(&self.partial);
        self.partial.clear();
        out.reserve(COLLECTOR_READ);
        let n = loop {
            match rustix::io::read(&self.stream, rustix::buffer::spare_capacity(out)) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        match out[base..].iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                self.partial.extend_from_slice(&out[base + i + 1..]);
                out.truncate(base + i + 1);
            }
            None => {
                self.partial.extend_from_slice(&out[base..]);
                out.truncate(base);
            }
        }
        Ok(n > 0)
    }
}

/// The hidden `__collect` role: a syslog-style collector. Listens on `socket`, says `ready`,
/// accepts `producers` connections, and appends every whole record it reads to `out` in
/// batches of up to 1 MiB (written when the batch is full or when no connection has data).
/// Reports its CPU time from the last accept to the final write, then exits.
pub fn collect(socket: &Path, out: &Path, producers: u32) -> Result<(), BoxError> {
    use rustix::event::{poll, PollFd, PollFlags};
    let listener = UnixListener::bind(socket)
        .map_err(|e| format!("collector: cannot listen on {}: {e}", socket.display()))?;
    {
        let mut stdout = io::stdout().lock();
        stdout.write_all(b"ready\n")?;
        stdout.flush()?;
    }
    let mut conns = (0..producers)
        .map(|_| {
            listener.accept().map(|(stream, _)| Connection {
                stream,
                partial: Vec::new(),
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let counters0 = self_counters();
    let cpu0 = self_cpu_ns();
    let mut file = open_append(out)?;
    let mut batch: Vec<u8> = Vec::with_capacity(COLLECTOR_BATCH + COLLECTOR_READ);
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut ready = Vec::with_capacity(conns.len());
    while !conns.is_empty() {
        ready.clear();
        {
            let mut fds: Vec<PollFd<'_>> = conns
                .iter()
                .map(|c| PollFd::new(&c.stream, PollFlags::IN))
                .collect();
            let mut n = poll(&mut fds, Some(&zero))?;
            if n == 0 {
                // Nothing to read right now: write what we have, then sleep until data comes.
                if !batch.is_empty() {
                    file.write_all(&batch)?;
                    batch.clear();
                }
                while n == 0 {
                    n = match poll(&mut fds, None) {
                        Err(rustix::io::Errno::INTR) => 0,
                        other => other?,
                    };
                }
            }
            ready.extend(fds.iter().map(|f| !f.revents().is_empty()));
        }
        for i in (0..conns.len()).rev() {
            if ready[i] && !conns[i].read_into(&mut batch)? {
                let c = conns.swap_remove(i);
                if !c.partial.is_empty() {
                    return Err(format!(
                        "collector: a producer closed its connection mid-record ({} bytes)",
                        c.partial.len()
                    )
                    .into());
                }
            }
        }
        if batch.len() >= COLLECTOR_BATCH {
            file.write_all(&batch)?;
            batch.clear();
        }
    }
    file.write_all(&batch)?;
    let c = self_counters().since(&counters0);
    report_done(&[
        ("cpu_ns", self_cpu_ns() - cpu0),
        ("minflt", c.minflt),
        ("nvcsw", c.nvcsw),
        ("nivcsw", c.nivcsw),
    ])?;
    Ok(())
}
