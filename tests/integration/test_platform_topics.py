"""Per-platform inbound topics on the embedded stack: the platform is the topic's, never the
``source`` the sender wrote (DESIGN §3, "what a platform may do is decided by who it is").

The orders service runs in-process (its own wiring, real broker and store) with two platforms
bound: ``A`` to tenant A and ``B`` to tenant B. An event on A's topic that claims to come from B
is handled as A's: A's tenant binding applies (so it cannot create orders in B's tenant), the
order it creates is A's, and A cannot act on B's orders. The shared topic keeps binding by
``source`` (unsecured clusters only).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from fixloop_devkit.testing import (
    ConsumedRecord,
    eventually,
    produce,
    read_topic,
    start_in_process,
    unique,
)
from fixloop_orders.adapters.mongo import WORK_ORDERS
from fixloop_orders.main import OrdersService, bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.contracts import CancellationRequested, EventPayload
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload, to_structured
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import Document
from fixloop_shared.topics import Service, Topic, dead_letter_topic, inbound_topic
from tests.integration.test_orders_service import submitted

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
PLATFORM_A = f"pa-{RUN}"
PLATFORM_B = f"pb-{RUN}"
TENANT_A = f"platform-it-a-{RUN}"
TENANT_B = f"platform-it-b-{RUN}"
DEAD_LETTERS = dead_letter_topic(Service.ORDERS)


@dataclass
class Running:
    service: OrdersService
    bootstrap: str

    @property
    def db(self) -> Any:
        return self.service.ctx.store.db

    async def orders(self, external_id: str) -> list[Document]:
        found: list[Document] = await (
            self.db[WORK_ORDERS].find({"external_id": external_id}).to_list(None)
        )
        return found

    async def order(self, external_id: str) -> Document:
        found = await eventually(lambda: self.orders(external_id), lambda docs: len(docs) == 1)
        return found[0]


@pytest.fixture(scope="module")
async def running(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Running]:
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("platform_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        source_tenants={PLATFORM_A: [TENANT_A], PLATFORM_B: [TENANT_B]},
        outbox_poll_seconds=0.1,
    )
    service = await start_in_process(lambda: bootstrap(settings))
    try:
        yield Running(service=service, bootstrap=kafka_bootstrap)
    finally:
        await service.app.stop()


async def send(
    bootstrap: str,
    topic: str,
    payload: EventPayload,
    *,
    source: str,
    tenant: str,
    subject: str,
    structured: bool = True,
) -> EventEnvelope:
    envelope = EventEnvelope.new(payload, source=source, subject=subject, tenant=tenant)
    if structured:
        value = json.dumps(to_structured(envelope, payload)).encode()
        headers = {"content-type": "application/cloudevents+json"}
    else:
        value, headers = encode_payload(payload), binary_headers(envelope)
    await produce(bootstrap, topic, value, key=subject.encode(), headers=headers)
    return envelope


async def dead_letter_of(bootstrap: str, event_id: str) -> ConsumedRecord:
    def mine(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
        return [
            r
            for r in records
            if event_id.encode() in (r.value or b"") or r.headers.get("ce_id") == event_id
        ]

    records = await read_topic(bootstrap, DEAD_LETTERS, until=lambda rs: bool(mine(rs)), timeout=20)
    found = mine(records)
    assert found, f"no dead letter of event {event_id}"
    return found[0]


async def test_each_platforms_inbound_topic_is_created_at_start_up(running: Running) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=running.bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert {inbound_topic(PLATFORM_A), inbound_topic(PLATFORM_B)} <= topics
    assert Topic.WORKORDERS_INBOUND.value in topics


async def test_an_order_on_as_topic_claiming_b_cannot_use_bs_tenant(running: Running) -> None:
    external_id = unique("EXT-claims-b")
    envelope = await send(
        running.bootstrap,
        inbound_topic(PLATFORM_A),
        submitted(external_id),
        source=PLATFORM_B,
        tenant=TENANT_B,
        subject=external_id,
    )

    letter = await dead_letter_of(running.bootstrap, envelope.id)
    assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
    assert letter.headers["fixloop_dlq_original_topic"] == inbound_topic(PLATFORM_A)
    message = letter.headers["fixloop_dlq_message"]
    assert repr(PLATFORM_A) in message  # refused as A's, the platform of the topic
    assert repr(PLATFORM_B) not in message
    assert TENANT_B in message
    assert await running.orders(external_id) == []


@pytest.mark.parametrize("structured", [True, False], ids=["structured", "binary"])
async def test_an_order_on_as_topic_claiming_b_is_as_order(
    running: Running, *, structured: bool
) -> None:
    external_id = unique("EXT-as-a")
    await send(
        running.bootstrap,
        inbound_topic(PLATFORM_A),
        submitted(external_id),
        source=PLATFORM_B,
        tenant=TENANT_A,
        subject=external_id,
        structured=structured,
    )

    order = await running.order(external_id)
    assert order["source_platform"] == PLATFORM_A
    assert order["tenant"] == TENANT_A


async def test_a_platform_may_write_any_source_on_its_own_topic(running: Running) -> None:
    external_id = unique("EXT-uri-source")
    await send(
        running.bootstrap,
        inbound_topic(PLATFORM_B),
        submitted(external_id),
        source=f"https://{PLATFORM_B}.example.com/orders",
        tenant=TENANT_B,
        subject=external_id,
    )

    order = await running.order(external_id)
    assert order["source_platform"] == PLATFORM_B


async def test_a_platform_cannot_cancel_anothers_order_by_naming_it(running: Running) -> None:
    external_id = unique("EXT-bs-order")
    await send(
        running.bootstrap,
        inbound_topic(PLATFORM_B),
        submitted(external_id),
        source=PLATFORM_B,
        tenant=TENANT_B,
        subject=external_id,
    )
    original = await running.order(external_id)

    cancel = await send(
        running.bootstrap,
        inbound_topic(PLATFORM_A),
        CancellationRequested(external_id=external_id, reason="not needed any more"),
        source=PLATFORM_B,
        tenant=TENANT_B,
        subject=external_id,
    )

    letter = await dead_letter_of(running.bootstrap, cancel.id)
    assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
    [order] = await running.orders(external_id)
    assert order["state"] == original["state"]
    assert order["source_platform"] == PLATFORM_B


async def test_the_shared_topic_still_binds_by_source(running: Running) -> None:
    external_id = unique("EXT-shared")
    await send(
        running.bootstrap,
        Topic.WORKORDERS_INBOUND,
        submitted(external_id),
        source=PLATFORM_B,
        tenant=TENANT_B,
        subject=external_id,
    )

    order = await running.order(external_id)
    assert order["source_platform"] == PLATFORM_B
