"""The contractors service against the real embedded store and broker: the import CLI, the
Kafka path from ``workorder.received`` to ``assignment.offered`` / ``assignment.unfilled``, and the
work order's later steps (assigned, declined, cancelled, completed, reopened) on its offers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError
from typer.testing import CliRunner, Result

from fixloop_contractors.adapters.contractor_file import read_contractor_file
from fixloop_contractors.adapters.mongo import (
    CONTRACTORS,
    OFFERS,
    MongoContractorRegistry,
    ensure_indexes,
)
from fixloop_contractors.app.assignments import LifecycleOutcome
from fixloop_contractors.app.dispatch import dispatch_request
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.cli import app as cli
from fixloop_contractors.domain.offers import Offer
from fixloop_contractors.main import TOPICS, ContractorsService, bootstrap
from fixloop_contractors.settings import ContractorsSettings, Weights
from fixloop_devkit.testing import ConsumedRecord, eventually, produce, read_topic, unique
from fixloop_shared.bus import ensure_topics
from fixloop_shared.contracts import (
    AssignmentAccepted,
    EventPayload,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOfferDeclined,
    WorkOrderReceived,
    WorkOrderReopened,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import MongoClient as AsyncMongoClient
from fixloop_shared.store import Store
from fixloop_shared.topics import Topic, dead_letter_topic
from fixloop_shared.vocabulary import Priority

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = REPO / "examples" / "contractors.yaml"
DECISION_TIME = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# -- the import CLI -----------------------------------------------------------------------------


def run_import(path: Path, mongodb_uri: str, database: str, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["import", str(path), "--as-of", "2026-11-21", *extra],
        env={
            "FIXLOOP_CONTRACTORS_MONGODB_URI": mongodb_uri,
            "FIXLOOP_CONTRACTORS_DATABASE": database,
            "COLUMNS": "200",
        },
    )


@pytest.fixture
def store_docs(mongodb_uri: str, database_name: str) -> Iterator[Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, tz_aware=True)
    try:
        yield client[database_name]
    finally:
        client.close()


def summary_row(output: str) -> list[str]:
    """The numbers of the import summary table (imported, updated, unchanged, expiring, expired)."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and all(c.isdigit() for c in cells):
            return cells
    raise AssertionError(f"no summary row in:\n{output}")


def test_import_example_file_and_reimport_without_duplicates(
    mongodb_uri: str, database_name: str, store_docs: Any, tmp_path: Path
) -> None:
    first = run_import(EXAMPLE_FILE, mongodb_uri, database_name)
    assert first.exit_code == 0, first.output
    assert "Imported 8 contractors" in first.stdout
    assert summary_row(first.stdout) == ["8", "0", "0", "1", "1"]
    assert "OEVGW-GF-1184" in first.stdout  # Alpen Haustechnik's certificate: 27 days left
    assert "BHV-22-0047.551" in first.stdout  # Express Klima's lapsed insurance
    assert store_docs[CONTRACTORS].count_documents({}) == 8
    berliner = store_docs[CONTRACTORS].find_one({"_id": "ctr-berliner-klima"})
    assert berliner["tenants"] == ["acme", "globex"]
    assert berliner["regions"] == [{"country": "DE", "postal_prefixes": ["10", "12", "13", "14"]}]
    assert berliner["credentials"][1]["expires_on"] == "2027-12-31"
    assert berliner["open_offers"] == 0

    # Dispatch has since loaded a contractor; a re-import keeps that and duplicates nothing.
    store_docs[CONTRACTORS].update_one(
        {"_id": "ctr-berliner-klima"}, {"$inc": {"open_offers": 3, "spare_capacity": -3}}
    )
    second = run_import(EXAMPLE_FILE, mongodb_uri, database_name)
    assert second.exit_code == 0, second.output
    assert summary_row(second.stdout) == ["0", "0", "8", "1", "1"]
    assert store_docs[CONTRACTORS].count_documents({}) == 8
    assert store_docs[CONTRACTORS].find_one({"_id": "ctr-berliner-klima"})["open_offers"] == 3

    # A changed profile is updated in place, a new one is added.
    document = yaml.safe_load(EXAMPLE_FILE.read_text(encoding="utf-8"))
    document["contractors"][0]["skills"] = ["hvac", "refrigeration"]
    newcomer = dict(document["contractors"][1], contractor_id="ctr-neu", name="Neu GmbH")
    document["contractors"].append(newcomer)
    changed = tmp_path / "contractors.json"
    changed.write_text(json.dumps(document, default=str), encoding="utf-8")
    third = run_import(changed, mongodb_uri, database_name)
    assert third.exit_code == 0, third.output
    assert summary_row(third.stdout)[:3] == ["1", "1", "7"]
    assert store_docs[CONTRACTORS].count_documents({}) == 9
    berliner = store_docs[CONTRACTORS].find_one({"_id": "ctr-berliner-klima"})
    assert berliner["skills"] == ["hvac", "refrigeration"]
    assert berliner["open_offers"] == 3


