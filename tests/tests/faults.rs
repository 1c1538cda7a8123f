//! The fault model of DESIGN.md with real processes and signals: producers and drains killed
//! or stopped at injected points and at random, a full ring under each policy with the
//! counters reconciled, a failing output, hostile bytes in a live ring, bad segments.

use ringlog_core::fault::Point;
use ringlog_tests::*;
use std::process::{Child, Command};
use std::time::Duration;

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits (up to 30 s) until child `pid` is stopped by a signal, as an armed `stop` fault stops
/// it; panics if it is not.
fn wait_stopped(pid: u32, who: &str) {
    let stopped = wait_until(Duration::from_secs(30), || {
        let mut status = 0;
        // SAFETY: waitpid(2) on a child of this test; WUNTRACED reports a stop without reaping.
        let got =
            unsafe { libc::waitpid(pid as i32, &mut status, libc::WUNTRACED | libc::WNOHANG) };
        got == pid as i32 && libc::WIFSTOPPED(status)
    });
    assert!(
        stopped,
        "{who} (pid {pid}) never stopped at its fault point"
    );
}

/// `ringlog-drain stat --json`'s document for `ring`.
fn stat(ring: &str) -> serde_json::Value {
    ringlog_drain::stat::snapshot(&ringlog_core::Location::Name(ring.to_owned()))
        .expect("stat")
        .to_json()
}

fn reports_of(children: Vec<Child>) -> Vec<ProducerReport> {
    children
        .into_iter()
        .flat_map(|c| parse_reports(&expect_success(c).stdout))
        .collect()
}

/// Runs the fault-armed drain on `ring` with `args` until `fault` kills it (asserted).
fn drain_killed_at(ring: &str, out: &std::path::Path, args: &[&str], fault: &str) {
    let (status, err) = DrainProcess::start_doomed(ring, out, args, fault).wait_exit();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the drain must die at {fault}: {err}"
    );
}

/// Drop/abandon notices as (count, pid) pairs.
fn notices(v: &Verdict, what: &str) -> Vec<(u64, u32)> {
    v.notices
        .iter()
        .filter(|n| n.contains(what))
        .map(|n| {
            let words: Vec<&str> = n.split(' ').collect();
            let count = words[2].parse().unwrap();
            let pid = words[words.iter().position(|w| *w == "pid").unwrap() + 1]
                .parse()
                .unwrap();
            (count, pid)
        })
        .collect()
}

#[test]
fn a_producer_killed_at_any_point_of_a_record_is_skipped_and_nothing_else_is_lost() {
    for point in [
        Point::AfterClaimCas,
        Point::BeforePadding,
        Point::BeforeCopy,
        Point::MidCopy,
        Point::BeforeCommit,
    ] {
        let ring = unique_ring(point.name());
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        // A small ring, so claims wrap (for before-padding) and a stall would block everyone.
        let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "256K"]);
        // Which producer's claim crosses the end of the ring is up to chance (and to the
        // scheduler: the victim sometimes finished 20,000 records without one): arm the
        // victim's first wrap and give it records enough to keep writing after the others are
        // done, when every wrap is its own.
        let (nth, victim_records) = if point == Point::BeforePadding {
            (1, 1_000_000)
        } else {
            (5_000, 20_000)
        };
        let mut faulty = ProducerSpec::new(&ring, 9, victim_records, 2048);
        faulty.extra = vec!["--fault".into(), format!("{}:kill:{nth}", point.name())];
        let victim = faulty.spawn();
        let victim_pid = victim.id();
        let others: Vec<_> = (0..3)
            .map(|id| ProducerSpec::new(&ring, id, 20_000, 2048).spawn())
            .collect();
        let output = victim.wait_with_output().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&output.status),
            Some(libc::SIGKILL),
            "{}: the faulty producer must die at its point; it ended with {}: {}",
            point.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let reports = reports_of(others);
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        let mut ids = tid_map(&reports);
        ids.insert(victim_pid, 9);
        let v = verify_json_log(&out, &ids, 2048);
        assert!(
            v.bad.is_empty() && v.mismatched == 0,
            "{}: {:?}",
            point.name(),
            v.bad.first()
        );
        for r in &reports {
            assert_eq!(
                v.per_tid[&r.tid],
                20_000,
                "{}: a live producer lost records",
                point.name()
            );
        }
        let victim_records = v.per_tid.get(&victim_pid).copied().unwrap_or(0);
        if point != Point::BeforePadding {
            assert_eq!(
                victim_records,
                nth - 1,
                "{}: the victim's records before its death",
                point.name()
            );
        }
        let skipped = notices(&v, "abandoned by pid");
        assert!(
            !skipped.is_empty() && skipped.iter().all(|&(_, pid)| pid == victim_pid),
            "{}: expected a skip notice for pid {victim_pid}, got {:?}",
            point.name(),
            v.notices
        );
        assert!(
            err.contains(&format!("abandoned by pid {victim_pid}")),
            "{err}"
        );
    }
}

/// A producer stops holding a claim, its record copied but not committed; the drain, once the
/// claim has waited long enough, stops just before it asks whether the owner is alive. The
/// producer then goes on: it commits, writes its other records and exits, so the verdict finds
/// the owner dead, on a claim the drain last saw uncommitted. The record is written, not
/// skipped as abandoned.
#[test]
fn a_claim_committed_between_the_drains_look_and_its_verdict_is_written() {
    let ring = unique_ring("verdict-race");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let args = ["--format", "json"];
    let drain = DrainProcess::start_doomed(&ring, &out, &args, "drain-before-verdict:stop:1");
    let mut spec = ProducerSpec::new(&ring, 1, 200, 300);
    spec.extra = vec!["--fault".into(), "before-commit:stop:100".into()];
    let producer = spec.spawn();
    let producer_pid = producer.id();
    wait_stopped(producer_pid, "the producer");
    wait_stopped(drain.pid(), "the drain");
    signal(producer_pid, libc::SIGCONT);
    let reports = reports_of(vec![producer]);
    drain.signal(libc::SIGCONT);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    let v = verify_json_log(&out, &ids, 300);
    assert_exact(&v, &ids, 200);
    assert!(v.notices.is_empty(), "{:?}", v.notices);
    assert!(err.contains(" 0 abandoned claims skipped"), "{err}");
}

#[test]
fn a_stopped_producer_stalls_the_ring_is_reported_and_resumes_the_moment_it_continues() {
    let ring = unique_ring("sigstop");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let mut stopper = ProducerSpec::new(&ring, 1, 2_000, 512);
    stopper.extra = vec!["--fault".into(), "before-commit:stop:100".into()];
    let stopper = stopper.spawn();
    let stopper_pid = stopper.id();
    let other = ProducerSpec::new(&ring, 2, 2_000, 512).spawn();
    // The drain must report the stall (after its 1 s threshold) in stat, naming the producer.
    let reported = wait_until(Duration::from_secs(20), || {
        let v = stat(&ring);
        v["stalls"].as_u64() >= Some(1)
            && v["producers"].as_array().unwrap().iter().any(|p| {
                p["pid"].as_u64() == Some(stopper_pid as u64)
                    && !p["stalled_since_ns"].is_null()
                    && p["alive"] == true
            })
    });
    assert!(reported, "stall never reported: {}", stat(&ring));
    // Stalled, not skipped: nothing was abandoned.
    assert_eq!(stat(&ring)["abandoned"], 0);
    signal(stopper_pid, libc::SIGCONT);
    let reports = reports_of(vec![stopper, other]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!("by pid {stopper_pid}")) && err.contains("resolved after"),
        "{err}"
    );
    let ids = tid_map(&reports);
    let v = verify_json_log(&out, &ids, 512);
    assert_exact(&v, &ids, 2_000);
    assert!(v.notices.is_empty(), "{:?}", v.notices);
}

