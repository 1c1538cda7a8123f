//! The consumer's raw fast path, `Consumer::append_messages`: it must take exactly the frames
//! the frame-by-frame reader (`peek`, `read_payload`, `pass`) would take under the same limits,
//! produce the same bytes, and leave every other frame (pending, padding, large, corrupt) for
//! that reader.
#![cfg(not(loom))]

mod common;

use common::*;
use proptest::prelude::*;
use ringlog_core::frame::{check_word, LENGTHS_OFFSET};
use ringlog_core::layout::off;
use ringlog_core::memory::HeapMemory;
use ringlog_core::{Consumer, Frame, Level, MessageLimits, RecordMeta, Ring, FRAME_HEADER_SIZE};
use std::sync::atomic::{AtomicU64, Ordering};

/// Claims, fills and commits a record whose payload is `target` then `message`.
fn write_with_target(ring: &Ring<HeapMemory>, hc: &AtomicU64, target: &[u8], message: &[u8]) {
    let claim = ring
        .claim(1, target.len() + message.len(), hc)
        .expect("room");
    ring.write_payload(&claim, 0, target);
    ring.write_payload(&claim, target.len(), message);
    let meta = RecordMeta {
        payload_len: (target.len() + message.len()) as u32,
        target_len: target.len() as u16,
        level: Level::Info,
        ..RecordMeta::default()
    };
    let _ = ring.commit(claim, &meta);
}

const NO_LIMITS: MessageLimits = MessageLimits {
    out_len: usize::MAX,
    message_below: usize::MAX,
    unreleased_below: u64::MAX,
};

#[test]
fn a_run_comes_out_as_lines_and_stops_at_a_pending_claim() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write_with_target(&ring, &hc, b"app::db", b"no newline");
    write_with_target(&ring, &hc, b"", b"has one\n");
    write_with_target(&ring, &hc, b"t", b"");
    let pending = ring.claim(2, 5, &hc).unwrap();
    write_with_target(&ring, &hc, b"", b"after the claim");
    let mut consumer = Consumer::new(&ring).unwrap();
    let mut out = b"before|".to_vec();
    assert_eq!(consumer.append_messages(&mut out, NO_LIMITS), 3);
    assert_eq!(out, b"before|no newline\nhas one\n\n");
    assert_eq!(consumer.position(), pending.pos());
    assert!(matches!(consumer.peek(), Frame::Pending { .. }));
    assert_eq!(consumer.append_messages(&mut out, NO_LIMITS), 0);
    let _ = ring.commit(pending, &meta(0));
    assert_eq!(consumer.append_messages(&mut out, NO_LIMITS), 2);
    assert!(out.ends_with(b"has one\n\n\nafter the claim\n"));
    assert_eq!(consumer.peek(), Frame::Empty);
    consumer.release();
    assert_eq!(ring.head(), ring.tail());
}

#[test]
fn a_run_stops_before_what_does_not_fit_or_is_large_or_is_padding() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for message in [&b"0123456789\n"[..], b"abc", b"0123456789abcdef", b"x"] {
        write_with_target(&ring, &hc, b"", message);
    }
    let aborted = ring.claim(0, 40, &hc).unwrap();
    ring.abort(aborted);
    write_with_target(&ring, &hc, b"", b"y");
    let mut consumer = Consumer::new(&ring).unwrap();
    let mut out = Vec::new();
    let fits_two = MessageLimits {
        out_len: 11 + 4 + 16,
        ..NO_LIMITS
    };
    assert_eq!(consumer.append_messages(&mut out, fits_two), 2);
    assert_eq!(out, b"0123456789\nabc\n");
    let small_only = MessageLimits {
        message_below: 16,
        ..NO_LIMITS
    };
    assert_eq!(consumer.append_messages(&mut out, small_only), 0);
    let Frame::Record(large) = consumer.peek() else {
        panic!("the large record is left for peek")
    };
    assert_eq!(large.meta().payload_len, 16);
    consumer.pass(&large);
    assert_eq!(consumer.append_messages(&mut out, NO_LIMITS), 1);
    let Frame::Padding(skip) = consumer.peek() else {
        panic!("the aborted claim is left for peek")
    };
    consumer.skip(skip);
    let one_more = MessageLimits {
        unreleased_below: consumer.unreleased() + 1,
        ..NO_LIMITS
    };
    assert_eq!(consumer.append_messages(&mut out, one_more), 1);
    assert_eq!(out, b"0123456789\nabc\nx\ny\n");
}

