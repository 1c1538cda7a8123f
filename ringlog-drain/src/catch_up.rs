//! When the drain writes on a second thread by itself ([`crate::WriteThread::Auto`], the
//! default): while it is behind, and only while the machine has a CPU for that thread.
//!
//! A drain that fell behind (a burst larger than the producers' pace, an output outage, a start
//! after a crash with the ring full) empties a large ring faster with a writing thread: it
//! copies the next batch out of the ring while the kernel copies the last into the page cache
//! (from a full 128 MiB ring, 119-120% of plain 1 MiB writes against one thread's 67-75%). A
//! drain that keeps up gains nothing from it, and where the producers keep the CPUs busy a third
//! runnable thread only takes turns with them: end to end on two vCPUs it was slower in most
//! rows. So a spell with the writing thread starts, after a batch, only when
//! - half the ring (the most the drain holds read and unreleased) holds at least
//!   [`MIN_BATCHES_IN_HALF_RING`] batches: on a smaller ring the threads wait for each other (on
//!   the default 4 MiB ring, two threads reached 31-66% of plain writes, one thread 87-93%);
//! - at least [`BACKLOG_BATCHES`] batches wait in the ring, committed or being written;
//! - a CPU is free: the drain's thread waited for a CPU less than a tenth of the time since it
//!   last looked (its run-queue delay, `/proc/thread-self/schedstat`), and fewer tasks are
//!   runnable on the machine right now than CPUs this process may use (`/proc/loadavg`, which
//!   counts the whole machine: a container whose host is busy stays one thread);
//!
//! and the spell ends when less than a batch waits after a pass (the drain caught up), or when
//! its two threads spent more than a tenth of a check interval waiting for a CPU (their
//! run-queue delay, `/proc/<tid>/schedstat`): then the drain tries again only after a hold-off
//! that doubles with every such spell, up to [`MAX_HOLD_OFF`]. Where `/proc` cannot tell, the
//! drain stays one thread (no free CPU seen), or keeps a spell to its backlog (delay unknown).

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Batches half the ring must hold for a spell.
pub(crate) const MIN_BATCHES_IN_HALF_RING: u64 = 8;
/// Batches waiting in the ring that start a spell.
pub(crate) const BACKLOG_BATCHES: u64 = 4;
/// How often a spell checks its threads' waits for a CPU; and how long the drain waits before it
/// looks for a free CPU again after finding none.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// The hold-off after the first spell that ended for want of a CPU.
const FIRST_HOLD_OFF: Duration = Duration::from_millis(20);
/// The longest hold-off.
pub(crate) const MAX_HOLD_OFF: Duration = Duration::from_secs(2);

/// What the drain learns about the machine's CPUs: from `/proc` ([`ProcProbe`]), or a script in
/// tests.
pub(crate) trait CpuProbe: Send + fmt::Debug {
    /// True when a CPU is free for one more thread of this process (called on the drain's
    /// reading thread).
    fn cpu_free(&mut self) -> bool;
    /// Nanoseconds the calling thread and thread `writer` have spent, so far, runnable and
    /// waiting for a CPU; `None` when that cannot be read.
    fn waited_ns(&mut self, writer: i32) -> Option<u64>;
    /// The spell is over: what was opened for it can go.
    fn spell_over(&mut self) {}
}

/// Decides when the writing thread starts and stops.
#[derive(Debug)]
pub(crate) struct CatchUp {
    probe: Box<dyn CpuProbe>,
    /// No look at the CPUs before this.
    not_before: Option<Instant>,
    /// The hold-off after the next spell that ends for want of a CPU.
    hold_off: Duration,
    /// The spell under way.
    spell: Option<Spell>,
    /// Spells so far.
    spells: u64,
    /// Spells that ended because the threads waited for a CPU.
    spells_short_of_cpu: u64,
}

/// A spell under way: the start of the current check interval and the threads' waits by then
/// (`None` until the writing thread's id is known).
#[derive(Debug)]
struct Spell {
    interval: Option<(Instant, u64)>,
}

/// Why a spell ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpellEnd {
    /// Less than a batch waits.
    CaughtUp,
    /// The threads waited for a CPU.
    NoCpu,
}

impl CatchUp {
    /// Looks at the CPUs through `/proc`.
    pub(crate) fn new() -> CatchUp {
        CatchUp::with_probe(Box::new(ProcProbe::new()))
    }