/// A producer killed after it sealed its chunk (a record did not fit) and before it wrote the
/// padding over the chunk's rest: the drain steps over the rest once the owner is dead, reports
/// no loss (none happened: every record the victim wrote is in the log) and loses nothing else.
#[test]
fn a_producer_killed_between_sealing_its_chunk_and_its_padding_loses_nothing() {
    let ring = unique_ring("chunk-sealed");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "256K"]);
    // Records of up to 1 KiB fill a 4 KiB chunk in a few records: the third seal kills it.
    let mut faulty = ProducerSpec::new(&ring, 9, 20_000, 1024);
    faulty.extra = vec!["--fault".into(), "chunk-sealed:kill:3".into()];
    let victim = faulty.spawn();
    let victim_pid = victim.id();
    let others: Vec<_> = (0..3)
        .map(|id| ProducerSpec::new(&ring, id, 20_000, 1024).spawn())
        .collect();
    let output = victim.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&output.status),
        Some(libc::SIGKILL),
        "the victim must die at its third seal: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports = reports_of(others);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let mut ids = tid_map(&reports);
    ids.insert(victim_pid, 9);
    let v = verify_json_log(&out, &ids, 1024);
    assert!(v.bad.is_empty() && v.mismatched == 0, "{:?}", v.bad.first());
    for r in &reports {
        assert_eq!(v.per_tid[&r.tid], 20_000, "a live producer lost records");
    }
    assert!(
        v.per_tid.get(&victim_pid).copied().unwrap_or(0) > 16,
        "the victim wrote records"
    );
    assert!(
        notices(&v, "abandoned by pid").is_empty(),
        "{:?}",
        v.notices
    );
    assert!(!err.contains("abandoned by pid"), "{err}");
    assert!(err.contains(" 0 abandoned claims skipped"), "{err}");
}

/// A drain killed after it sealed an idle producer's chunk (before it sleeps) and before it
/// wrote the padding over the rest; the producer then moves on to new records (the chunk's
/// cursor no longer names it) before the next drain starts, which finds the rest through the
/// header's record of the seal: every record once, nothing reported lost.
#[test]
fn a_drain_killed_between_sealing_an_idle_chunk_and_its_padding_restarts_without_loss() {
    use std::io::BufRead;
    let ring = unique_ring("drain-chunk-sealed");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let args = ["--format", "json"];
    let doomed = DrainProcess::start_doomed(&ring, &out, &args, "drain-chunk-sealed:kill:1");
    let mut spec = ProducerSpec::new(&ring, 4, 2_000, 200);
    spec.extra = vec!["--pause-at".into(), "1000".into()];
    let mut producer = spec.spawn();
    let mut stdout = std::io::BufReader::new(producer.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "paused\n");
    // Idle at the producer's open chunk, the drain seals it before it sleeps, and dies there.
    let (status, err) = doomed.wait_exit_within(Duration::from_secs(30));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{err}"
    );
    // The producer finds its chunk sealed and writes on elsewhere.
    drop(producer.stdin.take());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    assert!(producer.wait().unwrap().success());
    let reports = parse_reports(&rest);
    let drain = DrainProcess::start(&ring, &out, &args);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    assert_exact(&verify_json_log(&out, &ids, 200), &ids, 2_000);
    assert!(
        err.contains(" 0 abandoned claims skipped, 0 corrupt"),
        "{err}"
    );
}

#[test]
fn a_drain_killed_inside_a_batch_restarts_without_loss_or_duplicates() {
    let points = [
        Point::DrainIntentStored,
        Point::DrainHalfWritten,
        Point::DrainWrittenNotMarked,
        Point::DrainWrittenBeforeRelease,
    ];
    for (point, threading) in points.into_iter().flat_map(|p| THREADING.map(|t| (p, t))) {
        let ring = unique_ring(point.name());
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let fault = format!("{}:kill:3", point.name());
        // 3 x 30k records of <= 1 KiB (~13 MB) must fit while no drain runs, so the producers
        // never drop: the ring is 64 MiB rather than the default.
        let args = ["--format", "json", "--capacity", "64M"];
        let doomed_args = [&args[..], threading].concat();
        let doomed = DrainProcess::start_doomed(&ring, &out, &doomed_args, &fault);
        let reports = three_producers_into_64m(&ring, 30_000);
        let (status, _) = doomed.wait_exit();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{} {threading:?}",
            point.name()
        );
        let drain = DrainProcess::start(&ring, &out, &args);
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        match point {
            Point::DrainHalfWritten => {
                assert!(err.contains("removed a half-written batch"), "{err}")
            }
            // Not noted as written: the file's length tells.
            Point::DrainWrittenNotMarked | Point::DrainWrittenBeforeRelease => {
                assert!(err.contains("was fully written"), "{err}")
            }
            _ => {}
        }
        let ids = tid_map(&reports);
        assert_exact(&verify_json_log(&out, &ids, 1024), &ids, 30_000);
    }
}

/// The default drain writes on a second thread while it is behind with a CPU free (a spell,
/// `catch_up`). Killed while a spell has just queued a batch for its writing thread (the
/// first, the third, the eighth such batch: the writing thread may be anywhere in the batches
/// before it), the next drain writes every record exactly once and the counters match the log.
/// The armed drain is told to make its spells eager (`RINGLOG_FAULT_SPELLS=eager`: a CPU is
/// always free, a spell lasts until the drain caught up), so the first spell, ~20 batches long,
/// reaches every count on any machine; the point is reached only in a spell.
#[test]
fn a_drain_killed_in_a_spell_with_batches_queued_for_its_writing_thread_loses_nothing() {
    for nth in [1, 3, 8] {
        let ring = unique_ring("spellkill");
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        // ~25 MB written while no drain runs, in a 64 MiB ring that holds it all: the drain
        // starts far behind, on a ring large enough for a spell.
        let reports = three_producers_into_64m(&ring, 60_000);
        let args = ["--format", "json"];
        let fault = format!("{}:kill:{nth}", Point::DrainBatchQueued.name());
        let doomed = DrainProcess::start_doomed_with_env(
            &ring,
            &out,
            &args,
            &fault,
            &[("RINGLOG_FAULT_SPELLS", "eager")],
        );
        let (status, err) = doomed.wait_exit_within(Duration::from_secs(60));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "the drain must die in a spell, at its queued batch {nth}: {err}"
        );
        let drain = DrainProcess::start(&ring, &out, &args);
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        let ids = tid_map(&reports);
        assert_exact(&verify_json_log(&out, &ids, 1024), &ids, 60_000);
        assert_counters_match_the_log(&ring, &out, 180_000);
    }
}

#[test]
fn a_drain_killed_at_random_moments_of_a_long_run_loses_and_duplicates_nothing() {
    let ring = unique_ring("drainkill");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    // 4 x 100k records of <= 1 KiB fit in a 64 MiB ring even with no drain at all, so the
    // producers never drop while the drain is down. Drains and producers race to create it, so
    // all of them ask for that size.
    let producers: Vec<_> = (0..4)
        .map(|id| {
            ProducerSpec::new(&ring, id, 100_000, 1024)
                .capacity(64 << 20)
                .spawn()
        })
        .collect();
    let mut seed = std::process::id() as u64;
    // Drains of both kinds, each recovering after the other, and the default (`auto`), which
    // on this 64 MiB ring writes on a second thread while a backlog lasts if a CPU is free
    // (whether one is depends on the machine: the kinds it switches between are the two above).
    let kinds = THREADING.into_iter().chain([&[][..]]);
    for threading in kinds.cycle().take(8) {
        let args = [&["--format", "json", "--capacity", "64M"], threading].concat();
        let drain = DrainProcess::start(&ring, &out, &args);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // The kill lands at an arbitrary point of the drain's work: the outcome must not depend
        // on when.
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 60));
        drain.kill();
    }
    let reports = reports_of(producers);
    assert!(reports.iter().all(|r| r.dropped == 0), "{reports:?}");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64M"]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    assert_exact(&verify_json_log(&out, &ids, 1024), &ids, 100_000);
    assert_counters_match_the_log(&ring, &out, 400_000);
}

/// Runs one producer of `records` records into a 64 KiB ring with `policy`, optionally with a
/// drain that is stopped (SIGSTOP) meanwhile, and reconciles sent = written + dropped with
/// what the drain writes.
fn full_ring(test: &str, policy: &str, records: u64, stopped_drain: bool) -> ProducerReport {
    let ring = unique_ring(test);
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = stopped_drain.then(|| {
        let d = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64K"]);
        signal(d.pid(), libc::SIGSTOP);
        d
    });
    let mut spec = ProducerSpec::new(&ring, 1, records, 200);
    spec.extra = vec![
        "--policy".into(),
        policy.into(),
        "--capacity".into(),
        "65536".into(),
    ];
    let report = reports_of(vec![spec.spawn()])[0];
    assert_eq!(report.written + report.dropped, records, "{report:?}");
    let drain = match drain {
        Some(d) => {
            signal(d.pid(), libc::SIGCONT);
            d
        }
        None => DrainProcess::start(&ring, &out, &["--format", "json"]),
    };
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let in_log = verify_subsequence(&out, report.tid, 1, records, 200);
    assert_eq!(in_log, report.written, "written records in the log");
    let v = verify_json_log(&out, &tid_map(&[report]), 200);
    let reported: u64 = notices(&v, "records from pid")
        .iter()
        .map(|&(n, pid)| {
            assert_eq!(pid, report.pid);
            n
        })
        .sum();
    assert_eq!(
        reported, report.dropped,
        "the drain's drop lines must add up to the producer's count"
    );
    report
}

