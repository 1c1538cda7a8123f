//! The drain's typed events: what it tells its operator arrives at an installed sink as
//! [`DrainEvent`] values (and, for lost records, as notice lines in the log too), so these
//! tests assert on values, not on stderr wording. Rings are real segments in /dev/shm, the
//! output a real file.

use ringlog_core::layout::{self, off};
use ringlog_core::memory::Memory;
use ringlog_core::{Corruption, Location, RecordMeta, Segment, SegmentOptions};
use ringlog_drain::{Drain, DrainEvent, DrainOptions, OutputSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a test sink collected: one string per event.
type Seen = Arc<Mutex<Vec<String>>>;

const CAPACITY: u64 = 16 << 10;
const SLOTS: u32 = 4;

/// A segment in /dev/shm, removed when the test ends (also on a panic), with the spare link a
/// drain keeps beside it when it stops while records still wait in the ring (a failing output).
struct Ring {
    path: std::path::PathBuf,
    segment: Segment,
    options: SegmentOptions,
}

impl Ring {
    fn new(test: &str) -> Ring {
        let path = std::path::Path::new("/dev/shm")
            .join(format!("ringlog-events-{test}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let options = SegmentOptions {
            capacity: Some(CAPACITY),
            slots: Some(SLOTS),
            ..Default::default()
        };
        let segment = Segment::open(&Location::Path(path.clone()), &options).unwrap();
        Ring {
            path,
            segment,
            options,
        }
    }

    fn write(&self, payload: &[u8]) -> u64 {
        let ring = self.segment.ring();
        let claim = ring.claim(0, payload.len(), &AtomicU64::new(0)).unwrap();
        let pos = claim.pos();
        ring.write_payload(&claim, 0, payload);
        let _ = ring.commit(
            claim,
            &RecordMeta {
                payload_len: payload.len() as u32,
                ..Default::default()
            },
        );
        pos
    }

    /// A drain writing to `out`, whose events land in the returned list as their lines.
    fn drain(&self, out: OutputSpec) -> (Drain, Seen, Seen) {
        let mut options = DrainOptions::builder(Location::Path(self.path.clone()), out)
            .segment(self.options.clone())
            .build();
        options.batch_bytes = 1 << 16;
        let mut drain = Drain::open(options).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kinds = Arc::new(Mutex::new(Vec::new()));
        let (l, k) = (lines.clone(), kinds.clone());
        drain.set_event_sink(move |ring: &str, event: &DrainEvent| {
            l.lock().unwrap().push(event.line(ring).to_string());
            k.lock().unwrap().push(format!("{event:?}"));
        });
        (drain, lines, kinds)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(ringlog_drain::segment_name::spare_path(&self.path));
    }
}

#[test]
fn a_corrupt_frame_is_an_event_and_a_notice_in_the_log() {
    let ring = Ring::new("corrupt");
    ring.write(b"before\n");
    let bad = ring.write(b"garbage follows\n");
    ring.write(b"after\n");
    // A producer scribbles an unknown kind (9) over the second frame's first word.
    // SAFETY: no producer is writing (the test wrote its records and stopped), and the drain
    // is not running yet.
    let mem = unsafe { ring.segment.ring().memory() };
    let at = layout::data_offset(SLOTS) + (bad & (CAPACITY - 1)) as usize;
    let word0 = mem.u64_at(at).load(Ordering::Relaxed);
    mem.u64_at(at)
        .store((word0 & !(0xff << 32)) | (9 << 32), Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (mut drain, lines, kinds) = ring.drain(OutputSpec::File(out.clone()));
    while drain.pump() {}
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert!(
        kinds[0].starts_with("CorruptSkipped { bytes: ")
            && kinds[0].contains(&format!("pos: {bad}, why: {:?}", Corruption::Kind(9))),
        "{kinds:?}"
    );
    let line = lines.lock().unwrap()[0].clone();
    assert!(
        line.contains("corrupt bytes at ring position")
            && line.ends_with("(a producer wrote garbage into the ring)"),
        "{line}"
    );
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(log.starts_with("before\n"), "{log}");
    assert!(
        log.contains("ringlog: skipped"),
        "the notice is in the log: {log}"
    );
    assert!(!log.contains("garbage follows"), "{log}");
    assert_eq!(drain.summary().corrupt, 1);
    assert_eq!(ring.segment.ring().counters().corrupt, 1);
}

#[test]
fn garbage_over_a_check_word_is_skipped_as_an_abandoned_claim_and_reported() {
    let ring = Ring::new("check");
    ring.write(b"before\n");
    let bad = ring.write(b"its check word is overwritten\n");
    let after = ring.write(b"after\n");
    // A producer scribbles over the second frame's check word (word 1): the frame no longer
    // reads as written in this lap, so it is a claim whose header is not written, and no
    // producer's intent names it (the writer moved on): its bytes up to the next frame written
    // in this lap are skipped as abandoned by an unknown producer, reported and counted.
    // SAFETY: no producer is writing (the test wrote its records and stopped), and the drain
    // is not running yet.
    let mem = unsafe { ring.segment.ring().memory() };
    let at = layout::data_offset(SLOTS) + (bad & (CAPACITY - 1)) as usize + 8;
    mem.u64_at(at)
        .store(0x5555_5555_5555_5555, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (mut drain, lines, kinds) = ring.drain(OutputSpec::File(out.clone()));
    // The drain waits `abandon_check_after` before it asks for a verdict: pump until it did.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while drain.summary().records < 2 && std::time::Instant::now() < deadline {
        drain.pump();
    }
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(
        kinds,
        vec![format!(
            "AbandonedClaim {{ bytes: {}, pid: 0 }}",
            after - bad
        )]
    );
    assert!(
        lines.lock().unwrap()[0].contains(&format!("skipped {} bytes", after - bad)),
        "{:?}",
        lines.lock().unwrap()
    );
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(
        log.starts_with("before\n") && log.ends_with("after\n"),
        "{log}"
    );
    assert!(
        log.contains("ringlog: skipped"),
        "the notice is in the log: {log}"
    );
    assert!(!log.contains("overwritten"), "{log}");
    assert_eq!(drain.summary().abandoned, 1);
    assert_eq!(drain.summary().corrupt, 0);
    assert_eq!(ring.segment.ring().counters().abandoned, 1);
}

#[test]
fn a_garbage_tail_is_repaired_and_reported() {
    let ring = Ring::new("tail");
    ring.write(b"one\n");
    let dir = tempfile::tempdir().unwrap();
    let (mut drain, _, kinds) = ring.drain(OutputSpec::File(dir.path().join("out")));
    assert!(drain.pump(), "the record is written");
    let head = ring.segment.ring().head();
    assert!(head > 0);
    // A misaligned tail: no correct producer leaves one.
    // SAFETY: the tail is a header word, only ever accessed atomically.
    unsafe { ring.segment.ring().memory() }
        .u64_at(off::TAIL)
        .store(head + 3, Ordering::Relaxed);
    for _ in 0..4 {
        drain.pump();
    }
    let kinds = kinds.lock().unwrap().clone();
    let want = format!("TailRepaired {{ bad: {}, to: {head} }}", head + 3);
    assert!(kinds.contains(&want), "{kinds:?}");
    assert_eq!(
        ring.segment.ring().tail(),
        head,
        "producers continue at head"
    );
}

#[test]
fn a_failing_output_is_reported_once_and_keeps_the_records() {
    let ring = Ring::new("full");
    ring.write(b"kept in the ring\n");
    let (mut drain, lines, kinds) = ring.drain(OutputSpec::File("/dev/full".into()));
    for _ in 0..3 {
        assert!(!drain.pump(), "nothing can be written to /dev/full");
    }
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(kinds.len(), 1, "reported once per failing spell: {kinds:?}");
    assert!(kinds[0].starts_with("OutputFailed"), "{kinds:?}");
    let line = lines.lock().unwrap()[0].clone();
    assert!(
        line.starts_with("cannot write to ") && line.contains("keeping"),
        "{line}"
    );
    assert_eq!(ring.segment.ring().head(), 0, "nothing released");
}

#[test]
fn a_receivers_events_go_to_the_drains_sink() {
    // A port nothing listens on: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("relp://127.0.0.1:{port}");
    let destination = ringlog_drain::syslog::Destination::parse(&url).unwrap();
    let ring = Ring::new("receiver");
    ring.write(b"kept in the ring\n");
    let (mut drain, lines, kinds) = ring.drain(OutputSpec::Syslog(destination));
    assert!(!drain.pump(), "a refused receiver takes nothing");
    // The RELP connection says its totals as the output closes: through the sink installed
    // after the output was opened, not on standard error.
    drop(drain);
    let kinds = kinds.lock().unwrap().clone();
    assert!(kinds[0].starts_with("OutputFailed"), "{kinds:?}");
    let closed = format!(
        "Delivery(Closed(Totals {{ address: \"127.0.0.1:{port}\", counts: Counts {{ sent: 0, \
         acknowledged: 0, resent: 0 }} }}))"
    );
    assert_eq!(kinds.last(), Some(&closed), "{kinds:?}");
    let lines = lines.lock().unwrap().clone();
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            format!(
                "RELP to 127.0.0.1:{port}: sent 0, acknowledged 0, resent 0 (the receiver may \
                 hold up to 0 duplicates)"
            )
            .as_str()
        ),
        "{lines:?}"
    );
}
