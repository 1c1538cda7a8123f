//! One batch of output, written with one `writev`: the bytes the drain formatted into its own
//! buffer, interleaved with large raw payloads referenced where they lie in the ring
//! (zero-copy: the kernel copies them straight from the shared mapping into the page cache).
//!
//! Ring pieces are [`InPlace`] tokens of the ring's [`ringlog_core::Consumer`], turned into
//! pointers (never slices: other processes share that memory) only while the batch is written,
//! by the [`Releaser`] of the [`ReadRange`] the consumer handed off with them, which checks they
//! lie in it; the range cannot be released while it is lent here.

use ringlog_core::{InPlace, ReadRange, Releaser, RingRef};
use std::io;
use std::os::fd::RawFd;

/// Raw payloads at least this long are written from the ring in place; shorter ones are cheaper
/// to copy than to describe with an iovec.
pub const ZERO_COPY_MIN: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum Piece {
    /// `buf[start..end]`.
    Buf { start: usize, end: usize },
    /// Payload bytes that stay where they are in the ring.
    Ring(InPlace),
}

/// A position in a batch to roll back to (see [`Batch::truncate`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    buf: usize,
    pieces: usize,
    ring_bytes: usize,
    sealed: usize,
}

/// Formatted bytes plus in-place ring payloads, in output order.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    pieces: Vec<Piece>,
    /// `buf[..sealed]` is described by `pieces`; `buf[sealed..]` is the open tail.
    sealed: usize,
    ring_bytes: usize,
    iov: Vec<libc::iovec>,
}

// SAFETY: the only raw pointers in a batch are in `iov`, scratch space rebuilt from the pieces
// on every `write_to` and pointing into memory valid in every thread (the batch's own buffer,
// the ring's mapping); nothing in a batch is tied to the thread that built it.
unsafe impl Send for Batch {}

impl Batch {
    /// An empty batch with room for `capacity` formatted bytes.
    pub fn with_capacity(capacity: usize) -> Batch {
        Batch {
            buf: Vec::with_capacity(capacity),
            ..Batch::default()
        }
    }

