"""MongoDB persistence of the contractors service.

Collections (besides the shared ``processed_events`` and ``outbox``):

- ``contractors``: one document per contractor, ``_id`` = contractor id. The profile fields are
  replaced by each import; the load (``open_offers``, ``open_jobs``) is owned by dispatch and the
  lifecycle, and only set when the document is first created (``open_jobs`` is added by the first
  change to documents from before it existed).
- ``offers``: the decisions of each dispatch round of a work order (unique index on
  ``work_order_id, dispatch_round, fan_slot``: one offer per round, or an emergency's offers to
  several contractors at once in slots 0, 1, ...; round 1 is the decision on the received
  order): the offer and later what
  became of it (``status`` open/accepted/declined/timed_out/withdrawn, ``reason``, and for an
  accepted offer its ``job``: open/completed/cancelled), or ``status: unfilled`` when nobody
  could be offered the order. ``expires_at`` is stored, so a time-out sweep can find due offers
  after any restart (index on ``status, expires_at``). An offer changes by a whole-document
  replace guarded by the state it was read in (the embedded store turns a datetime written by
  ``$set`` into a string). Each decision also keeps the order's ``site`` and ``priority``, which
  the next round needs.
- ``dispatch_explanations``: one per decision (``_id`` = the decision's id): every contractor
  assessed, ranked with its score components or excluded with its reasons.
- ``offer_expiries``: one due-work item per offer (``_id`` = offer id, ``due_ms`` = its expiry),
  written with the offer and deleted when it fires (kind ``offer-expiry``).
- ``credential_alerts``: one due-work item per (contractor, credential kind, number, alert stage),
  armed at import and marked fired (kind ``credential-alerts``; see
  :mod:`fixloop_contractors.adapters.credential_alerts`).
- ``performance_offers``, ``performance_jobs``, ``scorecards``, ``quality_alerts``: contractors'
  performance (see :mod:`fixloop_contractors.adapters.performance`); a contractor's quality
  score is also kept on its profile (``scorecard``, written there by its scorecard only: an
  import never changes it).

Every filter is built from validated values (slugs, tenant ids, equipment classes) and strings
checked to be strings (:func:`_text`); nothing from outside reaches a filter as a raw document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fixloop_contractors.app.explain import CandidateOutcome, DispatchExplanation
from fixloop_contractors.app.ports import DispatchHistory, QueuedOrder, QueueState, UpsertCounts
from fixloop_contractors.domain.deadlines import DeadlineStage, DispatchDeadline
from fixloop_contractors.domain.dispatch import Candidate, DispatchRequest
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    GeoPoint,
    ServiceRegion,
)
from fixloop_contractors.domain.offers import JobStatus, Offer, OfferStatus
from fixloop_contractors.domain.rota import (
    DayException,
    OnCallRota,
    RotaLayer,
    Weekday,
    WeeklyWindow,
)
from fixloop_shared.contracts import EventPayload
from fixloop_shared.due_work import epoch_ms, unleased
from fixloop_shared.errors import TransientError
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, equals, mongo_uow
from fixloop_shared.vocabulary import Priority

log = logging.getLogger(__name__)

CONTRACTORS = "contractors"
OFFERS = "offers"
UNFILLED = "unfilled"
OFFER_EXPIRIES = "offer_expiries"
OFFER_EXPIRY_WORK = "offer-expiry"
CREDENTIAL_ALERTS = "credential_alerts"
CREDENTIAL_ALERT_WORK = "credential-alerts"
EXPLANATIONS = "dispatch_explanations"
DISPATCH_DEADLINES = "dispatch_deadlines"
DISPATCH_DEADLINE_WORK = "dispatch-deadline"

MAX_CANDIDATES = 200_000
"""A safety bound on the contractors assessed for one order, far above any registry's share of
one tenant, skill and country (every one of them is assessed: none is cut for its id)."""

UPSERT_BATCH = 1000
"""Profiles written per transaction by an import."""

NEVER_EXPIRES = "9999-12-31"
"""``credentials_valid_through`` of a contractor that holds no credential."""

UNLIMITED_CAPACITY = 1_000_000_000
"""The capacity a contractor without a maximum of concurrent jobs counts with in
``spare_capacity``."""

INDEXES: dict[str, Sequence[IndexModel]] = {
    # Single-field multikey index: a compound index over two array fields is not allowed.
    CONTRACTORS: [IndexModel([("tenants", ASCENDING)], name="tenants")],
    OFFERS: [
        # One decision per dispatch round (and fan-out slot) of a work order; also the look-up of
        # an order's offers.
        IndexModel(
            [("work_order_id", ASCENDING), ("dispatch_round", ASCENDING), ("fan_slot", ASCENDING)],
            name="work_order_round_slot_unique",
            unique=True,
        ),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expires_at"),
        IndexModel([("contractor_id", ASCENDING), ("status", ASCENDING)], name="contractor_status"),
    ],
    # Also creates the collection at start-up: on the embedded store a transaction whose first
    # command reads a collection that does not exist yet fails to commit.
    OFFER_EXPIRIES: [
        IndexModel([("due_ms", ASCENDING), ("lease_until_ms", ASCENDING)], name="due_lease")
    ],
    EXPLANATIONS: [
        IndexModel([("work_order_id", ASCENDING), ("dispatch_round", ASCENDING)], name="round")
    ],
    # Dispatch deadlines (one item per order being dispatched, ``_id`` = its id); escalated ones
    # are also the queue's escalated entries.
    DISPATCH_DEADLINES: [
        IndexModel([("due_ms", ASCENDING), ("lease_until_ms", ASCENDING)], name="due_lease"),
        IndexModel([("escalated", ASCENDING), ("waiting_since", ASCENDING)], name="escalated"),
    ],
    # Credential alerts (see adapters/credential_alerts.py); also creates the collection at
    # start-up. Unfired items only (``fired_at_ms: 0``) are due, so fired ones stay out of every
    # scan; the contractor index serves arming at import.
    CREDENTIAL_ALERTS: [
        IndexModel(
            [("fired_at_ms", ASCENDING), ("due_ms", ASCENDING), ("lease_until_ms", ASCENDING)],
            name="unfired_due_lease",
        ),
        IndexModel([("contractor_id", ASCENDING)], name="contractor"),
    ],
}


LEGACY_OFFER_KEYS = (
    [("work_order_id", ASCENDING)],
    [("work_order_id", ASCENDING), ("dispatch_round", ASCENDING)],
)
"""The unique keys ``offers`` had: one decision per work order, then one offer per round (before
an emergency's round offered it to several contractors at once)."""


async def ensure_indexes(store: Store) -> None:
    """The service's indexes, with the shared ones (idempotent; run at start-up and by the CLI).

    The legacy unique index on ``work_order_id`` alone is dropped first (found by its key: the
    embedded store names indexes its own way): it would refuse a second offer of an order.
    """
    offers = store.db[OFFERS]
    for name, spec in (await offers.index_information()).items():
        if spec.get("unique") and list(spec.get("key", ())) in LEGACY_OFFER_KEYS:
            log.info("dropping the legacy unique index of %s: %s", OFFERS, name)
            await offers.drop_index(name)
    await store.ensure_indexes(INDEXES)
    # Imported here: the performance adapter builds on this module's documents.
    from fixloop_contractors.adapters.performance import PERFORMANCE_INDEXES

    await store.ensure_indexes(PERFORMANCE_INDEXES)
    await MongoContractorRegistry(store).backfill_credentials_valid_through()


def _text(value: object, name: str) -> str:
    """``value`` if it is a string; anything else never reaches a filter."""
    if not isinstance(value, str):
        msg = f"{name} must be a string, not {type(value).__name__}"
        raise TypeError(msg)
    return value


# -- documents --------------------------------------------------------------------------------


def _location_document(point: GeoPoint | None) -> Document | None:
    if point is None:
        return None
    return {"latitude": point.latitude, "longitude": point.longitude}


def _location_from(value: Any) -> GeoPoint | None:
    if value is None:
        return None
    return GeoPoint(latitude=float(value["latitude"]), longitude=float(value["longitude"]))


def _layer_document(layer: RotaLayer) -> Document:
    """A rota layer as plain lists: each window ``[start_day, "HH:MM:SS", end_day, "HH:MM:SS"]``
    (days 0 = Monday .. 6 = Sunday), each exception ``["YYYY-MM-DD", start, end, start, end, ...]``
    (only the date: off all day). Times are ``time.isoformat()`` text, so they read back exactly;
    no BSON date is involved (the embedded store turns a ``$set`` datetime into a string)."""
    return {
        "windows": [
            [int(w.start_day), w.start.isoformat(), int(w.end_day), w.end.isoformat()]
            for w in layer.windows
        ],
        "exceptions": [
            [e.day.isoformat(), *(t.isoformat() for span in e.hours for t in span)]
            for e in layer.exceptions
        ],
    }


def _layer_from(doc: Document) -> RotaLayer:
    exceptions: list[DayException] = []
    for item in doc.get("exceptions", []):
        day, *times = item
        bounds = [time.fromisoformat(t) for t in times]
        exceptions.append(
            DayException(
                date.fromisoformat(day), tuple(zip(bounds[::2], bounds[1::2], strict=True))
            )
        )
    return RotaLayer(
        windows=tuple(
            WeeklyWindow(
                Weekday(int(start_day)),
                time.fromisoformat(start),
                Weekday(int(end_day)),
                time.fromisoformat(end),
            )
            for start_day, start, end_day, end in doc.get("windows", [])
        ),
        exceptions=tuple(exceptions),
    )


def _rota_document(rota: OnCallRota | None) -> Document | None:
    if rota is None:
        return None
    return {
        "primary": _layer_document(rota.primary),
        "backup": None if rota.backup is None else _layer_document(rota.backup),
    }


def _rota_from(value: Any) -> OnCallRota | None:
    if value is None:
        return None
    backup = value.get("backup")
    return OnCallRota(
        primary=_layer_from(value["primary"]),
        backup=None if backup is None else _layer_from(backup),
    )


def contractor_profile(contractor: Contractor) -> Document:
    """The fields an import owns (``$set`` on every import), in a stable order.

    Every field is written, absent ones as null (or an empty list), so a re-import of a file
    that drops one clears it.
    """
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
        # The last day every credential is valid (ISO text sorts as dates do): dispatch's query
        # leaves out contractors whose credentials expired for sure.
        "credentials_valid_through": (
            min(c.expires_on for c in contractor.credentials).isoformat()
            if contractor.credentials
            else NEVER_EXPIRES
        ),
        "base_location": _location_document(contractor.base_location),
        "max_concurrent_jobs": contractor.max_concurrent_jobs,
        "skill_levels": [[c, level] for c, level in contractor.skill_levels],
        "rota": _rota_document(contractor.rota),
    }


