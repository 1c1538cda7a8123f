//! Claim and commit from C: `ringlog_claim` reserves space in the ring for one record of up to
//! `len` bytes, `ringlog_claim_write` copies the caller's bytes into it (as many calls as
//! needed), `ringlog_commit` publishes it, `ringlog_abort` withdraws it. For a record built in
//! pieces without a buffer of the caller's own.
//!
//! C never gets a pointer into the ring (shared memory other processes read): every byte goes
//! in by copy from the caller's buffer. The open claim lives in a thread-local, one per thread,
//! so it belongs to the thread that claimed it, as in Rust, and every call names the handle it
//! expects the claim to be on. A thread that ends with a claim open aborts it (never a stall).
//!
//! After `fork()` a claim the forking thread held belongs to the parent: the child's calls
//! report it as `RINGLOG_BAD_ARGUMENT` and never touch it (the parent commits or aborts it). A
//! claim of another thread is not in the child at all.

use crate::error::{arg, arg_mut, bytes, fail, guard};
use crate::status::Status;
use crate::writer::{level, ringlog_writer, write_failed};
use ::ringlog_writer::RecordClaim;
use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::io::Write as _;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Forks this process has gone through, as seen from the current process (bumped in the
/// child by a `pthread_atfork` handler).
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    // Relaxed: the child has one thread here; later reads in it are program-ordered after.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn forks() -> u64 {
    // Relaxed: only the child's own increment (before any of its threads exist) matters.
    FORKS.load(Ordering::Relaxed)
}

/// Starts counting forks (once per process, before the first handle exists).
pub(crate) fn watch_forks() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: registers a child handler that only increments an atomic (async-signal-safe).
        // If registration fails (ENOMEM), a claim carried across fork by its own thread would
        // not be recognised; no handle exists yet, so this is the only chance to report it.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        assert_eq!(rc, 0, "pthread_atfork failed: {rc}");
    });
}

/// The calling thread's open claim.
struct OpenClaim {
    /// The handle it was made on.
    writer: *const ringlog_writer,
    /// `forks()` when it was made: another value means it is the parent's.
    forks: u64,
    /// Borrows the handle's writer, which outlives it: `ringlog_close` aborts the calling
    /// thread's claim first, and closing a handle another thread holds a claim on is forbidden.
    claim: ManuallyDrop<RecordClaim<'static>>,
}

impl OpenClaim {
    fn is_the_parents(&self) -> bool {
        self.forks != forks()
    }
}

impl Drop for OpenClaim {
    fn drop(&mut self) {
        if !self.is_the_parents() {
            // SAFETY: dropped once, here; dropping aborts the claim.
            unsafe { ManuallyDrop::drop(&mut self.claim) };
        }
        // The parent's claim: leave the ring alone (the parent commits or aborts it).
    }
}

thread_local! {
    static OPEN: RefCell<Option<OpenClaim>> = const { RefCell::new(None) };
    /// The handle of `OPEN`'s claim, or NULL: a check on the write path that costs one load.
    static OPEN_ON: Cell<*const ringlog_writer> = const { Cell::new(std::ptr::null()) };
}

/// `RINGLOG_WOULD_DEADLOCK` if the calling thread holds a claim on `w`: a record written now
/// could wait for space behind that claim forever.
#[inline]
pub(crate) fn refuse_if_open(w: &ringlog_writer, function: &str) -> Result<(), Status> {
    if !std::ptr::eq(OPEN_ON.with(Cell::get), w) {
        return Ok(());
    }
    let mine = OPEN.with(|open| open.borrow().as_ref().is_some_and(|c| !c.is_the_parents()));
    if mine {
        return Err(fail(
            Status::RINGLOG_WOULD_DEADLOCK,
            format_args!(
                "{function}: this thread holds an open claim on the same ring: commit or abort \
                 it first"
            ),
        ));
    }
    Ok(())
}

/// Takes the calling thread's claim if it is on `w` and this process's.
fn take(w: *const ringlog_writer, function: &str) -> Result<OpenClaim, Status> {
    let claim = OPEN.with(|open| open.borrow_mut().take());
    OPEN_ON.with(|on| on.set(std::ptr::null()));
    match claim {
        Some(c) if c.is_the_parents() => Err(fail(
            Status::RINGLOG_BAD_ARGUMENT,
            format_args!(
                "{function}: the open claim was made before fork() and belongs to the parent \
                 process; it is left to the parent"
            ),
        )),
        Some(c) if c.writer == w => Ok(c),
        Some(other) => {
            put(other);
            Err(fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!("{function}: this thread's open claim is on another handle"),
            ))
        }
        None => Err(fail(
            Status::RINGLOG_BAD_ARGUMENT,
            format_args!("{function}: this thread has no open claim (call ringlog_claim first)"),
        )),
    }
}

fn put(claim: OpenClaim) {
    OPEN_ON.with(|on| on.set(claim.writer));
    OPEN.with(|open| *open.borrow_mut() = Some(claim));
}

/// Aborts the calling thread's claim on `w`, if any, before `w` is freed.
pub(crate) fn abort_before_close(w: *const ringlog_writer) {
    if OPEN_ON.with(Cell::get) == w {
        let _ = take(w, "ringlog_close");
    }
}

