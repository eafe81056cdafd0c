"""Credential alerts as a kind of due work on the service's due-work scheduler.

Each credential of a contractor has up to three alerts (stages ``expiring_30``, ``expiring_7``,
``expired``; when each falls due and which to arm is decided by
:mod:`fixloop_contractors.domain.credential_alerts`). Each armed alert is one item of
``credential_alerts``:

- ``_id`` = ``<contractor id>:<credential kind>:<number>:<stage>`` (contractor ids are slugs and
  numbers hold no ``:``), so a credential has one item per stage whatever its expiry date;
- ``contractor_id``, ``kind``, ``number``, ``stage``, ``expires_on`` (ISO date text), ``due_ms``
  (epoch ms), the lease fields (:func:`~fixloop_shared.due_work.unleased`) and ``fired_at_ms``:
  0 until it fired, then when (the due filter takes only ``fired_at_ms: 0``; fired items stay,
  as the record that the alert was sent for that expiry date).

Arming (:class:`MongoCredentialAlerts`, called by the import): per credential of the imported
contractors, the items already there for the same expiry date are left as they are, fired or not,
so a re-import arms nothing; the domain's rule picks what else to arm (future stages, and the
latest passed one at once). A renewed credential (same kind and number, new expiry date) has its
items replaced in place (same ids) and its old unfired ones deleted; a credential no longer held
(e.g. replaced by one with a new number) has its unfired items deleted. Arming is written after
the profiles, outside a transaction (bulk writes holding the store's write slot); it is
idempotent, so an import that stopped half-way arms the rest when it is run again.

Firing (kind ``credential-alerts``): each due item in its own unit of work reads the contractor's
profile, queues one event per tenant the contractor works for (``credential_expiring`` /
``credential_expired`` on ``fixloop.contractors.events.v1``, keyed by the contractor id: each
tenant's consumers see the alerts of the contractors that work for it) and marks the item fired,
conditionally on the lease it was claimed with (``lease_token``) and on it not having fired, in the
same transaction. So an alert is sent once: a crashed fire committed nothing and is fired again
when its lease runs out; a fire whose item was re-armed or fired meanwhile changes nothing. A
warning that fires after the credential expired (the service was down) is dropped, as is an alert
for a credential the profile no longer holds with that expiry date; both are marked fired with
their ``outcome``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta

from pydantic import ValidationError
from pymongo import DeleteOne, ReplaceOne

from fixloop_contractors.adapters.mongo import (
    CONTRACTORS,
    CREDENTIAL_ALERT_WORK,
    CREDENTIAL_ALERTS,
    OFFERS,
    contractor_from_document,
)
from fixloop_contractors.app.contacts import contractor_contact
from fixloop_contractors.domain.credential_alerts import (
    DEFAULT_MORNING,
    AlertStage,
    ArmedAlert,
    alert_moments,
    alerts_to_arm,
    days_left,
)
from fixloop_contractors.domain.model import Contractor, Credential
from fixloop_contractors.domain.offers import JobStatus, OfferStatus
from fixloop_shared.contracts import (
    AssignmentCredentialLapsed,
    ContractorCredentialExpired,
    ContractorCredentialExpiring,
    EventPayload,
)
from fixloop_shared.due_work import (
    LEASE_TOKEN,
    ClaimedItem,
    DueWork,
    epoch_ms,
    unleased,
    utc_now,
)
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work
from fixloop_shared.store import Document, Store, database_of, equals
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

UNFIRED = 0
"""``fired_at_ms`` of an alert not sent yet (a number, so it filters the same on every store)."""

SENT = "sent"
GONE = "gone"
"""The item was re-armed or fired by another pod meanwhile: nothing done."""

FIRE_FIELDS = ("contractor_id", "kind", "number", "stage", "expires_on", "due_ms", LEASE_TOKEN)
"""What firing an item reads of it (its lease token: a claim may read the items back)."""

CredentialKey = tuple[str, str, str]
"""(contractor id, credential kind, number)."""


def alert_id(contractor_id: str, credential: Credential, stage: AlertStage) -> str:
    return f"{contractor_id}:{credential.kind.value}:{credential.number}:{stage.value}"


def alert_item(contractor: Contractor, credential: Credential, alert: ArmedAlert) -> Document:
    """The due-work item of one armed alert, written whole (not leased, not fired)."""
    return {
        "_id": alert_id(contractor.contractor_id, credential, alert.stage),
        "contractor_id": contractor.contractor_id,
        "kind": credential.kind.value,
        "number": credential.number,
        "stage": alert.stage.value,
        "expires_on": credential.expires_on.isoformat(),
        "due_ms": epoch_ms(alert.due_at),
        "fired_at_ms": UNFIRED,
        **unleased(),
    }


def due_alerts(now: datetime) -> dict[str, object]:
    """Unfired alerts due at ``now`` (an equality and a range on one index, on every store)."""
    return {"fired_at_ms": {"$eq": UNFIRED}, "due_ms": {"$lte": epoch_ms(now)}}


def held_credentials(contractor: Contractor) -> dict[CredentialKey, Credential]:
    """The contractor's credentials by (contractor, kind, number); of one listed twice, the one
    valid longest."""
    held: dict[CredentialKey, Credential] = {}
    for credential in sorted(contractor.credentials, key=lambda c: c.expires_on):
        held[(contractor.contractor_id, credential.kind.value, credential.number)] = credential
    return held


class MongoCredentialAlerts:
    """The :class:`~fixloop_contractors.app.ports.CredentialAlertSchedule` on MongoDB."""

    def __init__(self, store: Store, *, morning: time = DEFAULT_MORNING) -> None:
        self._store = store
        self._morning = morning

    async def _stored(
        self, contractors: Sequence[Contractor]
    ) -> dict[str, dict[CredentialKey, list[Document]]]:
        """The stored items of these contractors: by contractor id, then by credential."""
        ids = [contractor.contractor_id for contractor in contractors]
        docs = await (
            self._store.db[CREDENTIAL_ALERTS]
            .find(
                {"contractor_id": {"$in": ids}},
                projection={
                    "contractor_id": True,
                    "kind": True,
                    "number": True,
                    "stage": True,
                    "expires_on": True,
                    "fired_at_ms": True,
                },
            )
            .to_list()
        )
        stored: dict[str, dict[CredentialKey, list[Document]]] = {}
        for doc in docs:
            key = (str(doc["contractor_id"]), str(doc["kind"]), str(doc["number"]))
            stored.setdefault(key[0], {}).setdefault(key, []).append(doc)
        return stored

    async def arm_credential_alerts(
        self, contractors: Sequence[Contractor], *, now: datetime
    ) -> int:
        if not contractors:
            return 0
        stored = await self._stored(contractors)
        writes: list[ReplaceOne[Document] | DeleteOne] = []
        armed_at: list[datetime] = []
        for contractor in contractors:
            held = held_credentials(contractor)
            items = stored.get(contractor.contractor_id, {})
            for key, credential in held.items():
                expires_on = credential.expires_on.isoformat()
                docs = items.get(key, [])
                kept = {AlertStage(d["stage"]) for d in docs if d["expires_on"] == expires_on}
                writes.extend(  # what a renewal replaces
                    _forget(d)
                    for d in docs
                    if d["expires_on"] != expires_on and d["fired_at_ms"] == UNFIRED
                )
                moments = alert_moments(credential, contractor.timezone, morning=self._morning)
                for alert in alerts_to_arm(moments, now, armed=kept):
                    item = alert_item(contractor, credential, alert)
                    writes.append(ReplaceOne(equals({"_id": item["_id"]}), item, upsert=True))
                    armed_at.append(alert.due_at)
            for key, docs in items.items():  # credentials it no longer holds
                if key not in held:
                    writes.extend(_forget(d) for d in docs if d["fired_at_ms"] == UNFIRED)
        if writes:
            async with self._store.exclusive():
                await self._store.db[CREDENTIAL_ALERTS].bulk_write(writes, ordered=True)
        if armed_at:
            self._store.notify_due([(CREDENTIAL_ALERT_WORK, min(armed_at))])
        return len(armed_at)


def _forget(doc: Document) -> DeleteOne:
    """Delete an unfired item, if it is still the one that was read."""
    return DeleteOne(
        equals({"_id": doc["_id"], "expires_on": doc["expires_on"], "fired_at_ms": UNFIRED})
    )


def alert_event(
    contractor: Contractor,
    credential: Credential,
    stage: AlertStage,
    due_at: datetime,
    now: datetime,
) -> EventPayload | str:
    """The alert's event, or why none is sent."""
    left = days_left(credential, contractor.timezone, now)
    try:
        if stage.is_warning:
            if left < 0:
                return "skipped: expired meanwhile"
            return ContractorCredentialExpiring(
                contractor_id=contractor.contractor_id,
                contractor_name=contractor.name,
                credential_kind=credential.kind.value,
                credential_number=credential.number,
                credential_name=credential.name,
                expires_on=credential.expires_on,
                days_left=left,
                due_at=due_at,
                contact=contractor_contact(contractor),
            )
        return ContractorCredentialExpired(
            contractor_id=contractor.contractor_id,
            contractor_name=contractor.name,
            credential_kind=credential.kind.value,
            credential_number=credential.number,
            credential_name=credential.name,
            expires_on=credential.expires_on,
            due_at=due_at,
        )
    except ValidationError as exc:
        log.error(
            "credential alert not sent: the profile does not fit the event",
            extra={"contractor_id": contractor.contractor_id, "error": str(exc)},
        )
        return "skipped: invalid profile"


