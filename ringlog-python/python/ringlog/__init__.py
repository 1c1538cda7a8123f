"""ringlog: log from many Python processes (gunicorn, multiprocessing, celery) into one file
through a shared-memory ring that one ``ringlog-drain`` process empties in large writes.

- ``ringlog.Writer(ring, *, capacity=None, policy="block", create=True, path=None)``: raw
  records (``write``, ``write_record``), ``stats()``, ``drain_alive()``, ``close()``.
- ``ringlog.Handler(ring, level=logging.NOTSET, **writer_options)``: a ``logging.Handler``.
- ``ringlog.loguru_sink(ring)``, ``ringlog.StructlogLoggerFactory(ring)``.

Errors raise subclasses of ``ringlog.RinglogError`` with the library's message; a record
dropped on a full ring is not an error (``write`` returns False, the drain logs the count).
"""

from ._errors import (
    BadArgumentError,
    BadNameError,
    ClosedError,
    DroppedError,
    IoError,
    NoSpaceError,
    NotARingError,
    NotFoundError,
    PermissionError,
    RinglogError,
    TooLargeError,
    VersionMismatchError,
    WouldDeadlockError,
)
from ._handler import Handler
from ._integrations import StructlogLoggerFactory, loguru_sink
from ._ringlog import Writer

__all__ = [
    "Writer",
    "Handler",
    "loguru_sink",
    "StructlogLoggerFactory",
    "RinglogError",
    "BadNameError",
    "BadArgumentError",
    "NotFoundError",
    "NotARingError",
    "VersionMismatchError",
    "PermissionError",
    "NoSpaceError",
    "IoError",
    "TooLargeError",
    "DroppedError",
    "WouldDeadlockError",
    "ClosedError",
]
