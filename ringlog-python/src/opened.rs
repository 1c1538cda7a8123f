//! The Rust writers this process has opened, shared by every `ringlog.Writer` made with the
//! same options. Python code makes Writers freely: a Handler pickled into every task of a
//! Pool, dictConfig run again, a Handler per request. Each Rust `Writer::open` would map the
//! ring again and take a producer slot in every thread that writes through it, which the
//! thread keeps for its lifetime; slots are finite (1024 a ring), so the 1025th copy used by
//! one thread would fail. Sharing one Rust writer per (options, file) avoids that.
//!
//! A cached writer is reused only while the ring's path still names the file it mapped, so a
//! ring removed and re-created is opened afresh (and a missing one raises NotFoundError); and
//! only while some `ringlog.Writer` still holds it: the cache keeps a [`WeakWriter`], so once
//! every Writer sharing it is closed or collected, the Rust writer is dropped and gives back the
//! producer slots of every thread that wrote through it (the drain no longer counts them).

use crate::options::Options;
use ringlog_core::{Location, OpenError};
use ringlog_writer::{WeakWriter, Writer};
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};

struct Opened {
    options: Options,
    /// (device, inode) of the segment file when it was opened.
    file: (u64, u64),
    writer: WeakWriter,
}

/// Only ever locked with the GIL held and never across a call that releases it, so no two
/// threads wait on it, and a `fork()` (which Python makes with the GIL held) never copies it
/// locked.
static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

/// A writer for `options`: the one this process already opened on the same file, or a new one.
pub fn open(options: &Options) -> Result<Writer, OpenError> {
    let mut opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
    let file = file_identity(options);
    if let Some(writer) = opened
        .iter()
        .filter(|o| o.options == *options && Some(o.file) == file)
        .find_map(|o| o.writer.upgrade())
    {
        return Ok(writer);
    }
    let writer = options.builder().open()?;
    opened.retain(|o| o.options != *options && o.writer.upgrade().is_some());
    if let Some(file) = file_identity(options) {
        opened.push(Opened {
            options: options.clone(),
            file,
            writer: writer.downgrade(),
        });
    }
    Ok(writer)
}

fn file_identity(options: &Options) -> Option<(u64, u64)> {
    let location = match &options.path {
        Some(path) => Location::Path(path.clone()),
        None => Location::Name(options.ring.clone()),
    };
    let metadata = std::fs::metadata(location.path().ok()?).ok()?;
    Some((metadata.dev(), metadata.ino()))
}
