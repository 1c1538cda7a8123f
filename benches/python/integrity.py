"""Checks a log file record by record: what is intact, lost, torn or interleaved, duplicated.

This module owns the verdict on a log and never trusts the log: it finds the markers of
`workload`, pairs each begin marker with the end marker that follows it, and accepts a record
only when the pair names the same (producer, seq) and the text between them ends with the
exact body `workload.body` rebuilds. Anything else is counted, never hidden:

- torn: a begin marker with no matching end marker, an end marker with no begin, a mismatched
  pair, or a wrong body. A record that another write split in two shows up as fragments here.
- lost: an expected (producer, seq) that no intact record carries.
- duplicated: intact copies beyond the first.
- out of order: an intact record whose seq is below an earlier one of the same producer.
- unexpected: an intact record outside the expected producers or sequence numbers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import workload

_MARKER = re.compile(rb"<(\d\d):(\d{9}):(\d{6}):|:(\d\d):(\d{9})>")

# What may sit between a large record's begin marker and its body besides the body itself:
# the formatted traceback's frames (a few hundred bytes here).
_TRACEBACK_ALLOWANCE = 8192


@dataclass
class Verdict:
    expected: int
    intact: int = 0
    lost: int = 0
    torn: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    unexpected: int = 0

    @property
    def clean(self) -> bool:
        return (
            self.intact == self.expected
            and self.lost == 0
            and self.torn == 0
            and self.duplicated == 0
            and self.out_of_order == 0
            and self.unexpected == 0
        )

    def as_dict(self) -> dict:
        return asdict(self) | {"clean": self.clean, "checked": True}

    def summary(self) -> str:
        if self.clean:
            return "clean"
        parts = [
            f"{value} {name.replace('_', ' ')}"
            for name, value in (
                ("lost", self.lost),
                ("torn", self.torn),
                ("duplicated", self.duplicated),
                ("out_of_order", self.out_of_order),
                ("unexpected", self.unexpected),
            )
            if value
        ]
        return ", ".join(parts)


def _body_is_intact(chunk: bytes, producer: int, seq: int, length: int) -> bool:
    if len(chunk) < length or len(chunk) > length + _TRACEBACK_ALLOWANCE:
        return False
    return chunk.endswith(workload.body(producer, seq, length).encode())


def check_bytes(data: bytes, producers: int, per_producer: int) -> Verdict:
    verdict = Verdict(expected=producers * per_producer)
    seen: dict[tuple[int, int], int] = {}
    last_seq: dict[int, int] = {}
    open_record = None  # (producer, seq, length, offset after the begin marker)

    def accept(producer: int, seq: int) -> None:
        if producer >= producers or seq >= per_producer:
            verdict.unexpected += 1
            return
        copies = seen.get((producer, seq), 0)
        seen[(producer, seq)] = copies + 1
        if copies:
            verdict.duplicated += 1
            return
        if seq < last_seq.get(producer, -1):
            verdict.out_of_order += 1
        last_seq[producer] = max(seq, last_seq.get(producer, -1))

    for match in _MARKER.finditer(data):
        if match.group(1) is not None:  # a begin marker
            if open_record is not None:
                verdict.torn += 1
            open_record = (int(match.group(1)), int(match.group(2)), int(match.group(3)), match.end())
            continue
        producer, seq = int(match.group(4)), int(match.group(5))
        if open_record is None:
            verdict.torn += 1
            continue
        begin_producer, begin_seq, length, offset = open_record
        open_record = None
        if (begin_producer, begin_seq) != (producer, seq):
            verdict.torn += 1
            continue
        if not _body_is_intact(data[offset : match.start()], producer, seq, length):
            verdict.torn += 1
            continue
        accept(producer, seq)
    if open_record is not None:
        verdict.torn += 1

    verdict.intact = sum(1 for key in seen if key[0] < producers and key[1] < per_producer)
    verdict.lost = verdict.expected - verdict.intact
    return verdict


def check_file(path, producers: int, per_producer: int) -> Verdict:
    with open(path, "rb") as log:
        return check_bytes(log.read(), producers, per_producer)


def not_checked(expected: int) -> dict:
    """The verdict's shape for a contender that writes no log (the floor): nothing to check,
    and marked so, never shown as clean."""
    return Verdict(expected=expected).as_dict() | {"clean": True, "checked": False}
