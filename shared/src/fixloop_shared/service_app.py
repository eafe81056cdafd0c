"""The life of one service process: come up when the broker and store do, stay honest, recover.

- **Start-up that waits.** A service whose broker or store is down at start stays alive
  (``/healthz`` answers) and unready, retrying with backoff; it becomes ready when they come
  back. On Kubernetes that is an unready pod, not a crash loop.
- **Honest readiness.** Ready only when the store and broker answer and every consumer holds its
  partitions and moves while records wait.
- **Recovery without a restart.** A watch notices a lost topic (broker restarted with empty
  storage, topic deleted), a consumer that holds no partition or makes no progress while records
  wait; it re-ensures the topics and restarts the consumers in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faststream.asgi import AsgiFastStream
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from fixloop_shared.bus import Bus, ensure_topics
from fixloop_shared.log_throttle import ThrottledLog
from fixloop_shared.settings import KafkaSettings

log = logging.getLogger(__name__)

REWIND_WAIT_SECONDS = 60.0
"""How long a consumer restarted after a broker lost its topics may take to get partitions."""

Step = Callable[[], Awaitable[None]]


@dataclass
class PartitionProgress:
    position: int
    since: float


@dataclass
class ConsumerWatch:
    """Looks after the consumers of one service: topics present, partitions held, records moving.

    ``check`` is a readiness check; ``run`` is the watch loop that repairs what it can.
    """

    bus: Bus
    topics: Sequence[str]
    interval_seconds: float = 5.0
    stall_seconds: float = 60.0
    unassigned_grace_seconds: float = 30.0
    stop_grace_seconds: float = 5.0
    problem: str | None = None
    restarts: int = 0
    _progress: dict[tuple[str, int], PartitionProgress] = field(default_factory=dict)
    _unassigned_since: float | None = None
    _rewinds: set[asyncio.Task[None]] = field(default_factory=set)
    _complaints: ThrottledLog = field(default_factory=lambda: ThrottledLog(log, 60.0))

    @property
    def settings(self) -> KafkaSettings:
        return self.bus.settings

    def _subscribers(self) -> list[Any]:
        return list(self.bus.broker.subscribers)

    async def consumers(self) -> None:
        """Readiness: every consumer holds partitions and none is stalled."""
        if self.problem:
            raise ConsumersNotReadyError(self.problem)
        for sub in self._subscribers():
            consumer = getattr(sub, "consumer", None)
            if consumer is None or not consumer.assignment():
                msg = "a consumer holds no partition yet (joining its group)"
                raise ConsumersNotReadyError(msg)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.inspect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the watch reports and carries on
                self.problem = f"consumer watch failing: {type(exc).__name__}: {exc}"[:300]
                self._complaints.warning(
                    "watch", "consumer watch failed", extra={"error": repr(exc)}
                )

    async def inspect(self) -> None:
        """One look: repair a lost topic or a stuck consumer, or clear the problem."""
        missing = await self._missing_topics()
        if missing:
            # A broker that restarted empty (or a deleted topic): create the topics again, and
            # move the consumers to the beginning of every partition. Their positions, and
            # offsets committed since by batches read before the loss, point into the old logs:
            # kept, they would skip the first records of the new ones.
            self.problem = f"topics were missing on the broker: {', '.join(sorted(missing))}"
            log.warning("topics missing; creating them again", extra={"topics": sorted(missing)})
            await ensure_topics(self.settings, self.topics)
            self.bus.topics_lost_at = time.monotonic()
            self._rewind_all()
            self._unassigned_since = time.monotonic()
            return
        now = time.monotonic()
        assigned = [
            c for s in self._subscribers() if (c := getattr(s, "consumer", None)) is not None
        ]
        if not assigned or any(not c.assignment() for c in assigned):
            self._unassigned_since = self._unassigned_since or now
            if now - self._unassigned_since >= self.unassigned_grace_seconds:
                self.problem = (
                    f"a consumer has held no partition for {now - self._unassigned_since:.0f}s"
                )
                await self.restart_consumers(ensure=True)
                self._unassigned_since = None
            return
        self._unassigned_since = None
        stalled = await self._stalled(assigned, now)
        if stalled:
            self.problem = stalled
            self._complaints.warning(
                "stalled", "consumer stalled; restarting it", extra={"problem": stalled}
            )
            await self.restart_consumers(ensure=True)
            return
        self.problem = None

    async def _missing_topics(self) -> set[str]:
        admin = AIOKafkaAdminClient(
            **self.settings.client_options(),
            client_id="fixloop-watch",
            request_timeout_ms=5000,
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
        finally:
            await admin.close()
        return {t for t in self.topics if t not in existing}

    async def _stalled(self, consumers: Sequence[Any], now: float) -> str | None:
        """A consumer is stalled when records wait on its partitions and none of them has
        moved for ``stall_seconds``. A busy consumer moving on some partitions is not: under
        load a partition may wait its turn, and a restart would only cost a rebalance."""
        seen: set[tuple[str, int]] = set()
        for consumer in consumers:
            waiting: list[str] = []
            last_move = 0.0
            for tp in consumer.assignment():
                where = (tp.topic, tp.partition)
                seen.add(where)
                highwater = consumer.highwater(tp)
                try:
                    position = await consumer.position(tp)
                except Exception:  # noqa: BLE001 - no position yet is not a stall
                    position = None
                if position is None:
                    continue
                last = self._progress.get(where)
                if last is None or last.position != position:
                    last = self._progress[where] = PartitionProgress(position, now)
                last_move = max(last_move, last.since)
                if highwater is not None and highwater > position:
                    waiting.append(
                        f"{tp.topic}[{tp.partition}] at {position}, {highwater - position} waiting"
                    )
            if waiting and last_move and now - last_move >= self.stall_seconds:
                return (
                    f"no partition has moved for {now - last_move:.0f}s while records wait: "
                    + "; ".join(waiting[:5])
                )
        for gone in set(self._progress) - seen:
            del self._progress[gone]
        return None

    async def restart_consumers(self, *, ensure: bool) -> None:
        """Stop every consumer, re-ensure the topics, start them again (they rejoin the group)."""
        subscribers = self._subscribers()
        await asyncio.gather(*(self._stop(sub) for sub in subscribers))
        if ensure:
            await ensure_topics(self.settings, self.topics)
        await asyncio.gather(*(sub.start() for sub in subscribers))
        self.restarts += 1
        self._progress.clear()
        log.warning("consumers restarted", extra={"restarts": self.restarts})

    def _rewind_all(self) -> None:
        """Move every consumer to the beginning of its partitions (in the background, once each
        holds them again); records applied already are absorbed by the idempotent consumers."""
        for sub in self._subscribers():
            consumer = getattr(sub, "consumer", None)
            if consumer is not None:
                task = asyncio.create_task(self._rewind(consumer))
                self._rewinds.add(task)
                task.add_done_callback(self._rewinds.discard)

    async def _rewind(self, consumer: Any) -> None:
        """Once ``consumer`` holds its partitions, move it to their beginning."""
        deadline = time.monotonic() + REWIND_WAIT_SECONDS
        while not consumer.assignment():
            if time.monotonic() > deadline:
                log.warning("a restarted consumer got no partitions to rewind")
                return
            await asyncio.sleep(0.2)
        partitions = sorted(consumer.assignment())
        try:
            await consumer.seek_to_beginning(*partitions)
        except Exception as exc:  # noqa: BLE001 - a consumer closed meanwhile needs no rewind
            log.warning("could not rewind a consumer", extra={"error": repr(exc)})
            return
        log.warning(
            "consumer rewound to the beginning after the broker lost its topics",
            extra={"partitions": [f"{tp.topic}/{tp.partition}" for tp in partitions]},
        )

    async def _stop(self, sub: Any) -> None:
        # A handler stuck on a commit to a broker that forgot the group never finishes: give the
        # in-flight record a few seconds, then close the client underneath it. The record was not
        # committed, so it is delivered again (and absorbed by the idempotent consumer).
        consumer = getattr(sub, "consumer", None)
        try:
            await asyncio.wait_for(sub.stop(), timeout=self.stop_grace_seconds)
        except Exception as exc:  # noqa: BLE001 - a stop that fails still ends in a closed client
            log.info("consumer did not stop in time; closing it", extra={"error": repr(exc)})
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=self.stop_grace_seconds)
        sub.consumer = None


class ConsumersNotReadyError(RuntimeError):
    """Readiness: the service's consumers cannot take records right now."""


