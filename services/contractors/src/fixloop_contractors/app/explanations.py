"""A tenant's work order's dispatch, explained: every round's decision with every contractor it
assessed (:mod:`fixloop_contractors.app.explain`), joined with what became of each offer.

What an operator sees through ``fixloop.v1.DispatchService``: only the rounds of the caller's own
tenant (another tenant's order has none, exactly like an order never dispatched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fixloop_contractors.app.explain import DispatchExplanation
from fixloop_contractors.domain.offers import Offer


class DispatchRecords(Protocol):
    """The kept dispatch decisions of work orders, read outside any unit of work."""

    async def explanations(
        self, work_order_id: str, *, tenant: str | None = None
    ) -> Sequence[DispatchExplanation]:
        """Every decision's explanation for the work order (of ``tenant`` only, if given), by
        round."""
        ...

    async def offers(self, work_order_id: str, *, tenant: str | None = None) -> Sequence[Offer]:
        """Every offer of the work order (of ``tenant`` only, if given), whatever became of
        it."""
        ...


class RoundOutcome(StrEnum):
    """How the decision of a round came out."""

    OFFERED = "offered"
    """Offered to the best ranked contractor (an emergency: to several at once)."""
    UNFILLED = "unfilled"
    """Nobody could be offered the order; it waits for an operator."""
    ASSIGNED_BY_OPERATOR = "assigned_by_operator"
    """An operator gave the order to a contractor."""


def outcome_of(explanation: DispatchExplanation) -> RoundOutcome:
    """Nobody offered: unfilled. Offered with a reason: an operator's decision (the engine's
    offers need none; the operator's reason is kept)."""
    if not explanation.offered_to:
        return RoundOutcome.UNFILLED
    if explanation.reason is not None:
        return RoundOutcome.ASSIGNED_BY_OPERATOR
    return RoundOutcome.OFFERED


@dataclass(frozen=True, slots=True)
class ExplainedRound:
    """One round's decision, and the offers it made by contractor id."""

    explanation: DispatchExplanation
    offers: Mapping[str, Offer]

    @property
    def outcome(self) -> RoundOutcome:
        return outcome_of(self.explanation)


async def explain_dispatch(
    records: DispatchRecords, *, tenant: str, work_order_id: str
) -> list[ExplainedRound]:
    """Every round of the tenant's work order, in order; empty when the tenant has no decision
    on such an order (it does not exist, is not dispatched yet, or is another tenant's)."""
    explanations = sorted(
        (
            e
            for e in await records.explanations(work_order_id, tenant=tenant)
            # Defence in depth: whatever the read did, nothing of another tenant is shown.
            if e.tenant == tenant and e.work_order_id == work_order_id
        ),
        key=lambda e: e.dispatch_round,
    )
    if not explanations:
        return []
    by_round: dict[int, dict[str, Offer]] = {}
    for offer in await records.offers(work_order_id, tenant=tenant):
        if offer.tenant == tenant and offer.work_order_id == work_order_id:
            by_round.setdefault(offer.dispatch_round, {})[offer.contractor_id] = offer
    return [
        ExplainedRound(explanation=e, offers=by_round.get(e.dispatch_round, {}))
        for e in explanations
    ]


__all__ = [
    "DispatchRecords",
    "ExplainedRound",
    "RoundOutcome",
    "explain_dispatch",
    "outcome_of",
]
