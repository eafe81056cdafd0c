"""Requests per principal in moving windows; a call over the limit ends with RESOURCE_EXHAUSTED.

:class:`~fixloop_shared.grpc_edge.auth.ApiKeyAuthInterceptor` applies the limit once it knows
the calling principal (:mod:`~fixloop_shared.grpc_edge.principals`), before the request is read.
Each principal has its own budget: two integrations of one tenant do not starve each other, and
a contractor app serving several tenants has one budget, not one per tenant.
"""

from __future__ import annotations

import time
from typing import Annotated

import grpc
from google.rpc import error_details_pb2
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import AfterValidator

from fixloop_shared.grpc_edge.errors import retry_info, rich_status

RESOURCE_EXHAUSTED_MESSAGE = "request rate limit exceeded, retry later"


def parse_rate_limit(spec: str) -> tuple[RateLimitItem, ...]:
    """The windows of a limit in ``limits`` notation (``"100/second;3000/minute"``); ValueError
    (one line naming what could not be read) otherwise."""
    items = tuple(parse_many(spec))
    if not items:
        msg = f"no rate limit in {spec!r}"
        raise ValueError(msg)
    return items


def _rate_limit_setting(value: str) -> str:
    if value.strip():
        parse_rate_limit(value)  # ValueError names what it could not read
    return value.strip()


RateLimitSetting = Annotated[str, AfterValidator(_rate_limit_setting)]
"""A setting's default rate limit per principal in ``limits`` notation (``"100/second"``);
empty: unlimited. A value that does not parse stops the service with one line saying why."""


class PrincipalRateLimit:
    """Requests per principal in moving windows, e.g. ``"100/second;3000/minute"`` (``limits``
    notation): ``default`` for every principal without a limit of its own (None: unlimited).
    Counted in this process: with several pods each allows the limit."""

    def __init__(self, default: str | None) -> None:
        self.default: tuple[RateLimitItem, ...] = parse_rate_limit(default) if default else ()
        self._own: dict[str, tuple[RateLimitItem, ...]] = {}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def items(self, own: str | None) -> tuple[RateLimitItem, ...]:
        """The windows for a principal whose own limit is ``own`` (None: the default)."""
        if own is None:
            return self.default
        items = self._own.get(own)
        if items is None:
            items = self._own[own] = parse_rate_limit(own)
        return items

    def retry_after(
        self, principal_id: str, own: str | None = None
    ) -> tuple[RateLimitItem, float] | None:
        """Count one request of the principal ``principal_id`` (whose own limit is ``own``); None
        if allowed, else the limit hit and the seconds until the window lets another request
        through."""
        items = self.items(own)
        for item in items:  # a refused call counts against no window
            if not self._limiter.test(item, principal_id):
                reset_at = self._limiter.get_window_stats(item, principal_id).reset_time
                return item, max(0.0, reset_at - time.time())
        for item in items:
            self._limiter.hit(item, principal_id)
        return None


def rate_limited_status(
    *, limit: str, retry_after_seconds: float, subject: str = "principal"
) -> grpc.Status:
    """RESOURCE_EXHAUSTED with the exceeded limit (``QuotaFailure`` on ``subject``, e.g.
    ``"principal:acme-erp"``) and when to retry."""
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject=subject, description=f"more than {limit} requests"
            )
        ]
    )
    return rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        RESOURCE_EXHAUSTED_MESSAGE,
        quota,
        retry_info(retry_after_seconds),
    )


__all__ = [
    "RESOURCE_EXHAUSTED_MESSAGE",
    "PrincipalRateLimit",
    "RateLimitSetting",
    "parse_rate_limit",
    "rate_limited_status",
]
