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
from fixloop_notifications.domain.mail import Mailbox
from fixloop_notifications.domain.templates import TemplateCatalog
from fixloop_shared.contracts.events import WorkOrderReceived
from fixloop_shared.envelope import EventEnvelope
from fixloop_shared.store import Store

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WorkOrderNotifications:
    def __init__(
        self,
        *,
        store: Store,
        deliveries: DeliveryLog,
        catalog: TemplateCatalog,
        sender: Mailbox,
        on_recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._deliveries = deliveries
        self._catalog = catalog
        self._sender = sender
        self._on_recorded = on_recorded
        self._clock = clock

    async def work_order_received(self, envelope: EventEnvelope, order: WorkOrderReceived) -> bool:
        """Record the requester's receipt confirmation; False if the event was seen before."""
        delivery = plan_receipt_confirmation(
            order,
            event_id=envelope.id,
            event_type=envelope.type,
            tenant=envelope.tenant,
            correlation_id=envelope.correlationid,
            catalog=self._catalog,
            sender=self._sender,
            now=self._clock(),
        )
        async with self._store.transaction() as uow:
            if not await uow.claim(envelope):
                log.info("event already processed", extra={"event_id": envelope.id})
                return False
            await self._deliveries.add(uow, delivery)
        log.info(
            "notification recorded",
            extra={
                "notification_id": delivery.notification_id,
                "work_order_id": delivery.work_order_id,
                "template": delivery.template,
                "locale": delivery.locale,
            },
        )
        self._on_recorded()
        return True
