//! The C programs of tests/c/, compiled against include/ringlog.h and linked both ways
//! (libringlog.so and libringlog.a), run against real rings and a real `ringlog-drain`:
//! forked processes and threads writing through one handle (every record exactly once, untorn,
//! in order per producer, with its writer's pid and tid), claims in flight across fork(), a
//! closed handle in a live process (no longer attached), no syscall per `ringlog_write`, and
//! every status for its bad input.

mod common;

use common::{compile, links_shared_libringlog, run_ok, Linkage};
use ringlog_tests::{
    assert_detached_across_a_drain_stop, find_tool, skip, unique_ring, DrainProcess, RingGuard,
};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Record `seq` of producer `id`, as tests/c/records.h writes it.
fn record(id: u32, seq: u64) -> String {
    let filler = if seq % 101 == 100 {
        5000 + (seq % 3000) as usize
    } else {
        ((seq * 131 + id as u64 * 17) % 400) as usize
    };
    let mut s = format!("p={id} s={seq} ");
    s.extend((0..filler).map(|i| (b'a' + ((id as u64 * 7 + seq + i as u64) % 26) as u8) as char));
    s
}

/// Who a producer was: "producer ID pid PID tid TID" lines of the program's stdout.
fn producers(stdout: &[u8]) -> HashMap<u32, (u64, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f[..] {
                ["producer", id, "pid", pid, "tid", tid] => {
                    Some((id.parse().ok()?, (pid.parse().ok()?, tid.parse().ok()?)))
                }
                _ => None,
            }
        })
        .collect()
}

/// The JSON lines of a drained log, drain notices apart.
fn json_records(log: &Path) -> (Vec<serde_json::Value>, Vec<String>) {
    let text = std::fs::read_to_string(log).expect("read the drained log");
    let mut records = Vec::new();
    let mut notices = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:.200}"));
        if v["ringlog"] == true {
            notices.push(v["msg"].as_str().unwrap_or_default().to_owned());
        } else {
            records.push(v);
        }
    }
    (records, notices)
}

/// The producer id and sequence number a record starts with ("p=ID s=SEQ ").
fn parse_head(msg: &str) -> Option<(u32, u64)> {
    let mut fields = msg.splitn(3, ' ');
    let id = fields.next()?.strip_prefix("p=")?.parse().ok()?;
    let seq = fields.next()?.strip_prefix("s=")?.parse().ok()?;
    Some((id, seq))
}

/// Checks the log holds, for each producer, exactly `records` records, in order, untorn, with
/// its pid and tid, and the level and target of the call that wrote each.
fn verify(log: &Path, who: &HashMap<u32, (u64, u64)>, records: u64) {
    let (lines, notices) = json_records(log);
    assert!(notices.is_empty(), "the drain reported: {notices:?}");
    let mut next: HashMap<u32, u64> = who.keys().map(|&id| (id, 0)).collect();
    for v in &lines {
        let msg = v["msg"].as_str().expect("msg");
        assert!(!msg.contains("ABORTED"), "an aborted claim reached the log");
        let (id, seq) = parse_head(msg).unwrap_or_else(|| panic!("not a test record: {msg:.100}"));
        let expected = next
            .get_mut(&id)
            .unwrap_or_else(|| panic!("unknown producer {id}"));
        assert_eq!(
            seq, *expected,
            "producer {id}: records out of order, lost or repeated"
        );
        *expected += 1;
        assert!(
            msg == record(id, seq),
            "producer {id} record {seq} torn: {msg:.100}"
        );
        let (pid, tid) = who[&id];
        assert_eq!(v["pid"], pid, "producer {id} record {seq}: pid");
        assert_eq!(v["tid"], tid, "producer {id} record {seq}: tid");
        let (level, target) = match seq % 3 {
            0 => ("-", None),
            1 => ("INFO", Some("c.producer")),
            _ => ("WARN", None),
        };
        assert_eq!(v["level"], level, "producer {id} record {seq}: level");
        assert_eq!(
            v["target"].as_str(),
            target,
            "producer {id} record {seq}: target"
        );
    }
    for (id, n) in next {
        assert_eq!(n, records, "producer {id}: records in the log");
    }
}

