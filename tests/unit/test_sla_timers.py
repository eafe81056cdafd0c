"""The sla service's timers: which orders a pod fires, when, and what it reads from its index.

The store's due index is a dictionary here (the timers' own logic is under test; the MongoDB
index behind it is exercised by the integration tests), the time is the real clock, and moments
are a few hundred milliseconds ahead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fixloop_sla.adapters.timers import ClockTimers

TOPIC = "fixloop.workorders.events.v1"


def now_ms() -> int:
    return int(time.time() * 1000)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class Index:
    """Orders as the store holds them: next due moment, partition, last write."""

    orders: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    reads: list[tuple[frozenset[int], int | None, int]] = field(default_factory=list)

    def put(self, work_order_id: str, due_ms: int, partition: int) -> None:
        self.orders[work_order_id] = (due_ms, partition, now_ms())

    async def due(
        self, partitions: Iterable[int], before_ms: int, since_ms: int | None = None
    ) -> list[tuple[str, int, int]]:
        wanted = frozenset(partitions)
        self.reads.append((wanted, since_ms, before_ms))
        return [
            (i, due, p)
            for i, (due, p, _) in self.orders.items()
            if p in wanted and (since_ms or 0) <= due < before_ms
        ]

    async def changed(self, partitions: Iterable[int], since_ms: int) -> list[tuple[str, int, int]]:
        wanted = set(partitions)
        return [
            (i, due, p)
            for i, (due, p, written) in self.orders.items()
            if p in wanted and written >= since_ms
        ]

    async def gauges(self, partitions: Iterable[int]) -> dict[int, Mapping[str, int]]:
        return {}


class Observer:
    def __init__(self) -> None:
        self.lags: list[float] = []

    def fired(self, lags_seconds: Sequence[float]) -> None:
        self.lags.extend(lags_seconds)

    def ownership(self, scheduled: int, partitions: int) -> None:
        return None

    def partitions_loaded(self, gauges: Mapping[int, Mapping[str, int]]) -> None:
        return None

    def partitions_dropped(self, partitions: Iterable[int]) -> None:
        return None


@dataclass
class Pod:
    timers: ClockTimers
    index: Index
    fired: list[tuple[str, int]]


@asynccontextmanager
async def pod(index: Index, *, horizon_ms: int = 60_000) -> AsyncIterator[Pod]:
    fired: list[tuple[str, int]] = []

    async def settle(work_order_ids: Sequence[str]) -> object:
        for work_order_id in work_order_ids:
            fired.append((work_order_id, now_ms()))
            _, partition, _ = index.orders[work_order_id]
            index.orders[work_order_id] = (9 * 10**15, partition, now_ms())  # nothing pending
            timers.schedule(work_order_id, partition, None)
        return None

    timers = ClockTimers(
        index=index,
        settle=settle,
        topic=TOPIC,
        horizon=timedelta(milliseconds=horizon_ms),
        batch_size=100,
        now=lambda: datetime.now(UTC),
        observer=Observer(),
    )
    task = asyncio.create_task(timers.run())
    try:
        yield Pod(timers, index, fired)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def partitions(*numbers: int) -> frozenset[tuple[str, int]]:
    return frozenset((TOPIC, n) for n in numbers)


async def test_a_pod_fires_the_orders_of_its_own_partitions_once_at_their_moment() -> None:
    index = Index()
    soon = now_ms() + 300
    index.put("wo-mine", soon, 0)
    index.put("wo-theirs", soon, 1)
    index.put("wo-later", soon + 200, 0)
    async with pod(index) as p:
        await p.timers.partitions_assigned(partitions(0))
        await p.timers.partitions_assigned(frozenset({("another.topic", 1)}))
        assert p.timers.owned == frozenset({0})
        await asyncio.sleep(0.8)
    assert [order for order, _ in p.fired] == ["wo-mine", "wo-later"]
    assert all(fired_at >= soon for _, fired_at in p.fired)
    # Only its own partitions were read.
    assert {wanted for wanted, _, _ in index.reads} == {frozenset({0})}


async def test_revoked_partitions_are_not_fired_and_a_later_moment_replaces_an_earlier() -> None:
    index = Index()
    soon = now_ms() + 300
    index.put("wo-p0", soon, 0)
    index.put("wo-p1", soon, 1)
    async with pod(index) as p:
        await p.timers.partitions_assigned(partitions(0, 1))
        # Rescheduled later by an event (written, then scheduled): the first moment is stale.
        index.put("wo-p0", soon + 400, 0)
        p.timers.schedule("wo-p0", 0, at(soon + 400))
        await p.timers.partitions_revoked(partitions(1))
        await asyncio.sleep(0.5)
        assert p.fired == []
        await asyncio.sleep(0.5)
    assert [order for order, _ in p.fired] == ["wo-p0"]
    assert p.fired[0][1] >= soon + 400


async def test_orders_beyond_the_horizon_are_read_as_it_moves_on() -> None:
    index = Index()
    start = now_ms()
    index.put("wo-far", start + 900, 0)
    async with pod(index, horizon_ms=400) as p:
        await p.timers.partitions_assigned(partitions(0))
        assert p.timers.scheduled == 0  # beyond the horizon: left in the store
        # Scheduled beyond the horizon by an event: not held either.
        p.timers.schedule("wo-event", 0, at(start + 950))
        index.put("wo-event", start + 950, 0)
        assert p.timers.scheduled == 0
        await asyncio.sleep(1.4)
    assert [order for order, _ in p.fired] == ["wo-far", "wo-event"]
    assert any(since is not None for _, since, _ in index.reads)  # the horizon moved on


async def test_writes_of_a_previous_owner_after_the_takeover_are_read_again() -> None:
    index = Index()
    async with pod(index) as p:
        await p.timers.partitions_assigned(partitions(2))
        # The previous owner commits a batch after the takeover read: this pod was not told.
        index.put("wo-late-commit", now_ms() + 200, 2)
        await asyncio.sleep(2.8)
    assert [order for order, _ in p.fired] == ["wo-late-commit"]


@dataclass
class FailingIndex(Index):
    """A store that fails the first reads (down for a moment, or timing out)."""

    failures: int = 2

    async def due(
        self, partitions: Iterable[int], before_ms: int, since_ms: int | None = None
    ) -> list[tuple[str, int, int]]:
        if self.failures > 0:
            self.failures -= 1
            msg = "store not answering"
            raise ConnectionError(msg)
        return await super().due(partitions, before_ms, since_ms)


async def test_partitions_whose_clocks_cannot_be_read_stay_unready_and_are_read_again() -> None:
    index = FailingIndex()
    index.put("wo-waiting", now_ms() + 200, 0)
    async with pod(index) as p:
        await p.timers.partitions_assigned(partitions(0))
        assert p.timers.owned == frozenset({0})
        assert p.timers.unloaded == frozenset({0})  # not ready: its clocks are not read
        await asyncio.sleep(2.6)
        assert p.timers.unloaded == frozenset()
    assert [order for order, _ in p.fired] == ["wo-waiting"]
    assert index.failures == 0
