//! Turning ringlog's errors into Python exceptions. The status of each error comes from the
//! one mapping every binding shares ([`ringlog::Status`], crate ringlog-ffi); the exception
//! classes live in Python (`ringlog._errors`, so they can also derive from builtins such as
//! ValueError); this module only joins the two and keeps the library's full message.

use pyo3::prelude::*;
use ringlog::Status;
use std::fmt::Display;

/// The Python exception for `status`, carrying `message` (and `.status`, `.code`).
pub fn exception(py: Python<'_>, status: Status, message: impl Display) -> PyErr {
    let built = py.import("ringlog._errors").and_then(|errors| {
        errors
            .getattr("_from_status")?
            .call1((status.code(), status.name(), message.to_string()))
    });
    match built {
        Ok(instance) => PyErr::from_value(instance),
        // Only if the package is broken (ringlog._errors missing): still never a crash.
        Err(e) => e,
    }
}

/// A Rust error with a status mapping (`OpenError`, `WriteError`) as its Python exception; its
/// message is the error with its causes.
pub fn from_error<E>(py: Python<'_>, error: &E) -> PyErr
where
    E: std::error::Error,
    for<'e> Status: From<&'e E>,
{
    exception(py, Status::from(error), ringlog_writer::ErrorChain(error))
}

/// An argument the library would reject: `ringlog.BadArgumentError` (a ValueError).
pub fn bad_argument(py: Python<'_>, message: impl Display) -> PyErr {
    exception(py, Status::RINGLOG_BAD_ARGUMENT, message)
}
