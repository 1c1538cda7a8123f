//! loom models of the claim / commit / consume protocol: two producer threads and one consumer
//! thread over a 128-byte ring (`MIN_CAPACITY` under `cfg(loom)`; 256 bytes for the chunk
//! models), with every shared word a loom atomic (`LoomMemory`), so loom explores the
//! interleavings and the weak-memory outcomes of claims, header and check-word writes, payload
//! copies, commits, paddings, head moves, and chunk cursors and seals.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p ringlog-core --release --test loom`
//! (`LOOM_MAX_PREEMPTIONS=3` explores more; the default bound here is 2.)
//!
//! What each model checks, in every explored execution:
//! - every committed record is delivered exactly once, intact, in claim order;
//! - the consumer never sees a corrupt frame;
//! - a claim whose header is not visible yet (`Pending { slot: None }`) is attributable: either
//!   a registry intent names it, or its header is visible on a re-check (the invariant the drain
//!   relies on before it may call a claim abandoned);
//! - what an earlier lap left in the region (committed frames with their own check words, at the
//!   very offsets this lap's frames take) never passes for a frame of this lap: the consumer
//!   loads a frame's check word (Acquire) before its word 0, the producer stores them in the
//!   other order (Release); load word 0 first, or the check word Relaxed, and the stale-lap
//!   models deliver a stale record;
//! - after the last release, the word at `capacity - 8` (the one word `release` zeroes) is zero;
//! - no wake-up is lost when a producer waits for space: it blocks (on a model of a futex) in
//!   `Ring::claim_waiting`, the code the writer's `Block` policy runs, and the consumer wakes it
//!   with `Ring::wake_space_waiters` when `release` reports waiters, as the drain does; a
//!   missed wake-up is a loom deadlock.
//!   (Blocking, not spinning, also keeps the models finite: with two threads spinning on
//!   `yield_now`, loom can starve the third for ever, since a switch after a yield is not a
//!   preemption.)
//!
//! - no wake-up is lost when the drain goes to sleep: in the sleep models the consumer is a
//!   `Consumer` that, finding the ring empty, sleeps with `Consumer::sleep` (`Ring::drain_sleep`:
//!   read the wake word, announce the sleep, check the tail, wait on the futex), as the idle
//!   drain does, while producers commit and wake it with `Ring::wake_drain` whenever `commit`
//!   says it sleeps, as `Writer::write` does; a missed wake-up is a loom deadlock.
//!
//! That last pair (the drain's `drain_sleeping` store then `tail` load, against a producer's
//! `tail` CAS then `drain_sleeping` load) rests on the total order of SeqCst *accesses*, which
//! loom does not model (it treats them as AcqRel: tokio-rs/loom#180), though it models SeqCst
//! fences. The core makes those accesses through `sync::Dekker`, which under `cfg(loom)` puts a
//! SeqCst fence between a thread's SeqCst store and its next SeqCst load, the order the
//! language promises; weaken either access or swap them and the sleep models fail.
//!
//! The chunk models check claims inside per-producer chunks (`ringlog_core::chunk`) over
//! `CHUNKY`, a 256-byte ring whose chunks are 128 bytes (a 16-byte header, two 48-byte frames,
//! 16 bytes over): producers claim with `Ring::claim_in_chunk`, and the consumer, a `Consumer`,
//! seals every open chunk it meets, at once (`Consumer::seal`, as the drain does for an idle
//! owner) or by trying to sleep there (`Consumer::sleep`). In every explored execution:
//! - at each chunk cursor exactly one of the owner's claim (or seal) CAS and the consumer's seal
//!   CAS wins: every record claimed before a seal is delivered exactly once, intact, each
//!   producer's in its order (across chunks, and against another producer's tail claims), and
//!   nothing is padded over;
//! - the ring ends consumed to its tail, every chunk sealed and its rest stepped over, and no
//!   frame is corrupt;
//! - an unwritten position inside a chunk is always explained by its owner's cursor (claimed
//!   there, or sealed there): the owner moves its cursor on to another chunk only once what it
//!   wrote in this one is visible. A claim there whose owner's intent does not name it has its
//!   header visible on a re-check, as for tail claims;
//! - a drain that sleeps behind a chunk it sealed is woken by the owner's next chunk claim: no
//!   lost wake-up, and no drain waiting for ever at an idle owner's open chunk.
//!
//! One chunk model runs over `ROOMY`, a 512-byte ring whose 256-byte chunks hold three frames:
//! there a producer's intent can run two frames ahead of the cursor the consumer read, and only
//! the Release of the intent store in `claim_inside` makes the first frame's header visible to
//! a consumer that reads the newer intent.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use ringlog_core::chunk::{ChunkFrame, OpenChunk};
use ringlog_core::frame::{check_word, encode_lengths, Kind, Word0};
use ringlog_core::layout::{self, off};
use ringlog_core::memory::{LoomMemory, Memory};
use ringlog_core::{
    Claim, ClaimError, Consumer, Frame, Futex, Geometry, Level, Next, RecordMeta, Ring,
    FRAME_HEADER_SIZE,
};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

const TINY: Geometry = Geometry {
    capacity: 128,
    max_record: 24,
    slots: 2,
};

/// The smallest ring with chunks: under `cfg(loom)` a chunk is half of it, 128 bytes, which
/// holds its 16-byte header and two 48-byte frames (8-byte payloads) with 16 bytes over, and a
/// frame of up to 64 bytes opens one (`chunk::chunk_frame_max`), so `max_record` stops there.
const CHUNKY: Geometry = Geometry {
    capacity: 256,
    max_record: 24,
    slots: 2,
};