/// Runs `producers RING MODE N RECORDS` linked `linkage` through a real drain, and verifies.
fn producers_through_a_drain(mode: &str, linkage: Linkage) {
    const PRODUCERS: u32 = 4;
    const RECORDS: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let exe = compile("producers.c", linkage, dir.path());
    assert_eq!(
        links_shared_libringlog(&exe),
        linkage == Linkage::Shared,
        "{}",
        exe.display()
    );
    let ring = unique_ring(&format!("c-{mode}-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &log, &["--format", "json"]);
    let output = run_ok(Command::new(&exe).args([
        &ring,
        mode,
        &PRODUCERS.to_string(),
        &RECORDS.to_string(),
    ]));
    let (status, stderr) = drain.stop();
    assert!(status.success(), "drain: {status}: {stderr}");
    let who = producers(&output.stdout);
    assert_eq!(who.len(), PRODUCERS as usize, "producers reported: {who:?}");
    let pids: std::collections::HashSet<u64> = who.values().map(|&(pid, _)| pid).collect();
    let tids: std::collections::HashSet<u64> = who.values().map(|&(_, tid)| tid).collect();
    assert_eq!(tids.len(), PRODUCERS as usize, "one tid per producer");
    match mode {
        // Each child writes with its own pid, none with the parent's.
        "fork" => assert_eq!(pids.len(), PRODUCERS as usize, "one pid per child: {who:?}"),
        _ => assert_eq!(pids.len(), 1, "threads share the pid: {who:?}"),
    }
    verify(&log, &who, RECORDS);
}

#[test]
fn forked_children_write_exactly_once_in_order_with_their_own_pid_shared() {
    producers_through_a_drain("fork", Linkage::Shared);
}

#[test]
fn forked_children_write_exactly_once_in_order_with_their_own_pid_static() {
    producers_through_a_drain("fork", Linkage::Static);
}

#[test]
fn threads_write_exactly_once_in_order_shared() {
    producers_through_a_drain("threads", Linkage::Shared);
}

#[test]
fn threads_write_exactly_once_in_order_static() {
    producers_through_a_drain("threads", Linkage::Static);
}

/// Runs fork_claim linked `linkage` through a drain and checks each record once, by its pid.
fn claims_in_flight_at_fork(linkage: Linkage) {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile("fork_claim.c", linkage, dir.path());
    let ring = unique_ring(&format!("c-forkclaim-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &log, &["--format", "json"]);
    let output = run_ok(Command::new(&exe).arg(&ring));
    let (status, stderr) = drain.stop();
    assert!(status.success(), "drain: {status}: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let f: Vec<&str> = stdout.split_whitespace().collect();
    let ["parent", parent, "child", child] = f[..] else {
        panic!("unexpected output: {stdout}")
    };
    let (parent, child): (u64, u64) = (parent.parse().unwrap(), child.parse().unwrap());
    let (records, notices) = json_records(&log);
    assert!(notices.is_empty(), "the drain reported: {notices:?}");
    let mut seen: Vec<(String, u64)> = records
        .iter()
        .map(|v| {
            (
                v["msg"].as_str().unwrap().to_owned(),
                v["pid"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("child".to_owned(), child),
            ("main-claim:first+second".to_owned(), parent),
            ("thread-claim:first+second".to_owned(), parent),
        ]
    );
}

#[test]
fn claims_in_flight_at_fork_belong_to_the_parent_shared() {
    claims_in_flight_at_fork(Linkage::Shared);
}

#[test]
fn claims_in_flight_at_fork_belong_to_the_parent_static() {
    claims_in_flight_at_fork(Linkage::Static);
}

/// The statuses every bad input gets, and which the program must have seen.
const EXPECTED_STATUSES: &[&str] = &[
    "RINGLOG_NULL_ARGUMENT",
    "RINGLOG_BAD_NAME",
    "RINGLOG_BAD_ARGUMENT",
    "RINGLOG_NOT_FOUND",
    "RINGLOG_NOT_A_RING",
    "RINGLOG_VERSION_MISMATCH",
    "RINGLOG_PERMISSION",
    "RINGLOG_IO",
    "RINGLOG_TOO_LARGE",
    "RINGLOG_DROPPED",
    "RINGLOG_WOULD_DEADLOCK",
];

fn every_status_for_its_bad_input(linkage: Linkage) {
    let dir = tempfile::tempdir().unwrap();
    common::status_fixtures(dir.path());
    let exe = compile("statuses.c", linkage, dir.path());
    let ring = unique_ring(&format!("c-statuses-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let output = run_ok(Command::new(&exe).arg(&ring).arg(dir.path()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for status in EXPECTED_STATUSES {
        assert!(
            stdout.contains(&format!("checked {status}:")),
            "{status} was never returned:\n{stdout}"
        );
    }
    assert!(stdout.ends_with("all statuses as expected\n"), "{stdout}");
}

/// A 64 KiB tmpfs, unmounted when dropped.
struct SmallTmpfs(tempfile::TempDir);

impl SmallTmpfs {
    /// Mounts one, or says why it cannot (only root may mount).
    fn mount() -> Result<SmallTmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallTmpfs(dir))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn no_space_for_a_ring_on_a_full_filesystem() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let small = match SmallTmpfs::mount() {
        Ok(small) => small,
        Err(why) if !root => skip!("not root, cannot mount a small tmpfs ({why})"),
        Err(why) => panic!("root, yet cannot mount a small tmpfs: {why}"),
    };
    let dir = tempfile::tempdir().unwrap();
    common::status_fixtures(dir.path());
    let exe = compile("statuses.c", Linkage::Shared, dir.path());
    let ring = unique_ring("c-nospace");
    let _guard = RingGuard(ring.clone());
    let output = run_ok(
        Command::new(&exe)
            .arg(&ring)
            .arg(dir.path())
            .arg(small.0.path()),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("checked RINGLOG_NO_SPACE:"), "{stdout}");
}

#[test]
fn every_status_for_its_bad_input_shared() {
    every_status_for_its_bad_input(Linkage::Shared);
}

#[test]
fn every_status_for_its_bad_input_static() {
    every_status_for_its_bad_input(Linkage::Static);
}

/// Runs close_wait linked `linkage`: its handle closed while it and both threads that wrote
/// live on, it is not an attached producer for `stat`, and a drain stopped with SIGTERM keeps
/// no spare link (which would keep the segment's memory in /dev/shm after everyone exits).
fn a_closed_handle_of_a_live_process_is_not_attached(linkage: Linkage) {
    use std::io::BufRead;
    use std::process::Stdio;
    const RECORDS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let exe = compile("close_wait.c", linkage, dir.path());
    let ring = unique_ring(&format!("c-closewait-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &log, &["--format", "json"]);
    let mut child = Command::new(&exe)
        .args([&ring, &RECORDS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn close_wait");
    let pid = child.id();
    let said = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next();
    assert_eq!(
        said.and_then(Result::ok),
        Some(format!("closed pid {pid}")),
        "close_wait did not get to close its handle"
    );
    assert_detached_across_a_drain_stop(&ring, pid, drain);
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "close_wait: {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let (records, notices) = json_records(&log);
    assert!(notices.is_empty(), "the drain reported: {notices:?}");
    assert_eq!(records.len() as u64, 2 * RECORDS, "records in the log");
}

#[test]
fn a_closed_handle_of_a_live_process_is_not_attached_shared() {
    a_closed_handle_of_a_live_process_is_not_attached(Linkage::Shared);
}

#[test]
fn a_closed_handle_of_a_live_process_is_not_attached_static() {
    a_closed_handle_of_a_live_process_is_not_attached(Linkage::Static);
}

/// The syscalls strace sees syscalls.c make between its two markers while it writes `records`
/// records (into a ring of its own, with no drain: nothing to wake).
fn syscalls_between_markers(strace: &Path, exe: &Path, records: u64) -> Vec<String> {
    let ring = unique_ring("c-syscalls");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("strace.txt");
    run_ok(
        Command::new(strace)
            .args(["-f", "-o"])
            .arg(&trace)
            .arg(exe)
            .args([&ring, &records.to_string()]),
    );
    let text = std::fs::read_to_string(&trace).expect("read the strace log");
    let lines: Vec<&str> = text.lines().collect();
    let at = |marker: &str| {
        lines
            .iter()
            .position(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no {marker} in the strace log:\n{text}"))
    };
    let (begin, end) = (
        at("/ringlog-c-syscalls-begin"),
        at("/ringlog-c-syscalls-end"),
    );
    lines[begin + 1..end]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// `ringlog_write` and `ringlog_write_record` make no syscall per record: 100 times the
/// records make no more syscalls than 1,000 do (counted by strace between two markers).
#[test]
fn ringlog_write_makes_no_syscall_per_record() {
    let Some(strace) = find_tool("strace") else {
        skip!("strace is not installed (apt-get install strace; .ci/run installs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let exe = compile("syscalls.c", Linkage::Shared, dir.path());
    let few = syscalls_between_markers(&strace, &exe, 1_000);
    let many = syscalls_between_markers(&strace, &exe, 100_000);
    eprintln!(
        "{} syscalls for 1,000 records, {} for 100,000",
        few.len(),
        many.len()
    );
    assert!(
        many.len() <= few.len(),
        "{} syscalls for 100,000 records, {} for 1,000:\n{}",
        many.len(),
        few.len(),
        many[..many.len().min(50)].join("\n")
    );
}
