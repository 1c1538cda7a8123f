"""The text of an exception for ``ringlog.Handler``: exactly what
``logging.Formatter().formatException(ei)`` returns, at a fraction of its cost.

It must be the stdlib's text byte for byte, never merely alike: the Handler stores it in
``record.exc_text``, which every other handler on the same logger then reuses as it is
(``logging.Formatter.format`` formats an exception only when ``exc_text`` is empty).

How: the stdlib's own ``traceback.TracebackException(type(value), value, tb, limit=None,
compact=True)``, built exactly as ``traceback.print_exception`` builds it (so chains, groups,
notes, SyntaxError, name suggestions, ``sys.tracebacklimit`` and linecache's check of the files
on disk all stay the stdlib's), formatted by its own ``format``. Three things differ:

- Python 3.11 to 3.13 spend most of the time in ``StackSummary.format_frame_summary``, which
  parses each frame's source to place the carets. Its result is memoized under a key holding
  every value that function reads from the frame (file, line numbers, columns, function name,
  the source line(s) as linecache returned them once it had checked the file), so an edited
  file, a moved line or another column is another key. At import, the names that function (and
  the ``FrameSummary`` properties it uses) read are taken from their bytecode and compared with
  the key: a Python whose function reads anything else does not memoize. 3.9 and 3.10 format a
  frame cheaply, with no carets: nothing is memoized there.
- On the same versions ``format`` gets a print context (its private ``_ctx``) that does not
  indent by nothing outside exception groups: the stdlib's ``textwrap.indent(text, "")``
  returns the text unchanged after scanning all of it, the long exception message included.
- The lines are joined instead of printed one by one into a ``StringIO`` (its default
  ``newline="\\n"`` translates nothing, so the text is the same).

What this module must never do: return a text the stdlib would not return now. Whatever it
cannot prove identical goes to ``logging.Formatter().formatException`` itself: a Python whose
traceback module was not read for this (3.14 and later), ``logging``'s or ``traceback``'s entry
points replaced by someone (checked on every call), exc_info that is not (type, exception, tb),
a frame with captured locals, and any warnings filter that turns warnings into errors (the
caret code parses source, and under such a filter a SyntaxWarning changes its result).

Threads: the memo is one dict, read with ``get`` and written with one item assignment or
``clear``; under the GIL each is a single atomic dict operation, and keys are tuples of str, int
and None, whose hashing and comparison run no Python code and never release the GIL. Two threads
may format the same frame at once and both store the same text; a ``clear`` racing a store only
costs a later miss. No lock is taken. (Free-threaded builds are not a target.)
"""

import logging
import sys
import traceback
import types
import warnings

_STDLIB = logging.Formatter()
_STACK_SUMMARY = traceback.StackSummary
_FRAME_SUMMARY = traceback.FrameSummary


def _entry_points():
    """What formatException runs through, as found now."""
    return (
        logging.Formatter.formatException,
        traceback.print_exception,
        traceback.TracebackException.format,
        getattr(traceback.TracebackException, "print", None),
        getattr(traceback.StackSummary, "format_frame_summary", None),
        getattr(getattr(traceback, "_ExceptionPrintContext", None), "emit", None),
    )


# The entry points as read for this module: when one is replaced later (a library that colours
# tracebacks, a test double), the stdlib's formatException runs instead.
_AS_READ = _entry_points()

# The arguments print_exception gives TracebackException(...) and its format(...).
_VERSION = sys.version_info[:2]
_BUILD = {"limit": None} if _VERSION < (3, 10) else {"limit": None, "compact": True}
_FORMAT = {"chain": True} if _VERSION < (3, 13) else {"chain": True, "colorize": False}

# Bound on memoized frames (each a few hundred bytes): emptied when reached.
_FRAMES_MAX = 1024
_FRAMES = {}

_NO_COLOUR = {"colorize": False}


def format_exception(ei):
    """``logging.Formatter().formatException(ei)``, the same text (see the module doc)."""
    if (
        not _READ
        or type(ei) is not tuple
        or len(ei) != 3
        or not isinstance(ei[1], BaseException)
        or _entry_points() != _AS_READ
        or _warnings_are_errors()
    ):
        return _STDLIB.formatException(ei)
    value = ei[1]
    te = traceback.TracebackException(type(value), value, ei[2], **_BUILD)
    if _FRAME_KEY is None:
        text = "".join(te.format(**_FORMAT))
    else:
        _memoize_frames(te)
        text = "".join(te.format(**_FORMAT, _ctx=_TopLevelUnindented()))
    return text[:-1] if text[-1:] == "\n" else text


def _warnings_are_errors():
    return any(f[0] == "error" for f in warnings.filters)


