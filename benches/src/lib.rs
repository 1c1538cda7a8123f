//! ringlog's benchmarks: the multi-process comparison harness behind the `ringlog-bench`
//! binary, and helpers shared with the criterion micro-benchmarks in `benches/`.
//!
//! What the harness guarantees before it prints a number: the log file of every run holds
//! every record exactly once, untorn, each producer's records in order (see [`record`]); a
//! violation fails the whole invocation. Contenders run round-robin inside one invocation so
//! their ratios hold on a noisy machine.
//!
//! Layers: [`record`] (what producers write and how a log is checked), [`roles`] (the hidden
//! producer and collector subcommands the harness runs as child processes), [`child`] (spawning
//! them and talking to them), [`run`] (one timed run of one contender), [`plan`] (the
//! round-robin schedule and the per-configuration summaries), [`drain_probe`] (drain-alone
//! throughput, idle latency, the page cache), [`report`] (table, JSON, target check), [`svg`] (the chart),
//! [`cpu`], [`latency`], [`machine`] and [`cpu_distance`] (measuring tools, the machine's
//! description, how far apart its CPUs are now).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

pub mod child;
pub mod cpu;
pub use ringlog_testkit::cpu_distance;
pub mod drain_probe;
pub mod latency;
pub use ringlog_testkit::machine;
pub mod plan;
/// The records every contender writes and the log check: the shared test kit's.
pub use ringlog_testkit::record;
pub mod report;
pub mod roles;
pub mod run;
pub mod svg;

/// Errors of the harness: a message with its cause chain (boxed, so every layer can add
/// context with `format!`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A log file that failed the integrity check. The harness exits with status 1 and prints no
/// number once it sees one.
#[derive(Debug)]
pub struct IntegrityViolation(pub String);

impl std::fmt::Display for IntegrityViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "INTEGRITY VIOLATION: {}", self.0)
    }
}

impl std::error::Error for IntegrityViolation {}
