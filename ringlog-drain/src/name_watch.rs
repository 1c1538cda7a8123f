//! A segment whose name is removed or replaced under a running ring (see
//! [`crate::segment_name`]): every [`NAME_CHECK_EVERY`] the drain looks at the segment's path,
//! puts a removed name back, and otherwise drains the orphaned segment until its producers are
//! gone, then returns so the caller goes on with the segment at the ring's path. Each of these
//! is said in the log (a notice line) and to the operator (a [`DrainEvent`]).

use crate::drain::Drain;
use crate::events::DrainEvent;
use crate::segment_name::NameCheck;
use ringlog_core::layout::slot_lock_byte;
use ringlog_core::lock;
use ringlog_core::SlotState;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How often the drain looks at its segment's name (a `stat` and an `fstat`): a removed name is
/// put back within this, before a new producer is likely to create another segment there.
const NAME_CHECK_EVERY: Duration = Duration::from_millis(50);

impl Drain {
    /// True once this drain emptied a segment that lost its name (or one left behind) and its
    /// producers are gone: the caller goes on with the segment at the ring's path.
    pub fn finished_orphan(&self) -> bool {
        self.orphan_done
    }

    /// Once [`Drain::finished_orphan`]: removes the spare link that kept this segment (see
    /// [`crate::segment_name`]), if it still names it, so no later drain looks at it again.
    pub fn forget_spare(mut self) {
        use std::os::unix::fs::MetadataExt;
        let spare = match self.name.take() {
            Some(name) => crate::segment_name::spare_path(name.path()),
            // A segment left behind is opened at its spare link.
            None => self.segment().path().to_owned(),
        };
        let ours = self.segment().file().metadata();
        if let (Ok(a), Ok(b)) = (ours, std::fs::metadata(&spare)) {
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                crate::segment_name::forget(&spare);
            }
        }
    }

    /// Tells the operator, and says it in the log too: a notice line in the next batch written.
    pub(crate) fn notify(&mut self, event: DrainEvent) {
        let line = event.line(self.segment().name()).to_string();
        self.notices.push(line);
        self.events.emit(event);
    }

    /// Every [`NAME_CHECK_EVERY`]: is the segment still at its path? Puts it back if it was
    /// removed; if it cannot, the segment is an orphan (drained until its producers are gone).
    pub(crate) fn watch_name(&mut self) {
        if self.orphaned || self.last_name_check.elapsed() < NAME_CHECK_EVERY {
            return;
        }
        self.last_name_check = Instant::now();
        let Some(name) = &self.name else { return };
        let path = name.path().display().to_string();
        let (event, orphaned) = match name.check(self.segment().file()) {
            NameCheck::Intact => return,
            NameCheck::PutBack => (DrainEvent::SegmentNamePutBack { path }, false),
            NameCheck::Replaced => (DrainEvent::SegmentReplaced { path }, true),
            NameCheck::Lost(error) => (DrainEvent::SegmentNameLost { path, error }, true),
        };
        self.orphaned = orphaned;
        self.notify(event);
    }

    /// In an orphaned segment: true once no producer is attached (every attached slot's lock
    /// is free) and nothing is left to drain. Looked at every [`NAME_CHECK_EVERY`].
    pub(crate) fn orphan_finished(&mut self) -> bool {
        if !self.orphaned || self.last_name_check.elapsed() < NAME_CHECK_EVERY {
            return false;
        }
        self.last_name_check = Instant::now();
        self.segment_in_use().is_none()
    }

    /// Whether the segment may still get records: `Some(n)` with the producers attached now
    /// (whose slot lock is held; an error counts as held), also `Some(0)` if records wait in
    /// the ring; `None` if it is empty and nobody is attached.
    pub(crate) fn segment_in_use(&self) -> Option<usize> {
        let ring = self.ring();
        let fd = self.segment().file().as_fd();
        let producers = (0..ring.slots() as u16)
            .filter(|&slot| {
                ring.slot_info(slot).state == SlotState::Attached
                    && lock::is_locked(fd, slot_lock_byte(slot as u32)).unwrap_or(true)
            })
            .count();
        (producers > 0 || ring.tail() != ring.head()).then_some(producers)
    }
}
