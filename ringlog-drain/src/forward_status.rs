//! What each forwarding output is doing, published for `ringlog-drain stat`: messages sent,
//! acknowledged and sent again, messages in flight, how far behind the local log it is, and its
//! last error. The drain writes it as JSON beside the ring's segment (`SEGMENT.outputs.json`,
//! replaced atomically, at most every [`PUBLISH_EVERY`]); `stat` reads it. It is a report, never
//! a checkpoint: nothing reads it back to decide what to send.

use serde_json::{json, Value};
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

fn render(outputs: &[OutputStatus]) -> Value {
    Value::Array(outputs.iter().map(OutputStatus::to_json).collect())
}

impl OutputStatus {
    /// This output's entry in the published file and in `stat --json`.
    pub fn to_json(&self) -> Value {
        json!({
            "destination": self.destination,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "resent": self.resent,
            "pending": self.pending,
            "lag_bytes": self.lag_bytes,
            "last_error": self.last_error,
            "last_ack_ns": self.last_ack_ns,
        })
    }

    /// An entry read back from the published file; a field it lacks reads as empty or 0.
    fn from_json(v: &Value) -> OutputStatus {
        let n = |key: &str| v[key].as_u64().unwrap_or(0);
        OutputStatus {
            destination: v["destination"].as_str().unwrap_or_default().to_owned(),
            sent: n("sent"),
            acknowledged: n("acknowledged"),
            resent: n("resent"),
            pending: n("pending"),
            lag_bytes: n("lag_bytes"),
            last_error: v["last_error"].as_str().map(str::to_owned),
            last_ack_ns: n("last_ack_ns"),
        }
    }
}

fn publish(path: &Path, doc: &Value) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, doc.to_string())?;
    std::fs::rename(&tmp, path)
}

/// Reads the published board of the ring whose segment is at `segment` (`None` if there is
/// none: no forwarding, or no drain).
pub fn read(segment: &Path) -> Option<Vec<OutputStatus>> {
    let text = std::fs::read(path_for(segment)).ok()?;
    let doc: Value = serde_json::from_slice(&text).ok()?;
    Some(
        doc.as_array()?
            .iter()
            .map(OutputStatus::from_json)
            .collect(),
    )
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
        let read_back = read(&segment).unwrap();
        let expected = OutputStatus {
            destination: "relp://127.0.0.1:1".into(),
            sent: 5,
            acknowledged: 3,
            pending: 2,
            last_error: Some("refused".into()),
            ..Default::default()
        };
        assert_eq!(read_back, [expected]);
        board.withdraw();
        assert!(read(&segment).is_none());
    }
}
