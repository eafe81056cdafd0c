"""Contractors' performance records, scorecards and quality alerts: MongoDB and in memory.

Collections (the in-memory ledger keeps the same documents in a
:class:`~fixloop_shared.memory.MemoryStore`):

- ``performance_jobs``: one document per work order (``_id`` = work order id): what the order is
  (site, equipment, category, priority, receipt), who holds the job, the visit windows, arrivals,
  completions, reopenings, cancellation, rating, and the later order that called the repair
  back. Indexes on ``tenant, site_id, equipment_id`` with ``received_ms`` and with
  ``last_completed_ms``: the repeat-repair look-ups on one piece of equipment.
- ``scorecards``: one document per contractor (``_id`` = contractor id): its scorecard's figures,
  when they last changed, and the digest of recent cases they were measured on (``offers``: what
  became of each offer; ``jobs``: what each job says; plain lists); its score is also written on
  the contractor's profile (``contractors.scorecard``), which dispatch reads. When an offer was
  made is read from the dispatch ledger's ``offers``.
- ``quality_alerts``: one document per alert (``_id`` = the alert's name-based id), ``status``
  ``open`` until an operator resolves it. Index on ``status, raised_ms``.

Every instant is kept as epoch milliseconds (an int), and every document is written whole
(``replace_one``): the embedded store turns a datetime written by ``$set`` into a string and
reads ``true`` back as ``1``; integers and whole documents read back as written everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from fixloop_contractors.adapters.mongo import CONTRACTORS, OFFERS, candidate_from_document
from fixloop_contractors.app.performance import DispatchedOffer, StoredAlert, StoredScorecard
from fixloop_contractors.domain.dispatch import Candidate
from fixloop_contractors.domain.performance import (
    Completion,
    JobRecord,
    OrderFacts,
    VisitWindow,
)
from fixloop_contractors.domain.quality import (
    AlertKind,
    DurationBasis,
    Evidence,
    QualityAlert,
    RepeatRepairEvidence,
    TooFastEvidence,
)
from fixloop_contractors.domain.scorecard import (
    JobCase,
    OfferCase,
    OfferOutcome,
    PerformanceDigest,
    Scorecard,
)
from fixloop_shared.contracts import EventPayload
from fixloop_shared.due_work import epoch_ms
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import Documents, MemoryStore, MemoryUnitOfWork
from fixloop_shared.store import Document, Store, equals, mongo_uow
from fixloop_shared.vocabulary import Category, Priority

PERFORMANCE_JOBS = "performance_jobs"
SCORECARDS = "scorecards"
QUALITY_ALERTS = "quality_alerts"
OPEN = "open"
RESOLVED = "resolved"

_EQUIPMENT = [("tenant", ASCENDING), ("site_id", ASCENDING), ("equipment_id", ASCENDING)]

PERFORMANCE_INDEXES: dict[str, Sequence[IndexModel]] = {
    PERFORMANCE_JOBS: [
        IndexModel([*_EQUIPMENT, ("received_ms", ASCENDING)], name="equipment_received"),
        IndexModel([*_EQUIPMENT, ("last_completed_ms", ASCENDING)], name="equipment_completed"),
    ],
    # Also creates the collections at start-up (a transaction on the embedded store whose first
    # command reads a collection that does not exist yet fails to commit).
    SCORECARDS: [IndexModel([("score", ASCENDING)], name="score")],
    QUALITY_ALERTS: [
        IndexModel([("status", ASCENDING), ("raised_ms", ASCENDING)], name="status_raised"),
        IndexModel([("contractor_id", ASCENDING)], name="contractor"),
    ],
}
"""Created with the service's other indexes (``adapters.mongo.ensure_indexes``)."""


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_ms(moment)


