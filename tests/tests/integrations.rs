//! The `log` and `tracing` integrations with real processes: several `ringlog-test-service`
//! processes (each a small service using the public API as a user would: `log::init`,
//! `tracing_subscriber::fmt().with_writer(writer)`, `registry().with(RingLayer)`)
//! log at once into one ring while a real drain writes the file; the file must hold every
//! event exactly once, one line each, in each thread's order, with its level, target, fields
//! and span context.

#[path = "../src/bin/ringlog-test-service/events.rs"]
mod events;

use events::{expected, Expected, Mode};
use ringlog_tests::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One service process to run.
struct Service {
    mode: Mode,
    id: u32,
    threads: u32,
    events: u64,
}

/// What a finished service reported.
#[derive(Debug)]
struct Ran {
    mode: Mode,
    id: u32,
    events: u64,
    /// (pid, tid, thread index) per thread.
    threads: Vec<(u32, u32, u32)>,
    written: u64,
    dropped: u64,
    drain_alive: bool,
}

impl Ran {
    /// Every record thread `thread` must have produced, in order.
    fn expected(&self, thread: u32) -> Vec<Expected> {
        (0..self.events)
            .flat_map(|seq| expected(self.mode, self.id, thread, seq))
            .collect()
    }
}

fn spawn(ring: &str, s: &Service) -> Child {
    Command::new(bin("ringlog-test-service"))
        .arg(s.mode.name())
        .args(["--ring", ring, "--id", &s.id.to_string()])
        .args(["--events", &s.events.to_string()])
        .args(["--threads", &s.threads.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringlog-test-service")
}

/// Runs the services concurrently and collects their reports.
fn run_services(ring: &str, services: &[Service]) -> Vec<Ran> {
    let children: Vec<_> = services.iter().map(|s| spawn(ring, s)).collect();
    children
        .into_iter()
        .zip(services)
        .map(|(child, s)| {
            let out = String::from_utf8(expect_success(child).stdout).unwrap();
            let field = |line: &str, k: &str| -> Option<String> {
                line.split(' ')
                    .find_map(|f| Some(f.strip_prefix(k)?.strip_prefix('=')?.to_owned()))
            };
            let num = |line: &str, k: &str| field(line, k).and_then(|v| v.parse::<u64>().ok());
            let threads = out
                .lines()
                .filter(|l| l.starts_with("pid="))
                .map(|l| {
                    (
                        num(l, "pid").unwrap() as u32,
                        num(l, "tid").unwrap() as u32,
                        num(l, "thread").unwrap() as u32,
                    )
                })
                .collect::<Vec<_>>();
            assert_eq!(threads.len(), s.threads as usize, "{out}");
            let stats = out
                .lines()
                .find(|l| l.starts_with("stats "))
                .unwrap_or_else(|| panic!("no stats line in {out:?}"));
            Ran {
                mode: s.mode,
                id: s.id,
                events: s.events,
                threads,
                written: num(stats, "written").unwrap(),
                dropped: num(stats, "dropped").unwrap(),
                drain_alive: field(stats, "drain_alive").as_deref() == Some("true"),
            }
        })
        .collect()
}

/// Asserts `got` is exactly `want`, naming the first difference.
fn assert_records(what: &str, got: &[Expected], want: &[Expected]) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        let cut = |e: &Expected| {
            let mut e = e.clone();
            e.msg.truncate(300);
            e
        };
        panic!(
            "{what}: record {i} differs:\n got  {:?}\n want {:?}",
            cut(&got[i]),
            cut(&want[i])
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: record count");
}

/// Checks a `--format json` log against what the services must have produced.
fn check_json_log(out: &Path, runs: &[Ran]) {
    let text = std::fs::read_to_string(out).unwrap();
    let mut seen: HashMap<(u32, u32), Vec<Expected>> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:.200}"));
        assert!(v["ringlog"].is_null(), "drain notice: {line}");
        let key = (
            v["pid"].as_u64().unwrap() as u32,
            v["tid"].as_u64().unwrap() as u32,
        );
        let level = match v["level"].as_str().unwrap() {
            "ERROR" => "ERROR",
            "WARN" => "WARN",
            "INFO" => "INFO",
            "DEBUG" => "DEBUG",
            "TRACE" => "TRACE",
            other => panic!("unexpected level {other:?} in {line:.200}"),
        };
        seen.entry(key).or_default().push(Expected {
            level,
            target: v["target"].as_str().unwrap_or("").to_owned(),
            msg: v["msg"].as_str().unwrap().to_owned(),
        });
    }
    let mut total = 0;
    for run in runs {
        for &(pid, tid, thread) in &run.threads {
            let want = run.expected(thread);
            let got = seen.remove(&(pid, tid)).unwrap_or_default();
            let what = format!("{} service {} thread {thread}", run.mode.name(), run.id);
            assert_records(&what, &got, &want);
            total += want.len();
        }
    }
    assert!(
        seen.is_empty(),
        "records from unknown threads: {:?}",
        seen.keys()
    );
    assert_eq!(text.lines().count(), total);
}

