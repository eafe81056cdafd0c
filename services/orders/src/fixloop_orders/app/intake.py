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

from fixloop_orders.app.ports import WorkOrderRepository, utc_now
from fixloop_orders.domain import details as domain
from fixloop_orders.domain.intake import SourceBindings
from fixloop_orders.domain.work_order import ExternalOrderKey, WorkOrder
from fixloop_shared import contracts
from fixloop_shared.contracts import WorkOrderReceived, WorkOrderSubmitted
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.errors import UnauthorizedSource
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


class SourceNotBoundError(UnauthorizedSource):
    """The event's source platform is not bound to the tenant it names."""

    def __init__(self, source: str, tenant: str) -> None:
        super().__init__(
            f"source platform {source!r} may not submit work orders for tenant {tenant!r}"
        )
        self.source = source
        self.tenant = tenant


class IntakeOutcome(StrEnum):
    CREATED = "created"
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


def work_order_details(submission: contracts.WorkOrderDetails) -> domain.WorkOrderDetails:
    """The details of a submitted (or received) work order, as the domain knows them."""
    site, address = submission.site, submission.site.address
    equipment, requester = submission.equipment, submission.requester
    return domain.WorkOrderDetails(
        external_id=submission.external_id,
        site=domain.Site(
            site_id=site.site_id,
            name=site.name,
            address=domain.Address(
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                postal_code=address.postal_code,
                country=address.country,
            ),
            timezone=site.timezone,
        ),
        equipment=domain.Equipment(
            equipment_id=equipment.equipment_id,
            equipment_class=equipment.equipment_class,
            manufacturer=equipment.manufacturer,
            model=equipment.model,
        ),
        category=submission.category,
        priority=submission.priority,
        description=submission.description,
        requester=domain.Requester(
            name=requester.name,
            email=str(requester.email),
            phone=requester.phone,
            locale=requester.locale,
            sms_consent=requester.sms_consent,
        ),
        required_parts=tuple(
            domain.PartLine(part_number=line.part_number, quantity=line.quantity)
            for line in submission.required_parts
        ),
        reported_at=submission.reported_at,
    )


def received_event(order: WorkOrder) -> WorkOrderReceived:
    """The ``workorder.received`` event telling every service what was received."""
    details = order.details
    site, address = details.site, details.site.address
    equipment, requester = details.equipment, details.requester
    return WorkOrderReceived(
        external_id=details.external_id,
        site=contracts.Site(
            site_id=site.site_id,
            name=site.name,
            address=contracts.Address(
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                postal_code=address.postal_code,
                country=address.country,
            ),
            timezone=site.timezone,
        ),
        equipment=contracts.Equipment(
            equipment_id=equipment.equipment_id,
            equipment_class=equipment.equipment_class,
            manufacturer=equipment.manufacturer,
            model=equipment.model,
        ),
        category=details.category,
        priority=details.priority,
        description=details.description,
        requester=contracts.Requester(
            name=requester.name,
            email=requester.email,
            phone=requester.phone,
            locale=requester.locale,
            sms_consent=requester.sms_consent,
        ),
        required_parts=[
            contracts.PartLine(part_number=line.part_number, quantity=line.quantity)
            for line in details.required_parts
        ],
        reported_at=details.reported_at,
        work_order_id=order.work_order_id,
        tenant=order.tenant,
        source_platform=order.source_platform,
        received_at=order.received_at,
        follow_up_of=order.follow_up_of,
    )


class WorkOrderIntake:
    """Turns ``workorder.submitted`` events into work orders."""

    def __init__(
        self,
        service: str,
        orders: WorkOrderRepository,
        bindings: SourceBindings,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._service = service
        self._orders = orders
        self._bindings = bindings
        self._clock = clock
        self._new_id = new_id

    @property
    def service(self) -> str:
        return self._service

    def claim_scope(self, envelope: EventEnvelope) -> str:
        return intake_consumer(self._service, envelope.source)

    def check_source(self, event: Event[WorkOrderSubmitted]) -> None:
        """The source platform must be bound to the tenant it submits for."""
        envelope = event.envelope
        if not self._bindings.allows(envelope.source, envelope.tenant):
            raise SourceNotBoundError(envelope.source, envelope.tenant)

    async def submitted(self, event: Event[WorkOrderSubmitted], uow: UnitOfWork) -> IntakeResult:
        """Store the submission as a new work order, unless its external order is known."""
        envelope = event.envelope
        self.check_source(event)
        return await self.receive(
            uow,
            tenant=envelope.tenant,
            source_platform=envelope.source,
            details=work_order_details(event.payload),
            submission_id=envelope.id,
            submission_type=WorkOrderSubmitted.event_type,
            correlationid=envelope.correlationid,
        )

    async def receive(
        self,
        uow: UnitOfWork,
        *,
        tenant: str,
        source_platform: str,
        details: domain.WorkOrderDetails,
        submission_id: str,
        submission_type: str,
        correlationid: str | None = None,
    ) -> IntakeResult:
        """Store a submitted work order (from any edge), unless its external order is known."""
        key = ExternalOrderKey.of_submission(
            details, tenant=tenant, source_platform=source_platform
        )
        existing = await self._orders.find_id_by_key(uow, key)
        if existing is not None:
            return self._already_received(existing, key, submission_id)
        order = WorkOrder.receive(
            work_order_id=self._new_id(),
            tenant=tenant,
            source_platform=source_platform,
            details=details,
            received_at=self._clock(),
            submission_id=submission_id,
            submission_type=submission_type,
        )
        await self._orders.add(uow, order)
        uow.emit(
            received_event(order),
            topic=Topic.WORKORDERS_EVENTS,
            key=order.work_order_id,
            tenant=order.tenant,
            correlationid=correlationid,
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
    "work_order_details",
]