def _memoize_frames(te):
    """Gives every TracebackException in `te`'s tree (causes, contexts, group members) a stack
    that memoizes its frames' text. Same frames, same list; only the formatting method differs."""
    todo, seen = [te], set()
    while todo:
        te = todo.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        if type(te.stack) is _STACK_SUMMARY:
            te.stack = _MemoizedStack(te.stack)
        todo.extend(e for e in (te.__cause__, te.__context__) if e is not None)
        todo.extend(getattr(te, "exceptions", None) or ())


class _MemoizedStack(_STACK_SUMMARY):
    def format_frame_summary(self, frame_summary, **kwargs):
        key = _FRAME_KEY(frame_summary, kwargs)
        if key is None:
            return super().format_frame_summary(frame_summary, **kwargs)
        text = _FRAMES.get(key)
        if text is None:
            text = super().format_frame_summary(frame_summary, **kwargs)
            if len(_FRAMES) >= _FRAMES_MAX:
                _FRAMES.clear()
            _FRAMES[key] = text
        return text


class _TopLevelUnindented(getattr(traceback, "_ExceptionPrintContext", object)):
    """3.11 to 3.13: the context TracebackException.format makes for itself when given none,
    minus indenting by nothing. Outside exception groups its ``emit`` yields
    ``textwrap.indent(text, "")``, which is ``text`` itself (the text split into lines that
    keep their ends, joined again) but costs a scan of every character: ~1.5 ns each, 30-100
    us for one 20-64 KiB exception message."""

    def emit(self, text_gen, margin_char=None):
        if self.exception_group_depth:
            return super().emit(text_gen, margin_char)
        return (text_gen,) if isinstance(text_gen, str) else text_gen


def _key_3_11(frame, kwargs):
    """3.11 and 3.12: the frame's fields and its source line (``_line``, as linecache gave it;
    ``line`` and ``_original_line`` derive from it). None: not memoizable, ask the stdlib."""
    if kwargs or frame.locals is not None or type(frame) is not _FRAME_SUMMARY:
        return None
    line = frame._line
    if line is None and frame.lineno is not None:
        return None  # not looked up yet: formatting would consult linecache
    return _fields_and(frame, line)


def _key_3_13(frame, kwargs):
    """3.13: the frame's fields and its source lines lineno..end_lineno (``_lines``, as
    linecache gave them; ``line``, ``_original_lines`` and ``_dedented_lines`` derive from it)."""
    if (
        (kwargs and kwargs != _NO_COLOUR)
        or frame.locals is not None
        or type(frame) is not _FRAME_SUMMARY
        or frame._lines_dedented is not None
    ):
        return None
    lines = frame._lines
    if lines is None and frame.lineno is not None and frame.end_lineno is not None:
        return None  # not looked up yet: formatting would consult linecache
    return _fields_and(frame, lines)


def _fields_and(frame, source):
    return (
        frame.filename,
        frame.lineno,
        frame.end_lineno,
        frame.colno,
        frame.end_colno,
        frame.name,
        source,
    )


def _frame_reads(function):
    """The FrameSummary attributes `function` may read, following the FrameSummary properties
    and methods it reaches, from their bytecode (over-approximated: every name it uses that is
    such an attribute, read or not)."""
    members = vars(_FRAME_SUMMARY)
    attributes = set(_FRAME_SUMMARY.__slots__) | set(members)
    reads, todo = set(), [function.__code__]
    while todo:
        code = todo.pop()
        for name in code.co_names:
            if name in attributes and name not in reads:
                reads.add(name)
                member = members.get(name)
                member = member.fget if isinstance(member, property) else member
                if isinstance(member, types.FunctionType):
                    todo.append(member.__code__)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return reads


# What format_frame_summary reads on the versions read for this module, each covered by its key.
_KEYED = {
    (3, 11): (_key_3_11, {"filename", "lineno", "end_lineno", "colno", "end_colno", "name",
                          "line", "_original_line", "_line", "locals"}),
    (3, 13): (_key_3_13, {"filename", "lineno", "end_lineno", "colno", "end_colno", "name",
                          "line", "_original_lines", "_dedented_lines", "_set_lines", "_lines",
                          "_lines_dedented", "locals"}),
}
_KEYED[(3, 12)] = _KEYED[(3, 11)]


def _choose():
    """(this module's path read for this Python?, the frame key or None: no memo)."""
    if _VERSION in ((3, 9), (3, 10)):
        return True, None  # read: frames are formatted inline, cheaply, no per-frame function
    if _VERSION not in _KEYED:
        return False, None
    key, covered = _KEYED[_VERSION]
    if not _frame_reads(_STACK_SUMMARY.format_frame_summary) <= covered:
        return False, None  # a patch release that reads more than the key holds
    return True, key


_READ, _FRAME_KEY = _choose()
