"""MongoDB storage of milestone clocks and of stops that arrived before their clock.

``clocks``: one document per (work_order_id, milestone) (unique index), ``_id`` = clock id. The
document carries ``next_fire_at`` (the next moment the scheduler must look at it, also as
epoch milliseconds ``next_fire_ms`` for the due query) and a
``version`` that every change increments: a save is conditional on the version the clock was
loaded at, which is what makes firing at-most-once across restarts and pods.

A cancelled order's clocks are saved with state ``stopped`` (or ``breached`` and ``stopped``), a
``stop_reason`` and no ``next_fire_ms``, so the due query never finds them again: the stop is in
the store, not in any in-memory schedule.

``clock_stops``: a stop (e.g. an accepted assignment) whose clock did not exist yet, keyed by the
clock id it will have; the start applies it.

Filters are built from typed domain values only; booleans instead of null tests, because some
stores count ``{"field": None}`` differently from MongoDB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from fixloop_shared.contracts import Milestone
from fixloop_shared.due_work import epoch_ms, unleased
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Document, Store, database_of, equals
from fixloop_sla.app.clocks import ConcurrentClockChangeError
from fixloop_sla.domain import ClockState, ClockStop, MilestoneClock, Transition
from fixloop_sla.metrics import ClockCounts

CLOCKS = "clocks"
CLOCK_STOPS = "clock_stops"
CLOCK_WORK = "sla-clocks"
"""The due-work kind of the clocks (see ``fixloop_sla.adapters.scheduler``)."""


def due_clocks(now: datetime) -> dict[str, object]:
    """Running clocks with something due at ``now``.

    On ``next_fire_ms`` (epoch milliseconds) rather than the datetime: the embedded store
    compares datetimes in Python over every clock, numbers in SQLite through the index.
    """
    return {**equals({"state": ClockState.RUNNING.value}), "next_fire_ms": {"$lte": epoch_ms(now)}}


def clock_indexes() -> dict[str, Sequence[IndexModel]]:
    return {
        CLOCKS: [
            IndexModel(
                [("work_order_id", ASCENDING), ("milestone", ASCENDING)],
                unique=True,
                name="one_clock_per_milestone",
            ),
            IndexModel([("state", ASCENDING), ("next_fire_ms", ASCENDING)], name="due_clocks_ms"),
            IndexModel(
                [("milestone", ASCENDING), ("state", ASCENDING), ("stopped", ASCENDING)],
                name="clock_counts",
            ),
        ],
        CLOCK_STOPS: [
            IndexModel(
                [("work_order_id", ASCENDING), ("milestone", ASCENDING)],
                unique=True,
                name="one_stop_per_milestone",
            ),
        ],
    }


class _ClockDocument(BaseModel):
    """A stored clock, checked on the way out of the store."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    work_order_id: str
    milestone: Milestone
    tenant: str
    correlation_id: str
    started_at: AwareDatetime
    warn_at: AwareDatetime
    due_at: AwareDatetime
    target_seconds: float
    warning_before_seconds: float
    state: ClockState
    warned: bool
    warning_suppressed: bool
    breached: bool
    warned_at: AwareDatetime | None
    breached_at: AwareDatetime | None
    stopped_at: AwareDatetime | None
    stop_reason: str | None = None
    version: int

    def to_clock(self) -> MilestoneClock:
        return MilestoneClock(
            clock_id=self.id,
            work_order_id=self.work_order_id,
            milestone=self.milestone,
            tenant=self.tenant,
            correlation_id=self.correlation_id,
            started_at=self.started_at,
            warn_at=self.warn_at,
            due_at=self.due_at,
            target_seconds=self.target_seconds,
            warning_before_seconds=self.warning_before_seconds,
            state=self.state,
            warned=self.warned,
            warning_suppressed=self.warning_suppressed,
            breached=self.breached,
            warned_at=self.warned_at,
            breached_at=self.breached_at,
            stopped_at=self.stopped_at,
            stop_reason=self.stop_reason,
            version=self.version,
        )