BAD_FILE = """\
contractors:
  - contractor_id: ctr-fine
    name: Fine GmbH
    email: fine@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
  - contractor_id: ctr-broken
    name: Broken GmbH
    email: not-an-email
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE, postal_prefixes: [10]}]
    credentials:
      - {kind: trade_licence, number: TL-9, expires_on: 31.12.2027}
    rating: 5
"""


def test_bad_file_prints_one_line_per_problem_and_imports_nothing(
    mongodb_uri: str, database_name: str, store_docs: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_FILE, encoding="utf-8")
    result = run_import(bad, mongodb_uri, database_name)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "contractors[1].email: value is not a valid email address: "
        "An email address must have an @-sign.",
        "contractors[1].regions[0].postal_prefixes[0]: Input should be a string; "
        "write it in quotes (it was read as the number 10)",
        "contractors[1].credentials[0].expires_on: Input should be a date written YYYY-MM-DD",
        "contractors[1].rating: Extra inputs are not permitted",
        f"error: {bad}: 4 problems; nothing was imported",
    ]
    assert store_docs[CONTRACTORS].count_documents({}) == 0


def test_dry_run_validates_without_writing(
    mongodb_uri: str, database_name: str, store_docs: Any
) -> None:
    result = run_import(EXAMPLE_FILE, mongodb_uri, database_name, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "is valid: 8 contractors" in result.stdout
    assert store_docs[CONTRACTORS].count_documents({}) == 0


# -- the Kafka path -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[ContractorsService]:
    """The service's consumer and outbox relay in-process, on the example registry."""
    settings = ContractorsSettings(
        mongodb_uri=mongodb_uri,
        database=unique("contractors").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        outbox_poll_seconds=0.05,
        # Ranked by where they are (and skill): the broker is shared with other modules' tests,
        # whose orders this group may also read and offer, so load and scorecards vary.
        score_weights=Weights(load=0, scorecard=0),
    )
    built = bootstrap(settings, clock=lambda: DECISION_TIME)
    ctx = built.ctx
    await ensure_topics(settings.kafka, [*TOPICS, dead_letter_topic(ctx.service)])
    await ctx.store.ensure_indexes()
    await ensure_indexes(ctx.store)
    await import_contractors(
        MongoContractorRegistry(ctx.store),
        read_contractor_file(EXAMPLE_FILE),
        as_of=date(2026, 11, 21),
    )
    await ctx.bus.broker.start()
    ctx.relay.start()
    try:
        yield built
    finally:
        await ctx.bus.broker.stop()
        await ctx.relay.stop()
        await ctx.store.client.close()


def work_order(
    *,
    tenant: str = "acme",
    equipment_class: str = "hvac",
    country: str = "DE",
    postal_code: str = "10115",
) -> WorkOrderReceived:
    work_order_id = unique("wo")
    return WorkOrderReceived.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "tenant": tenant,
                "source_platform": "fieldhub",
                "received_at": DECISION_TIME.isoformat(),
                "external_id": f"FH-{work_order_id}",
                "site": {
                    "site_id": "site-1",
                    "name": "Test site",
                    "address": {
                        "line1": "Teststraße 1",
                        "city": "Somewhere",
                        "postal_code": postal_code,
                        "country": country,
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": "EQ-1", "equipment_class": equipment_class},
                "category": "breakdown",
                "priority": "high",
                "description": "Does not work",
                "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de"},
            }
        )
    )


