"""Why a work order went to whom: every dispatch decision with every contractor it assessed.

Each round of an order's dispatch keeps an explanation: the eligible contractors in rank order,
each with its score components (before weighting) and the facts behind them (travel distance and
how it was found, rota layer, skill level, preferred by the tenant), and every excluded one with
every reason it was excluded. A round that ends the dispatch without ranking anyone (the last
round was used up) names what became of each offer instead.

:func:`explain` makes the record from a ranking; what later became of the offer made in a round
(accepted, declined, run out, withdrawn) is the offer's own state, joined when the explanation is
shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fixloop_contractors.domain.dispatch import DispatchRanking
from fixloop_contractors.domain.scoring import ScoreWeights

MAX_EXPLAINED = 20_000
"""At most this many contractors are kept in one explanation (far above one region's registry);
``assessed`` still counts all of them."""


@dataclass(frozen=True, slots=True)
class CandidateOutcome:
    """One contractor in one decision: ranked (``rank``, ``total``, ``components``) or excluded
    (``excluded`` holds every reason)."""

    contractor_id: str
    rank: int | None = None
    total: float | None = None
    components: tuple[tuple[str, float], ...] = ()
    travel_km: float | None = None
    travel_basis: str | None = None
    on_call: str | None = None
    skill_level: int | None = None
    preferred: bool = False
    offered: bool = False
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DispatchExplanation:
    """One decision of one round of a work order's dispatch, and everyone it assessed."""

    decision_id: str
    work_order_id: str
    tenant: str
    dispatch_round: int
    decided_at: datetime
    offered_to: tuple[str, ...]
    """The contractors offered the order in this round (several for an emergency; none:
    unfilled)."""
    reason: str | None
    """Why nobody was offered it (unfilled rounds only)."""
    weights: tuple[tuple[str, float], ...]
    candidates: tuple[CandidateOutcome, ...]
    assessed: int


def weights_of(weights: ScoreWeights) -> tuple[tuple[str, float], ...]:
    return tuple(zip(("travel", "load", "skill", "scorecard", "preference", "on_call"),
                     weights.component_weights, strict=True))  # fmt: skip


def explain(
    ranking: DispatchRanking,
    *,
    decision_id: str,
    dispatch_round: int,
    offered_to: tuple[str, ...],
    reason: str | None,
) -> DispatchExplanation:
    """The explanation of a decision made from ``ranking``."""
    ranked = [
        CandidateOutcome(
            contractor_id=entry.contractor_id,
            rank=position,
            total=round(entry.total, 6),
            components=tuple((k, round(v, 6)) for k, v in entry.score.components().items()),
            travel_km=round(entry.travel_km, 3),
            travel_basis=entry.travel_basis.value,
            on_call=entry.on_call.value,
            skill_level=entry.skill_level,
            preferred=entry.preferred,
            offered=entry.contractor_id in offered_to,
        )
        for position, entry in enumerate(ranking.ranked[:MAX_EXPLAINED], start=1)
    ]
    room = max(0, MAX_EXPLAINED - len(ranked))
    excluded = [
        CandidateOutcome(contractor_id=a.contractor_id, excluded=a.reasons)
        for a in ranking.excluded[:room]
    ]
    request = ranking.request
    return DispatchExplanation(
        decision_id=decision_id,
        work_order_id=request.work_order_id,
        tenant=request.tenant,
        dispatch_round=dispatch_round,
        decided_at=ranking.decided_at,
        offered_to=offered_to,
        reason=reason,
        weights=weights_of(ranking.weights),
        candidates=(*ranked, *excluded),
        assessed=ranking.assessed_count,
    )


__all__ = ["MAX_EXPLAINED", "CandidateOutcome", "DispatchExplanation", "explain", "weights_of"]
