"""Milestone clocks in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The same promises as the MongoDB repository: one clock per id, a save only if the stored clock is
still at the version it was loaded at (else
:class:`~fixloop_sla.app.clocks.ConcurrentClockChangeError`), stops that arrived before their
clock kept by clock id. Due clocks are found in the committed state
(:meth:`MemoryClockRepository.due`), so :meth:`~fixloop_sla.app.clocks.SlaClocks.fire_due` fires
them without the due-work scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fixloop_shared.contracts import Milestone
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork
from fixloop_sla.adapters.mongo import CLOCK_STOPS, CLOCKS
from fixloop_sla.app.clocks import ConcurrentClockChangeError
from fixloop_sla.domain import ClockState, ClockStop, MilestoneClock, Transition
from fixloop_sla.metrics import ClockCounts


def _session(uow: UnitOfWork) -> MemoryState:
    if not isinstance(uow, MemoryUnitOfWork):
        msg = f"the in-memory repository was given {type(uow).__name__}"
        raise TypeError(msg)
    return uow.session


class MemoryClockRepository:
    """The :class:`~fixloop_sla.app.clocks.ClockRepository` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def load(self, uow: UnitOfWork, clock_ids: Sequence[str]) -> None:
        """Nothing to read ahead in memory."""

    async def get(self, uow: UnitOfWork, clock_id: str) -> MilestoneClock | None:
        doc = _session(uow).collection(CLOCKS).get(clock_id)
        return None if doc is None else doc["clock"]

    async def add(self, uow: UnitOfWork, clock: MilestoneClock) -> None:
        clocks = _session(uow).collection(CLOCKS)
        if clock.clock_id in clocks:
            msg = f"clock {clock.clock_id} was started concurrently"
            raise ConcurrentClockChangeError(msg)
        clocks[clock.clock_id] = {"clock": clock}

    async def update(self, uow: UnitOfWork, transition: Transition) -> None:
        before = transition.before
        clocks = _session(uow).collection(CLOCKS)
        stored = clocks.get(before.clock_id)
        if stored is None or stored["clock"].version != before.version:
            msg = f"clock {before.clock_id} changed since version {before.version}"
            raise ConcurrentClockChangeError(msg)
        clocks[before.clock_id] = {"clock": transition.after}

    async def get_stop(self, uow: UnitOfWork, clock_id: str) -> ClockStop | None:
        doc = _session(uow).collection(CLOCK_STOPS).get(clock_id)
        return None if doc is None else doc["stop"]

    async def add_stop(self, uow: UnitOfWork, stop: ClockStop) -> None:
        stops = _session(uow).collection(CLOCK_STOPS)
        if stop.clock_id in stops:
            msg = f"a stop for clock {stop.clock_id} was recorded concurrently"
            raise ConcurrentClockChangeError(msg)
        stops[stop.clock_id] = {"stop": stop}

    async def due(self, now: datetime, limit: int) -> list[str]:
        due = [
            (at, clock.clock_id)
            for clock in self.clocks()
            if (at := clock.next_fire_at) is not None and at <= now
        ]
        return [clock_id for _, clock_id in sorted(due)[:limit]]

    async def counts(self) -> list[ClockCounts]:
        by_milestone: dict[Milestone, list[MilestoneClock]] = {m: [] for m in Milestone}
        for clock in self.clocks():
            by_milestone[clock.milestone].append(clock)
        result: list[ClockCounts] = []
        for milestone, mine in by_milestone.items():
            running = [c for c in mine if c.state is ClockState.RUNNING]
            result.append(
                ClockCounts(
                    milestone=milestone,
                    running=len(running),
                    warned=sum(1 for c in running if c.warned),
                    breached=sum(
                        1 for c in mine if c.state is ClockState.BREACHED and not c.is_stopped
                    ),
                )
            )
        return result

    def clocks(self) -> list[MilestoneClock]:
        """Every committed clock."""
        return [doc["clock"] for doc in self._store.state.collection(CLOCKS).values()]

    def clock(self, clock_id: str) -> MilestoneClock | None:
        """One committed clock."""
        doc = self._store.state.collection(CLOCKS).get(clock_id)
        return None if doc is None else doc["clock"]


__all__ = ["MemoryClockRepository"]
