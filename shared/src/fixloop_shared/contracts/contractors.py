"""Events of the contractors service (``fixloop.contractors.events.v1``): offers, assignments,
credential alerts, contractors' scorecards and quality alerts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, EmailStr, Field

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import (
    EquipmentClass,
    Identifier,
    Name,
    Phone,
    ShortText,
    TimeZoneName,
)
from fixloop_shared.vocabulary import Category


class ContractorContact(Contract):
    """How a contractor's office is reached (for the notices sent to it)."""

    email: EmailStr
    phone: Phone | None = None
    timezone: TimeZoneName | None = None


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
    contact: ContractorContact | None = None
    """How to reach the contractor (told to it with the offer, and to the requester once it
    is assigned)."""


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


class AssignmentEscalated(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.escalated.v1"
    summary: ClassVar[str] = (
        "A work order was not taken in time: it is in the operators' dispatch queue"
    )

    work_order_id: Identifier
    escalated_at: AwareDatetime
    waiting_since: AwareDatetime
    """When the order was first dispatched (its first offer)."""
    offers_made: Annotated[int, Field(ge=0, le=1000)]
    open_offers: Annotated[list[Identifier], Field(max_length=50)] = Field(default_factory=list)
    """The contractors whose offers are still open (dispatch goes on meanwhile)."""
    reason: ShortText


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
    contact: ContractorContact | None = None
    """Where the contractor is told of it."""


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


# Sent with a credential_expired alert for each job the contractor still has open (one per job,
# keyed by the work order): the job goes on, flagged in the order's timeline.
class AssignmentCredentialLapsed(EventPayload):
    event_type: ClassVar[str] = "fixloop.assignment.credential_lapsed.v1"
    summary: ClassVar[str] = (
        "A credential of the contractor on an open job expired while the job was under way"
    )

    work_order_id: Identifier
    offer_id: Identifier
    contractor_id: Identifier
    credential_kind: CredentialKindName
    credential_number: CredentialNumber
    expires_on: date
    """The last day the credential was valid (the contractor's calendar)."""
    noticed_at: AwareDatetime


Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
"""A share, 0..1."""
Seconds = Annotated[float, Field(ge=0, le=10 * 366 * 86_400, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class ScorecardMeasures(Contract):
    """A contractor's measures over its recent offers and jobs (None: no case yet)."""

    acceptance_rate: Rate | None = None
    """Accepted / answered offers (an answer: accepted, declined or let run out)."""
    median_seconds_to_accept: Seconds | None = None
    mean_seconds_to_accept: Seconds | None = None
    on_time_arrival_rate: Rate | None = None
    """First arrivals on site by the end of the agreed visit window / visits judged."""
    completion_within_target_rate: Rate | None = None
    """Jobs completed within the repair target of their priority / completed jobs."""
    median_seconds_to_complete: Seconds | None = None
    """From the order's receipt to its completion."""
    first_time_fix_rate: Rate | None = None
    """Completed jobs never reopened nor repaired again on the same equipment within the repeat
    window / completed jobs."""
    mean_rating: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)] | None = None
    """The customers' mean rating, 1..5."""


class ScorecardSamples(Contract):
    """How many cases each measure was taken over."""

    offers_answered: Count = 0
    offers_accepted: Count = 0
    accept_times: Count = 0
    """Accepted offers whose offer and acceptance times are both known."""
    arrivals: Count = 0
    completions: Count = 0
    fixes: Count = 0
    """Completed jobs judged for a first-time fix."""
    ratings: Count = 0


# Keyed by the contractor id; sent when a contractor's measures or score change, under the
# tenant of the work order or offer whose step changed them.
class ContractorScorecardUpdated(EventPayload):
    event_type: ClassVar[str] = "fixloop.contractor.scorecard_updated.v1"
    summary: ClassVar[str] = "A contractor's scorecard changed: its measures and quality score"
    subject_field: ClassVar[str | None] = "contractor_id"

    contractor_id: Identifier
    score: Rate | None = None
    """The quality score dispatch ranks with (None: too few cases yet; counted as neutral)."""
    measures: ScorecardMeasures
    samples: ScorecardSamples
    min_sample: Annotated[int, Field(ge=1, le=1_000_000)]
    """A measure takes part in the score only with at least this many cases."""
    updated_at: AwareDatetime


QualityAlertKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""What was found: ``too_fast_completion``, ``repeat_repair`` (more may come; readers show unknown
kinds as they are)."""


class TooFastCompletionEvidence(Contract):
    """Work done in far less than its standard time."""

    completed_at: AwareDatetime
    on_site_at: AwareDatetime | None = None
    """The arrival the work's time was measured from (None: the reported labour was taken)."""
    minutes_taken: Annotated[float, Field(ge=0, le=10 * 366 * 1440, allow_inf_nan=False)]
    measured_from: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    """``on_site_to_completed`` or ``reported_labour``."""
    reported_labour_minutes: Annotated[int, Field(ge=0, le=60 * 24 * 30)]
    standard_minutes: Annotated[float, Field(gt=0, le=10 * 366 * 1440, allow_inf_nan=False)]
    """The standard time of the order's category and equipment class."""
    threshold_ratio: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    """Work taking at most this share of its standard time is flagged."""


class RepeatRepairEvidence(Contract):
    """A repair on the same equipment soon after an earlier one was completed."""

    earlier_work_order_id: Identifier
    earlier_completed_at: AwareDatetime
    received_at: AwareDatetime
    """When the later work order was received."""
    days_after_completion: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
    follow_up: bool = False
    """The later order is a follow-up of the earlier one (its work was rejected)."""
    window_days: Annotated[int, Field(ge=1, le=3660)]


# Keyed by the work order the alert is about (a repeat repair: the later order); the alert waits
# in the operators' queue (``fixloop dispatch alerts``).
class QualityAlertRaised(EventPayload):
    event_type: ClassVar[str] = "fixloop.quality.alert_raised.v1"
    summary: ClassVar[str] = (
        "Work looks wrong (done far faster than its standard time, or repaired again soon): "
        "an operator is to look at it"
    )

    alert_id: Identifier
    kind: QualityAlertKind
    work_order_id: Identifier
    contractor_id: Identifier | None = None
    """Whose work is in question (a repeat repair: the contractor of the earlier job)."""
    site_id: Identifier
    equipment_id: Identifier
    equipment_class: EquipmentClass
    category: Category
    finding: ShortText
    """What was found, in one sentence."""
    too_fast: TooFastCompletionEvidence | None = None
    repeat_repair: RepeatRepairEvidence | None = None
    raised_at: AwareDatetime


__all__ = [
    "AssignmentAccepted",
    "AssignmentCredentialLapsed",
    "AssignmentDeclined",
    "AssignmentEscalated",
    "AssignmentExpired",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "AssignmentWithdrawn",
    "ContractorContact",
    "ContractorCredentialExpired",
    "ContractorCredentialExpiring",
    "ContractorScorecardUpdated",
    "CredentialKindName",
    "CredentialNumber",
    "QualityAlertKind",
    "QualityAlertRaised",
    "RepeatRepairEvidence",
    "ScorecardMeasures",
    "ScorecardSamples",
    "TooFastCompletionEvidence",
    "UnfilledReason",
]
