"""The delivery of one notification: from pending to sent or failed, never dropped.

A delivery is recorded pending when its event is consumed. Attempts follow until one succeeds
or the retry policy gives up, and then it is marked sent or failed, with the last error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_shared.vocabulary import Channel

_NOTIFICATION_NAMESPACE = uuid.UUID("4f3c2a0e-5d7b-5c1e-9a2f-6b8d0e1f2a3c")

ERROR_MAX_LENGTH = 500
"""Errors are kept and published up to this length (the contracts' short-text limit)."""

MAX_REPORTED_ATTEMPTS = 100
"""The contracts' upper bound on a notification's attempt count."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def notification_id_for(event_id: str, template: str, channel: Channel) -> str:
    """The id of the notification an event causes: the same for every redelivery of the event."""
    return str(uuid.uuid5(_NOTIFICATION_NAMESPACE, f"{event_id}/{template}/{channel.value}"))


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
    """How many attempts a notification gets and how long to wait between them."""

    attempts: int
    base_seconds: float
    max_seconds: float

    def __post_init__(self) -> None:
        if self.attempts < 1:
            msg = "a notification gets at least one attempt"
            raise ValueError(msg)

    def attempts_left(self, attempts_made: int) -> int:
        """Attempts still allowed. A delivery picked up again after a crash gets at least one,
        so a message whose sending was interrupted is always sent (again) and recorded."""
        return max(1, self.attempts - attempts_made)

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry): doubling, capped."""
        if retry < 1:
            return 0.0
        return float(min(self.max_seconds, self.base_seconds * 2 ** (retry - 1)))


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
    mail: OutgoingMail
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str | None = None

    @property
    def recipient(self) -> str:
        return self.mail.recipient.address

    @property
    def aggregate_key(self) -> str:
        """The Kafka key of the events about this delivery: its work order, if it has one."""
        return self.work_order_id or self.notification_id

    @property
    def reported_attempts(self) -> int:
        return max(1, min(self.attempts, MAX_REPORTED_ATTEMPTS))
