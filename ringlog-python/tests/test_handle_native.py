"""ringlog.Handler.handle is native (ringlog-python/src/handle.rs): one call instead of
handle -> filter -> emit -> getMessage -> write_record. These tests pin that it changes nothing
a record becomes: each record shape below goes through the native path and through the stdlib's
own Formatter (what ``emit`` produces with no Formatter set: the message, then the exception
text, then the stack), and the drained records must match; every customisation point (filters,
a replacement record, an overridden filter or emit, a Formatter, a LogRecord subclass, a
non-str message, errors) behaves as logging.Handler.handle would make it behave."""

import io
import logging
import sys

import pytest

import ringlog

REFERENCE = logging.Formatter()  # "%(message)s" + exception text + stack, as emit appends them
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "ERROR"}
FILTER_RETURNS_RECORD = sys.version_info >= (3, 12)


@pytest.fixture
def logger(request):
    log = logging.getLogger(f"test.native.{request.node.name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


class Shown:
    def __str__(self):
        return "an object shown by __str__"


class LoudStr(str):
    def __str__(self):
        return "LoudStr.__str__ wins, as getMessage's str(msg) makes it"


class UpperRecord(logging.LogRecord):
    def getMessage(self):
        return super().getMessage().upper()


def failing():
    raise KeyError("the key")


def test_every_record_shape_matches_the_stdlib_formatting(ring, start_drain, logger):
    handler = ringlog.Handler(ring)
    logger.addHandler(handler)
    drain = start_drain(ring)
    sent = []  # (level, target, record) the drain must show, formatted by REFERENCE

    def log(level, msg, *args, **kwargs):
        record = logger.makeRecord(logger.name, level, "f.py", 1, msg, args, None, **kwargs)
        handler.handle(record)
        sent.append(record)

    log(logging.INFO, "plain")
    log(logging.DEBUG, "args %s and %d", "two", 3)
    log(logging.WARNING, "a mapping %(key)s", {"key": "value"})
    log(logging.ERROR, 42)
    log(logging.CRITICAL, Shown())
    log(logging.INFO, LoudStr("a str subclass"))
    log(logging.INFO, "unicode: žluťoučký kůň 🐍 and a lone surrogate \udcff")
    log(logging.INFO, "")
    try:
        failing()
    except KeyError:
        # Through the logger: exc_info from sys.exc_info(), stack_info from the real stack.
        logger.exception("failed %s", "here")
        sent.append(None)
        logger.info("with a stack", stack_info=True)
        sent.append(None)
    stacked = logger.makeRecord(logger.name, logging.INFO, "f.py", 1, "exc_text only", (), None)
    stacked.exc_text = "an exception text set beforehand"
    handler.handle(stacked)
    sent.append(stacked)
    subclassed = UpperRecord(logger.name, logging.INFO, "f.py", 1, "a subclass %s", ("record",), None)
    handler.handle(subclassed)
    sent.append(subclassed)
    drain.stop()

    records = drain.records()
    assert len(records) == len(sent)
    for got, record in zip(records, sent):
        if record is None:
            continue  # checked below
        assert got["msg"] == REFERENCE.format(record).replace("\udcff", "\\udcff"), got
        assert (got["level"], got["target"]) == (LEVEL_NAMES[record.levelno], logger.name), got
    exception, stack = records[8], records[9]
    assert exception["msg"].startswith("failed here\nTraceback (most recent call last):\n")
    assert exception["msg"].endswith("KeyError: 'the key'")
    assert "in failing" in exception["msg"]
    assert stack["msg"].startswith("with a stack\nStack (most recent call last):\n")
    assert "test_every_record_shape_matches_the_stdlib_formatting" in stack["msg"]
    assert records[-1]["msg"] == "A SUBCLASS RECORD"


def test_handle_returns_what_logging_handler_handle_returns(ring, logger):
    handler = ringlog.Handler(ring)
    stock = logging.StreamHandler(io.StringIO())
    record = logger.makeRecord(logger.name, logging.INFO, "f.py", 1, "returned", (), None)
    assert handler.handle(record) == stock.handle(record)
    assert handler.handle(record) is (record if FILTER_RETURNS_RECORD else True)
    for h in (handler, stock):
        h.addFilter(lambda r: False)
    assert handler.handle(record) is False
    assert stock.handle(record) is False


def test_filters_reject_modify_and_replace(ring, start_drain, logger):
    handler = ringlog.Handler(ring)
    logger.addHandler(handler)

    def reject_secrets(record):
        return "secret" not in record.getMessage()

    def raise_level_and_rename(record):
        if record.getMessage() == "promote me":
            record.levelno, record.name = logging.ERROR, "renamed.target"
        return True

    def replace(record):
        if record.getMessage() != "replace me":
            return True
        return logging.LogRecord("replacement.target", logging.WARNING, "f.py", 1, "the replacement", (), None)

    class Counting(logging.Filter):
        seen = 0

        def filter(self, record):
            Counting.seen += 1
            return True

    for f in (reject_secrets, raise_level_and_rename, replace, Counting()):
        handler.addFilter(f)
    drain = start_drain(ring)
    logger.info("a secret")
    logger.info("promote me")
    logger.info("replace me")
    logger.info("kept as is")
    drain.stop()
    replaced = (
        ("WARN", "replacement.target", "the replacement")
        if FILTER_RETURNS_RECORD  # 3.12+: a filter may hand back the record to log instead
        else ("INFO", logger.name, "replace me")
    )
    assert [(r["level"], r["target"], r["msg"]) for r in drain.records()] == [
        ("ERROR", "renamed.target", "promote me"),
        replaced,
        ("INFO", logger.name, "kept as is"),
    ]
    assert Counting.seen == 3  # the secret stopped at the first filter


def test_a_formatter_formats_every_record(ring, start_drain, logger):
    handler = ringlog.Handler(ring)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    drain = start_drain(ring)
    logger.info("plain")
    try:
        failing()
    except KeyError:
        logger.error("with %s", "exc_info", exc_info=True)
    drain.stop()
    plain, failed = [r["msg"] for r in drain.records()]
    assert plain == f"INFO {logger.name}: plain"
    assert failed.startswith(f"ERROR {logger.name}: with exc_info\nTraceback (most recent call last):\n")
    assert failed.endswith("KeyError: 'the key'")


def test_a_subclass_overriding_filter_emit_or_format_is_obeyed(ring, start_drain, logger):
    class OwnFilter(ringlog.Handler):
        def filter(self, record):
            return record.levelno >= logging.WARNING

    class OwnEmit(ringlog.Handler):
        def emit(self, record):
            self.writer.write_record(record.levelno, "own.emit", "emitted: " + record.getMessage())

    class OwnFormat(ringlog.Handler):
        def format(self, record):
            return "own format: " + record.getMessage()

    own_format = OwnFormat(ring)
    own_format.setFormatter(logging.Formatter())  # format() runs only with a Formatter, as in emit
    for handler in (OwnFilter(ring), OwnEmit(ring), own_format):
        logger.addHandler(handler)
    drain = start_drain(ring)
    logger.info("info")
    logger.warning("warning")
    drain.stop()
    got = sorted((r["target"], r["msg"]) for r in drain.records())
    assert got == sorted([
        ("own.emit", "emitted: info"),
        (logger.name, "own format: info"),
        (logger.name, "warning"),
        ("own.emit", "emitted: warning"),
        (logger.name, "own format: warning"),
    ])


def test_a_writer_replaced_by_another_object_is_called(ring, logger):
    handler = ringlog.Handler(ring)
    calls = []

    class Recorder:
        def write_record(self, level, target, message):
            calls.append((level, target, message))
            return True

        def close(self):
            pass

    handler.writer = Recorder()
    logger.addHandler(handler)
    logger.warning("to %s", "the recorder")
    assert calls == [(logging.WARNING, logger.name, "to the recorder")]


def test_errors_go_to_handle_error_and_the_next_record_is_written(ring, start_drain, logger, monkeypatch):
    handler = ringlog.Handler(ring)
    logger.addHandler(handler)
    drain = start_drain(ring)
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)

    class Broken:
        def __str__(self):
            raise ValueError("cannot show this")

    # Straight to the handler: pytest's own capture handler would raise on the first one.
    for msg, args in (("%d apples", ("not a number",)), (Broken(), ()), ("after the errors", ())):
        handler.handle(logger.makeRecord(logger.name, logging.INFO, "f.py", 1, msg, args, None))
    drain.stop()
    report = stderr.getvalue()
    assert report.count("--- Logging error ---") == 2, report
    assert "TypeError: %d format: a" in report  # the wording after "a" varies by version
    assert "ValueError: cannot show this" in report
    assert "Call stack:" in report and "test_errors_go_to_handle_error" in report
    assert "Message: '%d apples'" in report
    assert [r["msg"] for r in drain.records()] == ["after the errors"]


def test_recursion_error_and_base_exceptions_propagate_as_from_emit(ring, logger):
    handler = ringlog.Handler(ring)

    class Deep:
        def __str__(self):
            raise RecursionError("too deep")

    class Interrupting:
        def __str__(self):
            raise KeyboardInterrupt

    def record(msg):
        return logger.makeRecord(logger.name, logging.INFO, "f.py", 1, msg, (), None)

    with pytest.raises(RecursionError, match="too deep"):
        handler.handle(record(Deep()))
    with pytest.raises(KeyboardInterrupt):
        handler.handle(record(Interrupting()))


def test_handle_checks_its_arguments(ring):
    handler = ringlog.Handler(ring)
    with pytest.raises(TypeError):
        ringlog.Handler.handle(object(), logging.makeLogRecord({}))
    with pytest.raises(TypeError):
        handler.handle()
    stderr = io.StringIO()
    saved, sys.stderr = sys.stderr, stderr
    try:
        handler.handle(object())  # no levelno, no msg: emit's AttributeError, reported
    finally:
        sys.stderr = saved
    assert "AttributeError" in stderr.getvalue()
