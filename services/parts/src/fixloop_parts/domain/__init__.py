"""Pure parts logic: stock levels and where a work order's parts are reserved from."""

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
from fixloop_parts.domain.stock import (
    CountBelowReserved,
    InsufficientStock,
    StockLevel,
    StockRuleViolation,
    Warehouse,
)

__all__ = [
    "DEFAULT_MAX_SOURCES",
    "Allocation",
    "CountBelowReserved",
    "InsufficientStock",
    "PartDemand",
    "ReservationPlan",
    "Shortfall",
    "SourceStock",
    "StockLevel",
    "StockRuleViolation",
    "Warehouse",
    "choose_sources",
    "plan_reservation",
    "split_quantity",
    "total_demand",
]