    pub(crate) fn with_probe(probe: Box<dyn CpuProbe>) -> CatchUp {
        CatchUp {
            probe,
            not_before: None,
            hold_off: FIRST_HOLD_OFF,
            spell: None,
            spells: 0,
            spells_short_of_cpu: 0,
        }
    }

    /// True during a spell.
    pub(crate) fn in_spell(&self) -> bool {
        self.spell.is_some()
    }

    /// Spells started so far, and how many of them ended because the threads waited for a CPU.
    pub(crate) fn spells(&self) -> (u64, u64) {
        (self.spells, self.spells_short_of_cpu)
    }

    /// One thread, after it wrote a batch: true to start a spell now. `half_ring`, `batch` and
    /// `backlog` (what waits in the ring) in bytes.
    pub(crate) fn should_start(
        &mut self,
        now: Instant,
        half_ring: u64,
        batch: u64,
        backlog: u64,
    ) -> bool {
        if self.spell.is_some()
            || half_ring < MIN_BATCHES_IN_HALF_RING * batch
            || backlog < BACKLOG_BATCHES * batch
            || self.not_before.is_some_and(|t| now < t)
        {
            return false;
        }
        if !self.probe.cpu_free() {
            self.not_before = Some(now + CHECK_EVERY);
            return false;
        }
        self.not_before = None;
        self.spell = Some(Spell { interval: None });
        self.spells += 1;
        true
    }

    /// Two threads, after a pass: why the spell should end now, if it should. `caught_up`: less
    /// than a batch waits; `writer`: the writing thread's id, once it has one.
    pub(crate) fn should_stop(
        &mut self,
        now: Instant,
        caught_up: bool,
        writer: Option<i32>,
    ) -> Option<SpellEnd> {
        if caught_up {
            self.hold_off = FIRST_HOLD_OFF;
            self.end();
            return Some(SpellEnd::CaughtUp);
        }
        let spell = self.spell.as_mut()?;
        let due = spell
            .interval
            .map_or(true, |(since, _)| now.duration_since(since) >= CHECK_EVERY);
        if !due {
            return None;
        }
        let waited = self.probe.waited_ns(writer?)?;
        match spell.interval.replace((now, waited)) {
            Some((since, before)) if contended(waited - before, now.duration_since(since)) => {
                self.not_before = Some(now + self.hold_off);
                self.hold_off = (self.hold_off * 2).min(MAX_HOLD_OFF);
                self.spells_short_of_cpu += 1;
                self.end();
                Some(SpellEnd::NoCpu)
            }
            _ => None,
        }
    }

    /// Ends the spell under way, if any (also when the drain stops).
    pub(crate) fn end(&mut self) {
        if self.spell.take().is_some() {
            self.probe.spell_over();
        }
    }
}

/// True when two threads waited for a CPU more than a tenth of their time over `interval`.
fn contended(waited_ns: u64, interval: Duration) -> bool {
    let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    waited_ns.saturating_mul(10) > interval_ns.saturating_mul(2)
}

/// The CPUs as `/proc` shows them.
#[derive(Debug)]
pub(crate) struct ProcProbe {
    /// CPUs this process may use (affinity and cgroup quota).
    cpus: u64,
    /// The calling (reading) thread's schedstat, and that thread's id: a drain may be moved to
    /// another thread between runs.
    reader: Option<(i32, File)>,
    /// When the reading thread last looked for a free CPU, and its run-queue delay then.
    last_look: Option<(Instant, u64)>,
    /// The writing thread's schedstat, open during a spell.
    writer: Option<(i32, File)>,
}

impl ProcProbe {
    pub(crate) fn new() -> ProcProbe {
        ProcProbe {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            reader: None,
            last_look: None,
            writer: None,
        }
    }

    /// The calling thread's run-queue delay so far.
    fn own_delay(&mut self) -> Option<u64> {
        let me = rustix::thread::gettid().as_raw_nonzero().get();
        if self.reader.as_ref().map(|(tid, _)| *tid) != Some(me) {
            self.reader = File::open("/proc/thread-self/schedstat")
                .ok()
                .map(|f| (me, f));
            self.last_look = None;
        }
        run_delay(&self.reader.as_ref()?.1)
    }
}

