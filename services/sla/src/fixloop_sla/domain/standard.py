"""The standard SLA policy: the milestones the service promises when no policy was imported.

Dispatch confirmed within 2 hours; arrival within 4 hours (emergencies 2, low priority within 16
business hours); parts within 48 hours; repair by equipment class (24 h for elevators and
refrigeration, 48 h for HVAC, 72 h for general building work, emergencies 8 h); a progress report
at least every 2 hours while work is under way; exceptions answered within 15 minutes and acted on
within an hour; a requester's question answered within 30 minutes. Warnings go out 1 hour before a
deadline (shorter targets warn earlier: a third of the target), escalations 1 hour after a breach
to the operator and 4 hours after it to the tenant's account manager.

``examples/sla-policy.yaml`` is the same policy as a file, to copy and change.
"""

from __future__ import annotations

from datetime import time, timedelta

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.domain.calendar import BusinessCalendar, WorkingHours
from fixloop_sla.domain.policy import (
    ClockDefinition,
    Goal,
    GoalMatch,
    PauseReason,
    ReopenRule,
    SlaPolicy,
    Threshold,
    ThresholdKind,
)

STANDARD_POLICY_NAME = "standard"
BUSINESS_HOURS = BusinessCalendar(
    name="business-hours",
    hours=tuple(WorkingHours(day, time(8), time(18)) for day in range(5)),
)
"""Monday to Friday, 08:00 to 18:00 in the site's time zone."""

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _warning(before: timedelta) -> Threshold:
    return Threshold(ThresholdKind.WARNING, -before)


def _escalations(*after: tuple[timedelta, str]) -> tuple[Threshold, ...]:
    return tuple(
        Threshold(ThresholdKind.ESCALATION, offset, level=level, audience=audience)
        for level, (offset, audience) in enumerate(after, start=1)
    )


def _match(
    *,
    priorities: tuple[str, ...] = (),
    equipment_classes: tuple[str, ...] = (),
) -> GoalMatch:
    return GoalMatch(
        priorities=frozenset(priorities), equipment_classes=frozenset(equipment_classes)
    )


EMERGENCY = _match(priorities=("emergency",))
DEFAULT = GoalMatch()
STANDARD_ESCALATIONS = _escalations((HOUR, "operator"), (4 * HOUR, "account_manager"))
SHORT_ESCALATIONS = _escalations((15 * MINUTE, "operator"), (HOUR, "account_manager"))


def standard_policy(version: int = 1) -> SlaPolicy:
    return SlaPolicy(
        name=STANDARD_POLICY_NAME,
        version=version,
        calendars=(BUSINESS_HOURS,),
        clocks=(
            ClockDefinition(
                Milestone.DISPATCH_CONFIRMATION,
                goals=(
                    Goal(EMERGENCY, 30 * MINUTE, warning_before=10 * MINUTE),
                    Goal(DEFAULT, 2 * HOUR),
                ),
                thresholds=(_warning(HOUR), *STANDARD_ESCALATIONS),
            ),
            ClockDefinition(
                Milestone.ARRIVAL,
                goals=(
                    Goal(EMERGENCY, 2 * HOUR, warning_before=30 * MINUTE),
                    Goal(_match(priorities=("low",)), 16 * HOUR, calendar=BUSINESS_HOURS.name),
                    Goal(DEFAULT, 4 * HOUR),
                ),
                thresholds=(_warning(HOUR), *STANDARD_ESCALATIONS),
                pause_when=frozenset({PauseReason.CUSTOMER_WAIT}),
            ),
            ClockDefinition(
                Milestone.PARTS_FULFILMENT,
                goals=(Goal(EMERGENCY, 24 * HOUR), Goal(DEFAULT, 48 * HOUR)),
                thresholds=(_warning(HOUR), *STANDARD_ESCALATIONS),
            ),
            ClockDefinition(
                Milestone.REPAIR,
                goals=(
                    Goal(EMERGENCY, 8 * HOUR),
                    Goal(_match(equipment_classes=("elevator", "refrigeration")), 24 * HOUR),
                    Goal(_match(equipment_classes=("hvac",)), 48 * HOUR),
                    Goal(DEFAULT, 72 * HOUR),
                ),
                thresholds=(_warning(HOUR), *STANDARD_ESCALATIONS),
                pause_when=frozenset({PauseReason.CUSTOMER_WAIT, PauseReason.AWAITING_PARTS}),
                on_reopen=ReopenRule.NEW_CYCLE,
            ),
            ClockDefinition(
                Milestone.PROGRESS_UPDATE,
                goals=(Goal(DEFAULT, 2 * HOUR),),
                thresholds=(_warning(30 * MINUTE), *SHORT_ESCALATIONS),
            ),
            ClockDefinition(
                Milestone.EXCEPTION_RESPONSE,
                goals=(Goal(DEFAULT, 15 * MINUTE),),
                thresholds=(_warning(5 * MINUTE), *SHORT_ESCALATIONS),
            ),
            ClockDefinition(
                Milestone.EXCEPTION_ACTION,
                goals=(Goal(DEFAULT, HOUR),),
                thresholds=(_warning(20 * MINUTE), *SHORT_ESCALATIONS),
            ),
            ClockDefinition(
                Milestone.REQUESTER_QUESTION,
                goals=(Goal(DEFAULT, 30 * MINUTE),),
                thresholds=(_warning(10 * MINUTE), *SHORT_ESCALATIONS),
            ),
        ),
    )
