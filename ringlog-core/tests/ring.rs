//! The ring protocol over a heap region, one step at a time: framing, alignment, wrap-around,
//! abort, full and too-large claims, check words against what earlier laps left, pending claims
//! (with and without a written header), claim attribution, and corrupt frames the consumer must
//! report without panicking.
#![cfg(not(loom))]

mod common;

use common::*;
use proptest::prelude::*;
use ringlog_core::frame::{check_word, Word0, FRAME_HEADER_SIZE, LENGTHS_OFFSET};
use ringlog_core::layout::{self, off, slot_off, LAYOUT_VERSION, NO_INTENT};
use ringlog_core::memory::{HeapMemory, Memory};
use ringlog_core::Futex;
use ringlog_core::{
    ClaimError, Consumer, Corruption, Frame, Geometry, GeometryError, Kind, LayoutError, Level,
    Next, RecordMeta, Ring, SlotState,
};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

// ------------------------------------------------------------------ framing

#[test]
fn committed_record_round_trips_header_and_payload() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let claim = ring.claim(2, 11, &hc).unwrap();
    assert_eq!(claim.pos(), 0);
    assert_eq!(claim.capacity(), 11);
    ring.write_payload(&claim, 0, b"app");
    ring.write_payload(&claim, 3, b"hello!!!");
    let meta = RecordMeta {
        timestamp_ns: 1_700_000_000_123_456_789,
        pid: 4242,
        tid: 4243,
        level: Level::Warn,
        payload_len: 11,
        target_len: 3,
        flags: 0x8001,
        slot: 0, // ignored by commit: the slot comes from the claim
    };
    let _ = ring.commit(claim, &meta);

    let mut tail_cache = 0;
    let Next::Record { meta: got, span } = ring.next_at(0, &mut tail_cache) else {
        panic!("expected a record")
    };
    assert_eq!(got, RecordMeta { slot: 2, ..meta });
    assert_eq!(span, 56, "40-byte header + 11 bytes, rounded up to 8");
    let mut payload = [0u8; 11];
    ring.read_at(0, 0, &mut payload);
    assert_eq!(&payload, b"apphello!!!");
    let mut message = [0u8; 8];
    ring.read_at(0, 3, &mut message);
    assert_eq!(&message, b"hello!!!");
    let mut consumer = Consumer::new(&ring).expect("the only consumer");
    let Frame::Record(record) = consumer.peek() else {
        panic!("expected a record")
    };
    assert_eq!(
        (record.pos(), record.span(), *record.meta()),
        (0, span, got)
    );
    let mut out = b"> ".to_vec();
    consumer.append_payload(&record, 3, 8, &mut out);
    assert_eq!(out, b"> hello!!!", "appended after what the buffer held");

    consumer.pass(&record);
    assert!(!consumer.release(), "nobody waits for space");
    assert_eq!(ring.head(), 56);
    assert_eq!(ring.tail(), 56);
    assert_eq!(ring.next_at(56, &mut tail_cache), Next::Empty);
    assert_eq!(ring.slot_info(2).written, 1);
    assert_eq!(ring.slot_info(1).written, 0);
}

#[test]
fn records_start_at_8_byte_aligned_positions() {
    let ring = heap_ring(Geometry {
        capacity: 8192,
        ..SMALL
    });
    let hc = AtomicU64::new(0);
    let mut expect = 0;
    for len in 0..=40usize {
        let payload = vec![len as u8; len];
        let pos = write(&ring, 0, &hc, &payload).unwrap();
        assert_eq!(pos, expect, "payload of {len} bytes");
        assert_eq!(pos % layout::RECORD_ALIGN, 0);
        expect += span_of(len);
    }
    assert_eq!(ring.tail(), expect);
    let seen = drain(&ring);
    assert_eq!(seen.len(), 41);
    for (len, s) in seen.iter().enumerate() {
        assert_eq!(
            s,
            &Seen::Record {
                slot: 0,
                payload: vec![len as u8; len]
            }
        );
    }
}

#[test]
fn unaligned_frame_tail_bytes_do_not_leak_into_the_next_record() {
    // A 1-byte payload leaves 7 bytes of slack before the next frame; they must stay zero and
    // the next record must not be affected by them.
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    write(&ring, 0, &hc, &[0xff]).unwrap();
    write(&ring, 0, &hc, &[0xee; 9]).unwrap();
    assert_eq!(
        peek(&ring, 40) & !0xff,
        0,
        "slack after a 1-byte payload is zero"
    );
    assert_eq!(payloads(&drain(&ring)), vec![vec![0xff], vec![0xee; 9]]);
}

// ------------------------------------------------------------------ wrap-around

#[test]
fn wrap_writes_padding_to_the_end_then_the_record_at_the_start() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for i in 0..3u8 {
        write(&ring, 0, &hc, &[i; 1000]).unwrap(); // span 1040 each
    }
    assert_eq!(drain(&ring).len(), 3);
    assert_eq!(ring.head(), 3120);

    // 3120 + 1040 > 4096: the rest of the lap (976 bytes) becomes padding.
    let claim = ring.claim(1, 1000, &hc).unwrap();
    assert_eq!(claim.pos(), 4096, "the record starts the next lap");
    assert_eq!(ring.tail(), 4096 + 1040);
    assert_eq!(
        ring.slot_info(1).intent,
        3120 + 1,
        "intent names the padding's start"
    );

    // The padding is committed at claim time; the record behind it is pending.
    let mut tc = 0;
    assert_eq!(ring.next_at(3120, &mut tc), Next::Padding { span: 976 });
    assert_eq!(
        ring.next_at(4096, &mut tc),
        Next::Pending {
            slot: Some(1),
            len: Some(1040)
        }
    );

    ring.write_payload(&claim, 0, &[7; 1000]);
    let _ = ring.commit(claim, &meta(1000));
    assert_eq!(
        drain(&ring),
        vec![
            Seen::Padding { span: 976 },
            Seen::Record {
                slot: 1,
                payload: vec![7; 1000]
            }
        ]
    );
    assert_eq!(ring.head(), 4096 + 1040);
}

