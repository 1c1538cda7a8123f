//! ringlog-writer: log from many processes into one file without a syscall per record.
//!
//! A service opens a [`Writer`] on a named ring (a segment under /dev/shm shared with every
//! other producer and with one `ringlog-drain` process) and writes records. Each
//! [`Writer::write`] is one record: it lands whole and contiguous in the drain's output, or not
//! at all, whatever its size up to the ring's max record size.
//!
//! ```no_run
//! let log = ringlog_writer::Writer::open("myservice")?;
//! log.write(b"started")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Guarantees:
//! - The steady path makes no syscall, takes no lock and allocates nothing: a thread-local
//!   lookup, a CAS on the ring's tail, a copy, a Release store. The first write of each thread
//!   attaches it to a producer slot (a few syscalls, once).
//! - Start order does not matter: the first of drain or producer creates the ring.
//! - A full ring follows [`FullPolicy`]; a dead or absent drain never hangs a `Block`ing writer.
//! - `Writer` is `Send + Sync + Clone`, and keeps working in a child after `fork()` (the child
//!   attaches with its own pid).
//!
//! Integrations, behind cargo features: `log` (a `log::Log` implementation and
//! `ringlog_writer::log::init`) and `tracing` ([`Writer`] is a `MakeWriter` for
//! `tracing_subscriber::fmt().with_writer(writer)`, and a structured `Layer` is in
//! `ringlog_writer::tracing`). [`Writer::stats`] and
//! [`Writer::drain_alive`] tell a service how its logging fares.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

mod error;
mod fork;
#[cfg(any(feature = "log", feature = "tracing"))]
mod formatted;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tracing")]
pub mod tracing;
mod writer;

pub use error::WriteError;
pub use ringlog_core::{ErrorChain, Level, OpenError};
pub use writer::{
    FullPolicy, RecordClaim, WeakWriter, Writer, WriterBuilder, WriterStats, DRAIN_GRACE,
};
