"""Use cases of the parts service: import a stock count, reserve a work order's parts, release
or consume them when the order is cancelled or its work completed."""

from fixloop_parts.app.ports import (
    CountedLine,
    OrderReservations,
    ReservationDecision,
    ReservationLog,
    ReservationsNotWrittenYet,
    SettlementRecord,
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
from fixloop_parts.app.settle_parts import (
    PartsSettlements,
    ReservedStockMissing,
    SettlementOutcome,
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
    "OrderReservations",
    "PartsReservations",
    "PartsSettlements",
    "Problem",
    "ReservationDecision",
    "ReservationLog",
    "ReservationOutcome",
    "ReservationPolicy",
    "ReservationsNotWrittenYet",
    "ReservedStockMissing",
    "SettlementOutcome",
    "SettlementRecord",
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
