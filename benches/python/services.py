"""Processes that run beside the producers and own the log file for their contender: a real
`ringlog-drain`, or the logging cookbook's QueueListener process. Each one is started before
the clock, and `finish()` returns only once every record is in the file, with the time it
saw that and the CPU the service used. Never writes a record itself except as the service.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import signal
import subprocess
import threading
import time

import measure

_START_DEADLINE_S = 20.0
# A drain whose log stops growing this long before it holds every record has lost some: stop
# waiting and let the integrity check count them.
_STALL_S = 3.0
_POLL_S = 0.0005


class NoService:
    """Contenders whose producers write the file themselves."""

    worker_arg = None

    def clock_starts(self):
        pass

    def finish(self, expected_records, producers_end_ns):
        return None, 0

    def close(self):
        pass


def segment_path(ring: str) -> str:
    return f"/dev/shm/ringlog-{ring}"


class SizeWatcher(threading.Thread):
    """Watches the log's size every 0.5 ms (a stat(2)) once the producers are done, remembering
    when each size was first seen, so the time the log reached its final size is known even if
    the harness was busy asking the drain for its count just then. It never runs while the
    producers do: a thread waking 2000 times a second costs ~8% of a core, which on two cores
    would be taken from the contender being measured."""

    def __init__(self, log_path: str):
        super().__init__(daemon=True)
        self.log_path = log_path
        self.first_seen: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            try:
                size = os.stat(self.log_path).st_size
            except FileNotFoundError:  # the drain has not opened it yet
                size = -1
            self.first_seen.setdefault(size, time.perf_counter_ns())
            time.sleep(_POLL_S)

    def stop(self):
        self._stop_event.set()
        self.join()


def wait_until_written(drain_binary: str, ring: str, watcher: SizeWatcher, expected: int) -> int:
    """Returns the time (perf_counter_ns) the watcher first saw the log at the size at which
    the drain had written all `expected` records: asks the drain's own counter (`ringlog-drain
    stat --json`, `records_out`) until it is complete, then looks up when the watcher first saw
    the file's size. A counter stuck short of `expected` for a while means lost records: stop
    there and let the integrity check count them."""
    last_count, count_since = -1, time.monotonic()
    while True:
        count = _records_out(drain_binary, ring)
        if count >= expected or time.monotonic() - count_since > _STALL_S:
            break
        if count != last_count:
            last_count, count_since = count, time.monotonic()
        time.sleep(_POLL_S)
    size = os.stat(watcher.log_path).st_size
    return watcher.first_seen.get(size, time.perf_counter_ns())


def _records_out(drain_binary: str, ring: str) -> int:
    out = subprocess.run(
        [drain_binary, "stat", "--ring", ring, "--json"], check=True, capture_output=True, text=True
    ).stdout
    return int(json.loads(out)["records_out"])


class DrainService:
    """`ringlog-drain --ring RING --out LOG --format raw`, a separate real process. The clock
    stops when the log holds every record (`wait_until_written`); the drain's CPU is read from
    /proc then, and SIGTERM ends it (untimed)."""

    worker_arg = None

    def __init__(self, drain_binary: str, ring: str, log_path: str, capacity: str | None = None):
        self.drain_binary = drain_binary
        self.ring = ring
        self.log_path = log_path
        extra = ["--capacity", capacity] if capacity else []
        self.process = subprocess.Popen(
            [drain_binary, "--ring", ring, "--out", log_path, "--format", "raw", *extra],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + _START_DEADLINE_S
        while not os.path.exists(segment_path(ring)):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ringlog-drain exited with {self.process.returncode} before creating ring "
                    f"{ring!r}: {self.process.stderr.read().decode(errors='replace')}"
                )
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"ringlog-drain did not create ring {ring!r} in {_START_DEADLINE_S} s")
            time.sleep(0.005)

    def clock_starts(self):
        """The drain's CPU so far (creating the ring, starting up) is set-up, not the run's."""
        self.cpu_at_start = measure.cpu_ns_of_pid(self.process.pid)
        # To read the log's mtime (wall clock) on the perf_counter_ns scale.
        self.wall_minus_perf_ns = time.time_ns() - time.perf_counter_ns()

    def finish(self, expected_records, producers_end_ns):
        """When the log held every record, given when the last producer was done (the drain
        cannot finish before that)."""
        self.watcher = SizeWatcher(self.log_path)
        self.watcher.start()
        end_ns = wait_until_written(self.drain_binary, self.ring, self.watcher, expected_records)
        self.watcher.stop()
        if end_ns <= min(self.watcher.first_seen.values(), default=end_ns):
            # Complete at the watcher's first look, which came late by however long the harness
            # took to collect the reports: the log's mtime (kernel clock tick granularity) says
            # when the drain's last write landed.
            mtime_ns = os.stat(self.log_path).st_mtime_ns - self.wall_minus_perf_ns
            end_ns = max(producers_end_ns, min(end_ns, mtime_ns))
        if self.process.poll() is not None:
            raise RuntimeError(f"ringlog-drain exited during the run with {self.process.returncode}: {self._stderr()}")
        cpu_ns = measure.cpu_ns_of_pid(self.process.pid) - self.cpu_at_start
        self.stop()
        return end_ns, cpu_ns

    def stop(self):
        """SIGTERM: the drain writes everything already committed, then exits 0."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()
        if self.process.returncode != 0:
            raise RuntimeError(f"ringlog-drain exited with {self.process.returncode}: {self._stderr()}")

    def _stderr(self) -> str:
        return self.process.stderr.read().decode(errors="replace")

    def close(self):
        watcher = getattr(self, "watcher", None)
        if watcher is not None and watcher.is_alive():
            watcher.stop()
        if self.process.returncode is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        try:
            os.unlink(segment_path(self.ring))
        except FileNotFoundError:
            pass


def _listen(queue, log_path: str, stop, conn) -> None:
    """The listener process: QueueListener(FileHandler) until told to stop, then it drains the
    queue (QueueListener.stop() handles everything queued before its sentinel)."""
    handler = logging.FileHandler(log_path)
    listener = logging.handlers.QueueListener(queue, handler)
    cpu_start = measure.cpu_ns_self()
    listener.start()
    conn.send("ready")
    stop.wait()
    listener.stop()
    handler.close()
    end_ns = time.perf_counter_ns()
    conn.send((end_ns, measure.cpu_ns_self() - cpu_start))
    conn.close()


class QueueListenerService:
    """A `multiprocessing.Queue` the producers' QueueHandlers put into, and one listener
    process writing through a FileHandler."""

    def __init__(self, ctx, log_path: str):
        self.worker_arg = ctx.Queue()
        self._stop = ctx.Event()
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_listen, args=(self.worker_arg, log_path, self._stop, child_conn))
        self.process.start()
        child_conn.close()
        if not self._conn.poll(_START_DEADLINE_S) or self._conn.recv() != "ready":
            self.close()
            raise RuntimeError("the QueueListener process did not start")

    def clock_starts(self):
        pass  # the listener measures its own CPU from before the clock; it idles until then

    def finish(self, expected_records, producers_end_ns):
        self._stop.set()
        end_ns, cpu_ns = self._conn.recv()
        self.process.join()
        return end_ns, cpu_ns

    def close(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self._conn.close()
