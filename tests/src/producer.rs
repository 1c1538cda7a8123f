//! The `ringlog-test-producer` process of the integration tests: writes
//! `crate::record(id, seq)` for seq in 0..records through `ringlog_writer::Writer`,
//! optionally forking first. Prints `pid=<pid> written=<n> dropped=<n>` per process on stdout.
//! Two binaries run it: `ringlog-test-producer`, and `ringlog-test-producer-fault-armed`
//! (built with fault injection, for `--fault`; see [`crate::armed_bin`]).

use clap::Parser;
use ringlog_pipe::parse_policy;
use ringlog_writer::{FullPolicy, WriteError, Writer};

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

fn run(writer: &Writer, id: u32, args: &Args) {
    let mut buf = Vec::with_capacity(args.max_size);
    let (mut written, mut dropped) = (0u64, 0u64);
    for seq in 0..args.records {
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
