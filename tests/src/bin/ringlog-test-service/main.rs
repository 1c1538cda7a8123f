//! A small service written against ringlog-writer's public integrations, as a new user would:
//! `ringlog-test-service log|tracing-fmt|tracing-layer --ring NAME --id ID --events N
//! [--threads T]` logs `events::expected(mode, id, t, 0..N)` from each of T threads through
//! `log`, `tracing_subscriber::fmt().with_writer(writer)`, or `RingLayer`.
//!
//! Prints one `pid=P tid=T id=I thread=K` line per thread, then
//! `stats written=W dropped=D blocked_ns=B drain_alive=A` from `Writer::stats()`.

mod events;

use clap::{Parser, ValueEnum};
use events::Mode;
use ringlog_writer::tracing::RingLayer;
use ringlog_writer::Writer;
use std::fmt;
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Command {
    Log,
    TracingFmt,
    TracingLayer,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(value_enum)]
    command: Command,
    #[arg(long)]
    ring: String,
    #[arg(long)]
    id: u32,
    #[arg(long)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    threads: u32,
}

fn main() {
    let args = Args::parse();
    let fail = |e: &dyn std::error::Error| -> ! {
        eprintln!("ringlog-test-service: {}", ringlog_core::ErrorChain(e));
        std::process::exit(2)
    };
    let (mode, writer) = match args.command {
        Command::Log => {
            let writer = ringlog_writer::log::Builder::new(&args.ring)
                .max_level(log::LevelFilter::Trace)
                .init()
                .unwrap_or_else(|e| fail(&e));
            (Mode::Log, writer)
        }
        Command::TracingFmt => {
            let writer = Writer::open(&args.ring).unwrap_or_else(|e| fail(&e));
            tracing_subscriber::fmt()
                .with_writer(writer.clone())
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .init();
            (Mode::TracingFmt, writer)
        }
        Command::TracingLayer => {
            let layer = RingLayer::open(&args.ring).unwrap_or_else(|e| fail(&e));
            let writer = layer.writer().clone();
            tracing_subscriber::registry().with(layer).init();
            (Mode::TracingLayer, writer)
        }
    };
    std::thread::scope(|s| {
        for thread in 0..args.threads {
            let args = &args;
            s.spawn(move || run(mode, args.id, thread, args.events));
        }
    });
    let stats = writer.stats();
    println!(
        "stats written={} dropped={} blocked_ns={} drain_alive={}",
        stats.written,
        stats.dropped,
        stats.blocked.as_nanos(),
        writer.drain_alive()
    );
}

/// A `log` message part that logs another record while it is being formatted.
struct LogsWhileFormatted {
    id: u32,
    thread: u32,
    payload: String,
}

impl fmt::Display for LogsWhileFormatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        log::info!(target: events::NESTED, "nested id={} t={}", self.id, self.thread);
        f.write_str(&self.payload)
    }
}

fn run(mode: Mode, id: u32, thread: u32, events: u64) {
    match mode {
        Mode::Log => {
            for seq in 0..events {
                let level = match seq % 5 {
                    0 => log::Level::Error,
                    1 => log::Level::Warn,
                    2 => log::Level::Info,
                    3 => log::Level::Debug,
                    _ => log::Level::Trace,
                };
                let payload = events::payload(seq);
                let name = mode.name();
                if seq == 1 {
                    let p = LogsWhileFormatted {
                        id,
                        thread,
                        payload,
                    };
                    log::log!(level, "{name} id={id} t={thread} seq={seq} {p}");
                } else if events::audit(seq) {
                    log::log!(target: events::AUDIT, level, "{name} id={id} t={thread} seq={seq} {payload}");
                } else {
                    log::log!(level, "{name} id={id} t={thread} seq={seq} {payload}");
                }
            }
        }
        Mode::TracingFmt | Mode::TracingLayer => {
            let conn = tracing::info_span!("conn", t = thread);
            let _conn = conn.enter();
            let _req = tracing::debug_span!("req").entered();
            for seq in 0..events {
                tracing_event(mode, id, thread, seq);
            }
        }
    }
    // SAFETY: gettid(2) has no preconditions.
    let tid = unsafe { libc::gettid() };
    println!(
        "pid={} tid={tid} id={id} thread={thread}",
        std::process::id()
    );
}

fn tracing_event(mode: Mode, id: u32, thread: u32, seq: u64) {
    let payload = events::payload(seq);
    let name = mode.name();
    // `tracing` levels and targets are static per call site: one call site per combination.
    macro_rules! event {
        ($level:expr) => {
            if events::audit(seq) {
                tracing::event!(target: "svc::audit", $level, seq, kind = "x y",
                    "{name} id={id} t={thread} seq={seq} {payload}")
            } else {
                tracing::event!($level, seq, kind = "x y",
                    "{name} id={id} t={thread} seq={seq} {payload}")
            }
        };
    }
    match seq % 5 {
        0 => event!(tracing::Level::ERROR),
        1 => event!(tracing::Level::WARN),
        2 => event!(tracing::Level::INFO),
        3 => event!(tracing::Level::DEBUG),
        _ => event!(tracing::Level::TRACE),
    }
}
