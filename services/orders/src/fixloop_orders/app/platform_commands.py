"""Commands of external platforms on the inbound topic: cancel, verify or reject their own orders.

The platform names its order by its own ``external_id``; the order must be one that this
platform (the event's ``source``, bound to the event's tenant) submitted — any other looks
unknown (dead letter ``unknown-work-order``). A command the order's state does not allow is a
dead letter ``illegal-transition``. A command that asks for what is already so (cancel a
cancelled order, verify verified work) is acknowledged without a second effect, so a platform
that re-sends a command it is unsure about does no harm.

The requester's own verdict through the signed link of the completion notice
(``fixloop.feedback.completion_answered.v1``, published by notifications) takes the same verify or
reject step, with the requester as actor and ``via="events"``, and is treated the same way: done
already is acknowledged, a verdict the order's state no longer allows is a dead letter.
"""

from __future__ import annotations

import logging

from fixloop_orders.app.lifecycle import WorkOrderLifecycle, platform_actor
from fixloop_orders.domain.lifecycle import Actor, Request, Step
from fixloop_orders.domain.work_order import ExternalOrderKey
from fixloop_shared.contracts import (
    CancellationRequested,
    CompletionAnswered,
    CompletionRejected,
    CompletionVerdict,
    CompletionVerified,
    EventPayload,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.vocabulary import ActorKind, WorkOrderState

log = logging.getLogger(__name__)

ALREADY_DONE: dict[type[EventPayload], frozenset[WorkOrderState]] = {
    CancellationRequested: frozenset({WorkOrderState.CANCELLED}),
    CompletionVerified: frozenset(
        {WorkOrderState.VERIFIED, WorkOrderState.CLOSED, WorkOrderState.ARCHIVED}
    ),
}
"""States in which a command has nothing left to do (it was done before)."""

REQUESTER_LINK = Actor(ActorKind.REQUESTER, "requester-link")
"""The requester answering through the signed link of a notice."""

REJECTED_THROUGH_LINK = "Rejected by the requester through the link in the completion notice"
"""The reason of a rejection whose requester gave none."""


class PlatformCommands:
    """Applies the inbound commands of source platforms to their orders."""

    def __init__(self, lifecycle: WorkOrderLifecycle) -> None:
        self._lifecycle = lifecycle

    async def handle(
        self,
        event: Event[CancellationRequested] | Event[CompletionVerified] | Event[CompletionRejected],
        uow: UnitOfWork,
    ) -> bool:
        """Apply the command; False when there was nothing left to do."""
        envelope, payload = event.envelope, event.payload
        key = ExternalOrderKey(envelope.tenant, envelope.source, payload.external_id)
        order = await self._lifecycle.order_of_platform(uow, key)
        if order.state in ALREADY_DONE.get(type(payload), frozenset()):
            log.info(
                "platform command already done",
                extra={"work_order_id": order.work_order_id, "event_type": envelope.type},
            )
            return False
        actor = platform_actor(envelope.source)
        at = self._lifecycle.now()
        request: Request
        if isinstance(payload, CancellationRequested):
            request = Request(Step.CANCEL, actor, at, reason=payload.reason)
        elif isinstance(payload, CompletionVerified):
            request = Request(Step.VERIFY, actor, at, note=payload.note)
        else:
            await self._lifecycle.reject(
                uow, order, actor, payload.reason, via="kafka", correlationid=envelope.correlationid
            )
            return True
        await self._lifecycle.take(
            uow, order, request, via="kafka", correlationid=envelope.correlationid
        )
        return True

    async def completion_answered(self, event: Event[CompletionAnswered], uow: UnitOfWork) -> bool:
        """Take the requester's verdict on completed work (verify or reject, ``via="events"``);
        False when there was nothing left to do (verified already)."""
        envelope, payload = event.envelope, event.payload
        order = await self._lifecycle.order_of_tenant(uow, envelope.tenant, payload.work_order_id)
        verified = payload.verdict is CompletionVerdict.VERIFIED
        if verified and order.state in ALREADY_DONE[CompletionVerified]:
            log.info(
                "requester's verdict already done",
                extra={"work_order_id": order.work_order_id, "state": order.state.value},
            )
            return False
        if not verified:
            reason = payload.reason or REJECTED_THROUGH_LINK
            await self._lifecycle.reject(
                uow,
                order,
                REQUESTER_LINK,
                reason,
                via="events",
                correlationid=envelope.correlationid,
            )
            return True
        request = Request(Step.VERIFY, REQUESTER_LINK, self._lifecycle.now())
        await self._lifecycle.take(
            uow, order, request, via="events", correlationid=envelope.correlationid
        )
        return True


__all__ = ["ALREADY_DONE", "REQUESTER_LINK", "PlatformCommands"]