/// A ring whose 256-byte chunks hold three 48-byte frames (8-byte payloads) after their header:
/// enough for a producer's intent to run two frames ahead of a cursor the consumer read.
const ROOMY: Geometry = Geometry {
    capacity: 512,
    max_record: 24,
    slots: 2,
};

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    // Payload copies and zeroing are a few loom operations per word; a consumer that waits
    // for a commit spins (with `yield_now`). Together they can pass loom's default 1000
    // branch points in one execution.
    b.max_branches = b.max_branches.max(10_000);
    b
}

/// A fresh ring of `geometry` whose (empty) head and tail stand at `at`, as after consuming up to
/// there.
fn ring_at(geometry: Geometry, at: u64) -> Ring<LoomMemory> {
    let mem = LoomMemory::new(geometry.segment_len() as usize);
    let ring = Ring::create(mem, geometry, 0, 0o600).unwrap();
    ring.word_at(off::TAIL).store(at, Relaxed);
    ring.word_at(off::HEAD).store(at, Relaxed);
    ring
}

/// What a shared futex does, for loom: `wait` sleeps only if the word still holds `expected`,
/// checked under the lock `wake` takes, so a wake-up between the check and the sleep is not lost.
/// (Timeouts are not modelled: a waiter sleeps until woken, so a lost wake-up is a deadlock.)
#[derive(Default)]
struct ModelFutex {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Futex for ModelFutex {
    fn wait(&self, word: &AtomicU32, expected: u32, _timeout: Duration) {
        let guard = self.lock.lock().unwrap();
        if word.load(Relaxed) == expected {
            drop(self.cv.wait(guard).unwrap());
        }
    }

    fn wake(&self, _word: &AtomicU32, _n: u32) {
        let _guard = self.lock.lock().unwrap();
        self.cv.notify_all();
    }
}

/// A ring, the futex producers wait on for space (`space_seq`) and the one the drain sleeps on
/// (`wake_seq`).
struct Shared {
    ring: Ring<LoomMemory>,
    space: ModelFutex,
    wake: ModelFutex,
}

/// A `TINY` ring at `at`, and its futexes.
fn shared_at(at: u64) -> Arc<Shared> {
    shared_of(TINY, at)
}

fn shared_of(geometry: Geometry, at: u64) -> Arc<Shared> {
    Arc::new(Shared {
        ring: ring_at(geometry, at),
        space: ModelFutex::default(),
        wake: ModelFutex::default(),
    })
}

/// The payload of record `n` of producer `slot`.
fn payload(slot: u16, n: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((slot as u8) << 6) | (n << 4) | (i as u8 & 0xf))
        .collect()
}

/// What a producer met.
#[derive(Debug, Default)]
struct Produced {
    /// Times it found the ring full.
    full: usize,
    /// Times `commit` said the drain sleeps, so it woke it.
    woke: usize,
}

/// Writes `count` records of `len` bytes as `Writer::write` does. On a full ring it does what the
/// writer's `Block` policy does, with the very same code (`Ring::claim_waiting`): register as a
/// waiter, try again, and only then sleep until the drain bumps `space_seq`. After a commit that
/// says the drain sleeps, it wakes the drain (`Ring::wake_drain`).
fn produce(sh: &Shared, slot: u16, count: u8, len: usize) -> Produced {
    produce_with(sh, slot, count, len, |head_cache| {
        sh.ring.claim(slot, len, head_cache)
    })
}

/// As `produce`, claiming as `Writer::write` does in a ring with chunks: inside the slot's open
/// chunk (`open`, the slot's `OpenChunk`), opening one from the tail when needed. A full ring
/// is met as `produce` meets it, by a wait and a claim from the tail, which is what the writer
/// does too: `claim_in_chunk` reports `Full` only after it sealed the chunk that had no room.
/// It never seals its last chunk: the caller decides whether it stays open (an idle owner).
fn produce_in_chunks(sh: &Shared, slot: u16, count: u8, len: usize, open: &OpenChunk) -> Produced {
    produce_with(sh, slot, count, len, |head_cache| {
        sh.ring.claim_in_chunk(slot, len, head_cache, open)
    })
}

/// The body of `produce`, claiming each record with `claim` (given the producer's head cache).
fn produce_with(
    sh: &Shared,
    slot: u16,
    count: u8,
    len: usize,
    claim: impl Fn(&AtomicU64) -> Result<Claim, ClaimError>,
) -> Produced {
    let ring = &sh.ring;
    let head_cache = AtomicU64::new(ring.head());
    let mut done = Produced::default();
    for n in 0..count {
        let claim = match claim(&head_cache) {
            Ok(c) => c,
            Err(ClaimError::Full) => {
                done.full += 1;
                ring.claim_waiting(&sh.space, slot, len, &head_cache, || Some(Duration::MAX))
                    .unwrap()
            }
            Err(e) => panic!("{e:?}"),
        };
        ring.write_payload(&claim, 0, &payload(slot, n, len));
        let meta = RecordMeta {
            payload_len: len as u32,
            level: Level::Info,
            ..RecordMeta::default()
        };
        if ring.commit(claim, &meta) {
            ring.wake_drain(&sh.wake);
            done.woke += 1;
        }
    }
    done
}

/// What the consumer saw.
#[derive(Debug, Default)]
struct Consumed {
    /// (position, slot, payload) of each record, in ring order.
    records: Vec<(u64, u16, Vec<u8>)>,
    paddings: usize,
    /// Times it found a claim with no visible header and no intent naming it (its owner had
    /// moved on), and so had to rely on the re-check.
    moved_on: usize,
}

