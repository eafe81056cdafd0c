"""Use cases: offer a work order to the best eligible contractor, and to the next when an offer
is declined or runs out; after too many, or with nobody left, say why nobody.

Each decision is one round of the order's dispatch (round 1 on its receipt). The claim of the
consumed event (or the expiry that fired), the decision record (unique per work order and round),
the contractors' load change, the offer's expiry and the outgoing events are one transaction: a
redelivered or duplicated event never makes a round twice, and an offer is never recorded without
its event (or the other way round). A contractor that had an offer of the order (declined it, or
let it run out) is never offered it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from fixloop_contractors.app.announcements import announcement_of
from fixloop_contractors.app.contacts import contractor_contact
from fixloop_contractors.app.explain import (
    CandidateOutcome,
    DispatchExplanation,
    explain,
    weights_of,
)
from fixloop_contractors.app.ports import DispatchHistory, DispatchLedger, DispatchTransaction
from fixloop_contractors.domain.deadlines import (
    DeadlineStage,
    DeadlineVerdict,
    DispatchDeadlines,
    deadline_verdict,
)
from fixloop_contractors.domain.dispatch import (
    DEFAULT_CONSIDERED_LIMIT,
    DEFAULT_WEIGHTS,
    NO_PREFERENCES,
    ContractorChosen,
    DispatchRequest,
    EligibilityRule,
    TenantPreferences,
    assess,
    choose_contractor,
)
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.offers import Offer, OfferStatus
from fixloop_contractors.domain.scoring import ScoreWeights
from fixloop_shared.contracts import (
    AssignmentEscalated,
    AssignmentOffered,
    AssignmentUnfilled,
    UnfilledReason,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import DomainError
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import Priority

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
    """Nothing to decide: the round was decided already, an offer is open or was accepted, or
    the order was found unfilled (it waits for an operator)."""


@dataclass(frozen=True, slots=True)
class DispatchResult:
    outcome: DispatchOutcome
    contractor_id: str | None = None
    offer_id: str | None = None
    reason: str | None = None
    dispatch_round: int = 1
    offered_to: tuple[str, ...] = ()
    """Every contractor offered the order in this round (several for an emergency)."""


ALREADY_DECIDED = DispatchResult(DispatchOutcome.ALREADY_DECIDED)

ASSIGNED_BY_OPERATOR = "given to another contractor by an operator"
"""Why open offers are withdrawn when an operator gives the order to someone."""
OPERATOR_OFFER_TTL = timedelta(days=7)
"""An operator's assignment is not the contractor's to answer: its offer stands until the orders
service assigns the order (at once, or when it is back), however long that takes."""


DISPATCH_TIME_LIMIT = "the dispatch time limit was reached"
"""Why open offers are withdrawn when dispatch gives up on an order."""


def _duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


class OperatorAssignmentRefusedError(DomainError):
    """An operator's assignment the order or the contractor does not allow."""

    status = "FAILED_PRECONDITION"
    reason = "operator-assignment-refused"


def dispatch_request(order: WorkOrderReceived) -> DispatchRequest:
    return DispatchRequest(
        work_order_id=order.work_order_id,
        tenant=order.tenant,
        equipment_class=order.equipment.equipment_class,
        country=order.site.address.country,
        postal_code=order.site.address.postal_code,
    )


def _outcome_of(offer: Offer) -> str:
    """What became of an earlier offer, as an unfilled decision reports it."""
    if offer.status is OfferStatus.DECLINED:
        return f"declined the offer: {offer.reason}" if offer.reason else "declined the offer"
    if offer.status is OfferStatus.TIMED_OUT:
        return "did not answer the offer in time"
    if offer.status is OfferStatus.WITHDRAWN and offer.reason:
        return f"offer withdrawn: {offer.reason}"
    return f"offer {offer.status.value}"


