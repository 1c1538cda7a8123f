//! The ring's one consumer, as a type. A [`Consumer`] owns the positions the consumer side of
//! the protocol moves (what is released, what is read) and hands out frames as tokens: only a
//! [`RecordFrame`] this consumer returned reads payload bytes, only the frame at its read
//! position moves it on, and `release` gives back exactly what was read. No safe function here
//! takes a position or a pointer: positions stay inside, so safe code cannot make the drain
//! read bytes a producer is still writing, or release space it does not own.
//!
//! One `Consumer` per [`Ring`] value: a second is refused while the first, or a [`Releaser`] of
//! it, lives. Across processes (and across two mappings of one segment), the drain lock the
//! drain takes before it builds its consumer keeps a second consumer out.
//!
//! Reading and releasing may happen on two threads: [`Consumer::hand_off`] turns what was read
//! into a [`ReadRange`], which a [`Releaser`] (on any thread) writes out through its in-place
//! pieces and then releases, ranges strictly in the order they were handed off, while the
//! consumer reads on past them.

use crate::abandon::{ClaimVerdict, Liveness};
use crate::chunk::ChunkFrame;
use crate::memory::Memory;
use crate::ring::{Corruption, MessageLimits, Next, RecordMeta, Ring};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Something that holds a ring: a reference, or an owner such as a `Segment`.
pub trait RingRef {
    /// Where the ring's bytes live.
    type Memory: Memory;
    /// The ring.
    fn ring(&self) -> &Ring<Self::Memory>;
}

/// The ring, held by a consumer and its releasers; the last of them to go lets another
/// consumer in.
#[derive(Debug)]
struct Held<R: RingRef>(R);

impl<R: RingRef> Drop for Held<R> {
    fn drop(&mut self) {
        // Release: see `Consumer::new`.
        self.0.ring().consumer_taken.store(false, Ordering::Release);
    }
}

impl<M: Memory> RingRef for &Ring<M> {
    type Memory = M;
    fn ring(&self) -> &Ring<M> {
        self
    }
}

impl<M: Memory> RingRef for std::sync::Arc<Ring<M>> {
    type Memory = M;
    fn ring(&self) -> &Ring<M> {
        self
    }
}

#[cfg(not(loom))]
impl RingRef for crate::segment::Segment {
    type Memory = crate::memory::MappedMemory;
    fn ring(&self) -> &Ring<Self::Memory> {
        crate::segment::Segment::ring(self)
    }
}

/// Tells consumers apart, so a token from one is refused by another.
static NEXT_CONSUMER: AtomicU64 = AtomicU64::new(1);

/// A committed data record the consumer has seen and not released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordFrame {
    consumer: u64,
    pos: u64,
    span: u64,
    meta: RecordMeta,
}

impl RecordFrame {
    /// Its header fields.
    pub fn meta(&self) -> &RecordMeta {
        &self.meta
    }
    /// Its position (for reports; it reads nothing).
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Bytes from it to the next frame.
    pub fn span(&self) -> u64 {
        self.span
    }
}

/// A frame the consumer may step over without reading it: a padding frame, a claim whose owner
/// died, or corrupt bytes up to the next certain boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    consumer: u64,
    pos: u64,
    end: u64,
}

impl Skip {
    /// Where it starts.
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Bytes it spans.
    pub fn len(&self) -> u64 {
        self.end - self.pos
    }
    /// True for an empty skip (never made).
    pub fn is_empty(&self) -> bool {
        self.end == self.pos
    }
}

/// What the consumer finds at its read position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Nothing claimed.
    Empty,
    /// A committed record.
    Record(RecordFrame),
    /// A committed padding frame.
    Padding(Skip),
    /// Claimed, not committed yet (see [`Next::Pending`]).
    Pending {
        /// The claimer's slot, if its frame header is written.
        slot: Option<u16>,
        /// Frame length, if its frame header is written.
        len: Option<u32>,
    },
    /// The first free byte of a producer's open chunk ([`crate::chunk`]): its owner may still
    /// claim here, or the consumer may seal the chunk ([`Consumer::seal`]) and read on.
    OpenChunk(OpenCursor),
    /// The frame breaks the framing rules.
    Corrupt(Corruption),
}

