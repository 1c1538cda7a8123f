//! The drain loop: read committed records in ring order, format them into one large buffer,
//! append it with one write, then zero and release the space. Owns the checkpoint protocol
//! (intent, write, advance) that makes a SIGKILLed drain restart without loss or duplicates,
//! the handling of claims that stall the ring (dead owners are skipped with a marker line, live
//! ones are waited for and reported), drop reports, and idle sleep. Never blocks a producer:
//! producers only ever wait for space, which this loop frees batch by batch.

use crate::batch::{Batch, ZERO_COPY_MIN};
use crate::format::{Format, Formatter};
use crate::output::{Output, OutputSpec, Rotation};
use crate::segment_name::{NameCheck, SegmentName};
use ringlog_core::clock::TickClock;
use ringlog_core::fault::{self, Point};
use ringlog_core::frame::FLAG_TICKS;
use ringlog_core::futex;
use ringlog_core::layout::{self, off, slot_lock_byte, slot_off};
use ringlog_core::lock;
use ringlog_core::memory::MappedMemory;
use ringlog_core::{
    clock, Corruption, Location, Next, OpenError, RecordMeta, Ring, Segment, SegmentOptions,
};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When the drain makes the output durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Leave it to the kernel (records survive a drain or producer crash, not a machine crash).
    #[default]
    Never,
    /// `fdatasync` after every batch.
    Batch,
    /// `fdatasync` at most this often, when something was written.
    Interval(Duration),
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(FsyncPolicy::Never),
            "batch" => Ok(FsyncPolicy::Batch),
            ms => ms
                .parse::<u64>()
                .map(|ms| FsyncPolicy::Interval(Duration::from_millis(ms)))
                .map_err(|_| {
                    format!(
                        "unknown fsync policy {s:?}: use never, batch or a number of milliseconds"
                    )
                }),
        }
    }
}

/// Why a frame is corrupt, as told to the operator.
const GARBAGE: &str = "a producer wrote garbage into the ring";

/// Naps taken before the drain announces it sleeps (see `Drain::run`).
const QUIET_NAPS: u32 = 8;
/// Length of one quiet nap: QUIET_NAPS of them bound the extra latency of the first record
/// after a pause at about 2 ms.
const QUIET_NAP: Duration = Duration::from_micros(250);
/// How often the drain looks at its segment's name (a `stat` and an `fstat`): a removed name is
/// put back within this, before a new producer is likely to create another segment there.
const NAME_CHECK_EVERY: Duration = Duration::from_millis(50);

/// Everything the drain needs to run.
#[derive(Clone, Debug)]
pub struct DrainOptions {
    /// The ring.
    pub location: Location,
    /// How to open or create it.
    pub segment: SegmentOptions,
    /// Where to write.
    pub output: OutputSpec,
    /// When to rotate the output file.
    pub rotation: Rotation,
    /// How to write records.
    pub format: Format,
    /// When to fsync.
    pub fsync: FsyncPolicy,
    /// Target bytes per write.
    pub batch_bytes: usize,
    /// Largest block reservation ahead of the end of an output file, in bytes (0: none); see
    /// [`crate::preallocate`].
    pub preallocate: u64,
    /// How long a claim may stay uncommitted before the drain checks whether its owner died.
    pub abandon_check_after: Duration,
    /// How long a live producer may stall the ring before it is reported.
    pub stall_report_after: Duration,
    /// Longest idle sleep between checks (a safety net: producers wake the drain).
    pub idle_timeout: Duration,
    /// True when `location` is a segment a previous drain left behind (see
    /// [`crate::segment_name`]): it is drained until its producers are gone, then `run` returns.
    pub left_behind: bool,
}

impl DrainOptions {
    /// Defaults for ring `location` writing to `output`.
    pub fn new(location: Location, output: OutputSpec) -> DrainOptions {
        DrainOptions {
            location,
            segment: SegmentOptions::default(),
            output,
            rotation: Rotation::default(),
            format: Format::Raw,
            fsync: FsyncPolicy::Never,
            batch_bytes: 1 << 20,
            preallocate: crate::preallocate::DEFAULT_CHUNK,
            abandon_check_after: Duration::from_millis(20),
            stall_report_after: Duration::from_secs(1),
            idle_timeout: Duration::from_millis(100),
            left_behind: false,
        }
    }
}

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
}

/// What one pass over the ring found.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Wrote a batch.
    Wrote,
    /// Nothing to do.
    Idle,
    /// A claim at head is not committed yet.
    Stalled,
    /// The output failed; nothing was released.
    OutputFailed,
}

#[derive(Debug)]
struct Stall {
    pos: u64,
    since: Instant,
    last_check: Option<Instant>,
    reported: bool,
}

/// A batch's effects that count only once it is written.
#[derive(Debug, Default)]
struct BatchEffects {
    records: u64,
    abandoned: u64,
    abandoned_bytes: u64,
    corrupt: u64,
    drop_reports: Vec<(u16, u64)>,
    abandoned_slots: Vec<u16>,
    drop_events: Option<u64>,
}

