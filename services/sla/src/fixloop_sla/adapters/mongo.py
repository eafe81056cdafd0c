"""MongoDB storage of orders' clocks, closed cycles' records and per-partition clock gauges.

A settled order is saved only if the stored one is still at the version it was read at (a new
order: only if none exists), which is what makes every announcement at-most-once across
redeliveries, restarts and pods. The writes of one unit of work go in a few bulk writes: the
orders, their closed cycles' records, and the gauge deltas of their partitions.

``sla_gauges``: per partition, the number of open cycles by clock and condition (running, paused,
breached), moved by ``$inc`` in the same transaction as the orders: a pod that takes over a
partition reads its gauges in one query instead of counting its clocks.

Filters are built from typed values only (``$eq`` on every equality).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.store import Store, database_of, equals, mongo_uow
from fixloop_sla.adapters.records import (
    NEVER,
    cycle_record,
    cycle_record_id,
    ms,
    order_document,
    order_of,
    plan_entry,
)
from fixloop_sla.app.engine import ConcurrentOrderChangeError, SavedOrder
from fixloop_sla.domain import OrderClocks, SignalKind

ORDERS = "sla_orders"
WITHOUT_FACTS = {"facts": False, "known": False, "pins": False}
"""What firing a plan does not read."""
_SUMMARIES = object()
_PLANS = object()
CYCLES = "sla_cycles"
GAUGES = "sla_gauges"
LOAD_CHUNK = 1_000
DUE_PAGE = 2_000


def clock_indexes() -> dict[str, Sequence[IndexModel]]:
    """The timers' index (the reads' are :func:`fixloop_sla.app.reporting.report_indexes`)."""
    return {
        ORDERS: [
            IndexModel([("partition", ASCENDING), ("next_due_ms", ASCENDING)], name="due_orders"),
            IndexModel(
                [("partition", ASCENDING), ("updated_ms", ASCENDING)], name="changed_orders"
            ),
        ],
    }


def open_summaries(uow: UnitOfWork) -> dict[str, list[Any]]:
    """The stored open-cycle summaries of the orders read in this unit of work."""
    memo = uow.memo.setdefault(_SUMMARIES, {})
    assert isinstance(memo, dict)  # noqa: S101 - only this module writes its memo entry
    return memo


def adopt_documents(uow: UnitOfWork, docs: Mapping[str, object]) -> dict[str, OrderClocks]:
    """Orders' documents read outside ``uow``, as if read in it (for a timer's batch)."""
    summaries = open_summaries(uow)
    plans = stored_plans(uow)
    found: dict[str, OrderClocks] = {}
    for work_order_id, doc in docs.items():
        assert isinstance(doc, dict)  # noqa: S101 - what read_ahead returned
        found[work_order_id] = order_of(doc)
        summaries[work_order_id] = list(doc.get("open") or ())
        plans[work_order_id] = list(doc.get("plan") or ())
    return found


def stored_plans(uow: UnitOfWork) -> dict[str, list[Any]]:
    """The stored plans of the orders read in this unit of work."""
    memo = uow.memo.setdefault(_PLANS, {})
    assert isinstance(memo, dict)  # noqa: S101 - only this module writes its memo entry
    return memo


def fired_update(
    item: SavedOrder, summary: list[Any], stored_plan: list[Any] | None = None
) -> dict[str, Any]:
    """The ``$set`` of an order whose plan fired: what was said, the plan left, the breaches.

    ``stored_plan`` is the plan as read (its entries left are written back as they were)."""
    after = item.settlement.record
    before = item.before
    left = len(after.plan or ())
    plan = (  # what is left of a fired plan is its tail
        stored_plan[len(stored_plan) - left :] if stored_plan is not None and left else []
    )
    if stored_plan is None and left:
        plan = [plan_entry(p) for p in after.plan or ()]
    fields: dict[str, Any] = {
        "version": after.version + 1,
        "updated_ms": int(time.time() * 1000),
        "next_due_ms": NEVER if item.next_due is None else ms(item.next_due),
        "open_conditions": [list(pair) for pair in after.open],
        "plan": plan,
    }
    for key, said in after.emitted.items():
        if before is None or before.emitted.get(key) != said:
            fields[f"emitted.{key}"] = [ms(said.moment), said.retracted]
    breached = {
        (s.cycle.clock.value, s.cycle.number): ms(s.moment)
        for s in item.settlement.signals
        if s.kind is SignalKind.BREACH
    }
    if breached:
        fields["open"] = [
            {**entry, "breached_ms": breached.get((entry.get("clock"), entry.get("cycle")))}
            if (entry.get("clock"), entry.get("cycle")) in breached
            else entry
            for entry in summary
        ]
    return fields


def due_between(since_ms: int | None, before_ms: int) -> dict[str, int]:
    window = {"$lt": int(before_ms)}
    if since_ms is not None:
        window["$gte"] = int(since_ms)
    return window


def gauge_id(partition: int | None) -> str:
    return "unpartitioned" if partition is None else f"partition-{partition}"


def gauge_deltas(saved: Iterable[SavedOrder]) -> dict[str, Counter[str]]:
    """Per gauge document, how the open cycles by ``clock__condition`` moved."""
    deltas: dict[str, Counter[str]] = {}
    for item in saved:
        after = Counter(f"{c}__{s}" for c, s in item.settlement.record.open)
        before = Counter(f"{c}__{s}" for c, s in (item.before.open if item.before else ()))
        delta = Counter(after)
        delta.subtract(before)
        moved = {key: n for key, n in delta.items() if n}
        if moved:
            deltas.setdefault(gauge_id(item.partition), Counter()).update(moved)
    return deltas


class MongoOrderClocksRepository:
    """The engine's :class:`~fixloop_sla.app.engine.OrderClocksRepository` on MongoDB."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(
        self, uow: UnitOfWork, work_order_ids: Sequence[str], *, for_timers: bool = False
    ) -> dict[str, OrderClocks]:
        db = database_of(uow)
        session = mongo_uow(uow).session
        found: dict[str, OrderClocks] = {}
        summaries = open_summaries(uow)
        plans = stored_plans(uow)
        ids = [str(i) for i in work_order_ids]
        projection = WITHOUT_FACTS if for_timers else None
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            async for doc in db[ORDERS].find({"_id": {"$in": chunk}}, projection, session=session):
                record = order_of(doc)
                found[record.work_order_id] = record
                summaries[record.work_order_id] = list(doc.get("open") or ())
                plans[record.work_order_id] = list(doc.get("plan") or ())
        return found

    async def read_ahead(self, work_order_ids: Sequence[str]) -> Mapping[str, object]:
        found: dict[str, object] = {}
        ids = [str(i) for i in work_order_ids]
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            async for doc in self._store.db[ORDERS].find({"_id": {"$in": chunk}}, WITHOUT_FACTS):
                found[str(doc["_id"])] = doc
        return found

    def adopt(self, uow: UnitOfWork, ahead: Mapping[str, object]) -> dict[str, OrderClocks]:
        return adopt_documents(uow, ahead)

    async def save(self, uow: UnitOfWork, saved: Sequence[SavedOrder]) -> None:
        if not saved:
            return
        db = database_of(uow)
        session = mongo_uow(uow).session
        written_ms = int(time.time() * 1000)
        writes: list[Any] = []
        summaries = open_summaries(uow)
        for item in saved:
            read_at = item.settlement.record.version
            if item.fired_from_plan:
                writes.append(
                    UpdateOne(
                        {"_id": {"$eq": item.work_order_id}, "version": {"$eq": read_at}},
                        {
                            "$set": fired_update(
                                item,
                                summaries.get(item.work_order_id, []),
                                stored_plans(uow).get(item.work_order_id),
                            )
                        },
                    )
                )
                continue
            doc = order_document(item.settlement, version=read_at + 1)
            doc["updated_ms"] = written_ms
            if read_at == 0:
                writes.append(InsertOne(doc))
            else:
                writes.append(
                    ReplaceOne(
                        {"_id": {"$eq": item.work_order_id}, "version": {"$eq": read_at}}, doc
                    )
                )
        try:
            result = await db[ORDERS].bulk_write(writes, ordered=True, session=session)
        except (BulkWriteError, DuplicateKeyError) as exc:
            msg = "an order's clocks were created concurrently"
            raise ConcurrentOrderChangeError(msg) from exc
        replaced = sum(1 for item in saved if item.settlement.record.version > 0)
        if result.matched_count != replaced:
            msg = f"{replaced - result.matched_count} orders' clocks changed since they were read"
            raise ConcurrentOrderChangeError(msg)
        records = [
            UpdateOne(
                {"_id": {"$eq": cycle_record_id(item.work_order_id, cycle)}},
                {"$set": cycle_record(item.settlement.record, cycle), "$inc": {"revision": 1}},
                upsert=True,
            )
            for item in saved
            for cycle in item.settlement.closed
        ]
        if records:
            await db[CYCLES].bulk_write(records, ordered=False, session=session)
        gauges = [
            UpdateOne({"_id": {"$eq": key}}, {"$inc": dict(delta)}, upsert=True)
            for key, delta in gauge_deltas(saved).items()
        ]
        if gauges:
            await db[GAUGES].bulk_write(gauges, ordered=False, session=session)

    async def due(
        self, partitions: Iterable[int], before_ms: int, since_ms: int | None = None
    ) -> list[tuple[str, int, int]]:
        """(work order, next due ms, partition) of orders in ``partitions`` due in
        [``since_ms``, ``before_ms``).

        Read partition by partition, in pages in the order of the ``due_orders`` index: each
        query is short however many clocks a partition holds (a store that gathers a whole
        result before answering would otherwise keep a large one past the client's timeout).
        """
        found: list[tuple[str, int, int]] = []
        for partition in sorted({int(p) for p in partitions}):
            found.extend(await self._due_in(partition, since_ms, int(before_ms)))
        return found

    async def _due_in(
        self, partition: int, since_ms: int | None, before_ms: int
    ) -> list[tuple[str, int, int]]:
        orders = self._store.db[ORDERS]
        projection = {"next_due_ms": True}
        found: dict[str, int] = {}
        window: dict[str, int] = due_between(since_ms, before_ms)
        while True:
            page = (
                await orders.find(
                    {**equals({"partition": partition}), "next_due_ms": window}, projection
                )
                .sort("next_due_ms", ASCENDING)
                .limit(DUE_PAGE)
                .to_list()
            )
            found.update((str(doc["_id"]), int(doc["next_due_ms"])) for doc in page)
            if len(page) < DUE_PAGE:
                break
            last = int(page[-1]["next_due_ms"])
            # Every order at the page's last moment (a page may end among them), then on.
            async for doc in orders.find(
                {**equals({"partition": partition, "next_due_ms": last})}, projection
            ):
                found[str(doc["_id"])] = last
            window = {"$gt": last, "$lt": before_ms}
        return [(work_order_id, due, partition) for work_order_id, due in found.items()]

    async def changed(self, partitions: Iterable[int], since_ms: int) -> list[tuple[str, int, int]]:
        """(work order, next due ms, partition) of orders in ``partitions`` written since then."""
        found: list[tuple[str, int, int]] = []
        for partition in sorted({int(p) for p in partitions}):
            cursor = self._store.db[ORDERS].find(
                {**equals({"partition": partition}), "updated_ms": {"$gte": int(since_ms)}},
                {"next_due_ms": True},
            )
            found.extend(
                [(str(doc["_id"]), int(doc["next_due_ms"]), partition) async for doc in cursor]
            )
        return found

    async def gauges(self, partitions: Iterable[int]) -> dict[int, Mapping[str, int]]:
        """The open-cycle gauges of these partitions."""
        ids = {gauge_id(p): p for p in partitions}
        if not ids:
            return {}
        found: dict[int, Mapping[str, int]] = {}
        async for doc in self._store.db[GAUGES].find({"_id": {"$in": sorted(ids)}}):
            found[ids[str(doc["_id"])]] = {
                k: int(v) for k, v in doc.items() if k != "_id" and isinstance(v, int)
            }
        return found
