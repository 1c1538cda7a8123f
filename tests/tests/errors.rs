//! Bad input gets a clear error that says what to do, and loses nothing.

use ringlog_core::OpenError;
use ringlog_tests::*;
use ringlog_writer::{WriteError, Writer};
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(bin_name: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin(bin_name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_ring_names_are_refused_with_the_rule() {
    for name in ["", "a/b", "../etc", "x".repeat(65).as_str(), "sp ace"] {
        let e = Writer::open(name).unwrap_err();
        assert!(
            matches!(e, OpenError::InvalidName { .. }),
            "{name:?}: {e:?}"
        );
        assert!(
            e.to_string()
                .contains("1 to 64 characters from A-Z a-z 0-9 . _ -"),
            "{e}"
        );
    }
    let (code, err) = run("ringlog-drain", &["--ring", "a/b", "--out", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid ring name \"a/b\""), "{err}");
}

#[test]
fn a_missing_ring_without_create_says_how_to_start_it() {
    let ring = unique_ring("missing");
    let e = Writer::builder(&ring).create(false).open().unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("start `ringlog-drain --ring {ring}`")),
        "{e}"
    );
    assert!(!ring_path(&ring).exists(), "create(false) must not create");
    let (code, err) = run("ringlog-drain", &["stat", "--ring", &ring]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_file_that_is_not_a_ring_is_refused_not_mapped_blindly() {
    let ring = unique_ring("garbage");
    let _guard = RingGuard(ring.clone());
    for contents in [vec![0xabu8; 1 << 20], b"short".to_vec(), vec![0u8; 8192]] {
        std::fs::write(ring_path(&ring), &contents).unwrap();
        let e = Writer::open(&ring).unwrap_err();
        assert!(matches!(e, OpenError::Invalid { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&ring) && text.contains("remove the file"),
            "{text}"
        );
    }
    let (code, err) = run("ringlog-drain", &["--ring", &ring, "--out", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not usable"), "{err}");
    // Each sentence once: the drain's error is the ring's, whose cause follows it.
    assert_eq!(err.matches("is not usable").count(), 1, "{err}");
    assert_eq!(err.matches("caused by:").count(), 1, "{err}");
}

#[test]
fn a_newer_layout_version_is_a_version_mismatch() {
    let ring = unique_ring("version");
    let _guard = RingGuard(ring.clone());
    drop(Writer::builder(&ring).capacity(1 << 16).open().unwrap());
    let path = ring_path(&ring);
    let mut bytes = std::fs::read(&path).unwrap();
    let version = ringlog_core::layout::off::VERSION;
    bytes[version..version + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = Writer::open(&ring).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("layout version 99") && text.contains("same ringlog version"),
        "{text}"
    );
}

#[test]
fn a_capacity_mismatch_is_reported() {
    let ring = unique_ring("capacity");
    let _guard = RingGuard(ring.clone());
    drop(Writer::builder(&ring).capacity(1 << 16).open().unwrap());
    let e = Writer::builder(&ring).capacity(1 << 20).open().unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::CapacityMismatch {
                found: 65536,
                asked: 1048576,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("drop the capacity option"), "{e}");
}

#[test]
fn an_oversized_record_is_refused_whole_and_nothing_is_written() {
    let ring = unique_ring("oversized");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let writer = Writer::builder(&ring).capacity(1 << 16).open().unwrap();
    let max = writer.max_record() as usize;
    assert_eq!(max, (1 << 16) / 4);
    writer.write(&vec![b'a'; max]).unwrap();
    match writer.write(&vec![b'b'; max + 1]) {
        Err(WriteError::TooLarge { len, max: m }) => assert_eq!((len, m as usize), (max + 1, max)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let e = writer.write(&vec![b'b'; max + 1]).unwrap_err().to_string();
    assert!(
        e.contains("larger than the ring's max record size") && e.contains("split it"),
        "{e}"
    );
    writer.write(b"after").unwrap();
    let drain = DrainProcess::start(&ring, &out, &[]);
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let log = std::fs::read(&out).unwrap();
    let lines: Vec<&[u8]> = log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], vec![b'a'; max].as_slice());
    assert_eq!(lines[1], b"after");
}

#[test]
fn ringlog_pipe_reports_an_overlong_line_and_keeps_the_others() {
    let ring = unique_ring("pipelong");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    drop(Writer::builder(&ring).capacity(1 << 16).open().unwrap());
    let input = dir.path().join("in");
    let long = "x".repeat(100_000);
    std::fs::write(&input, format!("first\n{long}\nthird\nno newline at end")).unwrap();
    let out_pipe = Command::new(bin("ringlog-pipe"))
        .args(["--ring", &ring])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(out_pipe.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out_pipe.stderr);
    assert!(
        err.contains("line 2 is longer than the ring's max record size"),
        "{err}"
    );
    let drain = DrainProcess::start(&ring, &out, &[]);
    drain.stop();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "first\nthird\nno newline at end\n"
    );
}

#[test]
fn an_unwritable_output_and_a_second_drain_are_start_up_errors() {
    let ring = unique_ring("drainerrs");
    let _guard = RingGuard(ring.clone());
    let (code, err) = run(
        "ringlog-drain",
        &["--ring", &ring, "--out", "/nonexistent-dir/x.log"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot open output /nonexistent-dir/x.log"),
        "{err}"
    );
    // The cause is printed once, as the error's cause, not also inside its sentence.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let first = DrainProcess::start(&ring, &dir.path().join("a.log"), &[]);
    let (code, err) = run("ringlog-drain", &["--ring", &ring, "--out", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("already has a drain (pid"), "{err}");
    let (status, _) = first.stop();
    assert!(status.success());
}

/// One size parser for every size option: what `ringlog-drain --capacity` takes,
/// `ringlog-pipe --capacity` takes too.
#[test]
fn ringlog_pipe_and_the_drain_take_the_same_sizes() {
    for (size, bytes) in [("64K", 64u64 << 10), ("1M", 1 << 20), ("131072", 128 << 10)] {
        let ring = unique_ring("pipesize");
        let _guard = RingGuard(ring.clone());
        let mut pipe = Command::new(bin("ringlog-pipe"))
            .args(["--ring", &ring, "--capacity", size])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        pipe.stdin.take().unwrap().write_all(b"one line\n").unwrap();
        let out = pipe.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ringlog-pipe --capacity {size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let location = ringlog_core::Location::Name(ring.clone());
        let stat = ringlog_drain::stat::snapshot(&location).unwrap();
        assert_eq!(stat.capacity, bytes, "{size}");
        // The drain reads the same spelling as the same capacity.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.log");
        let drain = DrainProcess::start(&ring, &out, &["--capacity", size]);
        let (status, err) = drain.stop();
        assert!(status.success(), "{err}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "one line\n");
    }
}

/// The messages of a failed start-up without the prefixes, one per printed line.
fn sentences(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .map(|l| l.trim_start())
        .map(|l| l.strip_prefix("ringlog-drain: ").unwrap_or(l))
        .map(|l| l.strip_prefix("caused by: ").unwrap_or(l))
        .collect()
}

#[test]
fn start_up_errors_say_each_thing_once() {
    let ring = unique_ring("onceerr");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let cases: Vec<Vec<String>> = vec![
        // An output directory that does not exist.
        vec![
            "--ring".into(),
            ring.clone(),
            "--out".into(),
            missing.join("x.log").display().to_string(),
        ],
        // A ring at an explicit path in a directory that does not exist.
        vec![
            "--ring-path".into(),
            missing.join("seg").display().to_string(),
            "--out".into(),
            dir.path().join("y.log").display().to_string(),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run("ringlog-drain", &args);
        assert_eq!(code, 2, "{err}");
        let said = sentences(&err);
        assert!(!said.is_empty(), "{args:?}: nothing said");
        for (i, later) in said.iter().enumerate() {
            for earlier in &said[..i] {
                assert!(
                    !earlier.contains(later),
                    "{args:?}: {later:?} was already said in {earlier:?}:\n{err}"
                );
            }
        }
        assert!(err.contains("No such file or directory"), "{err}");
    }
}

/// A SIGTERM that reaches the drain before it could possibly be ready (it is pending when the
/// drain's code starts, because its parent blocked it) is a clean stop, exit 0, not a kill
/// with status 143 and not a drain that can no longer be stopped.
#[test]
fn a_sigterm_at_the_drains_first_instant_is_a_clean_stop() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let ring = unique_ring("earlyterm");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let mut cmd = Command::new(bin("ringlog-drain"));
    cmd.args(["--ring", &ring, "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls: sigprocmask and raise. The
    // blocked SIGTERM stays pending across exec, so it is there from the drain's first
    // instruction on.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::raise(libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let exited = wait_until(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        exited,
        "the drain ignored a SIGTERM that came at its start: {err}"
    );
    assert_eq!(status.signal(), None, "killed by a signal: {err}");
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn writing_behind_a_claim_the_same_thread_holds_on_a_full_ring_is_an_error_not_a_deadlock() {
    use std::io::Write as _;
    let ring = unique_ring("selfdeadlock");
    let _guard = RingGuard(ring.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    // Block, the default: with a drain running it would wait for as long as the drain lives.
    let writer = Writer::builder(&ring).capacity(1 << 16).open().unwrap();
    // A second handle on the same ring: its own slot for this thread, the same deadlock.
    let other = Writer::builder(&ring).open().unwrap();
    let drain = DrainProcess::start(&ring, &out, &[]);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut written = 0u64;
        for (round, through) in [(1, &writer), (2, &other)] {
            let mut claim = writer.claim(64).unwrap();
            write!(claim, "held {round}").unwrap();
            loop {
                match through.write(&[b'x'; 1000]) {
                    Ok(()) => written += 1,
                    Err(WriteError::WouldDeadlock) => break,
                    Err(e) => {
                        let _ = done.send(Err(format!("round {round}: {e}")));
                        return;
                    }
                }
                assert!(written < 10_000, "a 64 KiB ring never filled");
            }
            claim.commit();
        }
        let _ = done.send(Ok((written, writer.stats(), other.stats())));
    });
    // Generous: the writes take milliseconds; only a thread waiting for itself takes longer.
    let (written, mine, theirs) = result
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the writing thread is still blocked behind its own claim (self-deadlock)")
        .unwrap();
    assert_eq!(
        mine.dropped + theirs.dropped,
        2,
        "each refused write is counted"
    );
    assert_eq!(mine.written + theirs.written, written + 2);
    let e = WriteError::WouldDeadlock.to_string();
    assert!(e.contains("commit or drop the claim first"), "{e}");

    let log_has_everything = || {
        let log = std::fs::read_to_string(&out).unwrap_or_default();
        log.lines().filter(|l| l.starts_with('x')).count() as u64 == written
            && log.contains("held 1\n")
            && log.contains("held 2\n")
    };
    assert!(wait_until(
        std::time::Duration::from_secs(30),
        log_has_everything
    ));
    let (status, err) = drain.stop();
    assert!(status.success(), "{err}");
    let log = std::fs::read_to_string(&out).unwrap();
    let reported: u64 = log
        .lines()
        .filter_map(|l| l.strip_prefix("ringlog: dropped "))
        .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(reported, 2, "the drain names both lost records:\n{log}");
}
