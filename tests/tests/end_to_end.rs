//! The whole path with real processes: producer processes -> shared ring -> drain process ->
//! file, verified record by record.

use ringlog_tests::*;
use std::time::Duration;

const MIB: usize = 1 << 20;

fn run_producers(specs: &[ProducerSpec]) -> Vec<ProducerReport> {
    let children: Vec<_> = specs.iter().map(ProducerSpec::spawn).collect();
    children
        .into_iter()
        .flat_map(|c| parse_reports(&expect_success(c).stdout))
        .collect()
}

#[test]
fn four_producers_100k_records_up_to_1mib_arrive_exactly_once_untorn_in_order() {
    let ring = unique_ring("e2e4x100k");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let specs: Vec<_> = (0..4)
        .map(|id| ProducerSpec::new(&ring, id, 100_000, MIB))
        .collect();
    let reports = run_producers(&specs);
    assert_eq!(reports.len(), 4);
    assert!(
        reports
            .iter()
            .all(|r| r.written == 100_000 && r.dropped == 0),
        "{reports:?}"
    );
    let (status, err) = drain.stop();
    assert!(status.success(), "drain exit {status}: {err}");
    let ids = tid_map(&reports);
    let v = verify_json_log(&out, &ids, MIB);
    assert_exact(&v, &ids, 100_000);
    assert!(
        v.notices.is_empty(),
        "unexpected drain notices: {:?}",
        v.notices
    );
}

#[test]
fn producers_may_start_before_the_drain() {
    let ring = unique_ring("startorder");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    assert!(!ring_path(&ring).exists());
    // 3 x 20k records of <= 2 KiB fit in a 64 MiB ring, so nothing needs the drain yet.
    let specs: Vec<_> = (0..3)
        .map(|id| ProducerSpec::new(&ring, id, 20_000, 2048).capacity(64 << 20))
        .collect();
    let reports = run_producers(&specs);
    assert!(
        reports
            .iter()
            .all(|r| r.written == 20_000 && r.dropped == 0),
        "{reports:?}"
    );
    assert!(!out.exists(), "nothing may be written before a drain runs");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    assert_exact(&verify_json_log(&out, &ids, 2048), &ids, 20_000);
}

#[test]
fn records_committed_while_the_drain_is_down_are_written_when_it_restarts() {
    let ring = unique_ring("restart");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let mut reports = Vec::new();
    for round in 0..3u32 {
        let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64M"]);
        reports.extend(run_producers(&[ProducerSpec::new(
            &ring, round, 10_000, 4096,
        )]));
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        // Written with no drain running: stays in the ring (64 MiB: room for all of it) for the
        // next round's drain.
        reports.extend(run_producers(&[ProducerSpec::new(
            &ring,
            10 + round,
            10_000,
            4096,
        )]));
    }
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64M"]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    assert_eq!(ids.len(), 6);
    assert_exact(&verify_json_log(&out, &ids, 4096), &ids, 10_000);
}

#[test]
fn threads_and_forked_children_each_keep_their_order() {
    let ring = unique_ring("threadsfork");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let mut threads = ProducerSpec::new(&ring, 1, 20_000, 512);
    threads.extra = vec!["--threads".into(), "4".into()];
    let mut forking = ProducerSpec::new(&ring, 2, 20_000, 512);
    forking.extra = vec!["--fork".into()];
    let reports = run_producers(&[threads, forking]);
    assert_eq!(reports.len(), 6, "{reports:?}");
    let parent = reports.iter().find(|r| r.id == 2).unwrap();
    let child = reports.iter().find(|r| r.id == 1002).unwrap();
    assert_ne!(
        parent.pid, child.pid,
        "the child must write with its own pid"
    );
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    let v = verify_json_log(&out, &ids, 512);
    assert_exact(&v, &ids, 20_000);
}

#[test]
fn an_idle_drain_writes_a_new_record_promptly() {
    let ring = unique_ring("idle");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &[]);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    for i in 0..3 {
        let line = format!("hello {i}");
        writer.write(line.as_bytes()).unwrap();
        let found = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&out).is_ok_and(|s| s.lines().any(|l| l == line))
        });
        assert!(found, "record {i} never reached the file");
    }
    let (status, _) = drain.stop();
    assert!(status.success());
}

#[test]
fn ringlog_pipe_turns_each_line_into_one_record() {
    let ring = unique_ring("pipe");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &[]);
    let mut pipes = Vec::new();
    let mut inputs = Vec::new();
    for id in 0..4u32 {
        // Lines of 1 B to 256 KiB, unique per pipe, fed through a file on stdin.
        let mut input = Vec::new();
        let mut rec = Vec::new();
        for seq in 0..2_000u64 {
            record(id, seq, 256 * 1024, &mut rec);
            input.extend_from_slice(format!("pipe{id} {seq} ").as_bytes());
            input.extend_from_slice(&rec);
            input.push(b'\n');
        }
        let path = dir.path().join(format!("in{id}"));
        std::fs::write(&path, &input).unwrap();
        inputs.push(input);
        let child = std::process::Command::new(bin("ringlog-pipe"))
            .args(["--ring", &ring, "--level", "info"])
            .stdin(std::fs::File::open(&path).unwrap())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        pipes.push(child);
    }
    for p in pipes {
        expect_success(p);
    }
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let log = std::fs::read(&out).unwrap();
    // Each pipe's lines appear whole, once, in order, interleaved only at line boundaries.
    for (id, input) in inputs.iter().enumerate() {
        let prefix = format!("pipe{id} ");
        let mine: Vec<&[u8]> = log
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(prefix.as_bytes()))
            .collect();
        let expected: Vec<&[u8]> = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(mine.len(), expected.len(), "lines of pipe {id}");
        assert!(mine == expected, "pipe {id}'s lines differ");
    }
    assert_eq!(
        log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
        8_000
    );
}

