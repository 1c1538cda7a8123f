//! `ringlog_writer`: the C handle on an opened ring, and the entry points that open, write
//! through, query and close it. A handle owns one [`ringlog_writer::Writer`] and adds nothing
//! to its steady path but pointer checks: `ringlog_write` is a `Writer::write`, so it makes no
//! syscall, takes no lock and allocates nothing per record, is thread-safe, and keeps working
//! in a child after `fork()` (the child writes with its own pid).

use crate::claim;
use crate::error::{arg, arg_mut, bytes, fail, guard, WithCauses};
use crate::options::{self, ringlog_options};
use crate::status::Status;
use ::ringlog_writer::{Level, WriteError, Writer};
use std::ffi::{c_char, c_int, c_void, CStr};

/// An opened ring. Opaque: create it with `ringlog_open` or `ringlog_open_with`, free it with
/// `ringlog_close`. One handle may be used by any number of threads at once.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct ringlog_writer {
    pub(crate) writer: Writer,
}

/// Record levels for `ringlog_write_record` and `ringlog_claim` (the drain's text and JSON
/// formats print them).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringlog_level {
    /// No level (what `ringlog_write` writes).
    RINGLOG_LEVEL_NONE = 0,
    /// Something failed.
    RINGLOG_LEVEL_ERROR = 1,
    /// Something is wrong but work goes on.
    RINGLOG_LEVEL_WARN = 2,
    /// Normal operation.
    RINGLOG_LEVEL_INFO = 3,
    /// Detail for developers.
    RINGLOG_LEVEL_DEBUG = 4,
    /// Very fine-grained detail.
    RINGLOG_LEVEL_TRACE = 5,
}

/// Counters of the records this process wrote through one handle: see `ringlog_stats`. In C it
/// is `struct ringlog_stats` (no typedef: the function has the name, as with `stat`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ringlog_stats {
    /// `sizeof(ringlog_stats)` as the caller was compiled: set it before the call.
    pub size: usize,
    /// Records committed to the ring.
    pub written: u64,
    /// Records the full policy dropped (the drain reports them in the log too).
    pub dropped: u64,
    /// Time spent waiting for space in a full ring, in nanoseconds.
    pub blocked_ns: u64,
}

/// The level numbered `level`.
pub(crate) fn level(level: c_int, function: &str) -> Result<Level, Status> {
    Ok(match level {
        0 => Level::None,
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        5 => Level::Trace,
        _ => {
            return Err(fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!(
                    "{function}: level {level} is not a ringlog_level (0 none to 5 trace)"
                ),
            ))
        }
    })
}

/// Records a write failure as the last error.
#[cold]
pub(crate) fn write_failed(function: &str, error: &WriteError) -> Status {
    fail(
        Status::from(error),
        format_args!("{function}: {}", WithCauses(error)),
    )
}

/// Writes one record: the one place the exported functions call the writer, so the compiler
/// inlines its hot path (claim, copy, commit) here once, as it does into a Rust caller.
#[inline(never)]
fn write_record(
    w: &ringlog_writer,
    level: Level,
    target: &str,
    msg: &[u8],
    function: &str,
) -> Result<(), Status> {
    claim::refuse_if_open(w, function)?;
    w.writer
        .write_record(level, target, msg)
        .map_err(|e| write_failed(function, &e))
}

/// Opens (or creates) ring `ring` with `options`, storing the handle in `*out`.
///
/// # Safety
/// As `ringlog_open_with`.
unsafe fn open(
    function: &str,
    ring: *const c_char,
    options: Option<*const ringlog_options>,
    out: *mut *mut ringlog_writer,
) -> Result<(), Status> {
    if ring.is_null() {
        // SAFETY: NULL is checked there.
        unsafe { arg(ring, function, "ring") }?;
    }
    // SAFETY: NULL or writable, per the contract.
    let out = unsafe { arg_mut(out, function, "out") }?;
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let name = unsafe { CStr::from_ptr(ring) }.to_str().map_err(|_| {
        fail(
            Status::RINGLOG_BAD_NAME,
            format_args!("{function}: the ring name is not UTF-8 (use A-Z a-z 0-9 . _ -)"),
        )
    })?;
    let mut builder = Writer::builder(name);
    if let Some(options) = options {
        // SAFETY: per the contract of ringlog_open_with.
        let options = unsafe { options::read(options, function) }?;
        // SAFETY: `path` is NULL or a readable C string, per the contract.
        builder = unsafe { options::apply(&options, builder) }?;
    }
    let writer = builder.open().map_err(|e| {
        fail(
            Status::from(&e),
            format_args!("{function}: {}", WithCauses(&e)),
        )
    })?;
    claim::watch_forks();
    *out = Box::into_raw(Box::new(ringlog_writer { writer }));
    Ok(())
}

/// Opens ring `ring` (`/dev/shm/ringlog-<ring>`), creating it with the default geometry if no
/// drain or producer has yet, and stores the new handle in `*out` (only on success).
/// Returns `RINGLOG_OK` or a status; `ringlog_last_error()` has the full message.
///
/// # Safety
/// `ring` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringlog_open(ring: *const c_char, out: *mut *mut ringlog_writer) -> c_int {
    // SAFETY: the contract is this function's.
    guard("ringlog_open", || unsafe {
        open("ringlog_open", ring, None, out)
    })
}

