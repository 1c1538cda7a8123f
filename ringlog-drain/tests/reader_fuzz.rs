//! Fuzzing the drain's reader: random garbage scribbled over a live segment (frame words, the
//! tail, producer intents) must never make the drain panic, touch memory outside the ring, or
//! loop forever. Every ring access is bounds-checked (`Memory` panics rather than go outside),
//! so "no panic" here means "no out-of-bounds access".

use proptest::prelude::*;
use ringlog_core::layout::{data_offset, off, slot_off, slot_offset};
use ringlog_core::memory::Memory;
use ringlog_core::{Location, RecordMeta, SegmentOptions};
use ringlog_drain::{Drain, DrainOptions, Format, OutputSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const CAPACITY: u64 = 16 << 10;
const SLOTS: u32 = 4;

/// Removes the segment even when a case fails (panics).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug, Clone)]
enum Scribble {
    /// Overwrite the data-region word at this 8-byte index (relative to head).
    Data(u16, u64),
    /// Move the tail somewhere (relative to head; may be absurd).
    Tail(u64),
    /// Put a claim intent in a slot.
    Intent(u8, u64),
}

fn scribble() -> impl Strategy<Value = Scribble> {
    prop_oneof![
        6 => (0u16..(CAPACITY / 8) as u16 * 2, any::<u64>()).prop_map(|(i, v)| Scribble::Data(i, v)),
        6 => (0u16..512, 1u64..0x40_0000_0000).prop_map(|(i, kind)| Scribble::Data(i, (kind << 32) | (i as u64 * 8 + 40))),
        1 => prop_oneof![0u64..CAPACITY * 2, any::<u64>()].prop_map(Scribble::Tail),
        1 => (0u8..SLOTS as u8, 0u64..CAPACITY * 2).prop_map(|(s, v)| Scribble::Intent(s, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_crashes_or_wedges_the_drain(
        sizes in prop::collection::vec(0usize..600, 0..40),
        consumed in prop::collection::vec(0usize..600, 0..20),
        scribbles in prop::collection::vec(scribble(), 1..12),
        raw in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let seg_path = std::path::Path::new("/dev/shm").join(format!(
            "ringlog-fuzz-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        let _cleanup = RemoveOnDrop(seg_path.clone());
        let location = Location::Path(seg_path.clone());
        let seg_options = SegmentOptions { capacity: Some(CAPACITY), slots: Some(SLOTS), ..Default::default() };
        let segment = ringlog_core::Segment::open(&location, &seg_options).unwrap();
        let ring = segment.ring();
        let head_cache = AtomicU64::new(0);
        let write = |n: usize| {
            if let Ok(claim) = ring.claim(0, n, &head_cache) {
                ring.write_payload(&claim, 0, &vec![b'x'; n]);
                ring.commit(claim, &RecordMeta { payload_len: n as u32, ..Default::default() });
            }
        };
        // Records a first drain consumes, so head is somewhere inside the ring...
        for &n in &consumed {
            write(n);
        }
        let mut options = DrainOptions::new(location.clone(), OutputSpec::File(dir.path().join("out")));
        options.segment = seg_options.clone();
        // Raw reads runs of records on its own fast path; json one frame at a time.
        options.format = if raw { Format::Raw } else { Format::Json };
        options.abandon_check_after = Duration::ZERO;
        options.stall_report_after = Duration::ZERO;
        {
            let mut drain = Drain::open(options.clone()).unwrap();
            while drain.pump() {}
        }
        // ...then records it has not read yet, then garbage over them.
        for &n in &sizes {
            write(n);
        }
        let head = ring.head();
        let data = data_offset(SLOTS);
        // SAFETY: nothing else writes the segment while the test scribbles over it.
        let mem = unsafe { ring.memory() };
        for s in &scribbles {
            match *s {
                Scribble::Data(i, v) => {
                    let at = data + ((head + i as u64 * 8) & (CAPACITY - 1)) as usize;
                    mem.u64_at(at).store(v, Ordering::Relaxed);
                }
                Scribble::Tail(t) => mem.u64_at(off::TAIL).store(head.wrapping_add(t), Ordering::Relaxed),
                Scribble::Intent(slot, v) => mem.u64_at(slot_offset(slot as u32) + slot_off::INTENT).store(head + v, Ordering::Relaxed),
            }
        }
        let mut drain = Drain::open(options).unwrap();
        // Each pass is bounded; a handful of passes reach a fixed point (idle or stalled).
        for _ in 0..64 {
            drain.pump();
        }
        let after = ring.head();
        prop_assert!(after >= head);
        prop_assert!(after - head <= CAPACITY * 2);
    }
}
