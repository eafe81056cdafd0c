"""A pod for the due-work tests: a timer kind and the outbox relay on one store.

Imported by ``test_due_work`` (the pods that stay alive) and run as a child process
(``python -m tests.integration.due_work_pod URI DATABASE BOOTSTRAP``), the pod that is killed with
SIGKILL: it claims due timers and the relay lease, fires a few, then hangs while holding its
leases (the fourth timer after recording it fired, the relay after publishing five records).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Mapping
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from pymongo.errors import DuplicateKeyError

from fixloop_shared.due_work import ClaimedItem, DueWork, DueWorkScheduler, epoch_ms, utc_now
from fixloop_shared.outbox import OutboxRelay, Publish
from fixloop_shared.store import Store, make_client

TIMERS = "timers"
FIRED = "timers_fired"
"""One document per timer that took effect (``_id`` = timer id: a second effect is refused)."""
ATTEMPTS = "timer_fire_attempts"
"""One document per call of ``fire`` (which pod, when)."""
TIMER_WORK = "test-timers"
LEASE = timedelta(seconds=2)


def timer_work(
    store: Store,
    pod: str,
    *,
    batch_size: int = 10,
    fire_seconds: float = 0.0,
    hang_on: int | None = None,
) -> DueWork:
    """An SLA-clock-like kind: timers due at ``due_at`` (a stored date), each fired once in effect.

    ``hang_on``: the n-th fire of this pod records its effect, then never returns (fired, not
    completed: its lease is kept until the pod dies and the lease runs out)."""
    fires = 0

    async def fire(item: ClaimedItem) -> None:
        nonlocal fires
        fires += 1
        await asyncio.sleep(fire_seconds)
        async with store.exclusive():
            await store.db[ATTEMPTS].insert_one(
                {"_id": uuid.uuid4().hex, "item": item.id, "pod": pod, "at_ms": epoch_ms(utc_now())}
            )
            with contextlib.suppress(DuplicateKeyError):  # idempotent: the effect happens once
                await store.db[FIRED].insert_one({"_id": item.id, "pod": pod})
        if hang_on is not None and fires >= hang_on:
            await asyncio.Event().wait()
        async with store.exclusive():
            await store.db[TIMERS].update_one({"_id": item.id}, {"$set": {"state": "fired"}})

    return DueWork(
        name=TIMER_WORK,
        collection=TIMERS,
        due=lambda now: {"state": "waiting", "due_at": {"$lte": now}},
        fire=fire,
        lease=LEASE,
        batch_size=batch_size,
        poll_seconds=0.1,
        order=(("due_at", 1),),
    )


async def kafka_publisher(
    bootstrap: str, *, hang_after: int | None = None
) -> tuple[AIOKafkaProducer, Publish]:
    """An outbox ``publish`` on a plain producer; with ``hang_after``, it never returns after
    that many records were acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sent = 0

    async def publish(topic: str, value: bytes, key: str, headers: Mapping[str, str]) -> None:
        nonlocal sent
        if hang_after is not None and sent >= hang_after:
            await asyncio.Event().wait()
        await producer.send_and_wait(
            topic, value, key=key.encode(), headers=[(k, v.encode()) for k, v in headers.items()]
        )
        sent += 1

    return producer, publish


def relay_for(store: Store, publish: Publish, scheduler: DueWorkScheduler) -> OutboxRelay:
    return OutboxRelay(
        store,
        publish,
        poll_seconds=0.1,
        batch_size=50,
        lease_seconds=LEASE.total_seconds(),
        scheduler=scheduler,
    )


async def main(uri: str, database: str, bootstrap: str, owner: str) -> None:
    client = make_client(uri, app_name="fixloop-due-work-pod")
    store = Store(client, database, service="due-work-test")
    scheduler = DueWorkScheduler.for_store(store, owner=owner)
    scheduler.add(timer_work(store, "child", hang_on=4))
    _producer, publish = await kafka_publisher(bootstrap, hang_after=5)
    relay_for(store, publish, scheduler)
    await scheduler.start()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    uri, database, bootstrap, owner = sys.argv[1:5]
    asyncio.run(main(uri, database, bootstrap, owner))