/// As `ringlog_open`, with options (see `ringlog_options`; start from `ringlog_options_init`).
/// An options struct whose `size` this library does not accept is `RINGLOG_BAD_ARGUMENT`.
///
/// # Safety
/// `ring` is NULL or a NUL-terminated string; `opts` is NULL or a `ringlog_options` whose
/// `size` bytes are readable (its `path` NULL or a NUL-terminated string); `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ringlog_open_with(
    ring: *const c_char,
    opts: *const ringlog_options,
    out: *mut *mut ringlog_writer,
) -> c_int {
    // SAFETY: the contract is this function's.
    guard("ringlog_open_with", || unsafe {
        open("ringlog_open_with", ring, Some(opts), out)
    })
}

/// Writes one record of `len` bytes from `msg` (copied; any bytes): whole, or not at all.
/// Returns `RINGLOG_OK`, `RINGLOG_TOO_LARGE` (above the ring's max record), `RINGLOG_DROPPED`
/// (ring full, dropped and counted per the policy), `RINGLOG_WOULD_DEADLOCK` (this thread has
/// an open claim on this ring), or `RINGLOG_NULL_ARGUMENT`. `msg` may be NULL when `len` is 0.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `msg` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ringlog_write(
    w: *const ringlog_writer,
    msg: *const c_void,
    len: usize,
) -> c_int {
    const F: &str = "ringlog_write";
    guard(F, || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, F, "w") }?;
        // SAFETY: NULL or readable, per the contract.
        let msg = unsafe { bytes(msg, len, F, "msg") }?;
        write_record(w, Level::None, "", msg, F)
    })
}

/// Writes one record with a level (`ringlog_level`) and a target (a module or component name,
/// UTF-8, at most 65535 bytes kept; NULL when `target_len` is 0). Returns as `ringlog_write`,
/// and `RINGLOG_BAD_ARGUMENT` for an unknown level or a target that is not UTF-8.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `target` and `msg` are NULL or readable for their
/// lengths.
#[no_mangle]
pub unsafe extern "C" fn ringlog_write_record(
    w: *const ringlog_writer,
    level: c_int,
    target: *const c_char,
    target_len: usize,
    msg: *const c_void,
    len: usize,
) -> c_int {
    const F: &str = "ringlog_write_record";
    guard(F, || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, F, "w") }?;
        // SAFETY: NULL or readable, per the contract.
        let target = unsafe { bytes(target.cast(), target_len, F, "target") }?;
        // SAFETY: NULL or readable, per the contract.
        let msg = unsafe { bytes(msg, len, F, "msg") }?;
        let level = self::level(level, F)?;
        let target = std::str::from_utf8(target).map_err(|e| {
            fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!("{F}: the target is not UTF-8 ({e})"),
            )
        })?;
        write_record(w, level, target, msg, F)
    })
}

/// Stores in `*out` the records written and dropped, and the time spent blocked on a full
/// ring, by this process through this handle (in a child after `fork()`, from zero). Set
/// `out->size = sizeof(ringlog_stats)` first; a smaller size is `RINGLOG_BAD_ARGUMENT`.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `out` is NULL or a writable `ringlog_stats`.
#[no_mangle]
pub unsafe extern "C" fn ringlog_stats(w: *const ringlog_writer, out: *mut ringlog_stats) -> c_int {
    const F: &str = "ringlog_stats";
    guard(F, || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, F, "w") }?;
        // SAFETY: NULL or writable, per the contract.
        let out = unsafe { arg_mut(out, F, "out") }?;
        let ours = std::mem::size_of::<ringlog_stats>();
        if out.size < ours {
            return Err(fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!(
                    "{F}: out->size is {}, not at least sizeof(ringlog_stats) ({ours}): set it \
                     before the call",
                    out.size
                ),
            ));
        }
        let stats = w.writer.stats();
        out.written = stats.written;
        out.dropped = stats.dropped;
        out.blocked_ns = u64::try_from(stats.blocked.as_nanos()).unwrap_or(u64::MAX);
        Ok(())
    })
}

/// Stores in `*alive` whether a drain holds the ring now.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `alive` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringlog_drain_alive(w: *const ringlog_writer, alive: *mut bool) -> c_int {
    guard("ringlog_drain_alive", || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, "ringlog_drain_alive", "w") }?;
        // SAFETY: NULL or writable, per the contract.
        let alive = unsafe { arg_mut(alive, "ringlog_drain_alive", "alive") }?;
        *alive = w.writer.drain_alive();
        Ok(())
    })
}

/// Closes a handle and frees it (NULL is ignored). Records already written stay in the ring
/// for the drain. An open claim of the calling thread on it is aborted first. The producer
/// slots of every thread that wrote through the handle go back to the ring: the drain no longer
/// counts them as attached. No other thread may use the handle during or after this call, nor
/// hold a claim on it.
///
/// # Safety
/// `w` is NULL or a handle from `ringlog_open`/`ringlog_open_with` not yet closed, that no
/// other thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn ringlog_close(w: *mut ringlog_writer) {
    guard("ringlog_close", || {
        if w.is_null() {
            return Ok(());
        }
        claim::abort_before_close(w);
        // SAFETY: a live handle from Box::into_raw (per the contract), no longer used.
        drop(unsafe { Box::from_raw(w) });
        Ok(())
    });
}
