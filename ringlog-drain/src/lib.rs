//! ringlog-drain: the one process per ring that reads the shared ring in order and appends the
//! records to the log in large batched writes. Only the drain touches the log file, so records
//! are never torn or interleaved, whatever their size, and rotation is simple.
//!
//! The library is the binary's engine ([`drain::Drain`]), usable in-process too; the binary
//! adds the command line, signals, `stat` and `demo`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

pub mod batch;
pub mod cli;
pub mod connection;
pub mod delivery;
pub mod demo;
pub mod drain;
pub mod format;
pub mod forward_checkpoint;
pub mod forward_status;
pub mod forwarder;
pub mod output;
pub mod preallocate;
pub mod relp;
pub mod relp_journal;
pub mod segment_name;
pub mod stat;
pub mod syslog;
pub mod tls;

pub use drain::{Drain, DrainError, DrainOptions, DrainSummary, FsyncPolicy};
pub use format::Format;
pub use output::OutputSpec;
