//! The drain: one process per ring reads committed records in ring order, formats them into one
//! large batch, appends it with one write, then releases the space. Never blocks a
//! producer: producers only ever wait for space, which the drain frees batch by batch.
//!
//! This module holds the [`Drain`] itself and its main loop; each stage lives in its own
//! module: [`crate::pass`] (one pass over the ring: gather, then append), [`crate::render`]
//! (a record into the batch), [`crate::stall`] (claims that do not commit),
//! [`crate::drops`] (drop reports), [`crate::append`] (the checkpointed append and output
//! health), [`crate::stage`] (appending on a second thread while the next batch is gathered),
//! [`crate::recovery`] (finishing a crashed drain's batch), [`crate::durability`] (fsync),
//! [`crate::idle`] (naps and sleep), [`crate::name_watch`] (a segment whose name is removed or
//! replaced), [`crate::events`] (what the operator is told).

use crate::append::Appender;
use crate::batch::Batch;
use crate::catch_up::CatchUp;
use crate::durability::Durability;
use crate::events::{DrainEvent, EventSink, Events};
use crate::format::Formatter;
use crate::idle::{Written, OUTPUT_RETRY, QUIET, STALL_WAIT};
use crate::output::{Output, OutputSpec};
use crate::pass::Pass;
use crate::render::TickCalibration;
use crate::segment_name::SegmentName;
use crate::stage::Stage;
use crate::stall::StallWatch;
use ringlog_core::backoff::{self, Backoff, Step};
use ringlog_core::layout;
use ringlog_core::lock;
use ringlog_core::memory::MappedMemory;
use ringlog_core::{clock, Consumer, OpenError, Releaser, Ring, Segment};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::options::{DrainOptions, DrainOptionsBuilder, FsyncPolicy, WriteThread};

/// Why the drain could not start or stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum DrainError {
    /// The ring could not be opened or created.
    Open(OpenError),
    /// Another drain holds the ring.
    AlreadyDrained {
        /// The ring.
        ring: String,
        /// The other drain's pid, as it recorded it.
        pid: u32,
    },
    /// The output could not be opened.
    Output {
        /// The output path (`-` for stdout).
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Locking the segment failed.
    Lock(io::Error),
}

impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the ring's own message, and its cause as ours.
            DrainError::Open(e) => write!(f, "{e}"),
            DrainError::AlreadyDrained { ring, pid } => write!(
                f,
                "ring '{ring}' already has a drain (pid {pid}): one drain per ring; stop it first \
                 or use another ring name"
            ),
            DrainError::Output { path, .. } => write!(
                f,
                "cannot open output {} (check the directory exists and is writable)",
                path.display()
            ),
            DrainError::Lock(_) => write!(f, "cannot lock the ring's segment file"),
        }
    }
}

impl std::error::Error for DrainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DrainError::Open(e) => e.source(),
            DrainError::Output { source, .. } | DrainError::Lock(source) => Some(source),
            DrainError::AlreadyDrained { .. } => None,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainSummary {
    /// Records written.
    pub records: u64,
    /// Bytes written to the output (formatted).
    pub bytes: u64,
    /// Claims skipped because their producer died.
    pub abandoned: u64,
    /// Corrupt stretches skipped.
    pub corrupt: u64,
    /// Batches written.
    pub batches: u64,
    /// Spells in which the drain wrote on a second thread of its own accord
    /// ([`crate::WriteThread::Auto`]).
    pub write_thread_spells: u64,
    /// Of those, the spells cut short: the two threads waited for a CPU, or wrote no faster
    /// than one thread had.
    pub write_thread_spells_cut_short: u64,
}

// A drain can be moved to a thread of its own (embedding, tests, benches): keep it so.
const _: fn() = || {
    fn sendable<T: Send>() {}
    sendable::<Drain>();
};

