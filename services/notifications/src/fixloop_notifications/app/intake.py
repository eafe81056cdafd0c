"""Consuming domain events: each one becomes the deliveries it causes, recorded durably.

The event is claimed (idempotent consumer), what it teaches about the order or contractor is
kept, and its deliveries are recorded pending — all in one transaction, before the consumer
commits its offset. Sending happens later, in the delivery worker, so a slow or unreachable
channel never holds up consumption.

For each notice the rules decide (:mod:`fixloop_notifications.domain.notices`), a delivery is
recorded per channel the recipient can be reached on and has not opted out of: e-mail always
(when there is an address), SMS with recorded consent and a valid number. A notice that is not
urgent, due in the recipient's quiet hours, is held until they end. Every lifecycle event of a
tenant's orders also goes to the tenant's webhook endpoints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fixloop_notifications.app.ports import (
    DeliveryLog,
    LinkMaker,
    NoticeDirectory,
    PreferenceBook,
    WebhookEndpoints,
)
from fixloop_notifications.domain.delivery import Delivery, notification_id_for
from fixloop_notifications.domain.mail import Mailbox, OutgoingMail, message_id_for
from fixloop_notifications.domain.notices import (
    ContractorCard,
    Desk,
    Fact,
    Known,
    Notice,
    NoticeOrder,
    OrderUnknown,
    notices_for,
    webhook_disabled_notice,
)
from fixloop_notifications.domain.preferences import default_preferences, is_essential
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_notifications.domain.sms import InvalidPhone, OutgoingSms, fit_sms, normalize_phone
from fixloop_notifications.domain.templates import MessageTemplates
from fixloop_notifications.domain.webhooks import OutgoingWebhook
from fixloop_shared.contracts import (
    AssignmentOffered,
    ContractorContact,
    ContractorCredentialExpiring,
    WorkOrderAssigned,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event, to_structured
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork
from fixloop_shared.vocabulary import Channel

log = logging.getLogger(__name__)

WEBHOOK_EVENT_PREFIXES = ("fixloop.workorder.",)
"""Events a tenant's webhook endpoints get: every lifecycle event of its orders."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def received_order(event: Event[WorkOrderReceived]) -> NoticeOrder:
    """The order a ``workorder.received`` event tells of, as the notices need it."""
    payload = event.payload
    site, address, requester = payload.site, payload.site.address, payload.requester
    lines = [address.line1, *([address.line2] if address.line2 else [])]
    lines += [f"{address.postal_code} {address.city}", address.country]
    make = " ".join(p for p in (payload.equipment.manufacturer, payload.equipment.model) if p)
    return NoticeOrder(
        work_order_id=payload.work_order_id,
        tenant=event.envelope.tenant,
        external_id=payload.external_id,
        source_platform=payload.source_platform,
        requester_name=requester.name,
        requester_email=str(requester.email),
        requester_phone=requester.phone,
        requester_sms_consent=requester.sms_consent,
        requester_locale=requester.locale,
        site_name=site.name,
        site_city=address.city,
        site_country=address.country,
        site_address=tuple(lines),
        site_timezone=site.timezone,
        equipment_id=payload.equipment.equipment_id,
        equipment_class=payload.equipment.equipment_class,
        equipment_make=make or None,
        priority=payload.priority.value,
        category=payload.category.value,
        description=payload.description,
        received_at=payload.received_at,
        reported_at=payload.reported_at,
    )


def fact_of(event: Event[Any]) -> Fact:
    """An event as the notice rules read it."""
    envelope = event.envelope
    return Fact(
        event_id=envelope.id,
        event_type=envelope.type,
        tenant=envelope.tenant,
        occurred_at=envelope.time,
        data=event.payload.model_dump(mode="python"),
    )


def _card(contractor_id: str, name: str, contact: ContractorContact | None) -> ContractorCard:
    return ContractorCard(
        contractor_id=contractor_id,
        name=name,
        email=str(contact.email) if contact else None,
        phone=contact.phone if contact else None,
        timezone=contact.timezone if contact else None,
    )


