"""The work order lifecycle as pure domain logic: rules, refusals, timeline replay (properties)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_orders.app.intake import work_order_details
from fixloop_orders.app.lifecycle_events import EVENT_OF_STEP, lifecycle_event
from fixloop_orders.domain.lifecycle import (
    ALLOWED_FROM,
    SYSTEM,
    TAKEN_BY,
    Actor,
    Completion,
    PartQuantity,
    Request,
    Standing,
    Step,
    follow_up_external_id,
    needs_follow_up,
    reachable_from_received,
    state_diagram,
)
from fixloop_orders.domain.work_order import WorkOrder, replay
from fixloop_shared.contracts import LIFECYCLE_EVENTS, WorkOrderSubmitted
from fixloop_shared.errors import DomainError, Forbidden, IllegalTransition, InvalidInput
from fixloop_shared.vocabulary import ActorKind, DelayCause, WorkOrderState
from tests.unit.test_orders_domain import submission

S = WorkOrderState
T0 = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)
C1 = Actor(ActorKind.CONTRACTOR, "c1")
C2 = Actor(ActorKind.CONTRACTOR, "c2")
REQUESTER = Actor(ActorKind.REQUESTER, "acme-erp")
OPERATOR = Actor(ActorKind.OPERATOR, "acme-desk")
COMPLETION = Completion(
    resolution_code="replaced_part",
    work_summary="Replaced the compressor relay",
    labour_minutes=95,
    parts_used=(PartQuantity("RELAY-1", 1),),
)


def new_order() -> WorkOrder:
    return WorkOrder.receive(
        work_order_id="6f1d2a52-8c1e-4b8e-9a57-2f0c4b1d9e01",
        tenant="acme",
        source_platform="marketplace.example",
        details=work_order_details(submission()),
        received_at=T0,
        submission_id="evt-1",
        submission_type=WorkOrderSubmitted.event_type,
    )


def request(step: Step, actor: Actor, at: datetime, **extra: object) -> Request:
    """A request with everything its step needs (tests override what they test)."""
    needs: dict[Step, dict[str, object]] = {
        Step.ASSIGN: {"contractor_id": actor.id, "offer_id": "offer-1"},
        Step.DECLINE_OFFER: {"reason": "too far", "offer_id": "offer-2"},
        Step.SCHEDULE: {"window": (at + timedelta(hours=2), at + timedelta(hours=4))},
        Step.DEPART: {"eta": at + timedelta(minutes=30)},
        Step.REPORT_PROGRESS: {"note": "diagnosis done"},
        Step.REPORT_DELAY: {"cause": DelayCause.PARTS, "eta": at + timedelta(days=1)},
        Step.COMPLETE: {"completion": COMPLETION},
        Step.REJECT: {"reason": "still leaking"},
        Step.CANCEL: {"reason": "no longer needed"},
        Step.COMMENT: {"note": "please call first", "comment_id": f"cm-{at.timestamp()}"},
    }
    return Request(step, actor, at, **{**needs.get(step, {}), **extra})  # type: ignore[arg-type]


MAIN_LINE: list[tuple[Step, Actor, WorkOrderState]] = [
    (Step.START_DISPATCH, SYSTEM, S.DISPATCHING),
    (Step.ASSIGN, C1, S.ASSIGNED),
    (Step.SCHEDULE, C1, S.SCHEDULED),
    (Step.DEPART, C1, S.EN_ROUTE),
    (Step.ARRIVE, C1, S.ON_SITE),
    (Step.AWAIT_PARTS, C1, S.AWAITING_PARTS),
    (Step.REPORT_DELAY, C1, S.AWAITING_PARTS),
    (Step.ARRIVE, C1, S.ON_SITE),
    (Step.COMPLETE, C1, S.WORK_COMPLETED),
    (Step.VERIFY, REQUESTER, S.VERIFIED),
    (Step.CLOSE, SYSTEM, S.CLOSED),
    (Step.ARCHIVE, SYSTEM, S.ARCHIVED),
]


def take(order: WorkOrder, req: Request) -> None:
    order.take(req, entry_id=f"e{order.version}", event_type="t", via="grpc")


def test_the_main_line_from_received_to_archived() -> None:
    order = new_order()
    at = T0
    for step, actor, expected in MAIN_LINE:
        at += timedelta(minutes=10)
        take(order, request(step, actor, at))
        assert order.state is expected, step
    assert order.version == len(MAIN_LINE) + 1
    assert [entry.kind for entry in order.new_entries] == [
        "received",
        *(s for s, _, _ in MAIN_LINE),
    ]
    assert order.contractor_id == "c1"
    assert order.completion == COMPLETION
    assert replay(order.new_entries) is S.ARCHIVED


def test_completion_sets_the_automatic_verification_time() -> None:
    order = new_order()
    for step, actor, _ in MAIN_LINE[:5]:
        take(order, request(step, actor, T0))
    order.take(
        request(Step.COMPLETE, C1, T0),
        entry_id="done",
        event_type="t",
        via="grpc",
        verify_after=timedelta(hours=72),
    )
    assert order.verify_by == T0 + timedelta(hours=72)


@pytest.mark.parametrize(
    ("steps", "refused", "error"),
    [
        ([], request(Step.COMPLETE, C1, T0), Forbidden),  # a contractor without the job
        ([(Step.START_DISPATCH, SYSTEM)], request(Step.COMPLETE, OPERATOR, T0), Forbidden),
        (
            [(Step.START_DISPATCH, SYSTEM), (Step.ASSIGN, C1)],
            request(Step.COMPLETE, C1, T0),
            IllegalTransition,
        ),
        ([(Step.CANCEL, REQUESTER)], request(Step.ASSIGN, C1, T0), IllegalTransition),
        (
            [(Step.START_DISPATCH, SYSTEM), (Step.ASSIGN, C1)],
            request(Step.ARRIVE, C2, T0),
            Forbidden,
        ),
        (
            [(Step.START_DISPATCH, SYSTEM), (Step.ASSIGN, C1)],
            request(Step.SCHEDULE, C1, T0, window=None),
            InvalidInput,
        ),
        (
            [(Step.START_DISPATCH, SYSTEM)],
            request(Step.CANCEL, REQUESTER, T0, reason="  "),
            InvalidInput,
        ),
    ],
)
def test_refused_steps_change_nothing(
    steps: list[tuple[Step, Actor]], refused: Request, error: type[DomainError]
) -> None:
    order = new_order()
    for step, actor in steps:
        take(order, request(step, actor, T0))
    before = (order.state, order.version, len(order.new_entries), order.contractor_id)
    with pytest.raises(error):
        take(order, refused)
    assert (order.state, order.version, len(order.new_entries), order.contractor_id) == before


def completed_order() -> WorkOrder:
    order = new_order()
    for step, actor, _ in MAIN_LINE[:9]:
        take(order, request(step, actor, T0))
    assert order.state is S.WORK_COMPLETED
    return order


def test_verify_twice_is_refused() -> None:
    order = completed_order()
    take(order, request(Step.VERIFY, REQUESTER, T0))
    with pytest.raises(IllegalTransition):
        take(order, request(Step.VERIFY, REQUESTER, T0))


def test_rejected_work_goes_back_to_the_same_contractor() -> None:
    order = completed_order()
    take(order, request(Step.REJECT, REQUESTER, T0, reason="still leaking"))
    assert order.state is S.ASSIGNED
    assert order.contractor_id == "c1"
    assert order.reopen_count == 1
    assert order.new_entries[-1].details["state_before"] == "work_completed"
    take(order, request(Step.ARRIVE, C1, T0))  # the same contractor comes back


def test_a_closed_order_reopens_only_within_its_window() -> None:
    order = completed_order()
    take(order, request(Step.VERIFY, REQUESTER, T0))
    take(order, request(Step.CLOSE, SYSTEM, T0))
    late = T0 + timedelta(days=14, seconds=1)
    with pytest.raises(IllegalTransition, match="closed more than 14 days ago"):
        take(order, request(Step.REJECT, REQUESTER, late))
    take(order, request(Step.REJECT, REQUESTER, T0 + timedelta(days=13)))
    assert order.state is S.ASSIGNED


def test_every_step_has_an_event_and_every_event_a_step() -> None:
    assert set(EVENT_OF_STEP) == set(Step)
    assert set(EVENT_OF_STEP.values()) == set(LIFECYCLE_EVENTS)


def test_the_published_event_says_what_the_step_did() -> None:
    order = new_order()
    take(order, request(Step.START_DISPATCH, SYSTEM, T0))
    req = request(Step.ASSIGN, C1, T0)
    decision = order.take(req, entry_id="x", event_type="t", via="grpc")
    event = lifecycle_event(order, req, decision, via="grpc")
    dumped = event.model_dump(mode="json")
    assert dumped["state"] == "assigned"
    assert dumped["previous_state"] == "dispatching"
    assert dumped["version"] == 3
    assert dumped["contractor_id"] == "c1"
    assert dumped["actor"] == {"kind": "contractor", "id": "c1", "name": None}


def test_every_state_is_reachable_and_in_the_diagram() -> None:
    assert reachable_from_received() == frozenset(WorkOrderState)
    diagram = state_diagram()
    for state in WorkOrderState:
        assert state.value in diagram


# --------------------------------------------------------------------------- properties

ACTORS = [SYSTEM, C1, C2, REQUESTER, OPERATOR]
commands = st.lists(
    st.tuples(
        st.sampled_from(list(Step)),
        st.sampled_from(ACTORS),
        st.integers(min_value=0, max_value=20 * 24 * 60),  # minutes after the previous one
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(commands)
def test_any_sequence_of_commands_leaves_a_reachable_state_that_the_timeline_replays(
    sequence: list[tuple[Step, Actor, int]],
) -> None:
    order = new_order()
    reachable = reachable_from_received()
    at = T0
    states_at: list[tuple[datetime, WorkOrderState]] = [(T0, S.RECEIVED)]
    for step, actor, minutes in sequence:
        at += timedelta(minutes=minutes)
        before = (order.state, order.version, len(order.new_entries))
        try:
            decision = order.take(
                request(step, actor, at), entry_id=f"e{order.version}", event_type="t", via="grpc"
            )
        except (IllegalTransition, Forbidden, InvalidInput):
            assert (order.state, order.version, len(order.new_entries)) == before
            continue
        assert actor.kind in TAKEN_BY[step]
        assert decision.before in ALLOWED_FROM[step]
        assert order.state is decision.after
        assert order.version == before[1] + 1
        states_at.append((at, order.state))
    assert order.state in reachable
    assert replay(order.new_entries) is order.state
    for moment, state in states_at:
        # "as of" a moment: the state after the last step taken at or before it
        last = [s for m, s in states_at if m <= moment][-1]
        assert replay(order.new_entries, as_of=moment) is last
        assert state in reachable


def test_the_readme_shows_the_state_diagram_the_rules_make() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert state_diagram() in readme.read_text(encoding="utf-8")


def test_rejection_after_the_window_or_the_archive_is_a_follow_up() -> None:
    closed = Standing(S.CLOSED, closed_at=T0)
    assert not needs_follow_up(closed, T0 + timedelta(days=14))
    assert needs_follow_up(closed, T0 + timedelta(days=14, seconds=1))
    assert needs_follow_up(Standing(S.ARCHIVED), T0)
    assert not needs_follow_up(Standing(S.WORK_COMPLETED), T0 + timedelta(days=400))
    long_id = "X" * 128
    follow_up = follow_up_external_id(long_id, "0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21")
    assert len(follow_up) == 128
    assert follow_up.endswith(":followup-0b5e1c1e")
