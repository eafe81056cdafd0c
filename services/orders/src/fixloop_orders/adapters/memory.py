"""The work orders in memory, on :class:`fixloop_shared.memory.MemoryStore`.

The repository keeps the same promises as the MongoDB one (one work order per external key, saves
guarded by version, timeline entries appended), checked by the same contract tests, so use cases
can be tested without a store; the queries read the committed work orders and timelines the way
the partner API sees them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from fixloop_orders.adapters.mongo import TIMELINE_VIEW_LIMIT, request_key, timer_id
from fixloop_orders.app.ports import (
    ConcurrentUpdateError,
    ExternalOrderConflictError,
    OfferRecord,
    OfferStatus,
    RecordedAnswer,
    TimerKind,
)
from fixloop_orders.app.queries import (
    OfferPosition,
    OfferView,
    PagePosition,
    TimelineEntryView,
    WorkOrderFilter,
    WorkOrderView,
    view_of,
)
from fixloop_orders.domain.work_order import ExternalOrderKey, TimelineEntry, WorkOrder
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryState, MemoryStore, MemoryUnitOfWork
from fixloop_shared.vocabulary import WorkOrderState

WORK_ORDERS = "work_orders"
TIMELINE = "timeline"
OFFERS = "offers"
LIFECYCLE_TIMERS = "lifecycle_timers"
REQUESTS = "requests"


def _state_of(store: MemoryStore, uow: UnitOfWork | None) -> MemoryState:
    if uow is None:
        return store.state
    if not isinstance(uow, MemoryUnitOfWork):
        msg = f"the in-memory repository was given {type(uow).__name__}"
        raise TypeError(msg)
    return uow.session


class MemoryWorkOrders:
    """The :class:`~fixloop_orders.app.ports.WorkOrderRepository` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _state(self, uow: UnitOfWork | None) -> MemoryState:
        return _state_of(self._store, uow)

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

    async def get_job(
        self, uow: UnitOfWork | None, contractor_id: str, work_order_id: str
    ) -> WorkOrder | None:
        doc = self._state(uow).collection(WORK_ORDERS).get(work_order_id)
        if doc is None or doc["order"].contractor_id != contractor_id:
            return None
        order: WorkOrder = copy.deepcopy(doc["order"])
        return order

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        orders = self._state(uow).collection(WORK_ORDERS)
        if order.work_order_id in orders or await self.find_id_by_key(uow, order.key):
            raise ExternalOrderConflictError(str(order.key))
        order.stored_version = order.version
        orders[order.work_order_id] = {"order": self._stored(order)}
        self._append_entries(uow, order)

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        orders = self._state(uow).collection(WORK_ORDERS)
        stored = orders.get(order.work_order_id)
        if (
            stored is None
            or stored["order"].tenant != order.tenant
            or stored["order"].version != order.stored_version
        ):
            msg = f"work order {order.work_order_id} changed while it was being updated"
            raise ConcurrentUpdateError(msg)
        order.stored_version = order.version
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


class MemoryOfferBook:
    """The :class:`~fixloop_orders.app.ports.OfferBook` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, uow: UnitOfWork, offer: OfferRecord) -> None:
        _state_of(self._store, uow).collection(OFFERS).setdefault(offer.offer_id, {"offer": offer})

    async def get(self, uow: UnitOfWork | None, offer_id: str) -> OfferRecord | None:
        doc = _state_of(self._store, uow).collection(OFFERS).get(offer_id)
        return None if doc is None else doc["offer"]

    async def settle(
        self, uow: UnitOfWork, offer_id: str, status: OfferStatus, at: datetime
    ) -> bool:
        offers = _state_of(self._store, uow).collection(OFFERS)
        doc = offers.get(offer_id)
        if doc is None or doc["offer"].status is not OfferStatus.OPEN:
            return False
        offers[offer_id] = {"offer": replace(doc["offer"], status=status, settled_at=at)}
        return True


class MemoryLifecycleTimers:
    """The :class:`~fixloop_orders.app.ports.LifecycleTimers` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def set(
        self, uow: UnitOfWork, *, tenant: str, work_order_id: str, kind: TimerKind, at: datetime
    ) -> None:
        _state_of(self._store, uow).collection(LIFECYCLE_TIMERS)[timer_id(work_order_id, kind)] = {
            "tenant": tenant,
            "work_order_id": work_order_id,
            "kind": kind.value,
            "at": at,
        }

    async def clear(self, uow: UnitOfWork, work_order_id: str, kind: TimerKind) -> None:
        _state_of(self._store, uow).collection(LIFECYCLE_TIMERS).pop(
            timer_id(work_order_id, kind), None
        )

    def pending(self) -> dict[str, datetime]:
        """Committed timers: ``<work order id>:<kind>`` -> when it falls due."""
        timers = self._store.state.collection(LIFECYCLE_TIMERS)
        return {key: doc["at"] for key, doc in timers.items()}


