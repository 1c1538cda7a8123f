//! Running the drain like any daemon: size rotation, logrotate (create + SIGHUP, and
//! copytruncate), stat.

use ringlog_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn write_lines(writer: &ringlog_writer::Writer, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let line = format!("{prefix} {i:05} {}", "r".repeat(i % 97));
            writer.write(line.as_bytes()).unwrap();
            line
        })
        .collect()
}

#[test]
fn size_rotation_keeps_n_files_each_under_the_limit_and_never_splits_a_record() {
    let ring = unique_ring("rotsize");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let sent = write_lines(&writer, "rec", 20_000);
    let drain = DrainProcess::start(
        &ring,
        &out,
        &["--rotate-size", "64K", "--rotate-keep", "100"],
    );
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let mut files = vec![out.clone()];
    files.extend(
        (1..=100)
            .map(|n| dir.path().join(format!("app.log.{n}")))
            .filter(|p| p.exists()),
    );
    assert!(
        files.len() > 10,
        "expected many rotations, got {}",
        files.len()
    );
    let mut seen = Vec::new();
    // Oldest first: app.log.N .. app.log.1, then app.log.
    for f in files.iter().rev() {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 64 * 1024, "{} is {len} bytes", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.ends_with('\n'), "{} ends mid-record", f.display());
        seen.extend(text.lines().map(str::to_owned));
    }
    assert_eq!(
        seen, sent,
        "every record once, in order, across the rotated files"
    );

    // With --rotate-keep 2 only the newest two rotated files remain.
    let ring2 = unique_ring("rotkeep");
    let _guard2 = RingGuard(ring2.clone());
    let out2 = dir.path().join("keep.log");
    let writer = ringlog_writer::Writer::open(&ring2).unwrap();
    write_lines(&writer, "k", 5_000);
    let drain = DrainProcess::start(
        &ring2,
        &out2,
        &["--rotate-size", "16K", "--rotate-keep", "2"],
    );
    drain.stop();
    assert!(dir.path().join("keep.log.1").exists() && dir.path().join("keep.log.2").exists());
    assert!(!dir.path().join("keep.log.3").exists());
}

fn logrotate(dir: &Path, config: &str) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(&conf, config).unwrap();
    let out = Command::new(tool("logrotate", "logrotate"))
        .args(["-f", "-s"])
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("this test needs logrotate (apt-get install logrotate; .ci/run installs it)");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logrotate_with_create_and_sighup_loses_nothing() {
    for threading in THREADING {
        logrotate_with_create_and_sighup(threading);
    }
}

fn logrotate_with_create_and_sighup(threading: &[&str]) {
    let ring = unique_ring("logrotatehup");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    let drain = DrainProcess::start(&ring, &out, threading);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let before = write_lines(&writer, "before", 500);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 500));
    logrotate(
        dir.path(),
        &format!(
            "{} {{\n  rotate 3\n  create 0644\n  postrotate\n    kill -HUP {}\n  endscript\n}}\n",
            out.display(),
            drain.pid()
        ),
    );
    let after = write_lines(&writer, "after", 500);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 500));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert_eq!(lines(&dir.path().join("app.log.1")), before);
    assert_eq!(lines(&out), after);
}

#[test]
fn logrotate_copytruncate_loses_nothing_written_after_it() {
    for threading in THREADING {
        logrotate_copytruncate(threading);
    }
}

fn logrotate_copytruncate(threading: &[&str]) {
    let ring = unique_ring("logrotatect");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    let drain = DrainProcess::start(&ring, &out, threading);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let before = write_lines(&writer, "before", 500);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 500));
    logrotate(
        dir.path(),
        &format!("{} {{\n  rotate 3\n  copytruncate\n}}\n", out.display()),
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
    let after = write_lines(&writer, "after", 500);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 500));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert_eq!(lines(&dir.path().join("app.log.1")), before);
    // O_APPEND after the truncation: the file starts with the new records, no hole of zeroes.
    assert_eq!(lines(&out), after);
    assert!(!std::fs::read(&out).unwrap().contains(&0));
}