/// The open cursor of a chunk at the consumer's read position (see [`Frame::OpenChunk`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenCursor {
    consumer: u64,
    pos: u64,
    chunk: u64,
    end: u64,
    slot: u16,
    word: u64,
}

impl OpenCursor {
    /// The chunk's owner.
    pub fn owner(&self) -> u16 {
        self.slot
    }
    /// Where the cursor is (for reports; it reads nothing).
    pub fn pos(&self) -> u64 {
        self.pos
    }
    /// Where the chunk ends.
    pub fn end(&self) -> u64 {
        self.end
    }
}

/// The verdict on the claim at the read position that is not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingVerdict {
    /// Every possible owner is dead: step over it.
    Abandoned {
        /// The claim, to pass to [`Consumer::skip`].
        skip: Skip,
        /// The owner's slot, if known.
        owner: Option<u16>,
        /// The owner's pid (0 if unknown).
        pid: u32,
    },
    /// The owner in this slot is alive: wait.
    Alive(u16),
    /// Space no record was claimed in, whose owner died before marking it: step over it; nothing
    /// was lost.
    Unused(Skip),
    /// The claim changed while it was looked at: look again.
    Changed,
}

/// A stretch of a record's payload to hand to the kernel where it lies in the ring (see
/// [`Consumer::in_place`]); once its record's range is handed off, [`Releaser::in_place_ptr`]
/// turns it into a pointer while the range is unreleased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InPlace {
    consumer: u64,
    pos: u64,
    offset: usize,
    len: usize,
}

impl InPlace {
    /// Bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a consumer read and handed off ([`Consumer::hand_off`]): released by a [`Releaser`]
/// once written, in the order handed off, or taken back to be read again
/// ([`Consumer::take_back`]). Each range is released or taken back at most once (both take it by
/// value), so while one is borrowed its bytes stay unreleased.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a range handed off is released or taken back; dropped, its space stays in use"]
pub struct ReadRange {
    consumer: u64,
    start: u64,
    end: u64,
}

impl ReadRange {
    /// Where it starts (for checkpoints and reports; it reads nothing).
    pub fn start(&self) -> u64 {
        self.start
    }
    /// Where it ends.
    pub fn end(&self) -> u64 {
        self.end
    }
    /// Bytes of ring it spans.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True when it spans nothing.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Releases what a [`Consumer`] handed off, on any thread: see [`Consumer::releaser`].
#[derive(Debug)]
pub struct Releaser<R: RingRef> {
    held: Arc<Held<R>>,
    consumer: u64,
}

impl<R: RingRef> Clone for Releaser<R> {
    fn clone(&self) -> Self {
        Releaser {
            held: Arc::clone(&self.held),
            consumer: self.consumer,
        }
    }
}

impl<R: RingRef> Releaser<R> {
    /// The ring.
    pub fn ring(&self) -> &Ring<R::Memory> {
        self.held.0.ring()
    }

    /// Where `piece`'s bytes are now; `range` is the range handed off that holds its record.
    /// They stay committed and unreleased while `range` is borrowed (releasing takes it).
    ///
    /// # Panics
    /// If `range` or `piece` is another consumer's, or `piece` lies outside `range`.
    pub fn in_place_ptr(&self, range: &ReadRange, piece: &InPlace) -> *const u8 {
        assert!(
            range.consumer == self.consumer
                && piece.consumer == self.consumer
                && (range.start..range.end).contains(&piece.pos),
            "an in-place piece outside the range handed off, or of another consumer"
        );
        // SAFETY: the piece was checked against its record when made; the record lies in
        // `range`, which is not released while it exists (checked above: it is this
        // consumer's, and a range is released only by value).
        unsafe { self.ring().payload_ptr(piece.pos, piece.offset, piece.len) }
            .expect("the memory handed out a pointer when the piece was made")
    }

