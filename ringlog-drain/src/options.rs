//! What a drain is told: the ring, the output, the format, rotation, fsync and batching, and
//! the thresholds of its stall handling. [`DrainOptions::builder`] builds them; the fields stay
//! public to read and to adjust.

use crate::format::Format;
use crate::output::{OutputSpec, Rotation};
use ringlog_core::{Location, SegmentOptions};
use std::time::Duration;

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

/// When the drain writes on a second thread while it gathers the next batch ([`crate::stage`]).
/// Outputs with a size limit and syslog outputs always use one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WriteThread {
    /// While a backlog of several batches lasts in a ring large enough for it, and only while a
    /// CPU is free for the second thread ([`crate::catch_up`]): a drain that fell behind catches
    /// up faster, a drain that keeps up, or one whose CPUs the producers need, stays one thread.
    #[default]
    Auto,
    /// Always: faster when the drain has a core to itself for it; on two vCPUs shared with busy
    /// producers it was slower.
    Always,
    /// Never: one thread gathers and writes.
    Never,
}

impl std::str::FromStr for WriteThread {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(WriteThread::Auto),
            "always" => Ok(WriteThread::Always),
            "never" => Ok(WriteThread::Never),
            _ => Err(format!(
                "unknown write-thread mode {s:?}: use auto, always or never"
            )),
        }
    }
}

/// Everything the drain needs to run.
#[derive(Clone, Debug)]
#[non_exhaustive]
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
    /// When to write on a second thread while the next batch is gathered.
    pub write_thread: WriteThread,
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
            write_thread: WriteThread::Auto,
        }
    }

    /// A builder starting from the defaults of [`DrainOptions::new`].
    pub fn builder(location: Location, output: OutputSpec) -> DrainOptionsBuilder {
        DrainOptionsBuilder(DrainOptions::new(location, output))
    }
}

/// Builds [`DrainOptions`]; every setter documents the field it sets.
#[derive(Clone, Debug)]
pub struct DrainOptionsBuilder(DrainOptions);

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        impl DrainOptionsBuilder {
            $(
                $(#[$doc])*
                pub fn $field(mut self, $field: $ty) -> Self {
                    self.0.$field = $field;
                    self
                }
            )*
        }
    };
}

setters! {
    /// See [`DrainOptions::segment`].
    segment: SegmentOptions;
    /// See [`DrainOptions::rotation`].
    rotation: Rotation;
    /// See [`DrainOptions::format`].
    format: Format;
    /// See [`DrainOptions::fsync`].
    fsync: FsyncPolicy;
    /// See [`DrainOptions::batch_bytes`].
    batch_bytes: usize;
    /// See [`DrainOptions::preallocate`].
    preallocate: u64;
    /// See [`DrainOptions::abandon_check_after`].
    abandon_check_after: Duration;
    /// See [`DrainOptions::stall_report_after`].
    stall_report_after: Duration;
    /// See [`DrainOptions::idle_timeout`].
    idle_timeout: Duration;
    /// See [`DrainOptions::left_behind`].
    left_behind: bool;
    /// See [`DrainOptions::write_thread`].
    write_thread: WriteThread;
}

impl DrainOptionsBuilder {
    /// The options.
    pub fn build(self) -> DrainOptions {
        self.0
    }
}
