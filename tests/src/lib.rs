//! Harness for ringlog's multi-process tests: the built `ringlog-drain` / `ringlog-pipe`
//! binaries and the `ringlog-test-producer` helper as child processes, with what the test kit
//! (`ringlog-testkit`, shared with the benches and the demo) gives: unique ring names, the ring
//! guard, and the verifier that checks a drained log record by record.
//!
//! Records written by the test producer are a pure function of (producer id, sequence number)
//! ([`record`]), so the verifier can regenerate each one and compare bytes: exactly once,
//! untorn, in order.
#![warn(missing_docs, missing_debug_implementations)]

pub mod producer;
pub mod rsyslog;

use ringlog_testkit::process::NotReady;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

pub use ringlog_testkit::json_log::{
    assert_exact, record, verify_json_log, verify_subsequence, Verdict,
};
pub use ringlog_testkit::{ring_path, skip, wait_until, wait_until_every, RingGuard};

/// The drain's two ways of running, as command-line arguments: gathering and writing on one
/// thread, and each batch written on a second thread while the next is gathered. Tests of what
/// the drain does with its output run both. (The default, `auto`, runs the one or the other,
/// switching between batches: its switching is tested in-process with a scripted view of the
/// CPUs, in ringlog-drain's `catch_up` module.)
pub const THREADING: [&[&str]; 2] = [&["--write-thread=never"], &["--write-thread=always"]];

/// A ring name no other test (or test process) uses: `t-<test>-<pid>-<n>`.
pub fn unique_ring(test: &str) -> String {
    ringlog_testkit::unique_ring(&format!("t-{test}"))
}

/// Directory holding the workspace binaries the tests run.
pub fn bin_dir() -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of workspace binary `name`. The first call for each name in a test process runs
/// `cargo build --workspace --bin NAME` (a no-op when `cargo test --workspace` just built it),
/// so a test never runs a stale binary when only this package was rebuilt. Only that binary
/// and what it links are built, with the features the whole workspace gives them (as
/// `cargo test --workspace` builds them: one set of artifacts for both).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let release = bin_dir().file_name().is_some_and(|p| p == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--workspace", "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.push(name.to_owned());
    }
    drop(built);
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} not found after building", path.display());
    path
}

/// Path of the fault-armed build of workspace binary `name` (`ringlog-drain` or
/// `ringlog-test-producer`): `<name>-fault-armed`, built with the `fault-injection` feature by a
/// cargo build of its own the first time a test process asks. Its own name keeps it apart from
/// the binaries users build: the `ringlog-drain` in target/ never honours `RINGLOG_FAULT`.
pub fn armed_bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let release = bin_dir().file_name().is_some_and(|p| p == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "ringlog-tests",
            "--features",
            "fault-injection",
        ])
        .args(["--bin", "ringlog-drain-fault-armed"])
        .args(["--bin", "ringlog-test-producer-fault-armed"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of the fault-armed binaries failed"
        );
    });
    let path = bin_dir().join(format!("{name}-fault-armed"));
    assert!(path.exists(), "{} not found after building", path.display());
    path
}

/// Path of a system tool (`logrotate`, `rsyslogd`, `strace`): from `PATH`, or from the sbin
/// directories apt installs them in (which a non-login `PATH` may lack). Panics with the
/// package to install when absent.
pub fn tool(name: &str, package: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!("this test needs {name} (apt-get install {package}; .ci/run installs it)")
    })
}

/// Path of a system tool as for [`tool`], `None` when absent (for a test that skips then).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `ringlog-drain` child process.
#[derive(Debug)]
pub struct DrainProcess {
    /// The child.
    pub child: Child,
}

impl DrainProcess {
    /// Starts `ringlog-drain --ring RING --out OUT` with extra arguments; stderr is captured.
    pub fn start(ring: &str, out: &Path, extra: &[&str]) -> DrainProcess {
        Self::start_with_env(ring, out, extra, &[])
    }

