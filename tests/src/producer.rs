//! The `ringlog-test-producer` process of the integration tests: writes
//! `crate::record(id, seq)` for seq in 0..records through `ringlog_writer::Writer`,
//! optionally forking first. Prints `pid=<pid> written=<n> dropped=<n>` per process on stdout.
//! Two binaries run it: `ringlog-test-producer`, and `ringlog-test-producer-fault-armed`
//! (built with fault injection, for `--fault`; see [`crate::armed_bin`]).

use clap::Parser;
use ringlog_pipe::parse_policy;
use ringlog_writer::{FullPolicy, WriteError, Writer, WriterBuilder};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    ring: String,
    #[arg(long)]
    id: u32,
    #[arg(long)]
    records: u64,
    #[arg(long, default_value_t = 1024)]
    max_size: usize,
    #[arg(long, default_value = "block", value_parser = parse_policy)]
    policy: FullPolicy,
    #[arg(long)]
    capacity: Option<u64>,
    /// Fork after opening; the child writes as producer `id + 1000`.
    #[arg(long)]
    fork: bool,
    /// Threads writing (records are split between them; ids id*100+t).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Crash at a named point: POINT:kill|stop:N (see ringlog_core::fault).
    #[arg(long)]
    fault: Option<String>,
    /// How long Block waits for an absent drain, in ms (default: the library's).
    #[arg(long)]
    drain_grace_ms: Option<u64>,
    /// Switch to this uid (and gid) before opening the ring (needs root).
    #[arg(long)]
    as_user: Option<u32>,
    /// This thread and a second one write (ids `id` and `id + 1`), then the writer is dropped
    /// while both threads live on; prints `closed` and exits once stdin is closed.
    #[arg(long)]
    close_then_wait: bool,
    /// Another thread forks while this one opens the writer, parked between opening its lock
    /// descriptor and registering it for closing in children (fault-armed build only). Writes
    /// one record, prints `ready child=<pid>`, then waits, and the child with it, until stdin
    /// is closed.
    #[arg(long)]
    fork_while_opening: bool,
    /// After this many records, print `paused` and wait, writer open, until stdin is closed;
    /// then write the rest.
    #[arg(long)]
    pause_at: Option<u64>,
}

/// The producer's `main`.
pub fn main() {
    let args = Args::parse();
    if let Some(spec) = &args.fault {
        ringlog_core::fault::arm(spec).unwrap_or_else(|e| {
            eprintln!("--fault: {e}");
            std::process::exit(2)
        });
    }
    if let Some(uid) = args.as_user {
        // SAFETY: setgid/setuid have no memory-safety preconditions; single-threaded here.
        let ok = unsafe { libc::setgid(uid) == 0 && libc::setuid(uid) == 0 };
        assert!(ok, "cannot switch to uid {uid}");
    }
    let mut b = Writer::builder(&args.ring).full_policy(args.policy);
    if let Some(c) = args.capacity {
        b = b.capacity(c);
    }
    if let Some(ms) = args.drain_grace_ms {
        b = b.drain_grace(std::time::Duration::from_millis(ms));
    }
    if args.fork_while_opening {
        fork_while_opening(b, &args);
        return;
    }
    let writer = b.open().unwrap_or_else(|e| {
        eprintln!("open: {}", ringlog_core::ErrorChain(&e));
        std::process::exit(2)
    });
    let mut id = args.id;
    if args.fork {
        // Write one record in the parent first so the fork happens with a slot attached.
        // SAFETY: fork(2) in a single-threaded process; the child only runs Rust code that
        // is fork-safe here (no other threads hold locks).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            id += 1000;
        } else {
            run(&writer, id, &args);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child failed"
            );
            return;
        }
    }
    if args.close_then_wait {
        close_then_wait(writer, id, &args);
        return;
    }
    if args.threads > 1 {
        std::thread::scope(|s| {
            for t in 0..args.threads {
                let writer = writer.clone();
                let args = &args;
                s.spawn(move || run(&writer, id * 100 + t, args));
            }
        });
    } else {
        run(&writer, id, &args);
    }
}

