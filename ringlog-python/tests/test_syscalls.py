"""No syscall per record from Python: a process writing through `Writer.write`, `write_record`
and `ringlog.Handler` under strace makes almost no syscall between two marker calls, however
many records it writes (issue 14: "no syscall, lock or allocation per record")."""

import shutil
import subprocess
import sys

import pytest

STRACE = shutil.which("strace")
BEGIN, END = "/ringlog-test-syscalls-begin", "/ringlog-test-syscalls-end"

# Runs under strace. logging's LogRecord calls os.getpid() (a syscall) for every record unless
# logging.logProcesses is off: that is logging's cost, not the handler's, so it is turned off.
PRODUCER = f"""
import logging, os, sys
import ringlog

ring, n = sys.argv[1], int(sys.argv[2])
logging.logProcesses = False
w = ringlog.Writer(ring)
log = logging.getLogger("syscalls")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(ringlog.Handler(ring))
w.write(b"warm-up")
log.info("warm-up")


def mark(path):
    try:
        os.stat(path)
    except FileNotFoundError:
        pass


mark({BEGIN!r})
line = b"x" * 120
for i in range(n):
    w.write(line)
    w.write_record(20, "app", "a str message of some length, about one line")
    log.info("request %d served", i)
mark({END!r})
"""


def test_writes_make_no_syscall_per_record(ring, start_drain, tmp_path):
    if STRACE is None:
        pytest.skip("strace is not installed (.ci/run installs it)")
    drain = start_drain(ring)
    drain.wait_alive()
    trace = tmp_path / "strace.txt"
    n = 50_000
    done = subprocess.run([STRACE, "-f", "-o", str(trace), sys.executable, "-c", PRODUCER, ring, str(n)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    drain.stop()
    assert len(drain.records()) == 3 * n + 2

    lines = trace.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if BEGIN in line)
    end = next(i for i, line in enumerate(lines) if END in line)
    between = lines[begin + 1:end]
    # A producer wakes a sleeping drain with one futex call; nothing else happens per record.
    assert len(between) < 3 * n / 100, f"{len(between)} syscalls for {3 * n} records:\n" + "\n".join(between[:50])
    print(f"{len(between)} syscalls for {3 * n} records")
