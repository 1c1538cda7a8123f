//! What the drain has to tell its operator, as values: [`DrainEvent`]. The drain hands each one
//! to an [`EventSink`]; the default sink, [`Stderr`], prints it as one line on standard error
//! (the wording the command line has always used), and tests or an embedding service can
//! install their own with [`crate::Drain::set_event_sink`]. The drain's output connection and
//! its forwarders report through clones of the same handle ([`Events`]), so one sink hears them
//! all; no other part of the engine prints. Events about records the log lost (abandoned claims,
//! corrupt bytes) also go into the log itself as notice lines.

pub use crate::forward_events::{DeliveryEvent, ForwardEvent, ForwardFailure};
use ringlog_core::Corruption;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Why a frame is corrupt, as told to the operator.
const GARBAGE: &str = "a producer wrote garbage into the ring";
/// Why a claim was abandoned, as told to the operator.
const DIED: &str = "the producer died mid-record";

/// Something the drain did or met that its operator should know.
#[derive(Debug)]
#[non_exhaustive]
pub enum DrainEvent {
    /// Recovery: the previous drain's last batch is wholly in the output; resuming after it.
    RecoveredWrittenBatch {
        /// Bytes of that batch.
        bytes: u64,
        /// Where the file it went to is now.
        file: BatchFile,
    },
    /// Recovery: the previous drain died mid-append; the partial batch was cut off and the
    /// batch is written again.
    RecoveredHalfWrittenBatch {
        /// Bytes of it that were in the output.
        written: u64,
        /// Bytes of the whole batch.
        bytes: u64,
        /// Where the file it went to is now.
        file: BatchFile,
    },
    /// Recovery: the previous drain died appending a batch to a file that has since been
    /// moved, compressed, removed or cut, before it could note that the append had finished:
    /// the batch is written again, so its records may be in the log twice. Also a notice line
    /// in the log, just before the batch.
    RecoveredBatchMayRepeat {
        /// Records in the batch.
        records: u64,
        /// Its bytes.
        bytes: u64,
        /// The output path.
        output: PathBuf,
    },
    /// The drain stopped with bytes still in the ring (a claim not committed, or the output
    /// failing); the next drain takes them.
    StoppedWithBacklog {
        /// Bytes between head and tail.
        bytes: u64,
    },
    /// A claim was skipped because its producer died before committing it.
    AbandonedClaim {
        /// Bytes skipped.
        bytes: u64,
        /// Its producer (0 if unknown).
        pid: u32,
    },
    /// The ring's tail was garbage; it was put back at the last sound frame boundary.
    TailRepaired {
        /// The garbage value.
        bad: u64,
        /// Where producers continue.
        to: u64,
    },
    /// Corrupt bytes were skipped up to the next certain frame boundary.
    CorruptSkipped {
        /// Bytes skipped.
        bytes: u64,
        /// Where they started.
        pos: u64,
        /// What was wrong.
        why: Corruption,
    },
    /// A live producer has held the claim at head longer than the stall threshold.
    Stalled {
        /// The claim's position.
        pos: u64,
        /// Its producer.
        pid: u32,
        /// Its thread.
        tid: u32,
        /// How long it has held it, in ms.
        waited_ms: u128,
    },
    /// A frame claims to be longer than one pass may release: only garbage gets there.
    FrameTooLong {
        /// Its position.
        pos: u64,
    },
    /// The frame at `pos` is corrupt and no certain boundary follows it.
    Unrecoverable {
        /// Its position.
        pos: u64,
        /// What was wrong.
        why: Corruption,
    },
    /// A reported stall ended.
    StallResolved {
        /// Where the stall was.
        pos: u64,
        /// How long it lasted, in ms.
        after_ms: u128,
    },
    /// The output file was removed or replaced; the drain writes to the file now at the path.
    OutputReplaced {
        /// The path.
        path: String,
    },
    /// The output started failing (reported once per failing spell, whatever fails: reopen,
    /// path check, rotation, write); the records stay in the ring and the write is retried.
    OutputFailed {
        /// The output, described.
        output: String,
        /// What failed first.
        failure: OutputFailure,
    },
    /// The output works again after [`DrainEvent::OutputFailed`].
    OutputRecovered {
        /// The output, described.
        output: String,
        /// How long it failed.
        after: Duration,
        /// Records committed and not yet written when it recovered (this batch's included).
        waited_records: u64,
    },
    /// No spare link to the segment could be made: a removed segment name could not be put
    /// back (the drain works).
    SpareLinkFailed(io::Error),
    /// The segment's name was removed while in use; the drain put it back (nothing lost).
    /// Also a notice line in the log.
    SegmentNamePutBack {
        /// The segment's path.
        path: String,
    },
    /// The segment's path names another file now: the old segment is drained until its
    /// producers are gone, then the new one. Also a notice line in the log.
    SegmentReplaced {
        /// The segment's path.
        path: String,
    },
    /// The segment's name was removed and cannot be put back: it is drained until its
    /// producers are gone, then the segment at that path. Also a notice line in the log.
    SegmentNameLost {
        /// The segment's path.
        path: String,
        /// Why it cannot be put back.
        error: io::Error,
    },
    /// This drain started on a segment a previous drain left behind (its name was lost while
    /// no drain ran). Also a notice line in the log.
    DrainingLeftBehind {
        /// Where the segment is kept.
        kept: PathBuf,
    },
    /// The segment that lost its name is drained and its producers are gone; the drain goes on
    /// with the segment at the ring's path. Also a notice line in the log.
    OrphanDrained,
    /// The drain stops while producers are still attached (or records wait): it leaves its
    /// spare link to the segment, so if the segment's name is removed before the next drain
    /// starts, that drain still finds what they write.
    SpareKept {
        /// The spare link.
        spare: PathBuf,
        /// Producers attached when it stopped.
        producers: usize,
    },
    /// `fdatasync` of the output failed.
    FsyncFailed(io::Error),
    /// About `--forward`: following the log and its checkpoint.
    Forward(ForwardEvent),
    /// About the connection to a syslog or RELP receiver (`--out` or `--forward`).
    Delivery(DeliveryEvent),
}

