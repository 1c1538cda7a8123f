//! Fault injection for tests: named points on the producer's and the drain's paths where a test
//! build can kill or stop the process, to prove each crash window is survivable, or park a
//! thread (a hook of its own, [`set_hook`]) to force an interleaving.
//!
//! [`hit`] is an empty inline function unless the `fault-injection` cargo feature is on; with
//! it, it calls the hook a test binary installed with [`set_hook`]. Production builds carry
//! nothing.

/// A point where a crash, or another thread's step, is interesting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// Producer: the tail CAS succeeded, the frame header is not written yet.
    AfterClaimCas,
    /// Producer: the record header is written, the wrap padding in front of it is not.
    BeforePadding,
    /// Producer: claimed with header written, payload not copied.
    BeforeCopy,
    /// Producer: part of the payload copied.
    MidCopy,
    /// Producer: payload copied, not committed.
    BeforeCommit,
    /// Drain: batch intent stored, nothing written.
    DrainIntentStored,
    /// Drain: half the batch written.
    DrainHalfWritten,
    /// Drain: the append returned whole, the checkpoint does not say so yet (a window of a
    /// few instructions).
    DrainWrittenNotMarked,
    /// Drain: batch written and marked so, space not released.
    DrainWrittenBeforeRelease,
    /// Drain: batch written and its space released, the counters and checkpoint not updated.
    DrainReleased,
    /// Drain writing on a second thread: the reading thread has just queued a batch for the
    /// writing thread, which may still be writing earlier ones.
    DrainBatchQueued,
    /// Producer (open-once path): a fresh lock descriptor is open, not yet registered to be
    /// closed in children after `fork()`.
    LockFdOpened,
    /// Producer: a `fork()` by another thread waits (in its prepare handler) for a lock
    /// descriptor being opened to be registered.
    ForkWaitsForOpen,
    /// Producer: its chunk is sealed, the padding over the chunk's rest not written yet.
    ChunkSealed,
    /// Drain: it sealed a producer's idle chunk, the padding over the rest not written yet.
    DrainChunkSealed,
    /// Drain: a claim it found uncommitted has waited long enough; it is about to ask whether
    /// the claim's owner is alive.
    DrainBeforeVerdict,
}

impl Point {
    /// All points, for parsing and test matrices.
    pub const ALL: [Point; 16] = [
        Point::AfterClaimCas,
        Point::BeforePadding,
        Point::BeforeCopy,
        Point::MidCopy,
        Point::BeforeCommit,
        Point::DrainIntentStored,
        Point::DrainHalfWritten,
        Point::DrainWrittenNotMarked,
        Point::DrainWrittenBeforeRelease,
        Point::DrainReleased,
        Point::DrainBatchQueued,
        Point::LockFdOpened,
        Point::ForkWaitsForOpen,
        Point::ChunkSealed,
        Point::DrainChunkSealed,
        Point::DrainBeforeVerdict,
    ];