#[test]
fn stat_reports_geometry_counters_drain_and_producers_as_json() {
    let ring = unique_ring("statjson");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.log");
    let writer = ringlog_writer::Writer::builder(&ring)
        .capacity(1 << 20)
        .open()
        .unwrap();
    write_lines(&writer, "s", 100);
    let drain = DrainProcess::start(&ring, &out, &[]);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 100));
    // The idle writer's chunk (if it opened one) is sealed by the drain before it sleeps.
    assert!(wait_until(Duration::from_secs(10), || stat_json(&ring)
        ["used"]
        == 0));
    let v = stat_json(&ring);
    assert_eq!(v["capacity"], 1 << 20);
    assert_eq!(v["records_out"], 100);
    assert_eq!(v["used"], 0);
    assert_eq!(v["drain"]["alive"], true);
    assert_eq!(v["drain"]["pid"], drain.pid());
    let me = v["producers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == std::process::id())
        .cloned();
    let me = me.expect("this process is listed as a producer");
    assert_eq!(me["written"], 100);
    assert_eq!(me["alive"], true);
    let human = Command::new(bin("ringlog-drain"))
        .args(["stat", "--ring", &ring])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("running, pid") && text.contains("written   100 records"),
        "{text}"
    );
    drain.stop();
}

/// `stat` tells a slot its owner gave back (writer dropped, process exited cleanly) from one
/// whose owner died holding it: `alive` is false for both, as before; `state` says which.
#[test]
fn stat_tells_a_slot_given_back_from_one_whose_owner_died_holding_it() {
    let ring = unique_ring("statstate");
    let _guard = RingGuard(ring.clone());
    let clean = expect_success(
        ProducerSpec::new(&ring, 1, 10, 64)
            .capacity(1 << 20)
            .spawn(),
    );
    let clean = parse_reports(&clean.stdout)[0].pid;
    let mut killed = ProducerSpec::new(&ring, 2, 10, 64);
    killed
        .extra
        .extend(["--fault", "before-commit:kill:5"].map(String::from));
    let killed = killed.spawn();
    let dead = killed.id();
    let out = killed.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL),
        "the producer must die at its fault: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let producers = stat_json(&ring)["producers"].as_array().unwrap().clone();
    let of = |pid: u32| -> Vec<(bool, String)> {
        producers
            .iter()
            .filter(|p| p["pid"] == pid)
            .map(|p| (p["alive"] == true, p["state"].as_str().unwrap().to_owned()))
            .collect()
    };
    assert_eq!(of(clean), [(false, "detached".to_owned())], "{producers:?}");
    assert_eq!(of(dead), [(false, "dead".to_owned())], "{producers:?}");

    let human = Command::new(bin("ringlog-drain"))
        .args(["stat", "--ring", &ring])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    let row = |pid: u32| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("no row for pid {pid}: {text}"))
            .to_owned()
    };
    assert!(row(clean).contains(" detached "), "{text}");
    assert!(row(dead).contains(" dead "), "{text}");
}

/// A process whose writer is dropped but which lives on (both threads that wrote too) no longer
/// counts as an attached producer: `stat` says so, and a drain stopped with SIGTERM gives up its
/// spare link (which would keep the segment's memory in /dev/shm after everyone exits).
#[test]
fn a_dropped_writer_of_a_live_process_is_not_attached_and_the_drain_keeps_no_spare_link() {
    use std::io::BufRead;
    use std::process::Stdio;
    let ring = unique_ring("droppedwriter");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let drain = DrainProcess::start(&ring, &out, &["--format", "json"]);
    let mut producer = Command::new(bin("ringlog-test-producer"))
        .args(["--ring", &ring, "--id", "7", "--records", "100"])
        .arg("--close-then-wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = producer.id();
    let mut said = std::io::BufReader::new(producer.stdout.take().unwrap()).lines();
    let closed = said.any(|l| l.is_ok_and(|l| l == "closed"));
    assert!(closed, "the producer never said it closed its writer");
    assert!(
        wait_until(Duration::from_secs(20), || lines(&out).len() == 200),
        "the producer's records never reached the log"
    );
    assert_detached_across_a_drain_stop(&ring, pid, drain);
    drop(producer.stdin.take());
    let status = producer.wait().unwrap();
    assert!(status.success(), "the producer failed: {status}");
}

/// A real rsyslogd on loopback, receiving on a TCP and a UDP port and writing
/// `APP PROCID SEVERITY MSG` lines to a file.
struct Rsyslog {
    child: std::process::Child,
    tcp: u16,
    udp: u16,
    received: std::path::PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path) -> Rsyslog {
        let free = |udp: bool| {
            if udp {
                std::net::UdpSocket::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            } else {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            }
        };
        let (tcp, udp) = (free(false), free(true));
        let received = dir.join("received.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="ringlog")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="ringlog" rcvbufSize="8m")
template(name="fields" type="string" string="%app-name% %procid% %syslogseverity-text% %msg%\n")
ruleset(name="ringlog") {{ action(type="omfile" file="{received}" template="fields") }}
"#,
                dir = dir.display(),
                received = received.display()
            ),
        )
        .unwrap();
        let child = Command::new(tool("rsyslogd", "rsyslog"))
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("this test needs rsyslog (apt-get install rsyslog; .ci/run installs it)");
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", tcp)).is_ok()
        });
        assert!(up, "rsyslogd did not listen on {tcp}");
        Rsyslog {
            child,
            tcp,
            udp,
            received,
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_to_rsyslog(transport: &str, records: usize) {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path());
    let ring = unique_ring(&format!("syslog{transport}"));
    let _guard = RingGuard(ring.clone());
    let port = if transport == "tcp" {
        rsyslog.tcp
    } else {
        rsyslog.udp
    };
    let url = format!("syslog+{transport}://127.0.0.1:{port}");
    let drain = DrainProcess::start(&ring, Path::new(&url), &[]);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let mut sent = Vec::new();
    for i in 0..records {
        let level = [
            ringlog_core::Level::Info,
            ringlog_core::Level::Warn,
            ringlog_core::Level::Error,
        ][i % 3];
        let msg = format!("event {i} {}", "x".repeat(i % 300));
        writer
            .write_record(
                level,
                if i % 2 == 0 { "" } else { "billing" },
                msg.as_bytes(),
            )
            .unwrap();
        let app = if i % 2 == 0 { ring.as_str() } else { "billing" };
        let severity = ["info", "warning", "err"][i % 3];
        sent.push(format!("{app} {} {severity} {msg}", std::process::id()));
    }
    let arrived = wait_until(Duration::from_secs(30), || {
        lines(&rsyslog.received).len() >= records
    });
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        arrived,
        "only {} of {records} messages reached rsyslog",
        lines(&rsyslog.received).len()
    );
    let mut got = lines(&rsyslog.received);
    if transport == "udp" {
        got.sort();
        sent.sort();
    }
    assert_eq!(got, sent, "every record must arrive once, intact");
}

