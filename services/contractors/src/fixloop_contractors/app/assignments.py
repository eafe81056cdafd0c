"""Use cases: the work order's lifecycle, as the orders service reports it, applied to its offers.

Assigned, offer declined, cancelled, work completed and reopened each change the order's offers
(see :mod:`fixloop_contractors.domain.lifecycle`) and the contractors' load, and tell the
contractors whose open offers were withdrawn (``fixloop.assignment.withdrawn.v1``), all in the
kernel's unit of work with the claim of the event. An offer declined
(``fixloop.assignment.declined.v1``) or run out (``fixloop.assignment.expired.v1``, from the
service's own expiry timer) sends the order on to its next dispatch round in the same unit of
work (:meth:`~fixloop_contractors.app.dispatch.WorkOrderDispatcher.next_round`). A change is
written only if the offer is still as it was read, so an offer is accepted, declined or withdrawn
at most once, and a job's count moves once per step, whatever is delivered again.

An order or offer this service has no record of (an order older than its records, an order
nobody could be offered) is nothing to act on: the result says so, and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fixloop_contractors.app.announcements import announcement_of
from fixloop_contractors.app.dispatch import (
    Clock,
    DispatchResult,
    WorkOrderDispatcher,
    to_millis,
    utc_now,
)
from fixloop_contractors.app.ports import OfferLedger, OfferTransaction
from fixloop_contractors.domain.lifecycle import (
    Changes,
    OfferChange,
    offer_declined,
    offer_ran_out,
    order_assigned,
    order_cancelled,
    order_reopened,
    work_completed,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import (
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
    NOT_DUE = "not_due"
    """The offer is open and its time is not up yet (a clock behind another pod's)."""


@dataclass(frozen=True, slots=True)
class LifecycleResult:
    outcome: LifecycleOutcome
    changes: Changes = ()
    """The changes written."""
    next_round: DispatchResult | None = None
    """The dispatch round that followed a declined or run-out offer."""

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

    def __init__(
        self,
        ledger: OfferLedger,
        dispatcher: WorkOrderDispatcher | None = None,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._ledger = ledger
        self._dispatcher = dispatcher
        """Makes the next round after a declined or run-out offer (None: no next rounds)."""
        self._clock = clock

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
        """The contractor declined the offer: declined, with the reason given; the order goes to
        its next dispatch round."""
        facts = event.payload
        at = occurred_at(facts)
        result = await self._apply(
            event,
            uow,
            lambda offers: offer_declined(
                offers, offer_id=facts.offer_id, at=at, reason=facts.reason
            ),
        )
        return await self._then_next_round(result, uow, event.envelope.correlationid)

    async def offer_ran_out(
        self,
        uow: UnitOfWork,
        *,
        tenant: str,
        work_order_id: str,
        offer_id: str,
        correlationid: str,
    ) -> LifecycleResult:
        """The expiry of ``offer_id`` fell due: if it is still open and its time is up, it times
        out and the order goes to its next dispatch round; otherwise nothing changes."""
        tx = self._ledger.within(uow)
        at = to_millis(self._clock())
        offers = await tx.offers_of(work_order_id, tenant=tenant)
        if any(o.offer_id == offer_id and o.is_open and not o.is_expired(at) for o in offers):
            return LifecycleResult(LifecycleOutcome.NOT_DUE)
        changes = offer_ran_out(offers, offer_id=offer_id, at=at)
        if changes is None:
            return UNKNOWN
        written = await self._write(
            tx, changes, key=work_order_id, tenant=tenant, cid=correlationid
        )
        result = _result(written)
        return await self._then_next_round(result, uow, correlationid)

    async def _then_next_round(
        self, result: LifecycleResult, uow: UnitOfWork, correlationid: str
    ) -> LifecycleResult:
        ended = [c.after for c in result.changes if c.ended_unanswered]
        if not ended or self._dispatcher is None:
            return result
        offer = ended[0]
        following = await self._dispatcher.next_round(
            uow, work_order_id=offer.work_order_id, tenant=offer.tenant, correlationid=correlationid
        )
        return replace(result, next_round=following)

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
        written = await self._write(
            tx,
            changes,
            key=facts.work_order_id,
            tenant=envelope.tenant,
            cid=envelope.correlationid,
        )
        return _result(written)

    async def _write(
        self, tx: OfferTransaction, changes: Changes, *, key: str, tenant: str, cid: str
    ) -> list[OfferChange]:
        """Write each change still possible, and announce it; the changes written."""
        written: list[OfferChange] = []
        for change in changes:
            if not await tx.save_change(change):
                continue  # changed meanwhile: the change it was computed from is gone
            written.append(change)
            announcement = announcement_of(change)
            if announcement is not None:
                tx.emit(
                    announcement,
                    topic=Topic.CONTRACTORS_EVENTS,
                    key=key,
                    tenant=tenant,
                    correlationid=cid,
                )
        return written


def _result(written: Sequence[OfferChange]) -> LifecycleResult:
    if not written:
        return LifecycleResult(LifecycleOutcome.UNCHANGED)
    return LifecycleResult(LifecycleOutcome.APPLIED, tuple(written))


__all__ = [
    "AssignmentTracker",
    "LifecycleOutcome",
    "LifecycleResult",
    "occurred_at",
]
