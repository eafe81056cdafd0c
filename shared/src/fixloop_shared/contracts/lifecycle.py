"""The work order's lifecycle on the wire: one event per step, and the commands platforms send.

Every step of a work order's life that the orders service decides is published on
``fixloop.workorders.events.v1`` as its own versioned event (``fixloop.workorder.<step>.v1``).
All of them carry the same :class:`LifecycleFacts` (which order, its state before and after, who
did it, through which edge, when, why), so a consumer that only follows states can read any of
them the same way; each adds what is particular to its step.

The inbound commands (:class:`CancellationRequested`, :class:`CompletionVerified`,
:class:`CompletionRejected`) are how the external platform that submitted an order acts on it
over Kafka; like submissions they are closed contracts, and the order is named by the platform's
own ``external_id``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from fixloop_shared.contracts.base import ClosedContract, Contract, EventPayload
from fixloop_shared.contracts.types import (
    Description,
    EventId,
    ExternalId,
    Identifier,
    Name,
    PartNumber,
    Quantity,
    ShortText,
)
from fixloop_shared.vocabulary import ActorKind, ChecklistOutcome, DelayCause, WorkOrderState

MAX_PHOTOS = 20
MAX_CHECKLIST_ITEMS = 100
MAX_PARTS_USED = 50
MAX_PHOTO_BYTES = 50 * 1024 * 1024
"""The largest photo a completion report may refer to (the bytes live elsewhere)."""
MAX_LABOUR_MINUTES = 60 * 24 * 30

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ContentType = Annotated[str, StringConstraints(pattern=r"^image/(jpeg|png|webp|heic)$")]
ResolutionCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Reference = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$"),
]
"""Where something lives: an absolute URI (``https://...``, ``s3://bucket/key``)."""


class Actor(Contract):
    """Who did it: a kind and that principal's id (a partner, a contractor, an operator, a
    platform's source, or ``fixloop`` for the system)."""

    kind: ActorKind
    id: EventId | None = Field(
        default=None, description="a principal's id, a platform's source, or fixloop"
    )
    name: Name | None = None


class LifecycleFacts(Contract):
    """What every lifecycle event says."""

    work_order_id: Identifier
    external_id: ExternalId
    source_platform: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    state: WorkOrderState = Field(description="the order's state after this step")
    previous_state: WorkOrderState
    occurred_at: AwareDatetime
    actor: Actor
    via: Annotated[str, StringConstraints(pattern=r"^(grpc|kafka|cli|scheduler|events)$")] = Field(
        description="the edge the step came through: grpc, kafka, cli, scheduler or events"
    )
    reason: ShortText | None = None
    note: Description | None = None
    version: int = Field(ge=1, description="the order's version after this step (1, 2, ...)")
    contractor_id: Identifier | None = Field(
        default=None, description="the contractor the order is assigned to, if any"
    )


class PartUsed(Contract):
    part_number: PartNumber
    quantity: Quantity


class ChecklistResult(Contract):
    item: Name
    outcome: ChecklistOutcome
    note: ShortText | None = None


class PhotoEvidence(Contract):
    """A photo taken as proof: where it is, what it is, and its digest (the bytes live there)."""

    uri: Reference
    content_type: ContentType
    size_bytes: int = Field(ge=1, le=MAX_PHOTO_BYTES)
    sha256: Sha256Hex


class CompletionReport(Contract):
    resolution_code: ResolutionCode
    work_summary: Description
    labour_minutes: int = Field(ge=0, le=MAX_LABOUR_MINUTES)
    parts_used: Annotated[list[PartUsed], Field(max_length=MAX_PARTS_USED)] = Field(
        default_factory=list
    )
    checklist: Annotated[list[ChecklistResult], Field(max_length=MAX_CHECKLIST_ITEMS)] = Field(
        default_factory=list
    )
    photos: Annotated[list[PhotoEvidence], Field(max_length=MAX_PHOTOS)] = Field(
        default_factory=list
    )


# --------------------------------------------------------------------------- lifecycle events


class WorkOrderDispatching(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.dispatching.v1"
    summary: ClassVar[str] = "Dispatch of a work order under way (first offer made)"

    offer_id: Identifier | None = None


class WorkOrderAssigned(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.assigned.v1"
    summary: ClassVar[str] = "A contractor accepted the work order"

    offer_id: Identifier | None = None


class WorkOrderOfferDeclined(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.offer_declined.v1"
    summary: ClassVar[str] = "A contractor declined an offer of the work order"

    offer_id: Identifier
    declined_by: Identifier


class WorkOrderScheduled(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.scheduled.v1"
    summary: ClassVar[str] = "A visit was scheduled with the site (appointment window)"

    window_start: AwareDatetime
    window_end: AwareDatetime


class WorkOrderEnRoute(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.en_route.v1"
    summary: ClassVar[str] = "The contractor is on the way to the site"

    eta: AwareDatetime | None = None


class WorkOrderOnSite(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.on_site.v1"
    summary: ClassVar[str] = "The contractor is on site"

    eta: AwareDatetime | None = Field(default=None, description="expected completion")


class WorkOrderAwaitingParts(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.awaiting_parts.v1"
    summary: ClassVar[str] = "Work waits for parts"

    parts: Annotated[list[PartUsed], Field(max_length=MAX_PARTS_USED)] = Field(default_factory=list)
    eta: AwareDatetime | None = Field(default=None, description="when the parts are expected")


class WorkOrderProgressReported(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.progress_reported.v1"
    summary: ClassVar[str] = "The contractor reported progress (a note and an ETA)"

    eta: AwareDatetime | None = None


class WorkOrderDelayed(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.delayed.v1"
    summary: ClassVar[str] = "The work is delayed: a cause and a new ETA"

    cause: DelayCause
    new_eta: AwareDatetime


class WorkOrderWorkCompleted(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.work_completed.v1"
    summary: ClassVar[str] = "The contractor completed the work; the requester is to verify it"

    completion: CompletionReport
    verify_by: AwareDatetime = Field(description="when it is verified automatically")


class WorkOrderVerified(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.verified.v1"
    summary: ClassVar[str] = "The requester verified the work (or it was verified automatically)"

    automatic: bool = False


class WorkOrderClosed(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.closed.v1"
    summary: ClassVar[str] = "The work order is closed"

    reopen_until: AwareDatetime = Field(description="until when it can still be reopened")


class WorkOrderCancelled(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.cancelled.v1"
    summary: ClassVar[str] = "The work order is cancelled"


class WorkOrderReopened(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.reopened.v1"
    summary: ClassVar[str] = "The work was rejected or found lacking: back to the contractor"


class WorkOrderArchived(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.archived.v1"
    summary: ClassVar[str] = "A closed work order moved to the archive (still readable)"


class WorkOrderCommentAdded(EventPayload, LifecycleFacts):
    event_type: ClassVar[str] = "fixloop.workorder.comment_added.v1"
    summary: ClassVar[str] = "A comment on the work order's thread"

    comment_id: Identifier
    text: Description


LIFECYCLE_EVENTS: tuple[type[EventPayload], ...] = (
    WorkOrderDispatching,
    WorkOrderAssigned,
    WorkOrderOfferDeclined,
    WorkOrderScheduled,
    WorkOrderEnRoute,
    WorkOrderOnSite,
    WorkOrderAwaitingParts,
    WorkOrderProgressReported,
    WorkOrderDelayed,
    WorkOrderWorkCompleted,
    WorkOrderVerified,
    WorkOrderClosed,
    WorkOrderCancelled,
    WorkOrderReopened,
    WorkOrderArchived,
    WorkOrderCommentAdded,
)
"""Every lifecycle event the orders service publishes after ``workorder.received``."""


# --------------------------------------------------------------------------- inbound commands


class PlatformCommand(ClosedContract):
    """A command of the platform that submitted the order, naming it by its ``external_id``."""

    external_id: ExternalId = Field(description="the order's id on the source platform")


class CancellationRequested(EventPayload, PlatformCommand):
    """Inbound: the platform cancels its order (``reason`` required)."""

    event_type: ClassVar[str] = "fixloop.workorder.cancellation_requested.v1"
    summary: ClassVar[str] = "The source platform cancels its work order"
    subject_field: ClassVar[str | None] = "external_id"

    reason: ShortText


class CompletionVerified(EventPayload, PlatformCommand):
    """Inbound: the platform confirms the completed work."""

    event_type: ClassVar[str] = "fixloop.workorder.completion_verified.v1"
    summary: ClassVar[str] = "The source platform verifies the completed work"
    subject_field: ClassVar[str | None] = "external_id"

    note: Description | None = None


class CompletionRejected(EventPayload, PlatformCommand):
    """Inbound: the platform rejects the completed work (``reason`` required); it is reopened."""

    event_type: ClassVar[str] = "fixloop.workorder.completion_rejected.v1"
    summary: ClassVar[str] = "The source platform rejects the completed work"
    subject_field: ClassVar[str | None] = "external_id"

    reason: ShortText


PLATFORM_COMMANDS: tuple[type[EventPayload], ...] = (
    CancellationRequested,
    CompletionVerified,
    CompletionRejected,
)


__all__ = [
    "LIFECYCLE_EVENTS",
    "MAX_PHOTOS",
    "MAX_PHOTO_BYTES",
    "PLATFORM_COMMANDS",
    "Actor",
    "CancellationRequested",
    "ChecklistResult",
    "CompletionRejected",
    "CompletionReport",
    "CompletionVerified",
    "LifecycleFacts",
    "PartUsed",
    "PhotoEvidence",
    "PlatformCommand",
    "WorkOrderArchived",
    "WorkOrderAssigned",
    "WorkOrderAwaitingParts",
    "WorkOrderCancelled",
    "WorkOrderClosed",
    "WorkOrderCommentAdded",
    "WorkOrderDelayed",
    "WorkOrderDispatching",
    "WorkOrderEnRoute",
    "WorkOrderOfferDeclined",
    "WorkOrderOnSite",
    "WorkOrderProgressReported",
    "WorkOrderReopened",
    "WorkOrderScheduled",
    "WorkOrderVerified",
    "WorkOrderWorkCompleted",
]
