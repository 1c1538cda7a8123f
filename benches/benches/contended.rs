//! Claim + copy + commit of 64-byte records from 2 threads at once on one heap-backed ring
//! (the tail CAS and the shared cache lines under contention), beside the same work from 1
//! thread and a no-op baseline with the same thread start/stop. Reported time is wall time
//! per record over all threads (aggregate throughput).

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringlog_core::memory::HeapMemory;
use ringlog_core::{layout, Geometry, RecordMeta, Ring, FRAME_HEADER_SIZE};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 16 << 20;
const LEN: usize = 64;

/// Runs `iters` records split over `threads` threads, releasing the ring between rounds
/// (untimed). With `work == false` the threads only start and stop (the baseline).
fn rounds(ring: &Ring<HeapMemory>, threads: u64, iters: u64, work: bool) -> Duration {
    let span = layout::align_record((FRAME_HEADER_SIZE + LEN) as u64);
    let per_round = (CAPACITY / 2 / span).max(threads);
    let payload = [b'x'; LEN];
    let meta = RecordMeta {
        payload_len: LEN as u32,
        ..Default::default()
    };
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_round);
        let barrier = Barrier::new(threads as usize + 1);
        let head_caches: Vec<AtomicU64> =
            (0..threads).map(|_| AtomicU64::new(ring.head())).collect();
        let elapsed = std::thread::scope(|s| {
            for t in 0..threads {
                let (barrier, head_cache) = (&barrier, &head_caches[t as usize]);
                let mine = n / threads + u64::from(t < n % threads);
                s.spawn(move || {
                    barrier.wait();
                    if work {
                        for _ in 0..mine {
                            let claim = ring.claim(t as u16, LEN, head_cache).expect("space");
                            ring.write_payload(&claim, 0, black_box(&payload));
                            black_box(ring.commit(claim, &meta));
                        }
                    }
                    barrier.wait();
                });
            }
            barrier.wait();
            let start = Instant::now();
            barrier.wait();
            start.elapsed()
        });
        total += elapsed;
        consume_all(ring);
        left -= n;
    }
    total
}

fn contended(c: &mut Criterion) {
    let g0 = Geometry::with_capacity(CAPACITY);
    let ring =
        Ring::create(HeapMemory::new(g0.segment_len() as usize), g0, 0, 0o600).expect("ring");
    rounds(&ring, 1, CAPACITY / 96 * 2, true);
    let mut g = c.benchmark_group("claim_commit_contended_64B");
    g.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        g.bench_with_input(
            BenchmarkId::new("baseline_noop_threads", threads),
            &threads,
            |b, &t| b.iter_custom(|iters| rounds(&ring, t, iters, false)),
        );
        g.bench_with_input(
            BenchmarkId::new("claim_commit_threads", threads),
            &threads,
            |b, &t| b.iter_custom(|iters| rounds(&ring, t, iters, true)),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = contended
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
