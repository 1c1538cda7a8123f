//! The consumer typestate: one `Consumer` per ring, and the frames it hands out are the only
//! tokens that read payloads, move it on or get bytes in place; a token of another consumer,
//! or of a released frame, is refused (a panic, never a read of bytes a producer may be
//! writing).

mod common;

use common::*;
use ringlog_core::layout;
use ringlog_core::{Consumer, Frame};
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn one_consumer_per_ring_while_it_lives() {
    let ring = heap_ring(SMALL);
    let first = Consumer::new(&ring).expect("the first consumer");
    assert!(Consumer::new(&ring).is_err(), "a second one is refused");
    drop(first);
    assert!(
        Consumer::new(&ring).is_ok(),
        "free again once the first is gone"
    );
}

#[test]
fn a_consumer_reads_passes_and_releases_in_order() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"one").unwrap();
    write(&ring, 1, &hc, b"two!").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let mut got = Vec::new();
    while let Frame::Record(record) = consumer.peek() {
        let mut buf = vec![0; record.meta().payload_len as usize];
        consumer.read_payload(&record, 0, &mut buf);
        got.push(buf);
        consumer.pass(&record);
    }
    assert_eq!(got, [b"one".to_vec(), b"two!".to_vec()]);
    assert_eq!(ring.head(), 0, "nothing released before `release`");
    assert!(!consumer.release());
    assert_eq!(ring.head(), ring.tail());
    assert_eq!(consumer.peek(), Frame::Empty);
}

#[test]
fn rewind_reads_the_unreleased_frames_again() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"again").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(first) = consumer.peek() else {
        panic!("a record")
    };
    consumer.pass(&first);
    consumer.rewind();
    assert_eq!(consumer.peek(), Frame::Record(first));
}

#[test]
#[should_panic(expected = "another consumer, or released")]
fn a_token_of_another_consumer_is_refused() {
    let a = heap_ring(SMALL);
    let b = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&a, 0, &hc, b"ring a").unwrap();
    let hc = AtomicU64::new(0);
    write(&b, 0, &hc, b"ring b").unwrap();
    let mut ca = Consumer::new(&a).unwrap();
    let cb = Consumer::new(&b).unwrap();
    let Frame::Record(record) = ca.peek() else {
        panic!("a record")
    };
    let mut buf = [0u8; 6];
    cb.read_payload(&record, 0, &mut buf);
}

#[test]
#[should_panic(expected = "another consumer, or released")]
fn a_released_frame_reads_nothing() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"gone").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    consumer.pass(&record);
    consumer.release();
    let mut buf = [0u8; 4];
    consumer.read_payload(&record, 0, &mut buf);
}

#[test]
#[should_panic(expected = "payload read outside the record")]
fn a_read_past_the_payload_is_refused() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"four").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    let mut buf = [0u8; 8];
    consumer.read_payload(&record, 0, &mut buf);
}

#[test]
#[should_panic(expected = "not at this consumer's read position")]
fn passing_a_frame_twice_is_refused() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"once").unwrap();
    write(&ring, 0, &hc, b"twice").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    consumer.pass(&record);
    consumer.pass(&record);
}

#[test]
fn only_a_provably_corrupt_tail_is_put_back() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"read").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    consumer.pass(&record);
    // A claim in flight behind a sound tail: moving the tail back to the read position would
    // hand its space to the next claim while it is written.
    let in_flight = ring.claim(1, 20, &hc).unwrap();
    let sound = ring.tail();
    assert!(!consumer.repair_tail(sound), "a sound tail is refused");
    assert_eq!(ring.tail(), sound);
    ring.write_payload(&in_flight, 0, &[b'x'; 20]);
    let _ = ring.commit(in_flight, &meta(20));

    // Garbage (misaligned, far ahead, or behind the read position) is put back at it.
    let read = record.pos() + record.span();
    for garbage in [sound + 3, read + 2 * SMALL.capacity, read - 8] {
        ring.word_at(layout::off::TAIL)
            .store(garbage, Ordering::Relaxed);
        assert!(consumer.repair_tail(garbage), "tail {garbage}");
        assert_eq!(ring.tail(), read, "tail {garbage}");
    }
}