    /// Gives `range` back to producers. Returns true when producers wait for space and should be
    /// woken ([`Ring::wake_space_waiters`]).
    ///
    /// # Panics
    /// If `range` is another consumer's, or an earlier range is not released yet: ranges are
    /// released in the order they were handed off.
    pub fn release(&self, range: ReadRange) -> bool {
        release_in_order(self.ring(), self.consumer, range)
    }
}

/// Gives `range`, handed off by consumer `consumer` of `ring`, back to producers; the one place
/// a consumer's reads are released.
fn release_in_order<M: Memory>(ring: &Ring<M>, consumer: u64, range: ReadRange) -> bool {
    assert_eq!(range.consumer, consumer, "a range of another consumer");
    assert_eq!(
        range.start,
        ring.head(),
        "ranges are released in the order they were handed off"
    );
    // SAFETY: `range` was handed off by `consumer`, the ring's only one, so it holds only frames
    // that consumer read (committed records, paddings, skipped claims and garbage); it was
    // never released (a range is released once, by value), and it starts at the ring's head
    // (checked), which only this consumer's releases move. No token can read it afterwards
    // (they must lie at or after the consumer's head, which is past it).
    unsafe { ring.release(range.start, range.end) }
}

/// The ring's one consumer.
#[derive(Debug)]
pub struct Consumer<R: RingRef> {
    held: Arc<Held<R>>,
    id: u64,
    /// Everything before it is released, or handed off.
    head: u64,
    /// The next frame to look at; `[head, read)` is read, not released.
    read: u64,
    tail_cache: u64,
    /// The chunk the read position is in, as far as known: its position and owner, from its
    /// header or, when reading starts inside it, from its owner's cursor.
    chunk: Option<(u64, u16)>,
}

impl<R: RingRef> Consumer<R> {
    /// Becomes the consumer of `ring`, at its head; gives `ring` back if it already has one.
    pub fn new(ring: R) -> Result<Consumer<R>, R> {
        // Acquire/Release: a consumer dropped on another thread has released what it read
        // before the next one starts from the head it left.
        if ring.ring().consumer_taken.swap(true, Ordering::AcqRel) {
            return Err(ring);
        }
        let head = ring.ring().head();
        let chunk = ring.ring().chunk_holding(head);
        Ok(Consumer {
            held: Arc::new(Held(ring)),
            id: NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed),
            head,
            read: head,
            tail_cache: head,
            chunk,
        })
    }

    /// The ring.
    #[inline(always)]
    pub fn ring(&self) -> &Ring<R::Memory> {
        self.held.0.ring()
    }

    /// What holds the ring.
    pub fn holder(&self) -> &R {
        &self.held.0
    }

    /// Everything before this position is released or handed off.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The next frame's position.
    pub fn position(&self) -> u64 {
        self.read
    }

    /// Bytes read and not released yet, handed off or not.
    pub fn unreleased(&self) -> u64 {
        self.read - self.ring().head()
    }

    /// A releaser for the ranges this consumer hands off, to move to another thread. It keeps
    /// other consumers out of the ring as long as it lives.
    pub fn releaser(&self) -> Releaser<R> {
        Releaser {
            held: Arc::clone(&self.held),
            consumer: self.id,
        }
    }

    /// Hands what was read since the last release or hand-off to a [`Releaser`]: from now on
    /// this consumer refuses its tokens, and reads on after it.
    pub fn hand_off(&mut self) -> ReadRange {
        let range = ReadRange {
            consumer: self.id,
            start: self.head,
            end: self.read,
        };
        self.head = self.read;
        range
    }

