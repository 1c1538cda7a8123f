//! When the drain writes on a second thread by itself ([`crate::WriteThread::Auto`], the
//! default): while it is behind, and only while the second thread makes it faster.
//!
//! A drain that fell behind (a burst larger than the producers' pace, an output outage, a start
//! after a crash with the ring full) empties a large ring faster with a writing thread: it
//! copies the next batch out of the ring while the kernel copies the last into the page cache
//! (from a full 128 MiB ring, 119-120% of plain 1 MiB writes against one thread's 67-75%). A
//! drain that keeps up gains nothing from it, and where the producers keep the CPUs busy a third
//! runnable thread only takes turns with them: end to end on two vCPUs it was slower in most
//! rows. So a spell with the writing thread starts, after a batch, only when
//! - the batch was mostly copied out of the ring (records written in place have no copy to
//!   overlap: the caller checks);
//! - half the ring (the most the drain holds read and unreleased) holds at least
//!   [`MIN_BATCHES_IN_HALF_RING`] batches: on a smaller ring the threads wait for each other (on
//!   the default 4 MiB ring, two threads reached 31-66% of plain writes, one thread 87-93%);
//! - at least [`BACKLOG_BATCHES`] batches wait in the ring, and one thread's pace while that
//!   many waited has been measured (over a check interval, [`CHECK_EVERY`]; the last
//!   measurement stands until the next);
//! - a CPU is free: the drain's thread waited for a CPU less than a tenth of the time since it
//!   last looked (its run-queue delay, `/proc/thread-self/schedstat`), and fewer tasks are
//!   runnable on the machine right now than CPUs this process may use (`/proc/loadavg`, which
//!   counts the whole machine: a container whose host is busy stays one thread);
//!
//! and the spell ends when less than a batch waits after a pass (the drain caught up), or is cut
//! short, at a check every [`CHECK_EVERY`], when over the interval its two threads spent more
//! than a tenth of their time waiting for a CPU (`/proc/<tid>/schedstat`), or when since its
//! first check it handed off fewer bytes per second than [`NO_GAIN_SHARE`] of one thread's. After a spell cut short the drain tries again only
//! after a hold-off that doubles with every such spell, up to [`MAX_HOLD_OFF`]. Where `/proc`
//! cannot tell, the drain stays one thread (no free CPU seen), or judges a spell by its pace
//! alone.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Batches half the ring must hold for a spell.
const MIN_BATCHES_IN_HALF_RING: u64 = 8;
/// Batches waiting in the ring that start a spell.
const BACKLOG_BATCHES: u64 = 4;
/// How often a spell checks its pace and its threads' waits for a CPU; the least time one
/// thread's pace is measured over; and how long the drain waits before it looks for a free CPU
/// again after finding none.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// The hold-off after the first spell cut short.
const FIRST_HOLD_OFF: Duration = Duration::from_millis(20);
/// The longest hold-off.
const MAX_HOLD_OFF: Duration = Duration::from_secs(2);

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
    /// [`CHECK_EVERY`] (shorter in tests).
    check_every: Duration,
    /// No look at the CPUs before this.
    not_before: Option<Instant>,
    /// The hold-off after the next spell that is cut short.
    hold_off: Duration,
    /// Since when one thread has been behind, and what it had handed off by then (restarted at
    /// every measurement of its rate).
    behind: Option<Mark>,
    /// Bytes per second one thread wrote while behind, last measured.
    one_thread_rate: Option<f64>,
    /// The spell under way.
    spell: Option<Spell>,
    /// Spells so far.
    spells: u64,
    /// Spells cut short: the threads waited for a CPU, or were slower than one thread.
    spells_cut_short: u64,
    /// Spells end only once caught up (fault tests: [`CatchUp::new`]).
    eager: bool,
}

/// A moment of the drain's progress: the bytes it had handed off to be written by then.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: Instant,
    handed_off: u64,
}

