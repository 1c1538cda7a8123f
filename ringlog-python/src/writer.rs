//! `ringlog.Writer`: one process's handle on a ring, wrapping [`ringlog_writer::Writer`].
//!
//! The fast path holds the GIL and never waits: a non-blocking write straight from the
//! object's own bytes. Only when the ring is full and the policy waits does it release the
//! GIL around the blocking retry, so other Python threads run meanwhile. A Writer that
//! arrives in a new process by pickling (spawn, forkserver) carries only its options and
//! opens the ring there on first use; across `fork()` the Rust writer re-attaches by itself.
//! `close()` drops the Rust writer at once (see [`OpenedWriter`]), so this process's producer
//! slots go back to the ring then, not when the object is collected or the process exits.

use crate::error;
use crate::level;
use crate::message;
use crate::opened;
use crate::options::{self, Options};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use ringlog::Status;
use ringlog_writer::{FullPolicy, Level, WriteError, Writer, WriterStats};
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `ringlog.Writer(ring, *, capacity=None, policy="block", create=True, path=None,
/// max_record=None, drain_grace=None)`.
#[pyclass(module = "ringlog", name = "Writer", frozen)]
#[derive(Debug)]
pub struct PyWriter {
    options: Options,
    /// Opened by the constructor, or on first use in a process that unpickled this Writer;
    /// emptied by `close()`.
    opened: OpenedWriter,
    closed: AtomicBool,
    /// What `stats()` answers after `close()`: the counts when it closed.
    stats_at_close: OnceLock<WriterStats>,
}

/// The Rust writer of a `ringlog.Writer`, or `None` (not opened in this process yet, or
/// closed). Every access takes the `Python` token, i.e. holds the GIL, so `close()` never drops
/// the writer under another thread's use of it; the one use that releases the GIL (a write
/// waiting on a full ring) works on its own clone. No code between taking a reference and its
/// last use runs Python code (which could release the GIL or call `close()`).
#[derive(Debug, Default)]
struct OpenedWriter(UnsafeCell<Option<Writer>>);

// SAFETY: the cell is only read or written through the methods below, which require the GIL
// (a `Python` token), so no two threads touch it at once. The extension is built for the stable
// ABI (abi3), which free-threaded Pythons (no GIL) do not load.
unsafe impl Sync for OpenedWriter {}

impl OpenedWriter {
    #[inline]
    fn get<'a>(&'a self, _gil: Python<'_>) -> Option<&'a Writer> {
        // SAFETY: the GIL is held (see the type); `set` and `take`, the only writers, hold it
        // too and run no Python code while a reference from here is in use (see the type).
        unsafe { (*self.0.get()).as_ref() }
    }

    fn set(&self, _gil: Python<'_>, writer: Writer) {
        // SAFETY: as in `get`. Callers hold no reference from `get` across this call.
        let cell = unsafe { &mut *self.0.get() };
        cell.get_or_insert(writer);
    }

    fn take(&self, _gil: Python<'_>) -> Option<Writer> {
        // SAFETY: as in `set`.
        unsafe { (*self.0.get()).take() }
    }
}

impl PyWriter {
    fn unopened(options: Options, closed: bool) -> PyWriter {
        PyWriter {
            options,
            opened: OpenedWriter::default(),
            closed: AtomicBool::new(closed),
            stats_at_close: OnceLock::new(),
        }
    }

    /// The open writer, opening it on first use in this process; ClosedError once closed.
    #[inline]
    fn writer(&self, py: Python<'_>) -> PyResult<&Writer> {
        // Relaxed: `close` is not a barrier between threads; a write racing it may still land.
        if self.closed.load(Ordering::Relaxed) {
            return Err(error::exception(
                py,
                Status::RINGLOG_CLOSED,
                format!("ringlog.Writer for ring '{}' is closed", self.options.ring),
            ));
        }
        match self.opened.get(py) {
            Some(writer) => Ok(writer),
            None => self.open(py),
        }
    }

    #[cold]
    fn open(&self, py: Python<'_>) -> PyResult<&Writer> {
        let writer = guarded(py, || Ok(opened::open(&self.options)))?
            .map_err(|e| error::from_error(py, &e))?;
        // Opening runs no Python code, so no other thread opened meanwhile (the GIL is held).
        self.opened.set(py, writer);
        Ok(self.opened.get(py).expect("set just above"))
    }

