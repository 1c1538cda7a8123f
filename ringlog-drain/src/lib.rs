//! ringlog-drain: the one process per ring that reads the shared ring in order and appends the
//! records to the log in large batched writes. Only the drain touches the log file, so records
//! are never torn or interleaved, whatever their size, and rotation is simple.
//!
//! The library is the binary's engine ([`drain::Drain`]), usable in-process too; the binary
//! adds the command line, signals and `stat`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

mod append;
pub mod batch;
mod catch_up;
pub mod cli;
pub mod connection;
pub mod delivery;
pub mod drain;
mod drops;
mod durability;
pub mod events;
pub mod format;
pub mod forward_checkpoint;
mod forward_events;
pub mod forward_status;
pub mod forwarder;
mod idle;
mod name_watch;
pub mod options;
pub mod output;
mod pass;
pub mod preallocate;
mod recovery;
pub mod relp;
pub mod relp_journal;
mod render;
pub mod segment_name;
mod stage;
mod stall;
pub mod stat;
pub mod syslog;
pub mod tls;

pub use drain::{Drain, DrainError, DrainSummary};
pub use events::{BatchFile, DrainEvent, EventSink, Events};
pub use format::Format;
pub use options::{DrainOptions, DrainOptionsBuilder, FsyncPolicy, WriteThread};
pub use output::OutputSpec;