/// Consumes until `records` records were seen, releasing each frame at once and waking
/// producers that wait for space. It polls (with `yield_now`) when the ring is empty or the
/// frame at its head is not committed yet: the only thread that spins.
fn consume(sh: &Shared, records: usize) -> Consumed {
    let ring = &sh.ring;
    let release = |from: u64, to: u64| {
        if ring.release_at(from, to) {
            ring.wake_space_waiters(&sh.space);
        }
    };
    let mut out = Consumed::default();
    let mut head = ring.head();
    let mut tail_cache = head;
    while out.records.len() < records {
        match ring.next_at(head, &mut tail_cache) {
            Next::Record { meta, span } => {
                let mut buf = vec![0; meta.payload_len as usize];
                ring.read_at(head, 0, &mut buf);
                out.records.push((head, meta.slot, buf));
                release(head, head + span);
                head += span;
            }
            Next::Padding { span } => {
                out.paddings += 1;
                release(head, head + span);
                head += span;
            }
            Next::Pending { slot: None, .. } => {
                // The claimer's header is not visible, but the tail says it claimed: its intent
                // must name `head`, unless it has moved on, in which case its header (written
                // before it moved on) must be visible now.
                if ring.claimants(head).next().is_none() {
                    out.moved_on += 1;
                    let again = ring.next_at(head, &mut tail_cache);
                    assert!(
                        !matches!(again, Next::Pending { slot: None, .. } | Next::Empty),
                        "unattributable claim at {head}: no intent names it and its header is \
                         not visible ({again:?})"
                    );
                }
                thread::yield_now();
            }
            Next::Pending { slot: Some(_), .. } | Next::Empty => thread::yield_now(),
            Next::Chunk { .. } => panic!("a chunk at {head}: these producers claim from the tail"),
            Next::Corrupt(c) => panic!("corrupt frame at {head}: {c}"),
        }
    }
    out
}

/// Checks `got` holds exactly the expected records, in ring (= claim) order per producer.
fn check(got: &Consumed, expected: &[(u16, u8, usize)]) {
    assert_eq!(got.records.len(), expected.len());
    for &(slot, n, len) in expected {
        let hits = got
            .records
            .iter()
            .filter(|(_, s, p)| *s == slot && *p == payload(slot, n, len))
            .count();
        assert_eq!(
            hits, 1,
            "record {n} of slot {slot} delivered {hits} times: {got:?}"
        );
    }
    for slot in 0..TINY.slots as u16 {
        let ns: Vec<u8> = got
            .records
            .iter()
            .filter(|r| r.1 == slot)
            .map(|r| (r.2[0] >> 4) & 3)
            .collect();
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "slot {slot} out of order: {ns:?}"
        );
    }
    assert!(got.records.windows(2).all(|w| w[0].0 < w[1].0));
}

/// The one word `release` zeroes, at region offset `capacity - 8`, is zero once everything is
/// released.
fn assert_last_word_zeroed(ring: &Ring<LoomMemory>) {
    let geometry = ring.geometry();
    let at = layout::data_offset(geometry.slots) + geometry.capacity as usize - 8;
    assert_eq!(
        ring.raw_memory().u64_at(at).load(Relaxed),
        0,
        "the word at capacity - 8 is not zeroed"
    );
}

/// Fills the region with what lap 0 could have left for a ring whose head stands in lap 1: two
/// committed 8-byte records (48-byte frames, slots 0 and 1, payload 0xee) at offsets 0 and 48,
/// with lap 0's check words, and a committed 32-byte padding at 96. The word at 120 is zero, as
/// the release of lap 0 left it.
fn leave_a_stale_lap(ring: &Ring<LoomMemory>) {
    let data = layout::data_offset(TINY.slots);
    let key = ring.frame_key();
    let word = |at: u64, value: u64| {
        ring.raw_memory()
            .u64_at(data + at as usize)
            .store(value, Relaxed)
    };
    for (at, slot) in [(0u64, 0u16), (48, 1)] {
        word(at, Word0::encode(48, true, Kind::Data, Level::Info, slot));
        word(at + 8, check_word(at, key));
        word(at + 32, encode_lengths(8, 0, 0));
        word(at + 40, u64::from_le_bytes([0xee; 8]));
    }
    word(96, Word0::encode(32, true, Kind::Padding, Level::None, 0));
    word(104, check_word(96, key));
}

/// Starts producer threads: `(slot, records, payload length)` each.
fn spawn_producers(
    sh: &Arc<Shared>,
    producers: &[(u16, u8, usize)],
) -> Vec<thread::JoinHandle<Produced>> {
    producers
        .iter()
        .map(|&(slot, count, len)| {
            let sh = sh.clone();
            thread::spawn(move || produce(&sh, slot, count, len))
        })
        .collect()
}

/// Two producers write one 8-byte record each (48-byte frames) into a ring whose head and
/// tail stand at 96: whichever claims first must wrap (32 bytes of padding, its record at the
/// start of the next lap), the other follows it; together they fill the ring exactly.
#[test]
fn wrap_around_with_two_producers() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_at(96);
        let producers = spawn_producers(&sh, &[(0, 1, 8), (1, 1, 8)]);
        let got = consume(&sh, 2);
        for p in producers {
            assert_eq!(
                p.join().unwrap().full,
                0,
                "the two records fit without waiting"
            );
        }
        check(&got, &[(0, 0, 8), (1, 0, 8)]);
        assert_eq!(got.paddings, 1, "exactly one wrap");
        assert_eq!(
            got.records[0].0, 128,
            "the first record starts the next lap"
        );
        assert_eq!(got.records[1].0, 128 + 48);
        assert_eq!(sh.ring.head(), 96 + 128);
        assert_last_word_zeroed(&sh.ring);
    });
    println!(
        "wrap_around_with_two_producers: {} executions",
        EXECUTIONS.load(Relaxed)
    );
}

