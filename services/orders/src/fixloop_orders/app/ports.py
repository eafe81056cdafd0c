"""What the use cases need from storage, implemented by the MongoDB adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from fixloop_orders.domain.work_order import ExternalOrderKey, WorkOrder
from fixloop_shared.errors import TransientError
from fixloop_shared.kernel import UnitOfWork


class ExternalOrderConflictError(TransientError):
    """Another work order with the same external key was stored first (a concurrent intake).

    Transient: applied again, the submission finds that order and is acknowledged.
    """


class ConcurrentUpdateError(TransientError):
    """The work order changed between load and save; the handler is applied again."""


class WorkOrderRepository(Protocol):
    """Work orders of the write side.

    Reads take the caller's unit of work, or None to read committed state outside a
    transaction; writes always happen inside one.
    """

    async def find_id_by_key(self, uow: UnitOfWork | None, key: ExternalOrderKey) -> str | None:
        """The id of the work order with this external key, if one was stored."""
        ...

    async def get(
        self, uow: UnitOfWork | None, tenant: str, work_order_id: str
    ) -> WorkOrder | None:
        """The tenant's work order, or None (also when it belongs to another tenant)."""
        ...

    async def get_job(
        self, uow: UnitOfWork | None, contractor_id: str, work_order_id: str
    ) -> WorkOrder | None:
        """The work order if it is assigned to this contractor (of any tenant), else None."""
        ...

    async def load(self, uow: UnitOfWork, tenant: str, work_order_ids: Sequence[str]) -> None:
        """Read these work orders of the tenant in one go, so that :meth:`get` finds them in the
        unit of work without another read (a batch's events about many orders)."""
        ...

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        """Store a new work order and its timeline entries.

        Raises :class:`ExternalOrderConflictError` if its external key is taken; the unit of work
        is then unusable and must be left (rolled back).
        """
        ...

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        """Store a loaded work order's changes and append its new timeline entries.

        Raises :class:`ConcurrentUpdateError` if it changed since it was loaded (the store no
        longer holds ``order.stored_version``).
        """
        ...

    async def append_timeline(self, uow: UnitOfWork, order: WorkOrder) -> None:
        """Append a loaded work order's new timeline entries, leaving the order as stored (notes:
        what other services report changes nothing, so it never conflicts with a change)."""
        ...


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """An offer of a work order to a contractor, as the orders service knows it (from the
    contractors service's ``assignment.offered``), and how it ended."""

    offer_id: str
    tenant: str
    work_order_id: str
    contractor_id: str
    contractor_name: str
    offered_at: datetime
    expires_at: datetime
    status: OfferStatus = OfferStatus.OPEN
    settled_at: datetime | None = None

    def is_open_at(self, moment: datetime) -> bool:
        return self.status is OfferStatus.OPEN and moment < self.expires_at


class OfferBook(Protocol):
    """Offers made to contractors, for them to accept or decline through the partner API."""

    async def add(self, uow: UnitOfWork, offer: OfferRecord) -> None:
        """Record a new offer (an offer already recorded stays as it is)."""
        ...

    async def get(self, uow: UnitOfWork | None, offer_id: str) -> OfferRecord | None: ...

    async def settle(
        self, uow: UnitOfWork, offer_id: str, status: OfferStatus, at: datetime
    ) -> bool:
        """End an open offer as ``status``; False if it was not open any more."""
        ...


class TimerKind(StrEnum):
    """The lifecycle's own timers, fired by the due-work scheduler."""

    AUTO_VERIFY = "auto_verify"
    CLOSE = "close"
    ARCHIVE = "archive"


class LifecycleTimers(Protocol):
    """Moments at which the system takes a step on its own (one timer per order and kind)."""

    async def set(
        self, uow: UnitOfWork, *, tenant: str, work_order_id: str, kind: TimerKind, at: datetime
    ) -> None:
        """Set (or move) the order's timer of this kind."""
        ...

    async def clear(self, uow: UnitOfWork, work_order_id: str, kind: TimerKind) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """The first answer to a mutation with a ``request_id``: returned again for a retry."""

    fingerprint: str
    answer: bytes


class RequestLog(Protocol):
    """Answers to mutations by (principal, request id), so that a retry has one effect."""

    async def find(
        self, uow: UnitOfWork | None, principal_id: str, request_id: str
    ) -> RecordedAnswer | None: ...

    async def record(
        self,
        uow: UnitOfWork,
        principal_id: str,
        request_id: str,
        answer: RecordedAnswer,
        *,
        at: datetime,
    ) -> None:
        """Record the answer with the mutation's other writes. Raises
        :class:`ConcurrentUpdateError` (transient) if the same request was recorded meanwhile."""
        ...


def utc_now() -> datetime:
    """The current time in UTC to the millisecond, the precision the store keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


__all__ = [
    "ConcurrentUpdateError",
    "ExternalOrderConflictError",
    "LifecycleTimers",
    "OfferBook",
    "OfferRecord",
    "OfferStatus",
    "RecordedAnswer",
    "RequestLog",
    "TimerKind",
    "WorkOrderRepository",
    "utc_now",
]
