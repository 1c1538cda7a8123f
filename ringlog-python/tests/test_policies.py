"""Every full policy, reconciled: for each producer, sent = written + dropped, the records the
drain wrote are exactly the ones write() reported written, and the drain's "dropped N records
from pid P" notices add up to the dropped count."""

import json
import os
import subprocess
import sys

import ringlog

PRODUCER = os.path.join(os.path.dirname(__file__), "producer.py")
SMALL = 1 << 16  # 64 KiB: a few hundred records fill it


def run_producers(ring, policy, count, size, n, capacity=SMALL):
    procs = [
        subprocess.Popen([sys.executable, PRODUCER, ring, policy, str(count), str(size), f"p{i}", str(capacity)],
                         stdout=subprocess.PIPE, text=True)
        for i in range(n)
    ]
    results = {}
    for i, p in enumerate(procs):
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        lines = [json.loads(line) for line in out.splitlines()]
        results[(f"p{i}", p.pid)] = lines[-1]
    return results


def reconcile(drain, results, count):
    records = drain.records()
    drops = drain.dropped()
    by_tag = {}
    for r in records:
        tag, seq, _ = r["msg"].split(" ", 2)
        by_tag.setdefault(tag, []).append((int(seq), r["pid"]))
    total_dropped = 0
    for (tag, pid), result in results.items():
        written, stats = result["written"], result["stats"]
        got = by_tag.get(tag, [])
        assert [seq for seq, _ in got] == written, f"{tag}: the drained records are exactly the written ones, in order"
        assert {p for _, p in got} <= {pid}
        assert stats["written"] == len(written)
        assert stats["written"] + stats["dropped"] == count, f"{tag}: sent = written + dropped"
        assert drops.get(pid, 0) == stats["dropped"], f"{tag}: the drain's drop notices say {drops.get(pid)}"
        total_dropped += stats["dropped"]
    return total_dropped


def test_drop_policy_counts_every_drop_and_the_drain_reports_them(ring, start_drain):
    results = run_producers(ring, "drop", count=3000, size=100, n=3)
    drain = start_drain(ring, capacity=SMALL)  # started after the producers filled the ring
    drain.stop()
    assert reconcile(drain, results, 3000) > 0
    assert all(r["stats"]["blocked_seconds"] == 0 for r in results.values()), "drop never waits"


def test_block_for_seconds_waits_then_drops_and_counts(ring, start_drain):
    results = run_producers(ring, "0.02", count=800, size=100, n=2)
    drain = start_drain(ring, capacity=SMALL)
    drain.stop()
    assert reconcile(drain, results, 800) > 0
    assert all(r["stats"]["blocked_seconds"] > 0 for r in results.values())


def test_block_without_a_drain_drops_after_the_grace_instead_of_hanging(ring, start_drain):
    results = run_producers(ring, "block", count=800, size=100, n=2)
    drain = start_drain(ring, capacity=SMALL)
    drain.stop()
    assert reconcile(drain, results, 800) > 0


def test_block_with_a_drain_loses_nothing_through_a_small_ring(ring, start_drain):
    ringlog.Writer(ring, capacity=SMALL)  # create it, so the drain and producers agree
    drain = start_drain(ring, capacity=SMALL)
    drain.wait_alive()
    results = run_producers(ring, "block", count=20000, size=120, n=4)
    drain.stop()
    assert reconcile(drain, results, 20000) == 0
    assert len(drain.records()) == 4 * 20000
