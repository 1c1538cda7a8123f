//! The native state behind each JS `Writer`, and the handle JS holds for it: a small integer
//! indexing this thread's table of writers. Node runs each JS environment (the main thread, a
//! worker thread) on its own thread, so the table is thread-local and needs no lock; a handle
//! is only ever resolved in the thread that made it. An index can only find a live entry or
//! nothing (never memory that is not a `WriterState`), so a wrong value is refused, never
//! misread. `index.js` frees an entry ([`release`]) when its `Writer` is garbage-collected
//! (a `FinalizationRegistry`), so an index is not reused while a `Writer` holds it.

use ringlog_writer::Writer;
use std::cell::RefCell;

/// What one JS `Writer` owns.
#[derive(Debug)]
pub(crate) struct WriterState {
    /// `None` once closed.
    pub(crate) writer: Option<Writer>,
    /// Strings are converted to UTF-8 here: it grows to the largest record written, then the
    /// steady path allocates nothing.
    pub(crate) scratch: Vec<u8>,
}

thread_local! {
    /// This thread's writers; `None` marks a free index.
    static WRITERS: RefCell<Vec<Option<WriterState>>> = const { RefCell::new(Vec::new()) };
}

/// Stores `state` and returns its handle.
pub(crate) fn insert(state: WriterState) -> u32 {
    WRITERS.with_borrow_mut(|writers| {
        let index = match writers.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                writers.push(None);
                writers.len() - 1
            }
        };
        writers[index] = Some(state);
        index as u32
    })
}

/// Runs `f` on the state behind `handle`, or answers `None` if there is none.
pub(crate) fn with_state<R>(handle: u32, f: impl FnOnce(&mut WriterState) -> R) -> Option<R> {
    WRITERS.with_borrow_mut(|writers| writers.get_mut(handle as usize)?.as_mut().map(f))
}

/// Frees the entry of a collected `Writer` (dropping its writer if still open).
pub(crate) fn release(handle: u32) {
    let state =
        WRITERS.with_borrow_mut(|writers| writers.get_mut(handle as usize).and_then(Option::take));
    // Dropped outside the borrow: a writer's drop must not run under the table's borrow.
    drop(state);
}
