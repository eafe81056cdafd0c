"""The due-work scheduler against the real embedded store and broker: several pods share one
store, each due item takes effect exactly once, also when a pod is killed with SIGKILL while it
holds leases (its leases run out, a surviving pod fires the rest)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixloop_devkit.testing import ConsumedRecord, eventually, read_topic, unique
from fixloop_shared.bus import ensure_topics
from fixloop_shared.contracts import AssignmentAccepted
from fixloop_shared.due_work import LEASE_OWNER, LEASE_UNTIL, LEASES, DueWorkScheduler, unleased
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX, OUTBOX_WORK, Document, Store, make_client
from tests.integration.due_work_pod import (
    ATTEMPTS,
    FIRED,
    TIMERS,
    kafka_publisher,
    relay_for,
    timer_work,
)

pytestmark = pytest.mark.integration

SERVICE = "due-work-test"


@pytest.fixture
async def pods(mongodb_uri: str, database_name: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two pods' stores: one database, a client each (as two processes would have)."""
    clients = [make_client(mongodb_uri, app_name=f"fixloop-pod-{n}") for n in (1, 2)]
    stores = tuple(Store(client, database_name, service=SERVICE) for client in clients)
    await stores[0].ensure_indexes()
    try:
        yield stores[0], stores[1]
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """One partition, so the order of the topic is the order of publication."""
    name = unique("fixloop.test.due-work")
    await ensure_topics(KafkaSettings(bootstrap=kafka_bootstrap, partitions=1), [name])
    return name


async def add_timers(store: Store, count: int, *, due: datetime) -> list[str]:
    ids = [f"timer-{n:03d}" for n in range(count)]
    await store.db[TIMERS].insert_many(
        [
            {"_id": i, "state": "waiting", "due_at": due + timedelta(milliseconds=n), **unleased()}
            for n, i in enumerate(ids)
        ]
    )
    return ids


async def emit(store: Store, topic: str, count: int, *, keys: int = 4) -> list[Document]:
    """``count`` committed units of work, one event each, over ``keys`` work orders."""
    for n in range(count):
        work_order_id = f"wo-{n % keys}"
        async with store.transaction() as uow:
            uow.emit(
                AssignmentAccepted(
                    work_order_id=work_order_id,
                    offer_id=f"offer-{n}",
                    contractor_id="c-1",
                    accepted_at=datetime.now(UTC),
                ),
                topic=topic,
                key=work_order_id,
                tenant="acme",
            )
    return await store.db[OUTBOX].find({}).sort([("seq", 1)]).to_list()


def first_copies_in_seq_order(records: list[ConsumedRecord], outbox: list[Document]) -> None:
    """Every record reached the topic, and first copies came in ``seq`` order."""
    first: list[str] = []
    for record in records:
        if record.headers["ce_id"] not in first:
            first.append(record.headers["ce_id"])
    assert first == [doc["_id"] for doc in outbox]


async def fired(store: Store) -> int:
    return await store.db[FIRED].count_documents({})


async def attempts_per_item(store: Store) -> Counter[str]:
    return Counter([doc["item"] async for doc in store.db[ATTEMPTS].find({})])


# -- pods that stay alive ------------------------------------------------------------------------


async def test_two_schedulers_fire_each_due_item_once(pods: tuple[Store, Store]) -> None:
    first = pods[0]
    ids = await add_timers(first, 40, due=datetime.now(UTC))
    schedulers = []
    for n, store in enumerate(pods, start=1):
        scheduler = DueWorkScheduler.for_store(store, owner=f"pod-{n}")
        scheduler.add(timer_work(store, f"pod-{n}", batch_size=5, fire_seconds=0.02))
        schedulers.append(scheduler)
    await asyncio.gather(*(s.start() for s in schedulers))
    try:
        await eventually(lambda: fired(first), lambda n: n == len(ids), timeout=30)
    finally:
        await asyncio.gather(*(s.stop() for s in schedulers))

    attempts = await attempts_per_item(first)
    assert attempts == Counter(dict.fromkeys(ids, 1)), "an item was fired twice"
    by_pod = Counter([doc["pod"] async for doc in first.db[FIRED].find({})])
    assert set(by_pod) == {"pod-1", "pod-2"}, "both pods took a share"
    assert await first.db[TIMERS].count_documents({LEASE_OWNER: {"$ne": ""}}) == 0


async def test_a_commit_wakes_the_scheduler_before_its_poll(pods: tuple[Store, Store]) -> None:
    store, _ = pods
    scheduler = DueWorkScheduler.for_store(store, owner="pod-1")
    work = timer_work(store, "pod-1")
    scheduler.add(dataclasses.replace(work, poll_seconds=30.0))
    await scheduler.start()
    try:
        await asyncio.sleep(0.3)  # the first pass found nothing; the next poll is 30 s away
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        async with store.transaction() as uow:
            await uow.db[TIMERS].insert_one(
                {"_id": "soon", "state": "waiting", "due_at": due, **unleased()},
                session=uow.session,
            )
            uow.after_commit(lambda: store.notify_due([(work.name, due)]))
        await eventually(lambda: fired(store), lambda n: n == 1, timeout=5)
        assert datetime.now(UTC) >= due
    finally:
        await scheduler.stop()


