//! `ringlog-drain stat`: a read-only snapshot of a ring (geometry, fill, counters, drain
//! liveness, producers, forwarding outputs). Opens the segment without creating it and changes
//! nothing. [`Snapshot`] is the typed result; its JSON (`--json`) is what scripts read and must
//! not change; its text is for people.

use crate::forward_status::{self, OutputStatus};
use ringlog_core::layout;
use ringlog_core::lock;
use ringlog_core::{Counters, Location, OpenError, Segment, SegmentOptions, SlotState};
use serde_json::{json, Value};
use std::fmt;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A ring's state at one moment, as `ringlog-drain stat` shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The ring's display name.
    pub ring: String,
    /// The segment file.
    pub path: PathBuf,
    /// Data region size in bytes.
    pub capacity: u64,
    /// Largest payload in bytes.
    pub max_record: u64,
    /// The drain's read position (monotonic byte count).
    pub head: u64,
    /// The producers' claim position (monotonic byte count).
    pub tail: u64,
    /// The drain's counters: records and bytes out, abandoned claims, stalls, corrupt frames.
    pub counters: Counters,
    /// The drain, running or not.
    pub drain: DrainStatus,
    /// Every registry slot in use, in slot order.
    pub producers: Vec<ProducerStatus>,
    /// The forwarding outputs of the running drain (empty without forwarding or drain).
    pub outputs: Vec<OutputStatus>,
    /// Rates since the previous snapshot (`stat --watch`, from its second snapshot on).
    pub rates: Option<Rates>,
}

/// The drain as `stat` sees it: its lock says whether it runs, its words who it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainStatus {
    /// A drain holds the ring's drain lock now.
    pub alive: bool,
    /// The last drain's pid (0 once it stopped cleanly).
    pub pid: u32,
    /// When it started, ns since the Unix epoch.
    pub started_ns: u64,
    /// When its loop last went round, ns since the Unix epoch.
    pub heartbeat_ns: u64,
}

/// One registry slot in use: a producer thread, attached or gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStatus {
    /// Registry slot.
    pub slot: u16,
    /// Owner process.
    pub pid: u32,
    /// Owner thread.
    pub tid: u32,
    /// The owner holds its slot lock (it is alive).
    pub alive: bool,
    /// Attached, given back, or left behind by an owner that died: what `alive` false means.
    pub state: ProducerState,
    /// Records committed by the current owner.
    pub written: u64,
    /// Records the current owner dropped on a full ring.
    pub dropped: u64,
    /// Claims of this slot the drain skipped because their owner died.
    pub abandoned: u64,
    /// Nanoseconds the owner spent blocked on a full ring.
    pub blocked_ns: u64,
    /// Since when the drain has been waiting for this producer's claim (ns since the epoch).
    pub stalled_since_ns: Option<u64>,
}

/// What became of a registry slot's owner: the slot's state word and its lock together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerState {
    /// The owner holds the slot and its lock: a live producer thread.
    Attached,
    /// The owner gave the slot back (its thread exited, or its writer was closed or dropped);
    /// its counters stay for `stat` until a new owner takes the slot.
    Detached,
    /// The owner died holding the slot (its lock is free, nobody gave it back): the drain skips
    /// its unfinished claim, if any, and counts it as abandoned.
    Dead,
    /// The slot's state word holds a value no ringlog writes: the segment is corrupt.
    Unknown,
}

impl ProducerState {
    /// The state of an in-use slot whose state word says `state`, its lock `locked` or not.
    pub fn of(state: SlotState, locked: bool) -> ProducerState {
        match state {
            // A detaching owner still holds the lock for a moment: it has given the slot back.
            SlotState::Detached => ProducerState::Detached,
            SlotState::Attached if locked => ProducerState::Attached,
            SlotState::Attached => ProducerState::Dead,
            SlotState::Free | SlotState::Unknown(_) => ProducerState::Unknown,
        }
    }