class _StopDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    work_order_id: str
    milestone: Milestone
    tenant: str
    stopped_at: AwareDatetime
    event_id: str

    def to_stop(self) -> ClockStop:
        return ClockStop(
            work_order_id=self.work_order_id,
            milestone=self.milestone,
            tenant=self.tenant,
            stopped_at=self.stopped_at,
            event_id=self.event_id,
        )


def clock_document(clock: MilestoneClock) -> Document:
    """The whole stored form of a clock, with the derived fields its queries use."""
    return {
        "_id": clock.clock_id,
        "work_order_id": clock.work_order_id,
        "milestone": clock.milestone.value,
        "tenant": clock.tenant,
        "correlation_id": clock.correlation_id,
        "started_at": clock.started_at,
        "warn_at": clock.warn_at,
        "due_at": clock.due_at,
        "target_seconds": clock.target_seconds,
        "warning_before_seconds": clock.warning_before_seconds,
        "state": clock.state.value,
        "warned": clock.warned,
        "warning_suppressed": clock.warning_suppressed,
        "breached": clock.breached,
        "stopped": clock.is_stopped,
        "warned_at": clock.warned_at,
        "breached_at": clock.breached_at,
        "stopped_at": clock.stopped_at,
        "stop_reason": clock.stop_reason,
        "next_fire_at": clock.next_fire_at,
        "next_fire_ms": None if clock.next_fire_at is None else epoch_ms(clock.next_fire_at),
        "version": clock.version,
        "updated_at": datetime.now(UTC),
        # Every save gives back the due-work lease (the scheduler's claim of the clock).
        **unleased(),
    }


def clock_from_document(doc: Document) -> MilestoneClock:
    fields: dict[str, Any] = dict(doc)
    fields["id"] = fields.pop("_id")
    return _ClockDocument.model_validate(fields).to_clock()


_LOADED_CLOCKS = "clocks-loaded"
_LOADED_STOPS = "clock-stops-loaded"
"""``uow.memo`` keys: {clock id: clock or stop, None if there is none} read ahead for a batch."""


class MongoClockRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _wake_for(self, uow: UnitOfWork, clock: MilestoneClock) -> None:
        """Once committed, wake this process's scheduler for the clock's next moment."""
        at = clock.next_fire_at
        if clock.state is ClockState.RUNNING and at is not None:
            uow.after_commit(lambda: self._store.notify_due([(CLOCK_WORK, at)]))

    async def load(self, uow: UnitOfWork, clock_ids: Sequence[str]) -> None:
        ids = sorted(set(clock_ids))
        db = database_of(uow)
        clocks: dict[str, MilestoneClock | None] = dict.fromkeys(ids)
        for doc in await db[CLOCKS].find({"_id": {"$in": ids}}, session=uow.session).to_list():
            clocks[str(doc["_id"])] = clock_from_document(doc)
        stops: dict[str, ClockStop | None] = dict.fromkeys(ids)
        for doc in await db[CLOCK_STOPS].find({"_id": {"$in": ids}}, session=uow.session).to_list():
            stops[str(doc["_id"])] = _StopDocument.model_validate(doc).to_stop()
        uow.memo[_LOADED_CLOCKS] = clocks
        uow.memo[_LOADED_STOPS] = stops

    @staticmethod
    def _loaded(uow: UnitOfWork, key: str) -> dict[str, Any] | None:
        loaded = uow.memo.get(key)
        return loaded if isinstance(loaded, dict) else None

    async def get(self, uow: UnitOfWork, clock_id: str) -> MilestoneClock | None:
        loaded = self._loaded(uow, _LOADED_CLOCKS)
        if loaded is not None and clock_id in loaded:
            clock: MilestoneClock | None = loaded[clock_id]
            return clock
        doc = await database_of(uow)[CLOCKS].find_one({"_id": clock_id}, session=uow.session)
        return None if doc is None else clock_from_document(doc)

    async def add(self, uow: UnitOfWork, clock: MilestoneClock) -> None:
        try:
            await database_of(uow)[CLOCKS].insert_one(clock_document(clock), session=uow.session)
        except DuplicateKeyError as exc:
            msg = f"clock {clock.clock_id} was started concurrently"
            raise ConcurrentClockChangeError(msg) from exc
        self._remember(uow, _LOADED_CLOCKS, clock.clock_id, clock)
        self._wake_for(uow, clock)

    async def update(self, uow: UnitOfWork, transition: Transition) -> None:
        before, after = transition.before, transition.after
        # A whole-document replacement, conditional on the version: stores keep datetimes as
        # dates this way everywhere (some MongoDB-wire stores turn a ``$set`` date into a string).
        result = await database_of(uow)[CLOCKS].replace_one(
            equals({"_id": before.clock_id, "version": before.version}),
            clock_document(after),
            session=uow.session,
        )
        if result.matched_count != 1:
            msg = f"clock {before.clock_id} changed since version {before.version}"
            raise ConcurrentClockChangeError(msg)
        self._remember(uow, _LOADED_CLOCKS, after.clock_id, after)
        self._wake_for(uow, after)

    def _remember(self, uow: UnitOfWork, key: str, clock_id: str, value: object) -> None:
        loaded = self._loaded(uow, key)
        if loaded is not None:
            loaded[clock_id] = value

    async def get_stop(self, uow: UnitOfWork, clock_id: str) -> ClockStop | None:
        loaded = self._loaded(uow, _LOADED_STOPS)
        if loaded is not None and clock_id in loaded:
            stop: ClockStop | None = loaded[clock_id]
            return stop
        doc = await database_of(uow)[CLOCK_STOPS].find_one({"_id": clock_id}, session=uow.session)
        return None if doc is None else _StopDocument.model_validate(doc).to_stop()

    async def add_stop(self, uow: UnitOfWork, stop: ClockStop) -> None:
        try:
            await database_of(uow)[CLOCK_STOPS].insert_one(
                {
                    "_id": stop.clock_id,
                    "work_order_id": stop.work_order_id,
                    "milestone": stop.milestone.value,
                    "tenant": stop.tenant,
                    "stopped_at": stop.stopped_at,
                    "event_id": stop.event_id,
                    "recorded_at": datetime.now(UTC),
                },
                session=uow.session,
            )
        except DuplicateKeyError as exc:
            msg = f"a stop for clock {stop.clock_id} was recorded concurrently"
            raise ConcurrentClockChangeError(msg) from exc
        self._remember(uow, _LOADED_STOPS, stop.clock_id, stop)

    async def due(self, now: datetime, limit: int) -> list[str]:
        cursor = (
            self._store.db[CLOCKS]
            .find(due_clocks(now), projection={"_id": True})
            .sort([("next_fire_ms", ASCENDING)])
            .limit(limit)
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def counts(self) -> list[ClockCounts]:
        result: list[ClockCounts] = []
        for milestone in Milestone:
            running = {"milestone": milestone.value, "state": ClockState.RUNNING.value}
            result.append(
                ClockCounts(
                    milestone=milestone,
                    running=await self._count(running),
                    warned=await self._count({**running, "warned": True}),
                    breached=await self._count(
                        {
                            "milestone": milestone.value,
                            "state": ClockState.BREACHED.value,
                            "stopped": False,
                        }
                    ),
                )
            )
        return result

    async def _count(self, query: Mapping[str, object]) -> int:
        # A $count stage runs inside the embedded store's SQLite; count_documents loads every
        # clock into Python there. Same result on MongoDB.
        cursor = await self._store.db[CLOCKS].aggregate(
            [{"$match": equals(query)}, {"$count": "n"}]
        )
        found = await cursor.to_list()
        return int(found[0]["n"]) if found else 0