impl Mark {
    /// Bytes per second from this mark to `later`, once they are at least `least` apart.
    fn rate_to(self, later: Mark, least: Duration) -> Option<f64> {
        let elapsed = later.at.duration_since(self.at);
        (elapsed >= least).then(|| {
            later.handed_off.saturating_sub(self.handed_off) as f64 / elapsed.as_secs_f64()
        })
    }
}

/// A spell under way.
#[derive(Debug)]
struct Spell {
    /// The first check: the spell's pace is measured from here (its start, thread start-up and
    /// a filling queue, would flatter it).
    first: Option<Mark>,
    /// The start of the current check interval, with the two threads' waits for a CPU by then
    /// (when known).
    interval: Option<(Mark, Option<u64>)>,
}

/// A spell whose pace is under this share of one thread's is cut short: a margin for the noise of
/// measuring both over a few milliseconds.
const NO_GAIN_SHARE: f64 = 0.8;

/// Why a spell ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpellEnd {
    /// Less than a batch waits.
    CaughtUp,
    /// The threads waited for a CPU, or were slower than one thread.
    CutShort,
}

impl CatchUp {
    /// Looks at the CPUs through `/proc`; in a fault-armed build told so
    /// ([`ringlog_core::fault::eager_spells`]), sees one free always and never cuts a spell
    /// short.
    pub(crate) fn new() -> CatchUp {
        if ringlog_core::fault::eager_spells() {
            return CatchUp {
                eager: true,
                ..CatchUp::with_probe(Box::new(FreeCpu))
            };
        }
        CatchUp::with_probe(Box::new(ProcProbe::new()))
    }

    pub(crate) fn with_probe(probe: Box<dyn CpuProbe>) -> CatchUp {
        CatchUp {
            probe,
            check_every: CHECK_EVERY,
            not_before: None,
            hold_off: FIRST_HOLD_OFF,
            behind: None,
            one_thread_rate: None,
            spell: None,
            spells: 0,
            spells_cut_short: 0,
            eager: false,
        }
    }

    /// True during a spell.
    pub(crate) fn in_spell(&self) -> bool {
        self.spell.is_some()
    }

    /// Spells started so far, and how many of them were cut short.
    pub(crate) fn spells(&self) -> (u64, u64) {
        (self.spells, self.spells_cut_short)
    }

    /// One thread, after it wrote a batch: true to start a spell now. `half_ring`, `batch` and
    /// `backlog` (what waits in the ring) in bytes; `handed_off`: bytes written so far (one
    /// thread hands each batch to its own write).
    pub(crate) fn should_start(
        &mut self,
        now: Instant,
        half_ring: u64,
        batch: u64,
        backlog: u64,
        handed_off: u64,
    ) -> bool {
        if self.spell.is_some() {
            return false;
        }
        if half_ring < MIN_BATCHES_IN_HALF_RING * batch || backlog < BACKLOG_BATCHES * batch {
            self.behind = None;
            return false;
        }
        // What one thread does while behind is the bar a spell must clear.
        let mark = Mark {
            at: now,
            handed_off,
        };
        match self
            .behind
            .map(|since| since.rate_to(mark, self.check_every))
        {
            None => self.behind = Some(mark),
            Some(Some(rate)) => {
                self.one_thread_rate = Some(rate);
                self.behind = Some(mark);
            }
            Some(None) => {}
        }
        if self.one_thread_rate.is_none() || self.not_before.is_some_and(|t| now < t) {
            return false;
        }
        if !self.probe.cpu_free() {
            self.not_before = Some(now + self.check_every);
            return false;
        }
        self.not_before = None;
        self.behind = None;
        self.spell = Some(Spell {
            first: None,
            interval: None,
        });
        self.spells += 1;
        true
    }