class WorkOrderDispatcher:
    def __init__(
        self,
        ledger: DispatchLedger,
        *,
        offer_ttl: timedelta,
        emergency_offer_ttl: timedelta | None = None,
        max_rounds: int = 5,
        clock: Clock = utc_now,
        ids: Callable[[], str] = new_id,
        considered_limit: int = DEFAULT_CONSIDERED_LIMIT,
        weights: ScoreWeights = DEFAULT_WEIGHTS,
        preferences: Mapping[str, TenantPreferences] | None = None,
        emergency_fan_out: int = 1,
        deadlines: DispatchDeadlines | None = None,
    ) -> None:
        if max_rounds < 1 or emergency_fan_out < 1:
            msg = (
                f"an order is offered at least once to at least one contractor, not "
                f"{max_rounds} times to {emergency_fan_out}"
            )
            raise ValueError(msg)
        self._ledger = ledger
        self._offer_ttl = offer_ttl
        self._emergency_offer_ttl = emergency_offer_ttl or offer_ttl
        self._max_rounds = max_rounds
        self._clock = clock
        self._ids = ids
        self._considered_limit = considered_limit
        self._weights = weights
        self._preferences = dict(preferences or {})
        self._emergency_fan_out = emergency_fan_out
        self._deadlines = deadlines
        """When an untaken order is escalated and given up on (None: never)."""

    def offer_ttl(self, priority: Priority) -> timedelta:
        """How long a contractor has to answer an offer of an order of ``priority``."""
        if priority is Priority.EMERGENCY:
            return self._emergency_offer_ttl
        return self._offer_ttl

    async def work_order_received(
        self, event: Event[WorkOrderReceived], uow: UnitOfWork
    ) -> DispatchResult:
        """Offer the work order to the best eligible contractor, or record why nobody can."""
        envelope, order = event.envelope, event.payload
        request = dispatch_request(order)
        tx = self._ledger.within(uow)
        if await tx.decision_exists(request.work_order_id):
            return ALREADY_DECIDED
        return await self._decide(
            tx,
            request,
            order.priority,
            dispatch_round=1,
            offered_to=frozenset(),
            correlationid=envelope.correlationid,
        )

    async def next_round(
        self, uow: UnitOfWork, *, work_order_id: str, tenant: str, correlationid: str
    ) -> DispatchResult:
        """The order's latest offer was declined or ran out: offer it to the next best
        contractor that had no offer of it yet, or, after ``max_rounds`` offers or with nobody
        left, record why nobody can take it.

        Nothing happens while an offer of the order is open, once one was accepted, or once it
        was found unfilled (an operator decides then).
        """
        tx = self._ledger.within(uow)
        history = await tx.history(work_order_id, tenant=tenant)
        if history is None or history.unfilled or history.settled:
            return ALREADY_DECIDED
        if history.rounds >= self._max_rounds:
            return await self._out_of_rounds(tx, history, correlationid)
        return await self._decide(
            tx,
            history.request,
            history.priority,
            dispatch_round=history.rounds + 1,
            offered_to=history.offered_to,
            correlationid=correlationid,
        )

    async def assign_by_operator(
        self,
        uow: UnitOfWork,
        *,
        work_order_id: str,
        contractor_id: str,
        operator: str,
        reason: str,
        override_credentials: str | None = None,
    ) -> DispatchResult:
        """An operator gives the order to ``contractor_id`` (from the dispatch queue, or over
        the engine's choice): its open offers are withdrawn and the order is offered to the
        contractor as assigned by the operator (the orders service assigns it at once).

        Refused for an order that is not dispatched here or is assigned already, for a
        contractor that does not serve the order's tenant, and for one with an expired
        credential unless ``override_credentials`` says why. Every other rule (skill, area,
        capacity, rota, an earlier offer) is the operator's call, and kept in the explanation.
        """
        tx = self._ledger.within(uow)
        history = await tx.history(work_order_id, tenant=None)
        if history is None:
            msg = f"no dispatch decision for work order {work_order_id}"
            raise OperatorAssignmentRefusedError(msg)
        taken = [o for o in history.offers if o.job is not None]
        if taken:
            msg = f"work order {work_order_id} is assigned to {taken[-1].contractor_id} already"
            raise OperatorAssignmentRefusedError(msg)
        candidate = await tx.contractor(contractor_id)
        if candidate is None:
            msg = f"no contractor {contractor_id}"
            raise OperatorAssignmentRefusedError(msg)
        request, now = history.request, to_millis(self._clock())
        assessment = assess(
            candidate.contractor,
            request,
            now,
            open_offers=candidate.open_offers,
            open_jobs=candidate.open_jobs,
            declined=history.offered_to,
        )
        failed = assessment.failed_rules
        if EligibilityRule.TENANT in failed:
            msg = f"contractor {contractor_id} does not work for tenant {request.tenant}"
            raise OperatorAssignmentRefusedError(msg)
        if EligibilityRule.CREDENTIALS in failed and not override_credentials:
            problems = "; ".join(
                r for r in assessment.reasons if "credential" in r or "expire" in r
            )
            msg = (
                f"contractor {contractor_id} has an expired credential ({problems or 'expired'});"
                " give --override-credentials with a reason to assign all the same"
            )
            raise OperatorAssignmentRefusedError(msg)
        for offer in history.offers:
            if not offer.is_open:
                continue
            change = OfferChange(offer, offer.withdraw(now, ASSIGNED_BY_OPERATOR))
            announcement = announcement_of(change)
            if await tx.save_change(change) and announcement is not None:
                tx.emit(
                    announcement,
                    topic=Topic.CONTRACTORS_EVENTS,
                    key=work_order_id,
                    tenant=request.tenant,
                    correlationid=work_order_id,
                )
        dispatch_round = history.rounds + 1
        offer = Offer.open(
            offer_id=self._ids(),
            request=request,
            contractor_id=contractor_id,
            at=now,
            ttl=OPERATOR_OFFER_TTL,
            dispatch_round=dispatch_round,
        )
        why = reason
        if override_credentials and EligibilityRule.CREDENTIALS in failed:
            why = f"{reason} (credentials overridden: {override_credentials})"
        await tx.save_offer(offer, request, history.priority, correlationid=work_order_id)
        await tx.save_explanation(
            DispatchExplanation(
                decision_id=offer.offer_id,
                work_order_id=work_order_id,
                tenant=request.tenant,
                dispatch_round=dispatch_round,
                decided_at=now,
                offered_to=(contractor_id,),
                reason=f"assigned by operator {operator}: {why}"[:500],
                weights=weights_of(self._weights),
                candidates=(
                    CandidateOutcome(
                        contractor_id=contractor_id,
                        offered=True,
                        excluded=tuple(f"overridden: {r}" for r in assessment.reasons),
                    ),
                ),
                assessed=1,
            )
        )
        await tx.dequeue(work_order_id)
        await tx.forget_deadline(work_order_id)
        tx.emit(
            AssignmentOffered(
                work_order_id=work_order_id,
                offer_id=offer.offer_id,
                contractor_id=contractor_id,
                contractor_name=candidate.contractor.name,
                offered_at=offer.offered_at,
                expires_at=offer.expires_at,
                dispatch_round=dispatch_round,
                assigned_by=operator,
                reason=why[:500],
                contact=contractor_contact(candidate.contractor),
            ),
            topic=Topic.CONTRACTORS_EVENTS,
            key=work_order_id,
            tenant=request.tenant,
            correlationid=work_order_id,
        )
        return DispatchResult(
            DispatchOutcome.OFFERED,
            contractor_id=contractor_id,
            offer_id=offer.offer_id,
            dispatch_round=dispatch_round,
            offered_to=(contractor_id,),
        )

    async def deadline_reached(
        self,
        uow: UnitOfWork,
        *,
        work_order_id: str,
        tenant: str,
        stage: DeadlineStage,
        due_at: datetime,
        correlationid: str,
    ) -> DeadlineVerdict:
        """A dispatch deadline of the order fell due: escalate it to the operators (offers go
        on), or give up on it (its open offers withdrawn, reported unfilled); nothing if it was
        taken, found unfilled or cancelled meanwhile, or its time is not up on this clock.

        An escalation moves the order's deadline on to the time limit; every other verdict but
        NOT_DUE ends it.
        """
        tx = self._ledger.within(uow)
        now = to_millis(self._clock())
        history = await tx.history(work_order_id, tenant=tenant)
        offers = () if history is None else history.offers
        verdict = deadline_verdict(
            offers,
            unfilled=history is None or history.unfilled,
            stage=stage,
            due_at=due_at,
            now=now,
        )
        if verdict is DeadlineVerdict.NOT_DUE:
            return verdict
        if history is None or verdict is DeadlineVerdict.OVER:
            await tx.forget_deadline(work_order_id)
            return verdict
        since = min(o.offered_at for o in offers)
        if verdict is DeadlineVerdict.ESCALATE:
            open_to = [o.contractor_id for o in offers if o.is_open]
            reason = (
                f"not taken {_duration(now - since)} after its first offer "
                f"({len(offers)} made, {len(open_to)} still open)"
            )
            await tx.escalate_deadline(work_order_id, at=now, reason=reason)
            tx.emit(
                AssignmentEscalated(
                    work_order_id=work_order_id,
                    escalated_at=now,
                    waiting_since=since,
                    offers_made=len(offers),
                    open_offers=open_to[:50],
                    reason=reason,
                ),
                topic=Topic.CONTRACTORS_EVENTS,
                key=work_order_id,
                tenant=tenant,
                correlationid=correlationid,
            )
            return verdict
        ended: list[Offer] = []
        for offer in offers:
            if not offer.is_open:
                ended.append(offer)
                continue
            change = OfferChange(offer, offer.withdraw(now, DISPATCH_TIME_LIMIT))
            announcement = announcement_of(change)
            if await tx.save_change(change) and announcement is not None:
                tx.emit(
                    announcement,
                    topic=Topic.CONTRACTORS_EVENTS,
                    key=work_order_id,
                    tenant=tenant,
                    correlationid=correlationid,
                )
            ended.append(change.after)
        noun = "offer" if len(offers) == 1 else "offers"
        await self._out_of_rounds(
            tx,
            replace(history, offers=tuple(ended)),
            correlationid,
            reason=(
                f"no contractor took the work order in {_duration(now - since)} "
                f"({len(offers)} {noun} made; the time limit ends dispatch)"
            ),
        )
        return verdict

    async def _decide(
        self,
        tx: DispatchTransaction,
        request: DispatchRequest,
        priority: Priority,
        *,
        dispatch_round: int,
        offered_to: frozenset[str],
        correlationid: str,
    ) -> DispatchResult:
        now = to_millis(self._clock())
        fan_out = self._emergency_fan_out if priority is Priority.EMERGENCY else 1
        decision = choose_contractor(
            request,
            await tx.candidates(request, at=now),
            now,
            considered_limit=self._considered_limit,
            declined=offered_to,
            preferences=self._preferences.get(request.tenant, NO_PREFERENCES),
            weights=self._weights,
            fan_out=fan_out,
        )
        if isinstance(decision, ContractorChosen):
            chosen = decision.ranking.top(fan_out)
            offers: list[Offer] = []
            for slot, entry in enumerate(chosen):
                offer = Offer.open(
                    offer_id=self._ids(),
                    request=request,
                    contractor_id=entry.contractor_id,
                    at=now,
                    ttl=self.offer_ttl(priority),
                    dispatch_round=dispatch_round,
                    fan_slot=slot,
                )
                offers.append(offer)
                await tx.save_offer(offer, request, priority, correlationid=correlationid)
                tx.emit(
                    AssignmentOffered(
                        work_order_id=offer.work_order_id,
                        offer_id=offer.offer_id,
                        contractor_id=entry.contractor_id,
                        contractor_name=entry.contractor.name,
                        offered_at=offer.offered_at,
                        expires_at=offer.expires_at,
                        dispatch_round=dispatch_round,
                        contact=contractor_contact(entry.contractor),
                    ),
                    topic=Topic.CONTRACTORS_EVENTS,
                    key=request.work_order_id,
                    tenant=request.tenant,
                    correlationid=correlationid,
                )
            if dispatch_round == 1 and self._deadlines is not None:
                await tx.arm_deadline(
                    self._deadlines.of(
                        work_order_id=request.work_order_id,
                        tenant=request.tenant,
                        emergency=priority is Priority.EMERGENCY,
                        since=now,
                    ),
                    correlationid=correlationid,
                )
            await tx.save_explanation(
                explain(
                    decision.ranking,
                    decision_id=offers[0].offer_id,
                    dispatch_round=dispatch_round,
                    offered_to=tuple(o.contractor_id for o in offers),
                    reason=None,
                )
            )
            return DispatchResult(
                DispatchOutcome.OFFERED,
                contractor_id=offers[0].contractor_id,
                offer_id=offers[0].offer_id,
                dispatch_round=dispatch_round,
                offered_to=tuple(o.contractor_id for o in offers),
            )
        considered = [
            UnfilledReason(contractor_id=a.contractor_id, reasons=list(a.reasons))
            for a in decision.considered
        ]
        decision_id = self._ids()
        await tx.save_explanation(
            explain(
                decision.ranking,
                decision_id=decision_id,
                dispatch_round=dispatch_round,
                offered_to=(),
                reason=decision.reason,
            )
        )
        return await self._unfilled(
            tx,
            request,
            priority,
            decision_id=decision_id,
            reason=decision.reason,
            considered=considered,
            dispatch_round=dispatch_round,
            decided_at=now,
            correlationid=correlationid,
        )

    async def _out_of_rounds(
        self,
        tx: DispatchTransaction,
        history: DispatchHistory,
        correlationid: str,
        *,
        reason: str | None = None,
    ) -> DispatchResult:
        offers = history.offers
        noun = "offer" if len(offers) == 1 else "offers"
        reason = reason or (
            f"no contractor took the work order after {len(offers)} {noun} "
            f"(at most {self._max_rounds} are made before an operator decides)"
        )
        considered = [
            UnfilledReason(contractor_id=o.contractor_id, reasons=[_outcome_of(o)[:500]])
            for o in offers[: self._considered_limit]
        ]
        decision_id, decided_at = self._ids(), to_millis(self._clock())
        await tx.save_explanation(
            DispatchExplanation(
                decision_id=decision_id,
                work_order_id=history.request.work_order_id,
                tenant=history.request.tenant,
                dispatch_round=history.rounds + 1,
                decided_at=decided_at,
                offered_to=(),
                reason=reason,
                weights=weights_of(self._weights),
                candidates=tuple(
                    CandidateOutcome(contractor_id=o.contractor_id, excluded=(_outcome_of(o),))
                    for o in offers
                ),
                assessed=len(offers),
            )
        )
        return await self._unfilled(
            tx,
            history.request,
            history.priority,
            decision_id=decision_id,
            reason=reason,
            considered=considered,
            dispatch_round=history.rounds + 1,
            decided_at=decided_at,
            correlationid=correlationid,
        )

    async def _unfilled(
        self,
        tx: DispatchTransaction,
        request: DispatchRequest,
        priority: Priority,
        *,
        decision_id: str,
        reason: str,
        considered: list[UnfilledReason],
        dispatch_round: int,
        decided_at: datetime,
        correlationid: str,
    ) -> DispatchResult:
        await tx.save_unfilled(
            decision_id=decision_id,
            request=request,
            reason=reason,
            considered_total=len(considered),
            decided_at=decided_at,
            dispatch_round=dispatch_round,
            priority=priority,
        )
        await tx.forget_deadline(request.work_order_id)
        tx.emit(
            AssignmentUnfilled(
                work_order_id=request.work_order_id,
                reason=reason,
                considered=considered,
                decided_at=decided_at,
            ),
            topic=Topic.CONTRACTORS_EVENTS,
            key=request.work_order_id,
            tenant=request.tenant,
            correlationid=correlationid,
        )
        return DispatchResult(
            DispatchOutcome.UNFILLED, reason=reason, dispatch_round=dispatch_round
        )


__all__ = [
    "DispatchOutcome",
    "DispatchResult",
    "WorkOrderDispatcher",
    "dispatch_request",
    "to_millis",
    "utc_now",
]
