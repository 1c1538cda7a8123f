//! Levels as Python code gives them: a `logging` level number (`record.levelno`, loguru's
//! `level.no`, 5 for TRACE), a level name, or None, mapped onto ringlog's six levels.

use crate::error;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};
use ringlog_writer::Level;

/// `logging`'s thresholds: CRITICAL (50) and ERROR (40) are ringlog's Error; WARNING (30) Warn;
/// INFO (20) Info; DEBUG (10) Debug; anything below (loguru's TRACE is 5, NOTSET 0) Trace.
/// Custom levels fall into the band they sit in (loguru's SUCCESS, 25, is Info).
pub fn from_levelno(levelno: i64) -> Level {
    match levelno {
        40.. => Level::Error,
        30..=39 => Level::Warn,
        20..=29 => Level::Info,
        10..=19 => Level::Debug,
        _ => Level::Trace,
    }
}

/// A level argument: an int (a `logging` level number), a name (`"error"`, `"WARNING"`...), or
/// None for no level.
pub fn from_python(level: &Bound<'_, PyAny>) -> PyResult<Level> {
    if let Ok(number) = level.cast::<PyInt>() {
        // Saturate out-of-range ints: they still fall in the top or bottom band.
        let number =
            number
                .extract::<i64>()
                .unwrap_or(if number.gt(0)? { i64::MAX } else { i64::MIN });
        return Ok(from_levelno(number));
    }
    if level.is_none() {
        return Ok(Level::None);
    }
    if let Ok(name) = level.cast::<PyString>() {
        let name = name.to_cow()?.to_ascii_lowercase();
        return match name.as_str() {
            "critical" | "fatal" | "error" => Ok(Level::Error),
            "warning" | "warn" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            "trace" => Ok(Level::Trace),
            _ => Err(error::bad_argument(
                level.py(),
                format!(
                    "unknown level name {name:?}: use a logging level number, or one of \
                     critical, error, warning, info, debug, trace"
                ),
            )),
        };
    }
    Err(error::bad_argument(
        level.py(),
        format!(
            "level must be an int (a logging level number), a level name or None, not {}",
            level.get_type().name()?
        ),
    ))
}