    /// Starts a drain armed to die (`RINGLOG_FAULT`), without waiting for it to be ready: it may
    /// die before anyone could see it hold the ring. Use [`DrainProcess::wait_exit`].
    /// It runs the fault-armed build ([`armed_bin`]).
    pub fn start_doomed(ring: &str, out: &Path, extra: &[&str], fault: &str) -> DrainProcess {
        Self::start_doomed_with_env(ring, out, extra, fault, &[])
    }

    /// As [`DrainProcess::start_doomed`], with more environment variables (such as
    /// `RINGLOG_FAULT_SPELLS=eager`, which the armed build honours).
    pub fn start_doomed_with_env(
        ring: &str,
        out: &Path,
        extra: &[&str],
        fault: &str,
        env: &[(&str, &str)],
    ) -> DrainProcess {
        let drain = armed_bin("ringlog-drain");
        let env: Vec<_> = [("RINGLOG_FAULT", fault)]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        Self::spawn(&drain, ring, out, extra, &env)
    }

    /// Spawns `DRAIN --ring RING --out OUT EXTRA...` with `env`, stderr piped.
    fn spawn(
        drain: &Path,
        ring: &str,
        out: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> DrainProcess {
        let child = Command::new(drain)
            .envs(env.iter().copied())
            .args(["--ring", ring, "--out"])
            .arg(out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringlog-drain");
        DrainProcess { child }
    }

    /// As [`DrainProcess::start`], with environment variables.
    pub fn start_with_env(
        ring: &str,
        out: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> DrainProcess {
        let mut drain = Self::spawn(&bin("ringlog-drain"), ring, out, extra, env);
        // Ready once its loop runs: it has taken the ring, opened its output, made the spare
        // link and recovered; a test that then kills it, or moves, removes or breaks the
        // output, does not race its start.
        let ready = ringlog_testkit::wait_for_drain(
            ring,
            drain.child.id(),
            Duration::from_secs(20),
            Duration::from_millis(2),
            || drain.child.try_wait().ok().flatten(),
        );
        match ready {
            Ok(()) => {}
            // Its stderr is complete: it has exited.
            Err(e @ NotReady::Exited(_)) => panic!("ring {ring}: {e}: {}", drain.finish().1),
            Err(e @ NotReady::TimedOut(_)) => panic!("ring {ring}: {e}: {}", drain.kill().1),
        }
        drain
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the drain to exit by itself (e.g. killed by an armed fault).
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        self.finish()
    }

    /// Waits up to `timeout` for the drain to exit by itself; kills it and panics, with its
    /// stderr, if it does not (a fault point it never reached).
    pub fn wait_exit_within(mut self, timeout: Duration) -> (ExitStatus, String) {
        let exited = wait_until_every(timeout, Duration::from_millis(5), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let err = self.kill().1;
            panic!("the drain did not exit within {timeout:?}: {err}");
        }
        self.finish()
    }

    /// The drain's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits; returns the exit status and stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        self.finish()
    }

    /// SIGKILL, then waits.
    pub fn kill(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGKILL);
        self.finish()
    }

    fn finish(&mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("wait for drain");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}

impl Drop for DrainProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Arguments of one `ringlog-test-producer` run.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    /// Ring name.
    pub ring: String,
    /// Producer id (part of every record).
    pub id: u32,
    /// Records to write.
    pub records: u64,
    /// Largest record size.
    pub max_size: usize,
    /// Extra arguments (e.g. `--policy drop`).
    pub extra: Vec<String>,
}

impl ProducerSpec {
    /// A producer of `records` records of up to `max_size` bytes.
    pub fn new(ring: &str, id: u32, records: u64, max_size: usize) -> ProducerSpec {
        ProducerSpec {
            ring: ring.to_owned(),
            id,
            records,
            max_size,
            extra: Vec::new(),
        }
    }

    /// Creates the ring with `bytes` of capacity if this producer is the first to open it.
    pub fn capacity(mut self, bytes: u64) -> ProducerSpec {
        self.extra
            .extend(["--capacity".to_owned(), bytes.to_string()]);
        self
    }

