"""Requests per tenant in moving windows; a call over the limit ends with RESOURCE_EXHAUSTED.

:class:`~fixloop_shared.grpc_edge.auth.ApiKeyAuthInterceptor` applies the limit once it knows
the caller's tenant, before the request is read.
"""

from __future__ import annotations

import time
from typing import NoReturn

import grpc
from google.rpc import error_details_pb2
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from fixloop_shared.grpc_edge.errors import abort_with_details, retry_info

RESOURCE_EXHAUSTED_MESSAGE = "request rate limit exceeded, retry later"


class TenantRateLimit:
    """Requests per tenant in moving windows, e.g. ``"50/second;1000/minute"`` (``limits``
    notation). Counted in this process: with several pods each allows the limit."""

    def __init__(self, spec: str) -> None:
        self.items: tuple[RateLimitItem, ...] = tuple(parse_many(spec))
        if not self.items:
            msg = f"no rate limit in {spec!r}"
            raise ValueError(msg)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, tenant: str) -> tuple[RateLimitItem, float] | None:
        """Count one request of ``tenant``; None if allowed, else the limit hit and the seconds
        until the window lets another request through."""
        for item in self.items:  # a refused call counts against no window
            if not self._limiter.test(item, tenant):
                reset_at = self._limiter.get_window_stats(item, tenant).reset_time
                return item, max(0.0, reset_at - time.time())
        for item in self.items:
            self._limiter.hit(item, tenant)
        return None


async def abort_rate_limited(
    context: grpc.aio.ServicerContext, *, limit: str, retry_after_seconds: float
) -> NoReturn:
    """RESOURCE_EXHAUSTED with the exceeded limit (``QuotaFailure``) and when to retry."""
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject="tenant", description=f"more than {limit} requests"
            )
        ]
    )
    await abort_with_details(
        context,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        RESOURCE_EXHAUSTED_MESSAGE,
        quota,
        retry_info(retry_after_seconds),
    )


__all__ = ["RESOURCE_EXHAUSTED_MESSAGE", "TenantRateLimit", "abort_rate_limited"]
