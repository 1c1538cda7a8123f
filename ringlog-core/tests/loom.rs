//! loom models of the claim / commit / consume protocol: two producer threads and one consumer
//! thread over a 128-byte ring (`MIN_CAPACITY` under `cfg(loom)`), with every shared word a loom
//! atomic (`LoomMemory`), so loom explores the interleavings and the weak-memory outcomes of
//! claims, header and check-word writes, payload copies, commits, paddings and head moves.
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
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use ringlog_core::frame::{check_word, encode_lengths, Kind, Word0};
use ringlog_core::layout::{self, off};
use ringlog_core::memory::{LoomMemory, Memory};
use ringlog_core::{
    ClaimError, Consumer, Frame, Futex, Geometry, Level, Next, RecordMeta, Ring, FRAME_HEADER_SIZE,
};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

const TINY: Geometry = Geometry {
    capacity: 128,
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

/// A fresh ring whose (empty) head and tail stand at `at`, as after consuming up to there.
fn ring_at(at: u64) -> Ring<LoomMemory> {
    let mem = LoomMemory::new(TINY.segment_len() as usize);
    let ring = Ring::create(mem, TINY, 0, 0o600).unwrap();
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

fn shared_at(at: u64) -> Arc<Shared> {
    Arc::new(Shared {
        ring: ring_at(at),
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
    let ring = &sh.ring;
    let head_cache = AtomicU64::new(ring.head());
    let mut done = Produced::default();
    for n in 0..count {
        let claim = match ring.claim(slot, len, &head_cache) {
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
    let at = layout::data_offset(TINY.slots) + TINY.capacity as usize - 8;
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
    let mut consumer = Consumer::new(&sh.ring)
        .ok()
        .expect("the ring's first consumer");
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

#[allow(dead_code)] // The models use part of it.
#[path = "common/raw_access.rs"]
mod raw_access;
use raw_access::RawAccess;
