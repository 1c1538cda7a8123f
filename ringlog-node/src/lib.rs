//! ringlog-node: the native half of the npm package `ringlog`, a thin shell over
//! [`ringlog_writer::Writer`]. Every write is one record, whole or not at all, with no
//! syscall, lock or allocation on the steady path (strings are converted into a buffer the
//! writer reuses, Buffers are read in place).
//!
//! The JS half (`index.js`) checks options and defines the `Writer` class, the pino destination
//! and (winston.js) the winston transport over the functions exported here. A writer travels
//! as a tagged handle object ([`handle`]). The write calls ([`hot_path`]) are plain N-API
//! callbacks: napi-rs's generated wrappers cost several hundred ns per call, more than a whole
//! record. Errors leave through [`js_error`] only: a JS `Error` with `code` and `status` from
//! the status table every binding shares; a panic is caught there, never unwinds into node.

mod handle;
mod hot_path;
mod js_bytes;
mod js_error;
mod level;

use handle::WriterState;
use js_error::{guard, Failure};
use napi::bindgen_prelude::{JsValue, Object};
use napi::Env;
use napi_derive::napi;
use ringlog::Status;
use ringlog_writer::{FullPolicy, Writer};
use std::collections::HashMap;
use std::time::Duration;

/// The status table every binding shares, name to number (`RINGLOG_TOO_LARGE: 10`), for the
/// errors the JS half raises itself and for users who switch on `err.status`.
#[napi]
pub fn status_codes() -> HashMap<String, i32> {
    Status::ALL
        .iter()
        .map(|s| (s.name().to_owned(), s.code()))
        .collect()
}

/// `policyKind` values `index.js` passes to [`open`].
const POLICY_BLOCK: u32 = 0;
const POLICY_DROP: u32 = 1;
const POLICY_BLOCK_FOR: u32 = 2;

/// Opens (or creates) a ring and returns the handle of a writer on it. Arguments come checked
/// from `index.js`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn open(
    env: Env,
    ring: String,
    path: Option<String>,
    capacity: Option<f64>,
    max_record: Option<f64>,
    create: bool,
    policy_kind: u32,
    block_ms: f64,
    drain_grace_ms: Option<f64>,
    mode: Option<u32>,
) -> napi::Result<u32> {
    guard(&env, || {
        let policy = match policy_kind {
            POLICY_BLOCK => FullPolicy::Block,
            POLICY_DROP => FullPolicy::Drop,
            POLICY_BLOCK_FOR => FullPolicy::BlockFor(Duration::from_secs_f64(block_ms / 1e3)),
            other => {
                return Err(Failure::new(
                    Status::RINGLOG_BAD_ARGUMENT,
                    format!("unknown full policy kind {other}"),
                ))
            }
        };
        let mut builder = Writer::builder(&ring).create(create).full_policy(policy);
        if let Some(path) = path {
            builder = builder.path(path);
        }
        if let Some(capacity) = capacity {
            builder = builder.capacity(capacity as u64);
        }
        if let Some(max_record) = max_record {
            builder = builder.max_record(max_record as u64);
        }
        if let Some(grace) = drain_grace_ms {
            builder = builder.drain_grace(Duration::from_secs_f64(grace / 1e3));
        }
        if let Some(mode) = mode {
            builder = builder.mode(mode);
        }
        let writer = builder.open().map_err(|e| Failure::from_error(&e))?;
        Ok(handle::insert(WriterState {
            writer: Some(writer),
            scratch: Vec::new(),
        }))
    })
}

/// What `stats()` returns: this process's records through this writer.
#[napi(object)]
#[derive(Debug)]
pub struct WriterStats {
    /// Records committed to the ring.
    pub written: f64,
    /// Records the full policy dropped (the drain reports them in the log).
    pub dropped: f64,
    /// Time spent waiting for space in a full ring, in milliseconds.
    pub blocked_ms: f64,
}

/// Records written and dropped, and time blocked on a full ring, by this process through this
/// writer.
#[napi]
pub fn stats(env: Env, handle: u32) -> napi::Result<WriterStats> {
    with_writer(&env, handle, |writer| {
        let stats = writer.stats();
        WriterStats {
            written: stats.written as f64,
            dropped: stats.dropped as f64,
            blocked_ms: stats.blocked.as_secs_f64() * 1e3,
        }
    })
}

/// True while a drain holds the ring.
#[napi]
pub fn drain_alive(env: Env, handle: u32) -> napi::Result<bool> {
    with_writer(&env, handle, Writer::drain_alive)
}

/// The ring's largest record in bytes (target + message).
#[napi]
pub fn max_record(env: Env, handle: u32) -> napi::Result<f64> {
    with_writer(&env, handle, |writer| writer.max_record() as f64)
}

/// The ring's name (or path).
#[napi]
pub fn ring_name(env: Env, handle: u32) -> napi::Result<String> {
    with_writer(&env, handle, |writer| writer.ring_name().to_owned())
}

/// Closes the writer (records already written stay in the ring for the drain) and gives this
/// thread's producer slot back to the ring: the drain no longer counts it as attached. Closing
/// twice is harmless; writing after close throws `RINGLOG_CLOSED`.
#[napi]
pub fn close(env: Env, handle: u32) -> napi::Result<()> {
    guard(&env, || {
        let writer = handle::with_state(handle, |state| {
            state.scratch = Vec::new();
            state.writer.take()
        })
        .ok_or_else(not_a_handle)?;
        // Dropped outside the table's borrow, as in `handle::release`.
        drop(writer);
        Ok(())
    })
}

/// Frees the handle of a `Writer` that was garbage-collected (`index.js`'s
/// FinalizationRegistry): closes it if still open.
#[napi]
pub fn release(handle: u32) {
    handle::release(handle);
}

/// Installs the write calls ([`hot_path`]) beside the functions above.
#[napi(module_exports)]
pub fn install(exports: Object<'_>, env: Env) -> napi::Result<()> {
    // SAFETY: the live env and exports object of module initialisation.
    unsafe { hot_path::install(env.raw(), exports.raw()) }
}

fn with_writer<T>(env: &Env, handle: u32, f: impl FnOnce(&Writer) -> T) -> napi::Result<T> {
    guard(env, || {
        handle::with_state(handle, |state| open_writer(&state.writer).map(f))
            .ok_or_else(not_a_handle)?
    })
}

pub(crate) fn open_writer(writer: &Option<Writer>) -> Result<&Writer, Failure> {
    writer.as_ref().ok_or_else(|| {
        Failure::new(
            Status::RINGLOG_CLOSED,
            "this ringlog Writer is closed: open a new one",
        )
    })
}

pub(crate) fn not_a_handle() -> Failure {
    Failure::new(
        Status::RINGLOG_BAD_ARGUMENT,
        "not a ringlog writer handle (use the Writer class of require('ringlog'))",
    )
}