class MemoryRequestLog:
    """The :class:`~fixloop_orders.app.ports.RequestLog` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def find(
        self, uow: UnitOfWork | None, principal_id: str, request_id: str
    ) -> RecordedAnswer | None:
        doc = (
            _state_of(self._store, uow)
            .collection(REQUESTS)
            .get(request_key(principal_id, request_id))
        )
        return None if doc is None else doc["answer"]

    async def record(
        self,
        uow: UnitOfWork,
        principal_id: str,
        request_id: str,
        answer: RecordedAnswer,
        *,
        at: datetime,
    ) -> None:
        requests = _state_of(self._store, uow).collection(REQUESTS)
        key = request_key(principal_id, request_id)
        if key in requests:
            msg = f"request {request_id!r} of {principal_id!r} was answered meanwhile"
            raise ConcurrentUpdateError(msg)
        requests[key] = {"answer": answer, "at": at}


def _newest_first(views: list[WorkOrderView], after: PagePosition | None) -> list[WorkOrderView]:
    ordered = sorted(views, key=lambda v: (v.updated_at, v.work_order_id), reverse=True)
    if after is None:
        return ordered
    cut = (after.updated_at, after.work_order_id)
    return [v for v in ordered if (v.updated_at, v.work_order_id) < cut]


class MemoryWorkOrderQueries:
    """The :class:`~fixloop_orders.app.queries.WorkOrderQueries` on the committed state."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _orders(self) -> list[WorkOrder]:
        return [doc["order"] for doc in self._store.state.collection(WORK_ORDERS).values()]

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
        return view_of(
            order,
            [
                TimelineEntryView(
                    entry_id=entry.entry_id,
                    at=entry.at,
                    kind=entry.kind,
                    summary=entry.summary,
                    event_type=entry.event_type,
                    details=dict(entry.details),
                )
                for entry in oldest_first[:TIMELINE_VIEW_LIMIT]
            ],
        )

    async def list_work_orders(
        self,
        tenant: str,
        wanted: WorkOrderFilter,
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        views = [
            view_of(order)
            for order in self._orders()
            if order.tenant == tenant
            and (not wanted.states or order.state in wanted.states)
            and (wanted.site_id is None or order.details.site.site_id == wanted.site_id)
            and (
                wanted.equipment_class is None
                or order.details.equipment.equipment_class == wanted.equipment_class
            )
            and (wanted.updated_since is None or order.updated_at >= wanted.updated_since)
        ]
        return _newest_first(views, after)[:limit]

    async def list_jobs(
        self,
        contractor_id: str,
        states: frozenset[WorkOrderState],
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        views = [
            view_of(order)
            for order in self._orders()
            if order.contractor_id == contractor_id and (not states or order.state in states)
        ]
        return _newest_first(views, after)[:limit]

    async def list_offers(
        self,
        contractor_id: str,
        *,
        open_only: bool,
        after: OfferPosition | None,
        limit: int,
    ) -> list[OfferView]:
        offers = sorted(
            (
                doc["offer"]
                for doc in self._store.state.collection(OFFERS).values()
                if doc["offer"].contractor_id == contractor_id
                and (not open_only or doc["offer"].status is OfferStatus.OPEN)
            ),
            key=lambda offer: (offer.offered_at, offer.offer_id),
        )
        if after is not None:
            offers = [
                o for o in offers if (o.offered_at, o.offer_id) > (after.offered_at, after.offer_id)
            ]
        orders = self._store.state.collection(WORK_ORDERS)
        result = []
        for offer in offers[:limit]:
            doc = orders.get(offer.work_order_id)
            order = None if doc is None or doc["order"].tenant != offer.tenant else doc["order"]
            result.append(OfferView(offer=offer, order=None if order is None else view_of(order)))
        return result


__all__ = [
    "MemoryLifecycleTimers",
    "MemoryOfferBook",
    "MemoryRequestLog",
    "MemoryWorkOrderQueries",
    "MemoryWorkOrders",
]
