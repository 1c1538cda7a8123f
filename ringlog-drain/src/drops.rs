//! Drop reports: when producers dropped records on a full ring, the drain says so in the log,
//! one notice per producer, in the next batch. A report rides with its batch through the
//! checkpoint ([`ringlog_core::checkpoint`]), so it is made exactly once even across a crash.

use crate::drain::Drain;
use crate::pass::BatchEffects;
use ringlog_core::clock;

impl Drain {
    /// Appends one notice per producer that dropped records since the last report.
    pub(crate) fn collect_drop_reports(&mut self, effects: &mut BatchEffects) {
        let ring = self.consumer.ring();
        let events = ring.drop_events();
        if events == self.drop_events_seen {
            return;
        }
        for slot in 0..ring.slots() as u16 {
            if let Some(drops) = ring.unreported_drops(slot) {
                let text = format!(
                    "ringlog: dropped {} records from pid {} (ring full)",
                    drops.count, drops.pid
                );
                self.formatter
                    .notice(self.batch.buf(), clock::now_ns(), &text);
                effects.drop_reports.push((slot, drops.reported_after));
            }
        }
        effects.drop_events = Some(events);
    }
}
