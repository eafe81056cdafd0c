"""MongoDB storage of work orders: the write-side repository and the tenant-scoped read side.

Collections:

- ``work_orders``: one document per work order. ``(tenant, source_platform, external_id)`` is
  unique: one external order is one work order.
- ``timeline``: the append-only audit trail, one document per entry (never an array inside the
  work order, which would grow without bound). ``(work_order_id, entry_id)`` is unique, so the
  same event can never be appended twice.

Every filter is built here from typed values (ids and tenants are strings, checked as such), so
nothing from outside can turn into a query operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fixloop_orders.app.ports import ConcurrentUpdateError, ExternalOrderConflictError
from fixloop_orders.app.queries import TimelineEntryView, WorkOrderView
from fixloop_orders.domain.details import (
    Address,
    Equipment,
    PartLine,
    Requester,
    Site,
    WorkOrderDetails,
)
from fixloop_orders.domain.work_order import (
    ExternalOrderKey,
    TimelineEntry,
    WorkOrder,
    WorkOrderState,
)
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, equals, mongo_uow
from fixloop_shared.vocabulary import Category, Priority

WORK_ORDERS = "work_orders"
TIMELINE = "timeline"

EXTERNAL_KEY_INDEX = "one_work_order_per_external_order"
TIMELINE_ENTRY_INDEX = "one_entry_per_event"

TIMELINE_VIEW_LIMIT = 1000
"""The most timeline entries a read returns (oldest first)."""

INDEXES: Mapping[str, list[IndexModel]] = {
    WORK_ORDERS: [
        IndexModel(
            [("tenant", ASCENDING), ("source_platform", ASCENDING), ("external_id", ASCENDING)],
            unique=True,
            name=EXTERNAL_KEY_INDEX,
        ),
        IndexModel([("tenant", ASCENDING), ("state", ASCENDING), ("updated_at", ASCENDING)]),
    ],
    TIMELINE: [
        IndexModel(
            [("work_order_id", ASCENDING), ("entry_id", ASCENDING)],
            unique=True,
            name=TIMELINE_ENTRY_INDEX,
        ),
        IndexModel(
            [
                ("tenant", ASCENDING),
                ("work_order_id", ASCENDING),
                ("at", ASCENDING),
                ("entry_id", ASCENDING),
            ]
        ),
    ],
}


async def ensure_indexes(store: Store) -> None:
    """Create the orders collections' indexes (idempotent; run at start-up)."""
    await store.ensure_indexes(dict(INDEXES))


def _text(value: object, name: str) -> str:
    """``value`` if it is a string; anything else never reaches a filter."""
    if not isinstance(value, str):
        msg = f"{name} must be a string, not {type(value).__name__}"
        raise TypeError(msg)
    return value


# --------------------------------------------------------------------------- documents


def order_document(order: WorkOrder) -> Document:
    details = order.details
    return {
        "_id": order.work_order_id,
        "tenant": order.tenant,
        "source_platform": order.source_platform,
        "external_id": details.external_id,
        "state": order.state.value,
        "site": asdict(details.site),
        "equipment": asdict(details.equipment),
        "category": details.category.value,
        "priority": details.priority.value,
        "description": details.description,
        "requester": asdict(details.requester),
        "required_parts": [asdict(part) for part in details.required_parts],
        "reported_at": details.reported_at,
        "received_at": order.received_at,
        "updated_at": order.updated_at,
        "reopened_at": order.reopened_at,
        "version": order.version,
    }


def _site(doc: Document) -> Site:
    address = doc["address"]
    return Site(
        site_id=doc["site_id"],
        name=doc["name"],
        address=Address(
            line1=address["line1"],
            line2=address.get("line2"),
            city=address["city"],
            postal_code=address["postal_code"],
            country=address["country"],
        ),
        timezone=doc["timezone"],
    )


def _details(doc: Document) -> WorkOrderDetails:
    equipment, requester = doc["equipment"], doc["requester"]
    return WorkOrderDetails(
        external_id=doc["external_id"],
        site=_site(doc["site"]),
        equipment=Equipment(
            equipment_id=equipment["equipment_id"],
            equipment_class=equipment["equipment_class"],
            manufacturer=equipment.get("manufacturer"),
            model=equipment.get("model"),
        ),
        category=Category(doc["category"]),
        priority=Priority(doc["priority"]),
        description=doc["description"],
        requester=Requester(
            name=requester["name"],
            email=requester["email"],
            phone=requester.get("phone"),
            locale=requester["locale"],
        ),
        required_parts=tuple(
            PartLine(part_number=part["part_number"], quantity=int(part["quantity"]))
            for part in doc["required_parts"]
        ),
        reported_at=doc.get("reported_at"),
    )


def order_from_document(doc: Document) -> WorkOrder:
    return WorkOrder(
        work_order_id=doc["_id"],
        tenant=doc["tenant"],
        source_platform=doc["source_platform"],
        details=_details(doc),
        state=WorkOrderState(doc["state"]),
        received_at=doc["received_at"],
        updated_at=doc["updated_at"],
        reopened_at=doc.get("reopened_at"),
        version=int(doc["version"]),
    )


def entry_document(order: WorkOrder, entry: TimelineEntry, recorded_at: datetime) -> Document:
    return {
        "work_order_id": order.work_order_id,
        "tenant": order.tenant,
        "entry_id": entry.entry_id,
        "at": entry.at,
        "kind": entry.kind,
        "summary": entry.summary,
        "event_type": entry.event_type,
        "details": dict(entry.details),
        "recorded_at": entry.recorded_at or recorded_at,
    }


