"""Requests per principal in moving windows; a call over the limit ends with RESOURCE_EXHAUSTED.

:class:`~fixloop_shared.grpc_edge.auth.ApiKeyAuthInterceptor` applies the limit once it knows
the calling principal (:mod:`~fixloop_shared.grpc_edge.principals`), before the request is read.
Each principal has its own budget: two integrations of one tenant do not starve each other, and
a contractor app serving several tenants has one budget, not one per tenant.
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


class PrincipalRateLimit:
    """Requests per principal in moving windows, e.g. ``"50/second;1000/minute"`` (``limits``
    notation). Counted in this process: with several pods each allows the limit."""

    def __init__(self, spec: str) -> None:
        self.items: tuple[RateLimitItem, ...] = tuple(parse_many(spec))
        if not self.items:
            msg = f"no rate limit in {spec!r}"
            raise ValueError(msg)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, principal_id: str) -> tuple[RateLimitItem, float] | None:
        """Count one request of the principal ``principal_id``; None if allowed, else the limit
        hit and the seconds until the window lets another request through."""
        for item in self.items:  # a refused call counts against no window
            if not self._limiter.test(item, principal_id):
                reset_at = self._limiter.get_window_stats(item, principal_id).reset_time
                return item, max(0.0, reset_at - time.time())
        for item in self.items:
            self._limiter.hit(item, principal_id)
        return None


async def abort_rate_limited(
    context: grpc.aio.ServicerContext,
    *,
    limit: str,
    retry_after_seconds: float,
    subject: str = "principal",
) -> NoReturn:
    """RESOURCE_EXHAUSTED with the exceeded limit (``QuotaFailure`` on ``subject``, e.g.
    ``"principal:acme-erp"``) and when to retry."""
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject=subject, description=f"more than {limit} requests"
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


__all__ = ["RESOURCE_EXHAUSTED_MESSAGE", "PrincipalRateLimit", "abort_rate_limited"]
