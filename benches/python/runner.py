"""One run: a contender, a workload, N producer processes x M calls into a fresh log file.
Starts the service, forks the producers, starts the clock once all are ready, stops it when
every record is in the file, then checks the log. Returns the raw figures; no reporting."""

from __future__ import annotations

import multiprocessing
import os
import time
from array import array

import contenders
import integrity
import measure
import worker

_RUN_DEADLINE_S = 900.0


class RunFailed(RuntimeError):
    pass


def _receive(conn, deadline: float, what: str):
    if not conn.poll(max(0.0, deadline - time.monotonic())):
        raise RunFailed(f"no {what} from a producer before the deadline")
    try:
        message = conn.recv()
    except EOFError:
        raise RunFailed(f"a producer exited without its {what}") from None
    if isinstance(message, dict) and "error" in message:
        raise RunFailed(f"a producer failed:\n{message['error']}")
    return message


def run_once(run: worker.Run, keep_log: bool = False) -> dict:
    contender = contenders.CONTENDERS[run.contender]
    ctx = multiprocessing.get_context("fork")
    deadline = time.monotonic() + _RUN_DEADLINE_S
    service = contender.start_service(run, ctx)
    processes = []
    try:
        start = ctx.Event()
        conns = []
        for producer in range(run.producers):
            parent_conn, child_conn = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=worker.main, args=(run, producer, service.worker_arg, start, child_conn)
            )
            process.start()
            child_conn.close()
            processes.append(process)
            conns.append(parent_conn)
        for conn in conns:
            _receive(conn, deadline, "ready")
        service.clock_starts()
        start_ns = time.perf_counter_ns()
        start.set()
        reports = [_receive(conn, deadline, "report") for conn in conns]
        for process in processes:
            process.join()
        producers_end_ns = max(report["end_ns"] for report in reports)
        service_end_ns, service_cpu_ns = service.finish(run.producers * run.per_producer, producers_end_ns)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        service.close()

    end_ns = service_end_ns or max(report["end_ns"] for report in reports)
    if contender.writes_log:
        verdict = integrity.check_file(run.log_path, run.producers, run.per_producer).as_dict()
        if not keep_log:
            os.unlink(run.log_path)
    else:
        verdict = integrity.not_checked(run.producers * run.per_producer)
    latencies = array("q")
    for report in reports:
        latencies.frombytes(report["latencies"])
    records = run.producers * run.per_producer
    seconds = (end_ns - start_ns) / 1e9
    cpu_ns = sum(report["cpu_ns"] for report in reports) + service_cpu_ns
    return {
        "contender": run.contender,
        "workload": run.workload,
        "producers": run.producers,
        "per_producer": run.per_producer,
        "seconds": seconds,
        "producers_seconds": (max(report["end_ns"] for report in reports) - start_ns) / 1e9,
        "records_per_s": records / seconds,
        "cpu_ns_per_record": cpu_ns / records,
        "cpu_ns_producers": sum(report["cpu_ns"] for report in reports),
        "cpu_ns_service": service_cpu_ns,
        "refused": sum(report["refused"] for report in reports),
        # ringlog only: seconds the producers waited on a full ring (block policy), summed.
        "blocked_seconds": (
            sum(report["ringlog_stats"]["blocked_seconds"] for report in reports)
            if all(report["ringlog_stats"] for report in reports)
            else None
        ),
        "timer_floor_ns": min(report["timer_floor"]["p50"] for report in reports),
        "latency_ns": measure.latency_summary(latencies),
        "latencies": latencies,
        "integrity": verdict,
        "log_kept": run.log_path if keep_log and contender.writes_log else None,
    }
