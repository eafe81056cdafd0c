"""Events of the sla service (``fixloop.sla.events.v1``): milestone clocks warned, breached, met."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, ShortText
from fixloop_shared.vocabulary import Milestone


class SlaClockFacts(Contract):
    work_order_id: Identifier
    clock_id: Identifier
    milestone: Milestone
    started_at: AwareDatetime
    warn_at: AwareDatetime
    due_at: AwareDatetime


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


class SlaMet(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.met.v1"
    summary: ClassVar[str] = "A milestone was reached within its SLA"

    stopped_at: AwareDatetime


class SlaStopped(EventPayload, SlaClockFacts):
    event_type: ClassVar[str] = "fixloop.sla.stopped.v1"
    summary: ClassVar[str] = "A milestone clock stopped without its milestone (order cancelled)"

    stopped_at: AwareDatetime
    reason: ShortText


__all__ = [
    "Milestone",
    "SlaBreached",
    "SlaClockFacts",
    "SlaMet",
    "SlaStopped",
    "SlaWarning",
]