#[test]
fn record_ending_exactly_at_the_region_end_needs_no_padding() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for _ in 0..3 {
        write(&ring, 0, &hc, &[1; 1000]).unwrap();
    }
    drain(&ring);
    // 4096 - 3120 = 976 = span of a 936-byte payload.
    let pos = write(&ring, 0, &hc, &[2; 936]).unwrap();
    assert_eq!(pos, 3120);
    let pos = write(&ring, 0, &hc, &[3; 5]).unwrap();
    assert_eq!(pos, 4096);
    assert_eq!(
        drain(&ring),
        vec![
            Seen::Record {
                slot: 0,
                payload: vec![2; 936]
            },
            Seen::Record {
                slot: 0,
                payload: vec![3; 5]
            }
        ]
    );
}

#[test]
fn many_laps_deliver_every_record_in_order() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for i in 0..2000u32 {
        let len = (i as usize * 37) % 1001;
        let payload: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        match write(&ring, (i % 4) as u16, &hc, &payload) {
            Ok(_) => expected.push(payload),
            Err(ClaimError::Full) => {
                got.extend(payloads(&drain(&ring)));
                write(&ring, (i % 4) as u16, &hc, &payload).unwrap();
                expected.push(payload);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    got.extend(payloads(&drain(&ring)));
    assert_eq!(got, expected);
    assert!(ring.tail() > 20 * 4096, "the test went round many times");
}

// ------------------------------------------------------------------ abort

#[test]
fn abort_becomes_padding_and_does_not_block_later_records() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let a = ring.claim(0, 13, &hc).unwrap();
    let b = ring.claim(1, 3, &hc).unwrap();
    ring.write_payload(&b, 0, b"abc");
    let _ = ring.commit(b, &meta(3));
    let mut tc = 0;
    assert_eq!(
        ring.next_at(0, &mut tc),
        Next::Pending {
            slot: Some(0),
            len: Some(53)
        }
    );
    ring.abort(a);
    assert_eq!(
        drain(&ring),
        vec![
            Seen::Padding { span: 56 },
            Seen::Record {
                slot: 1,
                payload: b"abc".to_vec()
            }
        ]
    );
    assert_eq!(
        ring.slot_info(0).written,
        0,
        "an abort is not a written record"
    );
}

#[test]
fn abort_of_a_wrapping_claim_leaves_two_paddings() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for _ in 0..3 {
        write(&ring, 0, &hc, &[1; 1000]).unwrap();
    }
    drain(&ring);
    let claim = ring.claim(3, 990, &hc).unwrap();
    assert_eq!(claim.pos(), 4096);
    ring.abort(claim);
    assert_eq!(
        drain(&ring),
        vec![Seen::Padding { span: 976 }, Seen::Padding { span: 1032 }]
    );
    assert_eq!(ring.next_at(ring.head(), &mut 0), Next::Empty);
}

// ------------------------------------------------------------------ full and too large

#[test]
fn full_ring_refuses_claims_until_the_consumer_releases() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for i in 0..3 {
        write(&ring, i, &hc, &[i as u8; 1000]).unwrap();
    }
    // 3120 used: a 1000-byte payload (1040) does not fit, a 936-byte one (976) exactly does.
    assert_eq!(ring.slot_info(2).intent, 2080 + 1);
    assert_eq!(ring.claim(2, 1000, &hc), Err(ClaimError::Full));
    assert_eq!(ring.tail(), 3120, "a refused claim reserves nothing");
    assert_eq!(
        ring.slot_info(2).intent,
        NO_INTENT,
        "a refused claim leaves no intent behind"
    );
    write(&ring, 3, &hc, &[3; 936]).unwrap();
    assert_eq!(ring.tail(), 4096);
    for slot in 0..4 {
        assert_eq!(
            ring.claim(slot, 0, &hc),
            Err(ClaimError::Full),
            "even an empty record"
        );
    }

    // Release one record; the stale head cache (still 0) must be refreshed from the ring.
    let mut tc = 0;
    let Next::Record { span, .. } = ring.next_at(0, &mut tc) else {
        panic!()
    };
    ring.release_at(0, span);
    assert_eq!(hc.load(Ordering::Relaxed), 0);
    let pos = write(&ring, 0, &hc, &[9; 1000]).unwrap();
    assert_eq!(pos, 4096);
    assert_eq!(
        hc.load(Ordering::Relaxed),
        1040,
        "the head cache learnt the new head"
    );
    assert_eq!(ring.claim(0, 0, &hc), Err(ClaimError::Full));

    let got = payloads(&drain(&ring));
    assert_eq!(
        got,
        vec![vec![1; 1000], vec![2; 1000], vec![3; 936], vec![9; 1000]]
    );
}

#[test]
fn a_wrap_needs_room_for_the_padding_too() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for _ in 0..3 {
        write(&ring, 0, &hc, &[1; 1000]).unwrap();
    }
    // Consume only the first record: head 1040, tail 3120. A 1000-byte payload needs 976 bytes
    // of padding + 1040 at the start = 2016 more; free space is 4096 - 2080 = 2016: fits.
    let mut tc = 0;
    let Next::Record { span, .. } = ring.next_at(0, &mut tc) else {
        panic!()
    };
    ring.release_at(0, span);
    let claim = ring.claim(0, 1000, &hc).unwrap();
    assert_eq!(claim.pos(), 4096);
    ring.abort(claim);
    assert_eq!(ring.tail(), 1040 + 4096, "the ring is exactly full");
    assert_eq!(ring.claim(0, 0, &hc), Err(ClaimError::Full));
}

#[test]
fn too_large_is_refused_before_anything_is_reserved() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    assert_eq!(
        ring.claim(0, 1001, &hc),
        Err(ClaimError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    assert_eq!(
        ring.claim(0, usize::MAX, &hc),
        Err(ClaimError::TooLarge {
            len: usize::MAX,
            max: 1000
        })
    );
    assert_eq!(ring.tail(), 0);
    assert_eq!(ring.slot_info(0).intent, NO_INTENT);
    let claim = ring.claim(0, 1000, &hc).unwrap();
    assert_eq!(claim.capacity(), 1000);
    ring.abort(claim);
}

#[test]
#[should_panic(expected = "write past the end of a claim")]
fn writing_past_a_claim_panics_instead_of_touching_the_next_frame() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let claim = ring.claim(0, 4, &hc).unwrap();
    ring.write_payload(&claim, 1, b"abcd");
}