#[test]
fn drop_policy_counts_every_dropped_record_and_the_drain_reports_the_exact_number() {
    let r = full_ring("fulldrop", "drop", 5_000, false);
    assert!(r.dropped > 0 && r.written > 0, "{r:?}");
}

#[test]
fn block_policy_with_no_drain_drops_instead_of_hanging() {
    let r = full_ring("fullblocknodrain", "block", 3_000, false);
    assert!(r.dropped > 0, "{r:?}");
}

#[test]
fn block_for_gives_up_after_its_timeout_when_the_drain_is_stopped() {
    // ~480 records fit in 64 KiB; each one past that waits 20 ms, then is dropped.
    let r = full_ring("fullblockfor", "block-for=20", 560, true);
    assert!(r.dropped > 0, "{r:?}");
}

#[test]
fn block_policy_waits_for_a_live_but_stopped_drain_and_loses_nothing() {
    let ring = unique_ring("blocklive");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64K"]);
    signal(drain.pid(), libc::SIGSTOP);
    let producer = ProducerSpec::new(&ring, 1, 3_000, 200).spawn();
    // The producer fills the ring, then blocks (alive drain: it must not drop).
    let blocked = wait_until(Duration::from_secs(20), || {
        let v = stat(&ring);
        v["used"].as_u64().unwrap() + 300 > v["capacity"].as_u64().unwrap()
    });
    let snapshot = stat(&ring);
    signal(drain.pid(), libc::SIGCONT);
    assert!(blocked, "producer never blocked: {snapshot}");
    let report = reports_of(vec![producer])[0];
    assert_eq!((report.written, report.dropped), (3_000, 0));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&[report]);
    assert_exact(&verify_json_log(&out, &ids, 200), &ids, 3_000);
}

/// Waits until the drain has seen every committed record (its heartbeat moved on well after
/// they were committed) and could not write them: they are still in the ring.
fn wait_until_output_stuck(ring: &str) {
    let committed_at = stat(ring)["drain"]["heartbeat_ns"].as_u64().unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        let v = stat(ring);
        v["drain"]["heartbeat_ns"].as_u64().unwrap() > committed_at + 200_000_000
            && v["used"].as_u64() > Some(0)
    }));
}

/// Once space is back: every record of `report` reaches `out` exactly once, and the drain said
/// what went wrong and that it recovered.
fn all_written_once_space_returns(
    ring: &str,
    drain: DrainProcess,
    report: ProducerReport,
    out: &std::path::Path,
    max_size: usize,
) {
    assert!(wait_until(Duration::from_secs(20), || stat(ring)
        ["records_out"]
        .as_u64()
        == Some(report.written)));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("works again"),
        "{err}"
    );
    let ids = tid_map(&[report]);
    assert_exact(&verify_json_log(out, &ids, max_size), &ids, report.written);
}

#[test]
fn a_full_disk_keeps_records_in_the_ring_until_the_output_works_again() {
    let ring = unique_ring("diskfull");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    // The output path leads to /dev/full: every write fails with ENOSPC, from the kernel.
    std::os::unix::fs::symlink("/dev/full", &out).unwrap();
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let report = reports_of(vec![ProducerSpec::new(&ring, 1, 1_000, 300).spawn()])[0];
    // The drain has seen the records (its heartbeat moved on after they were all committed)
    // and could not write them: they are still in the ring.
    wait_until_output_stuck(&ring);
    assert_eq!(stat(&ring)["records_out"], 0);
    // "Free space": the path now leads to a real file. Put there in one step: a drain that
    // looked between a removal and a create would make the file itself, write to it, and the
    // create would cut what it wrote.
    let free = dir.path().join("free.log");
    std::fs::File::create(&free).unwrap();
    std::fs::rename(&free, &out).unwrap();
    all_written_once_space_returns(&ring, drain, report, &out, 300);
}

/// A small ext4 filesystem on a loop device, unmounted and removed on drop.
struct SmallFilesystem {
    mount: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFilesystem {
    /// Makes and mounts a `mib`-MiB ext4; `Err(why)` where this process may not mount (not
    /// root, no loop devices).
    fn mount(mib: u64) -> Result<SmallFilesystem, String> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        let mkfs = Command::new(tool("mkfs.ext4", "e2fsprogs"))
            .args(["-q", "-F"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(mkfs.status.success(), "mkfs.ext4: {mkfs:?}");
        let mounted = Command::new(tool("mount", "mount"))
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .output()
            .unwrap();
        if !mounted.status.success() {
            return Err(String::from_utf8_lossy(&mounted.stderr).trim().to_owned());
        }
        Ok(SmallFilesystem { mount, _dir: dir })
    }

    fn free_bytes(&self) -> u64 {
        // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
        unsafe {
            let path = std::ffi::CString::new(self.mount.as_os_str().as_encoded_bytes()).unwrap();
            let mut fs: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(path.as_ptr(), &mut fs), 0);
            fs.f_bavail * fs.f_frsize
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new(tool("umount", "mount"))
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

/// Whether a file was written or truncated since the watch began (inotify `IN_MODIFY`).
struct FileWatch(std::os::fd::OwnedFd);

impl FileWatch {
    fn modifications(path: &std::path::Path) -> FileWatch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls; the descriptor is owned by the returned value from here on.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0, "inotify_init1");
            let watch = FileWatch(std::os::fd::OwnedFd::from_raw_fd(fd));
            assert!(libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_MODIFY) >= 0);
            watch
        }
    }

    fn seen(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a local buffer of the length given.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        n > 0
    }
}

#[test]
fn a_real_filesystem_filling_up_mid_batch_loses_nothing_and_cuts_no_record() {
    let fs = match SmallFilesystem::mount(16) {
        Ok(fs) => fs,
        Err(why) => skip!("needs root and a loop device to mount a small ext4 ({why})"),
    };
    // Leave ~1.5 MiB: less than the drain's first block reservation, less than the records.
    let filler = fs.mount.join("filler");
    let fill = fs.free_bytes() - (3 << 19);
    std::fs::File::create(&filler).unwrap().set_len(0).unwrap();
    std::fs::write(&filler, vec![b'f'; fill as usize]).unwrap();
    let ring = unique_ring("realdiskfull");
    let _guard = RingGuard(ring.clone());
    let out = fs.mount.join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "16M"]);
    // ~5.9 MB of records: the disk fills partway through, inside some batch.
    let report = reports_of(vec![ProducerSpec::new(&ring, 1, 30_000, 1_200)
        .capacity(16 << 20)
        .spawn()])[0];
    assert_eq!(report.dropped, 0);
    wait_until_output_stuck(&ring);
    // While the disk stays full the drain retries (at least once a second), and never touches
    // the file: it reserves a batch's blocks before writing it, so no retry writes part of a
    // batch that must then be cut back (which a reader following the file would see).
    let modified = FileWatch::modifications(&out);
    let watched_from = stat(&ring)["drain"]["heartbeat_ns"].as_u64().unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        stat(&ring)["drain"]["heartbeat_ns"].as_u64().unwrap() > watched_from + 2_500_000_000
    }));
    assert!(
        !modified.seen(),
        "the drain wrote to the file while the disk was full"
    );
    let stuck = stat(&ring)["records_out"].as_u64().unwrap();
    assert!(stuck > 0 && stuck < 30_000, "{stuck} records written");
    // What is in the file is whole records only: the failed batch was cut back.
    let partial = std::fs::read(&out).unwrap();
    assert!(partial.ends_with(b"\n"));
    assert_eq!(
        partial.iter().filter(|&&b| b == b'\n').count() as u64,
        stuck,
        "the file holds exactly the records the drain counts as written"
    );
    std::fs::remove_file(&filler).unwrap();
    all_written_once_space_returns(&ring, drain, report, &out, 1_200);
    let meta = std::fs::metadata(&out).unwrap();
    let allocated = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    assert!(
        allocated <= meta.len().next_multiple_of(4096) + (64 << 10),
        "{allocated} bytes allocated to a {}-byte log after the drain exited",
        meta.len()
    );
}