// A drain can be moved to a thread of its own (embedding, tests, benches): keep it so.
const _: fn() = || {
    fn sendable<T: Send>() {}
    sendable::<Drain>();
};

/// A running drain.
#[derive(Debug)]
pub struct Drain {
    segment: Segment,
    output: Output,
    formatter: Formatter,
    options: DrainOptions,
    batch: Batch,
    scratch: Vec<u8>,
    head: u64,
    tail_cache: u64,
    drop_events_seen: u64,
    stall: Option<Stall>,
    last_sync: Instant,
    unsynced: bool,
    summary: DrainSummary,
    /// Since when the output fails, while it does: each failing spell is reported once when it
    /// starts and once when it ends, whatever fails (open, path check, rotation, write).
    output_failing_since: Option<Instant>,
    /// Converts tick stamps; the flag says it was refreshed during the current pass.
    ticks: Option<(TickClock, bool)>,
    /// The spare link that lets a removed segment name be put back (not for a segment left
    /// behind: its name is already lost).
    name: Option<SegmentName>,
    /// When the segment's name (or, once orphaned, its producers) was last looked at.
    last_name_check: Instant,
    /// Set once the segment lost its name for good (replaced, or removed and not restorable):
    /// it is drained until its producers are gone, then `run` returns.
    orphaned: bool,
    /// Set when an orphaned segment is empty and its producers are gone.
    orphan_done: bool,
    /// Lines for the log that wait for the next batch (cleared once written).
    notices: Vec<String>,
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
            // Relaxed: informational.
            let pid = ring.word32(off::DRAIN_PID).load(Ordering::Relaxed);
            return Err(DrainError::AlreadyDrained {
                ring: segment.name().to_owned(),
                pid,
            });
        }
        // Relaxed: informational words for `stat`; the lock is the truth.
        ring.word32(off::DRAIN_PID)
            .store(std::process::id(), Ordering::Relaxed);
        ring.word(off::DRAIN_STARTED_NS)
            .store(clock::now_ns(), Ordering::Relaxed);
        let output = Output::open_with(
            options.output.clone(),
            options.rotation,
            options.preallocate,
        )
        .map_err(|source| DrainError::Output {
            path: options_path(&options.output),
            source,
        })?;
        let head = ring.head();
        let formatter = if output.is_syslog() {
            Formatter::syslog(segment.name())
        } else {
            Formatter::new(options.format)
        };
        let mut drain = Drain {
            formatter,
            batch: Batch::with_capacity(options.batch_bytes + (options.batch_bytes >> 2)),
            scratch: Vec::new(),
            head,
            tail_cache: head,
            // Acquire: pairs with producers' Release bumps (see `Ring::count_drop`).
            drop_events_seen: u64::MAX,
            stall: None,
            last_sync: Instant::now(),
            unsynced: false,
            summary: DrainSummary::default(),
            output_failing_since: None,
            ticks: None,
            name: None,
            last_name_check: Instant::now(),
            orphaned: options.left_behind,
            orphan_done: false,
            notices: Vec::new(),
            segment,
            output,
            options,
        };
        if drain.options.left_behind {
            drain.notices.push(format!(
                "ringlog: ring '{}': a segment a previous drain was draining was removed or \
                 replaced while no drain ran; draining it (kept as {}) until its producers are \
                 gone, then the segment at the ring's path",
                drain.segment.name(),
                drain.segment.path().display()
            ));
        } else {
            // Without the spare link a removed name cannot be put back, but the drain works.
            match SegmentName::hold(drain.segment.path(), drain.segment.file()) {
                Ok(name) => drain.name = Some(name),
                Err(e) => eprintln!(
                    "ringlog-drain: ring '{}': cannot keep a spare link to the segment ({e}): a \
                     removed segment name could not be put back",
                    drain.segment.name()
                ),
            }
        }
        drain.recover().map_err(|source| DrainError::Output {
            path: options_path(&drain.options.output),
            source,
        })?;
        Ok(drain)
    }

    fn ring(&self) -> &Ring<MappedMemory> {
        self.segment.ring()
    }

    /// The ring's name.
    pub fn ring_name(&self) -> &str {
        self.segment.name()
    }

    /// Totals so far.
    pub fn summary(&self) -> DrainSummary {
        self.summary
    }

    /// Finishes a batch a previous drain was writing when it died: if the output holds all of
    /// it, release it; if part, cut the part off and write it again; if none, write it again.
    fn recover(&mut self) -> io::Result<()> {
        let ring = self.segment.ring();
        // Relaxed: this drain holds the drain lock; the previous one is dead, and its stores
        // reached the shared mapping before it died.
        let w = |o| ring.word(o).load(Ordering::Relaxed);
        if w(off::CKPT_STATE) != 1 {
            return Ok(());
        }
        let (start, end, out_len, bytes) = (
            w(off::CKPT_START),
            w(off::CKPT_END),
            w(off::CKPT_OUT_LEN),
            w(off::CKPT_BYTES),
        );
        let head = ring.head();
        // Whether the batch in flight reached the output whole (then its drop reports count).
        let mut finished = head == end && head != start;
        if head == start {
            // The file the batch went to: at the path, or renamed beside it (logrotate ran while
            // no drain did).
            let (dev, ino) = (w(off::CKPT_DEV), w(off::CKPT_INO));
            let found = match self.output.probe()? {
                Some(s) if (s.dev, s.ino) == (dev, ino) => Some((s.len, None)),
                _ => self
                    .output
                    .path()
                    .and_then(|p| crate::output::find_renamed(p, dev, ino))
                    .map(|(path, len)| (len, Some(path))),
            };
            let renamed = found
                .as_ref()
                .and_then(|(_, p)| p.as_ref())
                .map(|p| format!(" (in {}, renamed since)", p.display()))
                .unwrap_or_default();
            match found {
                Some((len, _))
                    if len == out_len + bytes
                        && end >= start
                        && end - start <= ring.geometry().capacity =>
                {
                    ring.release(start, end);
                    self.head = end;
                    self.tail_cache = end;
                    finished = true;
                    eprintln!(
                        "ringlog-drain: ring '{}': the previous drain's last batch ({bytes} bytes) was \
                         fully written{renamed}; resuming after it",
                        self.segment.name()
                    );
                }
                Some((len, renamed_to)) if len > out_len && len < out_len + bytes => {
                    match renamed_to {
                        None => self.output.truncate_to(out_len)?,
                        Some(p) => std::fs::OpenOptions::new()
                            .write(true)
                            .open(p)?
                            .set_len(out_len)?,
                    }
                    eprintln!(
                        "ringlog-drain: ring '{}': removed a half-written batch ({} of {bytes} bytes) \
                         left by a crashed drain{renamed}; writing it again",
                        self.segment.name(),
                        len - out_len
                    );
                }
                _ => {}
            }
        }
        // The counters ride with their batch too: set to what the intent says they become, if
        // the dead drain had not got to it (a value below the current one means it had).
        if finished {
            for (i, &counter) in off::CHECKPOINTED_COUNTERS.iter().enumerate() {
                let after = w(off::CKPT_COUNTERS_AFTER + 8 * i);
                if after > w(counter) {
                    ring.word(counter).store(after, Ordering::Relaxed);
                }
            }
        }
        // Drop reports ride with their batch: kept if it was written, forgotten (and so made
        // again) if it is written anew.
        for slot in 0..ring.slots() as u16 {
            let pending = ring
                .slot_word(slot, slot_off::DROPPED_PENDING)
                .load(Ordering::Relaxed);
            if pending != 0 {
                if finished {
                    ring.set_slot_drain_word(slot, slot_off::DROPPED_REPORTED, pending);
                }
                ring.set_slot_drain_word(slot, slot_off::DROPPED_PENDING, 0);
            }
        }
        // Relaxed: only drains read it, and only this one runs.
        ring.word(off::CKPT_STATE).store(0, Ordering::Relaxed);
        self.output.reopen()
    }

    /// Runs until `stop` is set, then writes everything already committed and returns.
    /// `reopen` set (SIGHUP) makes it reopen the output path.
    pub fn run(&mut self, stop: &AtomicBool, reopen: &AtomicBool) -> DrainSummary {
        let mut failures = 0u32;
        let mut idle_streak = 0u32;
        loop {
            // Relaxed: a statistic for `stat`.
            self.ring()
                .word(off::DRAIN_HEARTBEAT_NS)
                .store(clock::now_ns(), Ordering::Relaxed);
            if reopen.swap(false, Ordering::Relaxed) {
                if let Err(e) = self.output.reopen() {
                    self.output_failed(&format!("cannot reopen it: {e}"));
                }
            }
            self.watch_name();
            let stopping = stop.load(Ordering::Relaxed);
            match self.pass() {
                Pass::Wrote => {
                    failures = 0;
                    idle_streak = 0;
                    continue;
                }
                Pass::Idle if stopping => break,
                Pass::Idle if self.orphan_finished() => {
                    self.notices.push(format!(
                        "ringlog: ring '{}': the segment that lost its name is drained and its \
                         producers are gone; switching to the segment at the ring's path",
                        self.segment.name()
                    ));
                    // Writes the notice (and anything that came meanwhile), then returns.
                    while self.pass() == Pass::Wrote {}
                    self.orphan_done = true;
                    break;
                }
                // Out of work: first nap quietly (producers are not asked to wake us, so they
                // make no syscall while records keep coming), and announce a real sleep only
                // after QUIET_NAPS naps found nothing.
                Pass::Idle if idle_streak < QUIET_NAPS => {
                    idle_streak += 1;
                    self.sync_if_due(false);
                    self.nap(QUIET_NAP);
                }
                Pass::Idle => self.sleep(),
                Pass::Stalled => {
                    let age = self
                        .stall
                        .as_ref()
                        .map_or(Duration::ZERO, |s| s.since.elapsed());
                    if stopping && age > self.options.stall_report_after {
                        break;
                    }
                    // A claim in progress usually commits within nanoseconds: spin, then yield,
                    // and only nap once it is clearly slow.
                    if age < Duration::from_micros(50) {
                        for _ in 0..64 {
                            std::hint::spin_loop();
                        }
                    } else if age < Duration::from_millis(2) {
                        std::thread::yield_now();
                    } else {
                        self.nap(Duration::from_millis(1));
                    }
                }
                Pass::OutputFailed => {
                    failures += 1;
                    if stopping && failures > 3 {
                        break;
                    }
                    self.nap(Duration::from_millis((50u64 << failures.min(4)).min(1000)));
                }
            }
        }
        self.sync_if_due(true);
        let left = self.ring().tail().saturating_sub(self.head);
        if left > 0 {
            eprintln!(
                "ringlog-drain: ring '{}': stopping with {left} bytes still in the ring (a claim not \
                 committed, or the output failing); they stay there for the next drain",
                self.segment.name()
            );
        }
        self.summary
    }

    /// True once this drain emptied a segment that lost its name (or one left behind) and its
    /// producers are gone: the caller goes on with the segment at the ring's path.
    pub fn finished_orphan(&self) -> bool {
        self.orphan_done
    }

    /// Once [`Drain::finished_orphan`]: removes the spare link that kept this segment (see
    /// [`crate::segment_name`]), if it still names it, so no later drain looks at it again.
    pub fn forget_spare(mut self) {
        use std::os::unix::fs::MetadataExt;
        let spare = match self.name.take() {
            Some(name) => crate::segment_name::spare_path(name.path()),
            // A segment left behind is opened at its spare link.
            None => self.segment.path().to_owned(),
        };
        let ours = self.segment.file().metadata();
        if let (Ok(a), Ok(b)) = (ours, std::fs::metadata(&spare)) {
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                crate::segment_name::forget(&spare);
            }
        }
    }

    /// Every [`NAME_CHECK_EVERY`]: is the segment still at its path? Puts it back if it was
    /// removed; if it cannot, the segment is an orphan (drained until its producers are gone).
    /// Says in the log what happened.
    fn watch_name(&mut self) {
        if self.orphaned || self.last_name_check.elapsed() < NAME_CHECK_EVERY {
            return;
        }
        self.last_name_check = Instant::now();
        let Some(name) = &self.name else { return };
        let path = name.path().display().to_string();
        let ring = self.segment.name().to_owned();
        let (text, orphaned) = match name.check(self.segment.file()) {
            NameCheck::Intact => return,
            NameCheck::PutBack => (
                format!(
                    "ringlog: ring '{ring}': its segment {path} was removed while in use; the \
                     drain put it back (nothing lost)"
                ),
                false,
            ),
            NameCheck::Replaced => (
                format!(
                    "ringlog: ring '{ring}': its segment {path} was replaced by another file while \
                     in use; draining the old segment until its producers are gone, then the new \
                     one (records written to the new one wait there)"
                ),
                true,
            ),
            NameCheck::Lost(e) => (
                format!(
                    "ringlog: ring '{ring}': its segment {path} was removed while in use and \
                     cannot be put back ({e}); draining it until its producers are gone, then the \
                     segment at that path"
                ),
                true,
            ),
        };
        self.orphaned = orphaned;
        self.notices.push(text);
    }

    /// In an orphaned segment: true once no producer is attached (every attached slot's lock
    /// is free) and nothing is left to drain. Looked at every [`NAME_CHECK_EVERY`].
    fn orphan_finished(&mut self) -> bool {
        if !self.orphaned || self.last_name_check.elapsed() < NAME_CHECK_EVERY {
            return false;
        }
        self.last_name_check = Instant::now();
        let ring = self.segment.ring();
        if ring.tail() != self.head {
            return false;
        }
        let fd = self.segment.file().as_fd();
        !(0..ring.slots() as u16).any(|slot| {
            ring.slot_info(slot).state == layout::SLOT_ATTACHED
                && lock::is_locked(fd, slot_lock_byte(slot as u32)).unwrap_or(true)
        })
    }

    /// Processes at most one batch without waiting. Public for tests and embedding.
    pub fn pump(&mut self) -> bool {
        self.pass() == Pass::Wrote
    }

    fn pass(&mut self) -> Pass {
        let capacity = self.ring().geometry().capacity;
        let start = self.head;
        let mut pos = start;
        let mut effects = BatchEffects::default();
        self.batch.clear();
        if let Some((_, refreshed)) = &mut self.ticks {
            *refreshed = false;
        }
        // A batch stops short of the rotation size, so each file stays under it (unless a single
        // record is larger).
        let limit = self.output.room().map_or(self.options.batch_bytes, |room| {
            (room as usize).clamp(1, self.options.batch_bytes)
        });
        self.collect_drop_reports(&mut effects);
        for text in &self.notices {
            eprintln!("ringlog-drain: {text}");
            self.formatter
                .notice(self.batch.buf(), clock::now_ns(), text);
        }
        let mut outcome = Pass::Idle;
        while self.batch.len() < limit && pos - start < capacity / 2 {
            match self.segment.ring().next(pos, &mut self.tail_cache) {
                // A frame longer than what one pass may release: only garbage gets here.
                Next::Record { span, .. } | Next::Padding { span }
                    if pos + span - start > capacity =>
                {
                    self.report_stall_once(
                        pos,
                        &format!("frame at position {pos} runs past one ring capacity"),
                    );
                    outcome = Pass::Stalled;
                    break;
                }
                Next::Record { meta, span } => {
                    let mark = self.batch.mark();
                    let before = self.batch.len();
                    self.format_record(pos, &meta);
                    if self.batch.len() > limit && before > 0 {
                        // It would cross the rotation size: it opens the next file instead.
                        self.batch.truncate(mark);
                        break;
                    }
                    effects.records += 1;
                    pos += span;
                    self.stall_resolved(pos);
                }
                Next::Padding { span } => {
                    pos += span;
                    self.stall_resolved(pos);
                }
                Next::Empty => break,
                // Write what we have first; the claim is looked at on the next pass.
                Next::Pending { .. } if pos > start => {
                    outcome = Pass::Stalled;
                    break;
                }
                Next::Pending { slot, len } => match self.resolve_pending(pos, slot, len) {
                    Some((end, pid, owner)) => {
                        let text = format!(
                            "ringlog: skipped {} bytes abandoned by pid {pid}",
                            end - pos
                        );
                        self.report_in_band(&text, "the producer died mid-record");
                        effects.abandoned += 1;
                        effects.abandoned_bytes += end - pos;
                        effects.abandoned_slots.extend(owner);
                        pos = end;
                    }
                    None => {
                        outcome = Pass::Stalled;
                        break;
                    }
                },
                Next::Corrupt(Corruption::Tail(bad)) => {
                    // Producers would claim from a garbage position: put the tail back at the
                    // last sound boundary and let them continue from there.
                    if self.segment.ring().repair_tail(bad, pos) {
                        let text = format!(
                            "ringlog: the ring's tail was corrupt ({bad}); reset to position {pos}"
                        );
                        self.report_in_band(&text, GARBAGE);
                        effects.corrupt += 1;
                    }
                    self.tail_cache = pos;
                    outcome = Pass::Stalled;
                    break;
                }
                Next::Corrupt(why) => {
                    let tail = self.ring().tail();
                    let end = self.ring().resync_point(pos, tail);
                    if end <= pos || end - start > capacity {
                        outcome = Pass::Stalled;
                        self.report_stall_once(
                            pos,
                            &format!("unrecoverable ring state at position {pos}: {why}"),
                        );
                        break;
                    }
                    let text = format!(
                        "ringlog: skipped {} corrupt bytes at ring position {pos} ({why})",
                        end - pos
                    );
                    self.report_in_band(&text, GARBAGE);
                    effects.corrupt += 1;
                    pos = end;
                }
            }
        }
        if pos == start && self.batch.is_empty() {
            return outcome;
        }
        if !self.prepare_output() {
            return Pass::OutputFailed;
        }
        if self.write_batch(start, pos, &effects) {
            self.head = pos;
            self.notices.clear();
            self.apply(effects);
            Pass::Wrote
        } else {
            Pass::OutputFailed
        }
    }

    fn format_record(&mut self, pos: u64, meta: &RecordMeta) {
        let mut meta = *meta;
        if meta.flags & FLAG_TICKS != 0 && !self.formatter.is_raw() {
            meta.timestamp_ns = self.tick_clock().to_ns(meta.timestamp_ns);
            meta.flags &= !FLAG_TICKS;
        }
        let meta = &meta;
        let target_len = meta.target_len as usize;
        let len = meta.payload_len as usize;
        if self.formatter.is_raw() {
            let ring = self.segment.ring();
            let message_len = len - target_len;
            // Large messages go from the ring to the kernel in place (zero-copy); test builds
            // armed with a fault keep every batch in the buffer so it can be split.
            let in_place = (message_len >= ZERO_COPY_MIN && !fault::active())
                .then(|| ring.payload_ptr(pos, target_len, message_len))
                .flatten();
            match in_place {
                Some(ptr) => self.batch.push_ring(ptr, message_len),
                None => ring.append_payload(pos, target_len, message_len, self.batch.buf()),
            }
            // The last byte is read from the ring, not from the batch just written: reading back
            // a byte of a wide store that is still in flight stalls (store forwarding fails).
            let last = (message_len > 0).then(|| {
                let mut last = [0u8];
                ring.read_payload(pos, len - 1, &mut last);
                last[0]
            });
            if last != Some(b'\n') {
                self.batch.buf().push(b'\n');
            }
        } else {
            self.scratch.resize(len, 0);
            self.segment.ring().read_payload(pos, 0, &mut self.scratch);
            let (target, message) = self.scratch.split_at(target_len);
            self.formatter
                .record(self.batch.buf(), meta, target, message);
        }
    }

    /// Says `text` both in the log (a notice line in the current batch) and on stderr, with
    /// `cause` for the operator.
    fn report_in_band(&mut self, text: &str, cause: &str) {
        eprintln!(
            "ringlog-drain: ring '{}': {text} ({cause})",
            self.segment.name()
        );
        self.formatter
            .notice(self.batch.buf(), clock::now_ns(), text);
    }

    /// Before a write: follows the path if the file there changed (removed, rotated away
    /// without SIGHUP) and rotates if due. False if the output cannot be made ready.
    fn prepare_output(&mut self) -> bool {
        match self.output.follow_path() {
            Ok(true) => eprintln!(
                "ringlog-drain: output {} was removed or replaced; writing to the file now at that path",
                self.output.path().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            Ok(false) => {}
            Err(e) => {
                self.output_failed(&format!("cannot open the file at its path: {e}"));
                return false;
            }
        }
        if let Err(e) = self.output.rotate_if_due(self.batch.len() as u64) {
            self.output_failed(&format!("cannot rotate it: {e}"));
            return false;
        }
        true
    }

    /// Checkpointed append of the batch `[start, end)` already formatted in `buf`.
    fn write_batch(&mut self, start: u64, end: u64, effects: &BatchEffects) -> bool {
        let ring = self.segment.ring();
        let before = self.output.state();
        if let Some(s) = before {
            // Relaxed stores, then a SeqCst fence: the intent is complete in the shared mapping
            // before the write below starts (a SIGKILL at any later point finds it).
            let w = |o, v| ring.word(o).store(v, Ordering::Relaxed);
            w(off::CKPT_START, start);
            w(off::CKPT_END, end);
            w(off::CKPT_OUT_LEN, s.len);
            w(off::CKPT_BYTES, self.batch.len() as u64);
            w(off::CKPT_DEV, s.dev);
            w(off::CKPT_INO, s.ino);
            w(off::CKPT_RECORDS, effects.records);
            for (i, (counter, n)) in checkpointed_counts(effects, self.batch.len() as u64)
                .into_iter()
                .enumerate()
            {
                // Relaxed: only the drain writes its counters.
                let after = ring.word(counter).load(Ordering::Relaxed) + n;
                w(off::CKPT_COUNTERS_AFTER + 8 * i, after);
            }
            // The drop reports this batch carries are part of its intent.
            for &(slot, reported) in &effects.drop_reports {
                ring.set_slot_drain_word(slot, slot_off::DROPPED_PENDING, reported);
            }
            w(off::CKPT_STATE, 1);
            fence(Ordering::SeqCst);
        }
        fault::hit(Point::DrainIntentStored);
        self.output.begin_batch(start);
        let written = match self.batch.contiguous() {
            Some(bytes) if fault::active() => {
                // Two writes, so a test can crash the drain between them.
                let (first, rest) = bytes.split_at(bytes.len() / 2);
                self.output.append(first).and_then(|()| {
                    fault::hit(Point::DrainHalfWritten);
                    self.output.append(rest)
                })
            }
            _ => self.output.append_batch(&mut self.batch),
        };
        if let Err(e) = written {
            self.output_failed(&format!(
                "cannot write {} bytes of records: {e}",
                end - start
            ));
            let ring = self.segment.ring();
            if let Some(s) = before {
                if self.output.truncate_to(s.len).is_err() {
                    // The intent stays: a restarted drain repairs the file.
                    let _ = self.output.reopen();
                    return false;
                }
            }
            // Pick up a repaired path (a new file, a fixed mount) on the next attempt.
            let _ = self.output.reopen();
            for &(slot, _) in &effects.drop_reports {
                ring.set_slot_drain_word(slot, slot_off::DROPPED_PENDING, 0);
            }
            // Relaxed: see above; nothing of the batch remains in the output.
            ring.word(off::CKPT_STATE).store(0, Ordering::Relaxed);
            return false;
        }
        if let Some(since) = self.output_failing_since.take() {
            // Records committed and not yet written, this batch's included (producers count
            // what they commit per slot; the drain what it wrote).
            let ring = self.segment.ring();
            let committed: u64 = (0..ring.slots() as u16)
                .map(|s| ring.slot_info(s).written)
                .sum();
            // Relaxed: the drain's own counter.
            let written = ring.word(off::RECORDS_OUT).load(Ordering::Relaxed);
            eprintln!(
                "ringlog-drain: output {} works again after {:.1} s; {} records waited in the \
                 ring; resuming",
                self.output.describe(),
                since.elapsed().as_secs_f64(),
                committed.saturating_sub(written)
            );
        }
        self.unsynced = true;
        self.sync_if_due(false);
        fault::hit(Point::DrainWrittenBeforeRelease);
        let ring = self.segment.ring();
        if ring.release(start, end) {
            let seq = ring.word32(off::SPACE_SEQ);
            // Release: producers re-check the ring after waking.
            seq.fetch_add(1, Ordering::Release);
            futex::wake(seq, u32::MAX);
        }
        fault::hit(Point::DrainReleased);
        for (counter, n) in checkpointed_counts(effects, self.batch.len() as u64) {
            ring.add_counter(counter, n);
        }
        // The drops this batch reported are now in the output: record that before the intent
        // is void, so a crash in between cannot report them twice.
        for &(slot, reported) in &effects.drop_reports {
            ring.set_slot_drain_word(slot, slot_off::DROPPED_REPORTED, reported);
            ring.set_slot_drain_word(slot, slot_off::DROPPED_PENDING, 0);
        }
        fence(Ordering::SeqCst);
        // Relaxed: the batch is written and released; the intent is void.
        ring.word(off::CKPT_STATE).store(0, Ordering::Relaxed);
        self.summary.batches += 1;
        self.summary.bytes += self.batch.len() as u64;
        true
    }

    /// Reports a failing output once per spell (the first failure, with its cause); later
    /// failures of the same spell are retried silently.
    fn output_failed(&mut self, cause: &str) {
        if self.output_failing_since.is_none() {
            self.output_failing_since = Some(Instant::now());
            eprintln!(
                "ringlog-drain: cannot write to {}: {cause}; keeping records in the ring and \
                 retrying (producers see backpressure meanwhile)",
                self.output.describe()
            );
        }
    }

    fn apply(&mut self, effects: BatchEffects) {
        let ring = self.segment.ring();
        for slot in effects.abandoned_slots {
            let n = ring.slot_info(slot).abandoned + 1;
            ring.set_slot_drain_word(slot, slot_off::ABANDONED, n);
        }
        if let Some(ev) = effects.drop_events {
            self.drop_events_seen = ev;
        }
        self.summary.records += effects.records;
        self.summary.abandoned += effects.abandoned;
        self.summary.corrupt += effects.corrupt;
    }

    fn sync_if_due(&mut self, force: bool) {
        if !self.unsynced {
            return;
        }
        let due = match self.options.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::Batch => true,
            FsyncPolicy::Interval(d) => force || self.last_sync.elapsed() >= d,
        };
        if due {
            if let Err(e) = self.output.sync() {
                eprintln!("ringlog-drain: fsync failed: {e}");
            }
            self.last_sync = Instant::now();
            self.unsynced = false;
        }
    }

    /// Appends one notice per producer that dropped records since the last report.
    fn collect_drop_reports(&mut self, effects: &mut BatchEffects) {
        let ring = self.segment.ring();
        // Acquire: pairs with the producers' Release in `count_drop`; their counts are visible.
        let events = ring.word(off::DROP_EVENTS).load(Ordering::Acquire);
        if events == self.drop_events_seen {
            return;
        }
        for slot in 0..ring.slots() as u16 {
            if let Some(drops) = ring.unreported_drops(slot) {
                let text = format!(
                    "ringlog: dropped {} records from pid {} (ring full)",
                    drops.count, drops.pid
                );
                self.formatter
                    .notice(self.batch.buf(), clock::now_ns(), &text);
                effects.drop_reports.push((slot, drops.reported_after));
            }
        }
        effects.drop_events = Some(events);
    }

    /// Decides about a claim that is not committed at `pos`: `Some((end, pid, slot))` to skip
    /// it because every possible owner is dead, `None` to keep waiting.
    fn resolve_pending(
        &mut self,
        pos: u64,
        slot: Option<u16>,
        len: Option<u32>,
    ) -> Option<(u64, u32, Option<u16>)> {
        let now = Instant::now();
        match &mut self.stall {
            Some(s) if s.pos == pos => {}
            _ => {
                self.stall = Some(Stall {
                    pos,
                    since: now,
                    last_check: None,
                    reported: false,
                })
            }
        }
        let stall = self.stall.as_mut().expect("just set");
        let waited = now - stall.since;
        if waited < self.options.abandon_check_after
            || stall
                .last_check
                .is_some_and(|t| now - t < self.options.abandon_check_after)
        {
            return None;
        }
        stall.last_check = Some(now);
        let ring = self.segment.ring();
        let owners: Vec<u16> = match slot {
            Some(s) => vec![s],
            None => {
                let _ = ring.tail();
                let owners = ring.claimants(pos).collect();
                // An owner that moved on wrote its header first: look again.
                if !matches!(
                    ring.next(pos, &mut self.tail_cache),
                    Next::Pending { slot: None, .. }
                ) {
                    return None;
                }
                owners
            }
        };
        let fd = self.segment.file().as_fd();
        let mut locked = Vec::with_capacity(owners.len());
        let mut alive = None;
        for &s in &owners {
            match lock::try_lock(fd, slot_lock_byte(s as u32)) {
                Ok(true) => locked.push(s),
                _ => alive = Some(s),
            }
        }
        let result = match alive {
            Some(_) => None,
            None => {
                let end = match len {
                    Some(l) => pos + layout::align_record(l as u64),
                    None => ring.unwritten_claim_end(pos, ring.tail()),
                };
                let owner = owners.first().copied();
                let pid = owner.map_or(0, |s| ring.slot_info(s).pid);
                Some((end, pid, owner))
            }
        };
        for s in locked {
            let _ = lock::unlock(fd, slot_lock_byte(s as u32));
        }
        match (result, alive) {
            (Some(skip), _) => {
                self.stall = None;
                Some(skip)
            }
            (None, Some(s)) if waited >= self.options.stall_report_after => {
                if !self.stall.as_ref().is_some_and(|st| st.reported) {
                    let info = ring.slot_info(s);
                    let since = clock::now_ns() - waited.as_nanos() as u64;
                    ring.add_counter(off::STALLS, 1);
                    ring.set_slot_drain_word(s, slot_off::STALL_SINCE_NS, since);
                    let text = format!(
                        "stalled at position {pos} by pid {} (tid {}), alive but not committing its \
                         record for {} ms (stopped or descheduled?)",
                        info.pid,
                        info.tid,
                        waited.as_millis()
                    );
                    self.report_stall_once(pos, &text);
                }
                None
            }
            _ => None,
        }
    }

    fn report_stall_once(&mut self, pos: u64, text: &str) {
        match &mut self.stall {
            Some(s) if s.pos == pos && s.reported => {}
            Some(s) if s.pos == pos => {
                s.reported = true;
                eprintln!("ringlog-drain: ring '{}': {text}", self.segment.name());
            }
            _ => {
                self.stall = Some(Stall {
                    pos,
                    since: Instant::now(),
                    last_check: None,
                    reported: true,
                });
                eprintln!("ringlog-drain: ring '{}': {text}", self.segment.name());
            }
        }
    }

    fn stall_resolved(&mut self, pos: u64) {
        if let Some(s) = &self.stall {
            if pos > s.pos {
                if s.reported {
                    let ring = self.segment.ring();
                    for slot in 0..ring.slots() as u16 {
                        if ring.slot_info(slot).stall_since_ns != 0 {
                            ring.set_slot_drain_word(slot, slot_off::STALL_SINCE_NS, 0);
                        }
                    }
                    eprintln!(
                        "ringlog-drain: ring '{}': stall at position {} resolved after {} ms",
                        self.segment.name(),
                        s.pos,
                        s.since.elapsed().as_millis()
                    );
                }
                self.stall = None;
            }
        }
    }

    /// The ticks-to-ns conversion, calibrated on first use (from the rate a previous drain left
    /// in the header, else over 20 ms) and refreshed at most once per pass.
    fn tick_clock(&mut self) -> &TickClock {
        let ring = self.segment.ring();
        match &mut self.ticks {
            Some((clock, refreshed)) => {
                if !*refreshed {
                    clock.refresh();
                    *refreshed = true;
                    // Relaxed: a hint for the next drain.
                    ring.word(off::NS_PER_TICK_BITS)
                        .store(clock.ns_per_tick().to_bits(), Ordering::Relaxed);
                }
            }
            None => {
                // Relaxed: a hint written by a previous drain.
                let bits = ring.word(off::NS_PER_TICK_BITS).load(Ordering::Relaxed);
                let hint = (bits != 0).then(|| f64::from_bits(bits));
                self.ticks = Some((TickClock::calibrate(hint, Duration::from_millis(20)), true));
            }
        }
        &self.ticks.as_ref().expect("set above").0
    }

    /// Sleeps until a producer wakes us (or the safety-net timeout).
    fn sleep(&mut self) {
        self.sync_if_due(true);
        let ring = self.segment.ring();
        let wake = ring.word32(off::WAKE_SEQ);
        // Acquire: pairs with the producers' Release bump; read before announcing the sleep so
        // a bump after the announcement makes the futex wait return at once.
        let seq = wake.load(Ordering::Acquire);
        if ring.prepare_sleep(self.head) {
            futex::wait(wake, seq, self.options.idle_timeout);
        }
        ring.end_sleep();
    }

    /// Waits a little without announcing a sleep (producers will not wake us).
    fn nap(&self, d: Duration) {
        let ring = self.segment.ring();
        let wake = ring.word32(off::WAKE_SEQ);
        // Acquire: as in `sleep`.
        futex::wait(wake, wake.load(Ordering::Acquire), d);
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        // Relaxed: informational; the drain lock is released when the file closes.
        self.segment
            .ring()
            .word32(off::DRAIN_PID)
            .store(0, Ordering::Relaxed);
        // A clean stop leaves no spare link behind, unless the segment lost its name (then the
        // spare is how the next drain finds it).
        if let Some(name) = self.name.take() {
            if !self.orphaned {
                name.release();
            }
        }
    }
}

/// What a written batch adds to each of the header's checkpointed counters, in the order of
/// [`off::CHECKPOINTED_COUNTERS`].
fn checkpointed_counts(effects: &BatchEffects, bytes: u64) -> [(usize, u64); 5] {
    let n = [
        effects.records,
        bytes,
        effects.abandoned,
        effects.abandoned_bytes,
        effects.corrupt,
    ];
    std::array::from_fn(|i| (off::CHECKPOINTED_COUNTERS[i], n[i]))
}

fn options_path(spec: &OutputSpec) -> PathBuf {
    match spec {
        OutputSpec::Stdout => PathBuf::from("-"),
        OutputSpec::File(p) => p.clone(),
        OutputSpec::Syslog(d) => PathBuf::from(&d.address),
    }
}