// ------------------------------------------------------------------ earlier laps' bytes

#[test]
fn a_new_lap_reads_unwritten_over_the_last_laps_bytes() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    // Cover the whole region with committed frames, then consume them all.
    for i in 0..3u8 {
        write(&ring, 0, &hc, &[0xa0 | i; 1000]).unwrap();
    }
    write(&ring, 0, &hc, &[0xff; 936]).unwrap();
    assert_eq!(ring.tail(), 4096);
    assert_eq!(drain(&ring).len(), 4);
    assert_eq!(ring.head(), 4096);
    // Nothing was zeroed but the region's last word (inside the last record's payload).
    assert_ne!(peek(&ring, 0), 0, "the first frame's word 0 is still there");
    assert_eq!(peek(&ring, 8), check_word(0, ring.frame_key()));
    assert_eq!(peek(&ring, 4080), u64::from_le_bytes([0xff; 8]));
    assert_eq!(peek(&ring, 4088), 0, "the word at capacity - 8 is zeroed");
    // Position 4096 is index 0, which holds a committed record of the last lap.
    let mut tc = 4096;
    assert_eq!(ring.next_at(4096, &mut tc), Next::Empty);
    // With the tail pushed a lap ahead (a claim whose header is not written yet), every
    // position of the new lap reads as unwritten, never as a frame of the last lap.
    ring.word_at(off::TAIL).store(2 * 4096, Ordering::Relaxed);
    for pos in (4096..2 * 4096).step_by(8) {
        let mut tc = 0;
        assert_eq!(
            ring.next_at(pos, &mut tc),
            Next::Pending {
                slot: None,
                len: None
            },
            "at {pos}"
        );
    }
}

#[test]
fn consuming_a_whole_lap_before_releasing_ends_empty_not_corrupt() {
    // A drain batches: it reads every committed frame, writes them out, and only then releases.
    // With the ring exactly full, its last `next` stands one lap past the released head, on the
    // memory of its own first (consumed, unreleased) frame.
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for i in 0..3u8 {
        write(&ring, 0, &hc, &[i; 1000]).unwrap();
    }
    write(&ring, 0, &hc, &[3; 936]).unwrap();
    assert_eq!(ring.tail(), 4096);
    let (mut at, mut tc) = (0, 0);
    for _ in 0..4 {
        let Next::Record { span, .. } = ring.next_at(at, &mut tc) else {
            panic!("record at {at}")
        };
        at += span;
    }
    assert_eq!(at, 4096);
    assert_eq!(ring.next_at(at, &mut tc), Next::Empty);
    assert_eq!(
        ring.next_at(at, &mut 0),
        Next::Empty,
        "with a cold tail cache too"
    );
    ring.release_at(0, at);
    assert_eq!(ring.next_at(at, &mut tc), Next::Empty);
}

/// Consumes and releases frames until `ring`'s tail stands at region offset `index`, writing
/// records as needed (a lap at most).
fn fill_until_index(ring: &Ring<HeapMemory>, hc: &AtomicU64, index: u64) {
    while ring.tail() % 4096 != index {
        let room = (index + 4096 - ring.tail() % 4096) % 4096;
        let span = if room > 1040 + 40 { 1040 } else { room };
        write(ring, 0, hc, &vec![0x5a; span as usize - FRAME_HEADER_SIZE]).unwrap();
        drain(ring);
    }
}