def contractor_from_document(doc: Document) -> Contractor:
    """The contractor in ``doc``; fields missing from documents written before they existed
    take the domain's defaults (no base location, no capacity limit, default skill levels, on
    call around the clock)."""
    capacity = doc.get("max_concurrent_jobs")
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
        base_location=_location_from(doc.get("base_location")),
        max_concurrent_jobs=None if capacity is None else int(capacity),
        skill_levels=tuple((str(c), int(level)) for c, level in doc.get("skill_levels") or ()),
        rota=_rota_from(doc.get("rota")),
    )


def candidate_from_document(doc: Document) -> Candidate:
    score = doc.get("scorecard")  # the quality score its scorecard keeps here (None: neutral)
    return Candidate(
        contractor=contractor_from_document(doc),
        open_offers=int(doc["open_offers"]),
        open_jobs=int(doc.get("open_jobs", 0)),
        scorecard=None if score is None else float(score),
    )


def offer_fields(offer: Offer) -> Document:
    """An offer's own fields in its document (the document also holds the order's site)."""
    return {
        "work_order_id": offer.work_order_id,
        "tenant": offer.tenant,
        "contractor_id": offer.contractor_id,
        "dispatch_round": offer.dispatch_round,
        "fan_slot": offer.fan_slot,
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
        fan_slot=int(doc.get("fan_slot") or 0),
        reason=doc.get("reason"),
        job=None if job is None else JobStatus(job),
    )


