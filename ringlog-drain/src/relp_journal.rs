//! The direct RELP output's journal (`--out relp://`): how far the batch being delivered got:
//! where it starts in the ring, how many of its messages were sent at least once, how many the
//! receiver acknowledged, and a fingerprint of those. It lives in memory and in a small file
//! beside the ring's segment (`SEGMENT.relp-HOST_PORT`, one fixed-size line rewritten in place
//! with one `pwrite`, so a SIGKILLed drain leaves the old or the new line, never half).
//!
//! The drain releases a batch only once every message of it was acknowledged, so a batch that
//! failed, or that a SIGKILLed drain left, is delivered again from its first record. The journal
//! lets the sender skip the messages the receiver already acknowledged and count the ones sent
//! but never acknowledged as resent: the receiver may hold those twice, and only those.
//!
//! It never skips a message on its own say: the batch must start at the journal's ring position
//! and its leading messages must have the acknowledged ones' fingerprint (timestamps aside: the
//! drain may format a record's time a few nanoseconds differently the second time). The file is
//! not fsynced: it sits with the ring in `/dev/shm`, which a power loss empties too.
//!
//! The file goes when a drain stops cleanly after its last batch was delivered whole
//! ([`Journal::remove`]): that batch was released from the ring, so nothing the file says can
//! help a later drain. It stays after a SIGKILL, or when the drain stopped with its batch not
//! delivered (the receiver down): the next drain needs it. A ring abandoned for good after such
//! a stop leaves its 128 bytes behind, beside the segment it describes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Length of the one line the file holds.
const RECORD_LEN: usize = 128;
/// Its first word, which also versions the layout.
const MAGIC: &str = "ringlog-relp-journal-v1";

/// How far one batch got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchProgress {
    /// Ring position of the batch's first record.
    pub start: u64,
    /// Leading messages sent at least once.
    pub sent: u64,
    /// Leading messages acknowledged.
    pub acknowledged: u64,
    /// [`fingerprint`] of the acknowledged messages.
    pub fingerprint: u64,
}

/// What to do with a batch about to be delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Leading messages already acknowledged: not sent again.
    pub skip: usize,
    /// Messages after those that were sent before without an acknowledgement: sent again and
    /// counted as resent.
    pub resend: u64,
}

/// The journal.
#[derive(Debug)]
pub struct Journal {
    /// The file and its path (`None`: kept in memory only).
    file: Option<(File, PathBuf)>,
    progress: Option<BatchProgress>,
}

/// The journal file of the RELP output to `address` of the ring whose segment is `segment`.
pub fn path_for(segment: &Path, address: &str) -> PathBuf {
    crate::forward_checkpoint::beside(segment, "relp", address)
}

/// Folds one message into a fingerprint, without its RFC 5424 TIMESTAMP (the second field).
/// FNV-1a: stable across builds, which a journal read by the next drain needs.
pub fn fingerprint(mut hash: u64, message: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut fold = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    let mut fields = message.splitn(3, |&b| b == b' ');
    fold(fields.next().unwrap_or_default());
    let _timestamp = fields.next();
    fold(b"\0");
    fold(fields.next().unwrap_or_default());
    fold(&(message.len() as u64).to_le_bytes());
    hash
}

/// The fingerprint of no message.
pub const EMPTY: u64 = 0xcbf2_9ce4_8422_2325;

impl Journal {
    /// A journal kept in memory only.
    pub fn in_memory() -> Journal {
        Journal {
            file: None,
            progress: None,
        }
    }

    /// Opens (or creates) the journal at `path` and reads what a previous drain left there.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut line = [0u8; RECORD_LEN];
        let n = file.read_at(&mut line, 0)?;
        // A line that does not parse (another version, a foreign file) only costs the skip.
        let progress = parse(&line[..n]);
        Ok(Journal {
            file: Some((file, path.to_owned())),
            progress,
        })
    }

    /// Deletes the file: call it only once the batch the journal describes was delivered whole
    /// and released from the ring (a later drain has nothing to skip or count in it).
    pub fn remove(self) -> io::Result<()> {
        match self.file {
            Some((_, path)) => std::fs::remove_file(path),
            None => Ok(()),
        }
    }

    /// What to do with the batch at ring position `start` whose messages are `messages`.
    pub fn resume(&self, start: u64, messages: &[&[u8]]) -> Resume {
        let Some(p) = self.progress.filter(|p| p.start == start) else {
            return Resume::default();
        };
        let acked = p.acknowledged as usize;
        let same = acked <= messages.len()
            && messages[..acked]
                .iter()
                .fold(EMPTY, |h, m| fingerprint(h, m))
                == p.fingerprint;
        if same {
            Resume {
                skip: acked,
                resend: p.sent.saturating_sub(p.acknowledged),
            }
        } else {
            // Not the messages that were acknowledged: send everything again, and count as
            // resent everything that was sent.
            Resume {
                skip: 0,
                resend: p.sent,
            }
        }
    }

    /// Starts (or goes on with) the batch at `start`, of which the first `resume.skip` messages
    /// are acknowledged (`fingerprint` theirs).
    pub fn begin(&mut self, start: u64, resume: Resume, fingerprint: u64) -> io::Result<()> {
        let sent_before = self
            .progress
            .filter(|p| p.start == start)
            .map_or(0, |p| p.sent);
        self.store(BatchProgress {
            start,
            sent: sent_before.max(resume.skip as u64),
            acknowledged: resume.skip as u64,
            fingerprint,
        })
    }

    /// The first `n` messages of the current batch are about to be sent.
    pub fn sending(&mut self, n: u64) -> io::Result<()> {
        match self.progress {
            Some(p) if n > p.sent => self.store(BatchProgress { sent: n, ..p }),
            _ => Ok(()),
        }
    }

    /// The first `n` messages of the current batch are acknowledged; `fingerprint` is theirs.
    pub fn acknowledged(&mut self, n: u64, fingerprint: u64) -> io::Result<()> {
        match self.progress {
            Some(p) => self.store(BatchProgress {
                acknowledged: n,
                sent: p.sent.max(n),
                fingerprint,
                ..p
            }),
            None => Ok(()),
        }
    }

    fn store(&mut self, progress: BatchProgress) -> io::Result<()> {
        self.progress = Some(progress);
        let Some((file, _)) = &self.file else {
            return Ok(());
        };
        let mut line = format!(
            "{MAGIC} {} {} {} {:016x}",
            progress.start, progress.sent, progress.acknowledged, progress.fingerprint
        );
        // Pad to the fixed length so a shorter line never leaves the tail of a longer one.
        line.push_str(&" ".repeat(RECORD_LEN - 1 - line.len()));
        line.push('\n');
        file.write_all_at(line.as_bytes(), 0)
    }
}

