"""What the use cases need from storage; the Mongo adapters implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fixloop_parts.domain import (
    Allocation,
    LineSettlement,
    PartDemand,
    PartsSettlement,
    ReservationPlan,
    SourceStock,
    StockLevel,
    StockMovement,
    Warehouse,
)
from fixloop_shared.errors import TransientError
from fixloop_shared.kernel import UnitOfWork

StockKey = tuple[str, str]
"""(warehouse_id, part_number)"""


class StockChanged(Exception):  # noqa: N818 - names the situation, like a domain event
    """The stock changed between reading and writing it (a concurrent reservation or count)."""


class ReservationsNotWrittenYet(TransientError):  # noqa: N818 - the situation
    """A work order's reservations were made in this very unit of work and are written when it
    commits, so they cannot be settled in it (a batch holding both the order's reception and its
    cancellation or completion): the kernel applies the batch's events one at a time instead."""


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


@dataclass(frozen=True)
class OrderReservations:
    """A work order's reservation lines as found for settling them."""

    work_order_id: str
    active: tuple[Allocation, ...]
    """The lines still reserved (neither released nor consumed)."""
    settled: bool
    """True if the order's parts were settled already (released or consumed): nothing more to
    do for it, whatever lines are found."""


@dataclass(frozen=True)
class SettlementRecord:
    """How a work order's parts were settled, as recorded once per work order."""

    work_order_id: str
    tenant: str
    outcome: str
    """``released`` (cancelled) or ``consumed`` (work completed)."""
    settlement: PartsSettlement
    taken: tuple[Allocation, ...]
    """Units used without a reservation and taken out of a warehouse's available stock."""
    ignored: tuple[PartDemand, ...]
    """Units used without a reservation that no warehouse had available (stock left alone)."""
    reason: str | None
    settled_at: datetime
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

    async def move(self, uow: UnitOfWork, movement: StockMovement) -> bool:
        """Apply ``movement`` to its stock line in one conditional update, only if no quantity
        goes negative; False if it would (or the line does not exist). What :meth:`load` read
        is kept up to date."""
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

    async def load_reservations(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        """Read the reservation lines and settlements of these work orders in one go, for
        :meth:`reservations_of` in the same unit of work."""
        ...

    async def reservations_of(
        self, uow: UnitOfWork, work_order_id: str, *, tenant: str
    ) -> OrderReservations:
        """The work order's reservation lines of ``tenant`` (another tenant's are never found);
        :class:`ReservationsNotWrittenYet` if they were made in this unit of work."""
        ...

    async def settle(
        self, uow: UnitOfWork, work_order_id: str, line: LineSettlement, *, event_id: str
    ) -> bool:
        """End one reservation line as ``line`` says, only if it is still active; False if it
        was settled already (or is not found)."""
        ...

    async def record_settlement(self, uow: UnitOfWork, record: SettlementRecord) -> None:
        """Record how the work order's parts were settled (once per work order)."""
        ...
