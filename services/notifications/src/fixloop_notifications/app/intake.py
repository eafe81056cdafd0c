"""Consuming domain events: each one becomes the deliveries it causes, recorded durably.

The event is claimed (idempotent consumer) and its deliveries are recorded pending in one
transaction, before the consumer commits its offset. Sending happens later, in the delivery
worker, so a slow or unreachable mail relay never holds up consumption.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fixloop_notifications.app.ports import DeliveryLog
from fixloop_notifications.domain.confirmations import plan_receipt_confirmation
from fixloop_notifications.domain.delivery import Delivery
from fixloop_notifications.domain.mail import Mailbox
from fixloop_notifications.domain.templates import MessageTemplates
from fixloop_notifications.domain.work_order import PostalAddress, ReceivedWorkOrder
from fixloop_shared.contracts import WorkOrderReceived
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def received_work_order(event: WorkOrderReceived) -> ReceivedWorkOrder:
    """The work order a ``workorder.received`` event tells of, as the domain knows it."""
    site, address = event.site, event.site.address
    return ReceivedWorkOrder(
        work_order_id=event.work_order_id,
        tenant=event.tenant,
        source_platform=event.source_platform,
        external_id=event.external_id,
        requester_name=event.requester.name,
        requester_email=str(event.requester.email),
        requester_locale=event.requester.locale,
        site_name=site.name,
        site_address=PostalAddress(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country=address.country,
        ),
        site_timezone=site.timezone,
        equipment_id=event.equipment.equipment_id,
        equipment_class=event.equipment.equipment_class,
        equipment_manufacturer=event.equipment.manufacturer,
        equipment_model=event.equipment.model,
        category=event.category,
        priority=event.priority,
        description=event.description,
        reported_at=event.reported_at,
        received_at=event.received_at,
    )


class WorkOrderNotifications:
    def __init__(
        self,
        *,
        deliveries: DeliveryLog,
        catalog: MessageTemplates,
        sender: Mailbox,
        on_recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._deliveries = deliveries
        self._catalog = catalog
        self._sender = sender
        self._on_recorded = on_recorded
        self._clock = clock

    async def work_order_received(
        self, event: Event[WorkOrderReceived], uow: UnitOfWork
    ) -> Delivery:
        """Record the requester's receipt confirmation (sent by the delivery worker)."""
        envelope = event.envelope
        delivery = plan_receipt_confirmation(
            received_work_order(event.payload),
            event_id=envelope.id,
            event_type=envelope.type,
            tenant=envelope.tenant,
            correlation_id=envelope.correlationid,
            catalog=self._catalog,
            sender=self._sender,
            now=self._clock(),
        )
        await self._deliveries.add(uow, delivery)
        uow.after_commit(self._on_recorded)
        log.info(
            "notification recorded",
            extra={
                "notification_id": delivery.notification_id,
                "work_order_id": delivery.work_order_id,
                "template": delivery.template,
                "locale": delivery.locale,
            },
        )
        return delivery