def _at(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _moment(ms: Any) -> datetime:
    moment = _at(ms)
    if moment is None:
        msg = "a stored instant is missing"
        raise ValueError(msg)
    return moment


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- documents ----------------------------------------------------------------------------------


def job_document(job: JobRecord) -> Document:
    order = job.order
    received = None if order is None else _ms(order.received_at)
    completed = [_ms(c.completed_at) for c in job.completions]
    return {
        "_id": job.work_order_id,
        "tenant": job.tenant,
        "contractor_id": job.contractor_id,
        "site_id": None if order is None else order.site_id,
        "equipment_id": None if order is None else order.equipment_id,
        "equipment_class": None if order is None else order.equipment_class,
        "category": None if order is None else order.category.value,
        "priority": None if order is None else order.priority.value,
        "received_ms": received,
        "follow_up_of": None if order is None else order.follow_up_of,
        "assigned_ms": _ms(job.assigned_at),
        "windows": [[_ms(w.scheduled_at), _ms(w.start), _ms(w.end)] for w in job.windows],
        "arrivals": [_ms(a) for a in job.arrivals],
        "completions": [[_ms(c.completed_at), c.labour_minutes] for c in job.completions],
        "first_completed_ms": completed[0] if completed else None,
        "last_completed_ms": completed[-1] if completed else None,
        "reopenings": [_ms(r) for r in job.reopenings],
        "cancelled_ms": _ms(job.cancelled_at),
        "rating": job.rating,
        "rated_ms": _ms(job.rated_at),
        "recalled_by": job.recalled_by,
    }


def job_from_document(doc: Document) -> JobRecord:
    order = None
    if doc.get("received_ms") is not None:
        order = OrderFacts(
            site_id=str(doc["site_id"]),
            equipment_id=str(doc["equipment_id"]),
            equipment_class=str(doc["equipment_class"]),
            category=Category(doc["category"]),
            priority=Priority(doc["priority"]),
            received_at=_moment(doc["received_ms"]),
            follow_up_of=_str(doc.get("follow_up_of")),
        )
    rating = doc.get("rating")
    return JobRecord(
        work_order_id=str(doc["_id"]),
        tenant=str(doc["tenant"]),
        order=order,
        contractor_id=_str(doc.get("contractor_id")),
        assigned_at=_at(doc.get("assigned_ms")),
        windows=tuple(
            VisitWindow(_moment(scheduled), _moment(start), _moment(end))
            for scheduled, start, end in doc.get("windows") or ()
        ),
        arrivals=tuple(_moment(a) for a in doc.get("arrivals") or ()),
        completions=tuple(
            Completion(_moment(done), int(labour)) for done, labour in doc.get("completions") or ()
        ),
        reopenings=tuple(_moment(r) for r in doc.get("reopenings") or ()),
        cancelled_at=_at(doc.get("cancelled_ms")),
        rating=None if rating is None else int(rating),
        rated_at=_at(doc.get("rated_ms")),
        recalled_by=_str(doc.get("recalled_by")),
    )


_SCORECARD_COUNTS = (
    "offers_answered",
    "offers_accepted",
    "accept_times",
    "arrivals",
    "completions",
    "fixes",
    "ratings",
)
_SCORECARD_FIGURES = (
    "acceptance_rate",
    "median_seconds_to_accept",
    "mean_seconds_to_accept",
    "on_time_arrival_rate",
    "completion_within_target_rate",
    "median_seconds_to_complete",
    "first_time_fix_rate",
    "mean_rating",
    "score",
)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _unflag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _digest_document(digest: PerformanceDigest) -> Document:
    return {
        "offers": [
            [
                c.offer_id,
                _ms(c.offered_at),
                None if c.outcome is None else c.outcome.value,
                _ms(c.answered_at),
                int(c.by_operator),
            ]
            for c in digest.offers
        ],
        "jobs": [
            [
                c.work_order_id,
                _ms(c.at),
                _flag(c.on_time),
                None if c.priority is None else c.priority.value,
                c.seconds_to_complete,
                _flag(c.fixed),
                c.rating,
            ]
            for c in digest.jobs
        ],
    }


def _digest_from(contractor_id: str, doc: Document) -> PerformanceDigest:
    return PerformanceDigest(
        contractor_id=contractor_id,
        offers=tuple(
            OfferCase(
                offer_id=str(offer_id),
                offered_at=_at(offered),
                outcome=None if outcome is None else OfferOutcome(outcome),
                answered_at=_at(answered),
                by_operator=bool(by_operator),
            )
            for offer_id, offered, outcome, answered, by_operator in doc.get("offers") or ()
        ),
        jobs=tuple(
            JobCase(
                work_order_id=str(work_order_id),
                at=_moment(at),
                on_time=_unflag(on_time),
                priority=None if priority is None else Priority(priority),
                seconds_to_complete=_number(took),
                fixed=_unflag(fixed),
                rating=None if rating is None else int(rating),
            )
            for work_order_id, at, on_time, priority, took, fixed, rating in doc.get("jobs") or ()
        ),
    )


def scorecard_document(stored: StoredScorecard) -> Document:
    card = stored.scorecard
    return {
        "_id": card.contractor_id,
        **{name: getattr(card, name) for name in (*_SCORECARD_COUNTS, *_SCORECARD_FIGURES)},
        "updated_ms": _ms(stored.updated_at),
        **_digest_document(stored.digest),
    }


def scorecard_from_document(doc: Document) -> StoredScorecard:
    contractor_id = str(doc["_id"])
    fields: dict[str, Any] = {name: int(doc.get(name) or 0) for name in _SCORECARD_COUNTS}
    fields.update({name: _number(doc.get(name)) for name in _SCORECARD_FIGURES})
    return StoredScorecard(
        scorecard=Scorecard(contractor_id=contractor_id, **fields),
        digest=_digest_from(contractor_id, doc),
        updated_at=_moment(doc["updated_ms"]),
    )


def _evidence_document(evidence: Evidence) -> Document:
    if isinstance(evidence, TooFastEvidence):
        return {
            "completed_ms": _ms(evidence.completed_at),
            "on_site_ms": _ms(evidence.on_site_at),
            "took_ms": int(evidence.took.total_seconds() * 1000),
            "basis": evidence.basis.value,
            "reported_labour_minutes": evidence.reported_labour_minutes,
            "standard_ms": int(evidence.standard.total_seconds() * 1000),
            "ratio": evidence.ratio,
        }
    return {
        "earlier_work_order_id": evidence.earlier_work_order_id,
        "earlier_completed_ms": _ms(evidence.earlier_completed_at),
        "received_ms": _ms(evidence.received_at),
        "follow_up": 1 if evidence.follow_up else 0,
        "window_ms": int(evidence.window.total_seconds() * 1000),
    }


def _evidence_from(kind: AlertKind, doc: Document) -> Evidence:
    if kind is AlertKind.TOO_FAST_COMPLETION:
        return TooFastEvidence(
            completed_at=_moment(doc["completed_ms"]),
            on_site_at=_at(doc.get("on_site_ms")),
            took=timedelta(milliseconds=int(doc["took_ms"])),
            basis=DurationBasis(doc["basis"]),
            reported_labour_minutes=int(doc["reported_labour_minutes"]),
            standard=timedelta(milliseconds=int(doc["standard_ms"])),
            ratio=float(doc["ratio"]),
        )
    return RepeatRepairEvidence(
        earlier_work_order_id=str(doc["earlier_work_order_id"]),
        earlier_completed_at=_moment(doc["earlier_completed_ms"]),
        received_at=_moment(doc["received_ms"]),
        follow_up=bool(doc.get("follow_up")),
        window=timedelta(milliseconds=int(doc["window_ms"])),
    )


def alert_document(stored: StoredAlert) -> Document:
    alert = stored.alert
    return {
        "_id": alert.alert_id,
        "kind": alert.kind.value,
        "tenant": alert.tenant,
        "work_order_id": alert.work_order_id,
        "contractor_id": alert.contractor_id,
        "site_id": alert.site_id,
        "equipment_id": alert.equipment_id,
        "equipment_class": alert.equipment_class,
        "category": alert.category.value,
        "summary": alert.summary,
        "evidence": _evidence_document(alert.evidence),
        "raised_ms": _ms(stored.raised_at),
        "status": OPEN if stored.is_open else RESOLVED,
        "resolved_ms": _ms(stored.resolved_at),
        "resolved_by": stored.resolved_by,
        "resolution": stored.resolution,
    }


def alert_from_document(doc: Document) -> StoredAlert:
    kind = AlertKind(doc["kind"])
    return StoredAlert(
        alert=QualityAlert(
            alert_id=str(doc["_id"]),
            kind=kind,
            tenant=str(doc["tenant"]),
            work_order_id=str(doc["work_order_id"]),
            contractor_id=_str(doc.get("contractor_id")),
            site_id=str(doc["site_id"]),
            equipment_id=str(doc["equipment_id"]),
            equipment_class=str(doc["equipment_class"]),
            category=Category(doc["category"]),
            evidence=_evidence_from(kind, doc["evidence"]),
        ),
        raised_at=_moment(doc["raised_ms"]),
        resolved_at=_at(doc.get("resolved_ms")),
        resolved_by=_str(doc.get("resolved_by")),
        resolution=_str(doc.get("resolution")),
    )


def _dispatched(doc: Document | None) -> DispatchedOffer | None:
    """Whom an offer of the dispatch ledger went to, and when (None: unknown, or unfilled)."""
    if doc is None or doc.get("contractor_id") is None or doc.get("offered_at") is None:
        return None
    offered_at = doc["offered_at"]
    if not isinstance(offered_at, datetime):
        return None
    return DispatchedOffer(contractor_id=str(doc["contractor_id"]), offered_at=offered_at)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        msg = f"{name} must be a string, not {type(value).__name__}"
        raise TypeError(msg)
    return value


# -- MongoDB ------------------------------------------------------------------------------------


_READ_AHEAD = "contractors:performance-read-ahead"
"""``uow.memo`` key: {collection: {_id: the document as this unit of work last read or wrote
it, or None if there is none}}, filled by a batch's read-ahead."""


class MongoPerformanceTransaction:
    """The :class:`~fixloop_contractors.app.performance.PerformanceTransaction` on MongoDB.

    Documents read ahead for a batch (:meth:`load`) are served from the unit of work's memo, and
    every write goes to the store and the memo alike."""

    def __init__(self, uow: UnitOfWork, db: AsyncDatabase[Document]) -> None:
        self._uow = uow
        self._db = db
        memo = uow.memo.get(_READ_AHEAD)
        if not isinstance(memo, dict):
            memo = {}
            uow.memo[_READ_AHEAD] = memo
        self._read: dict[str, dict[str, Document | None]] = memo

    async def load(
        self,
        *,
        work_orders: Collection[str],
        offers: Collection[str],
        contractors: Collection[str],
    ) -> None:
        jobs = await self._load(PERFORMANCE_JOBS, work_orders)
        dispatched = await self._load(OFFERS, offers)
        named = {str(d["contractor_id"]) for d in [*jobs, *dispatched] if d.get("contractor_id")}
        await self._load(SCORECARDS, {*contractors, *named})

    async def _load(self, collection: str, keys: Collection[str]) -> list[Document]:
        known = self._read.setdefault(collection, {})
        wanted = sorted({_text(k, "_id") for k in keys} - set(known))
        if not wanted:
            return [d for k in keys if (d := known.get(k)) is not None]
        docs = (
            await self._db[collection]
            .find({"_id": {"$in": wanted}}, session=self._uow.session)
            .to_list()
        )
        known.update(dict.fromkeys(wanted))
        known.update({str(d["_id"]): d for d in docs})
        return [d for k in keys if (d := known.get(k)) is not None]

    async def _one(self, collection: str, key: str) -> Document | None:
        known = self._read.setdefault(collection, {})
        if key in known:
            return known[key]
        return await self._db[collection].find_one(
            equals({"_id": _text(key, "_id")}), session=self._uow.session
        )

    async def _replace(self, collection: str, doc: Document) -> None:
        await self._db[collection].replace_one(
            equals({"_id": doc["_id"]}), doc, upsert=True, session=self._uow.session
        )
        self._read.setdefault(collection, {})[str(doc["_id"])] = doc

    async def dispatched_offer(self, offer_id: str) -> DispatchedOffer | None:
        return _dispatched(await self._one(OFFERS, offer_id))

    async def job(self, work_order_id: str) -> JobRecord | None:
        doc = await self._one(PERFORMANCE_JOBS, work_order_id)
        return None if doc is None else job_from_document(doc)

    async def save_job(self, job: JobRecord) -> None:
        await self._replace(PERFORMANCE_JOBS, job_document(job))

    async def _on_equipment(
        self,
        place: tuple[str, str, str],
        ranges: Document,
        *,
        order: str,
        direction: int,
        limit: int,
    ) -> list[JobRecord]:
        tenant, site_id, equipment_id = place
        query = equals(
            {
                "tenant": _text(tenant, "tenant"),
                "site_id": _text(site_id, "site_id"),
                "equipment_id": _text(equipment_id, "equipment_id"),
            }
        )
        query.update(ranges)  # epoch milliseconds computed here: never outside input
        docs = (
            await self._db[PERFORMANCE_JOBS]
            .find(query, session=self._uow.session)
            .sort(order, direction)
            .limit(limit)
            .to_list()
        )
        return [job_from_document(doc) for doc in docs]

    async def jobs_completed_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[JobRecord]:
        ranges = {
            "last_completed_ms": {"$gte": epoch_ms(since)},
            "first_completed_ms": {"$lte": epoch_ms(until)},
        }
        return await self._on_equipment(
            (tenant, site_id, equipment_id),
            ranges,
            order="last_completed_ms",
            direction=DESCENDING,
            limit=limit,
        )

    async def jobs_received_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        after: datetime,
        until: datetime,
        limit: int,
    ) -> list[JobRecord]:
        ranges = {"received_ms": {"$gt": epoch_ms(after), "$lte": epoch_ms(until)}}
        return await self._on_equipment(
            (tenant, site_id, equipment_id),
            ranges,
            order="received_ms",
            direction=ASCENDING,
            limit=limit,
        )

    async def scorecard(self, contractor_id: str) -> StoredScorecard | None:
        doc = await self._one(SCORECARDS, contractor_id)
        return None if doc is None else scorecard_from_document(doc)

    async def save_scorecard(self, stored: StoredScorecard) -> None:
        await self._replace(SCORECARDS, scorecard_document(stored))

    async def set_score(self, contractor_id: str, score: float | None) -> None:
        await self._db[CONTRACTORS].update_one(
            equals({"_id": _text(contractor_id, "contractor_id")}),
            {"$set": {"scorecard": score}},
            session=self._uow.session,
        )

    async def raise_alert(self, alert: StoredAlert) -> bool:
        if await self._one(QUALITY_ALERTS, alert.alert.alert_id) is not None:
            return False
        await self._db[QUALITY_ALERTS].insert_one(alert_document(alert), session=self._uow.session)
        return True

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        self._uow.emit(
            payload, topic=topic, key=key, tenant=tenant, correlationid=correlationid, subject=key
        )


