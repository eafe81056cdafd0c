"""Dispatch rounds on the running contractors service (real broker and store): an offer that runs
out or is declined goes to the next best contractor, never back; too many rounds, or nobody left,
end in ``assignment.unfilled``.

The service runs whole (consumers, outbox relay and the due-work scheduler that times offers out);
offers of emergencies run out after four seconds (ten minutes for other orders). Each test has its
own tenant and contractors, ranked by how closely their postal prefixes match the site (the
longer, the nearer).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner, Result

from fixloop_contractors.adapters.mongo import (
    CONTRACTORS,
    OFFER_EXPIRIES,
    OFFERS,
    MongoDispatchLedger,
)
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.cli_dispatch import app as dispatch_cli
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.main import ContractorsService, bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import (
    ConsumedRecord,
    eventually,
    produce,
    read_topic,
    start_in_process,
    unique,
)
from fixloop_shared.contracts import (
    EventPayload,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOfferDeclined,
    WorkOrderReceived,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

pytestmark = pytest.mark.integration

SITE_POSTAL_CODE = "10115"
COMPLETION: dict[str, Any] = {
    "completion": {
        "resolution_code": "replaced_part",
        "work_summary": "Replaced the compressor relay.",
        "labour_minutes": 45,
    },
    "verify_by": "2099-01-01T00:00:00+00:00",
}
ALREADY_OFFERED = "had an offer of this work order already (declined or no answer)"
EMERGENCY_OFFER_SECONDS = 4


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[ContractorsService]:
    settings = ContractorsSettings(
        mongodb_uri=mongodb_uri,
        database=unique("dispatch_rounds").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        outbox_poll_seconds=0.05,
        offer_ttl_seconds=600,
        emergency_offer_ttl_seconds=EMERGENCY_OFFER_SECONDS,
        emergency_fan_out=1,  # one contractor per round here (fan-out: test_dispatch_fan_out)
        dispatch_max_rounds=3,
        offer_expiry_poll_seconds=0.2,
    )
    built = await start_in_process(lambda: bootstrap(settings))
    try:
        yield built
    finally:
        await built.app.stop()


async def contractors(
    service: ContractorsService, tenant: str, prefixes: Sequence[str]
) -> list[str]:
    """One contractor of ``tenant`` per postal prefix, best (longest prefix) first: their ids."""
    ids = [unique(f"ctr-{len(prefix)}") for prefix in prefixes]
    await import_contractors(
        service.registry,
        [
            Contractor(
                contractor_id=contractor_id,
                name=f"Contractor {contractor_id}",
                email=f"{contractor_id}@example.com",
                timezone="Europe/Berlin",
                tenants=frozenset({tenant}),
                skills=frozenset({"hvac"}),
                regions=(ServiceRegion(country="DE", postal_prefixes=(prefix,)),),
                credentials=(
                    Credential(
                        kind=CredentialKind.LIABILITY_INSURANCE,
                        number=f"INS-{contractor_id}",
                        expires_on=datetime(2099, 12, 31, tzinfo=UTC).date(),
                    ),
                ),
            )
            for contractor_id, prefix in zip(ids, prefixes, strict=True)
        ],
        as_of=datetime.now(UTC).date(),
    )
    return ids


def received(tenant: str, priority: str = "emergency") -> WorkOrderReceived:
    work_order_id = unique("wo")
    return WorkOrderReceived.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "tenant": tenant,
                "source_platform": "fieldhub",
                "received_at": datetime.now(UTC).isoformat(),
                "external_id": f"FH-{work_order_id}",
                "site": {
                    "site_id": "site-1",
                    "name": "Test site",
                    "address": {
                        "line1": "Teststraße 1",
                        "city": "Berlin",
                        "postal_code": SITE_POSTAL_CODE,
                        "country": "DE",
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": "EQ-1", "equipment_class": "hvac"},
                "category": "breakdown",
                "priority": priority,
                "description": "Does not cool",
                "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de"},
            }
        )
    )


def lifecycle_step(
    model: type[EventPayload], work_order_id: str, state: str, **more: Any
) -> EventPayload:
    """A lifecycle event as the orders service sends it (read from its JSON, as on the wire)."""
    return model.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "external_id": f"FH-{work_order_id}",
                "source_platform": "fieldhub",
                "state": state,
                "previous_state": "dispatching",
                "occurred_at": datetime.now(UTC).isoformat(),
                "actor": {"kind": "contractor", "id": more.get("contractor_id", "ctr-x")},
                "via": "grpc",
                "version": 3,
                **more,
            }
        )
    )


async def publish(bootstrap: str, payload: EventPayload, tenant: str) -> None:
    """Publish like the orders service does: binary mode, keyed by the work order id."""
    work_order_id = str(getattr(payload, "work_order_id", ""))
    envelope = EventEnvelope.new(payload, source="orders", subject=work_order_id, tenant=tenant)
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )


async def events_of(bootstrap: str, work_order_id: str, count: int) -> list[ConsumedRecord]:
    """The contractors' first ``count`` events about one work order, in order."""

    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [r for r in records if r.key == work_order_id.encode()]

    records = await read_topic(
        bootstrap,
        Topic.CONTRACTORS_EVENTS,
        until=lambda rs: len(mine(rs)) >= count,
        timeout=60,
    )
    return mine(records)[:count]


