"""``ExplainDispatch``'s answer built from kept explanations, without a server: round outcomes,
offers shown as they stand, and the message size limit (every round stays, the rest is counted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import dispatch_service_pb2
from fixloop_contractors.adapters.dispatch_api import explain_response, is_canonical_uuid
from fixloop_contractors.adapters.memory import MemoryDispatchLedger
from fixloop_contractors.app.explain import CandidateOutcome, DispatchExplanation
from fixloop_contractors.app.explanations import (
    ExplainedRound,
    RoundOutcome,
    explain_dispatch,
    outcome_of,
)
from fixloop_contractors.domain.offers import Offer, OfferStatus
from fixloop_shared.memory import MemoryStore

WORK_ORDER_ID = "6f1d2a52-8c1e-4b8e-9a57-2f0c4b1d9e01"
DECIDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WEIGHTS = (
    ("travel", 1.0),
    ("load", 0.5),
    ("skill", 0.25),
    ("scorecard", 0.5),
    ("preference", 0.25),
    ("on_call", 0.5),
)


def ranked(contractor_id: str, rank: int, *, offered: bool = False) -> CandidateOutcome:
    components = tuple((name, 0.5) for name, _ in WEIGHTS)
    return CandidateOutcome(
        contractor_id=contractor_id,
        rank=rank,
        total=sum(0.5 * weight for _, weight in WEIGHTS),
        components=components,
        travel_km=12.5,
        travel_basis="great_circle",
        on_call="primary",
        skill_level=3,
        offered=offered,
    )


def excluded(contractor_id: str) -> CandidateOutcome:
    return CandidateOutcome(
        contractor_id=contractor_id,
        excluded=("does not cover DE-10115 (covers DE-8)", "blocked by tenant acme"),
    )


def explanation(
    dispatch_round: int,
    candidates: tuple[CandidateOutcome, ...],
    *,
    offered_to: tuple[str, ...] = (),
    reason: str | None = None,
    tenant: str = "acme",
) -> DispatchExplanation:
    return DispatchExplanation(
        decision_id=f"decision-{dispatch_round}-{tenant}",
        work_order_id=WORK_ORDER_ID,
        tenant=tenant,
        dispatch_round=dispatch_round,
        decided_at=DECIDED + timedelta(minutes=dispatch_round),
        offered_to=offered_to,
        reason=reason,
        weights=WEIGHTS,
        candidates=candidates,
        assessed=len(candidates),
    )


def offer(contractor_id: str, status: OfferStatus = OfferStatus.OPEN) -> Offer:
    return Offer(
        offer_id=f"offer-{contractor_id}",
        work_order_id=WORK_ORDER_ID,
        tenant="acme",
        contractor_id=contractor_id,
        offered_at=DECIDED,
        expires_at=DECIDED + timedelta(minutes=30),
        status=status,
    )


def test_the_outcome_of_a_round() -> None:
    assert outcome_of(explanation(1, (), offered_to=("ctr-a",))) is RoundOutcome.OFFERED
    assert outcome_of(explanation(1, (), reason="nobody covers the site")) is RoundOutcome.UNFILLED
    by_operator = explanation(2, (), offered_to=("ctr-a",), reason="assigned by operator ana: x")
    assert outcome_of(by_operator) is RoundOutcome.ASSIGNED_BY_OPERATOR


def test_a_candidate_shows_its_scores_reasons_and_offer() -> None:
    rounds = [
        ExplainedRound(
            explanation(
                1, (ranked("ctr-a", 1, offered=True), excluded("ctr-b")), offered_to=("ctr-a",)
            ),
            {"ctr-a": offer("ctr-a")},
        )
    ]
    answer = explain_response(WORK_ORDER_ID, rounds, now=DECIDED, max_bytes=4_000_000)
    [shown] = answer.rounds
    assert shown.outcome == dispatch_service_pb2.DISPATCH_OUTCOME_OFFERED
    assert (shown.candidates_total, shown.candidates_omitted) == (2, 0)
    best, other = shown.candidates
    assert (best.eligible, best.rank, best.offered, best.skill_level) == (True, 1, True, 3)
    assert [(c.name, c.value, c.weight) for c in best.score_components] == [
        (name, 0.5, weight) for name, weight in WEIGHTS
    ]
    assert best.total_score == pytest.approx(sum(0.5 * w for _, w in WEIGHTS))
    assert best.offer.status == jobs_pb2.OFFER_STATUS_OPEN
    assert (other.eligible, other.rank, other.HasField("offer"), other.HasField("travel_km")) == (
        False,
        0,
        False,
        False,
    )
    assert list(other.exclusion_reasons) == list(excluded("ctr-b").excluded)


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (OfferStatus.TIMED_OUT, jobs_pb2.OFFER_STATUS_EXPIRED),
        (OfferStatus.ACCEPTED, jobs_pb2.OFFER_STATUS_ACCEPTED),
        (OfferStatus.WITHDRAWN, jobs_pb2.OFFER_STATUS_WITHDRAWN),
    ],
)
def test_an_offer_shows_what_became_of_it(status: OfferStatus, shown: int) -> None:
    rounds = [
        ExplainedRound(
            explanation(1, (ranked("ctr-a", 1, offered=True),), offered_to=("ctr-a",)),
            {"ctr-a": offer("ctr-a", status)},
        )
    ]
    answer = explain_response(WORK_ORDER_ID, rounds, now=DECIDED, max_bytes=4_000_000)
    assert answer.rounds[0].candidates[0].offer.status == shown


def test_an_open_offer_past_its_expiry_shows_as_expired() -> None:
    rounds = [
        ExplainedRound(
            explanation(1, (ranked("ctr-a", 1, offered=True),), offered_to=("ctr-a",)),
            {"ctr-a": offer("ctr-a")},
        )
    ]
    later = DECIDED + timedelta(hours=1)
    answer = explain_response(WORK_ORDER_ID, rounds, now=later, max_bytes=4_000_000)
    assert answer.rounds[0].candidates[0].offer.status == jobs_pb2.OFFER_STATUS_EXPIRED


def test_an_answer_too_large_keeps_every_round_and_counts_what_it_leaves_out() -> None:
    many = tuple(ranked(f"ctr-{i:05d}", i + 1) for i in range(3000))
    rounds = [
        ExplainedRound(explanation(n, many, offered_to=("ctr-00000",)), {}) for n in (1, 2, 3)
    ]
    limit = 200_000
    answer = explain_response(WORK_ORDER_ID, rounds, now=DECIDED, max_bytes=limit)
    assert answer.ByteSize() <= limit
    assert [r.dispatch_round for r in answer.rounds] == [1, 2, 3]
    for shown in answer.rounds:
        listed = len(shown.candidates)
        assert 0 < listed < len(many)
        assert shown.candidates_omitted == len(many) - listed
        # The best ones are the ones listed.
        assert [c.rank for c in shown.candidates] == list(range(1, listed + 1))


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (WORK_ORDER_ID, True),
        (WORK_ORDER_ID.upper(), False),
        (WORK_ORDER_ID.replace("-", ""), False),
        ("{" + WORK_ORDER_ID + "}", False),
        ("", False),
    ],
)
def test_work_order_ids_are_canonical_uuids(value: str, canonical: bool) -> None:
    assert is_canonical_uuid(value) is canonical


async def test_a_tenant_sees_only_its_own_rounds_in_order() -> None:
    store = MemoryStore("contractors")
    ledger = MemoryDispatchLedger(store)
    async with store.transaction() as uow:
        tx = ledger.within(uow)
        for kept in (
            explanation(2, (ranked("ctr-b", 1, offered=True),), offered_to=("ctr-b",)),
            explanation(1, (ranked("ctr-a", 1, offered=True),), offered_to=("ctr-a",)),
            explanation(3, (), reason="someone else's", tenant="globex"),
        ):
            await tx.save_explanation(kept)
    rounds = await explain_dispatch(ledger, tenant="acme", work_order_id=WORK_ORDER_ID)
    assert [r.explanation.dispatch_round for r in rounds] == [1, 2]
    assert await explain_dispatch(ledger, tenant="initech", work_order_id=WORK_ORDER_ID) == []
