//! Property test: random interleavings of claims (from a few simulated producer slots), commits,
//! aborts and consumption, checked step by step against a model of the ring.
//!
//! The model is a queue of frames in claim order (the order the ring delivers them): wrap
//! paddings, open claims, committed records and aborted claims. The consumer must see exactly the
//! front of that queue: an open claim blocks everything behind it (`Pending`), an aborted one and
//! a wrap are `Padding`, a committed one is its record, byte for byte. Claims must succeed or be
//! `Full` exactly when the model says so, at the position it predicts. So every committed record
//! comes out exactly once, in claim order, and nothing else does.
#![cfg(not(loom))]

mod common;

use common::*;
use proptest::prelude::*;
use ringlog_core::memory::HeapMemory;
use ringlog_core::{Claim, ClaimError, Geometry, Level, Next, RecordMeta, Ring};
use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;

const PRODUCERS: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Size {
    Small(usize),
    /// A fraction (in 1/65536) of the max record size.
    Any(u16),
    Max,
    TooLarge(usize),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Claim {
        producer: usize,
        size: Size,
    },
    Commit {
        producer: usize,
    },
    Abort {
        producer: usize,
    },
    /// Consume up to `frames` frames, releasing each at once or all together at the end.
    Consume {
        frames: usize,
        release_each: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let producer = 0..PRODUCERS;
    let size = prop_oneof![
        3 => (0usize..=16).prop_map(Size::Small),
        4 => any::<u16>().prop_map(Size::Any),
        1 => Just(Size::Max),
        1 => (1usize..64).prop_map(Size::TooLarge),
    ];
    prop_oneof![
        5 => (producer.clone(), size).prop_map(|(producer, size)| Op::Claim { producer, size }),
        4 => producer.clone().prop_map(|producer| Op::Commit { producer }),
        1 => producer.prop_map(|producer| Op::Abort { producer }),
        3 => (1usize..8, any::<bool>()).prop_map(|(frames, release_each)| Op::Consume { frames, release_each }),
    ]
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Open,
    Committed,
    Aborted,
}

#[derive(Clone, Debug)]
enum Frame {
    /// The rest of a lap, skipped at a wrap.
    Wrap { span: u64 },
    /// A claim and what became of it.
    Claimed {
        producer: usize,
        id: u64,
        payload: Vec<u8>,
        state: State,
    },
}

struct Model {
    ring: Ring<HeapMemory>,
    geometry: Geometry,
    head_caches: [AtomicU64; PRODUCERS],
    /// Frames not yet released, in ring order, starting at `head`.
    frames: VecDeque<(u64, Frame)>,
    head: u64,
    tail: u64,
    /// Each producer's outstanding claim and the position of its frame.
    open: [Option<(Claim, u64)>; PRODUCERS],
    next_id: u64,
    /// Committed records with their claim ids (commit order; the ring delivers in claim order).
    committed: Vec<(u64, Vec<u8>)>,
    delivered: Vec<Vec<u8>>,
    written: [u64; PRODUCERS],
}

impl Model {
    fn new(geometry: Geometry) -> Model {
        Model {
            ring: heap_ring(geometry),
            geometry,
            head_caches: Default::default(),
            frames: VecDeque::new(),
            head: 0,
            tail: 0,
            open: Default::default(),
            next_id: 0,
            committed: Vec::new(),
            delivered: Vec::new(),
            written: [0; PRODUCERS],
        }
    }

    fn frame_at(&mut self, pos: u64) -> &mut Frame {
        let i = self
            .frames
            .iter()
            .position(|(p, _)| *p == pos)
            .expect("frame in the model");
        &mut self.frames[i].1
    }

    fn claim(&mut self, producer: usize, size: Size) -> Result<(), TestCaseError> {
        if self.open[producer].is_some() {
            return Ok(()); // a producer thread holds one claim at a time
        }
        let max = self.geometry.max_record as usize;
        let len = match size {
            Size::Small(n) => n.min(max),
            Size::Any(f) => max * f as usize / 65536,
            Size::Max => max,
            Size::TooLarge(n) => max + n,
        };
        let got = self
            .ring
            .claim(producer as u16, len, &self.head_caches[producer]);
        if len > max {
            prop_assert_eq!(
                got,
                Err(ClaimError::TooLarge {
                    len,
                    max: max as u64
                })
            );
            return Ok(());
        }
        let cap = self.geometry.capacity;
        let span = span_of(len);
        let index = self.tail % cap;
        let pad = if index + span > cap { cap - index } else { 0 };
        let end = self.tail + pad + span;
        if end > self.head + cap {
            prop_assert_eq!(got, Err(ClaimError::Full));
            prop_assert_eq!(
                self.ring.tail(),
                self.tail,
                "a refused claim moved the tail"
            );
            return Ok(());
        }
        let claim = got.map_err(|e| TestCaseError::fail(format!("claim refused: {e:?}")))?;
        let pos = self.tail + pad;
        prop_assert_eq!(claim.pos(), pos);
        prop_assert_eq!(claim.capacity(), len);
        if pad > 0 {
            self.frames
                .push_back((self.tail, Frame::Wrap { span: pad }));
        }
        let id = self.next_id;
        self.next_id += 1;
        let payload: Vec<u8> = (0..len)
            .map(|i| (id as usize * 131 + i * 7) as u8)
            .collect();
        // Fill in two pieces, exercising offsets.
        let half = len / 2;
        self.ring.write_payload(&claim, half, &payload[half..]);
        self.ring.write_payload(&claim, 0, &payload[..half]);
        self.frames.push_back((
            pos,
            Frame::Claimed {
                producer,
                id,
                payload,
                state: State::Open,
            },
        ));
        self.open[producer] = Some((claim, pos));
        self.tail = end;
        prop_assert_eq!(self.ring.tail(), self.tail);
        Ok(())
    }

    fn finish(&mut self, producer: usize, commit: bool) {
        let Some((claim, pos)) = self.open[producer].take() else {
            return;
        };
        let Frame::Claimed {
            id, payload, state, ..
        } = self.frame_at(pos)
        else {
            unreachable!()
        };
        *state = if commit {
            State::Committed
        } else {
            State::Aborted
        };
        let (id, payload) = (*id, payload.clone());
        let len = payload.len();
        if commit {
            self.committed.push((id, payload));
            self.written[producer] += 1;
            let meta = RecordMeta {
                timestamp_ns: id,
                pid: producer as u32,
                tid: id as u32,
                level: Level::Debug,
                payload_len: len as u32,
                target_len: len.min(3) as u16,
                flags: 0,
                slot: 0,
            };
            let _ = self.ring.commit(claim, &meta);
        } else {
            self.ring.abort(claim);
        }
    }

    fn consume(&mut self, frames: usize, release_each: bool) -> Result<(), TestCaseError> {
        let mut at = self.head;
        let mut tail_cache = self.head;
        let mut consumed = 0;
        for _ in 0..frames {
            let expected = match self.frames.get(consumed) {
                None => Next::Empty,
                Some((_, Frame::Wrap { span })) => Next::Padding { span: *span },
                Some((
                    _,
                    Frame::Claimed {
                        producer,
                        id,
                        payload,
                        state,
                    },
                )) => {
                    let span = span_of(payload.len());
                    match state {
                        State::Open => Next::Pending {
                            slot: Some(*producer as u16),
                            len: Some((ringlog_core::FRAME_HEADER_SIZE + payload.len()) as u32),
                        },
                        State::Aborted => Next::Padding { span },
                        State::Committed => Next::Record {
                            meta: RecordMeta {
                                timestamp_ns: *id,
                                pid: *producer as u32,
                                tid: *id as u32,
                                level: Level::Debug,
                                payload_len: payload.len() as u32,
                                target_len: payload.len().min(3) as u16,
                                flags: 0,
                                slot: *producer as u16,
                            },
                            span,
                        },
                    }
                }
            };
            let got = self.ring.next_at(at, &mut tail_cache);
            prop_assert_eq!(got, expected, "at position {}", at);
            let span = match got {
                Next::Record { meta, span } => {
                    let mut buf = vec![0xAA; meta.payload_len as usize];
                    self.ring.read_at(at, 0, &mut buf);
                    let Some((_, Frame::Claimed { payload, .. })) = self.frames.get(consumed)
                    else {
                        unreachable!()
                    };
                    prop_assert_eq!(&buf, payload);
                    self.delivered.push(buf);
                    span
                }
                Next::Padding { span } => span,
                _ => break,
            };
            prop_assert_eq!(at, self.frames[consumed].0);
            at += span;
            consumed += 1;
            if release_each {
                self.ring.release_at(self.head, at);
                self.head = at;
                self.frames.pop_front();
                consumed = 0;
            }
        }
        if !release_each {
            self.ring.release_at(self.head, at);
            self.head = at;
            self.frames.drain(..consumed);
        }
        prop_assert_eq!(self.ring.head(), self.head);
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Claim { producer, size } => self.claim(producer, size),
            Op::Commit { producer } => {
                self.finish(producer, true);
                Ok(())
            }
            Op::Abort { producer } => {
                self.finish(producer, false);
                Ok(())
            }
            Op::Consume {
                frames,
                release_each,
            } => self.consume(frames, release_each),
        }
    }

    /// Commits what is open, consumes everything, and checks the end state.
    fn close(&mut self) -> Result<(), TestCaseError> {
        for p in 0..PRODUCERS {
            self.finish(p, true);
        }
        let frames = self.frames.len() + 1;
        self.consume(frames, false)?;
        prop_assert!(self.frames.is_empty());
        prop_assert_eq!(self.ring.next_at(self.head, &mut 0), Next::Empty);
        prop_assert_eq!(self.ring.head(), self.ring.tail());
        self.committed.sort_by_key(|(id, _)| *id);
        let in_claim_order: Vec<Vec<u8>> = self.committed.iter().map(|(_, p)| p.clone()).collect();
        prop_assert_eq!(
            &self.delivered,
            &in_claim_order,
            "every committed record exactly once, in claim order"
        );
        for p in 0..PRODUCERS {
            prop_assert_eq!(self.ring.slot_info(p as u16).written, self.written[p]);
        }
        // Consumed space keeps its bytes, but for the one word each release zeroes.
        let last = self.geometry.capacity - 8;
        prop_assert_eq!(
            peek(&self.ring, last),
            0,
            "the word at capacity - 8 is not zeroed"
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_the_model(
        max_record in prop_oneof![Just(40u64), Just(1000), Just(2008)],
        ops in prop::collection::vec(op(), 1..600),
    ) {
        let geometry = Geometry { capacity: 4096, max_record, slots: PRODUCERS as u32 };
        let mut model = Model::new(geometry);
        for op in ops {
            model.apply(op)?;
        }
        model.close()?;
    }
}