    /// One record: written (true), or dropped and counted by the full policy (false). A panic
    /// on the steady path is caught by the entry point (`write`, `write_record`, `handle`).
    ///
    /// The steady path makes one attempt and hands whatever it did not finish (a full ring, an
    /// error) to [`PyWriter::after_attempt`] as it is: an error is never met by attempting the
    /// same record again, where a refusal the writer counts as a drop would count twice.
    #[inline]
    fn put(&self, py: Python<'_>, level: Level, target: &str, message: &[u8]) -> PyResult<bool> {
        let Some(writer) = self.steady_writer(py) else {
            return self.open_and_put(py, level, target, message);
        };
        match writer.try_write_record(level, target, message) {
            Ok(true) => Ok(true),
            attempt => self.after_attempt(py, writer, attempt, level, target, message),
        }
    }

    /// The writer, when it is open in this process and not closed: the steady path. Matching
    /// the attempt's `Ok(true)` right where it is made keeps that path in registers: carrying
    /// `PyResult<Result<(), WriteError>>` out of it cost ~50 ns per `write` (values moved
    /// through the stack, store-forwarding stalls).
    #[inline]
    fn steady_writer(&self, py: Python<'_>) -> Option<&Writer> {
        // Relaxed: see `writer`.
        if self.closed.load(Ordering::Relaxed) {
            return None;
        }
        self.opened.get(py)
    }

    /// Not open in this process yet (opens it), or closed (raises ClosedError); then the one
    /// attempt, handed on like the steady path's.
    #[inline(never)]
    fn open_and_put(
        &self,
        py: Python<'_>,
        level: Level,
        target: &str,
        message: &[u8],
    ) -> PyResult<bool> {
        let writer = self.writer(py)?;
        let attempt = guarded(py, || Ok(writer.try_write_record(level, target, message)))?;
        self.after_attempt(py, writer, attempt, level, target, message)
    }

    /// After an attempt that did not write: a full ring gets the full policy (the attempt
    /// counted nothing), an error is raised, or False for a record the writer dropped and
    /// counted.
    #[inline(never)]
    fn after_attempt(
        &self,
        py: Python<'_>,
        writer: &Writer,
        attempt: Result<bool, WriteError>,
        level: Level,
        target: &str,
        message: &[u8],
    ) -> PyResult<bool> {
        let result = match attempt {
            Ok(true) => Ok(()),
            // The ring was full. The policy's write claims afresh, then waits, or drops and
            // counts. Dropping never waits, so it keeps the GIL; a wait releases it (the bytes
            // stay valid: the caller holds the immutable object), on a clone of the writer,
            // which a `close()` meanwhile cannot drop.
            Ok(false) => guarded(py, || {
                Ok(match self.options.policy {
                    FullPolicy::Drop => writer.write_record(level, target, message),
                    FullPolicy::Block | FullPolicy::BlockFor(_) => {
                        let writer = writer.clone();
                        py.detach(move || writer.write_record(level, target, message))
                    }
                })
            })?,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(true),
            Err(WriteError::Dropped) => Ok(false),
            Err(e) => Err(error::from_error(py, &e)),
        }
    }
}

impl PyWriter {
    /// `Writer.write(data)`, called through [`crate::fast_write`]: one record with no level
    /// and no target.
    #[inline]
    pub fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        message::with_bytes(data, "data", |bytes| self.put(py, Level::None, "", bytes))
    }
}

/// Runs `f`, turning a panic (a bug in ringlog) into `ringlog.RinglogError` with status
/// RINGLOG_PANIC instead of pyo3's PanicException, a BaseException most code does not catch.
fn guarded<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panic_error(py, panic)))
}

/// The exception for a caught panic.
pub fn panic_error(py: Python<'_>, panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    error::exception(
        py,
        Status::RINGLOG_PANIC,
        format!("bug in ringlog (please report it): panic: {what}"),
    )
}