impl CpuProbe for ProcProbe {
    fn cpu_free(&mut self) -> bool {
        let now = Instant::now();
        let Some(delay) = self.own_delay() else {
            return false;
        };
        // The first look only takes a reading.
        let Some((then, before)) = self.last_look.replace((now, delay)) else {
            return false;
        };
        let waited = delay.saturating_sub(before);
        let elapsed = u64::try_from(now.duration_since(then).as_nanos()).unwrap_or(u64::MAX);
        if waited.saturating_mul(10) > elapsed {
            return false;
        }
        // The calling thread is one of the runnable tasks counted.
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        runnable_tasks(&loadavg).is_some_and(|runnable| runnable < self.cpus)
    }

    fn waited_ns(&mut self, writer: i32) -> Option<u64> {
        if self.writer.as_ref().map(|(tid, _)| *tid) != Some(writer) {
            let path = format!("/proc/self/task/{writer}/schedstat");
            self.writer = File::open(path).ok().map(|f| (writer, f));
        }
        let reader = self.own_delay()?;
        let writer = run_delay(&self.writer.as_ref()?.1)?;
        Some(reader + writer)
    }

    fn spell_over(&mut self) {
        self.writer = None;
    }
}

/// The tasks runnable now, from `/proc/loadavg` ("0.30 0.48 0.60 1/81 1404").
fn runnable_tasks(loadavg: &str) -> Option<u64> {
    let field = loadavg.split_whitespace().nth(3)?;
    field.split_once('/')?.0.parse().ok()
}

