//! `ringlog-pipe --ring NAME [--level LEVEL]`: each line of standard input becomes one record.

use clap::Parser;
use ringlog_pipe as pipe;
use ringlog_writer::{Level, Writer};
use std::process::ExitCode;

/// Send each line of standard input to a ringlog ring as one record.
///
/// Examples:
///   my-service 2>&1 | ringlog-pipe --ring myservice --level info
///   ringlog-pipe --ring myservice --policy drop < events.log
#[derive(Parser, Debug)]
#[command(version, about, verbatim_doc_comment)]
struct Args {
    /// Ring name (/dev/shm/ringlog-NAME).
    #[arg(long, required_unless_present = "path")]
    ring: Option<String>,
    /// Explicit segment path instead of a name.
    #[arg(long, conflicts_with = "ring")]
    path: Option<std::path::PathBuf>,
    /// Level of every record: error, warn, info, debug, trace or none.
    #[arg(long, default_value = "none", value_parser = parse_level)]
    level: Level,
    /// When the ring is full: block (default), drop, or block-for=MS.
    #[arg(long, default_value = "block", value_parser = pipe::parse_policy)]
    policy: ringlog_writer::FullPolicy,
    /// Capacity if this creates the ring (e.g. 4M; a power of two). Must match an existing ring.
    #[arg(long, value_parser = ringlog_core::size::parse_size)]
    capacity: Option<u64>,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s)
        .ok_or_else(|| format!("unknown level {s:?}: use error, warn, info, debug, trace or none"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = Writer::builder(args.ring.as_deref().unwrap_or("")).full_policy(args.policy);
    if let Some(path) = &args.path {
        builder = builder.path(path);
    }
    if let Some(c) = args.capacity {
        builder = builder.capacity(c);
    }
    let writer = match builder.open() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("ringlog-pipe: {}", ringlog_writer::ErrorChain(&e));
            return ExitCode::from(2);
        }
    };
    let max = writer.max_record();
    let stdin = std::io::stdin().lock();
    let result = pipe::pipe_lines(&writer, args.level, stdin, |line, len| {
        eprintln!(
            "ringlog-pipe: line {line} is longer than the ring's max record size \
             ({len}+ > {max} bytes): skipped; split it or use a ring with a larger capacity"
        );
    });
    match result {
        Ok(report) if report.too_long == 0 && report.dropped == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!(
                "ringlog-pipe: {} lines written, {} dropped (ring full), {} too long",
                report.written, report.dropped, report.too_long
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("ringlog-pipe: {}", ringlog_writer::ErrorChain(&e));
            ExitCode::from(2)
        }
    }
}
