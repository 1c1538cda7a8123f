"""ringlog.Handler's exception text (ringlog._tracebacks) against the stdlib's: byte for byte
``logging.Formatter().formatException(ei)`` over a corpus chosen to catch a wrong memo key:
chains, groups, notes, SyntaxError, recursion, every caret shape, multi-line expressions,
non-ASCII source, frames without source, a file edited on disk between two tracebacks, the
same code at other lines and columns, huge messages, a failing __str__, sys.tracebacklimit.

Every case is formatted by ringlog twice (the memo's miss, then its hit) and by the stdlib in
between, and all three compared. Runs on any CPython >= 3.9; on 3.11-3.13 a test first checks
the memo is really in use, so the comparisons test it and not the fallback."""

import importlib.util
import logging
import sys
import threading
import traceback
import uuid
import warnings

import pytest

from ringlog import _handler, _tracebacks

STDLIB = logging.Formatter()
MEMOIZED = (3, 11) <= sys.version_info[:2] <= (3, 13)


def check(ei):
    """Ringlog's text (memo miss, then hit) equals the stdlib's; returns it."""
    first = _tracebacks.format_exception(ei)
    expected = STDLIB.formatException(ei)
    again = _tracebacks.format_exception(ei)
    assert first == expected
    assert again == expected
    return expected


def caught(function, *args):
    try:
        function(*args)
    except BaseException as e:  # the corpus raises everything, KeyboardInterrupt included
        return (type(e), e, e.__traceback__)
    raise AssertionError(f"{function} did not raise")


def last_frame(ei):
    """What format_frame_summary reads of the innermost frame (None where a Python lacks it)."""
    frame = traceback.extract_tb(ei[2])[-1]
    fields = ("filename", "lineno", "end_lineno", "colno", "end_colno", "name", "line")
    return {f: getattr(frame, f, None) for f in fields}


def module_from(tmp_path, source, name=None):
    """A module imported from a real file holding `source`."""
    name = name or f"tb_corpus_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def from_string(source, filename, function="f"):
    """A function compiled from a string: its frames have no source file."""
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[function]


# --- the corpus: functions whose raising lines have the shapes the caret code handles ---------


def divide(a, b):
    return a / b


def subscript(d, key):
    return d[key]


def call_inner(x):
    raise ValueError(f"inner {x}")


def call(x):
    return call_inner(x) + 1


def attribute(obj):
    return obj.missing_attribute


def either_side(a, b):
    # IndexError at `b[0]` or TypeError at `a + b[0]`: same line, same end column, other start.
    return a + b[0]


def nested_subscript(d):
    # KeyError at `d["a"]` or at `d["a"]["b"]`: same line, same start column, other end.
    return d["a"]["b"]


def over_two_lines(d):
    # KeyError at `d["a"]` (one line) or at the whole expression (two lines); the second
    # line is indented so both end at the same column: only end_lineno differs.
    return (d["a"]
             ["b"])


def multi_line_call(x):
    return call_inner(
        x,
    )


def multi_line_binary(a, b):
    return (a
            +
            b)


def whole_line_call():
    call_inner("whole line")


def recurse(n):
    if n == 0:
        raise RecursionError("bottom of a deep recursion")
    return recurse(n - 1)


def ping(n):
    return pong(n)


def pong(n):
    if n == 0:
        raise LookupError("mutual recursion")
    return ping(n - 1)


def cause():
    try:
        {}["missing"]
    except KeyError as e:
        raise RuntimeError("with a cause") from e


def context():
    try:
        1 / 0
    except ZeroDivisionError:
        raise RuntimeError("raised while handling another")


def suppressed():
    try:
        1 / 0
    except ZeroDivisionError:
        raise RuntimeError("from None") from None


def context_and_cause():
    try:
        cause()
    except RuntimeError:
        subscript([], 3)


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("__str__ fails")


def bad_str():
    raise BadStr()


def with_notes():
    error = ValueError("with notes")
    error.__notes__ = ["a note", "two\nlines", 42]
    raise error


def notes_not_a_list():
    error = ValueError("notes not a list")
    error.__notes__ = "a string, not a sequence of notes"
    raise error


def name_suggestion():
    important_variable = 1
    return important_varible  # noqa: F821 (the typo is the test)


def keyboard_interrupt():
    raise KeyboardInterrupt


def message(text):
    raise ValueError(text)


CASES = {
    "binary op": (divide, 1, 0),
    "subscript": (subscript, {}, "missing"),
    "subscript of a list": (subscript, [], 5),
    "call": (call, 1),
    "attribute": (attribute, object()),
    "either side: subscript": (either_side, 1, []),
    "either side: binary op": (either_side, None, [1]),
    "nested subscript: first": (nested_subscript, {}),
    "nested subscript: second": (nested_subscript, {"a": {}}),
    "two lines: first": (over_two_lines, {}),
    "two lines: both": (over_two_lines, {"a": {}}),
    "multi-line call": (multi_line_call, 2),
    "multi-line binary op": (multi_line_binary, 1, "s"),
    "a call that is the whole line": (whole_line_call,),
    "recursion": (recurse, 40),
    "recursion just below the collapse": (recurse, 2),
    "mutual recursion": (ping, 30),
    "cause": (cause,),
    "context": (context,),
    "from None": (suppressed,),
    "context of a cause": (context_and_cause,),
    "__str__ raises": (bad_str,),
    "notes": (with_notes,),
    "notes not a list": (notes_not_a_list,),
    "name suggestion": (name_suggestion,),
    "KeyboardInterrupt": (keyboard_interrupt,),
    "a 1 MiB message": (message, "m" * (1 << 20)),
    "line breaks of every kind": (message, "a\nb\r\nc\rd\x0be\x0cf\x1cg\x85h\u2028i\u2029j\n"),
    "an empty message": (message, ""),
}