#[test]
fn the_8_byte_padding_at_the_regions_end_reads_unwritten_until_written_in_every_lap() {
    // The one frame with no room for a check word: when a claim starts at capacity - 8, it
    // wraps with an 8-byte padding there. Until the producer writes it, the drain must read
    // "not written", though the previous lap left the same padding in that very word.
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    for lap in 0..6u64 {
        fill_until_index(&ring, &hc, 4088);
        let at = ring.tail();
        assert_eq!(at, lap * 4096 + 4088);
        // The window between the tail CAS and the header stores of slot 1's wrapping claim.
        let end = at + 8 + span_of(10);
        ring.word_at(layout::slot_offset(1) + slot_off::INTENT)
            .store(at + 1, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(end, Ordering::Relaxed);
        for pos in [at, at + 8] {
            assert_eq!(
                ring.next_at(pos, &mut 0),
                Next::Pending {
                    slot: None,
                    len: None
                },
                "lap {lap}, position {pos}"
            );
        }
        assert_eq!(ring.unwritten_claim_end_at(at, end), end, "lap {lap}");
        ring.word_at(off::TAIL).store(at, Ordering::Relaxed);
        // Now the real claim: the record's header, then the padding.
        let claim = ring.claim(1, 10, &hc).unwrap();
        assert_eq!(claim.pos(), at + 8);
        assert_eq!(ring.next_at(at, &mut 0), Next::Padding { span: 8 });
        assert_eq!(
            ring.next_at(at + 8, &mut 0),
            Next::Pending {
                slot: Some(1),
                len: Some(50)
            }
        );
        ring.write_payload(&claim, 0, b"0123456789");
        let _ = ring.commit(claim, &meta(10));
        assert_eq!(
            drain(&ring),
            vec![
                Seen::Padding { span: 8 },
                Seen::Record {
                    slot: 1,
                    payload: b"0123456789".to_vec()
                }
            ],
            "lap {lap}"
        );
        assert_eq!(peek(&ring, at), 0, "released, so zeroed again");
    }
}

/// A tiny deterministic generator (xorshift64*), so a proptest seed expands into a region.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Fills the data region of `ring`, whose head and tail are at `head`, with what earlier laps
/// could have left there, as hostile as benign data can be: at every word, a committed data or
/// padding frame's word 0 (plausible lengths, slots and levels), a claimed one, the check word
/// an earlier lap's frame at that very offset carried, the check word of some other position,
/// a plausible lengths word, zero or anything. Only the word at `capacity - 8` is zero, as every
/// release leaves it. No word is the check word of the position it is read at in this lap.
fn fill_with_stale_laps(ring: &Ring<HeapMemory>, head: u64, seed: u64) {
    let key = ring.frame_key();
    let mut state = seed | 1;
    for offset in (0..4096u64).step_by(8) {
        // The position of this lap (`head` up to a lap on) whose word 1 this word is.
        let frame = head + ((offset + 4096 - 8 - head % 4096) % 4096);
        let r = next_random(&mut state);
        let len = 40 + (r >> 8) % 1000;
        let word = match r % 8 {
            0 | 1 => Word0::encode(
                len as u32,
                true,
                Kind::Data,
                Level::Info,
                (r >> 40) as u16 % 4,
            ),
            2 => Word0::encode(len as u32, true, Kind::Padding, Level::None, 0),
            3 => Word0::encode(len as u32, false, Kind::Data, Level::Warn, 1),
            4 => check_word(
                frame % 4096 + 4096 * ((r >> 8) % (frame / 4096).max(1)),
                key,
            ),
            5 => check_word(frame + 8 * (1 + (r >> 8) % 511), key),
            6 => ringlog_core::frame::encode_lengths(((r >> 8) % 1000) as u32, 0, 0),
            _ => next_random(&mut state),
        };
        let word = if word == check_word(frame, key) {
            0
        } else {
            word
        };
        poke(ring, head + (offset + 4096 - head % 4096) % 4096, word);
    }
    poke(ring, head + (4088 + 4096 - head % 4096) % 4096, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Over a region full of what earlier laps could have left, a claim seen between its tail
    /// CAS and its header stores is pending with no known owner, never a record, a padding or
    /// corruption; the end of such a claim, were its owner dead, is where it ends; once its
    /// header is written it is pending with its slot; once committed, it is exactly its record.
    #[test]
    fn stale_laps_never_pass_for_a_claim_whose_header_is_not_written(
        lap in 1u64..5,
        index in (0u64..512).prop_map(|w| w * 8),
        len in 0usize..300,
        seed in any::<u64>(),
    ) {
        let ring = heap_ring(SMALL);
        let head = lap * 4096 + index;
        ring.word_at(off::HEAD).store(head, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(head, Ordering::Relaxed);
        fill_with_stale_laps(&ring, head, seed);
        let span = span_of(len);
        let pad = if index + span > 4096 { 4096 - index } else { 0 };
        let end = head + pad + span;
        ring.word_at(layout::slot_offset(1) + slot_off::INTENT)
            .store(head + 1, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(end, Ordering::Relaxed);
        let unwritten = Next::Pending { slot: None, len: None };
        prop_assert_eq!(ring.next_at(head, &mut 0), unwritten);
        prop_assert_eq!(ring.next_at(head + pad, &mut 0), unwritten);
        prop_assert_eq!(ring.unwritten_claim_end_at(head, end), end);

        ring.word_at(off::TAIL).store(head, Ordering::Relaxed);
        let hc = AtomicU64::new(head);
        let claim = ring.claim(1, len, &hc).unwrap();
        prop_assert_eq!(claim.pos(), head + pad);
        let claimed = Next::Pending { slot: Some(1), len: Some((FRAME_HEADER_SIZE + len) as u32) };
        prop_assert_eq!(ring.next_at(head + pad, &mut 0), claimed);
        let payload: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8).collect();
        ring.write_payload(&claim, 0, &payload);
        let _ = ring.commit(claim, &meta(len));
        let mut want = Vec::new();
        if pad > 0 {
            want.push(Seen::Padding { span: pad });
        }
        want.push(Seen::Record { slot: 1, payload });
        prop_assert_eq!(drain(&ring), want);
        prop_assert_eq!(ring.next_at(end, &mut 0), Next::Empty);
    }

    /// A claim whose owner died before its header, over what earlier laps left, ends at the
    /// next frame written in this lap, found by its check word alone (no intent names it): no
    /// stale word stops the scan early, none lets it run past.
    #[test]
    fn an_unwritten_claim_ends_at_the_next_fresh_frame_over_stale_bytes(
        lap in 1u64..5,
        index in (0u64..512).prop_map(|w| w * 8),
        dead in (1u64..300).prop_map(|w| w * 8),
        len in 0usize..300,
        seed in any::<u64>(),
    ) {
        let ring = heap_ring(SMALL);
        let head = lap * 4096 + index;
        ring.word_at(off::HEAD).store(head, Ordering::Relaxed);
        fill_with_stale_laps(&ring, head, seed);
        // Slot 3 claimed `dead` bytes at `head` and died; slot 1 claimed after it.
        ring.word_at(layout::slot_offset(3) + slot_off::INTENT)
            .store(head + 1, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(head + dead, Ordering::Relaxed);
        let hc = AtomicU64::new(head);
        let claim = ring.claim(1, len, &hc).unwrap();
        ring.word_at(layout::slot_offset(1) + slot_off::INTENT)
            .store(NO_INTENT, Ordering::Relaxed);
        let unwritten = Next::Pending { slot: None, len: None };
        prop_assert_eq!(ring.next_at(head, &mut 0), unwritten);
        prop_assert_eq!(ring.claimants(head).collect::<Vec<_>>(), vec![3]);
        prop_assert_eq!(ring.unwritten_claim_end_at(head, ring.tail()), head + dead);
        ring.abort(claim);
    }
}

#[test]
fn a_release_of_a_whole_lap_zeroes_the_regions_last_word_once() {
    let ring = heap_ring(SMALL);
    for pos in (800..800 + 4096).step_by(8) {
        poke(&ring, pos, !pos);
    }
    ring.word_at(off::HEAD).store(800, Ordering::Relaxed);
    ring.word_at(off::TAIL).store(800 + 4096, Ordering::Relaxed);
    ring.release_at(800, 800 + 4096);
    assert_eq!(ring.head(), 800 + 4096);
    for pos in (800..800 + 4096).step_by(8) {
        let want = if pos == 4088 { 0 } else { !pos };
        assert_eq!(peek(&ring, pos), want, "word at {pos}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// A release zeroes the word at region offset `capacity - 8` if it covers it, wherever it
    /// starts and ends (across the region's end too), and nothing else.
    #[test]
    fn a_release_zeroes_the_regions_last_word_and_nothing_else(
        from in (0u64..2048).prop_map(|w| w * 8),
        len in prop_oneof![(0u64..40).prop_map(|w| w * 8), (0u64..478).prop_map(|w| w * 8)],
    ) {
        let ring = heap_ring(SMALL);
        let to = from + len;
        let around = from.saturating_sub(136)..to + 136;
        for pos in around.clone().step_by(8) {
            poke(&ring, pos, !pos);
        }
        ring.word_at(off::HEAD).store(from, Ordering::Relaxed);
        ring.word_at(off::TAIL).store(to, Ordering::Relaxed);
        ring.release_at(from, to);
        prop_assert_eq!(ring.head(), to);
        for pos in around.step_by(8) {
            let want = if (from..to).contains(&pos) && pos % 4096 == 4088 { 0 } else { !pos };
            prop_assert_eq!(peek(&ring, pos), want, "word at {} (released {}..{})", pos, from, to);
        }
    }
}

#[test]
#[should_panic(expected = "release of an impossible range")]
fn release_of_more_than_a_lap_panics() {
    let ring = heap_ring(SMALL);
    ring.release_at(0, 4097);
}

/// A futex for one thread: `wait` runs a script (what other parties do while the caller would
/// sleep) instead of sleeping, and both calls are counted.
struct ScriptedFutex<'a> {
    on_wait: RefCell<Box<dyn FnMut() + 'a>>,
    waits: Cell<u32>,
    wakes: Cell<u32>,
}

impl<'a> ScriptedFutex<'a> {
    fn new(on_wait: impl FnMut() + 'a) -> Self {
        ScriptedFutex {
            on_wait: RefCell::new(Box::new(on_wait)),
            waits: Cell::new(0),
            wakes: Cell::new(0),
        }
    }
}

impl Futex for ScriptedFutex<'_> {
    fn wait(&self, _word: &AtomicU32, _expected: u32, _timeout: Duration) {
        self.waits.set(self.waits.get() + 1);
        (self.on_wait.borrow_mut())();
    }
    fn wake(&self, _word: &AtomicU32, _n: u32) {
        self.wakes.set(self.wakes.get() + 1);
    }
}

#[test]
fn release_reports_waiting_producers() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    assert!(!ring.release_at(0, 0));
    while ring.claim(0, 100, &hc).is_ok() {}
    let seen_waiting = Cell::new(false);
    let futex = ScriptedFutex::new(|| seen_waiting.set(ring.release_at(0, 0)));
    let mut patience = [Some(Duration::from_millis(1)), None].into_iter();
    let got = ring.claim_waiting(&futex, 0, 100, &hc, || patience.next().flatten());
    assert_eq!(got, Err(ClaimError::Full));
    assert_eq!(futex.waits.get(), 1, "slept once, then ran out of patience");
    assert!(
        seen_waiting.get(),
        "a release while it waits reports the waiter"
    );
    assert!(!ring.release_at(0, 0), "no waiter once it gave up");
}

#[test]
fn a_producer_waiting_for_space_is_woken_by_the_release() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let first = ring.claim(0, 100, &hc).unwrap();
    let first_span = layout::align_record((FRAME_HEADER_SIZE + 100) as u64);
    ring.abort(first);
    while ring.claim(0, 100, &hc).is_ok() {}
    let drain_futex = ScriptedFutex::new(|| ());
    let futex = ScriptedFutex::new(|| {
        if ring.release_at(0, first_span) {
            ring.wake_space_waiters(&drain_futex);
        }
    });
    let got = ring.claim_waiting(&futex, 0, 100, &hc, || Some(Duration::from_secs(1)));
    assert!(got.is_ok(), "the freed space is claimed: {got:?}");
    assert_eq!(futex.waits.get(), 1);
    assert_eq!(drain_futex.wakes.get(), 1, "the release woke the waiter");
}

// ------------------------------------------------------------------ pending claims

#[test]
fn uncommitted_claim_is_pending_and_blocks_later_records() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let a = ring.claim(3, 20, &hc).unwrap();
    write(&ring, 1, &hc, b"later").unwrap();
    let mut tc = 0;
    for _ in 0..3 {
        assert_eq!(
            ring.next_at(0, &mut tc),
            Next::Pending {
                slot: Some(3),
                len: Some(60)
            }
        );
    }
    assert!(drain(&ring).is_empty(), "nothing passes a pending claim");
    ring.write_payload(&a, 0, &[b'x'; 20]);
    let _ = ring.commit(a, &meta(20));
    assert_eq!(
        payloads(&drain(&ring)),
        vec![vec![b'x'; 20], b"later".to_vec()]
    );
}

#[test]
fn claim_without_header_is_pending_without_slot_and_attributed_by_intent() {
    let ring = heap_ring(SMALL);
    // Slot 3 stored its intent for position 0 and won the tail CAS (to 64), then stopped before
    // writing its header.
    ring.word_at(layout::slot_offset(3) + slot_off::INTENT)
        .store(1, Ordering::Relaxed); // position 0, plus one
    ring.word_at(off::TAIL).store(64, Ordering::Relaxed);
    let mut tc = 0;
    assert_eq!(
        ring.next_at(0, &mut tc),
        Next::Pending {
            slot: None,
            len: None
        }
    );
    assert_eq!(tc, 64, "the tail was refreshed");
    assert_eq!(ring.claimants(0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(ring.claimants(8).count(), 0);
    assert_eq!(ring.unwritten_claim_end_at(0, ring.tail()), 64);
}

#[test]
fn unwritten_claim_end_stops_at_the_nearest_certain_boundary() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    // Dead claim by slot 3 at 0..64, header never written.
    ring.word_at(layout::slot_offset(3) + slot_off::INTENT)
        .store(1, Ordering::Relaxed);
    ring.word_at(off::TAIL).store(64, Ordering::Relaxed);
    assert_eq!(
        ring.unwritten_claim_end_at(0, 64),
        64,
        "bounded by the tail"
    );
    assert_eq!(ring.resync_point(0, 64), 64);

    // A live claim by slot 1 behind it: its header is written at once.
    let b = ring.claim(1, 8, &hc).unwrap();
    assert_eq!(b.pos(), 64);
    assert_eq!(ring.tail(), 112);
    assert_eq!(
        ring.unwritten_claim_end_at(0, 112),
        64,
        "bounded by slot 1's intent and header"
    );
    assert_eq!(ring.resync_point(0, 112), 64);

    // A claim by slot 2 that won its CAS but wrote no header either: only its intent bounds
    // slot 3's claim.
    ring.word_at(layout::slot_offset(1) + slot_off::INTENT)
        .store(NO_INTENT, Ordering::Relaxed);
    ring.abort(b);
    ring.word_at(layout::slot_offset(2) + slot_off::INTENT)
        .store(24 + 1, Ordering::Relaxed);
    assert_eq!(ring.unwritten_claim_end_at(0, 112), 24);
    assert_eq!(ring.resync_point(0, 112), 24);

    // Without the intent, the first frame written in this lap (slot 1's aborted claim, its
    // check word matching) bounds it.
    ring.word_at(layout::slot_offset(2) + slot_off::INTENT)
        .store(NO_INTENT, Ordering::Relaxed);
    assert_eq!(ring.unwritten_claim_end_at(0, 112), 64);
    assert_eq!(
        ring.resync_point(0, 112),
        112,
        "resync trusts no word, only intents and tail"
    );

    // Intents at or before `pos` (older claims) do not bound it.
    ring.word_at(layout::slot_offset(0) + slot_off::INTENT)
        .store(1, Ordering::Relaxed);
    assert_eq!(ring.unwritten_claim_end_at(8, 112), 64);
}

#[test]
fn claimants_follow_each_slots_latest_claim() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let p0 = write(&ring, 2, &hc, b"one").unwrap();
    assert_eq!(
        ring.claimants(p0).collect::<Vec<_>>(),
        vec![2],
        "the intent stays after commit"
    );
    let p1 = write(&ring, 2, &hc, b"two").unwrap();
    assert_eq!(ring.claimants(p0).count(), 0, "a newer claim replaced it");
    assert_eq!(ring.claimants(p1).collect::<Vec<_>>(), vec![2]);
    let p2 = write(&ring, 0, &hc, b"three").unwrap();
    assert_eq!(ring.claimants(p2).collect::<Vec<_>>(), vec![0]);
    assert_eq!(ring.claimants(p1).collect::<Vec<_>>(), vec![2]);
    assert_eq!(ring.slot_info(2).intent, p1 + 1);
}

#[test]
fn detach_and_reuse_of_slots_follow_the_head() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    assert!(ring.slot_reusable(1), "never claimed");
    ring.take_slot(1, 100, 101, 5);
    let pos = write(&ring, 1, &hc, b"x").unwrap();
    assert!(
        !ring.slot_reusable(1),
        "its claim at {pos} is not consumed yet"
    );
    drain(&ring);
    assert!(ring.slot_reusable(1), "the head passed its last claim");
    ring.detach_slot(1);
    let info = ring.slot_info(1);
    assert_eq!(
        (info.state, info.pid, info.tid, info.intent),
        (SlotState::Detached, 100, 101, NO_INTENT)
    );
    ring.take_slot(1, 200, 201, 6);
    let info = ring.slot_info(1);
    assert_eq!(
        (info.state, info.written, info.written_base),
        (SlotState::Attached, 1, 1)
    );
}