#[test]
fn an_output_file_removed_under_the_drain_is_recreated_and_nothing_is_lost() {
    for threading in THREADING {
        output_file_removed_under_the_drain(threading);
    }
}

fn output_file_removed_under_the_drain(threading: &[&str]) {
    let ring = unique_ring("removed");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, threading);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    writer.write(b"before").unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "before\n")
    }));
    std::fs::remove_file(&out).unwrap();
    writer.write(b"after").unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "after\n")
    }));
    let (status, err) = drain.stop();
    assert!(status.success());
    assert!(err.contains("was removed or replaced"), "{err}");
}

#[test]
fn garbage_written_into_a_live_ring_is_reported_skipped_and_the_drain_goes_on() {
    use ringlog_core::frame;
    use ringlog_core::layout::data_offset;
    use ringlog_core::memory::Memory;
    use std::sync::atomic::Ordering;
    let ring = unique_ring("garbage");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "1M"]);
    let segment = ringlog_core::Segment::open(
        &ringlog_core::Location::Name(ring.clone()),
        &Default::default(),
    )
    .unwrap();
    let r = segment.ring();
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let g = r.geometry();
    let garbage = [
        0xffff_ffff_7fff_fff0u64,              // huge positive length
        0x0000_0000_0000_0003,                 // length 3, kind 0
        (5u64 << 32) | 4096,                   // unknown kind 5
        (1u64 << 32) | (0xffffu64 << 48) | 64, // slot far outside the registry
        (1u64 << 32) | 40,                     // a data frame whose payload length will lie
    ];
    for (i, word) in garbage.iter().enumerate() {
        writer.write(format!("good {i}").as_bytes()).unwrap();
        // A buggy producer writes a record, then scribbles over its frame header before the
        // drain (stopped meanwhile, to make the scribble land before it reads) gets to it.
        signal(drain.pid(), libc::SIGSTOP);
        let before = r.tail();
        // Larger than a chunk, so it is claimed from the tail, where the test finds it.
        let mut doomed = b"to be overwritten by garbage ".to_vec();
        doomed.resize(20_000, b'g');
        writer.write(&doomed).unwrap();
        let at = data_offset(g.slots) + (before & (g.capacity - 1)) as usize;
        // SAFETY: the frame is committed (its writer returned) and the drain is stopped: nobody
        // else touches these words while the test scribbles.
        let mem = unsafe { r.memory() };
        mem.u64_at(at).store(*word, Ordering::Release);
        if i == 4 {
            let lengths = frame::encode_lengths(u32::MAX, 0, 0);
            mem.u64_at(at + frame::LENGTHS_OFFSET)
                .store(lengths, Ordering::Relaxed);
        }
        signal(drain.pid(), libc::SIGCONT);
        writer.write(format!("after {i}").as_bytes()).unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || std::fs::read_to_string(&out)
                .is_ok_and(|s| s.contains(&format!("\"after {i}\"")))),
            "the drain did not get past garbage {i}"
        );
    }
    assert_eq!(r.counters().corrupt, garbage.len() as u64);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert_eq!(
        err.matches("a producer wrote garbage into the ring")
            .count(),
        garbage.len(),
        "{err}"
    );
    let log = std::fs::read_to_string(&out).unwrap();
    for i in 0..garbage.len() {
        assert!(log.contains(&format!("\"good {i}\"")) && log.contains(&format!("\"after {i}\"")));
    }
    assert_eq!(
        log.matches("corrupt bytes at ring position").count(),
        garbage.len()
    );
}

#[test]
fn a_truncated_segment_is_an_error_not_a_sigbus() {
    let ring = unique_ring("truncated");
    let _guard = RingGuard(ring.clone());
    drop(
        ringlog_writer::Writer::builder(&ring)
            .capacity(1 << 16)
            .open()
            .unwrap(),
    );
    let path = ring_path(&ring);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = ringlog_writer::Writer::open(&ring).unwrap_err();
    let e = ringlog_core::ErrorChain(&e).to_string();
    assert!(
        e.contains("truncated?") && e.contains("remove the file"),
        "{e}"
    );
    let out = Command::new(bin("ringlog-drain"))
        .args(["--ring", &ring, "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn permissions_decide_who_may_attach() {
    let ring = unique_ring("perms");
    let _guard = RingGuard(ring.clone());
    drop(
        ringlog_writer::Writer::builder(&ring)
            .capacity(1 << 16)
            .open()
            .unwrap(),
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ring_path(&ring)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // SAFETY: getuid(2) has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        skip!("its other-user half needs root to switch users (the mode check above ran)");
    }
    let as_nobody = |ring: &str| {
        let mut spec = ProducerSpec::new(ring, 1, 10, 64);
        spec.extra = vec!["--as-user".into(), "65534".into()];
        spec.spawn().wait_with_output().unwrap()
    };
    let out = as_nobody(&ring);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Permission denied") && err.contains("owner and mode"),
        "{err}"
    );
    let shared = unique_ring("perms666");
    let _g2 = RingGuard(shared.clone());
    drop(
        ringlog_writer::Writer::builder(&shared)
            .capacity(1 << 16)
            .mode(0o666)
            .open()
            .unwrap(),
    );
    let out = as_nobody(&shared);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn messages_cannot_forge_lines_in_text_or_json_output() {
    for format in ["text", "json"] {
        let ring = unique_ring(&format!("inject{format}"));
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let writer = ringlog_writer::Writer::open(&ring).unwrap();
        let evil = [
            "line\n2026-01-01T00:00:00.000000000Z ERROR pid=1 forged",
            "cr\rreturn and \x1b[2J escape",
            "{\"ts\":\"x\",\"msg\":\"forged\"}\n{\"also\":1}",
            "nul\0 and \x7f del\\",
            // Line ends to Python's splitlines and to JavaScript, though not to `lines()`.
            "nel\u{85}ls\u{2028}ps\u{2029}forged",
        ];
        for e in evil {
            writer
                .write_record(ringlog_core::Level::Info, "evil\ntarget", e.as_bytes())
                .unwrap();
        }
        let drain = DrainProcess::start(&ring, &out, &["--format", format]);
        drain.stop();
        let log = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), evil.len(), "{format}: {log}");
        for (line, e) in lines.iter().zip(evil) {
            assert!(
                !line.contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']),
                "{format}: a line end other than the last in {line:?}"
            );
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["msg"], e);
                assert_eq!(v["target"], "evil\ntarget");
            } else {
                assert!(
                    !line.chars().any(|c| c.is_control()),
                    "control character in {line:?}"
                );
                assert!(line.contains(" INFO pid="), "{line}");
            }
        }
    }
}

#[test]
fn block_policy_waits_for_a_drain_that_starts_after_the_ring_filled() {
    let ring = unique_ring("latedrain");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let mut spec = ProducerSpec::new(&ring, 1, 3_000, 200);
    // A grace long enough for a drain to start on a loaded machine.
    spec.extra = vec![
        "--capacity".into(),
        "65536".into(),
        "--drain-grace-ms".into(),
        "30000".into(),
    ];
    let producer = spec.spawn();
    // The ring fills with no drain running; the producer then waits (for up to its drain grace)
    // rather than dropping at once...
    let full = wait_until(Duration::from_secs(20), || {
        ringlog_drain::stat::snapshot(&ringlog_core::Location::Name(ring.clone()))
            .is_ok_and(|s| s.used() + 300 > s.capacity)
    });
    assert!(full, "the ring never filled");
    // ...and a drain starting now (within the grace) gets every record.
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let report = reports_of(vec![producer])[0];
    assert_eq!((report.written, report.dropped), (3_000, 0));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&[report]);
    assert_exact(&verify_json_log(&out, &ids, 200), &ids, 3_000);
}

/// A producer of `records` 200-byte records into a 64 KiB ring that drops records on a full
/// ring.
fn dropping_producer(ring: &str, records: u64) -> ProducerSpec {
    let mut spec = ProducerSpec::new(ring, 1, records, 200);
    spec.extra = vec![
        "--policy".into(),
        "drop".into(),
        "--capacity".into(),
        "65536".into(),
    ];
    spec
}

