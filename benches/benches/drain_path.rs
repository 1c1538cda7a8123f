//! The drain's consume + format + write path per output format (raw, text, json), into
//! /dev/null so the filesystem is out of the picture: a ring is filled (untimed), then an
//! in-process `Drain` is pumped until it is empty (timed). Time per record; throughput in bytes
//! of payload. Beside it, a no-op baseline and a plain copy of the same payload bytes.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringlog_benches::record::{RecordBuf, SizeSpec};
use ringlog_benches::run::{unique_ring, RingGuard};
use ringlog_core::{layout, FRAME_HEADER_SIZE};
use ringlog_drain::{Drain, DrainOptions, Format, OutputSpec};
use ringlog_writer::{FullPolicy, Writer};
use std::hint::black_box;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 32 << 20;

fn drain_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("drain_consume_format_write");
    g.bench_function("baseline_noop", |b| b.iter(|| black_box(())));
    for len in [128usize, 4096] {
        let src = vec![b'x'; len];
        let mut dst = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("baseline_copy", len), &len, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });
        for format in [Format::Raw, Format::Text, Format::Json] {
            let name = unique_ring();
            let _guard = RingGuard(name.clone());
            let writer = Writer::builder(&name)
                .capacity(CAPACITY)
                .full_policy(FullPolicy::Drop)
                .open()
                .expect("open a ring in /dev/shm");
            let mut options = DrainOptions::new(
                ringlog_core::Location::Name(name.clone()),
                OutputSpec::File("/dev/null".into()),
            );
            options.format = format;
            let mut drain = Drain::open(options).expect("open the drain");
            let span = layout::align_record((FRAME_HEADER_SIZE + len) as u64);
            let per_fill = CAPACITY / 16 * 15 / span;
            let mut rec = RecordBuf::new(0, SizeSpec::Fixed(len));
            let mut seq = 0u64;
            let id = format!("{format:?}").to_lowercase();
            g.bench_with_input(BenchmarkId::new(id, len), &len, |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(per_fill);
                        for _ in 0..n {
                            writer.write(rec.make(seq)).expect("ring has room");
                            seq += 1;
                        }
                        let start = Instant::now();
                        while drain.pump() {}
                        total += start.elapsed();
                        left -= n;
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = drain_path
}
criterion_main!(benches);
