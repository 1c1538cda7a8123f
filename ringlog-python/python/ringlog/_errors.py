"""The exceptions of ringlog, one per stable status code (the table every binding shares:
C's ``enum ringlog_status``, Node's ``err.code``). Each carries the library's full message,
``.status`` (the number) and ``.code`` (the C name, e.g. ``"RINGLOG_TOO_LARGE"``)."""

import builtins


class RinglogError(Exception):
    """Base of every ringlog error; raised as itself only for a bug (RINGLOG_PANIC)."""

    status = 14
    code = "RINGLOG_PANIC"


class BadNameError(RinglogError, ValueError):
    """The ring name is not 1 to 64 characters from ``A-Z a-z 0-9 . _ -``."""

    status, code = 2, "RINGLOG_BAD_NAME"


class BadArgumentError(RinglogError, ValueError):
    """An option out of range: capacity not a power of two, an unknown policy or level..."""

    status, code = 3, "RINGLOG_BAD_ARGUMENT"


class NotFoundError(RinglogError, FileNotFoundError):
    """No ring exists there and ``create=False``."""

    status, code = 4, "RINGLOG_NOT_FOUND"


class NotARingError(RinglogError):
    """The file is not a usable ring (bad magic, truncated, or another capacity than asked)."""

    status, code = 5, "RINGLOG_NOT_A_RING"


class VersionMismatchError(RinglogError):
    """The ring was made by a ringlog build with another segment layout."""

    status, code = 6, "RINGLOG_VERSION_MISMATCH"


class PermissionError(RinglogError, builtins.PermissionError):
    """The operating system refused access to the ring."""

    status, code = 7, "RINGLOG_PERMISSION"


class NoSpaceError(RinglogError, OSError):
    """No room (usually in /dev/shm) to create the ring."""

    status, code = 8, "RINGLOG_NO_SPACE"


class IoError(RinglogError, OSError):
    """Any other operating-system error."""

    status, code = 9, "RINGLOG_IO"


class TooLargeError(RinglogError, ValueError):
    """The record is larger than the ring's max record: it can never be written whole."""

    status, code = 10, "RINGLOG_TOO_LARGE"


class DroppedError(RinglogError):
    """The ring was full and the policy dropped the record. ``Writer.write`` returns False
    instead of raising it; it exists for APIs that must report a drop as an error."""

    status, code = 11, "RINGLOG_DROPPED"


class WouldDeadlockError(RinglogError):
    """This thread holds an open claim on the same ring."""

    status, code = 12, "RINGLOG_WOULD_DEADLOCK"


class ClosedError(RinglogError, ValueError):
    """The Writer was closed."""

    status, code = 13, "RINGLOG_CLOSED"


_BY_STATUS = {
    cls.status: cls
    for cls in (
        BadNameError,
        BadArgumentError,
        NotFoundError,
        NotARingError,
        VersionMismatchError,
        PermissionError,
        NoSpaceError,
        IoError,
        TooLargeError,
        DroppedError,
        WouldDeadlockError,
        ClosedError,
    )
}


def _from_status(status, code, message):
    """The exception for a status, as the native module raises it."""
    cls = _BY_STATUS.get(status, RinglogError)
    error = cls(message)
    error.status = status
    error.code = code
    return error
