"""What the requester answers through the signed links of the notifications they receive.

Both events are published by the notifications service on ``fixloop.notifications.events.v1``,
keyed by the work order id, so that all answers about one order stay in order:

* :class:`FeedbackSubmitted` — the satisfaction survey of a closed order (rating and comment);
  orders puts it in the order's timeline, contractors uses it for the contractor's scorecard;
* :class:`CompletionAnswered` — the requester's verdict on completed work (the verify/reject
  link); orders takes the same verify or reject step a platform's command takes.

Readers are tolerant: the optional fields were added without a new version.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import EventPayload
from fixloop_shared.contracts.types import Description, Identifier, Locale, ShortText

MAX_RATING = 5


class FeedbackSubmitted(EventPayload):
    """The requester answered the satisfaction survey of a work order (once per order)."""

    event_type: ClassVar[str] = "fixloop.feedback.submitted.v1"
    summary: ClassVar[str] = "The customer rated the work done on a work order"

    work_order_id: Identifier
    rating: Annotated[int, Field(ge=1, le=MAX_RATING)]
    """1 (poor) to 5 (excellent)."""
    submitted_at: AwareDatetime
    comment: Description | None = Field(default=None, description="the requester's own words")
    contractor_id: Identifier | None = Field(
        default=None, description="the contractor who did the work, when known"
    )
    locale: Locale | None = Field(default=None, description="the language the survey was shown in")


class CompletionVerdict(StrEnum):
    """What the requester says of completed work."""

    VERIFIED = "verified"
    REJECTED = "rejected"


class CompletionAnswered(EventPayload):
    """The requester verified or rejected the completed work through the signed link of the
    ``work_completed`` notice (once per order and link)."""

    event_type: ClassVar[str] = "fixloop.feedback.completion_answered.v1"
    summary: ClassVar[str] = "The customer verified or rejected the completed work of a work order"

    work_order_id: Identifier
    verdict: CompletionVerdict
    reason: ShortText | None = Field(default=None, description="why the work was rejected")
    answered_at: AwareDatetime


__all__ = ["MAX_RATING", "CompletionAnswered", "CompletionVerdict", "FeedbackSubmitted"]
