"""MongoDB persistence of the contractors service.

Collections (besides the shared ``processed_events`` and ``outbox``):

- ``contractors``: one document per contractor, ``_id`` = contractor id. The profile fields are
  replaced by each import; the load (``open_offers``, ``open_jobs``) is owned by dispatch and the
  lifecycle, and only set when the document is first created (``open_jobs`` is added by the first
  change to documents from before it existed).
- ``offers``: one decision per dispatch round of a work order (unique index on ``work_order_id,
  dispatch_round``; round 1 is the decision on the received order): the offer and later what
  became of it (``status`` open/accepted/declined/timed_out/withdrawn, ``reason``, and for an
  accepted offer its ``job``: open/completed/cancelled), or ``status: unfilled`` when nobody
  could be offered the order. ``expires_at`` is stored, so a time-out sweep can find due offers
  after any restart (index on ``status, expires_at``). An offer changes by a whole-document
  replace guarded by the state it was read in (the embedded store turns a datetime written by
  ``$set`` into a string).

Every filter is built from validated values (slugs, tenant ids, equipment classes) and strings
checked to be strings (:func:`_text`); nothing from outside reaches a filter as a raw document.
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
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
)
from fixloop_contractors.domain.offers import JobStatus, Offer, OfferStatus
from fixloop_shared.contracts import EventPayload
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, equals, mongo_uow

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
        # One decision per dispatch round of a work order; also the look-up of an order's offers.
        IndexModel(
            [("work_order_id", ASCENDING), ("dispatch_round", ASCENDING)],
            name="work_order_round_unique",
            unique=True,
        ),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expires_at"),
        IndexModel([("contractor_id", ASCENDING), ("status", ASCENDING)], name="contractor_status"),
    ],
}


LEGACY_OFFER_KEY = [("work_order_id", ASCENDING)]
"""The unique key ``offers`` had when a work order could have only one decision."""


async def ensure_indexes(store: Store) -> None:
    """The service's indexes, with the shared ones (idempotent; run at start-up and by the CLI).

    The legacy unique index on ``work_order_id`` alone is dropped first (found by its key: the
    embedded store names indexes its own way): it would refuse a second offer of an order.
    """
    offers = store.db[OFFERS]
    for name, spec in (await offers.index_information()).items():
        if spec.get("unique") and list(spec.get("key", ())) == LEGACY_OFFER_KEY:
            log.info("dropping the legacy unique index of %s: %s", OFFERS, name)
            await offers.drop_index(name)
    await store.ensure_indexes(INDEXES)


def _text(value: object, name: str) -> str:
    """``value`` if it is a string; anything else never reaches a filter."""
    if not isinstance(value, str):
        msg = f"{name} must be a string, not {type(value).__name__}"
        raise TypeError(msg)
    return value


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
    return Candidate(
        contractor=contractor_from_document(doc),
        open_offers=int(doc["open_offers"]),
        open_jobs=int(doc.get("open_jobs", 0)),
    )


def offer_fields(offer: Offer) -> Document:
    """An offer's own fields in its document (the document also holds the order's site)."""
    return {
        "work_order_id": offer.work_order_id,
        "tenant": offer.tenant,
        "contractor_id": offer.contractor_id,
        "dispatch_round": offer.dispatch_round,
        "status": offer.status.value,
        "offered_at": offer.offered_at,
        "expires_at": offer.expires_at,
        "closed_at": offer.closed_at,
        "reason": offer.reason,
        "job": None if offer.job is None else offer.job.value,
    }


def offer_from_document(doc: Document) -> Offer:
    job = doc.get("job")
    return Offer(
        offer_id=str(doc["_id"]),
        work_order_id=str(doc["work_order_id"]),
        tenant=str(doc["tenant"]),
        contractor_id=str(doc["contractor_id"]),
        offered_at=doc["offered_at"],
        expires_at=doc["expires_at"],
        status=OfferStatus(doc["status"]),
        closed_at=doc.get("closed_at"),
        dispatch_round=int(doc.get("dispatch_round", 1)),
        reason=doc.get("reason"),
        job=None if job is None else JobStatus(job),
    )


def _job_value(offer: Offer) -> str | None:
    return None if offer.job is None else offer.job.value


def _load_increments(change: OfferChange) -> Document:
    load = change.load
    return {
        field: delta
        for field, delta in (("open_offers", load.open_offers), ("open_jobs", load.open_jobs))
        if delta
    }


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
                    "$setOnInsert": {"open_offers": 0, "open_jobs": 0, "created_at": now},
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


# -- dispatch and the offers' lifecycle ------------------------------------------------------

_PENDING_DECISIONS = "contractors:decisions-at-commit"
"""``uow.memo`` key: {work order id: [decision documents]} appended in this unit of work and
written at its commit; later handlers of the batch read (and change) them there."""


def _pending(uow: UnitOfWork) -> dict[str, list[Document]]:
    pending = uow.memo.get(_PENDING_DECISIONS)
    if not isinstance(pending, dict):
        pending = {}
        uow.memo[_PENDING_DECISIONS] = pending
    return pending


class MongoDispatchTransaction:
    """The dispatch records and the offers' lifecycle in one MongoDB unit of work."""

    def __init__(self, uow: UnitOfWork, db: AsyncDatabase[Document]) -> None:
        self._uow = uow
        self._db = db
        self._read: dict[str, Document] = {}

    def _decide(self, doc: Document) -> None:
        # Written at commit with the batch's other decisions (one decision per dispatch round of
        # a work order is still enforced there, by the unique index).
        mongo_uow(self._uow).append_at_commit(OFFERS, [doc])
        _pending(self._uow).setdefault(doc["work_order_id"], []).append(doc)

    async def decision_exists(self, work_order_id: str) -> bool:
        if _pending(self._uow).get(work_order_id):
            return True
        doc = await self._db[OFFERS].find_one(
            equals({"work_order_id": _text(work_order_id, "work_order_id")}),
            projection={"_id": 1},
            session=self._uow.session,
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
        self._decide({"_id": offer.offer_id, **offer_fields(offer), "site": _site(request)})
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
            "dispatch_round": 1,
            "status": UNFILLED,
            "decided_at": decided_at,
            "reason": decision.reason,
            "considered_total": decision.considered_total,
            "site": _site(request),
        }
        self._decide(doc)

    async def offers_of(self, work_order_id: str, *, tenant: str) -> list[Offer]:
        query = equals(
            {
                "work_order_id": _text(work_order_id, "work_order_id"),
                "tenant": _text(tenant, "tenant"),
            }
        )
        stored = await self._db[OFFERS].find(query, session=self._uow.session).to_list()
        pending = [d for d in _pending(self._uow).get(work_order_id, []) if d["tenant"] == tenant]
        offers: list[Offer] = []
        for doc in [*stored, *pending]:
            if doc["status"] == UNFILLED:
                continue
            self._read[str(doc["_id"])] = doc
            offers.append(offer_from_document(doc))
        return offers

    async def save_change(self, change: OfferChange) -> bool:
        before, after = change.before, change.after
        pending = next(
            (
                doc
                for doc in _pending(self._uow).get(before.work_order_id, [])
                if doc["_id"] == before.offer_id
            ),
            None,
        )
        if pending is not None:
            # Not written yet: the document the commit will insert is changed instead.
            if pending["status"] != before.status.value or pending["job"] != _job_value(before):
                return False
            pending.update(offer_fields(after))
        elif not await self._replace(change):
            return False
        increments = _load_increments(change)
        if increments:
            result = await self._db[CONTRACTORS].update_one(
                equals({"_id": _text(change.contractor_id, "contractor_id")}),
                {"$inc": increments},
                session=self._uow.session,
            )
            if result.matched_count != 1:
                log.warning(
                    "the load of a contractor with no profile was not changed",
                    extra={"contractor_id": change.contractor_id, "load": increments},
                )
        return True

    async def _replace(self, change: OfferChange) -> bool:
        before, after = change.before, change.after
        offer_id = _text(before.offer_id, "offer_id")
        stored = self._read.get(offer_id) or await self._db[OFFERS].find_one(
            equals({"_id": offer_id}), session=self._uow.session
        )
        if stored is None:
            return False
        guard: Document = {"_id": offer_id, "status": before.status.value}
        if before.job is not None:  # an open offer has no job (and nulls are not matched here)
            guard["job"] = before.job.value
        replacement = {k: v for k, v in stored.items() if k != "_id"} | offer_fields(after)
        result = await self._db[OFFERS].replace_one(
            equals(guard), replacement, session=self._uow.session
        )
        if result.matched_count != 1:
            return False
        self._read[offer_id] = {"_id": offer_id, **replacement}
        return True

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
    "UNFILLED",
    "MongoContractorRegistry",
    "MongoDispatchLedger",
    "MongoDispatchTransaction",
    "contractor_from_document",
    "contractor_profile",
    "ensure_indexes",
    "offer_fields",
    "offer_from_document",
]