/// Reserves space in `w`'s ring for one record of up to `len` bytes with `level` (a
/// `ringlog_level`), to fill with `ringlog_claim_write` and publish with `ringlog_commit` (or
/// withdraw with `ringlog_abort`). One open claim per thread; it belongs to this thread. Until
/// it is committed or aborted the drain waits at it, so keep it short, and this thread may not
/// write to the same ring (`RINGLOG_WOULD_DEADLOCK`). Fails as `ringlog_write` for a record of
/// `len` bytes (`RINGLOG_TOO_LARGE`, `RINGLOG_DROPPED`...), with `RINGLOG_WOULD_DEADLOCK` if
/// this thread already holds a claim on this ring, `RINGLOG_BAD_ARGUMENT` if on another.
///
/// # Safety
/// `w` is NULL or a handle not yet closed, and stays open until the claim is committed or
/// aborted.
#[no_mangle]
pub unsafe extern "C" fn ringlog_claim(
    w: *const ringlog_writer,
    level: c_int,
    len: usize,
) -> c_int {
    const F: &str = "ringlog_claim";
    guard(F, || {
        // SAFETY: NULL or a live handle that outlives the claim, per the contract.
        let handle: &'static ringlog_writer = unsafe { arg(w, F, "w") }?;
        let level = self::level(level, F)?;
        refuse_if_open(handle, F)?;
        let held = OPEN.with(|open| {
            let mut open = open.borrow_mut();
            if open.as_ref().is_some_and(OpenClaim::is_the_parents) {
                *open = None; // The parent's: forget it without touching the ring.
            }
            open.is_some()
        });
        if held {
            return Err(fail(
                Status::RINGLOG_BAD_ARGUMENT,
                format_args!(
                    "{F}: this thread holds an open claim on another ring: commit or abort it \
                     first (one open claim per thread)"
                ),
            ));
        }
        let mut claim = handle.writer.claim(len).map_err(|e| write_failed(F, &e))?;
        claim.set_level(level);
        put(OpenClaim {
            writer: handle,
            forks: forks(),
            claim: ManuallyDrop::new(claim),
        });
        Ok(())
    })
}

/// Copies `len` bytes from `bytes` to the end of the calling thread's open claim on `w`.
/// `RINGLOG_TOO_LARGE` (nothing copied, the claim stays open) if they do not fit in what is
/// left of it; `RINGLOG_BAD_ARGUMENT` if this thread has no open claim on `w`.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `bytes` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ringlog_claim_write(
    w: *const ringlog_writer,
    bytes: *const c_void,
    len: usize,
) -> c_int {
    const F: &str = "ringlog_claim_write";
    guard(F, || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, F, "w") }?;
        // SAFETY: NULL or readable, per the contract.
        let bytes = unsafe { self::bytes(bytes, len, F, "bytes") }?;
        let mut open = take(w, F)?;
        let left = open.claim.remaining();
        let result = if bytes.len() > left {
            Err(fail(
                Status::RINGLOG_TOO_LARGE,
                format_args!(
                    "{F}: {} bytes do not fit in the {left} bytes left in the claim (nothing \
                     copied; the claim is still open)",
                    bytes.len()
                ),
            ))
        } else {
            open.claim
                .write_all(bytes)
                .map_err(|e| fail(Status::RINGLOG_IO, format_args!("{F}: {e}")))
        };
        put(open);
        result
    })
}

/// Stores in `*out` how many bytes the calling thread's open claim on `w` can still take.
///
/// # Safety
/// `w` is NULL or a handle not yet closed; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringlog_claim_remaining(
    w: *const ringlog_writer,
    out: *mut usize,
) -> c_int {
    const F: &str = "ringlog_claim_remaining";
    guard(F, || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, F, "w") }?;
        // SAFETY: NULL or writable, per the contract.
        let out = unsafe { arg_mut(out, F, "out") }?;
        let open = take(w, F)?;
        *out = open.claim.remaining();
        put(open);
        Ok(())
    })
}

/// Publishes the calling thread's open claim on `w`: one record of the bytes written into it.
///
/// # Safety
/// `w` is NULL or a handle not yet closed.
#[no_mangle]
pub unsafe extern "C" fn ringlog_commit(w: *const ringlog_writer) -> c_int {
    guard("ringlog_commit", || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, "ringlog_commit", "w") }?;
        let mut open = take(w, "ringlog_commit")?;
        // SAFETY: taken out once; `open` is then forgotten so its Drop does not touch it again.
        let claim = unsafe { ManuallyDrop::take(&mut open.claim) };
        std::mem::forget(open);
        claim.commit();
        Ok(())
    })
}

/// Withdraws the calling thread's open claim on `w`: nothing of it reaches the log.
///
/// # Safety
/// `w` is NULL or a handle not yet closed.
#[no_mangle]
pub unsafe extern "C" fn ringlog_abort(w: *const ringlog_writer) -> c_int {
    guard("ringlog_abort", || {
        // SAFETY: NULL or a live handle, per the contract.
        let w = unsafe { arg(w, "ringlog_abort", "w") }?;
        drop(take(w, "ringlog_abort")?);
        Ok(())
    })
}
