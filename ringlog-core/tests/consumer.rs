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

/// Reads every committed record at the consumer's position; returns how many.
fn read_all(consumer: &mut Consumer<&ringlog_core::Ring<ringlog_core::memory::HeapMemory>>) -> u32 {
    let mut n = 0;
    while let Frame::Record(record) = consumer.peek() {
        consumer.pass(&record);
        n += 1;
    }
    n
}

#[test]
fn ranges_handed_off_are_released_on_another_thread_in_order_while_reading_goes_on() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"first").unwrap();
    write(&ring, 0, &hc, b"second").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let releaser = consumer.releaser();
    assert_eq!(read_all(&mut consumer), 2);
    let a = consumer.hand_off();
    assert_eq!((a.start(), a.end()), (0, ring.tail()));
    write(&ring, 0, &hc, b"third").unwrap();
    assert_eq!(read_all(&mut consumer), 1);
    let b = consumer.hand_off();
    assert_eq!(
        consumer.unreleased(),
        ring.tail(),
        "both ranges count until released"
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(!releaser.release(a));
            assert_eq!(ring.head(), b.start());
            assert!(!releaser.release(b));
        });
    });
    assert_eq!(ring.head(), ring.tail());
    assert_eq!(consumer.unreleased(), 0);
    drop(consumer);
    assert!(
        Consumer::new(&ring).is_err(),
        "a releaser keeps the ring's consumer place taken"
    );
    drop(releaser);
    assert!(Consumer::new(&ring).is_ok());
}

#[test]
#[should_panic(expected = "in the order they were handed off")]
fn a_range_released_before_an_earlier_one_is_refused() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let mut consumer = Consumer::new(&ring).unwrap();
    let releaser = consumer.releaser();
    write(&ring, 0, &hc, b"first").unwrap();
    read_all(&mut consumer);
    let _a = consumer.hand_off();
    write(&ring, 0, &hc, b"second").unwrap();
    read_all(&mut consumer);
    let b = consumer.hand_off();
    releaser.release(b);
}

#[test]
#[should_panic(expected = "another consumer, or released")]
fn a_consumer_refuses_the_tokens_of_a_range_it_handed_off() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"handed").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let Frame::Record(record) = consumer.peek() else {
        panic!("a record")
    };
    consumer.pass(&record);
    let _range = consumer.hand_off();
    let mut buf = [0u8; 6];
    consumer.read_payload(&record, 0, &mut buf);
}

#[test]
#[should_panic(expected = "a range handed off is not released")]
fn the_consumer_cannot_release_past_a_range_still_out() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"out").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    read_all(&mut consumer);
    let _range = consumer.hand_off();
    write(&ring, 0, &hc, b"more").unwrap();
    read_all(&mut consumer);
    consumer.release();
}

#[test]
fn a_range_taken_back_is_read_again() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, b"retry").unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let releaser = consumer.releaser();
    assert_eq!(read_all(&mut consumer), 1);
    let range = consumer.hand_off();
    consumer.take_back(range);
    assert_eq!(ring.head(), 0, "nothing released");
    assert_eq!(read_all(&mut consumer), 1, "the record again");
    assert!(!releaser.release(consumer.hand_off()));
    assert_eq!(ring.head(), ring.tail());
}

#[test]
#[should_panic(expected = "outside the range handed off")]
fn an_in_place_piece_resolves_only_through_the_range_that_holds_it() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, &[b'x'; 512]).unwrap();
    write(&ring, 0, &hc, &[b'y'; 512]).unwrap();
    let mut consumer = Consumer::new(&ring).unwrap();
    let releaser = consumer.releaser();
    let Frame::Record(first) = consumer.peek() else {
        panic!("a record")
    };
    let x = consumer
        .in_place(&first, 0, 512)
        .expect("heap memory hands out pointers");
    consumer.pass(&first);
    let a = consumer.hand_off();
    let Frame::Record(second) = consumer.peek() else {
        panic!("a record")
    };
    let y = consumer.in_place(&second, 0, 512).unwrap();
    consumer.pass(&second);
    let b = consumer.hand_off();
    let px = releaser.in_place_ptr(&a, &x);
    // SAFETY: a pointer to 512 unreleased payload bytes, read by this thread only.
    assert_eq!(unsafe { px.read() }, b'x');
    // SAFETY: as above.
    assert_eq!(unsafe { releaser.in_place_ptr(&b, &y).read() }, b'y');
    releaser.in_place_ptr(&b, &x);
}
