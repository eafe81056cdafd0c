"""The notifications Fixloop sends when something happens to a work order.

Each function here turns one event into the delivery it causes (who, which template, which
language, the rendered message), without I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fixloop_notifications.domain.clock_display import format_moment
from fixloop_notifications.domain.delivery import Delivery, notification_id_for
from fixloop_notifications.domain.mail import Mailbox, OutgoingMail, message_id_for
from fixloop_notifications.domain.templates import MessageTemplates, single_line
from fixloop_notifications.domain.vocabulary import category_label, priority_label
from fixloop_notifications.domain.work_order import ReceivedWorkOrder
from fixloop_shared.vocabulary import Channel

RECEIPT_TEMPLATE = "workorder_received"


def receipt_values(order: ReceivedWorkOrder, locale: str) -> dict[str, Any]:
    """What the receipt templates show, in ``locale`` and the site's time zone."""
    zone = order.site_timezone
    make = " ".join(part for part in (order.equipment_manufacturer, order.equipment_model) if part)
    return {
        "requester_name": single_line(order.requester_name),
        "reference": order.work_order_id,
        "external_id": order.external_id,
        "source_platform": order.source_platform,
        "site_name": single_line(order.site_name),
        "site_address": order.site_address.lines,
        "site_timezone": zone,
        "equipment_id": order.equipment_id,
        "equipment_class": order.equipment_class,
        "equipment_make": make or None,
        "priority": priority_label(order.priority, locale),
        "category": category_label(order.category, locale),
        "description": order.description,
        "reported_at": (
            format_moment(order.reported_at, zone, locale) if order.reported_at else None
        ),
        "received_at": format_moment(order.received_at, zone, locale),
    }


def plan_receipt_confirmation(
    order: ReceivedWorkOrder,
    *,
    event_id: str,
    event_type: str,
    tenant: str,
    correlation_id: str,
    catalog: MessageTemplates,
    sender: Mailbox,
    now: datetime,
) -> Delivery:
    """The e-mail telling the requester that their repair request was received."""
    requested = order.requester_locale
    # Words and dates follow the requested locale as far as they are known (de-AT writes
    # "Jänner"); the template is the best available translation.
    message = catalog.render(RECEIPT_TEMPLATE, requested, receipt_values(order, requested))
    channel = Channel.EMAIL
    notification_id = notification_id_for(event_id, RECEIPT_TEMPLATE, channel)
    mail = OutgoingMail(
        message_id=message_id_for(notification_id, sender.domain),
        sender=sender,
        recipient=Mailbox(address=order.requester_email, name=order.requester_name),
        subject=message.subject,
        text=message.text,
        html=message.html,
        language=message.locale,
        date=now,
    )
    return Delivery(
        notification_id=notification_id,
        event_id=event_id,
        event_type=event_type,
        tenant=tenant,
        correlation_id=correlation_id,
        work_order_id=order.work_order_id,
        channel=channel,
        template=RECEIPT_TEMPLATE,
        locale=message.locale,
        requested_locale=requested,
        mail=mail,
        created_at=now,
    )