    /// Takes back `range`, the last one handed off, that could not be written: it is read again
    /// from its start (and so is anything read after it).
    ///
    /// # Panics
    /// If `range` is another consumer's or not the last one handed off.
    pub fn take_back(&mut self, range: ReadRange) {
        assert!(
            range.consumer == self.id && range.end == self.head,
            "take back of a range that is not this consumer's last one"
        );
        self.head = range.start;
        self.rewind();
    }

    /// The frame at the read position, without moving.
    #[inline]
    pub fn peek(&mut self) -> Frame {
        let at = self.read;
        // SAFETY: `at` is the consumer's read position, a frame boundary it reached only
        // through frames it read, and this is the ring's only consumer.
        match unsafe { self.held.0.ring().next(at, &mut self.tail_cache) } {
            Next::Chunk { slot } => {
                self.chunk = Some((at, slot));
                Frame::Padding(self.skip_to(at + crate::chunk::CHUNK_HEADER))
            }
            Next::Pending {
                slot: None,
                len: None,
            } => self.unwritten(at),
            next => self.frame(at, next),
        }
    }

    /// The token for what `next` found at `at`.
    #[inline(always)]
    fn frame(&self, at: u64, next: Next) -> Frame {
        match next {
            Next::Empty => Frame::Empty,
            Next::Record { meta, span } => Frame::Record(RecordFrame {
                consumer: self.id,
                pos: at,
                span,
                meta,
            }),
            Next::Padding { span } => Frame::Padding(self.skip_to(at + span)),
            Next::Chunk { .. } => Frame::Padding(self.skip_to(at + crate::chunk::CHUNK_HEADER)),
            Next::Pending { slot, len } => Frame::Pending { slot, len },
            Next::Corrupt(why) => Frame::Corrupt(why),
        }
    }

    /// A skip from the read position to `end`.
    fn skip_to(&self, end: u64) -> Skip {
        Skip {
            consumer: self.id,
            pos: self.read,
            end,
        }
    }

    /// The chunk holding `at` past its header, if known.
    fn chunk_of(&self, at: u64) -> Option<(u64, u16)> {
        let len = self.ring().chunk_len()?;
        self.chunk.filter(|&(pos, _)| pos < at && at < pos + len)
    }

    /// Nothing is written at the read position `at`: a claim whose header is on its way (an
    /// intent names it, or its chunk's cursor is past it), an open chunk's free space, the
    /// rest of a chunk someone sealed, or (what the drain decides later) a claim whose owner
    /// died before writing anything.
    #[cold]
    fn unwritten(&mut self, at: u64) -> Frame {
        let ring = self.held.0.ring();
        let Some((pos, owner)) = self.chunk_of(at) else {
            return self.sealed_rest(at).map_or(
                Frame::Pending {
                    slot: None,
                    len: None,
                },
                Frame::Padding,
            );
        };
        match ring.chunk_frame(pos, owner, at) {
            ChunkFrame::Claimed | ChunkFrame::OwnerSealed => Frame::Pending {
                slot: Some(owner),
                len: None,
            },
            ChunkFrame::Open { word } => Frame::OpenChunk(OpenCursor {
                consumer: self.id,
                pos: at,
                chunk: pos,
                end: pos + ring.chunk_len().unwrap_or(0),
                slot: owner,
                word,
            }),
            ChunkFrame::DrainSealed { end } => Frame::Padding(self.skip_to(end)),
            ChunkFrame::MovedOn => {
                // The owner wrote everything of this chunk before it moved on: look again.
                // SAFETY: as in `peek`.
                match unsafe { ring.next(at, &mut self.tail_cache) } {
                    // Only the rest of a chunk the last drain sealed, and did not pad before it
                    // was killed, stays unwritten: anything else was scribbled over.
                    Next::Pending {
                        slot: None,
                        len: None,
                    } => self
                        .sealed_rest(at)
                        .map_or(Frame::Corrupt(Corruption::Chunk), Frame::Padding),
                    next => self.frame(at, next),
                }
            }
            ChunkFrame::Impossible => Frame::Corrupt(Corruption::Chunk),
        }
    }