def kinds(records: Sequence[ConsumedRecord]) -> list[str]:
    return [r.headers["ce_type"].removeprefix("fixloop.assignment.") for r in records]


async def load_of(service: ContractorsService, contractor_id: str) -> tuple[int, int]:
    """A contractor's (open offers, open jobs)."""
    doc = await service.ctx.store.db[CONTRACTORS].find_one({"_id": contractor_id})
    assert doc is not None
    return int(doc["open_offers"]), int(doc.get("open_jobs", 0))


async def test_expired_then_declined_offers_go_to_the_next_best_until_one_is_accepted(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    tenant = unique("rounds")
    first, second, third = await contractors(service, tenant, ["10115", "101", "10"])
    order = received(tenant)
    wo = order.work_order_id
    await publish(kafka_bootstrap, order, tenant)

    # Round 1 to the nearest; nobody answers it, so it runs out and round 2 goes to the next.
    records = await events_of(kafka_bootstrap, wo, 3)
    assert kinds(records) == ["offered.v1", "expired.v1", "offered.v1"]
    offered, expired, reoffered = (r.json() for r in records)
    assert (offered["contractor_id"], offered["dispatch_round"]) == (first, 1)
    assert (expired["offer_id"], expired["contractor_id"]) == (offered["offer_id"], first)
    assert datetime.fromisoformat(expired["expired_at"]) >= datetime.fromisoformat(
        offered["expires_at"]
    )
    assert (reoffered["contractor_id"], reoffered["dispatch_round"]) == (second, 2)

    # The second declines: round 3 goes to the third, never back to the first.
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderOfferDeclined,
            wo,
            "dispatching",
            offer_id=reoffered["offer_id"],
            declined_by=second,
            reason="no technician free",
        ),
        tenant,
    )
    records = await events_of(kafka_bootstrap, wo, 5)
    assert kinds(records)[3:] == ["declined.v1", "offered.v1"]
    declined, last = records[3].json(), records[4].json()
    assert (declined["contractor_id"], declined["reason"]) == (second, "no technician free")
    assert (last["contractor_id"], last["dispatch_round"]) == (third, 3)

    # The third accepts (the orders service reports the assignment): its offer is a job now.
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderAssigned, wo, "assigned", offer_id=last["offer_id"], contractor_id=third
        ),
        tenant,
    )

    async def loads() -> list[tuple[int, int]]:
        return [await load_of(service, c) for c in (first, second, third)]

    assert await eventually(loads, lambda found: found == [(0, 0), (0, 0), (0, 1)])
    db = service.ctx.store.db
    stored = await db[OFFERS].find({"work_order_id": wo}).sort("dispatch_round", 1).to_list()
    assert [(d["dispatch_round"], d["contractor_id"], d["status"]) for d in stored] == [
        (1, first, "timed_out"),
        (2, second, "declined"),
        (3, third, "accepted"),
    ]
    # Each expiry fired once and is gone (the accepted offer's goes when it falls due).
    assert await db[OFFER_EXPIRIES].count_documents({"_id": offered["offer_id"]}) == 0

    # Every round is explained: each contractor ranked with its components, or excluded.
    explained = await MongoDispatchLedger(service.ctx.store).explanations(wo)
    assert [(e.dispatch_round, e.offered_to, e.assessed) for e in explained] == [
        (1, (first,), 3),
        (2, (second,), 3),
        (3, (third,), 3),
    ]
    ranks = [[(c.contractor_id, c.rank) for c in e.candidates if c.rank] for e in explained]
    assert ranks == [[(first, 1), (second, 2), (third, 3)], [(second, 1), (third, 2)], [(third, 1)]]
    first_round = {c.contractor_id: c for c in explained[0].candidates}
    assert set(dict(first_round[first].components)) == {
        "travel",
        "load",
        "skill",
        "scorecard",
        "preference",
        "on_call",
    }
    best, runner_up = first_round[first].total, first_round[second].total
    assert best is not None
    assert runner_up is not None
    assert best > runner_up
    last_round = {c.contractor_id: c for c in explained[2].candidates}
    assert last_round[first].excluded == (ALREADY_OFFERED,)
    assert last_round[second].excluded == (ALREADY_OFFERED,)

    shown = await dispatch_command(service, "explain", wo)
    assert shown.exit_code == 0, shown.output
    for text in (
        "Round 1, ",
        f"offered to {first} (ran out (no answer))",
        f"offered to {second} (declined: no technician free)",
        f"offered to {third} (accepted)",
        "3 contractors assessed",
    ):
        assert text in shown.stdout


