"""Orders' clocks in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The same documents and promises as the MongoDB repository (a save only at the version read,
closed cycles' records, gauges), for tests of the use cases without a store. Due orders are found
in the committed state (:meth:`MemoryOrderClocksRepository.due`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork
from fixloop_sla.adapters.mongo import (
    CYCLES,
    GAUGES,
    ORDERS,
    WITHOUT_FACTS,
    adopt_documents,
    fired_update,
    gauge_deltas,
    gauge_id,
    open_summaries,
)
from fixloop_sla.adapters.records import cycle_record, cycle_record_id, order_document, order_of
from fixloop_sla.app.engine import ConcurrentOrderChangeError, SavedOrder
from fixloop_sla.domain import OrderClocks


def _session(uow: UnitOfWork) -> MemoryState:
    if not isinstance(uow, MemoryUnitOfWork):
        msg = f"the in-memory repository was given {type(uow).__name__}"
        raise TypeError(msg)
    return uow.session


class MemoryOrderClocksRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def load(
        self, uow: UnitOfWork, work_order_ids: Sequence[str], *, for_timers: bool = False
    ) -> dict[str, OrderClocks]:
        orders = _session(uow).collection(ORDERS)
        summaries = open_summaries(uow)
        found: dict[str, OrderClocks] = {}
        for i in work_order_ids:
            if i in orders:
                doc = orders[i]
                if for_timers:
                    doc = {k: v for k, v in doc.items() if k not in WITHOUT_FACTS}
                found[i] = order_of(doc)
                summaries[i] = list(doc.get("open") or ())
        return found

    async def save(self, uow: UnitOfWork, saved: Sequence[SavedOrder]) -> None:
        state = _session(uow)
        orders = state.collection(ORDERS)
        for item in saved:
            read_at = item.settlement.record.version
            stored = orders.get(item.work_order_id)
            if item.fired_from_plan and stored is not None and stored["version"] == read_at:
                update = fired_update(item, open_summaries(uow).get(item.work_order_id, []))
                for name, value in update.items():
                    if name.startswith("emitted."):
                        stored["emitted"][name.removeprefix("emitted.")] = value
                    else:
                        stored[name] = value
                continue
            if (stored is None) != (read_at == 0) or (
                stored is not None and stored["version"] != read_at
            ):
                msg = f"order {item.work_order_id}'s clocks changed since version {read_at}"
                raise ConcurrentOrderChangeError(msg)
            doc = order_document(item.settlement, version=read_at + 1)
            doc["updated_ms"] = int(time.time() * 1000)
            orders[item.work_order_id] = doc
            cycles = state.collection(CYCLES)
            for cycle in item.settlement.closed:
                key = cycle_record_id(item.work_order_id, cycle)
                revision = int(cycles.get(key, {}).get("revision", 0)) + 1
                cycles[key] = {
                    "_id": key,
                    **cycle_record(item.settlement.record, cycle),
                    "revision": revision,
                }
        gauges = state.collection(GAUGES)
        for key, delta in gauge_deltas(saved).items():
            doc = gauges.setdefault(key, {"_id": key})
            for name, n in delta.items():
                doc[name] = int(doc.get(name, 0)) + n

    async def read_ahead(self, work_order_ids: Sequence[str]) -> Mapping[str, object]:
        orders = self._store.state.collection(ORDERS)
        return {
            i: {k: v for k, v in orders[i].items() if k not in WITHOUT_FACTS}
            for i in work_order_ids
            if i in orders
        }

    def adopt(self, uow: UnitOfWork, ahead: Mapping[str, object]) -> dict[str, OrderClocks]:
        return adopt_documents(uow, ahead)

    async def due(
        self, partitions: Iterable[int], before_ms: int, since_ms: int | None = None
    ) -> list[tuple[str, int, int]]:
        wanted = set(partitions)
        return [
            (doc["_id"], int(doc["next_due_ms"]), int(doc["partition"] or 0))
            for doc in self._store.state.collection(ORDERS).values()
            if (since_ms or 0) <= int(doc["next_due_ms"]) < before_ms
            and (doc["partition"] or 0) in wanted
        ]

    async def changed(self, partitions: Iterable[int], since_ms: int) -> list[tuple[str, int, int]]:
        wanted = set(partitions)
        return [
            (doc["_id"], int(doc["next_due_ms"]), int(doc["partition"] or 0))
            for doc in self._store.state.collection(ORDERS).values()
            if int(doc.get("updated_ms", 0)) >= since_ms and (doc["partition"] or 0) in wanted
        ]

    async def gauges(self, partitions: Iterable[int]) -> dict[int, Mapping[str, int]]:
        gauges = self._store.state.collection(GAUGES)
        return {
            p: {k: v for k, v in gauges[gauge_id(p)].items() if k != "_id"}
            for p in partitions
            if gauge_id(p) in gauges
        }

    def order(self, work_order_id: str) -> OrderClocks | None:
        """One committed order's clocks."""
        doc = self._store.state.collection(ORDERS).get(work_order_id)
        return None if doc is None else order_of(doc)


__all__ = ["MemoryOrderClocksRepository"]
