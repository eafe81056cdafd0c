"""MongoDB documents of the parts service and the repositories that read and write them.

Collections:

- ``warehouses``: ``_id`` = warehouse id; name, country.
- ``stock``: one document per (warehouse, part number), ``_id`` = ``"<warehouse>/<part>"`` (``/``
  occurs in neither identifier); ``on_hand``, ``reserved`` and ``available`` (= on_hand -
  reserved, kept in the document so that a reservation is one conditional ``$inc``).
- ``reservations``: one document per (work order, part number, warehouse): the reserved
  quantity and its ``status``, ``reserved`` until the line ends once, ``released`` or
  ``consumed`` (with how many units were ``consumed`` and ``released``, and the ``settled_by``
  event). Documents written before statuses existed have none and count as ``reserved``.
- ``work_order_parts``: one document per work order: the decision (reserved or backordered),
  what was required and what is missing.
- ``settlements``: one document per work order whose parts were settled (``_id`` = work order
  id, append-only): released (cancelled) or consumed (work completed), the lines and when.

Every filter is built from typed values of validated models, never from raw outside input.
A count writes whole documents (replacement, ``_id`` included) rather than ``$set`` fragments:
the count is the authority on the lines it lists, and every field keeps its BSON type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, IndexModel, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from fixloop_parts.app.ports import (
    CountedLine,
    OrderReservations,
    ReservationDecision,
    ReservationsNotWrittenYet,
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
from fixloop_shared.store import Document, Store, database_of, equals, mongo_uow

WAREHOUSES = "warehouses"
STOCK = "stock"
RESERVATIONS = "reservations"
WORK_ORDER_PARTS = "work_order_parts"
SETTLEMENTS = "settlements"

RESERVED = "reserved"
"""A reservation line's status until it ends (``released`` or ``consumed``)."""
SETTLED_STATUSES = ("released", "consumed")

BATCH = 1_000

INDEXES: dict[str, Sequence[IndexModel]] = {
    WAREHOUSES: [IndexModel([("country", ASCENDING)], name="country")],
    STOCK: [
        IndexModel(
            [("part_number", ASCENDING), ("warehouse_id", ASCENDING)],
            unique=True,
            name="part_warehouse",
        ),
        IndexModel([("warehouse_id", ASCENDING)], name="warehouse"),
    ],
    RESERVATIONS: [
        # Its prefix also serves the look-up of a work order's lines (settling them).
        IndexModel(
            [("work_order_id", ASCENDING), ("part_number", ASCENDING), ("warehouse_id", ASCENDING)],
            unique=True,
            name="one_per_work_order_part_warehouse",
        ),
    ],
    WORK_ORDER_PARTS: [
        IndexModel([("tenant", ASCENDING), ("decided_at", ASCENDING)], name="tenant_decided"),
    ],
    # Settlements are looked up by ``_id`` (the work order); this index is for listing a tenant's
    # and makes the collection exist before the first transaction writes to it.
    SETTLEMENTS: [
        IndexModel([("tenant", ASCENDING), ("settled_at", ASCENDING)], name="tenant_settled"),
    ],
}

T = TypeVar("T")


async def ensure_indexes(store: Store) -> None:
    """Create the parts collections' indexes (idempotent; run at start-up and by the CLI)."""
    await store.ensure_indexes(INDEXES)


def stock_id(warehouse_id: str, part_number: str) -> str:
    return f"{warehouse_id}/{part_number}"


def reservation_id(work_order_id: str, part_number: str, warehouse_id: str) -> str:
    return f"{work_order_id}/{part_number}/{warehouse_id}"


def _batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _level(doc: Document) -> StockLevel:
    return StockLevel(
        warehouse_id=str(doc["warehouse_id"]),
        part_number=str(doc["part_number"]),
        on_hand=int(doc["on_hand"]),
        reserved=int(doc["reserved"]),
    )


def _warehouse(doc: Document) -> Warehouse:
    return Warehouse(
        warehouse_id=str(doc["_id"]), name=str(doc["name"]), country=str(doc["country"])
    )


_LOADED_STOCK = "stock-loaded"
"""``uow.memo`` key: {part number: [stock documents]} read ahead for a batch."""
_LOADED_COUNTRIES = "warehouse-countries"
_LOADED_DECISIONS = "decisions-loaded"
"""``uow.memo`` key: (work orders looked up, those decided) for a batch."""
_LOADED_RESERVATIONS = "reservations-loaded"
"""``uow.memo`` key: a :class:`_LoadedReservations` read ahead for a batch."""
_RESERVED_HERE = "reservations-recorded"
"""``uow.memo`` key: work orders whose reservation lines this unit of work writes at commit."""
_SETTLED_HERE = "settlements-recorded"
"""``uow.memo`` key: work orders whose settlement this unit of work writes at commit."""