/// A running drain.
#[derive(Debug)]
pub struct Drain {
    /// The ring's one consumer, holding the segment.
    pub(crate) consumer: Consumer<Segment>,
    /// Releases what the consumer hands off, once written.
    pub(crate) releaser: Releaser<Segment>,
    /// The output and what was written to it; away on the writing thread while `run` writes
    /// in two stages ([`crate::stage`]).
    pub(crate) appender: Option<Appender>,
    /// The queue to the writing thread, while `run` writes in two stages.
    pub(crate) stage: Option<Arc<Stage>>,
    /// When the writing thread starts and stops by itself.
    pub(crate) catch_up: CatchUp,
    pub(crate) formatter: Formatter,
    pub(crate) options: DrainOptions,
    /// The batch being gathered.
    pub(crate) batch: Batch,
    /// True when `batch` went to the writing thread and a free one must be taken first.
    pub(crate) batch_away: bool,
    /// The writing thread's other batches, kept from one two-stage `run` to the next.
    pub(crate) spare_batches: Vec<Batch>,
    /// Records in the batches handed off so far (written, or queued for the writing thread).
    pub(crate) records_handed_off: u64,
    /// Their bytes.
    pub(crate) bytes_handed_off: u64,
    /// Bytes of the last batch handed off.
    pub(crate) last_batch_bytes: u64,
    /// Payload bytes of a record being formatted (non-raw formats).
    pub(crate) scratch: Vec<u8>,
    /// The producers' drop-event count when drops were last collected.
    pub(crate) drop_events_seen: u64,
    pub(crate) stall: StallWatch,
    pub(crate) ticks: TickCalibration,
    pub(crate) events: Events,
    /// The spare link that lets a removed segment name be put back (not for a segment left
    /// behind: its name is already lost).
    pub(crate) name: Option<SegmentName>,
    /// When the segment's name (or, once orphaned, its producers) was last looked at.
    pub(crate) last_name_check: Instant,
    /// Set once the segment lost its name for good (replaced, or removed and not restorable):
    /// it is drained until its producers are gone, then `run` returns.
    pub(crate) orphaned: bool,
    /// Set when an orphaned segment is empty and its producers are gone.
    pub(crate) orphan_done: bool,
    /// Notice lines for the log that wait for the next batch (cleared once written).
    pub(crate) notices: Vec<String>,
    /// When the last batch was written, with the records written and the ring position
    /// released by then (see [`crate::idle::linger`]).
    pub(crate) last_write: Option<Written>,
}

impl Drain {
    /// Opens (or creates) the ring, becomes its one drain, opens the output and recovers from a
    /// previous drain's crash.
    pub fn open(options: DrainOptions) -> Result<Drain, DrainError> {
        let segment =
            Segment::open(&options.location, &options.segment).map_err(DrainError::Open)?;
        let ring = segment.ring();
        if !lock::try_lock(segment.file().as_fd(), layout::DRAIN_LOCK_BYTE)
            .map_err(DrainError::Lock)?
        {
            return Err(DrainError::AlreadyDrained {
                ring: segment.name().to_owned(),
                pid: ring.drain_identity().pid,
            });
        }
        ring.announce_drain(std::process::id(), clock::now_ns());
        let events = Events::new(segment.name());
        let output = Output::open_with(
            options.output.clone(),
            options.rotation,
            options.preallocate,
            &events,
        )
        .map_err(|source| DrainError::Output {
            path: options_path(&options.output),
            source,
        })?;
        let formatter = if output.is_syslog() {
            Formatter::syslog(segment.name())
        } else {
            Formatter::new(options.format)
        };
        // The drain lock (taken above) keeps other processes' consumers out; this one is the
        // segment's first.
        let consumer = Consumer::new(segment).map_err(|s| DrainError::AlreadyDrained {
            ring: s.name().to_owned(),
            pid: std::process::id(),
        })?;
        let appender = Appender::new(output, Durability::new(options.fsync), events.clone());
        let mut drain = Drain {
            formatter,
            batch: Batch::with_capacity(batch_capacity(&options)),
            batch_away: false,
            spare_batches: Vec::new(),
            records_handed_off: 0,
            bytes_handed_off: 0,
            last_batch_bytes: 0,
            scratch: Vec::new(),
            drop_events_seen: u64::MAX,
            stall: StallWatch::new(&options),
            ticks: TickCalibration::default(),
            events,
            name: None,
            last_name_check: Instant::now(),
            orphaned: options.left_behind,
            orphan_done: false,
            notices: Vec::new(),
            last_write: None,
            releaser: consumer.releaser(),
            consumer,
            appender: Some(appender),
            stage: None,
            catch_up: CatchUp::new(),
            options,
        };
        if drain.options.left_behind {
            let kept = drain.segment().path().to_owned();
            drain.notify(DrainEvent::DrainingLeftBehind { kept });
        } else {
            // Without the spare link a removed name cannot be put back, but the drain works.
            match SegmentName::hold(drain.segment().path(), drain.segment().file()) {
                Ok(name) => drain.name = Some(name),
                Err(e) => drain.events.emit(DrainEvent::SpareLinkFailed(e)),
            }
        }
        drain.recover().map_err(|source| DrainError::Output {
            path: options_path(&drain.options.output),
            source,
        })?;
        Ok(drain)
    }

