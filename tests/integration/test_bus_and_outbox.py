"""The shared reliability plumbing against the real embedded broker and store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymongo import AsyncMongoClient

from fixloop_devkit.testing import eventually, produce, read_topic, unique
from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import EventConsumer, UnitOfWork, subscribe_consumer
from fixloop_shared.outbox import OutboxRelay
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX, Store
from fixloop_shared.topics import dead_letter_topic

pytestmark = pytest.mark.integration


def accepted(work_order_id: str) -> AssignmentAccepted:
    from datetime import UTC, datetime

    return AssignmentAccepted(
        work_order_id=work_order_id,
        offer_id="offer-1",
        contractor_id="c-1",
        accepted_at=datetime.now(UTC),
    )


def binary(payload: AssignmentAccepted, tenant: str = "acme") -> tuple[bytes, dict[str, str]]:
    envelope = EventEnvelope.new(
        payload, source="contractors", subject=payload.work_order_id, tenant=tenant
    )
    return encode_payload(payload), binary_headers(envelope)


@dataclass
class Harness:
    bus: Bus
    store: Store
    service: str
    topic: str
    out_topic: str
    applied: list[str]


@pytest.fixture
async def harness(
    kafka_bootstrap: str, mongo_client: AsyncMongoClient[dict[str, object]], database_name: str
) -> AsyncIterator[Harness]:
    service = unique("svc")
    topic = unique("fixloop.test.in")
    out_topic = unique("fixloop.test.out")
    store = Store(mongo_client, database_name, service=service)
    await store.ensure_indexes()
    bus = make_bus(KafkaSettings(bootstrap=kafka_bootstrap), service=service)
    applied: list[str] = []
    failures = {"left": 0}

    async def handle(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        payload = event.payload
        if payload.work_order_id.startswith("flaky") and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("store briefly unreachable")
        await store.db["effects"].insert_one(
            {"_id": payload.work_order_id, "event": event.envelope.id}, session=uow.session
        )
        uow.emit(payload, topic=out_topic, key=payload.work_order_id, tenant="acme")
        uow.after_commit(lambda: applied.append(payload.work_order_id))

    subscribe_consumer(
        bus,
        store,
        EventConsumer(
            name="test",
            topics=[topic],
            handlers={AssignmentAccepted: handle},
            skip_unknown_types=False,
        ),
    )

    await ensure_topics(bus.settings, [topic, out_topic, dead_letter_topic(service)])
    await bus.broker.start()
    h = Harness(bus, store, service, topic, out_topic, applied)
    h.failures = failures  # type: ignore[attr-defined]
    try:
        yield h
    finally:
        await bus.broker.stop()


async def test_poison_messages_are_dead_lettered_and_the_consumer_moves_on(
    harness: Harness, kafka_bootstrap: str
) -> None:
    value, headers = binary(accepted("wo-before"))
    await produce(kafka_bootstrap, harness.topic, value, key=b"wo-before", headers=headers)
    await produce(kafka_bootstrap, harness.topic, b"{not json", key=b"k", headers=headers)
    bad_schema = json.dumps({"work_order_id": "wo-x", "unexpected": {"$ne": None}}).encode()
    await produce(kafka_bootstrap, harness.topic, bad_schema, key=b"k", headers=headers)
    unknown = dict(headers, ce_type="fixloop.nothing.known.v1")
    await produce(kafka_bootstrap, harness.topic, value, key=b"k", headers=unknown)
    value2, headers2 = binary(accepted("wo-after"))
    await produce(kafka_bootstrap, harness.topic, value2, key=b"wo-after", headers=headers2)

    await eventually(lambda: asyncio.sleep(0, harness.applied), lambda a: "wo-after" in a)
    assert sorted(harness.applied) == ["wo-after", "wo-before"]

    dlq = await read_topic(
        kafka_bootstrap, dead_letter_topic(harness.service), until=lambda r: len(r) >= 3
    )
    reasons = [r.headers["fixloop_dlq_reason"] for r in dlq]
    assert reasons == ["schema-violation", "schema-violation", "unknown-type"]
    first = dlq[0]
    assert first.value == b"{not json"
    assert first.headers["fixloop_dlq_original_topic"] == harness.topic
    assert first.headers["fixloop_dlq_service"] == harness.service
    assert first.headers["fixloop_dlq_exception"].endswith("SchemaViolation")
    assert "fixloop_dlq_original_offset" in first.headers
    # An unknown field is ignored (tolerant reader); the missing ones are named.
    assert "offer_id" in dlq[1].headers["fixloop_dlq_message"]
    assert "unexpected" not in dlq[1].headers["fixloop_dlq_message"]


async def test_redelivered_event_has_no_second_effect_and_outbox_publishes_once_committed(
    harness: Harness, kafka_bootstrap: str
) -> None:
    value, headers = binary(accepted("wo-dup"))
    for _ in range(3):
        await produce(kafka_bootstrap, harness.topic, value, key=b"wo-dup", headers=headers)
    value2, headers2 = binary(accepted("wo-marker"))
    await produce(kafka_bootstrap, harness.topic, value2, key=b"wo-marker", headers=headers2)
    await eventually(lambda: asyncio.sleep(0, harness.applied), lambda a: "wo-marker" in a)
    assert sorted(harness.applied) == ["wo-dup", "wo-marker"]
    assert await harness.store.db["effects"].count_documents({}) == 2
    pending = await harness.store.db[OUTBOX].count_documents({"published": False})
    assert pending == 2

    relay = OutboxRelay(harness.store, harness.bus.publish_raw, retention_seconds=0)
    assert await relay.drain() == 2
    assert await relay.drain() == 0
    assert await harness.store.db[OUTBOX].count_documents({"published": True}) == 2
    await asyncio.sleep(0.01)
    assert await relay.prune() == 2  # sent records are pruned after the retention
    assert await harness.store.db[OUTBOX].count_documents({}) == 0
    out = await read_topic(kafka_bootstrap, harness.out_topic, until=lambda r: len(r) >= 2)
    assert sorted(r.key or b"" for r in out) == [b"wo-dup", b"wo-marker"]
    assert out[0].headers["ce_type"] == "fixloop.assignment.accepted.v1"
    assert out[0].headers["ce_source"] == harness.service


async def test_internal_topics_skip_event_types_they_do_not_know(
    kafka_bootstrap: str, mongo_client: AsyncMongoClient[dict[str, object]], database_name: str
) -> None:
    service = unique("svc")
    topic = unique("fixloop.test.internal")
    bus = make_bus(KafkaSettings(bootstrap=kafka_bootstrap), service=service)
    seen: list[str] = []

    async def handle(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        seen.append(event.envelope.type)

    store = Store(mongo_client, database_name, service=service)
    await store.ensure_indexes()
    subscribe_consumer(
        bus,
        store,
        EventConsumer(name="test", topics=[topic], handlers={AssignmentAccepted: handle}),
    )

    await ensure_topics(bus.settings, [topic, dead_letter_topic(service)])
    await bus.broker.start()
    try:
        value, headers = binary(accepted("wo-newer"))
        newer = dict(headers, ce_type="fixloop.contractor.not_known_yet.v1")
        await produce(kafka_bootstrap, topic, value, key=b"wo-newer", headers=newer)
        await produce(kafka_bootstrap, topic, value, key=b"wo-newer", headers=headers)
        await eventually(lambda: asyncio.sleep(0, seen), lambda s: len(s) == 1)
    finally:
        await bus.broker.stop()
    assert seen == ["fixloop.assignment.accepted.v1"]
    assert await read_topic(kafka_bootstrap, dead_letter_topic(service), timeout=1) == []


async def test_transient_failures_are_retried_not_dead_lettered(
    harness: Harness, kafka_bootstrap: str
) -> None:
    harness.failures["left"] = 3  # type: ignore[attr-defined]
    value, headers = binary(accepted("flaky-1"))
    await produce(kafka_bootstrap, harness.topic, value, key=b"flaky-1", headers=headers)
    await eventually(lambda: asyncio.sleep(0, harness.applied), lambda a: "flaky-1" in a)
    dlq = await read_topic(kafka_bootstrap, dead_letter_topic(harness.service), timeout=1)
    assert dlq == []


async def test_rolled_back_transaction_leaves_nothing_in_outbox(
    mongo_client: AsyncMongoClient[dict[str, object]], database_name: str
) -> None:
    store = Store(mongo_client, database_name, service="tx-test")
    await store.ensure_indexes()
    await store.db["effects"].insert_one({"_id": "existing"})
    payload = accepted("wo-rollback")

    async def fail_midway() -> None:
        async with store.transaction() as uow:
            await uow.db["effects"].insert_one({"_id": "x"}, session=uow.session)
            uow.emit(payload, topic="t", key="wo-rollback", tenant="acme")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()
    assert await store.db["effects"].count_documents({}) == 1
    assert await store.db[OUTBOX].count_documents({}) == 0
