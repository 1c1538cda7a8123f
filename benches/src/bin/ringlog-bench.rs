//! `ringlog-bench`: the multi-process comparison harness. N producer processes x M records of
//! S bytes into one log file, for ringlog and the usual alternatives, every log verified before
//! a number is printed; plus the drain alone and the idle drain. See `ringlog_benches` for
//! how, and `--help` for the knobs. Exit codes: 0 done, 1 a run failed or a log failed its
//! integrity check, 2 usage error.

use clap::{Parser, Subcommand};
use ringlog_benches::drain_probe::{self, DrainAlone, IdleReport, Sink};
use ringlog_benches::machine::Load;
use ringlog_benches::plan::{self, Plan};
use ringlog_benches::record::SizeSpec;
use ringlog_benches::report::Results;
use ringlog_benches::roles::{self, Contender, ProducerArgs};
use ringlog_benches::run::Settings;
use ringlog_benches::{latency, machine, svg, BoxError, IntegrityViolation};
use ringlog_drain::cli::parse_size;
use ringlog_drain::{Format, WriteThread};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Compare ringlog with one O_APPEND write(2) per record, O_APPEND + flock, a Unix-socket
/// collector process, and (for reference, in one process) tracing-appender's non-blocking
/// writer: N producer processes x M records of S bytes into one log file on the disk. Every
/// log is verified (each record exactly once, untorn, in order per producer) before any number
/// is printed. Contenders run round-robin within one invocation.
///
/// Examples:
///   ringlog-bench --quick
///   ringlog-bench --json results.json --svg results.svg
///   ringlog-bench --contenders ringlog,o_append --sizes 128 --producers 4 --reps 5
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Short run, under a minute on 2 cores: sizes 128,4096,65536; producers 1,4; one
    /// repetition; smaller runs and drain probes.
    #[arg(long)]
    quick: bool,
    /// Contenders, comma-separated: ringlog,o_append,flock,socket,tracing [default: all].
    #[arg(long, value_delimiter = ',')]
    contenders: Option<Vec<String>>,
    /// Record sizes in bytes (newline included), comma-separated; K/M suffixes; `mixed` for the
    /// demo's 40 B..128 KiB mix [default: 64,128,256,4096,65536,mixed].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<String>>,
    /// Producer process counts, comma-separated [default: 1,2,4,8].
    #[arg(long, value_delimiter = ',')]
    producers: Option<Vec<u32>>,
    /// Records per run, over all producers [default: 1000000; quick 100000]. The default
    /// pushes more than twice the default ring's capacity through it at 64-128 B, so a run
    /// measures the sustained rate, not only a burst that the ring absorbs.
    #[arg(long)]
    records: Option<u64>,
    /// Bytes per run at most, over all producers (large records get fewer) [default: 128M;
    /// quick 32M].
    #[arg(long, value_parser = parse_size)]
    max_bytes: Option<u64>,
    /// Repetitions of every configuration [default: 5; quick 1].
    #[arg(long)]
    reps: Option<u32>,
    /// Directory for the logs; its filesystem matters [default: a new directory in $TMPDIR or
    /// /tmp].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the chart (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// The ringlog-drain binary [default: next to this binary, (re)built with cargo from this
    /// workspace first].
    #[arg(long)]
    drain: Option<PathBuf>,
    /// Capacity of the rings the ringlog runs use [default: the library's, 4M].
    #[arg(long, value_parser = parse_size, default_value_t = ringlog_core::layout::DEFAULT_CAPACITY, hide_default_value = true)]
    ring_capacity: u64,
    /// Time about one write call in N, drawn at random (1: all) [default: auto, at least ~10,000
    /// timed writes per producer per run]. Timing costs ~25 ns per timed call (two TSC reads
    /// and a histogram update), as much as a ringlog write: timing them all would halve
    /// ringlog's producer throughput and barely touch the others'.
    #[arg(long)]
    sample_every: Option<u64>,
    /// Skip the drain-alone and idle-drain measurements.
    #[arg(long, conflicts_with = "drain_probes_only")]
    no_drain_probes: bool,
    /// Only the drain-alone and idle-drain measurements.
    #[arg(long)]
    drain_probes_only: bool,
    /// Producer count whose latency CDFs the chart shows [default: 4, or the nearest measured].
    #[arg(long)]
    cdf_producers: Option<u32>,
    /// Longest one run may take, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Also the probes about this machine's memory rather than about loggers: say whether the
    /// VM hands free memory back to its host (free page reporting), warm the page cache before
    /// timed runs (recycling page-cache pages from run to run, see PageRecycler in src/run.rs),
    /// and time plain writes to a fresh file after a pause. Off by default: without it, every
    /// run deletes its log at once and nothing is warmed.
    #[arg(long)]
    vm_memory_probes: bool,
    /// The in-process drain's target bytes per write(2) in the drain-alone runs [default: the
    /// drain's default]. (The contender runs use the ringlog-drain binary and its default.)
    #[arg(long, value_parser = parse_size)]
    drain_batch: Option<u64>,
    /// Also the drain-alone runs of raw 128 B records in a ring of the library's default
    /// capacity (4M), which fits this machine's caches, beside the large ring of the main rows
    /// (their rows say the ring's size).
    #[arg(long)]
    drain_default_ring: bool,
    /// When the drain writes each batch on a second thread while it gathers the next
    /// (ringlog-drain --write-thread=WHEN: auto, always (the bare flag), never), in the contender
    /// runs and the drain-alone runs alike [default: the drain's, auto].
    #[arg(long, value_name = "WHEN", default_value = "auto", num_args = 0..=1,
          default_missing_value = "always", require_equals = true)]
    drain_write_thread: WriteThread,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// One producer process.
    #[command(name = "__produce", hide = true)]
    Produce {
        #[arg(long, value_parser = Contender::parse)]
        contender: Contender,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        records: u64,
        #[arg(long, value_parser = SizeSpec::parse)]
        size: SizeSpec,
        #[arg(long)]
        target: String,
        #[arg(long)]
        hist: PathBuf,
        #[arg(long, default_value_t = 1)]
        sample_every: u64,
    },
    /// The tracing-appender reference: N threads in one process.
    #[command(name = "__threads", hide = true)]
    Threads {
        #[arg(long)]
        threads: u32,
        #[arg(long)]
        records: u64,
        #[arg(long, value_parser = SizeSpec::parse)]
        size: SizeSpec,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        hist: PathBuf,
        #[arg(long, default_value_t = 1)]
        sample_every: u64,
    },
    /// The Unix-socket collector.
    #[command(name = "__collect", hide = true)]
    Collect {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        producers: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(role) => run_role(role),
        None => bench(cli.bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<IntegrityViolation>().is_some() => {
            eprintln!("\nringlog-bench: {e}");
            eprintln!("ringlog-bench: no numbers reported: a log failed its integrity check");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("ringlog-bench: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(1)
        }
    }
}

fn run_role(role: Role) -> Result<(), BoxError> {
    match role {
        Role::Produce {
            contender,
            id,
            records,
            size,
            target,
            hist,
            sample_every,
        } => roles::produce(&ProducerArgs {
            contender,
            id,
            records,
            size,
            target,
            hist,
            sample_every,
        }),
        Role::Threads {
            threads,
            records,
            size,
            out,
            hist,
            sample_every,
        } => roles::threads(threads, records, size, &out, &hist, sample_every),
        Role::Collect {
            socket,
            out,
            producers,
        } => roles::collect(&socket, &out, producers),
    }
}

fn usage(msg: impl std::fmt::Display) -> ! {
    eprintln!("ringlog-bench: {msg} (see --help)");
    std::process::exit(2)
}

/// The `ringlog-drain` binary: next to this one (cargo puts bench and test executables one
/// level deeper, in deps/). When this binary was built from a workspace that is still there,
/// `cargo build -p ringlog-drain` runs first (quick when up to date), so the drain measured is
/// built from the same sources as the writer linked into the producers; if that build fails,
/// an existing binary is used with a warning.
fn locate_drain() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or("this executable has no directory")?
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join("ringlog-drain");
    let release = dir.file_name().is_some_and(|n| n == "release");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace directory")?;
    if !workspace.join("Cargo.toml").exists() {
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!("{} not found: pass --drain PATH", path.display()).into())
        };
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!(
        "ringlog-bench: cargo build{} -p ringlog-drain (so the drain matches the writer in this binary)",
        if release { " --release" } else { "" }
    );
    let mut cmd = std::process::Command::new(&cargo);
    cmd.current_dir(workspace).args([
        "build",
        "-q",
        "-p",
        "ringlog-drain",
        "--bin",
        "ringlog-drain",
    ]);
    if release {
        cmd.arg("--release");
    }
    let built = cmd.status().map(|s| s.success()).unwrap_or(false);
    match (built, path.exists()) {
        (true, true) => Ok(path),
        (false, true) => {
            eprintln!(
                "ringlog-bench: WARNING: building ringlog-drain failed; using the existing {}, which \
                 may be older than the writer in this binary",
                path.display()
            );
            Ok(path)
        }
        (_, false) => Err(format!(
            "{} not found and building it failed: build it (cargo build --release -p ringlog-drain) \
             or pass --drain PATH",
            path.display()
        )
        .into()),
    }
}

