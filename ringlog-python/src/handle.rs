//! `ringlog.Handler.handle` in Rust. The stdlib's chain for one record, `handle` -> `filter`
//! -> `emit` -> `getMessage` -> `Writer.write_record`, is five Python frames; this module makes
//! it one METH_O call that reads the LogRecord's attributes by interned name and writes
//! through the Rust writer directly.
//!
//! It must never change what a record becomes. Everything a user can customise goes back
//! through Python exactly as `logging.Handler.handle` and `ringlog.Handler.emit` would run it:
//! filters (the handler's, or an overridden `filter`; a filter may return a replacement
//! record), an overridden `emit`, a Formatter (`self.format`), a LogRecord subclass or a
//! non-str message (`record.getMessage()`), exceptions and stacks (the stdlib formats them),
//! and errors (`handleError`, reported as `emit` reports them). Only the common record, an
//! exact LogRecord with a str message, no traceback and no formatter, never enters Python.

use crate::writer::PyWriter;
use pyo3::exceptions::{PyException, PyRecursionError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyList, PyString, PyType};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What the Python half hands over once, at import: the class, and the stdlib pieces the fast
/// path compares against or falls back to.
#[derive(Debug)]
struct Context {
    /// `ringlog.Handler`; an instance of exactly this class has the stock `filter` and `emit`.
    handler_type: Py<PyType>,
    /// `ringlog.Handler.emit`: a subclass whose `emit` is another function gets it called.
    emit: Py<PyAny>,
    /// `logging.Filterer.filter`: likewise for `filter`.
    filter: Py<PyAny>,
    /// `logging.LogRecord`: only an exact instance takes the message fast path (a subclass may
    /// override `getMessage`); a filter's replacement record must be an instance of it.
    record_type: Py<PyType>,
    /// `ringlog._handler._with_tracebacks(record, message)`: appends exception and stack.
    with_tracebacks: Py<PyAny>,
    /// `ringlog._handler._report_error(handler, record, error)`: `handleError` from inside an
    /// `except` block, as the stdlib's `emit` calls it.
    report_error: Py<PyAny>,
    /// Whether `Filterer.filter` returns the record when it passes (Python 3.12+) or True.
    filter_returns_record: bool,
}

static CONTEXT: PyOnceLock<Context> = PyOnceLock::new();

const DOC: &std::ffi::CStr = c"handle($self, record, /)\n--\n\nFilters `record` and, if it \
passes, writes it as one ring record (logging.Handler.handle without the per-handler lock). \
Returns what the filters returned.";

/// Makes `handle` of `handler_type` (ringlog.Handler) the METH_O method below. Called once by
/// `ringlog._handler` when it defines the class.
#[pyfunction]
#[pyo3(signature = (handler_type, *, emit, filter, record_type, with_tracebacks, report_error, filter_returns_record))]
pub fn _install_handle(
    handler_type: &Bound<'_, PyType>,
    emit: Py<PyAny>,
    filter: Py<PyAny>,
    record_type: Py<PyType>,
    with_tracebacks: Py<PyAny>,
    report_error: Py<PyAny>,
    filter_returns_record: bool,
) -> PyResult<()> {
    let py = handler_type.py();
    let context = Context {
        handler_type: handler_type.clone().unbind(),
        emit,
        filter,
        record_type,
        with_tracebacks,
        report_error,
        filter_returns_record,
    };
    if CONTEXT.set(py, context).is_err() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "ringlog.Handler.handle is already installed",
        ));
    }
    // CPython keeps a pointer to the definition for as long as the method exists: leak one,
    // once per process (CONTEXT refuses a second install).
    let definition = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: c"handle".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: handle_o,
        },
        ml_flags: ffi::METH_O,
        ml_doc: DOC.as_ptr(),
    }));
    // SAFETY: `handler_type` is a live type object and `definition` lives forever; the call
    // returns a new reference or NULL with an exception set, which `from_owned_ptr_or_err`
    // takes over.
    let descriptor = unsafe {
        let raw = ffi::PyDescr_NewMethod(handler_type.as_type_ptr(), definition);
        Bound::from_owned_ptr_or_err(py, raw)?
    };
    handler_type.setattr("handle", descriptor)
}

