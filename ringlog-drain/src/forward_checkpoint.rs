//! A forwarder's own checkpoint: which log file it is reading (device and inode, so rotation
//! cannot fool it), how far the receiver acknowledged, and how far it had sent. It lives in a
//! small file beside the log (`LOG.forward-HOST_PORT`), rewritten in place with one `pwrite` of a
//! fixed-size line, so a SIGKILLed drain finds either the old or the new position, never half.
//!
//! It never moves the acknowledged position on its own: only [`ForwardCheckpoint::acknowledged`]
//! does, called when the receiver acknowledged.
//!
//! Durability: a SIGKILLed drain loses nothing of it (every change is in the page cache at
//! once). Against a power loss, the `sent` position and a new file are fsynced before any byte
//! they cover is sent, so a restarted forwarder counts as resent everything the receiver may
//! hold twice; acknowledgements are fsynced at most [`SYNC_ACKNOWLEDGED_EVERY`] apart, so a power
//! loss sends again at most that long's acknowledged lines, and those are within `sent`, hence
//! counted too.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest time an acknowledged position stays only in the page cache.
pub const SYNC_ACKNOWLEDGED_EVERY: Duration = Duration::from_secs(1);
/// Length of the one line the file holds.
const RECORD_LEN: usize = 96;
/// Its first word, which also versions the layout.
const MAGIC: &str = "ringlog-forward-v1";

/// A position in the log: a file (by identity) and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Offset of the first byte not acknowledged.
    pub acknowledged: u64,
    /// Offset of the first byte not sent (>= `acknowledged` in the same file).
    pub sent: u64,
}

/// The checkpoint file.
#[derive(Debug)]
pub struct ForwardCheckpoint {
    path: PathBuf,
    file: File,
    position: Position,
    /// Since when the file holds a change that is not fsynced yet.
    unsynced_since: Option<Instant>,
}

/// The checkpoint file of the forwarding of `log` to `address`.
pub fn path_for(log: &Path, address: &str) -> PathBuf {
    beside(log, "forward", address)
}

/// The file `BASE.KIND-ADDRESS` beside `base`, with `address` made safe for a file name (every
/// character but ASCII letters, digits, `.` and `-` becomes `_`): the drain's per-destination
/// state files (this checkpoint, the RELP journal).
pub(crate) fn beside(base: &Path, kind: &str, address: &str) -> PathBuf {
    let safe: String = address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut p = base.as_os_str().to_owned();
    p.push(format!(".{kind}-{safe}"));
    PathBuf::from(p)
}

impl ForwardCheckpoint {
    /// Opens the checkpoint at `path`; `Ok((cp, None))` if it is new (nothing forwarded yet).
    pub fn open(path: &Path) -> io::Result<(ForwardCheckpoint, Option<Position>)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut line = [0u8; RECORD_LEN];
        let n = file.read_at(&mut line, 0)?;
        let found = if n == 0 {
            None
        } else {
            Some(parse(&line[..n]).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a ringlog forwarding checkpoint (remove it to forward from the \
                         log's current end)",
                        path.display()
                    ),
                )
            })?)
        };
        if found.is_none() {
            // The new file's name must survive a power loss too.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        let checkpoint = ForwardCheckpoint {
            path: path.to_owned(),
            file,
            position: found.unwrap_or_default(),
            unsynced_since: None,
        };
        Ok((checkpoint, found))
    }

    /// Where it stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a new position (a new file, or progress in the current one), durably.
    pub fn store(&mut self, position: Position) -> io::Result<()> {
        self.write(position)?;
        self.sync()
    }

    /// Flushes the last position to stable storage if it is not there yet.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced_since.is_some() {
            self.file.sync_data()?;
            self.unsynced_since = None;
        }
        Ok(())
    }

    fn write(&mut self, position: Position) -> io::Result<()> {
        let mut line = format!(
            "{MAGIC} {} {} {} {}",
            position.dev, position.ino, position.acknowledged, position.sent
        );
        // Pad to the fixed length so a shorter line never leaves the tail of a longer one.
        line.push_str(&" ".repeat(RECORD_LEN - 1 - line.len()));
        line.push('\n');
        self.file.write_all_at(line.as_bytes(), 0)?;
        self.position = position;
        self.unsynced_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Moves the acknowledged offset forward in the current file (fsynced with the next
    /// [`ForwardCheckpoint::sent`], or when the last fsync is [`SYNC_ACKNOWLEDGED_EVERY`] old).
    pub fn acknowledged(&mut self, offset: u64) -> io::Result<()> {
        let p = Position {
            acknowledged: offset,
            sent: self.position.sent.max(offset),
            ..self.position
        };
        self.write(p)?;
        if self
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= SYNC_ACKNOWLEDGED_EVERY)
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Records, durably, that everything up to `offset` of the current file is about to be
    /// sent.
    pub fn sent(&mut self, offset: u64) -> io::Result<()> {
        let p = Position {
            sent: offset,
            ..self.position
        };
        self.store(p)
    }
}

fn parse(line: &[u8]) -> Option<Position> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_ascii_whitespace();
    if words.next()? != MAGIC {
        return None;
    }
    let mut n = || words.next()?.parse::<u64>().ok();
    let (dev, ino, acknowledged, sent) = (n()?, n()?, n()?, n()?);
    (sent >= acknowledged).then_some(Position {
        dev,
        ino,
        acknowledged,
        sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_reopening_and_shrinking_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let (mut cp, found) = ForwardCheckpoint::open(&path).unwrap();
        assert_eq!(found, None);
        cp.store(Position {
            dev: 1,
            ino: 123456789,
            acknowledged: 1 << 40,
            sent: 1 << 41,
        })
        .unwrap();
        cp.store(Position {
            dev: 2,
            ino: 3,
            acknowledged: 4,
            sent: 4,
        })
        .unwrap();
        cp.sent(10).unwrap();
        cp.acknowledged(7).unwrap();
        drop(cp);
        let (_, found) = ForwardCheckpoint::open(&path).unwrap();
        assert_eq!(
            found,
            Some(Position {
                dev: 2,
                ino: 3,
                acknowledged: 7,
                sent: 10
            })
        );
    }

    #[test]
    fn a_foreign_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        std::fs::write(&path, "hello\n").unwrap();
        let e = ForwardCheckpoint::open(&path).unwrap_err();
        assert!(e.to_string().contains("remove it"), "{e}");
    }

    #[test]
    fn checkpoint_names_are_beside_the_log() {
        assert_eq!(
            path_for(Path::new("/var/log/app.log"), "logs.example:20514"),
            PathBuf::from("/var/log/app.log.forward-logs.example_20514")
        );
    }
}
