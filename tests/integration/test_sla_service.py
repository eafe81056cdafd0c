"""The sla service in-process against the real broker and store: clocks, timers and restarts.

Each service instance is the real app (consumer, outbox relay, clock scheduler) built from test
settings with a short policy, on its own database. Tests drive it through the topics it consumes
and read what it emits on the SLA topic. Assertions are about behaviour: what is emitted, in
which order, how often, and that nothing fires before its moment.

Instances share the service's consumer group, so only one runs at a time: the restart test runs
first with its own instances, then the other tests share one long-running instance.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from fixloop_devkit.testing import ConsumedRecord, eventually, produce, unique
from fixloop_shared.contracts import (
    Actor,
    Address,
    AssignmentAccepted,
    Category,
    Equipment,
    EventPayload,
    Milestone,
    Priority,
    Requester,
    Site,
    SlaBreached,
    SlaMet,
    SlaStopped,
    SlaWarning,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event, EventEnvelope, binary_headers, encode_payload
from fixloop_shared.kernel import apply_event
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX, MongoClient, Store, make_client
from fixloop_shared.topics import Service, Topic, dead_letter_topic
from fixloop_shared.vocabulary import ActorKind, WorkOrderState
from fixloop_sla.adapters.mongo import (
    CLOCK_STOPS,
    CLOCKS,
    MongoClockRepository,
    clock_indexes,
    due_clocks,
)
from fixloop_sla.app.clocks import ConcurrentClockChangeError, SlaClocks
from fixloop_sla.app.clocks import sla_events as sla_event_payloads
from fixloop_sla.domain import clock_id_for
from fixloop_sla.main import SlaService, bootstrap
from fixloop_sla.metrics import SlaMetrics
from fixloop_sla.settings import SlaSettings

pytestmark = pytest.mark.integration

DISPATCH = Milestone.DISPATCH_CONFIRMATION
WARNING = SlaWarning.event_type
BREACH = SlaBreached.event_type
MET = SlaMet.event_type
STOPPED = SlaStopped.event_type
TENANT = "acme"

_running: list[SlaService] = []
"""Instances currently running in this module (at most one: they share a consumer group)."""


# -- building and driving the service ---------------------------------------------------------


@dataclass
class Stack:
    kafka_bootstrap: str
    mongodb_uri: str
    database: str
    mongo: MongoClient

    def settings(self, *, target: int, warning_before: int) -> SlaSettings:
        return SlaSettings(
            mongodb_uri=self.mongodb_uri,
            database=self.database,
            kafka=KafkaSettings(bootstrap=self.kafka_bootstrap),
            health_port=0,
            dispatch_target_seconds=target,
            dispatch_warning_before_seconds=warning_before,
            scheduler_poll_seconds=0.1,
            outbox_poll_seconds=0.1,
            late_after_seconds=1.0,
            metrics_refresh_seconds=0.2,
        )

    async def clock(self, work_order_id: str) -> dict[str, Any] | None:
        return await self.mongo[self.database][CLOCKS].find_one(
            {"_id": clock_id_for(work_order_id, DISPATCH)}
        )

    async def clock_exists(self, work_order_id: str) -> dict[str, Any]:
        doc = await eventually(lambda: self.clock(work_order_id), lambda d: d is not None)
        assert doc is not None
        return doc

    @asynccontextmanager
    async def running(self, settings: SlaSettings) -> AsyncIterator[SlaService]:
        """The service started as its process starts it, consuming and caught up."""
        assert not _running, "one sla instance at a time: they share the consumer group"
        service = bootstrap(settings)
        await service.app.start()
        _running.append(service)
        try:
            await self._consuming(service)
            yield service
        finally:
            _running.remove(service)
            await service.app.stop()

    @asynccontextmanager
    async def timers_only(self, settings: SlaSettings) -> AsyncIterator[SlaService]:
        """An instance whose clock scheduler and outbox relay run, publishing through its
        broker connection, without a consumer joining the group."""
        assert not _running, "one sla instance at a time: they share the consumer group"
        service = bootstrap(settings)
        await service.ctx.bus.broker.connect()
        await service.scheduler.start()
        service.ctx.relay.start()
        _running.append(service)
        try:
            yield service
        finally:
            _running.remove(service)
            await service.scheduler.stop()
            await service.ctx.relay.stop()
            await service.ctx.bus.broker.stop()
            await service.ctx.store.client.close()

    async def _consuming(self, service: SlaService) -> None:
        # The consumer has joined its group once a fresh event has been applied (an accepted for
        # an unknown order leaves a stop record), and has caught up once it has committed up to
        # the end of every partition it holds: records other modules left on the shared topics
        # are behind it, and a test's own event is applied at once.
        probe = unique("wo-probe")
        await publish(self.kafka_bootstrap, accepted(probe, at=datetime.now(UTC)))
        stops = self.mongo[self.database][CLOCK_STOPS]
        await eventually(
            lambda: stops.find_one({"work_order_id": probe}), lambda d: d is not None, timeout=60
        )
        await eventually(lambda: behind(service), lambda n: n == 0, timeout=120)


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
def stack(
    kafka_bootstrap: str, mongodb_uri: str, database_name: str, mongo_client: MongoClient
) -> Stack:
    return Stack(kafka_bootstrap, mongodb_uri, database_name, mongo_client)


@dataclass
class Shared:
    stack: Stack
    service: SlaService


@pytest.fixture(scope="module")
async def shared(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Shared]:
    """One instance with a 4 s target and the warning 2 s before, shared by the module's tests."""
    client = make_client(mongodb_uri, app_name="fixloop-tests")
    stack = Stack(kafka_bootstrap, mongodb_uri, unique("test_sla").replace("-", "_"), client)
    try:
        async with stack.running(stack.settings(target=4, warning_before=2)) as service:
            yield Shared(stack, service)
    finally:
        await client.close()