async def publish(
    bootstrap: str,
    order: WorkOrderReceived,
    envelope: EventEnvelope | None = None,
    *,
    key: str | None = None,
) -> EventEnvelope:
    """Publish like the orders service does: binary mode, keyed by the work order id."""
    envelope = envelope or EventEnvelope.new(
        order, source="orders", subject=order.work_order_id, tenant=order.tenant
    )
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(order),
        key=(key or order.work_order_id).encode(),
        headers=binary_headers(envelope),
    )
    return envelope


async def decisions_for(
    bootstrap: str, work_order_id: str, *, at_least: int = 1, timeout: float = 30
) -> list[ConsumedRecord]:
    """The contractors' events about one work order (the topic is shared by all tests)."""

    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if r.key == work_order_id.encode()]

    records = await read_topic(
        bootstrap,
        Topic.CONTRACTORS_EVENTS,
        until=lambda rs: len(mine(rs)) >= at_least,
        timeout=timeout,
    )
    return mine(records)


async def test_received_order_is_offered_to_the_most_local_contractor(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order()
    inbound = await publish(kafka_bootstrap, order)

    (record,) = await decisions_for(kafka_bootstrap, order.work_order_id)
    assert record.headers["ce_type"] == "fixloop.assignment.offered.v1"
    assert record.headers["ce_source"] == "contractors"
    assert record.headers["ce_subject"] == order.work_order_id
    assert record.headers["ce_tenant"] == "acme"
    assert record.headers["ce_correlationid"] == inbound.correlationid
    offer = record.json()
    assert offer["contractor_id"] == "ctr-berliner-klima"
    assert offer["contractor_name"] == "Berliner Klima Service GmbH"
    offered_at = datetime.fromisoformat(offer["offered_at"])
    assert offered_at == DECISION_TIME
    assert datetime.fromisoformat(offer["expires_at"]) - offered_at == timedelta(minutes=30)

    db = service.ctx.store.db
    stored = await db[OFFERS].find_one({"work_order_id": order.work_order_id})
    assert stored is not None
    assert stored["_id"] == offer["offer_id"]
    assert stored["status"] == "open"
    assert stored["contractor_id"] == "ctr-berliner-klima"
    assert stored["expires_at"] == DECISION_TIME + timedelta(minutes=30)
    berliner = await db[CONTRACTORS].find_one({"_id": "ctr-berliner-klima"})
    assert berliner is not None
    assert berliner["open_offers"] >= 1


async def test_duplicate_events_yield_one_offer(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order(equipment_class="elevator", postal_code="80331")
    envelope = await publish(kafka_bootstrap, order)
    await publish(kafka_bootstrap, order, envelope)  # redelivery: the same event id
    await publish(kafka_bootstrap, order)  # the same order again under a new event id
    # A later event on the same key (so the same partition) is handled after all three.
    marker = work_order(equipment_class="elevator", postal_code="80331")
    await publish(kafka_bootstrap, marker, key=order.work_order_id)
    await decisions_for(kafka_bootstrap, marker.work_order_id)

    records = await decisions_for(kafka_bootstrap, order.work_order_id)
    assert [r.headers["ce_type"] for r in records] == ["fixloop.assignment.offered.v1"]
    assert records[0].json()["contractor_id"] == "ctr-lift-go"
    db = service.ctx.store.db
    assert await db[OFFERS].count_documents({"work_order_id": order.work_order_id}) == 1

    # The load counter moves with the offers: once settled, it equals the open offers.
    async def load_and_open_offers() -> tuple[int, int]:
        lift = await db[CONTRACTORS].find_one({"_id": "ctr-lift-go"})
        assert lift is not None
        open_offers = await db[OFFERS].count_documents(
            {"contractor_id": "ctr-lift-go", "status": "open"}
        )
        return int(lift["open_offers"]), open_offers

    load, _ = await eventually(load_and_open_offers, lambda pair: pair[0] == pair[1])
    assert load >= 2


async def test_order_nobody_can_take_is_unfilled_with_reasons(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    nobody = work_order(equipment_class="elevator", country="AT", postal_code="1010")
    nowhere = work_order(equipment_class="hvac", postal_code="99999")
    await publish(kafka_bootstrap, nobody)
    await publish(kafka_bootstrap, nowhere)

    (record,) = await decisions_for(kafka_bootstrap, nobody.work_order_id)
    assert record.headers["ce_type"] == "fixloop.assignment.unfilled.v1"
    unfilled = record.json()
    assert unfilled["reason"] == (
        "no contractor serves equipment class 'elevator' at AT-1010 for tenant acme"
    )
    assert unfilled["considered"] == []

    (record,) = await decisions_for(kafka_bootstrap, nowhere.work_order_id)
    assert record.headers["ce_type"] == "fixloop.assignment.unfilled.v1"
    unfilled = record.json()
    assert unfilled["reason"] == (
        "no contractor serves equipment class 'hvac' at DE-99999 for tenant acme "
        "(3 serve it in other areas)"
    )
    # Express Klima's insurance expired weeks before: the store's query leaves it out at once.
    considered = {c["contractor_id"]: c["reasons"] for c in unfilled["considered"]}
    assert set(considered) == {
        "ctr-alpen-haustechnik",
        "ctr-berliner-klima",
        "ctr-kaelte-nord",
    }
    assert considered["ctr-berliner-klima"] == ["does not cover DE-99999 (covers DE 10,12,13,14)"]
    stored = await service.ctx.store.db[OFFERS].find_one({"work_order_id": nowhere.work_order_id})
    assert stored is not None
    assert stored["status"] == "unfilled"
    assert stored["considered_total"] == 3


async def test_other_event_types_are_ignored_and_a_tenant_mismatch_is_dead_lettered(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order()
    # A known event type this service does not handle: skipped, neither decided nor dead-lettered.
    other = AssignmentAccepted(
        work_order_id=order.work_order_id,
        offer_id="off-1",
        contractor_id="ctr-lift-go",
        accepted_at=DECISION_TIME,
    )
    other_envelope = EventEnvelope.new(
        other, source="orders", subject=order.work_order_id, tenant="acme"
    )
    await produce(
        kafka_bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(other),
        key=order.work_order_id.encode(),
        headers=binary_headers(other_envelope),
    )
    # The same order claiming another tenant in its envelope than in its payload: poison.
    forged = EventEnvelope.new(order, source="orders", subject=order.work_order_id, tenant="globex")
    await publish(kafka_bootstrap, order, forged)
    # Each consumer group reading received orders refuses it: dispatch and performance.
    groups = {"contractors.dispatch", "contractors.performance"}

    def dead_letters(records: list[ConsumedRecord]) -> dict[str, ConsumedRecord]:
        return {
            r.headers["fixloop_dlq_consumer_group"]: r
            for r in records
            if r.key == order.work_order_id.encode()
        }

    records = await read_topic(
        kafka_bootstrap,
        dead_letter_topic("contractors"),
        until=lambda rs: set(dead_letters(rs)) == groups,
        timeout=30,
    )
    dead = dead_letters(records)
    assert set(dead) == groups
    for letter in dead.values():
        assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
        assert "differs from the event's tenant" in letter.headers["fixloop_dlq_message"]
    assert (
        await service.ctx.store.db[OFFERS].count_documents({"work_order_id": order.work_order_id})
        == 0
    )


# -- the work order's later steps ---------------------------------------------------------------

STEP_TIME = DECISION_TIME + timedelta(minutes=5, microseconds=250_999)
STORED_STEP_TIME = DECISION_TIME + timedelta(minutes=5, microseconds=250_000)
"""When the steps below happened, and that instant as stored and published (milliseconds)."""

Step = TypeVar("Step", bound=EventPayload)


def step(model: type[Step], work_order_id: str, state: str, previous: str, **more: Any) -> Step:
    """A lifecycle event as the orders service sends it (read from its JSON, as on the wire)."""
    return model.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "external_id": f"FH-{work_order_id}",
                "source_platform": "fieldhub",
                "state": state,
                "previous_state": previous,
                "occurred_at": STEP_TIME.isoformat(),
                "actor": {"kind": "contractor", "id": "ctr-kaelte-nord"},
                "via": "grpc",
                "version": 3,
                **more,
            }
        )
    )


async def publish_step(
    bootstrap: str, payload: EventPayload, envelope: EventEnvelope | None = None
) -> EventEnvelope:
    work_order_id = str(getattr(payload, "work_order_id", ""))
    envelope = envelope or EventEnvelope.new(
        payload, source="orders", subject=work_order_id, tenant="acme"
    )
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )
    return envelope


