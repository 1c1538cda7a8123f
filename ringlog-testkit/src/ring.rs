//! Rings of tests, benchmarks and the demo: names no other process uses, so they run in
//! parallel, and a guard that leaves nothing behind in /dev/shm. Never opens a ring.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest label [`unique_ring`] keeps: with the pid and the counter the name stays far below
/// the 64 characters a ring name may have.
const LABEL_MAX: usize = 32;

/// A ring name no other test, benchmark or process uses: `<label>-<pid>-<n>`, the label cut to
/// its ASCII letters, digits and dashes (at most 32 of them).
pub fn unique_ring(label: &str) -> String {
    // Relaxed: only the uniqueness of the values matters, not their order with anything else.
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(LABEL_MAX)
        .collect();
    format!("{label}-{}-{n}", std::process::id())
}

/// The segment file of ring `name`: `/dev/shm/ringlog-<name>`.
pub fn ring_path(name: &str) -> PathBuf {
    Path::new(ringlog_core::segment::SHM_DIR).join(format!("ringlog-{name}"))
}

/// Removes ring `name`'s segment when dropped, and every file a drain keeps beside it: the
/// spare link a killed drain may have left, `.outputs.json`, a RELP output's journal.
#[derive(Debug)]
pub struct RingGuard(pub String);

impl Drop for RingGuard {
    fn drop(&mut self) {
        let path = ring_path(&self.0);
        let _ = std::fs::remove_file(ringlog_drain::segment_name::spare_path(&path));
        let beside = format!("ringlog-{}.", self.0);
        if let Ok(entries) = std::fs::read_dir(ringlog_core::segment::SHM_DIR) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&beside) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_valid_and_keep_their_label() {
        let a = unique_ring("t-some_test::name with spaces and a very long tail indeed");
        let b = unique_ring("t-some_test::name with spaces and a very long tail indeed");
        assert_ne!(a, b);
        assert!(a.starts_with("t-sometestnamewithspacesandavery-"), "{a}");
        for name in [a, b, unique_ring("bench")] {
            assert!(
                ringlog_core::Location::Name(name.clone()).path().is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_guard_removes_the_segment_and_what_lies_beside_it() {
        let name = unique_ring("kit-guard");
        let files = [
            ring_path(&name),
            ringlog_drain::segment_name::spare_path(&ring_path(&name)),
            ring_path(&format!("{name}.outputs.json")),
        ];
        let other = ring_path(&format!("{name}x"));
        for f in files.iter().chain([&other]) {
            std::fs::write(f, b"x").unwrap();
        }
        drop(RingGuard(name));
        for f in &files {
            assert!(!f.exists(), "{} left behind", f.display());
        }
        assert!(other.exists(), "another ring's file must stay");
        std::fs::remove_file(other).unwrap();
    }
}
