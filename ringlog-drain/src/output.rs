//! Where the drain writes: a file opened with O_APPEND, or standard output. Owns the
//! descriptor, the current length and identity of the file (for the checkpoint), reopening
//! (SIGHUP, a file removed underneath), the blocks reserved ahead of the file's end
//! ([`crate::preallocate`]) and truncating back a half-written batch. It never decides what to
//! write or when.

use ringlog_core::{ReadRange, Releaser, RingRef};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::events::Events;
use crate::preallocate::Preallocation;

/// Where to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSpec {
    /// Standard output (`--out -`).
    Stdout,
    /// A file, appended to (created 0644 if absent).
    File(PathBuf),
    /// A syslog receiver (`syslog+tcp://`, `syslog+udp://`, `syslog+tls://`, `relp://`,
    /// `relp+tls://` then `HOST:PORT`).
    Syslog(crate::syslog::Destination),
}

impl OutputSpec {
    /// Parses `--out`: `-` for stdout, a syslog or RELP URL, else a path.
    pub fn parse(s: &str) -> OutputSpec {
        if s == "-" {
            OutputSpec::Stdout
        } else if let Some(d) = crate::syslog::Destination::parse(s) {
            OutputSpec::Syslog(d)
        } else {
            OutputSpec::File(PathBuf::from(s))
        }
    }
}

/// Identity and length of the output file, as recorded in the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileState {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Length in bytes.
    pub len: u64,
    /// Birth time, ns since the Unix epoch; 0 where the filesystem keeps none.
    pub born: u64,
}

impl FileState {
    fn of(meta: &std::fs::Metadata) -> FileState {
        FileState {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            born: born_ns(meta),
        }
    }
}

/// A file's birth time (`statx`'s `btime`), ns since the Unix epoch; 0 if unknown.
fn born_ns(meta: &std::fs::Metadata) -> u64 {
    meta.created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// When to rotate the output file: `path` becomes `path.1`, `path.1` becomes `path.2`, ...,
/// up to `path.<keep>`; older files are deleted. Rotation happens between batches, and a batch
/// never splits a record, so no record straddles two files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before the file would grow past this many bytes.
    pub max_bytes: Option<u64>,
    /// Rotate when the wall-clock hour or day changes.
    pub interval: Option<Interval>,
    /// Rotated files to keep.
    pub keep: u32,
}

/// A rotation period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Interval {
    /// At the start of every UTC hour.
    Hourly,
    /// At the start of every UTC day.
    Daily,
}

impl Interval {
    fn period(self, now_secs: u64) -> u64 {
        match self {
            Interval::Hourly => now_secs / 3600,
            Interval::Daily => now_secs / 86400,
        }
    }
}

/// An open output.
#[derive(Debug)]
pub struct Output {
    spec: OutputSpec,
    file: Option<File>,
    syslog: Option<crate::syslog::Sink>,
    state: Option<FileState>,
    rotation: Rotation,
    /// The rotation period the current file was opened in.
    period: u64,
    /// Blocks reserved past the end of `file`.
    preallocation: Preallocation,
}

impl Output {
    /// Opens the output with a rotation policy and reservations of at most `preallocate` bytes
    /// past the end of the file (0: none); both only apply to files. A receiver's connection
    /// tells `events` what the operator should know.
    pub fn open_with(
        spec: OutputSpec,
        rotation: Rotation,
        preallocate: u64,
        events: &Events,
    ) -> io::Result<Output> {
        let syslog = match &spec {
            OutputSpec::Syslog(d) => {
                let sink = crate::syslog::Sink::new(d.clone(), events.clone())
                    .map_err(io::Error::other)?;
                sink.check()?;
                Some(sink)
            }
            _ => None,
        };
        let mut out = Output {
            spec,
            file: None,
            syslog,
            state: None,
            rotation,
            period: 0,
            preallocation: Preallocation::new(preallocate),
        };
        out.reopen()?;
        out.period = out.current_period();
        Ok(out)
    }

    fn current_period(&self) -> u64 {
        let now = ringlog_core::clock::now_ns() / 1_000_000_000;
        self.rotation.interval.map_or(0, |i| i.period(now))
    }

    /// Bytes that may still be appended before a size rotation is due (`None`: no limit).
    pub fn room(&self) -> Option<u64> {
        let max = self.rotation.max_bytes?;
        let len = self.state?.len;
        Some(max.saturating_sub(len))
    }

    /// Rotates now if the file is not empty and `incoming` more bytes would take it past the
    /// size limit, or the period changed. Returns whether it rotated.
    pub fn rotate_if_due(&mut self, incoming: u64) -> io::Result<bool> {
        let (Some(path), Some(state)) = (self.path().map(Path::to_owned), self.state) else {
            return Ok(false);
        };
        let by_size = self
            .rotation
            .max_bytes
            .is_some_and(|max| state.len + incoming > max);
        let period = self.current_period();
        let by_time = self.rotation.interval.is_some() && period != self.period;
        if state.len == 0 || !(by_size || by_time) {
            self.period = period;
            return Ok(false);
        }
        let numbered = |n: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let keep = self.rotation.keep;
        if keep == 0 {
            std::fs::remove_file(&path)?;
        } else {
            match std::fs::remove_file(numbered(keep)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..keep).rev() {
                match std::fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&path, numbered(1))?;
        }
        self.reopen()?;
        self.period = period;
        Ok(true)
    }

