"""Answers of the partner API's reads, kept in memory until what they show changes.

A read (``GetWorkOrder``, ``ListWorkOrders``, ``ListOffers``, ``ListJobs``) is answered from the
store once; the answer is kept, keyed by the caller's tenant or contractor and the whole request,
and given again until one of its **scopes** changes:

- ``order:<id>`` — the work order (its document and its timeline): ``GetWorkOrder``;
- ``tenant:<tenant>`` — any work order of the tenant: ``ListWorkOrders``;
- ``contractors`` — any work order or offer: ``ListOffers`` and ``ListJobs`` (an offer shows its
  order, and a job list follows every assignment).

What changes a scope:

1. **This pod's writes**, at commit: :class:`ObservedWorkOrders` and :class:`ObservedOfferBook`
   wrap the repositories and name the scopes of everything a unit of work wrote once it has
   committed (never for a rollback). A pod's own writes are seen by its next read.
2. **Other pods' writes**, from the topics (:class:`~fixloop_orders.adapters.change_feed.\
OrderChangeFeed`): every lifecycle step is published on the work order events topic after its
   commit, so its record changes the order's scopes at once; an event of another service about an
   order (an offer, a reservation, a clock, a notice) is written to the order's timeline by
   whichever pod consumes it, a moment later, so its record makes the order's scopes **unsettled**
   for ``settle_seconds``: no answer read before that moment is kept or given.
3. **Age**: no answer is older than ``max_age_seconds``, whatever happened.

An answer whose read began before a change of one of its scopes is never given: each entry
remembers when its read began (its ticket), so a read that overlapped a write cannot keep the
older answer. Answers that depend on the clock (an offer is open until it expires) carry the moment
they stop being true. While the change feed is not following the topics (starting, broker away)
nothing is kept or given: reads go to the store.

The size of everything kept is bounded (``max_bytes``, oldest first out).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from fixloop_orders.app.ports import (
    OfferBook,
    OfferRecord,
    OfferStatus,
    WorkOrderRepository,
)
from fixloop_orders.domain.work_order import ExternalOrderKey, WorkOrder
from fixloop_shared.kernel import UnitOfWork

CONTRACTORS_SCOPE = "contractors"
DEFAULT_MAX_AGE_SECONDS = 60.0
DEFAULT_SETTLE_SECONDS = 5.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def order_scope(work_order_id: str) -> str:
    return f"order:{work_order_id}"


def tenant_scope(tenant: str) -> str:
    return f"tenant:{tenant}"


def order_scopes(tenant: str, work_order_id: str) -> tuple[str, ...]:
    """Everything a change of one work order may change: it, its tenant's lists, the
    contractors' lists."""
    return (order_scope(work_order_id), tenant_scope(tenant), CONTRACTORS_SCOPE)


class Sized(Protocol):
    def ByteSize(self) -> int: ...  # noqa: N802 - protobuf's name


V = TypeVar("V", bound=Sized)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    answer: V
    ticket: float
    scopes: tuple[str, ...]
    until: datetime | None
    size: int


