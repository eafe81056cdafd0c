"""The delivery log and a mail relay in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The delivery log keeps the MongoDB one's promises: a delivery is recorded pending with the
unit of work that consumed its event; leases (owner and expiry) let only their holder count
attempts, give it back or finish it; finishing is part of the unit of work that emits the
outcome event. Lease writes, and attempts logged without a unit of work, change the committed
state directly, as the MongoDB ones write outside any transaction. Pending deliveries are found
in the committed state (:meth:`MemoryDeliveryLog.pending`, :meth:`MemoryDeliveryLog.claim_next`),
so a delivery is attempted by calling
:meth:`~fixloop_notifications.app.dispatch.DeliveryWorker.deliver` without the due-work
scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fixloop_notifications.adapters.mongo import DELIVERIES, DELIVERY_ATTEMPTS, IN_FLIGHT, NO_OWNER
from fixloop_notifications.domain.delivery import (
    Delivery,
    DeliveryError,
    DeliveryStatus,
    delivery_target,
)
from fixloop_notifications.domain.mail import OutgoingMail
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork


def _session(uow: UnitOfWork) -> MemoryState:
    if not isinstance(uow, MemoryUnitOfWork):
        msg = f"the in-memory repository was given {type(uow).__name__}"
        raise TypeError(msg)
    return uow.session


def _unleased() -> dict[str, Any]:
    return {"lease_owner": NO_OWNER, "lease_until": None}


def _leased_by(doc: dict[str, Any] | None, owner: str) -> bool:
    return (
        doc is not None
        and doc["delivery"].status is DeliveryStatus.PENDING
        and doc["lease_owner"] == owner
    )


class MemoryDeliveryLog:
    """The :class:`~fixloop_notifications.app.ports.DeliveryLog` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def _committed(self) -> dict[str, dict[str, Any]]:
        return self._store.state.collection(DELIVERIES)

    async def add(self, uow: UnitOfWork, delivery: Delivery) -> None:
        deliveries = _session(uow).collection(DELIVERIES)
        if delivery.notification_id in deliveries:
            msg = f"delivery {delivery.notification_id} is recorded already"
            raise ValueError(msg)
        held = {"lease_until": delivery.not_before} if delivery.not_before else {}
        deliveries[delivery.notification_id] = {"delivery": delivery, **_unleased(), **held}

    def pending(self, now: datetime | None = None) -> list[Delivery]:
        """The pending deliveries, oldest first; with ``now``, only those nobody holds then."""
        docs = [
            doc
            for doc in self._committed.values()
            if doc["delivery"].status is DeliveryStatus.PENDING
            and (now is None or doc["lease_until"] is None or doc["lease_until"] < now)
        ]
        deliveries: list[Delivery] = [doc["delivery"] for doc in docs]
        return sorted(deliveries, key=lambda d: (d.created_at, d.notification_id))

    async def claim_next(
        self, *, owner: str, now: datetime, lease_until: datetime
    ) -> Delivery | None:
        free = self.pending(now)
        if not free:
            return None
        doc = self._committed[free[0].notification_id]
        doc["lease_owner"], doc["lease_until"] = owner, lease_until
        delivery: Delivery = doc["delivery"]
        return delivery

    async def begin_attempt(
        self, notification_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> int | None:
        doc = self._committed.get(notification_id)
        if doc is None or not _leased_by(doc, owner):
            return None
        delivery: Delivery = doc["delivery"]
        number = delivery.attempts + 1
        doc["delivery"] = replace(delivery, attempts=number)
        doc["lease_until"], doc["last_attempt_at"] = lease_until, now
        self._store.state.collection(DELIVERY_ATTEMPTS)[f"{notification_id}:{number}"] = {
            "notification_id": notification_id,
            "attempt": number,
            "at": now,
            "outcome": IN_FLIGHT,
            "error": None,
        }
        return number

    async def begin_attempts(
        self, notification_ids: Sequence[str], *, owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, int]:
        numbers: dict[str, int] = {}
        for notification_id in notification_ids:
            number = await self.begin_attempt(
                notification_id, owner=owner, now=now, lease_until=lease_until
            )
            if number is not None:
                numbers[notification_id] = number
        return numbers

    async def finish_sent(
        self,
        uow: UnitOfWork,
        attempts: Mapping[str, int],
        *,
        owner: str,
        at: datetime,
    ) -> bool:
        for notification_id, attempt in attempts.items():
            if not await self.finish(
                uow, notification_id, owner=owner, status=DeliveryStatus.SENT, at=at, error=None
            ):
                return False
            await self.record_attempt(notification_id, attempt=attempt, at=at, error=None, uow=uow)
        return True

    async def record_attempt(
        self,
        notification_id: str,
        *,
        attempt: int,
        at: datetime,
        error: DeliveryError | None,
        uow: UnitOfWork | None = None,
    ) -> None:
        state = self._store.state if uow is None else _session(uow)
        outcome = "sent" if error is None else ("permanent" if error.permanent else "transient")
        state.collection(DELIVERY_ATTEMPTS)[f"{notification_id}:{attempt}"] = {
            "notification_id": notification_id,
            "attempt": attempt,
            "at": at,
            "outcome": outcome,
            "error": None if error is None else error.detail,
        }
        doc = state.collection(DELIVERIES).get(notification_id)
        if error is not None and doc is not None:
            doc["delivery"] = replace(doc["delivery"], last_error=error.detail)

    async def hold(self, notification_id: str, *, owner: str, until: datetime) -> None:
        doc = self._committed.get(notification_id)
        if doc is not None and _leased_by(doc, owner):
            doc.update(lease_owner=NO_OWNER, lease_until=until)

    async def release(self, notification_id: str, *, owner: str, now: datetime) -> None:
        doc = self._committed.get(notification_id)
        if doc is not None and _leased_by(doc, owner):
            doc.update(_unleased(), updated_at=now)

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
        doc = _session(uow).collection(DELIVERIES).get(notification_id)
        if doc is None or not _leased_by(doc, owner):
            return False
        delivery: Delivery = doc["delivery"]
        failed = status is DeliveryStatus.FAILED
        doc["delivery"] = replace(
            delivery, status=status, last_error=error if failed else delivery.last_error
        )
        doc.update(_unleased(), finished_at=at)
        return True

    async def get(self, notification_id: str) -> Delivery | None:
        doc = self._committed.get(notification_id)
        return None if doc is None else doc["delivery"]

    async def resume(self, target: str, *, now: datetime) -> int:
        resumed = 0
        for doc in self._committed.values():
            delivery: Delivery = doc["delivery"]
            if (
                delivery.status is DeliveryStatus.PENDING
                and delivery_target(delivery) == target
                and doc["lease_owner"] == NO_OWNER
                and delivery.attempts > 0
                and doc["lease_until"] is not None
                and doc["lease_until"] > now
            ):
                doc["lease_until"] = now
                resumed += 1
        return resumed

    def attempts(self, notification_id: str) -> list[dict[str, Any]]:
        """The attempt log of one delivery, first attempt first."""
        logged = self._store.state.collection(DELIVERY_ATTEMPTS).values()
        return sorted(
            (entry for entry in logged if entry["notification_id"] == notification_id),
            key=lambda entry: int(entry["attempt"]),
        )


@dataclass
class MemoryMailRelay:
    """A :class:`~fixloop_notifications.app.ports.MailSender` that accepts every mail and keeps
    it, in the order sent."""

    sent: list[OutgoingMail] = field(default_factory=list)

    async def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)


__all__ = ["MemoryDeliveryLog", "MemoryMailRelay"]