def _job_value(offer: Offer) -> str | None:
    return None if offer.job is None else offer.job.value


def _load_increments(change: OfferChange) -> Document:
    load = change.load
    increments: Document = {
        field: delta
        for field, delta in (("open_offers", load.open_offers), ("open_jobs", load.open_jobs))
        if delta
    }
    if spare := -(load.open_offers + load.open_jobs):
        increments["spare_capacity"] = spare
    return increments


def spare_capacity(doc: Document) -> int:
    """What a profile's ``spare_capacity`` is: its maximum of concurrent jobs (or
    :data:`UNLIMITED_CAPACITY`) less its open offers and jobs. Dispatch's query takes only
    contractors with some left; every change of the load moves it by as much."""
    capacity = doc.get("max_concurrent_jobs")
    limit = UNLIMITED_CAPACITY if capacity is None else int(capacity)
    return limit - int(doc.get("open_offers") or 0) - int(doc.get("open_jobs") or 0)


def _site(request: DispatchRequest) -> Document:
    return {
        "tenant": request.tenant,
        "equipment_class": request.equipment_class,
        "country": request.country,
        "postal_code": request.postal_code,
    }


def request_from_decision(doc: Document) -> DispatchRequest:
    """The dispatch request a decision was made for (from the site it keeps)."""
    site = doc["site"]
    return DispatchRequest(
        work_order_id=str(doc["work_order_id"]),
        tenant=str(site["tenant"]),
        equipment_class=str(site["equipment_class"]),
        country=str(site["country"]),
        postal_code=str(site["postal_code"]),
    )


