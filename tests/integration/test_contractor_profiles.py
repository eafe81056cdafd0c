"""Contractor profiles (base location, capacity, skill levels, on-call rota) through a real store:
imported from a contractor file, read back as dispatch candidates equal to the domain objects,
and a rota giving the same on-call answers before and after the round trip, across the
daylight-saving changes of Europe/Berlin."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fixloop_contractors.adapters.contractor_file import read_contractor_file
from fixloop_contractors.adapters.mongo import (
    CONTRACTORS,
    UNLIMITED_CAPACITY,
    UPSERT_BATCH,
    MongoContractorRegistry,
    MongoDispatchLedger,
    contractor_from_document,
    ensure_indexes,
)
from fixloop_contractors.app.ports import UpsertCounts
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.domain.dispatch import DispatchRequest
from fixloop_contractors.domain.model import (
    DEFAULT_SKILL_LEVEL,
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
    zone,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_contractors.domain.rota import OnCall, OnCallRota, WallClock
from fixloop_shared.store import MongoClient, Store
from fixloop_shared.vocabulary import Priority

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = REPO / "examples" / "contractors.yaml"
AS_OF = date(2026, 11, 21)

PROFILES = """\
contractors:
  - contractor_id: ctr-nachtdienst
    name: Nachtdienst Haustechnik GmbH
    email: dispo@nachtdienst.example
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac, plumbing]
    regions: [{country: DE, postal_prefixes: ["10"]}]
    credentials:
      - {kind: trade_licence, number: HWK-B 2020-1, expires_on: 2028-12-31}
    base_location: {latitude: 52.520008, longitude: 13.404954}
    max_concurrent_jobs: 4
    skill_levels: {plumbing: 5, hvac: 2}
    rota:
      primary:
        windows:
          - {days: weekdays, from: "08:00", to: "18:00"}
          - {days: sat, from: "09:00", to: "13:00"}
        exceptions:
          - {date: 2026-12-25}
          - date: 2026-12-24
            hours: [{from: "08:00", to: "12:00"}, {from: "22:00", to: "24:00"}]
          - date: 2026-03-29                       # the night the clocks go forward
            hours: [{from: "01:30", to: "03:30"}]
      backup:
        windows:
          - {days: every_day, from: "22:00", to: "06:00"}
          - {days: [sun], from: "10:00", to: "10:00"}
  - contractor_id: ctr-rund-um-die-uhr
    name: Rund um die Uhr GmbH
    email: info@rund-um-die-uhr.example
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
    max_concurrent_jobs: 1
    rota:
      primary:
        windows: []
        exceptions: [{date: 2026-10-25, hours: [{from: "02:00", to: "03:00"}]}]
  - contractor_id: ctr-schlicht
    name: Schlicht GmbH
    email: info@schlicht.example
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
"""


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service="contractors")
    await store.ensure_indexes()
    await ensure_indexes(store)
    return store


def profile_file(tmp_path: Path, text: str = PROFILES) -> list[Contractor]:
    path = tmp_path / "contractors.yaml"
    path.write_text(text, encoding="utf-8")
    return read_contractor_file(path)


async def read_back(store: Store) -> list[Contractor]:
    candidates = await MongoContractorRegistry(store).list_contractors(tenant="acme")
    return [c.contractor for c in candidates]


def quarter_hours(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(minutes=15 * i) for i in range(hours * 4)]


def answers(rota: OnCallRota | None, moments: list[datetime]) -> list[OnCall | None]:
    berlin = zone("Europe/Berlin")
    if rota is None:
        return [OnCall.PRIMARY] * len(moments)
    return [rota.on_call_at(moment, berlin) for moment in moments]


async def test_profiles_round_trip_through_the_store(store: Store, tmp_path: Path) -> None:
    imported = profile_file(tmp_path)
    report = await import_contractors(MongoContractorRegistry(store), imported, as_of=AS_OF)
    assert report.counts == UpsertCounts(created=3, updated=0, unchanged=0)

    stored = await read_back(store)
    assert stored == sorted(imported, key=lambda c: c.contractor_id)
    nacht = next(c for c in stored if c.contractor_id == "ctr-nachtdienst")
    assert nacht.base_location is not None
    assert (nacht.base_location.latitude, nacht.base_location.longitude) == (52.520008, 13.404954)
    assert nacht.max_concurrent_jobs == 4
    assert nacht.skill_level("plumbing") == 5
    assert nacht.skill_level("hvac") == 2
    schlicht = next(c for c in stored if c.contractor_id == "ctr-schlicht")
    assert (schlicht.base_location, schlicht.max_concurrent_jobs, schlicht.rota) == (None,) * 3
    assert schlicht.skill_level("hvac") == DEFAULT_SKILL_LEVEL

    # In the document: plain values, no BSON dates, nothing the embedded store could mangle.
    doc = await store.db[CONTRACTORS].find_one({"_id": "ctr-nachtdienst"})
    assert doc is not None
    assert doc["base_location"] == {"latitude": 52.520008, "longitude": 13.404954}
    assert doc["skill_levels"] == [["hvac", 2], ["plumbing", 5]]
    primary = doc["rota"]["primary"]
    assert primary["windows"][0] == [0, "08:00:00", 0, "18:00:00"]
    assert primary["exceptions"][:2] == [
        ["2026-12-25"],
        ["2026-12-24", "08:00:00", "12:00:00", "22:00:00", "00:00:00"],
    ]
    assert doc["rota"]["backup"]["windows"][0] == [0, "22:00:00", 1, "06:00:00"]
    assert contractor_from_document(doc) == nacht

    # Importing the same file again changes nothing.
    again = await import_contractors(MongoContractorRegistry(store), imported, as_of=AS_OF)
    assert again.counts == UpsertCounts(created=0, updated=0, unchanged=3)

    # A file that drops the fields clears them: the import owns the whole profile.
    plain = PROFILES.split("    base_location:", 1)[0]
    (cleared,) = profile_file(tmp_path, plain)
    third = await import_contractors(MongoContractorRegistry(store), [cleared], as_of=AS_OF)
    assert third.counts == UpsertCounts(created=0, updated=1, unchanged=0)
    stored = await read_back(store)
    nacht = next(c for c in stored if c.contractor_id == "ctr-nachtdienst")
    assert nacht == cleared
    assert (nacht.base_location, nacht.max_concurrent_jobs, nacht.skill_levels, nacht.rota) == (
        None,
        None,
        (),
        None,
    )


async def test_rota_answers_the_same_across_daylight_saving_after_the_round_trip(
    store: Store, tmp_path: Path
) -> None:
    imported = {c.contractor_id: c for c in profile_file(tmp_path)}
    await import_contractors(MongoContractorRegistry(store), list(imported.values()), as_of=AS_OF)
    stored = {c.contractor_id: c for c in await read_back(store)}

    # Saturday to Monday around the last Sundays of March and October 2026, every 15 minutes,
    # and the Christmas days with their exceptions.
    moments = [
        *quarter_hours(datetime(2026, 3, 27, 22, tzinfo=UTC), 60),
        *quarter_hours(datetime(2026, 10, 23, 22, tzinfo=UTC), 60),
        *quarter_hours(datetime(2026, 12, 23, 23, tzinfo=UTC), 72),
    ]
    for contractor_id, contractor in imported.items():
        assert answers(stored[contractor_id].rota, moments) == answers(contractor.rota, moments)

    # The windows are read on the local wall clock: 06:00 is 04:00 UTC in summer, 05:00 in winter.
    nacht = stored["ctr-nachtdienst"].rota
    berlin = zone("Europe/Berlin")
    assert nacht is not None
    spring = datetime(2026, 3, 31, tzinfo=UTC)  # Tuesday after the clocks went forward
    autumn = datetime(2026, 10, 27, tzinfo=UTC)  # Tuesday after the clocks went back
    assert nacht.on_call_at(spring + timedelta(hours=3, minutes=59), berlin) is OnCall.BACKUP
    assert nacht.on_call_at(spring + timedelta(hours=4), berlin) is None
    assert nacht.on_call_at(autumn + timedelta(hours=4, minutes=59), berlin) is OnCall.BACKUP
    assert nacht.on_call_at(autumn + timedelta(hours=5), berlin) is None
    # The spring night's primary exception (01:30 to 03:30 local) spans the skipped hour
    # 02:00-03:00: 01:30 CET is 00:30 UTC, 03:30 CEST is 01:30 UTC (its backup is on all night).
    march_29 = datetime(2026, 3, 29, tzinfo=UTC)

    def primary_on_call(after: timedelta) -> bool:
        assert nacht is not None
        return nacht.primary.on_call(WallClock.of(march_29 + after, berlin))

    assert not primary_on_call(timedelta(minutes=29))
    assert primary_on_call(timedelta(minutes=30))
    assert primary_on_call(timedelta(hours=1, minutes=29))
    assert not primary_on_call(timedelta(hours=1, minutes=30))
    assert nacht.on_call_at(march_29 + timedelta(minutes=30), berlin) is OnCall.PRIMARY
    assert nacht.on_call_at(march_29 + timedelta(hours=1, minutes=30), berlin) is OnCall.BACKUP

    # The autumn night's repeated hour 02:00-03:00 local comes twice: on call both times.
    once = stored["ctr-rund-um-die-uhr"].rota
    assert once is not None
    october_25 = datetime(2026, 10, 25, tzinfo=UTC)
    hours_on_call = [
        moment
        for moment in quarter_hours(october_25 - timedelta(hours=2), 8)
        if once.on_call_at(moment, berlin) is not None
    ]
    assert hours_on_call == quarter_hours(october_25, 2)  # 02:00 CEST to 03:00 CET


async def test_documents_from_before_the_profile_fields_still_read(store: Store) -> None:
    legacy = {
        "_id": "ctr-alt",
        "name": "Alt GmbH",
        "email": "alt@example.com",
        "phone": None,
        "timezone": "Europe/Berlin",
        "tenants": ["acme"],
        "skills": ["hvac"],
        "regions": [{"country": "DE", "postal_prefixes": ["10"]}],
        "credentials": [
            {
                "kind": "trade_licence",
                "name": None,
                "number": "TL-1",
                "expires_on": "2027-01-31",
            }
        ],
        "open_offers": 2,
    }
    await store.db[CONTRACTORS].insert_one(legacy)
    (candidate,) = await MongoContractorRegistry(store).list_contractors(tenant="acme")
    assert candidate.open_offers == 2
    assert candidate.open_jobs == 0
    old = candidate.contractor
    assert (old.base_location, old.max_concurrent_jobs, old.skill_levels, old.rota) == (
        None,
        None,
        (),
        None,
    )
    assert old.skill_level("hvac") == DEFAULT_SKILL_LEVEL


async def test_example_file_round_trips(store: Store) -> None:
    example = read_contractor_file(EXAMPLE_FILE)
    await import_contractors(MongoContractorRegistry(store), example, as_of=AS_OF)
    stored = await MongoContractorRegistry(store).list_contractors()
    assert [c.contractor for c in stored] == sorted(example, key=lambda c: c.contractor_id)
    by_id = {c.contractor.contractor_id: c.contractor for c in stored}
    assert by_id["ctr-lift-go"].rota is not None
    assert by_id["ctr-thamesfix"].skill_levels == (("electrical", 3), ("hvac", 4), ("plumbing", 5))


def many(count: int, *, expires_on: date, tenant: str = "big") -> list[Contractor]:
    """``count`` contractors of ``tenant`` for hvac in Germany, credentials valid through
    ``expires_on``."""
    return [
        Contractor(
            contractor_id=f"ctr-{tenant}-{i:06d}",
            name=f"Contractor {i}",
            email=f"c{i}@example.com",
            timezone="Pacific/Kiritimati" if i % 2 else "Pacific/Pago_Pago",  # UTC+14 / UTC-11
            tenants=frozenset({tenant}),
            skills=frozenset({"hvac"}),
            regions=(ServiceRegion(country="DE", postal_prefixes=("1",)),),
            credentials=(
                Credential(
                    kind=CredentialKind.LIABILITY_INSURANCE, number=f"I-{i}", expires_on=expires_on
                ),
            ),
        )
        for i in range(count)
    ]


async def test_an_import_of_any_size_and_the_candidates_narrowed_by_credentials(
    store: Store,
) -> None:
    """An import larger than one batch lands whole; dispatch's query returns every contractor
    whose credentials may still be valid somewhere on earth, none cut for its id, and leaves
    out those expired for sure (two days ago)."""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    valid = many(UPSERT_BATCH + 300, expires_on=now.date())
    lapsed = [
        dataclasses.replace(c, tenants=frozenset({"big"}))
        for c in many(40, expires_on=now.date() - timedelta(days=2), tenant="lapsed")
    ]
    counts = await MongoContractorRegistry(store).upsert([*valid, *lapsed])
    assert counts == UpsertCounts(created=len(valid) + len(lapsed), updated=0, unchanged=0)

    request = DispatchRequest(
        work_order_id="wo-big", tenant="big", equipment_class="hvac", country="DE",
        postal_code="10115",
    )  # fmt: skip
    async with store.transaction() as uow:
        found = await MongoDispatchLedger(store).within(uow).candidates(request, at=now)
    assert sorted(c.contractor.contractor_id for c in found) == sorted(
        c.contractor_id for c in valid
    )
    # Valid through today: still valid on the local dates of UTC-11 and UTC+14 alike (the
    # domain decides per local date); the query leaves none of them out.


async def test_profiles_from_before_the_credential_day_are_backfilled(store: Store) -> None:
    await store.db[CONTRACTORS].insert_one(
        {
            "_id": "ctr-old",
            "name": "Old GmbH",
            "email": "old@example.com",
            "timezone": "Europe/Berlin",
            "tenants": ["acme"],
            "skills": ["hvac"],
            "regions": [{"country": "DE", "postal_prefixes": ["10"]}],
            "credentials": [
                {"kind": "trade_licence", "number": "T-2", "expires_on": "2028-05-31"},
                {"kind": "liability_insurance", "number": "I-2", "expires_on": "2027-02-28"},
            ],
            "open_offers": 0,
        }
    )
    await ensure_indexes(store)  # at start-up
    doc = await store.db[CONTRACTORS].find_one({"_id": "ctr-old"})
    assert doc is not None
    assert doc["credentials_valid_through"] == "2027-02-28"
    assert doc["spare_capacity"] == UNLIMITED_CAPACITY  # no maximum, no open offers or jobs
    assert await MongoContractorRegistry(store).backfill_credentials_valid_through() == 0


async def test_the_candidates_leave_out_contractors_at_capacity(store: Store) -> None:
    """Dispatch's query takes only contractors with capacity left: an offer uses it up, an
    import that raises the maximum gives it back, and the contractor's load is kept."""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    busy, free = (
        dataclasses.replace(c, max_concurrent_jobs=1)
        for c in many(2, expires_on=date(2030, 1, 1), tenant="cap")
    )
    registry, ledger = MongoContractorRegistry(store), MongoDispatchLedger(store)
    await registry.upsert([busy, free])
    request = DispatchRequest(
        work_order_id="wo-cap", tenant="cap", equipment_class="hvac", country="DE",
        postal_code="10115",
    )  # fmt: skip

    async def candidates() -> list[str]:
        async with store.transaction() as uow:
            found = await ledger.within(uow).candidates(request, at=now)
        return sorted(c.contractor.contractor_id for c in found)

    assert await candidates() == sorted([busy.contractor_id, free.contractor_id])
    async with store.transaction() as uow:
        offer = Offer.open(
            offer_id="offer-cap", request=request, contractor_id=busy.contractor_id, at=now,
            ttl=timedelta(minutes=30),
        )  # fmt: skip
        await ledger.within(uow).save_offer(offer, request, Priority.NORMAL, correlationid="c")
    assert await candidates() == [free.contractor_id]

    await registry.upsert([dataclasses.replace(busy, max_concurrent_jobs=2)])
    assert await candidates() == sorted([busy.contractor_id, free.contractor_id])
    doc = await store.db[CONTRACTORS].find_one({"_id": busy.contractor_id})
    assert doc is not None
    assert (doc["open_offers"], doc["spare_capacity"]) == (1, 1)