    /// Nothing is written at `at` and no chunk cursor explains it: the rest of the chunk the
    /// last drain sealed, if it was killed before it wrote the padding there (and the owner has
    /// moved on since), or `None`.
    fn sealed_rest(&self, at: u64) -> Option<Skip> {
        let ring = self.ring();
        let (sealed, end) = ring.chunk_sealed()?;
        (sealed == at && end - at < ring.chunk_len()?).then(|| self.skip_to(end))
    }

    /// Seals the chunk whose open cursor is at the read position, unless its owner claimed
    /// there meanwhile, and writes the padding over its rest: after this the owner claims a new
    /// chunk from the tail. Returns whether it sealed; either way, [`Consumer::peek`] shows what
    /// is there now.
    ///
    /// # Panics
    /// If `cursor` is another consumer's or not at the read position.
    pub fn seal(&mut self, cursor: OpenCursor) -> bool {
        assert!(
            cursor.consumer == self.id && cursor.pos == self.read,
            "seal of a cursor that is not at this consumer's read position"
        );
        // SAFETY: the cursor was read at the read position of the ring's only consumer, which
        // has not moved since (checked): nothing at or after it is released.
        unsafe {
            self.ring().seal_for_drain(
                cursor.chunk,
                cursor.slot,
                cursor.word,
                cursor.pos,
                cursor.end,
            )
        }
    }

    /// True when claims wait behind the chunk of `cursor`: the tail is past its end.
    pub fn others_wait(&self, cursor: &OpenCursor) -> bool {
        self.ring().tail() > cursor.end
    }

    /// Appends the messages of the committed data records from the read position on to `out`,
    /// each ended by a newline unless it ends with one (the raw format), and moves past them;
    /// stops at `limits` or at the first frame that is not a committed data record (which
    /// [`Consumer::peek`] then shows). Returns how many records it took. One pass over a run of
    /// records, with none of the per-record tokens of `peek`.
    #[inline]
    pub fn append_messages(&mut self, out: &mut Vec<u8>, limits: MessageLimits) -> u64 {
        let ring = self.held.0.ring();
        // SAFETY: `self.read` is the consumer's read position, a frame boundary it reached only
        // through frames it read, and this is the ring's only consumer; the released position
        // is the ring's head (only this consumer's releases move it).
        let (read, records) = unsafe {
            ring.append_messages(ring.head(), self.read, &mut self.tail_cache, out, limits)
        };
        self.read = read;
        records
    }

    /// Moves past `record`, which must be the frame at the read position.
    #[inline]
    pub fn pass(&mut self, record: &RecordFrame) {
        assert!(
            record.consumer == self.id && record.pos == self.read,
            "pass of a frame that is not at this consumer's read position"
        );
        self.read += record.span;
    }

    /// Steps over `skip`, which must start at the read position.
    pub fn skip(&mut self, skip: Skip) {
        assert!(
            skip.consumer == self.id && skip.pos == self.read,
            "skip of a frame that is not at this consumer's read position"
        );
        self.read = skip.end;
    }

    /// Goes back to the head: what was read since the last release will be read again (a batch
    /// that could not be written).
    pub fn rewind(&mut self) {
        self.read = self.head;
        self.tail_cache = self.head;
        self.find_chunk();
    }

    /// After moving the read position back: the chunk holding it, if it is not the one known.
    fn find_chunk(&mut self) {
        if self.chunk_of(self.read).is_none() {
            self.chunk = self.ring().chunk_holding(self.read);
        }
    }

