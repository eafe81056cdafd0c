"""Use cases of the parts service: import a stock count, reserve a work order's parts."""

from fixloop_parts.app.ports import (
    CountedLine,
    ReservationDecision,
    ReservationLog,
    StockChanged,
    StockRepository,
)
from fixloop_parts.app.reserve_parts import (
    PartsReservations,
    ReservationOutcome,
    ReservationPolicy,
    StockContention,
    decision_event,
)
from fixloop_parts.app.stock_count import (
    MAX_STOCK_LINES,
    MAX_WAREHOUSES,
    Problem,
    StockCountFile,
    StockCountRejected,
    StockCountSummary,
    WarehouseSummary,
    import_stock_count,
)

__all__ = [
    "MAX_STOCK_LINES",
    "MAX_WAREHOUSES",
    "CountedLine",
    "PartsReservations",
    "Problem",
    "ReservationDecision",
    "ReservationLog",
    "ReservationOutcome",
    "ReservationPolicy",
    "StockChanged",
    "StockContention",
    "StockCountFile",
    "StockCountRejected",
    "StockCountSummary",
    "StockRepository",
    "WarehouseSummary",
    "decision_event",
    "import_stock_count",
]
