//! Tells the tests whether valgrind is installed. Without it the valgrind tests are ignored,
//! with the reason, instead of passing silently; the build prints a warning too.

fn main() {
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
