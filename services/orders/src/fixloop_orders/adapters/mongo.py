"""MongoDB storage of work orders: the write-side repository and the tenant-scoped read side.

Collections:

- ``work_orders``: one document per work order. ``(tenant, source_platform, external_id)`` is
  unique: one external order is one work order.
- ``timeline``: the append-only audit trail, one document per entry (never an array inside the
  work order, which would grow without bound). ``(work_order_id, entry_id)`` is unique, so the
  same event can never be appended twice.
- ``offers``: offers made to contractors (from the contractors service), for them to accept or
  decline through the partner API, and how each ended.
- ``lifecycle_timers``: one document per order and timer (automatic verification, closing,
  archiving), fired by the due-work scheduler.
- ``requests``: the first answer to each mutation with a ``request_id``, per principal.

Every filter is built here from typed values (ids and tenants are strings, checked as such), so
nothing from outside can turn into a query operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fixloop_orders.app.ports import (
    ConcurrentUpdateError,
    ExternalOrderConflictError,
    OfferRecord,
    OfferStatus,
    RecordedAnswer,
    TimerKind,
)
from fixloop_orders.app.queries import (
    OfferPosition,
    OfferView,
    PagePosition,
    TimelineEntryView,
    WorkOrderFilter,
    WorkOrderView,
    view_of,
)
from fixloop_orders.domain.details import (
    Address,
    Equipment,
    PartLine,
    Requester,
    Site,
    WorkOrderDetails,
)
from fixloop_orders.domain.lifecycle import ChecklistItem, Completion, PartQuantity, Photo
from fixloop_orders.domain.work_order import (
    ExternalOrderKey,
    TimelineEntry,
    WorkOrder,
    WorkOrderState,
)
from fixloop_shared.due_work import epoch_ms, unleased
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, equals, mongo_uow
from fixloop_shared.vocabulary import Category, ChecklistOutcome, Priority

WORK_ORDERS = "work_orders"
TIMELINE = "timeline"
OFFERS = "offers"
LIFECYCLE_TIMERS = "lifecycle_timers"
REQUESTS = "requests"
LIFECYCLE_TIMER_WORK = "lifecycle-timers"
"""The due-work kind of the lifecycle timers."""

LEGACY_STATES: Mapping[str, WorkOrderState] = {
    "dispatch_requested": WorkOrderState.DISPATCHING,
    "started": WorkOrderState.ON_SITE,
    "completed": WorkOrderState.WORK_COMPLETED,
}
"""States stored by earlier versions, read as today's."""

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
        # Lists, newest update first, paged on one sortable key (see ``list_key``).
        IndexModel([("tenant", ASCENDING), ("list_key", DESCENDING)]),
        IndexModel([("contractor_id", ASCENDING), ("list_key", DESCENDING)]),
    ],
    OFFERS: [
        IndexModel([("contractor_id", ASCENDING), ("status", ASCENDING), ("list_key", ASCENDING)]),
        IndexModel([("contractor_id", ASCENDING), ("list_key", ASCENDING)]),
        IndexModel([("work_order_id", ASCENDING)]),
    ],
    LIFECYCLE_TIMERS: [IndexModel([("due_ms", ASCENDING), ("lease_until_ms", ASCENDING)])],
    # Also creates the collection at start-up: on the embedded store a transaction whose first
    # command reads a collection that does not exist yet fails to commit.
    REQUESTS: [IndexModel([("principal", ASCENDING), ("at", ASCENDING)])],
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


def list_key(moment: datetime, ident: str) -> str:
    """One sortable string for (moment, id): lists page on a single range of it.

    A keyset condition on two fields needs an ``$or``, which the embedded store answers wrongly
    (documents outside it, and a scan of the whole collection); one field is also the cheapest
    range on MongoDB.
    """
    return f"{epoch_ms(moment):015d}:{ident}"


def order_document(order: WorkOrder) -> Document:
    details = order.details
    return {
        "list_key": list_key(order.updated_at, order.work_order_id),
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
        "contractor_id": order.contractor_id,
        "window_start": None if order.window is None else order.window[0],
        "window_end": None if order.window is None else order.window[1],
        "eta": order.eta,
        "completion": None if order.completion is None else _completion_document(order.completion),
        "completed_at": order.completed_at,
        "verify_by": order.verify_by,
        "closed_at": order.closed_at,
        "reopen_count": order.reopen_count,
        "follow_up_of": order.follow_up_of,
    }


def _completion_document(completion: Completion) -> Document:
    return {
        "resolution_code": completion.resolution_code,
        "work_summary": completion.work_summary,
        "labour_minutes": completion.labour_minutes,
        "parts_used": [asdict(part) for part in completion.parts_used],
        "checklist": [
            {"item": item.item, "outcome": item.outcome.value, "note": item.note}
            for item in completion.checklist
        ],
        "photos": [asdict(photo) for photo in completion.photos],
    }


