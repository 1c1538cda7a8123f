"""The raw call alone: ns per `ringlog.Writer.write` of a 128-byte record against
`os.write` on an O_APPEND descriptor, in one process while a real drain empties the ring.
The ring (64 MiB) holds a whole rep, so this is the call's own cost, never a wait for the
drain (the end-to-end runs show those). Two views: a loop of K calls divided by K, beside the
same loop calling `len` (a C call that does nothing: the loop's own cost), timed in this
thread's CPU time; and each call
timed alone, its p50 and p99 with the timer's own floor subtracted."""

from __future__ import annotations

import multiprocessing
import os
import time

from array import array

import measure
import services

RECORD_BYTES = 128
RING_CAPACITY = "64M"


def _loop_ns(function, data: bytes, calls: int) -> float:
    # This thread's CPU time, not the wall clock: on a machine others load, a wall-clock loop
    # mostly measures the time this process waited for a core.
    clock = time.thread_time_ns
    loop = range(calls)
    start = clock()
    for _ in loop:
        function(data)
    return (clock() - start) / calls


def _timed_calls(function, data: bytes, calls: int) -> dict:
    clock = time.perf_counter_ns
    latencies = array("q", bytes(8 * calls))
    for i in range(calls):
        start = clock()
        function(data)
        latencies[i] = clock() - start
    return measure.latency_summary(latencies)


def _measure(log_dir: str, ring: str, drain_binary: str, calls: int, reps: int, conn) -> None:
    import ringlog

    data = (b"x" * (RECORD_BYTES - 1)) + b"\n"
    drain = services.DrainService(
        drain_binary, ring, os.path.join(log_dir, "single-call-ringlog.log"), capacity=RING_CAPACITY
    )
    fd = os.open(os.path.join(log_dir, "single-call-o_append.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        writer = ringlog.Writer(ring)
        contenders = {
            "loop + len (baseline)": len,
            "ringlog.Writer.write": writer.write,
            "os.write O_APPEND": lambda data: os.write(fd, data),
        }
        samples = {name: [] for name in contenders}
        for function in contenders.values():  # warm up: fault in the ring and the file
            _loop_ns(function, data, calls // 10)
        for _ in range(reps):
            for name, function in contenders.items():
                samples[name].append(_loop_ns(function, data, calls))
        timed = {name: _timed_calls(function, data, calls) for name, function in contenders.items()}
        floor = measure.timer_floor_ns()
        stats = writer.stats()
        # Closed first: a drain that stops with a producer attached keeps its spare link.
        writer.close()
        drain.stop()
        conn.send(
            {
                "samples": samples,
                "timed": timed,
                "timer_floor": floor,
                "writer_stats": stats if isinstance(stats, dict) else repr(stats),
            }
        )
    except BaseException as error:
        conn.send({"error": repr(error)})
    finally:
        os.close(fd)
        drain.close()
        conn.close()


def measure_single_call(log_dir: str, ring: str, drain_binary: str, calls: int, reps: int) -> dict:
    """In a child process, so the harness itself never maps a ring."""
    ctx = multiprocessing.get_context("fork")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_measure, args=(log_dir, ring, drain_binary, calls, reps, child_conn))
    process.start()
    child_conn.close()
    result = parent_conn.recv()
    process.join()
    for name in ("single-call-ringlog.log", "single-call-o_append.log"):
        os.unlink(os.path.join(log_dir, name))
    if "error" in result:
        raise RuntimeError(f"single-call measurement failed: {result['error']}")
    return {
        "record_bytes": RECORD_BYTES,
        "calls_per_rep": calls,
        "reps": reps,
        "ns_per_call_median": {name: measure.median(v) for name, v in result["samples"].items()},
        "ns_per_call_samples": result["samples"],
        "timed_one_by_one_ns": result["timed"],
        "timer_floor_ns": result["timer_floor"],
        "writer_stats": result["writer_stats"],
    }
