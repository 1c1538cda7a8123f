//! When the output is made durable: never (the kernel decides), after every batch, or at most
//! every interval, per [`FsyncPolicy`]; always before an idle sleep or a stop when something
//! was written under an interval policy.

use crate::drain::Drain;
use crate::events::DrainEvent;
use crate::options::FsyncPolicy;
use std::time::Instant;

/// Whether written bytes await an fsync, and when the last one was.
#[derive(Debug)]
pub(crate) struct Durability {
    policy: FsyncPolicy,
    last_sync: Instant,
    unsynced: bool,
}

impl Durability {
    pub(crate) fn new(policy: FsyncPolicy) -> Durability {
        Durability {
            policy,
            last_sync: Instant::now(),
            unsynced: false,
        }
    }

    /// A batch was written.
    pub(crate) fn wrote(&mut self) {
        self.unsynced = true;
    }

    /// Whether to fsync now; `force` syncs an interval policy early (idle, stop).
    fn due(&self, force: bool) -> bool {
        self.unsynced
            && match self.policy {
                FsyncPolicy::Never => false,
                FsyncPolicy::Batch => true,
                FsyncPolicy::Interval(d) => force || self.last_sync.elapsed() >= d,
            }
    }

    fn synced(&mut self) {
        self.last_sync = Instant::now();
        self.unsynced = false;
    }
}

impl crate::append::Appender {
    /// Syncs the output if the policy says it is time.
    pub(crate) fn sync_if_due(&mut self, force: bool) {
        if self.durability.due(force) {
            if let Err(e) = self.output.sync() {
                self.events.emit(DrainEvent::FsyncFailed(e));
            }
            self.durability.synced();
        }
    }
}

impl Drain {
    /// Syncs the output if the policy says it is time, unless the output is with the writing
    /// thread ([`crate::stage`]), which syncs it itself.
    pub(crate) fn sync_if_due(&mut self, force: bool) {
        if let Some(appender) = &mut self.appender {
            appender.sync_if_due(force);
        }
    }
}