def history_from_decisions(docs: Sequence[Document]) -> DispatchHistory | None:
    """A work order's dispatch so far, from its decision documents (any order)."""
    if not docs:
        return None
    ordered = sorted(
        docs, key=lambda d: (int(d.get("dispatch_round", 1)), int(d.get("fan_slot") or 0))
    )
    latest = ordered[-1]
    return DispatchHistory(
        request=request_from_decision(ordered[0]),
        priority=Priority(latest.get("priority", Priority.NORMAL.value)),
        rounds=int(latest.get("dispatch_round", 1)),
        offers=tuple(offer_from_document(d) for d in ordered if d["status"] != UNFILLED),
        unfilled=latest["status"] == UNFILLED,
    )


def explanation_document(explanation: DispatchExplanation) -> Document:
    """An explanation as stored: each candidate with only the fields it has."""
    return {
        "_id": explanation.decision_id,
        "work_order_id": explanation.work_order_id,
        "tenant": explanation.tenant,
        "dispatch_round": explanation.dispatch_round,
        "decided_at": explanation.decided_at,
        "offered_to": list(explanation.offered_to),
        "reason": explanation.reason,
        "weights": dict(explanation.weights),
        "assessed": explanation.assessed,
        "candidates": [
            {
                key: value
                for key, value in (
                    ("contractor_id", c.contractor_id),
                    ("rank", c.rank),
                    ("total", c.total),
                    ("components", dict(c.components) or None),
                    ("travel_km", c.travel_km),
                    ("travel_basis", c.travel_basis),
                    ("on_call", c.on_call),
                    ("skill_level", c.skill_level),
                    ("preferred", c.preferred or None),
                    ("offered", c.offered or None),
                    ("excluded", list(c.excluded) or None),
                )
                if value is not None
            }
            for c in explanation.candidates
        ],
    }


def _offered_to(stored: object) -> tuple[str, ...]:
    if isinstance(stored, str):  # one contractor, as kept before fan-out
        return (stored,)
    return tuple(str(c) for c in stored) if isinstance(stored, list) else ()


def explanation_from_document(doc: Document) -> DispatchExplanation:
    return DispatchExplanation(
        decision_id=str(doc["_id"]),
        work_order_id=str(doc["work_order_id"]),
        tenant=str(doc["tenant"]),
        dispatch_round=int(doc["dispatch_round"]),
        decided_at=doc["decided_at"],
        offered_to=_offered_to(doc.get("offered_to")),
        reason=doc.get("reason"),
        weights=tuple((str(k), float(v)) for k, v in (doc.get("weights") or {}).items()),
        candidates=tuple(
            CandidateOutcome(
                contractor_id=str(c["contractor_id"]),
                rank=c.get("rank"),
                total=c.get("total"),
                components=tuple(
                    (str(k), float(v)) for k, v in (c.get("components") or {}).items()
                ),
                travel_km=c.get("travel_km"),
                travel_basis=c.get("travel_basis"),
                on_call=c.get("on_call"),
                skill_level=c.get("skill_level"),
                preferred=bool(c.get("preferred", False)),
                offered=bool(c.get("offered", False)),
                excluded=tuple(c.get("excluded") or ()),
            )
            for c in doc.get("candidates", [])
        ),
        assessed=int(doc.get("assessed", 0)),
    )


