"""JSON logs with service, trace and correlation ids on every record.

Every line is one JSON object with an RFC 3339 ``time`` in UTC (``2026-11-26T03:40:57.123Z``) and
no terminal colour codes, whichever library wrote it: FastStream's own ``faststream`` logger
ships with a handler that colours the level (``ColourizedFormatter(use_colors=True)``) and does not
propagate; uvicorn passes a coloured copy of its messages as the ``color_message`` extra. Both are
taken care of here: library loggers lose their own stream handlers and propagate to the root's
JSON handler, ``color_message`` is dropped, and any escape sequence left in a value is removed.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from fixloop_shared.telemetry import current_trace_ids

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fixloop_correlation", default=None
)
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("fixloop_tenant", default=None)

ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
"""A CSI escape sequence (colours, cursor movement), as terminals and colouring loggers write."""

LIBRARY_LOGGERS = (
    "faststream",
    "faststream.access",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "aiokafka",
    "pymongo",
)
"""Loggers that libraries may give handlers of their own; they are routed through the root."""

_DROPPED_FIELDS = frozenset({"color_message"})


@contextmanager
def bind_correlation(correlation_id: str | None, tenant: str | None = None) -> Iterator[None]:
    """Tag every log record inside the block with this correlation id and tenant."""
    token_c = _correlation.set(correlation_id)
    token_t = _tenant.set(tenant)
    try:
        yield
    finally:
        _correlation.reset(token_c)
        _tenant.reset(token_t)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        # What a log call says itself (``extra={"tenant": ...}``) wins over the context.
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _correlation.get()
        if getattr(record, "tenant", None) is None:
            record.tenant = _tenant.get()
        record.trace_id, record.span_id = current_trace_ids()
        return True


def rfc3339(created: float) -> str:
    """A record's creation time as RFC 3339 in UTC with milliseconds: ``...T03:40:57.123Z``."""
    stamp = datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return strip_ansi(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class FixloopJsonFormatter(JsonFormatter):
    """One JSON object per record: RFC 3339 UTC ``time``, ``level``, ``logger``, ``message``."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802, ARG002 - logging API
        return rfc3339(record.created)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for name in _DROPPED_FIELDS:
            log_data.pop(name, None)
        cleaned: dict[str, Any] = _clean(log_data)
        return cleaned


class RepeatedLibraryLines(logging.Filter):
    """Library warnings and errors that repeat are written once per window, then counted.

    A broker that forgot a consumer group makes aiokafka and FastStream log the same failure
    for every commit, many times a second. Fixloop's own loggers (``fixloop_*``) are left alone:
    they throttle where it matters (:mod:`fixloop_shared.log_throttle`) and log each fact once.
    """

    def __init__(self, every_seconds: float = 30.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._every = every_seconds
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith("fixloop_"):
            return True
        key = (record.name, record.levelno, str(record.msg)[:160])
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._every:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        if len(self._seen) > 1024:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def json_handler(service: str) -> logging.Handler:
    """The handler every record ends in: stdout, JSON, with the context ids."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RepeatedLibraryLines())
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(FixloopJsonFormatter())
    return handler


def route_through_root(*names: str) -> None:
    """Take their own stream handlers off these loggers and let them propagate to the root.

    FastStream's ``faststream`` logger comes with a colouring stderr handler and
    ``propagate = False``; uvicorn's default logging config does the same for ``uvicorn.*``.
    """
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler):
                logger.removeHandler(handler)
        logger.propagate = True


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route all logging to stdout as one JSON object per line."""
    handler = json_handler(service)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    import faststream  # noqa: F401 - creates its logger (and colouring handler) at import

    existing = [
        name
        for name in logging.root.manager.loggerDict
        if name.startswith(("faststream", "uvicorn"))
    ]
    route_through_root(*LIBRARY_LOGGERS, *existing)
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
