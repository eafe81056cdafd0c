"""MongoDB persistence of the contractors service.

Collections (besides the shared ``processed_events`` and ``outbox``):

- ``contractors``: one document per contractor, ``_id`` = contractor id. The profile fields are
  replaced by each import; ``open_offers`` (the contractor's load) is owned by dispatch and only
  set when the document is first created.
- ``offers``: one document per work order (unique index on ``work_order_id``): the open offer and
  later its answer (``status`` open/accepted/declined/timed_out), or ``status: unfilled`` when
  nobody could be offered the order. ``expires_at`` is stored, so a time-out sweep can find due
  offers after any restart (index on ``status, expires_at``).

Every filter is built from validated values (slugs, tenant ids, equipment classes); nothing from
outside reaches a filter as a raw document.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from fixloop_contractors.app.ports import UpsertCounts
from fixloop_contractors.domain.dispatch import Candidate, DispatchRequest, NoEligibleContractor
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import EventPayload
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, mongo_uow

log = logging.getLogger(__name__)

CONTRACTORS = "contractors"
OFFERS = "offers"
UNFILLED = "unfilled"

MAX_CANDIDATES = 5000
"""At most this many contractors are assessed for one order (one file's worth)."""

INDEXES: dict[str, Sequence[IndexModel]] = {
    # Single-field multikey index: a compound index over two array fields is not allowed.
    CONTRACTORS: [IndexModel([("tenants", ASCENDING)], name="tenants")],
    OFFERS: [
        IndexModel([("work_order_id", ASCENDING)], name="work_order_id_unique", unique=True),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expires_at"),
        IndexModel([("contractor_id", ASCENDING), ("status", ASCENDING)], name="contractor_status"),
    ],
}


async def ensure_indexes(store: Store) -> None:
    """The service's indexes, with the shared ones (idempotent; run at start-up and by the CLI)."""
    await store.ensure_indexes(INDEXES)


# -- documents --------------------------------------------------------------------------------


def contractor_profile(contractor: Contractor) -> Document:
    """The fields an import owns (``$set`` on every import), in a stable order."""
    return {
        "name": contractor.name,
        "email": contractor.email,
        "phone": contractor.phone,
        "timezone": contractor.timezone,
        "tenants": sorted(contractor.tenants),
        "skills": sorted(contractor.skills),
        "regions": [
            {"country": r.country, "postal_prefixes": list(r.postal_prefixes)}
            for r in contractor.regions
        ],
        "credentials": [
            {
                "kind": c.kind.value,
                "name": c.name,
                "number": c.number,
                # A calendar date, not an instant: ISO text compares and sorts correctly.
                "expires_on": c.expires_on.isoformat(),
            }
            for c in contractor.credentials
        ],
    }


def contractor_from_document(doc: Document) -> Contractor:
    return Contractor(
        contractor_id=doc["_id"],
        name=doc["name"],
        email=doc["email"],
        phone=doc.get("phone"),
        timezone=doc["timezone"],
        tenants=frozenset(doc["tenants"]),
        skills=frozenset(doc["skills"]),
        regions=tuple(
            ServiceRegion(country=r["country"], postal_prefixes=tuple(r["postal_prefixes"]))
            for r in doc["regions"]
        ),
        credentials=tuple(
            Credential(
                kind=CredentialKind(c["kind"]),
                number=c["number"],
                expires_on=date.fromisoformat(c["expires_on"]),
                name=c.get("name"),
            )
            for c in doc.get("credentials", [])
        ),
    )


def candidate_from_document(doc: Document) -> Candidate:
    return Candidate(contractor=contractor_from_document(doc), open_offers=int(doc["open_offers"]))


def _site(request: DispatchRequest) -> Document:
    return {
        "tenant": request.tenant,
        "equipment_class": request.equipment_class,
        "country": request.country,
        "postal_code": request.postal_code,
    }


# -- registry ---------------------------------------------------------------------------------


class MongoContractorRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def upsert(self, contractors: Sequence[Contractor]) -> UpsertCounts:
        if not contractors:
            return UpsertCounts(created=0, updated=0, unchanged=0)
        now = datetime.now(UTC)
        operations = [
            UpdateOne(
                {"_id": contractor.contractor_id},
                {
                    "$set": contractor_profile(contractor),
                    "$setOnInsert": {"open_offers": 0, "created_at": now},
                },
                upsert=True,
            )
            for contractor in contractors
        ]
        async with self._store.transaction() as uow:
            result = await uow.db[CONTRACTORS].bulk_write(
                operations, ordered=True, session=uow.session
            )
        return UpsertCounts(
            created=result.upserted_count,
            updated=result.modified_count,
            unchanged=result.matched_count - result.modified_count,
        )

    async def list_contractors(self, *, tenant: str | None = None) -> list[Candidate]:
        query: Document = {} if tenant is None else {"tenants": {"$in": [tenant]}}
        docs = await self._store.db[CONTRACTORS].find(query).sort("_id", ASCENDING).to_list()
        return [candidate_from_document(doc) for doc in docs]


# -- dispatch ---------------------------------------------------------------------------------


class MongoDispatchTransaction:
    def __init__(self, uow: UnitOfWork, db: AsyncDatabase[Document]) -> None:
        self._uow = uow
        self._db = db

    async def decision_exists(self, work_order_id: str) -> bool:
        doc = await self._db[OFFERS].find_one(
            {"work_order_id": work_order_id}, projection={"_id": 1}, session=self._uow.session
        )
        return doc is not None

    async def candidates(self, request: DispatchRequest) -> list[Candidate]:
        # Written the way that means the same on MongoDB and also works on the embedded
        # nx-27017 store, which misses plain equality on an indexed array field (`tenants`)
        # and `$in` on a path through an array of documents (`regions.country`).
        query: Document = {
            "tenants": {"$in": [request.tenant]},
            "skills": {"$in": [request.equipment_class]},
            "regions.country": request.country,
        }
        docs = (
            await self._db[CONTRACTORS]
            .find(query, session=self._uow.session)
            .sort("_id", ASCENDING)
            .limit(MAX_CANDIDATES)
            .to_list()
        )
        if len(docs) >= MAX_CANDIDATES:
            log.warning(
                "candidate list truncated",
                extra={"work_order_id": request.work_order_id, "limit": MAX_CANDIDATES},
            )
        return [candidate_from_document(doc) for doc in docs]

    async def save_offer(self, offer: Offer, request: DispatchRequest) -> None:
        session = self._uow.session
        # Written at commit with the batch's other decisions (one decision per work order is
        # still enforced there, by the unique index).
        mongo_uow(self._uow).append_at_commit(
            OFFERS,
            [
                {
                    "_id": offer.offer_id,
                    "work_order_id": offer.work_order_id,
                    "tenant": offer.tenant,
                    "contractor_id": offer.contractor_id,
                    "status": offer.status.value,
                    "offered_at": offer.offered_at,
                    "expires_at": offer.expires_at,
                    "closed_at": offer.closed_at,
                    "site": _site(request),
                }
            ],
        )
        result = await self._db[CONTRACTORS].update_one(
            {"_id": offer.contractor_id}, {"$inc": {"open_offers": 1}}, session=session
        )
        if result.matched_count != 1:
            msg = f"contractor {offer.contractor_id} vanished while being offered an order"
            raise LookupError(msg)

    async def save_unfilled(
        self,
        *,
        decision_id: str,
        request: DispatchRequest,
        decision: NoEligibleContractor,
        decided_at: datetime,
    ) -> None:
        doc: dict[str, Any] = {
            "_id": decision_id,
            "work_order_id": request.work_order_id,
            "tenant": request.tenant,
            "contractor_id": None,
            "status": UNFILLED,
            "decided_at": decided_at,
            "reason": decision.reason,
            "considered_total": decision.considered_total,
            "site": _site(request),
        }
        mongo_uow(self._uow).append_at_commit(OFFERS, [doc])

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        self._uow.emit(
            payload, topic=topic, key=key, tenant=tenant, correlationid=correlationid, subject=key
        )


class MongoDispatchLedger:
    def __init__(self, store: Store) -> None:
        self._db = store.db

    def within(self, uow: UnitOfWork) -> MongoDispatchTransaction:
        return MongoDispatchTransaction(uow, self._db)


__all__ = [
    "CONTRACTORS",
    "INDEXES",
    "OFFERS",
    "MongoContractorRegistry",
    "MongoDispatchLedger",
    "MongoDispatchTransaction",
    "contractor_from_document",
    "contractor_profile",
    "ensure_indexes",
]
