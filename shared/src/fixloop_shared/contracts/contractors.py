"""Events of the contractors service (``fixloop.contractors.events.v1``): offers, assignments and
credential alerts."""

from __future__ import annotations

from datetime import date
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
    assigned_by: Identifier | None = None
    """The operator who gave the order to this contractor directly (from the dispatch queue):
    the order is assigned at once, without the contractor's answer."""
    reason: ShortText | None = None
    """Why the operator chose this contractor (operator assignments only)."""


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


CredentialKindName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""What a credential is: ``trade_licence``, ``liability_insurance``, ``certification`` (more may
come; readers show unknown kinds as they are)."""
CredentialNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./_-]{0,63}$")]
"""A licence, policy or certificate number as its issuer writes it."""


# Sent 30 and 7 days before a credential's expiry date, at the contractor's local morning (each
# once); a credential imported later than that gets one warning at once, with the days it really
# has left. One event per tenant the contractor works for.
class ContractorCredentialExpiring(EventPayload):
    event_type: ClassVar[str] = "fixloop.contractor.credential_expiring.v1"
    summary: ClassVar[str] = "A contractor's licence, insurance or certification expires soon"

    contractor_id: Identifier
    contractor_name: Name
    credential_kind: CredentialKindName
    credential_number: CredentialNumber
    credential_name: Name | None = None
    expires_on: date
    """The last day the credential is valid (the contractor's calendar)."""
    days_left: Annotated[int, Field(ge=0, le=3660)]
    """Days from the contractor's local date when this was sent to ``expires_on`` (30, 7, or
    fewer for a credential imported late)."""
    due_at: AwareDatetime
    """When the warning was due (the contractor's local morning, or the import for a late one)."""


# Sent on the day after a credential's expiry date, at the contractor's local morning (once); the
# contractor gets no offers until it is renewed. One event per tenant the contractor works for.
class ContractorCredentialExpired(EventPayload):
    event_type: ClassVar[str] = "fixloop.contractor.credential_expired.v1"
    summary: ClassVar[str] = "A contractor's licence, insurance or certification has expired"

    contractor_id: Identifier
    contractor_name: Name
    credential_kind: CredentialKindName
    credential_number: CredentialNumber
    credential_name: Name | None = None
    expires_on: date
    """The last day the credential was valid (the contractor's calendar)."""
    due_at: AwareDatetime
    """When the alert was due (the contractor's local morning of the day after ``expires_on``,
    or the import for a credential imported already expired)."""


__all__ = [
    "AssignmentAccepted",
    "AssignmentDeclined",
    "AssignmentExpired",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "AssignmentWithdrawn",
    "ContractorCredentialExpired",
    "ContractorCredentialExpiring",
    "CredentialKindName",
    "CredentialNumber",
    "UnfilledReason",
]
