"""Mutations of the partner API: one effect and one answer per ``request_id``.

A mutation runs in one unit of work that also records its answer under (principal, request id).
A retry with the same request id finds that answer and returns it as it was, without running the
mutation again; the same request id with a different request is refused (INVALID_ARGUMENT), since
the caller has confused two requests. Two copies racing each other: one commits, the other's
record collides, and its retry finds the first one's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from fixloop_orders.app.ports import RecordedAnswer, RequestLog
from fixloop_orders.domain.lifecycle import Actor
from fixloop_shared.errors import FieldViolation, InvalidInput
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE, abort_deadline_exceeded
from fixloop_shared.grpc_edge.principals import Principal, PrincipalKind
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work
from fixloop_shared.vocabulary import ActorKind

R = TypeVar("R", bound=Message)

DEFAULT_MUTATION_TIMEOUT_SECONDS = 10.0

ACTOR_KINDS = {
    PrincipalKind.PARTNER: ActorKind.REQUESTER,
    PrincipalKind.OPERATOR: ActorKind.OPERATOR,
    PrincipalKind.CONTRACTOR: ActorKind.CONTRACTOR,
}


def actor_of(principal: Principal) -> Actor:
    """Who a principal is in the lifecycle: a contractor acts as its contractor."""
    kind = ACTOR_KINDS[principal.kind]
    if kind is ActorKind.CONTRACTOR:
        return Actor(kind, principal.contractor_id)
    return Actor(kind, principal.id)


def fingerprint(request: Message) -> str:
    """What identifies a request apart from its ``request_id`` (deterministic bytes' digest)."""
    copy = type(request)()
    copy.CopyFrom(request)
    if copy.DESCRIPTOR.fields_by_name.get("request_id") is not None:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class Mutations:
    """Runs mutations once per (principal, request id)."""

    def __init__(
        self,
        units: UnitsOfWork,
        requests: RequestLog,
        *,
        clock: Callable[[], datetime],
        timeout_seconds: float = DEFAULT_MUTATION_TIMEOUT_SECONDS,
    ) -> None:
        self._units = units
        self._requests = requests
        self._clock = clock
        self._timeout = timeout_seconds

    async def run(
        self,
        context: grpc.aio.ServicerContext,
        principal: Principal,
        *,
        request: Message,
        request_id: str,
        response_type: type[R],
        mutate: Callable[[UnitOfWork], Awaitable[R]],
    ) -> R:
        """The answer to ``request``: recorded before, or ``mutate``'s (recorded with it)."""
        print_ = fingerprint(request)

        async def work(uow: UnitOfWork) -> bytes:
            recorded = await self._requests.find(uow, principal.id, request_id)
            if recorded is not None:
                if recorded.fingerprint != print_:
                    raise InvalidInput(
                        INVALID_ARGUMENT_MESSAGE,
                        [
                            FieldViolation(
                                "request_id",
                                "was used before for a different request: use a new one",
                            )
                        ],
                    )
                return recorded.answer
            answer = (await mutate(uow)).SerializeToString(deterministic=True)
            await self._requests.record(
                uow,
                principal.id,
                request_id,
                RecordedAnswer(fingerprint=print_, answer=answer),
                at=self._clock(),
            )
            return answer

        remaining: float | None = context.time_remaining()
        budget = self._timeout if remaining is None else min(remaining, self._timeout)
        if budget <= 0:
            await abort_deadline_exceeded(context)
        try:
            async with asyncio.timeout(budget):
                answer = await in_unit_of_work(self._units, work)
        except TimeoutError:
            await abort_deadline_exceeded(context)
        return response_type.FromString(answer)


__all__ = ["ACTOR_KINDS", "Mutations", "actor_of", "fingerprint"]