    /// Two threads, after a pass: why the spell should end now, if it should. `caught_up`: less
    /// than a batch waits; `writer`: the writing thread's id, once it has one; `handed_off`:
    /// bytes handed to the writing thread so far (at most a few batches ahead of it).
    pub(crate) fn should_stop(
        &mut self,
        now: Instant,
        caught_up: bool,
        writer: Option<i32>,
        handed_off: u64,
    ) -> Option<SpellEnd> {
        if caught_up {
            self.hold_off = FIRST_HOLD_OFF;
            self.end();
            return Some(SpellEnd::CaughtUp);
        }
        if self.eager {
            return None;
        }
        let spell = self.spell.as_mut()?;
        if spell
            .interval
            .is_some_and(|(start, _)| now.duration_since(start.at) < self.check_every)
        {
            return None;
        }
        let mark = Mark {
            at: now,
            handed_off,
        };
        let first = *spell.first.get_or_insert(mark);
        let waited = writer.and_then(|w| self.probe.waited_ns(w));
        let (start, waited_before) = spell.interval.replace((mark, waited))?;
        let short_of_cpu = match (waited_before, waited) {
            (Some(before), Some(waited)) => {
                contended(waited.saturating_sub(before), now.duration_since(start.at))
            }
            _ => false,
        };
        let no_gain = match (first.rate_to(mark, self.check_every), self.one_thread_rate) {
            (Some(rate), Some(one_thread)) => rate < one_thread * NO_GAIN_SHARE,
            _ => false,
        };
        if !(short_of_cpu || no_gain) {
            return None;
        }
        self.not_before = Some(now + self.hold_off);
        self.hold_off = (self.hold_off * 2).min(MAX_HOLD_OFF);
        self.spells_cut_short += 1;
        self.end();
        Some(SpellEnd::CutShort)
    }

    /// Ends the spell under way, if any (also when the drain stops).
    pub(crate) fn end(&mut self) {
        if self.spell.take().is_some() {
            self.probe.spell_over();
        }
    }
}

/// A CPU always free, threads that never wait (as far as anyone can tell): for fault tests that
/// must reach the points inside a spell on any machine ([`CatchUp::new`]).
#[derive(Debug)]
struct FreeCpu;