/// Each service's `Writer::stats()` counted exactly its records, none dropped, and saw the
/// drain alive.
fn check_stats(runs: &[Ran]) {
    for run in runs {
        let records: usize = run.threads.iter().map(|t| run.expected(t.2).len()).sum();
        assert_eq!(run.written, records as u64, "{run:?}");
        assert_eq!(run.dropped, 0, "{run:?}");
        assert!(run.drain_alive, "{run:?}");
    }
}

#[test]
fn log_fmt_and_layer_services_in_six_processes_log_every_event_exactly_once() {
    let ring = unique_ring("integrations-json");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    // A 1 MiB ring for ~11 MB of events: it wraps often and the services block on it (the
    // default policy), yet nothing may be lost or split.
    let drain = DrainProcess::start(&ring, &out, &["--format", "json", "--capacity", "1M"]);
    let services: Vec<_> = [Mode::Log, Mode::TracingFmt, Mode::TracingLayer]
        .into_iter()
        .flat_map(|mode| {
            (0..2).map(move |id| Service {
                mode,
                id,
                threads: 2,
                events: 2000,
            })
        })
        .collect();
    let runs = run_services(&ring, &services);
    let (status, err) = drain.stop();
    assert!(status.success(), "drain exit {status}: {err}");
    check_stats(&runs);
    check_json_log(&out, &runs);
}

#[test]
fn the_text_format_shows_level_pid_target_fields_and_span_context() {
    let ring = unique_ring("integrations-text");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "text"]);
    let services: Vec<_> = [Mode::Log, Mode::TracingFmt, Mode::TracingLayer]
        .into_iter()
        .map(|mode| Service {
            mode,
            id: 7,
            threads: 1,
            events: 300,
        })
        .collect();
    let runs = run_services(&ring, &services);
    let (status, err) = drain.stop();
    assert!(status.success(), "drain exit {status}: {err}");
    check_stats(&runs);
    // `2026-01-02T03:04:05.123456789Z LEVEL pid=P target: message`; one thread per process,
    // so each pid's lines are in its order.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut by_pid: HashMap<u32, Vec<String>> = HashMap::new();
    for line in text.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(ts.len() == 30 && ts.ends_with('Z'), "timestamp {ts:?}");
        let pid = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.strip_prefix("pid="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line:.200}"));
        by_pid.entry(pid).or_default().push(rest.to_owned());
    }
    for run in &runs {
        let (pid, _, thread) = run.threads[0];
        let want: Vec<String> = run
            .expected(thread)
            .iter()
            .map(|e| format!("{} pid={pid} {}: {}", e.level, e.target, e.msg))
            .collect();
        let got = by_pid.remove(&pid).unwrap_or_default();
        assert_eq!(got.len(), want.len(), "{} lines", run.mode.name());
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{} line {i}:\n got  {:.300}\n want {:.300}",
                run.mode.name(),
                got[i],
                want[i]
            );
        }
    }
    assert!(by_pid.is_empty(), "lines from unknown pids");
}