    /// Its name in `stat`'s text and JSON: `attached`, `detached`, `dead` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            ProducerState::Attached => "attached",
            ProducerState::Detached => "detached",
            ProducerState::Dead => "dead",
            ProducerState::Unknown => "unknown",
        }
    }
}

/// Throughput between two snapshots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Records written to the output per second.
    pub records_per_s: f64,
    /// Bytes written to the output per second.
    pub bytes_per_s: f64,
}

/// Takes the snapshot of ring `location`.
pub fn snapshot(location: &Location) -> Result<Snapshot, OpenError> {
    let segment = Segment::open(
        location,
        &SegmentOptions {
            create: false,
            populate: false,
            ..Default::default()
        },
    )?;
    let ring = segment.ring();
    let g = ring.geometry();
    let identity = ring.drain_identity();
    let fd = segment.file().as_fd();
    let producers = (0..ring.slots() as u16)
        .filter_map(|slot| {
            let s = ring.slot_info(slot);
            if s.state == SlotState::Free {
                return None;
            }
            let alive = lock::is_locked(fd, layout::slot_lock_byte(slot as u32)).unwrap_or(false);
            Some(ProducerStatus {
                slot,
                pid: s.pid,
                tid: s.tid,
                alive,
                state: ProducerState::of(s.state, alive),
                written: s.written.wrapping_sub(s.written_base),
                dropped: s.dropped.wrapping_sub(s.dropped_base),
                abandoned: s.abandoned,
                blocked_ns: s.blocked_ns,
                stalled_since_ns: (s.stall_since_ns != 0).then_some(s.stall_since_ns),
            })
        })
        .collect();
    Ok(Snapshot {
        ring: segment.name().to_owned(),
        path: segment.path().to_owned(),
        capacity: g.capacity,
        max_record: g.max_record,
        head: ring.head(),
        tail: ring.tail(),
        counters: ring.counters(),
        drain: DrainStatus {
            alive: lock::is_locked(fd, layout::DRAIN_LOCK_BYTE).unwrap_or(false),
            pid: identity.pid,
            started_ns: identity.started_ns,
            heartbeat_ns: identity.heartbeat_ns,
        },
        producers,
        outputs: forward_status::read(segment.path()).unwrap_or_default(),
        rates: None,
    })
}

impl Snapshot {
    /// Bytes claimed and not yet released.
    pub fn used(&self) -> u64 {
        self.tail.saturating_sub(self.head)
    }

    /// `used` as a fraction of the capacity.
    pub fn fill(&self) -> f64 {
        self.used() as f64 / self.capacity as f64
    }

    /// The `stat --json` document.
    pub fn to_json(&self) -> Value {
        let c = &self.counters;
        let d = &self.drain;
        let mut v = json!({
            "ring": self.ring,
            "path": self.path.to_string_lossy(),
            "capacity": self.capacity,
            "max_record": self.max_record,
            "head": self.head,
            "tail": self.tail,
            "used": self.used(),
            "fill": self.fill(),
            "records_out": c.records_out,
            "bytes_out": c.bytes_out,
            "abandoned": c.abandoned,
            "abandoned_bytes": c.abandoned_bytes,
            "stalls": c.stalls,
            "corrupt": c.corrupt,
            "drain": {
                "alive": d.alive,
                "pid": d.pid,
                "started_ns": d.started_ns,
                "heartbeat_ns": d.heartbeat_ns,
            },
            "producers": self.producers.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(OutputStatus::to_json).collect::<Vec<_>>(),
        });
        if let Some(r) = self.rates {
            v["records_per_s"] = json!(r.records_per_s);
            v["bytes_per_s"] = json!(r.bytes_per_s);
        }
        v
    }
}

impl ProducerStatus {
    fn to_json(self) -> Value {
        json!({
            "slot": self.slot,
            "pid": self.pid,
            "tid": self.tid,
            "alive": self.alive,
            "state": self.state.name(),
            "written": self.written,
            "dropped": self.dropped,
            "abandoned": self.abandoned,
            "blocked_ns": self.blocked_ns,
            "stalled_since_ns": self.stalled_since_ns,
        })
    }
}

