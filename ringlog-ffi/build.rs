//! Gives libringlog.so its SONAME, and tells the tests whether valgrind is installed.
//!
//! The SONAME follows the ABI's compatibility: `libringlog.so.MAJOR`, or `libringlog.so.0.MINOR`
//! while the version is 0.x (where a minor release may break the ABI), as cargo-c names them.
//! Programs record it when they link, so an incompatible libringlog installed later is not
//! loaded in its place. Without valgrind the valgrind tests are ignored, with the reason,
//! instead of passing silently; the build prints a warning too.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").expect("set by cargo");
    let soname = if major == "0" {
        format!("libringlog.so.0.{minor}")
    } else {
        format!("libringlog.so.{major}")
    };
    println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo::rustc-env=RINGLOG_SONAME={soname}");

    println!("cargo::rustc-check-cfg=cfg(ringlog_no_valgrind)");
    println!("cargo::rerun-if-env-changed=PATH");
    // Look again when valgrind is installed or removed.
    println!("cargo::rerun-if-changed=/usr/bin/valgrind");
    let found = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("cargo::rustc-cfg=ringlog_no_valgrind");
        println!(
            "cargo::warning=valgrind not found: ringlog-ffi's valgrind tests are ignored \
             (apt-get install valgrind; .ci/run does)"
        );
    }
}
