//! The extension module `ringlog._ringlog`: the native half of the Python package `ringlog`.
//! It owns [`writer::PyWriter`] (`ringlog.Writer`), a thin wrapper over
//! [`ringlog_writer::Writer`] that never re-implements the ring protocol, and the hot path of
//! `ringlog.Handler` ([`handle`]). The Python half
//! (`python/ringlog/`) owns the exception classes, the `logging.Handler` and the integrations.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

mod error;
mod fast_write;
mod handle;
mod level;
mod message;
mod opened;
mod options;
mod writer;

use pyo3::prelude::*;

#[pymodule]
fn _ringlog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<writer::PyWriter>()?;
    fast_write::install(&m.py().get_type::<writer::PyWriter>())?;
    m.add_function(wrap_pyfunction!(writer::_reopen, m)?)?;
    m.add_function(wrap_pyfunction!(handle::_install_handle, m)?)?;
    Ok(())
}