def _completion(doc: Document | None) -> Completion | None:
    if not doc:
        return None
    return Completion(
        resolution_code=doc["resolution_code"],
        work_summary=doc["work_summary"],
        labour_minutes=int(doc["labour_minutes"]),
        parts_used=tuple(
            PartQuantity(part_number=p["part_number"], quantity=int(p["quantity"]))
            for p in doc.get("parts_used") or ()
        ),
        checklist=tuple(
            ChecklistItem(
                item=c["item"], outcome=ChecklistOutcome(c["outcome"]), note=c.get("note")
            )
            for c in doc.get("checklist") or ()
        ),
        photos=tuple(
            Photo(
                uri=p["uri"],
                content_type=p["content_type"],
                size_bytes=int(p["size_bytes"]),
                sha256=p["sha256"],
            )
            for p in doc.get("photos") or ()
        ),
    )


def stored_state(value: str) -> WorkOrderState:
    legacy = LEGACY_STATES.get(value)
    return legacy if legacy is not None else WorkOrderState(value)


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
            sms_consent=bool(requester.get("sms_consent", False)),
        ),
        required_parts=tuple(
            PartLine(part_number=part["part_number"], quantity=int(part["quantity"]))
            for part in doc["required_parts"]
        ),
        reported_at=doc.get("reported_at"),
    )


