//! The documented install step (scripts/install-c.sh PREFIX) into a temporary prefix, then the
//! README's quickstart compiled with `pkg-config --cflags --libs ringlog` (shared) and
//! `ringlog-static` (static) against the installed files only, and run through a real drain.

mod common;

use common::{cc, crate_dir, dynamic_section, lib_dir, links_shared_libringlog, run_ok, SONAME};
use ringlog_tests::{tool, unique_ring, DrainProcess, RingGuard};
use std::path::Path;
use std::process::Command;

fn pkg_config(prefix: &Path, package: &str) -> Vec<String> {
    let out = run_ok(
        Command::new(tool("pkg-config", "pkg-config"))
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .args(["--cflags", "--libs", package]),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Runs the install script into `prefix` with the libraries this test run built.
fn install(prefix: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(crate_dir().join("../scripts/install-c.sh"))
        .arg(prefix)
        .env("RINGLOG_PREBUILT", lib_dir())
        .output()
        .expect("run bash")
}

#[test]
fn installed_library_builds_the_quickstart_through_pkg_config_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let spaced = install(&dir.path().join("a prefix"));
    assert!(
        !spaced.status.success() && String::from_utf8_lossy(&spaced.stderr).contains("white space"),
        "a prefix pkg-config cannot pass on is refused: {spaced:?}"
    );
    let prefix = dir.path().join("prefix");
    let installed = install(&prefix);
    assert!(installed.status.success(), "install-c.sh: {installed:?}");
    let version = env!("CARGO_PKG_VERSION");
    let real = format!("libringlog.so.{version}");
    // The library, its SONAME link and the name the linker looks for, as distributions lay
    // them out: libringlog.so -> SONAME -> libringlog.so.VERSION.
    let lib = prefix.join("lib");
    assert_eq!(
        std::fs::read_link(lib.join("libringlog.so")).unwrap(),
        Path::new(SONAME)
    );
    assert_eq!(
        std::fs::read_link(lib.join(SONAME)).unwrap(),
        Path::new(&real)
    );
    assert!(
        dynamic_section(&lib.join(&real)).contains(&format!("Library soname: [{SONAME}]")),
        "installed library without the SONAME {SONAME}"
    );
    for file in [
        "lib/libringlog.so",
        "lib/libringlog.a",
        "include/ringlog.h",
        "lib/pkgconfig/ringlog.pc",
        "lib/pkgconfig/ringlog-static.pc",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    for (package, shared) in [("ringlog", true), ("ringlog-static", false)] {
        let exe = dir.path().join(format!("quickstart-{package}"));
        run_ok(
            Command::new(cc())
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
                .arg(crate_dir().join("tests/c/quickstart.c"))
                .arg("-o")
                .arg(&exe)
                .args(pkg_config(&prefix, package)),
        );
        assert_eq!(links_shared_libringlog(&exe), shared, "{package}");
        if shared {
            // The program asks for the SONAME, not the unversioned link-time name.
            let needed = dynamic_section(&exe);
            assert!(
                needed.contains(&format!("Shared library: [{SONAME}]")),
                "{needed}"
            );
        }

        let ring = unique_ring(&format!("quickstart-{package}"));
        let _guard = RingGuard(ring.clone());
        let log = dir.path().join(format!("{package}.log"));
        let drain = DrainProcess::start(&ring, &log, &["--format", "text"]);
        let mut run = Command::new(&exe);
        run.arg(&ring);
        if shared {
            run.env("LD_LIBRARY_PATH", prefix.join("lib"));
        }
        run_ok(&mut run);
        let (status, stderr) = drain.stop();
        assert!(status.success(), "drain: {status}: {stderr}");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("service started"), "{text}");
        assert!(
            lines[1].contains("INFO") && lines[1].contains("quickstart"),
            "{text}"
        );
        assert!(lines[1].ends_with("ready"), "{text}");
    }
}
