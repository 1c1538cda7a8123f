//! Reads a JS argument as the bytes of a record without allocating: a string is converted to
//! UTF-8 into a buffer the caller reuses (it grows to the largest string seen, then stays); a
//! Buffer (or any Uint8Array / ArrayBufferView) is read in place.
//!
//! Never keeps a pointer into JS memory beyond the native call that received the value.

use napi::sys;
use std::ptr;

/// What a JS value holds, as bytes.
pub(crate) enum Bytes<'a> {
    /// The value is a string; its UTF-8 was appended to the buffer at this range.
    Converted(std::ops::Range<usize>),
    /// The value is a Buffer: its contents, in place.
    InPlace(&'a [u8]),
}

/// Why a value could not be read as bytes.
pub(crate) enum NotBytes {
    /// Neither a string nor a Buffer.
    WrongType,
    /// A string whose UTF-8 form is `len` bytes, more than the `limit` asked for (it was not
    /// converted).
    TooLong { len: usize },
}

/// Reads `value` (a string or a Buffer) as bytes. A string is appended to `scratch` as UTF-8
/// (lone surrogates become U+FFFD), unless its UTF-8 would exceed `limit` bytes.
///
/// # Safety
/// `env` and `value` must be the live handles of the current native call, and the returned
/// `InPlace` slice must not outlive that call (nothing in it runs JS, so the Buffer can neither
/// be detached nor collected meanwhile).
pub(crate) unsafe fn read<'a>(
    env: sys::napi_env,
    value: sys::napi_value,
    scratch: &mut Vec<u8>,
    limit: usize,
) -> Result<Bytes<'a>, NotBytes> {
    // A string's length in UTF-16 units (O(1)); a non-string answers `napi_string_expected`.
    let mut units = 0usize;
    // SAFETY: valid handles (caller); a null buffer asks for the length only.
    let status =
        unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut units) };
    if status == sys::Status::napi_ok {
        // SAFETY: as above; `value` is a string.
        return unsafe { convert_string(env, value, units, scratch, limit) };
    }
    let mut is_buffer = false;
    // SAFETY: valid handles (caller).
    let status = unsafe { sys::napi_is_buffer(env, value, &mut is_buffer) };
    if status != sys::Status::napi_ok || !is_buffer {
        return Err(NotBytes::WrongType);
    }
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: `value` is a Buffer (checked above).
    let status = unsafe { sys::napi_get_buffer_info(env, value, &mut data, &mut len) };
    if status != sys::Status::napi_ok {
        return Err(NotBytes::WrongType);
    }
    if len == 0 || data.is_null() {
        return Ok(Bytes::InPlace(&[]));
    }
    // SAFETY: node guarantees `len` readable bytes at `data` while the Buffer lives, and it
    // lives (and stays attached) for the rest of this native call (caller's contract). The
    // memory belongs to this JS thread; no other thread or process writes it during the call.
    Ok(Bytes::InPlace(unsafe {
        std::slice::from_raw_parts(data.cast::<u8>(), len)
    }))
}

/// Appends the UTF-8 of a string of `units` UTF-16 units to `scratch`.
///
/// # Safety
/// `env` and `value` are live handles of the current call and `value` is a string.
unsafe fn convert_string<'a>(
    env: sys::napi_env,
    value: sys::napi_value,
    units: usize,
    scratch: &mut Vec<u8>,
    limit: usize,
) -> Result<Bytes<'a>, NotBytes> {
    // Every UTF-16 unit becomes at least one UTF-8 byte: longer than `limit` units is too long
    // whatever it holds. Measure it exactly for the error message, without converting.
    if units > limit {
        let mut len = 0usize;
        // SAFETY: valid string handle; a null buffer asks for the UTF-8 length only.
        unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) };
        return Err(NotBytes::TooLong { len });
    }
    // At most 3 UTF-8 bytes per UTF-16 unit (a surrogate pair: 2 units, 4 bytes), plus the
    // terminating NUL node writes.
    let start = scratch.len();
    let room = units * 3 + 1;
    scratch.reserve(room);
    let mut written = 0usize;
    // SAFETY: `scratch` has `room` bytes of spare capacity at `start`; node writes at most
    // `room` bytes there (the NUL included) and reports how many before the NUL.
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            value,
            scratch.as_mut_ptr().add(start).cast(),
            room,
            &mut written,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(NotBytes::WrongType);
    }
    // SAFETY: node initialised `written` bytes (< room) from `start`.
    unsafe { scratch.set_len(start + written) };
    if written > limit {
        scratch.truncate(start);
        return Err(NotBytes::TooLong { len: written });
    }
    Ok(Bytes::Converted(start..start + written))
}
