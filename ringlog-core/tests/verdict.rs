//! The verdict on a claim that does not commit, run as the drain runs it
//! (`Consumer::pending_verdict_with`, the code behind `pending_verdict`), over a heap ring and a
//! model of liveness in place of the OFD locks: a dead owner's claim is skipped to its end, a
//! live owner's never, a claim without a header is charged to the slot whose intent names it,
//! and every slot held for a verdict is let go.
#![cfg(not(loom))]

mod common;

use common::*;
use ringlog_core::abandon::Liveness;
use ringlog_core::frame::{check_word, Word0};
use ringlog_core::layout::{self, off, slot_off};
use ringlog_core::memory::HeapMemory;
use ringlog_core::{Claim, Consumer, Frame, Kind, Level, PendingVerdict, Ring};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Liveness as the test says: `dead` slots' owners are dead. Records which slots the verdict
/// held (it may only hold dead ones) and which it let go.
#[derive(Default)]
struct Model {
    dead: Vec<u16>,
    held: RefCell<Vec<u16>>,
    let_go: RefCell<Vec<u16>>,
}

impl Model {
    fn dead(slots: &[u16]) -> Model {
        Model {
            dead: slots.to_vec(),
            ..Model::default()
        }
    }

    /// Every hold was let go, once.
    fn assert_balanced(&self) {
        assert_eq!(
            *self.held.borrow(),
            *self.let_go.borrow(),
            "holds and releases"
        );
    }
}

impl Liveness for Model {
    fn hold_if_dead(&self, slot: u16) -> bool {
        let dead = self.dead.contains(&slot);
        if dead {
            self.held.borrow_mut().push(slot);
        }
        dead
    }
    fn let_go(&self, slot: u16) {
        assert!(
            self.held.borrow().contains(&slot),
            "slot {slot} let go without a hold"
        );
        self.let_go.borrow_mut().push(slot);
    }
}

/// The frame at the consumer's read position, which must be a pending claim.
fn pending(consumer: &mut Consumer<&Ring<HeapMemory>>) -> (Option<u16>, Option<u32>) {
    match consumer.peek() {
        Frame::Pending { slot, len } => (slot, len),
        other => panic!("a pending claim, found {other:?}"),
    }
}

/// The payload of the record at the read position.
fn record_payload(consumer: &mut Consumer<&Ring<HeapMemory>>) -> Vec<u8> {
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    let mut buf = vec![0; record.meta().payload_len as usize];
    consumer.read_payload(&record, 0, &mut buf);
    buf
}

/// Slot 3's owner claimed 0..64 and stopped before writing the frame header: its intent names
/// position 0 and the tail is past the claim.
fn claim_without_header(ring: &Ring<HeapMemory>) {
    ring.word_at(layout::slot_offset(3) + slot_off::INTENT)
        .store(1, Ordering::Relaxed); // position 0, plus one
    ring.word_at(off::TAIL).store(64, Ordering::Relaxed);
}

/// Slot 3's owner, slow in `claim_without_header`, writes its (claimed, uncommitted) header.
fn write_slow_header(ring: &Ring<HeapMemory>) {
    let word0 = Word0::encode(64, false, Kind::Data, Level::Info, 3);
    ring.word_at(data_word_offset(ring, 0))
        .store(word0, Ordering::Relaxed);
    ring.word_at(data_word_offset(ring, 8))
        .store(check_word(0, ring.frame_key()), Ordering::Release);
}

/// Slot 3 claims 20 bytes at 0 (header written, not committed), then slot 1 commits "later"
/// behind it.
fn claim_then_a_later_record(ring: &Ring<HeapMemory>) -> Claim {
    let hc = AtomicU64::new(0);
    let claim = ring.claim(3, 20, &hc).unwrap();
    write(ring, 1, &hc, b"later").unwrap();
    claim
}

