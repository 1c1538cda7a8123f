//! The C ABI's cost over the Rust writer: `ringlog_write` (libringlog's exported function,
//! called through a function pointer as a C program calls it) against `Writer::write`, both of
//! 128 bytes (and 16 and 1024) into the same real shared-memory ring, with nothing running
//! beside them (an in-process drain empties the ring between timed batches). Target: the C
//! call within 10% of the Rust one. Beside them: an empty closure, and `Writer::write` called
//! through a Rust function pointer (what a call the compiler cannot inline into the loop costs,
//! as every call across the C ABI is).
//!
//! On a loaded machine criterion's means are dominated by preemption; after them, `floor`
//! prints the fastest of many alternating batches of each, which preemption can only slow.

mod common;

use ::ringlog_writer::{FullPolicy, Writer};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ringlog::{ringlog_close, ringlog_open_with, ringlog_options, ringlog_policy, ringlog_writer};
use ringlog_benches::run::{unique_ring, RingGuard};
use ringlog_core::{layout, FRAME_HEADER_SIZE};
use ringlog_drain::{Drain, DrainOptions, OutputSpec};
use std::ffi::{c_int, c_void, CString};
use std::hint::black_box;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 32 << 20;

/// `ringlog_write`'s C signature.
type CWrite = unsafe extern "C" fn(*const ringlog_writer, *const c_void, usize) -> c_int;

/// `Writer::write` behind a function pointer, like the C entry point.
type RustWrite = fn(&Writer, &[u8]) -> Result<(), ::ringlog_writer::WriteError>;

/// Times `iters` calls of `write`, letting `drain` empty the ring (untimed) every half ring.
fn timed(drain: &mut Drain, len: usize, iters: u64, mut write: impl FnMut()) -> Duration {
    let span = layout::align_record((FRAME_HEADER_SIZE + len) as u64);
    let per_batch = CAPACITY / 2 / span;
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_batch);
        let start = Instant::now();
        for _ in 0..n {
            write();
        }
        total += start.elapsed();
        while drain.pump() {}
        left -= n;
    }
    total
}

/// A libringlog handle on ring `name`, opened as a C program would.
fn open_c_handle(name: &str) -> *mut ringlog_writer {
    let mut options = ringlog_options::defaults();
    options.capacity = CAPACITY;
    options.policy = ringlog_policy::RINGLOG_POLICY_DROP as u32;
    let c_name = CString::new(name).unwrap();
    let mut handle: *mut ringlog_writer = std::ptr::null_mut();
    // SAFETY: valid C string, options and output pointer.
    let rc = unsafe { ringlog_open_with(c_name.as_ptr(), &options, &mut handle) };
    assert_eq!(rc, 0, "ringlog_open_with");
    handle
}

/// An in-process drain of ring `name` into /dev/null, pumped between timed batches.
fn open_drain(name: &str) -> Drain {
    Drain::open(DrainOptions::new(
        ringlog_core::Location::Name(name.to_owned()),
        OutputSpec::File("/dev/null".into()),
    ))
    .expect("start a drain")
}

fn c_abi(c: &mut Criterion) {
    let name = unique_ring();
    let _guard = RingGuard(name.clone());
    let rust = Writer::builder(&name)
        .capacity(CAPACITY)
        .full_policy(FullPolicy::Drop)
        .open()
        .expect("open a ring in /dev/shm");
    let handle = open_c_handle(&name);
    // Called through a pointer the optimiser cannot see through, as from C.
    let c_write: CWrite = black_box(ringlog::ringlog_write as CWrite);
    let mut drain = open_drain(&name);

    let mut g = c.benchmark_group("c_abi_write");
    g.bench_function("baseline_noop", |b| b.iter(|| black_box(())));
    for len in [16usize, 128, 1024] {
        let payload = vec![b'x'; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("rust_writer_write", len), &len, |b, _| {
            b.iter_custom(|iters| {
                timed(&mut drain, len, iters, || {
                    rust.write(black_box(&payload)).expect("ring has room")
                })
            })
        });
        let rust_write: RustWrite = black_box(Writer::write as RustWrite);
        g.bench_with_input(
            BenchmarkId::new("rust_writer_write_via_fn_pointer", len),
            &len,
            |b, _| {
                b.iter_custom(|iters| {
                    timed(&mut drain, len, iters, || {
                        rust_write(&rust, black_box(&payload)).expect("ring has room")
                    })
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("c_ringlog_write", len), &len, |b, _| {
            b.iter_custom(|iters| {
                timed(&mut drain, len, iters, || {
                    // SAFETY: a live handle and a readable payload of `len` bytes.
                    let rc = unsafe { c_write(handle, black_box(payload.as_ptr().cast()), len) };
                    assert_eq!(rc, 0, "ring has room");
                })
            })
        });
    }
    g.finish();
    // SAFETY: the handle from ringlog_open_with, used by no one after this.
    unsafe { ringlog_close(handle) };
}

/// Prints the fastest per-call time of 200 alternating batches of 20k calls of each writer
/// (128 B): a floor that preemption can only raise, comparable on a busy machine.
fn floor() {
    const BATCH: u64 = 20_000;
    let name = unique_ring();
    let _guard = RingGuard(name.clone());
    let rust = Writer::builder(&name)
        .capacity(CAPACITY)
        .full_policy(FullPolicy::Drop)
        .open()
        .expect("open a ring in /dev/shm");
    let handle = open_c_handle(&name);
    let c_write: CWrite = black_box(ringlog::ringlog_write as CWrite);
    let mut drain = open_drain(&name);
    let payload = vec![b'x'; 128];
    let (mut best_rust, mut best_c) = (f64::MAX, f64::MAX);
    for _ in 0..200 {
        let rust_time = timed(&mut drain, 128, BATCH, || {
            rust.write(black_box(&payload)).expect("ring has room")
        });
        // SAFETY: a live handle and a readable payload of 128 bytes.
        let c_time = timed(&mut drain, 128, BATCH, || unsafe {
            assert_eq!(c_write(handle, black_box(payload.as_ptr().cast()), 128), 0);
        });
        best_rust = best_rust.min(rust_time.as_nanos() as f64 / BATCH as f64);
        best_c = best_c.min(c_time.as_nanos() as f64 / BATCH as f64);
    }
    println!(
        "c_abi_floor/128: rust_writer_write {best_rust:.1} ns, c_ringlog_write {best_c:.1} ns \
         ({:+.0}%), fastest of 200 alternating batches of {BATCH} calls",
        (best_c / best_rust - 1.0) * 100.0
    );
    // SAFETY: the handle from ringlog_open_with, used by no one after this.
    unsafe { ringlog_close(handle) };
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = c_abi
}

fn main() {
    benches();
    floor();
    Criterion::default().configure_from_args().final_summary();
}
