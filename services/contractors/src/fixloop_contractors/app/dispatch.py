"""Use case: a work order was received; offer it to one eligible contractor, or say why nobody.

Claim of the consumed event, the decision record (unique per work order), the contractor's load
change and the outgoing event are one transaction: a redelivered or duplicated event never offers
the same order twice, and an offer is never recorded without its event (or the other way round).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from fixloop_contractors.app.ports import DispatchLedger
from fixloop_contractors.domain.dispatch import (
    DEFAULT_CONSIDERED_LIMIT,
    ContractorChosen,
    DispatchRequest,
    choose_contractor,
)
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import (
    AssignmentOffered,
    AssignmentUnfilled,
    UnfilledReason,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_millis(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: stored and published times must be the same instant."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


class DispatchOutcome(StrEnum):
    OFFERED = "offered"
    UNFILLED = "unfilled"
    ALREADY_DECIDED = "already_decided"


@dataclass(frozen=True, slots=True)
class DispatchResult:
    outcome: DispatchOutcome
    contractor_id: str | None = None
    offer_id: str | None = None
    reason: str | None = None


def dispatch_request(order: WorkOrderReceived) -> DispatchRequest:
    return DispatchRequest(
        work_order_id=order.work_order_id,
        tenant=order.tenant,
        equipment_class=order.equipment.equipment_class,
        country=order.site.address.country,
        postal_code=order.site.address.postal_code,
    )


class WorkOrderDispatcher:
    def __init__(
        self,
        ledger: DispatchLedger,
        *,
        offer_ttl: timedelta,
        clock: Clock = utc_now,
        ids: Callable[[], str] = new_id,
        considered_limit: int = DEFAULT_CONSIDERED_LIMIT,
    ) -> None:
        self._ledger = ledger
        self._offer_ttl = offer_ttl
        self._clock = clock
        self._ids = ids
        self._considered_limit = considered_limit

    async def work_order_received(
        self, event: Event[WorkOrderReceived], uow: UnitOfWork
    ) -> DispatchResult:
        """Offer the work order to one eligible contractor, or record why nobody can take it."""
        envelope, order = event.envelope, event.payload
        request = dispatch_request(order)
        tx = self._ledger.within(uow)
        if await tx.decision_exists(request.work_order_id):
            return DispatchResult(DispatchOutcome.ALREADY_DECIDED)
        now = to_millis(self._clock())
        decision = choose_contractor(
            request,
            await tx.candidates(request),
            now,
            considered_limit=self._considered_limit,
        )
        if isinstance(decision, ContractorChosen):
            contractor = decision.contractor
            offer = Offer.open(
                offer_id=self._ids(),
                request=request,
                contractor_id=contractor.contractor_id,
                at=now,
                ttl=self._offer_ttl,
            )
            await tx.save_offer(offer, request)
            tx.emit(
                AssignmentOffered(
                    work_order_id=offer.work_order_id,
                    offer_id=offer.offer_id,
                    contractor_id=contractor.contractor_id,
                    contractor_name=contractor.name,
                    offered_at=offer.offered_at,
                    expires_at=offer.expires_at,
                ),
                topic=Topic.CONTRACTORS_EVENTS,
                key=request.work_order_id,
                tenant=request.tenant,
                correlationid=envelope.correlationid,
            )
            return DispatchResult(
                DispatchOutcome.OFFERED,
                contractor_id=contractor.contractor_id,
                offer_id=offer.offer_id,
            )
        await tx.save_unfilled(
            decision_id=self._ids(), request=request, decision=decision, decided_at=now
        )
        tx.emit(
            AssignmentUnfilled(
                work_order_id=request.work_order_id,
                reason=decision.reason,
                considered=[
                    UnfilledReason(contractor_id=a.contractor_id, reasons=list(a.reasons))
                    for a in decision.considered
                ],
                decided_at=now,
            ),
            topic=Topic.CONTRACTORS_EVENTS,
            key=request.work_order_id,
            tenant=request.tenant,
            correlationid=envelope.correlationid,
        )
        return DispatchResult(DispatchOutcome.UNFILLED, reason=decision.reason)


__all__ = [
    "DispatchOutcome",
    "DispatchResult",
    "WorkOrderDispatcher",
    "dispatch_request",
    "to_millis",
    "utc_now",
]