@dataclass
class _LoadedReservations:
    looked_up: set[str]
    lines: dict[str, list[Document]]
    settled: set[str]


def _memo_set(uow: UnitOfWork, key: str) -> set[str]:
    found = uow.memo.get(key)
    if isinstance(found, set):
        return found
    fresh: set[str] = set()
    uow.memo[key] = fresh
    return fresh


def _is_active(doc: Document) -> bool:
    return doc.get("status", RESERVED) not in SETTLED_STATUSES


def order_reservations(
    work_order_id: str, docs: Sequence[Document], *, tenant: str, settled: bool
) -> OrderReservations:
    """A work order's reservation lines as documents say: only ``tenant``'s, the active ones; its
    parts count as settled if ``settled`` or if it has lines and none is active."""
    mine = [doc for doc in docs if doc.get("tenant") == tenant]
    active = tuple(
        Allocation(str(doc["part_number"]), str(doc["warehouse_id"]), int(doc["quantity"]))
        for doc in mine
        if _is_active(doc)
    )
    return OrderReservations(
        work_order_id=work_order_id,
        active=active,
        settled=settled or (bool(mine) and not active),
    )


def settlement_document(record: SettlementRecord) -> Document:
    settlement = record.settlement

    def lines(allocations: Sequence[Allocation]) -> list[Document]:
        return [
            {"part_number": a.part_number, "warehouse_id": a.warehouse_id, "quantity": a.quantity}
            for a in allocations
        ]

    return {
        "_id": record.work_order_id,
        "tenant": record.tenant,
        "outcome": record.outcome,
        "reason": record.reason,
        "consumed": lines(settlement.consumed),
        "released": lines(settlement.released),
        "consumed_unreserved": lines(record.taken),
        "ignored": [{"part_number": d.part_number, "quantity": d.quantity} for d in record.ignored],
        "units_consumed": settlement.units_consumed + sum(a.quantity for a in record.taken),
        "units_released": settlement.units_released,
        "settled_at": record.settled_at,
        "event_id": record.event_id,
    }