class MongoPerformanceLedger:
    """Performance records in MongoDB, and what operators read of them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def within(self, uow: UnitOfWork) -> MongoPerformanceTransaction:
        return MongoPerformanceTransaction(uow, mongo_uow(uow).db)

    @property
    def _db(self) -> AsyncDatabase[Document]:
        return self._store.db

    async def profile(self, contractor_id: str) -> Candidate | None:
        """The contractor's profile with its load and score (None: no such contractor)."""
        doc = await self._db[CONTRACTORS].find_one(
            equals({"_id": _text(contractor_id, "contractor_id")})
        )
        return None if doc is None else candidate_from_document(doc)

    async def scorecard(self, contractor_id: str) -> StoredScorecard | None:
        doc = await self._db[SCORECARDS].find_one(
            equals({"_id": _text(contractor_id, "contractor_id")})
        )
        return None if doc is None else scorecard_from_document(doc)

    async def alerts(
        self,
        *,
        tenant: str | None = None,
        contractor_id: str | None = None,
        include_resolved: bool = False,
        limit: int = 200,
    ) -> list[StoredAlert]:
        """Quality alerts, oldest first: the open ones (or all of them)."""
        fields: dict[str, object] = {}
        if not include_resolved:
            fields["status"] = OPEN
        if tenant is not None:
            fields["tenant"] = _text(tenant, "tenant")
        if contractor_id is not None:
            fields["contractor_id"] = _text(contractor_id, "contractor_id")
        docs = (
            await self._db[QUALITY_ALERTS]
            .find(equals(fields))
            .sort("raised_ms", ASCENDING)
            .limit(max(1, min(limit, 1000)))
            .to_list()
        )
        return [alert_from_document(doc) for doc in docs]

    async def open_alerts(self, *, tenant: str | None = None) -> int:
        """How many quality alerts wait for an operator."""
        fields: dict[str, object] = {"status": OPEN}
        if tenant is not None:
            fields["tenant"] = _text(tenant, "tenant")
        return await self._db[QUALITY_ALERTS].count_documents(equals(fields))

    async def resolve_alert(
        self, alert_id: str, *, by: str, resolution: str, at: datetime
    ) -> StoredAlert | None:
        """Close an open alert with what the operator found; the alert as it was if it was
        resolved already, None if there is no such alert."""
        doc = await self._db[QUALITY_ALERTS].find_one(equals({"_id": _text(alert_id, "alert_id")}))
        if doc is None:
            return None
        stored = alert_from_document(doc)
        if not stored.is_open:
            return stored
        resolved = StoredAlert(
            stored.alert,
            raised_at=stored.raised_at,
            resolved_at=at,
            resolved_by=by,
            resolution=resolution,
        )
        async with self._store.exclusive():
            result = await self._db[QUALITY_ALERTS].replace_one(
                equals({"_id": alert_id, "status": OPEN}), alert_document(resolved)
            )
        if result.matched_count != 1:  # resolved meanwhile
            again = await self._db[QUALITY_ALERTS].find_one(equals({"_id": alert_id}))
            return None if again is None else alert_from_document(again)
        return resolved