impl DrainEvent {
    /// The notice line this event puts into the log itself, for events about lost records.
    pub fn notice(&self) -> Option<String> {
        Some(match self {
            DrainEvent::AbandonedClaim { bytes, pid } => {
                format!("ringlog: skipped {bytes} bytes abandoned by pid {pid}")
            }
            DrainEvent::TailRepaired { bad, to } => {
                format!("ringlog: the ring's tail was corrupt ({bad}); reset to position {to}")
            }
            DrainEvent::CorruptSkipped { bytes, pos, why } => {
                format!("ringlog: skipped {bytes} corrupt bytes at ring position {pos} ({why})")
            }
            _ => return None,
        })
    }

    /// The event as one line of text about ring `ring` (without a program name).
    pub fn line<'a>(&'a self, ring: &'a str) -> impl fmt::Display + 'a {
        Line { event: self, ring }
    }
}

struct Line<'a> {
    event: &'a DrainEvent,
    ring: &'a str,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DrainEvent as E;
        match self.event {
            E::RecoveredWrittenBatch { .. }
            | E::RecoveredHalfWrittenBatch { .. }
            | E::RecoveredBatchMayRepeat { .. }
            | E::StoppedWithBacklog { .. } => self.recovery(f),
            E::AbandonedClaim { .. }
            | E::TailRepaired { .. }
            | E::CorruptSkipped { .. }
            | E::Stalled { .. }
            | E::FrameTooLong { .. }
            | E::Unrecoverable { .. }
            | E::StallResolved { .. } => self.ring_state(f),
            E::OutputReplaced { .. }
            | E::OutputFailed { .. }
            | E::OutputRecovered { .. }
            | E::FsyncFailed(_) => self.output(f),
            E::SpareLinkFailed(_)
            | E::SegmentNamePutBack { .. }
            | E::SegmentReplaced { .. }
            | E::SegmentNameLost { .. }
            | E::DrainingLeftBehind { .. }
            | E::OrphanDrained
            | E::SpareKept { .. } => self.segment_name(f),
            E::Forward(event) => write!(f, "{event}"),
            E::Delivery(event) => write!(f, "{event}"),
        }
    }
}

