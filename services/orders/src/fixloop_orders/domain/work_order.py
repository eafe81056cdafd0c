"""The work order aggregate: its lifecycle (a state machine) and its append-only timeline.

Lifecycle::

    received -> dispatch_requested -> assigned -> started -> awaiting_parts -> completed
             -> verified -> closed

plus ``cancelled`` (from any state before ``completed``) and *reopen* (from ``completed`` or
``verified`` back to ``dispatch_requested``: the work was not good enough and has to be
dispatched again). ``closed`` and ``cancelled`` are terminal.

Milestones are facts reported by other parts of the system, and facts from different topics
arrive in no guaranteed order. So the state moves *forward* to a milestone even if an earlier one
has not been seen yet (``completed`` may arrive before ``started``), and a milestone that is not
ahead of the current state — a late or repeated one, or one for a terminal order — is recorded in
the timeline without moving the state. The only backward move is an explicit reopen. Every fact,
applied or not, leaves exactly one timeline entry: the timeline is the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from fixloop_orders.domain.details import WorkOrderDetails


class WorkOrderState(StrEnum):
    RECEIVED = "received"
    DISPATCH_REQUESTED = "dispatch_requested"
    ASSIGNED = "assigned"
    STARTED = "started"
    AWAITING_PARTS = "awaiting_parts"
    COMPLETED = "completed"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"


LIFECYCLE: tuple[WorkOrderState, ...] = (
    WorkOrderState.RECEIVED,
    WorkOrderState.DISPATCH_REQUESTED,
    WorkOrderState.ASSIGNED,
    WorkOrderState.STARTED,
    WorkOrderState.AWAITING_PARTS,
    WorkOrderState.COMPLETED,
    WorkOrderState.VERIFIED,
    WorkOrderState.CLOSED,
)
"""The main line of a work order's life, in order."""

TERMINAL_STATES: frozenset[WorkOrderState] = frozenset(
    {WorkOrderState.CLOSED, WorkOrderState.CANCELLED}
)
CANCELLABLE_STATES: frozenset[WorkOrderState] = frozenset(
    LIFECYCLE[: LIFECYCLE.index(WorkOrderState.COMPLETED)]
)
REOPENABLE_STATES: frozenset[WorkOrderState] = frozenset(
    {WorkOrderState.COMPLETED, WorkOrderState.VERIFIED}
)
REOPENED_STATE = WorkOrderState.DISPATCH_REQUESTED


def stage(state: WorkOrderState) -> int:
    """How far along its life a work order in ``state`` is; ``cancelled`` is past the end."""
    if state is WorkOrderState.CANCELLED:
        return len(LIFECYCLE)
    return LIFECYCLE.index(state)


class Transition(StrEnum):
    """A milestone that moves a work order; the value is its ``fixloop.workorder.<value>`` name."""

    REQUEST_DISPATCH = "dispatch_requested"
    ASSIGN = "assigned"
    START = "started"
    AWAIT_PARTS = "awaiting_parts"
    COMPLETE = "completed"
    VERIFY = "verified"
    CLOSE = "closed"
    CANCEL = "cancelled"
    REOPEN = "reopened"

    @property
    def target(self) -> WorkOrderState:
        """The state this milestone leads to."""
        if self is Transition.REOPEN:
            return REOPENED_STATE
        return WorkOrderState(self.value)


TRANSITION_SUMMARIES: Mapping[Transition, str] = MappingProxyType(
    {
        Transition.REQUEST_DISPATCH: "Looking for a qualified contractor",
        Transition.ASSIGN: "Assigned to a contractor",
        Transition.START: "Work started on site",
        Transition.AWAIT_PARTS: "Work waiting for parts",
        Transition.COMPLETE: "Work completed",
        Transition.VERIFY: "Work verified",
        Transition.CLOSE: "Work order closed",
        Transition.CANCEL: "Work order cancelled",
        Transition.REOPEN: "Work order reopened",
    }
)


@dataclass(frozen=True, slots=True)
class TransitionDecision:
    """What a milestone does to a work order: ``moved`` or, with ``reason``, recorded only."""

    transition: Transition
    before: WorkOrderState
    after: WorkOrderState
    reason: str | None = None

    @property
    def moved(self) -> bool:
        return self.after is not self.before


def decide(  # noqa: PLR0911 - one return per rule of the state machine
    state: WorkOrderState,
    transition: Transition,
    *,
    at: datetime,
    reopened_at: datetime | None = None,
) -> TransitionDecision:
    """The effect of ``transition`` (which happened ``at``) on a work order in ``state``."""

    def recorded_only(reason: str) -> TransitionDecision:
        return TransitionDecision(transition, state, state, reason)

    if state in TERMINAL_STATES:
        return recorded_only(f"the work order is already {state.value}")
    if transition is Transition.REOPEN:
        if state in REOPENABLE_STATES:
            return TransitionDecision(transition, state, REOPENED_STATE)
        return recorded_only(f"a {state.value} work order cannot be reopened")
    if transition is Transition.CANCEL:
        if state in CANCELLABLE_STATES:
            return TransitionDecision(transition, state, WorkOrderState.CANCELLED)
        return recorded_only(f"a {state.value} work order cannot be cancelled")
    if reopened_at is not None and at < reopened_at:
        return recorded_only("it happened before the work order was reopened")
    if stage(transition.target) <= stage(state):
        return recorded_only(f"the work order is already {state.value}")
    return TransitionDecision(transition, state, transition.target)


