"""Customer feedback on a work order's work (the satisfaction survey).

Published on ``fixloop.workorders.events.v1``, keyed by the work order id, so that it travels in
order with the order's own steps. The contract is minimal on purpose (the survey adds fields as
it needs them; readers ignore the ones they do not know): which order, the rating, when.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import EventPayload
from fixloop_shared.contracts.types import Identifier


class FeedbackSubmitted(EventPayload):
    event_type: ClassVar[str] = "fixloop.feedback.submitted.v1"
    summary: ClassVar[str] = "The customer rated the work done on a work order"

    work_order_id: Identifier
    rating: Annotated[int, Field(ge=1, le=5)]
    """1 (poor) to 5 (excellent)."""
    submitted_at: AwareDatetime


__all__ = ["FeedbackSubmitted"]
