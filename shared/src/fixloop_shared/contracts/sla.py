"""Events of the sla service (``fixloop.sla.events.v1``): milestone clocks warned, breached,
escalated, met, stopped, recomputed after a late event, their breach retracted, at risk.

Every event names its clock (``clock_id``, ``milestone``, ``cycle``) and the deadline it is about
(``due_at``, with the ``deadline_version`` that deadline has in its cycle: a pause and resume, or a
late event, moves the deadline to a new version). ``warn_at`` is when the clock's warning is due
(equal to ``due_at`` for a clock without a warning).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, ShortText
from fixloop_shared.vocabulary import Milestone

ClockOutcome = Literal["running", "paused", "met", "missed", "cancelled"]


class SlaClockFacts(Contract):
    work_order_id: Identifier
    clock_id: Identifier
    milestone: Milestone
    started_at: AwareDatetime
    warn_at: AwareDatetime
    due_at: AwareDatetime
    cycle: int = Field(default=1, ge=1, description="which cycle of the clock (reopens, recurring)")
    deadline_version: int = Field(
        default=1, ge=1, description="the how-manieth deadline of this cycle ``due_at`` is"
    )
    policy: ShortText | None = Field(default=None, description="the policy the clock runs under")
    policy_version: int | None = Field(default=None, ge=1)


class SlaWarning(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.warning.v1"
    summary: ClassVar[str] = "A milestone is about to miss its SLA"

    fired_at: AwareDatetime
    late: bool = Field(default=False, description="fired after its moment (service was down)")


class SlaBreached(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.breached.v1"
    summary: ClassVar[str] = "A milestone missed its SLA"

    fired_at: AwareDatetime
    late: bool = False


class SlaEscalated(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.escalated.v1"
    summary: ClassVar[str] = "A breached milestone is still open: escalated to the next level"

    fired_at: AwareDatetime
    late: bool = False
    level: int = Field(ge=1, description="1 for the first escalation after the breach, 2, ...")
    audience: ShortText = Field(description="who is told, e.g. operator, account_manager")
    overdue_seconds: float = Field(ge=0, description="how long past the deadline it is")


class SlaMet(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.met.v1"
    summary: ClassVar[str] = "A milestone was reached within its SLA"

    stopped_at: AwareDatetime


class SlaStopped(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.stopped.v1"
    summary: ClassVar[str] = "A milestone clock stopped without its milestone (order cancelled)"

    stopped_at: AwareDatetime
    reason: ShortText


class SlaRecomputed(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.recomputed.v1"
    summary: ClassVar[str] = "A late or out-of-order event changed a clock's deadline or outcome"

    recomputed_at: AwareDatetime
    previous_due_at: AwareDatetime | None = None
    previous_outcome: ClockOutcome
    outcome: ClockOutcome
    reason: ShortText


class SlaBreachRetracted(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.breach_retracted.v1"
    summary: ClassVar[str] = "A breach announced earlier did not happen (a late event showed it)"

    retracted_at: AwareDatetime
    breached_at: AwareDatetime = Field(description="the breach moment that was announced")
    reason: ShortText


class SlaAtRisk(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.at_risk.v1"
    summary: ClassVar[str] = "A milestone is predicted to miss its deadline (an ETA lands after it)"

    fired_at: AwareDatetime
    predicted_at: AwareDatetime = Field(description="when the milestone is now expected")
    predicted_lateness_seconds: float = Field(gt=0)
    basis: ShortText = Field(description="what the prediction rests on, e.g. delay, eta, parts_eta")


__all__ = [
    "ClockOutcome",
    "Milestone",
    "SlaAtRisk",
    "SlaBreachRetracted",
    "SlaBreached",
    "SlaClockFacts",
    "SlaEscalated",
    "SlaMet",
    "SlaRecomputed",
    "SlaStopped",
    "SlaWarning",
]
