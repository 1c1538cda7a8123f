//! A forwarder's own checkpoint: which log file it is reading (device and inode, so rotation
//! cannot fool it), how far the receiver acknowledged, and how far it had sent. It lives in a
//! small file beside the log (`LOG.forward-HOST_PORT`), rewritten in place with one `pwrite` of a
//! fixed-size line, so a SIGKILLed drain finds either the old or the new position, never half.
//!
//! It never moves the acknowledged position on its own: only [`ForwardCheckpoint::acknowledged`]
//! does, called when the receiver acknowledged.
//!
//! Exact counts after a SIGKILL: the `sent` position is written before each write to the
//! connection ([`ForwardCheckpoint::sending`]), so the lines between `acknowledged` and `sent` are
//! exactly those the receiver may hold without having acknowledged them: a restarted forwarder
//! sends them again and counts them as resent. A SIGKILLed drain loses nothing of the file (every
//! change is in the page cache at once).
//!
//! Durability against a power loss: `sent` is not fsynced at each write (that would be an fsync
//! per window of messages). A bound of it is: before the forwarder sends a chunk of the log it
//! fsyncs `reserved`, the chunk's end ([`ForwardCheckpoint::reserve`]), and so does a new file.
//! The line also names the boot it was written in (the kernel's `boot_id`): a forwarder that
//! finds a line of another boot cannot trust that the page cache's last `sent` reached the disk,
//! and counts as resent everything up to `reserved` instead (a bound, not exact).
//! Acknowledgements are fsynced at most [`SYNC_ACKNOWLEDGED_EVERY`] apart, so a power loss sends
//! again at most that long's acknowledged lines, and those are within `reserved`, hence counted
//! too.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest time an acknowledged position stays only in the page cache.
pub const SYNC_ACKNOWLEDGED_EVERY: Duration = Duration::from_secs(1);
/// Length of the one line the file holds (within one disk sector, so a power loss cannot tear it).
const RECORD_LEN: usize = 192;
/// Its first word, which also versions the layout.
const MAGIC: &str = "ringlog-forward-v2";
/// The first word of the previous layout (no `reserved`, no boot; its `sent` was fsynced), still
/// read so that an upgraded drain resumes where the old one stopped.
const MAGIC_V1: &str = "ringlog-forward-v1";
/// Where the kernel tells this boot's identity.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A position in the log: a file (by identity) and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Offset of the first byte not acknowledged.
    pub acknowledged: u64,
    /// Offset of the first byte not handed to the connection (>= `acknowledged` in the same
    /// file). Exact when read back in the boot it was written in; else the fsynced bound of it.
    pub sent: u64,
}

/// What [`ForwardCheckpoint::open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The position.
    pub position: Position,
    /// Whether `position.sent` is exact (written in this boot), or only a bound of what was
    /// sent (the machine restarted since, or an older drain wrote the file).
    pub exact: bool,
}

