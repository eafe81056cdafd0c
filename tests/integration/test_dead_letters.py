"""Dead letters that always succeed, against the real embedded broker.

A record that cannot be copied to the dead-letter topic as it is (larger than the producer's
limit) must still be dead-lettered — without its body, with its size, digest and position — and
the records behind it on the same partition must go through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from fixloop_devkit.testing import eventually, produce, read_topic, unique
from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import EventConsumer, UnitOfWork, subscribe_consumer
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import MongoClient, Store
from fixloop_shared.topics import dead_letter_topic

pytestmark = pytest.mark.integration

KEY = b"wo-same-partition"


def accepted(work_order_id: str, padding: int = 0) -> tuple[bytes, dict[str, str]]:
    """An event; with ``padding``, a note of that many characters makes it big."""
    payload = AssignmentAccepted(
        work_order_id=work_order_id,
        offer_id="offer-1",
        contractor_id="c-1",
        accepted_at=datetime.now(UTC),
    )
    envelope = EventEnvelope.new(payload, source="contractors", subject=work_order_id, tenant="t")
    value = encode_payload(payload)
    if padding:
        value = json.dumps({**json.loads(value), "note": "x" * padding}).encode()
    return value, binary_headers(envelope)


async def big_then_small(
    bootstrap: str, topic: str, padding: int, after: str
) -> tuple[bytes, dict[str, str]]:
    """A big record (gzip on the wire, so the broker takes it), then a small one on the same
    key; returns the big one."""
    value, headers = accepted("wo-big", padding=padding)
    await produce(
        bootstrap,
        topic,
        value,
        key=KEY,
        headers=headers,
        compression="gzip",
        max_request_size=4 * 1024 * 1024,
    )
    small, small_headers = accepted(after)
    await produce(bootstrap, topic, small, key=KEY, headers=small_headers)
    return value, headers


@dataclass
class Consumer:
    bus: Bus
    topic: str
    handled: list[str] = field(default_factory=list)


@pytest.fixture
async def consumer(
    kafka_bootstrap: str, mongo_client: MongoClient, database_name: str
) -> AsyncIterator[Consumer]:
    service = unique("dlq")
    topic = unique("fixloop.test.dlq-in")
    bus = make_bus(KafkaSettings(bootstrap=kafka_bootstrap), service=service)
    store = Store(mongo_client, database_name, service=service)
    await store.ensure_indexes()
    harness = Consumer(bus=bus, topic=topic)

    async def handle(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        harness.handled.append(event.payload.work_order_id)

    subscribe_consumer(
        bus,
        store,
        EventConsumer(name="test", topics=[topic], handlers={AssignmentAccepted: handle}),
    )
    await ensure_topics(bus.settings, [topic, dead_letter_topic(service)])
    await bus.broker.start()
    try:
        yield harness
    finally:
        await bus.broker.stop()


async def test_a_record_too_large_to_copy_is_dead_lettered_without_body_and_the_next_flows(
    consumer: Consumer, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # 1.5 MB of description; compressed on the wire, so the broker takes it, but the service's
    # dead-letter producer could never send it on as it is.
    value, headers = await big_then_small(kafka_bootstrap, consumer.topic, 1_500_000, "wo-after")
    assert len(value) > 1_500_000

    await eventually(lambda: asyncio.sleep(0, consumer.handled), lambda h: "wo-after" in h)
    assert consumer.handled == ["wo-after"]

    dlq = await read_topic(
        kafka_bootstrap, dead_letter_topic(consumer.bus.dead_letters.service), until=bool
    )
    assert len(dlq) == 1
    letter = dlq[0]
    assert letter.headers["fixloop_dlq_reason"] == "too-large"
    assert letter.headers["fixloop_dlq_original_size"] == str(len(value))
    assert letter.headers["fixloop_dlq_original_sha256"] == hashlib.sha256(value).hexdigest()
    assert letter.headers["fixloop_dlq_original_topic"] == consumer.topic
    assert letter.headers["fixloop_dlq_original_offset"] == "0"
    assert letter.headers["fixloop_dlq_body"].startswith("omitted")
    assert letter.value in (b"", None)
    assert letter.key == KEY
    # The original CloudEvents headers travel with it, so it can be found and replayed.
    assert letter.headers["ce_id"] == headers["ce_id"]

    # One line for the dead letter, not a line per retry.
    bus_lines = [r for r in caplog.records if r.name == "fixloop_shared.bus"]
    assert len(bus_lines) <= 3, [r.getMessage() for r in bus_lines]
    assert consumer.bus.dead_letters.stuck == {}


async def test_a_copy_the_broker_refuses_is_sent_again_without_body(
    consumer: Consumer, kafka_bootstrap: str
) -> None:
    # The dead-letter policy believes it may send 8 MiB, the producer refuses above 1 MiB: the
    # first copy fails as a record, and the dead letter must still arrive.
    consumer.bus.dead_letters.max_message_bytes = 8 * 1024 * 1024
    value, _ = await big_then_small(kafka_bootstrap, consumer.topic, 1_100_000, "wo-next")

    await eventually(
        lambda: asyncio.sleep(0, consumer.handled), lambda h: "wo-next" in h, timeout=60
    )
    dlq = await read_topic(
        kafka_bootstrap, dead_letter_topic(consumer.bus.dead_letters.service), until=bool
    )
    assert len(dlq) == 1
    letter = dlq[0]
    assert letter.headers["fixloop_dlq_reason"] == "too-large"
    assert letter.headers["fixloop_dlq_body"].startswith("omitted: the broker refused")
    assert letter.headers["fixloop_dlq_original_size"] == str(len(value))
    assert letter.value in (b"", None)


async def test_a_failing_dead_letter_publish_holds_the_partition_and_readiness_says_so(
    consumer: Consumer, kafka_bootstrap: str
) -> None:
    policy = consumer.bus.dead_letters
    real_topic = policy.topic
    failures = {"left": 12}
    broker = policy.broker
    assert broker is not None
    publish = broker.publish

    async def flaky_publish(*args: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0 and args[1] == real_topic:
            failures["left"] -= 1
            msg = "broker briefly unreachable"
            raise ConnectionError(msg)
        return await publish(*args, **kwargs)

    broker.publish = flaky_publish  # type: ignore[method-assign]
    policy.max_wait_seconds = 0.5
    policy.held_up_after_seconds = 0.0

    await produce(kafka_bootstrap, consumer.topic, b"{not json", key=KEY, headers={"ce_id": "x"})
    after, after_headers = accepted("wo-behind")
    await produce(kafka_bootstrap, consumer.topic, after, key=KEY, headers=after_headers)

    async def held() -> list[str]:
        try:
            await policy.check_partitions()
        except Exception as exc:
            return [str(exc)]
        return []

    reported = await eventually(held, bool, timeout=30)
    assert consumer.topic in reported[0]
    assert "ConnectionError" in reported[0]
    assert consumer.handled == []

    await eventually(lambda: asyncio.sleep(0, consumer.handled), lambda h: "wo-behind" in h)
    assert await held() == []
    dlq = await read_topic(kafka_bootstrap, real_topic, until=bool)
    assert [r.headers["fixloop_dlq_reason"] for r in dlq] == ["schema-violation"]
    assert dlq[0].value == b"{not json"
