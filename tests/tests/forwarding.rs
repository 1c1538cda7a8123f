//! Forwarding to a real rsyslogd on loopback: RELP (`--out relp://`, and `--forward` beside a
//! file) through receiver crashes, graceful restarts, network cuts and a SIGKILLed drain; TLS
//! (RFC 5425 syslog and RELP) with verified, refused and mutual certificates; the in-band line
//! of plain TCP when a connection breaks. Every record is checked to arrive (at least once, in
//! order of first arrival), and duplicates against what the drain reported.

use ringlog_tests::rsyslog::{
    free_port, skip_without, Certs, ClientAuth, Listener, Proxy, Rsyslog,
};
use ringlog_tests::{
    bin, ring_path, unique_ring, wait_until, wait_until_every, DrainProcess, RingGuard,
};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a test waits for records to reach rsyslog before it fails.
const ARRIVAL: Duration = Duration::from_secs(60);
/// How often a test reads what rsyslog received while it waits (each read is incremental).
const POLL: Duration = Duration::from_millis(10);
/// The drain's default RELP window: at most this many messages are in flight when a connection
/// breaks, so at most this many are sent again per break.
const WINDOW: u64 = 128;

fn record(i: usize) -> String {
    format!("rec {i:06} {}", "abcdefgh".repeat(1 + i % 24))
}

/// Writes records `range` into ring `ring`.
fn write_records(writer: &ringlog_writer::Writer, range: std::ops::Range<usize>) {
    for i in range {
        if let Err(e) = writer.write(record(i).as_bytes()) {
            panic!("record {i} not written: {e}");
        }
    }
}

/// Checks what rsyslog received against records `0..n`: each at least once, first arrivals in
/// order, nothing else but ringlog's own notices. Returns the number of duplicates.
fn check_arrivals(lines: &[String], n: usize) -> u64 {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut next_new = 0usize;
    let mut duplicates = 0;
    for line in lines {
        if line.starts_with("ringlog: ") {
            continue;
        }
        let count = seen.entry(line.as_str()).or_insert(0);
        *count += 1;
        if *count > 1 {
            duplicates += 1;
            continue;
        }
        assert!(
            next_new < n && *line == record(next_new),
            "record {next_new} expected next, got {line:?}"
        );
        next_new += 1;
    }
    assert_eq!(next_new, n, "records lost: only {next_new} of {n} arrived");
    duplicates
}

/// Distinct records received.
fn distinct(lines: &[String]) -> usize {
    let mut set: Vec<&String> = lines.iter().filter(|l| l.starts_with("rec ")).collect();
    set.sort();
    set.dedup();
    set.len()
}

/// What rsyslog received, read incrementally while a test waits: each look reads only what was
/// appended since the last (rsyslog appends to the same file across restarts), so waiting does
/// not take the CPU from rsyslogd and the drain.
#[derive(Default)]
struct Arrivals {
    read: u64,
    partial: Vec<u8>,
    distinct: HashSet<Vec<u8>>,
    lines: usize,
}

impl Arrivals {
    fn look(&mut self, rsyslog: &Rsyslog) -> &Self {
        if let Ok(mut f) = std::fs::File::open(&rsyslog.received) {
            let mut fresh = Vec::new();
            if f.seek(SeekFrom::Start(self.read)).is_ok() && f.read_to_end(&mut fresh).is_ok() {
                self.read += fresh.len() as u64;
                self.partial.extend_from_slice(&fresh);
                let whole = self
                    .partial
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                for line in self.partial[..whole].split(|&b| b == b'\n') {
                    if line.is_empty() {
                        continue;
                    }
                    self.lines += 1;
                    if line.starts_with(b"rec ") && !self.distinct.contains(line) {
                        self.distinct.insert(line.to_vec());
                    }
                }
                self.partial.drain(..whole);
            }
        }
        self
    }

    /// Distinct records received so far.
    fn distinct(&mut self, rsyslog: &Rsyslog) -> usize {
        self.look(rsyslog).distinct.len()
    }

    /// Lines received so far (duplicates and notices included).
    fn lines(&mut self, rsyslog: &Rsyslog) -> usize {
        self.look(rsyslog).lines
    }
}

