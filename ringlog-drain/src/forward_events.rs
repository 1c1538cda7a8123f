//! What delivery to a receiver has to tell the operator, as values carried by
//! [`crate::DrainEvent`]: [`ForwardEvent`] for the forwarding thread of `--forward` (it follows
//! the log and keeps a checkpoint), [`DeliveryEvent`] for the connection to a syslog or RELP
//! receiver, whichever path uses it. Each prints the wording the command line has always used.
//! Nothing here sends, retries or decides: [`crate::forwarder`], [`crate::syslog`] and
//! [`crate::delivery`] do, and raise these.

use crate::delivery::{DeliveryError, Totals};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Something the forwarding thread (`--forward`) did or met.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardEvent {
    /// No checkpoint yet: forwarding starts at the log's current end.
    Started {
        /// The log.
        log: PathBuf,
        /// The receiver.
        url: String,
        /// The checkpoint just written.
        checkpoint: PathBuf,
    },
    /// The previous drain sent this many records it never saw acknowledged; they go first.
    Unacknowledged {
        /// The receiver.
        url: String,
        /// Records sent and not acknowledged.
        records: u64,
        /// Whether `records` is exact, or only a bound (the checkpoint is from another boot:
        /// its last `sent` may not have reached the disk).
        exact: bool,
    },
    /// The checkpoint's file is shorter than the checkpoint says: it is forwarded from its start.
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The checkpoint's file is gone (rotated away more than `--rotate-keep` times): what it
    /// held after the checkpoint was not forwarded; forwarding goes on with the oldest file kept.
    CheckpointFileGone,
    /// The file just finished was already deleted by rotation: if the log rotated more than
    /// `keep` times meanwhile, the files deleted in between were not forwarded.
    RotatedAway {
        /// The receiver.
        url: String,
        /// `--rotate-keep`.
        keep: u32,
    },
    /// Forwarding started failing (said once per failing spell); the log keeps being written and
    /// forwarding resumes from the last acknowledged record.
    Failing {
        /// The receiver.
        url: String,
        /// What failed first.
        failure: ForwardFailure,
    },
    /// Forwarding works again after [`ForwardEvent::Failing`].
    Recovered {
        /// The receiver.
        url: String,
    },
    /// The forwarding checkpoint could not be written.
    CheckpointFailed(io::Error),
    /// The forwarding thread stopped, having done this.
    Finished(Totals),
}

/// What failed when forwarding started failing.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardFailure {
    /// Reading the log failed.
    ReadLog(io::Error),
    /// The receiver did not take a batch.
    Delivery(DeliveryError),
}

impl fmt::Display for ForwardFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardFailure::ReadLog(e) => write!(f, "cannot read the log: {e}"),
            // One line for the operator, so the causes go in it.
            ForwardFailure::Delivery(e) => f.write_str(&crate::syslog::with_causes(e)),
        }
    }
}

impl fmt::Display for ForwardEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardEvent::Started {
                log,
                url,
                checkpoint,
            } => write!(
                f,
                "forwarding {} to {url} from its current end (checkpoint {})",
                log.display(),
                checkpoint.display()
            ),
            ForwardEvent::Unacknowledged {
                url,
                records,
                exact,
            } => write!(
                f,
                "forwarding to {url}: the previous drain sent {records} records it never saw \
                 acknowledged{}; they go again first",
                if *exact {
                    ""
                } else {
                    " (at most: the machine restarted since, so only a bound is known)"
                }
            ),
            ForwardEvent::Truncated { path } => write!(
                f,
                "forwarding: {} is shorter than the checkpoint says (truncated?); forwarding it \
                 from its start",
                path.display()
            ),
            ForwardEvent::CheckpointFileGone => f.write_str(
                "forwarding: the file the checkpoint names is gone (rotated away more than \
                 --rotate-keep times); records in it after the checkpoint were not forwarded; \
                 going on with the oldest file kept",
            ),
            ForwardEvent::RotatedAway { url, keep } => write!(
                f,
                "forwarding to {url}: the file it finished was already deleted by rotation; if \
                 the log rotated more than --rotate-keep ({keep}) times meanwhile, the records of \
                 the files deleted in between were not forwarded"
            ),
            ForwardEvent::Failing { url, failure } => write!(
                f,
                "forwarding to {url}: {failure}; the log keeps being written, and forwarding \
                 resumes from the last acknowledged record once the receiver is back"
            ),
            ForwardEvent::Recovered { url } => write!(f, "forwarding to {url} works again"),
            ForwardEvent::CheckpointFailed(e) => {
                write!(f, "forwarding: cannot write the checkpoint: {e}")
            }
            ForwardEvent::Finished(totals) => write!(f, "forwarding {totals}"),
        }
    }
}

/// Something the connection to a syslog or RELP receiver met.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryEvent {
    /// RELP: a new session sends again messages sent before and never acknowledged (the
    /// receiver may hold them twice; they count as resent).
    Resending {
        /// The receiver, `HOST:PORT`.
        address: String,
        /// Messages sent again.
        messages: usize,
    },
    /// Plain TCP or TLS: a connection broke; up to this many records may be lost (also said
    /// in-band on the next connection).
    Interrupted {
        /// The receiver.
        url: String,
        /// Records that may not have arrived.
        up_to: u64,
    },
    /// `--out relp://`: the journal cannot be kept; a drain restarted after a crash sends its
    /// last batch whole again, uncounted.
    JournalUnavailable {
        /// The journal's path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// `--out relp://`: writing the journal failed.
    JournalFailed(io::Error),
    /// `--out relp://`: the previous drain's last batch was acknowledged up to this message;
    /// the batch goes on from there.
    Resumed {
        /// The receiver, `HOST:PORT`.
        address: String,
        /// Messages of the batch acknowledged before.
        acknowledged: usize,
    },
    /// `--out relp://`: the output closed, having done this.
    Closed(Totals),
}

impl fmt::Display for DeliveryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryEvent::Resending { address, messages } => write!(
                f,
                "RELP session with {address} open; sending again {messages} messages sent before \
                 and never acknowledged (the receiver may hold them twice)"
            ),
            DeliveryEvent::Interrupted { url, up_to } => write!(
                f,
                "forwarding to {url} was interrupted; up to {up_to} records may be lost (plain \
                 syslog has no acknowledgements)"
            ),
            DeliveryEvent::JournalUnavailable { path, error } => write!(
                f,
                "cannot keep the RELP journal {}: {error}; a drain restarted after a crash will \
                 send its last batch whole again, uncounted",
                path.display()
            ),
            DeliveryEvent::JournalFailed(e) => write!(f, "cannot write the RELP journal: {e}"),
            DeliveryEvent::Resumed {
                address,
                acknowledged,
            } => write!(
                f,
                "RELP to {address}: the previous drain's last batch was acknowledged up to \
                 message {acknowledged}; going on from there"
            ),
            DeliveryEvent::Closed(totals) => write!(f, "{totals}"),
        }
    }
}