def _entry_view(doc: Document) -> TimelineEntryView:
    details: dict[str, Any] = doc.get("details") or {}
    return TimelineEntryView(
        entry_id=doc["entry_id"],
        at=doc["at"],
        kind=doc["kind"],
        summary=doc["summary"],
        event_type=doc.get("event_type"),
        details={str(key): str(value) for key, value in details.items()},
    )


# --------------------------------------------------------------------------- write side


class MongoWorkOrders:
    """The :class:`~fixloop_orders.app.ports.WorkOrderRepository` on MongoDB."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def find_id_by_key(self, uow: UnitOfWork | None, key: ExternalOrderKey) -> str | None:
        doc = await self._db[WORK_ORDERS].find_one(
            equals(
                {
                    "tenant": _text(key.tenant, "tenant"),
                    "source_platform": _text(key.source_platform, "source_platform"),
                    "external_id": _text(key.external_id, "external_id"),
                }
            ),
            projection={"_id": 1},
            session=None if uow is None else uow.session,
        )
        return None if doc is None else str(doc["_id"])

    async def load(self, uow: UnitOfWork, tenant: str, work_order_ids: Sequence[str]) -> None:
        ids = sorted({_text(i, "work_order_id") for i in work_order_ids})
        if not ids:
            return
        found = self._db[WORK_ORDERS].find(
            {"_id": {"$in": ids}, **equals({"tenant": _text(tenant, "tenant")})},
            session=uow.session,
        )
        async for doc in found:
            uow.memo[(WORK_ORDERS, tenant, doc["_id"])] = order_from_document(doc)

    async def get(
        self, uow: UnitOfWork | None, tenant: str, work_order_id: str
    ) -> WorkOrder | None:
        if uow is not None:
            loaded = uow.memo.get((WORK_ORDERS, tenant, work_order_id))
            if isinstance(loaded, WorkOrder):
                return loaded
        doc = await self._db[WORK_ORDERS].find_one(
            equals(
                {"_id": _text(work_order_id, "work_order_id"), "tenant": _text(tenant, "tenant")}
            ),
            session=None if uow is None else uow.session,
        )
        return None if doc is None else order_from_document(doc)

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        try:
            await self._db[WORK_ORDERS].insert_one(order_document(order), session=uow.session)
        except DuplicateKeyError as exc:
            raise ExternalOrderConflictError(str(order.key)) from exc
        await self._append_entries(uow, order)

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        # The whole document is replaced, guarded by its version (optimistic concurrency).
        # A replacement keeps every value's BSON type on every MongoDB-wire store; the embedded
        # one turns datetimes written by ``$set`` into strings.
        replacement = order_document(order)
        replacement["version"] = order.version + 1
        result = await self._db[WORK_ORDERS].replace_one(
            equals(
                {
                    "_id": _text(order.work_order_id, "work_order_id"),
                    "tenant": _text(order.tenant, "tenant"),
                    "version": order.version,
                }
            ),
            replacement,
            session=uow.session,
        )
        if result.matched_count != 1:
            msg = f"work order {order.work_order_id} changed while it was being updated"
            raise ConcurrentUpdateError(msg)
        order.version += 1
        await self._append_entries(uow, order)

    async def append_timeline(self, uow: UnitOfWork, order: WorkOrder) -> None:
        await self._append_entries(uow, order)

    async def _append_entries(self, uow: UnitOfWork, order: WorkOrder) -> None:
        if order.new_entries:
            # Appended when the unit of work commits: one write for a whole batch's entries.
            mongo_uow(uow).append_at_commit(
                TIMELINE,
                [entry_document(order, entry, order.updated_at) for entry in order.new_entries],
            )
            order.new_entries.clear()


# --------------------------------------------------------------------------- read side


class MongoWorkOrderQueries:
    """The :class:`~fixloop_orders.app.queries.WorkOrderQueries` on MongoDB."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        scope = {"tenant": _text(tenant, "tenant")}
        doc = await self._db[WORK_ORDERS].find_one(
            equals({"_id": _text(work_order_id, "work_order_id"), **scope})
        )
        if doc is None:
            return None
        entries = (
            await self._db[TIMELINE]
            .find(equals({**scope, "work_order_id": work_order_id}))
            .sort([("at", ASCENDING), ("entry_id", ASCENDING)])
            .limit(TIMELINE_VIEW_LIMIT)
            .to_list()
        )
        details = _details(doc)
        return WorkOrderView(
            work_order_id=doc["_id"],
            tenant=doc["tenant"],
            state=doc["state"],
            source_platform=doc["source_platform"],
            external_id=details.external_id,
            site=details.site,
            equipment=details.equipment,
            category=details.category,
            priority=details.priority,
            description=details.description,
            requester=details.requester,
            required_parts=details.required_parts,
            received_at=doc["received_at"],
            updated_at=doc["updated_at"],
            timeline=tuple(_entry_view(entry) for entry in entries),
        )


__all__ = [
    "EXTERNAL_KEY_INDEX",
    "INDEXES",
    "TIMELINE",
    "TIMELINE_ENTRY_INDEX",
    "TIMELINE_VIEW_LIMIT",
    "WORK_ORDERS",
    "MongoWorkOrderQueries",
    "MongoWorkOrders",
    "ensure_indexes",
    "entry_document",
    "order_document",
    "order_from_document",
]
