"""ringlog.Handler: one log call = one record, with level, target and tracebacks; dictConfig;
no per-handler lock; handleError for real failures; pickling."""

import io
import logging
import logging.config
import pickle
import subprocess
import sys

import pytest

import ringlog


@pytest.fixture
def logger(request):
    log = logging.getLogger(f"test.{request.node.name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def test_each_log_call_is_one_record_with_level_target_and_message(ring, start_drain, logger):
    handler = ringlog.Handler(ring)
    logger.addHandler(handler)
    drain = start_drain(ring)
    logger.debug("debug %d", 1)
    logger.info("info %s", "two")
    logger.warning("warning")
    logger.error("error")
    logger.critical("critical")
    logging.getLogger(logger.name + ".child").propagate = True
    logging.getLogger(logger.name + ".child").info("from a child logger")
    drain.stop()
    records = drain.records()
    assert [(r["level"], r["target"], r["msg"]) for r in records] == [
        ("DEBUG", logger.name, "debug 1"),
        ("INFO", logger.name, "info two"),
        ("WARN", logger.name, "warning"),
        ("ERROR", logger.name, "error"),
        ("ERROR", logger.name, "critical"),
        ("INFO", logger.name + ".child", "from a child logger"),
    ]


def deep(n, size):
    if n == 0:
        raise RuntimeError("boom " + "x" * size)
    deep(n - 1, size)


def test_a_one_mebibyte_traceback_stays_one_record(ring, start_drain, logger):
    # A 4 MiB ring takes records up to 1 MiB; this one is 8 MiB (2 MiB records).
    handler = ringlog.Handler(ring, capacity=8 << 20)
    logger.addHandler(handler)
    drain = start_drain(ring, capacity=8 << 20)
    try:
        deep(50, 1 << 20)
    except RuntimeError:
        logger.exception("request %s failed", "r-1")
    logger.info("after", stack_info=True)
    drain.stop()
    records = drain.records()
    assert len(records) == 2
    first = records[0]["msg"]
    assert len(first.encode()) > 1 << 20
    assert first.startswith("request r-1 failed\nTraceback (most recent call last):\n")
    assert "in deep" in first and "Previous line repeated" in first
    assert first.endswith("RuntimeError: boom " + "x" * (1 << 20))
    assert records[0]["level"] == "ERROR"
    assert records[1]["msg"].startswith("after\nStack (most recent call last):\n")


def test_a_record_above_max_record_goes_to_handle_error_and_loses_no_other(ring, start_drain, logger, monkeypatch):
    handler = ringlog.Handler(ring, capacity=1 << 16)
    logger.addHandler(handler)
    drain = start_drain(ring, capacity=1 << 16)
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    logger.info("x" * (1 << 16))
    logger.info("the next one")
    drain.stop()
    assert "TooLargeError" in stderr.getvalue()
    assert "max record" in stderr.getvalue()
    assert [r["msg"] for r in drain.records()] == ["the next one"]


def test_an_explicit_formatter_is_used(ring, start_drain, logger):
    handler = ringlog.Handler(ring)
    handler.setFormatter(logging.Formatter("%(levelname)s|%(name)s|%(message)s"))
    logger.addHandler(handler)
    drain = start_drain(ring)
    logger.warning("formatted %s", "here")
    drain.stop()
    assert [r["msg"] for r in drain.records()] == [f"WARNING|{logger.name}|formatted here"]


def test_no_per_handler_lock(ring):
    handler = ringlog.Handler(ring)
    assert handler.lock is None
    handler.acquire()  # logging.shutdown calls these: they must stay harmless
    handler.release()
    handler.flush()


def test_level_and_filters_apply(ring, start_drain, logger):
    handler = ringlog.Handler(ring, level=logging.WARNING)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    logger.addHandler(handler)
    drain = start_drain(ring)
    logger.info("below the level")
    logger.warning("a secret")
    logger.warning("kept")
    drain.stop()
    assert [r["msg"] for r in drain.records()] == ["kept"]


def test_constructible_from_dict_config(ring, start_drain):
    name = f"dictconfig.{ring}"
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "ring": {"class": "ringlog.Handler", "ring": ring, "level": "INFO", "policy": "block",
                     "capacity": 1 << 20},
        },
        "loggers": {name: {"handlers": ["ring"], "level": "DEBUG", "propagate": False}},
    })
    log = logging.getLogger(name)
    (handler,) = log.handlers
    try:
        assert isinstance(handler, ringlog.Handler)
        assert handler.level == logging.INFO
        drain = start_drain(ring, capacity=1 << 20)
        log.debug("filtered by the handler's level")
        log.info("from dictConfig")
        drain.stop()
        assert [(r["target"], r["msg"]) for r in drain.records()] == [(name, "from dictConfig")]
    finally:
        log.removeHandler(handler)
        handler.close()


def test_a_pickled_handler_keeps_level_formatter_and_ring(ring, start_drain, logger):
    handler = ringlog.Handler(ring, level=logging.INFO, policy="drop")
    handler.setFormatter(logging.Formatter("F:%(message)s"))
    handler.set_name("mine")
    copy = pickle.loads(pickle.dumps(handler))
    assert (copy.level, copy.name, copy.writer.ring, copy.lock) == (logging.INFO, "mine", ring, None)
    logger.addHandler(copy)
    drain = start_drain(ring)
    logger.debug("below")
    logger.info("through the copy")
    drain.stop()
    assert [r["msg"] for r in drain.records()] == ["F:through the copy"]


def test_closed_handler_reports_through_handle_error(ring, logger, monkeypatch):
    handler = ringlog.Handler(ring)
    logger.addHandler(handler)
    handler.close()
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    logger.info("after close")
    assert "ClosedError" in stderr.getvalue()


def test_a_handler_whose_ring_cannot_be_opened_leaves_nothing_for_logging_shutdown():
    # A caller that keeps the exception keeps the half-made handler reachable; logging.shutdown
    # at exit then closes every handler it registered, and must not trip over this one.
    program = (
        "import ringlog\n"
        "try:\n"
        "    ringlog.Handler('a/b')\n"
        "except ringlog.BadNameError as e:\n"
        "    kept = e\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
