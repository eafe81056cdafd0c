"""Credential alerts through the real embedded store and the due-work scheduler on a fake clock:
each alert once, at 08:00 on the contractor's calendar across Berlin's change to winter time,
nothing again after a restart or a re-import, a renewal armed afresh, and a crashed fire sent once
after its lease runs out. The events are read from the outbox (no broker needed)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fixloop_contractors.adapters.credential_alerts import (
    MongoCredentialAlerts,
    credential_alert_work,
    fire_alert,
)
from fixloop_contractors.adapters.mongo import (
    CREDENTIAL_ALERT_WORK,
    CREDENTIAL_ALERTS,
    OFFERS,
    MongoContractorRegistry,
    ensure_indexes,
    offer_fields,
)
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.domain.dispatch import DispatchRequest
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_devkit.testing import unique
from fixloop_shared.contracts import (
    AssignmentCredentialLapsed,
    ContractorCredentialExpired,
    ContractorCredentialExpiring,
)
from fixloop_shared.due_work import (
    ClaimedItem,
    DueWork,
    DueWorkScheduler,
    MongoDueWorkStore,
    epoch_ms,
)
from fixloop_shared.store import OUTBOX, MongoClient, Store
from fixloop_shared.topics import Topic

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
EXPIRES_ON = date(2026, 11, 2)
"""Its 7-day alert (26 Oct) falls the day after Berlin leaves summer time (25 Oct 2026)."""
TENANTS = ("acme", "globex")
ALERT_TYPES = (ContractorCredentialExpiring.event_type, ContractorCredentialExpired.event_type)
LEASE = timedelta(seconds=30)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service="contractors")
    await store.ensure_indexes()
    await ensure_indexes(store)
    return store


def contractor(
    contractor_id: str,
    *,
    expires_on: date = EXPIRES_ON,
    number: str = "HWK-B 2020/1",
    tenants: Iterable[str] = TENANTS,
) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name="Kältetechnik Berlin GmbH",
        email="dispo@kaelte.example",
        timezone="Europe/Berlin",
        tenants=frozenset(tenants),
        skills=frozenset({"hvac"}),
        regions=(ServiceRegion(country="DE", postal_prefixes=("10",)),),
        credentials=(
            Credential(
                kind=CredentialKind.TRADE_LICENCE,
                number=number,
                expires_on=expires_on,
                name="Handwerkskammer Berlin",
            ),
        ),
    )


async def import_at(store: Store, contractors: list[Contractor], now: datetime) -> int:
    report = await import_contractors(
        MongoContractorRegistry(store),
        contractors,
        as_of=now.date(),
        alerts=MongoCredentialAlerts(store),
        now=now,
    )
    return report.alerts_armed


def scheduler_on(store: Store, clock: FakeClock, work: DueWork | None = None) -> DueWorkScheduler:
    """A service process's scheduler (a new owner each time) with the credential alerts kind."""
    scheduler = DueWorkScheduler.for_store(store, clock=clock)
    scheduler.add(work or credential_alert_work(store, clock=clock))
    return scheduler