class MongoStock:
    """Warehouses and stock levels."""

    async def load(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> None:
        loaded = uow.memo.get(_LOADED_STOCK)
        rows: dict[str, list[Document]] = loaded if isinstance(loaded, dict) else {}
        wanted = sorted(set(part_numbers) - set(rows))
        if not wanted:
            return
        db = database_of(uow)
        fresh: dict[str, list[Document]] = {part: [] for part in wanted}
        for doc in (
            await db[STOCK].find({"part_number": {"$in": wanted}}, session=uow.session).to_list()
        ):
            fresh[str(doc["part_number"])].append(doc)
        if not isinstance(uow.memo.get(_LOADED_COUNTRIES), dict):
            uow.memo[_LOADED_COUNTRIES] = {
                str(doc["_id"]): str(doc["country"])
                for doc in await db[WAREHOUSES].find({}, session=uow.session).to_list()
            }
        rows.update(fresh)
        uow.memo[_LOADED_STOCK] = rows

    async def sources(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> list[SourceStock]:
        if not part_numbers:
            return []
        loaded = uow.memo.get(_LOADED_STOCK)
        countries = uow.memo.get(_LOADED_COUNTRIES)
        if (
            isinstance(loaded, dict)
            and isinstance(countries, dict)
            and all(part in loaded for part in part_numbers)
        ):
            return [
                SourceStock(
                    warehouse_id=str(doc["warehouse_id"]),
                    country=countries[str(doc["warehouse_id"])],
                    part_number=str(doc["part_number"]),
                    available=int(doc["available"]),
                )
                for part in dict.fromkeys(part_numbers)
                for doc in loaded[part]
                if int(doc["available"]) > 0 and str(doc["warehouse_id"]) in countries
            ]
        docs = (
            await database_of(uow)[STOCK]
            .find(
                {"part_number": {"$in": list(part_numbers)}, "available": {"$gt": 0}},
                session=uow.session,
            )
            .to_list()
        )
        warehouse_ids = sorted({str(doc["warehouse_id"]) for doc in docs})
        countries = {
            str(doc["_id"]): str(doc["country"])
            for doc in await database_of(uow)[WAREHOUSES]
            .find({"_id": {"$in": warehouse_ids}}, session=uow.session)
            .to_list()
        }
        return [
            SourceStock(
                warehouse_id=str(doc["warehouse_id"]),
                country=countries[str(doc["warehouse_id"])],
                part_number=str(doc["part_number"]),
                available=int(doc["available"]),
            )
            for doc in docs
            if str(doc["warehouse_id"]) in countries
        ]

    async def take(self, uow: UnitOfWork, allocation: Allocation) -> bool:
        quantity = allocation.quantity
        result = await database_of(uow)[STOCK].update_one(
            {
                "_id": stock_id(allocation.warehouse_id, allocation.part_number),
                "available": {"$gte": quantity},
            },
            {"$inc": {"available": -quantity, "reserved": quantity}},
            session=uow.session,
        )
        if result.matched_count != 1:
            return False
        loaded = uow.memo.get(_LOADED_STOCK)
        if isinstance(loaded, dict):
            for doc in loaded.get(allocation.part_number, ()):
                if doc["warehouse_id"] == allocation.warehouse_id:
                    doc["available"] = int(doc["available"]) - quantity
                    doc["reserved"] = int(doc["reserved"]) + quantity
        return True

    async def move(self, uow: UnitOfWork, movement: StockMovement) -> bool:
        if movement.is_empty:
            return True
        increments = {
            field: delta
            for field, delta in (
                ("on_hand", movement.on_hand),
                ("reserved", movement.reserved),
                ("available", movement.available),
            )
            if delta
        }
        result = await database_of(uow)[STOCK].update_one(
            {
                **equals({"_id": stock_id(movement.warehouse_id, movement.part_number)}),
                **{field: {"$gte": least} for field, least in movement.minimums().items()},
            },
            {"$inc": increments},
            session=uow.session,
        )
        if result.matched_count != 1:
            return False
        loaded = uow.memo.get(_LOADED_STOCK)
        if isinstance(loaded, dict):
            for doc in loaded.get(movement.part_number, ()):
                if doc["warehouse_id"] == movement.warehouse_id:
                    for field, delta in increments.items():
                        doc[field] = int(doc[field]) + delta
        return True

    async def warehouses(self, uow: UnitOfWork) -> dict[str, Warehouse]:
        docs = await database_of(uow)[WAREHOUSES].find({}, session=uow.session).to_list()
        return {str(doc["_id"]): _warehouse(doc) for doc in docs}

    async def levels(self, uow: UnitOfWork, keys: Sequence[StockKey]) -> dict[StockKey, StockLevel]:
        ids = [stock_id(warehouse_id, part_number) for warehouse_id, part_number in keys]
        found: dict[StockKey, StockLevel] = {}
        for batch in _batches(ids):
            async for doc in database_of(uow)[STOCK].find(
                {"_id": {"$in": list(batch)}}, session=uow.session
            ):
                level = _level(doc)
                found[(level.warehouse_id, level.part_number)] = level
        return found

    async def save_warehouses(
        self, uow: UnitOfWork, warehouses: Sequence[Warehouse], *, at: datetime
    ) -> None:
        # Whole-document replacement: the count is the authority on a warehouse's record.
        for batch in _batches(warehouses):
            await database_of(uow)[WAREHOUSES].bulk_write(
                [
                    ReplaceOne(
                        {"_id": w.warehouse_id},
                        {
                            "_id": w.warehouse_id,
                            "name": w.name,
                            "country": w.country,
                            "updated_at": at,
                        },
                        upsert=True,
                    )
                    for w in batch
                ],
                ordered=True,
                session=uow.session,
            )

    async def save_counts(
        self, uow: UnitOfWork, lines: Sequence[CountedLine], *, at: datetime
    ) -> None:
        for batch in _batches(lines):
            kept = await self._descriptions(
                uow,
                [
                    stock_id(line.after.warehouse_id, line.after.part_number)
                    for line in batch
                    if line.before is not None and line.description is None
                ],
            )
            operations: list[InsertOne[Document] | ReplaceOne[Document]] = []
            for line in batch:
                after = line.after
                _id = stock_id(after.warehouse_id, after.part_number)
                document: Document = {
                    "_id": _id,
                    "warehouse_id": after.warehouse_id,
                    "part_number": after.part_number,
                    "on_hand": after.on_hand,
                    "reserved": after.reserved,
                    "available": after.available,
                    "description": line.description or kept.get(_id),
                    "counted_at": at,
                }
                if line.before is None:
                    operations.append(InsertOne(document))
                else:
                    # Only if nothing moved since the level was read (no reservation, no count).
                    operations.append(
                        ReplaceOne(
                            {
                                "_id": _id,
                                "on_hand": line.before.on_hand,
                                "reserved": line.before.reserved,
                            },
                            document,
                        )
                    )
            try:
                result = await database_of(uow)[STOCK].bulk_write(
                    operations, ordered=True, session=uow.session
                )
            except (BulkWriteError, DuplicateKeyError) as exc:
                msg = "a stock line was created by someone else during the count"
                raise StockChanged(msg) from exc
            if result.inserted_count + result.matched_count != len(operations):
                msg = "a stock line was reserved or counted by someone else during the count"
                raise StockChanged(msg)

    async def _descriptions(self, uow: UnitOfWork, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        docs = (
            await database_of(uow)[STOCK]
            .find({"_id": {"$in": list(ids)}}, {"_id": 1, "description": 1}, session=uow.session)
            .to_list()
        )
        return {str(doc["_id"]): str(doc["description"]) for doc in docs if doc.get("description")}


class MongoReservationLog:
    """Reservations and the decision recorded per work order."""

    async def load(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        ids = sorted(set(work_order_ids))
        found = await (
            database_of(uow)[WORK_ORDER_PARTS]
            .find({"_id": {"$in": ids}}, {"_id": 1}, session=uow.session)
            .to_list()
        )
        uow.memo[_LOADED_DECISIONS] = (set(ids), {str(doc["_id"]) for doc in found})

    async def decided(self, uow: UnitOfWork, work_order_id: str) -> bool:
        loaded = uow.memo.get(_LOADED_DECISIONS)
        if isinstance(loaded, tuple) and work_order_id in loaded[0]:
            return work_order_id in loaded[1]
        doc = await database_of(uow)[WORK_ORDER_PARTS].find_one(
            {"_id": work_order_id}, {"_id": 1}, session=uow.session
        )
        return doc is not None

    async def record(self, uow: UnitOfWork, decision: ReservationDecision) -> None:
        plan = decision.plan
        # Written at commit with the batch's other decisions (the unique ids still refuse a
        # second decision for a work order there).
        appends = mongo_uow(uow)
        loaded = uow.memo.get(_LOADED_DECISIONS)
        if isinstance(loaded, tuple):
            loaded[1].add(decision.work_order_id)
        if plan.allocations:
            _memo_set(uow, _RESERVED_HERE).add(decision.work_order_id)
            appends.append_at_commit(
                RESERVATIONS,
                [
                    {
                        "_id": reservation_id(
                            decision.work_order_id, a.part_number, a.warehouse_id
                        ),
                        "work_order_id": decision.work_order_id,
                        "tenant": decision.tenant,
                        "part_number": a.part_number,
                        "warehouse_id": a.warehouse_id,
                        "quantity": a.quantity,
                        "status": RESERVED,
                        "reserved_at": decision.decided_at,
                    }
                    for a in plan.allocations
                ],
            )
        appends.append_at_commit(
            WORK_ORDER_PARTS,
            [
                {
                    "_id": decision.work_order_id,
                    "tenant": decision.tenant,
                    "status": "reserved" if plan.complete else "backordered",
                    "site_country": decision.site_country,
                    "required": [
                        {"part_number": d.part_number, "quantity": d.quantity} for d in plan.demand
                    ],
                    "missing": [
                        {"part_number": s.part_number, "quantity": s.quantity}
                        for s in plan.shortfalls
                    ],
                    "units_reserved": plan.units_reserved,
                    "units_missing": plan.units_missing,
                    "decided_at": decision.decided_at,
                    "event_id": decision.event_id,
                }
            ],
        )

    async def load_reservations(self, uow: UnitOfWork, work_order_ids: Sequence[str]) -> None:
        ids = sorted(set(work_order_ids))
        if not ids:
            return
        db = database_of(uow)
        lines: dict[str, list[Document]] = {}
        for batch in _batches(ids):
            for doc in await (
                db[RESERVATIONS]
                .find({"work_order_id": {"$in": list(batch)}}, session=uow.session)
                .to_list()
            ):
                lines.setdefault(str(doc["work_order_id"]), []).append(doc)
        # Only an order without lines needs its settlement looked up (see reservations_of).
        without = [work_order_id for work_order_id in ids if work_order_id not in lines]
        settled: set[str] = set()
        for batch in _batches(without):
            settled.update(
                str(doc["_id"])
                for doc in await db[SETTLEMENTS]
                .find({"_id": {"$in": list(batch)}}, {"_id": 1}, session=uow.session)
                .to_list()
            )
        uow.memo[_LOADED_RESERVATIONS] = _LoadedReservations(set(ids), lines, settled)

    async def reservations_of(
        self, uow: UnitOfWork, work_order_id: str, *, tenant: str
    ) -> OrderReservations:
        if work_order_id in _memo_set(uow, _RESERVED_HERE):
            msg = (
                f"the reservations of {work_order_id} are written when this unit of work commits; "
                "settle them in a unit of work of their own"
            )
            raise ReservationsNotWrittenYet(msg)
        settled_here = work_order_id in _memo_set(uow, _SETTLED_HERE)
        loaded = uow.memo.get(_LOADED_RESERVATIONS)
        if isinstance(loaded, _LoadedReservations) and work_order_id in loaded.looked_up:
            return order_reservations(
                work_order_id,
                loaded.lines.get(work_order_id, []),
                tenant=tenant,
                settled=settled_here or work_order_id in loaded.settled,
            )
        db = database_of(uow)
        docs = (
            await db[RESERVATIONS]
            .find(equals({"work_order_id": work_order_id}), session=uow.session)
            .to_list()
        )
        # A settlement ends every active line with it: an order with lines is settled exactly
        # when none is active, so only an order without lines needs its settlement looked up.
        settled = settled_here or (
            not docs
            and await db[SETTLEMENTS].find_one(
                equals({"_id": work_order_id}), {"_id": 1}, session=uow.session
            )
            is not None
        )
        return order_reservations(work_order_id, docs, tenant=tenant, settled=settled)

    async def settle(
        self, uow: UnitOfWork, work_order_id: str, line: LineSettlement, *, event_id: str
    ) -> bool:
        reservation = line.reservation
        _id = reservation_id(work_order_id, reservation.part_number, reservation.warehouse_id)
        changes: Document = {
            "status": line.outcome,
            "consumed": line.consumed,
            "released": line.released,
            "settled_by": event_id,
        }
        result = await database_of(uow)[RESERVATIONS].update_one(
            {
                **equals({"_id": _id, "quantity": reservation.quantity}),
                "status": {"$nin": list(SETTLED_STATUSES)},
            },
            {"$set": changes},
            session=uow.session,
        )
        if result.matched_count != 1:
            return False
        loaded = uow.memo.get(_LOADED_RESERVATIONS)
        if isinstance(loaded, _LoadedReservations):
            for doc in loaded.lines.get(work_order_id, ()):
                if doc["_id"] == _id:
                    doc.update(changes)
        return True

    async def record_settlement(self, uow: UnitOfWork, record: SettlementRecord) -> None:
        # Written at commit (one write for a batch); the work order id as ``_id`` refuses a
        # second settlement of the same order there.
        mongo_uow(uow).append_at_commit(SETTLEMENTS, [settlement_document(record)])
        _memo_set(uow, _SETTLED_HERE).add(record.work_order_id)


@dataclass(frozen=True)
class StockRow:
    warehouse_id: str
    country: str
    part_number: str
    description: str | None
    level: StockLevel
    counted_at: datetime | None


async def stock_overview(
    db: AsyncDatabase[Document],
    *,
    part_number: str | None = None,
    warehouse_id: str | None = None,
    limit: int = 200,
) -> tuple[list[StockRow], int]:
    """Stock lines (by part number, then warehouse) and how many match in total."""
    query: dict[str, Any] = {}
    if part_number is not None:
        query["part_number"] = part_number
    if warehouse_id is not None:
        query["warehouse_id"] = warehouse_id
    total = await db[STOCK].count_documents(query)
    docs = (
        await db[STOCK]
        .find(query)
        .sort([("part_number", ASCENDING), ("warehouse_id", ASCENDING)])
        .limit(limit)
        .to_list()
    )
    countries = {
        str(doc["_id"]): str(doc["country"])
        for doc in await db[WAREHOUSES]
        .find({"_id": {"$in": sorted({str(d["warehouse_id"]) for d in docs})}})
        .to_list()
    }
    rows = [
        StockRow(
            warehouse_id=str(doc["warehouse_id"]),
            country=countries.get(str(doc["warehouse_id"]), "?"),
            part_number=str(doc["part_number"]),
            description=doc.get("description"),
            level=_level(doc),
            counted_at=doc.get("counted_at"),
        )
        for doc in docs
    ]
    return rows, total