/// The log holds exactly the records of `report`'s producer (of `records`) it says it wrote,
/// and its drop lines add up to the records it dropped. Returns how many drop lines there are.
fn assert_drops_reported_exactly(
    out: &std::path::Path,
    report: ProducerReport,
    records: u64,
    what: &str,
) -> usize {
    assert!(report.dropped > 0, "{what}: {report:?}");
    assert_eq!(
        verify_subsequence(out, report.tid, 1, records, 200),
        report.written,
        "{what}: the written records in the log"
    );
    let v = verify_json_log(out, &tid_map(&[report]), 200);
    let lines = notices(&v, "records from pid");
    let reported: u64 = lines.iter().map(|&(n, _)| n).sum();
    assert_eq!(
        reported,
        report.dropped,
        "{what}: the drop lines ({} of them) must add up to the producer's count",
        lines.len()
    );
    lines.len()
}

/// A producer overflows a 64 KiB ring again and again while the drain runs, so drop reports
/// are made batch after batch (62 and 126 lines in two runs here), with batches still queued
/// for the writing thread when it runs one (a report is only made once no queued batch carries
/// one). The log's drop lines must add up to the producer's count, both ways.
#[test]
fn drop_reports_stay_exact_while_the_drain_keeps_up_with_a_ring_that_overflows() {
    for threading in THREADING {
        let ring = unique_ring("dropsrunning");
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let args = [&["--format", "json", "--capacity", "64K"], threading].concat();
        let drain = DrainProcess::start(&ring, &out, &args);
        let report = reports_of(vec![dropping_producer(&ring, 200_000).spawn()])[0];
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        assert_drops_reported_exactly(&out, report, 200_000, &format!("{threading:?}"));
    }
}

#[test]
fn drop_reports_stay_exact_when_the_drain_dies_around_the_batch_that_carries_them() {
    for point in [
        Point::DrainIntentStored,
        Point::DrainHalfWritten,
        Point::DrainWrittenBeforeRelease,
    ] {
        let ring = unique_ring(&format!("dropcrash{}", point.name()));
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let report = reports_of(vec![dropping_producer(&ring, 3_000).spawn()])[0];
        // The first batch carries the drop report; the drain dies around writing it.
        let fault = format!("{}:kill:1", point.name());
        drain_killed_at(&ring, &out, &["--format", "json"], &fault);
        let (status, err) = DrainProcess::start(&ring, &out, &["--format", "json"]).stop();
        assert!(status.success(), "{err}");
        assert_drops_reported_exactly(&out, report, 3_000, point.name());
    }
}

/// Sums the drop notices of a log by pid.
fn drops_by_pid(v: &Verdict) -> std::collections::BTreeMap<u32, u64> {
    let mut by_pid = std::collections::BTreeMap::new();
    for (n, pid) in notices(v, "records from pid") {
        *by_pid.entry(pid).or_insert(0) += n;
    }
    by_pid
}

/// Many short-lived producers drop on a full ring while no drain runs; each exits and gives its
/// registry slot back, and later ones take the same slots (300 producers hash into 1,024
/// slots: dozens of reuses). Every drop line must still name the process that dropped, with
/// exactly its count.
#[test]
fn drop_reports_name_each_process_even_after_its_slot_was_reused() {
    let ring = unique_ring("dropnames");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drop = || vec!["--policy".to_owned(), "drop".to_owned()];
    // The smallest ring, filled by the first producer; every later record is dropped.
    let mut first = ProducerSpec::new(&ring, 0, 400, 64).capacity(4096);
    first.extra.extend(drop());
    let mut reports = reports_of(vec![first.spawn()]);
    for wave in 0..50u32 {
        let children = (0..6u32)
            .map(|k| {
                let id = 1 + wave * 6 + k;
                let mut spec = ProducerSpec::new(&ring, id, 1 + (id as u64 * 7) % 23, 64);
                spec.extra = drop();
                spec.spawn()
            })
            .collect();
        reports.extend(reports_of(children));
    }
    let expected: std::collections::BTreeMap<u32, u64> = reports
        .iter()
        .filter(|r| r.dropped > 0)
        .map(|r| (r.pid, r.dropped))
        .collect();
    assert_eq!(expected.len(), 301, "every producer dropped records");
    let (status, err) = DrainProcess::start(&ring, &out, &["--format", "json"]).stop();
    assert!(status.success(), "{err}");
    // Only the first producer wrote records (the ring was full for the others).
    assert_eq!(
        verify_subsequence(&out, reports[0].tid, 0, 400, 64),
        reports[0].written
    );
    assert!(reports[1..].iter().all(|r| r.written == 0), "{reports:?}");
    let v = verify_json_log(&out, &tid_map(&reports), 64);
    assert!(v.bad.is_empty(), "{:?}", v.bad.first());
    let reported = drops_by_pid(&v);
    let misnamed: Vec<_> = expected
        .iter()
        .filter(|(pid, n)| reported.get(pid) != Some(n))
        .map(|(pid, n)| (pid, n, reported.get(pid)))
        .collect();
    assert!(
        misnamed.is_empty(),
        "{} of {} producers not named with their own drops (pid, dropped, reported): {:?}",
        misnamed.len(),
        expected.len(),
        &misnamed[..misnamed.len().min(10)]
    );
    assert_eq!(reported, expected, "no drop charged to anyone else");
}

fn inode(path: &std::path::Path) -> Option<u64> {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).ok()?).into()
}

/// `rm /dev/shm/ringlog-NAME` while the drain and a producer run (a cleanup script, an
/// operator): the drain puts the segment back under its name and says so in the log, so a
/// producer that opens the ring afterwards writes into the same segment, and every record of
/// both reaches the log exactly once.
#[test]
fn a_segment_removed_under_a_running_ring_is_put_back_and_nothing_is_lost() {
    let ring = unique_ring("segremoved");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64K"]);
    let first = ProducerSpec::new(&ring, 1, 300_000, 200).spawn();
    let path = ring_path(&ring);
    let original = inode(&path).expect("the segment exists");
    let started = wait_until(Duration::from_secs(20), || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0)
    });
    assert!(started, "nothing reached the log");
    std::fs::remove_file(&path).unwrap();
    let put_back = wait_until(Duration::from_secs(10), || inode(&path) == Some(original));
    assert!(put_back, "the drain did not put the removed segment back");
    let second = ProducerSpec::new(&ring, 2, 5_000, 200).spawn();
    let reports = reports_of(vec![first, second]);
    assert!(reports.iter().all(|r| r.dropped == 0), "{reports:?}");
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let ids = tid_map(&reports);
    let v = verify_json_log(&out, &ids, 200);
    assert!(v.bad.is_empty() && v.mismatched == 0, "{:?}", v.bad.first());
    let counts: Vec<u64> = reports.iter().map(|r| v.per_tid[&r.tid]).collect();
    assert_eq!(counts, [300_000, 5_000], "records in the log, per producer");
    assert!(
        v.notices
            .iter()
            .any(|n| n.contains("was removed while in use; the drain put it back")),
        "no line in the log says what happened: {:?}",
        v.notices
    );
}

/// Checks that each producer of `reports` dropped nothing and has exactly `counts` records (in
/// that order) in the `--format json` log `out`, intact; returns the log's verdict.
fn assert_records_per_producer(
    out: &std::path::Path,
    reports: &[ProducerReport],
    counts: &[u64],
) -> Verdict {
    assert!(reports.iter().all(|r| r.dropped == 0), "{reports:?}");
    let v = verify_json_log(out, &tid_map(reports), 200);
    assert!(v.bad.is_empty() && v.mismatched == 0, "{:?}", v.bad.first());
    let found: Vec<u64> = reports.iter().map(|r| v.per_tid[&r.tid]).collect();
    assert_eq!(found, counts, "records in the log, per producer");
    v
}

