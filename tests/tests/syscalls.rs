//! The producer's steady path makes no syscall: counted with strace on a real producer.

use ringlog_tests::*;
use std::process::Command;

#[test]
fn a_producer_makes_far_fewer_syscalls_than_records() {
    let strace = tool("strace", "strace");
    let ring = unique_ring("syscalls");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let summary = dir.path().join("strace.txt");
    let drain = DrainProcess::start(&ring, &out, &[]);
    let records = 200_000u64;
    let status = Command::new(&strace)
        .args(["-f", "-c", "-o"])
        .arg(&summary)
        .arg(bin("ringlog-test-producer"))
        .args([
            "--ring",
            &ring,
            "--id",
            "0",
            "--records",
            &records.to_string(),
            "--max-size",
            "128",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (exit, err) = drain.stop();
    assert!(exit.success(), "{err}");
    let text = std::fs::read_to_string(&summary).unwrap();
    let total: u64 = text
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or_else(|| panic!("no total in strace output:\n{text}"));
    eprintln!("{total} syscalls for {records} records");
    // Start-up (loader, attach) costs a few hundred; the records themselves none.
    assert!(
        total < records / 100,
        "{total} syscalls for {records} records:\n{text}"
    );
    let log = std::fs::read_to_string(&out).unwrap();
    assert_eq!(log.lines().count() as u64, records);
}