async def alerts_sent(store: Store) -> list[dict[str, Any]]:
    """Every credential alert in the outbox, oldest first: its type, tenant, key and payload."""
    docs = (
        await store.db[OUTBOX]
        .find({"event_type": {"$in": list(ALERT_TYPES)}})
        .sort("seq", 1)
        .to_list()
    )
    return [
        {
            "type": doc["event_type"],
            "tenant": doc["headers"]["ce_tenant"],
            "topic": doc["topic"],
            "key": doc["key"],
            "payload": json.loads(doc["value"]),
        }
        for doc in docs
    ]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def test_each_alert_once_at_the_local_morning_across_the_change_to_winter_time(
    store: Store,
) -> None:
    contractor_id = unique("ctr")
    clock = FakeClock(utc("2026-09-01T10:00:00+00:00"))
    assert await import_at(store, [contractor(contractor_id)], clock.now) == 3
    scheduler = scheduler_on(store, clock)

    async def step(at: str, fired: int) -> None:
        clock.now = utc(at)
        assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == fired, at

    # 30 days before: 08:00 summer time in Berlin is 06:00 UTC.
    await step("2026-10-03T05:59:59+00:00", 0)
    await step("2026-10-03T06:00:00+00:00", 1)
    await step("2026-10-03T06:00:01+00:00", 0)
    # 7 days before, the day after the change: 08:00 winter time is 07:00 UTC, not 06:00.
    await step("2026-10-26T06:30:00+00:00", 0)
    await step("2026-10-26T07:00:00+00:00", 1)

    # A restart (another process over the same store) sends nothing again.
    scheduler = scheduler_on(store, clock)
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 0
    # A re-import of the same profile arms nothing new.
    assert (
        await import_at(store, [contractor(contractor_id)], utc("2026-10-27T09:00:00+00:00")) == 0
    )
    await step("2026-10-27T09:00:00+00:00", 0)

    # Expired: the day after the expiry date (valid through 2 Nov), 08:00 CET = 07:00 UTC.
    await step("2026-11-03T06:59:59+00:00", 0)
    await step("2026-11-03T07:00:00+00:00", 1)
    await step("2026-11-10T07:00:00+00:00", 0)

    sent = await alerts_sent(store)
    assert len(sent) == 3 * len(TENANTS)
    by_stage: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for alert in sent:
        assert alert["topic"] == Topic.CONTRACTORS_EVENTS.value
        assert alert["key"] == contractor_id
        payload = alert["payload"]
        assert payload["contractor_id"] == contractor_id
        assert payload["credential_kind"] == "trade_licence"
        assert payload["credential_number"] == "HWK-B 2020/1"
        assert payload["credential_name"] == "Handwerkskammer Berlin"
        assert payload["expires_on"] == "2026-11-02"
        due_local = utc(payload["due_at"]).astimezone(BERLIN)
        assert (due_local.hour, due_local.minute) == (8, 0)
        by_stage.setdefault((alert["type"], payload.get("days_left")), []).append(alert)
    assert sorted(by_stage) == sorted(
        [
            (ContractorCredentialExpiring.event_type, 30),
            (ContractorCredentialExpiring.event_type, 7),
            (ContractorCredentialExpired.event_type, None),
        ]
    )
    for (_, days_left), alerts in by_stage.items():
        assert sorted(a["tenant"] for a in alerts) == sorted(TENANTS), days_left
    due = {key: {utc(a["payload"]["due_at"]) for a in alerts} for key, alerts in by_stage.items()}
    assert due[(ContractorCredentialExpiring.event_type, 30)] == {utc("2026-10-03T06:00:00Z")}
    assert due[(ContractorCredentialExpiring.event_type, 7)] == {utc("2026-10-26T07:00:00Z")}
    assert due[(ContractorCredentialExpired.event_type, None)] == {utc("2026-11-03T07:00:00Z")}

    # Renewed for a year: armed afresh (same items, the new date), nothing due before its time.
    renewed = contractor(contractor_id, expires_on=date(2027, 11, 2))
    assert await import_at(store, [renewed], utc("2026-11-04T09:00:00+00:00")) == 3
    items = await store.db[CREDENTIAL_ALERTS].find({"contractor_id": contractor_id}).to_list()
    assert sorted((i["stage"], i["expires_on"], i["fired_at_ms"]) for i in items) == [
        ("expired", "2027-11-02", 0),
        ("expiring_30", "2027-11-02", 0),
        ("expiring_7", "2027-11-02", 0),
    ]
    await step("2026-11-04T09:00:00+00:00", 0)
    await step("2027-10-03T06:00:00+00:00", 1)  # summer time again: 08:00 CEST
    latest = (await alerts_sent(store))[-len(TENANTS) :]
    assert {a["payload"]["expires_on"] for a in latest} == {"2027-11-02"}
    assert {a["payload"]["days_left"] for a in latest} == {30}
    assert len(await alerts_sent(store)) == 4 * len(TENANTS)


async def test_a_credential_imported_late_warns_once_at_once(store: Store) -> None:
    """Imported 20 days before it expires: the 30-day warning goes out at once (20 days left),
    never the 7-day one with it; and a new licence number drops the old one's unfired alerts."""
    contractor_id = unique("ctr")
    clock = FakeClock(utc("2026-10-13T12:00:00+00:00"))
    assert await import_at(store, [contractor(contractor_id, tenants=["acme"])], clock.now) == 3
    scheduler = scheduler_on(store, clock)
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 1
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 0
    (sent,) = await alerts_sent(store)
    assert sent["type"] == ContractorCredentialExpiring.event_type
    assert sent["payload"]["days_left"] == 20
    assert utc(sent["payload"]["due_at"]) == clock.now

    # The licence is replaced by one with a new number: the old one's pending alerts go.
    replaced = contractor(
        contractor_id, number="HWK-B 2026/9", expires_on=date(2031, 1, 31), tenants=["acme"]
    )
    assert await import_at(store, [replaced], clock.now) == 3
    items = await store.db[CREDENTIAL_ALERTS].find({"contractor_id": contractor_id}).to_list()
    pending = sorted((i["number"], i["stage"]) for i in items if i["fired_at_ms"] == 0)
    assert pending == [
        ("HWK-B 2026/9", "expired"),
        ("HWK-B 2026/9", "expiring_30"),
        ("HWK-B 2026/9", "expiring_7"),
    ]
    clock.now = utc("2026-11-03T07:00:00+00:00")  # the old licence's expiry alert: gone
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 0
    assert len(await alerts_sent(store)) == 1


