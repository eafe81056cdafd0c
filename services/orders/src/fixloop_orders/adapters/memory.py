"""The work orders in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The repository keeps the same promises as the MongoDB one (one work order per external key, saves
guarded by version, timeline entries appended), checked by the same contract tests, so use cases
can be tested without a store; the queries read the committed work orders and timelines the way
the partner API sees them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from fixloop_orders.adapters.mongo import TIMELINE_VIEW_LIMIT
from fixloop_orders.app.ports import ConcurrentUpdateError, ExternalOrderConflictError
from fixloop_orders.app.queries import TimelineEntryView, WorkOrderView
from fixloop_orders.domain.work_order import ExternalOrderKey, TimelineEntry, WorkOrder
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork

WORK_ORDERS = "work_orders"
TIMELINE = "timeline"


class MemoryWorkOrders:
    """The :class:`~fixloop_orders.app.ports.WorkOrderRepository` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _state(self, uow: UnitOfWork | None) -> MemoryState:
        if uow is None:
            return self._store.state
        if not isinstance(uow, MemoryUnitOfWork):
            msg = f"the in-memory repository was given {type(uow).__name__}"
            raise TypeError(msg)
        return uow.session

    async def find_id_by_key(self, uow: UnitOfWork | None, key: ExternalOrderKey) -> str | None:
        for work_order_id, doc in self._state(uow).collection(WORK_ORDERS).items():
            if doc["order"].key == key:
                return work_order_id
        return None

    async def load(self, uow: UnitOfWork, tenant: str, work_order_ids: Sequence[str]) -> None:
        """Nothing to read ahead in memory."""

    async def get(
        self, uow: UnitOfWork | None, tenant: str, work_order_id: str
    ) -> WorkOrder | None:
        doc = self._state(uow).collection(WORK_ORDERS).get(work_order_id)
        if doc is None or doc["order"].tenant != tenant:
            return None
        order: WorkOrder = copy.deepcopy(doc["order"])
        return order

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        orders = self._state(uow).collection(WORK_ORDERS)
        if order.work_order_id in orders or await self.find_id_by_key(uow, order.key):
            raise ExternalOrderConflictError(str(order.key))
        orders[order.work_order_id] = {"order": self._stored(order)}
        self._append_entries(uow, order)

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        orders = self._state(uow).collection(WORK_ORDERS)
        stored = orders.get(order.work_order_id)
        if (
            stored is None
            or stored["order"].tenant != order.tenant
            or stored["order"].version != order.version
        ):
            msg = f"work order {order.work_order_id} changed while it was being updated"
            raise ConcurrentUpdateError(msg)
        order.version += 1
        orders[order.work_order_id] = {"order": self._stored(order)}
        self._append_entries(uow, order)

    async def append_timeline(self, uow: UnitOfWork, order: WorkOrder) -> None:
        self._append_entries(uow, order)

    def timeline(self, work_order_id: str) -> list[TimelineEntry]:
        """The committed timeline of a work order, oldest entry first."""
        entries = self._store.state.collection(TIMELINE).get(work_order_id, {})
        return list(entries.get("entries", []))

    def _append_entries(self, uow: UnitOfWork, order: WorkOrder) -> None:
        if order.new_entries:
            timeline = self._state(uow).collection(TIMELINE)
            entries = timeline.setdefault(order.work_order_id, {"entries": []})["entries"]
            entries.extend(copy.deepcopy(order.new_entries))
            order.new_entries.clear()

    @staticmethod
    def _stored(order: WorkOrder) -> WorkOrder:
        stored = copy.deepcopy(order)
        stored.new_entries.clear()
        return stored


class MemoryWorkOrderQueries:
    """The :class:`~fixloop_orders.app.queries.WorkOrderQueries` on the committed state."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        state = self._store.state
        doc = state.collection(WORK_ORDERS).get(work_order_id)
        if doc is None or doc["order"].tenant != tenant:
            return None
        order: WorkOrder = doc["order"]
        entries: list[TimelineEntry] = state.collection(TIMELINE).get(
            work_order_id, {"entries": []}
        )["entries"]
        oldest_first = sorted(entries, key=lambda entry: (entry.at, entry.entry_id))
        details = order.details
        return WorkOrderView(
            work_order_id=order.work_order_id,
            tenant=order.tenant,
            state=order.state.value,
            source_platform=order.source_platform,
            external_id=details.external_id,
            site=details.site,
            equipment=details.equipment,
            category=details.category,
            priority=details.priority,
            description=details.description,
            requester=details.requester,
            required_parts=details.required_parts,
            received_at=order.received_at,
            updated_at=order.updated_at,
            timeline=tuple(
                TimelineEntryView(
                    entry_id=entry.entry_id,
                    at=entry.at,
                    kind=entry.kind,
                    summary=entry.summary,
                    event_type=entry.event_type,
                    details=dict(entry.details),
                )
                for entry in oldest_first[:TIMELINE_VIEW_LIMIT]
            ),
        )


__all__ = ["MemoryWorkOrderQueries", "MemoryWorkOrders"]