async def test_after_the_last_round_the_order_is_unfilled_with_what_became_of_each_offer(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    tenant = unique("rounds")
    ids = await contractors(service, tenant, ["10115", "1011", "101", "10"])
    order = received(tenant)
    await publish(kafka_bootstrap, order, tenant)

    # Three rounds (the most the service makes), each run out; then nobody is offered it again.
    records = await events_of(kafka_bootstrap, order.work_order_id, 7)
    assert kinds(records) == [
        "offered.v1",
        "expired.v1",
        "offered.v1",
        "expired.v1",
        "offered.v1",
        "expired.v1",
        "unfilled.v1",
    ]
    offered_to = [r.json()["contractor_id"] for r in records if r.json().get("offered_at")]
    assert offered_to == ids[:3]
    unfilled = records[-1].json()
    assert "after 3 offers" in unfilled["reason"]
    assert [c["contractor_id"] for c in unfilled["considered"]] == ids[:3]
    assert all(c["reasons"] == ["did not answer the offer in time"] for c in unfilled["considered"])
    for contractor_id in ids:
        assert await load_of(service, contractor_id) == (0, 0)


async def test_with_nobody_left_it_waits_in_the_queue_until_an_operator_assigns_it(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    tenant = unique("rounds")
    only, *_ = await contractors(service, tenant, ["10115"])
    lapsed = await lapsed_contractor(service, tenant)
    order = received(tenant)
    wo = order.work_order_id
    await publish(kafka_bootstrap, order, tenant)
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderOfferDeclined,
            wo,
            "dispatching",
            offer_id=(await events_of(kafka_bootstrap, wo, 1))[0].json()["offer_id"],
            declined_by=only,
            reason=None,
        ),
        tenant,
    )
    records = await events_of(kafka_bootstrap, wo, 3)
    assert kinds(records) == ["offered.v1", "declined.v1", "unfilled.v1"]
    unfilled = records[2].json()
    # The lapsed contractor is left out by the store's query (its insurance expired years ago).
    assert "the only contractor covering the site had an offer of it already" in unfilled["reason"]
    assert unfilled["considered"] == [{"contractor_id": only, "reasons": [ALREADY_OFFERED]}]

    # It waits in the operators' queue.
    ledger = MongoDispatchLedger(service.ctx.store)
    (queued,) = await ledger.queue(tenant=tenant)
    assert (queued.work_order_id, queued.rounds, queued.site) == (wo, 1, "DE-10115")
    shown = await dispatch_command(service, "queue", "--tenant", tenant)
    assert shown.exit_code == 0, shown.output
    assert wo in shown.stdout

    # An operator may not give it to a contractor with an expired credential without a reason.
    refused = await dispatch_command(service, "assign", wo, lapsed, "--reason", "only one free")
    assert refused.exit_code == 1
    assert "expired credential" in refused.stderr
    assert "--override-credentials" in refused.stderr
    assert len(await ledger.queue(tenant=tenant)) == 1

    given = await dispatch_command(
        service,
        "assign",
        wo,
        lapsed,
        "--reason",
        "only one free",
        "--override-credentials",
        "insurance renewal seen on paper",
        "--by",
        "ops-jane",
    )
    assert given.exit_code == 0, given.output
    records = await events_of(kafka_bootstrap, wo, 4)
    offered = records[3].json()
    assert kinds(records)[3] == "offered.v1"
    assert (offered["contractor_id"], offered["assigned_by"], offered["dispatch_round"]) == (
        lapsed,
        "ops-jane",
        3,
    )
    assert offered["reason"] == (
        "only one free (credentials overridden: insurance renewal seen on paper)"
    )
    assert await ledger.queue(tenant=tenant) == []

    # The orders service assigns it: the operator's offer becomes the contractor's job.
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderAssigned, wo, "assigned", offer_id=offered["offer_id"], contractor_id=lapsed
        ),
        tenant,
    )
    assert await eventually(lambda: load_of(service, lapsed), lambda load: load == (0, 1))
    again = await dispatch_command(service, "assign", wo, only, "--reason", "changed my mind")
    assert again.exit_code == 1
    assert f"assigned to {lapsed} already" in again.stderr


