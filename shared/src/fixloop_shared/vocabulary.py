"""The platform's shared vocabulary: the enumerations the domain and the wire both speak.

Plain :class:`~enum.StrEnum` values with no framework behind them, so a service's domain can
use them without depending on the wire contracts. The contracts import them from here (and
``fixloop_shared.contracts`` re-exports them), so both sides always mean the same values.
"""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Category(StrEnum):
    BREAKDOWN = "breakdown"
    PREVENTIVE = "preventive"
    INSPECTION = "inspection"
    INSTALLATION = "installation"
    SAFETY = "safety"


class WorkOrderState(StrEnum):
    """Where a work order stands in its life (owned by the orders service)."""

    RECEIVED = "received"
    DISPATCHING = "dispatching"
    ASSIGNED = "assigned"
    SCHEDULED = "scheduled"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    AWAITING_PARTS = "awaiting_parts"
    WORK_COMPLETED = "work_completed"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    ARCHIVED = "archived"


class ActorKind(StrEnum):
    """Who did something to a work order."""

    REQUESTER = "requester"
    """The tenant's side: its partner integration on gRPC, or its platform on Kafka."""
    CONTRACTOR = "contractor"
    OPERATOR = "operator"
    """The tenant's dispatch desk (CLI, console)."""
    SYSTEM = "system"
    """Fixloop itself: a timer (automatic verification, closing, archiving) or another service."""


class DelayCause(StrEnum):
    MANPOWER = "manpower"
    PARTS = "parts"
    TECHNICAL = "technical"
    ACCESS = "access"
    OTHER = "other"


class ChecklistOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


class Milestone(StrEnum):
    """What an SLA clock times (one clock per milestone per work order, in cycles)."""

    DISPATCH_CONFIRMATION = "dispatch_confirmation"
    """From receipt until a contractor has taken the order."""
    ARRIVAL = "arrival"
    """From assignment until the contractor is on site."""
    PARTS_FULFILMENT = "parts_fulfilment"
    """While the work waits for parts: until they are there."""
    REPAIR = "repair"
    """From receipt until the work is completed."""
    PROGRESS_UPDATE = "progress_update"
    """Recurring while work is under way: until the next progress report."""
    EXCEPTION_RESPONSE = "exception_response"
    """From a reported exception (a delay, rejected work) until the desk answers it."""
    EXCEPTION_ACTION = "exception_action"
    """From a reported exception until the job moves again."""
    REQUESTER_QUESTION = "requester_question"
    """From a requester's comment until the desk or the contractor replies."""


class Channel(StrEnum):
    """How a notice reaches its recipient."""

    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


__all__ = [
    "ActorKind",
    "Category",
    "Channel",
    "ChecklistOutcome",
    "DelayCause",
    "Milestone",
    "Priority",
    "WorkOrderState",
]