async def offered_twice(
    service: ContractorsService, kafka_bootstrap: str, order: WorkOrderReceived
) -> tuple[str, str]:
    """The order offered to Berliner Klima (round 1, by the service) and to Kälte Nord (round 2,
    written through the service's own ledger, as a later dispatch round will): both offer ids."""
    await publish(kafka_bootstrap, order)
    (offered,) = await decisions_for(kafka_bootstrap, order.work_order_id)
    assert offered.json()["contractor_id"] == "ctr-berliner-klima"
    second = Offer.open(
        offer_id=unique("offer"),
        request=dispatch_request(order),
        contractor_id="ctr-kaelte-nord",
        at=DECISION_TIME + timedelta(minutes=1),
        ttl=timedelta(minutes=30),
        dispatch_round=2,
    )
    async with service.ctx.store.transaction() as uow:
        await service.ledger.within(uow).save_offer(
            second, dispatch_request(order), Priority.NORMAL, correlationid="test"
        )
    return str(offered.json()["offer_id"]), second.offer_id


async def every_decision_for(bootstrap: str, work_order_id: str) -> list[ConsumedRecord]:
    """All the contractors' events about one work order so far (the whole topic is read)."""
    records = await read_topic(bootstrap, Topic.CONTRACTORS_EVENTS, timeout=3)
    return [r for r in records if r.key == work_order_id.encode()]