@pytest.fixture(autouse=True)
def fresh_memo():
    _tracebacks._FRAMES.clear()
    yield


def test_the_memo_is_in_use_where_the_stdlib_parses_source():
    # Without this, every comparison below could pass through the stdlib fallback alone.
    if not MEMOIZED:
        assert _tracebacks._FRAME_KEY is None
        if sys.version_info[:2] <= (3, 10):
            assert _tracebacks._READ
            pytest.skip(f"memo: Python {sys.version_info[:2]} has no carets to memoize")
        pytest.skip(f"memo: Python {sys.version_info[:2]} was not read: stdlib only")
    assert _tracebacks._READ and _tracebacks._FRAME_KEY is not None
    check(caught(divide, 1, 0))
    assert len(_tracebacks._FRAMES) == 2  # caught's frame and divide's


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_text_as_the_stdlib(case):
    function, *args = CASES[case]
    check(caught(function, *args))


def test_each_key_field_alone_changes_the_text():
    # Pairs of tracebacks whose innermost frames differ in one field format_frame_summary
    # reads: a key without that field would serve the first frame's text for the second.
    pairs = {
        "colno": (caught(either_side, 1, []), caught(either_side, None, [1])),
        "end_colno": (caught(nested_subscript, {}), caught(nested_subscript, {"a": {}})),
        "end_lineno": (caught(over_two_lines, {}), caught(over_two_lines, {"a": {}})),
        # No source: the frames differ in where the raise starts (both end at line 3, col 21).
        "lineno": (
            caught(from_string("def f():\n    raise KeyError(\n                   1)\n", "<l>")),
            caught(from_string("def f():\n\n    raise KeyError(1)\n", "<l>")),
        ),
    }
    if sys.version_info[:2] >= (3, 11):
        for field, (one, other) in pairs.items():
            a, b = last_frame(one), last_frame(other)
            assert {f for f in a if a[f] != b[f]} == {field}, (field, a, b)
    for one, other in pairs.values():
        texts = check(one), check(other)
        if sys.version_info[:2] >= (3, 11):
            assert texts[0].splitlines()[-2] != texts[1].splitlines()[-2]


def test_frames_without_source_differing_in_name_file_or_line():
    body = "def {name}():\n{pad}    raise KeyError('no source')\n"
    functions = [
        from_string(body.format(name="f", pad=""), "<generated one>"),
        from_string(body.format(name="g", pad=""), "<generated one>", "g"),
        from_string(body.format(name="f", pad=""), "<generated two>"),
        from_string("\n" + body.format(name="f", pad=""), "<generated one>"),
    ]
    texts = [check(caught(f)) for f in functions]
    assert len(set(texts)) == len(texts)


def test_a_source_file_edited_on_disk_between_two_tracebacks(tmp_path):
    # The same code object raises twice; the file under it changes in between. The stdlib
    # shows the line as the file has it now (linecache.checkcache): so must ringlog, with no
    # stale text from its memo.
    module, path = module_from(tmp_path, "def fail(d):\n    return d['a'] + 1\n")
    before = check(caught(module.fail, {}))
    path.write_text("def fail(d):\n    return d['a'] + 10  # edited\n", encoding="utf-8")
    after = check(caught(module.fail, {}))
    assert "d['a'] + 1\n" in before and "# edited" in after
    path.write_text("def fail(d):\n    return  d['a'] + 1\n", encoding="utf-8")  # moved right
    moved = check(caught(module.fail, {}))
    assert moved != before and moved != after


def test_a_deleted_source_file(tmp_path):
    module, path = module_from(tmp_path, "def fail():\n    return [][1]\n")
    check(caught(module.fail))
    path.unlink()
    check(caught(module.fail))


def test_non_ascii_and_wide_characters_before_the_failing_code(tmp_path):
    source = (
        "# -*- coding: utf-8 -*-\n"
        "def fail(表):\n"
        "    return ('日本語テキスト', 'ünïcödé', 表['キー'] + 1)\n"
        "def fail_op(値):\n"
        "    return ('日本語', 値 / 0)\n"
    )
    module, _ = module_from(tmp_path, source)
    check(caught(module.fail, {}))
    check(caught(module.fail, {"キー": "s"}))
    check(caught(module.fail_op, 1))