    /// Empties the batch (keeping its allocations).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pieces.clear();
        self.sealed = 0;
        self.ring_bytes = 0;
    }

    /// The formatted-bytes buffer, to append to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.buf.len() + self.ring_bytes
    }

    /// Bytes copied into the batch's own buffer (the rest stays in the ring until written).
    pub fn copied(&self) -> usize {
        self.buf.len()
    }

    /// How long the buffer may grow before the batch holds `limit` bytes.
    pub fn buf_limit(&self, limit: usize) -> usize {
        limit.saturating_sub(self.ring_bytes)
    }

    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when every byte is in the buffer (no ring pieces).
    pub fn is_contiguous(&self) -> bool {
        self.ring_bytes == 0
    }

    /// The bytes, when [`Batch::is_contiguous`].
    pub fn contiguous(&self) -> Option<&[u8]> {
        self.is_contiguous().then_some(&self.buf[..])
    }

    /// Adds payload bytes that stay in the ring until the batch is written.
    pub fn push_ring(&mut self, piece: InPlace) {
        self.seal();
        self.ring_bytes += piece.len();
        self.pieces.push(Piece::Ring(piece));
    }

    fn seal(&mut self) {
        if self.buf.len() > self.sealed {
            self.pieces.push(Piece::Buf {
                start: self.sealed,
                end: self.buf.len(),
            });
            self.sealed = self.buf.len();
        }
    }

    /// Where the batch is now.
    pub fn mark(&self) -> Mark {
        Mark {
            buf: self.buf.len(),
            pieces: self.pieces.len(),
            ring_bytes: self.ring_bytes,
            sealed: self.sealed,
        }
    }

    /// Drops everything added after `mark`.
    pub fn truncate(&mut self, mark: Mark) {
        self.buf.truncate(mark.buf);
        self.pieces.truncate(mark.pieces);
        self.ring_bytes = mark.ring_bytes;
        self.sealed = mark.sealed;
    }

    /// Writes the whole batch to `fd` with `writev` (1024 iovecs per call), resuming after
    /// partial writes. Its ring pieces lie in `range`, handed off to `releaser`.
    ///
    /// # Panics
    /// If a ring piece lies outside `range` or was made by another consumer.
    pub fn write_to<R: RingRef>(
        &mut self,
        fd: RawFd,
        range: &ReadRange,
        releaser: &Releaser<R>,
    ) -> io::Result<()> {
        self.seal();
        self.iov.clear();
        for piece in &self.pieces {
            let (base, len) = match piece {
                Piece::Buf { start, end } => (self.buf[*start..*end].as_ptr(), end - start),
                Piece::Ring(p) => (releaser.in_place_ptr(range, p), p.len()),
            };
            if len > 0 {
                self.iov.push(libc::iovec {
                    iov_base: base as *mut libc::c_void,
                    iov_len: len,
                });
            }
        }
        let mut i = 0;
        while i < self.iov.len() {
            let n = (self.iov.len() - i).min(1024);
            // SAFETY: every iovec points at live memory: the batch buffer (not touched until this
            // returns) or committed ring records in `range`, which `releaser` checked and which
            // stay unreleased while `range` is borrowed here. The iovecs are only `Send`-free plain
            // data rebuilt on every call.
            let written = unsafe { libc::writev(fd, self.iov[i..].as_ptr(), n as libc::c_int) };
            if written < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let mut left = written as usize;
            while left > 0 {
                let v = &mut self.iov[i];
                if v.iov_len <= left {
                    left -= v.iov_len;
                    i += 1;
                } else {
                    // SAFETY: `left < iov_len`, so the advanced pointer stays inside the piece.
                    v.iov_base = unsafe { v.iov_base.cast::<u8>().add(left) }.cast();
                    v.iov_len -= left;
                    left = 0;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn buffer_and_ring_pieces_come_out_in_order_and_roll_back() {
        use ringlog_core::memory::HeapMemory;
        use ringlog_core::{Frame, Geometry, RecordMeta, Ring};
        let geometry = Geometry::with_capacity(1 << 16);
        let ring = Ring::create(
            HeapMemory::new(geometry.segment_len() as usize),
            geometry,
            0,
            0o600,
        )
        .unwrap();
        let outside = vec![b'R'; 10_000];
        let claim = ring
            .claim(0, outside.len(), &std::sync::atomic::AtomicU64::new(0))
            .unwrap();
        ring.write_payload(&claim, 0, &outside);
        let meta = RecordMeta {
            payload_len: outside.len() as u32,
            ..Default::default()
        };
        let _ = ring.commit(claim, &meta);
        let mut consumer = ringlog_core::Consumer::new(&ring).unwrap();
        let Frame::Record(record) = consumer.peek() else {
            panic!("a record")
        };
        let whole = consumer.in_place(&record, 0, outside.len()).unwrap();
        let five = consumer.in_place(&record, 0, 5).unwrap();
        let mut b = Batch::with_capacity(16);
        b.buf().extend_from_slice(b"head\n");
        b.push_ring(whole);
        b.buf().push(b'\n');
        let mark = b.mark();
        b.buf().extend_from_slice(b"rolled back");
        b.push_ring(five);
        b.truncate(mark);
        b.buf().extend_from_slice(b"tail\n");
        assert_eq!(b.len(), 5 + 10_000 + 1 + 5);
        assert!(!b.is_contiguous());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let file = std::fs::File::create(&path).unwrap();
        let releaser = consumer.releaser();
        consumer.pass(&record);
        let range = consumer.hand_off();
        b.write_to(std::os::fd::AsRawFd::as_raw_fd(&file), &range, &releaser)
            .unwrap();
        assert!(!releaser.release(range));
        let mut got = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        let mut want = b"head\n".to_vec();
        want.extend_from_slice(&outside);
        want.extend_from_slice(b"\ntail\n");
        assert_eq!(got, want);
    }

    #[test]
    #[should_panic(expected = "outside the range handed off")]
    fn a_ring_piece_outside_the_range_is_refused() {
        use ringlog_core::memory::HeapMemory;
        use ringlog_core::{Frame, Geometry, RecordMeta, Ring};
        let geometry = Geometry::with_capacity(1 << 16);
        let ring = Ring::create(
            HeapMemory::new(geometry.segment_len() as usize),
            geometry,
            0,
            0o600,
        )
        .unwrap();
        let claim = ring
            .claim(0, 8192, &std::sync::atomic::AtomicU64::new(0))
            .unwrap();
        let meta = RecordMeta {
            payload_len: 8192,
            ..Default::default()
        };
        let _ = ring.commit(claim, &meta);
        let mut consumer = ringlog_core::Consumer::new(&ring).unwrap();
        let Frame::Record(record) = consumer.peek() else {
            panic!("a record")
        };
        let mut b = Batch::with_capacity(16);
        b.push_ring(consumer.in_place(&record, 0, 8192).unwrap());
        let releaser = consumer.releaser();
        let before = consumer.hand_off();
        consumer.pass(&record);
        let _ = b.write_to(1, &before, &releaser);
    }
}
