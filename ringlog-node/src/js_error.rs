//! The one way errors leave the addon: a JS `Error` whose `code` is the status name shared by
//! every binding (`'RINGLOG_TOO_LARGE'`), whose `status` is its number, and whose message is
//! the library's full sentence. Also the panic guard: a panic is caught here and becomes
//! `RINGLOG_PANIC`, so nothing unwinds into node.

use napi::bindgen_prelude::JsObjectValue;
use napi::Env;
use ringlog::Status;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failure on its way to JS: the status and the message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A failure from a ringlog error, with its full message (cause chain included).
    pub(crate) fn from_error<E>(error: &E) -> Failure
    where
        E: std::error::Error,
        for<'a> &'a E: Into<Status>,
    {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
            source = source.and_then(|s| s.source());
        }
        Failure::new(error.into(), message)
    }
}

/// Runs `body`, turning a failure into a thrown JS error and a panic into `RINGLOG_PANIC`.
pub(crate) fn guard<T>(env: &Env, body: impl FnOnce() -> Result<T, Failure>) -> napi::Result<T> {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Failure::new(
                Status::RINGLOG_PANIC,
                format!("bug in ringlog (please report): a panic was caught: {what}"),
            )
        }
    };
    Err(throw(env, failure))
}

/// Throws `failure` as a JS `Error` with `code` and `status`, and returns the error napi-rs
/// expects back for an exception already pending.
fn throw(env: &Env, failure: Failure) -> napi::Error {
    let thrown = (|| -> napi::Result<()> {
        let mut error = env.create_error(napi::Error::new(
            napi::Status::GenericFailure,
            failure.message.as_str(),
        ))?;
        error.set_named_property("code", failure.status.name())?;
        error.set_named_property("status", failure.status.code())?;
        env.throw(error)
    })();
    match thrown {
        Ok(()) => napi::Error::from_status(napi::Status::PendingException),
        // Could not even build the error (the environment is going away): let napi-rs throw
        // what it can.
        Err(_) => napi::Error::new(napi::Status::GenericFailure, failure.message),
    }
}