/// The scenario with the drain down: the drain is killed, a producer fills the ring
/// and waits, the segment is removed, a new producer re-creates the name, and the drain is
/// restarted. The restarted drain finds the old segment (through the spare link its killed
/// predecessor left), drains it until its producer is done, says so, then drains the new one:
/// every record of both producers reaches the log exactly once.
#[test]
fn a_segment_replaced_while_the_drain_was_down_is_drained_before_the_new_one() {
    let ring = unique_ring("segreplaced");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let path = ring_path(&ring);
    // The drain creates the ring, then dies.
    DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64K"]).kill();
    let mut spec = ProducerSpec::new(&ring, 1, 20_000, 200);
    spec.extra = vec!["--drain-grace-ms".into(), "20000".into()];
    let first = spec.spawn();
    let full = wait_until(Duration::from_secs(20), || {
        ringlog_drain::stat::snapshot(&ringlog_core::Location::Name(ring.clone()))
            .is_ok_and(|s| s.used() + 300 > s.capacity)
    });
    assert!(full, "the ring never filled");
    std::fs::remove_file(&path).unwrap();
    // A new producer creates a new segment under the name and writes into it.
    let second = reports_of(vec![ProducerSpec::new(&ring, 2, 2_000, 200)
        .capacity(1 << 20)
        .spawn()]);
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let mut reports = reports_of(vec![first]);
    reports.extend(second);
    let switched = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).is_ok_and(|log| log.contains("switching to the segment"))
    });
    assert!(switched, "the drain never went on to the new segment");
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let v = assert_records_per_producer(&out, &reports, &[20_000, 2_000]);
    assert!(
        v.notices
            .iter()
            .any(|n| n.contains("removed or replaced while no drain ran")),
        "{:?}",
        v.notices
    );
    assert!(
        !ringlog_drain::segment_name::spare_path(&path).exists()
            || inode(&ringlog_drain::segment_name::spare_path(&path)) == inode(&path),
        "the old segment's spare link is gone once it is drained"
    );
}

/// `producers` producers write `per` records of up to `max_len` bytes each into `ring`, created
/// with `capacity` bytes, and exit. The ring must hold them all while no drain runs: none may be
/// dropped.
fn producers_that_drop_nothing(
    ring: &str,
    producers: u32,
    per: u64,
    max_len: usize,
    capacity: u64,
) -> Vec<ProducerReport> {
    let reports = reports_of(
        (0..producers)
            .map(|id| {
                ProducerSpec::new(ring, id, per, max_len)
                    .capacity(capacity)
                    .spawn()
            })
            .collect(),
    );
    assert!(reports.iter().all(|r| r.dropped == 0), "{reports:?}");
    reports
}

/// Two producers, 20,000 records of up to 512 bytes each, into a 16 MiB ring.
fn two_producers_into_16m(ring: &str) -> Vec<ProducerReport> {
    producers_that_drop_nothing(ring, 2, 20_000, 512, 16 << 20)
}

/// Three producers, `per` records of up to 1 KiB each (at most 60,000), into a 64 MiB ring.
fn three_producers_into_64m(ring: &str, per: u64) -> Vec<ProducerReport> {
    producers_that_drop_nothing(ring, 3, per, 1024, 64 << 20)
}

/// `stat`'s records and bytes out equal what the log holds.
fn assert_counters_match_the_log(ring: &str, out: &std::path::Path, records: u64) {
    let v = stat(ring);
    let bytes = std::fs::metadata(out).unwrap().len();
    assert_eq!(
        (v["records_out"].as_u64(), v["bytes_out"].as_u64()),
        (Some(records), Some(bytes)),
        "stat's records and bytes out against the log's {records} records and {bytes} bytes"
    );
}

/// The drain killed after a batch is written and its space released but before the checkpoint
/// is cleared, at a different batch each round: `stat` must still count every record and byte
/// in the log (the counters are part of the checkpoint).
#[test]
fn stat_counts_stay_exact_across_drain_kills_at_every_step_of_a_batch() {
    for (round, point) in [
        Point::DrainReleased,
        Point::DrainWrittenBeforeRelease,
        Point::DrainHalfWritten,
        Point::DrainIntentStored,
    ]
    .into_iter()
    .enumerate()
    {
        let ring = unique_ring(&format!("statkill{}", point.name()));
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let args = ["--format", "json", "--capacity", "16M"];
        let reports = two_producers_into_16m(&ring);
        // Three kills in a row, each at its drain's second batch (or first, for round 0); the
        // middle drain writes on a second thread.
        let kills = [1 + (round as u64).min(1), 2, 2];
        for (nth, threading) in kills.into_iter().zip(THREADING.into_iter().cycle()) {
            let fault = format!("{}:kill:{nth}", point.name());
            let doomed_args = [&["--format", "json"], threading].concat();
            let (status, _) =
                DrainProcess::start_doomed(&ring, &out, &doomed_args, &fault).wait_exit();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(libc::SIGKILL),
                "{} {threading:?}",
                point.name()
            );
        }
        let (status, err) = DrainProcess::start(&ring, &out, &args).stop();
        assert!(status.success(), "{err}");
        let ids = tid_map(&reports);
        assert_exact(&verify_json_log(&out, &ids, 512), &ids, 20_000);
        assert_counters_match_the_log(&ring, &out, 40_000);
    }
}

/// How logrotate takes the log away while no drain runs (all in create mode: a new, empty
/// file at the path).
#[derive(Clone, Copy, Debug)]
enum RotateAway {
    /// `app.log` renamed to `app.log.1` beside it.
    Rename,
    /// Moved to `old/app.log.1` (`olddir`): the file's inode lives on elsewhere.
    OldDir,
    /// Renamed, then compressed to `app.log.1.gz` and removed (`compress`): its inode is gone.
    Compress,
}

/// The drain killed at `point` of its third batch, then the log rotated away as `how` says
/// while no drain runs, then a drain started and stopped, after two producers wrote 20,000
/// records each. What the log holds then.
#[derive(Debug)]
struct RotatedWhileDown {
    ring: String,
    _guard: RingGuard,
    /// The rotated file, decompressed if it was compressed.
    rotated: std::path::PathBuf,
    /// The file at the output path.
    out: std::path::PathBuf,
    /// The two, the rotated one first.
    both: std::path::PathBuf,
    /// What the last drain said.
    err: String,
    reports: Vec<ProducerReport>,
    _dir: tempfile::TempDir,
}

/// Whether logrotate is installed; if not, says that the calling test skips (it then returns).
fn logrotate_here() -> bool {
    let here = find_tool("logrotate").is_some();
    if !here {
        ringlog_testkit::skip::report(format_args!("needs logrotate (apt-get install logrotate)"));
    }
    here
}

fn rotated_while_down(point: Point, how: RotateAway) -> RotatedWhileDown {
    let ring = unique_ring(&format!("rotdown{how:?}{}", point.name()));
    let guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    let args = ["--format", "json", "--capacity", "16M"];
    let reports = two_producers_into_16m(&ring);
    drain_killed_at(&ring, &out, &args, &format!("{}:kill:3", point.name()));
    let extra = match how {
        RotateAway::Rename => "",
        RotateAway::OldDir => "  olddir old\n",
        RotateAway::Compress => "  compress\n",
    };
    std::fs::create_dir(dir.path().join("old")).unwrap();
    logrotate(
        dir.path(),
        &format!(
            "{} {{\n  rotate 3\n  create 0644\n{extra}}}\n",
            out.display()
        ),
    );
    // The drain may cut a half-written batch off the rotated file: read it afterwards.
    let (status, err) = DrainProcess::start(&ring, &out, &args).stop();
    assert!(status.success(), "{err}");
    let rotated = dir.path().join("rotated.log");
    let was = |name: &str| dir.path().join(name);
    let bytes = match how {
        RotateAway::Rename => std::fs::read(was("app.log.1")),
        RotateAway::OldDir => std::fs::read(was("old/app.log.1")),
        RotateAway::Compress => {
            assert!(!was("app.log.1").exists(), "logrotate compressed the log");
            Command::new(tool("gzip", "gzip"))
                .arg("-dc")
                .arg(was("app.log.1.gz"))
                .output()
                .map(|o| o.stdout)
        }
    };
    let bytes = bytes.unwrap_or_else(|e| panic!("{how:?}: the rotated log: {e}"));
    assert!(!bytes.is_empty(), "{how:?}: logrotate rotated the log");
    std::fs::write(&rotated, &bytes).unwrap();
    let both = dir.path().join("both.log");
    let mut all = bytes;
    all.extend(std::fs::read(&out).unwrap());
    std::fs::write(&both, all).unwrap();
    RotatedWhileDown {
        ring,
        _guard: guard,
        rotated,
        out,
        both,
        err,
        reports,
        _dir: dir,
    }
}

/// The drain dies after a batch reached the file (or half of it) and before it released it;
/// logrotate (create mode) renames the file while no drain runs; the restarted drain must find
/// its batch in the renamed file: not write it again (whole), or cut it there and write it
/// anew (half). Every record is in app.log.1 + app.log exactly once.
#[test]
fn a_batch_in_a_file_logrotate_renamed_while_the_drain_was_down_is_not_written_twice() {
    if !logrotate_here() {
        return;
    }
    for point in [Point::DrainWrittenBeforeRelease, Point::DrainHalfWritten] {
        let r = rotated_while_down(point, RotateAway::Rename);
        let ids = tid_map(&r.reports);
        assert_exact(&verify_json_log(&r.both, &ids, 512), &ids, 20_000);
        assert!(r.err.contains("app.log.1"), "{}: {}", point.name(), r.err);
    }
}

