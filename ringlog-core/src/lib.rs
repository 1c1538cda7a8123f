//! ringlog-core: the shared-memory ring that many processes log into and one drain empties.
//!
//! Guarantees, before the API:
//! - **Producers never block each other and never make a syscall** on the steady path: a claim
//!   is a CAS (on the cursor of the producer's own chunk for small records of a busy producer,
//!   [`chunk`]; else on the tail), a copy, and a Release store. The only syscalls are the futex wake of
//!   a sleeping drain and the wait when the ring is full.
//! - **Records are whole or absent.** A record is claimed, filled and committed as one frame;
//!   the drain sees it only once committed and never sees a torn one. An aborted or abandoned
//!   claim becomes padding, never a stall.
//! - **The ring never overwrites** unconsumed records: a full ring is the producer's problem
//!   (its full policy), not the reader's.
//! - **The consumer trusts nothing it reads**: every length, kind and slot id is checked before
//!   use, so garbage in the segment is reported, not followed.
//!
//! Layers: [`layout`] (where every word lives), [`frame`] (record header encoding), [`memory`]
//! (where the bytes live: mapping, heap or loom), [`ring`] (the protocol), [`chunk`] (small
//! records claimed inside per-producer chunks), `registry`
//! (producer slots), [`lock`] (liveness by OFD locks), [`segment`] (the file under /dev/shm),
//! [`futex`] and [`wake`] (waiting and waking across processes), [`checkpoint`] (the drain's
//! output checkpoint and recovery), the drain-owned words (counters, identity), [`backoff`]
//! (every wait schedule), [`size`] (sizes on command lines).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

pub mod abandon;
pub mod backoff;
pub mod checkpoint;
pub mod chunk;
pub mod clock;
pub mod consumer;
mod drain_words;
pub mod error;
pub mod fault;
pub mod frame;
#[cfg(not(loom))]
pub mod futex;
#[allow(missing_docs)]
pub mod layout;
#[cfg(not(loom))]
pub mod lock;
pub mod memory;
mod registry;
pub use registry::UnreportedDrops;
pub mod ring;
#[cfg(not(loom))]
pub mod segment;
pub mod size;
mod sync;
pub mod wake;

pub use checkpoint::{BatchIntent, CheckpointState, OutputFile, Recovery, SlotReports};
pub use consumer::{
    Consumer, Frame, InPlace, OpenCursor, PendingVerdict, ReadRange, RecordFrame, Releaser,
    RingRef, Skip,
};
pub use drain_words::{Counter, Counters, DrainIdentity};
pub use error::{ErrorChain, OpenError};
pub use frame::{Kind, Level, FRAME_HEADER_SIZE};
pub use ring::{
    Claim, ClaimError, Corruption, Geometry, GeometryError, LayoutError, MessageLimits, Next,
    RecordMeta, Ring, SlotInfo, SlotState,
};
#[cfg(not(loom))]
pub use segment::{Location, Segment, SegmentOptions};
pub use wake::Futex;
#[cfg(not(loom))]
pub use wake::SharedFutex;
