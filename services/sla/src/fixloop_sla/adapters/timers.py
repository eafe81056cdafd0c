"""The timers of the clocks a pod owns: an in-memory heap per process, fed from the store.

Ownership follows Kafka: a pod owns the orders whose events come on the partitions its member of
the consumer group is assigned (each order's partition is stored with it). On assignment it reads
from the store the orders of those partitions due within the horizon (``due_orders`` index:
partition, next due) and their clock gauges; on revocation it drops them, after any batch in
flight has finished. No two pods therefore fire the same order's clocks, and none reads another's.

The heap holds ``(due ms, order)`` for the orders due before ``loaded_until``; later ones stay in
the store and are read as the horizon moves on. Entries are never removed from the heap: an entry
whose moment is no longer the order's (a newer one was scheduled, or the order was dropped) is
skipped when it comes up. Due orders are settled in batches, one transaction each; a batch that
fails is tried again a second later.

For a minute after taking over partitions, the orders written there since shortly before the
takeover are read again every two seconds: the previous owner may still have been committing a
batch when it let go, and its timers for what it wrote are gone with the partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)

RETRY_AFTER_MS = 1_000
RECONCILE_FOR_MS = 60_000
"""After taking over partitions, how long the orders written there are looked at again."""
RECONCILE_EVERY_MS = 2_000
RECONCILE_OVERLAP_MS = 30_000
"""How far before the takeover writes are looked for (a previous owner finishing its work)."""


class DueIndex(Protocol):
    async def due(
        self, partitions: Iterable[int], before_ms: int, since_ms: int | None = None
    ) -> list[tuple[str, int, int]]: ...

    async def changed(
        self, partitions: Iterable[int], since_ms: int
    ) -> list[tuple[str, int, int]]: ...

    async def gauges(self, partitions: Iterable[int]) -> dict[int, Mapping[str, int]]: ...


class TimerObserver(Protocol):
    def fired(self, lags_seconds: Sequence[float]) -> None: ...

    def ownership(self, scheduled: int, partitions: int) -> None: ...

    def partitions_loaded(self, gauges: Mapping[int, Mapping[str, int]]) -> None: ...

    def partitions_dropped(self, partitions: Iterable[int]) -> None: ...


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class ClockTimers:
    """See the module. ``topic`` is the topic whose partitions decide ownership."""

    def __init__(
        self,
        *,
        index: DueIndex,
        settle: Callable[[Sequence[str]], Awaitable[object]],
        topic: str,
        horizon: timedelta,
        batch_size: int,
        now: Callable[[], datetime],
        observer: TimerObserver,
        read_ahead: Callable[[Sequence[str]], Awaitable[object]] | None = None,
        read_ahead_window: timedelta = timedelta(seconds=30),
    ) -> None:
        self._index = index
        self._read_ahead = read_ahead
        self._ahead_ms = int(read_ahead_window.total_seconds() * 1000)
        self._ahead_heap: list[tuple[int, str]] = []
        """The same entries as the heap, popped as they come within the read-ahead window."""
        self._settle = settle
        self._topic = topic
        self._horizon_ms = int(horizon.total_seconds() * 1000)
        self._batch_size = batch_size
        self._now = now
        self._observer = observer
        self._owned: set[int] = set()
        self._heap: list[tuple[int, str]] = []
        self._scheduled: dict[str, tuple[int, int | None]] = {}
        self._loaded_until = _ms(now()) + self._horizon_ms
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._waiting_until: int | None = None
        self._reconcile: dict[int, int] = {}
        """Partitions taken over recently -> since when their writes are looked at again."""
        self._reconcile_until = 0
        self._reconciled_at = 0
        self._unloaded: set[int] = set()
        self._retry_load_at = 0
        self.assignments = 0

    # -- ownership --------------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    @property
    def scheduled(self) -> int:
        return len(self._scheduled)

    def owns(self, partition: int | None) -> bool:
        return partition is None or partition in self._owned

    @property
    def unloaded(self) -> frozenset[int]:
        """Partitions owned whose clocks could not be read yet (tried again every second)."""
        return frozenset(self._unloaded)

    async def partitions_assigned(self, partitions: frozenset[tuple[str, int]]) -> None:
        mine = {p for topic, p in partitions if topic == self._topic}
        async with self._lock:
            self._owned |= mine
            self._unloaded |= mine
            await self._load_unloaded()
            self.assignments += 1
            self._report()
        log.info(
            "clock partitions assigned",
            extra={"partitions": sorted(mine), "scheduled": len(self._scheduled)},
        )

    async def _load_unloaded(self) -> None:
        """Read the clocks of the partitions taken over and not read yet; on failure they stay
        unread (the service is unready meanwhile) and are tried again by the loop."""
        pending = self._unloaded & self._owned
        self._unloaded = set(pending)
        if not pending:
            return
        self._retry_load_at = _ms(self._now()) + RETRY_AFTER_MS
        try:
            gauges = await self._index.gauges(pending)
            await self._load(pending, None, self._loaded_until)
        except Exception:  # tried again by the loop; the partitions stay unready meanwhile
            log.warning(
                "reading the clocks of taken-over partitions failed; trying again",
                exc_info=True,
                extra={"partitions": sorted(pending)},
            )
            return
        self._observer.partitions_loaded({p: gauges.get(p, {}) for p in pending})
        self._unloaded -= pending
        # A previous owner may still be committing work on these partitions: what it writes
        # from now on is read again for a while (its own timers are gone).
        now_ms = _ms(self._now())
        for partition in pending:
            self._reconcile[partition] = now_ms - RECONCILE_OVERLAP_MS
        self._reconcile_until = now_ms + RECONCILE_FOR_MS

    async def partitions_revoked(self, partitions: frozenset[tuple[str, int]]) -> None:
        gone = {p for topic, p in partitions if topic == self._topic}
        if not gone:
            return
        async with self._lock:  # a batch in flight finishes first
            self._owned -= gone
            self._unloaded -= gone
            for work_order_id, (_, partition) in list(self._scheduled.items()):
                if partition in gone:
                    del self._scheduled[work_order_id]
            self._observer.partitions_dropped(gone)
            self._report()
        log.info("clock partitions revoked", extra={"partitions": sorted(gone)})

    async def _load(self, partitions: set[int], since_ms: int | None, before_ms: int) -> None:
        for work_order_id, due_ms, partition in await self._index.due(
            partitions, before_ms, since_ms
        ):
            if partition in self._owned:
                self._push(work_order_id, partition, due_ms)

    # -- scheduling -------------------------------------------------------------------------

    def schedule(self, work_order_id: str, partition: int | None, due: datetime | None) -> None:
        """Look at the order at ``due`` (None: nothing pending) if this pod owns it."""
        if due is None or not self.owns(partition):
            self._scheduled.pop(work_order_id, None)
            return
        due_ms = _ms(due)
        if due_ms >= self._loaded_until:
            self._scheduled.pop(work_order_id, None)  # read again as the horizon moves on
            return
        self._push(work_order_id, partition, due_ms)

    def _push(self, work_order_id: str, partition: int | None, due_ms: int) -> None:
        if self._scheduled.get(work_order_id, (None, None))[0] == due_ms:
            return
        self._scheduled[work_order_id] = (due_ms, partition)
        entry = (due_ms, work_order_id)
        heapq.heappush(self._heap, entry)
        if self._read_ahead is not None:
            heapq.heappush(self._ahead_heap, entry)
        if self._waiting_until is None or due_ms < self._waiting_until:
            self._wake.set()

    def _pop_due(self, now_ms: int) -> list[tuple[str, int | None]]:
        batch: list[tuple[str, int | None]] = []
        lags: list[float] = []
        while self._heap and self._heap[0][0] <= now_ms and len(batch) < self._batch_size:
            due_ms, work_order_id = heapq.heappop(self._heap)
            current = self._scheduled.get(work_order_id)
            if current is None or current[0] != due_ms:
                continue  # stale: rescheduled or dropped since
            del self._scheduled[work_order_id]
            batch.append((work_order_id, current[1]))
            lags.append((now_ms - due_ms) / 1000)
        if lags:
            self._observer.fired(lags)
        return batch

    def _next_wait_ms(self, now_ms: int) -> int:
        refresh_at = self._loaded_until - self._horizon_ms // 2
        nearest = refresh_at
        if self._reconcile:
            nearest = min(nearest, self._reconciled_at + RECONCILE_EVERY_MS)
        if self._unloaded:
            nearest = min(nearest, self._retry_load_at)
        while self._heap:
            due_ms, work_order_id = self._heap[0]
            current = self._scheduled.get(work_order_id)
            if current is None or current[0] != due_ms:
                heapq.heappop(self._heap)
                continue
            nearest = min(nearest, due_ms)
            break
        return max(0, nearest - now_ms)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Settle due orders as they come due, until cancelled."""
        while True:
            now_ms = _ms(self._now())
            if now_ms >= self._loaded_until - self._horizon_ms // 2:
                await self._advance(now_ms)
            if self._unloaded and now_ms >= self._retry_load_at:
                async with self._lock:
                    await self._load_unloaded()
                    self._report()
            if self._reconcile and now_ms >= self._reconciled_at + RECONCILE_EVERY_MS:
                await self._reconcile_takeover(now_ms)
            batch = self._pop_due(now_ms)
            if batch:
                await self._fire(batch, now_ms)
                continue
            wait_ms = self._next_wait_ms(now_ms)
            self._waiting_until = now_ms + wait_ms
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_ms / 1000)
            self._waiting_until = None

    async def read_ahead(self) -> None:
        """Until cancelled: read the orders that come due within the read-ahead window before
        they do (the store's reads off the timers' path when thousands are due at once)."""
        if self._read_ahead is None:
            return
        while True:
            horizon = _ms(self._now()) + self._ahead_ms
            coming: list[str] = []
            while self._ahead_heap and self._ahead_heap[0][0] <= horizon:
                due_ms, work_order_id = heapq.heappop(self._ahead_heap)
                current = self._scheduled.get(work_order_id)
                if current is not None and current[0] == due_ms:
                    coming.append(work_order_id)
            for start in range(0, len(coming), self._batch_size):
                try:
                    await self._read_ahead(coming[start : start + self._batch_size])
                except asyncio.CancelledError:
                    raise
                except Exception:  # the timers read them when they are due
                    log.info("reading due clocks ahead failed", exc_info=True)
            await asyncio.sleep(0.5)

    async def _advance(self, now_ms: int) -> None:
        since = self._loaded_until
        self._loaded_until = now_ms + self._horizon_ms  # first: a schedule() meanwhile is kept
        async with self._lock:
            if self._owned:
                try:
                    await self._load(set(self._owned), since, self._loaded_until)
                except Exception:
                    log.exception("reading the clocks due next failed; trying again soon")
                    self._loaded_until = since
                    await asyncio.sleep(1)
            self._report()

    async def _reconcile_takeover(self, now_ms: int) -> None:
        self._reconciled_at = now_ms
        async with self._lock:
            partitions = {p: since for p, since in self._reconcile.items() if p in self._owned}
            if partitions:
                try:
                    found = await self._index.changed(partitions, min(partitions.values()))
                except Exception:  # tried again on the next round
                    log.warning("re-reading taken-over clocks failed", exc_info=True)
                    return
                for work_order_id, due_ms, partition in found:
                    if partition in self._owned and due_ms < self._loaded_until:
                        self._push(work_order_id, partition, due_ms)
            if now_ms >= self._reconcile_until:
                self._reconcile.clear()

    async def _fire(self, batch: list[tuple[str, int | None]], now_ms: int) -> None:
        async with self._lock:
            owned = [(i, p) for i, p in batch if self.owns(p)]  # a rebalance may have come first
            try:
                await self._settle([i for i, _ in owned])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "settling due clocks failed; trying again in a second",
                    exc_info=True,
                    extra={"orders": len(owned)},
                )
                for work_order_id, partition in owned:
                    if work_order_id not in self._scheduled:
                        self._push(work_order_id, partition, now_ms + RETRY_AFTER_MS)
            self._report()

    def _report(self) -> None:
        self._observer.ownership(len(self._scheduled), len(self._owned - self._unloaded))


__all__ = ["ClockTimers", "DueIndex", "TimerObserver"]
