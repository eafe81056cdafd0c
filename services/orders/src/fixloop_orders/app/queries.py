"""Read side of the orders service: what the partner API and the CLI may see of a work order.

The views are plain immutable values built by a query implementation (MongoDB in production);
the gRPC servicer only maps them to the wire. Every query is scoped to one tenant, which the
caller takes from its authenticated identity, never from a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from fixloop_orders.app.ports import OfferRecord
from fixloop_orders.domain.details import Equipment, PartLine, Requester, Site
from fixloop_orders.domain.lifecycle import Completion
from fixloop_orders.domain.work_order import TimelineEntry, WorkOrder, replay
from fixloop_shared.vocabulary import Category, Priority, WorkOrderState


@dataclass(frozen=True, slots=True)
class TimelineEntryView:
    """One entry of a work order's append-only audit trail."""

    entry_id: str
    at: datetime
    kind: str
    summary: str
    event_type: str | None
    details: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class WorkOrderView:
    """A work order as its tenant sees it, timeline included (oldest entry first)."""

    work_order_id: str
    tenant: str
    state: str
    source_platform: str
    external_id: str
    site: Site
    equipment: Equipment
    category: Category
    priority: Priority
    description: str
    requester: Requester
    required_parts: tuple[PartLine, ...]
    received_at: datetime
    updated_at: datetime
    timeline: tuple[TimelineEntryView, ...]
    version: int = 1
    contractor_id: str | None = None
    window: tuple[datetime, datetime] | None = None
    eta: datetime | None = None
    completion: Completion | None = None
    verify_by: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    state_as_of: str | None = None
    """The state at the moment a view "as of" was asked for (replayed from the timeline)."""
    follow_up_of: str | None = None


def view_of(order: WorkOrder, timeline: Sequence[TimelineEntryView] = ()) -> WorkOrderView:
    """The view of a work order held in memory (the answer of a mutation)."""
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
        timeline=tuple(timeline),
        version=order.version,
        contractor_id=order.contractor_id,
        window=order.window,
        eta=order.eta,
        completion=order.completion,
        verify_by=order.verify_by,
        closed_at=order.closed_at,
        reopen_count=order.reopen_count,
        follow_up_of=order.follow_up_of,
    )


def as_of(view: WorkOrderView, moment: datetime) -> WorkOrderView:
    """The view cut at ``moment``: the timeline up to it, and the state replayed from it."""
    kept = tuple(entry for entry in view.timeline if entry.at <= moment)
    state = replay(
        TimelineEntry(
            entry_id=entry.entry_id,
            at=entry.at,
            kind=entry.kind,
            summary=entry.summary,
            event_type=entry.event_type,
            details=entry.details,
        )
        for entry in kept
    )
    return replace(view, timeline=kept, state_as_of=state.value)


@dataclass(frozen=True, slots=True)
class WorkOrderFilter:
    """What a list of work orders is narrowed to (all of it: none of these set)."""

    states: frozenset[WorkOrderState] = frozenset()
    site_id: str | None = None
    equipment_class: str | None = None
    updated_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where the previous page ended: the last order's ``updated_at`` and id (newest first)."""

    updated_at: datetime
    work_order_id: str


@dataclass(frozen=True, slots=True)
class OfferPosition:
    """Where the previous page of offers ended (oldest first)."""

    offered_at: datetime
    offer_id: str


@dataclass(frozen=True, slots=True)
class OfferView:
    """An offer with what the job is (no requester contact details)."""

    offer: OfferRecord
    order: WorkOrderView | None = field(default=None)


class WorkOrderQueries(Protocol):
    """Reads work orders of one tenant, or one contractor's offers and jobs."""

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        """The tenant's work order with this id, or None if the tenant has no such order.

        An order that exists for another tenant is None too: callers cannot tell the two apart.
        """
        ...

    async def list_work_orders(
        self,
        tenant: str,
        wanted: WorkOrderFilter,
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        """The tenant's orders matching ``wanted``, newest update first, after ``after`` (without
        timelines)."""
        ...

    async def list_jobs(
        self,
        contractor_id: str,
        states: frozenset[WorkOrderState],
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        """The orders assigned to the contractor, newest update first (without timelines)."""
        ...

    async def list_offers(
        self,
        contractor_id: str,
        *,
        open_only: bool,
        after: OfferPosition | None,
        limit: int,
    ) -> list[OfferView]:
        """The contractor's offers, oldest first, each with its order."""
        ...


__all__ = [
    "OfferPosition",
    "OfferView",
    "PagePosition",
    "TimelineEntryView",
    "WorkOrderFilter",
    "WorkOrderQueries",
    "WorkOrderView",
    "as_of",
    "view_of",
]