fn json_timestamps(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = humantime::parse_rfc3339(v["ts"].as_str().unwrap()).unwrap();
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        })
        .collect()
}

#[test]
fn formatted_timestamps_are_wall_clock_time_with_tick_and_realtime_stamps() {
    let ring = unique_ring("timestamps");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let now = ringlog_core::clock::now_ns;
    // In this process: tick stamps wherever the kernel's clocksource is the TSC.
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let mut windows = Vec::new();
    for i in 0..20 {
        let before = now();
        writer.write(format!("in-process {i}").as_bytes()).unwrap();
        windows.push((before, now()));
        std::thread::sleep(Duration::from_millis(3));
    }
    // In a child forced onto the wall clock.
    let before = now();
    let child = std::process::Command::new(bin("ringlog-test-producer"))
        .args([
            "--ring",
            &ring,
            "--id",
            "7",
            "--records",
            "20",
            "--max-size",
            "64",
        ])
        .env("RINGLOG_CLOCK", "realtime")
        .output()
        .unwrap();
    assert!(child.status.success());
    let child_window = (before, now());
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let stamps = json_timestamps(&out);
    assert_eq!(stamps.len(), 40);
    // Each tick stamp lands within 1 ms of the wall-clock window around its write.
    for (ts, (lo, hi)) in stamps.iter().zip(&windows) {
        assert!(
            *ts + 1_000_000 >= *lo && *ts <= hi + 1_000_000,
            "{lo} <= {ts} <= {hi}"
        );
    }
    for ts in &stamps[20..] {
        assert!(
            *ts >= child_window.0 && *ts <= child_window.1,
            "{child_window:?} vs {ts}"
        );
    }
    assert!(
        stamps[..20].windows(2).all(|w| w[0] < w[1]),
        "tick stamps keep their order"
    );
}

/// The README's first command, smaller: the demo verifies its log, removes its scratch
/// directory and ring, and keeps the log only where `--dir` says.
#[test]
fn the_demo_verifies_cleans_up_and_keeps_the_log_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = |extra: &[&str]| {
        let child = std::process::Command::new(bin("ringlog-demo"))
            .args(["--records", "20000", "--producers", "2"])
            .args(extra)
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = expect_success(child);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout
                .matches("verified: every record exactly once")
                .count(),
            2,
            "{stdout}"
        );
        assert!(
            !ring_path(&format!("demo-{pid}")).exists(),
            "the demo's ring must be removed"
        );
        stdout
    };
    let stdout = demo(&[]);
    assert!(
        stdout.contains("20000 lines, verified and removed"),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the scratch directory must be gone: {left:?}"
    );

    let keep = tmp.path().join("kept");
    let stdout = demo(&["--dir", keep.to_str().unwrap()]);
    let log = keep.join("ringlog.log");
    assert!(
        stdout.contains(&format!("log: {}", log.display())),
        "{stdout}"
    );
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(lines, 20000);
}

/// The drain with its writing thread (`write_thread`), raw format: records of the demo's mix (a
/// few of 4-16 KiB and 64-128 KiB, which go to the file from the ring in place) from three
/// producers through a 1 MiB ring, so batches are handed off and released while the ring wraps
/// and fills again behind them. Every record must arrive once, whole, in its producer's order.
#[test]
fn a_drain_writing_on_its_own_thread_loses_tears_and_reorders_nothing() {
    use ringlog_drain::{Drain, DrainOptions, OutputSpec};
    use ringlog_testkit::record::{self, RecordBuf, SizeSpec};
    use ringlog_writer::{FullPolicy, Writer};
    use std::sync::atomic::{AtomicBool, Ordering};
    const PER_PRODUCER: u64 = 40_000;
    let ring = unique_ring("writethread");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let mut options = DrainOptions::new(
        ringlog_core::Location::Name(ring.clone()),
        OutputSpec::File(out.clone()),
    );
    options.segment.capacity = Some(MIB as u64);
    options.write_thread = ringlog_drain::WriteThread::Always;
    let mut drain = Drain::open(options).unwrap();
    let (stop, reopen) = (AtomicBool::new(false), AtomicBool::new(false));
    let summary = std::thread::scope(|s| {
        let draining = s.spawn(|| drain.run(&stop, &reopen));
        let producers: Vec<_> = (0..3)
            .map(|id| {
                let ring = &ring;
                s.spawn(move || {
                    let writer = Writer::builder(ring)
                        .capacity(MIB as u64)
                        .full_policy(FullPolicy::Block)
                        .open()
                        .unwrap();
                    let mut rec = RecordBuf::new(id, SizeSpec::Mixed);
                    for seq in 0..PER_PRODUCER {
                        writer.write(rec.make(seq)).unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        // Relaxed: a request flag; `run` writes everything committed before it returns.
        stop.store(true, Ordering::Relaxed);
        draining.join().unwrap()
    });
    assert_eq!(summary.records, 3 * PER_PRODUCER);
    let v = record::verify(&out, 3, PER_PRODUCER, SizeSpec::Mixed).unwrap();
    assert!(v.is_perfect(), "{}", v.summary());
}
