"""What is kept of each offer and each job to judge a contractor by.

A contractor's scorecard (:mod:`fixloop_contractors.domain.scorecard`) and the quality alerts
(:mod:`fixloop_contractors.domain.quality`) are computed from a :class:`JobRecord` per work order,
built up from the events that tell about it: what the order is (site, equipment, category,
priority, when it was received), who has the job, the visit windows agreed, the arrivals on site,
the completions (with the labour the contractor reported), reopenings, cancellation, the
customer's rating, and whether a later order on the same equipment called the repair back. (What
became of each offer is kept in the contractor's digest of recent cases, see
:class:`fixloop_contractors.domain.scorecard.OfferCase`.)

Each step is a pure function from the record as it is (or None) to the record with the fact
folded in. The events that carry these facts come over two topics and may arrive late, twice
or out of order, so every fold is order-independent: facts that happen once keep the value a
fixed rule picks (the earliest, the latest, or by precedence) whatever order they arrive in, and
facts that happen several times are kept as a sorted set (bounded: :data:`MAX_FACTS`). Applying
the same fact again gives an equal record, which is how a store tells that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from fixloop_shared.vocabulary import Category, Priority

MAX_FACTS = 20
"""At most this many visit windows, arrivals, completions and reopenings are kept per job (the
earliest ones); a job with more is far outside what the scorecard judges."""


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the received order says that the scorecard and the quality checks need."""

    site_id: str
    equipment_id: str
    equipment_class: str
    category: Category
    priority: Priority
    received_at: datetime
    follow_up_of: str | None = None
    """The earlier order whose work this one takes up again (rejected after its reopen window)."""


@dataclass(frozen=True, slots=True, order=True)
class VisitWindow:
    """A visit window agreed with the site, and when it was agreed."""

    scheduled_at: datetime
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True, order=True)
class Completion:
    """The contractor reported the work complete at ``completed_at``, with its labour time."""

    completed_at: datetime
    labour_minutes: int


Fact = TypeVar("Fact", datetime, VisitWindow, Completion)


def _with(items: tuple[Fact, ...], item: Fact) -> tuple[Fact, ...]:
    """``items`` with ``item``: sorted, each once, at most :data:`MAX_FACTS` (the earliest)."""
    if item in items:
        return items
    merged = set(items)
    merged.add(item)
    return tuple(sorted(merged))[:MAX_FACTS]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One work order's job as the scorecard and the quality checks see it."""

    work_order_id: str
    tenant: str
    order: OrderFacts | None = None
    """None until the received order is seen (an order from before these records)."""
    contractor_id: str | None = None
    assigned_at: datetime | None = None
    """When the contractor holding the job was assigned it (the latest assignment wins)."""
    windows: tuple[VisitWindow, ...] = ()
    arrivals: tuple[datetime, ...] = ()
    completions: tuple[Completion, ...] = ()
    reopenings: tuple[datetime, ...] = ()
    cancelled_at: datetime | None = None
    rating: int | None = None
    """The customer's rating, 1..5 (the latest feedback wins)."""
    rated_at: datetime | None = None
    recalled_by: str | None = None
    """A later order on the same equipment that called this repair back (see
    :func:`fixloop_contractors.domain.quality.repeat_repairs`)."""

    # -- what it says ----------------------------------------------------------------------

    @property
    def first_arrival(self) -> datetime | None:
        return self.arrivals[0] if self.arrivals else None

    @property
    def judged_window(self) -> VisitWindow | None:
        """The window the first arrival is judged against: the one agreed last before it (a
        window agreed only after the contractor arrived judges nothing)."""
        arrival = self.first_arrival
        if arrival is None:
            return None
        agreed = [w for w in self.windows if w.scheduled_at <= arrival]
        return max(agreed, default=None, key=lambda w: (w.scheduled_at, w.end, w.start))

    @property
    def arrived_on_time(self) -> bool | None:
        """Whether the contractor first arrived by the end of the agreed window (arriving
        early is on time); None when there is no window or no arrival to judge."""
        window = self.judged_window
        if window is None or self.first_arrival is None:
            return None
        return self.first_arrival <= window.end

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def completed_at(self) -> datetime | None:
        """When the work was last completed, if it stands completed (not reopened since)."""
        if not self.completions:
            return None
        last = self.completions[-1].completed_at
        if self.reopenings and self.reopenings[-1] >= last:
            return None
        return last

    @property
    def first_time_fixed(self) -> bool | None:
        """Whether the work held the first time: completed, never reopened, and no later order
        on the same equipment called it back. None when not completed yet or cancelled."""
        if not self.completions or self.cancelled:
            return None
        return not self.reopenings and self.recalled_by is None

    def time_to_complete(self) -> timedelta | None:
        """From the order's receipt to the completion that stands."""
        done = self.completed_at
        if done is None or self.order is None or self.cancelled:
            return None
        return max(timedelta(0), done - self.order.received_at)

    def arrival_before(self, moment: datetime, *, after: datetime | None = None) -> datetime | None:
        """The first arrival at or before ``moment`` (and after ``after``, if given)."""
        return next(
            (a for a in self.arrivals if a <= moment and (after is None or a > after)), None
        )