async def test_a_crashed_fire_is_sent_again_after_its_lease_and_only_once(store: Store) -> None:
    contractor_id = unique("ctr")
    due = utc("2026-10-03T06:00:00+00:00")  # the 30-day warning
    clock = FakeClock(utc("2026-09-01T10:00:00+00:00"))
    assert await import_at(store, [contractor(contractor_id, tenants=["acme"])], clock.now) == 3
    work = credential_alert_work(store, clock=clock, lease_seconds=LEASE.total_seconds())

    # A pod claims the due alert and dies before it completes (its lease stays taken).
    clock.now = due
    claimed, _ = await MongoDueWorkStore(store).claim(
        work,
        owner="pod-killed",
        now=clock.now,
        lease_until_ms=epoch_ms(clock.now + LEASE),
        limit=10,
    )
    assert len(claimed) == 1

    # Another pod's fire is cut off inside its transaction, after queuing the event.
    cut: list[str] = []

    async def cut_off(item: ClaimedItem) -> None:
        async with store.transaction() as uow:
            cut.append(await fire_alert(uow, item.doc, now=clock()))
            assert uow.emitted
            msg = "killed mid-fire"
            raise RuntimeError(msg)

    survivor = scheduler_on(store, clock)
    clock.now = due + timedelta(seconds=10)
    assert await survivor.run_once(CREDENTIAL_ALERT_WORK) == 0  # still leased by the dead pod
    crashing = scheduler_on(store, clock, dataclasses.replace(work, fire=cut_off))
    clock.now = due + LEASE + timedelta(seconds=1)
    assert await crashing.run_once(CREDENTIAL_ALERT_WORK) == 0
    assert cut == ["sent"]  # it got as far as queuing the event; the transaction was undone
    assert await alerts_sent(store) == []

    # Once that lease runs out too, a live pod sends it: once.
    clock.now += LEASE + timedelta(seconds=1)
    assert await survivor.run_once(CREDENTIAL_ALERT_WORK) == 1
    assert await survivor.run_once(CREDENTIAL_ALERT_WORK) == 0
    clock.now += LEASE * 3
    assert await scheduler_on(store, clock).run_once(CREDENTIAL_ALERT_WORK) == 0
    (sent,) = await alerts_sent(store)
    assert sent["type"] == ContractorCredentialExpiring.event_type
    assert sent["payload"]["days_left"] == 30
    assert utc(sent["payload"]["due_at"]) == due


async def test_a_credential_expiring_during_an_open_job_flags_that_job(store: Store) -> None:
    """The expiry alert also flags each job the contractor still has open (one event per job,
    keyed by its work order, for the order's timeline); finished jobs and open offers are not."""
    contractor_id = unique("ctr")
    clock = FakeClock(utc("2026-10-20T10:00:00+00:00"))
    await import_at(store, [contractor(contractor_id, tenants=["acme", "globex"])], clock.now)
    request = DispatchRequest(
        work_order_id="wo-x", tenant="acme", equipment_class="hvac", country="DE", postal_code="10"
    )

    def job(work_order_id: str, tenant: str) -> Offer:
        offered = Offer.open(
            offer_id=unique("offer"),
            request=dataclasses.replace(request, work_order_id=work_order_id, tenant=tenant),
            contractor_id=contractor_id,
            at=clock.now,
            ttl=timedelta(minutes=30),
        )
        return offered.accept(contractor_id, clock.now + timedelta(minutes=1))

    open_acme, open_globex = job(unique("wo"), "acme"), job(unique("wo"), "globex")
    done = job(unique("wo"), "acme").complete_job()
    only_offered = Offer.open(
        offer_id=unique("offer"),
        request=dataclasses.replace(request, work_order_id=unique("wo")),
        contractor_id=contractor_id,
        at=clock.now,
        ttl=timedelta(days=30),
    )
    await store.db[OFFERS].insert_many(
        [
            {"_id": o.offer_id, **offer_fields(o)}
            for o in (open_acme, open_globex, done, only_offered)
        ]
    )

    scheduler = scheduler_on(store, clock)
    await scheduler.run_once(CREDENTIAL_ALERT_WORK)  # the warnings (not what this is about)
    clock.now = utc("2026-10-26T07:00:00+00:00")
    await scheduler.run_once(CREDENTIAL_ALERT_WORK)
    assert (
        await store.db[OUTBOX].count_documents(
            {"event_type": AssignmentCredentialLapsed.event_type}
        )
        == 0
    )
    clock.now = utc("2026-11-03T07:00:00+00:00")  # the expired alert, 08:00 in Berlin
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 1
    flagged = (
        await store.db[OUTBOX]
        .find({"event_type": AssignmentCredentialLapsed.event_type})
        .sort("seq", 1)
        .to_list()
    )
    assert sorted((d["key"], d["headers"]["ce_tenant"]) for d in flagged) == sorted(
        [(open_acme.work_order_id, "acme"), (open_globex.work_order_id, "globex")]
    )
    payloads = {json.loads(d["value"])["offer_id"]: json.loads(d["value"]) for d in flagged}
    assert set(payloads) == {open_acme.offer_id, open_globex.offer_id}
    lapsed = payloads[open_acme.offer_id]
    assert (lapsed["contractor_id"], lapsed["credential_number"], lapsed["expires_on"]) == (
        contractor_id,
        "HWK-B 2020/1",
        "2026-11-02",
    )
    # Fired once: nothing more on the next pass.
    assert await scheduler.run_once(CREDENTIAL_ALERT_WORK) == 0
    assert (
        await store.db[OUTBOX].count_documents(
            {"event_type": AssignmentCredentialLapsed.event_type}
        )
        == 2
    )