@dataclass(frozen=True)
class SmsSettings:
    sender: str
    """The sender id or number texts come from."""
    max_segments: int = 3


class WorkOrderNotifications:
    """Turns consumed events into recorded deliveries (the consumer's handlers)."""

    def __init__(
        self,
        *,
        deliveries: DeliveryLog,
        directory: NoticeDirectory,
        catalog: MessageTemplates,
        sender: Mailbox,
        desks: Mapping[str, Desk],
        preferences: PreferenceBook,
        links: LinkMaker,
        webhooks: WebhookEndpoints | None,
        sms: SmsSettings,
        quiet_hours: QuietHours,
        on_recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _utc_now,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._directory = directory
        self._catalog = catalog
        self._sender = sender
        self._desks = desks
        self._preferences = preferences
        self._links = links
        self._webhooks = webhooks
        self._sms = sms
        self._quiet = quiet_hours
        self._on_recorded = on_recorded
        self._clock = clock
        self._skipped = Counter(
            "fixloop_notices_skipped",
            "Notices not recorded, by reason",
            ["reason"],
            registry=metrics or CollectorRegistry(),
        )

    # -- the consumer's handler -------------------------------------------------------------
    async def on_event(self, event: Event[Any], uow: UnitOfWork) -> list[Delivery]:
        """Record what ``event`` causes: the order's notices and the tenant's webhook calls."""
        envelope = event.envelope
        fact = fact_of(event)
        order = await self._learn(event, fact, uow)
        deliveries = await self._notices(event, fact, order, uow)
        if isinstance(event.payload, WorkOrderReceived) and order is not None:
            # Facts about this order that came before it (another topic, read earlier).
            for waiting in await self._directory.parked(uow, order.work_order_id):
                earlier = fact_of(waiting)
                known = await self._learn(waiting, earlier, uow)
                deliveries += await self._notices(waiting, earlier, known, uow)
            await self._directory.unpark(uow, order.work_order_id)
        if self._webhooks is not None and envelope.type.startswith(WEBHOOK_EVENT_PREFIXES):
            deliveries += await self._webhook_calls(event, order)
        for delivery in deliveries:
            await self._deliveries.add(uow, delivery)
        if deliveries:
            uow.after_commit(self._on_recorded)
            log.info(
                "notifications recorded",
                extra={"event_id": envelope.id, "notifications": len(deliveries)},
            )
        return deliveries

    async def _notices(
        self, event: Event[Any], fact: Fact, order: NoticeOrder | None, uow: UnitOfWork
    ) -> list[Delivery]:
        """The deliveries of the notices ``fact`` causes. A fact about an order not received
        yet is kept until the order arrives (its events travel on another topic), never
        retried in place: that would hold up the very topic the order comes on."""
        envelope = event.envelope
        contractor_id = fact.data.get("contractor_id")
        contractor = (
            await self._directory.contractor(uow, str(contractor_id)) if contractor_id else None
        )
        known = Known(order=order, desk=self._desks.get(fact.tenant), contractor=contractor)
        try:
            notices = notices_for(fact, known)
        except OrderUnknown:
            assert fact.work_order_id is not None  # noqa: S101 - only order facts raise it
            await self._directory.park(uow, fact.work_order_id, event)
            log.info(
                "notice waits for its order",
                extra={"event_id": envelope.id, "work_order_id": fact.work_order_id},
            )
            self._skipped.labels("waiting_for_order").inc()
            return []
        deliveries: list[Delivery] = []
        for notice in notices:
            deliveries += await self.deliveries_for(
                notice,
                event_id=envelope.id,
                event_type=envelope.type,
                tenant=envelope.tenant,
                correlation_id=envelope.correlationid,
                order=order,
            )
        return deliveries

    async def _learn(self, event: Event[Any], fact: Fact, uow: UnitOfWork) -> NoticeOrder | None:
        """Keep what the event tells about its order or contractor; the order as known now."""
        payload = event.payload
        if isinstance(payload, WorkOrderReceived):
            order = received_order(event)
            await self._directory.save_order(uow, order)
            return order
        if (
            isinstance(payload, AssignmentOffered | ContractorCredentialExpiring)
            and payload.contact is not None
        ):
            card = _card(payload.contractor_id, payload.contractor_name, payload.contact)
            await self._directory.save_contractor(uow, card)
        work_order_id = fact.work_order_id
        if work_order_id is None:
            return None
        known = await self._directory.order(uow, work_order_id)
        if known is None or known.tenant != fact.tenant:
            return None
        if isinstance(payload, WorkOrderAssigned) and payload.contractor_id:
            assigned = await self._directory.contractor(uow, payload.contractor_id)
            if assigned is None:
                assigned = ContractorCard(contractor_id=payload.contractor_id, name="")
            known = _with_contractor(known, assigned)
            await self._directory.save_order(uow, known)
        return known

    # -- one notice -> its deliveries -------------------------------------------------------
    async def deliveries_for(
        self,
        notice: Notice,
        *,
        event_id: str,
        event_type: str,
        tenant: str,
        correlation_id: str,
        order: NoticeOrder | None,
    ) -> list[Delivery]:
        """The deliveries of one notice: one per channel its recipient is reached on."""
        recipient = notice.recipient
        now = self._clock()
        work_order_id = order.work_order_id if order else None
        deliveries: list[Delivery] = []
        channels = self._catalog.channels(notice.kind)
        essential = is_essential(notice.kind)
        # The signed links are the same on every channel: made once.
        shared = dict(notice.values)
        if order is not None:
            for purpose in sorted(notice.links):
                shared[f"{purpose}_url"] = self._links.link(
                    purpose,
                    order=order,
                    recipient=recipient,
                    issued_at=now,
                    expires_at=notice.values.get("verify_by"),
                )
        if "survey" in notice.links:
            shared["survey_expires_at"] = self._links.survey_expires_at(now)
        for channel in (Channel.EMAIL, Channel.SMS):
            if channel not in channels:
                continue
            address = recipient.email if channel is Channel.EMAIL else recipient.phone
            if not address:
                continue
            if channel is Channel.SMS:
                try:
                    address = normalize_phone(address, recipient.country)
                except InvalidPhone as exc:
                    log.warning(
                        "no text message: the number is not valid",
                        extra={"event_id": event_id, "kind": notice.kind, "error": str(exc)},
                    )
                    self._skipped.labels("invalid_phone").inc()
                    continue
            preferences = await self._preferences.get(tenant, address) or default_preferences(
                tenant, address
            )
            if not preferences.allows(
                notice.kind,
                channel,
                essential=essential,
                sms_consent_on_order=recipient.sms_consent,
            ):
                no_consent = channel is Channel.SMS and not preferences.consents_to_sms(
                    on_order=recipient.sms_consent
                )
                self._skipped.labels("no_sms_consent" if no_consent else "opted_out").inc()
                continue
            quiet = preferences.quiet_hours or self._quiet
            held = None if notice.urgent else quiet.held_until(now, recipient.timezone)
            values = dict(shared)
            notification_id = notification_id_for(work_order_id, event_id, recipient.key, channel)
            values["unsubscribe_url"] = (
                self._links.unsubscribe(
                    tenant=tenant,
                    address=address,
                    # An essential notice goes out despite an opt-out of its kind: its link
                    # stops every kind on the channel.
                    kind=None if essential else notice.kind,
                    channel=channel,
                    locale=recipient.locale,
                    timezone=recipient.timezone,
                    issued_at=now,
                )
                if channel is Channel.EMAIL
                else None
            )
            rendered = self._catalog.render(
                notice.kind,
                recipient.locale,
                channel=channel,
                values=values,
                timezone=recipient.timezone,
            )
            message: OutgoingMail | OutgoingSms
            if channel is Channel.EMAIL:
                message = OutgoingMail(
                    message_id=message_id_for(notification_id, self._sender.domain),
                    sender=self._sender,
                    recipient=Mailbox(address=address, name=recipient.name),
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    language=rendered.locale,
                    date=held or now,
                    unsubscribe_url=values["unsubscribe_url"],
                )
            else:
                text, segments = fit_sms(rendered.text, self._sms.max_segments)
                message = OutgoingSms(
                    message_id=notification_id,
                    to=address,
                    sender=self._sms.sender,
                    text=text,
                    segments=segments,
                )
            deliveries.append(
                Delivery(
                    notification_id=notification_id,
                    event_id=event_id,
                    event_type=event_type,
                    tenant=tenant,
                    correlation_id=correlation_id,
                    work_order_id=work_order_id,
                    channel=channel,
                    template=notice.kind,
                    locale=rendered.locale,
                    requested_locale=recipient.locale,
                    message=message,
                    created_at=now,
                    not_before=held,
                    recipient_key=recipient.key,
                    urgent=notice.urgent,
                )
            )
        return deliveries

    async def _webhook_calls(self, event: Event[Any], order: NoticeOrder | None) -> list[Delivery]:
        assert self._webhooks is not None  # noqa: S101 - checked by the caller
        envelope = event.envelope
        endpoints = await self._webhooks.endpoints_for(envelope.tenant, envelope.type)
        if not endpoints:
            return []
        body = json.dumps(to_structured(envelope, event.payload), ensure_ascii=False)
        now = self._clock()
        work_order_id = (
            order.work_order_id if order else event.payload.model_dump().get("work_order_id")
        )
        calls = []
        for endpoint in endpoints:
            key = f"webhook:{endpoint.endpoint_id}"
            notification_id = notification_id_for(work_order_id, envelope.id, key, Channel.WEBHOOK)
            calls.append(
                Delivery(
                    notification_id=notification_id,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    tenant=envelope.tenant,
                    correlation_id=envelope.correlationid,
                    work_order_id=work_order_id,
                    channel=Channel.WEBHOOK,
                    template=envelope.type,
                    locale="",
                    requested_locale="",
                    message=OutgoingWebhook(
                        webhook_id=f"msg_{notification_id.replace('-', '')}",
                        endpoint_id=endpoint.endpoint_id,
                        url=endpoint.url,
                        event_type=envelope.type,
                        body=body,
                    ),
                    created_at=now,
                    recipient_key=key,
                    urgent=True,
                )
            )
        return calls

    # -- the desk is told of a disabled endpoint ----------------------------------------------
    async def endpoint_disabled(
        self,
        units: UnitsOfWork,
        *,
        tenant: str,
        endpoint_id: str,
        endpoint_url: str,
        failures: int,
        failing_since: datetime,
    ) -> Sequence[Delivery]:
        """Record the notice telling the tenant's desk that an endpoint was disabled."""
        desk = self._desks.get(tenant)
        if desk is None:
            log.warning(
                "webhook endpoint disabled; the tenant has no desk to tell",
                extra={"tenant": tenant, "endpoint_id": endpoint_id},
            )
            return []
        notice = webhook_disabled_notice(
            desk, endpoint_url=endpoint_url, failures=failures, failing_since=failing_since
        )
        fact_id = f"webhook-disabled:{endpoint_id}:{int(failing_since.timestamp())}"
        deliveries = await self.deliveries_for(
            notice,
            event_id=fact_id,
            event_type="fixloop.webhook.disabled",
            tenant=tenant,
            correlation_id=endpoint_id,
            order=None,
        )
        deliveries = [
            d for d in deliveries if await self._deliveries.get(d.notification_id) is None
        ]
        if not deliveries:
            return []
        async with units.transaction() as uow:
            for delivery in deliveries:
                await self._deliveries.add(uow, delivery)
            uow.after_commit(self._on_recorded)
        return deliveries


def _with_contractor(order: NoticeOrder, card: ContractorCard) -> NoticeOrder:
    return replace(order, contractor=card)
