//! `Writer.write` as a METH_O C method: CPython hands over the one argument as it is. pyo3
//! methods in an abi3-py39 module are called through an argument tuple (vectorcall entered
//! the stable ABI only in 3.10), which costs a tuple allocation and an argument parse per
//! call: a third of the Python side of the hot path. This module registers the one method
//! where that matters on the `Writer` type at import; everything else stays pyo3's.

use crate::writer::PyWriter;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBool;
use std::panic::{catch_unwind, AssertUnwindSafe};

const DOC: &std::ffi::CStr = c"write($self, data, /)\n--\n\nWrites `data` (bytes or str; \
bytearray and memoryview are copied) as one record with no level and no target. True if \
written, False if the ring was full and the policy dropped it (counted; the drain reports \
drops in the log).";

/// Replaces the `write` attribute of `ringlog.Writer` with the METH_O method.
pub fn install(writer_type: &Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
    // CPython keeps a pointer to the definition for as long as the method exists: leak one
    // per import of the module (once per process).
    let definition = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: c"write".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: write_o,
        },
        ml_flags: ffi::METH_O,
        ml_doc: DOC.as_ptr(),
    }));
    let py = writer_type.py();
    // SAFETY: `writer_type` is a live type object and `definition` lives forever; the call
    // returns a new reference or NULL with an exception set, which `from_owned_ptr_or_err`
    // takes over.
    let descriptor = unsafe {
        let raw = ffi::PyDescr_NewMethod(writer_type.as_type_ptr(), definition);
        Bound::from_owned_ptr_or_err(py, raw)?
    };
    writer_type.setattr("write", descriptor)
}

/// The C entry point. Errors become a raised exception (NULL); a panic becomes
/// `ringlog.RinglogError` (RINGLOG_PANIC), never an unwind into CPython.
unsafe extern "C" fn write_o(
    slf: *mut ffi::PyObject,
    data: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> PyResult<bool> {
        // SAFETY: CPython passes borrowed references, alive for the whole call: `slf` the
        // instance (the method descriptor checked that it is a `Writer`, still cast below)
        // and `data` the one argument (METH_O).
        let (slf, data) = unsafe {
            (
                pyo3::Borrowed::from_ptr(py, slf),
                pyo3::Borrowed::from_ptr(py, data),
            )
        };
        let writer = slf.cast::<PyWriter>()?;
        writer.get().write(py, &data)
    }));
    let result = outcome.unwrap_or_else(|panic| Err(crate::writer::panic_error(py, panic)));
    match result {
        Ok(written) => PyBool::new(py, written).to_owned().into_ptr(),
        Err(error) => {
            error.restore(py);
            std::ptr::null_mut()
        }
    }
}
