//! Chunk claims (`ringlog_core::chunk`) as the drain's consumer meets them, one step at a time
//! over a heap ring: a producer's records share its chunk and keep their order; the consumer
//! seals an idle chunk only where its cursor still is; a dead owner's claim inside its chunk is
//! skipped to the cursor and counted once, the unused rest of its chunk is not counted; a drain
//! started inside a chunk finds the cursor, and one killed between its seal and its padding is
//! covered by the header's record; a slot is not reused before the drain passed its chunk; a
//! resync after garbage stops at the frame in flight. Then many threads against one consumer.
#![cfg(not(loom))]

mod common;

use common::*;
use ringlog_core::abandon::Liveness;
use ringlog_core::chunk::{
    chunk_frame_max, OpenChunk, CHUNK_ALIGN, CHUNK_HEADER, TAIL_RECORDS_BEFORE_A_CHUNK,
};
use ringlog_core::layout::{self, off, slot_off};
use ringlog_core::memory::HeapMemory;
use ringlog_core::{
    Claim, ClaimError, Consumer, Frame, Geometry, PendingVerdict, Ring, FRAME_HEADER_SIZE,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Sets its flag when dropped: the consumer thread is gone, however it ended.
struct Gone<'a>(&'a AtomicBool);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        // Relaxed: only a stop signal.
        self.0.store(true, Ordering::Relaxed);
    }
}

/// 64 KiB: chunks of 1 KiB, which a frame of up to 256 bytes opens.
const RING: Geometry = Geometry {
    capacity: 64 << 10,
    max_record: 4096,
    slots: 4,
};
const CHUNK: u64 = 1024;

/// A producer thread's view: its slot, its open chunk, its process's head cache.
struct Producer<'r> {
    ring: &'r Ring<HeapMemory>,
    slot: u16,
    open: OpenChunk,
    head_cache: AtomicU64,
}

impl<'r> Producer<'r> {
    /// A producer that has written the small records it takes to open a chunk (from the tail,
    /// each `b"w"`): its next small record opens one.
    fn new(ring: &'r Ring<HeapMemory>, slot: u16) -> Producer<'r> {
        let p = Producer::cold(ring, slot);
        for _ in 0..TAIL_RECORDS_BEFORE_A_CHUNK {
            let before = ring.tail();
            let pos = p.write(b"w");
            assert_eq!(pos, before, "from the tail");
        }
        p
    }

    /// A producer that has written nothing yet.
    fn cold(ring: &'r Ring<HeapMemory>, slot: u16) -> Producer<'r> {
        Producer {
            ring,
            slot,
            open: OpenChunk::new(),
            head_cache: AtomicU64::new(0),
        }
    }

    /// Claims room for `len` payload bytes, not committed.
    fn claim(&self, len: usize) -> Claim {
        self.ring
            .claim_in_chunk(self.slot, len, &self.head_cache, &self.open)
            .expect("room in the ring")
    }

    /// Writes one record; returns its position.
    fn write(&self, payload: &[u8]) -> u64 {
        let claim = self.claim(payload.len());
        let pos = claim.pos();
        self.ring.write_payload(&claim, 0, payload);
        let mut m = meta(payload.len());
        m.slot = self.slot;
        let _ = self.ring.commit(claim, &m);
        pos
    }

    /// Its slot's cursor word.
    fn cursor(&self) -> &AtomicU64 {
        self.ring
            .word_at(layout::slot_offset(self.slot as u32) + slot_off::CHUNK)
    }
}

/// A consumer of `ring` past the records of `producers` warming up (see `Producer::new`).
fn consumer_after_warm_up<'r>(ring: &'r Ring<HeapMemory>, producers: u64) -> TestConsumer<'r> {
    let mut consumer = Consumer::new(ring).ok().unwrap();
    for _ in 0..producers * TAIL_RECORDS_BEFORE_A_CHUNK {
        assert_eq!(take_record(&mut consumer), b"w");
    }
    consumer
}

/// Liveness as the test says.
struct Alive(bool);

impl Liveness for Alive {
    fn hold_if_dead(&self, _slot: u16) -> bool {
        !self.0
    }
    fn let_go(&self, _slot: u16) {}
}

type TestConsumer<'r> = Consumer<&'r Ring<HeapMemory>>;

/// Reads the record at the read position and moves past it.
fn take_record(consumer: &mut TestConsumer) -> Vec<u8> {
    let frame = consumer.peek();
    let Frame::Record(record) = frame else {
        panic!("a record at {}, found {frame:?}", consumer.position())
    };
    let mut buf = vec![0; record.meta().payload_len as usize];
    consumer.read_payload(&record, 0, &mut buf);
    consumer.pass(&record);
    buf
}