async def fire_alert(uow: UnitOfWork, doc: Document, *, now: datetime) -> str:
    """Send one claimed alert (one event per tenant) and mark it fired, in ``uow``; its outcome."""
    db = database_of(uow)
    contractor_id = str(doc["contractor_id"])
    profile = await db[CONTRACTORS].find_one(equals({"_id": contractor_id}), session=uow.session)
    contractor = None if profile is None else contractor_from_document(profile)
    credential = None
    if contractor is not None:
        credential = next(
            (
                c
                for c in contractor.credentials
                if c.kind.value == doc["kind"]
                and c.number == doc["number"]
                and c.expires_on.isoformat() == doc["expires_on"]
            ),
            None,
        )
    due_at = datetime.fromtimestamp(int(doc["due_ms"]) / 1000, UTC)
    event: EventPayload | str = "skipped: credential no longer held"
    if contractor is not None and credential is not None:
        event = alert_event(contractor, credential, AlertStage(doc["stage"]), due_at, now)
    outcome = SENT if isinstance(event, EventPayload) else event
    marked = await db[CREDENTIAL_ALERTS].update_one(
        equals({"_id": doc["_id"], LEASE_TOKEN: doc[LEASE_TOKEN], "fired_at_ms": UNFIRED}),
        {"$set": {"fired_at_ms": epoch_ms(now), "outcome": outcome, **unleased()}},
        session=uow.session,
    )
    if marked.matched_count != 1:
        return GONE
    if isinstance(event, EventPayload) and contractor is not None:
        for tenant in sorted(contractor.tenants):
            uow.emit(
                event,
                topic=Topic.CONTRACTORS_EVENTS,
                key=contractor_id,
                tenant=tenant,
                correlationid=f"{doc['_id']}:{doc['expires_on']}",
                subject=contractor_id,
            )
        if isinstance(event, ContractorCredentialExpired):
            await _flag_open_jobs(uow, event, now=now)
    return outcome