/// As above, but logrotate moves the file to another directory (`olddir`) or compresses it
/// (`compress`: the file is replaced by a .gz, its inode gone), so the restarted drain cannot
/// find it. The checkpoint noted that the batch was written, so it is released all the same:
/// every record once in the rotated file + the new one, no line about records that may repeat,
/// and `stat` counts each record and byte once.
#[test]
fn a_batch_in_a_file_logrotate_moved_or_compressed_while_the_drain_was_down_is_not_written_twice() {
    if !logrotate_here() {
        return;
    }
    for how in [RotateAway::OldDir, RotateAway::Compress] {
        let r = rotated_while_down(Point::DrainWrittenBeforeRelease, how);
        let ids = tid_map(&r.reports);
        let v = verify_json_log(&r.both, &ids, 512);
        assert_exact(&v, &ids, 20_000);
        assert!(v.notices.is_empty(), "{how:?}: {:?}", v.notices);
        assert!(
            r.err
                .contains("was fully written (to a file since moved away"),
            "{how:?}: {}",
            r.err
        );
        assert_counters_match_the_log(&r.ring, &r.both, 40_000);
    }
}

/// The drain killed in the few instructions between its append returning and the checkpoint
/// noting it, then the file moved away or compressed: nothing can tell whether the batch
/// reached it. The restarted drain writes the batch again, after a line in the log that gives
/// its record count and says they may appear twice; exactly that many records are in the two
/// files twice, every other once, none lost, none torn.
#[test]
fn a_batch_whose_file_went_away_before_it_was_noted_written_is_written_again_and_said_so() {
    if !logrotate_here() {
        return;
    }
    for how in [RotateAway::OldDir, RotateAway::Compress] {
        let r = rotated_while_down(Point::DrainWrittenNotMarked, how);
        let first = std::fs::read_to_string(&r.out).unwrap();
        let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        let said = first["msg"].as_str().unwrap_or_default();
        assert!(
            first["ringlog"] == true && said.contains("may appear twice"),
            "{how:?}: the new file starts with the line that says so: {first}"
        );
        assert!(r.err.contains(said), "{how:?}: {}", r.err);
        let count: u64 = said
            .split("a batch of ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut twice = 0;
        for p in &r.reports {
            let (old, new) = (messages_of(&r.rotated, p.pid), messages_of(&r.out, p.pid));
            // The new file goes on from where the batch written again starts.
            let resumed = 20_000 - new.len();
            assert!(resumed <= old.len(), "{how:?}: records lost");
            let mut expect = Vec::new();
            for (seq, msg) in old.iter().enumerate().chain((resumed..).zip(&new)) {
                record(p.id, seq as u64, 512, &mut expect);
                assert_eq!(
                    msg.as_bytes(),
                    expect,
                    "{how:?}: record {seq} of id {}",
                    p.id
                );
            }
            twice += (old.len() - resumed) as u64;
        }
        assert!(count > 0, "{how:?}: {said}");
        assert_eq!(
            twice, count,
            "{how:?}: records in the log twice, against the line"
        );
    }
}

fn logrotate(dir: &std::path::Path, config: &str) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();
    let out = Command::new(tool("logrotate", "logrotate"))
        .args(["-f", "-s"])
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("this test needs logrotate (apt-get install logrotate; .ci/run installs it)");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lines of the drain's stderr about its output failing and working again.
fn output_trouble_lines(err: &str) -> (Vec<&str>, Vec<&str>) {
    let failing = err
        .lines()
        .filter(|l| l.contains("cannot") && !l.contains("stopped"))
        .collect();
    let working = err.lines().filter(|l| l.contains("works again")).collect();
    (failing, working)
}

/// One outage of the output, made by `break_it` and ended by `fix_it`, while a producer writes
/// 2,000 records to a drain started with `threading`: the drain must say once that it fails
/// (with the cause `cause`), once that it works again (how long, how many records waited),
/// nothing in between, and lose nothing.
fn one_outage(
    test: &str,
    out: &std::path::Path,
    threading: &[&str],
    break_it: impl FnOnce(),
    fix_it: impl FnOnce(),
    cause: &str,
) {
    let ring = unique_ring(test);
    let _guard = RingGuard(ring.clone());
    let args = [&["--format", "json", "--capacity", "1M"], threading].concat();
    let drain = DrainProcess::start(&ring, out, &args);
    break_it();
    let report = reports_of(vec![ProducerSpec::new(&ring, 1, 2_000, 200).spawn()])[0];
    assert_eq!(report.dropped, 0);
    // The outage lasts while the drain retries (every 50 ms, backing off to 1 s) for two
    // seconds of its own heartbeat: several attempts, each of which used to print the error.
    let stuck_at = stat(&ring)["drain"]["heartbeat_ns"].as_u64().unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        let v = stat(&ring);
        v["drain"]["heartbeat_ns"].as_u64().unwrap() > stuck_at + 2_000_000_000
            && v["used"].as_u64() > Some(0)
    }));
    fix_it();
    assert!(wait_until(Duration::from_secs(20), || stat(&ring)
        ["records_out"]
        .as_u64()
        == Some(report.written)));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let (failing, working) = output_trouble_lines(&err);
    assert_eq!(failing.len(), 1, "{test}: said once when it starts:\n{err}");
    assert!(failing[0].contains(cause), "{test}: with its cause:\n{err}");
    assert_eq!(working.len(), 1, "{test}: said once when it ends:\n{err}");
    assert!(
        working[0].contains("2000 records waited"),
        "{test}: how many records waited:\n{err}"
    );
    let ids = tid_map(&[report]);
    assert_exact(&verify_json_log(out, &ids, 200), &ids, 2_000);
}

#[test]
fn a_missing_log_directory_is_reported_once_when_it_starts_and_once_when_it_ends() {
    for threading in THREADING {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let out = sub.join("out.log");
        one_outage(
            "missingdir",
            &out,
            threading,
            || std::fs::remove_dir_all(&sub).unwrap(),
            || std::fs::create_dir(&sub).unwrap(),
            "No such file or directory",
        );
    }
}

#[test]
fn a_read_only_filesystem_is_reported_once_when_it_starts_and_once_when_it_ends() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip!("needs root to mount a tmpfs");
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let out = logs.join("out.log");
    // A file system cannot be remounted read-only while the drain holds a file open for
    // writing on it; a read-only one mounted over the log directory makes the path read-only
    // all the same (the file there is gone, and creating it fails with EROFS).
    let run = |args: &[&str]| {
        let status = Command::new(args[0])
            .args(&args[1..])
            .arg(&logs)
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    };
    one_outage(
        "readonlyfs",
        &out,
        &[],
        || run(&["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"]),
        || run(&["umount"]),
        "Read-only file system",
    );
}