fn parse_list<T>(
    given: Option<Vec<String>>,
    default: &[&str],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let items: Vec<String> =
        given.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    items
        .iter()
        .map(|s| parse(s).unwrap_or_else(|e| usage(e)))
        .collect()
}

fn bench(args: BenchArgs) -> Result<(), BoxError> {
    let quick = args.quick;
    let mode = if quick {
        "quick"
    } else if args.sizes.is_some() || args.producers.is_some() || args.contenders.is_some() {
        "custom"
    } else {
        "full"
    };
    let contenders = parse_list(
        args.contenders,
        &["ringlog", "o_append", "flock", "socket", "tracing"],
        Contender::parse,
    );
    let sizes = parse_list(
        args.sizes,
        if quick {
            &["128", "4096", "65536"]
        } else {
            &["64", "128", "256", "4096", "65536", "mixed"]
        },
        SizeSpec::parse,
    );
    let producers =
        args.producers
            .unwrap_or_else(|| if quick { vec![1, 4] } else { vec![1, 2, 4, 8] });
    if producers.iter().any(|&n| n == 0 || n > 256) {
        usage("producer counts must be between 1 and 256");
    }
    if args.sample_every == Some(0) {
        usage("--sample-every must be at least 1");
    }
    let plan = Plan {
        contenders,
        sizes,
        producers,
        records: args
            .records
            .unwrap_or(if quick { 100_000 } else { 1_000_000 }),
        max_bytes: args
            .max_bytes
            .unwrap_or(if quick { 32 << 20 } else { 128 << 20 }),
        reps: args.reps.unwrap_or(if quick { 1 } else { 5 }).max(1),
        warm: args.vm_memory_probes,
    };
    if plan
        .sizes
        .iter()
        .any(|s| s.max_len() as u64 > args.ring_capacity / 4)
    {
        usage("a record size exceeds a quarter of --ring-capacity (the ring's max record)");
    }

    let temp;
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            let tmp = std::env::temp_dir();
            let stale = ringlog_benches::run::sweep_stale_dirs(&tmp);
            if stale > 0 {
                eprintln!(
                    "ringlog-bench: removed {stale} log directories left by interrupted runs"
                );
            }
            temp = tempfile::Builder::new()
                .prefix(&format!("ringlog-bench-{}-", std::process::id()))
                .tempdir_in(tmp)?;
            temp.path().to_path_buf()
        }
    };
    let drain = match args.drain {
        Some(d) => d,
        None => locate_drain()?,
    };
    let settings = Settings {
        exe: std::env::current_exe()?,
        drain,
        dir: dir.clone(),
        ring_capacity: args.ring_capacity,
        drain_write_thread: args.drain_write_thread,
        timeout: Duration::from_secs(args.timeout),
        sample_every: args.sample_every,
    };
    let stale = ringlog_benches::run::sweep_stale_rings();
    if stale > 0 {
        eprintln!("ringlog-bench: removed {stale} ring segment(s) left by interrupted runs");
    }
    let machine = machine::describe(&dir);
    let load_start = Load::now();
    let watch = latency::Stopwatch::calibrated();
    let timer_floor_ns = latency::timer_floor_ns(&watch);
    let started = Instant::now();
    eprintln!("ringlog-bench ({mode}): {}", machine.line());
    eprintln!("  machine now: {}", load_start.line());
    if let Some(note) = machine.memory_note().filter(|_| args.vm_memory_probes) {
        eprintln!("  {note}");
    }
    let busy = match load_start.cpu_pressure10 {
        Some(p) => p > 20.0,
        None => load_start.loadavg1 > 0.5 * machine.cpus as f64,
    };
    if busy {
        eprintln!(
            "  WARNING: other work is running on this machine; expect noisy numbers (the ratios \
             between contenders, measured round-robin, hold better than absolute values)"
        );
    }
    eprintln!(
        "  drain: {}; latency timer ({}): {timer_floor_ns} ns (included in every latency)",
        settings.drain.display(),
        watch.source()
    );

    let mut summaries = Vec::new();
    if !args.drain_probes_only {
        eprintln!(
            "  {} runs: {} x sizes [{}] x producers {:?} x {} reps, up to {} records / {} MiB per run",
            plan.runs(),
            plan.contenders.iter().map(|c| c.name()).collect::<Vec<_>>().join(","),
            plan.sizes.iter().map(|s| s.label()).collect::<Vec<_>>().join(", "),
            plan.producers,
            plan.reps,
            plan.records,
            plan.max_bytes >> 20
        );
        summaries = plan::execute(&settings, &plan, |line| eprintln!("{line}"))?;
    }

    let mut drain_alone: Vec<DrainAlone> = Vec::new();
    let mut idle: Option<IdleReport> = None;
    let mut page_cache = Vec::new();
    if !args.no_drain_probes {
        let runs: &[(usize, Format, Sink)] = if quick {
            &[
                (128, Format::Raw, Sink::File),
                (128, Format::Raw, Sink::DevNull),
                (4096, Format::Raw, Sink::File),
                (4096, Format::Raw, Sink::DevNull),
                (128, Format::Json, Sink::DevNull),
            ]
        } else {
            &[
                (128, Format::Raw, Sink::File),
                (128, Format::Raw, Sink::DevNull),
                (256, Format::Raw, Sink::File),
                (4096, Format::Raw, Sink::File),
                (4096, Format::Raw, Sink::DevNull),
                (65536, Format::Raw, Sink::File),
                (65536, Format::Raw, Sink::DevNull),
                (128, Format::Text, Sink::DevNull),
                (128, Format::Json, Sink::DevNull),
            ]
        };
        let knobs = drain_probe::DrainAloneKnobs {
            capacity: if quick { 64 << 20 } else { 128 << 20 },
            warm: args.vm_memory_probes,
            batch_bytes: args.drain_batch.map(|b| b as usize),
            write_thread: args.drain_write_thread,
        };
        let default_ring = drain_probe::DrainAloneKnobs {
            capacity: ringlog_core::layout::DEFAULT_CAPACITY,
            ..knobs
        };
        let extra: &[(usize, Format, Sink)] = if args.drain_default_ring {
            &[
                (128, Format::Raw, Sink::File),
                (128, Format::Raw, Sink::DevNull),
            ]
        } else {
            &[]
        };
        let all = runs.iter().map(|r| (r, &knobs));
        let mut floor_frames = Vec::new();
        for (&(size, format, sink), knobs) in all.chain(extra.iter().map(|r| (r, &default_ring))) {
            let d = drain_probe::drain_alone(&dir, size, format, sink, knobs, &mut floor_frames)?;
            eprintln!(
                "drain alone: {:?} {size} B -> {sink:?}, {} MiB ring: {:.2} GB/s, {:.1} ns/record",
                d.format,
                d.capacity >> 20,
                d.gb_per_sec(),
                d.ns_per_record()
            );
            drain_alone.push(d);
        }
        let (pause, probe_bytes) = if quick {
            (Duration::from_millis(2500), 32 << 20)
        } else {
            (Duration::from_secs(3), 128 << 20)
        };
        let page_cache_sizes: &[usize] = if args.vm_memory_probes {
            &[4096, 65536, 1 << 20]
        } else {
            &[]
        };
        for &write_size in page_cache_sizes {
            let p = drain_probe::page_cache_probe(&dir, write_size, probe_bytes, pause)?;
            eprintln!(
                "page cache: {write_size} B writes after a {:.1} s pause: {:.2} GB/s",
                pause.as_secs_f64(),
                p.gb_per_sec()
            );
            page_cache.push(p);
        }
        let (samples, idle_for) = if quick { (20, 500) } else { (50, 2000) };
        let report = drain_probe::idle_latency(
            &settings,
            samples,
            Duration::from_millis(idle_for),
            &[Duration::from_millis(1), Duration::from_millis(20)],
        )?;
        eprintln!(
            "idle drain: {:.3}% CPU; write -> file p50 {} after 20 ms pauses",
            report.idle_cpu_percent,
            latency::fmt_ns(report.gaps.last().map_or(0, |g| g.percentiles().p50))
        );
        idle = Some(report);
    }
    let load_end = Load::now();
    eprintln!(
        "done in {:.0} s (machine now: {})",
        started.elapsed().as_secs_f64(),
        load_end.line()
    );

    let results = Results {
        machine: &machine,
        plan: &plan,
        mode,
        timer_floor_ns,
        timer_source: watch.source(),
        sample_every: settings.sample_every,
        summaries: &summaries,
        drain_alone: &drain_alone,
        idle: idle.as_ref(),
        load: (load_start, load_end),
        page_cache: &page_cache,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nringlog-bench ({mode}) on {}", machine.line())?;
    writeln!(
        out,
        "machine load: at start {}, at end {}",
        load_start.line(),
        load_end.line()
    )?;
    if let Some(note) = machine.memory_note().filter(|_| args.vm_memory_probes) {
        writeln!(out, "{note}")?;
    }
    writeln!(
        out,
        "every log verified: each record exactly once, untorn, in order per producer. rec/s and MB/s: \
         end to end (until every record is in the file), median of {} rep(s); latency: one write \
         call, producer side, {}, all reps merged (includes ~{timer_floor_ns} ns of {} timer); CPU/rec: \
         all processes; server: drain/collector share of it; vs O_APP: ratio to o_append on the same \
         work; line move: how long a cache line took to move between two CPUs, measured before and \
         after every rep (shortest-longest): producers on two CPUs move the ring's tail line once \
         a record, and a VM's host may place its vCPUs near each other or not, and change that.\n",
        plan.reps,
        match settings.sample_every {
            Some(1) => "every call timed".to_owned(),
            Some(n) => format!("about 1 call in {n} timed, at random"),
            None => "a random sample of at least ~10,000 calls per producer per run".to_owned(),
        },
        watch.source()
    )?;
    for c in &plan.contenders {
        writeln!(out, "  {:<9} {}", c.name(), c.description())?;
    }
    writeln!(out)?;
    if !summaries.is_empty() {
        writeln!(out, "{}", results.table())?;
    }
    writeln!(out, "{}", results.drain_table())?;

    let command: Vec<String> = std::env::args().collect();
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&results.to_json(&command))? + "\n",
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        if summaries.is_empty() {
            eprintln!("no contender runs: no chart");
        } else {
            let ns: Vec<u32> = plan.producers.clone();
            let want = args.cdf_producers.unwrap_or(4);
            let cdf_n = ns
                .iter()
                .copied()
                .min_by_key(|&n| (n as i64 - want as i64).abs())
                .unwrap_or(want);
            let subtitle = format!(
                "{mode} run, {} rep(s) per point, every log verified",
                plan.reps
            );
            std::fs::write(path, svg::chart(&summaries, &machine, cdf_n, &subtitle))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
