"""The sla engine in-process against the real broker and store: two instances share the clocks'
partitions, and every clock fires exactly once, also across rebalances.

Each instance is the real app (consumer, timers, outbox relay) on one database, with a short
policy (seconds) imported into that database first. The test drives it through the orders topic
and reads what it emits on the SLA topic. (An order's clocks through its whole lifecycle, with a
``kill -9``, are the end-to-end tests'; the clocks' decisions are the domain's unit tests.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fixloop_devkit.testing import ConsumedRecord, eventually, produce, start_in_process, unique
from fixloop_shared.contracts import (
    Address,
    Category,
    Equipment,
    EventPayload,
    Milestone,
    Priority,
    Requester,
    Site,
    WorkOrderReceived,
)
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import MongoClient, make_client
from fixloop_shared.topics import Service, Topic
from fixloop_sla.adapters.policies import MongoPolicyStore
from fixloop_sla.domain import (
    ClockDefinition,
    Goal,
    GoalMatch,
    SlaPolicy,
    Threshold,
    ThresholdKind,
)
from fixloop_sla.main import SlaService, bootstrap
from fixloop_sla.policy_file import policy_document
from fixloop_sla.settings import SlaSettings

pytestmark = pytest.mark.integration

TENANT = "sla-test"
"""The tenant whose orders the short policy times: orders other modules left on the shared
topics (other tenants) are read but get no clocks."""
S = timedelta(seconds=1)


def short_policy(*, dispatch: int = 8, arrival: int = 4, progress: int = 8) -> SlaPolicy:
    """Seconds. The warning comes halfway; what a test answers after a warning has the other
    half to arrive before the deadline."""

    def clock(milestone: Milestone, target: int, warn: int, *escalate: int) -> ClockDefinition:
        return ClockDefinition(
            milestone,
            goals=(Goal(GoalMatch(), target * S),),
            thresholds=(
                Threshold(ThresholdKind.WARNING, -warn * S),
                *(
                    Threshold(ThresholdKind.ESCALATION, after * S, level=i, audience="operator")
                    for i, after in enumerate(escalate, start=1)
                ),
            ),
        )

    return SlaPolicy(
        name="short",
        version=1,
        clocks=(
            clock(Milestone.DISPATCH_CONFIRMATION, dispatch, dispatch // 2, 1),
            clock(Milestone.ARRIVAL, arrival, arrival // 2, 1),
            clock(Milestone.PROGRESS_UPDATE, progress, progress // 2),
            clock(Milestone.REPAIR, 60, 10),
        ),
    )


@dataclass
class Stack:
    kafka_bootstrap: str
    mongodb_uri: str
    database: str
    mongo: MongoClient
    write_slot: asyncio.Lock = field(default_factory=asyncio.Lock)

    def settings(self) -> SlaSettings:
        return SlaSettings(
            mongodb_uri=self.mongodb_uri,
            database=self.database,
            kafka=KafkaSettings(bootstrap=self.kafka_bootstrap),
            health_port=0,
            grpc_port=0,
            outbox_poll_seconds=0.1,
            late_after_seconds=1.0,
            policy_refresh_seconds=0.5,
        )

    async def import_policy(self, policy: SlaPolicy) -> None:
        store = MongoPolicyStore(self.mongo[self.database])
        await store.import_policy(policy_document(policy), now=datetime.now(UTC))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SlaService]:
        def build() -> SlaService:
            service = bootstrap(self.settings())
            # Instances in one process share one write slot, as the writers of one process do:
            # the embedded store does not isolate concurrent transactions (an abort can undo
            # another writer's commit). Separate pods on MongoDB are isolated by the store.
            service.ctx.store._writes = self.write_slot
            return service

        service = await start_in_process(build)
        try:
            await eventually(lambda: asyncio.sleep(0, service.timers.owned), bool, timeout=60)
            # Caught up with what other modules left on the shared topic: this test's events
            # are then applied as they come.
            await eventually(lambda: behind(service), lambda n: n == 0, timeout=120)
            yield service
        finally:
            await service.app.stop()


async def behind(service: SlaService) -> int:
    """Records not yet committed by the service's consumers, over every partition they hold."""
    total = 0
    for subscriber in service.ctx.bus.broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None or not consumer.assignment():
            return -1
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            total += max(0, ends[tp] - (await consumer.committed(tp) or 0))
    return total


@pytest.fixture
async def stack(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Stack]:
    client = make_client(mongodb_uri, app_name="fixloop-tests")
    try:
        yield Stack(kafka_bootstrap, mongodb_uri, unique("test_sla").replace("-", "_"), client)
    finally:
        await client.close()


# -- driving the orders topic --------------------------------------------------------------------

_versions: dict[str, int] = {}


def received(work_order_id: str, *, at: datetime) -> WorkOrderReceived:
    _versions[work_order_id] = 1
    return WorkOrderReceived(
        work_order_id=work_order_id,
        tenant=TENANT,
        source_platform="marketplace.example",
        received_at=at,
        external_id=f"EXT-{work_order_id}",
        site=Site(
            site_id="site-1",
            name="Berlin depot",
            address=Address(
                line1="Invalidenstr. 1", city="Berlin", postal_code="10115", country="DE"
            ),
            timezone="Europe/Berlin",
        ),
        equipment=Equipment(equipment_id="eq-1", equipment_class="hvac"),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description="Cooling unit stopped",
        requester=Requester(name="Dana Site", email="dana@example.com", locale="de"),
    )