def expiry_item(offer: Offer, correlationid: str) -> Document:
    """The due-work item that times ``offer`` out if nobody answers it."""
    return {
        "_id": offer.offer_id,
        "work_order_id": offer.work_order_id,
        "tenant": offer.tenant,
        "correlationid": correlationid,
        "due_ms": epoch_ms(offer.expires_at),
        **unleased(),
    }


def deadline_item(deadline: DispatchDeadline, correlationid: str) -> Document:
    """The due-work item of an order's dispatch deadlines (its first stage due)."""
    stage, due = deadline.first_stage()
    return {
        "_id": deadline.work_order_id,
        "tenant": deadline.tenant,
        "correlationid": correlationid,
        "waiting_since": deadline.waiting_since,
        "give_up_ms": epoch_ms(deadline.give_up_at),
        "stage": stage.value,
        "due_ms": epoch_ms(due),
        "escalated": False,
        **unleased(),
    }


# -- registry ---------------------------------------------------------------------------------


class MongoContractorRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def upsert(self, contractors: Sequence[Contractor]) -> UpsertCounts:
        """Upsert the profiles in batches of :data:`UPSERT_BATCH`, each batch one transaction:
        an import of any size stays within a transaction's limits; one that stopped half-way
        is finished by running it again (an upsert of the same profile changes nothing)."""
        created = updated = unchanged = 0
        now = datetime.now(UTC)
        for start in range(0, len(contractors), UPSERT_BATCH):
            batch = contractors[start : start + UPSERT_BATCH]
            async with self._store.transaction() as uow:
                loads = {
                    str(doc["_id"]): doc
                    async for doc in uow.db[CONTRACTORS].find(
                        {"_id": {"$in": [c.contractor_id for c in batch]}},
                        projection={"open_offers": True, "open_jobs": True},
                        session=uow.session,
                    )
                }
                operations = []
                for contractor in batch:
                    profile = contractor_profile(contractor)
                    load = loads.get(contractor.contractor_id, {})
                    profile["spare_capacity"] = spare_capacity({**load, **profile})
                    operations.append(
                        UpdateOne(
                            {"_id": contractor.contractor_id},
                            {
                                "$set": profile,
                                "$setOnInsert": {
                                    "open_offers": 0,
                                    "open_jobs": 0,
                                    "created_at": now,
                                },
                            },
                            upsert=True,
                        )
                    )
                result = await uow.db[CONTRACTORS].bulk_write(
                    operations, ordered=True, session=uow.session
                )
            created += result.upserted_count
            updated += result.modified_count
            unchanged += result.matched_count - result.modified_count
        return UpsertCounts(created=created, updated=updated, unchanged=unchanged)

    async def backfill_credentials_valid_through(self) -> int:
        """Give profiles written before ``credentials_valid_through`` or ``spare_capacity``
        existed those fields (at start-up); the number changed."""
        changed = 0
        contractors = self._store.db[CONTRACTORS]
        older = {"credentials_valid_through": {"$exists": False}}
        async for doc in contractors.find(older, projection={"credentials": True}):
            days = sorted(str(c["expires_on"]) for c in doc.get("credentials") or [])
            await contractors.update_one(
                equals({"_id": _text(doc["_id"], "contractor_id")}),
                {"$set": {"credentials_valid_through": days[0] if days else NEVER_EXPIRES}},
            )
            changed += 1
        fields = {"max_concurrent_jobs": True, "open_offers": True, "open_jobs": True}
        async for doc in contractors.find({"spare_capacity": {"$exists": False}}, fields):
            # Guarded by the load it was computed from: a load that moved meanwhile moved the
            # field too (a later start-up finds it then).
            guard: Document = equals({"_id": _text(doc["_id"], "contractor_id")})
            for field in ("open_offers", "open_jobs"):
                guard[field] = {"$eq": int(doc[field])} if field in doc else {"$exists": False}
            await contractors.update_one(guard, {"$set": {"spare_capacity": spare_capacity(doc)}})
            changed += 1
        return changed

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

    def __init__(
        self,
        uow: UnitOfWork,
        db: AsyncDatabase[Document],
        notify: Callable[[Sequence[tuple[str, datetime]]], None],
    ) -> None:
        self._uow = uow
        self._db = db
        self._notify = notify
        """Tells the due-work scheduler of committed expiries (``Store.notify_due``)."""
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

    async def candidates(self, request: DispatchRequest, *, at: datetime) -> list[Candidate]:
        # Narrowed by every hard rule a plain indexed query can say on MongoDB and on the
        # embedded nx-27017 store (which misses plain equality on an indexed array field
        # (`tenants`) and `$in` on a path through an array of documents (`regions.country`)):
        # tenant, skill, country, credentials not expired by the decision's day anywhere on
        # earth (a contractor's local date is at most a day behind UTC's), and capacity left.
        # The domain judges the rest (postal prefixes, the exact local dates, the rota, which
        # depends on the contractor's own clock) and ranks; no candidate is cut for its id.
        not_expired_by = (at.astimezone(UTC).date() - timedelta(days=1)).isoformat()
        query: Document = {
            "tenants": {"$in": [request.tenant]},
            "skills": {"$in": [request.equipment_class]},
            "regions.country": request.country,
            "credentials_valid_through": {"$gte": not_expired_by},
            "spare_capacity": {"$gt": 0},
        }
        docs = (
            await self._db[CONTRACTORS]
            .find(query, session=self._uow.session)
            .limit(MAX_CANDIDATES)
            .to_list()
        )
        if len(docs) >= MAX_CANDIDATES:
            log.warning(
                "candidate list truncated",
                extra={"work_order_id": request.work_order_id, "limit": MAX_CANDIDATES},
            )
        return [candidate_from_document(doc) for doc in docs]

    async def history(self, work_order_id: str, *, tenant: str | None) -> DispatchHistory | None:
        query = {"work_order_id": _text(work_order_id, "work_order_id")}
        if tenant is not None:
            query["tenant"] = _text(tenant, "tenant")
        stored = await self._db[OFFERS].find(equals(query), session=self._uow.session).to_list()
        pending = [
            d
            for d in _pending(self._uow).get(work_order_id, [])
            if tenant is None or d["tenant"] == tenant
        ]
        for doc in stored:
            self._read.setdefault(str(doc["_id"]), doc)
        return history_from_decisions([*stored, *pending])

    async def save_offer(
        self, offer: Offer, request: DispatchRequest, priority: Priority, *, correlationid: str
    ) -> None:
        session = self._uow.session
        doc = {
            "_id": offer.offer_id,
            **offer_fields(offer),
            "site": _site(request),
            "priority": priority.value,
        }
        if offer.dispatch_round == 1:
            self._decide(doc)
        else:
            await self._decide_now(doc)
        mongo_uow(self._uow).append_at_commit(OFFER_EXPIRIES, [expiry_item(offer, correlationid)])
        notify, at = self._notify, offer.expires_at
        self._uow.after_commit(lambda: notify([(OFFER_EXPIRY_WORK, at)]))
        result = await self._db[CONTRACTORS].update_one(
            {"_id": offer.contractor_id},
            {"$inc": {"open_offers": 1, "spare_capacity": -1}},
            session=session,
        )
        if result.matched_count != 1:
            msg = f"contractor {offer.contractor_id} vanished while being offered an order"
            raise LookupError(msg)

    async def save_explanation(self, explanation: DispatchExplanation) -> None:
        mongo_uow(self._uow).append_at_commit(EXPLANATIONS, [explanation_document(explanation)])

    async def arm_deadline(self, deadline: DispatchDeadline, *, correlationid: str) -> None:
        item = deadline_item(deadline, correlationid)
        mongo_uow(self._uow).append_at_commit(DISPATCH_DEADLINES, [item])
        notify, at = self._notify, deadline.first_stage()[1]
        self._uow.after_commit(lambda: notify([(DISPATCH_DEADLINE_WORK, at)]))

    async def escalate_deadline(self, work_order_id: str, *, at: datetime, reason: str) -> None:
        deadlines, key = self._db[DISPATCH_DEADLINES], _text(work_order_id, "work_order_id")
        item = await deadlines.find_one(
            equals({"_id": key}), projection={"give_up_ms": True}, session=self._uow.session
        )
        if item is None:
            return
        await deadlines.update_one(
            equals({"_id": key}),
            {
                "$set": {
                    "stage": DeadlineStage.GIVE_UP.value,
                    "due_ms": int(item["give_up_ms"]),
                    "escalated": True,
                    # Epoch ms: a datetime `$set` on an existing document comes back as text from
                    # the embedded store.
                    "escalated_ms": epoch_ms(at),
                    "reason": reason,
                    **unleased(),
                }
            },
            session=self._uow.session,
        )
        notify, due = self._notify, datetime.fromtimestamp(int(item["give_up_ms"]) / 1000, UTC)
        self._uow.after_commit(lambda: notify([(DISPATCH_DEADLINE_WORK, due)]))

    async def forget_deadline(self, work_order_id: str) -> None:
        await self._db[DISPATCH_DEADLINES].delete_one(
            equals({"_id": _text(work_order_id, "work_order_id")}), session=self._uow.session
        )

    async def contractor(self, contractor_id: str) -> Candidate | None:
        doc = await self._db[CONTRACTORS].find_one(
            equals({"_id": _text(contractor_id, "contractor_id")}), session=self._uow.session
        )
        return None if doc is None else candidate_from_document(doc)

    async def dequeue(self, work_order_id: str) -> None:
        for doc in _pending(self._uow).get(work_order_id, []):
            doc["queued"] = False
        await self._db[OFFERS].update_many(
            equals(
                {
                    "work_order_id": _text(work_order_id, "work_order_id"),
                    "status": UNFILLED,
                    "queued": True,
                }
            ),
            {"$set": {"queued": False}},
            session=self._uow.session,
        )

    async def _decide_now(self, doc: Document) -> None:
        """A later round's decision, written at once: two pods deciding the same round (a
        decline and an expiry at the same moment) meet at the unique index here, and the one
        that lost is tried again and finds the round decided."""
        try:
            await self._db[OFFERS].insert_one(doc, session=self._uow.session)
        except DuplicateKeyError as exc:
            msg = (
                f"round {doc['dispatch_round']} of work order {doc['work_order_id']} was "
                "decided meanwhile"
            )
            raise TransientError(msg) from exc
        self._read[str(doc["_id"])] = doc

    async def save_unfilled(
        self,
        *,
        decision_id: str,
        request: DispatchRequest,
        reason: str,
        considered_total: int,
        decided_at: datetime,
        dispatch_round: int,
        priority: Priority,
    ) -> None:
        doc: dict[str, Any] = {
            "_id": decision_id,
            "work_order_id": request.work_order_id,
            "tenant": request.tenant,
            "contractor_id": None,
            "dispatch_round": dispatch_round,
            "fan_slot": 0,
            "status": UNFILLED,
            "decided_at": decided_at,
            "reason": reason,
            "considered_total": considered_total,
            "site": _site(request),
            "priority": priority.value,
            "queued": True,
        }
        if dispatch_round == 1:
            self._decide(doc)
        else:
            await self._decide_now(doc)

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