#[test]
fn a_live_owners_claim_is_never_skipped() {
    let ring = heap_ring(SMALL);
    let claim = claim_then_a_later_record(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    let liveness = Model::dead(&[1]);
    for _ in 0..3 {
        let (slot, len) = pending(&mut consumer);
        assert_eq!(
            consumer.pending_verdict_with(slot, len, &liveness),
            PendingVerdict::Alive(3)
        );
    }
    assert!(liveness.held.borrow().is_empty(), "a live slot is not held");
    ring.write_payload(&claim, 0, &[b'x'; 20]);
    let _ = ring.commit(claim, &meta(20));
    assert_eq!(record_payload(&mut consumer), [b'x'; 20]);
}

#[test]
fn a_dead_owners_claim_is_skipped_to_its_end() {
    let ring = heap_ring(SMALL);
    let _dead = claim_then_a_later_record(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    let liveness = Model::dead(&[3]);
    let (slot, len) = pending(&mut consumer);
    assert_eq!((slot, len), (Some(3), Some(60)));
    let PendingVerdict::Abandoned { skip, owner, pid } =
        consumer.pending_verdict_with(slot, len, &liveness)
    else {
        panic!("the dead owner's claim is abandoned")
    };
    assert_eq!((skip.pos(), skip.len()), (0, span_of(20)));
    assert_eq!((owner, pid), (Some(3), ring.slot_info(3).pid));
    assert_eq!(*liveness.held.borrow(), [3]);
    liveness.assert_balanced();
    consumer.skip(skip);
    assert_eq!(record_payload(&mut consumer), b"later");
}

#[test]
fn a_claim_without_header_is_charged_to_the_slot_whose_intent_names_it() {
    let ring = heap_ring(SMALL);
    claim_without_header(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    assert_eq!(pending(&mut consumer), (None, None));

    let alive = Model::dead(&[0, 1, 2]);
    assert_eq!(
        consumer.pending_verdict_with(None, None, &alive),
        PendingVerdict::Alive(3),
        "its owner is alive: wait"
    );
    alive.assert_balanced();

    let dead = Model::dead(&[3]);
    let PendingVerdict::Abandoned { skip, owner, .. } =
        consumer.pending_verdict_with(None, None, &dead)
    else {
        panic!("the dead owner's claim is abandoned")
    };
    assert_eq!((skip.pos(), skip.len(), owner), (0, 64, Some(3)));
    dead.assert_balanced();
    consumer.skip(skip);
    assert_eq!(consumer.peek(), Frame::Empty);
}

#[test]
fn a_header_written_while_the_verdict_looks_is_looked_at_again() {
    let ring = heap_ring(SMALL);
    claim_without_header(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    assert_eq!(pending(&mut consumer), (None, None));
    // The owner was only slow: it writes its (claimed) header now.
    write_slow_header(&ring);
    let liveness = Model::dead(&[3]);
    assert_eq!(
        consumer.pending_verdict_with(None, None, &liveness),
        PendingVerdict::Changed
    );
    assert!(
        liveness.held.borrow().is_empty(),
        "nothing decided, nothing held"
    );
    assert_eq!(pending(&mut consumer), (Some(3), Some(64)));
}

#[test]
fn a_claim_committed_just_before_its_owner_died_is_delivered_not_skipped() {
    let ring = heap_ring(SMALL);
    let claim = claim_then_a_later_record(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    let (slot, len) = pending(&mut consumer);
    assert_eq!((slot, len), (Some(3), Some(60)));
    let liveness = ActsThenDies::new(
        || {
            ring.write_payload(&claim, 0, &[b'x'; 20]);
            let _ = ring.commit(claim, &meta(20));
        },
        Model::dead(&[3]),
    );
    assert_eq!(
        consumer.pending_verdict_with(slot, len, &liveness),
        PendingVerdict::Changed,
        "the record was committed: nothing to skip"
    );
    liveness.then.assert_balanced();
    assert_eq!(record_payload(&mut consumer), [b'x'; 20]);
}

#[test]
fn a_header_written_just_before_its_owner_died_is_looked_at_again() {
    let ring = heap_ring(SMALL);
    claim_without_header(&ring);
    let mut consumer = Consumer::new(&ring).unwrap();
    assert_eq!(pending(&mut consumer), (None, None));
    let liveness = ActsThenDies::new(|| write_slow_header(&ring), Model::dead(&[3]));
    assert_eq!(
        consumer.pending_verdict_with(None, None, &liveness),
        PendingVerdict::Changed,
        "decided on a frame that changed meanwhile"
    );
    liveness.then.assert_balanced();
    // The next look sees the header, and the verdict then skips the whole claimed frame.
    assert_eq!(pending(&mut consumer), (Some(3), Some(64)));
    let dead = Model::dead(&[3]);
    let PendingVerdict::Abandoned { skip, .. } =
        consumer.pending_verdict_with(Some(3), Some(64), &dead)
    else {
        panic!("the dead owner's claim is abandoned")
    };
    assert_eq!((skip.pos(), skip.len()), (0, 64));
}