/// Steps over the padding at the read position; returns its length.
fn take_padding(consumer: &mut TestConsumer) -> u64 {
    let frame = consumer.peek();
    let Frame::Padding(skip) = frame else {
        panic!("a padding at {}, found {frame:?}", consumer.position())
    };
    let len = skip.len();
    consumer.skip(skip);
    len
}

/// Bytes a record of `payload_len` bytes takes in a chunk.
fn span(payload_len: usize) -> u64 {
    ((FRAME_HEADER_SIZE + payload_len) as u64).next_multiple_of(CHUNK_ALIGN)
}

/// Bytes it takes when claimed from the tail.
fn tail_span(payload_len: usize) -> u64 {
    layout::align_record((FRAME_HEADER_SIZE + payload_len) as u64)
}

#[test]
fn a_producers_records_share_its_chunk_and_an_idle_chunk_is_sealed_at_its_cursor() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 1);
    let c0 = ring.tail();
    let positions: Vec<u64> = (0..3u8).map(|i| p.write(&[i; 20])).collect();
    assert_eq!(
        ring.tail(),
        c0 + CHUNK,
        "one chunk claimed from the tail, for all three"
    );
    let first = c0 + CHUNK_HEADER;
    assert_eq!(positions, [first, first + span(20), first + 2 * span(20)]);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    assert_eq!(
        take_padding(&mut consumer),
        CHUNK_HEADER,
        "the chunk's header"
    );
    for i in 0..3u8 {
        assert_eq!(take_record(&mut consumer), [i; 20]);
    }
    let Frame::OpenChunk(cursor) = consumer.peek() else {
        panic!("the open cursor")
    };
    assert_eq!(cursor.owner(), 1);
    assert_eq!(cursor.end(), c0 + CHUNK);
    assert!(!consumer.others_wait(&cursor), "nothing behind the chunk");
    assert!(consumer.seal(cursor));
    assert_eq!(
        take_padding(&mut consumer),
        c0 + CHUNK - positions[2] - span(20)
    );
    assert_eq!(consumer.peek(), Frame::Empty);
    // Sealed by the drain while its owner paused: the owner's next records go to the tail
    // until it has shown again that it keeps writing.
    let next = p.write(b"next");
    assert_eq!(next, c0 + CHUNK, "from the tail");
    assert_eq!(take_record(&mut consumer), b"next");
}

#[test]
fn the_drain_seals_only_a_cursor_that_did_not_move() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 0);
    p.write(b"one");
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    let Frame::OpenChunk(stale) = consumer.peek() else {
        panic!("the open cursor")
    };
    p.write(b"two");
    assert!(!consumer.seal(stale), "the owner claimed there first");
    assert_eq!(take_record(&mut consumer), b"two");
    assert!(matches!(consumer.peek(), Frame::OpenChunk(_)));
}

#[test]
fn records_that_do_not_fit_seal_the_chunk_and_keep_their_producers_order() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 2);
    let small = 100;
    let max = chunk_frame_max(CHUNK) as usize - FRAME_HEADER_SIZE;
    let mut expected = Vec::new();
    let mut write = |payload: Vec<u8>| {
        p.write(&payload);
        expected.push(payload);
    };
    let c0 = ring.tail();
    // Seven frames of 144 bytes fill the 1008 after the header: the eighth opens a second.
    for i in 0..8u8 {
        write(vec![i; small]);
    }
    assert_eq!(ring.tail(), c0 + 2 * CHUNK);
    // A record too large to open a chunk goes into the open one when it fits...
    write(vec![b'M'; max + 100]);
    assert_eq!(ring.tail(), c0 + 2 * CHUNK);
    // ... and from the tail when it does not, sealing the chunk first.
    let large = max + 900;
    write(vec![b'L'; large]);
    let after_large = c0 + 2 * CHUNK + tail_span(large);
    assert_eq!(ring.tail(), after_large);
    // Small records go to the tail again until there have been enough in a row.
    for i in 0..TAIL_RECORDS_BEFORE_A_CHUNK {
        write(vec![i as u8; small]);
    }
    let streak = TAIL_RECORDS_BEFORE_A_CHUNK * tail_span(small);
    assert_eq!(ring.tail(), after_large + streak);
    write(vec![b'c'; small]);
    assert_eq!(ring.tail(), after_large + streak + CHUNK);
    p.ring.seal_own_chunk(p.slot, &p.open);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    let mut got = Vec::new();
    loop {
        match consumer.peek() {
            Frame::Record(_) => got.push(take_record(&mut consumer)),
            Frame::Padding(skip) => consumer.skip(skip),
            Frame::Empty => break,
            other => panic!("{other:?} at {}", consumer.position()),
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn a_dead_owners_claim_in_its_chunk_is_skipped_to_the_cursor_and_the_rest_is_not_lost() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 3);
    p.write(b"before");
    let claim = p.claim(30);
    let at = claim.pos();
    let _dead_owners = claim; // never committed: the owner dies holding it
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    let Frame::Pending { slot, len } = consumer.peek() else {
        panic!("the claim in flight")
    };
    assert_eq!((slot, len), (Some(3), Some(span(30) as u32)));
    assert_eq!(
        consumer.pending_verdict_with(slot, len, &Alive(true)),
        PendingVerdict::Alive(3)
    );
    let PendingVerdict::Abandoned { skip, owner, .. } =
        consumer.pending_verdict_with(slot, len, &Alive(false))
    else {
        panic!("abandoned")
    };
    assert_eq!((skip.pos(), skip.len(), owner), (at, span(30), Some(3)));
    consumer.skip(skip);
    // Its cursor stands after the dead claim: the rest is free space, sealed, not lost.
    let Frame::OpenChunk(cursor) = consumer.peek() else {
        panic!("the dead owner's open cursor")
    };
    assert!(consumer.seal(cursor));
    take_padding(&mut consumer);
    assert_eq!(consumer.peek(), Frame::Empty);
}

