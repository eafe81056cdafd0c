"""What the use cases need from storage, implemented by the MongoDB adapters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
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

        Raises :class:`ConcurrentUpdateError` if it changed since it was loaded.
        """
        ...

    async def append_timeline(self, uow: UnitOfWork, order: WorkOrder) -> None:
        """Append a loaded work order's new timeline entries, leaving the order as stored (notes:
        what other services report changes nothing, so it never conflicts with a change)."""
        ...


def utc_now() -> datetime:
    """The current time in UTC to the millisecond, the precision the store keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


__all__ = [
    "ConcurrentUpdateError",
    "ExternalOrderConflictError",
    "WorkOrderRepository",
    "utc_now",
]
