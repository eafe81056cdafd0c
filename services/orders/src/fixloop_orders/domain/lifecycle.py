"""The work order's lifecycle: which step may follow which, who may take it, and what it needs.

Main line::

    received -> dispatching -> assigned -> scheduled -> en_route -> on_site -> work_completed
             -> verified -> closed -> archived
                                      on_site <-> awaiting_parts

with shortcuts a field crew takes (an assigned job may go en route or on site without a booked
window; parts may be found missing before the visit), ``cancelled`` from any state before the
work is completed, and *reopen*: a requester who rejects the completed work (from
``work_completed``, ``verified`` or, within the reopen window, ``closed``) sends the order back to
``assigned``, to the same contractor, with the reason. ``cancelled`` and ``archived`` are final;
a cancelled order is archived too, in time.

Every step is a :class:`Step` taken by an :class:`ActorKind`; :func:`decide` says where it leads
or refuses it (:class:`~fixloop_shared.errors.IllegalTransition` for a step the state does not
allow, :class:`~fixloop_shared.errors.Forbidden` for an actor who may not take it,
:class:`~fixloop_shared.errors.InvalidInput` for a step without what it needs). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from fixloop_shared.errors import FieldViolation, Forbidden, IllegalTransition, InvalidInput
from fixloop_shared.vocabulary import ActorKind, ChecklistOutcome, DelayCause, WorkOrderState

S = WorkOrderState


class Step(StrEnum):
    """Something done to a work order; the value names its ``fixloop.workorder.<value>`` event."""

    START_DISPATCH = "dispatching"
    ASSIGN = "assigned"
    DECLINE_OFFER = "offer_declined"
    SCHEDULE = "scheduled"
    DEPART = "en_route"
    ARRIVE = "on_site"
    AWAIT_PARTS = "awaiting_parts"
    REPORT_PROGRESS = "progress_reported"
    REPORT_DELAY = "delayed"
    COMPLETE = "work_completed"
    VERIFY = "verified"
    REJECT = "reopened"
    CLOSE = "closed"
    CANCEL = "cancelled"
    ARCHIVE = "archived"
    COMMENT = "comment_added"


FINAL_STATES: frozenset[WorkOrderState] = frozenset({S.CANCELLED, S.ARCHIVED})
OPEN_JOB_STATES: frozenset[WorkOrderState] = frozenset(
    {S.ASSIGNED, S.SCHEDULED, S.EN_ROUTE, S.ON_SITE, S.AWAITING_PARTS}
)
"""A contractor holds the job and is working towards completing it."""
BEFORE_ASSIGNMENT: frozenset[WorkOrderState] = frozenset({S.RECEIVED, S.DISPATCHING})
CANCELLABLE: frozenset[WorkOrderState] = BEFORE_ASSIGNMENT | OPEN_JOB_STATES
REOPENABLE: frozenset[WorkOrderState] = frozenset({S.WORK_COMPLETED, S.VERIFIED, S.CLOSED})
COMMENTABLE: frozenset[WorkOrderState] = frozenset(S) - {S.ARCHIVED}

ALLOWED_FROM: Mapping[Step, frozenset[WorkOrderState]] = MappingProxyType(
    {
        Step.START_DISPATCH: frozenset({S.RECEIVED}),
        Step.ASSIGN: BEFORE_ASSIGNMENT,
        Step.DECLINE_OFFER: BEFORE_ASSIGNMENT,
        Step.SCHEDULE: frozenset({S.ASSIGNED, S.SCHEDULED}),
        Step.DEPART: frozenset({S.ASSIGNED, S.SCHEDULED, S.AWAITING_PARTS}),
        Step.ARRIVE: frozenset({S.ASSIGNED, S.SCHEDULED, S.EN_ROUTE, S.AWAITING_PARTS}),
        Step.AWAIT_PARTS: frozenset({S.ASSIGNED, S.SCHEDULED, S.EN_ROUTE, S.ON_SITE}),
        Step.REPORT_PROGRESS: OPEN_JOB_STATES,
        Step.REPORT_DELAY: OPEN_JOB_STATES,
        Step.COMPLETE: frozenset({S.ON_SITE, S.AWAITING_PARTS}),
        Step.VERIFY: frozenset({S.WORK_COMPLETED}),
        Step.REJECT: REOPENABLE,
        Step.CLOSE: frozenset({S.VERIFIED}),
        Step.CANCEL: CANCELLABLE,
        Step.ARCHIVE: frozenset({S.CLOSED, S.CANCELLED}),
        Step.COMMENT: COMMENTABLE,
    }
)
"""The states each step may be taken in."""

TARGETS: Mapping[Step, WorkOrderState] = MappingProxyType(
    {
        Step.START_DISPATCH: S.DISPATCHING,
        Step.ASSIGN: S.ASSIGNED,
        Step.SCHEDULE: S.SCHEDULED,
        Step.DEPART: S.EN_ROUTE,
        Step.ARRIVE: S.ON_SITE,
        Step.AWAIT_PARTS: S.AWAITING_PARTS,
        Step.COMPLETE: S.WORK_COMPLETED,
        Step.VERIFY: S.VERIFIED,
        Step.REJECT: S.ASSIGNED,
        Step.CLOSE: S.CLOSED,
        Step.CANCEL: S.CANCELLED,
        Step.ARCHIVE: S.ARCHIVED,
    }
)
"""Where a step leads; steps not listed (a decline, progress, a delay, a comment) keep the
state."""

_R, _C, _O, _Y = ActorKind.REQUESTER, ActorKind.CONTRACTOR, ActorKind.OPERATOR, ActorKind.SYSTEM
TAKEN_BY: Mapping[Step, frozenset[ActorKind]] = MappingProxyType(
    {
        Step.START_DISPATCH: frozenset({_Y}),
        Step.ASSIGN: frozenset({_C, _O}),
        Step.DECLINE_OFFER: frozenset({_C}),
        Step.SCHEDULE: frozenset({_C, _O}),
        Step.DEPART: frozenset({_C}),
        Step.ARRIVE: frozenset({_C}),
        Step.AWAIT_PARTS: frozenset({_C}),
        Step.REPORT_PROGRESS: frozenset({_C}),
        Step.REPORT_DELAY: frozenset({_C, _O}),
        Step.COMPLETE: frozenset({_C}),
        Step.VERIFY: frozenset({_R, _O, _Y}),
        Step.REJECT: frozenset({_R, _O}),
        Step.CLOSE: frozenset({_O, _Y}),
        Step.CANCEL: frozenset({_R, _O}),
        Step.ARCHIVE: frozenset({_Y}),
        Step.COMMENT: frozenset({_R, _C, _O}),
    }
)
"""Who may take each step: requesters act on their orders, contractors on their jobs, the
tenant's operators on both, and timers of the system on what they were set for."""

