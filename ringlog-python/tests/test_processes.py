"""Processes: each multiprocessing start method, fork after open, threads, a producer
SIGKILLed mid-stream, and the drain started after the producers. Every record is checked:
exactly once, in order per producer, with the producer's own pid."""

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

import pytest

import ringlog
from conftest import wait_for
from mp_workers import log_through_handler, write_through_writer

PRODUCER = os.path.join(os.path.dirname(__file__), "producer.py")


def sequences(records):
    """{tag: [(seq, pid, tid), ...]} in drained order, from messages "TAG SEQ ..."."""
    out = {}
    for r in records:
        tag, seq = r["msg"].split(" ")[:2]
        out.setdefault(tag, []).append((int(seq), r["pid"], r["tid"]))
    return out


def assert_exactly_once_in_order(seqs, tag, count, pid=None):
    got = seqs.get(tag, [])
    assert [s for s, _, _ in got] == list(range(count)), f"{tag}: each record exactly once, in order"
    if pid is not None:
        assert {p for _, p, _ in got} == {pid}, f"{tag}: written with the producer's pid"


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_handler_in_each_multiprocessing_start_method(ring, start_drain, method):
    ctx = multiprocessing.get_context(method)
    handler = ringlog.Handler(ring)  # opened here; pickled for spawn and forkserver
    drain = start_drain(ring)
    drain.wait_alive(handler.writer)
    count = 3000
    with ctx.Pool(4) as pool:
        pids = pool.starmap(log_through_handler, [(handler, f"{method}{i}", count) for i in range(4)])
    drain.stop()
    seqs = sequences(drain.records())
    assert os.getpid() not in pids
    for i, pid in enumerate(pids):
        assert_exactly_once_in_order(seqs, f"{method}{i}", count, pid)
    assert len(drain.records()) == 4 * count


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_writer_pickled_into_a_new_process_opens_the_ring_there(ring, start_drain, method):
    ctx = multiprocessing.get_context(method)
    writer = ringlog.Writer(ring, policy="block")
    drain = start_drain(ring)
    p = ctx.Process(target=write_through_writer, args=(writer, "child", 1000))
    p.start()
    p.join()
    assert p.exitcode == 0
    drain.stop()
    assert_exactly_once_in_order(sequences(drain.records()), "child", 1000, p.pid)


def test_fork_after_open_parent_and_child_both_write_with_their_own_pid(ring, start_drain):
    writer = ringlog.Writer(ring)
    handler = ringlog.Handler(ring)
    logger = logging.getLogger(f"fork.{ring}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    drain = start_drain(ring)
    for seq in range(100):
        assert writer.write(f"before {seq}")
    pid = os.fork()
    if pid == 0:
        try:
            for seq in range(2000):
                writer.write(f"child {seq}")
                logger.info("childlog %d", seq)
        finally:
            os._exit(0)
    for seq in range(2000):
        writer.write(f"parent {seq}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    drain.stop()
    seqs = sequences(drain.records())
    assert_exactly_once_in_order(seqs, "before", 100, os.getpid())
    assert_exactly_once_in_order(seqs, "parent", 2000, os.getpid())
    assert_exactly_once_in_order(seqs, "child", 2000, pid)
    assert_exactly_once_in_order(seqs, "childlog", 2000, pid)
    assert writer.stats()["written"] == 2100, "the child's records are not counted in the parent"
    logger.removeHandler(handler)


def test_threads_share_one_handler(ring, start_drain):
    handler = ringlog.Handler(ring)
    drain = start_drain(ring)
    count, n = 3000, 8
    barrier = threading.Barrier(n)

    def work(i):
        logger = logging.getLogger(f"threads.{ring}.{i}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        barrier.wait()
        for seq in range(count):
            logger.info("t%d %d", i, seq)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain.stop()
    seqs = sequences(drain.records())
    tids = set()
    for i in range(n):
        assert_exactly_once_in_order(seqs, f"t{i}", count, os.getpid())
        tids |= {tid for _, _, tid in seqs[f"t{i}"]}
    assert len(tids) == n, "each thread writes with its own tid"
    assert handler.writer.stats()["written"] == n * count


def test_a_producer_sigkilled_mid_stream_harms_neither_the_others_nor_the_drain(ring, start_drain):
    ringlog.Writer(ring)
    drain = start_drain(ring)
    drain.wait_alive()
    victim = subprocess.Popen([sys.executable, PRODUCER, ring, "block", "100000000", "120", "victim"],
                              stdout=subprocess.DEVNULL)
    others = [subprocess.Popen([sys.executable, PRODUCER, ring, "block", "20000", "120", f"other{i}"],
                               stdout=subprocess.DEVNULL) for i in range(2)]

    def victim_records():  # a byte count, cheap however fast the file grows (no JSON parse)
        with open(drain.out, "rb") as f:
            return f.read().count(b'"msg":"victim ')

    wait_for(lambda: victim_records() >= 2000, "the victim to be mid-stream")
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    for p in others:
        assert p.wait(timeout=300) == 0
    assert drain.proc.poll() is None, "the drain survived"
    drain.stop()
    seqs = sequences(drain.records())  # every line parses: nothing torn
    for i, p in enumerate(others):
        assert_exactly_once_in_order(seqs, f"other{i}", 20000, p.pid)
    got = [s for s, _, _ in seqs["victim"]]
    assert got == list(range(len(got))), "the victim's records up to the kill, once each, in order"
    assert len(got) >= 2000


def test_the_drain_started_after_the_producers_gets_everything(ring, start_drain):
    procs = [subprocess.Popen([sys.executable, PRODUCER, ring, "block", "4000", "120", f"early{i}"],
                              stdout=subprocess.DEVNULL) for i in range(3)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    drain = start_drain(ring)
    drain.stop()
    seqs = sequences(drain.records())
    for i, p in enumerate(procs):
        assert_exactly_once_in_order(seqs, f"early{i}", 4000, p.pid)
