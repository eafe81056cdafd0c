"""SLA policies: which milestones are timed, the goal of each by kind of order, and thresholds.

A policy is immutable once written: importing a changed policy makes a new version, and every
clock cycle pins the version it started under, so a policy change never moves the deadlines of
cycles already running (the spec's ``keep`` migration mode).

A clock definition holds an ordered goal table: the first row whose match (priority, equipment
class, category, tenant; an empty set matches anything) fits the order gives the target and the
business calendar. The last row must match every order (the default row); a row without a target
means "not timed" for those orders.

Thresholds are measured in wall time from the deadline: a warning before it (negative offset), the
breach at it, escalation levels after it (for example +1 h to the operator, +4 h to the tenant's
account manager).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.domain.calendar import TWENTY_FOUR_SEVEN, BusinessCalendar

DEFAULT_ALLOWED_LATENESS = timedelta(days=7)


class InvalidPolicyError(ValueError):
    """A policy that cannot produce sensible clocks; the message says which part and why."""


class PauseReason(StrEnum):
    """Why a running clock may stop counting for a while (a level condition on the order)."""

    CUSTOMER_WAIT = "customer_wait"
    """The work cannot go on because of the customer (access refused, site closed)."""
    AWAITING_PARTS = "awaiting_parts"
    """The work waits for parts (the parts clock runs meanwhile)."""


class ReopenRule(StrEnum):
    """What a reopened order does to a clock whose cycle ended."""

    NEW_CYCLE = "new_cycle"
    RESUME = "resume"
    """The last cycle goes on; the time since it stopped counts as paused."""
    IGNORE = "ignore"


class ThresholdKind(StrEnum):
    WARNING = "warning"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class Threshold:
    """A moment relative to a cycle's deadline (wall time) at which someone is told."""

    kind: ThresholdKind
    offset: timedelta
    """Warnings: before the deadline (negative). Escalations: after it (zero or positive)."""
    level: int = 0
    """Escalations: 1, 2, ... in the order of their offsets."""
    audience: str = ""

    @property
    def name(self) -> str:
        return "warning" if self.kind is ThresholdKind.WARNING else f"escalation-{self.level}"


@dataclass(frozen=True)
class OrderProfile:
    """What goals are chosen by, and where the work is (its time zone)."""

    tenant: str
    priority: str
    equipment_class: str
    category: str
    site_timezone: str | None = None


@dataclass(frozen=True)
class GoalMatch:
    priorities: frozenset[str] = frozenset()
    equipment_classes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()

    @property
    def is_default(self) -> bool:
        return not (self.priorities or self.equipment_classes or self.categories or self.tenants)

    def matches(self, order: OrderProfile) -> bool:
        return all(
            not wanted or value in wanted
            for wanted, value in (
                (self.priorities, order.priority),
                (self.equipment_classes, order.equipment_class),
                (self.categories, order.category),
                (self.tenants, order.tenant),
            )
        )


@dataclass(frozen=True)
class Goal:
    match: GoalMatch
    target: timedelta | None
    """Business time allowed (measured on ``calendar``); None: not timed for these orders."""
    calendar: str = TWENTY_FOUR_SEVEN.name
    warning_before: timedelta | None = None
    """This goal's own warning lead (for a target shorter than the clock's warning lead)."""


