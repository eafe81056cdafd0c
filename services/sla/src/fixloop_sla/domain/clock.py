"""The milestone clock: one per (work order, milestone), started by an event, stopped by another.

States::

    RUNNING --stop before due_at--> MET
    RUNNING --due_at reached, or stop at/after due_at--> BREACHED (--later stop or
                                                                 cancellation: recorded)
    RUNNING --cancelled before due_at--> STOPPED (without its milestone)

``warned`` and ``breached`` are flags beside the state; each signal fires at most once per clock
because every decision here reads the flags and every save of a changed clock is conditional on
the version it was loaded at.

Decisions (all instants are UTC, millisecond resolution, see :mod:`instants`):

- the warning is due at ``warn_at`` (inclusive), the breach at ``due_at`` (inclusive): a milestone
  reached exactly at ``due_at`` missed it, and a stop must come strictly before ``due_at`` to
  count as met;
- a firing more than ``late_after`` after its moment is flagged ``late`` (catch-up after the
  scheduler was down or behind);
- a warning whose clock is already past ``due_at`` when it is first considered is suppressed (the
  breach says more, and a warning after the fact would only confuse); ``warning_suppressed``
  records that;
- the first stop wins; a stop after the breach fired is recorded without a signal; a stop at or
  after ``due_at`` on a clock whose breach has not fired yet fires the breach (the milestone was
  missed, and every clock ends with either a met or a breached signal);
- a cancellation (the work order cancelled) stops the clock without its milestone, once: a running
  clock becomes STOPPED and says so (a ``stopped`` signal with the reason), and nothing fires on
  it any more; a breached clock not stopped yet records the stop and says so too (its breach
  stands). Like a stop, it is decided on its event time, not on when it is processed: a
  cancellation at or after ``due_at`` of a clock whose breach has not fired yet (the scheduler was
  behind) fires that breach first, so the outcome never depends on processing lag. A warning not
  sent yet is never sent for a cancelled order. A clock stopped already (met, cancelled, or
  breached and then stopped) ignores a cancellation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from fixloop_shared.vocabulary import Milestone
from fixloop_sla.domain.instants import to_instant
from fixloop_sla.domain.policy import ClockPolicy

DEFAULT_LATE_AFTER = timedelta(seconds=5)
"""How long after its moment a warning or breach may fire before it is flagged ``late``."""

_CLOCK_NAMESPACE = uuid.UUID("5b0f6c2e-3f57-4a0e-9d1c-7a1f3c5e9b21")


def clock_id_for(work_order_id: str, milestone: Milestone) -> str:
    """The clock's id, derived from its key: a redelivered or duplicated start finds the same id."""
    return str(uuid.uuid5(_CLOCK_NAMESPACE, f"{milestone.value}/{work_order_id}"))


class ClockState(StrEnum):
    RUNNING = "running"
    MET = "met"
    BREACHED = "breached"
    STOPPED = "stopped"
    """Stopped without its milestone before its deadline (the work order was cancelled)."""


class SignalKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    MET = "met"
    STOPPED = "stopped"
    """The clock stopped without its milestone (the work order was cancelled)."""


class InvalidClockError(ValueError):
    """Clock facts that contradict each other (e.g. a corrupt stored document)."""


@dataclass(frozen=True)
class ClockSignal:
    """Something to tell the world about a clock: a warning, a breach, the milestone met, or the
    clock stopped without it (``stopped_at`` and ``reason`` then say when and why)."""

    kind: SignalKind
    fired_at: datetime
    late: bool = False
    stopped_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ClockStop:
    """A milestone reached, e.g. an assignment accepted; may arrive before its clock started."""

    work_order_id: str
    milestone: Milestone
    tenant: str
    stopped_at: datetime
    event_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "stopped_at", to_instant(self.stopped_at))

    @property
    def clock_id(self) -> str:
        return clock_id_for(self.work_order_id, self.milestone)


def clock_ids_of(work_order_id: str) -> list[str]:
    """The ids every clock of a work order has, one per milestone (whether it exists or not)."""
    return [clock_id_for(work_order_id, milestone) for milestone in Milestone]


def is_late(moment: datetime, fired_at: datetime, late_after: timedelta) -> bool:
    """True when a firing at ``fired_at`` is more than ``late_after`` behind its ``moment``."""
    return fired_at - moment > late_after