#[pymethods]
impl PyWriter {
    #[new]
    #[pyo3(signature = (ring, *, capacity=None, policy=None, create=true, path=None, max_record=None, drain_grace=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ring: String,
        capacity: Option<u64>,
        policy: Option<&Bound<'_, PyAny>>,
        create: bool,
        path: Option<PathBuf>,
        max_record: Option<u64>,
        drain_grace: Option<f64>,
    ) -> PyResult<PyWriter> {
        let options = Options {
            ring,
            capacity,
            max_record,
            policy: options::policy_from_python(policy)?,
            create,
            path,
            drain_grace: options::seconds_from_python(py, "drain_grace", drain_grace)?,
        };
        let writer = PyWriter::unopened(options, false);
        // Open now, so a bad name, a missing ring or a bad option raises here.
        writer.open(py)?;
        Ok(writer)
    }

    /// Writes one record with a level (a `logging` level number, a level name, or None), a
    /// target (str, e.g. the logger's name) and a message (str or bytes). True if written,
    /// False if dropped by the full policy.
    pub fn write_record(
        &self,
        py: Python<'_>,
        level: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        // One guard around the whole call: the steady path inside `put` has none of its own.
        guarded(py, || {
            let level = level::from_python(level)?;
            let Ok(target) = target.cast::<PyString>() else {
                if target.is_none() {
                    return message::with_bytes(message, "message", |m| self.put(py, level, "", m));
                }
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "target must be str or None, not {}",
                    target.get_type().name()?
                )));
            };
            message::with_str(target, |target| {
                message::with_bytes(message, "message", |m| self.put(py, level, target, m))
            })
        })
    }

    /// What this process wrote through this Writer: `{"written": int, "dropped": int,
    /// "blocked_seconds": float}` (time spent waiting on a full ring). Writers made in this
    /// process with the same options share one underlying writer and so one count while they
    /// are open. Zero in a new process until it writes; after `close()`, the counts then.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = match self.opened.get(py) {
            Some(writer) => writer.stats(),
            None => self.stats_at_close.get().copied().unwrap_or_default(),
        };
        let dict = PyDict::new(py);
        dict.set_item("written", stats.written)?;
        dict.set_item("dropped", stats.dropped)?;
        dict.set_item("blocked_seconds", stats.blocked.as_secs_f64())?;
        Ok(dict)
    }

    /// True while a ringlog-drain holds this ring.
    fn drain_alive(&self, py: Python<'_>) -> PyResult<bool> {
        let writer = self.writer(py)?;
        Ok(writer.drain_alive())
    }

    /// Stops this Writer: later writes raise ClosedError. Records already written stay in the
    /// ring for the drain. This process's producer slots go back to the ring now (unless
    /// another open Writer with the same options shares them). Closing twice is fine.
    fn close(&self, py: Python<'_>) {
        // Relaxed: see `writer`.
        self.closed.store(true, Ordering::Relaxed);
        if let Some(writer) = self.opened.take(py) {
            let _ = self.stats_at_close.set(writer.stats());
        }
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        // Relaxed: see `writer`.
        self.closed.load(Ordering::Relaxed)
    }

    /// The ring's name.
    #[getter]
    fn ring(&self) -> &str {
        &self.options.ring
    }

    /// The ring's largest record in bytes (target included).
    #[getter]
    fn max_record(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.writer(py)?.max_record())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// Pickles the options, not the mapping: the copy opens the ring on first use in the
    /// process that unpickles it (spawn, forkserver, a pickled Handler).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let reopen = py.import("ringlog._ringlog")?.getattr("_reopen")?;
        let o = &self.options;
        let args = (
            o.ring.as_str(),
            o.capacity,
            o.max_record,
            o.policy_to_python(py),
            o.create,
            o.path.clone(),
            o.drain_grace.map(|d| d.as_secs_f64()),
            self.closed(),
        );
        (reopen, args).into_pyobject(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ringlog.Writer({:?}, policy={}{})",
            self.options.ring,
            self.options.policy_to_python(py).repr()?,
            if self.closed() { ", closed" } else { "" }
        ))
    }
}

/// Rebuilds a pickled Writer without opening it: the ring opens on its first use.
#[pyfunction]
#[pyo3(signature = (ring, capacity, max_record, policy, create, path, drain_grace, closed))]
#[allow(clippy::too_many_arguments)]
pub fn _reopen(
    py: Python<'_>,
    ring: String,
    capacity: Option<u64>,
    max_record: Option<u64>,
    policy: Option<&Bound<'_, PyAny>>,
    create: bool,
    path: Option<PathBuf>,
    drain_grace: Option<f64>,
    closed: bool,
) -> PyResult<PyWriter> {
    let options = Options {
        ring,
        capacity,
        max_record,
        policy: options::policy_from_python(policy)?,
        create,
        path,
        drain_grace: options::seconds_from_python(py, "drain_grace", drain_grace)?,
    };
    Ok(PyWriter::unopened(options, closed))
}
