//! The [`log`] facade (cargo feature `log`): [`init`] or [`Builder`] install a
//! [`RingLogger`], which writes every enabled `log` record as one ring record. It owns the
//! mapping from `log` levels and the record layout; it never writes the file (the drain does)
//! and never makes a syscall or allocation on the steady path.
//!
//! ```no_run
//! ringlog_writer::log::init("myservice", log::LevelFilter::Info)?;
//! log::info!("listening on {}", 8080);
//! log::warn!(target: "db", "slow query: {} ms", 812);
//! # Ok::<(), ringlog_writer::log::InitError>(())
//! ```
//!
//! Each record carries the level (mapped by [`level`]), the target (the module path unless the
//! call gives `target:`), the process and thread ids (in every record header), and the message,
//! formatted straight into the claimed ring space (no per-record allocation; a message longer
//! than the thread's recent ones is formatted into a reused thread-local buffer and copied).
//! When the target is not the module path, the message ends with ` module=<module path>`.
//!
//! Errors have nowhere to go from `log::Log::log`: a record dropped on a full ring is counted
//! (see [`Writer::stats`], and the drain writes the count into the log); a record larger than
//! the ring's max record size is cut to fit and marked `[ringlog: truncated, N bytes in all]`.

use crate::formatted::{write_fitted, write_formatted};
use crate::{FullPolicy, Level, OpenError, Writer, WriterBuilder};
use ::log::{LevelFilter, Log, Metadata, Record};
use std::fmt;
use std::path::PathBuf;

/// The ringlog level of a `log` level (they correspond one to one).
pub fn level(level: ::log::Level) -> Level {
    match level {
        ::log::Level::Error => Level::Error,
        ::log::Level::Warn => Level::Warn,
        ::log::Level::Info => Level::Info,
        ::log::Level::Debug => Level::Debug,
        ::log::Level::Trace => Level::Trace,
    }
}

/// Opens (or creates) ring `name` and installs a [`RingLogger`] as the process's `log` logger,
/// with `max_level` as `log`'s maximum level. Use [`Builder`] for ring options.
pub fn init(name: &str, max_level: LevelFilter) -> Result<(), InitError> {
    Builder::new(name).max_level(max_level).init().map(drop)
}

/// Why [`init`] or [`Builder::init`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// The ring could not be opened or created.
    Open(OpenError),
    /// A `log` logger was already installed in this process (`log` allows one).
    AlreadySet,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Open(_) => write!(f, "cannot start logging to ringlog"),
            InitError::AlreadySet => f.write_str(
                "cannot start logging to ringlog: a `log` logger is already installed in this \
                 process (install one logger, once, at start-up)",
            ),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Open(e) => Some(e),
            InitError::AlreadySet => None,
        }
    }
}

impl From<OpenError> for InitError {
    fn from(e: OpenError) -> InitError {
        InitError::Open(e)
    }
}

/// Options for the `log` logger: the ring (as [`WriterBuilder`]), the full policy and the
/// maximum level. Start with [`Builder::new`].
///
/// ```no_run
/// use ringlog_writer::{log::Builder, FullPolicy};
/// let writer = Builder::new("myservice")
///     .max_level(log::LevelFilter::Debug)
///     .full_policy(FullPolicy::Drop)
///     .init()?;
/// log::debug!("ready");
/// assert_eq!(writer.stats().dropped, 0);
/// # Ok::<(), ringlog_writer::log::InitError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct Builder {
    writer: WriterBuilder,
    max_level: LevelFilter,
}

impl Builder {
    /// A logger for ring `name` (`/dev/shm/ringlog-<name>`), at level `Info` by default.
    pub fn new(name: &str) -> Builder {
        Builder::with_writer(Writer::builder(name))
    }
    /// A logger for the ring `writer` describes (all of its options apply).
    pub fn with_writer(writer: WriterBuilder) -> Builder {
        Builder {
            writer,
            max_level: LevelFilter::Info,
        }
    }
    /// The most verbose level logged (default `Info`); also set as `log`'s max level by
    /// [`Builder::init`], so disabled calls cost one comparison.
    pub fn max_level(mut self, level: LevelFilter) -> Self {
        self.max_level = level;
        self
    }
    /// What to do when the ring is full (default [`FullPolicy::Block`]).
    pub fn full_policy(mut self, policy: FullPolicy) -> Self {
        self.writer = self.writer.full_policy(policy);
        self
    }
    /// Opens the ring at an explicit file path instead of `/dev/shm/ringlog-<name>`.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.writer = self.writer.path(path);
        self
    }
    /// Data region size when this call creates the ring (see [`WriterBuilder::capacity`]).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.writer = self.writer.capacity(bytes);
        self
    }
    /// Largest record when this call creates the ring (see [`WriterBuilder::max_record`]).
    pub fn max_record(mut self, bytes: u64) -> Self {
        self.writer = self.writer.max_record(bytes);
        self
    }
    /// Whether to create the ring when it does not exist (default true).
    pub fn create(mut self, create: bool) -> Self {
        self.writer = self.writer.create(create);
        self
    }
    /// File mode when creating (default 0o600).
    pub fn mode(mut self, mode: u32) -> Self {
        self.writer = self.writer.mode(mode);
        self
    }
    /// Group owner when creating.
    pub fn group(mut self, gid: u32) -> Self {
        self.writer = self.writer.group(gid);
        self
    }
    /// Opens the ring and returns the logger, to install yourself (e.g. inside a multiplexing
    /// logger).
    pub fn build(self) -> Result<RingLogger, InitError> {
        Ok(RingLogger::new(self.writer.open()?, self.max_level))
    }
    /// Opens the ring and installs the logger as the process's `log` logger. Returns the
    /// logger's [`Writer`], for [`Writer::stats`] and [`Writer::drain_alive`].
    pub fn init(self) -> Result<Writer, InitError> {
        let max_level = self.max_level;
        let logger = self.build()?;
        let writer = logger.writer().clone();
        ::log::set_boxed_logger(Box::new(logger)).map_err(|_| InitError::AlreadySet)?;
        ::log::set_max_level(max_level);
        Ok(writer)
    }
}

