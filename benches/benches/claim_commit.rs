//! Producer hot path by record size:
//! - `claim_commit_heap`: claim + copy + commit on a heap-backed ring: the protocol alone, no
//!   syscalls, no page faults (the space is released between timed batches);
//! - `writer_write_alone`: `Writer::write` on a real shared-memory ring with nothing running
//!   beside it (an in-process drain empties the ring between timed batches): the writer's own
//!   cost (clock, thread slot, registry counters) on top of the protocol;
//! - `writer_write`: `Writer::write` while a drain thread empties the ring into /dev/null at the
//!   same time: adds the cache-line traffic between producer and drain.
//!
//! Beside them, no-op baselines: an empty closure, one `Instant::now()`, and a plain copy of the
//! payload (the part of the cost no ring can avoid).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringlog_benches::run::{unique_ring, RingGuard};
use ringlog_core::memory::HeapMemory;
use ringlog_core::{layout, Geometry, RecordMeta, Ring, FRAME_HEADER_SIZE};
use ringlog_drain::{Drain, DrainOptions, OutputSpec};
use ringlog_writer::Writer;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 6] = [16, 64, 128, 256, 4096, 65536];
const HEAP_CAPACITY: u64 = 16 << 20;

fn heap_ring() -> Ring<HeapMemory> {
    let g = Geometry::with_capacity(HEAP_CAPACITY);
    Ring::create(HeapMemory::new(g.segment_len() as usize), g, 0, 0o600).expect("heap ring")
}

/// Times `iters` claim+copy+commit of `len` bytes, releasing the space (untimed) every half
/// ring, as a drain keeping up would.
fn claim_commit(
    ring: &Ring<HeapMemory>,
    head_cache: &AtomicU64,
    payload: &[u8],
    iters: u64,
) -> Duration {
    let span = layout::align_record((FRAME_HEADER_SIZE + payload.len()) as u64);
    let per_batch = (HEAP_CAPACITY / 2 / span).max(1);
    let meta = RecordMeta {
        payload_len: payload.len() as u32,
        ..Default::default()
    };
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_batch);
        let start = Instant::now();
        for _ in 0..n {
            let claim = ring
                .claim(0, black_box(payload.len()), head_cache)
                .expect("space was released");
            ring.write_payload(&claim, 0, black_box(payload));
            black_box(ring.commit(claim, &meta));
        }
        total += start.elapsed();
        consume_all(ring);
        left -= n;
    }
    total
}

fn heap(c: &mut Criterion) {
    let mut g = c.benchmark_group("claim_commit_heap");
    g.bench_function("baseline_noop", |b| b.iter(|| black_box(())));
    g.bench_function("baseline_instant_now", |b| b.iter(Instant::now));
    let ring = heap_ring();
    let head_cache = AtomicU64::new(ring.head());
    // Touch every page once so no measurement pays first-touch faults.
    claim_commit(&ring, &head_cache, &[7u8; 1024], HEAP_CAPACITY / 1024 * 2);
    for len in SIZES {
        let payload = vec![b'x'; len];
        let mut dst = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("baseline_copy", len), &len, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&payload)))
        });
        g.bench_with_input(BenchmarkId::new("claim_commit", len), &len, |b, _| {
            b.iter_custom(|iters| claim_commit(&ring, &head_cache, &payload, iters))
        });
    }
    g.finish();
}

fn writer_alone(c: &mut Criterion) {
    const CAPACITY: u64 = 32 << 20;
    let name = unique_ring();
    let _guard = RingGuard(name.clone());
    let writer = Writer::builder(&name)
        .capacity(CAPACITY)
        .full_policy(ringlog_writer::FullPolicy::Drop)
        .open()
        .expect("open a ring in /dev/shm");
    let mut drain = Drain::open(DrainOptions::new(
        ringlog_core::Location::Name(name.clone()),
        OutputSpec::File("/dev/null".into()),
    ))
    .expect("start a drain");
    let mut g = c.benchmark_group("writer_write_alone");
    g.bench_function("baseline_noop", |b| b.iter(|| black_box(())));
    g.bench_function("baseline_instant_now", |b| b.iter(Instant::now));
    g.bench_function("baseline_system_time_now", |b| {
        b.iter(std::time::SystemTime::now)
    });
    for len in [16usize, 128, 1024, 4096] {
        let payload = vec![b'x'; len];
        let span = layout::align_record((FRAME_HEADER_SIZE + len) as u64);
        let per_batch = CAPACITY / 2 / span;
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("write", len), &len, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(per_batch);
                    let start = Instant::now();
                    for _ in 0..n {
                        writer.write(black_box(&payload)).expect("ring has room");
                    }
                    total += start.elapsed();
                    while drain.pump() {}
                    left -= n;
                }
                total
            })
        });
    }
    g.finish();
}

fn writer(c: &mut Criterion) {
    let name = unique_ring();
    let _guard = RingGuard(name.clone());
    let writer = Writer::builder(&name)
        .capacity(64 << 20)
        .open()
        .expect("open a ring in /dev/shm");
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        let mut drain = Drain::open(DrainOptions::new(
            ringlog_core::Location::Name(name.clone()),
            OutputSpec::File("/dev/null".into()),
        ))
        .expect("start a drain");
        std::thread::spawn(move || drain.run(&stop, &AtomicBool::new(false)))
    };
    let mut g = c.benchmark_group("writer_write");
    g.bench_function("baseline_noop", |b| b.iter(|| black_box(())));
    g.bench_function("baseline_instant_now", |b| b.iter(Instant::now));
    for len in [16usize, 128, 1024, 4096] {
        let payload = vec![b'x'; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(
            BenchmarkId::new("write_drain_thread_to_dev_null", len),
            &len,
            |b, _| b.iter(|| writer.write(black_box(&payload)).expect("write")),
        );
    }
    g.finish();
    stop.store(true, Ordering::Relaxed);
    drain.join().expect("drain thread");
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = heap, writer_alone, writer
}
criterion_main!(benches);

/// Consumes everything committed (untimed), as a drain would, so the next batch finds room.
fn consume_all(ring: &ringlog_core::Ring<ringlog_core::memory::HeapMemory>) {
    use ringlog_core::{Consumer, Frame};
    let mut consumer = Consumer::new(ring).expect("the benchmark's only consumer");
    loop {
        match consumer.peek() {
            Frame::Record(record) => consumer.pass(&record),
            Frame::Padding(skip) => consumer.skip(skip),
            _ => break,
        }
    }
    consumer.release();
}
