"""Stock of one part in one warehouse: counted on hand, reserved for work orders, available.

``available = on_hand - reserved`` and none of the three is ever negative. A stock count sets the
on-hand quantity and keeps the reservations; a count below what is already reserved is refused,
because those units were promised to work orders and must be released explicitly first.
"""

from __future__ import annotations

from dataclasses import dataclass


class StockRuleViolation(ValueError):  # noqa: N818 - a broken rule, not a program error
    """A change that would break the stock invariants."""


class CountBelowReserved(StockRuleViolation):
    def __init__(self, level: StockLevel, counted: int) -> None:
        super().__init__(
            f"counted {counted} on hand but {level.reserved} are reserved for work orders "
            f"(the count must be at least {level.reserved})"
        )
        self.level = level
        self.counted = counted


class InsufficientStock(StockRuleViolation):
    def __init__(self, level: StockLevel, wanted: int) -> None:
        super().__init__(
            f"{wanted} x {level.part_number} wanted from {level.warehouse_id}, "
            f"{level.available} available"
        )
        self.level = level
        self.wanted = wanted


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    name: str
    country: str


@dataclass(frozen=True)
class StockLevel:
    """On-hand and reserved units of one part number in one warehouse."""

    warehouse_id: str
    part_number: str
    on_hand: int
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.on_hand < 0 or self.reserved < 0 or self.reserved > self.on_hand:
            msg = (
                f"invalid stock level of {self.part_number} in {self.warehouse_id}: "
                f"on hand {self.on_hand}, reserved {self.reserved}"
            )
            raise StockRuleViolation(msg)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @classmethod
    def counted(cls, warehouse_id: str, part_number: str, on_hand: int) -> StockLevel:
        """The level of a part number that had no stock record before its first count."""
        return cls(warehouse_id=warehouse_id, part_number=part_number, on_hand=on_hand)

    def recounted(self, on_hand: int) -> StockLevel:
        """The level after a stock count of ``on_hand`` units; reservations are kept."""
        if on_hand < self.reserved:
            raise CountBelowReserved(self, on_hand)
        return StockLevel(self.warehouse_id, self.part_number, on_hand, self.reserved)

    def reserve(self, quantity: int) -> StockLevel:
        """The level after ``quantity`` more units were reserved."""
        if quantity < 1:
            msg = f"a reservation needs at least one unit, got {quantity}"
            raise StockRuleViolation(msg)
        if quantity > self.available:
            raise InsufficientStock(self, quantity)
        return StockLevel(
            self.warehouse_id, self.part_number, self.on_hand, self.reserved + quantity
        )
