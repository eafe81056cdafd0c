"""The delivery of one notification: from pending to sent or failed, never dropped.

A delivery is recorded pending when its event is consumed. Attempts follow until one succeeds
or the retry policy gives up, and then it is marked sent or failed, with the last error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_notifications.domain.sms import OutgoingSms
from fixloop_notifications.domain.webhooks import OutgoingWebhook
from fixloop_shared.vocabulary import Channel

OutgoingMessage = OutgoingMail | OutgoingSms | OutgoingWebhook
"""What is sent, per channel: an e-mail, a text message or a signed HTTP call."""

_NOTIFICATION_NAMESPACE = uuid.UUID("4f3c2a0e-5d7b-5c1e-9a2f-6b8d0e1f2a3c")

ERROR_MAX_LENGTH = 500
"""Errors are kept and published up to this length (the contracts' short-text limit)."""

MAX_REPORTED_ATTEMPTS = 100
"""The contracts' upper bound on a notification's attempt count."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def notification_id_for(
    work_order_id: str | None, event_id: str, recipient_key: str, channel: Channel
) -> str:
    """The id of the notification a fact causes for one recipient on one channel: the same for
    every redelivery of the event, so no one is told the same fact twice on the same channel."""
    name = f"{work_order_id or '-'}/{event_id}/{recipient_key}/{channel.value}"
    return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, name))


def summarize_error(text: str) -> str:
    """An error message fit for the record and the event: one line, bounded, never empty."""
    line = " ".join(text.split()) or "unknown error"
    if len(line) <= ERROR_MAX_LENGTH:
        return line
    return line[: ERROR_MAX_LENGTH - 1] + "…"


class DeliveryError(Exception):
    """An attempt failed. ``permanent`` failures are not retried: retrying cannot help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = summarize_error(detail)
        self.permanent = permanent


def smtp_reply_is_permanent(code: int) -> bool:
    """RFC 5321: 5yz replies are permanent failures; 4yz are transient."""
    return 500 <= code <= 599


@dataclass(frozen=True)
class RetryPolicy:
    """How long a notification is tried and how long to wait between attempts.

    Waits double from ``base_seconds`` up to ``max_seconds`` with "equal jitter" (half the wait
    fixed, half random), so deliveries that failed together do not come back together. A
    delivery is tried until ``horizon_seconds`` after it became due (or ``attempts`` attempts),
    then it is failed — and can still be retried by hand.
    """

    base_seconds: float
    max_seconds: float
    horizon_seconds: float = 24 * 3600.0
    attempts: int = MAX_REPORTED_ATTEMPTS

    def __post_init__(self) -> None:
        if self.attempts < 1:
            msg = "a notification gets at least one attempt"
            raise ValueError(msg)

    def wait_before(self, retry: int, jitter: float = 1.0) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry); ``jitter`` in
        [0, 1] picks where in the upper half of the doubled, capped wait it falls."""
        if retry < 1:
            return 0.0
        ceiling = float(min(self.max_seconds, self.base_seconds * 2 ** min(retry - 1, 60)))
        return ceiling / 2 + ceiling / 2 * min(1.0, max(0.0, jitter))

    def gives_up(self, *, attempts: int, due_since: datetime, now: datetime) -> bool:
        """True once the delivery has had its attempts or its time (it is failed then)."""
        return attempts >= self.attempts or now - due_since >= timedelta(
            seconds=self.horizon_seconds
        )


def delivery_target(delivery: Delivery) -> str:
    """What a delivery depends on to get through: its channel, or its webhook endpoint (one
    endpoint down says nothing of another)."""
    message = delivery.message
    if isinstance(message, OutgoingWebhook):
        return f"webhook:{message.endpoint_id}"
    return delivery.channel.value


@dataclass(frozen=True)
class Delivery:
    """One notification to one recipient over one channel, and where its delivery stands."""

    notification_id: str
    event_id: str
    event_type: str
    tenant: str
    correlation_id: str
    work_order_id: str | None
    channel: Channel
    template: str
    locale: str
    """The locale the message was written in (after fallback)."""
    requested_locale: str
    message: OutgoingMessage
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    not_before: datetime | None = None
    """Held until then (the recipient's quiet hours); None: due when recorded."""
    recipient_key: str = ""
    """Who it is for, among the order's recipients (``requester``, ``contractor:<id>``,
    ``desk``, ``webhook:<endpoint>``)."""
    urgent: bool = False

    @property
    def mail(self) -> OutgoingMail:
        """The e-mail of an e-mail delivery."""
        if not isinstance(self.message, OutgoingMail):
            msg = f"delivery {self.notification_id} is a {self.channel.value}, not an e-mail"
            raise TypeError(msg)
        return self.message

    @property
    def due_since(self) -> datetime:
        """When it became due (its retry horizon counts from then)."""
        return self.not_before or self.created_at

    @property
    def recipient(self) -> str:
        message = self.message
        if isinstance(message, OutgoingMail):
            return message.recipient.address
        if isinstance(message, OutgoingSms):
            return message.to
        return message.url

    @property
    def reported_recipient(self) -> str:
        """Who it went to, as the outcome events say it: the address or number, or for a
        webhook its endpoint's id (a URL may carry a token in its path)."""
        message = self.message
        if isinstance(message, OutgoingWebhook):
            return message.endpoint_id
        return self.recipient

    @property
    def aggregate_key(self) -> str:
        """The Kafka key of the events about this delivery: its work order, if it has one."""
        return self.work_order_id or self.notification_id

    @property
    def reported_attempts(self) -> int:
        return max(1, min(self.attempts, MAX_REPORTED_ATTEMPTS))