    /// The drain sleeps until a producer commits, if nothing is left to read (see
    /// [`Ring::drain_sleep`]). At an open chunk's cursor it seals the chunk instead and returns:
    /// the tail is past the read position there, so it would never sleep, only come back here
    /// until the chunk's owner writes again; and once it sleeps, claims inside a chunk, which
    /// move no tail, could not wake it.
    pub fn sleep(&mut self, futex: &impl crate::Futex, timeout: std::time::Duration) {
        if self.seal_open_chunk() {
            return;
        }
        self.ring().drain_sleep(futex, self.read, timeout)
    }

    /// Seals the chunk whose open cursor is at the read position, if there is one (see
    /// [`Consumer::seal`]): true if there was, whether the seal or the owner's next claim won.
    pub fn seal_open_chunk(&mut self) -> bool {
        match self.peek() {
            Frame::OpenChunk(cursor) => {
                self.seal(cursor);
                true
            }
            _ => false,
        }
    }

    /// Gives what was read back to producers. Returns true when producers wait for space and
    /// should be woken ([`Ring::wake_space_waiters`]).
    ///
    /// # Panics
    /// If a range handed off is not released yet.
    pub fn release(&mut self) -> bool {
        assert_eq!(
            self.ring().head(),
            self.head,
            "release while a range handed off is not released"
        );
        let range = self.hand_off();
        release_in_order(self.ring(), self.id, range)
    }

    /// The batch a dead drain wrote whole is released per the checkpoint (only if it is still
    /// in flight and starts at head); the consumer moves to the new head.
    pub fn release_recovered(&mut self) {
        assert_eq!(self.head, self.read, "recovery before any read");
        assert_eq!(
            self.ring().head(),
            self.head,
            "recovery with a range handed off"
        );
        self.ring().release_recovered();
        self.head = self.ring().head();
        self.read = self.head;
        self.tail_cache = self.head;
        self.find_chunk();
    }

    /// Tokens are made only by `peek`, at the read position, so every token of this consumer
    /// lies at or after its head until that is released or handed off: `pos >= head` is the
    /// whole test for a token of this consumer.
    #[inline(always)]
    fn check(&self, record: &RecordFrame, offset: usize, len: usize) {
        assert!(
            record.consumer == self.id && record.pos >= self.head,
            "a frame token of another consumer, or released"
        );
        assert!(
            offset + len <= record.meta.payload_len as usize,
            "payload read outside the record"
        );
    }

    /// Copies `dst.len()` bytes of `record`'s payload from `offset`.
    #[inline]
    pub fn read_payload(&self, record: &RecordFrame, offset: usize, dst: &mut [u8]) {
        self.check(record, offset, dst.len());
        // SAFETY: checked above: a committed record this consumer saw and has not released,
        // the range inside its payload.
        unsafe { self.ring().read_payload(record.pos, offset, dst) }
    }

    /// Appends `len` bytes of `record`'s payload from `offset` to `out`.
    #[inline]
    pub fn append_payload(
        &self,
        record: &RecordFrame,
        offset: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) {
        self.check(record, offset, len);
        // SAFETY: as in `read_payload`.
        unsafe { self.ring().append_payload(record.pos, offset, len, out) }
    }

    /// `len` bytes of `record`'s payload from `offset`, to be written where they lie; `None`
    /// where the memory cannot hand out pointers.
    pub fn in_place(&self, record: &RecordFrame, offset: usize, len: usize) -> Option<InPlace> {
        self.check(record, offset, len);
        // SAFETY: as in `read_payload`; the pointer is only a probe here.
        unsafe { self.ring().payload_ptr(record.pos, offset, len) }?;
        Some(InPlace {
            consumer: self.id,
            pos: record.pos,
            offset,
            len,
        })
    }

    /// The verdict on the uncommitted claim at the read position (see
    /// [`Ring::claim_verdict`]), asking the ring's holder whether owners are alive (a segment
    /// asks the OFD locks on its file). `slot` and `len` are what [`Consumer::peek`] showed; a
    /// skip is only given for a frame that still shows them once its owners are known dead
    /// (otherwise [`PendingVerdict::Changed`]), so a record committed in between is read, not
    /// skipped.
    pub fn pending_verdict(&mut self, slot: Option<u16>, len: Option<u32>) -> PendingVerdict
    where
        R: Liveness,
    {
        let held = Arc::clone(&self.held);
        self.pending_verdict_with(slot, len, &held.0)
    }

