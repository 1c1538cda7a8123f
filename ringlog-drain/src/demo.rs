//! `ringlog-drain demo`: the whole path, end to end, with real processes. Starts a drain
//! process on a fresh ring, spawns producer processes that write records of mixed sizes,
//! verifies the log record by record (exactly once, untorn, in order per producer), then does
//! the same work with one O_APPEND `write(2)` per record and compares. Also hosts the hidden
//! producer roles it spawns (`demo-producer`, `demo-append`).

use ringlog_writer::Writer;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The deterministic content of record `seq` of producer `id`: `p<id> <seq> <len> <filler>`,
/// exactly `len` bytes, no newline. Sizes are mixed: mostly 40..300 bytes, 1 in 200 between 4
/// and 16 KiB, 1 in 5000 between 64 and 128 KiB.
pub fn record(id: u32, seq: u64, out: &mut Vec<u8>) {
    let h = mix((id as u64 * 0x9e37_79b9_7f4a_7c15) ^ seq);
    let len = match h % 5000 {
        0 => 65536 + (h >> 20) % 65536,
        1..=25 => 4096 + (h >> 20) % 12288,
        _ => 40 + (h >> 20) % 260,
    } as usize;
    out.clear();
    write!(out, "p{id} {seq} {len} ").expect("write to Vec");
    let start = (seq % FILLER_PERIOD as u64) as usize;
    let need = len - out.len();
    out.extend_from_slice(&filler()[start..start + need]);
}

const FILLER_PERIOD: usize = 62;

/// A repeating alphanumeric pattern long enough for any record plus any start offset.
fn filler() -> &'static [u8] {
    static FILLER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILLER.get_or_init(|| {
        let pattern = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        pattern.iter().copied().cycle().take(140 * 1024).collect()
    })
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What verification found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Lines read.
    pub lines: u64,
    /// Payload bytes of valid records.
    pub bytes: u64,
    /// Lines that are not exactly a record this run wrote (torn, interleaved or foreign).
    pub bad: u64,
    /// Records out of order or repeated within their producer.
    pub out_of_order: u64,
    /// Records expected but absent, over all producers.
    pub missing: u64,
    /// Lines the drain wrote about itself (`ringlog: ...`).
    pub notices: u64,
}

impl Verdict {
    /// True when every record arrived exactly once, whole, in order.
    pub fn is_perfect(&self) -> bool {
        self.bad == 0 && self.out_of_order == 0 && self.missing == 0
    }
}

/// Checks `path` holds exactly `per_producer` records from each of `producers` producers, each
/// whole and in its producer's order.
pub fn verify(path: &Path, producers: u32, per_producer: u64) -> io::Result<Verdict> {
    let mut next = vec![0u64; producers as usize];
    let mut v = Verdict::default();
    let mut reader = io::BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut line = Vec::new();
    let mut expect = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        v.lines += 1;
        if line.pop() != Some(b'\n') {
            v.bad += 1;
            continue;
        }
        if line.starts_with(b"ringlog: ") {
            v.notices += 1;
            continue;
        }
        let Some((id, seq)) = parse_ids(&line) else {
            v.bad += 1;
            continue;
        };
        if id >= producers {
            v.bad += 1;
            continue;
        }
        record(id, seq, &mut expect);
        if expect != line {
            v.bad += 1;
            continue;
        }
        v.bytes += line.len() as u64;
        let n = &mut next[id as usize];
        if seq != *n {
            v.out_of_order += 1;
        }
        *n = (*n).max(seq + 1);
    }
    v.missing = next.iter().map(|&n| per_producer.saturating_sub(n)).sum();
    Ok(v)
}

fn parse_ids(line: &[u8]) -> Option<(u32, u64)> {
    let rest = line.strip_prefix(b"p")?;
    let mut parts = rest.splitn(3, |&b| b == b' ');
    let id = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    Some((id, seq))
}

/// The `demo-producer` role: write `records` records as producer `id` into ring `ring`.
pub fn run_producer(ring: &str, id: u32, records: u64) -> Result<(), Box<dyn std::error::Error>> {
    let writer = Writer::open(ring)?;
    let mut buf = Vec::with_capacity(1 << 17);
    for seq in 0..records {
        record(id, seq, &mut buf);
        writer.write(&buf)?;
    }
    Ok(())
}