class ServiceApp(AsgiFastStream):
    """A FastStream ASGI app whose start-up waits for the broker and store instead of failing.

    ``start()`` retries the start-up steps with backoff until they all succeed. Served by uvicorn
    (``background_start``), start-up returns at once and the retries run in the background, so
    ``/healthz`` answers and ``/readyz`` says what the service is waiting for.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        steps: Sequence[tuple[str, Step]],
        after_up: Sequence[Step],
        before_down: Sequence[Step],
        watch: ConsumerWatch,
        **kwargs: Any,
    ) -> None:
        super().__init__(bus.broker, **kwargs)
        self._steps = list(steps)
        self._after_up = list(after_up)
        self._before_down = list(before_down)
        self.watch = watch
        self.background_start = False
        self.waiting_for: str | None = "start-up has not begun"
        self._done: set[str] = set()
        self._starter: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._complaints = ThrottledLog(log, 30.0)

    @property
    def up(self) -> bool:
        return self.waiting_for is None

    async def _start_broker(self) -> None:
        # FastStream calls this from start() and from the ASGI lifespan, after its own hooks.
        if self.background_start:
            self._starter = asyncio.create_task(self._come_up(), name="fixloop-start-up")
            return
        await self._come_up()

    async def _come_up(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.5, max=15),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                for name, step in self._steps:
                    if name in self._done:
                        continue
                    self.waiting_for = f"starting: {name}"
                    try:
                        await step()
                    except Exception as exc:
                        self.waiting_for = f"starting: {name} failed: {type(exc).__name__}"
                        self._complaints.warning(
                            name,
                            "start-up step failed; retrying",
                            extra={"step": name, "error": repr(exc)[:300]},
                        )
                        raise
                    self._done.add(name)
        for hook in self._after_up:
            await hook()
        self._watcher = asyncio.create_task(self.watch.run(), name="fixloop-consumer-watch")
        self.waiting_for = None
        self.running = True

    async def stop(self) -> None:
        for task in (self._starter, self._watcher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.broker is not None:
            try:
                await self.broker.stop()
            except Exception:
                log.exception("stopping the consumers failed")
        for hook in self._before_down:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        self.running = False

    async def readiness(self) -> None:
        if self.waiting_for is not None:
            raise ConsumersNotReadyError(self.waiting_for)
