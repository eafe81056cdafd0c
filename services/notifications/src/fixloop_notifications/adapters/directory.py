"""What notifications remembers of orders and contractors, to address later notices.

``notice_orders`` keeps each work order's requester, site and contractor from
``workorder.received`` on (one document per order, replaced whole — moments as epoch
milliseconds); ``notice_contractors`` keeps each contractor's name and contact as offers and
credential alerts tell them; ``notice_parked_facts`` keeps the events about an order that came
before the order did, until it does. All are written in the unit of work that consumes the
event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel

from fixloop_notifications.domain.notices import ContractorCard, NoticeOrder
from fixloop_shared.contracts.registry import payload_model
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryStore, MemoryUnitOfWork
from fixloop_shared.store import Document, Store, database_of, equals

NOTICE_ORDERS = "notice_orders"
NOTICE_CONTRACTORS = "notice_contractors"
PARKED_FACTS = "notice_parked_facts"
"""Events about orders not received yet, kept until they are (a month at most)."""
PARKED_FOR = timedelta(days=30)


async def create_directory_indexes(store: Store) -> None:
    await store.ensure_indexes(
        {
            PARKED_FACTS: [
                IndexModel([("work_order_id", ASCENDING), ("parked_at_ms", ASCENDING)]),
                IndexModel(
                    [("parked_at", ASCENDING)], expireAfterSeconds=int(PARKED_FOR.total_seconds())
                ),
            ]
        }
    )


def parked_to_document(work_order_id: str, event: Event[Any], now: datetime) -> Document:
    envelope = event.envelope
    return {
        "_id": f"{work_order_id}:{envelope.id}",
        "work_order_id": work_order_id,
        "parked_at": now,
        "parked_at_ms": int(now.timestamp() * 1000),
        "envelope": {
            "id": envelope.id,
            "type": envelope.type,
            "source": envelope.source,
            "time_ms": int(envelope.time.timestamp() * 1000),
            "subject": envelope.subject,
            "tenant": envelope.tenant,
            "correlationid": envelope.correlationid,
            "traceparent": envelope.traceparent,
        },
        "payload": event.payload.model_dump_json(),
    }


def parked_from_document(doc: Document) -> Event[Any] | None:
    """The kept event (None if its type is no longer known)."""
    head = doc["envelope"]
    model = payload_model(head["type"])
    if model is None:
        return None
    envelope = EventEnvelope(
        id=head["id"],
        type=head["type"],
        source=head["source"],
        time=datetime.fromtimestamp(int(head["time_ms"]) / 1000, tz=UTC),
        subject=head["subject"],
        tenant=head["tenant"],
        correlationid=head["correlationid"],
        traceparent=head.get("traceparent"),
    )
    return Event(envelope, model.model_validate_json(doc["payload"]))


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _moment(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def card_to_document(card: ContractorCard) -> Document:
    return {
        "_id": card.contractor_id,
        "name": card.name,
        "email": card.email,
        "phone": card.phone,
        "timezone": card.timezone,
    }


def card_from_document(doc: Document) -> ContractorCard:
    return ContractorCard(
        contractor_id=str(doc["_id"]),
        name=doc["name"],
        email=doc.get("email"),
        phone=doc.get("phone"),
        timezone=doc.get("timezone"),
    )


def order_to_document(order: NoticeOrder) -> Document:
    return {
        "_id": order.work_order_id,
        "tenant": order.tenant,
        "external_id": order.external_id,
        "source_platform": order.source_platform,
        "requester_name": order.requester_name,
        "requester_email": order.requester_email,
        "requester_phone": order.requester_phone,
        "requester_sms_consent": order.requester_sms_consent,
        "requester_locale": order.requester_locale,
        "site_name": order.site_name,
        "site_city": order.site_city,
        "site_country": order.site_country,
        "site_address": list(order.site_address),
        "site_timezone": order.site_timezone,
        "equipment_id": order.equipment_id,
        "equipment_class": order.equipment_class,
        "equipment_make": order.equipment_make,
        "priority": order.priority,
        "category": order.category,
        "description": order.description,
        "received_at_ms": _ms(order.received_at),
        "reported_at_ms": _ms(order.reported_at),
        "contractor": None if order.contractor is None else card_to_document(order.contractor),
    }


def order_from_document(doc: Document) -> NoticeOrder:
    contractor = doc.get("contractor")
    received = _moment(doc["received_at_ms"])
    assert received is not None  # noqa: S101 - always written
    return NoticeOrder(
        work_order_id=str(doc["_id"]),
        tenant=doc["tenant"],
        external_id=doc["external_id"],
        source_platform=doc["source_platform"],
        requester_name=doc["requester_name"],
        requester_email=doc["requester_email"],
        requester_phone=doc.get("requester_phone"),
        requester_sms_consent=bool(doc.get("requester_sms_consent", False)),
        requester_locale=doc["requester_locale"],
        site_name=doc["site_name"],
        site_city=doc["site_city"],
        site_country=doc["site_country"],
        site_address=tuple(doc["site_address"]),
        site_timezone=doc["site_timezone"],
        equipment_id=doc["equipment_id"],
        equipment_class=doc["equipment_class"],
        equipment_make=doc.get("equipment_make"),
        priority=doc["priority"],
        category=doc["category"],
        description=doc["description"],
        received_at=received,
        reported_at=_moment(doc.get("reported_at_ms")),
        contractor=card_from_document(contractor) if isinstance(contractor, dict) else None,
    )


class MongoNoticeDirectory:
    """Orders and contractors as notices need them, in the service's MongoDB store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def order(self, uow: UnitOfWork, work_order_id: str) -> NoticeOrder | None:
        doc = await database_of(uow)[NOTICE_ORDERS].find_one(
            {"_id": str(work_order_id)}, session=uow.session
        )
        return None if doc is None else order_from_document(doc)

    async def save_order(self, uow: UnitOfWork, order: NoticeOrder) -> None:
        doc = order_to_document(order)
        await database_of(uow)[NOTICE_ORDERS].replace_one(
            {"_id": doc["_id"]}, doc, upsert=True, session=uow.session
        )

    async def contractor(self, uow: UnitOfWork, contractor_id: str) -> ContractorCard | None:
        doc = await database_of(uow)[NOTICE_CONTRACTORS].find_one(
            {"_id": str(contractor_id)}, session=uow.session
        )
        return None if doc is None else card_from_document(doc)

    async def save_contractor(self, uow: UnitOfWork, card: ContractorCard) -> None:
        doc = card_to_document(card)
        await database_of(uow)[NOTICE_CONTRACTORS].replace_one(
            {"_id": doc["_id"]}, doc, upsert=True, session=uow.session
        )

    async def park(self, uow: UnitOfWork, work_order_id: str, event: Event[Any]) -> None:
        doc = parked_to_document(work_order_id, event, datetime.now(UTC))
        await database_of(uow)[PARKED_FACTS].replace_one(
            {"_id": doc["_id"]}, doc, upsert=True, session=uow.session
        )

    async def parked(self, uow: UnitOfWork, work_order_id: str) -> list[Event[Any]]:
        found = (
            database_of(uow)[PARKED_FACTS]
            .find(equals({"work_order_id": work_order_id}), session=uow.session)
            .sort([("parked_at_ms", ASCENDING), ("_id", ASCENDING)])
        )
        events = [parked_from_document(doc) async for doc in found]
        return [event for event in events if event is not None]

    async def unpark(self, uow: UnitOfWork, work_order_id: str) -> None:
        await database_of(uow)[PARKED_FACTS].delete_many(
            equals({"work_order_id": work_order_id}), session=uow.session
        )

    async def order_of(self, work_order_id: str) -> NoticeOrder | None:
        """The order outside any unit of work (for links and the CLI)."""
        doc = await self._store.db[NOTICE_ORDERS].find_one({"_id": str(work_order_id)})
        return None if doc is None else order_from_document(doc)


