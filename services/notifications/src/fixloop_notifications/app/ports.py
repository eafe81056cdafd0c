"""What the use cases need from the outside world: a mail relay and a delivery log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from fixloop_notifications.domain.delivery import Delivery, DeliveryError, DeliveryStatus
from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_shared.kernel import UnitOfWork


class MailSender(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Hand ``mail`` to the relay; raise :class:`DeliveryError` when it was not accepted."""


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
