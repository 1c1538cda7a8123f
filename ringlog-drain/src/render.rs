//! One record into the batch: raw records as they are (large ones referenced in place, for a
//! zero-copy write), other formats through the [`crate::format::Formatter`]; tick stamps
//! converted to wall-clock time with a calibrated [`TickClock`].

use crate::batch::ZERO_COPY_MIN;
use crate::drain::Drain;
use ringlog_core::clock::TickClock;
use ringlog_core::fault;
use ringlog_core::frame::FLAG_TICKS;
use ringlog_core::memory::MappedMemory;
use ringlog_core::{RecordFrame, Ring};
use std::time::Duration;

/// How long the first calibration measures the TSC when no previous drain left a rate.
const CALIBRATION_WINDOW: Duration = Duration::from_millis(20);

/// The ticks-to-ns conversion, calibrated on first use (from the rate a previous drain left in
/// the header, else over [`CALIBRATION_WINDOW`]) and refreshed at most once per pass.
#[derive(Debug, Default)]
pub(crate) struct TickCalibration {
    clock: Option<TickClock>,
    refreshed: bool,
}

impl TickCalibration {
    /// A new pass: the clock may be refreshed once more.
    pub(crate) fn new_pass(&mut self) {
        self.refreshed = false;
    }

    fn clock(&mut self, ring: &Ring<MappedMemory>) -> &TickClock {
        match &mut self.clock {
            Some(clock) => {
                if !self.refreshed {
                    clock.refresh();
                    ring.store_ns_per_tick_hint(clock.ns_per_tick());
                }
            }
            None => {
                let hint = ring.ns_per_tick_hint();
                self.clock = Some(TickClock::calibrate(hint, CALIBRATION_WINDOW));
            }
        }
        self.refreshed = true;
        self.clock.as_ref().expect("set above")
    }
}

impl Drain {
    /// Appends `record` to the batch in the output format.
    pub(crate) fn render(&mut self, record: &RecordFrame) {
        let mut meta = *record.meta();
        if meta.flags & FLAG_TICKS != 0 && !self.formatter.is_raw() {
            meta.timestamp_ns = self
                .ticks
                .clock(self.consumer.ring())
                .to_ns(meta.timestamp_ns);
            meta.flags &= !FLAG_TICKS;
        }
        if self.formatter.is_raw() {
            self.render_raw(record);
        } else {
            let len = meta.payload_len as usize;
            self.scratch.resize(len, 0);
            self.consumer.read_payload(record, 0, &mut self.scratch);
            let (target, message) = self.scratch.split_at(meta.target_len as usize);
            self.formatter
                .record(self.batch.buf(), &meta, target, message);
        }
    }

    /// The message as it is, plus a newline unless it ends with one.
    fn render_raw(&mut self, record: &RecordFrame) {
        let consumer = &self.consumer;
        let meta = record.meta();
        let target_len = meta.target_len as usize;
        let len = meta.payload_len as usize;
        let message_len = len - target_len;
        // Large messages go from the ring to the kernel in place (zero-copy); test builds
        // armed with a fault keep every batch in the buffer so it can be split.
        let in_place = (message_len >= ZERO_COPY_MIN && !fault::active())
            .then(|| consumer.in_place(record, target_len, message_len))
            .flatten();
        match in_place {
            Some(piece) => self.batch.push_ring(piece),
            None => consumer.append_payload(record, target_len, message_len, self.batch.buf()),
        }
        // The last byte is read from the ring, not from the batch just written: reading back
        // a byte of a wide store that is still in flight stalls (store forwarding fails).
        let last = (message_len > 0).then(|| {
            let mut last = [0u8];
            consumer.read_payload(record, len - 1, &mut last);
            last[0]
        });
        if last != Some(b'\n') {
            self.batch.buf().push(b'\n');
        }
    }
}