    /// Starts it: the fault-armed build ([`armed_bin`]) when it is asked to crash (`--fault`).
    pub fn spawn(&self) -> Child {
        let armed = self.extra.iter().any(|a| a == "--fault");
        let producer = if armed {
            armed_bin("ringlog-test-producer")
        } else {
            bin("ringlog-test-producer")
        };
        Command::new(producer)
            .args(["--ring", &self.ring, "--id", &self.id.to_string()])
            .args([
                "--records",
                &self.records.to_string(),
                "--max-size",
                &self.max_size.to_string(),
            ])
            .args(&self.extra)
            // `--pause-at` waits for its stdin to close.
            .stdin(if self.extra.iter().any(|a| a == "--pause-at") {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringlog-test-producer")
    }
}

/// Waits for a producer and returns its output; panics with its stderr if it failed.
pub fn expect_success(child: Child) -> Output {
    let out = child.wait_with_output().expect("wait for child");
    assert!(
        out.status.success(),
        "child failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a test producer reported about one of its threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerReport {
    /// Process id.
    pub pid: u32,
    /// Thread id (the key of the JSON log's `tid`).
    pub tid: u32,
    /// Producer id its records were generated for.
    pub id: u32,
    /// Records written.
    pub written: u64,
    /// Records dropped by the full policy.
    pub dropped: u64,
}

/// Parses the `pid= tid= id= written= dropped=` lines a test producer prints.
pub fn parse_reports(stdout: &[u8]) -> Vec<ProducerReport> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let field = |k: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(k)?.strip_prefix('=')?.parse::<u64>().ok())
            };
            Some(ProducerReport {
                pid: field("pid")? as u32,
                tid: field("tid")? as u32,
                id: field("id")? as u32,
                written: field("written")?,
                dropped: field("dropped")?,
            })
        })
        .collect()
}

/// Maps each reported thread id to its producer id, for [`verify_json_log`].
pub fn tid_map(reports: &[ProducerReport]) -> HashMap<u32, u32> {
    reports.iter().map(|r| (r.tid, r.id)).collect()
}

/// The spare link a drain keeps beside ring `ring`'s segment while it runs, and after a clean
/// stop only while the segment may still get records (see `ringlog_drain::segment_name`).
pub fn spare_link(ring: &str) -> PathBuf {
    ringlog_drain::segment_name::spare_path(&ring_path(ring))
}

/// What `ringlog-drain stat --ring RING --json` says of ring `ring` (it must succeed).
pub fn stat_json(ring: &str) -> serde_json::Value {
    let o = Command::new(bin("ringlog-drain"))
        .args(["stat", "--ring", ring, "--json"])
        .output()
        .expect("run ringlog-drain stat");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stat --json")
}

/// The registry slots of process `pid` that `ringlog-drain stat --json` shows attached (their
/// owner holds the slot's lock) in ring `ring`: its JSON objects, so a failure shows them.
pub fn attached_slots(ring: &str, pid: u32) -> Vec<serde_json::Value> {
    stat_json(ring)["producers"]
        .as_array()
        .expect("a producers list")
        .iter()
        .filter(|p| p["pid"] == pid && p["alive"] == true)
        .cloned()
        .collect()
}

/// For a process `pid` whose writers are all gone while it lives on: `stat` shows none of its
/// slots attached, `drain` stops cleanly on SIGTERM without keeping its spare link (which would
/// keep the segment's memory in /dev/shm after everyone exits), and `stat` still shows none
/// attached. Returns the drain's stderr.
pub fn assert_detached_across_a_drain_stop(ring: &str, pid: u32, drain: DrainProcess) -> String {
    let attached = attached_slots(ring, pid);
    assert!(
        attached.is_empty(),
        "attached while the drain runs: {attached:?}"
    );
    let (status, stderr) = drain.stop();
    assert!(status.success(), "drain: {status}: {stderr}");
    let spare = spare_link(ring);
    assert!(
        !spare.exists(),
        "the stopped drain kept {}: {stderr}",
        spare.display()
    );
    let attached = attached_slots(ring, pid);
    assert!(
        attached.is_empty(),
        "attached after the drain stopped: {attached:?}"
    );
    stderr
}
