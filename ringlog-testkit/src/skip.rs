//! Tests that cannot run here (not root, no loop device, a system tool missing) say so, loudly
//! and countably: one line `SKIPPED: <test>: <why>` on the process's own standard error, past
//! the test harness's capture, so it shows in every run, and `scripts/test-all.sh` counts and
//! lists those lines at the end. Never a silent pass. Where the test can run (CI runs as root,
//! with loop devices) it runs.

use std::io::Write;

/// Writes `SKIPPED: <test>: <why>` to standard error, the test named by its thread (libtest
/// names each test's thread after it). Prefer [`skip!`](crate::skip!), which also returns.
pub fn report(why: std::fmt::Arguments<'_>) {
    let thread = std::thread::current();
    report_named(
        thread.name().filter(|n| *n != "main").unwrap_or("a test"),
        why,
    );
}

/// [`report`] for a test that names itself (or a part of itself).
pub fn report_named(test: &str, why: std::fmt::Arguments<'_>) {
    let line = format!("SKIPPED: {test}: {why}\n");
    // Through the handle, not `eprintln!`: libtest captures the print macros' output of a test
    // that passes, and a skip must show. One write keeps the line whole among other tests'.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Reports that the calling test cannot run here and why (see [`report`](crate::skip::report)),
/// then returns from it: `skip!("needs root to mount a tmpfs")`.
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::skip::report(::std::format_args!($($why)+));
        return;
    }};
}