/// What a test writes into the ring.
#[derive(Clone, Debug)]
enum Op {
    Record {
        target: usize,
        message: usize,
        newline: bool,
    },
    Abort(usize),
    /// A claim committed only after the consumer has read up to it.
    Pending(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..6, 0usize..300, any::<bool>()).prop_map(|(target, message, newline)| {
            Op::Record { target, message, newline }
        }),
        1 => (0usize..200).prop_map(Op::Abort),
        1 => (0usize..100).prop_map(Op::Pending),
    ]
}

/// One frame the way the drain reads frames one at a time: a record's message (and its
/// newline) if it is under `message_below` and fits, a padding skipped. False where it stops.
fn one_frame(
    consumer: &mut Consumer<&Ring<HeapMemory>>,
    out: &mut Vec<u8>,
    l: MessageLimits,
) -> bool {
    if consumer.unreleased() >= l.unreleased_below {
        return false;
    }
    match consumer.peek() {
        Frame::Record(r) => {
            let mut payload = vec![0; r.meta().payload_len as usize];
            consumer.read_payload(&r, 0, &mut payload);
            let message = &payload[r.meta().target_len as usize..];
            let newline = !message.ends_with(b"\n");
            if message.len() >= l.message_below
                || out.len() + message.len() + usize::from(newline) > l.out_len
            {
                return false;
            }
            out.extend_from_slice(message);
            if newline {
                out.push(b'\n');
            }
            consumer.pass(&r);
            true
        }
        Frame::Padding(skip) => {
            consumer.skip(skip);
            true
        }
        _ => false,
    }
}

