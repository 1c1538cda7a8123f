//! The boundary every C entry point passes through. [`guard`] runs the body, catches any panic
//! (nothing unwinds into C: a panic becomes `RINGLOG_PANIC`) and turns the result into the
//! returned status. [`fail`] records the full message of a failure for `ringlog_last_error`,
//! per thread, in a buffer it reuses: a failure allocates only when its message is longer than
//! any before it on that thread, so a full ring under the drop policy costs no allocation.
//!
//! The pointer checks shared by the entry points are here too ([`arg`], [`arg_mut`],
//! [`bytes`]): a NULL where a value is required is `RINGLOG_NULL_ARGUMENT`, never a crash.

use crate::status::Status;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::fmt::Display;
use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    /// The message of this thread's last failed call, NUL-terminated (empty before any).
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Records `message` as this thread's last error and returns `status`, for `map_err`.
#[cold]
pub(crate) fn fail(status: Status, message: impl Display) -> Status {
    // try_with: a call from a thread-local destructor after ours was destroyed loses only the
    // message, not the status.
    let _ = LAST_ERROR.try_with(|buffer| {
        if let Ok(mut buffer) = buffer.try_borrow_mut() {
            buffer.clear();
            let _ = write!(buffer, "{message}");
            // A NUL inside (a ring name given with one, say) would cut the C string short.
            for b in buffer.iter_mut().filter(|b| **b == 0) {
                *b = b' ';
            }
            buffer.push(0);
        }
    });
    status
}

/// An error's message followed by each cause in its `source()` chain that the message does not
/// already include: the full story for `ringlog_last_error`, whichever way an error type
/// splits it.
pub(crate) struct WithCauses<'a>(pub &'a dyn std::error::Error);

impl Display for WithCauses<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let Some(mut cause) = self.0.source() else {
            return Ok(()); // The common case (a full ring, a record too large): no allocation.
        };
        let mut said = self.0.to_string();
        loop {
            let text = cause.to_string();
            if !said.contains(&text) {
                write!(f, ": {text}")?;
                said.push_str(&text);
            }
            match cause.source() {
                Some(next) => cause = next,
                None => return Ok(()),
            }
        }
    }
}

/// Runs the body of entry point `function`: its status as a C int, `RINGLOG_PANIC` (with the
/// panic's message as the last error) if it panicked.
#[inline(always)]
pub(crate) fn guard(function: &str, body: impl FnOnce() -> Result<(), Status>) -> c_int {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::RINGLOG_OK.code(),
        Ok(Err(status)) => status.code(),
        Err(payload) => panicked(function, payload),
    }
}

/// `RINGLOG_PANIC`, with the panic's message as the last error.
#[cold]
#[inline(never)]
fn panicked(function: &str, payload: Box<dyn std::any::Any + Send>) -> c_int {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let status = fail(
        Status::RINGLOG_PANIC,
        format_args!("{function}: internal error (a bug in libringlog, please report it): {what}"),
    );
    // Dropping the payload could itself panic: keep it from unwinding into C.
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
    status.code()
}

/// The pointee of a required pointer argument.
///
/// # Safety
/// `pointer` is NULL or valid for reads of a `T` for `'a`.
#[inline(always)]
pub(crate) unsafe fn arg<'a, T>(
    pointer: *const T,
    function: &str,
    name: &str,
) -> Result<&'a T, Status> {
    // SAFETY: non-NULL, and valid per this function's contract.
    unsafe { pointer.as_ref() }.ok_or_else(|| null(function, name))
}

/// The pointee of a required output pointer.
///
/// # Safety
/// `pointer` is NULL or valid for writes of a `T` for `'a`, and nothing else accesses it then.
pub(crate) unsafe fn arg_mut<'a, T>(
    pointer: *mut T,
    function: &str,
    name: &str,
) -> Result<&'a mut T, Status> {
    // SAFETY: non-NULL, and valid and unaliased per this function's contract.
    unsafe { pointer.as_mut() }.ok_or_else(|| null(function, name))
}