class ReadCache(Generic[V]):
    """Answers by key, each valid until one of its scopes changes (see the module)."""

    def __init__(
        self,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        followed: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age_seconds
        self.max_bytes = max_bytes
        self.settle = settle_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._void_until: dict[str, float] = {}
        """Per scope: answers whose read began before this moment are void."""
        self._changes: deque[tuple[float, str]] = deque()
        self.followed = followed
        """Whether other pods' writes reach it from a change feed (else it alone writes)."""
        self._live = max_age_seconds > 0 and not followed
        self._since = -1.0
        """Reads that began before this moment (the last resume) are not kept."""
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_age > 0

    @property
    def live(self) -> bool:
        """Whether answers are kept and given (the change feed follows the topics)."""
        return self._live

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self) -> float:
        """Taken before a read from the store; :meth:`keep` needs it."""
        return self._clock()

    def lookup(self, key: Hashable, *, now: datetime | None = None) -> V | None:
        """The kept answer for ``key`` if it is still true (``now``: the domain's time, for
        answers that stop being true at a moment)."""
        if not self._live:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if (
            self._clock() - entry.ticket > self.max_age
            or self._void(entry.scopes, entry.ticket)
            or (entry.until is not None and (now is None or now >= entry.until))
        ):
            self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry.answer

    def keep(
        self,
        key: Hashable,
        answer: V,
        ticket: float,
        scopes: Sequence[str],
        *,
        until: datetime | None = None,
    ) -> None:
        """Keep ``answer`` (read since ``ticket``) unless one of its scopes changed meanwhile."""
        if not self._live or ticket < self._since or self._void(scopes, ticket):
            return
        size = answer.ByteSize() + 64
        if size > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = _Entry(answer, ticket, tuple(scopes), until, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def changed(self, scopes: Iterable[str], *, settling: bool = False) -> None:
        """``scopes`` changed now; ``settling``: they go on changing for ``settle_seconds``."""
        now = self._clock()
        until = now + self.settle if settling else now
        for scope in scopes:
            if self._void_until.get(scope, -1.0) < until:
                self._void_until[scope] = until
                self._changes.append((until, scope))
        # A change older than the oldest answer that can still be given matters no more.
        horizon = now - self.max_age
        while self._changes and self._changes[0][0] < horizon:
            at, scope = self._changes.popleft()
            if self._void_until.get(scope) == at:
                del self._void_until[scope]

    def suspend(self) -> None:
        """Stop keeping and giving answers, and forget those kept (changes may be missed)."""
        self._live = False
        self._entries.clear()
        self._bytes = 0

    def resume(self) -> None:
        if self.enabled:
            self._live = True
            self._since = self._clock()

    def _void(self, scopes: Iterable[str], ticket: float) -> bool:
        void_until = self._void_until
        return any(void_until.get(scope, -1.0) >= ticket for scope in scopes)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size


ChangeListener = Callable[[Sequence[str]], None]


class ObservedWorkOrders:
    """A :class:`WorkOrderRepository` that names the scopes of each work order it writes once
    the unit of work has committed."""

    def __init__(self, inner: WorkOrderRepository, changed: ChangeListener) -> None:
        self._inner = inner
        self._changed = changed

    def _announce(self, uow: UnitOfWork, order: WorkOrder) -> None:
        scopes = order_scopes(order.tenant, order.work_order_id)
        uow.after_commit(lambda: self._changed(scopes))

    async def find_id_by_key(self, uow: UnitOfWork | None, key: ExternalOrderKey) -> str | None:
        return await self._inner.find_id_by_key(uow, key)

    async def get(
        self, uow: UnitOfWork | None, tenant: str, work_order_id: str
    ) -> WorkOrder | None:
        return await self._inner.get(uow, tenant, work_order_id)

    async def get_job(
        self, uow: UnitOfWork | None, contractor_id: str, work_order_id: str
    ) -> WorkOrder | None:
        return await self._inner.get_job(uow, contractor_id, work_order_id)

    async def load(self, uow: UnitOfWork, tenant: str, work_order_ids: Sequence[str]) -> None:
        await self._inner.load(uow, tenant, work_order_ids)

    async def add(self, uow: UnitOfWork, order: WorkOrder) -> None:
        await self._inner.add(uow, order)
        self._announce(uow, order)

    async def save(self, uow: UnitOfWork, order: WorkOrder) -> None:
        await self._inner.save(uow, order)
        self._announce(uow, order)

    async def append_timeline(self, uow: UnitOfWork, order: WorkOrder) -> None:
        await self._inner.append_timeline(uow, order)
        self._announce(uow, order)


class ObservedOfferBook:
    """An :class:`OfferBook` that names the contractors' scope once a write of it committed."""

    def __init__(self, inner: OfferBook, changed: ChangeListener) -> None:
        self._inner = inner
        self._changed = changed

    def _announce(self, uow: UnitOfWork) -> None:
        uow.after_commit(lambda: self._changed((CONTRACTORS_SCOPE,)))

    async def add(self, uow: UnitOfWork, offer: OfferRecord) -> None:
        await self._inner.add(uow, offer)
        self._announce(uow)

    async def get(self, uow: UnitOfWork | None, offer_id: str) -> OfferRecord | None:
        return await self._inner.get(uow, offer_id)

    async def settle(
        self, uow: UnitOfWork, offer_id: str, status: OfferStatus, at: datetime
    ) -> bool:
        settled = await self._inner.settle(uow, offer_id, status, at)
        if settled:
            self._announce(uow)
        return settled


__all__ = [
    "CONTRACTORS_SCOPE",
    "ObservedOfferBook",
    "ObservedWorkOrders",
    "ReadCache",
    "order_scope",
    "order_scopes",
    "tenant_scope",
]