// ------------------------------------------------------------------ drain wake-up

#[test]
fn a_sleeping_drain_is_woken_by_exactly_one_commit() {
    let ring = heap_ring(SMALL);
    let hc = AtomicU64::new(0);
    let producer_futex = ScriptedFutex::new(|| ());
    // While the drain sleeps on an empty ring, producers commit twice: the first commit asks
    // for a wake-up (and makes one), the second finds the flag cleared.
    let futex = ScriptedFutex::new(|| {
        let c = ring.claim(0, 1, &hc).unwrap();
        assert!(ring.commit(c, &meta(1)), "the first commit wakes the drain");
        ring.wake_drain(&producer_futex);
        let c = ring.claim(0, 1, &hc).unwrap();
        assert!(!ring.commit(c, &meta(1)), "the flag was cleared");
    });
    ring.drain_sleep(&futex, 0, Duration::from_secs(1));
    assert_eq!(futex.waits.get(), 1, "empty ring: the drain sleeps");
    assert_eq!(producer_futex.wakes.get(), 1);
    assert!(!ring.drain_announced_sleep(), "awake again");
    ring.drain_sleep(&futex, 0, Duration::from_secs(1));
    assert_eq!(futex.waits.get(), 1, "records are waiting: do not sleep");
    let c = ring.claim(0, 1, &hc).unwrap();
    assert!(
        !ring.commit(c, &meta(1)),
        "a retracted sleep needs no wake-up"
    );
}

