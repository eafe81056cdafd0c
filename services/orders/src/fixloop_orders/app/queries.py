"""Read side of the orders service: what the partner API and the CLI may see of a work order.

The views are plain immutable values built by a query implementation (MongoDB in production);
the gRPC servicer only maps them to the wire. Every query is scoped to one tenant, which the
caller takes from its authenticated identity, never from a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fixloop_orders.domain.details import Equipment, PartLine, Requester, Site
from fixloop_shared.vocabulary import Category, Priority


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


class WorkOrderQueries(Protocol):
    """Reads work orders of one tenant."""

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        """The tenant's work order with this id, or None if the tenant has no such order.

        An order that exists for another tenant is None too: callers cannot tell the two apart.
        """
        ...


__all__ = ["TimelineEntryView", "WorkOrderQueries", "WorkOrderView"]
