"""What the harness measures besides integrity: CPU time, per-call latency, the timer's
own floor, and the machine it ran on. Owns no process and no file."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from array import array


def cpu_ns_self() -> int:
    """User + system CPU of this process, all its threads, in ns."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def cpu_ns_of_pid(pid: int) -> int:
    """CPU time of another live process, all its threads, in ns (the scheduler's own
    accounting, /proc/PID/task/TID/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                total += int(schedstat.read().split()[0])
        except FileNotFoundError:  # a thread that just exited
            pass
    return total


def timer_floor_ns(samples: int = 20000) -> dict:
    """What `perf_counter_ns() - perf_counter_ns()` reads around nothing: the part of every
    per-call latency that is the timer itself."""
    clock = time.perf_counter_ns
    gaps = array("q", bytes(8 * samples))
    for i in range(samples):
        start = clock()
        gaps[i] = clock() - start
    return {"min": min(gaps), "p50": percentile(sorted(gaps), 0.5)}


def percentile(sorted_values, q: float) -> int:
    """The value at quantile `q` of an already sorted sequence (nearest rank)."""
    if not sorted_values:
        return 0
    rank = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(values) -> dict:
    ordered = sorted(values)
    return {
        "calls": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "p999": percentile(ordered, 0.999),
        "max": ordered[-1] if ordered else 0,
    }


def median(values):
    ordered = sorted(values)
    if not ordered:
        return 0
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/uptime") as uptime:
        up_seconds = float(uptime.read().split()[0])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "uptime_s": round(up_seconds),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