/// The `demo-append` role: the same records, one O_APPEND `write(2)` each.
pub fn run_append(path: &Path, id: u32, records: u64) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    let mut buf = Vec::with_capacity(1 << 17);
    for seq in 0..records {
        record(id, seq, &mut buf);
        buf.push(b'\n');
        file.write_all(&buf)?;
    }
    Ok(())
}

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Total records over all producers.
    pub records: u64,
    /// Producer processes.
    pub producers: u32,
    /// Where the logs go, kept afterwards. `None`: a new directory under the temp dir, removed
    /// at the end unless verification failed.
    pub dir: Option<PathBuf>,
}

fn spawn(exe: &Path, args: &[&str]) -> io::Result<Child> {
    Command::new(exe).args(args).stdin(Stdio::null()).spawn()
}

fn wait_all(children: Vec<Child>, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    for mut c in children {
        let status = c.wait()?;
        if !status.success() {
            return Err(format!("a {what} process failed: {status}").into());
        }
    }
    Ok(())
}

fn describe(label: &str, records: u64, bytes: u64, took: Duration, v: &Verdict) -> String {
    let secs = took.as_secs_f64();
    format!(
        "  {label:<9} {records} records, {:.1} MB in {secs:.2} s: {:.0} records/s, {:.0} MB/s; {}",
        bytes as f64 / 1e6,
        records as f64 / secs,
        bytes as f64 / 1e6 / secs,
        if v.is_perfect() {
            "verified: every record exactly once, none torn, in order per producer".to_owned()
        } else {
            format!(
                "VERIFICATION FAILED: {} bad lines, {} out of order, {} missing",
                v.bad, v.out_of_order, v.missing
            )
        }
    )
}