/// The `len` bytes at `pointer` (which may be NULL when `len` is 0).
///
/// # Safety
/// When `len > 0`, `pointer` is NULL or valid for reads of `len` bytes that nothing writes
/// for `'a`.
#[inline(always)]
pub(crate) unsafe fn bytes<'a>(
    pointer: *const c_void,
    len: usize,
    function: &str,
    name: &str,
) -> Result<&'a [u8], Status> {
    if len == 0 {
        return Ok(&[]);
    }
    if pointer.is_null() {
        return Err(null(function, name));
    }
    if len > isize::MAX as usize {
        return Err(fail(
            Status::RINGLOG_BAD_ARGUMENT,
            format_args!("{function}: length {len} of `{name}` is not a valid object size"),
        ));
    }
    // SAFETY: non-NULL, at most isize::MAX bytes, readable and unchanging per the contract.
    Ok(unsafe { std::slice::from_raw_parts(pointer.cast::<u8>(), len) })
}

#[cold]
fn null(function: &str, name: &str) -> Status {
    fail(
        Status::RINGLOG_NULL_ARGUMENT,
        format_args!("{function}: argument `{name}` is NULL"),
    )
}

/// The full message of the last failed call on the calling thread, as a NUL-terminated
/// string ("" if none failed yet). It stays valid until the next failing libringlog call on
/// the same thread; copy it to keep it. Calls that succeed leave it as it was.
#[no_mangle]
pub extern "C" fn ringlog_last_error() -> *const c_char {
    const NONE: &[u8] = b"\0";
    panic::catch_unwind(|| {
        LAST_ERROR
            .try_with(|buffer| match buffer.try_borrow() {
                // The heap buffer is only changed by `fail` on this same thread.
                Ok(buffer) if !buffer.is_empty() => buffer.as_ptr(),
                _ => NONE.as_ptr(),
            })
            .unwrap_or(NONE.as_ptr())
    })
    .unwrap_or(NONE.as_ptr())
    .cast()
}

/// The name of a status, e.g. "RINGLOG_TOO_LARGE" for `RINGLOG_TOO_LARGE` (a static string;
/// "RINGLOG_UNKNOWN_STATUS" for a number that is not a status).
#[no_mangle]
pub extern "C" fn ringlog_status_str(status: c_int) -> *const c_char {
    let name: &'static std::ffi::CStr = match Status::from_code(status) {
        Some(status) => status.c_name(),
        None => c"RINGLOG_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_error() -> String {
        // SAFETY: ringlog_last_error returns a NUL-terminated string valid until the next
        // failing call on this thread.
        unsafe { CStr::from_ptr(ringlog_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let code = guard("ringlog_test", || panic!("boom {}", 42));
        assert_eq!(code, Status::RINGLOG_PANIC.code());
        let message = last_error();
        assert!(
            message.contains("ringlog_test") && message.contains("boom 42"),
            "{message}"
        );
    }

    #[test]
    fn the_last_error_is_per_thread_and_kept_across_successes() {
        assert_eq!(last_error(), "");
        guard("f", || {
            Err(fail(Status::RINGLOG_BAD_NAME, "name\0with a nul"))
        });
        assert_eq!(last_error(), "name with a nul");
        assert_eq!(guard("f", || Ok(())), 0);
        assert_eq!(last_error(), "name with a nul");
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
    }

    #[test]
    fn causes_are_told_once() {
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let open = ringlog_core::OpenError::Io {
            ring: "r".into(),
            context: "cannot open",
            path: "/dev/shm/ringlog-r".into(),
            source: io,
        };
        let told = WithCauses(&open).to_string();
        assert_eq!(told.matches("Permission denied").count(), 1, "{told}");
        let write = ::ringlog_writer::WriteError::Attach(open);
        let told = WithCauses(&write).to_string();
        assert!(
            told.contains("attach") && told.contains("ring 'r'"),
            "{told}"
        );
        assert_eq!(told.matches("Permission denied").count(), 1, "{told}");
    }

    #[test]
    fn null_arguments_are_reported_by_name() {
        // SAFETY: NULL is allowed.
        let r = unsafe { arg::<u8>(std::ptr::null(), "ringlog_f", "w") };
        assert_eq!(r, Err(Status::RINGLOG_NULL_ARGUMENT));
        assert_eq!(last_error(), "ringlog_f: argument `w` is NULL");
        // SAFETY: NULL with a zero length is an empty slice.
        let empty = unsafe { bytes(std::ptr::null(), 0, "f", "msg") };
        assert_eq!(empty, Ok(&[][..]));
    }

    #[test]
    fn status_names_are_static_c_strings() {
        for status in Status::ALL {
            // SAFETY: a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(ringlog_status_str(status.code())) };
            assert_eq!(name.to_str().unwrap(), status.name());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(ringlog_status_str(99)) };
        assert_eq!(unknown.to_str().unwrap(), "RINGLOG_UNKNOWN_STATUS");
    }
}
