"""MongoDB documents of the parts service and the repositories that read and write them.

Collections:

- ``warehouses``: ``_id`` = warehouse id; name, country.
- ``stock``: one document per (warehouse, part number), ``_id`` = ``"<warehouse>/<part>"`` (``/``
  occurs in neither identifier); ``on_hand``, ``reserved`` and ``available`` (= on_hand -
  reserved, kept in the document so that a reservation is one conditional ``$inc``).
- ``reservations``: one document per (work order, part number, warehouse), append-only.
- ``work_order_parts``: one document per work order: the decision (reserved or backordered),
  what was required and what is missing.

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
    ReservationDecision,
    StockChanged,
    StockKey,
)
from fixloop_parts.domain import Allocation, SourceStock, StockLevel, Warehouse
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, database_of, mongo_uow

WAREHOUSES = "warehouses"
STOCK = "stock"
RESERVATIONS = "reservations"
WORK_ORDER_PARTS = "work_order_parts"

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
        IndexModel(
            [("work_order_id", ASCENDING), ("part_number", ASCENDING), ("warehouse_id", ASCENDING)],
            unique=True,
            name="one_per_work_order_part_warehouse",
        ),
    ],
    WORK_ORDER_PARTS: [
        IndexModel([("tenant", ASCENDING), ("decided_at", ASCENDING)], name="tenant_decided"),
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


class MongoStock:
    """Warehouses and stock levels."""

    async def load(self, uow: UnitOfWork, part_numbers: Sequence[str]) -> None:
        wanted = sorted(set(part_numbers))
        if not wanted:
            return
        db = database_of(uow)
        rows: dict[str, list[Document]] = {part: [] for part in wanted}
        for doc in (
            await db[STOCK].find({"part_number": {"$in": wanted}}, session=uow.session).to_list()
        ):
            rows[str(doc["part_number"])].append(doc)
        countries = {
            str(doc["_id"]): str(doc["country"])
            for doc in await db[WAREHOUSES].find({}, session=uow.session).to_list()
        }
        uow.memo[_LOADED_STOCK] = rows
        uow.memo[_LOADED_COUNTRIES] = countries

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
