"""What other pods of the orders service changed, from the topics: keeps the read cache true.

Every orders pod reads, without a consumer group (each pod sees every record), the work order
events topic and the topics whose events the service writes into timelines. A lifecycle step's
record (published after its commit) changes that order's scopes of the
:class:`~fixloop_orders.adapters.read_cache.ReadCache` at once; another service's record about an
order makes the order's scopes unsettled for a moment, because the pod that consumes it writes the
timeline a little later (and an offer's record, the contractors' lists too).

The feed starts once the service's own consumers are up. The cache is live only while the feed
follows: from the first fetch after it has placed itself at the end of every partition, until a
fetch fails or none has completed for ``stale_after_seconds``.
A feed that loses track (an error, a broker that lost its topics) makes the cache forget
everything and starts again from the end of the topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from fixloop_orders.adapters.read_cache import (
    CONTRACTORS_SCOPE,
    ReadCache,
    order_scope,
    order_scopes,
)
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

ASSIGNMENT_EVENT_PREFIX = "fixloop.assignment."
RETRY_SECONDS = 1.0
FETCH_MAX_WAIT_MS = 500
"""The feed's fetches wait up to this long for records: a change reaches the other pods within
about this much, and an idle feed asks the broker twice a second, not twenty times."""
STOP_SECONDS = 5.0


def _header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


def _work_order_of(record: Any) -> str | None:
    """The work order another service's event is about (its payload's ``work_order_id``)."""
    try:
        payload = json.loads(record.value or b"null")
    except ValueError:
        return None
    value = payload.get("work_order_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and value else None


class OrderChangeFeed:
    """Follows the topics and tells ``cache`` what changed (see the module)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        cache: ReadCache[Any],
        *,
        own_topic: str = Topic.WORKORDERS_EVENTS,
        other_topics: Sequence[str] = (),
        stale_after_seconds: float = 5.0,
        after: Callable[[], bool] | None = None,
    ) -> None:
        self._kafka = kafka
        self._cache = cache
        self._own = own_topic
        self._others = tuple(other_topics)
        self._stale_after = stale_after_seconds
        self._after = after
        """The feed starts following once this holds (the service's own consumers are up), so
        that its fetches never compete with a consumer group's join."""
        self._task: asyncio.Task[None] | None = None
        self._last_fetch = 0.0
        self.records = 0

    async def start(self) -> None:
        if self._cache.enabled and self._cache.followed and self._task is None:
            self._task = asyncio.create_task(self._follow(), name="orders-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def apply(self, record: Any) -> None:
        """One record's changes to the cache."""
        self.records += 1
        if record.topic == self._own:
            tenant = _header(record.headers, "ce_tenant")
            key = (record.key or b"").decode(errors="replace")
            if tenant and key:
                self._cache.changed(order_scopes(tenant, key))
            else:
                self._cache.changed((CONTRACTORS_SCOPE,))
            return
        work_order_id = _work_order_of(record)
        scopes = [] if work_order_id is None else [order_scope(work_order_id)]
        if (_header(record.headers, "ce_type") or "").startswith(ASSIGNMENT_EVENT_PREFIX):
            scopes.append(CONTRACTORS_SCOPE)
        if scopes:
            self._cache.changed(scopes, settling=True)

    async def _follow(self) -> None:
        while self._after is not None and not self._after():  # noqa: ASYNC110 - a flag of the app
            await asyncio.sleep(0.2)
        watchdog = asyncio.create_task(self._watch_staleness(), name="orders-change-feed-watch")
        try:
            while True:
                try:
                    await self._follow_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the feed restarts; reads use the store
                    self._cache.suspend()
                    log.warning(
                        "read cache off: the change feed failed, restarting it",
                        extra={"error": f"{type(exc).__name__}: {exc}"},
                    )
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _follow_once(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            # A position past the end means the broker lost its log: the new one from its start.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=max(self._kafka.fetch_max_wait_ms, FETCH_MAX_WAIT_MS),
            **self._kafka.client_options(),
        )
        await consumer.start()
        try:
            assigned = await self._partitions(consumer)
            ends = await consumer.end_offsets(assigned)
            for tp in assigned:
                consumer.seek(tp, ends[tp])
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in batch.values():
                    for record in records:
                        self.apply(record)
                self._last_fetch = time.monotonic()
                if not self._cache.live:
                    self._cache.resume()
                    log.info("read cache on: the change feed follows the topics")
        finally:
            self._cache.suspend()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), STOP_SECONDS)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        assigned: list[TopicPartition] = []
        for topic in (self._own, *self._others):
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                msg = f"topic {topic} has no partitions yet"
                raise RuntimeError(msg)
            assigned.extend(TopicPartition(topic, p) for p in sorted(partitions))
        consumer.assign(assigned)
        return assigned

    async def _watch_staleness(self) -> None:
        while True:
            await asyncio.sleep(self._stale_after / 2)
            if self._cache.live and time.monotonic() - self._last_fetch > self._stale_after:
                self._cache.suspend()
                log.warning(
                    "read cache off: the change feed has not fetched for "
                    f"{self._stale_after:g} s (broker unreachable?)"
                )


__all__ = ["OrderChangeFeed"]
