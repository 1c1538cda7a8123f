//! `ringlog_options`: how `ringlog_open_with` opens a ring, as a C struct that starts with its
//! own size so it can grow. A caller compiled against an older header passes a smaller `size`
//! (accepted once newer fields exist: they take their defaults); a newer header, a larger one
//! (accepted when the fields this library does not know are all zero). This module reads the
//! struct and turns it into a [`WriterBuilder`]; it never keeps the caller's pointers.

use crate::error::fail;
use crate::status::Status;
use ringlog_writer::{FullPolicy, WriterBuilder};
use std::ffi::{c_char, c_int, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// What a writer does when the ring is full (the `policy` field of `ringlog_options`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringlog_policy {
    /// Wait for the drain to free space. If no drain runs for about a second, drop (and count)
    /// instead of hanging the program. The default.
    RINGLOG_POLICY_BLOCK = 0,
    /// Drop the record at once (`RINGLOG_DROPPED`) and count it; the drain writes the count
    /// into the log.
    RINGLOG_POLICY_DROP = 1,
    /// Wait at most `block_for_ms` milliseconds, then drop and count.
    RINGLOG_POLICY_BLOCK_FOR = 2,
}

/// Options of `ringlog_open_with`. Fill it with `ringlog_options_init`, then change fields.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct ringlog_options {
    /// `sizeof(ringlog_options)` as the caller was compiled (set by `ringlog_options_init`).
    pub size: usize,
    /// Ring data size in bytes when this call creates it: a power of two from 4 KiB to 1 GiB;
    /// 0 for the default (4 MiB). When the ring exists and this is not 0, it must match.
    pub capacity: u64,
    /// Largest record (message plus target) in bytes when this call creates the ring; 0 for the
    /// default (a quarter of the capacity).
    pub max_record: u64,
    /// Non-zero (the default) to create the ring when it does not exist; 0 to fail with
    /// `RINGLOG_NOT_FOUND` instead.
    pub create: c_int,
    /// A `ringlog_policy` value (default `RINGLOG_POLICY_BLOCK`).
    pub policy: u32,
    /// With `RINGLOG_POLICY_BLOCK_FOR`: how long a write waits for space, in milliseconds.
    pub block_for_ms: u32,
    /// File mode when creating the ring (default 0600; e.g. 0660 with `group`).
    pub mode: u32,
    /// Group id to give the ring when creating it, or -1 (the default) to leave it.
    pub group: i64,
    /// An explicit file for the ring, or NULL (the default) for `/dev/shm/ringlog-<ring>`.
    /// Read during the call only.
    pub path: *const c_char,
}

impl ringlog_options {
    /// The defaults, with `size` set to this library's size of the struct.
    pub fn defaults() -> ringlog_options {
        ringlog_options {
            size: std::mem::size_of::<ringlog_options>(),
            capacity: 0,
            max_record: 0,
            create: 1,
            policy: ringlog_policy::RINGLOG_POLICY_BLOCK as u32,
            block_for_ms: 0,
            mode: 0o600,
            group: -1,
            path: std::ptr::null(),
        }
    }
}

/// The smallest `size` a caller may pass: the struct of the first release (this one).
const FIRST_RELEASE_SIZE: usize = std::mem::size_of::<ringlog_options>();