/// `--pause-at`: says so, then waits until stdin is closed.
fn pause() {
    use std::io::{Read, Write};
    println!("paused");
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// `--close-then-wait`: a process whose writer is gone but whose writing threads are not.
fn close_then_wait(writer: Writer, id: u32, args: &Args) {
    use std::io::{Read, Write};
    let (wrote, second_wrote) = std::sync::mpsc::channel::<()>();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let second = writer.clone();
        s.spawn(move || {
            run(&second, id + 1, args);
            drop(second);
            let _ = wrote.send(());
            // Lives on, its thread-local slot entry with it, until the process is told to end.
            let _ = finished.recv();
        });
        run(&writer, id, args);
        second_wrote.recv().expect("the second thread wrote");
        drop(writer);
        println!("closed");
        std::io::stdout().flush().expect("stdout");
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(finish);
    });
}

/// `--fork-while-opening`: the interleaving of a `fork()` in the middle of opening the lock
/// descriptor, forced with fault points. This thread parks at `LockFdOpened` until the fork is
/// done, or until the fork's prepare handler says it waits for this very open (then the fork
/// cannot happen in the middle, and parking longer would deadlock).
fn fork_while_opening(builder: WriterBuilder, args: &Args) {
    use ringlog_core::fault::{self, Point};
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static PARKED: AtomicBool = AtomicBool::new(false);
    static GO_ON: AtomicBool = AtomicBool::new(false);
    fn hook(point: Point) {
        // SeqCst: test instrumentation between two threads; nothing subtle wanted here.
        match point {
            Point::LockFdOpened if !PARKED.swap(true, Ordering::SeqCst) => {
                while !GO_ON.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
            }
            Point::ForkWaitsForOpen => GO_ON.store(true, Ordering::SeqCst),
            _ => {}
        }
    }
    if !fault::ENABLED {
        eprintln!("--fork-while-opening needs the fault-armed build");
        std::process::exit(2)
    }
    fault::set_hook(hook);
    let forker = std::thread::spawn(|| {
        while !PARKED.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // SAFETY: the child only makes async-signal-safe calls (read, _exit) below.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child lives, writing nothing, until stdin is closed.
            let mut byte = 0u8;
            // SAFETY: reads into a local byte.
            while unsafe { libc::read(0, (&mut byte as *mut u8).cast(), 1) } > 0 {}
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        GO_ON.store(true, Ordering::SeqCst);
        pid
    });
    let writer = builder.open().unwrap_or_else(|e| {
        eprintln!("open: {}", ringlog_core::ErrorChain(&e));
        std::process::exit(2)
    });
    let child = forker.join().expect("the forking thread");
    let mut buf = Vec::new();
    crate::record(args.id, 0, args.max_size, &mut buf);
    writer.write(&buf).expect("write");
    println!("ready child={child}");
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

fn run(writer: &Writer, id: u32, args: &Args) {
    let mut buf = Vec::with_capacity(args.max_size);
    let (mut written, mut dropped) = (0u64, 0u64);
    for seq in 0..args.records {
        if args.pause_at == Some(seq) {
            pause();
        }
        crate::record(id, seq, args.max_size, &mut buf);
        match writer.write(&buf) {
            Ok(()) => written += 1,
            Err(WriteError::Dropped) => dropped += 1,
            Err(e) => {
                eprintln!("write: {}", ringlog_core::ErrorChain(&e));
                std::process::exit(3)
            }
        }
    }
    // SAFETY: gettid(2) has no preconditions.
    let tid = unsafe { libc::gettid() };
    println!(
        "pid={} tid={tid} id={id} written={written} dropped={dropped}",
        std::process::id()
    );
}
