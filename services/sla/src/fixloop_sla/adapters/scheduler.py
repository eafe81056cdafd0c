"""The background scheduler that fires due clocks.

The store is the only source of truth: every pass asks it for running clocks whose next moment
(``next_fire_at``) has come, and fires each in its own transaction. A fresh process therefore
needs no rebuild step beyond its first pass, which catches up on everything that fell due while
no scheduler ran (flagged ``late``). Several schedulers on one store (pods, or an overlapping
restart) are safe: a clock's save is conditional on its version, so only one of them emits.

Future work: with partition-ownership aware scheduling each pod would only scan the clocks of
the Kafka partitions it owns and keep an in-memory timing wheel for the next horizon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fixloop_sla.app.clocks import SlaClocks

log = logging.getLogger(__name__)


class SchedulerNotRunningError(RuntimeError):
    """The scheduler's task is not running (readiness fails)."""


class ClockScheduler:
    def __init__(
        self,
        clocks: SlaClocks,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 200,
        metrics_refresh_seconds: float = 5.0,
    ) -> None:
        self._clocks = clocks
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._metrics_refresh_seconds = metrics_refresh_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self.passes = 0
        """Completed passes over the store (each one fired everything due at its time)."""
        self.fired_total = 0

    async def run_once(self) -> int:
        """Fire every clock due now, batch after batch; returns how many clocks fired."""
        total = 0
        while True:
            fired, seen = await self._clocks.fire_due(limit=self._batch_size)
            total += fired
            if seen < self._batch_size or fired == 0:
                return total

    async def _run(self, stopping: asyncio.Event) -> None:
        next_refresh = 0.0
        while not stopping.is_set():
            delay = self._poll_seconds
            try:
                self.fired_total += await self.run_once()
                if time.monotonic() >= next_refresh:
                    await self._clocks.refresh_counts()
                    next_refresh = time.monotonic() + self._metrics_refresh_seconds
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed; retrying")
                delay = min(5.0, self._poll_seconds * 10)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(self._stopping), name="sla-clock-scheduler")
        log.info("clock scheduler started", extra={"poll_seconds": self._poll_seconds})

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Let the current pass finish (each firing is all-or-nothing anyway), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        assert self._stopping is not None  # noqa: S101 - set together with the task
        self._stopping.set()
        try:
            await asyncio.wait_for(task, timeout=timeout)
        except TimeoutError:
            log.warning("clock scheduler did not stop in time; cancelled")
        log.info("clock scheduler stopped")

    async def clock_scheduler(self) -> None:
        """Readiness check (named after the method in /readyz): the scheduler task is alive."""
        if self._task is None or self._task.done():
            msg = "the clock scheduler is not running"
            raise SchedulerNotRunningError(msg)
