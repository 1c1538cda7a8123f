"""The records every contender writes: what producer `p` logs as its record `seq`.

This module owns the record format and nothing else. Each record is a pure function of
(producer, seq) and the workload's shape, so the integrity checker can rebuild it from the
markers it finds in a log without being told what was sent:

    <PP:SSSSSSSSS:LLLLLL:BODY:PP:SSSSSSSSS>

`PP` is the producer id, `S...` the sequence number, `L...` the body's length, BODY letters
whose phase depends on (producer, seq). A small record is 120 characters. In the "mix"
workload every `MIX_EVERY`-th record is large (8 to 64 KiB): through `logging` it is a
traceback (the begin marker is the log message, the body and end marker close the
exception's text, so the formatted traceback sits between them); on the raw path it is a
plain line of that size.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_RECORD_CHARS = 120
MIX_EVERY = 16
LARGE_MIN = 8 * 1024
LARGE_MAX = 64 * 1024

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_BEGIN_CHARS = len("<00:000000000:000000:")
_END_CHARS = len(":00:000000000>")
SMALL_BODY_CHARS = SMALL_RECORD_CHARS - _BEGIN_CHARS - _END_CHARS

WORKLOADS = ("small", "mix")


def begin_marker(producer: int, seq: int, length: int) -> str:
    return f"<{producer:02d}:{seq:09d}:{length:06d}:"


def end_marker(producer: int, seq: int) -> str:
    return f":{producer:02d}:{seq:09d}>"


def body(producer: int, seq: int, length: int) -> str:
    """Letters only (never a digit, '<', ':' or '>'), so no body can look like a marker."""
    phase = (producer * 7 + seq) % len(_ALPHABET)
    repeats = length // len(_ALPHABET) + 2
    return (_ALPHABET * repeats)[phase : phase + length]


def is_large(workload: str, seq: int) -> bool:
    return workload == "mix" and seq % MIX_EVERY == MIX_EVERY - 1


def body_length(workload: str, producer: int, seq: int) -> int:
    if not is_large(workload, seq):
        return SMALL_BODY_CHARS
    span = LARGE_MAX - LARGE_MIN + 1
    return LARGE_MIN + (producer * 7919 + seq * 104729) % span


def record_text(producer: int, seq: int, length: int) -> str:
    return begin_marker(producer, seq, length) + body(producer, seq, length) + end_marker(producer, seq)


@dataclass(frozen=True)
class LogCall:
    """One `logging` call: `logger.info(message)`, or `logger.error(message, exc_info=exc)`."""

    message: str
    exc: BaseException | None


def _raise_with(text: str, depth: int) -> None:
    if depth == 0:
        raise ValueError(text)
    _raise_with(text, depth - 1)


def _caught_exception(text: str) -> BaseException:
    try:
        _raise_with(text, depth=3)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable: _raise_with always raises")


def log_calls(workload: str, producer: int, count: int) -> list[LogCall]:
    """What a `logging` producer logs, built before the clock starts."""
    calls = []
    for seq in range(count):
        length = body_length(workload, producer, seq)
        if is_large(workload, seq):
            tail = body(producer, seq, length) + end_marker(producer, seq)
            calls.append(LogCall(begin_marker(producer, seq, length), _caught_exception(tail)))
        else:
            calls.append(LogCall(record_text(producer, seq, length), None))
    return calls


def raw_lines(workload: str, producer: int, count: int) -> list[bytes]:
    """What a raw producer writes (one line per call, newline included)."""
    return [
        (record_text(producer, seq, body_length(workload, producer, seq)) + "\n").encode()
        for seq in range(count)
    ]
