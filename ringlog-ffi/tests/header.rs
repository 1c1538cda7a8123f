//! include/ringlog.h is what cbindgen generates from this crate now: the test fails when the
//! committed header is stale. `RINGLOG_BLESS=1 cargo test -p ringlog-ffi --test header`
//! rewrites it.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let committed_path = crate_dir.join("include/ringlog.h");
    if std::env::var_os("RINGLOG_BLESS").is_some() {
        std::fs::write(&committed_path, &generated).expect("write include/ringlog.h");
        return;
    }
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/ringlog.h is stale: regenerate it with \
         `RINGLOG_BLESS=1 cargo test -p ringlog-ffi --test header` and commit it"
    );
}