@dataclass(frozen=True)
class ClockDefinition:
    clock: Milestone
    goals: tuple[Goal, ...]
    thresholds: tuple[Threshold, ...] = ()
    pause_when: frozenset[PauseReason] = frozenset()
    on_reopen: ReopenRule = ReopenRule.NEW_CYCLE

    def __post_init__(self) -> None:
        name = self.clock.value
        if not self.goals:
            msg = f"clock {name}: needs at least one goal (a default row)"
            raise InvalidPolicyError(msg)
        if not self.goals[-1].match.is_default:
            msg = f"clock {name}: the last goal must match every order (a default row)"
            raise InvalidPolicyError(msg)
        for goal in self.goals:
            if goal.target is not None and goal.target <= timedelta(0):
                msg = f"clock {name}: a target must be positive, got {goal.target}"
                raise InvalidPolicyError(msg)
        levels = [t.level for t in self.thresholds if t.kind is ThresholdKind.ESCALATION]
        if levels != list(range(1, len(levels) + 1)):
            msg = f"clock {name}: escalation levels must be 1, 2, ... in order, got {levels}"
            raise InvalidPolicyError(msg)
        offsets = [t.offset for t in self.thresholds if t.kind is ThresholdKind.ESCALATION]
        if offsets != sorted(offsets) or any(o < timedelta(0) for o in offsets):
            msg = f"clock {name}: escalations come at or after the deadline, in increasing order"
            raise InvalidPolicyError(msg)
        warnings = [t for t in self.thresholds if t.kind is ThresholdKind.WARNING]
        if len(warnings) > 1:
            msg = f"clock {name}: at most one warning"
            raise InvalidPolicyError(msg)
        if any(w.offset >= timedelta(0) for w in warnings):
            msg = f"clock {name}: the warning comes before the deadline (a negative offset)"
            raise InvalidPolicyError(msg)
        for goal in self.goals:
            lead = self.warning_lead(goal)
            if goal.warning_before is not None and goal.warning_before <= timedelta(0):
                msg = f"clock {name}: a goal's warning_before must be positive"
                raise InvalidPolicyError(msg)
            if goal.target is not None and lead is not None and lead >= goal.target:
                msg = (
                    f"clock {name}: a warning {lead} before the deadline would come before a "
                    f"{goal.target} cycle starts (give that goal a shorter warning_before)"
                )
                raise InvalidPolicyError(msg)

    @property
    def warning(self) -> Threshold | None:
        return next((t for t in self.thresholds if t.kind is ThresholdKind.WARNING), None)

    def warning_lead(self, goal: Goal) -> timedelta | None:
        """How long before the deadline the warning goes out for ``goal`` (None: no warning)."""
        if goal.warning_before is not None:
            return goal.warning_before
        warning = self.warning
        return None if warning is None else -warning.offset

    @property
    def escalations(self) -> tuple[Threshold, ...]:
        return tuple(t for t in self.thresholds if t.kind is ThresholdKind.ESCALATION)

    def goal_for(self, order: OrderProfile) -> Goal:
        """The first goal whose match fits ``order`` (the default row at the latest)."""
        return next(goal for goal in self.goals if goal.match.matches(order))


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    version: int
    clocks: tuple[ClockDefinition, ...]
    calendars: tuple[BusinessCalendar, ...] = ()
    timezone: str = "UTC"
    """The time zone of orders whose site names none."""
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS
    """Events older than this (before the newest one seen for an order) no longer move clocks."""
    _by_clock: Mapping[Milestone, ClockDefinition] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _by_calendar: Mapping[str, BusinessCalendar] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.version < 1:
            msg = f"policy {self.name}: versions start at 1"
            raise InvalidPolicyError(msg)
        by_clock: dict[Milestone, ClockDefinition] = {}
        for definition in self.clocks:
            if definition.clock in by_clock:
                msg = f"policy {self.name}: two definitions of clock {definition.clock.value}"
                raise InvalidPolicyError(msg)
            by_clock[definition.clock] = definition
        calendars: dict[str, BusinessCalendar] = {TWENTY_FOUR_SEVEN.name: TWENTY_FOUR_SEVEN}
        for calendar in self.calendars:
            if calendar.name in calendars:
                msg = f"policy {self.name}: two calendars named {calendar.name}"
                raise InvalidPolicyError(msg)
            calendars[calendar.name] = calendar
        for definition in self.clocks:
            for goal in definition.goals:
                if goal.calendar not in calendars:
                    msg = (
                        f"clock {definition.clock.value}: unknown calendar {goal.calendar!r} "
                        f"(known: {', '.join(sorted(calendars))})"
                    )
                    raise InvalidPolicyError(msg)
        if self.allowed_lateness < timedelta(0):
            msg = f"policy {self.name}: the allowed lateness cannot be negative"
            raise InvalidPolicyError(msg)
        object.__setattr__(self, "_by_clock", MappingProxyType(by_clock))
        object.__setattr__(self, "_by_calendar", MappingProxyType(calendars))

    def definition(self, clock: Milestone) -> ClockDefinition | None:
        return self._by_clock.get(clock)

    def calendar(self, name: str) -> BusinessCalendar:
        return self._by_calendar[name]

    def with_version(self, version: int) -> SlaPolicy:
        return SlaPolicy(
            name=self.name,
            version=version,
            clocks=self.clocks,
            calendars=self.calendars,
            timezone=self.timezone,
            allowed_lateness=self.allowed_lateness,
        )


@dataclass(frozen=True)
class PolicyBook:
    """The policy in force for new cycles, and every version a cycle may have pinned."""

    active: SlaPolicy
    versions: Mapping[int, SlaPolicy]

    @classmethod
    def of(cls, policies: Iterable[SlaPolicy]) -> PolicyBook:
        ordered = sorted(policies, key=lambda p: p.version)
        if not ordered:
            msg = "no SLA policy"
            raise InvalidPolicyError(msg)
        return cls(active=ordered[-1], versions=MappingProxyType({p.version: p for p in ordered}))

    def pinned(self, version: int | None) -> SlaPolicy:
        """The policy of ``version`` (a pinned cycle), or the active one for a new cycle."""
        if version is None:
            return self.active
        return self.versions.get(version, self.active)
