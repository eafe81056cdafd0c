"""Every logger's records come out as JSON with an RFC 3339 zoned time and no colour codes."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from fixloop_shared.logs import FixloopJsonFormatter, RepeatedLibraryLines, rfc3339, setup_logging

RFC3339_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def configured() -> Iterator[logging.Handler]:
    """``setup_logging`` as a service calls it; the root and library loggers restored after."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    names = ("faststream", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (
            list(logging.getLogger(n).handlers),
            logging.getLogger(n).propagate,
            logging.getLogger(n).level,
        )
        for n in names
    }
    setup_logging("test-service", "INFO")
    (handler,) = root.handlers
    try:
        yield handler
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for n, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)


def _emit(
    logger_name: str, handler: logging.Handler, *args: object, **extra: object
) -> dict[str, object]:
    """Log through the named logger and capture what the configured handler writes."""
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    original = handler.setStream(buffer)
    try:
        logging.getLogger(logger_name).info(*args, extra=extra or None)
    finally:
        handler.setStream(original)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1, (
        f"{logger_name}: expected one line through the root handler, got {lines!r}"
    )
    assert "\x1b[" not in lines[0], lines[0]
    record = json.loads(lines[0])
    assert isinstance(record, dict)
    return record


@pytest.mark.parametrize("name", ["root", "faststream", "uvicorn.error"])
def test_each_logger_writes_json_with_zoned_time_and_no_colour(
    configured: logging.Handler, name: str
) -> None:
    logger_name = "" if name == "root" else name
    record = _emit(logger_name, configured, "hello %s", "world")
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["service"] == "test-service"
    time = record["time"]
    assert isinstance(time, str)
    assert RFC3339_ZONED.match(time), time
    assert datetime.fromisoformat(time.replace("Z", "+00:00")).tzinfo is not None


def test_faststream_loses_its_colouring_handler(configured: logging.Handler) -> None:
    import faststream._internal.logger.logging as fs_logging

    fs = logging.getLogger("faststream")
    assert fs_logging.logger is fs
    assert fs.propagate
    assert not [h for h in fs.handlers if isinstance(h, logging.StreamHandler)]
    # FastStream's own colouring formatter would have written "\x1b[32mINFO\x1b[0m".
    fs_logging.logger.info("FastStream app started successfully!")


def test_uvicorn_color_message_and_stray_escapes_are_dropped(configured: logging.Handler) -> None:
    record = _emit(
        "uvicorn.error",
        configured,
        "Uvicorn running on %s (Press CTRL+C to quit)",
        "http://127.0.0.1:8000",
        color_message="Uvicorn running on \x1b[1m%s\x1b[0m (Press CTRL+C to quit)",
    )
    assert "color_message" not in record
    record = _emit("faststream", configured, "\x1b[32mINFO\x1b[0m coloured by someone else")
    assert record["message"] == "INFO coloured by someone else"


def test_uvicorn_default_config_is_undone_by_setup_logging() -> None:
    """Even after uvicorn's own dictConfig (coloured DefaultFormatter), records end up in JSON."""
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        logging.config.dictConfig(LOGGING_CONFIG)
        setup_logging("test-service")
        handler = root.handlers[0]
        record = _emit("uvicorn.error", handler, "Started server process [%d]", 42)
        assert record["message"] == "Started server process [42]"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_795_664_457.1234) == "2026-11-26T03:40:57.123Z"
    formatter = FixloopJsonFormatter()
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert RFC3339_ZONED.match(json.loads(formatter.format(rec))["time"])


def test_a_library_error_repeated_many_times_is_written_once_per_window_then_counted() -> None:
    now = [0.0]
    quiet = RepeatedLibraryLines(every_seconds=30, clock=lambda: now[0])

    def record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    commit = "OffsetCommit failed for group orders"
    written = [
        quiet.filter(record("aiokafka.consumer.group_coordinator", commit)) for _ in range(500)
    ]
    assert written.count(True) == 1
    assert quiet.filter(record("aiokafka", "another failure"))
    assert quiet.filter(record("fixloop_shared.bus", "message dead-lettered", logging.WARNING))
    assert quiet.filter(record("fixloop_shared.bus", "message dead-lettered", logging.WARNING))
    assert quiet.filter(record("aiokafka", commit, logging.INFO))
    now[0] = 31.0
    summary = record("aiokafka.consumer.group_coordinator", commit)
    assert quiet.filter(summary)
    assert summary.repeated == 499  # type: ignore[attr-defined]
