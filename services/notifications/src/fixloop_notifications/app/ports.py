"""What the use cases need from the outside world: channels, the delivery log, what is known of
orders and recipients, signed links and webhook endpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from fixloop_notifications.domain.delivery import Delivery, DeliveryError, DeliveryStatus
from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_notifications.domain.notices import ContractorCard, NoticeOrder, Recipient
from fixloop_notifications.domain.preferences import RecipientPreferences
from fixloop_notifications.domain.sms import OutgoingSms
from fixloop_notifications.domain.webhooks import OutgoingWebhook, WebhookEndpoint
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.vocabulary import Channel


class MailSender(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Hand ``mail`` to the relay; raise :class:`DeliveryError` when it was not accepted."""


class SmsSender(Protocol):
    async def send(self, sms: OutgoingSms) -> str | None:
        """Hand ``sms`` to the provider (its message id, if it gives one); raise
        :class:`DeliveryError` when it was not accepted."""


class WebhookCaller(Protocol):
    async def send(self, webhook: OutgoingWebhook) -> None:
        """Call the endpoint, signed; raise :class:`DeliveryError` when it did not answer 2xx."""


class NoticeDirectory(Protocol):
    """What is known of orders and contractors, read and kept within a unit of work."""

    async def order(self, uow: UnitOfWork, work_order_id: str) -> NoticeOrder | None: ...
    async def save_order(self, uow: UnitOfWork, order: NoticeOrder) -> None: ...
    async def contractor(self, uow: UnitOfWork, contractor_id: str) -> ContractorCard | None: ...
    async def save_contractor(self, uow: UnitOfWork, card: ContractorCard) -> None: ...
    async def order_of(self, work_order_id: str) -> NoticeOrder | None: ...
    async def park(self, uow: UnitOfWork, work_order_id: str, event: Event[Any]) -> None:
        """Keep an event about an order not received yet, until it is."""

    async def parked(self, uow: UnitOfWork, work_order_id: str) -> list[Event[Any]]:
        """The events kept for the order, in the order they came."""

    async def unpark(self, uow: UnitOfWork, work_order_id: str) -> None:
        """Forget the events kept for the order (they were handled)."""


class PreferenceBook(Protocol):
    async def get(self, tenant: str, address: str) -> RecipientPreferences | None:
        """A recipient's recorded preferences (None: none recorded)."""


class LinkMaker(Protocol):
    """Signed, expiring links the messages carry."""

    def link(
        self,
        purpose: str,
        *,
        order: NoticeOrder,
        recipient: Recipient,
        issued_at: datetime,
        expires_at: datetime | None = None,
    ) -> str:
        """The ``survey``, ``verify`` or ``reject`` link of ``order`` for ``recipient``
        (verify and reject work until ``expires_at``)."""

    def survey_expires_at(self, issued_at: datetime) -> datetime:
        """Until when a survey link issued at ``issued_at`` works."""

    def unsubscribe(
        self,
        *,
        tenant: str,
        address: str,
        kind: str | None,
        channel: Channel,
        locale: str,
        timezone: str,
        issued_at: datetime,
    ) -> str:
        """The one-click unsubscribe link from ``kind`` notices on ``channel``."""


class WebhookEndpoints(Protocol):
    async def endpoints_for(self, tenant: str, event_type: str) -> list[WebhookEndpoint]:
        """The tenant's enabled endpoints that take ``event_type``."""


class DeliveryLog(Protocol):
    """Every delivery and every attempt, durable. Claims are leases, so several workers (pods)
    share the pending deliveries and a worker that died gives its deliveries back."""

    async def add(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """Record a new pending delivery within ``uow``'s transaction."""

    async def claim_next(
        self, *, owner: str, now: datetime, lease_until: datetime
    ) -> Delivery | None:
        """Lease the oldest pending delivery nobody holds, or None if there is none."""

    async def begin_attempt(
        self, notification_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> int | None:
        """Count one more attempt and extend the lease; the attempt's number, or None if the
        delivery is no longer pending or no longer leased by ``owner``."""

    async def begin_attempts(
        self, notification_ids: Sequence[str], *, owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, int]:
        """:meth:`begin_attempt` for several deliveries in one write: the attempt number of each
        one still pending and leased by ``owner``."""

    async def finish_sent(
        self,
        uow: UnitOfWork,
        attempts: Mapping[str, int],
        *,
        owner: str,
        at: datetime,
    ) -> bool:
        """Mark these deliveries (id -> the attempt that sent it) sent and log those attempts,
        within ``uow``, in a few writes; False (and the unit of work must be left) if any of them
        is no longer pending and leased by ``owner``."""

    async def record_attempt(
        self,
        notification_id: str,
        *,
        attempt: int,
        at: datetime,
        error: DeliveryError | None,
        uow: UnitOfWork | None = None,
    ) -> None:
        """Log the outcome of one attempt (within ``uow``'s transaction if one is given)."""

    async def hold(self, notification_id: str, *, owner: str, until: datetime) -> None:
        """Keep a delivery ``owner`` leases out of reach until ``until`` (its next attempt), when
        any worker may claim it."""

    async def release(self, notification_id: str, *, owner: str, now: datetime) -> None:
        """Give a lease back early, so the delivery is picked up again at once."""

    async def finish(
        self,
        uow: UnitOfWork,
        notification_id: str,
        *,
        owner: str,
        status: DeliveryStatus,
        at: datetime,
        error: str | None,
    ) -> bool:
        """Mark a delivery leased by ``owner`` sent or failed; False if it was not pending."""

    async def get(self, notification_id: str) -> Delivery | None:
        """One delivery as it stands."""

    async def resume(self, target: str, *, now: datetime) -> int:
        """Make the deliveries waiting for a retry on ``target`` (a channel, or
        ``webhook:<endpoint>``) due now; how many."""
