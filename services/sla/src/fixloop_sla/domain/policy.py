"""SLA policies: how long a milestone may take and when to warn before its deadline.

Targets are wall-clock durations in real seconds (24x7). Business calendars, per-priority goals
and percentage thresholds are later additions; a clock records the policy figures it was started
with, so a policy change never moves the deadlines of clocks already running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.domain.instants import RESOLUTION, to_instant


class InvalidPolicyError(ValueError):
    """A policy whose figures cannot produce a sensible clock."""


@dataclass(frozen=True)
class Deadlines:
    """The moments of one clock: when it started, when to warn, when it is due."""

    started_at: datetime
    warn_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class ClockPolicy:
    """One milestone's target, and how long before the deadline the warning goes out."""

    milestone: Milestone
    target: timedelta
    warning_before: timedelta

    def __post_init__(self) -> None:
        if self.target <= timedelta(0):
            msg = f"{self.milestone}: the target must be positive, got {self.target}"
            raise InvalidPolicyError(msg)
        if not timedelta(0) < self.warning_before < self.target:
            msg = (
                f"{self.milestone}: the warning must come after the start and before the "
                f"deadline (0 < warning_before < target), got {self.warning_before} "
                f"before a target of {self.target}"
            )
            raise InvalidPolicyError(msg)
        for name, value in (("target", self.target), ("warning_before", self.warning_before)):
            if value % RESOLUTION:
                msg = f"{self.milestone}: {name} must be whole milliseconds, got {value}"
                raise InvalidPolicyError(msg)

    @classmethod
    def of_seconds(
        cls, milestone: Milestone, *, target_seconds: float, warning_before_seconds: float
    ) -> ClockPolicy:
        return cls(
            milestone=milestone,
            target=timedelta(seconds=target_seconds),
            warning_before=timedelta(seconds=warning_before_seconds),
        )

    def deadlines(self, started_at: datetime) -> Deadlines:
        """Warn and due moments for a clock started at ``started_at`` (any time zone)."""
        start = to_instant(started_at)
        due_at = start + self.target
        return Deadlines(started_at=start, warn_at=due_at - self.warning_before, due_at=due_at)


@dataclass(frozen=True)
class SlaPolicy:
    """The clock policies in force, at most one per milestone."""

    clocks: tuple[ClockPolicy, ...] = ()

    def __post_init__(self) -> None:
        seen: set[Milestone] = set()
        for policy in self.clocks:
            if policy.milestone in seen:
                msg = f"two policies for {policy.milestone}"
                raise InvalidPolicyError(msg)
            seen.add(policy.milestone)

    @classmethod
    def of(cls, policies: Iterable[ClockPolicy]) -> SlaPolicy:
        return cls(clocks=tuple(policies))

    def for_milestone(self, milestone: Milestone) -> ClockPolicy | None:
        """The policy of ``milestone``, or None when that milestone is not timed."""
        return {policy.milestone: policy for policy in self.clocks}.get(milestone)