#[test]
fn a_claim_in_a_chunk_committed_just_before_its_owner_died_is_delivered() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 2);
    p.write(b"before");
    let claim = p.claim(4);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    let Frame::Pending { slot, len } = consumer.peek() else {
        panic!("the claim in flight")
    };
    let liveness = ActsThenDies::new(
        || {
            ring.write_payload(&claim, 0, b"late");
            let mut m = meta(4);
            m.slot = 2;
            let _ = ring.commit(claim, &m);
        },
        Alive(false),
    );
    assert_eq!(
        consumer.pending_verdict_with(slot, len, &liveness),
        PendingVerdict::Changed,
        "the record was committed: nothing to skip"
    );
    assert_eq!(take_record(&mut consumer), b"late");
}

#[test]
fn a_claim_whose_header_never_came_is_charged_to_the_chunks_owner_up_to_its_cursor() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 1);
    let first = p.write(b"x");
    // The owner's CAS moved the cursor by a frame; it died before writing the header.
    let at = first + span(1);
    p.cursor().fetch_add(span(50), Ordering::Relaxed);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    assert_eq!(
        consumer.peek(),
        Frame::Pending {
            slot: Some(1),
            len: None
        },
        "no intent names it, its chunk does"
    );
    assert_eq!(
        consumer.pending_verdict_with(Some(1), None, &Alive(true)),
        PendingVerdict::Alive(1)
    );
    let PendingVerdict::Abandoned { skip, owner, .. } =
        consumer.pending_verdict_with(None, None, &Alive(false))
    else {
        panic!("abandoned")
    };
    assert_eq!((skip.pos(), skip.len(), owner), (at, span(50), Some(1)));
}

#[test]
fn an_owner_that_died_between_its_seal_and_its_padding_lost_nothing() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 0);
    let first = p.write(b"only");
    // The owner's sealing CAS, and no padding.
    p.cursor().fetch_or(1 << 15, Ordering::Relaxed);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    let Frame::Pending { slot, len } = consumer.peek() else {
        panic!("its padding on the way")
    };
    assert_eq!((slot, len), (Some(0), None));
    assert_eq!(
        consumer.pending_verdict_with(slot, len, &Alive(true)),
        PendingVerdict::Alive(0),
        "a live owner writes it"
    );
    let PendingVerdict::Unused(skip) = consumer.pending_verdict_with(slot, len, &Alive(false))
    else {
        panic!("unused space, not a lost claim")
    };
    assert_eq!(skip.pos(), first + span(4));
    assert_eq!(skip.pos() + skip.len(), first - CHUNK_HEADER + CHUNK);
}

#[test]
fn a_drain_started_inside_an_open_chunk_finds_its_cursor() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 2);
    for i in 0..3u8 {
        p.write(&[i; 8]);
    }
    {
        let mut consumer = consumer_after_warm_up(&ring, 1);
        take_padding(&mut consumer);
        take_record(&mut consumer);
        take_record(&mut consumer);
        consumer.release();
    }
    // A new consumer, past the chunk's header: the cursor in slot 2 tells where the chunk is.
    let mut consumer = Consumer::new(&ring).ok().unwrap();
    assert_eq!(take_record(&mut consumer), [2; 8]);
    assert!(
        matches!(consumer.peek(), Frame::OpenChunk(c) if c.owner() == 2),
        "{:?}",
        consumer.peek()
    );
}