def _queued(
    doc: Document,
    *,
    work_order_id: str,
    since: datetime,
    queued_at: datetime,
    rounds: int,
    reason: str,
    state: QueueState,
) -> QueuedOrder:
    site = doc.get("site") or {}
    return QueuedOrder(
        work_order_id=work_order_id,
        tenant=str(doc["tenant"]),
        site=f"{site.get('country', '')}-{site.get('postal_code', '')}",
        equipment_class=str(site.get("equipment_class", "")),
        priority=str(doc.get("priority", "normal")),
        waiting_since=since,
        queued_at=queued_at,
        rounds=rounds,
        reason=reason,
        state=state,
    )


def _of_work_order(work_order_id: str, tenant: str | None) -> Document:
    """The filter of one work order's records, of one tenant if given."""
    query: Document = {"work_order_id": _text(work_order_id, "work_order_id")}
    if tenant is not None:
        query["tenant"] = _text(tenant, "tenant")
    return query


class MongoDispatchLedger:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def explanations(
        self, work_order_id: str, *, tenant: str | None = None
    ) -> list[DispatchExplanation]:
        """Every decision's explanation for the work order (of ``tenant`` only, if given), by
        round."""
        docs = (
            await self._store.db[EXPLANATIONS]
            .find(equals(_of_work_order(work_order_id, tenant)))
            .sort("dispatch_round", ASCENDING)
            .to_list()
        )
        return [explanation_from_document(doc) for doc in docs]

    async def queue(self, *, tenant: str | None = None, limit: int = 200) -> list[QueuedOrder]:
        """Orders waiting for an operator, oldest first: the ones nobody took (unfilled), and
        the ones escalated because nobody took them in time (while their offers go on)."""
        limit = max(1, min(limit, 1000))
        query: Document = {"status": UNFILLED, "queued": True}
        escalated_query: Document = {"escalated": True}
        if tenant is not None:
            query["tenant"] = escalated_query["tenant"] = _text(tenant, "tenant")
        db = self._store.db
        unfilled = (
            await db[OFFERS]
            .find(equals(query))
            .sort("decided_at", ASCENDING)
            .limit(limit)
            .to_list()
        )
        escalated = (
            await db[DISPATCH_DEADLINES]
            .find(equals(escalated_query))
            .sort("waiting_since", ASCENDING)
            .limit(limit)
            .to_list()
        )
        ids = [_text(doc["work_order_id"], "work_order_id") for doc in unfilled]
        ids += [_text(item["_id"], "work_order_id") for item in escalated]
        offers: dict[str, list[Document]] = {}
        for doc in await db[OFFERS].find({"work_order_id": {"$in": ids}}).to_list():
            offers.setdefault(str(doc["work_order_id"]), []).append(doc)
        queued: list[QueuedOrder] = []
        for doc in unfilled:
            work_order_id = str(doc["work_order_id"])
            firsts = [d for d in offers.get(work_order_id, []) if d["dispatch_round"] == 1]
            since: datetime = min(
                (d.get("offered_at") or d["decided_at"] for d in firsts),
                default=doc["decided_at"],
            )
            queued.append(
                _queued(
                    doc,
                    work_order_id=work_order_id,
                    since=since,
                    queued_at=doc["decided_at"],
                    rounds=int(doc.get("dispatch_round", 1)) - 1,
                    reason=str(doc.get("reason") or ""),
                    state=QueueState.UNFILLED,
                )
            )
        for item in escalated:
            work_order_id = str(item["_id"])
            docs_made = [d for d in offers.get(work_order_id, []) if d["status"] != UNFILLED]
            made = [offer_from_document(d) for d in docs_made]
            if any(o.job is not None for o in made) or not any(o.is_open for o in made):
                continue  # taken or cancelled meanwhile: its deadline ends when it falls due
            first = min(docs_made, key=lambda d: d["offered_at"])
            queued.append(
                _queued(
                    first,
                    work_order_id=work_order_id,
                    since=item["waiting_since"],
                    queued_at=datetime.fromtimestamp(int(item["escalated_ms"]) / 1000, UTC),
                    rounds=len(made),
                    reason=str(item.get("reason") or ""),
                    state=QueueState.ESCALATED,
                )
            )
        queued.sort(key=lambda q: (q.waiting_since, q.work_order_id))
        return queued[:limit]

    async def offers(self, work_order_id: str, *, tenant: str | None = None) -> list[Offer]:
        """Every offer of the work order (of ``tenant`` only, if given; whatever became of it),
        by round."""
        docs = (
            await self._store.db[OFFERS]
            .find(equals(_of_work_order(work_order_id, tenant)))
            .sort("dispatch_round", ASCENDING)
            .to_list()
        )
        return [offer_from_document(doc) for doc in docs if doc["status"] != UNFILLED]

    def within(self, uow: UnitOfWork) -> MongoDispatchTransaction:
        return MongoDispatchTransaction(uow, self._store.db, self._store.notify_due)

    async def forget_expiry(self, uow: UnitOfWork, offer_id: str) -> None:
        """The offer's expiry fired: its item is done."""
        await self._store.db[OFFER_EXPIRIES].delete_one(
            equals({"_id": _text(offer_id, "offer_id")}), session=uow.session
        )


def due_expiries(now: datetime) -> dict[str, object]:
    """Offer expiries due at ``now`` (epoch milliseconds: an indexed range on every store)."""
    return {"due_ms": {"$lte": epoch_ms(now)}}


__all__ = [
    "CONTRACTORS",
    "CREDENTIAL_ALERTS",
    "CREDENTIAL_ALERT_WORK",
    "EXPLANATIONS",
    "INDEXES",
    "OFFERS",
    "OFFER_EXPIRIES",
    "OFFER_EXPIRY_WORK",
    "UNFILLED",
    "UNLIMITED_CAPACITY",
    "MongoContractorRegistry",
    "MongoDispatchLedger",
    "MongoDispatchTransaction",
    "contractor_from_document",
    "contractor_profile",
    "due_expiries",
    "ensure_indexes",
    "history_from_decisions",
    "offer_fields",
    "offer_from_document",
]