async def test_two_relays_publish_each_record_once_in_order(
    pods: tuple[Store, Store], kafka_bootstrap: str, topic: str
) -> None:
    first = pods[0]
    producers = []
    relays = []
    for n, store in enumerate(pods, start=1):
        producer, publish = await kafka_publisher(kafka_bootstrap)
        producers.append(producer)
        relays.append(relay_for(store, publish, DueWorkScheduler.for_store(store, owner=f"p{n}")))
    for relay in relays:
        relay.start()
    try:
        outbox = await emit(first, topic, 30)  # committed while both relays run
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 30)
        await eventually(relays[0].pending_count, lambda n: n == 0)
    finally:
        for relay in relays:
            await relay.stop()
        for producer in producers:
            await producer.stop()

    assert Counter(r.headers["ce_id"] for r in records) == Counter(d["_id"] for d in outbox)
    first_copies_in_seq_order(records, outbox)
    assert sum(relay.published_total for relay in relays) == 30


# -- a pod killed with SIGKILL while it holds leases ----------------------------------------------


async def test_items_of_a_killed_pod_fire_once_after_its_leases_run_out(  # noqa: PLR0917
    pods: tuple[Store, Store],
    mongodb_uri: str,
    database_name: str,
    kafka_bootstrap: str,
    topic: str,
    repo_root: Path,
) -> None:
    store, _ = pods
    ids = await add_timers(store, 30, due=datetime.now(UTC) - timedelta(seconds=1))
    outbox = await emit(store, topic, 20)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.due_work_pod",
        mongodb_uri,
        database_name,
        kafka_bootstrap,
        "child",
        cwd=repo_root,
        env={**os.environ, "PYTHONPATH": str(repo_root)},
    )
    survivor = DueWorkScheduler.for_store(store, owner="survivor")
    producer = None
    try:
        # The child claimed a batch of timers (fired three, hangs in the fourth after its
        # effect) and the relay lease (published five records, hangs in the sixth).
        await eventually(
            lambda: store.db[ATTEMPTS].count_documents({"pod": "child"}),
            lambda n: n == 4,
            timeout=60,
        )
        await eventually(
            lambda: store.db[LEASES].find_one({"_id": OUTBOX_WORK, LEASE_OWNER: "child"}),
            lambda doc: doc is not None,
            timeout=30,
        )
        await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 5)

        # The survivor runs beside it: it fires every timer but the child's, and stands by
        # for the relay.
        survivor.add(timer_work(store, "survivor"))
        producer, publish = await kafka_publisher(kafka_bootstrap)
        relay = relay_for(store, publish, survivor)
        await survivor.start()
        held = await store.db[TIMERS].find({LEASE_OWNER: "child"}).to_list()
        assert len(held) == 10, "the child holds the leases of its whole batch"
        # Fired and completed but the three it fired before hanging (leases given back per batch).
        held_ids = {doc["_id"] for doc in held if doc["state"] == "waiting"}
        assert len(held_ids) == 7
        await eventually(lambda: fired(store), lambda n: n == len(ids) - 6, timeout=30)
        assert relay.published_total == 0, "only the lease holder relays"

        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), timeout=10) == -signal.SIGKILL

        await eventually(lambda: fired(store), lambda n: n == len(ids), timeout=30)
        await eventually(relay.pending_count, lambda n: n == 0, timeout=30)
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 25)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await survivor.stop()
        if producer is not None:
            await producer.stop()

    # Timers: each took effect once. The one the child fired but never completed was fired
    # again (idempotently); the others it held were fired by the survivor only once their
    # leases had run out.
    attempts = await attempts_per_item(store)
    assert set(attempts) == set(ids)
    assert {i for i, n in attempts.items() if n > 1} <= held_ids
    assert sum(attempts.values()) == len(ids) + 1
    survivor_attempts = {
        doc["item"]: doc["at_ms"]
        async for doc in store.db[ATTEMPTS].find(
            {"pod": "survivor", "item": {"$in": list(held_ids)}}
        )
    }
    assert set(survivor_attempts) == held_ids
    lease_ends = {doc["_id"]: doc[LEASE_UNTIL] for doc in held}
    assert all(at >= lease_ends[item] for item, at in survivor_attempts.items())
    assert await store.db[FIRED].count_documents({}) == len(ids)

    # Relay: every record published, first copies in seq order; the five the child published
    # before it died (never marked sent) were published again.
    copies = Counter(r.headers["ce_id"] for r in records)
    assert set(copies) == {doc["_id"] for doc in outbox}
    assert {i for i, n in copies.items() if n > 1} == {doc["_id"] for doc in outbox[:5]}
    first_copies_in_seq_order(records, outbox)
    assert relay.published_total == 20
