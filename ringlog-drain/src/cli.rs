//! The `ringlog-drain` command line: argument parsing, signals, exit codes. Exit codes: 0 done
//! (SIGTERM/SIGINT drained everything committed), 2 usage or start-up error (bad ring, output
//! not writable, another drain running).

use crate::drain::{Drain, DrainError, DrainOptions, FsyncPolicy, WriteThread};
use crate::format::Format;
use crate::forward_status::{self, StatusBoard};
use crate::forwarder::{ForwardOptions, Forwarder};
use crate::output::{Interval, OutputSpec, Rotation};
use crate::segment_name;
use crate::stat;
use crate::syslog::Destination;
use crate::tls::TlsOptions;
use clap::{Parser, Subcommand};
use ringlog_core::{Location, OpenError};
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
///   ringlog-drain --ring myservice --out syslog+tcp://logs.internal:514
///   ringlog-drain --ring myservice --out app.log --format text --forward relp+tls://logs.internal:2514 --tls-ca ca.pem
///   ringlog-drain stat --ring myservice --watch
///
/// Signals: SIGTERM/SIGINT write everything committed, then exit 0; SIGHUP reopens the output.
/// Exit codes: 0 done; 2 usage or start-up error.
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
    /// Output: a file (appended to), - for standard output, or a receiver (RFC 5424; --format
    /// is then ignored): relp://HOST:PORT or relp+tls:// (acknowledged: nothing lost),
    /// syslog+tcp://, syslog+tls:// or syslog+udp:// (best effort).
    #[arg(long)]
    out: Option<String>,
    #[command(flatten)]
    forwarding: ForwardArgs,
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
    /// When to write each batch on a second thread while the next is gathered: `auto` while the
    /// drain is behind on a large ring and a CPU is free for the thread (it ends the spell when
    /// the threads wait for a CPU or go slower than one); `always` (the bare flag); `never`. Faster when the drain can
    /// have two cores; slower on a small machine whose cores the producers keep busy. Ignored
    /// with --rotate-size and syslog.
    #[arg(long, value_name = "WHEN", default_value = "auto", num_args = 0..=1,
          default_missing_value = "always", require_equals = true)]
    write_thread: WriteThread,
}

#[derive(clap::Args, Debug)]
struct ForwardArgs {
    /// Also forward the log file's lines to a RELP receiver (relp://HOST:PORT or
    /// relp+tls://HOST:PORT), with a checkpoint of its own beside the log: a receiver that is
    /// down never stops the file, and gets everything it missed when it returns. Repeatable.
    #[arg(long, value_name = "URL")]
    forward: Vec<String>,
    /// TLS: CA certificates (PEM) the receiver's certificate must chain to (required for
    /// relp+tls:// and syslog+tls://).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// TLS: client certificate chain (PEM), for receivers that demand one (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS: the name the receiver's certificate must carry (default: the URL's host).
    #[arg(long, value_name = "NAME")]
    tls_name: Option<String>,
    /// RELP: messages sent ahead of their acknowledgements.
    #[arg(long, value_name = "N", default_value_t = crate::delivery::DEFAULT_WINDOW)]
    relp_window: usize,
}

impl ForwardArgs {
    /// Applies the TLS and RELP settings to a destination.
    fn configure(&self, mut d: Destination) -> Destination {
        d.tls = TlsOptions {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            name: self.tls_name.clone(),
        };
        d.window = self.relp_window.max(1);
        d
    }
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
}

/// The one size parser of every ringlog binary (re-exported for the benches).
pub use ringlog_core::size::parse_size;

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("invalid mode {s:?}: use octal, e.g. 600 or 660"))
}

/// The drain's signal flags: SIGTERM and SIGINT ask it to stop cleanly, SIGHUP to reopen its
/// output.
struct Signals {
    stop: Arc<AtomicBool>,
    reopen: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

const STOP_SIGNALS: [i32; 2] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];