/// The checkpoint file.
#[derive(Debug)]
pub struct ForwardCheckpoint {
    path: PathBuf,
    file: File,
    position: Position,
    /// Fsynced before any byte past it is sent: `>= position.sent`.
    reserved: u64,
    /// This boot's identity (`None`: the kernel would not say).
    boot: Option<String>,
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
    pub fn open(path: &Path) -> io::Result<(ForwardCheckpoint, Option<Found>)> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut line = [0u8; RECORD_LEN];
        let n = file.read_at(&mut line, 0)?;
        let boot = this_boot();
        let found = if n == 0 {
            None
        } else {
            Some(parse(&line[..n], boot.as_deref()).ok_or_else(|| {
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
        let position = found.map_or_else(Position::default, |f| f.position);
        let checkpoint = ForwardCheckpoint {
            path: path.to_owned(),
            file,
            position,
            reserved: position.sent,
            boot,
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
        self.reserved = position.sent;
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
            "{MAGIC} {} {} {} {} {} {}",
            position.dev,
            position.ino,
            position.acknowledged,
            position.sent,
            self.reserved,
            self.boot.as_deref().unwrap_or("-")
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
    /// [`ForwardCheckpoint::reserve`], or when the last fsync is [`SYNC_ACKNOWLEDGED_EVERY`] old).
    pub fn acknowledged(&mut self, offset: u64) -> io::Result<()> {
        let p = Position {
            acknowledged: offset,
            sent: self.position.sent.max(offset),
            ..self.position
        };
        self.reserved = self.reserved.max(offset);
        self.write(p)?;
        if self
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= SYNC_ACKNOWLEDGED_EVERY)
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Records, durably, that bytes up to `offset` of the current file may be sent from now on
    /// (the bound a forwarder restarted after a power loss counts as resent).
    pub fn reserve(&mut self, offset: u64) -> io::Result<()> {
        if offset > self.reserved {
            self.reserved = offset;
            self.write(self.position)?;
        }
        self.sync()
    }

    /// Records that everything up to `offset` of the current file is about to be handed to the
    /// connection: called before the bytes leave, so that it covers whatever the receiver may
    /// hold. Not fsynced (see the module's doc) unless `offset` is past what was reserved.
    pub fn sending(&mut self, offset: u64) -> io::Result<()> {
        if offset > self.reserved {
            self.reserve(offset)?;
        }
        if offset > self.position.sent {
            let p = Position {
                sent: offset,
                ..self.position
            };
            self.write(p)?;
        }
        Ok(())
    }
}

/// This boot's identity, from the kernel.
fn this_boot() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic())).then(|| id.to_owned())
}

/// Reads a checkpoint line; `boot` is this boot's identity, which decides whether its `sent` is
/// exact.
fn parse(line: &[u8], boot: Option<&str>) -> Option<Found> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_ascii_whitespace();
    let v1 = match words.next()? {
        MAGIC => false,
        MAGIC_V1 => true,
        _ => return None,
    };
    let mut n = || words.next()?.parse::<u64>().ok();
    let (dev, ino, acknowledged, sent) = (n()?, n()?, n()?, n()?);
    let (sent, exact) = if v1 {
        (sent, false)
    } else {
        let reserved = n()?;
        let written_in = words.next()?;
        let exact = boot.is_some_and(|b| b == written_in);
        (if exact { sent } else { reserved.max(sent) }, exact)
    };
    (sent >= acknowledged).then_some(Found {
        position: Position {
            dev,
            ino,
            acknowledged,
            sent,
        },
        exact,
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
        cp.reserve(20).unwrap();
        cp.sending(10).unwrap();
        cp.acknowledged(7).unwrap();
        drop(cp);
        let (_, found) = ForwardCheckpoint::open(&path).unwrap();
        let position = Position {
            dev: 2,
            ino: 3,
            acknowledged: 7,
            sent: 10,
        };
        match this_boot() {
            // Written in this boot: `sent` is exact.
            Some(_) => assert_eq!(
                found,
                Some(Found {
                    position,
                    exact: true
                })
            ),
            None => {
                eprintln!("no boot id here: only the reserved bound can be trusted");
                assert_eq!(
                    found,
                    Some(Found {
                        position: Position {
                            sent: 20,
                            ..position
                        },
                        exact: false
                    })
                );
            }
        }
    }

    #[test]
    fn after_a_restart_of_the_machine_the_reserved_bound_stands_for_sent() {
        let line = |magic: &str, tail: &str| format!("{magic} 2 3 7 10 {tail}\n");
        let v2 = line(MAGIC, "20 some-other-boot");
        let found = parse(v2.as_bytes(), Some("this-boot")).unwrap();
        assert_eq!((found.position.sent, found.exact), (20, false));
        let found = parse(v2.as_bytes(), Some("some-other-boot")).unwrap();
        assert_eq!((found.position.sent, found.exact), (10, true));
        // A boot nobody could name is no match.
        let unknown = line(MAGIC, "20 -");
        assert!(!parse(unknown.as_bytes(), None).unwrap().exact);
        // The previous layout: its `sent` was the fsynced bound.
        let v1 = line(MAGIC_V1, "");
        let found = parse(v1.as_bytes(), Some("this-boot")).unwrap();
        assert_eq!((found.position.acknowledged, found.position.sent), (7, 10));
        assert!(!found.exact);
    }

    #[test]
    fn sending_past_the_reserved_bound_reserves_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let (mut cp, _) = ForwardCheckpoint::open(&path).unwrap();
        cp.store(Position::default()).unwrap();
        cp.sending(50).unwrap();
        assert_eq!((cp.reserved, cp.position().sent), (50, 50));
        cp.reserve(40).unwrap();
        assert_eq!(cp.reserved, 50, "the bound never moves back");
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
