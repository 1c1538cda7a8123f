//! `ringlog.Writer`'s options as Python gives them, checked and turned into a
//! [`WriterBuilder`]; kept whole so a pickled Writer reopens the same ring the same way.

use crate::error;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use ringlog_writer::{FullPolicy, Writer, WriterBuilder};
use std::path::PathBuf;
use std::time::Duration;

/// Everything `ringlog.Writer(...)` was given.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub ring: String,
    pub capacity: Option<u64>,
    pub max_record: Option<u64>,
    pub policy: FullPolicy,
    pub create: bool,
    pub path: Option<PathBuf>,
    /// How long "block" waits for an absent drain before it drops (None: the library's 1 s).
    pub drain_grace: Option<Duration>,
}

impl Options {
    pub fn builder(&self) -> WriterBuilder {
        let mut builder = Writer::builder(&self.ring)
            .full_policy(self.policy)
            .create(self.create);
        if let Some(capacity) = self.capacity {
            builder = builder.capacity(capacity);
        }
        if let Some(max_record) = self.max_record {
            builder = builder.max_record(max_record);
        }
        if let Some(path) = &self.path {
            builder = builder.path(path);
        }
        if let Some(grace) = self.drain_grace {
            builder = builder.drain_grace(grace);
        }
        builder
    }

    /// The policy as `ringlog.Writer` takes it: "block", "drop" or seconds.
    pub fn policy_to_python<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match self.policy {
            FullPolicy::Block => PyString::new(py, "block").into_any(),
            FullPolicy::Drop => PyString::new(py, "drop").into_any(),
            FullPolicy::BlockFor(wait) => PyFloat::new(py, wait.as_secs_f64()).into_any(),
        }
    }
}

/// `drain_grace=`: seconds, finite and >= 0.
pub fn seconds_from_python(
    py: Python<'_>,
    what: &str,
    seconds: Option<f64>,
) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                error::bad_argument(
                    py,
                    format!("{what} of {s} seconds: give a finite number of seconds >= 0"),
                )
            })
        })
        .transpose()
}

/// `policy=`: "block" (wait for the drain), "drop" (drop and count at once), or a number of
/// seconds to wait at most before dropping.
pub fn policy_from_python(policy: Option<&Bound<'_, PyAny>>) -> PyResult<FullPolicy> {
    let Some(policy) = policy else {
        return Ok(FullPolicy::Block);
    };
    let py = policy.py();
    if let Ok(name) = policy.cast::<PyString>() {
        return match name.to_cow()?.as_ref() {
            "block" => Ok(FullPolicy::Block),
            "drop" => Ok(FullPolicy::Drop),
            other => Err(error::bad_argument(
                py,
                format!(
                    "unknown full policy {other:?}: use \"block\", \"drop\" or a number of \
                     seconds to block at most"
                ),
            )),
        };
    }
    let is_number = (policy.is_instance_of::<PyInt>() && !policy.is_instance_of::<PyBool>())
        || policy.is_instance_of::<PyFloat>();
    if is_number {
        let seconds: f64 = policy.extract()?;
        return Duration::try_from_secs_f64(seconds)
            .map(FullPolicy::BlockFor)
            .map_err(|_| {
                error::bad_argument(
                    py,
                    format!(
                        "full policy of {seconds} seconds: give a finite number of seconds >= 0"
                    ),
                )
            });
    }
    Err(error::bad_argument(
        py,
        format!(
            "policy must be \"block\", \"drop\" or a number of seconds, not {}",
            policy.get_type().name()?
        ),
    ))
}