impl Signals {
    /// Installs the handlers, then unblocks the signals: a parent may have started us with them
    /// blocked (a drain that cannot be stopped), and one already pending is delivered now, to
    /// the handler, so it too becomes a clean stop.
    fn install() -> std::io::Result<Signals> {
        let stop = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::with_capacity(3);
        for sig in STOP_SIGNALS {
            ids.push(signal_hook::flag::register(sig, stop.clone())?);
        }
        ids.push(signal_hook::flag::register(
            signal_hook::consts::SIGHUP,
            reopen.clone(),
        )?);
        // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only
        // changes this thread's mask (the only thread: nothing has been spawned yet).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in STOP_SIGNALS.into_iter().chain([libc::SIGHUP]) {
                libc::sigaddset(&mut set, sig);
            }
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        Ok(Signals { stop, reopen, ids })
    }

    /// For the commands that are not the drain (`stat --watch`): the signals kill the
    /// process again, as they would without us.
    fn restore_defaults(self) {
        for id in self.ids {
            signal_hook::low_level::unregister(id);
        }
        for sig in STOP_SIGNALS.into_iter().chain([libc::SIGHUP]) {
            // SAFETY: resetting a disposition to SIG_DFL; signal-hook no longer acts on it.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Runs the command line `args` (the program name first), as [`main`] runs the process's own:
/// for a program that runs the drain as one of its roles (the demo).
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // Before anything else, argument parsing included: from its first moment on, a SIGTERM
    // asks the drain to stop cleanly (exit 0) instead of killing it.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let cli = Cli::parse_from(args);
    match cli.command {
        None => run(cli.run, signals),
        Some(command) => {
            signals.restore_defaults();
            other_command(command)
        }
    }
}

fn other_command(command: Command) -> ExitCode {
    match command {
        Command::Stat { ring, json, watch } => {
            let interval = watch.map(|s| std::time::Duration::from_secs_f64(s.max(0.05)));
            match stat::run(&ring.location(), json, interval) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

/// Prints `e` and its causes, each once: a cause whose words were already printed (an error
/// that repeats its cause in its own sentence, or wraps it transparently) is not printed again.
fn fail(e: &dyn std::error::Error) -> ExitCode {
    let mut said = e.to_string();
    eprintln!("ringlog-drain: {said}");
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !said.contains(&cause) {
            eprintln!("  caused by: {cause}");
            said.push_str(&cause);
        }
        source = s.source();
    }
    ExitCode::from(2)
}

/// How long forwarders may go on delivering after SIGTERM once the file is complete: what they
/// cannot deliver by then waits in their checkpoints for the next drain.
const FORWARD_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The forwarders `--forward` asks for: RELP only, and only beside a file output (they read it
/// back).
fn forward_options(
    args: &ForwardArgs,
    output: &OutputSpec,
    ring: &RingArgs,
) -> Result<Vec<ForwardOptions>, String> {
    if args.forward.is_empty() {
        return Ok(Vec::new());
    }
    let OutputSpec::File(log) = output else {
        return Err(
            "--forward reads back the log the drain writes: give --out a file path".to_owned(),
        );
    };
    args.forward
        .iter()
        .map(|url| {
            let d = Destination::parse(url).ok_or_else(|| {
                format!("--forward {url:?}: use relp://HOST:PORT or relp+tls://HOST:PORT")
            })?;
            Ok(ForwardOptions {
                destination: args.configure(d),
                log: log.clone(),
                keep: 0,
                app_name: ring.ring.clone().unwrap_or_else(|| "ringlog".to_owned()),
            })
        })
        .collect()
}

fn run(args: RunArgs, signals: Signals) -> ExitCode {
    // Fault-armed test builds only: crash the drain at a named point (see ringlog_core::fault).
    if let Err(e) = ringlog_core::fault::arm_from_env() {
        eprintln!("ringlog-drain: {e}");
        return ExitCode::from(2);
    }
    let (Some(ring), Some(out)) = (args.ring, args.out) else {
        eprintln!("ringlog-drain: --ring NAME and --out PATH|- are required (see --help)");
        return ExitCode::from(2);
    };
    let output = match OutputSpec::parse(&out) {
        OutputSpec::Syslog(d) => OutputSpec::Syslog(args.forwarding.configure(d)),
        other => other,
    };
    let forwards = match forward_options(&args.forwarding, &output, &ring) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ringlog-drain: {e}");
            return ExitCode::from(2);
        }
    };
    let mut options = DrainOptions::new(ring.location(), output);
    options.segment.capacity = args.capacity;
    if let Some(mode) = args.mode {
        options.segment.mode = mode;
    }
    options.format = args.format;
    options.fsync = args.fsync;
    options.preallocate = args.preallocate;
    options.write_thread = args.write_thread;
    options.rotation = Rotation {
        max_bytes: args.rotate_size,
        interval: args.rotate_interval,
        keep: args.rotate_keep,
    };
    let path = match options.location.path() {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if let OutputSpec::Syslog(d) = &mut options.output {
        d.beside = Some(path.clone());
    }
    // A drain ends its run early only when its segment lost its name and was emptied: then the
    // segment now at the path is next.
    let board = Arc::new(StatusBoard::new(forward_status::path_for(&path)));
    let mut after_orphan = false;
    loop {
        if let Some(spare) = segment_name::left_behind(&path) {
            drain_left_behind(&options, spare, &signals);
        }
        let mut drain = match open_drain(&options, after_orphan) {
            Ok(d) => d,
            Err(e) => return fail(&e),
        };
        // Forwarders read the file this drain writes; they start once it recovered.
        let mut forwarders = Vec::new();
        for mut f in forwards.iter().cloned() {
            f.app_name = drain.ring_name().to_owned();
            f.keep = args.rotate_keep;
            match Forwarder::start(f, board.clone(), drain.events()) {
                Ok(f) => forwarders.push(f),
                Err(e) => return fail(&e),
            }
        }
        run_one(&mut drain, &signals);
        for f in forwarders {
            f.finish(FORWARD_GRACE);
        }
        board.withdraw();
        if !drain.finished_orphan() {
            return ExitCode::SUCCESS;
        }
        drain.forget_spare();
        after_orphan = true;
    }
}

/// Opens the drain of `options`. At start the segment found at the path must have the capacity
/// asked for (`--capacity`); `after_orphan`, the segment there was made by a producer after the
/// drain's own segment lost its name, and is drained whatever its capacity.
fn open_drain(options: &DrainOptions, after_orphan: bool) -> Result<Drain, DrainError> {
    match Drain::open(options.clone()) {
        Err(DrainError::Open(OpenError::CapacityMismatch { ring, found, asked }))
            if after_orphan =>
        {
            eprintln!(
                "ringlog-drain: ring '{ring}': the segment now at its path was created with \
                 capacity {found} bytes, not the {asked} of --capacity; draining it as it is"
            );
            let mut options = options.clone();
            options.segment.capacity = None;
            Drain::open(options)
        }
        opened => opened,
    }
}

/// Empties a segment a previous drain left behind (see [`segment_name`]) before the ring's
/// current one, and forgets it once its producers are gone.
fn drain_left_behind(options: &DrainOptions, spare: PathBuf, signals: &Signals) {
    let mut options = options.clone();
    options.location = Location::Path(spare.clone());
    options.segment.create = false;
    options.segment.capacity = None;
    options.left_behind = true;
    match Drain::open(options) {
        Ok(mut drain) => {
            run_one(&mut drain, signals);
            if drain.finished_orphan() {
                drain.forget_spare();
            }
        }
        // Another drain is emptying it.
        Err(DrainError::AlreadyDrained { .. }) => {}
        Err(e) => {
            eprintln!(
                "ringlog-drain: cannot drain the segment left at {}: {e}; forgetting it",
                spare.display()
            );
            segment_name::forget(&spare);
        }
    }
}

fn run_one(drain: &mut Drain, signals: &Signals) {
    let summary = drain.run(&signals.stop, &signals.reopen);
    eprintln!(
        "ringlog-drain: ring '{}' stopped: {} records, {} bytes in {} batches; {} abandoned claims skipped, {} corrupt stretches; {} spells writing on a second thread ({} cut short)",
        drain.ring_name(),
        summary.records,
        summary.bytes,
        summary.batches,
        summary.abandoned,
        summary.corrupt,
        summary.write_thread_spells,
        summary.write_thread_spells_cut_short
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_parses() {
        Cli::command().debug_assert();
    }

    #[test]
    fn write_thread_is_auto_unless_told() {
        let parse = |extra: &[&str]| {
            let args = ["ringlog-drain", "--ring", "r", "--out", "o"];
            Cli::try_parse_from(args.iter().chain(extra)).map(|cli| cli.run.write_thread)
        };
        assert_eq!(parse(&[]).unwrap(), WriteThread::Auto);
        assert_eq!(parse(&["--write-thread"]).unwrap(), WriteThread::Always);
        assert_eq!(
            parse(&["--write-thread=never"]).unwrap(),
            WriteThread::Never
        );
        assert_eq!(
            parse(&["--write-thread=always"]).unwrap(),
            WriteThread::Always
        );
        assert_eq!(parse(&["--write-thread=auto"]).unwrap(), WriteThread::Auto);
        let err = parse(&["--write-thread=sometimes"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("use auto, always or never"), "{err}");
        // The bare flag never takes the next argument as its value.
        assert!(parse(&["--write-thread", "never"]).is_err());
    }
    use clap::CommandFactory;
}