SUMMARIES: Mapping[Step, str] = MappingProxyType(
    {
        Step.START_DISPATCH: "Looking for a qualified contractor",
        Step.ASSIGN: "Assigned to a contractor",
        Step.DECLINE_OFFER: "Offer declined",
        Step.SCHEDULE: "Visit scheduled",
        Step.DEPART: "Contractor on the way",
        Step.ARRIVE: "Contractor on site",
        Step.AWAIT_PARTS: "Work waiting for parts",
        Step.REPORT_PROGRESS: "Progress reported",
        Step.REPORT_DELAY: "Work delayed",
        Step.COMPLETE: "Work completed",
        Step.VERIFY: "Work verified",
        Step.REJECT: "Work order reopened",
        Step.CLOSE: "Work order closed",
        Step.CANCEL: "Work order cancelled",
        Step.ARCHIVE: "Work order archived",
        Step.COMMENT: "Comment",
    }
)

DEFAULT_REOPEN_WINDOW = timedelta(days=14)
MAX_APPOINTMENT_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who takes a step: a kind and that principal's id (``None`` for the system)."""

    kind: ActorKind
    id: str | None = None
    name: str | None = None


SYSTEM = Actor(ActorKind.SYSTEM, "fixloop")


@dataclass(frozen=True, slots=True)
class PartQuantity:
    part_number: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    item: str
    outcome: ChecklistOutcome
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Photo:
    uri: str
    content_type: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The contractor's completion report."""

    resolution_code: str
    work_summary: str
    labour_minutes: int
    parts_used: tuple[PartQuantity, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    photos: tuple[Photo, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """One step asked for, with what it brings along (each step reads what it needs)."""

    step: Step
    actor: Actor
    at: datetime
    reason: str | None = None
    note: str | None = None
    offer_id: str | None = None
    contractor_id: str | None = None
    """The contractor of an assignment (taken from the offer)."""
    window: tuple[datetime, datetime] | None = None
    eta: datetime | None = None
    cause: DelayCause | None = None
    parts: tuple[PartQuantity, ...] = ()
    completion: Completion | None = None
    comment_id: str | None = None
    automatic: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """A step allowed: the state before and after it."""

    step: Step
    before: WorkOrderState
    after: WorkOrderState

    @property
    def moved(self) -> bool:
        return self.after is not self.before


@dataclass(frozen=True, slots=True)
class Standing:
    """What the rules need to know about an order besides its state."""

    state: WorkOrderState
    contractor_id: str | None = None
    closed_at: datetime | None = None
    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW

    @property
    def reopen_until(self) -> datetime | None:
        return None if self.closed_at is None else self.closed_at + self.reopen_window


def _required(request: Request) -> list[FieldViolation]:
    missing: list[FieldViolation] = []
    step = request.step

    def need(name: str, present: object, what: str) -> None:
        if present is None or present == "":
            missing.append(FieldViolation(name, what))

    if step in (Step.CANCEL, Step.REJECT, Step.DECLINE_OFFER):
        need("reason", request.reason and request.reason.strip(), "a reason is required")
    if step is Step.ASSIGN:
        need("contractor_id", request.contractor_id, "the assigned contractor is required")
    if step is Step.SCHEDULE:
        if request.window is None:
            need("window", None, "an appointment window is required")
        else:
            start, end = request.window
            if end <= start:
                missing.append(FieldViolation("window.end", "must be after window.start"))
            elif end - start > MAX_APPOINTMENT_WINDOW:
                missing.append(FieldViolation("window.end", "a window is at most 7 days long"))
    if step is Step.REPORT_DELAY:
        need("cause", request.cause, "a delay cause is required")
        need("eta", request.eta, "the new ETA is required")
    if step is Step.REPORT_PROGRESS and request.eta is None and not request.note:
        missing.append(FieldViolation("note", "a progress report needs a note or an ETA"))
    if step is Step.COMPLETE:
        need("completion", request.completion, "a completion report is required")
    if step is Step.COMMENT:
        need("text", request.note and request.note.strip(), "a comment needs text")
        need("comment_id", request.comment_id, "a comment needs an id")
    if request.eta is not None and request.eta < request.at - timedelta(minutes=5):
        missing.append(FieldViolation("eta", "must not lie in the past"))
    return missing


def decide(standing: Standing, request: Request) -> Decision:
    """Where ``request`` leads an order that stands as ``standing``; raises if it may not.

    Checked in this order: who (the actor's kind may take the step, a contractor only on its own
    job), what (the request has what the step needs), when (the state allows it; a closed order
    can be reopened only within its window).
    """
    step, actor, state = request.step, request.actor, standing.state
    if actor.kind not in TAKEN_BY[step]:
        msg = f"a {actor.kind.value} may not take the step {step.value!r}"
        raise Forbidden(msg)
    if (
        actor.kind is ActorKind.CONTRACTOR
        and step not in (Step.ASSIGN, Step.DECLINE_OFFER)
        and (standing.contractor_id is None or standing.contractor_id != actor.id)
    ):
        msg = f"contractor {actor.id!r} does not hold this job"
        raise Forbidden(msg)
    violations = _required(request)
    if violations:
        msg = f"the step {step.value!r} is missing what it needs"
        raise InvalidInput(msg, violations)
    if state not in ALLOWED_FROM[step]:
        msg = f"a {state.value} work order cannot be {_verb(step)}"
        raise IllegalTransition(msg)
    if step is Step.REJECT and state is S.CLOSED:
        until = standing.reopen_until
        if until is not None and request.at > until:
            msg = f"the work order was closed more than {standing.reopen_window.days} days ago"
            raise IllegalTransition(msg)
    return Decision(step, state, TARGETS.get(step, state))


def _verb(step: Step) -> str:
    return {
        Step.START_DISPATCH: "dispatched",
        Step.ASSIGN: "assigned",
        Step.DECLINE_OFFER: "declined",
        Step.SCHEDULE: "scheduled",
        Step.DEPART: "reported en route",
        Step.ARRIVE: "reported on site",
        Step.AWAIT_PARTS: "put on hold for parts",
        Step.REPORT_PROGRESS: "reported on",
        Step.REPORT_DELAY: "reported delayed",
        Step.COMPLETE: "completed",
        Step.VERIFY: "verified",
        Step.REJECT: "reopened",
        Step.CLOSE: "closed",
        Step.CANCEL: "cancelled",
        Step.ARCHIVE: "archived",
        Step.COMMENT: "commented on",
    }[step]


def needs_follow_up(standing: Standing, at: datetime) -> bool:
    """True when rejected work can no longer reopen the order: it was closed longer ago than its
    reopen window (or archived). The rejection then becomes a new order, linked to this one."""
    if standing.state is S.ARCHIVED:
        return True
    until = standing.reopen_until
    return standing.state is S.CLOSED and until is not None and at > until


def follow_up_external_id(external_id: str, follow_up_id: str) -> str:
    """The external id of a follow-up order: the original's with a suffix naming the new order
    (unique, and still at most 128 characters)."""
    suffix = f":followup-{follow_up_id[:8]}"
    return external_id[: 128 - len(suffix)] + suffix


def reachable_from_received() -> frozenset[WorkOrderState]:
    """Every state some sequence of steps leads to from ``received`` (for checks and docs)."""
    seen = {S.RECEIVED}
    frontier = [S.RECEIVED]
    while frontier:
        state = frontier.pop()
        for step, sources in ALLOWED_FROM.items():
            if state in sources:
                target = TARGETS.get(step, state)
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
    return frozenset(seen)


def state_diagram() -> str:
    """The lifecycle as a Mermaid state diagram (generated, so docs never drift)."""
    lines = ["stateDiagram-v2", "    [*] --> received"]
    lines.extend(
        f"    {source.value} --> {target.value}: {step.name.lower()}"
        for step, target in TARGETS.items()
        for source in sorted(ALLOWED_FROM[step], key=list(S).index)
    )
    lines.append("    archived --> [*]")
    return "\n".join(lines)


__all__ = [
    "ALLOWED_FROM",
    "CANCELLABLE",
    "DEFAULT_REOPEN_WINDOW",
    "FINAL_STATES",
    "OPEN_JOB_STATES",
    "REOPENABLE",
    "SUMMARIES",
    "SYSTEM",
    "TAKEN_BY",
    "TARGETS",
    "Actor",
    "ChecklistItem",
    "Completion",
    "Decision",
    "PartQuantity",
    "Photo",
    "Request",
    "Standing",
    "Step",
    "decide",
    "follow_up_external_id",
    "needs_follow_up",
    "reachable_from_received",
    "state_diagram",
]