// One method per kind of event; `fmt` above sends each event to its kind's method, so the last
// arm of each is never reached (it prints the event's Debug form rather than panic in a log line).
impl Line<'_> {
    /// A previous drain's crash, and what a stopping drain leaves for the next.
    fn recovery(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DrainEvent as E;
        let ring = self.ring;
        match self.event {
            E::RecoveredWrittenBatch { bytes, file } => write!(
                f,
                "ring '{ring}': the previous drain's last batch ({bytes} bytes) was fully \
                 written{file}; resuming after it"
            ),
            E::RecoveredHalfWrittenBatch {
                written,
                bytes,
                file,
            } => write!(
                f,
                "ring '{ring}': removed a half-written batch ({written} of {bytes} bytes) left by a \
                 crashed drain{file}; writing it again"
            ),
            E::RecoveredBatchMayRepeat {
                records,
                bytes,
                output,
            } => write!(
                f,
                "ringlog: ring '{ring}': a drain was killed appending a batch of {records} records \
                 ({bytes} bytes) to {}, and that file has since been moved, compressed, removed \
                 or cut, before the drain noted that the append had finished; the batch follows \
                 this line again, so its {records} records may appear twice (the file it went to \
                 may hold them too, whole or in part, at its end)",
                output.display()
            ),
            E::StoppedWithBacklog { bytes } => write!(
                f,
                "ring '{ring}': stopping with {bytes} bytes still in the ring (a claim not \
                 committed, or the output failing); they stay there for the next drain"
            ),
            other => write!(f, "{other:?}"),
        }
    }

    /// What the drain met in the ring: claims of dead or stalled producers, garbage.
    fn ring_state(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DrainEvent as E;
        let ring = self.ring;
        match self.event {
            E::AbandonedClaim { .. } => {
                let notice = self.event.notice().unwrap_or_default();
                write!(f, "ring '{ring}': {notice} ({DIED})")
            }
            E::TailRepaired { .. } | E::CorruptSkipped { .. } => {
                let notice = self.event.notice().unwrap_or_default();
                write!(f, "ring '{ring}': {notice} ({GARBAGE})")
            }
            E::Stalled {
                pos,
                pid,
                tid,
                waited_ms,
            } => write!(
                f,
                "ring '{ring}': stalled at position {pos} by pid {pid} (tid {tid}), alive but not \
                 committing its record for {waited_ms} ms (stopped or descheduled?)"
            ),
            E::StallResolved { pos, after_ms } => write!(
                f,
                "ring '{ring}': stall at position {pos} resolved after {after_ms} ms"
            ),
            E::FrameTooLong { pos } => write!(
                f,
                "ring '{ring}': frame at position {pos} runs past one ring capacity"
            ),
            E::Unrecoverable { pos, why } => write!(
                f,
                "ring '{ring}': unrecoverable ring state at position {pos}: {why}"
            ),
            other => write!(f, "{other:?}"),
        }
    }

    /// The output file: replaced, failing, working again, not syncing.
    fn output(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DrainEvent as E;
        match self.event {
            E::OutputReplaced { path } => write!(
                f,
                "output {path} was removed or replaced; writing to the file now at that path"
            ),
            E::OutputFailed { output, failure } => write!(
                f,
                "cannot write to {output}: {failure}; keeping records in the ring and retrying \
                 (producers see backpressure meanwhile)"
            ),
            E::OutputRecovered {
                output,
                after,
                waited_records,
            } => write!(
                f,
                "output {output} works again after {:.1} s; {waited_records} records waited in \
                 the ring; resuming",
                after.as_secs_f64()
            ),
            E::FsyncFailed(e) => write!(f, "fsync failed: {e}"),
            other => write!(f, "{other:?}"),
        }
    }

    /// The segment's name: removed, replaced, put back, left behind.
    fn segment_name(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DrainEvent as E;
        let ring = self.ring;
        match self.event {
            E::SpareLinkFailed(e) => write!(
                f,
                "ring '{ring}': cannot keep a spare link to the segment ({e}): a removed segment \
                 name could not be put back"
            ),
            E::SegmentNamePutBack { path } => write!(
                f,
                "ringlog: ring '{ring}': its segment {path} was removed while in use; the drain \
                 put it back (nothing lost)"
            ),
            E::SegmentReplaced { path } => write!(
                f,
                "ringlog: ring '{ring}': its segment {path} was replaced by another file while in \
                 use; draining the old segment until its producers are gone, then the new one \
                 (records written to the new one wait there)"
            ),
            E::SegmentNameLost { path, error } => write!(
                f,
                "ringlog: ring '{ring}': its segment {path} was removed while in use and cannot be \
                 put back ({error}); draining it until its producers are gone, then the segment \
                 at that path"
            ),
            E::DrainingLeftBehind { kept } => write!(
                f,
                "ringlog: ring '{ring}': a segment a previous drain was draining was removed or \
                 replaced while no drain ran; draining it (kept as {}) until its producers are \
                 gone, then the segment at the ring's path",
                kept.display()
            ),
            E::OrphanDrained => write!(
                f,
                "ringlog: ring '{ring}': the segment that lost its name is drained and its \
                 producers are gone; switching to the segment at the ring's path"
            ),
            E::SpareKept { spare, producers } => write!(
                f,
                "ring '{ring}': stopping with {producers} producers attached or records waiting; \
                 keeping the spare link {} so the next drain finds this segment even if its \
                 name is removed meanwhile",
                spare.display()
            ),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Where recovery found the file a crashed drain's last batch went to. Displayed as what a
/// recovery line adds: nothing, " (in PATH, renamed since)", or that it is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchFile {
    /// At the output path.
    AtPath,
    /// Renamed beside it (logrotate's `app.log.1`, `app.log-20261202`), at this path.
    Renamed(PathBuf),
    /// Neither: moved to another directory, compressed or removed since.
    Gone,
}

impl fmt::Display for BatchFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchFile::AtPath => Ok(()),
            BatchFile::Renamed(p) => write!(f, " (in {}, renamed since)", p.display()),
            BatchFile::Gone => write!(
                f,
                " (to a file since moved away from the output path, compressed or removed)"
            ),
        }
    }
}

