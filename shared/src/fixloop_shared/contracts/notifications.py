"""Events of the notifications service (``fixloop.notifications.events.v1``): delivery outcomes."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, Locale, ShortText
from fixloop_shared.vocabulary import Channel


class NotificationOutcome(Contract):
    notification_id: Identifier
    work_order_id: Identifier | None = None
    channel: Channel
    recipient: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(
        description=(
            "who it went to: an e-mail address, an E.164 phone number (sms), or the webhook "
            "endpoint's id (webhook)"
        )
    )
    template: Identifier = Field(description="the notice's kind, or the event type (webhook)")
    locale: Locale | None = Field(
        default=None, description="the language written in (none: webhook)"
    )
    attempts: Annotated[int, Field(ge=1, le=100)]


class NotificationSent(EventPayload, NotificationOutcome):
    event_type: ClassVar[str] = "fixloop.notification.sent.v1"
    summary: ClassVar[str] = "Notification delivered to the recipient's channel"

    sent_at: AwareDatetime


class NotificationFailed(EventPayload, NotificationOutcome):
    event_type: ClassVar[str] = "fixloop.notification.failed.v1"
    summary: ClassVar[str] = "Notification could not be delivered after retries"

    error: ShortText
    failed_at: AwareDatetime


__all__ = [
    "Channel",
    "NotificationFailed",
    "NotificationOutcome",
    "NotificationSent",
]