/// Waits until rsyslog holds at least `n` distinct records.
fn wait_distinct(arrivals: &mut Arrivals, rsyslog: &Rsyslog, n: usize) -> bool {
    wait_until_every(ARRIVAL, POLL, || arrivals.distinct(rsyslog) >= n)
}

/// Waits until rsyslog holds at least `n` lines.
fn wait_lines(arrivals: &mut Arrivals, rsyslog: &Rsyslog, n: usize) -> bool {
    wait_until_every(ARRIVAL, POLL, || arrivals.lines(rsyslog) >= n)
}

/// The `resent N` totals the drain printed as it stopped (one per RELP destination).
fn reported_resent(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split(", resent ").nth(1)?;
            rest.split(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The journal a `--out relp://` drain of `ring` keeps beside its segment.
fn relp_journal(ring: &str, rsyslog: &Rsyslog) -> std::path::PathBuf {
    let address = format!("127.0.0.1:{}", rsyslog.port);
    ringlog_drain::relp_journal::path_for(&ring_path(ring), &address)
}

fn stat_outputs(ring: &str) -> serde_json::Value {
    let out = Command::new(bin("ringlog-drain"))
        .args(["stat", "--json", "--ring", ring])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["outputs"].clone()
}

/// Kills rsyslogd three times and stops it gracefully once (for `down`, then starts it) while
/// records flow; restarts it each time. Returns the number of connection breaks.
fn faults_while_flowing(
    rsyslog: &mut Rsyslog,
    arrivals: &mut Arrivals,
    total: usize,
    down: Duration,
) -> u64 {
    for (round, graceful) in [false, false, true, false].into_iter().enumerate() {
        let target = total * (round + 1) / 6;
        let reached = wait_distinct(arrivals, rsyslog, target);
        assert!(
            reached,
            "round {round}: records stopped arriving before the fault"
        );
        if graceful {
            rsyslog.stop();
            // The outage itself, as an operator's restart has one (not a wait for anything).
            std::thread::sleep(down);
        } else {
            rsyslog.kill();
        }
        rsyslog.restart();
    }
    4
}

/// Writes records `range` at `per_second`, as a steady service would.
fn write_paced(writer: &ringlog_writer::Writer, range: std::ops::Range<usize>, per_second: u64) {
    let begin = Instant::now();
    let first = range.start;
    for chunk_start in range.clone().step_by(100) {
        let due = Duration::from_micros((chunk_start - first) as u64 * 1_000_000 / per_second);
        if let Some(ahead) = due.checked_sub(begin.elapsed()) {
            std::thread::sleep(ahead);
        }
        write_records(writer, chunk_start..(chunk_start + 100).min(range.end));
    }
}

/// The scenario: 100,000 records at 20,000/s over `--out relp://` while rsyslogd is
/// SIGKILLed three times and stopped gracefully once for a second. Nothing is lost; the
/// duplicates rsyslog holds are at most what the drain reported resent, and that at most a
/// window per break. Only at most: a receiver killed may die with messages it had read and not
/// yet written (lost to it, sent again: resent, no duplicate) or written and not yet
/// acknowledged (a duplicate), and RELP cannot ask which (seen: 0 duplicates for 249 resent).
#[test]
fn relp_output_loses_nothing_when_rsyslog_is_killed_three_times_and_stopped_once() {
    let listener = Listener::Relp;
    if skip_without(&listener, "relp_output_loses_nothing_...") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("relpkill");
    let _guard = RingGuard(ring.clone());
    let url = format!("relp://127.0.0.1:{}", rsyslog.port);
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    let total = 100_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let producer = std::thread::spawn(move || write_paced(&writer, 0..total, 20_000));
    let mut arrivals = Arrivals::default();
    let breaks = faults_while_flowing(&mut rsyslog, &mut arrivals, total, Duration::from_secs(1));
    producer.join().unwrap();
    let all = wait_distinct(&mut arrivals, &rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        all,
        "only {} of {total} arrived; drain said: {err}",
        distinct(&rsyslog.lines())
    );
    let duplicates = check_arrivals(&rsyslog.lines(), total);
    let resent = reported_resent(&err);
    eprintln!("rsyslog holds {duplicates} duplicates; the drain reported {resent} resent");
    assert!(
        duplicates <= resent,
        "{duplicates} duplicates but the drain reported only {resent} resent: {err}"
    );
    assert!(
        resent <= breaks * WINDOW,
        "{resent} resent after {breaks} breaks: more than a window each: {err}"
    );
}

#[test]
fn relp_output_without_faults_delivers_exactly_once_in_order() {
    let listener = Listener::Relp;
    if skip_without(&listener, "relp_output_without_faults_...") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("relpclean");
    let _guard = RingGuard(ring.clone());
    let url = format!("relp://127.0.0.1:{}", rsyslog.port);
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    let total = 100_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..total);
    let all = wait_lines(&mut Arrivals::default(), &rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success() && all, "{err}");
    assert_eq!(check_arrivals(&rsyslog.lines(), total), 0, "{err}");
    assert_eq!(rsyslog.lines().len(), total);
    assert_eq!(reported_resent(&err), 0, "{err}");
    assert!(err.contains(&format!("acknowledged {total},")), "{err}");
    let journal = relp_journal(&ring, &rsyslog);
    assert!(!journal.exists(), "a clean stop leaves {journal:?} behind");
}

/// `--out relp://`: the drain SIGKILLed in the middle of a batch and restarted sends that batch
/// again from its first message not acknowledged (its journal says which): nothing is lost, the
/// duplicates are at most what it reported resent, and that at most a window. `stat` shows the
/// output while it runs.
#[test]
fn relp_output_resumes_after_the_drain_is_killed_and_counts_what_it_sends_again() {
    let listener = Listener::Relp;
    if skip_without(
        &listener,
        "relp_output_resumes_after_the_drain_is_killed_...",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("relpdrainkill");
    let _guard = RingGuard(ring.clone());
    let url = format!("relp://127.0.0.1:{}", rsyslog.port);
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    let total = 30_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    // One burst: the drain takes it in large batches, so the kill lands inside one.
    write_records(&writer, 0..total / 2);
    let mut arrivals = Arrivals::default();
    assert!(
        wait_distinct(&mut arrivals, &rsyslog, total / 8),
        "nothing arrived"
    );
    let mut shown = serde_json::Value::Null;
    let stat_ok = wait_until_every(ARRIVAL, POLL, || {
        shown = stat_outputs(&ring);
        shown[0]["destination"] == url.as_str() && shown[0]["acknowledged"].as_u64() > Some(0)
    });
    assert!(stat_ok, "stat does not show the RELP output: {shown}");
    assert!(
        shown[0]["sent"].as_u64() >= shown[0]["acknowledged"].as_u64(),
        "{shown}"
    );
    let (_, first_err) = drain.kill();
    let journal = relp_journal(&ring, &rsyslog);
    assert!(journal.exists(), "no journal {journal:?} after a kill");
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    write_records(&writer, total / 2..total);
    let all = wait_distinct(&mut arrivals, &rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        all,
        "only {} arrived: {first_err}\n{err}",
        arrivals.distinct(&rsyslog)
    );
    let duplicates = check_arrivals(&rsyslog.lines(), total);
    let resent = reported_resent(&err);
    eprintln!(
        "rsyslog holds {duplicates} duplicates; the restarted drain reported {resent} resent"
    );
    assert!(duplicates <= resent, "{duplicates} > {resent}: {err}");
    assert!(resent <= WINDOW, "{resent} resent after one kill: {err}");
    assert!(!journal.exists(), "the clean stop left {journal:?} behind");
}

/// `--out FILE --forward relp://`: the drain SIGKILLed mid-forward and restarted resumes from
/// the last acknowledged record; the file is exact, the receiver has everything, and holds
/// exactly as many duplicates as the restarted drain reported resent (its checkpoint says how
/// far the killed one had sent: rsyslog kept every message that reached it).
#[test]
fn forwarding_resumes_after_the_drain_is_killed() {
    let listener = Listener::Relp;
    if skip_without(&listener, "forwarding_resumes_after_the_drain_is_killed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("fwdkill");
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("app.log");
    let url = format!("relp://127.0.0.1:{}", rsyslog.port);
    let args = ["--forward", url.as_str()];
    let drain = DrainProcess::start(&ring, &log, &args);
    let total = 20_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..total / 2);
    let mut arrivals = Arrivals::default();
    let some = wait_distinct(&mut arrivals, &rsyslog, total / 8);
    assert!(some, "forwarding did not start");
    let (_, first_err) = drain.kill();
    let drain = DrainProcess::start(&ring, &log, &args);
    write_records(&writer, total / 2..total);
    let all = wait_distinct(&mut arrivals, &rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        all,
        "only {} arrived: {first_err}\n{err}",
        distinct(&rsyslog.lines())
    );
    let file: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(check_arrivals(&file, total), 0, "the local file is exact");
    let duplicates = check_arrivals(&rsyslog.lines(), total);
    let resent = reported_resent(&err);
    eprintln!("rsyslog holds {duplicates} duplicates; the drain reported {resent} resent");
    assert_eq!(duplicates, resent, "{first_err}\n{err}");
    assert!(resent <= WINDOW, "{resent} resent after one kill: {err}");
}

/// A receiver down for a long stretch: the file keeps being written, producers are never held
/// up (a small ring and a dropping producer: any fill would show as drops), `stat` shows the
/// lag and the error; when the receiver comes, it gets everything, in order, once.
#[test]
fn a_receiver_that_is_down_holds_up_neither_the_file_nor_the_ring() {
    let listener = Listener::Relp;
    if skip_without(&listener, "a_receiver_that_is_down_...") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut rsyslog = Rsyslog::configure(dir.path(), &listener, port);
    let ring = unique_ring("fwddown");
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("app.log");
    let url = format!("relp://127.0.0.1:{port}");
    let drain = DrainProcess::start(
        &ring,
        &log,
        &[
            "--forward",
            &url,
            "--capacity",
            "64K",
            "--rotate-size",
            "256K",
            "--rotate-keep",
            "20",
        ],
    );
    let writer = ringlog_writer::Writer::builder(&ring)
        .full_policy(ringlog_writer::FullPolicy::Drop)
        .open()
        .unwrap();
    // 20,000 records, about 2 MB: thirty times the ring, and several rotations; in bursts of
    // 100 (about 11 KB, a sixth of the ring), each waited for in the file, so a ring that
    // filled could only be the forwarding's fault.
    let total = 20_000;
    let file_lines = || -> usize {
        let mut n = 0;
        for suffix in ["".to_owned()]
            .into_iter()
            .chain((1..=20).map(|k| format!(".{k}")))
        {
            let mut p = log.as_os_str().to_owned();
            p.push(&suffix);
            n += std::fs::read(std::path::PathBuf::from(p))
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
        }
        n
    };
    for burst in 0..200 {
        write_records(&writer, burst * 100..(burst + 1) * 100);
        let written = wait_until_every(ARRIVAL, POLL, || file_lines() >= (burst + 1) * 100);
        assert!(
            written,
            "the local file stopped at {} records",
            file_lines()
        );
    }
    assert_eq!(writer.stats().dropped, 0, "the ring filled up");
    let outputs = stat_outputs(&ring);
    assert_eq!(outputs[0]["destination"], url.as_str());
    assert!(
        outputs[0]["lag_bytes"].as_u64().unwrap_or(0) > 1_000_000,
        "{outputs}"
    );
    assert!(
        outputs[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{outputs}"
    );
    assert!(!rsyslog.received.exists());
    rsyslog.restart();
    let all = wait_lines(&mut Arrivals::default(), &rsyslog, total);
    let caught_up = wait_until_every(ARRIVAL, POLL, || {
        stat_outputs(&ring)[0]["lag_bytes"].as_u64() == Some(0)
    });
    let (status, err) = drain.stop();
    assert!(status.success() && all && caught_up, "{err}");
    assert_eq!(check_arrivals(&rsyslog.lines(), total), 0, "exactly once");
}

/// A loopback proxy cuts every connection three times while records flow.
#[test]
fn forwarding_survives_network_cuts() {
    let listener = Listener::Relp;
    if skip_without(&listener, "forwarding_survives_network_cuts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), &listener);
    let proxy = Proxy::start(rsyslog.port);
    let ring = unique_ring("fwdcut");
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("app.log");
    let url = format!("relp://127.0.0.1:{}", proxy.port);
    let drain = DrainProcess::start(&ring, &log, &["--forward", &url]);
    let total = 20_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let producer = std::thread::spawn(move || write_records(&writer, 0..total));
    let mut cuts = 0;
    let mut arrivals = Arrivals::default();
    for round in 1..=3 {
        let reached = wait_distinct(&mut arrivals, &rsyslog, total * round / 4);
        assert!(reached, "records stopped arriving before cut {round}");
        cuts += proxy.cut();
    }
    producer.join().unwrap();
    let all = wait_distinct(&mut arrivals, &rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success() && all, "{err}");
    assert!(cuts >= 3, "the proxy cut {cuts} connections");
    let duplicates = check_arrivals(&rsyslog.lines(), total);
    let resent = reported_resent(&err);
    eprintln!("{cuts} cuts; rsyslog holds {duplicates} duplicates; the drain reported {resent}");
    assert!(duplicates <= resent, "{duplicates} > {resent}: {err}");
    assert!(
        resent <= cuts as u64 * WINDOW,
        "{resent} resent after {cuts} cuts: more than a window each: {err}"
    );
}

fn tls_args(certs: &Certs, client: bool) -> Vec<&str> {
    let mut args = vec!["--tls-ca", certs.ca.to_str().unwrap()];
    if client {
        args.extend([
            "--tls-cert",
            certs.client.0.to_str().unwrap(),
            "--tls-key",
            certs.client.1.to_str().unwrap(),
        ]);
    }
    args
}

/// Sends `total` records through a drain with `out` and `args`; returns what rsyslog got.
fn send_through(
    rsyslog: &Rsyslog,
    out: &str,
    args: &[&str],
    total: usize,
) -> (Vec<String>, String) {
    let ring = unique_ring("tls");
    let _guard = RingGuard(ring.clone());
    let drain = DrainProcess::start(&ring, Path::new(out), args);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..total);
    let all = wait_lines(&mut Arrivals::default(), rsyslog, total);
    let (status, err) = drain.stop();
    assert!(status.success() && all, "{err}");
    (rsyslog.lines(), err)
}

#[test]
fn records_arrive_over_tls_to_rsyslog_syslog_and_relp_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let id = certs.identity(&certs.server);
    for (listener, scheme) in [
        (Listener::TcpTls(id.clone(), ClientAuth::None), "syslog+tls"),
        (Listener::RelpTls(id.clone(), ClientAuth::None), "relp+tls"),
    ] {
        if skip_without(&listener, &format!("records_arrive_over_tls ({scheme})")) {
            continue;
        }
        let rdir = tempfile::tempdir().unwrap();
        let rsyslog = Rsyslog::start(rdir.path(), &listener);
        let out = format!("{scheme}://127.0.0.1:{}", rsyslog.port);
        let (lines, _) = send_through(&rsyslog, &out, &tls_args(&certs, false), 2_000);
        assert_eq!(check_arrivals(&lines, 2_000), 0, "{scheme}");
    }
}

#[test]
fn relp_over_tls_forwards_beside_the_file_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let listener = Listener::RelpTls(certs.identity(&certs.server), ClientAuth::Required);
    if skip_without(&listener, "relp_over_tls_forwards_..._client_certificate") {
        return;
    }
    let rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("mtls");
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("app.log");
    let url = format!("relp+tls://127.0.0.1:{}", rsyslog.port);
    let mut args = vec!["--forward", url.as_str(), "--tls-name", "localhost"];
    args.extend(tls_args(&certs, true));
    let drain = DrainProcess::start(&ring, &log, &args);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..5_000);
    let all = wait_lines(&mut Arrivals::default(), &rsyslog, 5_000);
    let (status, err) = drain.stop();
    assert!(status.success() && all, "{err}");
    assert_eq!(check_arrivals(&rsyslog.lines(), 5_000), 0);
}