/// A producer dies holding a claim while no drain runs; the drain that skips it is killed right
/// after the batch carrying the skip reached the file (before and after releasing it). `stat`
/// must still charge exactly one abandoned claim to that producer, as the log says once: the
/// per-producer count rides with the batch's checkpoint like the totals.
#[test]
fn abandoned_counts_per_producer_stay_exact_when_the_drain_dies_around_the_batch() {
    let points = [Point::DrainWrittenBeforeRelease, Point::DrainReleased];
    for (point, threading) in points.into_iter().flat_map(|p| THREADING.map(|t| (p, t))) {
        let what = format!("{} {threading:?}", point.name());
        let ring = unique_ring(&format!("abandonkill{}", point.name()));
        let _guard = RingGuard(ring.clone());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        // The victim dies at its first record: its claim is the first frame of the ring, so
        // the first batch any drain writes is the one that skips it.
        let mut victim = ProducerSpec::new(&ring, 9, 10, 200);
        victim.extra = vec!["--fault".into(), "before-commit:kill:1".into()];
        let victim = victim.spawn();
        let victim_pid = victim.id();
        let status = victim.wait_with_output().unwrap().status;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "the victim dies at its point"
        );
        let reports = reports_of(vec![ProducerSpec::new(&ring, 1, 1_000, 200).spawn()]);
        let fault = format!("{}:kill:1", point.name());
        let doomed_args = [&["--format", "json"], threading].concat();
        drain_killed_at(&ring, &out, &doomed_args, &fault);
        let (status, err) = DrainProcess::start(&ring, &out, &["--format", "json"]).stop();
        assert!(status.success(), "{err}");
        let ids = tid_map(&reports);
        let v = verify_json_log(&out, &ids, 200);
        assert_exact(&v, &ids, 1_000);
        let skipped: Vec<u32> = notices(&v, "abandoned by pid")
            .iter()
            .map(|&(_, pid)| pid)
            .collect();
        assert_eq!(
            skipped,
            [victim_pid],
            "{what}: one skip line, for the victim"
        );
        let s = stat(&ring);
        assert_eq!(s["abandoned"], 1, "{what}: stat's total");
        let charged: Vec<(u64, u64)> = s["producers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["abandoned"].as_u64() != Some(0))
            .map(|p| (p["pid"].as_u64().unwrap(), p["abandoned"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            charged,
            [(victim_pid as u64, 1)],
            "{what}: stat's abandoned claims per producer (pid, count)"
        );
    }
}
/// The segment's name replaced while the drain runs: a producer writes into the ring, the
/// segment is removed and a new producer re-creates the name before the drain could put it
/// back (the drain is stopped meanwhile, to make that race certain), then the drain goes on.
/// As DESIGN and the README say: the drain keeps draining the old segment until its producer is
/// gone, says so in the log, then switches to the new segment and drains what waited there.
/// Every record of both producers is in the log exactly once.
#[test]
fn a_segment_replaced_while_the_drain_runs_is_drained_to_the_end_then_the_new_one() {
    segment_replaced_while_the_drain_runs("segreplacedlive", 64 << 10);
}

/// As above, with a new segment of another capacity than the drain's `--capacity` (its producer
/// asked for 1 MiB): the drain goes on with it as it is, instead of exiting.
#[test]
fn a_segment_replaced_by_one_of_another_capacity_is_drained_too() {
    segment_replaced_while_the_drain_runs("segreplacedcap", 1 << 20);
}

/// The drain runs with `--capacity 64K`; its segment is replaced while it is stopped by one
/// of `capacity` bytes, which a second producer creates and writes 300 records into.
fn segment_replaced_while_the_drain_runs(test: &str, capacity: u64) {
    let ring = unique_ring(test);
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let path = ring_path(&ring);
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "64K"]);
    let original = inode(&path).expect("the segment exists");
    // More than the ring holds, so the first producer is still writing (blocked on the full
    // ring) when the drain stops and when its segment loses its name.
    let first = ProducerSpec::new(&ring, 1, 50_000, 200).spawn();
    let started = wait_until(Duration::from_secs(20), || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0)
    });
    assert!(started, "nothing reached the log");
    drain.signal(libc::SIGSTOP);
    std::fs::remove_file(&path).unwrap();
    // The new producer creates a new segment under the name, writes fewer records than it
    // holds (~40 KiB, so it never waits for a drain) and finishes before the drain continues.
    let second = reports_of(vec![ProducerSpec::new(&ring, 2, 300, 200)
        .capacity(capacity)
        .spawn()]);
    assert_ne!(inode(&path), Some(original), "a new segment has the name");
    drain.signal(libc::SIGCONT);
    let mut reports = reports_of(vec![first]);
    reports.extend(second);
    let switched = wait_until_every(Duration::from_secs(30), Duration::from_millis(50), || {
        std::fs::read_to_string(&out).is_ok_and(|log| log.matches("\"tid\"").count() >= 50_300)
    });
    let (status, err) = drain.stop();
    assert!(switched, "not every record reached the log: {err}");
    assert!(status.success(), "{err}");
    let v = assert_records_per_producer(&out, &reports, &[50_000, 300]);
    for said in [
        "was replaced by another file while in use",
        "switching to the segment at the ring's path",
    ] {
        assert!(
            v.notices.iter().any(|n| n.contains(said)),
            "no line in the log says {said:?}: {:?}",
            v.notices
        );
    }
    // The new segment's records come after the old one's: the old one was drained first.
    let log = std::fs::read_to_string(&out).unwrap();
    let last_old = log.rfind(&format!("\"tid\":{},", reports[0].tid)).unwrap();
    let first_new = log.find(&format!("\"tid\":{},", reports[1].tid)).unwrap();
    assert!(
        last_old < first_new,
        "the old segment is drained to its end first"
    );
}
/// Messages of the `--format json` records in `out` whose producer is `pid`, in order.
fn messages_of(out: &std::path::Path, pid: u32) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["ringlog"] != true && v["pid"].as_u64() == Some(pid as u64))
        .map(|v| v["msg"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The drain stops cleanly while a producer is still attached; the segment is then removed
/// (a cleanup script, an operator) and the producer writes on into it, then exits. The next
/// drain must find the segment (the stopping drain kept its spare link because a producer was
/// attached), drain it, say so in the log, then go on with a new segment: every line the
/// producer sent is in the log once, in order.
#[test]
fn a_segment_removed_after_a_clean_drain_stop_is_found_and_drained_by_the_next_drain() {
    use std::io::Write;
    let ring = unique_ring("segremovedstop");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let path = ring_path(&ring);
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let mut pipe = Command::new(bin("ringlog-pipe"))
        .args(["--ring", &ring])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ringlog-pipe");
    let pid = pipe.id();
    let mut stdin = pipe.stdin.take().unwrap();
    let mut send = |what: &str| {
        let lines: String = (0..100).map(|i| format!("{what} {i}\n")).collect();
        stdin.write_all(lines.as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    send("before the stop");
    let written = wait_until(Duration::from_secs(20), || {
        messages_of(&out, pid).len() == 100
    });
    assert!(written, "the first lines never reached the log");
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    std::fs::remove_file(&path).unwrap();
    send("after the removal");
    drop(stdin);
    let piped = pipe.wait_with_output().unwrap();
    assert!(
        piped.status.success(),
        "ringlog-pipe: {}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let switched = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&out).is_ok_and(|log| log.contains("switching to the segment"))
    });
    let (status, err) = drain.stop();
    assert!(
        switched,
        "the next drain never drained the removed segment: {err}"
    );
    assert!(status.success(), "{err}");
    let expected: Vec<String> = ["before the stop", "after the removal"]
        .iter()
        .flat_map(|what| (0..100).map(move |i| format!("{what} {i}")))
        .collect();
    assert_eq!(
        messages_of(&out, pid),
        expected,
        "every line once, in order"
    );
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(
        log.contains("removed or replaced while no drain ran"),
        "no line in the log says what happened"
    );
}

#[test]
fn a_child_forked_while_its_parent_opens_its_lock_descriptor_does_not_keep_the_parent_alive() {
    // Bug: a `fork()` by another thread between opening the lock descriptor and registering it
    // for closing in children left the child holding the open file description, and with it
    // the parent's slot locks: after the parent died, its slot still looked alive (the drain
    // would wait on its claims instead of skipping them) for as long as the child lived.
    use std::io::BufRead;
    use std::process::Stdio;
    let ring = unique_ring("forkopen");
    let _guard = RingGuard(ring.clone());
    let mut parent = Command::new(armed_bin("ringlog-test-producer"))
        .args(["--ring", &ring, "--id", "1", "--records", "1"])
        .arg("--fork-while-opening")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = parent.id();
    // Kept until the end: the child lives until its stdin (the parent's) closes, and
    // `Child::wait` would close it.
    let stdin = parent.stdin.take();
    let mut said = std::io::BufReader::new(parent.stdout.take().unwrap()).lines();
    let child: i32 = said
        .find_map(|l| l.ok()?.strip_prefix("ready child=")?.parse().ok())
        .expect("the producer never said it was ready");
    // Running or sleeping, not a zombie (its new parent may not reap it at once).
    let child_alive = || {
        std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
            let state = stat
                .rsplit(") ")
                .next()
                .and_then(|rest| rest.chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        })
    };
    assert_eq!(
        attached_slots(&ring, pid).len(),
        1,
        "the parent's slot, while it lives"
    );

    parent.kill().unwrap();
    parent.wait().unwrap();
    assert!(child_alive(), "the child must outlive its parent here");
    let still_alive = attached_slots(&ring, pid);
    // Ends the child.
    drop(stdin);
    assert!(
        still_alive.is_empty(),
        "the SIGKILLed parent's slot looks alive while its child lives: {still_alive:?}"
    );
}
