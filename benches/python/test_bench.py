"""Smoke test of the Python harness, run by scripts/test-all.sh: the integrity checker really
flags torn, duplicated, missing and reordered records, and a tiny configuration runs every
contender with ringlog's logs clean. Needs the `ringlog` package, concurrent-log-handler and a
built ringlog-drain (the test script provides all three); a missing one fails the test."""

from __future__ import annotations

import logging
import os
import types

import bench
import contenders
import integrity
import workload


def _log(producers=2, per_producer=40, kind="mix") -> list[bytes]:
    return [line for p in range(producers) for line in workload.raw_lines(kind, p, per_producer)]


def test_a_clean_log_is_clean():
    verdict = integrity.check_bytes(b"".join(_log()), 2, 40)
    assert verdict.clean, verdict
    assert verdict.intact == 80


def test_a_record_split_by_another_write_is_torn_and_lost():
    lines = _log()
    victim = lines[15]  # a large one in the mix
    assert len(victim) > 8192
    lines[15] = victim[:5000] + lines[3] + victim[5000:]  # record 3 written into its middle
    del lines[3]
    verdict = integrity.check_bytes(b"".join(lines), 2, 40)
    assert verdict.torn == 2, verdict  # record 15's head and its tail
    assert verdict.lost == 1, verdict  # record 15; record 3 is whole inside it
    assert verdict.duplicated == 0, verdict


def test_two_writes_interleaving_byte_ranges_are_torn():
    lines = _log(kind="small")
    a, b = lines[0], lines[41]
    lines[0], lines[41] = a[:60] + b[60:], b[:60] + a[60:]
    verdict = integrity.check_bytes(b"".join(lines), 2, 40)
    assert verdict.torn == 2 and verdict.lost == 2, verdict


def test_a_changed_byte_in_a_body_is_torn():
    lines = _log(kind="small")
    lines[7] = lines[7][:30] + b"Z" + lines[7][31:]
    verdict = integrity.check_bytes(b"".join(lines), 2, 40)
    assert verdict.torn == 1 and verdict.lost == 1, verdict


def test_duplicates_missing_and_reordered_records_are_counted():
    lines = _log(kind="small")
    lines.append(lines[5])
    del lines[9]
    lines[20], lines[21] = lines[21], lines[20]
    verdict = integrity.check_bytes(b"".join(lines), 2, 40)
    assert (verdict.duplicated, verdict.lost, verdict.out_of_order, verdict.torn) == (1, 1, 1, 0), verdict
    assert not verdict.clean


def test_a_truncated_tail_is_torn_and_lost():
    data = b"".join(_log(kind="small"))
    verdict = integrity.check_bytes(data[:-50], 2, 40)
    assert verdict.torn == 1 and verdict.lost == 1, verdict


def test_tracebacks_through_logging_check_clean(tmp_path):
    path = tmp_path / "tracebacks.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("test_bench.tracebacks")
    logger.propagate = False
    logger.addHandler(handler)
    for call in workload.log_calls("mix", 1, 48):
        if call.exc is None:
            logger.warning(call.message)
        else:
            logger.error(call.message, exc_info=call.exc)
    handler.close()
    logger.removeHandler(handler)
    data = path.read_bytes()
    assert b"Traceback (most recent call last)" in data
    verdict = integrity.check_bytes(data, 2, 48)  # producer 0 never wrote: 48 lost
    assert verdict.intact == 48 and verdict.lost == 48 and verdict.torn == 0, verdict


def test_every_contender_runs_and_ringlog_is_clean(tmp_path):
    args = bench.parse_args(
        ["--producers", "1,2", "--calls", "300", "--mix-calls", "48", "--reps", "1", "--single-call-calls", "20000"]
    )
    assert os.access(args.drain, os.X_OK), f"build ringlog-drain first: no {args.drain}"
    out = types.SimpleNamespace(lines=[], write=lambda text: out.lines.append(text), flush=lambda: None)
    result = bench.run_all(args, str(tmp_path), out=out)
    assert result["skipped"] == {}, f"contenders could not run: {result['skipped']}"
    ran = {(row["workload"], row["producers"], row["contender"]) for row in result["summary"]}
    assert ran == {(w, n, c) for w in ("small", "mix") for n in (1, 2) for c in contenders.CONTENDERS}
    for row in result["summary"]:
        assert row["records_per_s"] > 0 and row["latency_ns"]["calls"] == row["records_per_rep"], row
        assert row["integrity"]["expected"] == row["records_per_rep"], row
        assert row["integrity"]["checked"] == (row["contender"] not in contenders.FLOORS), row
        if row["contender"].startswith("ringlog"):
            assert row["integrity"]["clean"], row
            assert row["refused"] == 0, row
            assert row["blocked_seconds"] >= 0, row
        else:
            assert row["blocked_seconds"] is None, row
    assert result["single_call"]["ns_per_call_median"]["ringlog.Writer.write"] > 0
    rendered = bench.render(result)
    assert "| 2 | ringlog.Handler |" in rendered
    assert f"| 2 | {contenders.FLOOR} |" in rendered and "n/a (writes no log)" in rendered
    assert "(a handler doing nothing: " in rendered and ", a handler only formatting: " in rendered
