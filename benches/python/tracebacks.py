#!/usr/bin/env python3
"""What one traceback of the `mix` workload costs to format: the stdlib's
``logging.Formatter().formatException`` against ringlog.Handler's ``ringlog._tracebacks``
(the same text, checked here first), CPU time per traceback, alternating, R rounds.

    python benches/python/tracebacks.py [--rounds 5] [--count 200]

The tracebacks are the bench's own (``workload.log_calls("mix", ...)``: a ValueError raised
three calls deep with an 8-64 KiB message), built before the clock starts. The memo is warm
after the first traceback, as in a process that logs the same code's errors again.
"""

import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workload  # noqa: E402 (after the path)
from ringlog import _tracebacks  # noqa: E402


def per_traceback_us(format_exception, infos):
    started = time.process_time()
    for ei in infos:
        format_exception(ei)
    return (time.process_time() - started) / len(infos) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="tracebacks per round")
    args = parser.parse_args()
    calls = workload.log_calls("mix", 1, workload.MIX_EVERY * args.count)
    infos = [(type(c.exc), c.exc, c.exc.__traceback__) for c in calls if c.exc is not None]
    stdlib = logging.Formatter().formatException
    for ei in infos:
        assert _tracebacks.format_exception(ei) == stdlib(ei), "not the stdlib's text"
    print(f"Python {sys.version.split()[0]}, {len(infos)} tracebacks, us of CPU per traceback:")
    for _ in range(args.rounds):
        before = per_traceback_us(stdlib, infos)
        after = per_traceback_us(_tracebacks.format_exception, infos)
        print(f"stdlib formatException {before:7.1f}   ringlog {after:7.1f}   {before / after:4.1f}x")


if __name__ == "__main__":
    main()