/// Two producers write one 8-byte record each (48-byte frames) into a ring whose head and tail
/// stand at `at`, in lap 1, over what lap 0 left at the very offsets this lap's frames take
/// (`leave_a_stale_lap`): committed frames whose word 0 a consumer that read it before the check
/// word, or without the check word's Acquire, would take for this lap's, and deliver their stale
/// payload. The first claim wraps: its record starts lap 2 (position 256), the other follows.
fn wrap_over_a_stale_lap(at: u64) {
    builder().check(move || {
        let sh = shared_at(at);
        leave_a_stale_lap(&sh.ring);
        let producers = spawn_producers(&sh, &[(0, 1, 8), (1, 1, 8)]);
        let got = consume(&sh, 2);
        for p in producers {
            assert_eq!(p.join().unwrap().full, 0);
        }
        check(&got, &[(0, 0, 8), (1, 0, 8)]);
        assert_eq!(got.paddings, 1, "exactly one wrap");
        assert_eq!(got.records[0].0, 256);
        assert_eq!(sh.ring.head(), 256 + 96);
        assert_last_word_zeroed(&sh.ring);
    });
}

/// The wrap of `wrap_around_with_two_producers` a lap later, over a stale lap: a 32-byte padding
/// with a check word.
#[test]
fn wrap_around_over_a_stale_lap() {
    wrap_over_a_stale_lap(96 + 128);
}

/// A claim at region offset `capacity - 8` wraps with an 8-byte padding, the one frame with no
/// check word: its word 0 was zeroed by the last lap's release, and the producer stores it
/// (Release) after the record header behind it. Over a stale lap, as above.
#[test]
fn wrap_around_with_an_8_byte_padding_over_a_stale_lap() {
    wrap_over_a_stale_lap(120 + 128);
}

/// Producer 0 writes two 16-byte records, producer 1 one (56-byte frames) into an empty
/// 128-byte ring: only two fit, so the third claimer finds the ring full and must wait until
/// the consumer releases space and wakes it; its frame then wraps (16 bytes of padding).
#[test]
fn full_ring_then_retry_after_release() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    static SAW_FULL: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_at(0);
        let producers = spawn_producers(&sh, &[(0, 2, 16), (1, 1, 16)]);
        let got = consume(&sh, 3);
        let full: usize = producers.into_iter().map(|p| p.join().unwrap().full).sum();
        if full > 0 {
            SAW_FULL.fetch_add(1, Relaxed);
        }
        check(&got, &[(0, 0, 16), (0, 1, 16), (1, 0, 16)]);
        assert_eq!(got.paddings, 1, "the third frame wraps");
        assert_eq!(sh.ring.head(), 56 + 56 + 16 + 56);
        assert_last_word_zeroed(&sh.ring);
    });
    let (runs, full) = (EXECUTIONS.load(Relaxed), SAW_FULL.load(Relaxed));
    println!("full_ring_then_retry_after_release: {runs} executions, {full} saw the ring full");
    assert!(
        full > 0,
        "no explored execution found the ring full: the model misses the path"
    );
}

/// One producer aborts its claim while the other commits; the consumer sees a padding and the
/// one record, whatever the order of the claims.
#[test]
fn abort_and_commit_race() {
    builder().check(|| {
        let sh = shared_at(0);
        let aborter = {
            let sh = sh.clone();
            thread::spawn(move || {
                let head_cache = AtomicU64::new(0);
                let claim = sh.ring.claim(0, 8, &head_cache).unwrap();
                sh.ring.write_payload(&claim, 0, &[0xee; 8]);
                sh.ring.abort(claim);
            })
        };
        let committer = spawn_producers(&sh, &[(1, 1, 8)]);
        let mut got = consume(&sh, 1);
        aborter.join().unwrap();
        committer
            .into_iter()
            .for_each(|p| assert_eq!(p.join().unwrap().full, 0));
        // The padding may come after the record; drain it too.
        let ring = &sh.ring;
        let mut head = ring.head();
        let mut tail_cache = head;
        while head < ring.tail() {
            match ring.next_at(head, &mut tail_cache) {
                Next::Padding { span } => {
                    got.paddings += 1;
                    ring.release_at(head, head + span);
                    head += span;
                }
                other => panic!("expected the aborted claim's padding, got {other:?}"),
            }
        }
        check(&got, &[(1, 0, 8)]);
        assert_eq!(got.paddings, 1);
        assert_eq!(head, 2 * (FRAME_HEADER_SIZE as u64 + 8));
        assert_last_word_zeroed(ring);
    });
}

/// `LoomMemory`'s word-granular copies put bytes where the heap and mapped memories do.
#[test]
fn loom_memory_copies_bytes_at_any_offset_and_length() {
    loom::model(|| {
        let mem = LoomMemory::new(64);
        let src: Vec<u8> = (1..=23).collect();
        // SAFETY: single-threaded; nobody else touches the region.
        unsafe { mem.copy_in(5, &src) };
        let mut all = [0u8; 40];
        // SAFETY: as above.
        unsafe { mem.copy_out(0, &mut all) };
        let mut expected = [0u8; 40];
        expected[5..28].copy_from_slice(&src);
        assert_eq!(all, expected);
        let mut uninit = [std::mem::MaybeUninit::new(0xAAu8); 13];
        // SAFETY: as above.
        unsafe { mem.copy_out_uninit(3, &mut uninit) };
        // SAFETY: `copy_out_uninit` initialised every byte (and they were initialised before).
        let got: Vec<u8> = uninit.iter().map(|b| unsafe { b.assume_init() }).collect();
        assert_eq!(got, expected[3..16]);
        assert_eq!(
            mem.u64_at(off::CAPACITY).load(Relaxed),
            u64::from_le_bytes(expected[16..24].try_into().unwrap())
        );
    });
}