// ------------------------------------------------------------------ corrupt frames

/// A ring with `word0` forced into the frame at 0 (under a matching check word) and the tail at
/// `tail`.
fn corrupt_ring(word0: u64, tail: u64) -> Ring<HeapMemory> {
    let ring = heap_ring(SMALL);
    poke(&ring, 0, word0);
    poke_check(&ring, 0);
    ring.word_at(off::TAIL).store(tail, Ordering::Relaxed);
    ring
}

fn next_at_0(ring: &Ring<HeapMemory>) -> Next {
    ring.next_at(0, &mut 0)
}

#[test]
fn unknown_kind_is_corrupt() {
    for kind in [0u8, 4, 0x7f, 0xff] {
        let ring = corrupt_ring(raw_word0(64, kind, 0, 0), 64);
        assert_eq!(next_at_0(&ring), Next::Corrupt(Corruption::Kind(kind)));
        let ring = corrupt_ring(raw_word0(-64, kind, 0, 0), 64);
        assert_eq!(
            next_at_0(&ring),
            Next::Corrupt(Corruption::Kind(kind)),
            "uncommitted too"
        );
    }
}

#[test]
fn impossible_lengths_are_corrupt() {
    let data = Kind::Data as u8;
    let pad = Kind::Padding as u8;
    let max_frame = (FRAME_HEADER_SIZE as u64 + SMALL.max_record) as i32;
    for (len, kind) in [
        (max_frame + 1, data),    // longer than the max record
        (-(max_frame + 1), data), // ... also while claimed
        (i32::MAX, data),         // absurd
        (i32::MIN, data),         // |i32::MIN| does not fit an i32
        (39, data),               // shorter than a header
        (1, data),                // ...
        (0, data),                // zero under a matching check word
        (4097, pad),              // padding longer than the region
        (7, pad),                 // padding shorter than a word
    ] {
        let ring = corrupt_ring(raw_word0(len, kind, 0, 0), 4096);
        assert_eq!(
            next_at_0(&ring),
            Next::Corrupt(Corruption::Length(len.unsigned_abs())),
            "len {len} kind {kind}"
        );
    }
    // A frame that would straddle the end of the region.
    let ring = heap_ring(SMALL);
    ring.word_at(off::TAIL).store(4096 + 64, Ordering::Relaxed);
    poke_check(&ring, 4000);
    poke(&ring, 4000, raw_word0(200, data, 0, 0));
    assert_eq!(
        ring.next_at(4000, &mut 0),
        Next::Corrupt(Corruption::Length(200))
    );
    poke(&ring, 4000, raw_word0(104, pad, 0, 0));
    assert_eq!(
        ring.next_at(4000, &mut 0),
        Next::Corrupt(Corruption::Length(104))
    );
    poke(&ring, 4000, raw_word0(96, pad, 0, 0));
    assert_eq!(
        ring.next_at(4000, &mut 0),
        Next::Padding { span: 96 },
        "exactly to the end is fine"
    );
}

