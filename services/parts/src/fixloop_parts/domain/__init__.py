"""Pure parts logic: stock levels, where a work order's parts are reserved from, and how its
reservations end (released or consumed)."""

from fixloop_parts.domain.reservations import (
    DEFAULT_MAX_SOURCES,
    Allocation,
    PartDemand,
    ReservationPlan,
    Shortfall,
    SourceStock,
    choose_sources,
    plan_reservation,
    split_quantity,
    total_demand,
)
from fixloop_parts.domain.settlement import (
    LineSettlement,
    PartsSettlement,
    choose_unreserved_source,
    preferred_warehouses,
    release_all,
    settle_completion,
)
from fixloop_parts.domain.stock import (
    CountBelowReserved,
    InsufficientStock,
    StockLevel,
    StockMovement,
    StockRuleViolation,
    Warehouse,
)

__all__ = [
    "DEFAULT_MAX_SOURCES",
    "Allocation",
    "CountBelowReserved",
    "InsufficientStock",
    "LineSettlement",
    "PartDemand",
    "PartsSettlement",
    "ReservationPlan",
    "Shortfall",
    "SourceStock",
    "StockLevel",
    "StockMovement",
    "StockRuleViolation",
    "Warehouse",
    "choose_sources",
    "choose_unreserved_source",
    "plan_reservation",
    "preferred_warehouses",
    "release_all",
    "settle_completion",
    "split_quantity",
    "total_demand",
]