    /// Sends the drain's events to `sink` instead of standard error (those of its output's
    /// connection, and of forwarders started with [`Drain::events`], too).
    pub fn set_event_sink(&mut self, sink: impl EventSink + 'static) {
        self.events.set_sink(Box::new(sink));
    }

    /// Where this drain's events go, for a forwarder beside it
    /// ([`crate::forwarder::Forwarder::start`]): a handle on the same sink.
    pub fn events(&self) -> Events {
        self.events.clone()
    }

    pub(crate) fn ring(&self) -> &Ring<MappedMemory> {
        self.consumer.ring()
    }

    pub(crate) fn segment(&self) -> &Segment {
        self.consumer.holder()
    }

    /// The ring's name.
    pub fn ring_name(&self) -> &str {
        self.segment().name()
    }

    /// Totals so far.
    pub fn summary(&self) -> DrainSummary {
        let (spells, cut_short) = self.catch_up.spells();
        DrainSummary {
            write_thread_spells: spells,
            write_thread_spells_cut_short: cut_short,
            ..self.appender.as_ref().expect(APPENDER_HOME).summary
        }
    }

    /// The output (outside a two-stage `run`).
    pub(crate) fn output(&self) -> &Output {
        &self.appender.as_ref().expect(APPENDER_HOME).output
    }

    /// The output (outside a two-stage `run`).
    pub(crate) fn output_mut(&mut self) -> &mut Output {
        &mut self.appender.as_mut().expect(APPENDER_HOME).output
    }

    /// Formatted bytes a batch holds at most (a record may take it past the target).
    pub(crate) fn batch_capacity(&self) -> usize {
        batch_capacity(&self.options)
    }

    /// Runs until `stop` is set, then writes everything already committed and returns.
    /// `reopen` set (SIGHUP) makes it reopen the output path. As
    /// [`DrainOptions::write_thread`] says, it writes on a second thread while it gathers the
    /// next batch ([`crate::stage`]): always, never, or while it is behind and a CPU is free
    /// for it ([`crate::catch_up`]).
    pub fn run(&mut self, stop: &AtomicBool, reopen: &AtomicBool) -> DrainSummary {
        loop {
            let end = if self.stages() {
                self.run_staged(stop, reopen, |drain| drain.read_loop(stop, reopen))
            } else {
                self.read_loop(stop, reopen)
            };
            if end == LoopEnd::Done {
                break;
            }
        }
        self.catch_up.end();
        self.sync_if_due(true);
        let ring = self.ring();
        let left = ring.tail().saturating_sub(ring.head());
        if left > 0 {
            self.events
                .emit(DrainEvent::StoppedWithBacklog { bytes: left });
        }
        self.summary()
    }

