//! Errors of writing a record.

use ringlog_core::OpenError;
use std::fmt;

/// Why a record was not written. In every case nothing of it reached the ring.
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteError {
    /// The record is larger than the ring's max record size: it can never be written whole.
    TooLarge {
        /// Payload bytes (target + message).
        len: usize,
        /// The ring's max record size.
        max: u64,
    },
    /// The ring was full and the full policy dropped the record (it is counted, and the drain
    /// reports the count in the log).
    Dropped,
    /// The ring is full and the record it waits for space behind is one this thread holds
    /// (an uncommitted [`RecordClaim`](crate::RecordClaim) on the same ring): waiting could
    /// never end, since only this thread's commit or abort frees that space. Returned instead
    /// of blocking forever under [`FullPolicy::Block`](crate::FullPolicy::Block) (and instead
    /// of waiting out `BlockFor`). The record is counted as dropped, so the drain reports it;
    /// commit or drop the claim first, then write again.
    WouldDeadlock,
    /// This thread could not attach to the ring (no free producer slot, or an I/O error).
    Attach(OpenError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes is larger than the ring's max record size of {max} bytes: \
                 split it, or create the ring with a larger capacity/max record size"
            ),
            WriteError::Dropped => write!(
                f,
                "ring full: record dropped and counted (is ringlog-drain running and keeping up?)"
            ),
            WriteError::WouldDeadlock => write!(
                f,
                "ring full behind a record this thread has claimed and not committed: waiting \
                 would deadlock; record dropped and counted (commit or drop the claim first)"
            ),
            WriteError::Attach(_) => write!(f, "cannot attach this thread to the ring"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Attach(e) => Some(e),
            _ => None,
        }
    }
}
