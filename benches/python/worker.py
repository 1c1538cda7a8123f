"""One producer process: opens its contender's sink, builds its records, says ready, waits for
the start signal, makes its calls with each one timed, closes the sink (flushing it), and
reports its latencies, CPU and finish time to the harness. Never checks the log."""

from __future__ import annotations

import logging
import time
import traceback
from array import array
from dataclasses import dataclass

import contenders
import measure
import workload


@dataclass(frozen=True)
class Run:
    """Everything a run needs to know, in the harness and in its producers."""

    contender: str
    workload: str
    producers: int
    per_producer: int
    log_path: str
    ring: str
    drain_binary: str


def _timed_log_calls(logger: logging.Logger, calls, latencies) -> int:
    clock = time.perf_counter_ns
    info, error = logger.info, logger.error
    for i, call in enumerate(calls):
        if call.exc is None:
            start = clock()
            info(call.message)
            latencies[i] = clock() - start
        else:
            start = clock()
            error(call.message, exc_info=call.exc)
            latencies[i] = clock() - start
    return 0


def _timed_writes(write, lines, latencies) -> int:
    clock = time.perf_counter_ns
    refused = 0
    for i, line in enumerate(lines):
        start = clock()
        written = write(line)
        latencies[i] = clock() - start
        if written is False:
            refused += 1
    return refused


def _logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    return logger


def main(run: Run, producer: int, worker_arg, start, conn) -> None:
    try:
        contender = contenders.CONTENDERS[run.contender]
        sink = contender.open_sink(run, worker_arg)
        if contender.family == "logging":
            items = workload.log_calls(run.workload, producer, run.per_producer)
            logger = _logger_with(sink, run.contender)

            def calls(latencies):
                return _timed_log_calls(logger, items, latencies)

            close = sink.close
        else:
            items = workload.raw_lines(run.workload, producer, run.per_producer)

            def calls(latencies):
                return _timed_writes(sink.write, items, latencies)

            close = sink.close
        latencies = array("q", bytes(8 * run.per_producer))
        timer_floor = measure.timer_floor_ns()
        conn.send("ready")
        start.wait()
        cpu_start = measure.cpu_ns_self()
        refused = calls(latencies)
        close()
        end_ns = time.perf_counter_ns()
        cpu_ns = measure.cpu_ns_self() - cpu_start
        ringlog_stats = contenders.ringlog_stats(sink)
        conn.send(
            {
                "producer": producer,
                "end_ns": end_ns,
                "cpu_ns": cpu_ns,
                "refused": refused,
                "ringlog_stats": ringlog_stats,
                "timer_floor": timer_floor,
                "latencies": latencies.tobytes(),
            }
        )
    except BaseException:
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()