/// Reads until something stops it, with the fast path first (`fast`) or frame by frame.
fn read(
    consumer: &mut Consumer<&Ring<HeapMemory>>,
    out: &mut Vec<u8>,
    l: MessageLimits,
    fast: bool,
) {
    loop {
        if fast && consumer.append_messages(out, l) > 0 {
            continue;
        }
        if !one_frame(consumer, out, l) {
            return;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Two rings given the same writes, one read with the fast path, one frame by frame, under
    /// the same limits, lap after lap (wraps, paddings, pending claims): the same bytes, the same
    /// position, every round.
    #[test]
    fn the_fast_path_takes_what_frame_by_frame_reading_takes(
        ops in prop::collection::vec(op(), 1..80),
        out_len in prop_oneof![Just(usize::MAX), 1usize..2000],
        message_below in prop_oneof![Just(usize::MAX), 1usize..300],
        unreleased_below in prop_oneof![Just(u64::MAX), 1u64..4096],
    ) {
        let limits = MessageLimits { out_len, message_below, unreleased_below };
        let rings = [heap_ring(SMALL), heap_ring(SMALL)];
        let caches = [AtomicU64::new(0), AtomicU64::new(0)];
        let mut consumers = [Consumer::new(&rings[0]).unwrap(), Consumer::new(&rings[1]).unwrap()];
        let mut seq = 0u8;
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let mut pending = [Vec::new(), Vec::new()];
            let mut wrote = false;
            while let Some(op) = ops.peek() {
                let len = match op {
                    Op::Record { target, message, .. } => target + message,
                    Op::Abort(n) | Op::Pending(n) => *n,
                };
                if rings[0].tail() - rings[0].head() + (FRAME_HEADER_SIZE + len) as u64 + 64 > 2048 {
                    break;
                }
                for (i, ring) in rings.iter().enumerate() {
                    match *op {
                        Op::Record { target, message, newline } => {
                            let mut bytes: Vec<u8> = (0..target + message)
                                .map(|k| seq.wrapping_add(k as u8) | 0x40)
                                .collect();
                            if newline && message > 0 {
                                bytes[target + message - 1] = b'\n';
                            }
                            write_with_target(ring, &caches[i], &bytes[..target], &bytes[target..]);
                        }
                        Op::Abort(n) => ring.abort(ring.claim(0, n, &caches[i]).unwrap()),
                        Op::Pending(n) => pending[i].push(ring.claim(2, n, &caches[i]).unwrap()),
                    }
                }
                seq = seq.wrapping_add(7);
                wrote = true;
                ops.next();
            }
            if !wrote {
                // What is left in the rings is something the limits never take.
                break;
            }
            loop {
                let mut outs = [Vec::new(), Vec::new()];
                for (i, consumer) in consumers.iter_mut().enumerate() {
                    read(consumer, &mut outs[i], limits, i == 0);
                }
                prop_assert_eq!(&outs[0], &outs[1]);
                prop_assert_eq!(consumers[0].position(), consumers[1].position());
                let moved = consumers[0].unreleased() > 0;
                for c in &mut consumers {
                    c.release();
                }
                // A pending claim is committed once the readers have stopped in front of it
                // (or have stopped for good).
                let mut committed = false;
                for (i, claims) in pending.iter_mut().enumerate() {
                    if !claims.is_empty() && (!moved || claims[0].pos() == consumers[i].position()) {
                        let _ = rings[i].commit(claims.remove(0), &meta(0));
                        committed = true;
                    }
                }
                if !moved && !committed {
                    break;
                }
            }
        }
    }

    /// Garbage at the head, with any tail within reason: the fast path takes a frame only if
    /// `peek` calls it a record, and then exactly its message.
    #[test]
    fn the_fast_path_takes_garbage_only_where_peek_sees_a_record(
        lap in 0u64..4,
        index in (0u64..512).prop_map(|w| w * 8),
        word0 in prop_oneof![
            1 => any::<u64>(),
            3 => (prop_oneof![3 => 0i32..1100, 1 => -1100i32..0], prop_oneof![3 => Just(1u8), 1 => 0u8..4], 0u16..6)
                .prop_map(|(len, kind, slot)| raw_word0(len, kind, 0, slot)),
        ],
        word3 in prop_oneof![
            1 => any::<u64>(),
            3 => (0u64..1100, 0u64..40).prop_map(|(payload, target)| payload | target << 32),
        ],
        ahead in prop_oneof![3 => (0u64..600).prop_map(|w| w * 8), 1 => 0u64..5000, 1 => any::<u64>()],
        check_lag in prop_oneof![3 => Just(0u64), 1 => Just(4096u64), 1 => any::<u64>()],
    ) {
        let ring = heap_ring(SMALL);
        let head = lap * 4096 + index;
        poke(&ring, head, word0);
        if index != 4088 {
            // This lap's check word, an earlier lap's, or anything.
            let check = check_word(head.wrapping_sub(check_lag), ring.frame_key());
            poke(&ring, head + 8, check);
        }
        poke(&ring, head + LENGTHS_OFFSET as u64, word3);
        ring.word_at(off::HEAD).store(head, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(head.wrapping_add(ahead), Ordering::Relaxed);
        let mut consumer = Consumer::new(&ring).unwrap();
        let mut out = Vec::new();
        let one = MessageLimits { unreleased_below: 1, ..NO_LIMITS };
        let took = consumer.append_messages(&mut out, one);
        let after = consumer.position();
        consumer.rewind();
        match consumer.peek() {
            Frame::Record(r) if took == 1 => {
                prop_assert_eq!(after, head + r.span());
                let mut payload = vec![0; r.meta().payload_len as usize];
                consumer.read_payload(&r, 0, &mut payload);
                let message = &payload[r.meta().target_len as usize..];
                prop_assert_eq!(&out[..message.len()], message);
            }
            _ => {
                prop_assert_eq!(took, 0);
                prop_assert_eq!(after, head);
                prop_assert!(out.is_empty());
            }
        }
    }
}