#[test]
fn frame_past_the_tail_is_corrupt() {
    let ring = corrupt_ring(Word0::encode(64, true, Kind::Data, Level::Info, 0), 40);
    assert_eq!(next_at_0(&ring), Next::Corrupt(Corruption::PastTail));
    let ring = corrupt_ring(Word0::encode(64, false, Kind::Data, Level::Info, 0), 56);
    assert_eq!(
        next_at_0(&ring),
        Next::Corrupt(Corruption::PastTail),
        "uncommitted too"
    );
    // A stale tail cache is refreshed before concluding.
    let ring = corrupt_ring(Word0::encode(64, false, Kind::Data, Level::Info, 1), 64);
    let mut tc = 8;
    assert_eq!(
        ring.next_at(0, &mut tc),
        Next::Pending {
            slot: Some(1),
            len: Some(64)
        }
    );
    assert_eq!(tc, 64);
}

#[test]
fn slot_outside_the_registry_is_corrupt() {
    for slot in [4u16, 5, u16::MAX] {
        let ring = corrupt_ring(Word0::encode(64, true, Kind::Data, Level::Info, slot), 64);
        assert_eq!(next_at_0(&ring), Next::Corrupt(Corruption::Slot(slot)));
    }
}

#[test]
fn payload_or_target_longer_than_the_frame_is_corrupt() {
    use ringlog_core::frame::encode_lengths;
    let ring = corrupt_ring(Word0::encode(64, true, Kind::Data, Level::Info, 0), 64);
    let lengths_at = LENGTHS_OFFSET as u64;
    poke(&ring, lengths_at, encode_lengths(33, 0, 0));
    assert_eq!(
        next_at_0(&ring),
        Next::Corrupt(Corruption::PayloadLength(33))
    );
    poke(&ring, lengths_at, encode_lengths(u32::MAX, 0, 0));
    assert_eq!(
        next_at_0(&ring),
        Next::Corrupt(Corruption::PayloadLength(u32::MAX))
    );
    poke(&ring, lengths_at, encode_lengths(10, 11, 0));
    assert_eq!(
        next_at_0(&ring),
        Next::Corrupt(Corruption::PayloadLength(10)),
        "target > payload"
    );
    poke(&ring, lengths_at, encode_lengths(24, 24, 0));
    assert!(matches!(next_at_0(&ring), Next::Record { meta, span: 64 } if meta.payload_len == 24));
}

#[test]
fn tail_behind_the_head_or_beyond_a_lap_is_corrupt() {
    let ring = heap_ring(SMALL);
    ring.word_at(off::TAIL).store(4096 + 8, Ordering::Relaxed);
    assert_eq!(
        ring.next_at(0, &mut 0),
        Next::Corrupt(Corruption::Tail(4104))
    );
    ring.word_at(off::TAIL).store(u64::MAX, Ordering::Relaxed);
    assert_eq!(
        ring.next_at(0, &mut 0),
        Next::Corrupt(Corruption::Tail(u64::MAX))
    );
    ring.word_at(off::TAIL).store(8, Ordering::Relaxed);
    assert_eq!(ring.next_at(16, &mut 0), Next::Corrupt(Corruption::Tail(8)));
    ring.word_at(off::TAIL).store(4096, Ordering::Relaxed);
    assert_eq!(
        ring.next_at(0, &mut 0),
        Next::Pending {
            slot: None,
            len: None
        },
        "exactly a lap is fine"
    );
}

