"""What other services' events say about a work order, as timeline facts.

Each supported event becomes one :class:`~fixloop_orders.domain.timeline.TimelineFact`: the
mapping from the wire events to the domain's facts, at the app edge. Times in summaries are UTC,
with the date only when it differs from the event's own day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fixloop_orders.domain.timeline import TimelineFact, utc_clock
from fixloop_shared.contracts import (
    AssignmentAccepted,
    AssignmentCredentialLapsed,
    AssignmentEscalated,
    AssignmentExpired,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    EventPayload,
    FeedbackSubmitted,
    Milestone,
    NotificationFailed,
    NotificationSent,
    PartLine,
    PartReservation,
    PartsBackordered,
    PartsConsumed,
    PartsReleased,
    PartsReserved,
    SlaAtRisk,
    SlaBreached,
    SlaBreachRetracted,
    SlaClockFacts,
    SlaEscalated,
    SlaMet,
    SlaRecomputed,
    SlaStopped,
    SlaWarning,
)

MAX_LISTED = 5
"""Parts lines named in a summary; the rest are counted ("and 3 more")."""

MAX_DETAIL_ITEMS = 50
"""Parts lines spelled out in a details value."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _listed(items: Iterable[str], limit: int) -> str:
    names = list(items)
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


def _reservation(line: PartReservation) -> str:
    return f"{line.quantity} x {line.part_number} from {line.warehouse_id}"


def _part(line: PartLine) -> str:
    return f"{line.quantity} x {line.part_number}"


def _milestone(milestone: Milestone) -> str:
    return milestone.value.replace("_", " ")


def _offered(event: AssignmentOffered) -> TimelineFact:
    expires = utc_clock(event.expires_at, reference=event.offered_at)
    if event.assigned_by is not None:
        why = f": {event.reason}" if event.reason else ""
        return TimelineFact(
            work_order_id=event.work_order_id,
            kind="assignment_offered",
            at=event.offered_at,
            summary=f"Given to {event.contractor_name} by operator {event.assigned_by}{why}",
            details={
                "offer_id": event.offer_id,
                "contractor_id": event.contractor_id,
                "contractor_name": event.contractor_name,
                "offered_at": _iso(event.offered_at),
                "expires_at": _iso(event.expires_at),
                "assigned_by": event.assigned_by,
                "reason": event.reason or "",
            },
        )
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_offered",
        at=event.offered_at,
        summary=f"Offered to {event.contractor_name} (offer expires {expires})",
        details={
            "offer_id": event.offer_id,
            "contractor_id": event.contractor_id,
            "contractor_name": event.contractor_name,
            "offered_at": _iso(event.offered_at),
            "expires_at": _iso(event.expires_at),
        },
    )


def _unfilled(event: AssignmentUnfilled) -> TimelineFact:
    considered = len(event.considered)
    noun = "contractor" if considered == 1 else "contractors"
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_unfilled",
        at=event.decided_at,
        summary=f"No eligible contractor: {event.reason} ({considered} {noun} considered)",
        details={"reason": event.reason, "considered": str(considered)},
    )


def _accepted(event: AssignmentAccepted) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_accepted",
        at=event.accepted_at,
        summary=f"Offer accepted by contractor {event.contractor_id}",
        details={"offer_id": event.offer_id, "contractor_id": event.contractor_id},
    )


def _expired(event: AssignmentExpired) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_expired",
        at=event.expired_at,
        summary=f"Offer to contractor {event.contractor_id} ran out without an answer",
        details={
            "offer_id": event.offer_id,
            "contractor_id": event.contractor_id,
            "dispatch_round": str(event.dispatch_round),
        },
    )


def _withdrawn(event: AssignmentWithdrawn) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_withdrawn",
        at=event.withdrawn_at,
        summary=f"Offer to contractor {event.contractor_id} withdrawn: {event.reason}",
        details={
            "offer_id": event.offer_id,
            "contractor_id": event.contractor_id,
            "reason": event.reason,
        },
    )


def _escalated(event: AssignmentEscalated) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="assignment_escalated",
        at=event.escalated_at,
        summary=f"Escalated to the dispatch desk: {event.reason}",
        details={
            "reason": event.reason,
            "waiting_since": _iso(event.waiting_since),
            "offers_made": str(event.offers_made),
            "open_offers": ", ".join(event.open_offers),
        },
    )


def _credential_lapsed(event: AssignmentCredentialLapsed) -> TimelineFact:
    kind = event.credential_kind.replace("_", " ")
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="contractor_credential_lapsed",
        at=event.noticed_at,
        summary=(
            f"Contractor {event.contractor_id}'s {kind} {event.credential_number} expired "
            f"({event.expires_on.isoformat()} was its last day) while the job is open"
        ),
        details={
            "offer_id": event.offer_id,
            "contractor_id": event.contractor_id,
            "credential_kind": event.credential_kind,
            "credential_number": event.credential_number,
            "expires_on": event.expires_on.isoformat(),
        },
    )