def step(model: type[Any], work_order_id: str, state: str, previous: str, **fields: Any) -> Any:
    _versions[work_order_id] = _versions.get(work_order_id, 1) + 1
    document = {
        "work_order_id": work_order_id,
        "external_id": f"EXT-{work_order_id}",
        "source_platform": "marketplace.example",
        "state": state,
        "previous_state": previous,
        "occurred_at": datetime.now(UTC),
        "actor": {"kind": "contractor", "id": "ctr-1"},
        "via": "grpc",
        "version": _versions[work_order_id],
        "contractor_id": "ctr-1",
        **fields,
    }
    return model.model_validate_json(json.dumps(document, default=str))


async def publish(kafka_bootstrap: str, payload: EventPayload) -> None:
    work_order_id = str(payload.work_order_id)  # type: ignore[attr-defined]
    envelope = EventEnvelope.new(
        payload,
        source=Service.ORDERS.value,
        subject=work_order_id,
        tenant=TENANT,
        correlationid=f"corr-{work_order_id}",
    )
    await produce(
        kafka_bootstrap,
        Topic.WORKORDERS_EVENTS.value,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )


async def sla_records(bootstrap: str, keys: set[bytes]) -> list[ConsumedRecord]:
    """Every SLA event about these orders up to the topic's end, once per event id."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = Topic.SLA_EVENTS.value
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        seen: set[str] = set()
        records: list[ConsumedRecord] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for messages in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                for m in messages:
                    headers = {k: v.decode() for k, v in (m.headers or ())}
                    if m.key in keys and headers["ce_id"] not in seen:
                        seen.add(headers["ce_id"])
                        records.append(
                            ConsumedRecord(m.topic, m.partition, m.offset, m.key, m.value, headers)
                        )
        return records
    finally:
        await consumer.stop()


def said(records: list[ConsumedRecord]) -> list[tuple[str, str, int]]:
    """(kind, milestone, cycle) of each SLA event, in the order published."""
    out = []
    for record in records:
        payload = json.loads(record.value or b"{}")
        kind = record.headers["ce_type"].removeprefix("fixloop.sla.").removesuffix(".v1")
        out.append((kind, payload["milestone"], payload.get("cycle", 1)))
    return out


async def until_said(
    stack: Stack, work_order_id: str, wanted: tuple[str, str, int], timeout: float = 30
) -> list[ConsumedRecord]:
    return await eventually(
        lambda: sla_records(stack.kafka_bootstrap, {work_order_id.encode()}),
        lambda records: wanted in said(records),
        timeout=timeout,
        interval=0.3,
    )


# -- two instances share the clocks' partitions ------------------------------------------------


async def test_two_instances_fire_every_clock_exactly_once_across_a_rebalance(
    stack: Stack,
) -> None:
    await stack.import_policy(short_policy(dispatch=16))
    orders = [unique(f"wo-pair-{i}") for i in range(12)]
    async with stack.running() as first:
        for wo in orders[:6]:
            await publish(stack.kafka_bootstrap, received(wo, at=datetime.now(UTC)))
        async with stack.running() as second:
            # The group has rebalanced: the partitions are split between the two.
            await eventually(
                lambda: asyncio.sleep(0, (first.timers.owned, second.timers.owned)),
                lambda owned: bool(owned[0]) and bool(owned[1]) and not (owned[0] & owned[1]),
                timeout=60,
            )
            for wo in orders[6:]:
                await publish(stack.kafka_bootstrap, received(wo, at=datetime.now(UTC)))
            await asyncio.sleep(2)
        # The second left: the first owns every partition again and fires the rest.
        keys = {wo.encode() for wo in orders}

        def all_breached(rs: list[ConsumedRecord]) -> bool:
            done = sum(1 for r in rs if ("breached", "dispatch_confirmation", 1) in said([r]))
            return done >= len(orders)

        records = await eventually(
            lambda: sla_records(stack.kafka_bootstrap, keys),
            all_breached,
            timeout=90,
            interval=3,
        )
        await asyncio.sleep(2)
    records = await sla_records(stack.kafka_bootstrap, keys)
    dispatch: dict[bytes | None, list[str]] = {}  # the repair clock may fire too; not counted
    for record in records:
        if json.loads(record.value or b"{}")["milestone"] == "dispatch_confirmation":
            dispatch.setdefault(record.key, []).append(record.headers["ce_type"])
    for wo in orders:
        kinds = sorted(dispatch.get(wo.encode(), []))
        assert kinds.count("fixloop.sla.breached.v1") == 1, (wo, kinds)
        assert kinds.count("fixloop.sla.warning.v1") <= 1, (wo, kinds)
        assert kinds.count("fixloop.sla.escalated.v1") == 1, (wo, kinds)