    /// Kebab-case name, as used on command lines (`after-claim-cas`).
    pub fn name(self) -> &'static str {
        match self {
            Point::AfterClaimCas => "after-claim-cas",
            Point::BeforePadding => "before-padding",
            Point::BeforeCopy => "before-copy",
            Point::MidCopy => "mid-copy",
            Point::BeforeCommit => "before-commit",
            Point::DrainIntentStored => "drain-intent-stored",
            Point::DrainHalfWritten => "drain-half-written",
            Point::DrainWrittenNotMarked => "drain-written-not-marked",
            Point::DrainWrittenBeforeRelease => "drain-written-before-release",
            Point::DrainReleased => "drain-released",
            Point::DrainBatchQueued => "drain-batch-queued",
            Point::LockFdOpened => "lock-fd-opened",
            Point::ForkWaitsForOpen => "fork-waits-for-open",
            Point::ChunkSealed => "chunk-sealed",
            Point::DrainChunkSealed => "drain-chunk-sealed",
            Point::DrainBeforeVerdict => "drain-before-verdict",
        }
    }

    /// Inverse of [`Point::name`].
    pub fn parse(s: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// True when this build has fault injection compiled in.
pub const ENABLED: bool = cfg!(feature = "fault-injection");

#[cfg(feature = "fault-injection")]
static HOOK: std::sync::OnceLock<fn(Point)> = std::sync::OnceLock::new();

/// Installs the process's fault hook (once). Without the feature this does nothing.
pub fn set_hook(hook: fn(Point)) {
    #[cfg(feature = "fault-injection")]
    let _ = HOOK.set(hook);
    #[cfg(not(feature = "fault-injection"))]
    let _ = hook;
}

/// True when a hook is installed (lets a caller split work to expose a point).
#[inline(always)]
pub fn active() -> bool {
    #[cfg(feature = "fault-injection")]
    return HOOK.get().is_some();
    #[cfg(not(feature = "fault-injection"))]
    false
}

/// Passes point `p`: calls the hook, if any.
#[inline(always)]
pub fn hit(p: Point) {
    #[cfg(feature = "fault-injection")]
    if let Some(hook) = HOOK.get() {
        hook(p)
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = p;
}

/// What an armed point does when reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `SIGKILL` the process.
    Kill,
    /// `SIGSTOP` the process (a test sends `SIGCONT`).
    Stop,
}

#[cfg(feature = "fault-injection")]
mod armed {
    use super::{Action, Point};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

    pub(super) static POINT: AtomicUsize = AtomicUsize::new(usize::MAX);
    pub(super) static ACTION: AtomicUsize = AtomicUsize::new(0);
    pub(super) static NTH: AtomicU64 = AtomicU64::new(0);
    pub(super) static EAGER_SPELLS: AtomicBool = AtomicBool::new(false);
    static SEEN: AtomicU64 = AtomicU64::new(0);

    pub(super) fn hook(p: Point) {
        // Relaxed: test instrumentation; the counts are per process.
        if Point::ALL.get(POINT.load(Ordering::Relaxed)) != Some(&p) {
            return;
        }
        if SEEN.fetch_add(1, Ordering::Relaxed) + 1 != NTH.load(Ordering::Relaxed) {
            return;
        }
        let signal = if ACTION.load(Ordering::Relaxed) == Action::Kill as usize {
            libc::SIGKILL
        } else {
            libc::SIGSTOP
        };
        // SAFETY: raise(3) has no memory-safety preconditions.
        unsafe { libc::raise(signal) };
    }
}

/// Arms one point from a spec `POINT:ACTION:N` (e.g. `before-commit:kill:1000`): the N-th time
/// this process reaches POINT, it gets `SIGKILL` or `SIGSTOP`.
pub fn arm(spec: &str) -> Result<(), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [point, action, nth] = parts[..] else {
        return Err(format!("fault spec {spec:?} is not POINT:ACTION:N"));
    };
    let point = Point::parse(point).ok_or_else(|| {
        let names: Vec<_> = Point::ALL.iter().map(|p| p.name()).collect();
        format!("unknown fault point {point:?}: one of {}", names.join(", "))
    })?;
    let action = match action {
        "kill" => Action::Kill,
        "stop" => Action::Stop,
        _ => return Err(format!("unknown fault action {action:?}: kill or stop")),
    };
    let nth: u64 = nth
        .parse()
        .map_err(|_| format!("fault count {nth:?} is not a number"))?;
    #[cfg(feature = "fault-injection")]
    {
        use std::sync::atomic::Ordering;
        let index = Point::ALL.iter().position(|&p| p == point).expect("listed");
        // Relaxed: set before the hook is installed (OnceLock publishes it).
        armed::POINT.store(index, Ordering::Relaxed);
        armed::ACTION.store(action as usize, Ordering::Relaxed);
        armed::NTH.store(nth, Ordering::Relaxed);
        set_hook(armed::hook);
        Ok(())
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = (point, action, nth);
        Err("this build has no fault injection (build with the fault-injection feature)".into())
    }
}

/// Arms the point the `RINGLOG_FAULT` environment variable names (a spec as for [`arm`]), if it
/// is set; `RINGLOG_FAULT_SPELLS=eager` also makes [`eager_spells`] true. Without the
/// `fault-injection` feature this does nothing and reads no environment: a production binary
/// ignores the variables and carries not even their names.
pub fn arm_from_env() -> Result<(), String> {
    #[cfg(feature = "fault-injection")]
    {
        match std::env::var("RINGLOG_FAULT_SPELLS").as_deref() {
            Ok("eager") => {
                // Relaxed: set once at start-up, before the drain's threads exist.
                armed::EAGER_SPELLS.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(other) => return Err(format!("RINGLOG_FAULT_SPELLS: {other:?} is not \"eager\"")),
            Err(_) => {}
        }
        if let Ok(spec) = std::env::var("RINGLOG_FAULT") {
            return arm(&spec).map_err(|e| format!("RINGLOG_FAULT: {e}"));
        }
    }
    Ok(())
}

/// True when a test told the drain to make its spells with a writing thread eager
/// (`RINGLOG_FAULT_SPELLS=eager`): to see a CPU free whenever it looks, and to end a spell only
/// once it has caught up, never cut it short, so that the points inside a spell are reached on
/// any machine, however loaded. Always false without the feature.
pub fn eager_spells() -> bool {
    #[cfg(feature = "fault-injection")]
    return armed::EAGER_SPELLS.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "fault-injection"))]
    false
}