    /// As [`Consumer::pending_verdict`], asking `liveness`.
    pub fn pending_verdict_with(
        &mut self,
        slot: Option<u16>,
        len: Option<u32>,
        liveness: &impl Liveness,
    ) -> PendingVerdict {
        let at = self.read;
        let ring = self.held.0.ring();
        let verdict = match self.chunk_of(at) {
            // A frame of a chunk is its owner's, whatever the intents say.
            Some((pos, owner)) if slot.map_or(true, |s| s == owner) => {
                ring.chunk_claim_verdict(at, pos, owner, len, liveness)
            }
            // SAFETY: `at` is the consumer's read position, where `next` found a pending claim.
            _ => unsafe { ring.claim_verdict(at, slot, len, &mut self.tail_cache, liveness) },
        };
        if matches!(
            verdict,
            ClaimVerdict::Abandoned { .. } | ClaimVerdict::Unused { .. }
        ) && !self.still_pending(len)
        {
            // The owner wrote its header or committed after the caller looked, and died before
            // the verdict asked: what a dead owner wrote is final, and skipping it would throw
            // away (and miscount) a record. Look again instead.
            return PendingVerdict::Changed;
        }
        self.verdict_token(at, verdict)
    }

    /// Whether the frame at the read position is still a pending claim whose header says `len`
    /// (`None`: no header), as when the caller looked.
    fn still_pending(&mut self, len: Option<u32>) -> bool {
        matches!(self.peek(), Frame::Pending { len: now, .. } if now == len)
    }

    fn verdict_token(&self, at: u64, verdict: ClaimVerdict) -> PendingVerdict {
        match verdict {
            ClaimVerdict::Abandoned { end, owner, pid } => PendingVerdict::Abandoned {
                skip: Skip {
                    consumer: self.id,
                    pos: at,
                    end,
                },
                owner,
                pid,
            },
            ClaimVerdict::Alive(s) => PendingVerdict::Alive(s),
            ClaimVerdict::Unused { end } => PendingVerdict::Unused(Skip {
                consumer: self.id,
                pos: at,
                end,
            }),
            ClaimVerdict::Changed => PendingVerdict::Changed,
        }
    }

    /// After a corrupt frame at the read position: the bytes up to the nearest certain frame
    /// boundary, if there is one within a capacity of the head.
    pub fn resync(&self) -> Option<Skip> {
        let ring = self.ring();
        let end = ring.resync_point(self.read, ring.tail());
        (end > self.read && end - self.head <= ring.geometry().capacity).then_some(Skip {
            consumer: self.id,
            pos: self.read,
            end,
        })
    }

    /// A provably corrupt tail (`bad`, see [`Corruption::Tail`]) is put back at the read
    /// position, if nobody changed it meanwhile. Returns whether it was. A tail that is not
    /// provably corrupt (aligned, at or after the read position and within a capacity of it) is
    /// left alone: claims may be in flight behind it, and moving it back would hand their space
    /// out again while they write it.
    pub fn repair_tail(&mut self, bad: u64) -> bool {
        // The proof `next` used: the read position was reached through frames the tail had
        // passed, and the tail only grows, so a sound tail is never behind it, nor more than a
        // capacity ahead of it (`read >= head`), nor misaligned.
        if self.ring().tail_plausible(self.read, bad) {
            return false;
        }
        let repaired = self.ring().repair_tail(bad, self.read);
        self.tail_cache = self.read;
        repaired
    }

    /// Bytes between the read position and the producers' tail.
    pub fn backlog(&self) -> u64 {
        self.ring().tail().saturating_sub(self.read)
    }
}
