"""The kernel applies records in batches and isolates the one that can never succeed.

Records waiting on the topic before the consumer starts arrive as one batch. Among valid ones sit
a record that is not JSON and a record whose handler refuses it (a domain error): every valid
record must be applied exactly once, the two bad ones dead-lettered with their reasons, and the
group's committed offsets must end past all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fixloop_devkit.testing import eventually, produce, read_topic, unique
from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.errors import IllegalTransition
from fixloop_shared.kernel import EventConsumer, UnitOfWork, subscribe_consumer
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import PROCESSED_EVENTS, MongoClient, Store
from fixloop_shared.topics import dead_letter_topic

pytestmark = pytest.mark.integration

VALID = 12


def accepted(work_order_id: str) -> tuple[bytes, dict[str, str]]:
    payload = AssignmentAccepted(
        work_order_id=work_order_id,
        offer_id="offer-1",
        contractor_id="c-1",
        accepted_at=datetime.now(UTC),
    )
    envelope = EventEnvelope.new(payload, source="contractors", subject=work_order_id, tenant="t")
    return encode_payload(payload), binary_headers(envelope)


@dataclass
class Harness:
    bus: Bus
    store: Store
    topic: str
    service: str
    calls: list[str] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)


@pytest.fixture
async def harness(
    kafka_bootstrap: str, mongo_client: MongoClient, database_name: str
) -> AsyncIterator[Harness]:
    service = unique("kernel")
    topic = unique("fixloop.test.kernel-in")
    # One partition, so the order on the topic is the order of the batch.
    settings = KafkaSettings(bootstrap=kafka_bootstrap, partitions=1)
    bus = make_bus(settings, service=service)
    store = Store(mongo_client, database_name, service=service)
    await store.ensure_indexes()
    h = Harness(bus, store, topic, service)

    async def handle(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        work_order_id = event.payload.work_order_id
        h.calls.append(work_order_id)
        if work_order_id == "wo-refused":
            msg = "an accepted offer for a cancelled work order"
            raise IllegalTransition(msg)
        await store.db["effects"].insert_one(
            {"_id": work_order_id, "event_id": event.envelope.id}, session=uow.session
        )

    processor = subscribe_consumer(
        bus,
        store,
        EventConsumer(name="batch", topics=[topic], handlers={AssignmentAccepted: handle}),
    )
    process = processor.process

    async def counting(records: object) -> None:
        h.batches.append(len(records))  # type: ignore[arg-type]
        await process(records)  # type: ignore[arg-type]

    processor.process = counting  # type: ignore[method-assign]
    await ensure_topics(settings, [topic, dead_letter_topic(service)])
    yield h
    await bus.broker.stop()


async def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, 0))
        return None if offset is None else int(offset)
    finally:
        await consumer.stop()


async def test_a_batch_with_poison_among_valid_records_applies_each_valid_one_once(
    harness: Harness, kafka_bootstrap: str
) -> None:
    ids = [f"wo-{n:02d}" for n in range(VALID)]
    records = [accepted(i) for i in ids]
    for work_order_id, (value, headers) in zip(ids[:5], records[:5], strict=True):
        await produce(
            kafka_bootstrap, harness.topic, value, key=work_order_id.encode(), headers=headers
        )
    await produce(kafka_bootstrap, harness.topic, b"{not json", key=b"wo-x", headers=records[0][1])
    refused, refused_headers = accepted("wo-refused")
    await produce(
        kafka_bootstrap, harness.topic, refused, key=b"wo-refused", headers=refused_headers
    )
    for work_order_id, (value, headers) in zip(ids[5:], records[5:], strict=True):
        await produce(
            kafka_bootstrap, harness.topic, value, key=work_order_id.encode(), headers=headers
        )
    # A redelivered copy of a valid record, already in the same batch.
    await produce(
        kafka_bootstrap, harness.topic, records[3][0], key=b"wo-03", headers=records[3][1]
    )
    total = VALID + 3

    await harness.bus.broker.start()

    async def effects() -> list[str]:
        docs = await harness.store.db["effects"].find({}).to_list()
        return sorted(str(doc["_id"]) for doc in docs)

    assert await eventually(effects, lambda found: found == ids, timeout=60) == ids
    dlq = await read_topic(
        kafka_bootstrap, dead_letter_topic(harness.service), until=lambda r: len(r) >= 2
    )
    assert sorted(r.headers["fixloop_dlq_reason"] for r in dlq) == [
        "illegal-transition",
        "schema-violation",
    ]
    refused_letter = next(r for r in dlq if r.key == b"wo-refused")
    assert "cancelled work order" in refused_letter.headers["fixloop_dlq_message"]
    assert refused_letter.value == refused
    # The consumer's own group read it (one group per consumer of a service).
    assert refused_letter.headers["fixloop_dlq_consumer_group"] == f"{harness.service}.batch"

    # The records came as a batch (more than one record per unit of work at least once), and
    # the batch that failed on the refused record was applied again one record at a time.
    assert max(harness.batches) > 1
    assert harness.calls.count("wo-refused") >= 1
    assert all(harness.calls.count(i) <= 2 for i in ids)

    await eventually(
        lambda: committed_offset(kafka_bootstrap, f"{harness.service}.batch", harness.topic),
        lambda offset: offset == total,
        timeout=30,
    )
    # One claim per applied event: the refused one left none, the copy added none.
    assert await harness.store.db[PROCESSED_EVENTS].count_documents({}) == VALID