async def lapsed_contractor(service: ContractorsService, tenant: str) -> str:
    """A contractor of ``tenant`` covering the site whose liability insurance has expired."""
    contractor_id = unique("ctr-lapsed")
    await import_contractors(
        service.registry,
        [
            Contractor(
                contractor_id=contractor_id,
                name="Lapsed GmbH",
                email="lapsed@example.com",
                timezone="Europe/Berlin",
                tenants=frozenset({tenant}),
                skills=frozenset({"hvac"}),
                regions=(ServiceRegion(country="DE", postal_prefixes=("1",)),),
                credentials=(
                    Credential(
                        kind=CredentialKind.LIABILITY_INSURANCE,
                        number="INS-OLD",
                        expires_on=datetime(2020, 1, 31, tzinfo=UTC).date(),
                    ),
                ),
            )
        ],
        as_of=datetime.now(UTC).date(),
    )
    return contractor_id


async def dispatch_command(service: ContractorsService, *args: str) -> Result:
    """``fixloop dispatch ARGS`` against the service's store."""
    return await asyncio.to_thread(
        CliRunner().invoke,
        dispatch_cli,
        list(args),
        env={
            "FIXLOOP_CONTRACTORS_MONGODB_URI": service.settings.mongodb_uri,
            "FIXLOOP_CONTRACTORS_DATABASE": service.settings.database,
            "COLUMNS": "250",
        },
    )


class Publisher:
    """One producer for many events (as the orders service publishes them)."""

    def __init__(self, bootstrap: str, tenant: str) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.tenant = tenant

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def send(self, payloads: Sequence[EventPayload]) -> None:
        sent = []
        for payload in payloads:
            work_order_id = str(getattr(payload, "work_order_id", ""))
            envelope = EventEnvelope.new(
                payload, source="orders", subject=work_order_id, tenant=self.tenant
            )
            headers = [(k, v.encode()) for k, v in binary_headers(envelope).items()]
            sent.append(
                await self.producer.send(
                    Topic.WORKORDERS_EVENTS,
                    encode_payload(payload),
                    key=work_order_id.encode(),
                    headers=headers,
                )
            )
        await asyncio.gather(*sent)