/// The attribution window, isolated: one producer commits a record at 0 and claims again at 48
/// while the consumer stands at 0. A consumer that finds the frame unwritten but the tail past it
/// must either find the producer's intent naming 0, or, if the producer has moved on to a newer
/// claim, see its header on a re-check (checked inside `consume`).
#[test]
fn pending_claim_is_attributable_when_its_owner_moves_on() {
    static MOVED_ON: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        let sh = shared_at(0);
        let producer = spawn_producers(&sh, &[(0, 2, 8)]);
        let got = consume(&sh, 2);
        producer
            .into_iter()
            .for_each(|p| assert_eq!(p.join().unwrap().full, 0));
        check(&got, &[(0, 0, 8), (0, 1, 8)]);
        MOVED_ON.fetch_add(got.moved_on, Relaxed);
    });
    let moved_on = MOVED_ON.load(Relaxed);
    println!(
        "pending_claim_is_attributable_when_its_owner_moves_on: the re-check ran {moved_on} times"
    );
    assert!(
        moved_on > 0,
        "no explored execution reached the window the model is about"
    );
}

/// Consumes until `records` records were seen, as the idle drain does: through the ring's one
/// `Consumer`, releasing what it read, and when the ring is empty, sleeping with
/// `Consumer::sleep` until a producer wakes it (the model futex has no timeout: a lost wake-up
/// is a deadlock). Polls only while a claim at its position is not committed yet. Returns what
/// it read and how many times it went to sleep.
fn consume_sleeping(sh: &Shared, records: usize) -> (Consumed, usize) {
    let mut consumer = Consumer::new(&sh.ring).expect("the ring's first consumer");
    let mut out = Consumed::default();
    let mut sleeps = 0;
    while out.records.len() < records {
        match consumer.peek() {
            Frame::Record(record) => {
                let mut buf = vec![0; record.meta().payload_len as usize];
                consumer.read_payload(&record, 0, &mut buf);
                out.records.push((record.pos(), record.meta().slot, buf));
                consumer.pass(&record);
            }
            Frame::Padding(skip) => {
                out.paddings += 1;
                consumer.skip(skip);
            }
            Frame::Empty => {
                consumer.sleep(&sh.wake, Duration::MAX);
                sleeps += 1;
                continue;
            }
            Frame::OpenChunk(_) => panic!("an open chunk: these producers claim from the tail"),
            Frame::Pending { .. } => {
                thread::yield_now();
                continue;
            }
            Frame::Corrupt(c) => panic!("corrupt frame at {}: {c}", consumer.position()),
        }
        if consumer.release() {
            sh.ring.wake_space_waiters(&sh.space);
        }
    }
    (out, sleeps)
}

/// Runs the sleep model with `producers` (`(slot, records, payload length)` each) and returns
/// how many explored executions had a producer wake the sleeping drain.
fn sleep_and_wake(producers: &'static [(u16, u8, usize)]) -> usize {
    static WOKE: AtomicUsize = AtomicUsize::new(0);
    WOKE.store(0, Relaxed);
    builder().check(move || {
        let sh = shared_at(0);
        let handles = spawn_producers(&sh, producers);
        let total = producers.iter().map(|p| p.1 as usize).sum();
        let (got, _sleeps) = consume_sleeping(&sh, total);
        let woke: usize = handles.into_iter().map(|p| p.join().unwrap().woke).sum();
        if woke > 0 {
            WOKE.fetch_add(1, Relaxed);
        }
        let expected: Vec<(u16, u8, usize)> = producers
            .iter()
            .flat_map(|&(slot, count, len)| (0..count).map(move |n| (slot, n, len)))
            .collect();
        check(&got, &expected);
        assert!(
            !sh.ring.drain_announced_sleep(),
            "the drain left its sleep announced"
        );
    });
    WOKE.load(Relaxed)
}

/// The lost-wake-up race: the drain finds the ring empty and goes to sleep while the producer
/// claims and commits two records; every commit that lands while the drain sleeps must wake it.
#[test]
fn a_sleeping_drain_is_woken_by_every_commit_it_could_miss() {
    let woke = sleep_and_wake(&[(0, 2, 8)]);
    println!("a_sleeping_drain_is_woken_by_every_commit_it_could_miss: {woke} executions woke it");
    assert!(
        woke > 0,
        "no explored execution had the producer wake the drain: the model misses the path"
    );
}

/// Two producers, one record each: only one of them wakes the drain per sleep (the first to
/// clear the flag); the other's record must still be read.
#[test]
fn a_sleeping_drain_is_woken_once_by_two_producers() {
    let woke = sleep_and_wake(&[(0, 1, 8), (1, 1, 8)]);
    println!("a_sleeping_drain_is_woken_once_by_two_producers: {woke} executions woke it");
    assert!(
        woke > 0,
        "no explored execution had a producer wake the drain: the model misses the path"
    );
}

// ------------------------------------------------------------------ chunk claims

/// What the consumer of the chunk models does where only its own action moves things on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Idle {
    /// Seals an open chunk at its read position at once (`Consumer::seal`), as the drain does
    /// for an owner that stopped claiming while records wait behind its chunk; polls (with
    /// `yield_now`) an empty ring.
    Seal,
    /// Calls `Consumer::sleep` at an empty ring and at an open chunk (where it seals instead of
    /// sleeping), as the idle drain does; producers wake it.
    Sleep,
    /// Polls (with `yield_now`) an empty ring and an open chunk: it relies on the owner to claim
    /// on or seal its chunk, as the drain does while the owner keeps writing.
    Wait,
}

