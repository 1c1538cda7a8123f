"""Turns the runs into what a reader sees: a summary per configuration (median over reps of
throughput and CPU, latency percentiles over every call of every rep, integrity summed over
reps), the markdown table, and the checks against the issue's targets. No measuring here."""

from __future__ import annotations

from array import array

import contenders
import measure

# What each family's ratios are against: the stdlib handler, and the plain syscall.
BASELINE = {"logging": "FileHandler", "raw": "os.write"}


def family(contender: str) -> str:
    return contenders.CONTENDERS[contender].family


def summarize(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["workload"], run["producers"], run["contender"]), []).append(run)
    rows = []
    for (workload, producers, contender), reps in groups.items():
        latencies = array("q")
        for rep in reps:
            latencies.extend(rep["latencies"])
        integrity = {key: sum(rep["integrity"][key] for rep in reps) for key in ("expected", "intact", "lost", "torn", "duplicated", "out_of_order", "unexpected")}
        integrity["clean"] = all(rep["integrity"]["clean"] for rep in reps)
        integrity["checked"] = all(rep["integrity"]["checked"] for rep in reps)
        rows.append(
            {
                "workload": workload,
                "producers": producers,
                "contender": contender,
                "reps": len(reps),
                "records_per_rep": reps[0]["producers"] * reps[0]["per_producer"],
                "records_per_s": measure.median([rep["records_per_s"] for rep in reps]),
                "cpu_ns_per_record": measure.median([rep["cpu_ns_per_record"] for rep in reps]),
                "latency_ns": measure.latency_summary(latencies),
                "timer_floor_ns": min(rep["timer_floor_ns"] for rep in reps),
                "refused": sum(rep["refused"] for rep in reps),
                "blocked_seconds": None if reps[0]["blocked_seconds"] is None else sum(rep["blocked_seconds"] for rep in reps),
                "integrity": integrity,
            }
        )
    return rows


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f} ms"
    if value >= 1e3:
        return f"{value / 1e3:.1f} us"
    return f"{value:.0f} ns"


def _integrity_cell(integrity: dict) -> str:
    if not integrity["checked"]:
        return "n/a (writes no log)"
    if integrity["clean"]:
        return f"clean ({integrity['intact']})"
    parts = [f"{integrity[k]} {k.replace('_', ' ')}" for k in ("lost", "torn", "duplicated", "out_of_order", "unexpected") if integrity[k]]
    return "**" + ", ".join(parts) + f"** of {integrity['expected']}"


def _find(rows, workload, producers, contender):
    for row in rows:
        if (row["workload"], row["producers"], row["contender"]) == (workload, producers, contender):
            return row
    return None


def markdown(rows: list[dict]) -> str:
    lines = []
    tables = sorted({(family(row["contender"]), row["workload"]) for row in rows}, key=lambda t: (t[0] != "logging", t[1] != "small"))
    for kind, workload in tables:
        baseline = BASELINE[kind]
        what = "logging calls" if kind == "logging" else "raw writes, one line each"
        lines.append(f"Workload `{workload}`, {what}:")
        lines.append("")
        lines.append(f"| N | contender | records/s | vs {baseline} | p50 | p99 | p99.9 | CPU/record | integrity (all reps) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        mine = [r for r in rows if r["workload"] == workload and family(r["contender"]) == kind]
        for row in sorted(mine, key=lambda r: r["producers"]):
            base = _find(rows, workload, row["producers"], baseline)
            ratio = f"{row['records_per_s'] / base['records_per_s']:.2f}x" if base else "-"
            latency = row["latency_ns"]
            lines.append(
                f"| {row['producers']} | {row['contender']} | {_rate(row['records_per_s'])} | {ratio} | "
                f"{_ns(latency['p50'])} | {_ns(latency['p99'])} | {_ns(latency['p999'])} | "
                f"{_ns(row['cpu_ns_per_record'])} | {_integrity_cell(row['integrity'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def targets(rows: list[dict], single_call: dict | None) -> list[dict]:
    """The issue's targets, each met or missed with the measured value."""
    checks = []
    if single_call:
        ns = single_call["ns_per_call_median"]["ringlog.Writer.write"]
        checks.append({"target": "ringlog.Writer.write of 128 B <= 150 ns per call", "measured": f"{ns:.0f} ns", "met": ns <= 150})
    top = max((row["producers"] for row in rows), default=0)
    for workload in sorted({row["workload"] for row in rows}):
        ringlog = _find(rows, workload, top, "ringlog.Handler")
        if not ringlog:
            continue
        floors = [(name, _find(rows, workload, top, name)) for name in contenders.FLOORS]
        floors = [(name.removeprefix("floor: "), row) for name, row in floors if row]
        for other, factor in (("FileHandler", 1.5), ("QueueListener", 3.0), ("ConcurrentRotatingFileHandler", 5.0)):
            row = _find(rows, workload, top, other)
            if row:
                ratio = ringlog["records_per_s"] / row["records_per_s"]
                measured = f"{ratio:.2f}x"
                if floors:
                    ceilings = ", ".join(f"{name}: {floor['records_per_s'] / row['records_per_s']:.2f}x" for name, floor in floors)
                    measured += f" ({ceilings})"
                checks.append(
                    {
                        "target": f"N = {top}, {workload}: ringlog.Handler >= {factor}x {other} end to end",
                        "measured": measured,
                        "met": ratio >= factor,
                    }
                )
    for contender in ("ringlog.Handler", "ringlog.Writer"):
        mine = [row for row in rows if row["contender"] == contender]
        if mine:
            bad = [row for row in mine if not row["integrity"]["clean"]]
            checks.append(
                {
                    "target": f"{contender}: zero lost, torn or duplicated records in every run",
                    "measured": "clean in every run" if not bad else "; ".join(f"{r['workload']} N={r['producers']}: {_integrity_cell(r['integrity'])}" for r in bad),
                    "met": not bad,
                }
            )
    return checks


def targets_markdown(checks: list[dict]) -> str:
    return "\n".join(f"- {'met' if c['met'] else 'MISSED'}: {c['target']}: {c['measured']}" for c in checks)


def single_call_markdown(single_call: dict) -> str:
    medians = single_call["ns_per_call_median"]
    base = medians["loop + len (baseline)"]
    cells = ", ".join(f"{name} {ns:.0f} ns" for name, ns in medians.items() if not name.startswith("loop"))
    floor = single_call["timer_floor_ns"]["p50"]
    timed = ", ".join(
        f"{name} p50 {max(0, t['p50'] - floor):.0f} ns, p99 {max(0, t['p99'] - floor):.0f} ns"
        for name, t in single_call["timed_one_by_one_ns"].items()
        if not name.startswith("loop")
    )
    return (
        f"One call, {single_call['record_bytes']} B, {single_call['calls_per_rep']} calls in a loop (CPU time per call), median of "
        f"{single_call['reps']}: {cells} (the loop itself with a no-op C call: {base:.0f} ns, included in each). "
        f"Each call timed alone, the timer's {floor} ns subtracted: {timed}."
    )