#[test]
fn records_forwarded_over_tcp_reach_a_real_rsyslog_exactly_once_in_order() {
    forward_to_rsyslog("tcp", 5_000);
}

#[test]
fn records_forwarded_over_udp_reach_a_real_rsyslog() {
    forward_to_rsyslog("udp", 300);
}

#[test]
fn stat_watch_prints_snapshots_with_rates_until_stopped() {
    use std::io::BufRead;
    let ring = unique_ring("statwatch");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let drain = DrainProcess::start(&ring, &dir.path().join("app.log"), &[]);
    let mut watch = Command::new(bin("ringlog-drain"))
        .args(["stat", "--ring", &ring, "--json", "--watch", "0.05"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut snapshots = Vec::new();
    for i in 0..3 {
        write_lines(&writer, &format!("w{i}"), 100);
        let line = lines.next().expect("a snapshot per interval").unwrap();
        snapshots.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
    }
    let _ = watch.kill();
    let _ = watch.wait();
    drain.stop();
    assert!(
        snapshots[0]["records_per_s"].is_null(),
        "no rate before a second snapshot"
    );
    for s in &snapshots[1..] {
        assert!(
            s["records_per_s"].as_f64().is_some() && s["bytes_per_s"].as_f64().is_some(),
            "{s}"
        );
    }
    let counts: Vec<u64> = snapshots
        .iter()
        .map(|s| s["records_out"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
}

// ---------------------------------------------------------------- block reservation

/// Bytes of storage the file holds (st_blocks counts 512-byte units).
fn allocated(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path).unwrap()) * 512
}

/// What a file of `path`'s length needs, with room for extent blocks: more than this means
/// blocks reserved past its end.
fn tight(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .len()
        .next_multiple_of(4096)
        + (64 << 10)
}

/// Whether the drain reserves blocks in `dir`: its filesystem takes `fallocate(KEEP_SIZE)` and
/// is not tmpfs (where the drain does not reserve). Checked here independently of the drain.
fn reservations_work_in(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let probe = dir.join("fallocate-probe");
    let f = std::fs::File::create(&probe).unwrap();
    // SAFETY: a plain syscall on a descriptor we own; the struct is written by the kernel.
    let on_tmpfs = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        libc::fstatfs(f.as_raw_fd(), &mut fs) == 0 && fs.f_type == libc::TMPFS_MAGIC
    };
    // SAFETY: as above.
    let ok = unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20) } == 0;
    let works = ok && !on_tmpfs && allocated(&probe) >= 1 << 20;
    std::fs::remove_file(&probe).unwrap();
    if !works {
        eprintln!(
            "note: {} does not take block reservations (tmpfs, or no fallocate): only checking \
             that none are left behind",
            dir.display()
        );
    }
    works
}

