//! What users build: no fault injection (DESIGN.md: faults are for tests), and only the crates
//! it needs. The fault tests run `*-fault-armed` builds of their own
//! (`ringlog_tests::armed_bin`), so `cargo test --workspace` leaves in target/ the production
//! `ringlog-drain` that the benches and the Python and Node tests run. Checked like
//! `strings`/`nm` would: the bytes of each file are searched for the fault hook's symbols and
//! the name of the variable that arms it. The crate graph is checked with `cargo tree`.

use ringlog_tests::{armed_bin, bin_dir};
use std::path::Path;
use std::process::Command;

/// What a fault-armed build contains: the variable the drain reads, the hook function's and
/// the hook static's (legacy-mangled) symbol names.
const MARKERS: [&str; 3] = ["RINGLOG_FAULT", "5fault5armed4hook", "5fault4HOOK"];

fn markers_in(path: &Path) -> Vec<&'static str> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    MARKERS
        .into_iter()
        .filter(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        .collect()
}

#[test]
fn the_binaries_and_libraries_users_build_carry_no_fault_hooks() {
    // The probe finds the hooks where they are: the armed drain reads RINGLOG_FAULT and has
    // the hook; the armed producer links the writer's hook calls.
    let armed_drain = armed_bin("ringlog-drain");
    assert_eq!(
        markers_in(&armed_drain),
        MARKERS,
        "{}",
        armed_drain.display()
    );
    let armed_producer = armed_bin("ringlog-test-producer");
    assert!(
        markers_in(&armed_producer).contains(&"5fault4HOOK"),
        "{}",
        armed_producer.display()
    );

    // Built as users build them.
    let release = bin_dir().file_name().is_some_and(|p| p == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "ringlog-drain",
        "-p",
        "ringlog-writer",
    ])
    .args(["-p", "ringlog-ffi"]);
    if release {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("run cargo build").success());
    for file in ["ringlog-drain", "libringlog_writer.rlib", "libringlog.so"] {
        let path = bin_dir().join(file);
        assert_eq!(markers_in(&path), Vec::<&str>::new(), "{}", path.display());
    }
}

/// The packages `cargo tree -p PACKAGE -e normal` lists (what building PACKAGE compiles, dev-
/// and build-dependencies aside), with `features`.
fn normal_dependencies(package: &str, features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(features)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 cargo tree")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The crate graph of what users build (issue 17): the drain links neither the writer nor
/// tempfile (the demo is its own crate), and a service linking the writer, with any of its
/// features, compiles no clap (`ringlog-pipe` is its own crate). Nothing of the tests either.
#[test]
fn the_drain_and_the_writer_compile_only_what_they_need() {
    let drain = normal_dependencies("ringlog-drain", &[]);
    // The probe sees the graph: the drain's own dependencies are there.
    for needed in ["ringlog-core", "clap", "rustix"] {
        assert!(drain.iter().any(|d| d == needed), "{needed}: {drain:?}");
    }
    for unwanted in ["ringlog-writer", "tempfile", "ringlog-testkit"] {
        assert!(
            !drain.iter().any(|d| d == unwanted),
            "ringlog-drain depends on {unwanted}: {drain:?}"
        );
    }
    for features in [&[][..], &["--all-features"][..]] {
        let writer = normal_dependencies("ringlog-writer", features);
        assert!(writer.iter().any(|d| d == "ringlog-core"), "{writer:?}");
        for unwanted in ["clap", "tempfile", "ringlog-testkit"] {
            assert!(
                !writer.iter().any(|d| d == unwanted),
                "ringlog-writer {features:?} depends on {unwanted}: {writer:?}"
            );
        }
    }
}
