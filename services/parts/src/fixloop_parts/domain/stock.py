"""Stock of one part in one warehouse: counted on hand, reserved for work orders, available.

``available = on_hand - reserved`` and none of the three is ever negative. A stock count sets the
on-hand quantity and keeps the reservations; a count below what is already reserved is refused,
because those units were promised to work orders and must be released explicitly first.

Between counts a reservation moves units from available to reserved (:meth:`StockLevel.reserve`)
and a :class:`StockMovement` ends it: released units go back to available, consumed units leave
reserved and on-hand stock for good (the work took them). Units used without a reservation leave
available and on-hand stock. No movement ever leaves a quantity negative.
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

    def moved(self, movement: StockMovement) -> StockLevel:
        """The level after ``movement``; :class:`StockRuleViolation` if a quantity would go
        negative or the movement is about another line."""
        if (self.warehouse_id, self.part_number) != (movement.warehouse_id, movement.part_number):
            msg = (
                f"a movement of {movement.part_number} in {movement.warehouse_id} applied to "
                f"{self.part_number} in {self.warehouse_id}"
            )
            raise StockRuleViolation(msg)
        if not movement.fits(self):
            msg = (
                f"moving {movement.part_number} in {movement.warehouse_id} by on hand "
                f"{movement.on_hand:+d}, reserved {movement.reserved:+d} would leave negative "
                f"stock (on hand {self.on_hand}, reserved {self.reserved})"
            )
            raise StockRuleViolation(msg)
        return StockLevel(
            self.warehouse_id,
            self.part_number,
            self.on_hand + movement.on_hand,
            self.reserved + movement.reserved,
        )


@dataclass(frozen=True)
class StockMovement:
    """A change of one part number's stock in one warehouse: how on-hand and reserved move
    (``available`` moves by the difference). Applied only if no quantity goes negative."""

    warehouse_id: str
    part_number: str
    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @classmethod
    def settling(
        cls, warehouse_id: str, part_number: str, *, consumed: int, released: int
    ) -> StockMovement:
        """A reservation line ending: ``consumed`` units leave the warehouse with the work,
        ``released`` units are available again."""
        if consumed < 0 or released < 0:
            msg = f"consumed and released units cannot be negative: {consumed}, {released}"
            raise StockRuleViolation(msg)
        return cls(warehouse_id, part_number, on_hand=-consumed, reserved=-(consumed + released))

    @classmethod
    def unreserved_use(cls, warehouse_id: str, part_number: str, quantity: int) -> StockMovement:
        """Units used without a reservation: out of available and on-hand stock."""
        if quantity < 1:
            msg = f"a consumption needs at least one unit, got {quantity}"
            raise StockRuleViolation(msg)
        return cls(warehouse_id, part_number, on_hand=-quantity)

    @property
    def is_empty(self) -> bool:
        return self.on_hand == 0 and self.reserved == 0

    def minimums(self) -> dict[str, int]:
        """The least each decreasing quantity (``on_hand``, ``reserved``, ``available``) must be
        for the movement to leave it non-negative (the condition of a concurrent-safe update)."""
        deltas = {"on_hand": self.on_hand, "reserved": self.reserved, "available": self.available}
        return {name: -delta for name, delta in deltas.items() if delta < 0}

    def fits(self, level: StockLevel) -> bool:
        """True if ``level`` can take this movement without a quantity going negative."""
        now = {"on_hand": level.on_hand, "reserved": level.reserved, "available": level.available}
        return all(now[name] >= least for name, least in self.minimums().items())