/// What failed when the output started failing.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputFailure {
    /// Reopening the output (SIGHUP) failed.
    Reopen(io::Error),
    /// Opening the file at the output path (after it was removed or replaced) failed.
    PathCheck(io::Error),
    /// Rotating the output failed.
    Rotate(io::Error),
    /// Appending a batch failed.
    Write {
        /// Ring bytes of the batch, kept for the retry.
        bytes: u64,
        /// The cause.
        error: io::Error,
    },
}

impl fmt::Display for OutputFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputFailure::Reopen(e) => write!(f, "cannot reopen it: {e}"),
            OutputFailure::PathCheck(e) => write!(f, "cannot open the file at its path: {e}"),
            OutputFailure::Rotate(e) => write!(f, "cannot rotate it: {e}"),
            OutputFailure::Write { bytes, error } => {
                write!(f, "cannot write {bytes} bytes of records: {error}")
            }
        }
    }
}

/// Where a drain's events go.
pub trait EventSink: Send {
    /// Takes one event about ring `ring`.
    fn event(&mut self, ring: &str, event: &DrainEvent);
}

impl<F: FnMut(&str, &DrainEvent) + Send> EventSink for F {
    fn event(&mut self, ring: &str, event: &DrainEvent) {
        self(ring, event)
    }
}

/// Prints each event as one line on standard error, prefixed `ringlog-drain: `.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

impl EventSink for Stderr {
    fn event(&mut self, ring: &str, event: &DrainEvent) {
        use std::io::Write;
        // Nothing sensible is left to do if standard error is gone.
        let _ = writeln!(
            std::io::stderr().lock(),
            "ringlog-drain: {}",
            event.line(ring)
        );
    }
}

/// Where a drain's events go: its sink and the ring name it reports under. A clone shares the
/// sink (the output and the forwarding threads hold clones), so [`crate::Drain::set_event_sink`]
/// redirects them all. Events are rare: a lock per event costs nothing that matters.
#[derive(Clone)]
pub struct Events {
    ring: Arc<str>,
    sink: Arc<Mutex<Box<dyn EventSink>>>,
}

impl Events {
    /// Events about ring `ring`, printed by [`Stderr`] until another sink is set.
    pub fn new(ring: &str) -> Events {
        Events {
            ring: ring.into(),
            sink: Arc::new(Mutex::new(Box::new(Stderr))),
        }
    }

    /// From now on every clone hands its events to `sink`.
    pub(crate) fn set_sink(&self, sink: Box<dyn EventSink>) {
        *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = sink;
    }

    pub(crate) fn emit(&self, event: DrainEvent) {
        // A sink that panicked once may be called again: it is the embedder's, and an event
        // lost to a poisoned lock would be worse than one more call.
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        sink.event(&self.ring, &event);
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}