def received(work_order_id: str, *, at: datetime) -> WorkOrderReceived:
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


def accepted(work_order_id: str, *, at: datetime) -> AssignmentAccepted:
    return AssignmentAccepted(
        work_order_id=work_order_id,
        offer_id=f"offer-{uuid.uuid4().hex[:8]}",
        contractor_id="contractor-7",
        accepted_at=at,
    )


def assigned(work_order_id: str, *, at: datetime) -> WorkOrderAssigned:
    return WorkOrderAssigned(
        work_order_id=work_order_id,
        external_id=f"EXT-{work_order_id}",
        source_platform="marketplace.example",
        state=WorkOrderState.ASSIGNED,
        previous_state=WorkOrderState.DISPATCHING,
        occurred_at=at,
        actor=Actor(kind=ActorKind.CONTRACTOR, id="contractor-7"),
        via="events",
        version=3,
        contractor_id="contractor-7",
    )


def cancelled(work_order_id: str, *, at: datetime, reason: str | None) -> WorkOrderCancelled:
    return WorkOrderCancelled(
        work_order_id=work_order_id,
        external_id=f"EXT-{work_order_id}",
        source_platform="marketplace.example",
        state=WorkOrderState.CANCELLED,
        previous_state=WorkOrderState.DISPATCHING,
        occurred_at=at,
        actor=Actor(kind=ActorKind.REQUESTER, id="marketplace.example"),
        via="kafka",
        version=3,
        reason=reason,
    )


async def publish(
    kafka_bootstrap: str,
    payload: WorkOrderReceived | AssignmentAccepted | WorkOrderAssigned | WorkOrderCancelled,
    *,
    source: Service | None = None,
    tenant: str = TENANT,
    envelope: EventEnvelope | None = None,
) -> EventEnvelope:
    """Publish in CloudEvents binary mode on the topic of the event's owner."""
    if isinstance(payload, AssignmentAccepted):
        topic, owner = Topic.CONTRACTORS_EVENTS, Service.CONTRACTORS
    else:
        topic, owner = Topic.WORKORDERS_EVENTS, Service.ORDERS
    work_order_id = payload.work_order_id
    envelope = envelope or EventEnvelope.new(
        payload,
        source=(source or owner).value,
        subject=work_order_id,
        tenant=tenant,
        correlationid=f"corr-{work_order_id}",
    )
    await produce(
        kafka_bootstrap,
        topic.value,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )
    return envelope