    /// (Re)opens the file at its path: after SIGHUP (logrotate moved it), or after an error.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let OutputSpec::File(path) = &self.spec {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(path)?;
            let meta = file.metadata()?;
            self.give_back_reservation();
            self.preallocation.attach(&file);
            self.state = Some(FileState::of(&meta));
            self.file = Some(file);
        }
        Ok(())
    }

    /// Frees the blocks reserved past the end of the file held now, before letting go of it.
    /// Best effort: a failure only leaves them allocated.
    fn give_back_reservation(&mut self) {
        if let (Some(file), Some(state)) = (&self.file, self.state) {
            let _ = self.preallocation.release(file, state.len);
        }
    }

    /// The output path, if a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.spec {
            OutputSpec::File(p) => Some(p),
            OutputSpec::Stdout | OutputSpec::Syslog(_) => None,
        }
    }

    /// True for a syslog receiver (records are RFC 5424 messages).
    pub fn is_syslog(&self) -> bool {
        self.syslog.is_some()
    }

    /// How errors name this output.
    pub fn describe(&self) -> String {
        match &self.spec {
            OutputSpec::File(p) => p.display().to_string(),
            OutputSpec::Stdout => "standard output".to_owned(),
            OutputSpec::Syslog(d) => format!("receiver {}", d.url()),
        }
    }

    /// Identity and length of the file as this drain last knew them (`None` for stdout).
    pub fn state(&self) -> Option<FileState> {
        self.state
    }

    /// The next append carries the ring's records from position `start` on (a receiver that
    /// acknowledges uses it to resume a batch sent before).
    pub fn begin_batch(&mut self, start: u64) {
        if let Some(sink) = &mut self.syslog {
            sink.begin_batch(start);
        }
    }

    /// Appends `bytes` whole. On error the file may hold a prefix of them: call
    /// [`Output::truncate_to`] with the length from before.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(sink) = &mut self.syslog {
            return sink.send(bytes);
        }
        match &mut self.file {
            Some(file) => {
                if let Some(s) = self.state {
                    self.preallocation
                        .before_append(file, s.len, bytes.len() as u64)?;
                }
                file.write_all(bytes)?;
                if let Some(s) = &mut self.state {
                    s.len += bytes.len() as u64;
                }
                Ok(())
            }
            None => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
        }
    }

    /// Appends a whole batch (with `writev` when it references ring memory). Errors as for
    /// [`Output::append`].
    /// Its ring pieces lie in `range`, handed off to `releaser`.
    pub fn append_batch<R: RingRef>(
        &mut self,
        batch: &mut crate::batch::Batch,
        range: &ReadRange,
        releaser: &Releaser<R>,
    ) -> io::Result<()> {
        if let Some(bytes) = batch.contiguous() {
            return self.append(bytes);
        }
        let len = batch.len() as u64;
        match (&self.syslog, &self.file) {
            (Some(_), _) => Err(io::Error::other("a syslog batch must be contiguous")),
            (None, Some(file)) => {
                if let Some(s) = self.state {
                    self.preallocation.before_append(file, s.len, len)?;
                }
                batch.write_to(std::os::fd::AsRawFd::as_raw_fd(file), range, releaser)?;
                if let Some(s) = &mut self.state {
                    s.len += len;
                }
                Ok(())
            }
            (None, None) => {
                io::stdout().lock().flush()?;
                batch.write_to(libc::STDOUT_FILENO, range, releaser)
            }
        }
    }

    /// Flushes file data to stable storage.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Reopens the path if the file there is no longer the one we hold (removed, renamed away
    /// or replaced, e.g. by logrotate without a SIGHUP). Returns whether it reopened.
    pub fn follow_path(&mut self) -> io::Result<bool> {
        let Some(held) = self.state else {
            return Ok(false);
        };
        match self.probe()? {
            Some(now) if now.dev == held.dev && now.ino == held.ino => {
                // Same file; someone may have truncated it (logrotate's copytruncate): O_APPEND
                // writes go to its real end, so track that length. Cutting it freed the blocks
                // reserved past the old end.
                if now.len < held.len {
                    self.preallocation.forget();
                }
                if let Some(s) = &mut self.state {
                    s.len = now.len;
                }
                Ok(false)
            }
            _ => self.reopen().map(|()| true),
        }
    }

    /// Cuts the file back to `len` bytes (undoing a half-written batch). Does nothing for
    /// outputs that are not regular files (a device, a pipe), which cannot be cut, nor when the
    /// file already has that length (a failed write that wrote nothing leaves it untouched).
    pub fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        if let Some(f) = &self.file {
            let meta = f.metadata()?;
            if !meta.is_file() || meta.len() == len {
                return Ok(());
            }
            f.set_len(len)?;
            // Cutting the file freed the blocks past its new end.
            self.preallocation.forget();
            if let Some(s) = &mut self.state {
                s.len = len;
            }
        }
        Ok(())
    }

    /// Re-reads the file's current identity and length from the path (after a restart or an
    /// error); `None` if it does not exist.
    pub fn probe(&self) -> io::Result<Option<FileState>> {
        let Some(path) = self.path() else {
            return Ok(None);
        };
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(FileState::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.give_back_reservation();
    }
}

/// The files among the entries of `path`'s directory that `is_it` accepts, with their state:
/// where a file that was at `path` went when it was renamed beside it (logrotate's
/// `app.log.1`, `app.log-20261202`). The first one found, `None` if none is there (moved
/// elsewhere, compressed into a new file, removed).
pub fn find_renamed(
    path: &Path,
    is_it: impl Fn(&FileState) -> bool,
) -> Option<(PathBuf, FileState)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let meta = entry.metadata().ok()?;
        let state = FileState::of(&meta);
        (meta.is_file() && is_it(&state)).then(|| (entry.path(), state))
    })
}
