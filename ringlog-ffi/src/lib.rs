//! ringlog-ffi: libringlog, the C ABI of [`ringlog_writer::Writer`], and the stable status codes
//! every language binding (C, Python, Node) reports.
//!
//! The C library wraps the Rust writer; it never re-implements the ring protocol. The header
//! `include/ringlog.h` is generated from this crate by cbindgen.
//!
//! For the Python and Node bindings: [`Status`] and its mapping from [`ringlog_core::OpenError`]
//! and [`ringlog_writer::WriteError`] live here, so every binding reports the same code for the
//! same failure. The package is `ringlog-ffi` and its library name is `ringlog` (so the C
//! linker finds `-lringlog`): from Rust, `ringlog::Status`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations
)]

pub mod status;

pub use status::Status;