async def topic_records(bootstrap: str, topic: str) -> list[ConsumedRecord]:
    """Every record on ``topic`` up to its current end (a snapshot, no waiting for more)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumedRecord] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(*partitions, timeout_ms=500)
            for messages in batch.values():
                records.extend(
                    ConsumedRecord(
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value,
                        headers={k: v.decode() for k, v in (m.headers or ())},
                    )
                    for m in messages
                )
        return records
    finally:
        await consumer.stop()


async def sla_events(bootstrap: str, work_order_id: str) -> list[ConsumedRecord]:
    """The SLA events published for one order, in order, once each.

    The outbox relay publishes at least once: a record published twice (after a crash between
    publishing and marking it sent) carries the same event id and is read once here, as every
    consumer dedupes it. A second emission would carry a new id and is counted.
    """
    seen: set[str] = set()
    events = []
    for record in await topic_records(bootstrap, Topic.SLA_EVENTS.value):
        if record.key == work_order_id.encode() and record.headers["ce_id"] not in seen:
            seen.add(record.headers["ce_id"])
            events.append(record)
    return events


def kinds(records: list[ConsumedRecord]) -> list[str]:
    return [r.headers["ce_type"] for r in records]


async def sla_events_until(
    bootstrap: str, work_order_id: str, done: Callable[[list[str]], bool], timeout: float = 60
) -> list[ConsumedRecord]:
    return await eventually(
        lambda: sla_events(bootstrap, work_order_id),
        lambda records: done(kinds(records)),
        timeout=timeout,
        interval=0.3,
    )


async def settled(service: SlaService, *, after: datetime | None = None) -> None:
    """Wait until ``after`` (default now), then for 3 full scheduler passes and an empty outbox."""
    moment = after or datetime.now(UTC)
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
    start = service.scheduler.passes
    await eventually(lambda: asyncio.sleep(0, service.scheduler.passes), lambda n: n >= start + 3)
    await eventually(service.ctx.relay.pending_count, lambda n: n == 0)


def parse(record: ConsumedRecord, model: type[EventPayload]) -> Any:
    return model.model_validate_json(record.value or b"")


def to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


# -- restarts (own instances, so first in the module) -------------------------------------------


async def test_timers_survive_a_restart_and_fire_exactly_once(stack: Stack) -> None:
    work_order_id = unique("wo-restart")
    settings = stack.settings(target=6, warning_before=3)

    async with stack.running(settings):
        await publish(stack.kafka_bootstrap, received(work_order_id, at=datetime.now(UTC)))
        await stack.clock_exists(work_order_id)
    clock = await stack.clock(work_order_id)
    assert clock is not None
    warn_at: datetime = clock["warn_at"]
    due_at: datetime = clock["due_at"]
    assert not clock["warned"], "precondition: the first instance stopped before warn_at"

    # Down across warn_at; a fresh instance on the same store starts before due_at. Its
    # consumer has nothing to do here (joining the group would only add the broker's rebalance
    # delay), so it starts what fires and publishes on its own: the scheduler and the relay.
    await asyncio.sleep(max(0.0, (warn_at - datetime.now(UTC)).total_seconds()) + 0.2)
    assert datetime.now(UTC) < due_at, "precondition: the restart happens before due_at"
    async with stack.timers_only(settings) as second:
        await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: BREACH in ks)
        await settled(second)
    records = await sla_events(stack.kafka_bootstrap, work_order_id)
    assert kinds(records) == [WARNING, BREACH]
    warning, breach = parse(records[0], SlaWarning), parse(records[1], SlaBreached)
    assert warning.fired_at >= warn_at
    assert warning.fired_at < due_at
    assert breach.fired_at >= due_at
    late_after = timedelta(seconds=settings.late_after_seconds)
    assert warning.late == (warning.fired_at - warn_at > late_after)
    assert breach.late == (breach.fired_at - due_at > late_after)
    fired = await stack.clock(work_order_id)
    assert fired is not None
    assert (fired["state"], fired["warned"], fired["breached"]) == ("breached", True, True)

    # A clean restart after both fired emits nothing more and leaves the clock as it was.
    async with stack.timers_only(settings) as third:
        await settled(third)
    assert kinds(await sla_events(stack.kafka_bootstrap, work_order_id)) == [WARNING, BREACH]
    assert await stack.clock(work_order_id) == fired


# -- one running instance -------------------------------------------------------------------


async def test_received_order_gets_a_warning_then_a_breach_each_at_or_after_its_moment(
    shared: Shared,
) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-late")
    received_at = datetime.now(UTC)
    envelope = await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))
    # A redelivery of the same event, and a second received for the same order: no effect.
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at), envelope=envelope)
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))

    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: BREACH in ks)
    await settled(service)
    records = await sla_events(stack.kafka_bootstrap, work_order_id)
    assert kinds(records) == [WARNING, BREACH]
    warning, breach = parse(records[0], SlaWarning), parse(records[1], SlaBreached)
    started_at = to_ms(received_at)  # event time, not processing time
    for event in (warning, breach):
        assert event.started_at == started_at
        assert event.warn_at == started_at + timedelta(seconds=2)
        assert event.due_at == started_at + timedelta(seconds=4)
        assert event.clock_id == clock_id_for(work_order_id, DISPATCH)
    assert warning.fired_at >= warning.warn_at
    assert warning.fired_at < warning.due_at
    assert breach.fired_at >= breach.due_at
    for record in records:
        assert record.headers["ce_source"] == Service.SLA.value
        assert record.headers["ce_subject"] == work_order_id
        assert record.headers["ce_tenant"] == TENANT
        assert record.headers["ce_correlationid"] == envelope.correlationid

    clocks = stack.mongo[stack.database][CLOCKS]
    assert await clocks.count_documents({"work_order_id": work_order_id}) == 1
    clock = await stack.clock(work_order_id)
    assert clock is not None
    assert (clock["state"], clock["warned"], clock["breached"]) == ("breached", True, True)


async def test_clock_gauges_follow_the_store(shared: Shared) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-gauges")
    await publish(stack.kafka_bootstrap, received(work_order_id, at=datetime.now(UTC)))
    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: BREACH in ks)
    clocks = stack.mongo[stack.database][CLOCKS]

    def sample(name: str, **labels: str) -> float:
        value = service.ctx.metrics.get_sample_value(name, {"milestone": DISPATCH.value, **labels})
        return -1.0 if value is None else value

    async def gauges_and_store() -> tuple[tuple[float, ...], tuple[float, ...]]:
        gauges = (
            sample("fixloop_sla_clocks_running"),
            sample("fixloop_sla_clocks_warned"),
            sample("fixloop_sla_clocks_breached"),
        )
        counts = (
            await clocks.count_documents({"state": "running"}),
            await clocks.count_documents({"state": "running", "warned": True}),
            await clocks.count_documents({"state": "breached", "stopped": False}),
        )
        return gauges, tuple(float(n) for n in counts)

    _, counts = await eventually(gauges_and_store, lambda pair: pair[0] == pair[1])
    assert counts[2] >= 1
    breaches = sum(
        sample("fixloop_sla_signals_total", kind="breach", late=late) for late in ("true", "false")
    )
    assert breaches >= 1
    assert sample("fixloop_sla_clocks_started_total") >= 1


async def test_accepted_before_the_deadline_meets_the_milestone_and_nothing_breaches(
    shared: Shared,
) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-met")
    received_at = datetime.now(UTC)
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))
    await stack.clock_exists(work_order_id)
    accepted_at = received_at + timedelta(seconds=1)
    accept = accepted(work_order_id, at=accepted_at)
    envelope = await publish(stack.kafka_bootstrap, accept)
    await publish(stack.kafka_bootstrap, accept, envelope=envelope)  # redelivery

    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: MET in ks)
    # Past the deadline, with the scheduler running all along: nothing more for this order.
    await settled(service, after=received_at + timedelta(seconds=4, milliseconds=500))
    records = await sla_events(stack.kafka_bootstrap, work_order_id)
    assert BREACH not in kinds(records)
    assert kinds(records).count(MET) == 1
    met = parse(next(r for r in records if r.headers["ce_type"] == MET), SlaMet)
    assert met.stopped_at == to_ms(accepted_at)
    assert met.stopped_at < met.due_at
    clock = await stack.clock(work_order_id)
    assert clock is not None
    assert (clock["state"], clock["breached"], clock["stopped"]) == ("met", False, True)


async def test_an_accepted_that_overtakes_its_received_stops_the_clock_at_start(
    shared: Shared,
) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-overtaken")
    received_at = datetime.now(UTC)
    await publish(
        stack.kafka_bootstrap, accepted(work_order_id, at=received_at + timedelta(seconds=1))
    )
    stops = stack.mongo[stack.database][CLOCK_STOPS]
    await eventually(
        lambda: stops.find_one({"work_order_id": work_order_id}), lambda d: d is not None
    )
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))

    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: MET in ks)
    await settled(service, after=received_at + timedelta(seconds=4, milliseconds=500))
    assert kinds(await sla_events(stack.kafka_bootstrap, work_order_id)) == [MET]
    clock = await stack.clock(work_order_id)
    assert clock is not None
    assert clock["state"] == "met"


async def test_clock_events_from_the_wrong_service_or_tenant_are_dead_lettered(
    shared: Shared,
) -> None:
    stack = shared.stack
    forged = unique("wo-forged")
    foreign = unique("wo-foreign")
    now = datetime.now(UTC)
    # A received that the orders service did not emit.
    await publish(stack.kafka_bootstrap, received(forged, at=now), source=Service.PARTS)
    # An accepted from another tenant for this tenant's running clock.
    await publish(stack.kafka_bootstrap, received(foreign, at=now))
    await stack.clock_exists(foreign)
    await publish(stack.kafka_bootstrap, accepted(foreign, at=now), tenant="globex")

    async def dead_letters() -> list[ConsumedRecord]:
        records = await topic_records(stack.kafka_bootstrap, dead_letter_topic(Service.SLA))
        return [r for r in records if r.key in (forged.encode(), foreign.encode())]

    letters = await eventually(dead_letters, lambda rs: len(rs) >= 2, interval=0.3)
    by_order = {r.key: r for r in letters}
    assert by_order[forged.encode()].headers["fixloop_dlq_reason"] == "unauthorized"
    assert by_order[forged.encode()].headers["ce_source"] == Service.PARTS.value
    assert by_order[foreign.encode()].headers["fixloop_dlq_reason"] == "unauthorized"
    assert by_order[foreign.encode()].headers["ce_tenant"] == "globex"
    assert await stack.clock(forged) is None
    clock = await stack.clock(foreign)
    assert clock is not None
    assert not clock["stopped"]
    assert MET not in kinds(await sla_events(stack.kafka_bootstrap, foreign))


# -- several schedulers on one store ---------------------------------------------------------


async def test_schedulers_sharing_a_store_fire_each_moment_once(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = Store(mongo_client, database_name, service=Service.SLA.value)
    await store.ensure_indexes(clock_indexes())
    repository = MongoClockRepository(store)
    policy = SlaSettings().sla_policy()  # 2 h target, warning 1 h before
    t0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    now = {"at": t0}

    def pod() -> SlaClocks:
        return SlaClocks(
            store=store,
            repository=repository,
            policy=policy,
            metrics=SlaMetrics(CollectorRegistry()),
            now=lambda: now["at"],
        )

    first, second = pod(), pod()
    orders = [unique("wo-pods") for _ in range(6)]
    for work_order_id in orders:
        payload = received(work_order_id, at=t0)
        envelope = EventEnvelope.new(
            payload, source=Service.ORDERS.value, subject=work_order_id, tenant=TENANT
        )
        await apply_event(store, Event(envelope, payload), first.start_dispatch_clock)

    async def outbox_kinds() -> dict[str, list[str]]:
        by_order: dict[str, list[str]] = {}
        for doc in await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list():
            by_order.setdefault(doc["key"], []).append(doc["event_type"])
        return by_order

    assert await outbox_kinds() == {}
    now["at"] = t0 + timedelta(minutes=90)

    # One pod decided on a copy of the clock that the other then fired: its save is refused and
    # its transaction, with the event it queued, is rolled back.
    clock_id = clock_id_for(orders[0], DISPATCH)
    async with store.transaction() as uow:
        stale = await repository.get(uow, clock_id)
    assert stale is not None
    assert await second.fire(clock_id)
    transition = stale.fire(now["at"])

    async def save_stale_decision() -> None:
        async with store.transaction() as uow:
            for event in sla_event_payloads(transition.after, transition.signals):
                uow.emit(event, topic=Topic.SLA_EVENTS.value, key=orders[0], tenant=TENANT)
            await repository.update(uow, transition)

    with pytest.raises(ConcurrentClockChangeError):
        await save_stale_decision()
    assert await outbox_kinds() == {orders[0]: [WARNING]}

    # Passes of both pods, one after the other, at each moment: every clock fires once.
    for moment, expected in (
        (t0 + timedelta(minutes=90), [WARNING]),
        (t0 + timedelta(hours=3), [WARNING, BREACH]),
    ):
        now["at"] = moment
        for _ in range(3):
            await first.fire_due(limit=50)
            await second.fire_due(limit=50)
        assert await outbox_kinds() == dict.fromkeys(orders, expected)


async def test_a_batch_read_ahead_sees_the_clocks_and_stops_its_own_events_wrote(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = Store(mongo_client, database_name, service=Service.SLA.value)
    await store.ensure_indexes(clock_indexes())
    repository = MongoClockRepository(store)
    t0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    clocks = SlaClocks(
        store=store,
        repository=repository,
        policy=SlaSettings().sla_policy(),
        metrics=SlaMetrics(CollectorRegistry()),
        now=lambda: t0 + timedelta(minutes=5),
    )
    started, overtaken = unique("wo-batch"), unique("wo-batch")

    def event_of(payload: WorkOrderReceived | AssignmentAccepted) -> Event[Any]:
        envelope = EventEnvelope.new(
            payload, source=Service.ORDERS.value, subject=payload.work_order_id, tenant=TENANT
        )
        return Event(envelope, payload)

    batch = [
        event_of(received(started, at=t0)),
        event_of(accepted(overtaken, at=t0 + timedelta(minutes=2))),
        event_of(accepted(started, at=t0 + timedelta(minutes=3))),
        event_of(received(overtaken, at=t0 + timedelta(minutes=1))),
    ]
    async with store.transaction() as uow:  # as the kernel applies a batch
        await clocks.preload(batch, uow)
        for event in batch:
            if isinstance(event.payload, WorkOrderReceived):
                await clocks.start_dispatch_clock(event, uow)
            else:
                await clocks.stop_dispatch_clock(event, uow)

    met = {doc["work_order_id"]: doc for doc in await store.db[CLOCKS].find({}).to_list()}
    assert (met[started]["state"], met[started]["stopped_at"]) == (
        "met",
        t0 + timedelta(minutes=3),
    )
    assert (met[overtaken]["state"], met[overtaken]["stopped_at"]) == (
        "met",
        t0 + timedelta(minutes=2),
    )
    assert await store.db[CLOCK_STOPS].count_documents({"work_order_id": overtaken}) == 1
    kinds_by_order: dict[str, list[str]] = {}
    for doc in await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list():
        kinds_by_order.setdefault(doc["key"], []).append(doc["event_type"])
    assert kinds_by_order == {started: [MET], overtaken: [MET]}


# -- the orders service's lifecycle: assigned and cancelled --------------------------------------


async def test_assigned_before_the_deadline_meets_the_milestone_once(shared: Shared) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-assigned")
    received_at = datetime.now(UTC)
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))
    await stack.clock_exists(work_order_id)
    assigned_at = received_at + timedelta(seconds=1)
    assignment = assigned(work_order_id, at=assigned_at)
    envelope = await publish(stack.kafka_bootstrap, assignment)
    await publish(stack.kafka_bootstrap, assignment, envelope=envelope)  # redelivery
    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: MET in ks)
    # The contractors' accepted for the same assignment comes later (another topic, so only
    # once the assignment was applied): it changes nothing.
    await publish(
        stack.kafka_bootstrap, accepted(work_order_id, at=received_at + timedelta(seconds=2))
    )
    met_doc = await eventually(
        lambda: stack.clock(work_order_id), lambda d: d is not None and d["state"] == "met"
    )
    assert met_doc is not None
    # Past the deadline, with the scheduler running all along: nothing more for this order.
    await settled(service, after=received_at + timedelta(seconds=4, milliseconds=500))
    records = await sla_events(stack.kafka_bootstrap, work_order_id)
    assert BREACH not in kinds(records)
    assert kinds(records).count(MET) == 1
    met = parse(next(r for r in records if r.headers["ce_type"] == MET), SlaMet)
    assert met.stopped_at == to_ms(assigned_at)  # the assignment's occurred_at, not accepted_at
    assert met.clock_id == clock_id_for(work_order_id, DISPATCH)
    clock = await stack.clock(work_order_id)
    assert clock is not None
    assert (clock["state"], clock["breached"], clock["stopped"]) == ("met", False, True)
    assert clock["stopped_at"] == to_ms(assigned_at)
    assert clock["next_fire_ms"] is None
    assert clock["version"] == met_doc["version"]  # the accepted after it changed nothing


async def test_cancelled_order_stops_its_clock_and_nothing_fires_afterwards(
    shared: Shared,
) -> None:
    stack, service = shared.stack, shared.service
    work_order_id = unique("wo-cancelled")
    received_at = datetime.now(UTC)
    cancelled_at = received_at + timedelta(milliseconds=500)
    await publish(stack.kafka_bootstrap, received(work_order_id, at=received_at))
    cancellation = cancelled(work_order_id, at=cancelled_at, reason="duplicate order")
    envelope = await publish(stack.kafka_bootstrap, cancellation)
    await publish(stack.kafka_bootstrap, cancellation, envelope=envelope)  # redelivery
    # A second cancellation (another event) and a late assignment: nothing more.
    await publish(
        stack.kafka_bootstrap,
        cancelled(work_order_id, at=cancelled_at + timedelta(milliseconds=100), reason=None),
    )
    await publish(
        stack.kafka_bootstrap, assigned(work_order_id, at=cancelled_at + timedelta(seconds=1))
    )

    await sla_events_until(stack.kafka_bootstrap, work_order_id, lambda ks: STOPPED in ks)
    stopped_doc = await eventually(
        lambda: stack.clock(work_order_id), lambda d: d is not None and d["state"] == "stopped"
    )
    assert stopped_doc is not None
    # The store says stopped: no next moment, so no scheduler (this pod, another, a restarted
    # one) ever finds it due.
    assert (stopped_doc["stopped"], stopped_doc["breached"]) == (True, False)
    assert stopped_doc["stopped_at"] == to_ms(cancelled_at)
    assert stopped_doc["stop_reason"] == "duplicate order"
    assert (stopped_doc["next_fire_at"], stopped_doc["next_fire_ms"]) == (None, None)
    clocks = stack.mongo[stack.database][CLOCKS]
    far_future = datetime.now(UTC) + timedelta(days=365)
    assert await clocks.count_documents({**due_clocks(far_future), "_id": stopped_doc["_id"]}) == 0

    # Past the warning and the deadline, with the scheduler running all along.
    await settled(service, after=received_at + timedelta(seconds=4, milliseconds=500))
    records = await sla_events(stack.kafka_bootstrap, work_order_id)
    # The cancellation normally beats the warning (2 s); whatever went out before it, nothing
    # went out after it and the breach never.
    expected = [WARNING, STOPPED] if stopped_doc["warned"] else [STOPPED]
    assert kinds(records) == expected
    stopped = parse(records[-1], SlaStopped)
    assert (stopped.stopped_at, stopped.reason) == (to_ms(cancelled_at), "duplicate order")
    assert stopped.clock_id == clock_id_for(work_order_id, DISPATCH)
    assert stopped.milestone is DISPATCH
    assert stopped.started_at == to_ms(received_at)
    assert stopped.due_at == to_ms(received_at) + timedelta(seconds=4)
    assert records[-1].headers["ce_subject"] == work_order_id
    assert records[-1].headers["ce_tenant"] == TENANT
    assert records[-1].headers["ce_correlationid"] == f"corr-{work_order_id}"
    after = await stack.clock(work_order_id)
    assert after is not None
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in stopped_doc.items() if k != "updated_at"
    }


async def test_a_cancellation_from_another_service_is_dead_lettered(shared: Shared) -> None:
    stack = shared.stack
    work_order_id = unique("wo-forged-cancel")
    now = datetime.now(UTC)
    await publish(stack.kafka_bootstrap, received(work_order_id, at=now))
    await stack.clock_exists(work_order_id)
    await publish(
        stack.kafka_bootstrap,
        cancelled(work_order_id, at=now, reason="forged"),
        source=Service.CONTRACTORS,
    )

    async def dead_letters() -> list[ConsumedRecord]:
        records = await topic_records(stack.kafka_bootstrap, dead_letter_topic(Service.SLA))
        return [r for r in records if r.key == work_order_id.encode()]

    [letter] = await eventually(dead_letters, lambda rs: len(rs) >= 1, interval=0.3)
    assert letter.headers["fixloop_dlq_reason"] == "unauthorized"
    clock = await stack.clock(work_order_id)
    assert clock is not None
    assert clock["state"] != "stopped"
    assert STOPPED not in kinds(await sla_events(stack.kafka_bootstrap, work_order_id))


async def test_a_batch_with_cancellations_stops_each_clock_once(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = Store(mongo_client, database_name, service=Service.SLA.value)
    await store.ensure_indexes(clock_indexes())
    repository = MongoClockRepository(store)
    t0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    now = {"at": t0 + timedelta(minutes=5)}
    clocks = SlaClocks(
        store=store,
        repository=repository,
        policy=SlaSettings().sla_policy(),  # 2 h target, warning 1 h before
        metrics=SlaMetrics(CollectorRegistry()),
        now=lambda: now["at"],
    )
    in_batch, earlier, met, unknown = (unique("wo-cancel-batch") for _ in range(4))

    def event_of(payload: EventPayload) -> Event[Any]:
        subject = str(getattr(payload, "work_order_id", ""))
        envelope = EventEnvelope.new(
            payload, source=Service.ORDERS.value, subject=subject, tenant=TENANT
        )
        return Event(envelope, payload)

    async def apply(batch: list[Event[Any]]) -> None:
        handlers: dict[type[EventPayload], Any] = {
            WorkOrderReceived: clocks.start_dispatch_clock,
            WorkOrderAssigned: clocks.stop_dispatch_clock_on_assignment,
            WorkOrderCancelled: clocks.stop_clocks_of_cancelled_order,
        }
        async with store.transaction() as uow:  # as the kernel applies a batch
            await clocks.preload(batch, uow)
            for event in batch:
                await handlers[type(event.payload)](event, uow)

    await apply([event_of(received(earlier, at=t0)), event_of(received(met, at=t0))])
    first_cancel = event_of(cancelled(in_batch, at=t0 + timedelta(minutes=2), reason="moved"))
    await apply(
        [
            event_of(received(in_batch, at=t0)),
            first_cancel,
            event_of(assigned(met, at=t0 + timedelta(minutes=3))),
            event_of(cancelled(earlier, at=t0 + timedelta(minutes=4), reason=None)),
            event_of(cancelled(met, at=t0 + timedelta(minutes=4), reason="too late")),
            event_of(cancelled(unknown, at=t0 + timedelta(minutes=4), reason="never seen")),
            first_cancel,  # a duplicate within the batch
            event_of(assigned(in_batch, at=t0 + timedelta(minutes=4))),
        ]
    )
    stored = {doc["work_order_id"]: doc for doc in await store.db[CLOCKS].find({}).to_list()}
    assert set(stored) == {in_batch, earlier, met}
    assert (stored[in_batch]["state"], stored[in_batch]["stop_reason"]) == ("stopped", "moved")
    assert stored[in_batch]["stopped_at"] == t0 + timedelta(minutes=2)
    assert (stored[earlier]["state"], stored[earlier]["stop_reason"]) == (
        "stopped",
        "work order cancelled",
    )
    assert (stored[met]["state"], stored[met]["stop_reason"]) == ("met", None)

    async def outbox() -> dict[str, list[str]]:
        by_order: dict[str, list[str]] = {}
        for doc in await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list():
            by_order.setdefault(doc["key"], []).append(doc["event_type"])
        return by_order

    assert await outbox() == {in_batch: [STOPPED], earlier: [STOPPED], met: [MET]}
    # Hours later, the scheduler finds nothing due on them.
    now["at"] = t0 + timedelta(hours=5)
    assert await clocks.fire_due(limit=50) == (0, 0)
    assert await outbox() == {in_batch: [STOPPED], earlier: [STOPPED], met: [MET]}
