//! `ringlog-demo`: the whole path, end to end, with real processes. Starts a drain process on a
//! fresh ring, spawns producer processes that write records of mixed sizes, verifies the log
//! record by record (exactly once, untorn, in order per producer), then does the same work with
//! one O_APPEND `write(2)` per record and compares.
//!
//! Every process is this binary: the demo, and the hidden roles it spawns (`drain`, which runs
//! `ringlog-drain`'s own command line, `producer` and `append`). So `cargo run -p ringlog-demo`
//! builds everything it runs, and the drain library links neither the writer nor the demo.
//! The records and their check are the test kit's ([`ringlog_testkit::record`]).

use clap::{Parser, Subcommand};
use ringlog_testkit::cpu_distance;
use ringlog_testkit::machine::{self, Load};
use ringlog_testkit::record::{self, RecordBuf, SizeSpec, Verdict};
use ringlog_testkit::{warm_page_cache, RingGuard};
use ringlog_writer::Writer;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error>;

/// Run the end-to-end demo: 4 producer processes, 1,000,000 records, verified, vs O_APPEND.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    demo: DemoOptions,
}

/// Options of the demo.
#[derive(clap::Args, Debug, Clone)]
struct DemoOptions {
    /// Total records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Producer processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=MAX_PRODUCERS))]
    producers: u32,
    /// Keep the logs in this directory (default: a new one under the temp dir, removed once
    /// the log is verified).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// As many producers as the records' id prefix can tell apart.
const MAX_PRODUCERS: i64 = record::MAX_ID as i64 + 1;

/// The roles the demo runs itself as (`drain` is taken before parsing: see [`main`]).
#[derive(Subcommand, Debug)]
enum Role {
    /// Write `records` records as producer `id` into ring `ring`.
    #[command(hide = true)]
    Producer {
        #[arg(long)]
        ring: String,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        records: u64,
    },
    /// The same records, one O_APPEND `write(2)` each, into `path`.
    #[command(hide = true)]
    Append {
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        records: u64,
    },
}

/// The first argument that makes this process the drain.
const DRAIN_ROLE: &str = "drain";

/// The records' sizes: 40 B to 128 KiB, about 240 B on average.
const SIZES: SizeSpec = SizeSpec::Mixed;

fn main() -> ExitCode {
    // The drain role goes to the drain's command line before anything else parses: it installs
    // its signal handlers first thing.
    if std::env::args_os().nth(1).is_some_and(|a| a == DRAIN_ROLE) {
        let args = std::iter::once(OsString::from("ringlog-drain"));
        return ringlog_drain::cli::main_from(args.chain(std::env::args_os().skip(2)));
    }
    let cli = Cli::parse();
    let (what, result) = match cli.role {
        None => ("ringlog-demo".to_owned(), run(&cli.demo)),
        Some(Role::Producer { ring, id, records }) => {
            (format!("demo producer {id}"), produce(&ring, id, records))
        }
        Some(Role::Append { path, id, records }) => (
            format!("demo O_APPEND writer {id}"),
            append(&path, id, records).map_err(Into::into),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The `producer` role: records `0..records` of producer `id`, one `Writer::write` each.
fn produce(ring: &str, id: u32, records: u64) -> Result<(), BoxError> {
    let writer = Writer::open(ring)?;
    let mut rec = RecordBuf::new(id, SIZES);
    for seq in 0..records {
        writer.write(rec.make(seq))?;
    }
    Ok(())
}

/// The `append` role: the same records, one O_APPEND `write(2)` each.
fn append(path: &Path, id: u32, records: u64) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    let mut rec = RecordBuf::new(id, SIZES);
    for seq in 0..records {
        file.write_all(rec.make(seq))?;
    }
    Ok(())
}

/// The work both sides do: `producers` processes of `per` records each.
#[derive(Debug, Clone, Copy)]
struct Work {
    producers: u32,
    per: u64,
}

impl Work {
    fn records(&self) -> u64 {
        self.per * u64::from(self.producers)
    }

    /// Spawns one process per producer: this binary with `args(id)`; waits for all of them.
    fn run_producers(
        &self,
        exe: &Path,
        what: &str,
        args: impl Fn(u32) -> Vec<String>,
    ) -> Result<(), BoxError> {
        let children = (0..self.producers)
            .map(|id| spawn(exe, &args(id)))
            .collect::<io::Result<Vec<_>>>()?;
        for mut c in children {
            let status = c.wait()?;
            if !status.success() {
                return Err(format!("a {what} process failed: {status}").into());
            }
        }
        Ok(())
    }

    fn verify(&self, log: &Path) -> io::Result<Verdict> {
        record::verify(log, self.producers, self.per, SIZES)
    }
}

fn spawn(exe: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> io::Result<Child> {
    Command::new(exe).args(args).stdin(Stdio::null()).spawn()
}

/// A drain process, killed if it is still running when dropped (an error on the way).
struct DrainChild(Child);

impl Drop for DrainChild {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What one side measured and found.
struct Side {
    /// Until every record was in the file.
    took: Duration,
    /// Until the producers were done (ringlog's side: the drain writes on after them).
    producers_took: Duration,
    verdict: Verdict,
}

/// ringlog's side: a drain process on ring `ring` into `log`, the producers write into the ring;
/// timed from when the drain runs until it has written everything and exited.
fn ringlog_side(exe: &Path, ring: &str, log: &Path, work: Work) -> Result<Side, BoxError> {
    let _ring = RingGuard(ring.to_owned());
    let log_arg = log.to_str().ok_or("non-UTF-8 path")?;
    let mut drain = DrainChild(spawn(exe, &[DRAIN_ROLE, "--ring", ring, "--out", log_arg])?);
    // Creating the ring is a one-time set-up (like creating the log file), and on a machine
    // whose free memory is cold it can take a large part of a second: start the clock once the
    // drain runs, as a service would find it.
    ringlog_testkit::wait_for_drain(
        ring,
        drain.0.id(),
        Duration::from_secs(30),
        Duration::from_millis(5),
        || drain.0.try_wait().ok().flatten(),
    )?;
    // Only now: the ring's pages would otherwise take the warmed ones.
    warm_page_cache(
        log.parent().ok_or("no log directory")?,
        SIZES.total_bytes(work.producers, work.per),
    )?;
    let started = Instant::now();
    let produced = work.run_producers(exe, "producer", |id| {
        let (id, per) = (id.to_string(), work.per.to_string());
        ["producer", "--ring", ring, "--id", &id, "--records", &per]
            .map(String::from)
            .to_vec()
    });
    let producers_took = started.elapsed();
    // SAFETY: plain kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(drain.0.id() as i32, libc::SIGTERM) };
    let drain_status = drain.0.wait()?;
    let took = started.elapsed();
    produced?;
    if !drain_status.success() {
        return Err(format!("the drain process failed: {drain_status}").into());
    }
    let verdict = work.verify(log)?;
    Ok(Side {
        took,
        producers_took,
        verdict,
    })
}

/// The other side: the producers append to `log` themselves, one `write(2)` per record.
fn append_side(exe: &Path, log: &Path, work: Work) -> Result<Side, BoxError> {
    warm_page_cache(
        log.parent().ok_or("no log directory")?,
        SIZES.total_bytes(work.producers, work.per),
    )?;
    let started = Instant::now();
    let path = log.to_str().ok_or("non-UTF-8 path")?;
    work.run_producers(exe, "O_APPEND writer", |id| {
        let (id, per) = (id.to_string(), work.per.to_string());
        ["append", "--path", path, "--id", &id, "--records", &per]
            .map(String::from)
            .to_vec()
    })?;
    let took = started.elapsed();
    let verdict = work.verify(log)?;
    Ok(Side {
        took,
        producers_took: took,
        verdict,
    })
}

fn describe(label: &str, records: u64, side: &Side) -> String {
    let secs = side.took.as_secs_f64();
    let v = &side.verdict;
    format!(
        "  {label:<9} {records} records, {:.1} MB in {secs:.2} s: {:.0} records/s, {:.0} MB/s; {}",
        v.bytes as f64 / 1e6,
        records as f64 / secs,
        v.bytes as f64 / 1e6 / secs,
        if v.is_perfect() {
            "verified: every record exactly once, none torn, in order per producer".to_owned()
        } else {
            format!("VERIFICATION FAILED: {}", v.summary())
        }
    )
}

/// Where the logs go: `--dir`, kept; or a new directory under the temp dir, removed at the end
/// unless verification failed.
fn scratch(dir: Option<&Path>) -> io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Ok((d.to_path_buf(), None))
        }
        None => {
            let t = tempfile::Builder::new().prefix("ringlog-demo-").tempdir()?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

/// Runs the demo and prints what it did. Errors if verification fails.
fn run(options: &DemoOptions) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let ring = format!("demo-{}", std::process::id());
    let (dir, temp) = scratch(options.dir.as_deref())?;
    let log = dir.join("ringlog.log");
    let append_log = dir.join("o_append.log");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&append_log);
    let work = Work {
        producers: options.producers,
        per: options.records / u64::from(options.producers),
    };
    println!(
        "ringlog demo: {} producer processes x {} records of mixed sizes (40 B to 128 KiB) \
         into one log, through ring '{ring}' and one drain process",
        work.producers, work.per
    );
    // The figures depend on the machine and on what else runs on it: say both.
    println!("  machine: {}", machine::describe(&dir).line());
    // Producers on two CPUs move the ring's tail between them once a record: how long a move
    // takes now (a VM's host may place its vCPUs near each other or not) moves the figures.
    println!(
        "  before:  {}; {}",
        Load::now().line(),
        cpu_distance::line_now()
    );
    let ringlog = ringlog_side(&exe, &ring, &log, work)?;
    let o_append = append_side(&exe, &append_log, work)?;
    let _ = std::fs::remove_file(&append_log);
    println!("{}", describe("ringlog", work.records(), &ringlog));
    println!(
        "            (its producers were done after {:.2} s; everything was in the file {:.2} s later)",
        ringlog.producers_took.as_secs_f64(),
        (ringlog.took - ringlog.producers_took).as_secs_f64()
    );
    println!("{}", describe("O_APPEND", work.records(), &o_append));
    println!(
        "  ringlog was {:.2}x as fast as one O_APPEND write(2) per record, end to end (until all records were in the file)",
        o_append.took.as_secs_f64() / ringlog.took.as_secs_f64()
    );
    println!(
        "  after:   {}; {}",
        Load::now().line(),
        cpu_distance::line_now()
    );
    finish(
        &log,
        ringlog.verdict.lines,
        ringlog.verdict.is_perfect(),
        temp,
    )
}

/// Keeps the log where `--dir` said, or removes the scratch directory; a log that failed
/// verification is always kept.
fn finish(
    log: &Path,
    lines: u64,
    perfect: bool,
    temp: Option<tempfile::TempDir>,
) -> Result<(), BoxError> {
    if !perfect {
        if let Some(t) = temp {
            // Kept for inspection.
            let _ = t.keep();
        }
        return Err(format!(
            "ringlog output failed verification; log kept: {}",
            log.display()
        )
        .into());
    }
    match temp {
        Some(t) => {
            println!("  log: {lines} lines, verified and removed (pass --dir DIR to keep it)");
            t.close()?;
        }
        None => println!("  log: {} ({lines} lines)", log.display()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