async def test_loads_return_to_zero_after_a_mix_of_accepted_declined_expired_and_cancelled(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    """100 orders; each is accepted, declined or left to run out, then completed or cancelled.

    By order number mod 5: 0 accepted then completed; 1 declined, the next offer accepted, then
    completed; 2 (emergencies) every offer run out until unfilled, then cancelled; 3 accepted then
    cancelled (its job); 4 declined twice, then cancelled with its third offer open.
    """
    ORDERS = 100  # noqa: N806 - a figure of the scenario
    tenant = unique("mix")
    pool = await contractors(service, tenant, ["10115", "1011", "101", "10", "1"])
    orders = [received(tenant, "emergency" if i % 5 == 2 else "normal") for i in range(ORDERS)]
    ids = [o.work_order_id for o in orders]
    kinds_of = {wo: i % 5 for i, wo in enumerate(ids)}
    db = service.ctx.store.db

    async def statuses() -> dict[tuple[str, int], tuple[str, str]]:
        docs = await db[OFFERS].find({"tenant": tenant}).to_list()
        return {(d["work_order_id"], d["dispatch_round"]): (d["status"], d["_id"]) for d in docs}

    def open_in(found: dict[tuple[str, int], tuple[str, str]], round_: int) -> dict[str, str]:
        return {
            wo: oid for (wo, r), (status, oid) in found.items() if r == round_ and status == "open"
        }

    def of_kind(*wanted: int) -> list[str]:
        return [wo for wo in ids if kinds_of[wo] in wanted]

    def step(model: type[EventPayload], work_order_id: str, **more: Any) -> EventPayload:
        return lifecycle_step(model, work_order_id, "dispatching", **more)

    async with Publisher(kafka_bootstrap, tenant) as publisher:
        await publisher.send(orders)
        found = await eventually(statuses, lambda f: len(f) == ORDERS, timeout=120)
        first = {wo: oid for (wo, _), (_, oid) in found.items()}

        await publisher.send(
            [
                step(WorkOrderAssigned, wo, offer_id=first[wo], contractor_id="x")
                for wo in of_kind(0, 3)
            ]
            + [
                step(WorkOrderOfferDeclined, wo, offer_id=first[wo], declined_by="x")
                for wo in of_kind(1, 4)
            ]
        )
        found = await eventually(
            statuses, lambda f: set(of_kind(1, 4)) <= set(open_in(f, 2)), timeout=120
        )
        second = open_in(found, 2)
        await publisher.send(
            [step(WorkOrderWorkCompleted, wo, **COMPLETION) for wo in of_kind(0)]
            + [
                step(WorkOrderAssigned, wo, offer_id=second[wo], contractor_id="x")
                for wo in of_kind(1)
            ]
            + [step(WorkOrderCancelled, wo) for wo in of_kind(3)]
            + [
                step(WorkOrderOfferDeclined, wo, offer_id=second[wo], declined_by="x")
                for wo in of_kind(4)
            ]
        )
        await eventually(
            statuses,
            lambda f: (
                set(of_kind(4)) <= set(open_in(f, 3))
                and all(f[(wo, 2)][0] == "accepted" for wo in of_kind(1))
                and all(f.get((wo, 4), ("",))[0] == "unfilled" for wo in of_kind(2))
            ),
            timeout=120,
        )
        await publisher.send(
            [step(WorkOrderWorkCompleted, wo, **COMPLETION) for wo in of_kind(1)]
            + [step(WorkOrderCancelled, wo) for wo in of_kind(2, 4)]
        )

    async def loads() -> list[tuple[int, int]]:
        return [await load_of(service, c) for c in pool]

    assert await eventually(loads, lambda found: all(x == (0, 0) for x in found), timeout=120)
    final = {key: status for key, (status, _) in (await statuses()).items()}
    per_kind = ORDERS // 5
    assert sum(status == "timed_out" for status in final.values()) == per_kind * 3
    assert sum(status == "declined" for status in final.values()) == per_kind + per_kind * 2
    assert all(final[(wo, 3)] == "withdrawn" for wo in of_kind(4))
    assert all(final[(wo, 2)] == "accepted" for wo in of_kind(1))
    assert not any(status == "open" for status in final.values())
