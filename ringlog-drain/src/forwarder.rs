//! Forwarding that does not hold the local log hostage (`--out FILE --forward relp://...`): a
//! thread of the drain reads back the log the drain writes, line by line, and delivers each line
//! over RELP with its own checkpoint ([`crate::forward_checkpoint`]). The drain never waits for
//! it: a receiver that is down for an hour stops neither the file nor the ring nor a producer.
//! When the receiver returns it gets every line it missed, in order, from where it left off.
//!
//! It follows the log through rotation (the drain's `--rotate-size`/`--rotate-keep`, or
//! logrotate's numbered, uncompressed files): it keeps reading the file it holds after it is
//! renamed, then moves to the next newer one. What bounds it: a file deleted by rotation before
//! the forwarder finished it is still read to its end (the descriptor keeps it), but a file
//! rotated away and deleted while the forwarder was still on an older one is lost to it; that
//! takes more than `--rotate-keep` rotations during one outage, and it is reported.
//!
//! It never reads the ring and never writes the log.

use crate::delivery::{Delivery, Progress};
use crate::events::{DrainEvent, Events, ForwardEvent, ForwardFailure};
use crate::forward_checkpoint::{self, ForwardCheckpoint, Position};
use crate::forward_status::StatusBoard;
use crate::syslog::{Destination, MessageFormat};
use ringlog_core::backoff::{Backoff, Schedule};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Most bytes of the log read (and delivered as one batch) at a time.
const READ_CHUNK: usize = 256 * 1024;
/// Polling the log while nothing new is in it: 2 ms, doubling to 50 ms. A line written after a
/// pause leaves within 50 ms; a busy log is read again after 2 ms, once the drain's next batch
/// (written every few ms under load) is probably in.
const IDLE_POLL: Schedule = Schedule {
    spin_for: Duration::ZERO,
    yield_until: Duration::ZERO,
    first_nap: Duration::from_millis(2),
    max_nap: Duration::from_millis(50),
};
/// Retrying a failed delivery: 50 ms, doubling to 1 s. A receiver restarting is caught within
/// a second; one that is down for long costs a connection attempt a second.
const RETRY: Schedule = Schedule {
    spin_for: Duration::ZERO,
    yield_until: Duration::ZERO,
    first_nap: Duration::from_millis(50),
    max_nap: Duration::from_secs(1),
};

/// What to forward where.
#[derive(Clone, Debug)]
pub struct ForwardOptions {
    /// The receiver (`relp://` or `relp+tls://`).
    pub destination: Destination,
    /// The log the drain writes.
    pub log: PathBuf,
    /// Rotated files the drain keeps (`LOG.1` .. `LOG.keep`).
    pub keep: u32,
    /// APP-NAME of the forwarded messages (the ring's name).
    pub app_name: String,
}

/// Why forwarding could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardError {
    /// The destination does not acknowledge, so no checkpoint could know what arrived.
    NotAcknowledged(String),
    /// The checkpoint or the log could not be opened.
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// TLS settings are wrong.
    Tls(crate::tls::TlsSetupError),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::NotAcknowledged(url) => write!(
                f,
                "--forward {url}: forwarding needs relp:// or relp+tls://, whose receiver \
                 acknowledges each message; plain syslog cannot tell what arrived (use --out \
                 syslog+tcp:// or syslog+tls:// for best-effort delivery)"
            ),
            ForwardError::Io { context, .. } => write!(f, "{context}"),
            ForwardError::Tls(_) => write!(f, "cannot set up TLS for forwarding"),
        }
    }
}

impl std::error::Error for ForwardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForwardError::Io { source, .. } => Some(source),
            ForwardError::Tls(e) => Some(e),
            ForwardError::NotAcknowledged(_) => None,
        }
    }
}

/// A running forwarder thread.
#[derive(Debug)]
pub struct Forwarder {
    thread: std::thread::JoinHandle<()>,
    finish: Arc<AtomicBool>,
    /// Disconnected when the thread's work is over (its sender is dropped as it returns or
    /// unwinds), so [`Forwarder::finish`] waits for that without polling.
    done: mpsc::Receiver<()>,
}

