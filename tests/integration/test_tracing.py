"""One trace follows an event from the producer, through a consumer and its store transaction,
through the outbox, to the next topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient

from fixloop_devkit.testing import eventually, produce, read_topic, unique
from fixloop_shared.bus import ensure_topics, make_bus
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import EventConsumer, UnitOfWork, subscribe_consumer
from fixloop_shared.outbox import OutboxRelay
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import Store
from fixloop_shared.topics import dead_letter_topic

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_trace_context_flows_from_consumed_to_emitted_event(
    kafka_bootstrap: str, mongo_client: AsyncMongoClient[dict[str, object]], database_name: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = unique("traced")
    source, target = unique("fixloop.test.traced-in"), unique("fixloop.test.traced-out")
    store = Store(mongo_client, database_name, service=service)
    await store.ensure_indexes()
    bus = make_bus(
        KafkaSettings(bootstrap=kafka_bootstrap), service=service, tracer_provider=provider
    )
    handled: list[str] = []

    async def handle(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        payload = event.payload
        uow.emit(payload, topic=target, key=payload.work_order_id, tenant="acme")
        uow.after_commit(lambda: handled.append(payload.work_order_id))

    subscribe_consumer(
        bus,
        store,
        EventConsumer(name="traced", topics=[source], handlers={AssignmentAccepted: handle}),
    )
    await ensure_topics(bus.settings, [source, target, dead_letter_topic(service)])
    await bus.broker.start()
    try:
        payload = AssignmentAccepted(
            work_order_id="wo-traced",
            offer_id="offer-1",
            contractor_id="ctr-1",
            accepted_at=datetime.now(UTC),
        )
        envelope = EventEnvelope.new(
            payload, source="contractors", subject="wo-traced", tenant="acme"
        ).with_traceparent(INCOMING)
        await produce(
            kafka_bootstrap,
            source,
            encode_payload(payload),
            key=b"wo-traced",
            headers=binary_headers(envelope),
        )
        await eventually(lambda: asyncio.sleep(0, handled), lambda h: h == ["wo-traced"])
        await OutboxRelay(store, bus.publish_raw).drain()
    finally:
        await bus.broker.stop()

    emitted = await read_topic(kafka_bootstrap, target, until=lambda r: len(r) == 1)
    traceparent = emitted[0].headers["traceparent"]
    assert traceparent.split("-")[1] == TRACE_ID  # same trace on the next hop

    spans = exporter.get_finished_spans()
    traced = [s for s in spans if format(s.context.trace_id, "032x") == TRACE_ID]
    kinds = {s.kind.name for s in traced}
    assert {"CONSUMER", "PRODUCER"} <= kinds, [(s.name, s.kind.name) for s in spans]
