//! `ringlog-drain stat`: a read-only snapshot of a ring (geometry, fill, counters, drain
//! liveness, producers). Opens the segment without creating it and changes nothing.

use ringlog_core::layout::{self, SLOT_FREE};
use ringlog_core::lock;
use ringlog_core::{Location, OpenError, Segment, SegmentOptions};
use serde_json::json;
use std::os::fd::AsFd;

/// Builds the snapshot of ring `location` as JSON.
pub fn snapshot(location: &Location) -> Result<serde_json::Value, OpenError> {
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
    let counters = ring.counters();
    let drain = ring.drain_identity();
    let (head, tail) = (ring.head(), ring.tail());
    let fd = segment.file().as_fd();
    let drain_alive = lock::is_locked(fd, layout::DRAIN_LOCK_BYTE).unwrap_or(false);
    let mut producers = Vec::new();
    for slot in 0..ring.slots() as u16 {
        let s = ring.slot_info(slot);
        if s.state == SLOT_FREE {
            continue;
        }
        let alive = lock::is_locked(fd, layout::slot_lock_byte(slot as u32)).unwrap_or(false);
        producers.push(json!({
            "slot": slot,
            "pid": s.pid,
            "tid": s.tid,
            "alive": alive,
            "written": s.written.wrapping_sub(s.written_base),
            "dropped": s.dropped.wrapping_sub(s.dropped_base),
            "abandoned": s.abandoned,
            "blocked_ns": s.blocked_ns,
            "stalled_since_ns": (s.stall_since_ns != 0).then_some(s.stall_since_ns),
        }));
    }
    Ok(json!({
        "ring": segment.name(),
        "path": segment.path(),
        "capacity": g.capacity,
        "max_record": g.max_record,
        "head": head,
        "tail": tail,
        "used": tail.saturating_sub(head),
        "fill": tail.saturating_sub(head) as f64 / g.capacity as f64,
        "records_out": counters.records_out,
        "bytes_out": counters.bytes_out,
        "abandoned": counters.abandoned,
        "abandoned_bytes": counters.abandoned_bytes,
        "stalls": counters.stalls,
        "corrupt": counters.corrupt,
        "drain": {
            "alive": drain_alive,
            "pid": drain.pid,
            "started_ns": drain.started_ns,
            "heartbeat_ns": drain.heartbeat_ns,
        },
        "producers": producers,
        "outputs": crate::forward_status::read(segment.path()).unwrap_or_else(|| json!([])),
    }))
}

/// Prints one snapshot, or one every `watch` interval with records/s and bytes/s since the
/// previous one (`records_per_s`, `bytes_per_s` in JSON), until interrupted.
pub fn run(
    location: &Location,
    json: bool,
    watch: Option<std::time::Duration>,
) -> Result<(), OpenError> {
    let mut previous: Option<(std::time::Instant, u64, u64)> = None;
    loop {
        let mut v = snapshot(location)?;
        let now = std::time::Instant::now();
        let (records, bytes) = (
            v["records_out"].as_u64().unwrap_or(0),
            v["bytes_out"].as_u64().unwrap_or(0),
        );
        if let Some((then, r0, b0)) = previous {
            let secs = (now - then).as_secs_f64().max(1e-9);
            v["records_per_s"] = json!(records.saturating_sub(r0) as f64 / secs);
            v["bytes_per_s"] = json!(bytes.saturating_sub(b0) as f64 / secs);
        }
        previous = Some((now, records, bytes));
        if json {
            println!("{v}");
        } else {
            print!("{}", render(&v));
            if let Some(r) = v["records_per_s"].as_f64() {
                println!(
                    "rate      {r:.0} records/s, {:.1} MB/s",
                    v["bytes_per_s"].as_f64().unwrap_or(0.0) / 1e6
                );
            }
        }
        let Some(interval) = watch else { return Ok(()) };
        if !json {
            println!();
        }
        std::thread::sleep(interval);
    }
}

/// Renders a snapshot for people.
pub fn render(v: &serde_json::Value) -> String {
    let mut s = String::new();
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    s += &format!(
        "ring      {} ({})\n",
        v["ring"].as_str().unwrap_or(""),
        v["path"].as_str().unwrap_or("")
    );
    s += &format!(
        "capacity  {} bytes, max record {} bytes, used {} ({:.1}%)\n",
        n("capacity"),
        n("max_record"),
        n("used"),
        v["fill"].as_f64().unwrap_or(0.0) * 100.0
    );
    s += &format!("head/tail {} / {}\n", n("head"), n("tail"));
    s += &format!(
        "written   {} records, {} bytes; abandoned {} ({} bytes); stalls {}; corrupt {}\n",
        n("records_out"),
        n("bytes_out"),
        n("abandoned"),
        n("abandoned_bytes"),
        n("stalls"),
        n("corrupt")
    );
    let d = &v["drain"];
    s += &format!(
        "drain     {}\n",
        if d["alive"].as_bool() == Some(true) {
            format!("running, pid {}", d["pid"])
        } else {
            "not running".to_owned()
        }
    );
    s += "producers slot  pid      tid      alive  written     dropped  abandoned\n";
    for p in v["producers"].as_array().into_iter().flatten() {
        s += &format!(
            "          {:<5} {:<8} {:<8} {:<6} {:<11} {:<8} {}{}\n",
            p["slot"],
            p["pid"],
            p["tid"],
            p["alive"],
            p["written"],
            p["dropped"],
            p["abandoned"],
            if p["stalled_since_ns"].is_null() {
                ""
            } else {
                "  STALLED"
            }
        );
    }
    let outputs = v["outputs"].as_array().filter(|o| !o.is_empty());
    if let Some(outputs) = outputs {
        s += "forwarding destination                          sent       acked      resent   pending  lag bytes   last error\n";
        for o in outputs {
            s += &format!(
                "          {:<37} {:<10} {:<10} {:<8} {:<8} {:<11} {}\n",
                o["destination"].as_str().unwrap_or(""),
                o["sent"],
                o["acknowledged"],
                o["resent"],
                o["pending"],
                o["lag_bytes"],
                o["last_error"].as_str().unwrap_or("-")
            );
        }
    }
    s
}
