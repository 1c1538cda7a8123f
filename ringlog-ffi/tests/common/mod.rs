//! Building the C test programs of tests/c/ with the system compiler against include/ringlog.h
//! and the libringlog that cargo built for this test run, linked either way, and running them.

#![allow(dead_code)] // Each test crate uses part of this module.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How a C program is linked to libringlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// libringlog.so, found at run time through an rpath.
    Shared,
    /// libringlog.a, linked into the program.
    Static,
}

/// The system libraries a program linked with the static libringlog needs (what
/// `rustc --print native-static-libs` lists for a staticlib on Linux glibc).
pub const STATIC_DEPENDENCIES: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// This crate's directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The SONAME ringlog-ffi/build.rs gives libringlog.so (e.g. `libringlog.so.0.1`).
pub const SONAME: &str = env!("RINGLOG_SONAME");

/// target/<profile>, holding libringlog.so and libringlog.a. `cargo test` builds this crate's
/// library only as an rlib for its tests, so the first call in each test process runs
/// `cargo build -p ringlog-ffi --lib` for the same profile (a no-op when it is fresh): a test
/// never links a stale or missing library. Beside libringlog.so it puts the link a program
/// linked against it loads at run time, named by the SONAME (what `ldconfig` makes when
/// installed).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // The test executable is target/<profile>/deps/<test>-<hash>.
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "ringlog-ffi", "--lib"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p ringlog-ffi failed");
        let link = dir.join(SONAME);
        if std::fs::read_link(&link).is_err() {
            // Another test process may make it at the same moment: AlreadyExists is fine.
            match std::os::unix::fs::symlink("libringlog.so", &link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("link {} -> libringlog.so: {e}", link.display()),
            }
        }
    });
    for lib in ["libringlog.so", "libringlog.a"] {
        assert!(
            dir.join(lib).exists(),
            "{} missing after cargo build -p ringlog-ffi",
            dir.join(lib).display()
        );
    }
    dir
}

/// The system C compiler (`CC`, else `cc`).
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Compiles tests/c/`source` into `out_dir`, linked `linkage`; panics with the compiler's
/// output on failure. Warnings are errors: the header must compile cleanly.
pub fn compile(source: &str, linkage: Linkage, out_dir: &Path) -> PathBuf {
    let lib = lib_dir();
    let name = format!(
        "{}-{}",
        source.trim_end_matches(".c"),
        if linkage == Linkage::Shared {
            "shared"
        } else {
            "static"
        }
    );
    let exe = out_dir.join(name);
    let mut cmd = Command::new(cc());
    cmd.args([
        "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread",
    ])
    .arg("-I")
    .arg(crate_dir().join("include"))
    .arg(crate_dir().join("tests/c").join(source))
    .arg("-o")
    .arg(&exe);
    match linkage {
        Linkage::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lringlog");
        }
        Linkage::Static => {
            cmd.arg(lib.join("libringlog.a")).args(STATIC_DEPENDENCIES);
        }
    }
    let output = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run the C compiler {:?} ({e}): install gcc (.ci/run does)",
            cc()
        )
    });
    assert!(
        output.status.success(),
        "compiling {source} ({linkage:?}) failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// The dynamic section of an ELF file as `readelf -d` prints it.
pub fn dynamic_section(elf: &Path) -> String {
    let out = run_ok(Command::new("readelf").arg("-d").arg(elf));
    String::from_utf8(out.stdout).expect("readelf prints text")
}

/// Whether `exe` uses libringlog.so (as `ldd` sees it); checks the two linkages differ.
pub fn links_shared_libringlog(exe: &Path) -> bool {
    let out = Command::new("ldd").arg(exe).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout).contains("libringlog.so")
}

/// Runs `cmd`, returning its output; panics with stderr if it did not exit 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A scratch directory with the files statuses.c expects: `not-a-ring` and `other-version`.
pub fn status_fixtures(dir: &Path) {
    std::fs::write(dir.join("not-a-ring"), vec![0x42u8; 64 << 10]).unwrap();
    let other = dir.join("other-version");
    let writer = ringlog_writer::Writer::builder("other-version")
        .path(&other)
        .capacity(64 << 10)
        .open()
        .expect("create a ring");
    drop(writer);
    // Rewrite the layout version word as a future build would have.
    let mut bytes = std::fs::read(&other).unwrap();
    let at = ringlog_core::layout::off::VERSION;
    bytes[at..at + 4].copy_from_slice(&(ringlog_core::layout::LAYOUT_VERSION + 1).to_le_bytes());
    std::fs::write(&other, bytes).unwrap();
}
