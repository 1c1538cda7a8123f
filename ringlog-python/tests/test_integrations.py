"""The loguru sink and the structlog logger factory, through a real drain."""

import json

import pytest

import ringlog


def test_loguru_sink_writes_one_record_per_message_with_level_and_module(ring, start_drain):
    loguru = pytest.importorskip("loguru", reason="loguru is installed by scripts/test-all.sh")
    logger = loguru.logger
    sink_id = logger.add(ringlog.loguru_sink(ring), format="{message}", level="TRACE")
    try:
        drain = start_drain(ring)
        logger.info("hello {}", "loguru")
        logger.warning("careful")
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("it failed")
        logger.trace("fine detail")
    finally:
        logger.remove(sink_id)
    drain.stop()
    records = drain.records()
    assert [(r["level"], r["target"]) for r in records] == [
        ("INFO", __name__), ("WARN", __name__), ("ERROR", __name__), ("TRACE", __name__)]
    assert [r["msg"] for r in records[:2]] == ["hello loguru", "careful"]
    assert records[2]["msg"].startswith("it failed\nTraceback")
    assert "ZeroDivisionError" in records[2]["msg"]


def test_structlog_factory_writes_rendered_events(ring, start_drain):
    structlog = pytest.importorskip("structlog", reason="structlog is installed by scripts/test-all.sh")
    logger = structlog.wrap_logger(
        ringlog.StructlogLoggerFactory(ring)("svc.api"),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    )
    drain = start_drain(ring)
    logger.info("user logged in", user="ada")
    logger.error("payment failed", amount=12)
    drain.stop()
    records = drain.records()
    assert [(r["level"], r["target"]) for r in records] == [("INFO", "svc.api"), ("ERROR", "svc.api")]
    assert json.loads(records[0]["msg"]) == {"event": "user logged in", "user": "ada", "level": "info"}
    assert json.loads(records[1]["msg"]) == {"event": "payment failed", "amount": 12, "level": "error"}
