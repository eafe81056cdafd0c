"""The work order aggregate: what is to be done, where it stands, and its append-only timeline.

The rules of the lifecycle live in :mod:`fixloop_orders.domain.lifecycle`; the aggregate takes a
step the rules allow, changes itself accordingly and produces exactly one timeline entry for it.
What other services report (offers, reservations, clocks, notices) is *noted* in the timeline
without touching the order. The timeline is the audit trail: never updated, never deleted, and
:func:`replay` rebuilds the state from it (as of any moment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fixloop_orders.domain.details import WorkOrderDetails
from fixloop_orders.domain.lifecycle import (
    ALLOWED_FROM,
    DEFAULT_REOPEN_WINDOW,
    FINAL_STATES,
    SUMMARIES,
    TARGETS,
    Completion,
    Decision,
    Request,
    Standing,
    Step,
    decide,
)
from fixloop_shared.errors import IllegalTransition
from fixloop_shared.vocabulary import WorkOrderState


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


LIFECYCLE_KINDS: frozenset[str] = frozenset(step.value for step in Step)


@dataclass
class WorkOrder:
    """A work order: what is to be done, where it stands, and the timeline entries not yet saved.

    The timeline is append-only and kept outside the aggregate (it grows without bound); the
    aggregate only produces new entries, in ``new_entries``, for the repository to append.
    ``version`` counts the steps taken (1 once received); ``stored_version`` is the version the
    store holds, which a save must still find there (optimistic concurrency).
    """

    work_order_id: str
    tenant: str
    source_platform: str
    details: WorkOrderDetails
    state: WorkOrderState
    received_at: datetime
    updated_at: datetime
    reopened_at: datetime | None = None
    version: int = 1
    stored_version: int | None = None
    contractor_id: str | None = None
    window: tuple[datetime, datetime] | None = None
    eta: datetime | None = None
    completion: Completion | None = None
    completed_at: datetime | None = None
    verify_by: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    follow_up_of: str | None = None
    new_entries: list[TimelineEntry] = field(default_factory=list, compare=False)

    @property
    def key(self) -> ExternalOrderKey:
        return ExternalOrderKey(self.tenant, self.source_platform, self.details.external_id)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def standing(self, reopen_window: timedelta = DEFAULT_REOPEN_WINDOW) -> Standing:
        return Standing(
            state=self.state,
            contractor_id=self.contractor_id,
            closed_at=self.closed_at,
            reopen_window=reopen_window,
        )

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
        follow_up_of: str | None = None,
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
            follow_up_of=follow_up_of,
        )
        entry_details = _received_details(source_platform, order.details)
        entry_details["state_after"] = WorkOrderState.RECEIVED.value
        entry_details["version"] = "1"
        if follow_up_of is not None:
            entry_details["follow_up_of"] = follow_up_of
        order.new_entries.append(
            TimelineEntry(
                entry_id=submission_id,
                at=received_at,
                kind=RECEIVED_KIND,
                summary=received_summary(source_platform, order.details),
                event_type=submission_type,
                details=entry_details,
                recorded_at=received_at,
            )
        )
        return order

    def take(
        self,
        request: Request,
        *,
        entry_id: str,
        event_type: str,
        via: str,
        reopen_window: timedelta = DEFAULT_REOPEN_WINDOW,
        verify_after: timedelta | None = None,
    ) -> Decision:
        """Take a step the rules allow (else raise, changing nothing) and record it.

        ``verify_after`` is how long after completion the work counts as verified without an
        answer (sets ``verify_by``).
        """
        decision = decide(self.standing(reopen_window), request)
        self._apply(request, decision, verify_after=verify_after)
        self.version += 1
        self.updated_at = max(self.updated_at, request.at)
        self.new_entries.append(
            TimelineEntry(
                entry_id=entry_id,
                at=request.at,
                kind=request.step.value,
                summary=step_summary(request, decision),
                event_type=event_type,
                details=self._step_details(request, decision, via),
                recorded_at=request.at,
            )
        )
        return decision

    def _apply(
        self, request: Request, decision: Decision, *, verify_after: timedelta | None
    ) -> None:
        step = request.step
        self.state = decision.after
        if step is Step.ASSIGN:
            self.contractor_id = request.contractor_id
        elif step is Step.SCHEDULE:
            self.window = request.window
        elif step is Step.COMPLETE:
            self.completion = request.completion
            self.completed_at = request.at
            self.verify_by = None if verify_after is None else request.at + verify_after
        elif step is Step.VERIFY:
            self.verify_by = None
        elif step is Step.CLOSE:
            self.closed_at = request.at
        elif step is Step.REJECT:
            self.reopened_at = request.at
            self.reopen_count += 1
            self.verify_by = None
            self.closed_at = None
            self.window = None
        if request.eta is not None:
            self.eta = request.eta
        if step is Step.ARRIVE and request.eta is None:
            self.eta = None

    def _step_details(self, request: Request, decision: Decision, via: str) -> dict[str, str]:
        details = {
            "step": request.step.value,
            "state_before": decision.before.value,
            "state_after": decision.after.value,
            "version": str(self.version),
            "actor_kind": request.actor.kind.value,
            "via": via,
        }
        optional = {
            "actor_id": request.actor.id,
            "reason": request.reason,
            "note": request.note,
            "offer_id": request.offer_id,
            "contractor_id": self.contractor_id,
            "comment_id": request.comment_id,
            "cause": None if request.cause is None else request.cause.value,
            "eta": None if request.eta is None else _iso(request.eta),
        }
        if request.window is not None:
            optional["window_start"] = _iso(request.window[0])
            optional["window_end"] = _iso(request.window[1])
        if request.step is Step.COMPLETE and self.completion is not None:
            optional["resolution_code"] = self.completion.resolution_code
            optional["labour_minutes"] = str(self.completion.labour_minutes)
            optional["parts_used"] = str(len(self.completion.parts_used))
            optional["photos"] = str(len(self.completion.photos))
            if self.verify_by is not None:
                optional["verify_by"] = _iso(self.verify_by)
        if request.automatic:
            optional["automatic"] = "true"
        details.update({key: value for key, value in optional.items() if value})
        return details

    def note(self, entry: TimelineEntry, *, recorded_at: datetime) -> None:
        """Record something that happened to the work order without changing it (its state,
        details and ``updated_at`` stay as they are)."""
        self.new_entries.append(replace(entry, recorded_at=recorded_at))


def step_summary(request: Request, decision: Decision) -> str:
    """One line for people: what happened, with the facts that matter."""
    text = SUMMARIES[request.step]
    step = request.step
    if step is Step.ASSIGN and request.contractor_id:
        text += f" ({request.contractor_id})"
    if step is Step.SCHEDULE and request.window is not None:
        text += f" for {_clock(request.window[0])} to {_clock(request.window[1])}"
    if step is Step.REPORT_DELAY and request.cause is not None:
        text += f": {request.cause.value}"
    if request.eta is not None:
        text += f", ETA {_clock(request.eta)}"
    if step is Step.REJECT:
        text += f" (was {decision.before.value})"
    if step is Step.VERIFY and request.automatic:
        text += " automatically: no answer from the requester in time"
    if request.reason:
        text += f": {request.reason}"
    elif request.note and step in (Step.REPORT_PROGRESS, Step.COMMENT):
        text += f": {request.note}"
    return text[:500]


class TimelineDoesNotReplayError(IllegalTransition):
    """A timeline whose lifecycle entries do not follow the rules (never written by us)."""

    reason = "timeline-inconsistent"


def replay(entries: Iterable[TimelineEntry], *, as_of: datetime | None = None) -> WorkOrderState:
    """The state the lifecycle entries of a timeline lead to (up to ``as_of``, when given).

    Entries are taken in version order; each must start where the previous one ended, be a step
    allowed from there and end where the rules say. Notes of other services are skipped.
    """
    steps = sorted(
        (
            entry
            for entry in entries
            if "version" in entry.details and (as_of is None or entry.at <= as_of)
        ),
        key=lambda entry: int(entry.details["version"]),
    )
    state: WorkOrderState | None = None
    for entry in steps:
        if entry.kind == RECEIVED_KIND:
            state = WorkOrderState.RECEIVED
            continue
        if state is None:
            raise TimelineDoesNotReplayError("the timeline does not begin with its receipt")
        step = Step(entry.kind)
        before = WorkOrderState(entry.details["state_before"])
        after = WorkOrderState(entry.details["state_after"])
        if before is not state or state not in ALLOWED_FROM[step]:
            msg = f"entry {entry.entry_id}: {step.value} from {before.value}, state {state.value}"
            raise TimelineDoesNotReplayError(msg)
        if after is not TARGETS.get(step, state):
            msg = f"entry {entry.entry_id}: {step.value} cannot lead to {after.value}"
            raise TimelineDoesNotReplayError(msg)
        state = after
    if state is None:
        raise TimelineDoesNotReplayError("the timeline has no receipt (before that moment)")
    return state


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
    "LIFECYCLE_KINDS",
    "RECEIVED_KIND",
    "ExternalOrderKey",
    "TimelineDoesNotReplayError",
    "TimelineEntry",
    "WorkOrder",
    "WorkOrderState",
    "received_summary",
    "replay",
    "step_summary",
]
