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
    "AssignmentOffered",
    "AssignmentUnfilled",
    "AssignmentWithdrawn",
    "UnfilledReason",
]
