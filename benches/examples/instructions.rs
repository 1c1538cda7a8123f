//! Instructions per record on the two hot paths, counted by callgrind: a producer's
//! `Writer::write` of a 128-byte record, and the drain's consume + format (raw) + write + release
//! of one, into /dev/null. Counts do not depend on the machine's load, so two builds can be
//! compared on a busy machine; times cannot.
//!
//! ```sh
//! cargo build --release -p ringlog-benches --example instructions
//! for mode in write drain; do for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions $mode $n 2>&1 | grep Collected
//! done; done
//! ```
//!
//! Per write: `(write 200000 - write 100000) / 100000`. Per drained record: the same difference
//! for `drain`, less the writes' (a `drain` run writes its records first). Fixed costs (opening
//! the ring and the drain) cancel out in the differences.

use ringlog_core::Location;
use ringlog_drain::{Drain, DrainOptions, Format, OutputSpec};
use ringlog_writer::{FullPolicy, Writer};

/// Room for 200,000 records of 128 bytes (168-byte frames) without a drain.
const CAPACITY: u64 = 64 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(records)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok()))
    else {
        eprintln!("usage: instructions write|drain RECORDS");
        std::process::exit(2);
    };
    let name = format!("instructions-{}", std::process::id());
    let location = Location::Name(name.clone());
    let path = location.path().expect("a valid ring name");
    let writer = Writer::builder(&name)
        .capacity(CAPACITY)
        .full_policy(FullPolicy::Drop)
        .open()
        .expect("open a ring in /dev/shm");
    let mut record = [b'x'; 128];
    record[127] = b'\n';
    for _ in 0..records {
        writer.write(&record).expect("the ring has room");
    }
    // Gone before the drain stops: it keeps no spare link for an attached producer.
    drop(writer);
    let drained = match mode.as_str() {
        "write" => None,
        "drain" => {
            let mut options = DrainOptions::new(location, OutputSpec::File("/dev/null".into()));
            options.format = Format::Raw;
            let mut drain = Drain::open(options).expect("open the drain");
            while drain.pump() {}
            Some(drain.summary().records)
        }
        _ => {
            eprintln!("usage: instructions write|drain RECORDS");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_file(&path);
    if let Some(n) = drained {
        assert_eq!(n, records, "every record drained");
    }
}
