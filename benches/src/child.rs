//! Child processes of the harness and the line protocol they speak on their standard streams:
//! a child prints `ready` once set up, waits for one line on stdin (the "go"), does its work,
//! prints `done key=value ...`, and exits 0 once the harness closes its stdin, which it does only
//! after its clock has stopped: a child's teardown (unmapping a ring takes milliseconds) must not
//! run on the CPUs the other children are still timed on. Reading a line never waits past a
//! deadline, and a child dropped while still running is killed and reaped, so a failed run
//! leaves no process behind. This module never decides what a child does.

use crate::BoxError;
use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The `key=value` fields of a `done` line.
#[derive(Debug, Clone, Default)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// Parses `word k1=v1 k2=v2`.
    pub fn parse(line: &str) -> Fields {
        Fields(
            line.split_whitespace()
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// A numeric field.
    pub fn u64(&self, key: &str) -> Result<u64, BoxError> {
        self.0
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("child report lacks a numeric {key}=").into())
    }
}

/// A running child process.
#[derive(Debug)]
pub struct Worker {
    name: String,
    child: Child,
    stdout: Option<ChildStdout>,
    stdin: Option<ChildStdin>,
    pending: Vec<u8>,
    reaped: bool,
}

impl Worker {
    /// Starts `cmd` (its stdio as configured by the caller; pipe stdin and stdout to use
    /// [`Worker::go`] and [`Worker::expect`]). The child gets SIGTERM if the harness dies, so an
    /// interrupted run leaves no drain or collector behind.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Result<Worker, BoxError> {
        use std::os::unix::process::CommandExt;
        let name = name.into();
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Worker {
            stdout: child.stdout.take(),
            stdin: child.stdin.take(),
            name,
            child,
            pending: Vec::new(),
            reaped: false,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Exit status if it has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        self.reaped |= status.is_some();
        status
    }

    fn died(&mut self, what: &str) -> BoxError {
        let status = self
            .child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        self.reaped = true;
        format!("{} exited ({status}) {what}", self.name).into()
    }

    /// The next line on its stdout, waiting at most until `deadline`.
    pub fn read_line(&mut self, deadline: Instant) -> Result<String, BoxError> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_owned());
            }
            let Some(out) = self.stdout.as_mut() else {
                return Err(format!("{}: stdout is not a pipe", self.name).into());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let ready = {
                let fd = out.as_fd();
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, Some(&timeout)) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(format!("poll on {}'s stdout: {e}", self.name).into()),
                }
            };
            if ready == 0 {
                return Err(format!(
                    "{} said nothing for too long (timed out; raise --timeout if the machine is \
                     very slow)",
                    self.name
                )
                .into());
            }
            let mut buf = [0u8; 4096];
            match out.read(&mut buf) {
                Ok(0) => return Err(self.died("before finishing its report")),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading {}'s stdout: {e}", self.name).into()),
            }
        }
    }

    /// Waits for a line starting with `word` and returns its fields.
    pub fn expect(&mut self, word: &str, deadline: Instant) -> Result<Fields, BoxError> {
        let line = self.read_line(deadline)?;
        if line.split_whitespace().next() != Some(word) {
            return Err(format!("{} said {line:?}, expected {word:?}", self.name).into());
        }
        Ok(Fields::parse(&line))
    }

    /// Tells it to start. Its stdin stays open until [`Worker::wait`].
    pub fn go(&mut self) -> Result<(), BoxError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin is not a pipe", self.name))?;
        stdin
            .write_all(b"go\n")
            .map_err(|e| format!("cannot start {}: {e}", self.name).into())
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: rustix::process::Signal) -> io::Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32)
            .ok_or_else(|| io::Error::other("child without a pid"))?;
        rustix::process::kill_process(pid, signal).map_err(io::Error::from)
    }

    /// Closes its stdin (the child's cue to finish) and waits for it to exit, at most until
    /// `deadline` (then kills it); errors unless it exited 0.
    pub fn wait(&mut self, deadline: Instant) -> Result<(), BoxError> {
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.try_exit() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} failed: {status}", self.name).into())
                };
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reaped = true;
                return Err(format!("{} did not exit in time; killed it", self.name).into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's side of the protocol: say `ready`, then wait for the go line.
pub fn ready_then_wait_for_go() -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(b"ready\n")?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "go" {
        return Err(io::Error::other(
            "the harness went away before the start (stdin closed)",
        ));
    }
    Ok(())
}

/// The child's side of the protocol, after its report: returns when the harness closes stdin
/// (its clock has stopped), so the child's teardown is not timed against the others.
pub fn wait_for_release() -> io::Result<()> {
    io::copy(&mut io::stdin().lock(), &mut io::sink()).map(drop)
}

/// The child's side of the protocol: the final report.
pub fn report_done(fields: &[(&str, u64)]) -> io::Result<()> {
    let mut line = String::from("done");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    line.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn a_child_lingers_after_its_report_until_wait_releases_it() {
        // The shell stands in for a role: report, then block on stdin like `wait_for_release`.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo ready; read go; echo done n=7; exec cat >/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut w = Worker::spawn("lingering child", cmd).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        w.expect("ready", deadline).unwrap();
        w.go().unwrap();
        assert_eq!(w.expect("done", deadline).unwrap().u64("n").unwrap(), 7);
        // It cannot have exited: its stdin is still open, so `cat` is still reading.
        assert!(
            w.try_exit().is_none(),
            "the child exited before its release"
        );
        // `wait` closes stdin; without that the child would run into the deadline and be killed.
        w.wait(Instant::now() + Duration::from_secs(30)).unwrap();
    }
}