/// Starts a forwarding drain against `rsyslog` that must be refused: waits until `stat` shows
/// the error, checks it says `why`, and that rsyslog received nothing.
fn refused(rsyslog: &Rsyslog, scheme: &str, args: &[&str], why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ring = unique_ring("refused");
    let _guard = RingGuard(ring.clone());
    let log = dir.path().join("app.log");
    let url = format!("{scheme}://127.0.0.1:{}", rsyslog.port);
    let mut all = vec!["--forward", url.as_str()];
    all.extend(args.iter().copied());
    let drain = DrainProcess::start(&ring, &log, &all);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..100);
    let mut last = serde_json::Value::Null;
    let failed = wait_until(ARRIVAL, || {
        last = stat_outputs(&ring)[0]["last_error"].clone();
        last.is_string()
    });
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(failed, "no error shown by stat: {err}");
    let text = last.as_str().unwrap();
    assert!(text.contains(why), "error {text:?} should say {why:?}");
    assert!(err.contains(why), "stderr should say {why:?}: {err}");
    let got = rsyslog.lines();
    assert!(
        !got.iter().any(|l| l.contains("rec 0")),
        "a refused receiver got records: {got:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        100,
        "the local file is written all the same"
    );
}

#[test]
fn receivers_that_fail_verification_get_nothing_and_the_error_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let cases = [
        (
            certs.identity(&certs.untrusted),
            ClientAuth::None,
            "UnknownIssuer",
        ),
        (
            certs.identity(&certs.wrong_name),
            ClientAuth::None,
            "not valid for name",
        ),
        // A receiver that demands a client certificate, and none is given.
        (certs.identity(&certs.server), ClientAuth::Required, "alert"),
    ];
    for (identity, auth, why) in cases {
        let listener = Listener::RelpTls(identity, auth);
        if skip_without(&listener, "receivers_that_fail_verification_...") {
            return;
        }
        let rdir = tempfile::tempdir().unwrap();
        let rsyslog = Rsyslog::start(rdir.path(), &listener);
        refused(&rsyslog, "relp+tls", &tls_args(&certs, false), why);
    }
    // Plain TCP where TLS is configured: the handshake gets no answer.
    let rdir = tempfile::tempdir().unwrap();
    let plain = Rsyslog::start(rdir.path(), &Listener::Relp);
    refused(&plain, "relp+tls", &tls_args(&certs, false), "TLS");
}