def test_a_module_whose_line_is_long_and_tabbed(tmp_path):
    source = "def fail(d):\n\treturn " + " + ".join(["d['k']"] * 200) + "\n"
    module, _ = module_from(tmp_path, source)
    check(caught(module.fail, {}))
    check(caught(module.fail, {"k": None}))


def test_syntax_errors():
    check(caught(compile, "x = (1,\n", "<unclosed>", "exec"))
    check(caught(compile, "def f():\nreturn 1\n", "<indent>", "exec"))
    check(caught(compile, "a = 1 +* 2\n", "some_file.py", "exec"))
    check(caught(compile, "print 'x'\n", "<legacy>", "exec"))


def test_exception_groups_nested_and_wide():
    if sys.version_info < (3, 11):
        pytest.skip("exception groups: Python < 3.11 has none")

    def members():
        errors = []
        for function, *args in (CASES["binary op"], CASES["subscript"], CASES["notes"]):
            errors.append(caught(function, *args)[1])
        errors.append(caught(message, "member\nwith\r\nbreaks\u2028here")[1])
        return errors

    def inner():
        raise ExceptionGroup("inner", [*members(), caught(cause)[1]])  # noqa: F821

    def outer():
        try:
            inner()
        except ExceptionGroup as group:  # noqa: F821
            raise ExceptionGroup("outer", [group, *members()]) from None  # noqa: F821

    def wide():
        raise ExceptionGroup("wide", [ValueError(i) for i in range(20)])  # noqa: F821

    def deep(n):
        group = ValueError("leaf")
        for i in range(n):
            group = ExceptionGroup(f"level {i}", [group])  # noqa: F821
        raise group

    check(caught(outer))
    check(caught(wide))
    check(caught(deep, 15))


def test_sys_tracebacklimit(monkeypatch):
    for limit in (2, 1, 0, -1):
        monkeypatch.setattr(sys, "tracebacklimit", limit, raising=False)
        check(caught(recurse, 10))
        check(caught(cause))


def test_exc_info_of_unusual_shapes():
    error = ValueError("never raised")
    check((ValueError, error, None))
    check((None, None, None))
    # What the stdlib does with exc_info that is not an exception, ringlog does too.
    for odd in ((ValueError, "a string", None), (ValueError,)):
        outcomes = []
        for formatter in (_tracebacks.format_exception, STDLIB.formatException):
            try:
                outcomes.append(("text", formatter(odd)))
            except Exception as e:
                outcomes.append(("raised", type(e)))
        assert outcomes[0] == outcomes[1]


def test_more_distinct_frames_than_the_memo_holds():
    count = _tracebacks._FRAMES_MAX + 100
    for i in range(count):
        check(caught(from_string("def f():\n    raise KeyError(1)\n", f"<many {i}>")))
    assert len(_tracebacks._FRAMES) <= _tracebacks._FRAMES_MAX


def test_threads_formatting_at_once():
    infos = [caught(function, *args) for function, *args in CASES.values()]
    infos = [ei for ei in infos if len(ei[1].args) == 0 or len(str(ei[1].args[0])) < 1000]
    expected = [STDLIB.formatException(ei) for ei in infos]
    failures = []

    def work():
        for _ in range(20):
            for ei, text in zip(infos, expected):
                if _tracebacks.format_exception(ei) != text:
                    failures.append(ei[1])
            _tracebacks._FRAMES.clear()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_warnings_as_errors_give_the_stdlib_text(tmp_path):
    # Python 3.11+ parses the failing code to place the carets; under a filter that turns the
    # warning an invalid escape gives into an error, the parse fails and the carets differ.
    # A memo filled without the filter must not answer under it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, _ = module_from(tmp_path, "def fail(d):\n    return d['\\d'] + d['\\d']\n")
    ei = caught(module.fail, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not an error: the memo is used and filled here)
        plain = check(ei)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strict = check(ei)
    assert plain != strict or sys.version_info < (3, 11)


def test_replaced_entry_points_are_honoured(monkeypatch):
    ei = caught(divide, 1, 0)
    monkeypatch.setattr(logging.Formatter, "formatException", lambda self, ei: "replaced")
    assert _tracebacks.format_exception(ei) == "replaced"


def test_the_handler_stores_the_stdlib_text_for_other_handlers():
    ei = caught(context_and_cause)
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed %s", ("x",), ei)
    assert _handler._with_tracebacks(record, record.getMessage()).startswith("failed x\n")
    assert record.exc_text == STDLIB.formatException(ei)
    # What a FileHandler beside it then writes is the stdlib's own record text.
    assert logging.Formatter().format(record) == "failed x\n" + STDLIB.formatException(ei)


def test_the_bytecode_check_sees_the_source_read():
    # _choose memoizes only when format_frame_summary's reads are covered by the key; the
    # check must see at least the reads the key is made of, the source line(s) included.
    if not MEMOIZED:
        pytest.skip(f"frame reads: Python {sys.version_info[:2]} memoizes nothing")
    reads = _tracebacks._frame_reads(traceback.StackSummary.format_frame_summary)
    source = "_line" if sys.version_info[:2] < (3, 13) else "_lines"
    assert {"filename", "lineno", "end_lineno", "colno", "end_colno", "name", source} <= reads