/// The C entry point. Errors become a raised exception (NULL); a panic becomes
/// `ringlog.RinglogError` (RINGLOG_PANIC), never an unwind into CPython.
unsafe extern "C" fn handle_o(
    slf: *mut ffi::PyObject,
    record: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: CPython passes borrowed references alive for the whole call: `slf` an
        // instance of ringlog.Handler or a subclass (the method descriptor checked it) and
        // `record` the one argument (METH_O).
        let (handler, record) = unsafe {
            (
                pyo3::Borrowed::from_ptr(py, slf),
                pyo3::Borrowed::from_ptr(py, record),
            )
        };
        handle(&handler, &record)
    }));
    let result = outcome.unwrap_or_else(|panic| Err(crate::writer::panic_error(py, panic)));
    match result {
        Ok(value) => value.into_ptr(),
        Err(error) => {
            error.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// `logging.Handler.handle(record)` without the lock, then `ringlog.Handler.emit`.
fn handle<'py>(
    handler: &Bound<'py, PyAny>,
    record: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = handler.py();
    let context = CONTEXT
        .get(py)
        .expect("ringlog._handler installs the context before handle exists");
    let handler_type = handler.get_type();
    let stock = handler_type.is(context.handler_type.bind(py));

    let mut record = record.clone();
    let filters = handler.getattr(intern!(py, "filters"))?;
    let has_filters = match filters.cast::<PyList>() {
        Ok(list) => !list.is_empty(),
        Err(_) => filters.is_truthy()?,
    };
    let passed = if has_filters
        || !stock && overridden(&handler_type, intern!(py, "filter"), &context.filter)?
    {
        let passed = handler.call_method1(intern!(py, "filter"), (&record,))?;
        if !passed.is_truthy()? {
            return Ok(passed);
        }
        if passed.is_instance(context.record_type.bind(py))? {
            record = passed.clone();
        }
        passed
    } else if context.filter_returns_record {
        record.clone()
    } else {
        PyBool::new(py, true).to_owned().into_any()
    };

    if !stock && overridden(&handler_type, intern!(py, "emit"), &context.emit)? {
        handler.call_method1(intern!(py, "emit"), (&record,))?;
        return Ok(passed);
    }
    if let Err(error) = emit(handler, &record, context) {
        // As `emit`'s `except Exception` (RecursionError re-raised): anything else propagates.
        if error.is_instance_of::<PyRecursionError>(py) || !error.is_instance_of::<PyException>(py)
        {
            return Err(error);
        }
        context
            .report_error
            .call1(py, (handler, &record, error.into_value(py)))?;
    }
    Ok(passed)
}

/// Whether `handler_type.name` is not the stock function `stock`.
fn overridden(
    handler_type: &Bound<'_, PyType>,
    name: &Bound<'_, PyString>,
    stock: &Py<PyAny>,
) -> PyResult<bool> {
    Ok(!handler_type
        .getattr(name)?
        .is(stock.bind(handler_type.py())))
}

/// `ringlog.Handler.emit(record)` up to its `except`: the message, then one record.
fn emit(handler: &Bound<'_, PyAny>, record: &Bound<'_, PyAny>, context: &Context) -> PyResult<()> {
    let py = record.py();
    let exact_record = record.get_type().is(context.record_type.bind(py));
    let formatter = handler.getattr(intern!(py, "formatter"))?;
    let message = if formatter.is_none() {
        let message = message_of(record, exact_record)?;
        if has_traceback(record)? {
            context.with_tracebacks.bind(py).call1((record, message))?
        } else {
            message
        }
    } else {
        handler.call_method1(intern!(py, "format"), (record,))?
    };
    let level = record.getattr(intern!(py, "levelno"))?;
    let target = record.getattr(intern!(py, "name"))?;
    let writer = handler.getattr(intern!(py, "writer"))?;
    match writer.cast::<PyWriter>() {
        Ok(writer) => {
            writer.get().write_record(py, &level, &target, &message)?;
        }
        // Someone put another object there: call it as Python would.
        Err(_) => {
            writer.call_method1(intern!(py, "write_record"), (level, target, message))?;
        }
    }
    Ok(())
}

/// `record.getMessage()`: done here for an exact LogRecord whose `msg` is a str (`msg`, or
/// `msg % args` when there are args, as getMessage does), called otherwise.
fn message_of<'py>(record: &Bound<'py, PyAny>, exact_record: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = record.py();
    if exact_record {
        let msg = record.getattr(intern!(py, "msg"))?;
        if msg.is_exact_instance_of::<PyString>() {
            let args = record.getattr(intern!(py, "args"))?;
            return if args.is_truthy()? {
                msg.rem(args)
            } else {
                Ok(msg)
            };
        }
    }
    record.call_method0(intern!(py, "getMessage"))
}

/// `record.exc_info or record.exc_text or record.stack_info`.
fn has_traceback(record: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = record.py();
    for name in [
        intern!(py, "exc_info"),
        intern!(py, "exc_text"),
        intern!(py, "stack_info"),
    ] {
        if record.getattr(name)?.is_truthy()? {
            return Ok(true);
        }
    }
    Ok(false)
}
