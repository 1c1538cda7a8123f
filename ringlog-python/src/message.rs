//! Reading a Python message or target as bytes without copying it: `bytes` through its own
//! buffer, `str` through the UTF-8 copy CPython caches inside the string. Other bytes-like
//! objects (bytearray, memoryview) are copied once into a `bytes`, since their contents may
//! change while the GIL is released. The borrowed slices are only handed to closures, so they
//! never outlive the object that owns them.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};
use std::os::raw::c_char;

extern "C" {
    // In CPython's stable ABI since 3.10 and exported, with this signature, by every CPython 3
    // since 3.3; pyo3 hides it from abi3-py39 builds only because 3.9's limited API did not
    // list it. The alternative there, PyUnicode_AsUTF8String, allocates and copies per call.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// Calls `f` with the bytes of `data`: bytes or str without a copy, bytearray or memoryview
/// through one copy. `what` names the argument in the TypeError for anything else.
pub fn with_bytes<R>(
    data: &Bound<'_, PyAny>,
    what: &str,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    if let Some(bytes) = exact_bytes(data) {
        return f(bytes);
    }
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return f(bytes.as_bytes());
    }
    if let Ok(text) = data.cast::<PyString>() {
        return with_utf8(text, f);
    }
    if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
        let copy = data.py().get_type::<PyBytes>().call1((data,))?;
        return f(copy.cast::<PyBytes>()?.as_bytes());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{what} must be bytes or str (or bytearray, memoryview), not {}",
        data.get_type().name()?
    )))
}

/// The contents of `data` if it is exactly a `bytes` (the common case), in one C call where
/// the general path (`cast` + `as_bytes`) makes three.
#[inline]
fn exact_bytes<'a>(data: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    let object = data.as_ptr();
    // SAFETY: `object` is a live object (`data` holds it, the GIL is held).
    if unsafe { ffi::PyBytes_CheckExact(object) } == 0 {
        return None;
    }
    let mut buffer: *mut c_char = std::ptr::null_mut();
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `object` is a bytes object, for which the call cannot fail (with a length
    // pointer it does not look for NUL bytes); it writes only the two outputs.
    if unsafe { ffi::PyBytes_AsStringAndSize(object, &mut buffer, &mut len) } != 0 {
        // Not reached; should it be, leave no exception set for the general path.
        drop(PyErr::take(data.py()));
        return None;
    }
    // SAFETY: a bytes object owns `len` bytes at `buffer`, immutable and freed only with the
    // object, which `data` keeps alive for the returned lifetime.
    Some(unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len as usize) })
}

/// Calls `f` with `text` as a Rust `&str` (for targets), borrowed as in [`with_utf8`].
pub fn with_str<R>(text: &Bound<'_, PyString>, f: impl FnOnce(&str) -> PyResult<R>) -> PyResult<R> {
    with_utf8(text, |bytes| {
        // SAFETY: both paths of `with_utf8` give UTF-8 that CPython encoded itself (surrogates,
        // the only code points UTF-8 cannot carry, made it fail or were escaped).
        f(unsafe { std::str::from_utf8_unchecked(bytes) })
    })
}

/// Calls `f` with the UTF-8 of `text`. A str that has no UTF-8 form (lone surrogates, e.g. an
/// undecodable file name from `os.fsdecode`) is written with them backslash-escaped rather
/// than lost.
pub fn with_utf8<R>(
    text: &Bound<'_, PyString>,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a live str (the GIL is held); the call writes only `size`.
    let data = unsafe { PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size) };
    if data.is_null() {
        // Clear the UnicodeEncodeError, then take the escaped copy.
        drop(PyErr::fetch(text.py()));
        let escaped = text.call_method1("encode", ("utf-8", "backslashreplace"))?;
        return f(escaped.cast::<PyBytes>()?.as_bytes());
    }
    // SAFETY: CPython returned `size` bytes of UTF-8 that the str owns (cached in the object,
    // never changed, freed only with it); `text` keeps the str alive for this whole call.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
    f(bytes)
}
