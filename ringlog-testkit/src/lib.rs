//! ringlog's test kit: what the integration tests, the benchmarks and the demo share, written
//! once. Records that are a pure function of `(producer, sequence)` and the verifiers that
//! rebuild them from a log ([`record`]: self-describing lines for raw logs; [`json_log`]:
//! opaque messages of any size in `--format json` logs); unique ring names and a guard that
//! removes a ring ([`ring`]); waiting for a drain process and for outside conditions
//! ([`process`]); tests that cannot run here saying so, countably ([`skip!`]); the page-cache
//! warm-up that treats every contender alike ([`warm_page_cache`]); the machine a run happened
//! on, printed beside every figure ([`machine`]), and how far apart its CPUs are at the moment
//! ([`cpu_distance`]).
//!
//! It holds generation, verification and set-up only: no timing of ringlog, and nothing a producer's or a
//! drain's hot loop calls except [`record::RecordBuf::make`] (inlined, O(1)). It never enables
//! fault injection, and no crate users link depends on it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

pub mod cpu_distance;
pub mod json_log;
pub mod machine;
pub mod process;
pub mod record;
pub mod ring;
pub mod skip;

pub use process::{wait_for_drain, wait_until, wait_until_every};
pub use ring::{ring_path, unique_ring, RingGuard};

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Writes and deletes `bytes` in 1 MiB writes in `dir`, so the pages the next writer's file
/// needs have just been used and freed. On VMs whose host reclaims free guest memory (free page
/// reporting, e.g. Firecracker's balloon), a page touched for the first time after a pause
/// costs a host fault, several times the cost of the copy into it; without this whoever ran
/// first would pay for it. The demo and the benchmark harness call it before each contender.
pub fn warm_page_cache(dir: &Path, bytes: u64) -> io::Result<()> {
    let path = dir.join("warm-up.tmp");
    let mut file = File::create(&path)?;
    let chunk = vec![b'w'; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    drop(file);
    std::fs::remove_file(&path)
}
