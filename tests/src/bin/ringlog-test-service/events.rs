//! The events `ringlog-test-service` logs, as a pure function of (mode, id, thread, seq), so
//! the integration tests can regenerate exactly what each thread must have produced. Shared by
//! the service binary and `tests/tests/integrations.rs` (through `#[path]`).
#![allow(dead_code)]

/// Which integration a service process logs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `ringlog_writer::log::init` and the `log` macros.
    Log,
    /// `tracing_subscriber::fmt().with_writer(writer)`.
    TracingFmt,
    /// `tracing_subscriber::registry()` with `RingLayer`.
    TracingLayer,
}

impl Mode {
    /// Subcommand name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Log => "log",
            Mode::TracingFmt => "tracing-fmt",
            Mode::TracingLayer => "tracing-layer",
        }
    }
}

/// The binary's crate-root module path: the default `log` target and `tracing` target.
pub const MODULE: &str = "ringlog_test_service";
/// Explicit target of every third event.
pub const AUDIT: &str = "svc::audit";
/// Target of the record logged from inside the formatting of a `log` event (seq 1).
pub const NESTED: &str = "svc::nested";

/// Level name of event `seq` (all five levels, in turn).
pub fn level(seq: u64) -> &'static str {
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"][(seq % 5) as usize]
}

/// Whether event `seq` uses the explicit target [`AUDIT`].
pub fn audit(seq: u64) -> bool {
    seq.is_multiple_of(3)
}

/// Event `seq`'s payload: mostly short, every 50th 3000 bytes (longer than the writer's claim
/// hint), every 500th 100 KB (longer than its largest hint).
pub fn payload(seq: u64) -> String {
    let len = match seq {
        s if s % 500 == 123 => 100_000,
        s if s % 50 == 7 => 3000,
        s => 1 + (s % 40) as usize,
    };
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| alphabet[(i + seq as usize) % alphabet.len()] as char)
        .collect()
}

/// The formatted part of event `seq`'s message (what the format string produces).
pub fn text(mode: Mode, id: u32, thread: u32, seq: u64) -> String {
    format!(
        "{} id={id} t={thread} seq={seq} {}",
        mode.name(),
        payload(seq)
    )
}

/// One record as the drain's JSON shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// `level`.
    pub level: &'static str,
    /// `target`.
    pub target: String,
    /// `msg`.
    pub msg: String,
}

/// The records event `seq` of thread `thread` of service `id` produces, in order.
pub fn expected(mode: Mode, id: u32, thread: u32, seq: u64) -> Vec<Expected> {
    let target = if audit(seq) { AUDIT } else { MODULE };
    let text = text(mode, id, thread, seq);
    let msg = match mode {
        // `log` adds the module when the target is not the module.
        Mode::Log if audit(seq) => format!("{text} module={MODULE}"),
        Mode::Log => text,
        // The fmt layer's own format (without time, level, target): span context, message,
        // fields.
        Mode::TracingFmt => format!("conn{{t={thread}}}:req: {text} seq={seq} kind=\"x y\""),
        // RingLayer: span names, message, fields.
        Mode::TracingLayer => format!("conn:req: {text} seq={seq} kind=\"x y\""),
    };
    let mut out = vec![Expected {
        level: level(seq),
        target: target.to_owned(),
        msg,
    }];
    if mode == Mode::Log && seq == 1 {
        out.push(Expected {
            level: "INFO",
            target: NESTED.to_owned(),
            msg: format!("nested id={id} t={thread} module={MODULE}"),
        });
    }
    out
}
