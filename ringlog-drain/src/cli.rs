//! The `ringlog-drain` command line: argument parsing, signals, exit codes. Exit codes: 0 done
//! (SIGTERM/SIGINT drained everything committed), 1 the work failed (demo verification), 2
//! usage or start-up error (bad ring, output not writable, another drain running).

use crate::demo;
use crate::drain::{Drain, DrainOptions, FsyncPolicy};
use crate::format::Format;
use crate::output::{Interval, OutputSpec, Rotation};
use crate::stat;
use clap::{Parser, Subcommand};
use ringlog_core::Location;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Drain a ringlog shared-memory ring into a log file, standard output or a syslog receiver.
///
/// Examples:
///   ringlog-drain --ring myservice --out /var/log/myservice.log
///   ringlog-drain --ring myservice --out - --format json
///   ringlog-drain --ring myservice --out app.log --format text --rotate-size 100M --rotate-keep 10
///   ringlog-drain --ring myservice --out syslog+tcp://logs.internal:6514
///   ringlog-drain stat --ring myservice --watch
///   ringlog-drain demo
///
/// Signals: SIGTERM/SIGINT write everything committed, then exit 0; SIGHUP reopens the output.
/// Exit codes: 0 done; 1 the work failed (demo verification); 2 usage or start-up error.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug)]
struct RingArgs {
    /// Ring name (/dev/shm/ringlog-NAME).
    #[arg(long, required_unless_present = "path")]
    ring: Option<String>,
    /// Explicit segment path instead of a name.
    #[arg(long = "ring-path", id = "path", conflicts_with = "ring")]
    path: Option<PathBuf>,
}

impl RingArgs {
    fn location(&self) -> Location {
        match (&self.path, &self.ring) {
            (Some(p), _) => Location::Path(p.clone()),
            (None, Some(r)) => Location::Name(r.clone()),
            (None, None) => Location::Name(String::new()),
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    ring: Option<RingArgs>,
    /// Output: a file (appended to), - for standard output, or syslog+tcp://HOST:PORT /
    /// syslog+udp://HOST:PORT (RFC 5424; --format is then ignored).
    #[arg(long)]
    out: Option<String>,
    /// Capacity when creating the ring (default 4M; power of two). Must match an existing ring.
    #[arg(long, value_parser = parse_size)]
    capacity: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// Durability: never (default), batch (fdatasync each batch), or MS (at most every MS ms).
    #[arg(long, default_value = "never")]
    fsync: FsyncPolicy,
    /// File mode when creating the ring, in octal (default 600).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<u32>,
    /// Rotate the output before it grows past SIZE (e.g. 100M); OUT becomes OUT.1, ...
    #[arg(long, value_parser = parse_size)]
    rotate_size: Option<u64>,
    /// Also rotate at the start of every UTC hour or day.
    #[arg(long, value_enum)]
    rotate_interval: Option<Interval>,
    /// Rotated files to keep (OUT.1 .. OUT.N); older ones are deleted.
    #[arg(long, default_value_t = 5)]
    rotate_keep: u32,
    /// Reserve disk blocks ahead of the end of the output file, up to SIZE at a time (and at
    /// most a quarter of the file): appends into reserved blocks are much cheaper on ext4. The
    /// file's length never includes them; they are given back at rotation and exit. 0: off.
    #[arg(long, value_parser = parse_size, default_value = "8M")]
    preallocate: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show a ring's state: fill, counters, drain, producers.
    Stat {
        #[command(flatten)]
        ring: RingArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print again every SECS seconds (default 1) with rates, until interrupted.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
    },
    /// Run the end-to-end demo: 4 producer processes, 1,000,000 records, verified, vs O_APPEND.
    Demo {
        /// Total records.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Producer processes.
        #[arg(long, default_value_t = 4)]
        producers: u32,
        /// Keep the logs in this directory (default: a new one under the temp dir, removed once
        /// the log is verified).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    #[command(hide = true)]
    DemoProducer {
        #[arg(long)]
        ring: String,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        records: u64,
    },
    #[command(hide = true)]
    DemoAppend {
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        records: u64,
    },
}

/// Parses sizes like `4096`, `64K`, `64M`, `1G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            format!("invalid size {s:?}: use a number with an optional K, M or G suffix")
        })
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("invalid mode {s:?}: use octal, e.g. 600 or 660"))
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Stat { ring, json, watch }) => {
            let interval = watch.map(|s| std::time::Duration::from_secs_f64(s.max(0.05)));
            match stat::run(&ring.location(), json, interval) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Some(Command::Demo {
            records,
            producers,
            dir,
        }) => {
            match demo::run(&demo::DemoOptions {
                records,
                producers,
                dir,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ringlog-drain demo: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::DemoProducer { ring, id, records }) => {
            match demo::run_producer(&ring, id, records) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo producer {id}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::DemoAppend { path, id, records }) => {
            match demo::run_append(&path, id, records) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo O_APPEND writer {id}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        None => run(cli.run),
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("ringlog-drain: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    ExitCode::from(2)
}

fn run(args: RunArgs) -> ExitCode {
    // Test builds only: crash the drain at a named point (see ringlog_core::fault).
    if let Ok(spec) = std::env::var("RINGLOG_FAULT") {
        if let Err(e) = ringlog_core::fault::arm(&spec) {
            eprintln!("ringlog-drain: RINGLOG_FAULT: {e}");
            return ExitCode::from(2);
        }
    }
    let (Some(ring), Some(out)) = (args.ring, args.out) else {
        eprintln!("ringlog-drain: --ring NAME and --out PATH|- are required (see --help)");
        return ExitCode::from(2);
    };
    let mut options = DrainOptions::new(ring.location(), OutputSpec::parse(&out));
    options.segment.capacity = args.capacity;
    if let Some(mode) = args.mode {
        options.segment.mode = mode;
    }
    options.format = args.format;
    options.fsync = args.fsync;
    options.preallocate = args.preallocate;
    options.rotation = Rotation {
        max_bytes: args.rotate_size,
        interval: args.rotate_interval,
        keep: args.rotate_keep,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reopen = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            return fail(&e);
        }
    }
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reopen.clone()) {
        return fail(&e);
    }
    let mut drain = match Drain::open(options) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let summary = drain.run(&stop, &reopen);
    eprintln!(
        "ringlog-drain: ring '{}' stopped: {} records, {} bytes in {} batches; {} abandoned claims skipped, {} corrupt stretches",
        drain.ring_name(),
        summary.records,
        summary.bytes,
        summary.batches,
        summary.abandoned,
        summary.corrupt
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12Q").unwrap_err().contains("K, M or G"));
        assert!(parse_size("").is_err());
    }

    #[test]
    fn command_line_parses() {
        Cli::command().debug_assert();
    }
    use clap::CommandFactory;
}