/// The text `stat` prints for people: one line per fact, a label in the first ten columns, then
/// the producer and forwarding tables with their columns aligned (see [`write_table`]).
impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "ring      {} ({})",
            self.ring,
            self.path.to_string_lossy()
        )?;
        writeln!(
            f,
            "capacity  {} bytes, max record {} bytes, used {} ({:.1}%)",
            self.capacity,
            self.max_record,
            self.used(),
            self.fill() * 100.0
        )?;
        writeln!(f, "head/tail {} / {}", self.head, self.tail)?;
        writeln!(
            f,
            "written   {} records, {} bytes; abandoned {} ({} bytes); stalls {}; corrupt {}",
            c.records_out, c.bytes_out, c.abandoned, c.abandoned_bytes, c.stalls, c.corrupt
        )?;
        if self.drain.alive {
            writeln!(f, "drain     running, pid {}", self.drain.pid)?;
        } else {
            writeln!(f, "drain     not running")?;
        }
        self.write_producers(f)?;
        self.write_outputs(f)?;
        if let Some(r) = self.rates {
            writeln!(
                f,
                "rate      {:.0} records/s, {:.1} MB/s",
                r.records_per_s,
                r.bytes_per_s / 1e6
            )?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// The producers table (its header even when empty: "no producer" is worth seeing).
    fn write_producers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Align::{Left, Right};
        let rows: Vec<Row> = self
            .producers
            .iter()
            .map(|p| Row {
                cells: vec![
                    p.slot.to_string(),
                    p.pid.to_string(),
                    p.tid.to_string(),
                    p.state.name().to_owned(),
                    p.written.to_string(),
                    p.dropped.to_string(),
                    p.abandoned.to_string(),
                ],
                note: if p.stalled_since_ns.is_some() {
                    "STALLED"
                } else {
                    ""
                },
            })
            .collect();
        let columns = [
            ("slot", Right),
            ("pid", Right),
            ("tid", Right),
            ("state", Left),
            ("written", Right),
            ("dropped", Right),
            ("abandoned", Right),
        ];
        write_table(f, "producers", &columns, &rows)
    }

    /// The forwarding table, if the drain forwards.
    fn write_outputs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Align::{Left, Right};
        if self.outputs.is_empty() {
            return Ok(());
        }
        let rows: Vec<Row> = self
            .outputs
            .iter()
            .map(|o| Row {
                cells: vec![
                    o.destination.clone(),
                    o.sent.to_string(),
                    o.acknowledged.to_string(),
                    o.resent.to_string(),
                    o.pending.to_string(),
                    o.lag_bytes.to_string(),
                    o.last_error.clone().unwrap_or_else(|| "-".into()),
                ],
                note: "",
            })
            .collect();
        let columns = [
            ("destination", Left),
            ("sent", Right),
            ("acked", Right),
            ("resent", Right),
            ("pending", Right),
            ("lag bytes", Right),
            ("last error", Left),
        ];
        write_table(f, "forwarding", &columns, &rows)
    }
}

/// How a table column lines up its cells.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// One table row: its cells, and a note after the last one (empty for none).
struct Row {
    cells: Vec<String>,
    note: &'static str,
}

/// Space between two table columns.
const COLUMN_GAP: &str = "  ";
/// Columns the label of each line of the text takes ("ring      ", "drain     ").
const LABEL_WIDTH: usize = 10;