    /// The loop of `run`: passes over the ring, and what to do between them. Returns early to
    /// start or end a spell with the writing thread.
    fn read_loop(&mut self, stop: &AtomicBool, reopen: &AtomicBool) -> LoopEnd {
        let mut output_retry = Backoff::new(OUTPUT_RETRY);
        let mut stall_wait = Backoff::new(STALL_WAIT);
        let mut idle = Backoff::new(QUIET);
        loop {
            if self.stage.as_ref().is_some_and(|s| s.writer_gone()) {
                // It gave up (stopping, the output failing) or panicked: `run` sees which.
                return LoopEnd::Done;
            }
            self.ring().heartbeat(clock::now_ns());
            if let Some(appender) = &mut self.appender {
                appender.reopen_if_asked(reopen);
            }
            self.watch_name();
            // Relaxed: a request flag, re-read every round.
            let stopping = stop.load(Ordering::Relaxed);
            let pass = self.pass();
            if !(stopping && pass == Pass::Idle) && self.switch_threads(&pass) {
                return LoopEnd::Switch;
            }
            match pass {
                Pass::Wrote => {
                    output_retry.reset();
                    stall_wait.reset();
                    idle.reset();
                    if !stopping {
                        self.after_write();
                    }
                }
                // An open chunk is sealed first, so nothing is left behind it for the next drain.
                Pass::Idle if stopping && !self.consumer.seal_open_chunk() => return LoopEnd::Done,
                Pass::Idle if stopping => {}
                Pass::Idle if self.orphan_finished() => {
                    self.notify(DrainEvent::OrphanDrained);
                    // Writes the notice (and anything that came meanwhile), then returns.
                    while self.pass() == Pass::Wrote {}
                    self.orphan_done = true;
                    return LoopEnd::Done;
                }
                Pass::Idle => self.idle(&mut idle),
                Pass::Stalled => {
                    let age = self.stall.age();
                    if stopping && age > self.options.stall_report_after {
                        return LoopEnd::Done;
                    }
                    self.wait_step(stall_wait.step(age));
                }
                Pass::OutputFailed => {
                    if stopping && output_retry.naps() >= OUTPUT_RETRIES_WHEN_STOPPING {
                        return LoopEnd::Done;
                    }
                    self.wait_step(output_retry.step(Duration::MAX));
                }
            }
        }
    }

    /// Carries out one step of a wait.
    fn wait_step(&self, step: Step) {
        match step {
            Step::Spin => backoff::spin(),
            Step::Yield => std::thread::yield_now(),
            Step::Nap(d) => self.nap(d),
        }
    }

    /// Processes at most one batch without waiting. Public for tests and embedding.
    pub fn pump(&mut self) -> bool {
        self.pass() == Pass::Wrote
    }
}

/// How a reading loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoopEnd {
    /// `run` is done.
    Done,
    /// A spell with the writing thread starts or ends: `run` goes on in the other mode.
    Switch,
}

/// Output retries a stopping drain makes before it gives up and leaves the records in the ring
/// for the next drain: a few, so a brief hiccup does not leave a backlog, and no more, so a
/// dead disk does not hold up a shutdown.
pub(crate) const OUTPUT_RETRIES_WHEN_STOPPING: u32 = 3;

/// The appender is away only while `run` writes in two stages, and then only the writing
/// thread uses it.
pub(crate) const APPENDER_HOME: &str = "the appender is in place outside a two-stage `run`";

fn batch_capacity(options: &DrainOptions) -> usize {
    options.batch_bytes + (options.batch_bytes >> 2)
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.ring().retire_drain();
        // A clean stop leaves no spare link behind, unless the segment lost its name (then the
        // spare is how the next drain finds it) or may still be written to: producers still
        // attached write on while no drain runs, and if the name is removed meanwhile, the spare
        // is how the next drain finds what they wrote.
        if let Some(name) = self.name.take() {
            if self.orphaned {
                return;
            }
            match self.segment_in_use() {
                None => name.release(),
                Some(producers) => self.events.emit(DrainEvent::SpareKept {
                    spare: crate::segment_name::spare_path(name.path()),
                    producers,
                }),
            }
        }
    }
}

fn options_path(spec: &OutputSpec) -> PathBuf {
    match spec {
        OutputSpec::Stdout => PathBuf::from("-"),
        OutputSpec::File(p) => p.clone(),
        OutputSpec::Syslog(d) => PathBuf::from(&d.address),
    }
}