/// A drain writing `app.log` in a fresh directory, with 300 short lines already in it.
struct Logging {
    ring: RingGuard,
    _dir: tempfile::TempDir,
    out: std::path::PathBuf,
    /// Whether the directory takes reservations (see [`reservations_work_in`]).
    works: bool,
    drain: DrainProcess,
    sent: Vec<String>,
}

fn logging(test: &str, extra: &[&str]) -> Logging {
    let ring = unique_ring(test);
    let guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let works = reservations_work_in(dir.path());
    let out = dir.path().join("app.log");
    let drain = DrainProcess::start(&ring, &out, extra);
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let sent = write_lines(&writer, "rec", 300);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 300));
    Logging {
        ring: guard,
        _dir: dir,
        out,
        works,
        drain,
        sent,
    }
}

#[test]
fn a_running_drain_reserves_blocks_past_the_log_and_gives_them_back_at_exit() {
    let l = logging("prealloc", &[]);
    let out = l.out.as_path();
    if l.works {
        // The first append reserved a whole step, far more than 300 short lines need.
        assert!(
            allocated(out) >= ringlog_drain::preallocate::MIN_STEP,
            "{} bytes allocated to a {}-byte log while the drain runs",
            allocated(out),
            std::fs::metadata(out).unwrap().len()
        );
    }
    let (status, err) = l.drain.stop();
    assert!(status.success(), "{err}");
    assert!(
        allocated(out) <= tight(out),
        "{} bytes still allocated to a {}-byte log after the drain exited",
        allocated(out),
        std::fs::metadata(out).unwrap().len()
    );
    assert_eq!(lines(out), l.sent);
}

#[test]
fn preallocate_0_reserves_nothing() {
    let l = logging("prealloc0", &["--preallocate", "0"]);
    let out = l.out.as_path();
    assert!(allocated(out) <= tight(out), "{} bytes", allocated(out));
    let (status, err) = l.drain.stop();
    assert!(status.success(), "{err}");
    assert_eq!(lines(out), l.sent);
}

#[test]
fn rotated_files_keep_no_reserved_blocks() {
    let ring = unique_ring("preallocrot");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    reservations_work_in(dir.path());
    let out = dir.path().join("app.log");
    let drain = DrainProcess::start(
        &ring,
        &out,
        &["--rotate-size", "256K", "--rotate-keep", "100"],
    );
    let writer = ringlog_writer::Writer::open(&ring).unwrap();
    let sent = write_lines(&writer, "rec", 20_000);
    let rotated = |n: u32| dir.path().join(format!("app.log.{n}"));
    let all_lines = || {
        let mut seen = Vec::new();
        for n in (1..=100).rev() {
            seen.extend(lines(&rotated(n)));
        }
        seen.extend(lines(&out));
        seen
    };
    assert!(wait_until(Duration::from_secs(20), || all_lines().len() == sent.len()));
    // Checked while the drain still runs: a rotated file is let go of at once.
    let mut files = 0;
    for n in (1..=100).filter(|&n| rotated(n).exists()) {
        let f = rotated(n);
        assert!(
            allocated(&f) <= tight(&f),
            "{} holds {} bytes for {} bytes of records",
            f.display(),
            allocated(&f),
            std::fs::metadata(&f).unwrap().len()
        );
        files += 1;
    }
    assert!(files > 3, "expected several rotations, got {files}");
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    assert!(allocated(&out) <= tight(&out));
    assert_eq!(all_lines(), sent, "every record once, in order");
}

#[test]
fn blocks_left_reserved_by_a_killed_drain_are_given_back_by_the_next() {
    let l = logging("preallockill", &[]);
    let out = l.out.as_path();
    l.drain.kill();
    if l.works {
        assert!(
            allocated(out) > tight(out),
            "the killed drain held a reservation"
        );
    }
    // The next drain takes the leftover as its reservation, so it gives it back even if it
    // never writes.
    let next = DrainProcess::start(&l.ring.0, out, &[]);
    let (status, err) = next.stop();
    assert!(status.success(), "{err}");
    assert!(
        allocated(out) <= tight(out),
        "{} bytes left allocated to a {}-byte log",
        allocated(out),
        std::fs::metadata(out).unwrap().len()
    );
    assert_eq!(lines(out), l.sent);
    assert!(!std::fs::read(out).unwrap().contains(&0));
}