impl Forwarder {
    /// Opens the checkpoint (a new one starts at the log's current end), reports what a
    /// previous drain sent without an acknowledgement, and starts the thread, which tells
    /// `events` (the drain's: [`crate::Drain::events`]) what the operator should know.
    pub fn start(
        options: ForwardOptions,
        board: Arc<StatusBoard>,
        events: Events,
    ) -> Result<Forwarder, ForwardError> {
        if !options.destination.transport.is_relp() {
            return Err(ForwardError::NotAcknowledged(options.destination.url()));
        }
        let tls = options
            .destination
            .tls_client()
            .map_err(ForwardError::Tls)?;
        let cp_path = forward_checkpoint::path_for(&options.log, &options.destination.address);
        let (mut checkpoint, found) =
            ForwardCheckpoint::open(&cp_path).map_err(io_err(format!(
                "cannot open the forwarding checkpoint {}",
                cp_path.display()
            )))?;
        let url = options.destination.url();
        let index = board.register(&url);
        let mut delivery = Delivery::new(
            options.destination.address.clone(),
            tls,
            options.destination.window,
            events.clone(),
        );
        let cursor = match found {
            None => {
                let cursor = Cursor::at_end(&options.log, &mut checkpoint, &cp_path)?;
                events.emit(DrainEvent::Forward(ForwardEvent::Started {
                    log: options.log.clone(),
                    url: url.clone(),
                    checkpoint: cp_path,
                }));
                cursor
            }
            Some(found) => {
                let position = found.position;
                let cursor = Cursor::resume(&options, position, &events);
                let unacked = cursor.lines_between(position.acknowledged, position.sent);
                if unacked > 0 {
                    events.emit(DrainEvent::Forward(ForwardEvent::Unacknowledged {
                        url: url.clone(),
                        records: unacked,
                        exact: found.exact,
                    }));
                    delivery.assume_unacknowledged(unacked);
                }
                cursor
            }
        };
        let finish = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            format: MessageFormat::new(&options.app_name),
            options,
            checkpoint,
            delivery,
            board,
            index,
            url,
            cursor,
            finish: finish.clone(),
            events,
        };
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ringlog-forward".into())
            .spawn(move || {
                let _done = done_tx;
                worker.run();
            })
            .map_err(io_err("cannot start the forwarding thread".into()))?;
        Ok(Forwarder {
            thread,
            finish,
            done,
        })
    }

    /// The drain has written everything: deliver what remains if the receiver takes it within
    /// `grace`, then stop (what is left waits for the next drain, in the checkpoint).
    pub fn finish(self, grace: Duration) {
        // Relaxed: a request to stop; it hands over no data (the thread reads only the log file).
        self.finish.store(true, Ordering::Relaxed);
        // Nothing is ever sent: the wait ends when the thread drops its sender, or at `grace`.
        if let Err(mpsc::RecvTimeoutError::Disconnected) = self.done.recv_timeout(grace) {
            let _ = self.thread.join();
        }
        // Else the thread is stuck in a connect or read with a timeout; the process exits
        // under it, and the checkpoint holds what was acknowledged.
    }
}

/// What to say about a failed `context`, with its cause.
fn io_err(context: String) -> impl FnOnce(io::Error) -> ForwardError {
    move |source| ForwardError::Io { context, source }
}

fn open_log(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// The file being forwarded and the position in it.
#[derive(Debug)]
struct Cursor {
    file: File,
    position: Position,
}

impl Cursor {
    /// The end of `log` as it is now, stored in a new checkpoint: forwarding starts there.
    fn at_end(
        log: &Path,
        checkpoint: &mut ForwardCheckpoint,
        checkpoint_path: &Path,
    ) -> Result<Cursor, ForwardError> {
        let (file, meta) = open_log(log).map_err(io_err(format!(
            "cannot open the log {} to forward it",
            log.display()
        )))?;
        let position = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            acknowledged: meta.len(),
            sent: meta.len(),
        };
        checkpoint.store(position).map_err(io_err(format!(
            "cannot write the forwarding checkpoint {}",
            checkpoint_path.display()
        )))?;
        Ok(Cursor { file, position })
    }

    /// Finds the checkpoint's file among the log and its rotated copies; if it is gone, starts
    /// at the oldest file there is, and says records may have been lost.
    fn resume(options: &ForwardOptions, position: Position, events: &Events) -> Cursor {
        let files = rotated_files(&options.log, options.keep);
        if let Some((path, _)) = files
            .iter()
            .find(|(_, m)| m.dev() == position.dev && m.ino() == position.ino)
        {
            if let Ok((file, meta)) = open_log(path) {
                if meta.len() >= position.acknowledged {
                    return Cursor { file, position };
                }
                events.emit(DrainEvent::Forward(ForwardEvent::Truncated {
                    path: path.clone(),
                }));
                return Cursor {
                    file,
                    position: Position {
                        acknowledged: 0,
                        sent: 0,
                        ..position
                    },
                };
            }
        }
        events.emit(DrainEvent::Forward(ForwardEvent::CheckpointFileGone));
        loop {
            let files = rotated_files(&options.log, options.keep);
            if let Some((path, _)) = files.first() {
                if let Ok((file, meta)) = open_log(path) {
                    return Cursor {
                        file,
                        position: Position {
                            dev: meta.dev(),
                            ino: meta.ino(),
                            acknowledged: 0,
                            sent: 0,
                        },
                    };
                }
            }
            std::thread::sleep(IDLE_POLL.max_nap);
        }
    }

    /// Complete lines between two offsets of the current file.
    fn lines_between(&self, from: u64, to: u64) -> u64 {
        let mut n = 0;
        let mut at = from;
        let mut buf = vec![0u8; 64 * 1024];
        while at < to {
            let want = ((to - at) as usize).min(buf.len());
            match self.file.read_at(&mut buf[..want], at) {
                Ok(0) | Err(_) => break,
                Ok(got) => {
                    n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
                    at += got as u64;
                }
            }
        }
        n
    }
}

