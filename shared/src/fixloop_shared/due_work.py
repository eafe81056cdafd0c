"""The durable due-work scheduler: one shape for every timer of a service.

A *kind* of due work (:class:`DueWork`) names where its items live (a collection and a filter of
the items due at a moment), what firing one does (``fire(item)``), how long a claim lasts (the
lease) and how many are claimed at once. The outbox relay, SLA clocks and notification deliveries
are kinds; a new timer is one more :class:`DueWork`, never a new loop.

One :class:`DueWorkScheduler` per service process runs every kind of that service (one small
task per kind, so a slow kind never holds up another). Each pass of a kind:

1. reads a batch of candidates: due now (the kind's filter) and not leased (``lease_until_ms`` in
   the past, or never leased);
2. claims them with one conditional update — ``{due, lease free} -> lease_owner = me,
   lease_until_ms = now + lease`` — so of several pods only one gets each item, and each pod
   scans only the due, unclaimed ones;
3. fires the items it got (an item whose lease ran out meanwhile is skipped: another pod may have
   it), then completes them: gives the lease back (conditionally on still owning it).

Crash safety: a killed pod's leases run out and another pod claims the items again; an item fired
but not completed is fired again. Firing must therefore be idempotent, and is: outbox copies are
absorbed by idempotent consumers, a clock's save is conditional on its version, a delivery's
outcome is recorded only by its lease holder. A fire that raises keeps its lease (for
``retry_after``, or until the lease runs out), so a failing item never makes a hot loop.

Time: due filters get the scheduler's (injectable) clock; leases are epoch milliseconds, because
the embedded store keeps a ``$set`` datetime as a string. Writes happen outside transactions, so
each takes the store's write slot (``Store.exclusive``).

Waking early: besides polling every ``poll_seconds``, a kind is woken by a unit of work that wrote
one of its items (its repository calls ``store.notify_due([(kind, at)])`` from
``uow.after_commit``; commits with outbox records report the relay's kind themselves), through
``Store.on_due``: due now, the kind runs at once; due soon, its next pass is timed for that moment.

Singleton kinds (:meth:`DueWork.singleton`) are a lease document of their own in
``due_work_leases`` — the outbox relay's "relay lease": whoever holds it relays, the others stand
by. The holder keeps it from pass to pass while it runs (renewing it when half of it is used
up) and gives it back when it stops; a killed holder's lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo.errors import DuplicateKeyError

from fixloop_shared.store import Document, Store, equals

log = logging.getLogger(__name__)

LEASE_OWNER = "lease_owner"
LEASE_UNTIL = "lease_until_ms"
LEASE_TOKEN = "lease_token"  # noqa: S105 - a field name
NO_OWNER = ""
"""``lease_owner`` of an item nobody holds (a string, so it filters the same everywhere)."""

LEASES = "due_work_leases"
"""The lease documents of singleton kinds (one per kind, ``_id`` = the kind's name)."""

_MAX_HINTS = 1024
_MAX_REMEMBERED_FAILURES = 10_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def lease_free(now_ms: int) -> dict[str, object]:
    """Filter of items nobody holds at ``now_ms``: their lease ran out (``0``: never leased).

    Every item is written with :func:`unleased` lease fields, so this is one indexed range
    (an ``$or`` with ``$exists`` would make the embedded store scan every item in Python).
    """
    return {LEASE_UNTIL: {"$lt": now_ms}}


def unleased() -> dict[str, object]:
    """The lease fields of an item nobody holds (for documents written whole)."""
    return {LEASE_OWNER: NO_OWNER, LEASE_UNTIL: 0}


@dataclass(frozen=True)
class DueWork:
    """One kind of due work.

    Its items are documents of ``collection`` written with the :func:`unleased` lease fields
    (``lease_until_ms: 0``); ``due(now)`` selects those due at ``now``.
    """

    name: str
    collection: str
    due: Callable[[datetime], Mapping[str, object]]
    """The filter of this kind's items that are due at the given moment."""
    fire: Callable[[ClaimedItem], Awaitable[object]]
    """Fire one claimed item. Must be idempotent (an item may be fired again after a crash).
    Returning completes the item (its lease is given back); raising keeps the lease. The item's
    ``doc`` is what was read when it was claimed: a kind whose items change without their lease
    (an SLA clock stopped by an event) reads the item again by its id."""
    lease: timedelta
    batch_size: int = 100
    poll_seconds: float = 0.5
    order: tuple[tuple[str, int], ...] = ()
    concurrency: int = 1
    """How many items of this kind fire at once in one process (1: one after the other)."""
    retry_after: timedelta | None = None
    """After a failed fire, the item is claimable again after this (None: when the lease ends)."""
    projection: Mapping[str, object] | None = None
    has_work: Callable[[], Awaitable[bool]] | None = None
    """A cheap read that says whether claiming is worth it at all (skips idle writes)."""
    singleton: bool = False
    fire_batch: Callable[[Sequence[ClaimedItem]], Awaitable[object]] | None = None
    """Fire the items of a claim together (instead of ``fire`` one by one): for kinds whose
    items are cheaper to finish in one write. It settles each item itself — completing it or
    leaving it leased for a while — so the scheduler gives no lease back after it (as with
    ``releases_itself``); if it raises, every item keeps its lease."""
    releases_itself: bool = False
    """Firing ends with a write that gives the lease back (a delivery marked sent), so the
    scheduler need not; an item whose fire raises keeps its lease as usual."""
    after_pass: Callable[[], Awaitable[None]] | None = None
    """This pod's housekeeping after each pass of the kind (e.g. refreshing gauges)."""

    @classmethod
    def singleton_lease(
        cls,
        name: str,
        fire: Callable[[ClaimedItem], Awaitable[object]],
        *,
        lease: timedelta,
        poll_seconds: float = 0.5,
        has_work: Callable[[], Awaitable[bool]] | None = None,
        retry_after: timedelta | None = None,
    ) -> DueWork:
        """A kind with a single item, its lease document: at most one pod fires it at a time."""
        return cls(
            name=name,
            collection=LEASES,
            due=lambda _now: {"_id": name},
            fire=fire,
            lease=lease,
            batch_size=1,
            poll_seconds=poll_seconds,
            has_work=has_work,
            singleton=True,
            retry_after=retry_after,
        )


@dataclass
class ClaimedItem:
    """An item this process holds the lease of while it fires it."""

    work: DueWork
    doc: Document
    owner: str
    lease_until_ms: int
    _items: DueWorkStore
    _clock: Clock

    @property
    def id(self) -> object:
        return self.doc["_id"]

    def lease_left_seconds(self) -> float:
        return (self.lease_until_ms - epoch_ms(self._clock())) / 1000

    async def renew(self) -> bool:
        """Extend the lease by the kind's lease length; False if another owner has the item."""
        until = epoch_ms(self._clock() + self.work.lease)
        if not await self._items.extend(self.work, self.id, owner=self.owner, lease_until_ms=until):
            return False
        self.lease_until_ms = until
        return True


class DueWorkStore(Protocol):
    """Where due items are claimed and given back (the store side of the scheduler)."""

    async def prepare(self, work: DueWork) -> None:
        """Create what the kind needs (a singleton's lease document); idempotent."""

    async def claim(
        self, work: DueWork, *, owner: str, now: datetime, lease_until_ms: int, limit: int
    ) -> tuple[list[Document], int]:
        """Lease up to ``limit`` due, unleased items to ``owner``; (claimed items, candidates
        seen). Fewer candidates than ``limit`` means nothing more is due."""

    async def extend(
        self, work: DueWork, item_id: object, *, owner: str, lease_until_ms: int
    ) -> bool:
        """Move the lease of an item ``owner`` holds; False if it holds it no longer."""

    async def release(self, work: DueWork, item_ids: Sequence[object], *, owner: str) -> None:
        """Give back the leases ``owner`` still holds on these items."""


class MongoDueWorkStore:
    """:class:`DueWorkStore` on a service's MongoDB database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def prepare(self, work: DueWork) -> None:
        if not work.singleton:
            return
        with contextlib.suppress(DuplicateKeyError):
            async with self._store.exclusive():
                await self._store.db[LEASES].insert_one({"_id": work.name, **unleased()})

    async def claim(
        self, work: DueWork, *, owner: str, now: datetime, lease_until_ms: int, limit: int
    ) -> tuple[list[Document], int]:
        collection = self._store.db[work.collection]
        wanted: dict[str, object] = {**work.due(now), **lease_free(epoch_ms(now))}
        projection = None if work.projection is None else dict(work.projection)
        cursor = collection.find(wanted, projection=projection)
        if work.order:
            cursor = cursor.sort(list(work.order))
        docs = await cursor.limit(limit).to_list()
        if not docs:
            return [], 0
        candidates = [doc["_id"] for doc in docs]
        lease = {LEASE_OWNER: owner, LEASE_UNTIL: lease_until_ms, LEASE_TOKEN: uuid.uuid4().hex}
        async with self._store.exclusive():
            result = await collection.update_many(
                {**wanted, "_id": {"$in": candidates}}, {"$set": lease}
            )
        if result.modified_count == len(candidates):
            # All of them: each was due and free when read, and only a lease holder changes an
            # item, so what was read is what was claimed.
            return [{**doc, **lease} for doc in docs], len(candidates)
        if result.modified_count == 0:
            return [], len(candidates)
        found = collection.find(
            equals({LEASE_TOKEN: lease[LEASE_TOKEN]}) | {"_id": {"$in": candidates}},
            projection=projection,
        )
        if work.order:
            found = found.sort(list(work.order))
        return await found.to_list(), len(candidates)

    async def extend(
        self, work: DueWork, item_id: object, *, owner: str, lease_until_ms: int
    ) -> bool:
        async with self._store.exclusive():
            result = await self._store.db[work.collection].update_one(
                {"_id": item_id, LEASE_OWNER: owner}, {"$set": {LEASE_UNTIL: lease_until_ms}}
            )
        return result.matched_count == 1

    async def release(self, work: DueWork, item_ids: Sequence[object], *, owner: str) -> None:
        if not item_ids:
            return
        async with self._store.exclusive():
            await self._store.db[work.collection].update_many(
                {"_id": {"$in": list(item_ids)}, LEASE_OWNER: owner}, {"$set": unleased()}
            )


class DueWorkNotRunningError(RuntimeError):
    """A kind's task is not running (readiness fails)."""


@dataclass
class _Runner:
    work: DueWork
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    wake_pending: bool = False
    event: asyncio.Event = field(default_factory=asyncio.Event)
    hints: list[int] = field(default_factory=list)
    in_flight: dict[object, asyncio.Task[None]] = field(default_factory=dict)
    failing: set[object] = field(default_factory=set)
    passes: int = 0
    fired: int = 0
    held: ClaimedItem | None = None
    """A singleton kind's lease while this process holds it (kept from pass to pass)."""


class DueWorkScheduler:
    """Runs every kind of due work of one service process."""

    def __init__(
        self, items: DueWorkStore, *, clock: Clock = utc_now, owner: str | None = None
    ) -> None:
        self._items = items
        self._clock = clock
        self.owner = owner or f"pod-{uuid.uuid4().hex}"
        self._runners: dict[str, _Runner] = {}
        self._prepared: set[str] = set()

    @classmethod
    def for_store(
        cls, store: Store, *, clock: Clock = utc_now, owner: str | None = None
    ) -> DueWorkScheduler:
        """A scheduler on ``store``, woken by the store's commits that write due items."""
        scheduler = cls(MongoDueWorkStore(store), clock=clock, owner=owner)
        store.on_due(scheduler.due_at)
        return scheduler

    # -- registry ---------------------------------------------------------------------------

    def add(self, work: DueWork) -> None:
        if work.name in self._runners:
            msg = f"a due-work kind named {work.name!r} is registered already"
            raise ValueError(msg)
        self._runners[work.name] = _Runner(work)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._runners)

    @property
    def passes(self) -> int:
        """Completed passes of the least advanced running kind (each fired all it found due)."""
        running = [r.passes for r in self._runners.values() if r.task is not None]
        return min(running, default=0)

    def fired(self, name: str | None = None) -> int:
        runners = self._runners.values() if name is None else [self._runners[name]]
        return sum(r.fired for r in runners)

    # -- waking -----------------------------------------------------------------------------

    def wake(self, name: str | None = None) -> None:
        """Run a pass of ``name`` (or of every kind) now."""
        for runner in self._runners.values() if name is None else [self._runners[name]]:
            runner.wake_pending = True
            runner.event.set()

    def due_at(self, name: str, at: datetime) -> None:
        """An item of ``name`` falls due at ``at`` (the commit hook): wake then, or now."""
        runner = self._runners.get(name)
        if runner is None:
            return
        at_ms = epoch_ms(at)
        if at_ms <= epoch_ms(self._clock()):
            runner.wake_pending = True
        elif len(runner.hints) < _MAX_HINTS:
            heapq.heappush(runner.hints, at_ms)
        else:
            return  # the regular poll catches it
        runner.event.set()

    # -- lifecycle --------------------------------------------------------------------------

    def start_now(self, *names: str) -> None:
        """Start the loops of ``names`` (default: every kind) that are not running."""
        for name in names or tuple(self._runners):
            runner = self._runners[name]
            if runner.task is not None and not runner.task.done():
                continue
            runner.stopping = False
            runner.task = asyncio.create_task(self._run(runner), name=f"due-work-{name}")

    async def start(self, *names: str) -> None:
        self.start_now(*names)
        log.info("due-work scheduler started", extra={"kinds": list(names or self._runners)})

    async def stop(self, *names: str, grace_seconds: float = 10.0) -> None:
        """Stop taking items; let the current pass and in-flight fires finish (bounded by
        ``grace_seconds``), then cancel what is left (its leases are given back)."""
        runners = [self._runners[name] for name in names or tuple(self._runners)]
        for runner in runners:
            runner.stopping = True
            runner.event.set()
        for runner in runners:
            task, runner.task = runner.task, None
            if task is not None:
                _, running = await asyncio.wait({task}, timeout=grace_seconds)
                for late in running:
                    late.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await late
            if runner.in_flight:
                flying = set(runner.in_flight.values())
                _, unfinished = await asyncio.wait(flying, timeout=grace_seconds)
                for late in unfinished:
                    late.cancel()
                if unfinished:
                    await asyncio.wait(unfinished)
            await self._give_back_held(runner)

    async def due_work(self) -> None:
        """Readiness check (named after the method in /readyz): every kind's loop is alive."""
        for name, runner in self._runners.items():
            if runner.task is None or runner.task.done():
                msg = f"the due-work loop {name!r} is not running"
                raise DueWorkNotRunningError(msg)

    # -- passes -----------------------------------------------------------------------------

    async def run_once(self, name: str) -> int:
        """One pass of ``name``: claim and fire what is due now; returns how many fired.

        Usable without the loop running (the outbox flush at shutdown, tests); a singleton's
        lease is given back after it unless the kind's loop runs."""
        runner = self._runners[name]
        before = runner.fired
        await self._pass(runner, looping=False)
        if runner.in_flight:
            await asyncio.wait(set(runner.in_flight.values()))
        if runner.task is None or runner.task.done():
            await self._give_back_held(runner)
        return runner.fired - before

    async def _run(self, runner: _Runner) -> None:
        work = runner.work
        while not runner.stopping:
            delay = work.poll_seconds
            runner.wake_pending = False
            try:
                await self._pass(runner, looping=True)
                if work.after_pass is not None:
                    await work.after_pass()
                runner.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("due-work pass failed; retrying", extra={"kind": work.name})
                delay = min(5.0, work.poll_seconds * 10)
            await self._sleep(runner, delay)

    async def _sleep(self, runner: _Runner, delay: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + delay
        while not runner.stopping and not runner.wake_pending:
            now_ms = epoch_ms(self._clock())
            if runner.hints and runner.hints[0] <= now_ms:
                while runner.hints and runner.hints[0] <= now_ms:
                    heapq.heappop(runner.hints)
                return
            timeout = end - loop.time()
            if runner.hints:
                timeout = min(timeout, (runner.hints[0] - now_ms) / 1000)
            if timeout <= 0:
                return
            runner.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.event.wait(), timeout=timeout)

    async def _pass(self, runner: _Runner, *, looping: bool) -> None:
        work = runner.work
        if work.name not in self._prepared:
            await self._items.prepare(work)
            self._prepared.add(work.name)
        if work.singleton:
            await self._singleton_pass(runner)
            return
        if work.has_work is not None and not await work.has_work():
            return
        empty_claims = 0
        while not (looping and runner.stopping):
            limit = work.batch_size
            if work.concurrency > 1:  # fired in tasks: claim no more than the free slots
                limit = min(limit, work.concurrency - len(runner.in_flight))
                if limit <= 0:
                    return  # a finishing fire wakes the kind
            now = self._clock()
            docs, seen = await self._items.claim(
                work,
                owner=self.owner,
                now=now,
                lease_until_ms=epoch_ms(now + work.lease),
                limit=limit,
            )
            items = [
                ClaimedItem(
                    work, doc, self.owner, epoch_ms(now + work.lease), self._items, self._clock
                )
                for doc in docs
                if doc["_id"] not in runner.in_flight
            ]
            await self._fire_claimed(runner, items)
            if seen < limit:
                return
            empty_claims = 0 if docs else empty_claims + 1
            if empty_claims >= 2:
                return  # others are taking these; the next pass looks again

    async def _fire_claimed(self, runner: _Runner, items: Sequence[ClaimedItem]) -> None:
        """Fire what one claim got: as a batch, one after the other, or in tasks."""
        work = runner.work
        if work.fire_batch is not None:
            await self._fire_batch(runner, items)
        elif work.concurrency == 1:
            completed = [item.id for item in items if await self._fire(runner, item)]
            if not work.releases_itself:
                await self._items.release(work, completed, owner=self.owner)
        else:
            for item in items:
                task = asyncio.create_task(
                    self._fire_and_complete(runner, item), name=f"{work.name}-{item.id}"
                )
                runner.in_flight[item.id] = task
                task.add_done_callback(functools.partial(self._landed, runner, item.id))

    async def _fire_batch(self, runner: _Runner, items: Sequence[ClaimedItem]) -> None:
        work = runner.work
        assert work.fire_batch is not None  # noqa: S101 - checked by the caller
        items = [item for item in items if item.lease_left_seconds() > 0]
        if not items:
            return
        try:
            await work.fire_batch(items)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._items.release(work, [item.id for item in items], owner=self.owner),
                    timeout=2,
                )
            raise
        except Exception:
            log.exception(
                "firing a batch of due items failed; they are retried later",
                extra={"kind": work.name, "items": len(items)},
            )
            if work.retry_after is not None:
                until = epoch_ms(self._clock() + min(work.retry_after, work.lease))
                for item in items:
                    with contextlib.suppress(Exception):
                        await self._items.extend(
                            work, item.id, owner=self.owner, lease_until_ms=until
                        )
            return
        runner.fired += len(items)

    async def _singleton_pass(self, runner: _Runner) -> None:
        """A pass of a singleton kind. Its lease is kept from pass to pass while this process
        works (renewed once half of it is used up), so a busy relay makes no lease writes; it
        is given back when the kind stops, and a killed holder's runs out."""
        work = runner.work
        held = runner.held
        if held is not None and held.lease_left_seconds() <= work.lease.total_seconds() / 2:
            runner.held = None
            held = held if await held.renew() else None
            runner.held = held
        if held is None:
            if work.has_work is not None and not await work.has_work():
                return
            now = self._clock()
            until = epoch_ms(now + work.lease)
            docs, _ = await self._items.claim(
                work, owner=self.owner, now=now, lease_until_ms=until, limit=1
            )
            if not docs:
                return
            held = ClaimedItem(work, docs[0], self.owner, until, self._items, self._clock)
            runner.held = held
        if not await self._fire(runner, held):
            runner.held = None  # failed (it keeps the lease until its retry time) or lapsed

    async def _give_back_held(self, runner: _Runner) -> None:
        held, runner.held = runner.held, None
        if held is not None and held.lease_left_seconds() > 0:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._items.release(runner.work, [held.id], owner=self.owner), timeout=2
                )

    def _landed(self, runner: _Runner, item_id: object, _task: asyncio.Task[None]) -> None:
        runner.in_flight.pop(item_id, None)
        runner.event.set()
        runner.wake_pending = True

    async def _fire_and_complete(self, runner: _Runner, item: ClaimedItem) -> None:
        if await self._fire(runner, item) and not item.work.releases_itself:
            try:
                await self._items.release(item.work, [item.id], owner=self.owner)
            except Exception:  # noqa: BLE001 - the lease runs out by itself
                log.warning("could not give a lease back", extra={"item": str(item.id)})

    async def _fire(self, runner: _Runner, item: ClaimedItem) -> bool:
        """Fire one item; True if it completed (its lease can be given back)."""
        work = runner.work
        if item.lease_left_seconds() <= 0:
            return False  # claimed too long ago: another pod may hold it now
        try:
            await work.fire(item)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._items.release(work, [item.id], owner=self.owner), timeout=2
                )
            raise
        except Exception:
            first = item.id not in runner.failing
            if len(runner.failing) >= _MAX_REMEMBERED_FAILURES:
                runner.failing.clear()
            runner.failing.add(item.id)
            log.log(
                logging.ERROR if first else logging.DEBUG,
                "firing a due item failed; it is retried later",
                exc_info=True,
                extra={"kind": work.name, "item": str(item.id)},
            )
            if work.retry_after is not None:
                until = epoch_ms(self._clock() + min(work.retry_after, work.lease))
                with contextlib.suppress(Exception):
                    await self._items.extend(work, item.id, owner=self.owner, lease_until_ms=until)
            return False
        runner.failing.discard(item.id)
        runner.fired += 1
        return True