impl CpuProbe for FreeCpu {
    fn cpu_free(&mut self) -> bool {
        true
    }
    fn waited_ns(&mut self, _writer: i32) -> Option<u64> {
        None
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
    /// Bytes one thread hands off in one check interval in these tests (1 GB/s).
    const ONE_THREAD: u64 = 5_000_000;

    /// A catch-up with a free CPU that has seen one thread behind for one interval, at 1 GB/s:
    /// a spell may start at the returned time, with this much handed off.
    fn measured(script: &Scripted) -> (CatchUp, Instant, u64) {
        script.0.lock().unwrap().free = true;
        let mut c = CatchUp::with_probe(Box::new(script.clone()));
        let t = Instant::now();
        assert!(
            !c.should_start(t, 64 * MIB, MIB, 10 * MIB, 0),
            "no rate yet"
        );
        (c, t + CHECK_EVERY, ONE_THREAD)
    }

    #[test]
    fn a_spell_needs_a_large_ring_a_backlog_a_measured_pace_and_a_free_cpu() {
        let script = Scripted::default();
        let mut c = CatchUp::with_probe(Box::new(script.clone()));
        let t = Instant::now();
        script.0.lock().unwrap().free = true;
        // The default 4 MiB ring: never.
        assert!(!c.should_start(t, 2 * MIB, MIB, 4 * MIB, 0));
        // A 16 MiB ring, a backlog under four batches: no.
        assert!(!c.should_start(t, 8 * MIB, MIB, 4 * MIB - 1, 0));
        // Behind, but one thread's pace is not known yet: no, until an interval has passed.
        assert!(!c.should_start(t, 8 * MIB, MIB, 4 * MIB, 0));
        assert!(!c.should_start(t + CHECK_EVERY / 2, 8 * MIB, MIB, 4 * MIB, MIB));
        assert_eq!(
            script.0.lock().unwrap().looks,
            0,
            "no look at the CPUs without need"
        );
        // No free CPU: no, and no second look for a while.
        script.0.lock().unwrap().free = false;
        let t = t + CHECK_EVERY;
        assert!(!c.should_start(t, 8 * MIB, MIB, 4 * MIB, ONE_THREAD));
        script.0.lock().unwrap().free = true;
        assert!(!c.should_start(t + CHECK_EVERY / 2, 8 * MIB, MIB, 4 * MIB, ONE_THREAD));
        assert_eq!(script.0.lock().unwrap().looks, 1);
        assert!(c.should_start(t + CHECK_EVERY, 8 * MIB, MIB, 4 * MIB, 2 * ONE_THREAD));
        assert!(c.in_spell());
        assert_eq!(c.spells(), (1, 0));
    }

    #[test]
    fn a_spell_ends_when_caught_up_and_another_may_start_at_once() {
        let script = Scripted::default();
        let (mut c, t, done) = measured(&script);
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        assert_eq!(c.should_stop(t, false, Some(7), done), None);
        assert_eq!(
            c.should_stop(t, true, Some(7), done),
            Some(SpellEnd::CaughtUp)
        );
        assert!(!c.in_spell());
        // The pace measured before still stands.
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        assert_eq!(c.spells(), (2, 0));
    }

    #[test]
    fn a_spell_goes_on_while_it_is_faster_than_one_thread_and_its_threads_rarely_wait() {
        let script = Scripted::default();
        let (mut c, mut t, mut done) = measured(&script);
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        // Without the writer's id the waits are not measured; the first check takes readings.
        assert_eq!(c.should_stop(t, false, None, done), None);
        for _ in 0..20 {
            t += CHECK_EVERY;
            done += ONE_THREAD + ONE_THREAD / 10;
            // A tenth of two threads' time waited, not more.
            script.0.lock().unwrap().waited_ns += 1_000_000;
            assert_eq!(c.should_stop(t, false, Some(7), done), None);
            // Checks come once an interval, whatever the passes in between.
            assert_eq!(
                c.should_stop(t + CHECK_EVERY / 2, false, Some(7), done),
                None
            );
        }
        assert!(c.in_spell());
    }

    #[test]
    fn a_spell_slower_than_one_thread_is_cut_short() {
        let script = Scripted::default();
        let (mut c, mut t, mut done) = measured(&script);
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        // A fast start is not counted: the pace is taken from the first check on.
        done += 10 * ONE_THREAD;
        assert_eq!(c.should_stop(t, false, Some(7), done), None);
        // Within the margin: goes on.
        t += CHECK_EVERY;
        done += ONE_THREAD * 8 / 10;
        assert_eq!(c.should_stop(t, false, Some(7), done), None);
        // Below it, over the spell since its first check: cut short.
        t += CHECK_EVERY;
        done += ONE_THREAD * 7 / 10;
        assert_eq!(
            c.should_stop(t, false, Some(7), done),
            Some(SpellEnd::CutShort)
        );
        assert_eq!(c.spells(), (1, 1));
    }

    #[test]
    fn threads_waiting_for_a_cpu_cut_a_spell_short_and_hold_off_longer_each_time() {
        let script = Scripted::default();
        let (mut c, mut t, mut done) = measured(&script);
        let mut hold_offs = Vec::new();
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        for _ in 0..12 {
            assert_eq!(
                c.should_stop(t, false, Some(7), done),
                None,
                "first readings"
            );
            // Faster than one thread, but more than a tenth of two threads' time waited.
            script.0.lock().unwrap().waited_ns += 1_000_001;
            t += CHECK_EVERY;
            done += 2 * ONE_THREAD;
            assert_eq!(
                c.should_stop(t, false, Some(7), done),
                Some(SpellEnd::CutShort)
            );
            let ended = t;
            while !c.should_start(t, 64 * MIB, MIB, 10 * MIB, done) {
                t += Duration::from_millis(1);
            }
            hold_offs.push(t.duration_since(ended));
        }
        assert_eq!(c.spells(), (13, 12));
        assert_eq!(hold_offs[0], FIRST_HOLD_OFF);
        assert_eq!(hold_offs[1], FIRST_HOLD_OFF * 2);
        assert_eq!(*hold_offs.last().unwrap(), MAX_HOLD_OFF);
        // Catching up resets it.
        assert!(c.should_stop(t, true, Some(7), done).is_some());
        assert!(c.should_start(t, 64 * MIB, MIB, 10 * MIB, done));
        c.should_stop(t, false, Some(7), done);
        script.0.lock().unwrap().waited_ns += 10_000_000;
        t += CHECK_EVERY;
        done += 2 * ONE_THREAD;
        assert_eq!(
            c.should_stop(t, false, Some(7), done),
            Some(SpellEnd::CutShort)
        );
        let early = t + FIRST_HOLD_OFF - Duration::from_millis(1);
        assert!(!c.should_start(early, 64 * MIB, MIB, 10 * MIB, done));
        assert!(c.should_start(t + FIRST_HOLD_OFF, 64 * MIB, MIB, 10 * MIB, done));
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

    /// Records from three producer threads, half of them written before the drain starts (a
    /// backlog of ~60 MB in a 128 MiB ring), the rest while it runs `run` with the default
    /// [`crate::WriteThread::Auto`], a scripted view of the CPUs and 1 ms check intervals.
    fn drain_live_producers(script: Scripted) -> crate::DrainSummary {
        use crate::{Drain, DrainOptions, OutputSpec};
        use ringlog_core::Location;
        use ringlog_writer::{FullPolicy, Writer};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Barrier;
        const PRODUCERS: u64 = 3;
        const PER_PRODUCER: u64 = 20_000;
        const RING: u64 = 128 * MIB;
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let ring = shm.path().join("ring");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let mut options =
            DrainOptions::new(Location::Path(ring.clone()), OutputSpec::File(out.clone()));
        options.segment.capacity = Some(RING);
        assert_eq!(
            options.write_thread,
            crate::WriteThread::Auto,
            "the default"
        );
        let mut drain = Drain::open(options).unwrap();
        drain.catch_up = CatchUp::with_probe(Box::new(script.clone()));
        drain.catch_up.check_every = Duration::from_millis(1);
        let (stop, reopen) = (AtomicBool::new(false), AtomicBool::new(false));
        let half_written = Barrier::new(PRODUCERS as usize + 1);
        let summary = std::thread::scope(|s| {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|id| {
                    let (ring, half_written) = (&ring, &half_written);
                    s.spawn(move || {
                        let writer = Writer::builder("unused")
                            .path(ring)
                            .capacity(RING)
                            .full_policy(FullPolicy::Block)
                            .open()
                            .unwrap();
                        let mut rec = Vec::new();
                        for seq in 0..PER_PRODUCER {
                            if seq == PER_PRODUCER / 2 {
                                half_written.wait();
                            }
                            record(&mut rec, id, seq);
                            writer.write(&rec).unwrap();
                        }
                    })
                })
                .collect();
            half_written.wait();
            let draining = s.spawn(|| drain.run(&stop, &reopen));
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
        // Behind by far more than four batches, and a CPU is "free": a spell starts once one
        // thread's pace is measured. (Whether it stays faster than one thread depends on the
        // machine running the test: not asserted.)
        assert!(summary.write_thread_spells >= 1, "{summary:?}");
    }

    #[test]
    fn a_drain_whose_threads_wait_for_a_cpu_goes_back_to_one_and_loses_nothing() {
        let script = Scripted::default();
        {
            let mut s = script.0.lock().unwrap();
            s.free = true;
            // Every check finds the two threads waited a whole (1 ms) interval or more.
            s.waits_per_look = 2_000_000;
        }
        let summary = drain_live_producers(script.clone());
        assert!(summary.write_thread_spells_cut_short >= 1, "{summary:?}");
    }

    #[test]
    fn no_free_cpu_no_spell() {
        let script = Scripted::default();
        let summary = drain_live_producers(script.clone());
        assert_eq!(summary.write_thread_spells, 0);
        assert!(script.0.lock().unwrap().looks >= 1, "it looked");
    }
}
