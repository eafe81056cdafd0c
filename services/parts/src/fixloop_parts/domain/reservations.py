"""Which warehouses a work order's parts are reserved from.

For each part number the order needs (its lines summed), the planner picks at most
``max_sources`` warehouses and decides, in this order of importance:

1. reserve as many units as the stock allows (a backorder is the worst outcome);
2. take as few units as possible from warehouses outside the site's country (shipping time
   and customs);
3. ship from as few warehouses as possible (a line is split only when it has to be);
4. prefer the warehouses with the most available stock (keeps small stocks for small orders),
   then the lower warehouse id, so the plan is deterministic.

Whatever cannot be reserved is missing (backordered); a part may be partly reserved and partly
missing. The plan never takes more than a warehouse has available.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

DEFAULT_MAX_SOURCES = 3
"""Warehouses one part number may be split across (bounds a reservation event's size)."""


@dataclass(frozen=True)
class PartDemand:
    """How many units of one part number a work order needs."""

    part_number: str
    quantity: int


@dataclass(frozen=True)
class SourceStock:
    """What one warehouse could give of one part number right now."""

    warehouse_id: str
    country: str
    part_number: str
    available: int


@dataclass(frozen=True)
class Allocation:
    """Units of a part number to reserve in one warehouse."""

    part_number: str
    warehouse_id: str
    quantity: int


@dataclass(frozen=True)
class Shortfall:
    """Units of a part number that no warehouse can give (backordered)."""

    part_number: str
    quantity: int


@dataclass(frozen=True)
class ReservationPlan:
    demand: tuple[PartDemand, ...]
    allocations: tuple[Allocation, ...]
    shortfalls: tuple[Shortfall, ...]

    @property
    def complete(self) -> bool:
        """True when every unit is reserved (nothing is backordered)."""
        return not self.shortfalls

    def reserved_of(self, part_number: str) -> int:
        return sum(a.quantity for a in self.allocations if a.part_number == part_number)

    def missing_of(self, part_number: str) -> int:
        return sum(s.quantity for s in self.shortfalls if s.part_number == part_number)

    @property
    def units_reserved(self) -> int:
        return sum(a.quantity for a in self.allocations)

    @property
    def units_missing(self) -> int:
        return sum(s.quantity for s in self.shortfalls)


def total_demand(lines: Iterable[tuple[str, int]]) -> tuple[PartDemand, ...]:
    """One demand per part number (repeated lines summed), in order of first appearance."""
    totals: dict[str, int] = {}
    for part_number, quantity in lines:
        if quantity < 1:
            msg = f"a required part needs at least one unit: {part_number} x {quantity}"
            raise ValueError(msg)
        totals[part_number] = totals.get(part_number, 0) + quantity
    return tuple(PartDemand(part, quantity) for part, quantity in totals.items())


def _preference_order(stock: Iterable[SourceStock], site_country: str) -> list[SourceStock]:
    return sorted(
        (s for s in stock if s.available > 0),
        key=lambda s: (s.country != site_country, -s.available, s.warehouse_id),
    )


def _fill(
    quantity: int, sources: Sequence[SourceStock], site_country: str
) -> tuple[list[Allocation], int]:
    """Take from ``sources`` (already in preference order) until ``quantity`` is met."""
    allocations: list[Allocation] = []
    foreign_units = 0
    remaining = quantity
    for source in sources:
        if remaining == 0:
            break
        take = min(remaining, source.available)
        allocations.append(Allocation(source.part_number, source.warehouse_id, take))
        if source.country != site_country:
            foreign_units += take
        remaining -= take
    return allocations, foreign_units


def choose_sources(
    demand: PartDemand,
    stock: Iterable[SourceStock],
    *,
    site_country: str,
    max_sources: int = DEFAULT_MAX_SOURCES,
) -> tuple[Allocation, ...]:
    """The allocations of one part number (see the module docstring for the rules)."""
    if max_sources < 1:
        msg = f"max_sources must be at least 1, got {max_sources}"
        raise ValueError(msg)
    ordered = _preference_order(
        (s for s in stock if s.part_number == demand.part_number), site_country
    )
    # An optimal choice only ever uses the best-stocked warehouses of each tier (swapping one
    # for a better-stocked one of the same tier never reserves less nor ships more from abroad),
    # so the search is over the top ``max_sources`` local and top ``max_sources`` foreign ones.
    local = [s for s in ordered if s.country == site_country][:max_sources]
    foreign = [s for s in ordered if s.country != site_country][:max_sources]
    pool = local + foreign

    best: list[Allocation] = []
    best_score: tuple[int, int, int] = (0, 0, 0)
    for size in range(1, min(max_sources, len(pool)) + 1):
        # combinations() keeps pool order, so among equal scores the first one found is the
        # one made of the most preferred warehouses.
        for chosen in combinations(pool, size):
            allocations, foreign_units = _fill(demand.quantity, chosen, site_country)
            reserved = sum(a.quantity for a in allocations)
            score = (reserved, -foreign_units, -len(allocations))
            if reserved > 0 and (not best or score > best_score):
                best, best_score = allocations, score
    return tuple(best)


def plan_reservation(
    demand: Sequence[PartDemand],
    stock: Iterable[SourceStock],
    *,
    site_country: str,
    max_sources: int = DEFAULT_MAX_SOURCES,
) -> ReservationPlan:
    """Reserve every demanded part from ``stock``; what cannot be reserved is a shortfall.

    ``demand`` names each part number once (see :func:`total_demand`).
    """
    part_numbers = [part.part_number for part in demand]
    if len(set(part_numbers)) != len(part_numbers):
        msg = "each part number must be demanded once; sum repeated lines with total_demand()"
        raise ValueError(msg)
    candidates = list(stock)
    allocations: list[Allocation] = []
    shortfalls: list[Shortfall] = []
    for part in demand:
        chosen = choose_sources(
            part, candidates, site_country=site_country, max_sources=max_sources
        )
        allocations.extend(chosen)
        missing = part.quantity - sum(a.quantity for a in chosen)
        if missing > 0:
            shortfalls.append(Shortfall(part.part_number, missing))
    return ReservationPlan(tuple(demand), tuple(allocations), tuple(shortfalls))


def split_quantity(quantity: int, limit: int) -> list[int]:
    """``quantity`` as pieces of at most ``limit`` (for contracts that bound a line's quantity)."""
    if limit < 1:
        msg = f"limit must be at least 1, got {limit}"
        raise ValueError(msg)
    full, rest = divmod(quantity, limit)
    return [limit] * full + ([rest] if rest else [])
