"""Reads within a call's deadline: store trouble becomes DEADLINE_EXCEEDED or UNAVAILABLE.

:func:`bounded_read` runs a servicer's read for at most the call's remaining time and at most a
configured timeout (a caller without a deadline cannot hold a server slot for ever). A read that
runs out, or a store that times out, ends the call with DEADLINE_EXCEEDED; a store that cannot be
reached with UNAVAILABLE and a ``RetryInfo``. Any other error is raised as it is (the edge's
interceptor maps domain errors and turns the rest into INTERNAL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from pymongo.errors import ConnectionFailure, PyMongoError

from fixloop_shared.grpc_edge.errors import abort_deadline_exceeded, abort_unavailable

T = TypeVar("T")


async def bounded_read(
    context: grpc.aio.ServicerContext, timeout: float, read: Callable[[], Awaitable[T]]
) -> T:
    """Run ``read`` within the call's deadline and ``timeout`` seconds, mapping store trouble to
    DEADLINE_EXCEEDED or UNAVAILABLE."""
    remaining: float | None = context.time_remaining()
    budget = timeout if remaining is None else min(remaining, timeout)
    if budget <= 0:
        await abort_deadline_exceeded(context)
    try:
        async with asyncio.timeout(budget):
            return await read()
    except TimeoutError:
        await abort_deadline_exceeded(context)
    except PyMongoError as exc:
        if exc.timeout:
            await abort_deadline_exceeded(context)
        if isinstance(exc, ConnectionFailure):
            await abort_unavailable(context)
        raise


def is_canonical_uuid(value: str) -> bool:
    """True for a UUID in its canonical form: 36 characters, lowercase hex, hyphenated (the only
    form the APIs' ids take; anything else is refused before it reaches a query)."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


__all__ = [
    "bounded_read",
    "is_canonical_uuid",
]