/// Copies the caller's options, checking the pointer and `size` first.
///
/// # Safety
/// `options` is NULL, or points to a readable `size_t` giving the size of the readable
/// struct there.
pub(crate) unsafe fn read(
    options: *const ringlog_options,
    function: &str,
) -> Result<ringlog_options, Status> {
    if options.is_null() {
        // SAFETY: NULL is checked there.
        return unsafe { crate::error::arg(options, function, "options") }.copied();
    }
    let ours = std::mem::size_of::<ringlog_options>();
    // SAFETY: non-NULL; the struct starts with its size (a `size_t`) per the contract. Read
    // alone: the struct may be shorter than ours.
    let size = unsafe { std::ptr::addr_of!((*options).size).read_unaligned() };
    if size < FIRST_RELEASE_SIZE {
        return Err(fail(
            Status::RINGLOG_BAD_ARGUMENT,
            format_args!(
                "{function}: ringlog_options.size is {size}, smaller than any ringlog_options \
                 ({FIRST_RELEASE_SIZE} bytes or more): initialise it with ringlog_options_init"
            ),
        ));
    }
    if size > ours {
        // SAFETY: the caller's struct is `size` bytes long (its own `size` field says so).
        let newer = unsafe { std::slice::from_raw_parts(options.cast::<u8>(), size) };
        if newer[ours..].iter().any(|&b| b != 0) {
            return Err(fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!(
                    "{function}: ringlog_options of {size} bytes sets fields this library \
                     ({ours} bytes) does not know: link the libringlog that matches your \
                     ringlog.h"
                ),
            ));
        }
    }
    // SAFETY: at least `ours` readable bytes (checked above); every bit pattern is a valid
    // ringlog_options (integers and a raw pointer).
    Ok(unsafe { options.read_unaligned() })
}

/// Applies `options` to `builder`, refusing values out of range.
///
/// # Safety
/// `options.path` is NULL or a NUL-terminated string readable during the call.
pub(crate) unsafe fn apply(
    options: &ringlog_options,
    mut builder: WriterBuilder,
) -> Result<WriterBuilder, Status> {
    let bad = |what: std::fmt::Arguments<'_>| fail(Status::RINGLOG_BAD_ARGUMENT, what);
    if options.capacity != 0 {
        builder = builder.capacity(options.capacity);
    }
    if options.max_record != 0 {
        builder = builder.max_record(options.max_record);
    }
    builder = builder.create(options.create != 0);
    let policy = match options.policy {
        p if p == ringlog_policy::RINGLOG_POLICY_BLOCK as u32 => FullPolicy::Block,
        p if p == ringlog_policy::RINGLOG_POLICY_DROP as u32 => FullPolicy::Drop,
        p if p == ringlog_policy::RINGLOG_POLICY_BLOCK_FOR as u32 => {
            FullPolicy::BlockFor(Duration::from_millis(options.block_for_ms.into()))
        }
        p => {
            return Err(bad(format_args!(
                "ringlog_options.policy {p} is not a ringlog_policy (0 block, 1 drop, 2 block for)"
            )))
        }
    };
    builder = builder.full_policy(policy);
    if options.mode == 0 || options.mode > 0o7777 {
        return Err(bad(format_args!(
            "ringlog_options.mode {:#o} is not a file mode (e.g. 0600 or 0660)",
            options.mode
        )));
    }
    builder = builder.mode(options.mode);
    match options.group {
        -1 => {}
        gid @ 0..=0xffff_fffe => builder = builder.group(gid as u32),
        gid => {
            return Err(bad(format_args!(
                "ringlog_options.group {gid} is not a group id (or -1 for none)"
            )))
        }
    }
    if !options.path.is_null() {
        // SAFETY: non-NULL and NUL-terminated per this function's contract.
        let path = unsafe { CStr::from_ptr(options.path) }.to_bytes();
        if path.is_empty() {
            return Err(bad(format_args!(
                "ringlog_options.path is empty: use NULL for the default"
            )));
        }
        builder = builder.path(Path::new(std::ffi::OsStr::from_bytes(path)));
    }
    Ok(builder)
}

/// Fills `*options` with the defaults (create the ring if missing, default capacity, block on
/// a full ring, mode 0600, /dev/shm) and its own size. Call it before setting any field.
///
/// # Safety
/// `options` is NULL or points to writable memory of `sizeof(ringlog_options)` bytes.
#[no_mangle]
pub unsafe extern "C" fn ringlog_options_init(options: *mut ringlog_options) -> c_int {
    crate::error::guard("ringlog_options_init", || {
        // SAFETY: NULL or writable, per this function's contract.
        let out = unsafe { crate::error::arg_mut(options, "ringlog_options_init", "options") }?;
        *out = ringlog_options::defaults();
        Ok(())
    })
}
