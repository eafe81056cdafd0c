"""Use case: import a stock count (warehouses and the on-hand quantity of each part number).

A count SETS the on-hand quantity of every (warehouse, part number) line it lists and keeps the
reservations already made: ``available = on_hand - reserved``. Lines it does not list are left as
they are. It is all or nothing: any problem (a duplicate line, a warehouse that is neither in the
file nor already known, a count below what is reserved) rejects the whole count, with one
problem per offending line, and nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fixloop_parts.app.ports import CountedLine, StockChanged, StockKey, StockRepository
from fixloop_parts.app.reserve_parts import utc_now
from fixloop_parts.domain import CountBelowReserved, StockLevel, Warehouse
from fixloop_shared.contracts.types import CountryCode, Identifier, Name, PartNumber
from fixloop_shared.kernel import UnitsOfWork

MAX_WAREHOUSES = 1_000
MAX_STOCK_LINES = 50_000
MAX_ON_HAND = 1_000_000

Location = tuple[str | int, ...]
"""Where in the count a problem is, e.g. ``("stock", 3, "quantity")``."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class WarehouseEntry(_Strict):
    warehouse_id: Identifier
    name: Name
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 country code")


class StockEntry(_Strict):
    warehouse_id: Identifier
    part_number: PartNumber
    quantity: Annotated[int, Field(ge=0, le=MAX_ON_HAND)] = Field(
        description="Units on hand counted in the warehouse"
    )
    description: Name | None = None


class StockCountFile(_Strict):
    """The stock file format (YAML or JSON)."""

    warehouses: Annotated[list[WarehouseEntry], Field(max_length=MAX_WAREHOUSES)] = Field(
        default_factory=list
    )
    stock: Annotated[list[StockEntry], Field(max_length=MAX_STOCK_LINES)] = Field(
        default_factory=list
    )


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str


class StockCountRejected(Exception):  # noqa: N818 - the outcome, not a failure of the program
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the stock count")
        self.problems = list(problems)


def duplicate_problems(count: StockCountFile) -> list[Problem]:
    """Problems visible in the count alone: a warehouse or a stock line listed twice."""
    problems: list[Problem] = []
    first_warehouse: dict[str, int] = {}
    for index, warehouse in enumerate(count.warehouses):
        seen = first_warehouse.setdefault(warehouse.warehouse_id, index)
        if seen != index:
            problems.append(
                Problem(
                    ("warehouses", index, "warehouse_id"),
                    f"warehouse {warehouse.warehouse_id!r} is already listed at warehouses[{seen}]",
                )
            )
    first_line: dict[StockKey, int] = {}
    for index, line in enumerate(count.stock):
        seen = first_line.setdefault((line.warehouse_id, line.part_number), index)
        if seen != index:
            problems.append(
                Problem(
                    ("stock", index, "part_number"),
                    f"{line.part_number} in {line.warehouse_id} is already counted at "
                    f"stock[{seen}]",
                )
            )
    if not count.warehouses and not count.stock:
        problems.append(Problem((), "the file lists no warehouses and no stock"))
    return problems


@dataclass(frozen=True)
class WarehouseSummary:
    warehouse_id: str
    name: str
    country: str
    status: str
    """``new``, ``updated`` or ``known``."""
    lines: int
    new_lines: int
    changed_lines: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class StockCountSummary:
    warehouses: tuple[WarehouseSummary, ...]
    dry_run: bool

    @property
    def lines(self) -> int:
        return sum(w.lines for w in self.warehouses)

    @property
    def new_lines(self) -> int:
        return sum(w.new_lines for w in self.warehouses)

    @property
    def changed_lines(self) -> int:
        return sum(w.changed_lines for w in self.warehouses)


def _summarise(
    count: StockCountFile,
    known: dict[str, Warehouse],
    lines: Sequence[CountedLine],
    *,
    dry_run: bool,
) -> StockCountSummary:
    declared = {w.warehouse_id: w for w in count.warehouses}
    by_warehouse: dict[str, list[CountedLine]] = {warehouse_id: [] for warehouse_id in declared}
    for line in lines:
        by_warehouse.setdefault(line.after.warehouse_id, []).append(line)
    summaries = []
    for warehouse_id, mine in by_warehouse.items():
        entry = declared.get(warehouse_id)
        before = known.get(warehouse_id)
        if entry is None:
            assert before is not None  # noqa: S101 - unknown references were rejected
            name, country, status = before.name, before.country, "known"
        else:
            name, country = entry.name, entry.country
            if before is None:
                status = "new"
            elif (before.name, before.country) != (entry.name, entry.country):
                status = "updated"
            else:
                status = "known"
        summaries.append(
            WarehouseSummary(
                warehouse_id=warehouse_id,
                name=name,
                country=country,
                status=status,
                lines=len(mine),
                new_lines=sum(1 for line in mine if line.before is None),
                changed_lines=sum(
                    1
                    for line in mine
                    if line.before is not None and line.before.on_hand != line.after.on_hand
                ),
                on_hand=sum(line.after.on_hand for line in mine),
                reserved=sum(line.after.reserved for line in mine),
            )
        )
    return StockCountSummary(tuple(summaries), dry_run)


async def import_stock_count(
    store: UnitsOfWork,
    stock: StockRepository,
    count: StockCountFile,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utc_now,
    attempts: int = 5,
) -> StockCountSummary:
    """Apply the count in one transaction; raises :class:`StockCountRejected` with every problem.

    With ``dry_run`` everything is checked against the store but nothing is written.
    """
    problems = duplicate_problems(count)
    if problems:
        raise StockCountRejected(problems)
    for attempt in range(1, attempts + 1):
        try:
            return await _apply(store, stock, count, dry_run=dry_run, at=clock())
        except StockChanged:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError  # pragma: no cover - the loop returns or raises


async def _apply(
    store: UnitsOfWork,
    stock: StockRepository,
    count: StockCountFile,
    *,
    dry_run: bool,
    at: datetime,
) -> StockCountSummary:
    async with store.transaction() as uow:
        known = await stock.warehouses(uow)
        declared = {w.warehouse_id for w in count.warehouses}
        problems: list[Problem] = []
        for index, line in enumerate(count.stock):
            if line.warehouse_id not in declared and line.warehouse_id not in known:
                problems.append(
                    Problem(
                        ("stock", index, "warehouse_id"),
                        f"unknown warehouse {line.warehouse_id!r} "
                        "(neither listed under warehouses nor already known)",
                    )
                )
        current = await stock.levels(
            uow, [(line.warehouse_id, line.part_number) for line in count.stock]
        )
        counted: list[CountedLine] = []
        for index, line in enumerate(count.stock):
            before = current.get((line.warehouse_id, line.part_number))
            try:
                after = (
                    before.recounted(line.quantity)
                    if before is not None
                    else StockLevel.counted(line.warehouse_id, line.part_number, line.quantity)
                )
            except CountBelowReserved as exc:
                problems.append(Problem(("stock", index, "quantity"), str(exc)))
                continue
            counted.append(CountedLine(before, after, line.description))
        if problems:
            raise StockCountRejected(problems)
        if not dry_run:
            await stock.save_warehouses(
                uow,
                [Warehouse(w.warehouse_id, w.name, w.country) for w in count.warehouses],
                at=at,
            )
            await stock.save_counts(uow, counted, at=at)
    return _summarise(count, known, counted, dry_run=dry_run)