/// The log and its rotated copies that exist, oldest first: `LOG.keep`, ..., `LOG.1`, `LOG`.
fn rotated_files(log: &Path, keep: u32) -> Vec<(PathBuf, std::fs::Metadata)> {
    let numbered = |n: u32| {
        let mut p = log.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    (1..=keep)
        .rev()
        .map(numbered)
        .chain(std::iter::once(log.to_owned()))
        .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m)))
        .collect()
}

struct Worker {
    options: ForwardOptions,
    format: MessageFormat,
    checkpoint: ForwardCheckpoint,
    delivery: Delivery,
    board: Arc<StatusBoard>,
    index: usize,
    url: String,
    cursor: Cursor,
    finish: Arc<AtomicBool>,
    events: Events,
}

impl Worker {
    fn run(mut self) {
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut idle = Backoff::new(IDLE_POLL);
        let mut retry = Backoff::new(RETRY);
        let mut failing = false;
        loop {
            let at = self.cursor.position.acknowledged;
            let got = match self.cursor.file.read_at(&mut chunk, at) {
                Ok(n) => n,
                Err(e) => {
                    self.report_error(&mut failing, ForwardFailure::ReadLog(e));
                    std::thread::sleep(RETRY.max_nap);
                    continue;
                }
            };
            let whole = chunk[..got]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            if whole == 0 {
                // Relaxed: a stop request only (see `Forwarder::finish`).
                if self.finish.load(Ordering::Relaxed) {
                    break;
                }
                if got == chunk.len() {
                    // A line longer than the chunk: read it whole.
                    chunk.resize(chunk.len() * 2, 0);
                    continue;
                }
                if !self.follow_rotation() {
                    self.publish_lag(false);
                    std::thread::sleep(idle.next_nap());
                }
                continue;
            }
            idle.reset();
            match self.deliver(&chunk[..whole], at) {
                Ok(()) => {
                    retry.reset();
                    if failing {
                        failing = false;
                        let url = self.url.clone();
                        self.forward_event(ForwardEvent::Recovered { url });
                        self.board.update(self.index, true, |s| s.last_error = None);
                    }
                }
                Err(e) => {
                    self.report_error(&mut failing, ForwardFailure::Delivery(e));
                    // Relaxed: a stop request only (see `Forwarder::finish`).
                    if self.finish.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(retry.next_nap());
                }
            }
        }
        self.delivery.close();
        if let Err(e) = self.checkpoint.sync() {
            self.forward_event(ForwardEvent::CheckpointFailed(e));
        }
        self.forward_event(ForwardEvent::Finished(self.delivery.totals()));
        self.publish_lag(true);
    }

    fn forward_event(&self, event: ForwardEvent) {
        self.events.emit(DrainEvent::Forward(event));
    }

    /// Shows `failure` in `stat`, and tells the operator once per failing spell.
    fn report_error(&mut self, failing: &mut bool, failure: ForwardFailure) {
        let text = failure.to_string();
        if !*failing {
            let url = self.url.clone();
            self.forward_event(ForwardEvent::Failing { url, failure });
            *failing = true;
        }
        self.board
            .update(self.index, true, |s| s.last_error = Some(text));
    }

