"""Stock and reservations in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The same collections and promises as the MongoDB adapters: a reservation takes stock only while
it is still available, a count replaces a line only if nothing moved since it was read (else
:class:`~fixloop_parts.app.ports.StockChanged`), a movement applies only if no quantity goes
negative, a reservation line ends only while it is still active, and one decision and one
settlement are recorded per work order.
Everything is read and written in the unit of work's copy, so it commits or rolls back with the
claim and the outgoing event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fixloop_parts.adapters.mongo import (
    RESERVATIONS,
    RESERVED,
    SETTLED_STATUSES,
    SETTLEMENTS,
    STOCK,
    WAREHOUSES,
    WORK_ORDER_PARTS,
    order_reservations,
    reservation_id,
    settlement_document,
    stock_id,
)
from fixloop_parts.app.ports import (
    CountedLine,
    OrderReservations,
    ReservationDecision,
    SettlementRecord,
    StockChanged,
    StockKey,
)
from fixloop_parts.domain import (
    Allocation,
    LineSettlement,
    SourceStock,
    StockLevel,
    StockMovement,
    Warehouse,
)
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork


def _session(uow: UnitOfWork) -> MemoryState:
    if not isinstance(uow, MemoryUnitOfWork):
        msg = f"the in-memory repository was given {type(uow).__name__}"
        raise TypeError(msg)
    return uow.session


def _level(doc: dict[str, Any]) -> StockLevel:
    return StockLevel(
        warehouse_id=doc["warehouse_id"],
        part_number=doc["part_number"],
        on_hand=doc["on_hand"],
        reserved=doc["reserved"],
    )


class MemoryStock:
    """The :class:`~fixloop_parts.app.ports.StockRepository` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def load(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> None:
        """Nothing to read ahead in memory."""

    async def sources(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> list[SourceStock]:
        state = _session(uow)
        wanted = set(part_numbers)
        warehouses = state.collection(WAREHOUSES)
        stock = state.collection(STOCK)
        return [
            SourceStock(
                warehouse_id=doc["warehouse_id"],
                country=warehouses[doc["warehouse_id"]]["country"],
                part_number=doc["part_number"],
                available=doc["available"],
            )
            for _id, doc in sorted(stock.items())
            if doc["part_number"] in wanted
            and doc["available"] > 0
            and doc["warehouse_id"] in warehouses
        ]

    async def take(self, uow: UnitOfWork, allocation: Allocation) -> bool:
        doc = (
            _session(uow)
            .collection(STOCK)
            .get(stock_id(allocation.warehouse_id, allocation.part_number))
        )
        if doc is None or doc["available"] < allocation.quantity:
            return False
        doc["available"] -= allocation.quantity
        doc["reserved"] += allocation.quantity
        return True

    async def move(self, uow: UnitOfWork, movement: StockMovement) -> bool:
        doc = (
            _session(uow)
            .collection(STOCK)
            .get(stock_id(movement.warehouse_id, movement.part_number))
        )
        if doc is None or not movement.fits(_level(doc)):
            return False
        doc["on_hand"] += movement.on_hand
        doc["reserved"] += movement.reserved
        doc["available"] += movement.available
        return True

    async def warehouses(self, uow: UnitOfWork) -> dict[str, Warehouse]:
        return {
            warehouse_id: Warehouse(warehouse_id, doc["name"], doc["country"])
            for warehouse_id, doc in _session(uow).collection(WAREHOUSES).items()
        }

    async def levels(self, uow: UnitOfWork, keys: Sequence[StockKey]) -> dict[StockKey, StockLevel]:
        stock = _session(uow).collection(STOCK)
        found: dict[StockKey, StockLevel] = {}
        for warehouse_id, part_number in keys:
            doc = stock.get(stock_id(warehouse_id, part_number))
            if doc is not None:
                found[(warehouse_id, part_number)] = _level(doc)
        return found

    async def save_warehouses(
        self, uow: UnitOfWork, warehouses: Sequence[Warehouse], *, at: datetime
    ) -> None:
        stored = _session(uow).collection(WAREHOUSES)
        for warehouse in warehouses:
            stored[warehouse.warehouse_id] = {
                "_id": warehouse.warehouse_id,
                "name": warehouse.name,
                "country": warehouse.country,
                "updated_at": at,
            }

    async def save_counts(
        self, uow: UnitOfWork, lines: Sequence[CountedLine], *, at: datetime
    ) -> None:
        stock = _session(uow).collection(STOCK)
        for line in lines:
            after = line.after
            _id = stock_id(after.warehouse_id, after.part_number)
            current = stock.get(_id)
            if line.before is None and current is not None:
                msg = "a stock line was created by someone else during the count"
                raise StockChanged(msg)
            if line.before is not None and (
                current is None
                or (current["on_hand"], current["reserved"])
                != (line.before.on_hand, line.before.reserved)
            ):
                msg = "a stock line was reserved or counted by someone else during the count"
                raise StockChanged(msg)
            stock[_id] = {
                "_id": _id,
                "warehouse_id": after.warehouse_id,
                "part_number": after.part_number,
                "on_hand": after.on_hand,
                "reserved": after.reserved,
                "available": after.available,
                "description": line.description
                or (None if current is None else current.get("description")),
                "counted_at": at,
            }

    def level(self, warehouse_id: str, part_number: str) -> StockLevel | None:
        """The committed level of one part number in one warehouse."""
        doc = self._store.state.collection(STOCK).get(stock_id(warehouse_id, part_number))
        return None if doc is None else _level(doc)


class MemoryReservationLog:
    """The :class:`~fixloop_parts.app.ports.ReservationLog` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def load(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        """Nothing to read ahead in memory."""

    async def decided(self, uow: UnitOfWork, work_order_id: str) -> bool:
        return work_order_id in _session(uow).collection(WORK_ORDER_PARTS)

    async def record(self, uow: UnitOfWork, decision: ReservationDecision) -> None:
        state = _session(uow)
        decisions = state.collection(WORK_ORDER_PARTS)
        if decision.work_order_id in decisions:
            msg = f"the parts of work order {decision.work_order_id} were decided already"
            raise ValueError(msg)
        plan = decision.plan
        reservations = state.collection(RESERVATIONS)
        for a in plan.allocations:
            reservations[reservation_id(decision.work_order_id, a.part_number, a.warehouse_id)] = {
                "work_order_id": decision.work_order_id,
                "tenant": decision.tenant,
                "part_number": a.part_number,
                "warehouse_id": a.warehouse_id,
                "quantity": a.quantity,
                "status": RESERVED,
                "reserved_at": decision.decided_at,
            }
        decisions[decision.work_order_id] = {
            "_id": decision.work_order_id,
            "tenant": decision.tenant,
            "status": "reserved" if plan.complete else "backordered",
            "site_country": decision.site_country,
            "required": [
                {"part_number": d.part_number, "quantity": d.quantity} for d in plan.demand
            ],
            "missing": [
                {"part_number": s.part_number, "quantity": s.quantity} for s in plan.shortfalls
            ],
            "units_reserved": plan.units_reserved,
            "units_missing": plan.units_missing,
            "decided_at": decision.decided_at,
            "event_id": decision.event_id,
        }

    async def load_reservations(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        """Nothing to read ahead in memory."""

    async def reservations_of(
        self, uow: UnitOfWork, work_order_id: str, *, tenant: str
    ) -> OrderReservations:
        state = _session(uow)
        docs = [
            doc
            for doc in state.collection(RESERVATIONS).values()
            if doc["work_order_id"] == work_order_id
        ]
        settled = not docs and work_order_id in state.collection(SETTLEMENTS)
        return order_reservations(work_order_id, docs, tenant=tenant, settled=settled)

    async def settle(
        self, uow: UnitOfWork, work_order_id: str, line: LineSettlement, *, event_id: str
    ) -> bool:
        reservation = line.reservation
        doc = (
            _session(uow)
            .collection(RESERVATIONS)
            .get(reservation_id(work_order_id, reservation.part_number, reservation.warehouse_id))
        )
        if (
            doc is None
            or doc["quantity"] != reservation.quantity
            or doc.get("status", RESERVED) in SETTLED_STATUSES
        ):
            return False
        doc.update(
            status=line.outcome,
            consumed=line.consumed,
            released=line.released,
            settled_by=event_id,
        )
        return True

    async def record_settlement(self, uow: UnitOfWork, record: SettlementRecord) -> None:
        settlements = _session(uow).collection(SETTLEMENTS)
        if record.work_order_id in settlements:
            msg = f"the parts of work order {record.work_order_id} were settled already"
            raise ValueError(msg)
        settlements[record.work_order_id] = settlement_document(record)

    def settlement(self, work_order_id: str) -> dict[str, Any] | None:
        """The committed settlement of a work order's parts (released or consumed)."""
        return self._store.state.collection(SETTLEMENTS).get(work_order_id)

    def decision(self, work_order_id: str) -> dict[str, Any] | None:
        """The committed decision on a work order's parts (reserved or backordered)."""
        return self._store.state.collection(WORK_ORDER_PARTS).get(work_order_id)

    def reservations(self, work_order_id: str) -> list[dict[str, Any]]:
        """The committed reservations of a work order."""
        return [
            doc
            for doc in self._store.state.collection(RESERVATIONS).values()
            if doc["work_order_id"] == work_order_id
        ]


__all__ = ["MemoryReservationLog", "MemoryStock"]
