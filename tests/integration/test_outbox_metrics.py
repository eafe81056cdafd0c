"""The outbox backlog metrics move with the relay's own work, against the real embedded store:
nothing calls /readyz here. The broker is a gate the test opens and closes (a refusing broker is
what makes a backlog)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from fixloop_devkit.testing import eventually, unique
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.due_work import DueWorkScheduler
from fixloop_shared.outbox import OutboxRelay
from fixloop_shared.store import MongoClient, Store

pytestmark = pytest.mark.integration

TOPIC = "fixloop.test.outbox-metrics"


@dataclass
class BrokerGate:
    """A publish function whose broker refuses every record while closed."""

    open: bool = False
    sent: list[str] = field(default_factory=list)

    async def publish(self, topic: str, value: bytes, key: str, headers: Mapping[str, str]) -> None:
        if not self.open:
            msg = "broker not reachable"
            raise ConnectionError(msg)
        self.sent.append(key)


@dataclass
class Pod:
    relay: OutboxRelay
    registry: CollectorRegistry

    def value(self, name: str) -> float:
        found = self.registry.get_sample_value(name)
        assert found is not None, name
        return found

    async def backlog(self) -> tuple[float, float]:
        return self.value("fixloop_outbox_pending"), self.value(
            "fixloop_outbox_oldest_pending_seconds"
        )


async def emit(store: Store, *work_order_ids: str) -> None:
    """One committed unit of work per event, as a service writes them."""
    for work_order_id in work_order_ids:
        async with store.transaction() as uow:
            uow.emit(
                AssignmentAccepted(
                    work_order_id=work_order_id,
                    offer_id="offer-1",
                    contractor_id="c-1",
                    accepted_at=datetime.now(UTC),
                ),
                topic=TOPIC,
                key=work_order_id,
                tenant="acme",
            )


@pytest.fixture
async def store(mongo_client: MongoClient, database_name: str) -> Store:
    store = Store(mongo_client, database_name, service=unique("outbox-metrics"))
    await store.ensure_indexes()
    return store


@pytest.fixture
async def pods(store: Store) -> AsyncIterator[tuple[BrokerGate, list[Pod]]]:
    """Two pods of one service, each with its relay and its own metrics registry."""
    gate = BrokerGate()
    started: list[Pod] = []
    for owner in ("pod-a", "pod-b"):
        registry = CollectorRegistry()
        relay = OutboxRelay(
            store,
            gate.publish,
            poll_seconds=0.05,
            batch_size=2,  # smaller than the backlog: the relay has to count it
            backlog_count_seconds=0,
            scheduler=DueWorkScheduler.for_store(store, owner=owner),
            metrics=registry,
        )
        started.append(Pod(relay, registry))
    try:
        yield gate, started
    finally:
        for pod in started:
            await pod.relay.scheduler.stop(grace_seconds=2)


async def test_backlog_gauges_move_as_the_relay_works_without_any_probe(
    store: Store, pods: tuple[BrokerGate, list[Pod]]
) -> None:
    gate, (pod, _) = pods
    assert await pod.backlog() == (0, 0)
    await emit(store, "wo-1", "wo-2", "wo-3", "wo-4", "wo-5")
    assert await pod.backlog() == (0, 0)  # nothing moves them but the relay

    await pod.relay.scheduler.start()
    _, age = await eventually(pod.backlog, lambda b: b[0] == 5, timeout=15, interval=0.05)
    assert age > 0
    # The age is that of the oldest pending record: it grows while the broker refuses.
    await asyncio.sleep(0.05)
    assert pod.value("fixloop_outbox_oldest_pending_seconds") > age
    assert pod.value("fixloop_outbox_published_total") == 0

    gate.open = True
    await eventually(pod.backlog, lambda b: b == (0, 0), timeout=15, interval=0.05)
    assert gate.sent == ["wo-1", "wo-2", "wo-3", "wo-4", "wo-5"]
    assert pod.value("fixloop_outbox_published_total") == 5

    gate.open = False
    await emit(store, "wo-6")
    await eventually(pod.backlog, lambda b: b[0] == 1 and b[1] > 0, timeout=15, interval=0.05)


async def test_a_pod_standing_by_reports_the_same_backlog_as_the_relaying_one(
    store: Store, pods: tuple[BrokerGate, list[Pod]]
) -> None:
    gate, both = pods
    await emit(store, "wo-1", "wo-2", "wo-3")
    for pod in both:
        await pod.relay.scheduler.start()
    for pod in both:
        await eventually(pod.backlog, lambda b: b[0] == 3 and b[1] > 0, timeout=15, interval=0.05)

    gate.open = True
    for pod in both:
        await eventually(pod.backlog, lambda b: b == (0, 0), timeout=15, interval=0.05)
    assert sorted(gate.sent) == ["wo-1", "wo-2", "wo-3"]
    published = sum(pod.value("fixloop_outbox_published_total") for pod in both)
    assert published == 3  # one relay published them, under the lease