/// What the consumer of the chunk models saw and did.
#[derive(Debug, Default)]
struct ChunkConsumed {
    got: Consumed,
    /// Chunk headers passed.
    chunks: usize,
    /// Its seals that won, and those that lost to the owner's claim or seal at the same cursor.
    sealed: usize,
    lost: usize,
    /// Seals that won while records were still to come: the owner's next claim had to find the
    /// chunk sealed and open another.
    sealed_early: usize,
    /// Times it found an open chunk while records were still to come.
    open_early: usize,
    /// Times it slept at an empty ring (`Idle::Sleep`), and those after it passed a chunk's
    /// header: behind a chunk it sealed, where only the owner's next chunk could wake it.
    sleeps: usize,
    sleeps_past_chunk: usize,
}

/// Whether the frame at `pos`, which `peek` just showed as a padding, is a chunk's header (kind
/// `Chunk`) rather than the padding over a chunk's rest or a wrap.
fn is_chunk_header(ring: &Ring<LoomMemory>, pos: u64) -> bool {
    let geometry = ring.geometry();
    let at = layout::data_offset(geometry.slots) + (pos % geometry.capacity) as usize;
    // Relaxed: `peek` loaded this word (Acquire) just now, and nobody stores it again before the
    // consumer releases it.
    let word = ring.raw_memory().u64_at(at).load(Relaxed);
    Word0::decode(word).is_some_and(|w| w.kind == Kind::Chunk as u8)
}

/// Consumes through the ring's one `Consumer`, releasing what it read after each frame (and
/// waking producers that wait for space), until `records` records were seen and the ring is
/// empty: every chunk it met was sealed, by its owner or by this consumer (`idle` says how), and
/// stepped over. Polls only while a claim at its position is not committed yet, and, with
/// `Idle::Seal`, while the ring is empty.
///
/// Inside a chunk whose header it passed, a claim with no visible header is always attributed to
/// the chunk's owner (`Pending { slot: Some(owner) }`, from the owner's cursor): the owner moves
/// its cursor to another chunk only after everything it wrote in this one (its frames' claims,
/// its padding) is visible. `Pending { slot: None }` there fails the model.
fn consume_chunks(sh: &Shared, records: usize, idle: Idle) -> ChunkConsumed {
    let ring = &sh.ring;
    let chunk_len = ring.chunk_len().expect("a ring with chunks");
    let mut consumer = Consumer::new(ring).expect("the ring's first consumer");
    let mut out = ChunkConsumed::default();
    // The chunk whose header it passed last.
    let mut chunk: Option<u64> = None;
    loop {
        let at = consumer.position();
        match consumer.peek() {
            Frame::Record(record) => {
                let mut buf = vec![0; record.meta().payload_len as usize];
                consumer.read_payload(&record, 0, &mut buf);
                out.got.records.push((at, record.meta().slot, buf));
                consumer.pass(&record);
            }
            Frame::Padding(skip) => {
                if is_chunk_header(ring, at) {
                    chunk = Some(at);
                    out.chunks += 1;
                } else {
                    out.got.paddings += 1;
                }
                consumer.skip(skip);
            }
            Frame::Empty if out.got.records.len() == records => break,
            Frame::Empty => {
                match idle {
                    Idle::Seal | Idle::Wait => thread::yield_now(),
                    Idle::Sleep => {
                        consumer.sleep(&sh.wake, Duration::MAX);
                        out.sleeps += 1;
                        out.sleeps_past_chunk += usize::from(chunk.is_some());
                    }
                }
                continue;
            }
            Frame::OpenChunk(cursor) => {
                if out.got.records.len() < records {
                    out.open_early += 1;
                }
                match idle {
                    Idle::Seal if consumer.seal(cursor) => {
                        out.sealed += 1;
                        if out.got.records.len() < records {
                            out.sealed_early += 1;
                        }
                    }
                    Idle::Seal => out.lost += 1,
                    Idle::Sleep => consumer.sleep(&sh.wake, Duration::MAX),
                    Idle::Wait => thread::yield_now(),
                }
                continue;
            }
            Frame::Pending { slot, len } => {
                let inside = chunk.filter(|&c| c < at && at < c + chunk_len);
                if let (Some(c), None) = (inside, len) {
                    out.got.moved_on += attribute_in_chunk(&mut consumer, c, slot, at);
                }
                thread::yield_now();
                continue;
            }
            Frame::Corrupt(c) => panic!("corrupt frame at {at}: {c}"),
        }
        if consumer.release() {
            ring.wake_space_waiters(&sh.space);
        }
    }
    out
}

/// Checks a claim at `at` inside the chunk at `chunk` that `consumer` found with no header
/// (`Pending { slot, len: None }`) is attributable, as the drain needs it to be: the chunk's
/// owner claimed there (its cursor is past `at`) or sealed the chunk there, never nobody; and a
/// claim its owner's intent does not name has its header visible on a re-check (the owner moved
/// on to a newer intent only after writing it). Returns 1 if it made the re-check, else 0.
fn attribute_in_chunk(
    consumer: &mut Consumer<&Ring<LoomMemory>>,
    chunk: u64,
    slot: Option<u16>,
    at: u64,
) -> usize {
    let Some(owner) = slot else {
        panic!(
            "unattributed claim at {at} inside the chunk at {chunk}: its owner's cursor neither \
             names it nor shows its header"
        )
    };
    let ring = *consumer.holder();
    if ring.chunk_frame(chunk, owner, at) != ChunkFrame::Claimed
        || ring.claimants(at).any(|s| s == owner)
    {
        return 0;
    }
    let again = consumer.peek();
    assert!(
        !matches!(again, Frame::Pending { len: None, .. }),
        "claim at {at} in the chunk at {chunk}: no intent names it and its header is not \
         visible ({again:?})"
    );
    1
}