/// The run-queue delay from a thread's `schedstat` ("cpu ns, run-queue delay ns, slices"),
/// read afresh (a proc file read from offset 0 is regenerated).
fn run_delay(file: &File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = file.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// CPU answers set by the test.
    #[derive(Debug, Default)]
    pub(crate) struct Script {
        pub(crate) free: bool,
        pub(crate) waited_ns: u64,
        /// Added to `waited_ns` at every look at it.
        pub(crate) waits_per_look: u64,
        pub(crate) looks: u32,
    }

    #[derive(Debug, Clone, Default)]
    pub(crate) struct Scripted(pub(crate) Arc<Mutex<Script>>);

    impl CpuProbe for Scripted {
        fn cpu_free(&mut self) -> bool {
            let mut s = self.0.lock().unwrap();
            s.looks += 1;
            s.free
        }
        fn waited_ns(&mut self, _writer: i32) -> Option<u64> {
            let mut s = self.0.lock().unwrap();
            s.waited_ns += s.waits_per_look;
            Some(s.waited_ns)
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_spell_needs_a_large_ring_a_backlog_and_a_free_cpu() {
        let script = Scripted::default();
        let mut c = CatchUp::with_probe(Box::new(script.clone()));
        let t = Instant::now();
        script.0.lock().unwrap().free = true;
        // The default 4 MiB ring: never.
        assert!(!c.should_start(t, 2 * MIB, MIB, 4 * MIB));
        // A 16 MiB ring, a backlog under four batches: no.
        assert!(!c.should_start(t, 8 * MIB, MIB, 4 * MIB - 1));
        assert_eq!(script.0.lock().unwrap().looks, 0, "no look without need");
        // No free CPU: no, and no second look for a while.
        script.0.lock().unwrap().free = false;
        assert!(!c.should_start(t, 8 * MIB, MIB, 4 * MIB));
        script.0.lock().unwrap().free = true;
        assert!(!c.should_start(t + CHECK_EVERY / 2, 8 * MIB, MIB, 4 * MIB));
        assert_eq!(script.0.lock().unwrap().looks, 1);
        assert!(c.should_start(t + CHECK_EVERY, 8 * MIB, MIB, 4 * MIB));
        assert!(c.in_spell());
        assert_eq!(c.spells(), (1, 0));
    }

    #[test]
    fn a_spell_ends_when_caught_up_and_another_may_start_at_once() {
        let script = Scripted::default();
        script.0.lock().unwrap().free = true;
        let mut c = CatchUp::with_probe(Box::new(script.clone()));
        let t = Instant::now();
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB));
        assert_eq!(c.should_stop(t, false, Some(7)), None);
        assert_eq!(c.should_stop(t, true, Some(7)), Some(SpellEnd::CaughtUp));
        assert!(!c.in_spell());
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB));
        assert_eq!(c.spells(), (2, 0));
    }

    #[test]
    fn waiting_for_a_cpu_ends_a_spell_and_holds_off_longer_each_time() {
        let script = Scripted::default();
        script.0.lock().unwrap().free = true;
        let mut c = CatchUp::with_probe(Box::new(script.clone()));
        let mut t = Instant::now();
        let mut hold_offs = Vec::new();
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB));
        for _ in 0..12 {
            // Without the writer's id nothing is measured.
            assert_eq!(c.should_stop(t, false, None), None);
            assert_eq!(c.should_stop(t, false, Some(7)), None, "first reading");
            // A tenth of two threads' time waited, not more: the spell goes on.
            let waited = script.0.lock().unwrap().waited_ns;
            script.0.lock().unwrap().waited_ns = waited + 1_000_000;
            t += CHECK_EVERY;
            assert_eq!(c.should_stop(t, false, Some(7)), None);
            // More: it ends.
            script.0.lock().unwrap().waited_ns += 1_000_001;
            t += CHECK_EVERY;
            assert_eq!(c.should_stop(t, false, Some(7)), Some(SpellEnd::NoCpu));
            let ended = t;
            while !c.should_start(t, 64 * MIB, MIB, 10 * MIB) {
                t += Duration::from_millis(1);
            }
            hold_offs.push(t.duration_since(ended));
        }
        assert_eq!(c.spells(), (13, 12));
        assert_eq!(hold_offs[0], FIRST_HOLD_OFF);
        assert_eq!(hold_offs[1], FIRST_HOLD_OFF * 2);
        assert_eq!(*hold_offs.last().unwrap(), MAX_HOLD_OFF);
        // Catching up resets it.
        assert!(c.should_stop(t, true, Some(7)).is_some());
        script.0.lock().unwrap().waited_ns += 10_000_000;
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB));
        c.should_stop(t, false, Some(7));
        script.0.lock().unwrap().waited_ns += 10_000_000;
        t += CHECK_EVERY;
        assert_eq!(c.should_stop(t, false, Some(7)), Some(SpellEnd::NoCpu));
        assert!(!c.should_start(
            t + FIRST_HOLD_OFF - Duration::from_millis(1),
            64 * MIB,
            MIB,
            10 * MIB
        ));
        assert!(c.should_start(t + FIRST_HOLD_OFF, 64 * MIB, MIB, 10 * MIB));
    }

    #[test]
    fn proc_files_are_read_as_linux_writes_them() {
        assert_eq!(runnable_tasks("0.30 0.48 0.60 1/81 1404\n"), Some(1));
        assert_eq!(runnable_tasks("0.30 0.48 0.60 12/810 1404"), Some(12));
        assert_eq!(runnable_tasks("garbage"), None);
        // This machine's own: the calling thread is runnable, so at least one task is.
        let loadavg = std::fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
        assert!(runnable_tasks(&loadavg).unwrap() >= 1, "{loadavg}");
        // A thread's run-queue delay, read twice through one open file: a number each time,
        // never going back.
        let file = File::open("/proc/thread-self/schedstat").expect("schedstat");
        let first = run_delay(&file).expect("a run-queue delay");
        let mut spin = 0u64;
        for i in 0..1_000_000u64 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let second = run_delay(&file).expect("read again");
        assert!(second >= first);
        // The probe itself: its first look only takes a reading; a thread that just spun on an
        // otherwise quiet CPU waited for none (not asserted: the test's machine may be busy).
        let mut probe = ProcProbe::new();
        assert!(!probe.cpu_free(), "the first look cannot tell");
        assert!(probe.last_look.is_some());
        let me = rustix::thread::gettid().as_raw_nonzero().get();
        assert!(probe.waited_ns(me).is_some());
        probe.spell_over();
        assert!(probe.writer.is_none() && probe.reader.is_some());
    }

    /// Records from live producer threads through a 16 MiB ring, read by a drain running
    /// `run` with the default [`crate::WriteThread::Auto`] and a scripted view of the CPUs.
    /// Returns the drain's summary.
    fn drain_live_producers(script: Scripted) -> crate::DrainSummary {
        use crate::{Drain, DrainOptions, OutputSpec};
        use ringlog_core::Location;
        use ringlog_writer::{FullPolicy, Writer};
        use std::sync::atomic::{AtomicBool, Ordering};
        const PRODUCERS: u64 = 3;
        const PER_PRODUCER: u64 = 60_000;
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("ring");
        let out = dir.path().join("out.log");
        let mut options =
            DrainOptions::new(Location::Path(ring.clone()), OutputSpec::File(out.clone()));
        options.segment.capacity = Some(16 * MIB);
        assert_eq!(
            options.write_thread,
            crate::WriteThread::Auto,
            "the default"
        );
        let mut drain = Drain::open(options).unwrap();
        drain.catch_up = CatchUp::with_probe(Box::new(script.clone()));
        let (stop, reopen) = (AtomicBool::new(false), AtomicBool::new(false));
        let summary = std::thread::scope(|s| {
            let draining = s.spawn(|| drain.run(&stop, &reopen));
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let ring = &ring;
                    s.spawn(move || {
                        let writer = Writer::builder("unused")
                            .path(ring)
                            .capacity(16 * MIB)
                            .full_policy(FullPolicy::Block)
                            .open()
                            .unwrap();
                        let mut rec = Vec::new();
                        for seq in 0..PER_PRODUCER {
                            record(&mut rec, id, seq);
                            writer.write(&rec).unwrap();
                        }
                    })
                })
                .collect();
            for producer in producers {
                producer.join().unwrap();
            }
            // Relaxed: a request flag; `run` writes everything committed before it returns.
            stop.store(true, Ordering::Relaxed);
            draining.join().unwrap()
        });
        assert_eq!(summary.records, PRODUCERS * PER_PRODUCER);
        // Every record once, whole, in its producer's order.
        let text = std::fs::read(&out).unwrap();
        let mut next = [0u64; PRODUCERS as usize];
        let mut expected = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            let fields: Vec<&[u8]> = line.splitn(3, |&b| b == b' ').collect();
            let id: usize = std::str::from_utf8(fields[0]).unwrap().parse().unwrap();
            let seq: u64 = std::str::from_utf8(fields[1]).unwrap().parse().unwrap();
            assert_eq!(
                seq, next[id],
                "producer {id}: a record lost, repeated or reordered"
            );
            record(&mut expected, id as u64, seq);
            assert_eq!(line, &expected[..], "producer {id} record {seq} torn");
            next[id] += 1;
        }
        assert_eq!(next, [PER_PRODUCER; PRODUCERS as usize]);
        summary
    }

    /// Producer `id`'s record `seq`: its id, its number, and 0-4000 bytes of its own pattern.
    fn record(buf: &mut Vec<u8>, id: u64, seq: u64) {
        buf.clear();
        buf.extend_from_slice(format!("{id} {seq} ").as_bytes());
        let pad = (seq.wrapping_mul(2_654_435_761) >> 7) % 4000;
        buf.extend((0..pad).map(|i| b'a' + ((id + seq + i) % 26) as u8));
        buf.push(b'\n');
    }

    #[test]
    fn a_drain_behind_writes_on_a_second_thread_and_loses_nothing() {
        let script = Scripted::default();
        script.0.lock().unwrap().free = true;
        let summary = drain_live_producers(script.clone());
        // Three producers outrun one drain thread, at least at first: a backlog of four batches
        // builds and a CPU is "free", so a spell starts; the producers finish, the drain catches up.
        assert!(summary.write_thread_spells >= 1, "{summary:?}");
        assert_eq!(summary.write_thread_spells_short_of_cpu, 0, "{summary:?}");
    }

    #[test]
    fn a_drain_whose_threads_wait_for_a_cpu_goes_back_to_one_and_loses_nothing() {
        let script = Scripted::default();
        {
            let mut s = script.0.lock().unwrap();
            s.free = true;
            // Every check finds the two threads waited a whole interval.
            s.waits_per_look = 2 * CHECK_EVERY.as_nanos() as u64;
        }
        let summary = drain_live_producers(script.clone());
        assert!(summary.write_thread_spells_short_of_cpu >= 1, "{summary:?}");
    }

    #[test]
    fn no_free_cpu_no_spell() {
        let script = Scripted::default();
        let summary = drain_live_producers(script.clone());
        assert_eq!(summary.write_thread_spells, 0);
        assert!(script.0.lock().unwrap().looks >= 1, "it looked");
    }
}
