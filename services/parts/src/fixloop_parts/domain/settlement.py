"""How a work order's reservations end: released when it is cancelled, consumed when it is done.

A reservation line (an :class:`~fixloop_parts.domain.reservations.Allocation` that was taken from
a warehouse's available stock) ends once, in one of two ways or split between them:

- **released**: its units are available again in their warehouse;
- **consumed**: its units left the warehouse with the work, for good (out of on-hand stock).

A cancelled order releases every line. A completed order consumes, per part number, the units
its report says were used, from that part's lines in a fixed order (the largest line first, then
the lower warehouse id, so a split touches as few lines as possible and the result does not
depend on the order the lines were read in); what is left of the lines is released. Units used
beyond what was reserved for that part are *unreserved use*: the service takes them out of one
warehouse's available stock if one has them all (:func:`choose_unreserved_source`), preferring
the warehouses the order's parts were reserved from, and otherwise leaves the stock alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fixloop_parts.domain.reservations import Allocation, PartDemand, SourceStock, total_demand
from fixloop_parts.domain.stock import StockMovement, StockRuleViolation


@dataclass(frozen=True)
class LineSettlement:
    """How one reservation line ends: ``consumed`` units used by the work, ``released`` units
    available again; together exactly the line's quantity."""

    reservation: Allocation
    consumed: int
    released: int

    def __post_init__(self) -> None:
        if (
            self.consumed < 0
            or self.released < 0
            or self.consumed + self.released != self.reservation.quantity
        ):
            msg = (
                f"a line of {self.reservation.quantity} x {self.reservation.part_number} in "
                f"{self.reservation.warehouse_id} cannot end as {self.consumed} consumed and "
                f"{self.released} released"
            )
            raise StockRuleViolation(msg)

    @property
    def outcome(self) -> str:
        """``consumed`` if any unit was used, else ``released``."""
        return "consumed" if self.consumed else "released"

    @property
    def movement(self) -> StockMovement:
        """What the line's ending does to its warehouse's stock."""
        return StockMovement.settling(
            self.reservation.warehouse_id,
            self.reservation.part_number,
            consumed=self.consumed,
            released=self.released,
        )


@dataclass(frozen=True)
class PartsSettlement:
    """How all of a work order's active reservation lines end, and what was used beyond them."""

    lines: tuple[LineSettlement, ...]
    unreserved: tuple[PartDemand, ...] = ()
    """Units used that no reservation line of the order covered (one demand per part number)."""

    @property
    def consumed(self) -> tuple[Allocation, ...]:
        """The reserved units consumed, per line (lines that consumed nothing left out)."""
        return tuple(
            Allocation(line.reservation.part_number, line.reservation.warehouse_id, line.consumed)
            for line in self.lines
            if line.consumed
        )

    @property
    def released(self) -> tuple[Allocation, ...]:
        """The reserved units released, per line (lines that released nothing left out)."""
        return tuple(
            Allocation(line.reservation.part_number, line.reservation.warehouse_id, line.released)
            for line in self.lines
            if line.released
        )

    @property
    def units_consumed(self) -> int:
        return sum(line.consumed for line in self.lines)

    @property
    def units_released(self) -> int:
        return sum(line.released for line in self.lines)


def _settling_order(reservations: Iterable[Allocation]) -> list[Allocation]:
    lines = list(reservations)
    keys = [(line.part_number, line.warehouse_id) for line in lines]
    if len(set(keys)) != len(keys):
        msg = "a work order has one reservation line per part number and warehouse"
        raise ValueError(msg)
    for line in lines:
        if line.quantity < 1:
            msg = f"a reservation line holds at least one unit: {line}"
            raise ValueError(msg)
    return sorted(lines, key=lambda line: (line.part_number, -line.quantity, line.warehouse_id))


def release_all(reservations: Iterable[Allocation]) -> PartsSettlement:
    """A cancelled work order: every reservation line is released in full."""
    return PartsSettlement(
        tuple(
            LineSettlement(line, consumed=0, released=line.quantity)
            for line in _settling_order(reservations)
        )
    )


def settle_completion(
    reservations: Iterable[Allocation], used: Iterable[tuple[str, int]]
) -> PartsSettlement:
    """A completed work order: the used units consumed from the reservation lines of their part
    (largest line first), the rest of the lines released, the used units no line covered left as
    :attr:`PartsSettlement.unreserved`. ``used`` lines of one part number are summed."""
    remaining = {part.part_number: part.quantity for part in total_demand(used)}
    lines: list[LineSettlement] = []
    for line in _settling_order(reservations):
        consumed = min(remaining.get(line.part_number, 0), line.quantity)
        if consumed:
            remaining[line.part_number] -= consumed
        lines.append(LineSettlement(line, consumed=consumed, released=line.quantity - consumed))
    unreserved = tuple(PartDemand(part, left) for part, left in remaining.items() if left > 0)
    return PartsSettlement(tuple(lines), unreserved)


def preferred_warehouses(reservations: Iterable[Allocation], part_number: str) -> list[str]:
    """Where unreserved units of ``part_number`` most likely came from: the warehouses the order
    reserved that part from (most units first), then its other warehouses (most units first)."""
    by_warehouse: dict[tuple[bool, str], int] = {}
    for line in reservations:
        key = (line.part_number != part_number, line.warehouse_id)
        by_warehouse[key] = by_warehouse.get(key, 0) + line.quantity
    ordered = sorted(by_warehouse.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))
    return list(dict.fromkeys(warehouse for (_, warehouse), _units in ordered))


def choose_unreserved_source(
    demand: PartDemand, stock: Iterable[SourceStock], *, preferred: Sequence[str] = ()
) -> Allocation | None:
    """The one warehouse to take ``demand`` from without a reservation: one whose available
    stock covers all of it, the first of ``preferred`` that does, else the one with the most
    available (then the lower id); None if no warehouse has that many available."""
    if demand.quantity < 1:
        msg = f"a used part needs at least one unit: {demand.part_number} x {demand.quantity}"
        raise ValueError(msg)
    rank = {warehouse: index for index, warehouse in enumerate(dict.fromkeys(preferred))}
    candidates = [
        s for s in stock if s.part_number == demand.part_number and s.available >= demand.quantity
    ]
    if not candidates:
        return None
    best = min(
        candidates,
        key=lambda s: (rank.get(s.warehouse_id, len(rank)), -s.available, s.warehouse_id),
    )
    return Allocation(demand.part_number, best.warehouse_id, demand.quantity)