/// The drain's seal as a drain killed right after it left it: the header's record, the cursor
/// sealed, no padding.
fn seal_without_padding(ring: &Ring<HeapMemory>, p: &Producer, at: u64, end: u64) {
    ring.word_at(off::CHUNK_SEALED_AT)
        .store(at, Ordering::Relaxed);
    ring.word_at(off::CHUNK_SEALED_END)
        .store(end, Ordering::Relaxed);
    p.cursor().fetch_or(1 << 16, Ordering::Relaxed);
}

#[test]
fn a_drain_killed_between_its_seal_and_its_padding_skips_the_rest_on_restart() {
    for owner_moved_on in [false, true] {
        let ring = heap_ring(RING);
        let p = Producer::new(&ring, 1);
        let c0 = ring.tail();
        let first = p.write(b"a");
        let rest = first + span(1);
        seal_without_padding(&ring, &p, rest, c0 + CHUNK);
        if owner_moved_on {
            // The owner finds its chunk sealed and moves on: its cursor no longer names the
            // first chunk, only the header's record does.
            for _ in 0..=TAIL_RECORDS_BEFORE_A_CHUNK {
                p.write(b"b");
            }
            assert_eq!(
                ring.tail(),
                c0 + CHUNK + TAIL_RECORDS_BEFORE_A_CHUNK * 48 + CHUNK
            );
        }
        let mut consumer = consumer_after_warm_up(&ring, 1);
        take_padding(&mut consumer);
        assert_eq!(take_record(&mut consumer), b"a");
        assert_eq!(consumer.position(), rest);
        assert_eq!(
            take_padding(&mut consumer),
            c0 + CHUNK - rest,
            "{owner_moved_on}"
        );
        if owner_moved_on {
            for _ in 0..TAIL_RECORDS_BEFORE_A_CHUNK {
                assert_eq!(take_record(&mut consumer), b"b");
            }
            take_padding(&mut consumer);
            assert_eq!(take_record(&mut consumer), b"b");
        }
        assert!(matches!(
            consumer.peek(),
            Frame::Empty | Frame::OpenChunk(_)
        ));
    }
}

#[test]
fn a_slot_is_not_given_to_a_new_owner_before_the_drain_passed_its_chunk() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 3);
    p.write(b"r");
    // The owner is gone (the caller of `slot_reusable` holds its lock); its chunk is open.
    ring.detach_slot(3);
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    take_record(&mut consumer);
    consumer.release();
    assert!(
        !ring.slot_reusable(3),
        "its cursor is still needed: the drain has not passed its chunk"
    );
    let Frame::OpenChunk(cursor) = consumer.peek() else {
        panic!("its open cursor")
    };
    assert!(consumer.seal(cursor));
    take_padding(&mut consumer);
    consumer.release();
    assert!(ring.slot_reusable(3));
}

#[test]
fn a_resync_after_garbage_in_a_chunk_stops_at_the_frame_in_flight() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 0);
    let garbled = p.write(b"soon garbage");
    let claim = p.claim(10); // in flight, header written
    let in_flight = claim.pos();
    poke(&ring, garbled, raw_word0(0x7fff_fff0, 1, 0, 0));
    let mut consumer = consumer_after_warm_up(&ring, 1);
    take_padding(&mut consumer);
    assert!(matches!(consumer.peek(), Frame::Corrupt(_)));
    let skip = consumer.resync().expect("a boundary");
    assert_eq!(
        skip.pos() + skip.len(),
        in_flight,
        "the owner is still writing there: its intent bounds the skip"
    );
    consumer.skip(skip);
    assert!(matches!(
        consumer.peek(),
        Frame::Pending { slot: Some(0), .. }
    ));
    ring.abort(claim);
}