/// A `log::Log` that writes each record into a ring. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RingLogger {
    writer: Writer,
    max_level: LevelFilter,
}

impl RingLogger {
    /// A logger writing through `writer` the records at `max_level` or more severe.
    pub fn new(writer: Writer, max_level: LevelFilter) -> RingLogger {
        RingLogger { writer, max_level }
    }
    /// The writer it logs through.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}

impl Log for RingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.max_level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        let module = record.module_path().filter(|&m| m != target);
        let level = level(record.level());
        // Errors: see the module docs (counted when dropped, nowhere to report otherwise).
        let _ = match (record.args().as_str(), module) {
            // A literal message: its length is known, copy it at once.
            (Some(text), None) => write_fitted(&self.writer, level, target, text.as_bytes()),
            _ => write_formatted(&self.writer, level, target, |w| {
                w.write_fmt(*record.args())?;
                if let Some(module) = module {
                    write!(w, " module={module}")?;
                }
                Ok(())
            }),
        };
    }

    /// Nothing to do: a record is in the ring, where the drain will find it, once `log`
    /// returns.
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formatted::testing::{read_all, ring};

    #[test]
    fn every_log_level_maps_to_the_ringlog_level_of_the_same_name() {
        for l in ::log::Level::iter() {
            let mapped = level(l);
            assert_eq!(mapped.as_str(), l.as_str(), "{l:?}");
            assert_eq!(mapped as usize, l as usize, "same order and numbering");
        }
    }

    fn log(logger: &RingLogger, level: ::log::Level, target: &str, args: fmt::Arguments<'_>) {
        logger.log(
            &Record::builder()
                .level(level)
                .target(target)
                .module_path(Some("app::db"))
                .args(args)
                .build(),
        );
    }

    #[test]
    fn records_carry_level_target_module_and_the_formatted_message() {
        let (_dir, path, writer) = ring();
        let logger = RingLogger::new(writer, LevelFilter::Debug);
        let big = "z".repeat(5000);
        log(
            &logger,
            ::log::Level::Info,
            "app::db",
            format_args!("literal"),
        );
        log(
            &logger,
            ::log::Level::Warn,
            "app::db",
            format_args!("slow {} ms", 812),
        );
        log(
            &logger,
            ::log::Level::Error,
            "audit",
            format_args!("x={}", 1),
        );
        log(
            &logger,
            ::log::Level::Debug,
            "app::db",
            format_args!("{big}"),
        );
        log(
            &logger,
            ::log::Level::Trace,
            "app::db",
            format_args!("too verbose"),
        );
        let got: Vec<_> = read_all(&path)
            .into_iter()
            .map(|r| (r.level, r.target, r.message))
            .collect();
        let row = |l, t: &str, m: &str| (l, t.to_owned(), m.to_owned());
        assert_eq!(
            got,
            [
                row(Level::Info, "app::db", "literal"),
                row(Level::Warn, "app::db", "slow 812 ms"),
                row(Level::Error, "audit", "x=1 module=app::db"),
                row(Level::Debug, "app::db", &big),
            ]
        );
    }

    #[test]
    fn enabled_follows_the_max_level() {
        let (_dir, _path, writer) = ring();
        let logger = RingLogger::new(writer, LevelFilter::Warn);
        let at = |l| Metadata::builder().level(l).build();
        assert!(logger.enabled(&at(::log::Level::Error)));
        assert!(logger.enabled(&at(::log::Level::Warn)));
        assert!(!logger.enabled(&at(::log::Level::Info)));
    }
}