def _released(event: PartsReleased) -> TimelineFact:
    lines = [_reservation(line) for line in event.released]
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="parts_released",
        at=event.released_at,
        summary=f"Released {_listed(lines, MAX_LISTED)}: {event.reason}",
        details={"released": _listed(lines, MAX_DETAIL_ITEMS), "reason": event.reason},
    )


def _consumed(event: PartsConsumed) -> TimelineFact:
    used = [_reservation(line) for line in event.consumed]
    back = [_reservation(line) for line in event.released]
    summary = f"Used {_listed(used, MAX_LISTED)}" if used else "No reserved parts used"
    details = {"consumed": _listed(used, MAX_DETAIL_ITEMS)}
    if back:
        summary += f"; back in stock {_listed(back, MAX_LISTED)}"
        details["released"] = _listed(back, MAX_DETAIL_ITEMS)
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="parts_consumed",
        at=event.consumed_at,
        summary=summary,
        details=details,
    )


def _reserved(event: PartsReserved) -> TimelineFact:
    lines = [_reservation(line) for line in event.reservations]
    summary = f"Reserved {_listed(lines, MAX_LISTED)}" if lines else "No parts needed reserving"
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="parts_reserved",
        at=event.reserved_at,
        summary=summary,
        details={"reserved": _listed(lines, MAX_DETAIL_ITEMS), "lines": str(len(lines))},
    )


def _backordered(event: PartsBackordered) -> TimelineFact:
    missing = [_part(line) for line in event.missing]
    reserved = [_reservation(line) for line in event.reservations]
    summary = f"Backordered {_listed(missing, MAX_LISTED)}"
    if reserved:
        summary += f"; reserved {_listed(reserved, MAX_LISTED)}"
    details = {"missing": _listed(missing, MAX_DETAIL_ITEMS)}
    if reserved:
        details["reserved"] = _listed(reserved, MAX_DETAIL_ITEMS)
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="parts_backordered",
        at=event.decided_at,
        summary=summary,
        details=details,
    )


def _clock_details(event: SlaClockFacts) -> dict[str, str]:
    return {
        "clock_id": event.clock_id,
        "milestone": event.milestone.value,
        "cycle": str(event.cycle),
        "started_at": _iso(event.started_at),
        "warn_at": _iso(event.warn_at),
        "due_at": _iso(event.due_at),
    }


def _late_note(late: bool) -> str:
    return " (reported late: the SLA service was not running at that moment)" if late else ""


def _sla_fired(event: SlaWarning | SlaBreached, kind: str, headline: str) -> TimelineFact:
    """A warning or breach; ``headline`` reads with the milestone and the due time filled in."""
    due = utc_clock(event.due_at, reference=event.fired_at)
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind=kind,
        at=event.fired_at,
        summary=headline.format(milestone=_milestone(event.milestone), due=due)
        + _late_note(event.late),
        details={**_clock_details(event), "late": str(event.late).lower()},
    )


def _sla_warning(event: SlaWarning) -> TimelineFact:
    return _sla_fired(event, "sla_warning", "SLA warning: {milestone} due {due}")


def _sla_breached(event: SlaBreached) -> TimelineFact:
    return _sla_fired(event, "sla_breached", "SLA breached: {milestone} was due {due}")


def _sla_met(event: SlaMet) -> TimelineFact:
    due = utc_clock(event.due_at, reference=event.stopped_at)
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_met",
        at=event.stopped_at,
        summary=f"SLA met: {_milestone(event.milestone)} reached before {due}",
        details=_clock_details(event),
    )


def _sla_stopped(event: SlaStopped) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_stopped",
        at=event.stopped_at,
        summary=f"SLA clock stopped: {_milestone(event.milestone)} ({event.reason})",
        details={**_clock_details(event), "reason": event.reason},
    )


def _sla_escalated(event: SlaEscalated) -> TimelineFact:
    due = utc_clock(event.due_at, reference=event.fired_at)
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_escalated",
        at=event.fired_at,
        summary=f"SLA escalated to {event.audience.replace('_', ' ')} (level {event.level}): "
        f"{_milestone(event.milestone)} was due {due}" + _late_note(event.late),
        details={
            **_clock_details(event),
            "level": str(event.level),
            "audience": event.audience,
            "late": str(event.late).lower(),
        },
    )


