//! Formatting a record straight into ring space, for the `log` and `tracing` integrations.
//!
//! Owns three per-thread things: the size hint (how much to claim before the message's length
//! is known), the fallback buffer (for messages that outgrow the hint), and the re-entrancy
//! guard. It must never let user code (a `Display` impl being formatted) write a record on
//! this thread while this thread holds an open claim: under [`crate::FullPolicy::Block`] on a
//! full ring that record would wait for space the drain can only free after passing the open
//! claim. Such records are queued and written right after the open claim is committed.
//!
//! The steady path allocates nothing: the claim is the destination; the fallback buffer and the
//! queue keep their capacity between records.

use crate::{Level, WriteError, Writer};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write as _;

/// Smallest speculative claim for a message (bytes).
const MIN_HINT: usize = 128;
/// Largest speculative claim: longer messages go through the fallback buffer.
const MAX_HINT: usize = 64 << 10;
/// Fallback buffers larger than this are freed after use instead of kept.
const KEEP_BUFFER: usize = 1 << 20;

/// A record queued because it was logged while this thread held an open claim.
struct Queued {
    writer: Writer,
    level: Level,
    target: String,
    message: Vec<u8>,
}

thread_local! {
    /// Bytes to claim for the next formatted message: follows recent message sizes.
    static HINT: Cell<usize> = const { Cell::new(256) };
    /// True while this thread formats into an open claim.
    static IN_CLAIM: Cell<bool> = const { Cell::new(false) };
    /// Reusable buffer (taken out while in use, so nested users simply get a fresh one).
    static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Records logged while this thread held an open claim, written after it.
    static QUEUED: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
}

/// Takes this thread's reusable buffer (empty, with its capacity), or a new one.
pub(crate) fn take_buffer() -> Vec<u8> {
    let mut buf = BUFFER.try_with(Cell::take).unwrap_or_default();
    buf.clear();
    buf
}

/// Gives a buffer from [`take_buffer`] back for the next record.
pub(crate) fn give_back(buf: Vec<u8>) {
    if buf.capacity() <= KEEP_BUFFER {
        let _ = BUFFER.try_with(|b| {
            // Keep the larger of the two if a nested user put one back meanwhile.
            let other = b.take();
            b.set(if other.capacity() > buf.capacity() {
                other
            } else {
                buf
            });
        });
    }
}

/// `fmt::Write` into a `Vec<u8>`.
pub(crate) struct VecWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `fmt::Write` into an open claim; fails (and says so) when the claim is too small.
struct ClaimWriter<'c, 'w> {
    claim: &'c mut crate::RecordClaim<'w>,
    overflow: bool,
}

