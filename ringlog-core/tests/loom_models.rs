//! Runs the loom models (`tests/loom.rs`) as part of the ordinary test suite. They need the
//! library built with `--cfg loom`, so this test builds and runs them with cargo in a target
//! directory of their own (`target/loom`), and fails if any model fails.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_loom_models_of_the_ring_protocol_pass() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("workspace root").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.is_empty() => format!("{flags} --cfg loom"),
        _ => "--cfg loom".to_owned(),
    };
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args(["test", "-p", "ringlog-core", "--release", "--test", "loom"])
        .env("RUSTFLAGS", rustflags)
        .env("CARGO_TARGET_DIR", workspace.join("target").join("loom"))
        .output()
        .expect("run cargo for the loom models");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loom models failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or("");
    assert!(
        summary.contains(" 0 failed") && !summary.contains("ok. 0 passed"),
        "the loom models did not run: {summary:?}\n{stdout}"
    );
    eprintln!("loom: {summary}");
}
