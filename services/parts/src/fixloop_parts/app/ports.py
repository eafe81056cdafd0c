"""What the use cases need from storage; the Mongo adapters implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fixloop_parts.domain import Allocation, ReservationPlan, SourceStock, StockLevel, Warehouse
from fixloop_shared.kernel import UnitOfWork

StockKey = tuple[str, str]
"""(warehouse_id, part_number)"""


class StockChanged(Exception):  # noqa: N818 - names the situation, like a domain event
    """The stock changed between reading and writing it (a concurrent reservation or count)."""


@dataclass(frozen=True)
class CountedLine:
    """One line of a stock count: the level before (None if new) and after, plus its label."""

    before: StockLevel | None
    after: StockLevel
    description: str | None = None


@dataclass(frozen=True)
class ReservationDecision:
    """What was decided for one work order's parts, as recorded with the reservations."""

    work_order_id: str
    tenant: str
    site_country: str
    plan: ReservationPlan
    decided_at: datetime
    event_id: str


class StockRepository(Protocol):
    async def load(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> None:
        """Read the stock of these part numbers (and the warehouses) in one go, so that
        :meth:`sources` and :meth:`take` in the same unit of work need no more reads; what
        :meth:`take` moves is kept up to date there."""
        ...

    async def sources(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> list[SourceStock]:
        """Available stock of these part numbers in every warehouse, with its country."""
        ...

    async def take(self, uow: UnitOfWork, allocation: Allocation) -> bool:
        """Move units from available to reserved if they are still available; False if not."""
        ...

    async def warehouses(self, uow: UnitOfWork) -> dict[str, Warehouse]: ...

    async def levels(self, uow: UnitOfWork, keys: Sequence[StockKey]) -> dict[StockKey, StockLevel]:
        """The current levels of these (warehouse, part number) pairs that have a record."""
        ...

    async def save_warehouses(
        self, uow: UnitOfWork, warehouses: Sequence[Warehouse], *, at: datetime
    ) -> None: ...

    async def save_counts(
        self, uow: UnitOfWork, lines: Sequence[CountedLine], *, at: datetime
    ) -> None:
        """Write counted levels; raises :class:`StockChanged` if a level moved since it was read."""
        ...


class ReservationLog(Protocol):
    async def load(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        """Read which of these work orders were decided, in one go, for :meth:`decided`."""
        ...

    async def decided(self, uow: UnitOfWork, work_order_id: str) -> bool:
        """True if this work order's parts were already reserved or backordered."""
        ...

    async def record(self, uow: UnitOfWork, decision: ReservationDecision) -> None: ...