/// Writes a table of the text output: the header after `label` (padded to the
/// [`LABEL_WIDTH`] columns the other lines' labels take), one line per row below it; each column as wide as its widest
/// cell or heading, numbers right-aligned, so the columns stay aligned whatever the values.
fn write_table(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    columns: &[(&str, Align)],
    rows: &[Row],
) -> fmt::Result {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (heading, _))| {
            rows.iter()
                .map(|r| r.cells[i].chars().count())
                .fold(heading.chars().count(), usize::max)
        })
        .collect();
    // The other lines' labels take ten columns; a longer label one more, for a space.
    let indent = LABEL_WIDTH.max(label.len() + 1);
    let line = |first: &str, cells: &mut dyn Iterator<Item = &str>, note: &str| {
        let mut line = format!("{first:<indent$}");
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                line.push_str(COLUMN_GAP);
            }
            let width = widths[i];
            match columns[i].1 {
                Align::Left => line.push_str(&format!("{cell:<width$}")),
                Align::Right => line.push_str(&format!("{cell:>width$}")),
            }
        }
        if !note.is_empty() {
            line.push_str(COLUMN_GAP);
            line.push_str(note);
        }
        line.trim_end().to_owned()
    };
    writeln!(
        f,
        "{}",
        line(label, &mut columns.iter().map(|(h, _)| *h), "")
    )?;
    for row in rows {
        writeln!(
            f,
            "{}",
            line("", &mut row.cells.iter().map(String::as_str), row.note)
        )?;
    }
    Ok(())
}

