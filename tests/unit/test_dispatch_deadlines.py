"""Dispatch deadlines without I/O: when an untaken order is escalated and given up on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixloop_contractors.domain.deadlines import (
    DeadlineStage,
    DeadlineVerdict,
    DispatchDeadlines,
    deadline_verdict,
)
from fixloop_contractors.domain.dispatch import DispatchRequest
from fixloop_contractors.domain.offers import Offer

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DEADLINES = DispatchDeadlines(
    escalate_after=timedelta(minutes=90),
    time_limit=timedelta(hours=4),
    emergency_escalate_after=timedelta(minutes=20),
    emergency_time_limit=timedelta(hours=1),
)
REQUEST = DispatchRequest(
    work_order_id="wo-1", tenant="acme", equipment_class="hvac", country="DE", postal_code="10115"
)


def offer(contractor_id: str = "ctr-a", *, at: datetime = T0, round_: int = 1) -> Offer:
    return Offer.open(
        offer_id=f"offer-{contractor_id}-{round_}",
        request=REQUEST,
        contractor_id=contractor_id,
        at=at,
        ttl=timedelta(minutes=30),
        dispatch_round=round_,
    )


def test_times_by_priority() -> None:
    normal = DEADLINES.of(work_order_id="wo-1", tenant="acme", emergency=False, since=T0)
    assert (normal.escalate_at, normal.give_up_at) == (
        T0 + timedelta(minutes=90),
        T0 + timedelta(hours=4),
    )
    assert normal.first_stage() == (DeadlineStage.ESCALATE, T0 + timedelta(minutes=90))
    urgent = DEADLINES.of(work_order_id="wo-1", tenant="acme", emergency=True, since=T0)
    assert (urgent.escalate_at, urgent.give_up_at) == (
        T0 + timedelta(minutes=20),
        T0 + timedelta(hours=1),
    )


def test_an_escalation_not_before_the_time_limit_is_left_out() -> None:
    late = DispatchDeadlines(
        escalate_after=timedelta(hours=4),
        time_limit=timedelta(hours=4),
        emergency_escalate_after=timedelta(hours=2),
        emergency_time_limit=timedelta(hours=1),
    )
    deadline = late.of(work_order_id="wo-1", tenant="acme", emergency=True, since=T0)
    assert deadline.escalate_at is None
    assert deadline.first_stage() == (DeadlineStage.GIVE_UP, T0 + timedelta(hours=1))


def test_non_positive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="time_limit must be positive"):
        DispatchDeadlines(
            escalate_after=timedelta(minutes=1),
            time_limit=timedelta(0),
            emergency_escalate_after=timedelta(minutes=1),
            emergency_time_limit=timedelta(minutes=1),
        )


def test_an_open_offer_escalates_then_gives_up_once_due() -> None:
    offers = [offer().time_out(T0 + timedelta(minutes=31)), offer("ctr-b", round_=2)]
    due = T0 + timedelta(minutes=90)
    for stage in DeadlineStage:
        assert (
            deadline_verdict(
                offers, unfilled=False, stage=stage, due_at=due, now=due - timedelta(seconds=1)
            )
            is DeadlineVerdict.NOT_DUE
        )
        assert deadline_verdict(offers, unfilled=False, stage=stage, due_at=due, now=due) == (
            DeadlineVerdict(stage.value)
        )


@given(
    taken=st.booleans(),
    unfilled=st.booleans(),
    cancelled=st.booleans(),
    late=st.integers(min_value=0, max_value=10_000),
    stage=st.sampled_from(DeadlineStage),
)
def test_an_order_taken_unfilled_or_cancelled_is_over(
    taken: bool, unfilled: bool, cancelled: bool, late: int, stage: DeadlineStage
) -> None:
    first = offer()
    if taken:
        first = first.accept("ctr-a", T0 + timedelta(minutes=5))
    elif cancelled:
        first = first.withdraw(T0 + timedelta(minutes=5), "work order cancelled")
    now = T0 + timedelta(minutes=90, seconds=late)
    verdict = deadline_verdict(
        [first], unfilled=unfilled, stage=stage, due_at=T0 + timedelta(minutes=90), now=now
    )
    assert (verdict is DeadlineVerdict.OVER) == (taken or unfilled or cancelled)