/// Plain TCP is best effort; when a connection breaks, the drain says in-band how many records
/// may be lost, and no more than that are.
#[test]
fn plain_tcp_says_in_band_when_records_may_be_lost() {
    let listener = Listener::Tcp;
    if skip_without(&listener, "plain_tcp_says_in_band_...") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(dir.path(), &listener);
    let ring = unique_ring("tcpnotice");
    let _guard = RingGuard(ring.clone());
    let url = format!("syslog+tcp://127.0.0.1:{}", rsyslog.port);
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    let total = 20_000;
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    write_records(&writer, 0..total / 2);
    let half = wait_lines(&mut Arrivals::default(), &rsyslog, total / 2);
    assert!(half);
    rsyslog.kill();
    rsyslog.restart();
    write_records(&writer, total / 2..total);
    let notice = wait_until_every(ARRIVAL, POLL, || {
        rsyslog
            .lines()
            .iter()
            .any(|l| l.contains("was interrupted"))
            && distinct(&rsyslog.lines()) >= total / 2 + 100
    });
    let _ = wait_until_every(Duration::from_secs(5), POLL, || {
        distinct(&rsyslog.lines()) >= total
    });
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(notice, "no in-band notice: {err}");
    let lines = rsyslog.lines();
    let line = lines
        .iter()
        .find(|l| l.contains("was interrupted"))
        .unwrap();
    assert!(line.starts_with(&format!(
        "ringlog: forwarding to {url} was interrupted; up to "
    )));
    let bound: usize = line
        .split("up to ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let lost = total - distinct(&lines);
    eprintln!("the drain said up to {bound} may be lost; {lost} were");
    assert!(
        lost <= bound,
        "{lost} lost, more than the {bound} announced"
    );
}