async def load_of(service: ContractorsService, contractor_id: str) -> tuple[int, int]:
    """A contractor's (open offers, open jobs)."""
    doc = await service.ctx.store.db[CONTRACTORS].find_one({"_id": contractor_id})
    assert doc is not None
    return int(doc["open_offers"]), int(doc.get("open_jobs", 0))


async def offer_doc(service: ContractorsService, offer_id: str) -> dict[str, Any]:
    doc = await service.ctx.store.db[OFFERS].find_one({"_id": offer_id})
    assert doc is not None
    return doc


async def test_assigned_accepts_the_offer_and_withdraws_the_other_once(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order()
    first, second = await offered_twice(service, kafka_bootstrap, order)
    berliner = await load_of(service, "ctr-berliner-klima")
    kaelte = await load_of(service, "ctr-kaelte-nord")

    assigned = step(
        WorkOrderAssigned,
        order.work_order_id,
        "assigned",
        "dispatching",
        offer_id=second,
        contractor_id="ctr-kaelte-nord",
    )
    envelope = await publish_step(kafka_bootstrap, assigned)

    records = await decisions_for(kafka_bootstrap, order.work_order_id, at_least=2)
    assert [r.headers["ce_type"] for r in records] == [
        "fixloop.assignment.offered.v1",
        "fixloop.assignment.withdrawn.v1",
    ]
    withdrawn = records[1]
    assert withdrawn.headers["ce_correlationid"] == envelope.correlationid
    assert withdrawn.headers["ce_tenant"] == "acme"
    assert withdrawn.json() == {
        "work_order_id": order.work_order_id,
        "offer_id": first,
        "contractor_id": "ctr-berliner-klima",
        "reason": "assigned to another contractor",
        "withdrawn_at": withdrawn.json()["withdrawn_at"],
    }
    assert datetime.fromisoformat(withdrawn.json()["withdrawn_at"]) == STORED_STEP_TIME

    taken = await offer_doc(service, first)
    assert (taken["status"], taken["reason"], taken["closed_at"]) == (
        "withdrawn",
        "assigned to another contractor",
        STORED_STEP_TIME,  # a datetime, as written (not text)
    )
    accepted = await offer_doc(service, second)
    assert (accepted["status"], accepted["job"], accepted["closed_at"]) == (
        "accepted",
        "open",
        STORED_STEP_TIME,
    )
    assert accepted["site"]["postal_code"] == "10115"  # the rest of the document is kept
    assert await load_of(service, "ctr-berliner-klima") == (berliner[0] - 1, berliner[1])
    assert await load_of(service, "ctr-kaelte-nord") == (kaelte[0] - 1, kaelte[1] + 1)

    # The same event again, and the same step under a new event id: nothing changes.
    await publish_step(kafka_bootstrap, assigned, envelope)
    await publish_step(kafka_bootstrap, assigned)
    marker = work_order()
    await publish(kafka_bootstrap, marker, key=order.work_order_id)  # handled after both
    await decisions_for(kafka_bootstrap, marker.work_order_id)
    records = await every_decision_for(kafka_bootstrap, order.work_order_id)
    assert len(records) == 2
    assert await offer_doc(service, first) == taken
    assert await offer_doc(service, second) == accepted
    # Berliner Klima's only change meanwhile: the marker's offer (one open offer more).
    assert await load_of(service, "ctr-berliner-klima") == (berliner[0], berliner[1])
    assert await load_of(service, "ctr-kaelte-nord") == (kaelte[0] - 1, kaelte[1] + 1)


async def test_cancelled_withdraws_every_open_offer(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order()
    first, second = await offered_twice(service, kafka_bootstrap, order)
    berliner = await load_of(service, "ctr-berliner-klima")
    kaelte = await load_of(service, "ctr-kaelte-nord")

    cancelled = step(WorkOrderCancelled, order.work_order_id, "cancelled", "dispatching")
    envelope = await publish_step(kafka_bootstrap, cancelled)

    records = await decisions_for(kafka_bootstrap, order.work_order_id, at_least=3)
    withdrawals = [r.json() for r in records[1:]]
    assert [r.headers["ce_type"] for r in records[1:]] == ["fixloop.assignment.withdrawn.v1"] * 2
    assert {(w["offer_id"], w["contractor_id"]) for w in withdrawals} == {
        (first, "ctr-berliner-klima"),
        (second, "ctr-kaelte-nord"),
    }
    assert {w["reason"] for w in withdrawals} == {"work order cancelled"}
    for offer_id in (first, second):
        doc = await offer_doc(service, offer_id)
        assert (doc["status"], doc["reason"]) == ("withdrawn", "work order cancelled")
    assert await load_of(service, "ctr-berliner-klima") == (berliner[0] - 1, berliner[1])
    assert await load_of(service, "ctr-kaelte-nord") == (kaelte[0] - 1, kaelte[1])

    # Redelivered: claimed already, nothing more is withdrawn.
    await publish_step(kafka_bootstrap, cancelled, envelope)
    await publish_step(kafka_bootstrap, cancelled)
    marker = work_order(equipment_class="elevator", postal_code="80331")
    await publish(kafka_bootstrap, marker, key=order.work_order_id)
    await decisions_for(kafka_bootstrap, marker.work_order_id)
    assert len(await every_decision_for(kafka_bootstrap, order.work_order_id)) == 3
    assert await load_of(service, "ctr-berliner-klima") == (berliner[0] - 1, berliner[1])
    assert await load_of(service, "ctr-kaelte-nord") == (kaelte[0] - 1, kaelte[1])


async def test_declined_offer_and_the_job_through_completion_and_reopening(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    order = work_order()
    first, second = await offered_twice(service, kafka_bootstrap, order)
    berliner = await load_of(service, "ctr-berliner-klima")
    kaelte = await load_of(service, "ctr-kaelte-nord")
    wo = order.work_order_id

    await publish_step(
        kafka_bootstrap,
        step(
            WorkOrderOfferDeclined,
            wo,
            "dispatching",
            "dispatching",
            offer_id=first,
            declined_by="ctr-berliner-klima",
            reason="no technician free",
        ),
    )
    declined = await eventually(
        lambda: offer_doc(service, first), lambda doc: doc["status"] != "open"
    )
    assert (declined["status"], declined["reason"]) == ("declined", "no technician free")
    assert await load_of(service, "ctr-berliner-klima") == (berliner[0] - 1, berliner[1])

    async def kaelte_load() -> tuple[int, int]:
        return await load_of(service, "ctr-kaelte-nord")

    await publish_step(
        kafka_bootstrap,
        step(WorkOrderAssigned, wo, "assigned", "dispatching", offer_id=second),
    )
    await eventually(kaelte_load, lambda load: load == (kaelte[0] - 1, kaelte[1] + 1))

    completed = step(
        WorkOrderWorkCompleted,
        wo,
        "work_completed",
        "on_site",
        contractor_id="ctr-kaelte-nord",
        completion={
            "resolution_code": "replaced_part",
            "work_summary": "Replaced the compressor relay.",
            "labour_minutes": 45,
        },
        verify_by=(STEP_TIME + timedelta(days=3)).isoformat(),
    )
    await publish_step(kafka_bootstrap, completed)
    await publish_step(kafka_bootstrap, completed)  # the same step again: counted once
    await eventually(kaelte_load, lambda load: load == (kaelte[0] - 1, kaelte[1]))
    assert (await offer_doc(service, second))["job"] == "completed"

    reopened = step(
        WorkOrderReopened, wo, "assigned", "work_completed", contractor_id="ctr-kaelte-nord"
    )
    await publish_step(kafka_bootstrap, reopened)
    await eventually(kaelte_load, lambda load: load == (kaelte[0] - 1, kaelte[1] + 1))
    assert (await offer_doc(service, second))["job"] == "open"
    # Only offers that end are announced (here the declined one); the job's steps are not, and
    # the decline made no new round: the order's second offer was still open.
    records = await every_decision_for(kafka_bootstrap, wo)
    assert [r.headers["ce_type"] for r in records] == [
        "fixloop.assignment.offered.v1",
        "fixloop.assignment.declined.v1",
    ]
    assert records[1].json()["reason"] == "no technician free"


async def test_offer_and_its_cancellation_in_one_batch(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    """A batch applies its events in one unit of work, and a new offer is written only at its
    commit: a cancellation later in the batch still finds the offer, and withdraws it."""
    order = work_order()
    berliner = await load_of(service, "ctr-berliner-klima")
    received = Event(
        EventEnvelope.new(order, source="orders", subject=order.work_order_id, tenant="acme"),
        order,
    )
    cancelled_step = step(WorkOrderCancelled, order.work_order_id, "cancelled", "received")
    cancelled = Event(
        EventEnvelope.new(
            cancelled_step, source="orders", subject=order.work_order_id, tenant="acme"
        ),
        cancelled_step,
    )
    async with service.ctx.store.transaction() as uow:
        offered = await service.dispatcher.work_order_received(received, uow)
        result = await service.assignments.cancelled(cancelled, uow)
        again = await service.assignments.cancelled(cancelled, uow)
        assert await service.ledger.within(uow).decision_exists(order.work_order_id)

    assert offered.offer_id is not None
    assert result.withdrawn == (offered.offer_id,)
    assert again.outcome is LifecycleOutcome.UNCHANGED
    doc = await offer_doc(service, offered.offer_id)
    assert (doc["status"], doc["reason"], doc["closed_at"]) == (
        "withdrawn",
        "work order cancelled",
        STORED_STEP_TIME,
    )
    assert await load_of(service, "ctr-berliner-klima") == berliner
    records = await decisions_for(kafka_bootstrap, order.work_order_id, at_least=2)
    assert [r.headers["ce_type"] for r in records] == [
        "fixloop.assignment.offered.v1",
        "fixloop.assignment.withdrawn.v1",
    ]


async def test_indexes_replace_the_one_decision_per_order_index(
    mongo_client: AsyncMongoClient, database_name: str
) -> None:
    """A store indexed before an order could have several offers (or an emergency's round
    several at once) loses its older unique indexes; one decision per round and fan-out slot is
    still enforced."""
    store = Store(mongo_client, database_name, service="contractors")
    offers = store.db[OFFERS]
    await offers.create_index([("work_order_id", 1)], name="work_order_id_unique", unique=True)
    await ensure_indexes(store)
    await offers.drop_index("work_order_round_slot_unique")
    await offers.create_index(
        [("work_order_id", 1), ("dispatch_round", 1)], name="work_order_round_unique", unique=True
    )
    await ensure_indexes(store)
    await ensure_indexes(store)  # idempotent

    keys = [spec["key"] for spec in (await offers.index_information()).values()]
    assert [("work_order_id", 1)] not in keys
    assert [("work_order_id", 1), ("dispatch_round", 1)] not in keys

    def decision(offer_id: str, dispatch_round: int, slot: int) -> dict[str, object]:
        return {"_id": offer_id, "work_order_id": "wo-x", "dispatch_round": dispatch_round,
                "fan_slot": slot}  # fmt: skip

    await offers.insert_one(decision("o1", 1, 0))
    await offers.insert_one(decision("o2", 2, 0))
    await offers.insert_one(decision("o3", 2, 1))  # an emergency's second offer of round 2
    with pytest.raises(DuplicateKeyError):
        await offers.insert_one(decision("o4", 2, 1))
