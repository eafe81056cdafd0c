"""Intake: a work order submitted by an external platform becomes exactly one work order.

Two layers of idempotency:

- the submission's event id is claimed (per source platform: CloudEvents ids are unique only
  within their source) in the transaction that creates the work order, so a redelivered record
  has no effect;
- the external key (tenant, source platform, external id) is unique in the store, so the same
  external order sent again with a new event id is acknowledged without a second work order
  (and without writing anything).

The new work order, its first timeline entry, the claim and the outgoing ``workorder.received``
event are written in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

from fixloop_orders.app.ports import (
    ExternalOrderConflictError,
    WorkOrderRepository,
    utc_now,
)
from fixloop_orders.domain.intake import SourceBindings
from fixloop_orders.domain.work_order import ExternalOrderKey, WorkOrder
from fixloop_shared.contracts.events import WorkOrderReceived, WorkOrderSubmitted
from fixloop_shared.envelope import Event
from fixloop_shared.store import Store
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


class SourceNotBoundError(Exception):
    """The event's source platform is not bound to the tenant it names."""

    def __init__(self, source: str, tenant: str) -> None:
        super().__init__(
            f"source platform {source!r} may not submit work orders for tenant {tenant!r}"
        )
        self.source = source
        self.tenant = tenant


class IntakeOutcome(StrEnum):
    CREATED = "created"
    REDELIVERED = "redelivered"
    ALREADY_RECEIVED = "already_received"


@dataclass(frozen=True, slots=True)
class IntakeResult:
    outcome: IntakeOutcome
    work_order_id: str | None = None


def intake_consumer(service: str, source_platform: str) -> str:
    """The claim scope of a submission: event ids are unique only per source platform.

    A source is a URI-reference and may contain ``:`` (``urn:a``), the separator of the claim key
    ``<scope>:<event id>``; it is percent-encoded here so that no source and id can be read as
    another source and id (``urn:a`` + ``b:c`` against ``urn:a:b`` + ``c``). Sources without
    ``:`` or ``%`` (every source before URI-references) keep their scope unchanged.
    """
    return f"{service}:intake:{quote(source_platform, safe='/')}"


def received_event(order: WorkOrder) -> WorkOrderReceived:
    details = order.details
    return WorkOrderReceived(
        **{name: getattr(details, name) for name in type(details).model_fields},
        work_order_id=order.work_order_id,
        tenant=order.tenant,
        source_platform=order.source_platform,
        received_at=order.received_at,
    )


class WorkOrderIntake:
    """Turns ``workorder.submitted`` events into work orders."""

    def __init__(
        self,
        store: Store,
        orders: WorkOrderRepository,
        bindings: SourceBindings,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._orders = orders
        self._bindings = bindings
        self._clock = clock
        self._new_id = new_id

    async def submit(self, event: Event[WorkOrderSubmitted]) -> IntakeResult:
        envelope = event.envelope
        if not self._bindings.allows(envelope.source, envelope.tenant):
            raise SourceNotBoundError(envelope.source, envelope.tenant)
        try:
            return await self._submit_once(event)
        except ExternalOrderConflictError:
            # Another instance stored the same external order first; this attempt was rolled
            # back. Once more: it now finds that order and acknowledges the submission.
            return await self._submit_once(event)

    async def _submit_once(self, event: Event[WorkOrderSubmitted]) -> IntakeResult:
        envelope = event.envelope
        consumer = intake_consumer(self._store.service, envelope.source)
        key = ExternalOrderKey.of_submission(
            event.payload, tenant=envelope.tenant, source_platform=envelope.source
        )
        # Settled from committed state without a transaction: a redelivery or a copy of an
        # order already received has nothing to write.
        if await self._orders.was_processed(consumer, envelope.id):
            return IntakeResult(IntakeOutcome.REDELIVERED)
        existing = await self._orders.find_id_by_key(None, key)
        if existing is not None:
            return self._already_received(existing, key, envelope.id)

        async with self._store.transaction() as uow:
            if not await uow.claim(envelope, consumer=consumer):
                return IntakeResult(IntakeOutcome.REDELIVERED)
            existing = await self._orders.find_id_by_key(uow, key)
            if existing is not None:
                return self._already_received(existing, key, envelope.id)
            order = WorkOrder.receive(
                work_order_id=self._new_id(),
                tenant=envelope.tenant,
                source_platform=envelope.source,
                details=event.payload,
                received_at=self._clock(),
                submission_id=envelope.id,
            )
            await self._orders.add(uow, order)
            uow.emit(
                received_event(order),
                topic=Topic.WORKORDERS_EVENTS,
                key=order.work_order_id,
                tenant=order.tenant,
                correlationid=envelope.correlationid,
            )
        log.info(
            "work order received",
            extra={
                "work_order_id": order.work_order_id,
                "source_platform": key.source_platform,
                "external_id": key.external_id,
            },
        )
        return IntakeResult(IntakeOutcome.CREATED, order.work_order_id)

    @staticmethod
    def _already_received(work_order_id: str, key: ExternalOrderKey, event_id: str) -> IntakeResult:
        log.info(
            "external order already received; submission acknowledged",
            extra={
                "work_order_id": work_order_id,
                "source_platform": key.source_platform,
                "external_id": key.external_id,
                "event_id": event_id,
            },
        )
        return IntakeResult(IntakeOutcome.ALREADY_RECEIVED, work_order_id)


__all__ = [
    "IntakeOutcome",
    "IntakeResult",
    "SourceNotBoundError",
    "WorkOrderIntake",
    "intake_consumer",
    "received_event",
]