#[test]
fn many_threads_claiming_in_chunks_and_from_the_tail_lose_reorder_and_tear_nothing() {
    const THREADS: u16 = 4;
    const RECORDS: u64 = 40_000;
    let ring = heap_ring(Geometry {
        capacity: 256 << 10,
        max_record: 6000,
        slots: THREADS as u32,
    });
    let record = |id: u16, seq: u64| -> Vec<u8> {
        // Mostly small; one in 64 larger, up to more than a chunk holds (4 KiB here), so
        // chunks fill, are sealed by their owners and by the consumer, and some records go to
        // the tail between them. Sizes shuffled by the sequence number.
        let r = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let len = if r % 64 == 0 {
            300 + r % 5000
        } else {
            10 + r % 200
        };
        let mut buf = Vec::with_capacity(len as usize);
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend((10..len).map(|i| (i as u8) ^ (seq as u8) ^ (id as u8)));
        buf
    };
    let gone = AtomicBool::new(false);
    std::thread::scope(|s| {
        let producers: Vec<_> = (0..THREADS)
            .map(|id| {
                let (ring, record, gone) = (&ring, &record, &gone);
                s.spawn(move || {
                    // Its first records go to the tail, as any producer's.
                    let p = Producer::cold(ring, id);
                    for seq in 0..RECORDS {
                        let payload = record(id, seq);
                        let claim = loop {
                            match ring.claim_in_chunk(id, payload.len(), &p.head_cache, &p.open) {
                                Ok(c) => break c,
                                Err(ClaimError::Full) => {
                                    // Relaxed: only a stop signal.
                                    assert!(!gone.load(Ordering::Relaxed), "the consumer failed");
                                    std::thread::yield_now()
                                }
                                Err(e) => panic!("{e:?}"),
                            }
                        };
                        ring.write_payload(&claim, 0, &payload);
                        let mut m = meta(payload.len());
                        m.slot = id;
                        let _ = ring.commit(claim, &m);
                    }
                    // As a thread does before it gives its slot back.
                    ring.seal_own_chunk(id, &p.open);
                })
            })
            .collect();
        let consumer = s.spawn(|| {
            let _gone = Gone(&gone);
            let mut consumer = Consumer::new(&ring).ok().unwrap();
            let mut next = [0u64; THREADS as usize];
            let (mut seals, mut cursors) = (0u64, 0u64);
            while next.iter().any(|&n| n < RECORDS) {
                match consumer.peek() {
                    Frame::Record(_) => {
                        let got = take_record(&mut consumer);
                        let id = u16::from_le_bytes(got[..2].try_into().unwrap());
                        let seq = u64::from_le_bytes(got[2..10].try_into().unwrap());
                        assert_eq!(seq, next[id as usize], "producer {id}: lost or reordered");
                        assert_eq!(got, record(id, seq), "producer {id} record {seq} torn");
                        next[id as usize] += 1;
                    }
                    Frame::Padding(skip) => consumer.skip(skip),
                    // Seal at once when claims wait behind the chunk: the drain waits a few
                    // microseconds first, which only changes how often this happens.
                    Frame::OpenChunk(cursor) if consumer.others_wait(&cursor) => {
                        seals += u64::from(consumer.seal(cursor));
                    }
                    Frame::OpenChunk(_) => {
                        cursors += 1;
                        consumer.release();
                        std::thread::yield_now();
                    }
                    Frame::Pending { .. } | Frame::Empty => {
                        consumer.release();
                        std::thread::yield_now();
                    }
                    Frame::Corrupt(c) => panic!("corrupt at {}: {c}", consumer.position()),
                }
                if consumer.unreleased() > 32 << 10 {
                    consumer.release();
                }
            }
            consumer.release();
            (seals, cursors)
        });
        for p in producers {
            p.join().unwrap();
        }
        let (seals, cursors) = consumer.join().unwrap();
        eprintln!("the consumer sealed {seals} chunks and waited at {cursors} open cursors");
        for id in 0..THREADS {
            let cursor = ring.word_at(layout::slot_offset(id as u32) + slot_off::CHUNK);
            assert_ne!(
                cursor.load(Ordering::Relaxed),
                0,
                "producer {id} never opened a chunk"
            );
        }
    });
}

#[test]
fn a_ring_too_full_for_a_chunk_still_takes_a_record_that_fits() {
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 1); // its next small record opens a chunk, if one fits
    let head_cache = AtomicU64::new(0);
    // Another producer fills the ring from the tail until less than a chunk is left.
    while RING.capacity - (ring.tail() - ring.head()) >= CHUNK {
        write(&ring, 0, &head_cache, &[7; 200]).unwrap();
    }
    let at = ring.tail();
    let claim = p.claim(4);
    assert_eq!(claim.pos(), at, "from the tail, not refused");
    assert_eq!(claim.capacity(), 4, "what was asked for");
    ring.abort(claim);
    // In a chunk, too, a claim hands out what was asked for, not its frame's rounding.
    let ring = heap_ring(RING);
    let p = Producer::new(&ring, 1);
    let claim = p.claim(4);
    assert_eq!(
        claim.pos(),
        ring.tail() - CHUNK + CHUNK_HEADER,
        "in a chunk"
    );
    assert_eq!(claim.capacity(), 4);
    ring.abort(claim);
}