fn parse(line: &[u8]) -> Option<BatchProgress> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_ascii_whitespace();
    if words.next()? != MAGIC {
        return None;
    }
    let mut n = || words.next()?.parse::<u64>().ok();
    let (start, sent, acknowledged) = (n()?, n()?, n()?);
    let fingerprint = u64::from_str_radix(words.next()?, 16).ok()?;
    (sent >= acknowledged).then_some(BatchProgress {
        start,
        sent,
        acknowledged,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prints(messages: &[&[u8]]) -> u64 {
        messages.iter().fold(EMPTY, |h, m| fingerprint(h, m))
    }

    const A: &[u8] = b"<14>1 2026-01-02T03:04:05.000000006Z h app 42 - - first";
    const A_LATER: &[u8] = b"<14>1 2026-01-02T03:04:05.000000009Z h app 42 - - first";
    const B: &[u8] = b"<14>1 2026-01-02T03:04:05.000000007Z h app 42 - - second";
    const C: &[u8] = b"<14>1 2026-01-02T03:04:05.000000008Z h app 42 - - third";

    #[test]
    fn fingerprints_ignore_the_timestamp_only() {
        assert_eq!(fingerprint(EMPTY, A), fingerprint(EMPTY, A_LATER));
        assert_ne!(fingerprint(EMPTY, A), fingerprint(EMPTY, B));
        assert_ne!(prints(&[A, B]), prints(&[B, A]));
    }

    #[test]
    fn a_restarted_drain_skips_what_was_acknowledged_and_counts_what_was_only_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.resume(4096, &[A, B, C]), Resume::default());
        j.begin(4096, Resume::default(), EMPTY).unwrap();
        j.sending(3).unwrap();
        j.acknowledged(1, prints(&[A])).unwrap();
        drop(j); // SIGKILL: only the file remains
        let j = Journal::open(&path).unwrap();
        // The same batch, formatted again (another timestamp), grown by records since.
        let again: [&[u8]; 4] = [A_LATER, B, C, b"<14>1 - h app 42 - - fourth"];
        assert_eq!(j.resume(4096, &again), Resume { skip: 1, resend: 2 });
        // Another batch position: nothing to skip, nothing resent.
        assert_eq!(j.resume(8192, &again), Resume::default());
        // The same position with other messages (a ring made anew): everything again, counted.
        assert_eq!(j.resume(4096, &[B, C]), Resume { skip: 0, resend: 3 });
    }

    #[test]
    fn going_on_with_a_batch_keeps_what_was_sent_before() {
        let mut j = Journal::in_memory();
        j.begin(0, Resume::default(), EMPTY).unwrap();
        j.sending(3).unwrap();
        j.acknowledged(2, prints(&[A, B])).unwrap();
        let r = j.resume(0, &[A, B, C]);
        assert_eq!(r, Resume { skip: 2, resend: 1 });
        j.begin(0, r, prints(&[A, B])).unwrap();
        assert_eq!(j.resume(0, &[A, B, C]), Resume { skip: 2, resend: 1 });
        j.sending(3).unwrap();
        j.acknowledged(3, prints(&[A, B, C])).unwrap();
        // Delivered whole (and released by the drain): a retry of it would send nothing.
        assert_eq!(j.resume(0, &[A, B, C]), Resume { skip: 3, resend: 0 });
    }

    #[test]
    fn removing_deletes_the_file_and_an_in_memory_journal_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let mut j = Journal::open(&path).unwrap();
        j.begin(0, Resume::default(), EMPTY).unwrap();
        assert!(path.exists());
        j.remove().unwrap();
        assert!(!path.exists());
        Journal::in_memory().remove().unwrap();
    }

    #[test]
    fn a_foreign_or_torn_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, "hello\n").unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.resume(0, &[A]), Resume::default());
    }
}
