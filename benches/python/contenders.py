"""The contenders: what each producer process opens to write the shared log, and which
service (if any) runs beside them. One entry per contender; the harness and the workers look
them up by name. Owns no timing and no checking.
"""

from __future__ import annotations

import importlib.util
import logging
import logging.handlers
import os
from dataclasses import dataclass
from typing import Callable

import services


@dataclass(frozen=True)
class Contender:
    name: str
    # "logging": the producer calls logger.info/error with a handler; "raw": it writes bytes.
    family: str
    # In the producer process: a logging.Handler ("logging") or a RawSink ("raw").
    open_sink: Callable
    # In the harness: start what runs beside the producers (a NoService when nothing does).
    start_service: Callable
    # A module the contender needs, or None.
    needs: str | None = None
    # False for the floor, which writes nothing: its log is not checked (there is none).
    writes_log: bool = True

    @property
    def uses_drain(self) -> bool:
        return self.start_service is _drain_service

    def missing(self) -> str | None:
        """Why this contender cannot run here, or None."""
        if self.needs and importlib.util.find_spec(self.needs) is None:
            return f"Python module {self.needs!r} is not installed"
        return None


def ringlog_stats(sink) -> dict | None:
    """What this producer's ringlog writer counted (written, dropped, seconds blocked on a
    full ring), for a ringlog sink; None for the others."""
    writer = getattr(sink, "writer", None)  # ringlog.Handler
    stats = writer.stats if writer is not None else getattr(sink, "stats", None)
    return dict(stats()) if stats else None


@dataclass
class RawSink:
    """`write(bytes)` returns False when the record was refused (ringlog's full ring under a
    drop policy); anything else counts as written."""

    write: Callable
    close: Callable
    # ringlog's Writer.stats (written, dropped, blocked_seconds), or None.
    stats: Callable | None = None


def _no_service(run, ctx):
    return services.NoService()


def _drain_service(run, ctx):
    return services.DrainService(run.drain_binary, run.ring, run.log_path)


def _queue_listener_service(run, ctx):
    return services.QueueListenerService(ctx, run.log_path)


def _file_handler(run, worker_arg):
    return logging.FileHandler(run.log_path)


def _watched_file_handler(run, worker_arg):
    return logging.handlers.WatchedFileHandler(run.log_path)


def _queue_handler(run, queue):
    return _QueueHandlerThatFlushes(queue)


class _QueueHandlerThatFlushes(logging.handlers.QueueHandler):
    """QueueHandler whose close() waits until its queue's feeder thread has sent everything,
    so the producer's CPU includes that thread's work."""

    def close(self):
        self.queue.close()
        self.queue.join_thread()
        super().close()


def _concurrent_rotating_file_handler(run, worker_arg):
    from concurrent_log_handler import ConcurrentRotatingFileHandler

    return ConcurrentRotatingFileHandler(run.log_path)


def _ringlog_handler(run, worker_arg):
    import ringlog

    return ringlog.Handler(run.ring)


class _DoNothingHandler(logging.Handler):
    """The floor: a handler whose handle() returns at once (no lock, no formatting, no output).
    What a `logger.info` call costs before any handler does its work (the LogRecord, the
    caller's frame, the level checks): no handler can make a call cheaper than this."""

    def createLock(self):
        self.lock = None

    def handle(self, record):
        return True


def _do_nothing_handler(run, worker_arg):
    return _DoNothingHandler()


class _FormatOnlyHandler(_DoNothingHandler):
    """The floor of a handler that must produce the record's text: it formats the record with
    the stdlib's default Formatter (the message, the exception's traceback, the stack: what
    every contender here writes) and discards it. In the mix, formatting the 8-64 KiB
    tracebacks is most of the cost, and every handler that formats through logging's
    Formatter pays it; ringlog.Handler produces the same traceback text through a memo of
    each frame's formatted lines (ringlog/_tracebacks.py), so it can beat this row."""

    def handle(self, record):
        self.format(record)
        return True


def _format_only_handler(run, worker_arg):
    return _FormatOnlyHandler()


def _os_write(run, worker_arg):
    fd = os.open(run.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return RawSink(write=lambda data: os.write(fd, data), close=lambda: os.close(fd))


def _ringlog_writer(run, worker_arg):
    import ringlog

    writer = ringlog.Writer(run.ring)
    return RawSink(write=writer.write, close=lambda: None, stats=writer.stats)


# The name of the do-nothing handler's row: logging's own cost, the ceiling of every ratio.
FLOOR = "floor: a handler doing nothing"
# A handler that formats each record (message, traceback) with logging's Formatter and discards
# the text: the ceiling for any handler that produces its text through that Formatter.
FORMAT_FLOOR = "floor: a handler only formatting"
FLOORS = (FLOOR, FORMAT_FLOOR)

CONTENDERS = {
    c.name: c
    for c in (
        Contender("FileHandler", "logging", _file_handler, _no_service),
        Contender("WatchedFileHandler", "logging", _watched_file_handler, _no_service),
        Contender("QueueListener", "logging", _queue_handler, _queue_listener_service),
        Contender(
            "ConcurrentRotatingFileHandler",
            "logging",
            _concurrent_rotating_file_handler,
            _no_service,
            needs="concurrent_log_handler",
        ),
        Contender("ringlog.Handler", "logging", _ringlog_handler, _drain_service, needs="ringlog"),
        Contender(FLOOR, "logging", _do_nothing_handler, _no_service, writes_log=False),
        Contender(FORMAT_FLOOR, "logging", _format_only_handler, _no_service, writes_log=False),
        Contender("os.write", "raw", _os_write, _no_service),
        Contender("ringlog.Writer", "raw", _ringlog_writer, _drain_service, needs="ringlog"),
    )
}