    /// Delivers the whole lines of `bytes`, which start at offset `at` of the current file,
    /// moving the checkpoint as acknowledgements come.
    fn deliver(&mut self, bytes: &[u8], at: u64) -> Result<(), crate::delivery::DeliveryError> {
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let mut ends = Vec::with_capacity(lines.len());
        let mut messages = Vec::with_capacity(bytes.len() + lines.len() * 48);
        let mut bounds = Vec::with_capacity(lines.len());
        let mut end = at;
        for line in &lines {
            end += line.len() as u64;
            ends.push(end);
            let start = messages.len();
            self.format.line(&mut messages, line);
            bounds.push((start, messages.len()));
        }
        let messages: Vec<&[u8]> = bounds.iter().map(|&(a, b)| &messages[a..b]).collect();
        if let Err(e) = self.checkpoint.reserve(end) {
            self.forward_event(ForwardEvent::CheckpointFailed(e));
        }
        let checkpoint = &mut self.checkpoint;
        let board = &self.board;
        let events = &self.events;
        let index = self.index;
        let acknowledged_before = self.delivery.counts().acknowledged;
        let result = self.delivery.deliver(&messages, |progress| {
            let written = match progress {
                Progress::Sending(0) | Progress::Acknowledged(0) => Ok(()),
                // Before the bytes leave: a restarted drain resends and counts exactly these.
                Progress::Sending(n) => checkpoint.sending(ends[n - 1]),
                Progress::Acknowledged(n) => {
                    board.update(index, false, |s| {
                        s.acknowledged = acknowledged_before + n as u64;
                        s.last_ack_ns = ringlog_core::clock::now_ns();
                    });
                    checkpoint.acknowledged(ends[n - 1])
                }
            };
            if let Err(e) = written {
                events.emit(DrainEvent::Forward(ForwardEvent::CheckpointFailed(e)));
            }
        });
        let counts = self.delivery.counts();
        self.cursor.position = self.checkpoint.position();
        let pending = match &result {
            Ok(()) => 0,
            Err(e) => e.unacknowledged as u64,
        };
        self.board.update(self.index, false, |s| {
            s.sent = counts.sent;
            s.acknowledged = counts.acknowledged;
            s.resent = counts.resent;
            s.pending = pending;
        });
        self.publish_lag(false);
        result
    }

    /// At the end of the current file: if the log was rotated (its path now names a new file
    /// the drain has written to), finish the old one and move to the next newer file.
    fn follow_rotation(&mut self) -> bool {
        let Ok(now) = std::fs::metadata(&self.options.log) else {
            return false;
        };
        let p = self.cursor.position;
        if now.dev() == p.dev && now.ino() == p.ino {
            return false;
        }
        // The path names another file. The drain writes to one file at a time and moves to the
        // new one before writing it: once the new file holds something, the old one is final.
        if now.len() == 0 {
            return false;
        }
        match self.cursor.file.metadata() {
            Ok(m) if m.len() > p.acknowledged => return false, // finish the old file first
            Err(_) => return false,
            Ok(_) => {}
        }
        let files = rotated_files(&self.options.log, self.options.keep);
        let next = match files
            .iter()
            .position(|(_, m)| m.dev() == p.dev && m.ino() == p.ino)
        {
            Some(i) => files.get(i + 1),
            None => {
                self.forward_event(ForwardEvent::RotatedAway {
                    url: self.url.clone(),
                    keep: self.options.keep,
                });
                files.first()
            }
        };
        let Some((path, _)) = next else {
            return false;
        };
        let Ok((file, meta)) = open_log(path) else {
            return false;
        };
        let position = Position {
            dev: meta.dev(),
            ino: meta.ino(),
            acknowledged: 0,
            sent: 0,
        };
        if let Err(e) = self.checkpoint.store(position) {
            self.forward_event(ForwardEvent::CheckpointFailed(e));
            return false;
        }
        self.cursor = Cursor { file, position };
        true
    }

    /// Publishes how many bytes of the log are not acknowledged yet.
    fn publish_lag(&self, now: bool) {
        let p = self.cursor.position;
        let files = rotated_files(&self.options.log, self.options.keep);
        let mut lag = 0u64;
        let mut after = false;
        for (_, m) in &files {
            if m.dev() == p.dev && m.ino() == p.ino {
                lag += m.len().saturating_sub(p.acknowledged);
                after = true;
            } else if after {
                lag += m.len();
            }
        }
        self.board.update(self.index, now, |s| s.lag_bytes = lag);
    }
}