def order_from_document(doc: Document) -> WorkOrder:
    version = int(doc["version"])
    start, end = doc.get("window_start"), doc.get("window_end")
    return WorkOrder(
        work_order_id=doc["_id"],
        tenant=doc["tenant"],
        source_platform=doc["source_platform"],
        details=_details(doc),
        state=stored_state(doc["state"]),
        received_at=doc["received_at"],
        updated_at=doc["updated_at"],
        reopened_at=doc.get("reopened_at"),
        version=version,
        stored_version=version,
        contractor_id=doc.get("contractor_id"),
        window=None if start is None or end is None else (start, end),
        eta=doc.get("eta"),
        completion=_completion(doc.get("completion")),
        completed_at=doc.get("completed_at"),
        verify_by=doc.get("verify_by"),
        closed_at=doc.get("closed_at"),
        reopen_count=int(doc.get("reopen_count") or 0),
        follow_up_of=doc.get("follow_up_of"),
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

    async def get_job(
        self, uow: UnitOfWork | None, contractor_id: str, work_order_id: str
    ) -> WorkOrder | None:
        doc = await self._db[WORK_ORDERS].find_one(
            equals(
                {
                    "_id": _text(work_order_id, "work_order_id"),
                    "contractor_id": _text(contractor_id, "contractor_id"),
                }
            ),
            session=None if uow is None else uow.session,
        )
        return None if doc is None else order_from_document(doc)

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        try:
            await self._db[WORK_ORDERS].insert_one(order_document(order), session=uow.session)
        except DuplicateKeyError as exc:
            raise ExternalOrderConflictError(str(order.key)) from exc
        order.stored_version = order.version
        await self._append_entries(uow, order)

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        # The whole document is replaced, guarded by the version read (optimistic concurrency).
        # A replacement keeps every value's BSON type on every MongoDB-wire store; the embedded
        # one turns datetimes written by ``$set`` into strings.
        result = await self._db[WORK_ORDERS].replace_one(
            equals(
                {
                    "_id": _text(order.work_order_id, "work_order_id"),
                    "tenant": _text(order.tenant, "tenant"),
                    "version": order.stored_version,
                }
            ),
            order_document(order),
            session=uow.session,
        )
        if result.matched_count != 1:
            msg = f"work order {order.work_order_id} changed while it was being updated"
            raise ConcurrentUpdateError(msg)
        order.stored_version = order.version
        uow.memo[(WORK_ORDERS, order.tenant, order.work_order_id)] = order
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


def _ms_moment(value: object) -> datetime | None:
    return (
        None
        if not isinstance(value, int) or value <= 0
        else datetime.fromtimestamp(value / 1000, UTC)
    )


def offer_document(offer: OfferRecord) -> Document:
    return {
        "_id": offer.offer_id,
        "tenant": offer.tenant,
        "work_order_id": offer.work_order_id,
        "contractor_id": offer.contractor_id,
        "contractor_name": offer.contractor_name,
        "offered_at": offer.offered_at,
        "expires_at": offer.expires_at,
        "status": offer.status.value,
        "list_key": list_key(offer.offered_at, offer.offer_id),
        # A number, not a datetime: the embedded store keeps a ``$set`` datetime as a string.
        "settled_at_ms": 0 if offer.settled_at is None else epoch_ms(offer.settled_at),
    }


def offer_from_document(doc: Document) -> OfferRecord:
    return OfferRecord(
        offer_id=doc["_id"],
        tenant=doc["tenant"],
        work_order_id=doc["work_order_id"],
        contractor_id=doc["contractor_id"],
        contractor_name=doc["contractor_name"],
        offered_at=doc["offered_at"],
        expires_at=doc["expires_at"],
        status=OfferStatus(doc["status"]),
        settled_at=_ms_moment(doc.get("settled_at_ms")),
    )


class MongoOfferBook:
    """The :class:`~fixloop_orders.app.ports.OfferBook` on MongoDB."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def add(self, uow: UnitOfWork, offer: OfferRecord) -> None:
        await self._db[OFFERS].update_one(
            equals({"_id": _text(offer.offer_id, "offer_id")}),
            {"$setOnInsert": offer_document(offer)},
            upsert=True,
            session=uow.session,
        )

    async def get(self, uow: UnitOfWork | None, offer_id: str) -> OfferRecord | None:
        doc = await self._db[OFFERS].find_one(
            equals({"_id": _text(offer_id, "offer_id")}),
            session=None if uow is None else uow.session,
        )
        return None if doc is None else offer_from_document(doc)

    async def settle(
        self, uow: UnitOfWork, offer_id: str, status: OfferStatus, at: datetime
    ) -> bool:
        result = await self._db[OFFERS].update_one(
            equals({"_id": _text(offer_id, "offer_id"), "status": OfferStatus.OPEN.value}),
            {"$set": {"status": status.value, "settled_at_ms": epoch_ms(at)}},
            session=uow.session,
        )
        return result.modified_count == 1


def timer_id(work_order_id: str, kind: TimerKind) -> str:
    return f"{_text(work_order_id, 'work_order_id')}:{kind.value}"


def due_timers(now: datetime) -> dict[str, object]:
    """Lifecycle timers due at ``now`` (epoch milliseconds: an indexed range on every store)."""
    return {"due_ms": {"$lte": epoch_ms(now)}}


class MongoLifecycleTimers:
    """The :class:`~fixloop_orders.app.ports.LifecycleTimers` on MongoDB (due-work items)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def set(
        self, uow: UnitOfWork, *, tenant: str, work_order_id: str, kind: TimerKind, at: datetime
    ) -> None:
        doc = {
            "_id": timer_id(work_order_id, kind),
            "tenant": _text(tenant, "tenant"),
            "work_order_id": work_order_id,
            "kind": kind.value,
            "due_ms": epoch_ms(at),
            **unleased(),
        }
        await self._store.db[LIFECYCLE_TIMERS].replace_one(
            equals({"_id": doc["_id"]}), doc, upsert=True, session=uow.session
        )
        store = self._store
        uow.after_commit(lambda: store.notify_due([(LIFECYCLE_TIMER_WORK, at)]))

    async def clear(self, uow: UnitOfWork, work_order_id: str, kind: TimerKind) -> None:
        await self._store.db[LIFECYCLE_TIMERS].delete_one(
            equals({"_id": timer_id(work_order_id, kind)}), session=uow.session
        )


def request_key(principal_id: str, request_id: str) -> str:
    return f"{_text(principal_id, 'principal_id')} {_text(request_id, 'request_id')}"


class MongoRequestLog:
    """The :class:`~fixloop_orders.app.ports.RequestLog` on MongoDB."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def find(
        self, uow: UnitOfWork | None, principal_id: str, request_id: str
    ) -> RecordedAnswer | None:
        doc = await self._db[REQUESTS].find_one(
            equals({"_id": request_key(principal_id, request_id)}),
            session=None if uow is None else uow.session,
        )
        if doc is None:
            return None
        return RecordedAnswer(fingerprint=doc["fingerprint"], answer=bytes(doc["answer"]))

    async def record(
        self,
        uow: UnitOfWork,
        principal_id: str,
        request_id: str,
        answer: RecordedAnswer,
        *,
        at: datetime,
    ) -> None:
        try:
            await self._db[REQUESTS].insert_one(
                {
                    "_id": request_key(principal_id, request_id),
                    "principal": principal_id,
                    "fingerprint": answer.fingerprint,
                    "answer": answer.answer,
                    "at": at,
                },
                session=uow.session,
            )
        except DuplicateKeyError as exc:
            msg = f"request {request_id!r} of {principal_id!r} was answered meanwhile"
            raise ConcurrentUpdateError(msg) from exc


# --------------------------------------------------------------------------- read side


def _page_after(after: PagePosition | None) -> dict[str, object]:
    """Orders after ``after`` in newest-first order: one range on ``list_key``."""
    if after is None:
        return {}
    return {"list_key": {"$lt": list_key(after.updated_at, after.work_order_id)}}


NEWEST_FIRST = [("list_key", DESCENDING)]

CONSISTENT_READ_PAUSES = (0.02, 0.05, 0.1, 0.2, 0.4)
"""Pauses before reading an order again whose document and timeline disagree (about 0.8 s in all;
after that the last read is answered as it is)."""


def _steps_agree(view: WorkOrderView) -> bool:
    """Whether the newest lifecycle step in the timeline is the order's own version (always true
    when the timeline shown is cut at its limit: the newest steps may lie beyond it)."""
    if len(view.timeline) >= TIMELINE_VIEW_LIMIT:
        return True
    versions = [int(e.details["version"]) for e in view.timeline if "version" in e.details]
    return max(versions, default=0) == view.version


class MongoWorkOrderQueries:
    """The :class:`~fixloop_orders.app.queries.WorkOrderQueries` on MongoDB."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        # The order and its timeline are two reads. A step committed between them, or (on a
        # store without isolation between sessions) a step's transaction still under way, can
        # show an order one step ahead of or behind its timeline; such a pair is read again.
        view = await self._read_work_order(tenant, work_order_id)
        for pause in CONSISTENT_READ_PAUSES:
            if view is None or _steps_agree(view):
                break
            await asyncio.sleep(pause)
            view = await self._read_work_order(tenant, work_order_id)
        return view

    async def _read_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
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
        return view_of(order_from_document(doc), [_entry_view(entry) for entry in entries])

    async def list_work_orders(
        self,
        tenant: str,
        wanted: WorkOrderFilter,
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        query: dict[str, object] = equals({"tenant": _text(tenant, "tenant")})
        if wanted.states:
            query["state"] = {"$in": sorted(state.value for state in wanted.states)}
        if wanted.site_id is not None:
            query.update(equals({"site.site_id": _text(wanted.site_id, "site_id")}))
        if wanted.equipment_class is not None:
            query.update(
                equals({"equipment.equipment_class": _text(wanted.equipment_class, "class")})
            )
        page = _page_after(after)
        if wanted.updated_since is not None:
            since = {"$gte": f"{epoch_ms(wanted.updated_since):015d}"}
            page = {"list_key": {**since, **page.get("list_key", {})}}  # type: ignore[dict-item]
        query.update(page)
        docs = await self._db[WORK_ORDERS].find(query).sort(NEWEST_FIRST).limit(limit).to_list()
        return [view_of(order_from_document(doc)) for doc in docs]

    async def list_jobs(
        self,
        contractor_id: str,
        states: frozenset[WorkOrderState],
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        query: dict[str, object] = equals({"contractor_id": _text(contractor_id, "contractor_id")})
        if states:
            query["state"] = {"$in": sorted(state.value for state in states)}
        query.update(_page_after(after))
        docs = await self._db[WORK_ORDERS].find(query).sort(NEWEST_FIRST).limit(limit).to_list()
        return [view_of(order_from_document(doc)) for doc in docs]

    async def list_offers(
        self,
        contractor_id: str,
        *,
        open_only: bool,
        after: OfferPosition | None,
        limit: int,
    ) -> list[OfferView]:
        query: dict[str, object] = equals({"contractor_id": _text(contractor_id, "contractor_id")})
        if open_only:
            query.update(equals({"status": OfferStatus.OPEN.value}))
        if after is not None:
            query["list_key"] = {"$gt": list_key(after.offered_at, after.offer_id)}
        docs = (
            await self._db[OFFERS]
            .find(query)
            .sort([("list_key", ASCENDING)])
            .limit(limit)
            .to_list()
        )
        offers = [offer_from_document(doc) for doc in docs]
        ids = sorted({offer.work_order_id for offer in offers})
        orders = {
            doc["_id"]: view_of(order_from_document(doc))
            for doc in await self._db[WORK_ORDERS].find({"_id": {"$in": ids}}).to_list()
        }
        return [
            OfferView(
                offer=offer,
                order=orders.get(offer.work_order_id)
                if orders.get(offer.work_order_id) is not None
                and orders[offer.work_order_id].tenant == offer.tenant
                else None,
            )
            for offer in offers
        ]


__all__ = [
    "EXTERNAL_KEY_INDEX",
    "INDEXES",
    "LIFECYCLE_TIMERS",
    "LIFECYCLE_TIMER_WORK",
    "OFFERS",
    "REQUESTS",
    "TIMELINE",
    "TIMELINE_ENTRY_INDEX",
    "TIMELINE_VIEW_LIMIT",
    "WORK_ORDERS",
    "MongoLifecycleTimers",
    "MongoOfferBook",
    "MongoRequestLog",
    "MongoWorkOrderQueries",
    "MongoWorkOrders",
    "due_timers",
    "ensure_indexes",
    "entry_document",
    "order_document",
    "order_from_document",
]
