"""``ringlog.Handler``: a ``logging.Handler`` that writes each log call as one ring record.

The record carries the level (from ``levelno``), the target (the logger's name) and the
message; the drain adds time, level, pid and target when it formats (``--format text|json``),
so no Python Formatter runs on the hot path unless one is set explicitly.

No per-record lock: ``logging.Handler`` takes its own RLock around every ``emit``. This
handler keeps no state that changes per record (the ring's atomic claim is the only point
where producers meet, across threads and processes alike), so ``createLock`` makes no lock,
``handle`` calls ``emit`` directly, and there is nothing to re-initialise after ``fork()``.

``handle`` is native (``_ringlog._install_handle``, at the end of this module): the chain
handle -> filter -> emit -> getMessage -> write_record as one call. It runs ``emit`` below
unchanged whenever a record needs anything beyond the plain case (filters, a Formatter, a
traceback, a LogRecord subclass, a non-str message: see ``ringlog-python/src/handle.rs``), and
this file's ``emit`` stays the reference for what a record becomes.
"""

import logging
import sys

from ._ringlog import Writer, _install_handle
from ._tracebacks import format_exception

# The stdlib's default formatting of stacks, used when no Formatter is set. Exceptions go
# through ._tracebacks.format_exception: the same text as its formatException, cheaper.
_TRACEBACKS = logging.Formatter()


class Handler(logging.Handler):
    """``ringlog.Handler(ring, level=logging.NOTSET, **writer_options)``: logs into ring
    ``ring`` through a ``ringlog.Writer(ring, **writer_options)`` (``capacity``, ``policy``,
    ``create``, ``path``, ``max_record``).

    Works from ``logging.config.dictConfig`` (``"class": "ringlog.Handler", "ring": ...``),
    after ``os.fork()``, and pickled into processes started by spawn or forkserver, where it
    opens the ring on its first record.
    """

    def __init__(self, ring, level=logging.NOTSET, **writer_options):
        # The writer first: logging.Handler.__init__ registers the handler for
        # logging.shutdown, which must never find one without its writer.
        writer = Writer(ring, **writer_options)
        super().__init__(level)
        self.writer = writer

    def createLock(self):
        # See the module doc: the ring is the only synchronisation a record needs.
        self.lock = None

    def _at_fork_reinit(self):
        # No lock to re-initialise (logging calls this in a child after fork).
        pass

    # handle(record): logging.Handler.handle without the per-handler lock, native (installed
    # below, see the module doc).

    def emit(self, record):
        try:
            if self.formatter is None:
                message = record.getMessage()
                if record.exc_info or record.exc_text or record.stack_info:
                    message = _with_tracebacks(record, message)
            else:
                message = self.format(record)
            # False means the ring was full and the policy dropped the record: it is counted
            # and the drain writes the count into the log, so it is not an error here.
            self.writer.write_record(record.levelno, record.name, message)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self):
        # Nothing is buffered here: a written record is in the ring, which the drain empties.
        pass

    def close(self):
        try:
            self.writer.close()
        finally:
            super().close()

    def __reduce__(self):
        # Pickled (spawn, forkserver) as its Writer's options: the copy opens the ring lazily.
        return (
            _unpickle_handler,
            (type(self), self.writer, self.level, self.formatter, self.filters, self.name),
        )

    def __repr__(self):
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} ring={self.writer.ring!r} ({level})>"


def _with_tracebacks(record, message):
    """The message followed by the exception and stack, as logging.Formatter.format adds them
    (and caching the exception text on the record the same way, byte for byte the text
    logging.Formatter().formatException gives: other handlers reuse it)."""
    if record.exc_info and not record.exc_text:
        record.exc_text = format_exception(record.exc_info)
    if record.exc_text:
        message = f"{message}\n{record.exc_text}" if message else record.exc_text
    if record.stack_info:
        stack = _TRACEBACKS.formatStack(record.stack_info)
        message = f"{message}\n{stack}" if message else stack
    return message


def _report_error(handler, record, error):
    """``handler.handleError(record)`` with ``error`` as the exception being handled, as
    ``emit``'s ``except`` calls it (handleError reads ``sys.exc_info()``)."""
    try:
        raise error
    except Exception:
        handler.handleError(record)


def _unpickle_handler(cls, writer, level, formatter, filters, name):
    handler = cls.__new__(cls)
    logging.Handler.__init__(handler, level)
    handler.writer = writer
    handler.formatter = formatter
    handler.filters = list(filters)
    handler.name = name
    return handler


_install_handle(
    Handler,
    emit=Handler.emit,
    filter=logging.Filterer.filter,
    record_type=logging.LogRecord,
    with_tracebacks=_with_tracebacks,
    report_error=_report_error,
    # Python 3.12+: Filterer.filter returns the record that passed (True before).
    filter_returns_record=sys.version_info >= (3, 12),
)