/// What every chunk model checks once its threads are done: exactly the `expected` records,
/// intact, each producer's in its order; the ring consumed to its tail; no sleep left announced.
fn check_chunks(sh: &Shared, got: &ChunkConsumed, expected: &[(u16, u8, usize)]) {
    check(&got.got, expected);
    assert!(got.chunks > 0, "no record went into a chunk: {got:?}");
    assert_eq!(sh.ring.head(), sh.ring.tail(), "the ring is not consumed");
    assert!(
        !sh.ring.drain_announced_sleep(),
        "the drain left its sleep announced"
    );
    assert_last_word_zeroed(&sh.ring);
}

/// Model 1: one producer claims three 8-byte records (48-byte frames) in its chunk, then stops
/// without sealing it (an idle owner), while the consumer seals every open chunk it meets. The
/// first chunk holds two frames (16 + 48 + 48, 16 bytes over): the third record does not fit, so
/// the owner seals the chunk, writes the padding over its rest and opens a second chunk, unless
/// the consumer sealed the first one earlier (then the second record opens the second chunk, and
/// finds the first sealed under it if its claim CAS lost to the consumer's). At each cursor
/// exactly one of the owner's claim CAS (or seal CAS) and the consumer's seal CAS wins, so every
/// record claimed before a seal is delivered, and none is padded over.
///
/// What fails if the protocol is weakened: let both CASes win (either seal a load and a store)
/// and one overwrites the other's cursor: the consumer meets a claim no cursor explains, or a
/// cursor that does not match the chunk's frames; store the owner's padding check word Relaxed
/// and the consumer finds the check word with a zero word 0 (a corrupt frame); load the cursor
/// Relaxed in `chunk_frame`, store the new chunk's cursor Relaxed in `open_chunk`, or the chunk
/// header Relaxed, and the consumer meets an unwritten position inside a chunk that no cursor
/// explains; make the owner's claim CAS Relaxed and a consumer that sees the moved cursor finds
/// neither an intent naming the claim nor its header (`attribute_in_chunk`).
#[test]
fn chunk_claims_race_the_drain_sealing_an_idle_owners_chunk() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    static LOST: AtomicUsize = AtomicUsize::new(0);
    static EARLY: AtomicUsize = AtomicUsize::new(0);
    static RECHECKED: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_of(CHUNKY, 0);
        let producer = {
            let sh = sh.clone();
            thread::spawn(move || produce_in_chunks(&sh, 0, 3, 8, &OpenChunk::new()))
        };
        let got = consume_chunks(&sh, 3, Idle::Seal);
        producer.join().unwrap();
        check_chunks(&sh, &got, &[(0, 0, 8), (0, 1, 8), (0, 2, 8)]);
        if got.lost > 0 {
            LOST.fetch_add(1, Relaxed);
        }
        if got.sealed_early > 0 {
            EARLY.fetch_add(1, Relaxed);
        }
        RECHECKED.fetch_add(got.got.moved_on, Relaxed);
    });
    let (runs, lost, early, rechecked) = (
        EXECUTIONS.load(Relaxed),
        LOST.load(Relaxed),
        EARLY.load(Relaxed),
        RECHECKED.load(Relaxed),
    );
    println!(
        "chunk_claims_race_the_drain_sealing_an_idle_owners_chunk: {runs} executions, {lost} \
         with a seal lost to the owner, {early} with a seal before the last record; a claim \
         its owner's intent no longer named was re-checked {rechecked} times"
    );
    assert!(
        lost > 0 && early > 0 && rechecked > 0,
        "the model misses a path: no seal lost to the owner ({lost}), none won early ({early}), \
         or no owner moved on from a claim the consumer waited at ({rechecked})"
    );
}

/// Model 2: producer 0 claims two 8-byte records in chunks and then seals its chunk, as a thread
/// does before it gives its slot back (`seal_own_chunk`); producer 1 claims one from the tail,
/// before, after or between them; the consumer seals every open chunk it meets. Producer 0's
/// seal races the consumer's at the cursor after its last record; a chunk the consumer sealed
/// after producer 0's first record makes its second open another chunk, which may land behind
/// producer 1's record, or wrap into the next lap. Every record exactly once, each producer's in
/// its order.
///
/// What fails if the protocol is weakened: let both seals win (the consumer's a load and a
/// store) and the cursor no longer matches the chunk's frames (a corrupt frame); store the
/// owner's padding check word Relaxed and the consumer pairs it with a word 0 never written, or
/// left by the previous lap (a corrupt frame, or a stale record); store the chunk header
/// Relaxed and the consumer meets a claim no cursor explains (as in model 1).
#[test]
fn chunk_and_tail_claims_of_two_producers() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    static LOST: AtomicUsize = AtomicUsize::new(0);
    static SPLIT: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_of(CHUNKY, 0);
        let in_chunks = {
            let sh = sh.clone();
            thread::spawn(move || {
                let open = OpenChunk::new();
                produce_in_chunks(&sh, 0, 2, 8, &open);
                sh.ring.seal_own_chunk(0, &open);
            })
        };
        let from_tail = spawn_producers(&sh, &[(1, 1, 8)]);
        let got = consume_chunks(&sh, 3, Idle::Seal);
        in_chunks.join().unwrap();
        for p in from_tail {
            p.join().unwrap();
        }
        check_chunks(&sh, &got, &[(0, 0, 8), (0, 1, 8), (1, 0, 8)]);
        if got.lost > 0 {
            LOST.fetch_add(1, Relaxed);
        }
        let slots: Vec<u16> = got.got.records.iter().map(|r| r.1).collect();
        if slots == [0, 1, 0] {
            SPLIT.fetch_add(1, Relaxed);
        }
    });
    let (runs, lost, split) = (
        EXECUTIONS.load(Relaxed),
        LOST.load(Relaxed),
        SPLIT.load(Relaxed),
    );
    println!(
        "chunk_and_tail_claims_of_two_producers: {runs} executions, {lost} with a seal lost to \
         the owner, {split} with producer 1's record between producer 0's two"
    );
    assert!(
        lost > 0 && split > 0,
        "the model misses a path: no seal lost to the owner ({lost}), or producer 0's records \
         never apart ({split})"
    );
}

