"""Events of the contractors service (``fixloop.contractors.events.v1``): offers and assignments."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, Name, ShortText


class AssignmentOffered(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.offered.v1"
    summary: ClassVar[str] = "Work order offered to a contractor"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    contractor_name: Name
    offered_at: AwareDatetime
    expires_at: AwareDatetime
    dispatch_round: Annotated[int, Field(ge=1, le=1000)] = 1
    """Which offer of the work order this is: 1 on its receipt, one more after each offer that
    was declined or ran out."""


class UnfilledReason(Contract):
    contractor_id: Identifier
    reasons: Annotated[list[ShortText], Field(max_length=20)]


class AssignmentUnfilled(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.unfilled.v1"
    summary: ClassVar[str] = "No eligible contractor for a work order"

    work_order_id: Identifier
    reason: ShortText
    considered: Annotated[list[UnfilledReason], Field(max_length=500)] = Field(default_factory=list)
    decided_at: AwareDatetime


class AssignmentAccepted(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.accepted.v1"
    summary: ClassVar[str] = "Contractor accepted a work order"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    accepted_at: AwareDatetime


class AssignmentDeclined(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.declined.v1"
    summary: ClassVar[str] = "A contractor declined an offer; the order goes to the next candidate"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    reason: ShortText | None = None
    declined_at: AwareDatetime
    dispatch_round: Annotated[int, Field(ge=1, le=1000)] = 1


class AssignmentExpired(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.expired.v1"
    summary: ClassVar[str] = (
        "An offer ran out before the contractor answered; the order goes to the next candidate"
    )

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    expired_at: AwareDatetime
    dispatch_round: Annotated[int, Field(ge=1, le=1000)] = 1


class AssignmentWithdrawn(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.withdrawn.v1"
    summary: ClassVar[str] = "An open offer was withdrawn (the order was cancelled or taken)"

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    reason: ShortText
    withdrawn_at: AwareDatetime


__all__ = [
    "AssignmentAccepted",
    "AssignmentDeclined",
    "AssignmentExpired",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "AssignmentWithdrawn",
    "UnfilledReason",
]