def new_job(work_order_id: str, tenant: str) -> JobRecord:
    return JobRecord(work_order_id=work_order_id, tenant=tenant)


def order_received(job: JobRecord, facts: OrderFacts) -> JobRecord:
    """The order was received: what it is."""
    return replace(job, order=facts)


def job_assigned(job: JobRecord, *, contractor_id: str, at: datetime) -> JobRecord:
    """The order was assigned to ``contractor_id`` at ``at``; the latest assignment holds the
    job (equal times: the smaller id, so the result never depends on arrival order)."""
    if job.assigned_at is not None and job.contractor_id is not None:
        later = at > job.assigned_at
        same_time_smaller_id = at == job.assigned_at and contractor_id < job.contractor_id
        if not (later or same_time_smaller_id):
            return job
    return replace(job, contractor_id=contractor_id, assigned_at=at)


def contractor_named(job: JobRecord, contractor_id: str | None) -> JobRecord:
    """A step named the contractor holding the job: kept if no assignment was seen."""
    if contractor_id is None or job.contractor_id is not None:
        return job
    return replace(job, contractor_id=contractor_id)


def visit_scheduled(job: JobRecord, window: VisitWindow) -> JobRecord:
    return replace(job, windows=_with(job.windows, window))


def arrived(job: JobRecord, at: datetime) -> JobRecord:
    return replace(job, arrivals=_with(job.arrivals, at))


def work_completed(job: JobRecord, completion: Completion) -> JobRecord:
    return replace(job, completions=_with(job.completions, completion))


def reopened(job: JobRecord, at: datetime) -> JobRecord:
    return replace(job, reopenings=_with(job.reopenings, at))


def cancelled(job: JobRecord, at: datetime) -> JobRecord:
    if job.cancelled_at is not None and job.cancelled_at <= at:
        return job
    return replace(job, cancelled_at=at)


def rated(job: JobRecord, *, rating: int, at: datetime) -> JobRecord:
    """The customer rated the work (1..5); a later rating replaces an earlier one."""
    if not 1 <= rating <= 5:
        msg = f"a rating is 1..5, not {rating}"
        raise ValueError(msg)
    if job.rated_at is not None and (job.rated_at, job.rating or 0) >= (at, rating):
        return job
    return replace(job, rating=rating, rated_at=at)


def recalled(job: JobRecord, by: str) -> JobRecord:
    """A later order (``by``) called the repair back; of several, the smallest id is kept."""
    if job.recalled_by is not None and job.recalled_by <= by:
        return job
    return replace(job, recalled_by=by)


__all__ = [
    "MAX_FACTS",
    "Completion",
    "JobRecord",
    "OrderFacts",
    "VisitWindow",
    "arrived",
    "cancelled",
    "contractor_named",
    "job_assigned",
    "new_job",
    "order_received",
    "rated",
    "recalled",
    "reopened",
    "visit_scheduled",
    "work_completed",
]
