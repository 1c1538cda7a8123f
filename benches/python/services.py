"""Processes that run beside the producers and own the log file for their contender: a real
`ringlog-drain`, or the logging cookbook's QueueListener process. Each one is started before
the clock, and `finish()` returns only once every record is in the file, with the time it
saw that and the CPU the service used. Never writes a record itself except as the service.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import subprocess
import time

import measure

_START_DEADLINE_S = 20.0


class NoService:
    """Contenders whose producers write the file themselves."""

    worker_arg = None

    def finish(self):
        return None, 0

    def close(self):
        pass


def segment_path(ring: str) -> str:
    return f"/dev/shm/ringlog-{ring}"


class DrainService:
    """`ringlog-drain --ring RING --out LOG --format raw`, a separate real process. Finishing
    sends SIGTERM (the drain writes everything already committed, then exits 0): the clock
    stops when it has exited, so its exit is charged to ringlog."""

    worker_arg = None

    def __init__(self, drain_binary: str, ring: str, log_path: str):
        self.ring = ring
        self.process = subprocess.Popen(
            [drain_binary, "--ring", ring, "--out", log_path, "--format", "raw"],
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

    def finish(self):
        self.process.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(self.process.pid, 0)
        end_ns = time.perf_counter_ns()
        self.process.returncode = os.waitstatus_to_exitcode(status)
        if self.process.returncode != 0:
            raise RuntimeError(
                f"ringlog-drain exited with {self.process.returncode}: "
                f"{self.process.stderr.read().decode(errors='replace')}"
            )
        return end_ns, measure.cpu_ns_of_rusage(usage)

    def close(self):
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

    def finish(self):
        self._stop.set()
        end_ns, cpu_ns = self._conn.recv()
        self.process.join()
        return end_ns, cpu_ns

    def close(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self._conn.close()