/// Writes and deletes `bytes` in 1 MiB writes in `dir`, so the pages the next writer's file
/// needs have just been used and freed. On VMs whose host reclaims free guest memory (free page
/// reporting, e.g. Firecracker's balloon), a page touched for the first time after a pause
/// costs a host fault, several times the cost of the copy into it; without this whoever ran
/// first would pay for it. Shared with the benchmark harness.
pub fn warm_page_cache(dir: &Path, bytes: u64) -> io::Result<()> {
    let path = dir.join("warm-up.tmp");
    let mut file = File::create(&path)?;
    let chunk = vec![b'w'; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    drop(file);
    std::fs::remove_file(&path)
}

/// Runs the demo and prints what it did. Errors if verification fails.
pub fn run(options: &DemoOptions) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let pid = std::process::id();
    let ring = format!("demo-{pid}");
    let (dir, scratch) = match &options.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("ringlog-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let log = dir.join("ringlog.log");
    let append_log = dir.join("o_append.log");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&append_log);
    let producers = options.producers.max(1);
    let per = options.records / producers as u64;
    let total = per * producers as u64;
    println!(
        "ringlog demo: {producers} producer processes x {per} records of mixed sizes (40 B to 128 KiB) \
         into one log, through ring '{ring}' and one drain process"
    );

    let ring_path = Path::new(ringlog_core::segment::SHM_DIR).join(format!("ringlog-{ring}"));
    // About the bytes each contender writes (the mix averages ~240 bytes a record).
    let expected_bytes = total * 240;
    let started = Instant::now();
    let mut drain = spawn(
        &exe,
        &[
            "--ring",
            &ring,
            "--out",
            log.to_str().ok_or("non-UTF-8 path")?,
        ],
    )?;
    // Creating the ring is a one-time set-up (like creating the log file), and on a
    // machine whose free memory is cold it can take a large part of a second: start the clock
    // once the drain holds the ring, as a service would find it.
    let location = ringlog_core::Location::Name(ring.clone());
    while !crate::stat::snapshot(&location).is_ok_and(|v| v["drain"]["alive"] == true) {
        if let Some(status) = drain.try_wait()? {
            return Err(format!("the drain process exited at start: {status}").into());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the drain did not take the ring within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Only now: the ring's pages would otherwise take the warmed ones.
    warm_page_cache(&dir, expected_bytes)?;
    let producers_started = Instant::now();
    let children = (0..producers)
        .map(|id| {
            spawn(
                &exe,
                &[
                    "demo-producer",
                    "--ring",
                    &ring,
                    "--id",
                    &id.to_string(),
                    "--records",
                    &per.to_string(),
                ],
            )
        })
        .collect::<io::Result<Vec<_>>>()?;
    let result = wait_all(children, "producer");
    let producers_took = producers_started.elapsed();
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(drain.id() as i32, libc::SIGTERM) };
    let drain_status = drain.wait()?;
    let ring_took = producers_started.elapsed();
    let _ = std::fs::remove_file(&ring_path);
    result?;
    if !drain_status.success() {
        return Err(format!("the drain process failed: {drain_status}").into());
    }
    let v_ring = verify(&log, producers, per)?;

    warm_page_cache(&dir, expected_bytes)?;
    let append_started = Instant::now();
    let path_arg = append_log.to_str().ok_or("non-UTF-8 path")?;
    let children = (0..producers)
        .map(|id| {
            spawn(
                &exe,
                &[
                    "demo-append",
                    "--path",
                    path_arg,
                    "--id",
                    &id.to_string(),
                    "--records",
                    &per.to_string(),
                ],
            )
        })
        .collect::<io::Result<Vec<_>>>()?;
    wait_all(children, "O_APPEND writer")?;
    let append_took = append_started.elapsed();
    let v_append = verify(&append_log, producers, per)?;
    let _ = std::fs::remove_file(&append_log);

    println!(
        "{}",
        describe("ringlog", total, v_ring.bytes, ring_took, &v_ring)
    );
    println!(
        "            (its producers were done after {:.2} s; everything was in the file {:.2} s later)",
        producers_took.as_secs_f64(),
        (ring_took - producers_took).as_secs_f64()
    );
    println!(
        "{}",
        describe("O_APPEND", total, v_append.bytes, append_took, &v_append)
    );
    println!(
        "  ringlog was {:.2}x as fast as one O_APPEND write(2) per record, end to end (until all records were in the file)",
        append_took.as_secs_f64() / ring_took.as_secs_f64()
    );
    if !v_ring.is_perfect() {
        if let Some(t) = scratch {
            // Kept for inspection.
            let _ = t.keep();
        }
        return Err(format!(
            "ringlog output failed verification; log kept: {}",
            log.display()
        )
        .into());
    }
    match scratch {
        Some(t) => {
            println!(
                "  log: {} lines, verified and removed (pass --dir DIR to keep it)",
                v_ring.lines
            );
            t.close()?;
        }
        None => println!("  log: {} ({} lines)", log.display(), v_ring.lines),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_their_length_and_parse_back() {
        let mut buf = Vec::new();
        let mut big = 0;
        for seq in 0..20_000 {
            record(3, seq, &mut buf);
            let text = std::str::from_utf8(&buf).unwrap();
            let len: usize = text.split(' ').nth(2).unwrap().parse().unwrap();
            assert_eq!(buf.len(), len);
            assert!(!buf.contains(&b'\n'));
            assert_eq!(parse_ids(&buf), Some((3, seq)));
            big += (len > 4096) as u32;
        }
        assert!(big > 20, "some records must be over 4 KiB");
    }

    #[test]
    fn verify_catches_missing_torn_and_reordered_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut f = Vec::new();
        let mut buf = Vec::new();
        for seq in [0u64, 2, 1] {
            record(0, seq, &mut buf);
            f.extend_from_slice(&buf);
            f.push(b'\n');
        }
        record(1, 0, &mut buf);
        f.extend_from_slice(&buf[..buf.len() / 2]);
        f.push(b'\n');
        std::fs::write(&path, &f).unwrap();
        let v = verify(&path, 2, 3).unwrap();
        assert_eq!(v.bad, 1);
        assert_eq!(v.out_of_order, 2);
        assert_eq!(v.missing, 3);
        assert!(!v.is_perfect());
    }
}