@dataclass(frozen=True, slots=True)
class ExternalOrderKey:
    """What identifies one order of one source platform for one tenant (the de-duplication key).

    The same external order submitted again — redelivered, re-sent with a new event id — has the
    same key and so never becomes a second work order. External ids are compared exactly: they
    are the source platform's, and ``EXT-1`` and ``ext-1`` may well be two orders there.
    """

    tenant: str
    source_platform: str
    external_id: str

    @classmethod
    def of_submission(
        cls, submission: WorkOrderDetails, *, tenant: str, source_platform: str
    ) -> ExternalOrderKey:
        return cls(
            tenant=tenant, source_platform=source_platform, external_id=submission.external_id
        )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One entry of a work order's audit trail; ``entry_id`` is the id of the event behind it."""

    entry_id: str
    at: datetime
    kind: str
    summary: str
    event_type: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    recorded_at: datetime | None = None
    """When it was written down (set when it is appended to the work order)."""


RECEIVED_KIND = "received"


def received_summary(source_platform: str, details: WorkOrderDetails) -> str:
    return (
        f"Received from {source_platform} as {details.external_id}: "
        f"{details.priority.value} priority {details.category.value} "
        f"at {details.site.name}"
    )


@dataclass
class WorkOrder:
    """A work order: what is to be done, where it stands, and the timeline entries not yet saved.

    The timeline is append-only and kept outside the aggregate (it grows without bound); the
    aggregate only produces new entries, in ``new_entries``, for the repository to append.
    """

    work_order_id: str
    tenant: str
    source_platform: str
    details: WorkOrderDetails
    state: WorkOrderState
    received_at: datetime
    updated_at: datetime
    reopened_at: datetime | None = None
    version: int = 0
    new_entries: list[TimelineEntry] = field(default_factory=list, compare=False)

    @property
    def key(self) -> ExternalOrderKey:
        return ExternalOrderKey(self.tenant, self.source_platform, self.details.external_id)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def receive(
        cls,
        *,
        work_order_id: str,
        tenant: str,
        source_platform: str,
        details: WorkOrderDetails,
        received_at: datetime,
        submission_id: str,
        submission_type: str,
    ) -> WorkOrder:
        """A new work order in state ``received``; its first timeline entry records the intake
        (the submission event ``submission_id`` of type ``submission_type``)."""
        order = cls(
            work_order_id=work_order_id,
            tenant=tenant,
            source_platform=source_platform,
            details=details,
            state=WorkOrderState.RECEIVED,
            received_at=received_at,
            updated_at=received_at,
        )
        order.new_entries.append(
            TimelineEntry(
                entry_id=submission_id,
                at=received_at,
                kind=RECEIVED_KIND,
                summary=received_summary(source_platform, order.details),
                event_type=submission_type,
                details=_received_details(source_platform, order.details),
            )
        )
        return order

    def apply(
        self,
        transition: Transition,
        *,
        entry_id: str,
        at: datetime,
        recorded_at: datetime,
        event_type: str | None = None,
        details: Mapping[str, str] | None = None,
        summary: str | None = None,
    ) -> TransitionDecision:
        """Apply a milestone that happened ``at``; recorded whether or not it moves the state."""
        decision = decide(self.state, transition, at=at, reopened_at=self.reopened_at)
        text = summary or TRANSITION_SUMMARIES[transition]
        entry_details = dict(details or {})
        entry_details["state_before"] = decision.before.value
        entry_details["state_after"] = decision.after.value
        if decision.reason is not None:
            text = f"{text} (recorded only: {decision.reason})"
            entry_details["recorded_only"] = decision.reason
        if decision.moved:
            self.state = decision.after
            if transition is Transition.REOPEN:
                self.reopened_at = at
        self._append(
            TimelineEntry(
                entry_id=entry_id,
                at=at,
                kind=transition.value,
                summary=text,
                event_type=event_type,
                details=entry_details,
            ),
            recorded_at=recorded_at,
        )
        return decision

    def note(self, entry: TimelineEntry, *, recorded_at: datetime) -> None:
        """Record something that happened to the work order without changing it (its state,
        details and ``updated_at`` stay as they are)."""
        self.new_entries.append(replace(entry, recorded_at=recorded_at))

    def _append(self, entry: TimelineEntry, *, recorded_at: datetime) -> None:
        self.new_entries.append(replace(entry, recorded_at=recorded_at))
        self.updated_at = max(self.updated_at, recorded_at)


def _received_details(source_platform: str, details: WorkOrderDetails) -> dict[str, str]:
    result = {
        "source_platform": source_platform,
        "external_id": details.external_id,
        "priority": details.priority.value,
        "category": details.category.value,
        "site_id": details.site.site_id,
        "equipment_id": details.equipment.equipment_id,
    }
    if details.reported_at is not None:
        result["reported_at"] = details.reported_at.isoformat()
    return result


__all__ = [
    "CANCELLABLE_STATES",
    "LIFECYCLE",
    "RECEIVED_KIND",
    "REOPENABLE_STATES",
    "REOPENED_STATE",
    "TERMINAL_STATES",
    "TRANSITION_SUMMARIES",
    "ExternalOrderKey",
    "TimelineEntry",
    "Transition",
    "TransitionDecision",
    "WorkOrder",
    "WorkOrderState",
    "decide",
    "received_summary",
    "stage",
]