class MemoryNoticeDirectory:
    """The same, in a :class:`~fixloop_shared.memory.MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @staticmethod
    def _docs(uow: UnitOfWork, name: str) -> dict[Any, Any]:
        if not isinstance(uow, MemoryUnitOfWork):
            msg = f"the in-memory directory was given {type(uow).__name__}"
            raise TypeError(msg)
        return uow.session.collection(name)

    async def order(self, uow: UnitOfWork, work_order_id: str) -> NoticeOrder | None:
        found: NoticeOrder | None = self._docs(uow, NOTICE_ORDERS).get(work_order_id)
        return found

    async def save_order(self, uow: UnitOfWork, order: NoticeOrder) -> None:
        self._docs(uow, NOTICE_ORDERS)[order.work_order_id] = order

    async def contractor(self, uow: UnitOfWork, contractor_id: str) -> ContractorCard | None:
        found: ContractorCard | None = self._docs(uow, NOTICE_CONTRACTORS).get(contractor_id)
        return found

    async def save_contractor(self, uow: UnitOfWork, card: ContractorCard) -> None:
        self._docs(uow, NOTICE_CONTRACTORS)[card.contractor_id] = card

    async def park(self, uow: UnitOfWork, work_order_id: str, event: Event[Any]) -> None:
        kept = self._docs(uow, PARKED_FACTS).setdefault(work_order_id, [])
        if all(e.envelope.id != event.envelope.id for e in kept):
            kept.append(event)

    async def parked(self, uow: UnitOfWork, work_order_id: str) -> list[Event[Any]]:
        return list(self._docs(uow, PARKED_FACTS).get(work_order_id, []))

    async def unpark(self, uow: UnitOfWork, work_order_id: str) -> None:
        self._docs(uow, PARKED_FACTS).pop(work_order_id, None)

    async def order_of(self, work_order_id: str) -> NoticeOrder | None:
        found: Any = self._store.state.collection(NOTICE_ORDERS).get(work_order_id)
        return found if isinstance(found, NoticeOrder) else None


__all__ = [
    "NOTICE_CONTRACTORS",
    "NOTICE_ORDERS",
    "MemoryNoticeDirectory",
    "MongoNoticeDirectory",
]
