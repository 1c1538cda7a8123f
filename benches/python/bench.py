#!/usr/bin/env python3
"""ringlog from Python, side by side with what multi-process Python services use today.

    python benches/python/bench.py [--producers 1,2,4] [--calls 100000] [--mix-calls 16000]
                                   [--reps 3] [--json OUT.json] [--markdown OUT.md]

N producer processes x M logging calls (or raw writes) into one shared log, every contender
in turn for each configuration (round-robin, so a noisy machine hurts all alike), R times.
Every log is checked record by record; a contender's corruption is reported, never hidden.
Exit status: 0 done, 1 a run failed or a ringlog log was not clean, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import contenders
import measure
import report
import runner
import single_call
import workload
from worker import Run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _name_list(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--producers", type=_int_list, default=[1, 2, 4], help="process counts (default 1,2,4)")
    # Long enough that one run takes seconds, not tenths: shorter runs varied 30% between reps.
    parser.add_argument("--calls", type=int, default=100000, help="calls per producer, small workload")
    parser.add_argument("--mix-calls", type=int, default=16000, help="calls per producer, mix workload")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", type=_name_list, default=list(workload.WORKLOADS))
    parser.add_argument("--contenders", type=_name_list, default=list(contenders.CONTENDERS))
    parser.add_argument("--single-call-calls", type=int, default=200000, help="0 skips the single-call loop")
    parser.add_argument(
        "--drain",
        default=os.environ.get("RINGLOG_DRAIN") or os.path.join(REPO, "target", "release", "ringlog-drain"),
        help="the ringlog-drain binary (default: $RINGLOG_DRAIN, else target/release/ringlog-drain)",
    )
    parser.add_argument("--dir", help="where the logs go (default: a new temp dir, removed at the end)")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.contenders if name not in contenders.CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; known: {', '.join(contenders.CONTENDERS)}")
    bad_workloads = [name for name in args.workloads if name not in workload.WORKLOADS]
    if bad_workloads:
        parser.error(f"unknown workloads {bad_workloads}; known: {', '.join(workload.WORKLOADS)}")
    return args


def run_all(args, log_dir: str, out=sys.stdout) -> dict:
    available, skipped = [], {}
    for name in args.contenders:
        why = contenders.CONTENDERS[name].missing()
        if why:
            skipped[name] = why
            print(f"SKIPPED contender {name}: {why}", file=out)
        else:
            available.append(name)
    needs_drain = any(contenders.CONTENDERS[n].uses_drain for n in available)
    if needs_drain and not os.access(args.drain, os.X_OK):
        raise SystemExit(f"no ringlog-drain at {args.drain}: build it with `cargo build --release -p ringlog-drain` or pass --drain PATH")

    runs = []
    ring_prefix = f"pybench-{os.getpid()}"
    for workload_name in args.workloads:
        per_producer = args.calls if workload_name == "small" else args.mix_calls
        for producers in args.producers:
            for rep in range(args.reps):
                for name in available:
                    run = Run(
                        contender=name,
                        workload=workload_name,
                        producers=producers,
                        per_producer=per_producer,
                        log_path=os.path.join(log_dir, f"{workload_name}-{producers}-{name}-{rep}.log"),
                        ring=f"{ring_prefix}-{len(runs)}",
                        drain_binary=args.drain,
                    )
                    result = runner.run_once(run, keep_log=args.keep_logs)
                    verdict = result["integrity"]
                    print(
                        f"{workload_name:5} N={producers} rep {rep + 1}/{args.reps} {name:30} "
                        f"{result['records_per_s']:>12,.0f} records/s  p50 {result['latency_ns']['p50']:>7} ns  "
                        f"integrity: {'n/a' if not verdict['checked'] else 'clean' if verdict['clean'] else verdict}",
                        file=out,
                        flush=True,
                    )
                    runs.append(result)

    single = None
    if args.single_call_calls and "ringlog.Writer" in available:
        single = single_call.measure_single_call(log_dir, f"{ring_prefix}-single", args.drain, args.single_call_calls, max(args.reps, 3))
    rows = report.summarize(runs)
    checks = report.targets(rows, single)
    for run in runs:
        del run["latencies"]
    return {
        "machine": measure.machine(),
        "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        "config": {
            "producers": args.producers,
            "calls": args.calls,
            "mix_calls": args.mix_calls,
            "mix_every": workload.MIX_EVERY,
            "large_bytes": [workload.LARGE_MIN, workload.LARGE_MAX],
            "small_record_chars": workload.SMALL_RECORD_CHARS,
            "reps": args.reps,
            "contenders": available,
        },
        "skipped": skipped,
        "summary": rows,
        "single_call": single,
        "targets": checks,
        "runs": runs,
    }


def render(result: dict) -> str:
    floor = min((row["timer_floor_ns"] for row in result["summary"]), default=0)
    parts = [
        f"Latency is per call in the producer, the timer's own {floor} ns included; CPU is all "
        "processes' (producers, listener, drain) per record; integrity sums every rep.",
        "",
        report.markdown(result["summary"]),
    ]
    if result["single_call"]:
        parts.append(report.single_call_markdown(result["single_call"]))
        parts.append("")
    parts.append("Targets:")
    parts.append("")
    parts.append(report.targets_markdown(result["targets"]))
    for name, why in result["skipped"].items():
        parts.append(f"- SKIPPED {name}: {why}")
    return "\n".join(parts) + "\n"


def ringlog_clean(result: dict) -> bool:
    return all(row["integrity"]["clean"] for row in result["summary"] if row["contender"].startswith("ringlog"))


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = args.dir or tempfile.mkdtemp(prefix="ringlog-pybench-")
    os.makedirs(log_dir, exist_ok=True)
    try:
        result = run_all(args, log_dir)
    except runner.RunFailed as failure:
        print(f"bench: a run failed: {failure}", file=sys.stderr)
        return 1
    finally:
        if not args.dir and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
    text = render(result)
    machine = result["machine"]
    print()
    print(f"{machine['cpus']} CPUs ({machine['cpu_model']}), Linux {machine['kernel']}, Python {machine['python']}, load average {machine['load_average']}")
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
    return 0 if ringlog_clean(result) else 1


if __name__ == "__main__":
    sys.exit(main())
