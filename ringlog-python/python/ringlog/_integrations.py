"""Small adapters for the logging libraries users ask for: a loguru sink and a structlog
logger factory. Each writes one record per log call through a ``ringlog.Writer``."""

from ._ringlog import Writer


def loguru_sink(ring, **writer_options):
    """A loguru sink: ``logger.add(ringlog.loguru_sink("app"), format="{message}")``.

    Each message becomes one record with loguru's level number and the logger's module
    name as target; with ``format="{message}"`` the drain adds time, level and pid, and
    loguru still appends a formatted exception to the message.
    """
    writer = Writer(ring, **writer_options)

    def sink(message):
        record = message.record
        writer.write_record(record["level"].no, record["name"] or "", message.rstrip("\n"))

    sink.writer = writer
    return sink


class StructlogLogger:
    """What ``StructlogLoggerFactory`` makes: structlog calls the method named after the
    level with the final processor's output (a str or bytes, e.g. from JSONRenderer)."""

    _LEVELS = {
        "critical": 50,
        "fatal": 50,
        "exception": 40,
        "error": 40,
        "err": 40,
        "failure": 40,
        "warning": 30,
        "warn": 30,
        "info": 20,
        "msg": 20,
        "log": 20,
        "debug": 10,
        "trace": 5,
    }

    def __init__(self, writer, name=""):
        self.writer = writer
        self.name = name

    def __getattr__(self, method):
        level = self._LEVELS.get(method)
        if level is None:
            raise AttributeError(method)
        writer, name = self.writer, self.name

        def log(message):
            writer.write_record(level, name, message)

        return log


class StructlogLoggerFactory:
    """``structlog.configure(logger_factory=ringlog.StructlogLoggerFactory("app"), ...)``;
    the logger's name (``structlog.get_logger("name")``) becomes the record's target."""

    def __init__(self, ring, **writer_options):
        self.writer = Writer(ring, **writer_options)

    def __call__(self, *args):
        name = args[0] if args and isinstance(args[0], str) else ""
        return StructlogLogger(self.writer, name)