def _sla_at_risk(event: SlaAtRisk) -> TimelineFact:
    due = utc_clock(event.due_at, reference=event.fired_at)
    expected = utc_clock(event.predicted_at, reference=event.fired_at)
    minutes = max(1, round(event.predicted_lateness_seconds / 60))
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_at_risk",
        at=event.fired_at,
        summary=f"SLA at risk: {_milestone(event.milestone)} due {due} is now expected {expected}"
        f" ({minutes} min late, by the {event.basis.replace('_', ' ')})",
        details={
            **_clock_details(event),
            "predicted_at": _iso(event.predicted_at),
            "predicted_lateness_seconds": str(event.predicted_lateness_seconds),
            "basis": event.basis,
        },
    )


def _sla_breach_retracted(event: SlaBreachRetracted) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_breach_retracted",
        at=event.retracted_at,
        summary=f"SLA breach retracted: {_milestone(event.milestone)} ({event.reason})",
        details={**_clock_details(event), "breached_at": _iso(event.breached_at)},
    )


def _sla_recomputed(event: SlaRecomputed) -> TimelineFact:
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="sla_recomputed",
        at=event.recomputed_at,
        summary=f"SLA recomputed: {_milestone(event.milestone)} {event.previous_outcome} → "
        f"{event.outcome} ({event.reason})",
        details={
            **_clock_details(event),
            "previous_due_at": _iso(event.previous_due_at) if event.previous_due_at else "",
            "previous_outcome": event.previous_outcome,
            "outcome": event.outcome,
        },
    )


def _sent(event: NotificationSent) -> TimelineFact | None:
    if event.work_order_id is None:
        return None
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="notification_sent",
        at=event.sent_at,
        summary=f"Notified {event.recipient} by {event.channel.value} ({event.template})",
        details={
            "notification_id": event.notification_id,
            "channel": event.channel.value,
            "recipient": str(event.recipient),
            "template": event.template,
            "locale": event.locale or "",
            "attempts": str(event.attempts),
        },
    )


def _failed(event: NotificationFailed) -> TimelineFact | None:
    if event.work_order_id is None:
        return None
    tries = "attempt" if event.attempts == 1 else "attempts"
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="notification_failed",
        at=event.failed_at,
        summary=(
            f"Could not notify {event.recipient} by {event.channel.value} "
            f"after {event.attempts} {tries}: {event.error}"
        ),
        details={
            "notification_id": event.notification_id,
            "channel": event.channel.value,
            "recipient": str(event.recipient),
            "template": event.template,
            "locale": event.locale or "",
            "attempts": str(event.attempts),
            "error": event.error,
        },
    )


def _feedback(event: FeedbackSubmitted) -> TimelineFact:
    said = f": {' '.join(event.comment.split())}" if event.comment else ""
    details = {"rating": str(event.rating)}
    if event.comment:
        details["comment"] = event.comment
    if event.contractor_id:
        details["contractor_id"] = event.contractor_id
    if event.locale:
        details["locale"] = event.locale
    return TimelineFact(
        work_order_id=event.work_order_id,
        kind="feedback_submitted",
        at=event.submitted_at,
        summary=f"Requester rated the work {event.rating}/5{said}"[:500],
        details=details,
    )


_DESCRIBERS: Mapping[type[EventPayload], Callable[[Any], TimelineFact | None]] = {
    AssignmentOffered: _offered,
    AssignmentUnfilled: _unfilled,
    AssignmentAccepted: _accepted,
    AssignmentExpired: _expired,
    AssignmentWithdrawn: _withdrawn,
    AssignmentEscalated: _escalated,
    AssignmentCredentialLapsed: _credential_lapsed,
    PartsReserved: _reserved,
    PartsBackordered: _backordered,
    PartsReleased: _released,
    PartsConsumed: _consumed,
    SlaWarning: _sla_warning,
    SlaBreached: _sla_breached,
    SlaMet: _sla_met,
    SlaStopped: _sla_stopped,
    SlaEscalated: _sla_escalated,
    SlaAtRisk: _sla_at_risk,
    SlaBreachRetracted: _sla_breach_retracted,
    SlaRecomputed: _sla_recomputed,
    NotificationSent: _sent,
    NotificationFailed: _failed,
    FeedbackSubmitted: _feedback,
}

RECORDED_PAYLOADS: tuple[type[EventPayload], ...] = tuple(_DESCRIBERS)
"""The payload types that end up in a work order's timeline."""

RECORDED_EVENT_TYPES: frozenset[str] = frozenset(model.event_type for model in _DESCRIBERS)
"""The event types that end up in a work order's timeline."""


def timeline_fact(payload: EventPayload) -> TimelineFact | None:
    """The timeline fact an event records, or None if it says nothing about one work order."""
    describe = _DESCRIBERS.get(type(payload))
    return None if describe is None else describe(payload)


__all__ = [
    "RECORDED_EVENT_TYPES",
    "RECORDED_PAYLOADS",
    "timeline_fact",
]