@dataclass(frozen=True)
class MilestoneClock:
    clock_id: str
    work_order_id: str
    milestone: Milestone
    tenant: str
    correlation_id: str
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    target_seconds: float
    warning_before_seconds: float
    state: ClockState = ClockState.RUNNING
    warned: bool = False
    warning_suppressed: bool = False
    breached: bool = False
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    """Why the clock stopped without its milestone (a cancellation); None otherwise."""
    version: int = 1

    def __post_init__(self) -> None:
        for name in ("started_at", "warn_at", "due_at", "warned_at", "breached_at", "stopped_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_instant(value))
        self._check()

    def _check(self) -> None:
        problems: list[str] = []
        if not self.started_at < self.warn_at < self.due_at:
            problems.append("expected started_at < warn_at < due_at")
        if self.warned != (self.warned_at is not None):
            problems.append("warned and warned_at disagree")
        if self.breached != (self.breached_at is not None):
            problems.append("breached and breached_at disagree")
        if self.warned and self.warning_suppressed:
            problems.append("a warning cannot be both sent and suppressed")
        if self.state is ClockState.RUNNING and (self.breached or self.stopped_at is not None):
            problems.append("a running clock is neither breached nor stopped")
        if self.state is ClockState.MET and (self.breached or self.stopped_at is None):
            problems.append("a met clock is stopped and not breached")
        if self.state is ClockState.BREACHED and not self.breached:
            problems.append("a breached clock has its breach recorded")
        if self.state is ClockState.STOPPED and (
            self.breached or self.stopped_at is None or self.stop_reason is None
        ):
            problems.append("a stopped clock has its stop and reason and is not breached")
        if self.stop_reason is not None and self.state not in (
            ClockState.STOPPED,
            ClockState.BREACHED,
        ):
            problems.append("only a cancelled clock has a stop reason")
        if self.stop_reason is not None and (self.stopped_at is None or not self.stop_reason):
            problems.append("a stop reason is a non-empty text beside its stop")
        if self.version < 1:
            problems.append("versions start at 1")
        if problems:
            msg = f"clock {self.clock_id}: " + "; ".join(problems)
            raise InvalidClockError(msg)

    @classmethod
    def start(
        cls,
        *,
        work_order_id: str,
        tenant: str,
        correlation_id: str,
        policy: ClockPolicy,
        started_at: datetime,
    ) -> MilestoneClock:
        """A new running clock whose deadlines count from ``started_at`` (the event's time)."""
        deadlines = policy.deadlines(started_at)
        return cls(
            clock_id=clock_id_for(work_order_id, policy.milestone),
            work_order_id=work_order_id,
            milestone=policy.milestone,
            tenant=tenant,
            correlation_id=correlation_id,
            started_at=deadlines.started_at,
            warn_at=deadlines.warn_at,
            due_at=deadlines.due_at,
            target_seconds=policy.target.total_seconds(),
            warning_before_seconds=policy.warning_before.total_seconds(),
        )

    @property
    def is_stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def next_fire_at(self) -> datetime | None:
        """When the scheduler has to look at this clock next; None when nothing is pending."""
        if self.state is not ClockState.RUNNING:
            return None
        if not (self.warned or self.warning_suppressed):
            return self.warn_at
        return self.due_at

    def fire(self, now: datetime, *, late_after: timedelta = DEFAULT_LATE_AFTER) -> Transition:
        """Fire whatever is due at ``now``: nothing, the warning, or the breach (never both)."""
        at = to_instant(now)
        if self.state is not ClockState.RUNNING:
            return Transition(self, self)
        if at >= self.due_at:
            return self._breach(at, late_after, stopped_at=None)
        if at >= self.warn_at and not (self.warned or self.warning_suppressed):
            signal = ClockSignal(
                SignalKind.WARNING, fired_at=at, late=is_late(self.warn_at, at, late_after)
            )
            after = replace(self, warned=True, warned_at=at, version=self.version + 1)
            return Transition(self, after, (signal,))
        return Transition(self, self)

    def stop(
        self, stopped_at: datetime, *, now: datetime, late_after: timedelta = DEFAULT_LATE_AFTER
    ) -> Transition:
        """The milestone was reached at ``stopped_at`` (event time); the first stop wins."""
        stop_at = to_instant(stopped_at)
        at = to_instant(now)
        if self.is_stopped:
            return Transition(self, self)
        if self.state is ClockState.BREACHED:
            return Transition(self, replace(self, stopped_at=stop_at, version=self.version + 1))
        if stop_at >= self.due_at:
            return self._breach(at, late_after, stopped_at=stop_at)
        after = replace(self, state=ClockState.MET, stopped_at=stop_at, version=self.version + 1)
        return Transition(self, after, (ClockSignal(SignalKind.MET, at, stopped_at=stop_at),))

    def cancel(
        self,
        cancelled_at: datetime,
        *,
        reason: str,
        now: datetime,
        late_after: timedelta = DEFAULT_LATE_AFTER,
    ) -> Transition:
        """The work order was cancelled at ``cancelled_at`` (event time): the clock stops without
        its milestone, at most once; see the module's rules."""
        if not reason:
            msg = f"clock {self.clock_id}: a cancellation needs a reason"
            raise InvalidClockError(msg)
        stop_at = to_instant(cancelled_at)
        at = to_instant(now)
        if self.is_stopped:
            return Transition(self, self)
        stopped = ClockSignal(SignalKind.STOPPED, fired_at=at, stopped_at=stop_at, reason=reason)
        if self.state is ClockState.BREACHED:
            after = replace(self, stopped_at=stop_at, stop_reason=reason, version=self.version + 1)
            return Transition(self, after, (stopped,))
        if stop_at >= self.due_at:
            # Missed before it was cancelled; the scheduler had not fired the breach yet.
            breach = self._breach(at, late_after, stopped_at=stop_at)
            after = replace(breach.after, stop_reason=reason)
            return Transition(self, after, (*breach.signals, stopped))
        after = replace(
            self,
            state=ClockState.STOPPED,
            stopped_at=stop_at,
            stop_reason=reason,
            version=self.version + 1,
        )
        return Transition(self, after, (stopped,))

    def _breach(
        self, at: datetime, late_after: timedelta, *, stopped_at: datetime | None
    ) -> Transition:
        late = is_late(self.due_at, at, late_after)
        signal = ClockSignal(SignalKind.BREACH, fired_at=at, late=late)
        after = replace(
            self,
            state=ClockState.BREACHED,
            breached=True,
            breached_at=at,
            warning_suppressed=not self.warned,
            stopped_at=stopped_at,
            version=self.version + 1,
        )
        return Transition(self, after, (signal,))


@dataclass(frozen=True)
class Transition:
    """A clock before and after one decision, and the signals that decision emits."""

    before: MilestoneClock
    after: MilestoneClock
    signals: tuple[ClockSignal, ...] = ()

    @property
    def changed(self) -> bool:
        return self.after is not self.before