async def _flag_open_jobs(
    uow: UnitOfWork, expired: ContractorCredentialExpired, *, now: datetime
) -> None:
    """One ``credential_lapsed`` per job the contractor still has open, keyed by its work order:
    the job goes on (nobody is taken off a job by a calendar), flagged in the order's timeline."""
    jobs = (
        await database_of(uow)[OFFERS]
        .find(
            equals(
                {
                    "contractor_id": expired.contractor_id,
                    "status": OfferStatus.ACCEPTED.value,
                    "job": JobStatus.OPEN.value,
                }
            ),
            projection={"work_order_id": True, "tenant": True},
            session=uow.session,
        )
        .to_list()
    )
    for job in jobs:
        work_order_id = str(job["work_order_id"])
        uow.emit(
            AssignmentCredentialLapsed(
                work_order_id=work_order_id,
                offer_id=str(job["_id"]),
                contractor_id=expired.contractor_id,
                credential_kind=expired.credential_kind,
                credential_number=expired.credential_number,
                expires_on=expired.expires_on,
                noticed_at=now,
            ),
            topic=Topic.CONTRACTORS_EVENTS,
            key=work_order_id,
            tenant=str(job["tenant"]),
            correlationid=work_order_id,
            subject=work_order_id,
        )


def credential_alert_work(
    units: UnitsOfWork,
    *,
    clock: Callable[[], datetime] = utc_now,
    poll_seconds: float = 60.0,
    lease_seconds: float = 30.0,
) -> DueWork:
    """The kind ``credential-alerts``: send each armed credential alert once."""

    async def fire(item: ClaimedItem) -> str:
        async def work(uow: UnitOfWork) -> str:
            return await fire_alert(uow, item.doc, now=clock())

        outcome = await in_unit_of_work(units, work)
        if outcome != SENT:
            log.info("credential alert not sent", extra={"item": str(item.id), "outcome": outcome})
        return outcome

    return DueWork(
        name=CREDENTIAL_ALERT_WORK,
        collection=CREDENTIAL_ALERTS,
        due=due_alerts,
        fire=fire,
        lease=timedelta(seconds=lease_seconds),
        batch_size=100,
        poll_seconds=poll_seconds,
        order=(("due_ms", 1),),
        retry_after=timedelta(seconds=5),
        projection=dict.fromkeys(FIRE_FIELDS, True),
        releases_itself=True,
    )


__all__ = [
    "GONE",
    "SENT",
    "MongoCredentialAlerts",
    "alert_event",
    "alert_id",
    "alert_item",
    "credential_alert_work",
    "due_alerts",
    "fire_alert",
]
