//! What each forwarding output is doing, published for `ringlog-drain stat`: messages sent,
//! acknowledged and sent again, messages in flight, how far behind the local log it is, and its
//! last error. The drain writes it as JSON beside the ring's segment (`SEGMENT.outputs.json`,
//! replaced atomically, at most every [`PUBLISH_EVERY`]); `stat` reads it. It is a report, never
//! a checkpoint: nothing reads it back to decide what to send.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two writes of the file while counters move.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// One output's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputStatus {
    /// The destination as given (`relp://HOST:PORT`, ...).
    pub destination: String,
    /// Messages sent (a message sent again counts again).
    pub sent: u64,
    /// Messages acknowledged by the receiver.
    pub acknowledged: u64,
    /// Messages sent again after a broken connection or a restart, never acknowledged before:
    /// the receiver may hold up to this many duplicates.
    pub resent: u64,
    /// Messages in flight (sent, not yet acknowledged).
    pub pending: u64,
    /// Bytes of the local log not yet acknowledged (forwarders reading the log).
    pub lag_bytes: u64,
    /// The last error, while it lasts (cleared once delivery works again).
    pub last_error: Option<String>,
    /// Wall-clock time of the last acknowledgement, ns since the epoch (0: none yet).
    pub last_ack_ns: u64,
}

/// The published figures of every forwarding output of one drain.
#[derive(Debug)]
pub struct StatusBoard {
    path: PathBuf,
    state: Mutex<(Vec<OutputStatus>, Option<Instant>)>,
}

/// Where the board of the ring whose segment is at `segment` is published.
pub fn path_for(segment: &Path) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".outputs.json");
    PathBuf::from(p)
}

impl StatusBoard {
    /// A board published at `path`.
    pub fn new(path: PathBuf) -> StatusBoard {
        StatusBoard {
            path,
            state: Mutex::new((Vec::new(), None)),
        }
    }

    /// Adds an output; returns its index for [`StatusBoard::update`].
    pub fn register(&self, destination: &str) -> usize {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0.push(OutputStatus {
            destination: destination.to_owned(),
            ..Default::default()
        });
        s.0.len() - 1
    }

    /// Changes output `index`'s figures and publishes them if due (or at once if `now`).
    pub fn update(&self, index: usize, now: bool, change: impl FnOnce(&mut OutputStatus)) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = s.0.get_mut(index) {
            change(entry);
        }
        let due = now || s.1.map_or(true, |t| t.elapsed() >= PUBLISH_EVERY);
        if due {
            s.1 = Some(Instant::now());
            let doc = render(&s.0);
            drop(s);
            // Best effort: a report that cannot be written must not stop forwarding.
            let _ = publish(&self.path, &doc);
        }
    }

    /// Removes the published file (the drain is stopping).
    pub fn withdraw(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn render(outputs: &[OutputStatus]) -> serde_json::Value {
    json!(outputs
        .iter()
        .map(|o| json!({
            "destination": o.destination,
            "sent": o.sent,
            "acknowledged": o.acknowledged,
            "resent": o.resent,
            "pending": o.pending,
            "lag_bytes": o.lag_bytes,
            "last_error": o.last_error,
            "last_ack_ns": o.last_ack_ns,
        }))
        .collect::<Vec<_>>())
}

fn publish(path: &Path, doc: &serde_json::Value) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, doc.to_string())?;
    std::fs::rename(&tmp, path)
}

/// Reads the published board of the ring whose segment is at `segment` (`None` if there is
/// none: no forwarding, or no drain).
pub fn read(segment: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(path_for(segment)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_published_for_stat() {
        let dir = tempfile::tempdir().unwrap();
        let segment = dir.path().join("ringlog-x");
        let board = StatusBoard::new(path_for(&segment));
        let a = board.register("relp://127.0.0.1:1");
        board.update(a, true, |s| {
            s.sent = 5;
            s.acknowledged = 3;
            s.pending = 2;
            s.last_error = Some("refused".into());
        });
        let v = read(&segment).unwrap();
        assert_eq!(v[0]["destination"], "relp://127.0.0.1:1");
        assert_eq!(v[0]["sent"], 5);
        assert_eq!(v[0]["pending"], 2);
        assert_eq!(v[0]["last_error"], "refused");
        board.withdraw();
        assert!(read(&segment).is_none());
    }
}
