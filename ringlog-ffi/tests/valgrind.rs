//! The C test programs under valgrind's memcheck, linked both ways: zero errors and zero leaks
//! (definite, indirect or possible; see tests/valgrind.supp for the two it forgives, neither
//! ours to free), in the parent and in every forked child. Ignored, with
//! the reason, where valgrind is not installed.

mod common;

use common::{compile, run_ok, Linkage};
use ringlog_tests::{unique_ring, DrainProcess, RingGuard};
use std::path::Path;
use std::process::Command;

/// `valgrind` with memcheck set to fail the run (exit 99) on any error or leak. Children of
/// fork() stay under valgrind and are checked at their own exit.
fn valgrind(exe: &Path) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--quiet",
        "--tool=memcheck",
        "--error-exitcode=99",
        "--leak-check=full",
        // Indirect leaks hang off a definite one, which is shown and fails the run.
        "--show-leak-kinds=definite,possible",
        "--errors-for-leak-kinds=definite,possible",
    ])
    .arg(format!(
        "--suppressions={}",
        common::crate_dir().join("tests/valgrind.supp").display()
    ))
    .arg(exe);
    cmd
}

/// Runs `exe ARGS` under valgrind; panics with its report on any error or leak.
fn memcheck(exe: &Path, args: &[&str]) -> String {
    let output = run_ok(valgrind(exe).args(args));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("=="), "valgrind reported:\n{stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn statuses(linkage: Linkage) {
    let dir = tempfile::tempdir().unwrap();
    common::status_fixtures(dir.path());
    let exe = compile("statuses.c", linkage, dir.path());
    let ring = unique_ring(&format!("vg-statuses-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let stdout = memcheck(&exe, &[&ring, dir.path().to_str().unwrap()]);
    assert!(stdout.ends_with("all statuses as expected\n"), "{stdout}");
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn statuses_under_valgrind_shared() {
    statuses(Linkage::Shared);
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn statuses_under_valgrind_static() {
    statuses(Linkage::Static);
}

/// A C program that writes through a real drain, under valgrind.
fn through_a_drain(source: &str, linkage: Linkage, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(source, linkage, dir.path());
    let ring = unique_ring(&format!("vg-{source}-{linkage:?}"));
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &log, &["--format", "json"]);
    let mut all = vec![ring.as_str()];
    all.extend_from_slice(args);
    let stdout = memcheck(&exe, &all);
    let (status, stderr) = drain.stop();
    assert!(status.success(), "drain: {status}: {stderr}");
    stdout
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn threads_under_valgrind_shared() {
    through_a_drain("producers.c", Linkage::Shared, &["threads", "3", "300"]);
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn forked_children_under_valgrind_static() {
    through_a_drain("producers.c", Linkage::Static, &["fork", "2", "300"]);
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn claims_across_fork_under_valgrind_shared() {
    through_a_drain("fork_claim.c", Linkage::Shared, &[]);
}

/// Heap allocations of a whole run of `producers RING threads 1 RECORDS` through a drain, as
/// valgrind counts them.
fn heap_allocations(records: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile("producers.c", Linkage::Shared, dir.path());
    let ring = unique_ring(&format!("vg-allocs-{records}"));
    let _guard = RingGuard(ring.clone());
    let drain = DrainProcess::start(&ring, &dir.path().join("out.log"), &[]);
    let output = run_ok(
        Command::new("valgrind")
            .args(["--tool=memcheck", "--error-exitcode=99"])
            .arg(&exe)
            .args([ring.as_str(), "threads", "1", &records.to_string()]),
    );
    let (status, stderr) = drain.stop();
    assert!(status.success(), "drain: {status}: {stderr}");
    let report = String::from_utf8_lossy(&output.stderr);
    let line = report
        .lines()
        .find(|l| l.contains("total heap usage:"))
        .unwrap_or_else(|| panic!("no heap summary from valgrind:\n{report}"));
    let allocs = line.split("total heap usage:").nth(1).unwrap().trim();
    allocs
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .expect(line)
}

#[test]
#[cfg_attr(
    ringlog_no_valgrind,
    ignore = "valgrind is not installed (apt-get install valgrind)"
)]
fn no_allocation_per_record() {
    // Every record goes through ringlog_write, ringlog_write_record or a claim; every 50th also
    // through an aborted claim. 30 times the records, not one allocation more.
    let few = heap_allocations(100);
    let many = heap_allocations(3000);
    assert_eq!(few, many, "allocations grew with the number of records");
}