/// Prints one snapshot, or one every `watch` interval with records/s and bytes/s since the
/// previous one (`records_per_s`, `bytes_per_s` in JSON), until interrupted.
pub fn run(location: &Location, json: bool, watch: Option<Duration>) -> Result<(), OpenError> {
    let mut previous: Option<(Instant, Counters)> = None;
    loop {
        let mut s = snapshot(location)?;
        let now = Instant::now();
        if let Some((then, before)) = previous {
            let secs = (now - then).as_secs_f64().max(1e-9);
            let per_s = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
            s.rates = Some(Rates {
                records_per_s: per_s(s.counters.records_out, before.records_out),
                bytes_per_s: per_s(s.counters.bytes_out, before.bytes_out),
            });
        }
        previous = Some((now, s.counters));
        if json {
            println!("{}", s.to_json());
        } else {
            print!("{s}");
        }
        let Some(interval) = watch else { return Ok(()) };
        if !json {
            println!();
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot with a value in every field, three producers (attached, dead and stalled,
    /// detached) and one output.
    fn example() -> Snapshot {
        let producer = ProducerStatus {
            slot: 0,
            pid: 4242,
            tid: 4243,
            alive: true,
            state: ProducerState::Attached,
            written: 100,
            dropped: 2,
            abandoned: 0,
            blocked_ns: 1500,
            stalled_since_ns: None,
        };
        Snapshot {
            ring: "app".into(),
            path: "/dev/shm/ringlog-app".into(),
            capacity: 1 << 20,
            max_record: 1 << 18,
            head: 4096,
            tail: 4096 + 3 * 8192,
            counters: Counters {
                records_out: 100,
                bytes_out: 12_800,
                abandoned: 1,
                abandoned_bytes: 160,
                stalls: 3,
                corrupt: 0,
            },
            drain: DrainStatus {
                alive: true,
                pid: 77,
                started_ns: 1_700_000_000_000_000_000,
                heartbeat_ns: 1_700_000_001_000_000_000,
            },
            producers: vec![
                producer,
                ProducerStatus {
                    slot: 12,
                    pid: 4300,
                    tid: 4301,
                    alive: false,
                    state: ProducerState::Dead,
                    abandoned: 1,
                    stalled_since_ns: Some(1_700_000_000_500_000_000),
                    ..producer
                },
                ProducerStatus {
                    slot: 13,
                    pid: 4400,
                    tid: 4401,
                    alive: false,
                    state: ProducerState::Detached,
                    written: 40,
                    dropped: 0,
                    blocked_ns: 0,
                    ..producer
                },
            ],
            outputs: vec![OutputStatus {
                destination: "relp://127.0.0.1:2514".into(),
                sent: 120,
                acknowledged: 100,
                resent: 5,
                pending: 20,
                lag_bytes: 2048,
                last_error: Some("connection refused".into()),
                last_ack_ns: 1_700_000_000_900_000_000,
            }],
            rates: None,
        }
    }

    /// The `--json` document as the `serde_json::Value` built by hand printed it before the
    /// snapshot was typed (keys sorted, `null` for a producer not stalled), byte for byte, plus
    /// each producer's `state` (added later: every other key kept its meaning).
    #[test]
    fn json_is_the_document_scripts_read() {
        let expected = concat!(
            r#"{"abandoned":1,"abandoned_bytes":160,"bytes_out":12800,"capacity":1048576,"#,
            r#""corrupt":0,"drain":{"alive":true,"heartbeat_ns":1700000001000000000,"pid":77,"#,
            r#""started_ns":1700000000000000000},"fill":0.0234375,"head":4096,"#,
            r#""max_record":262144,"outputs":[{"acknowledged":100,"destination":"#,
            r#""relp://127.0.0.1:2514","lag_bytes":2048,"last_ack_ns":1700000000900000000,"#,
            r#""last_error":"connection refused","pending":20,"resent":5,"sent":120}],"#,
            r#""path":"/dev/shm/ringlog-app","producers":[{"abandoned":0,"alive":true,"#,
            r#""blocked_ns":1500,"dropped":2,"pid":4242,"slot":0,"stalled_since_ns":null,"#,
            r#""state":"attached","tid":4243,"written":100},{"abandoned":1,"alive":false,"#,
            r#""blocked_ns":1500,"dropped":2,"pid":4300,"slot":12,"#,
            r#""stalled_since_ns":1700000000500000000,"state":"dead","tid":4301,"#,
            r#""written":100},{"abandoned":0,"alive":false,"blocked_ns":0,"dropped":0,"#,
            r#""pid":4400,"slot":13,"stalled_since_ns":null,"state":"detached","tid":4401,"#,
            r#""written":40}],"records_out":100,"ring":"app","stalls":3,"#,
            r#""tail":28672,"used":24576}"#
        );
        let mut s = example();
        assert_eq!(s.to_json().to_string(), expected);
        s.rates = Some(Rates {
            records_per_s: 2000.0,
            bytes_per_s: 256_000.5,
        });
        let with_rates = s.to_json().to_string();
        assert!(
            with_rates.starts_with(
                r#"{"abandoned":1,"abandoned_bytes":160,"bytes_out":12800,"bytes_per_s":256000.5,"#
            ) && with_rates.contains(r#""records_out":100,"records_per_s":2000.0,"ring""#),
            "{with_rates}"
        );
    }

    #[test]
    fn a_slot_given_back_is_detached_and_one_whose_owner_died_holding_it_is_dead() {
        use ProducerState::*;
        let of = ProducerState::of;
        assert_eq!(of(SlotState::Attached, true), Attached);
        assert_eq!(of(SlotState::Attached, false), Dead);
        assert_eq!(of(SlotState::Detached, false), Detached);
        // The owner is between giving it back and unlocking it.
        assert_eq!(of(SlotState::Detached, true), Detached);
        assert_eq!(of(SlotState::Unknown(7), true), Unknown);
    }

    /// The text for people: the tables' columns aligned.
    #[test]
    fn text_is_what_people_read() {
        let mut s = example();
        s.rates = Some(Rates {
            records_per_s: 2000.4,
            bytes_per_s: 256_000.0,
        });
        let expected = "\
ring      app (/dev/shm/ringlog-app)
capacity  1048576 bytes, max record 262144 bytes, used 24576 (2.3%)
head/tail 4096 / 28672
written   100 records, 12800 bytes; abandoned 1 (160 bytes); stalls 3; corrupt 0
drain     running, pid 77
producers slot   pid   tid  state     written  dropped  abandoned
             0  4242  4243  attached      100        2          0
            12  4300  4301  dead          100        2          1  STALLED
            13  4400  4401  detached       40        0          0
forwarding destination            sent  acked  resent  pending  lag bytes  last error
           relp://127.0.0.1:2514   120    100       5       20       2048  connection refused
rate      2000 records/s, 0.3 MB/s
";
        assert_eq!(s.to_string(), expected);
        s.drain.alive = false;
        s.outputs.clear();
        s.rates = None;
        let text = s.to_string();
        assert!(text.contains("drain     not running\n"), "{text}");
        assert!(
            !text.contains("forwarding") && !text.contains("rate"),
            "{text}"
        );
    }
}