impl fmt::Write for ClaimWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() > self.claim.remaining() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        // Cannot fail: the claim has room for all of `s`.
        self.claim.write_all(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Marks this thread as holding an open claim; on drop, clears the mark and writes the
/// records queued meanwhile (also when formatting panicked), unless told to discard them.
struct InClaim {
    /// Set when the message will be formatted again (it outgrew the claim): the records queued
    /// during this attempt will be logged again by the next one.
    discard: bool,
}

impl InClaim {
    fn enter() -> InClaim {
        IN_CLAIM.set(true);
        InClaim { discard: false }
    }
}

impl Drop for InClaim {
    fn drop(&mut self) {
        IN_CLAIM.set(false);
        let queued = QUEUED
            .try_with(|q| std::mem::take(&mut *q.borrow_mut()))
            .unwrap_or_default();
        if self.discard {
            return;
        }
        for mut q in queued {
            fit_to_ring(&q.writer, &q.target, &mut q.message);
            // Errors here have nowhere to go: a drop is counted by the ring.
            let _ = q.writer.write_record(q.level, &q.target, &q.message);
        }
    }
}

/// Writes one record whose message `fill` formats, straight into ring space when it fits the
/// thread's size hint, else through the thread's reusable buffer. `fill` may run twice (once
/// into the claim, once into the buffer) and must produce the same text both times.
///
/// A `fill` error that is not "claim too small" (a `Display` impl returned `Err`) keeps what
/// was formatted until then, as a stream writer would.
pub(crate) fn write_formatted(
    writer: &Writer,
    level: Level,
    target: &str,
    fill: impl Fn(&mut dyn fmt::Write) -> fmt::Result,
) -> Result<(), WriteError> {
    if IN_CLAIM.get() {
        return queue(writer, level, target, fill);
    }
    let max = writer.max_record() as usize;
    let hint = HINT.get().min(max.saturating_sub(target.len()));
    {
        let mut guard = InClaim::enter();
        let mut claim = writer.claim_record(level, target, hint)?;
        let room = claim.remaining();
        let mut out = ClaimWriter {
            claim: &mut claim,
            overflow: false,
        };
        let _ = fill(&mut out);
        if !out.overflow {
            let used = room - claim.remaining();
            claim.commit();
            drop(guard);
            // Drift down towards what messages need, slowly so one short message does not
            // shrink the claim below the usual size.
            let fit = (used + used / 8 + 32).max(MIN_HINT);
            if fit < hint {
                HINT.set(hint - (hint - fit) / 4);
            }
            return Ok(());
        }
        // Too small: the claim is aborted (dropped) here and becomes padding.
        guard.discard = true;
    }
    let mut buf = take_buffer();
    let _ = fill(&mut VecWriter(&mut buf));
    HINT.set((buf.len() + buf.len() / 4 + 32).clamp(MIN_HINT, MAX_HINT));
    fit_to_ring(writer, target, &mut buf);
    let result = writer.write_record(level, target, &buf);
    give_back(buf);
    result
}

/// Writes `message` as one record; if it is larger than the ring allows, writes it cut and
/// marked (see [`fit_to_ring`]) instead of failing. For facades that cannot report errors.
pub(crate) fn write_fitted(
    writer: &Writer,
    level: Level,
    target: &str,
    message: &[u8],
) -> Result<(), WriteError> {
    match writer.write_record(level, target, message) {
        Err(WriteError::TooLarge { .. }) => {
            let mut cut = message.to_vec();
            fit_to_ring(writer, target, &mut cut);
            writer.write_record(level, target, &cut)
        }
        other => other,
    }
}

/// A logging facade cannot hand an error back, so a message larger than the ring's max record
/// is cut (at a character boundary) and marked, rather than lost:
/// `... [ringlog: truncated, 1048576 bytes in all]`.
fn fit_to_ring(writer: &Writer, target: &str, message: &mut Vec<u8>) {
    let max = (writer.max_record() as usize).saturating_sub(target.len().min(u16::MAX as usize));
    if message.len() <= max {
        return;
    }
    let note = format!(" [ringlog: truncated, {} bytes in all]", message.len());
    let mut keep = max.saturating_sub(note.len());
    // Back up to the start of a UTF-8 character.
    while keep > 0 && message.get(keep).is_some_and(|b| b & 0xc0 == 0x80) {
        keep -= 1;
    }
    message.truncate(keep);
    message.extend_from_slice(&note.as_bytes()[..note.len().min(max - keep)]);
}

/// Formats a record logged while this thread holds an open claim and queues it (rare: a
/// `Display` impl that logs). Allocates.
#[cold]
fn queue(
    writer: &Writer,
    level: Level,
    target: &str,
    fill: impl Fn(&mut dyn fmt::Write) -> fmt::Result,
) -> Result<(), WriteError> {
    let mut message = Vec::new();
    let _ = fill(&mut VecWriter(&mut message));
    let queued = Queued {
        writer: writer.clone(),
        level,
        target: target.to_owned(),
        message,
    };
    match QUEUED.try_with(|q| q.borrow_mut().push(queued)) {
        Ok(()) => Ok(()),
        // Thread teardown: nobody will flush the queue; drop it as a full ring would.
        Err(_) => Err(WriteError::Dropped),
    }
}

/// Test support: a ring in a temp dir and a reader of its records, no drain process needed.
#[cfg(test)]
pub(crate) mod testing {
    use crate::{Level, Writer};
    use ringlog_core::{Frame, Location, Segment, SegmentOptions};

    /// One record read back from the ring.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Read {
        pub level: Level,
        pub target: String,
        pub message: String,
        pub tid: u32,
    }

    /// A writer on a fresh 1 MiB ring in a temp dir (kept alive by the returned guard).
    pub fn ring() -> (tempfile::TempDir, std::path::PathBuf, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let writer = Writer::builder("unit")
            .path(&path)
            .capacity(1 << 20)
            .open()
            .unwrap();
        (dir, path, writer)
    }

    /// Consumes and returns every committed record (skipping padding).
    pub fn read_all(path: &std::path::Path) -> Vec<Read> {
        let options = SegmentOptions {
            create: false,
            ..SegmentOptions::default()
        };
        let segment = Segment::open(&Location::Path(path.to_owned()), &options).unwrap();
        let mut consumer = ringlog_core::Consumer::new(segment).unwrap();
        let mut out = Vec::new();
        loop {
            match consumer.peek() {
                Frame::Record(record) => {
                    let meta = *record.meta();
                    let mut payload = vec![0; meta.payload_len as usize];
                    consumer.read_payload(&record, 0, &mut payload);
                    let (target, message) = payload.split_at(meta.target_len as usize);
                    out.push(Read {
                        level: meta.level,
                        target: String::from_utf8(target.to_vec()).unwrap(),
                        message: String::from_utf8(message.to_vec()).unwrap(),
                        tid: meta.tid,
                    });
                    consumer.pass(&record);
                    consumer.release();
                }
                Frame::Padding(skip) => {
                    consumer.skip(skip);
                    consumer.release();
                }
                // The writing thread's chunk, idle now: sealed, as a drain does.
                Frame::OpenChunk(cursor) => {
                    consumer.seal(cursor);
                }
                Frame::Empty => return out,
                other => panic!("unexpected frame: {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{read_all, ring};
    use super::*;

    #[test]
    fn short_and_long_messages_each_become_one_whole_record() {
        let (_dir, path, writer) = ring();
        let long = "x".repeat(10_000);
        for i in 0..50 {
            let text = if i % 7 == 3 { long.as_str() } else { "short" };
            write_formatted(&writer, Level::Info, "t", |w| write!(w, "{i} {text}")).unwrap();
        }
        let got = read_all(&path);
        assert_eq!(got.len(), 50);
        for (i, r) in got.iter().enumerate() {
            let text = if i % 7 == 3 { long.as_str() } else { "short" };
            assert_eq!(r.message, format!("{i} {text}"));
            assert_eq!((r.level, r.target.as_str()), (Level::Info, "t"));
        }
    }

    #[test]
    fn a_record_logged_while_formatting_is_written_after_the_outer_one() {
        let (_dir, path, writer) = ring();
        struct Logs<'a>(&'a Writer);
        impl fmt::Display for Logs<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_formatted(self.0, Level::Warn, "inner", |w| w.write_str("nested")).unwrap();
                f.write_str("outer")
            }
        }
        write_formatted(&writer, Level::Info, "outer", |w| {
            write!(w, "{}", Logs(&writer))
        })
        .unwrap();
        assert!(!IN_CLAIM.get());
        let got: Vec<_> = read_all(&path)
            .into_iter()
            .map(|r| (r.target, r.message))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(got, [pair("outer", "outer"), pair("inner", "nested")]);
    }

    #[test]
    fn a_record_logged_while_formatting_an_oversized_message_is_written_once() {
        let (_dir, path, writer) = ring();
        struct Logs<'a>(&'a Writer);
        impl fmt::Display for Logs<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_formatted(self.0, Level::Warn, "inner", |w| w.write_str("nested")).unwrap();
                f.write_str(&"y".repeat(MAX_HINT + 1))
            }
        }
        write_formatted(&writer, Level::Info, "outer", |w| {
            write!(w, "{}", Logs(&writer))
        })
        .unwrap();
        let got: Vec<_> = read_all(&path)
            .into_iter()
            .map(|r| (r.target, r.message.len()))
            .collect();
        assert_eq!(
            got,
            [("inner".to_owned(), 6), ("outer".to_owned(), MAX_HINT + 1)]
        );
    }

    #[test]
    fn a_message_larger_than_the_ring_allows_is_cut_and_marked_not_lost() {
        let (_dir, path, writer) = ring();
        let max = writer.max_record() as usize;
        let huge = "é".repeat(max); // 2 bytes a character: twice the limit
        write_formatted(&writer, Level::Warn, "big", |w| w.write_str(&huge)).unwrap();
        write_formatted(&writer, Level::Info, "big", |w| w.write_str("after")).unwrap();
        let got = read_all(&path);
        assert_eq!(got.len(), 2);
        let note = format!(" [ringlog: truncated, {} bytes in all]", huge.len());
        assert!(
            got[0].message.ends_with(&note),
            "{}",
            &got[0].message[got[0].message.len() - 80..]
        );
        assert!(got[0].message.starts_with("éé"));
        assert!(got[0].message.len() + "big".len() <= max);
        assert_eq!(got[1].message, "after");
    }

    #[test]
    fn write_fitted_writes_small_messages_as_they_are_and_cuts_large_ones() {
        let (_dir, path, writer) = ring();
        let max = writer.max_record() as usize;
        write_fitted(&writer, Level::Info, "t", b"as it is").unwrap();
        write_fitted(&writer, Level::Info, "t", &vec![b'z'; max * 3]).unwrap();
        let got = read_all(&path);
        assert_eq!(got[0].message, "as it is");
        let note = format!(" [ringlog: truncated, {} bytes in all]", max * 3);
        assert!(got[1].message.ends_with(&note));
        assert_eq!(
            got[1].message.len() + 1,
            max,
            "cut to exactly the room left by the target"
        );
    }

    #[test]
    fn a_failing_display_keeps_what_was_formatted() {
        let (_dir, path, writer) = ring();
        write_formatted(&writer, Level::Error, "", |w| {
            w.write_str("before")?;
            Err(fmt::Error)
        })
        .unwrap();
        assert_eq!(read_all(&path)[0].message, "before");
    }
}
