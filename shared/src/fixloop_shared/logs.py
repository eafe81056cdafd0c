"""JSON logs with service, trace and correlation ids on every record."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

from fixloop_shared.telemetry import current_trace_ids

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fixloop_correlation", default=None
)
_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("fixloop_tenant", default=None)


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
        record.correlation_id = _correlation.get()
        record.tenant = _tenant.get()
        record.trace_id, record.span_id = current_trace_ids()
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route all logging to stdout as one JSON object per line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
