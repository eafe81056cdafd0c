"""Recording what other services report about a work order in its timeline.

Offers, parts reservations, SLA clocks and notifications are appended to the order's timeline,
once per event (the event id is claimed and is the entry's id). They do not move the order's
state, with one exception: the first offer (or the news that nobody could be offered it) means
dispatch is under way, so a ``received`` order moves to ``dispatching``. Offers are also kept in
the offer book, for contractors to accept or decline. An event is applied only to a work order of
the event's own tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from fixloop_orders.app.lifecycle import WorkOrderLifecycle, WorkOrderNotFoundError
from fixloop_orders.app.ports import OfferRecord, WorkOrderRepository, utc_now
from fixloop_orders.app.timeline_facts import timeline_fact
from fixloop_orders.domain.work_order import TimelineEntry, WorkOrder
from fixloop_shared.contracts import (
    AssignmentExpired,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    EventPayload,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork

log = logging.getLogger(__name__)


class TimelineRecorder:
    """Appends events about work orders to their timelines."""

    def __init__(
        self,
        orders: WorkOrderRepository,
        lifecycle: WorkOrderLifecycle,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._orders = orders
        self._lifecycle = lifecycle
        self._clock = clock

    async def preload(self, events: Sequence[Event[EventPayload]], uow: UnitOfWork) -> None:
        """Read the work orders a batch of events is about, one read per tenant."""
        wanted: dict[str, set[str]] = {}
        for event in events:
            fact = timeline_fact(event.payload)
            if fact is not None:
                wanted.setdefault(event.envelope.tenant, set()).add(fact.work_order_id)
        for tenant, ids in wanted.items():
            await self._orders.load(uow, tenant, sorted(ids))

    async def record(self, event: Event[EventPayload], uow: UnitOfWork) -> bool:
        """Append the event to its work order's timeline; False if there was nothing to do.

        Raises :class:`WorkOrderNotFoundError` if the event's tenant has no such work order.
        Work orders are stored before anything about them is published, so that is never a
        matter of waiting: the event is wrong (or aimed at another tenant's order).
        """
        fact = timeline_fact(event.payload)
        if fact is None:
            return False
        envelope = event.envelope
        order = await self._orders.get(uow, envelope.tenant, fact.work_order_id)
        if order is None:
            msg = (
                f"tenant {envelope.tenant!r} has no work order {fact.work_order_id!r}; "
                f"the {envelope.type} event cannot be recorded"
            )
            raise WorkOrderNotFoundError(msg)
        order.note(
            TimelineEntry(
                entry_id=envelope.id,
                at=fact.at,
                kind=fact.kind,
                summary=fact.summary,
                event_type=envelope.type,
                details=fact.details,
            ),
            recorded_at=self._clock(),
        )
        await self._follow(event, order, uow)
        await self._orders.append_timeline(uow, order)
        log.info(
            "timeline entry recorded",
            extra={"work_order_id": fact.work_order_id, "kind": fact.kind},
        )
        return True

    async def _follow(self, event: Event[EventPayload], order: WorkOrder, uow: UnitOfWork) -> None:
        """What an event means for the order beyond its timeline entry."""
        payload, correlationid = event.payload, event.envelope.correlationid
        if isinstance(payload, AssignmentOffered):
            offer = OfferRecord(
                offer_id=payload.offer_id,
                tenant=order.tenant,
                work_order_id=order.work_order_id,
                contractor_id=payload.contractor_id,
                contractor_name=payload.contractor_name,
                offered_at=payload.offered_at,
                expires_at=payload.expires_at,
            )
            await self._lifecycle.offered(uow, order, offer, correlationid=correlationid)
            if payload.assigned_by is not None:
                await self._lifecycle.assigned_by_operator(
                    uow,
                    order,
                    offer,
                    operator=payload.assigned_by,
                    reason=payload.reason,
                    correlationid=correlationid,
                )
        elif isinstance(payload, AssignmentUnfilled):
            await self._lifecycle.unfilled(
                uow, order, payload.decided_at, correlationid=correlationid
            )
        elif isinstance(payload, AssignmentWithdrawn):
            await self._lifecycle.withdrawn(uow, payload.offer_id, payload.withdrawn_at)
        elif isinstance(payload, AssignmentExpired):
            await self._lifecycle.expired(uow, payload.offer_id, payload.expired_at)


__all__ = ["TimelineRecorder", "WorkOrderNotFoundError"]