# -- in memory ----------------------------------------------------------------------------------


class MemoryPerformanceTransaction:
    """The :class:`~fixloop_contractors.app.performance.PerformanceTransaction` in memory."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    async def load(
        self,
        *,
        work_orders: Collection[str],  # noqa: ARG002 - everything is at hand in memory
        offers: Collection[str],  # noqa: ARG002
        contractors: Collection[str],  # noqa: ARG002
    ) -> None:
        return

    def _collection(self, name: str) -> Documents:
        return self._uow.session.collection(name)

    async def dispatched_offer(self, offer_id: str) -> DispatchedOffer | None:
        return _dispatched(self._collection(OFFERS).get(offer_id))

    async def job(self, work_order_id: str) -> JobRecord | None:
        doc = self._collection(PERFORMANCE_JOBS).get(work_order_id)
        return None if doc is None else job_from_document(doc)

    async def save_job(self, job: JobRecord) -> None:
        self._collection(PERFORMANCE_JOBS)[job.work_order_id] = job_document(job)

    def _on_equipment(self, tenant: str, site_id: str, equipment_id: str) -> list[Document]:
        place = (tenant, site_id, equipment_id)
        return [
            d
            for d in self._collection(PERFORMANCE_JOBS).values()
            if (d["tenant"], d["site_id"], d["equipment_id"]) == place
        ]

    async def jobs_completed_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[JobRecord]:
        docs = [
            d
            for d in self._on_equipment(tenant, site_id, equipment_id)
            if d["last_completed_ms"] is not None
            and d["last_completed_ms"] >= epoch_ms(since)
            and d["first_completed_ms"] <= epoch_ms(until)
        ]
        docs.sort(key=lambda d: (d["last_completed_ms"], d["_id"]), reverse=True)
        return [job_from_document(d) for d in docs[:limit]]

    async def jobs_received_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        after: datetime,
        until: datetime,
        limit: int,
    ) -> list[JobRecord]:
        docs = [
            d
            for d in self._on_equipment(tenant, site_id, equipment_id)
            if d["received_ms"] is not None
            and epoch_ms(after) < d["received_ms"] <= epoch_ms(until)
        ]
        docs.sort(key=lambda d: (d["received_ms"], d["_id"]))
        return [job_from_document(d) for d in docs[:limit]]

    async def scorecard(self, contractor_id: str) -> StoredScorecard | None:
        doc = self._collection(SCORECARDS).get(contractor_id)
        return None if doc is None else scorecard_from_document(doc)

    async def save_scorecard(self, stored: StoredScorecard) -> None:
        self._collection(SCORECARDS)[stored.scorecard.contractor_id] = scorecard_document(stored)

    async def set_score(self, contractor_id: str, score: float | None) -> None:
        profile = self._collection(CONTRACTORS).get(contractor_id)
        if profile is not None:
            profile["scorecard"] = score

    async def raise_alert(self, alert: StoredAlert) -> bool:
        alerts = self._collection(QUALITY_ALERTS)
        if alert.alert.alert_id in alerts:
            return False
        alerts[alert.alert.alert_id] = alert_document(alert)
        return True

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        self._uow.emit(
            payload, topic=topic, key=key, tenant=tenant, correlationid=correlationid, subject=key
        )


class MemoryPerformanceLedger:
    """Performance records in memory (the same documents as in MongoDB)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def within(self, uow: UnitOfWork) -> MemoryPerformanceTransaction:
        if not isinstance(uow, MemoryUnitOfWork):
            msg = f"the in-memory performance ledger was given {type(uow).__name__}"
            raise TypeError(msg)
        return MemoryPerformanceTransaction(uow)

    def scorecard(self, contractor_id: str) -> StoredScorecard | None:
        """The contractor's committed scorecard."""
        doc = self._store.state.collection(SCORECARDS).get(contractor_id)
        return None if doc is None else scorecard_from_document(doc)

    def alerts(self) -> list[StoredAlert]:
        """Every committed alert, oldest first."""
        docs = sorted(
            self._store.state.collection(QUALITY_ALERTS).values(),
            key=lambda d: (d["raised_ms"], d["_id"]),
        )
        return [alert_from_document(d) for d in docs]


__all__ = [
    "OPEN",
    "PERFORMANCE_INDEXES",
    "PERFORMANCE_JOBS",
    "QUALITY_ALERTS",
    "RESOLVED",
    "SCORECARDS",
    "MemoryPerformanceLedger",
    "MemoryPerformanceTransaction",
    "MongoPerformanceLedger",
    "MongoPerformanceTransaction",
    "alert_document",
    "alert_from_document",
    "job_document",
    "job_from_document",
    "scorecard_document",
    "scorecard_from_document",
]
