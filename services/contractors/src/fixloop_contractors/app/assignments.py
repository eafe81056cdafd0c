"""Use cases: the work order's lifecycle, as the orders service reports it, applied to its offers.

Assigned, offer declined, cancelled, work completed and reopened each change the order's offers
(see :mod:`fixloop_contractors.domain.lifecycle`) and the contractors' load, and tell the
contractors whose open offers were withdrawn (``fixloop.assignment.withdrawn.v1``), all in the
kernel's unit of work with the claim of the event. A change is written only if the offer is still
as it was read, so an offer is accepted, declined or withdrawn at most once, and a job's count
moves once per step, whatever is delivered again.

An order or offer this service has no record of (an order older than its records, an order
nobody could be offered) is nothing to act on: the result says so, and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fixloop_contractors.app.dispatch import to_millis
from fixloop_contractors.app.ports import OfferLedger
from fixloop_contractors.domain.lifecycle import (
    Changes,
    OfferChange,
    offer_declined,
    order_assigned,
    order_cancelled,
    order_reopened,
    work_completed,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import (
    AssignmentWithdrawn,
    LifecycleFacts,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOfferDeclined,
    WorkOrderReopened,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


class LifecycleOutcome(StrEnum):
    APPLIED = "applied"
    """Offers or jobs changed."""
    UNCHANGED = "unchanged"
    """Nothing left to change: the step was applied already, or its offers are no longer open."""
    UNKNOWN = "unknown"
    """The work order, or the offer the step names, is not known here; nothing was recorded."""


@dataclass(frozen=True, slots=True)
class LifecycleResult:
    outcome: LifecycleOutcome
    changes: Changes = ()
    """The changes written."""

    @property
    def withdrawn(self) -> tuple[str, ...]:
        """The offers withdrawn (each announced with ``fixloop.assignment.withdrawn.v1``)."""
        return tuple(c.after.offer_id for c in self.changes if c.withdrawn)


UNKNOWN = LifecycleResult(LifecycleOutcome.UNKNOWN)


def occurred_at(facts: LifecycleFacts) -> datetime:
    """When the step happened, in UTC at the precision it is stored with."""
    return to_millis(facts.occurred_at.astimezone(UTC))


class AssignmentTracker:
    """Follows each work order's offers and jobs through the order's lifecycle."""

    def __init__(self, ledger: OfferLedger) -> None:
        self._ledger = ledger

    async def assigned(self, event: Event[WorkOrderAssigned], uow: UnitOfWork) -> LifecycleResult:
        """The order was assigned through one of its offers: that one is accepted, the other
        open ones are withdrawn ("assigned to another contractor")."""
        facts = event.payload
        offer_id = facts.offer_id
        if offer_id is None:  # assigned without one of this service's offers
            return UNKNOWN
        at = occurred_at(facts)

        def decide(offers: Sequence[Offer]) -> Changes | None:
            accepted = next((o for o in offers if o.offer_id == offer_id), None)
            if accepted is not None and facts.contractor_id not in {None, accepted.contractor_id}:
                log.warning(
                    "work order assigned to another contractor than its offer was made to",
                    extra={
                        "work_order_id": facts.work_order_id,
                        "offer_id": offer_id,
                        "offered_to": accepted.contractor_id,
                        "assigned_to": facts.contractor_id,
                    },
                )
            return order_assigned(offers, offer_id=offer_id, at=at)

        return await self._apply(event, uow, decide)

    async def offer_declined(
        self, event: Event[WorkOrderOfferDeclined], uow: UnitOfWork
    ) -> LifecycleResult:
        """The contractor declined the offer: declined, with the reason given."""
        facts = event.payload
        at = occurred_at(facts)
        return await self._apply(
            event,
            uow,
            lambda offers: offer_declined(
                offers, offer_id=facts.offer_id, at=at, reason=facts.reason
            ),
        )

    async def cancelled(self, event: Event[WorkOrderCancelled], uow: UnitOfWork) -> LifecycleResult:
        """The order was cancelled: its open offers are withdrawn ("work order cancelled"), its
        open job, if it was assigned, is cancelled."""
        at = occurred_at(event.payload)
        return await self._apply(event, uow, lambda offers: order_cancelled(offers, at=at))

    async def work_completed(
        self, event: Event[WorkOrderWorkCompleted], uow: UnitOfWork
    ) -> LifecycleResult:
        """The contractor completed the work: its job is no longer open."""
        return await self._apply(event, uow, work_completed)

    async def reopened(self, event: Event[WorkOrderReopened], uow: UnitOfWork) -> LifecycleResult:
        """The work went back to the contractor: its job is open again."""
        contractor_id = event.payload.contractor_id
        if contractor_id is None:  # reopened without an assignee: no job to reopen
            return LifecycleResult(LifecycleOutcome.UNCHANGED)
        return await self._apply(
            event, uow, lambda offers: order_reopened(offers, contractor_id=contractor_id)
        )

    async def _apply(
        self,
        event: Event[Any],
        uow: UnitOfWork,
        decide: Callable[[Sequence[Offer]], Changes | None],
    ) -> LifecycleResult:
        envelope = event.envelope
        facts: LifecycleFacts = event.payload
        tx = self._ledger.within(uow)
        changes = decide(await tx.offers_of(facts.work_order_id, tenant=envelope.tenant))
        if changes is None:
            return UNKNOWN
        written: list[OfferChange] = []
        for change in changes:
            if not await tx.save_change(change):
                continue  # changed meanwhile: the change it was computed from is gone
            written.append(change)
            if change.withdrawn:
                withdrawn = change.after
                assert withdrawn.closed_at is not None  # noqa: S101 - set when withdrawn
                assert withdrawn.reason is not None  # noqa: S101 - set when withdrawn
                tx.emit(
                    AssignmentWithdrawn(
                        work_order_id=withdrawn.work_order_id,
                        offer_id=withdrawn.offer_id,
                        contractor_id=withdrawn.contractor_id,
                        reason=withdrawn.reason,
                        withdrawn_at=withdrawn.closed_at,
                    ),
                    topic=Topic.CONTRACTORS_EVENTS,
                    key=facts.work_order_id,
                    tenant=envelope.tenant,
                    correlationid=envelope.correlationid,
                )
        if not written:
            return LifecycleResult(LifecycleOutcome.UNCHANGED)
        return LifecycleResult(LifecycleOutcome.APPLIED, tuple(written))


__all__ = [
    "AssignmentTracker",
    "LifecycleOutcome",
    "LifecycleResult",
    "occurred_at",
]