/// Model 3: the drain sleeps (`Consumer::sleep`) whenever it finds the ring empty or an open
/// chunk at its read position, where `sleep` seals the chunk instead (claims inside a chunk move
/// no tail, so the drain could not sleep there, and it would only wait on the idle owner); one
/// producer claims two 8-byte records in chunks, wakes the drain when `commit` says it sleeps,
/// as `Writer::write` does, and never seals its chunk. A chunk the drain sealed after the first
/// record makes the producer open another from the tail, and that claim must wake the drain
/// asleep behind the sealed chunk.
///
/// What fails if the protocol is weakened: let `Consumer::sleep` skip the seal at an open chunk
/// and the drain never gets past the idle owner's chunk (loom reports the livelock: the model
/// exceeds its branches); load the tail in `prepare_sleep` without SeqCst (the Dekker pair with
/// the chunk's tail claim, see the module docs) and the wake-up is lost (a loom deadlock); let
/// the drain's seal and the owner's claim both win, or store the chunk header Relaxed, and the
/// consumer reads a corrupt frame or an unattributed claim (as in model 1).
#[test]
fn a_sleeping_drain_seals_an_open_chunk_and_is_woken() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    static WOKE: AtomicUsize = AtomicUsize::new(0);
    static OPEN: AtomicUsize = AtomicUsize::new(0);
    static PAST_CHUNK: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_of(CHUNKY, 0);
        let producer = {
            let sh = sh.clone();
            thread::spawn(move || produce_in_chunks(&sh, 0, 2, 8, &OpenChunk::new()))
        };
        let got = consume_chunks(&sh, 2, Idle::Sleep);
        if producer.join().unwrap().woke > 0 {
            WOKE.fetch_add(1, Relaxed);
        }
        check_chunks(&sh, &got, &[(0, 0, 8), (0, 1, 8)]);
        if got.open_early > 0 {
            OPEN.fetch_add(1, Relaxed);
        }
        if got.sleeps_past_chunk > 0 {
            PAST_CHUNK.fetch_add(1, Relaxed);
        }
    });
    let (runs, woke, open, past) = (
        EXECUTIONS.load(Relaxed),
        WOKE.load(Relaxed),
        OPEN.load(Relaxed),
        PAST_CHUNK.load(Relaxed),
    );
    println!(
        "a_sleeping_drain_seals_an_open_chunk_and_is_woken: {runs} executions, {woke} woke the \
         drain, {open} met an open chunk before the last record, {past} slept behind a sealed \
         chunk"
    );
    assert!(
        woke > 0 && open > 0 && past > 0,
        "the model misses a path: no wake-up ({woke}), no open chunk mid-way ({open}), or no \
         sleep behind a sealed chunk ({past})"
    );
}

/// Model 4: one producer claims three 8-byte records in one chunk of a `ROOMY` ring (16 + 3 x 48
/// bytes of its 256) and then seals it, as before it gives its slot back; the consumer waits at
/// the open chunk for the owner, never sealing it. Its second and third claims are made inside
/// the chunk, each storing its intent before its cursor CAS. A consumer that finds the first
/// frame's header not yet visible reads the cursor (which may still show only the first claim)
/// and then the intent (which may already name the third): the owner moved on, so the first
/// header must be visible on the re-check. Every record exactly once, in its order.
///
/// What fails if the protocol is weakened: store the intent Relaxed in `claim_inside` and the
/// consumer can read the third frame's intent without seeing the first frame's header, which
/// the re-check then does not find (`attribute_in_chunk`), a path models 1-3 cannot reach with
/// two frames a chunk (there, a cursor past the first frame already orders its header).
#[test]
fn an_intent_two_frames_ahead_of_the_cursor_the_drain_read() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    static RECHECKED: AtomicUsize = AtomicUsize::new(0);
    static ONE_CHUNK: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        EXECUTIONS.fetch_add(1, Relaxed);
        let sh = shared_of(ROOMY, 0);
        let producer = {
            let sh = sh.clone();
            thread::spawn(move || {
                let open = OpenChunk::new();
                produce_in_chunks(&sh, 0, 3, 8, &open);
                sh.ring.seal_own_chunk(0, &open);
            })
        };
        let got = consume_chunks(&sh, 3, Idle::Wait);
        producer.join().unwrap();
        check_chunks(&sh, &got, &[(0, 0, 8), (0, 1, 8), (0, 2, 8)]);
        if got.chunks == 1 {
            ONE_CHUNK.fetch_add(1, Relaxed);
        }
        RECHECKED.fetch_add(got.got.moved_on, Relaxed);
    });
    let (runs, one_chunk, rechecked) = (
        EXECUTIONS.load(Relaxed),
        ONE_CHUNK.load(Relaxed),
        RECHECKED.load(Relaxed),
    );
    println!(
        "an_intent_two_frames_ahead_of_the_cursor_the_drain_read: {runs} executions, {one_chunk} \
         with the three records in one chunk; a claim its owner's intent no longer named was \
         re-checked {rechecked} times"
    );
    assert!(
        one_chunk == runs && rechecked > 0,
        "the model misses a path: records outside the one chunk ({one_chunk} of {runs}), or no \
         owner moved on from a claim the consumer waited at ({rechecked})"
    );
}

#[allow(dead_code)] // The models use part of it.
#[path = "common/raw_access.rs"]
mod raw_access;
use raw_access::RawAccess;