#[test]
fn corruption_messages_say_what_is_wrong() {
    assert!(Corruption::Kind(9).to_string().contains("kind 9"));
    assert!(Corruption::Length(77).to_string().contains("77"));
    assert!(Corruption::Slot(5).to_string().contains("slot 5"));
    assert!(Corruption::PayloadLength(99).to_string().contains("99"));
    assert!(Corruption::PastTail.to_string().contains("tail"));
    assert!(Corruption::Tail(3).to_string().contains("tail 3"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Garbage in the first and lengths words of a frame, under a matching check word or not,
    /// with any tail within reason, never makes the consumer panic; whatever it accepts as a
    /// record or padding lies inside the region and before the tail, and its payload can be
    /// read; without a matching check word (or a non-zero word at `capacity - 8`) the frame is
    /// not written yet.
    #[test]
    fn garbage_frames_never_panic_the_consumer(
        lap in 0u64..4,
        index in (0u64..512).prop_map(|w| w * 8),
        word0 in any::<u64>(),
        lengths in any::<u64>(),
        checked in any::<bool>(),
        ahead in prop_oneof![0u64..5000, any::<u64>()],
        stale in prop_oneof![Just(0u64), 0u64..5000],
    ) {
        let ring = heap_ring(SMALL);
        let head = lap * 4096 + index;
        poke(&ring, head, word0);
        if checked && index != 4088 {
            poke_check(&ring, head);
        }
        poke(&ring, head + LENGTHS_OFFSET as u64, lengths);
        let tail = head.wrapping_add(ahead);
        ring.word_at(off::TAIL).store(tail, Ordering::Relaxed);
        // The consumer's cache is some tail it saw before: never ahead of the real one.
        let mut tc = tail.saturating_sub(stale);
        match ring.next_at(head, &mut tc) {
            Next::Record { meta, span } => {
                prop_assert!(index + span <= 4096);
                prop_assert!(head + span <= tail);
                prop_assert!(meta.payload_len as u64 + FRAME_HEADER_SIZE as u64 <= span);
                let mut buf = vec![0; meta.payload_len as usize];
                ring.read_at(head, 0, &mut buf);
                ring.release_at(head, head + span);
            }
            Next::Padding { span } => {
                prop_assert!(index + span <= 4096);
                prop_assert!(head + span <= tail);
                ring.release_at(head, head + span);
            }
            Next::Pending { slot, len } => {
                prop_assert!(slot.map_or(true, |s| s < 4));
                prop_assert!(len.map_or(true, |l| index + l as u64 <= 4096));
                let written = if index == 4088 { word0 != 0 } else { checked };
                prop_assert!(slot.is_some() || !written || tail <= head, "written, yet unwritten");
            }
            Next::Empty => prop_assert!(tail == head || word0 as u32 == 0),
            Next::Chunk { .. } => prop_assert!(false, "a chunk in a ring too small for chunks"),
            Next::Corrupt(c) => { let _ = c.to_string(); }
        }
    }
}

// ------------------------------------------------------------------ geometry and open

#[test]
fn geometry_validation_rejects_what_the_protocol_cannot_handle() {
    let ok = Geometry {
        capacity: 4096,
        max_record: 2008,
        slots: 1,
    };
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(
        Geometry {
            slots: u16::MAX as u32,
            ..ok
        }
        .validate(),
        Ok(())
    );
    let default = Geometry::with_capacity(layout::DEFAULT_CAPACITY);
    assert_eq!(default.validate(), Ok(()));
    // The design's promise: the default ring takes a message of 1 MiB.
    assert!(default.max_record >= 1 << 20, "{default:?}");
    for bad in [
        Geometry {
            capacity: 6144,
            ..ok
        },
        Geometry {
            capacity: 2048,
            max_record: 100,
            ..ok
        },
        Geometry {
            capacity: layout::MAX_CAPACITY * 2,
            ..ok
        },
        Geometry {
            max_record: 2009,
            ..ok
        },
        Geometry {
            max_record: 0,
            ..ok
        },
        Geometry { slots: 0, ..ok },
        Geometry {
            slots: u16::MAX as u32 + 1,
            ..ok
        },
    ] {
        assert!(
            matches!(
                bad.validate(),
                Err(GeometryError::Capacity { .. }
                    | GeometryError::MaxRecord { .. }
                    | GeometryError::Slots { .. })
            ),
            "{bad:?}"
        );
    }
    let mem = HeapMemory::new(100);
    assert!(matches!(
        Ring::create(mem, ok, 0, 0o600),
        Err(LayoutError::TooShort { len: 104, .. })
    ));
}

/// Copies a heap region word by word (HeapMemory offers no other way to clone one).
fn copy_region(from: &HeapMemory, len: usize) -> HeapMemory {
    let to = HeapMemory::new(len);
    for offset in (0..from.len().min(len)).step_by(8) {
        to.u64_at(offset).store(
            from.u64_at(offset).load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
    to
}

#[test]
fn open_validates_what_create_wrote() {
    let ring = heap_ring(SMALL);
    let len = SMALL.segment_len() as usize;
    let reopened = Ring::open(copy_region(ring.raw_memory(), len)).unwrap();
    assert_eq!(reopened.geometry(), SMALL);
    assert_eq!(reopened.created_ns(), 42);
    assert_eq!(reopened.frame_key(), ring.frame_key());
    assert_eq!(ring.frame_key() % 2, 1, "odd, so no check word is zero");
    assert_ne!(
        heap_ring(SMALL).frame_key(),
        ring.frame_key(),
        "each segment draws its own key"
    );

    let bad = |f: &dyn Fn(&HeapMemory)| {
        let mem = copy_region(ring.raw_memory(), len);
        f(&mem);
        Ring::open(mem).map(|_| ()).unwrap_err()
    };
    assert_eq!(
        bad(&|m| m.u32_at(off::VERSION).store(0, Ordering::Relaxed)),
        LayoutError::NotYetInitialized
    );
    assert_eq!(
        bad(&|m| m
            .u32_at(off::VERSION)
            .store(LAYOUT_VERSION + 1, Ordering::Relaxed)),
        LayoutError::VersionMismatch {
            found: LAYOUT_VERSION + 1
        }
    );
    assert_eq!(
        bad(&|m| m.u64_at(off::MAGIC).store(7, Ordering::Relaxed)),
        LayoutError::BadMagic(7)
    );
    assert!(matches!(
        bad(&|m| m.u64_at(off::CAPACITY).store(4095, Ordering::Relaxed)),
        LayoutError::BadGeometry(_)
    ));
    assert!(matches!(
        bad(&|m| m.u64_at(off::MAX_RECORD).store(0, Ordering::Relaxed)),
        LayoutError::BadGeometry(_)
    ));
    assert!(matches!(
        bad(&|m| m.u32_at(off::SLOTS).store(40, Ordering::Relaxed)),
        LayoutError::BadGeometry(_)
    ));
    assert!(matches!(
        bad(&|m| m.u32_at(off::DATA_OFFSET).store(4096, Ordering::Relaxed)),
        LayoutError::BadGeometry(_)
    ));
    assert_eq!(
        bad(&|m| m.u64_at(off::FRAME_KEY).store(2, Ordering::Relaxed)),
        LayoutError::BadGeometry(GeometryError::FrameKey { key: 2 })
    );

    let short = copy_region(ring.raw_memory(), len - 8);
    assert_eq!(
        Ring::open(short).unwrap_err(),
        LayoutError::TooShort {
            len: len as u64 - 8,
            need: len as u64
        }
    );
    assert!(matches!(
        Ring::open(HeapMemory::new(64)).unwrap_err(),
        LayoutError::TooShort { len: 64, .. }
    ));
    assert_eq!(
        Ring::open(HeapMemory::new(len)).unwrap_err(),
        LayoutError::NotYetInitialized
    );
}
