"""A contractor's scorecard: what its recent offers and jobs say about it, and one quality score.

The measures are taken over a contractor's most recent cases, :data:`DEFAULT_WINDOW` offers and
as many judged jobs (a :class:`PerformanceDigest`: what each offer's answer was, and what each job
record of :mod:`.performance` says), each measure with its sample (the cases it was measured on):

- **acceptance rate**: accepted / answered offers. An answer is an acceptance, a decline, or
  letting the offer run out; withdrawn offers and operators' assignments are not the
  contractor's answer and do not count. Sample: the answered offers.
- **time to accept**: offer to acceptance, median and mean in seconds. Sample: accepted offers
  whose offer and acceptance times are both known.
- **on-time arrival**: the first arrival on site at or before the end of the visit window agreed
  last before it (early is on time). Sample: jobs with a window and an arrival.
- **completion within target**: the order's receipt to the completion that stands, within the
  repair target of the order's priority; also the median time to complete. Sample: completed,
  not cancelled jobs whose received order was seen.
- **first-time fix**: completed jobs never reopened and not called back by a later order on the
  same equipment (:func:`fixloop_contractors.domain.quality.repeat_repairs`). A job counts as
  fixed from its completion until something calls it back. Sample: completed, not cancelled
  jobs.
- **customer rating**: the mean rating, 1..5. Sample: rated jobs.

**The completion target.** A received order carries a priority but no due date, so the target
is the repair time its priority implies: 4 hours for an emergency, 24 for high, 72 for normal and
7 days for low (the repair milestone's 24 to 72 h range of the SLA reference, configurable).

**The quality score** (0..1, what dispatch ranks with, :mod:`.scoring`): each measure is put on
0..1 (the four rates as they are; the time to accept as ``H / (H + median)`` with ``H`` =
:attr:`ScorecardPolicy.answer_half_time`, 15 minutes, so an answer within a quarter of an hour
scores at least one half; the rating as ``(mean - 1) / 4``), and the score is their weighted
mean (:class:`MeasureWeights`: acceptance 1, time to accept 0.5, on-time arrival 1, completion
within target 1, first-time fix 1.5, rating 1), to two decimals (finer differences are noise
to a ranking, and the profile it is written on changes less often). Only measures whose
sample reaches :attr:`ScorecardPolicy.min_sample` take part; with none, the score is None and
dispatch counts the contractor as neutral.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple, Self

from fixloop_contractors.domain.performance import JobRecord
from fixloop_shared.vocabulary import Priority

DEFAULT_COMPLETION_TARGETS: Mapping[Priority, timedelta] = MappingProxyType(
    {
        Priority.EMERGENCY: timedelta(hours=4),
        Priority.HIGH: timedelta(hours=24),
        Priority.NORMAL: timedelta(hours=72),
        Priority.LOW: timedelta(days=7),
    }
)
"""How long after its receipt an order of each priority is to be completed."""

SCORE_DIGITS = 2
DEFAULT_WINDOW = 100
"""A scorecard counts a contractor's most recent offers and jobs, this many of each."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MeasureWeights:
    """How much each measure counts in the quality score."""

    acceptance: float = 1.0
    time_to_accept: float = 0.5
    on_time_arrival: float = 1.0
    completion_within_target: float = 1.0
    first_time_fix: float = 1.5
    rating: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < 0:
                msg = f"the weight of {item.name} must not be negative"
                raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ScorecardPolicy:
    """What the scorecard is judged by."""

    min_sample: int = 5
    """A measure takes part in the score only with at least this many cases."""
    completion_targets: Mapping[Priority, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_COMPLETION_TARGETS)
    )
    weights: MeasureWeights = field(default_factory=MeasureWeights)
    answer_half_time: timedelta = timedelta(minutes=15)
    """The time to accept that scores one half."""

    def __post_init__(self) -> None:
        if self.min_sample < 1:
            msg = f"the minimum sample is at least 1, not {self.min_sample}"
            raise ValueError(msg)
        if self.answer_half_time <= timedelta(0):
            msg = "the answer half time must be positive"
            raise ValueError(msg)
        for priority, target in self.completion_targets.items():
            if target <= timedelta(0):
                msg = f"the completion target of {priority} orders must be positive"
                raise ValueError(msg)

    def completion_target(self, priority: Priority) -> timedelta | None:
        return self.completion_targets.get(priority)


class Measure(NamedTuple):
    """One measure of a scorecard put on 0..1 (None: no case yet), with its sample."""

    name: str
    value: float | None
    sample: int
    weight: float


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A contractor's measures, their samples and its quality score."""

    contractor_id: str
    offers_answered: int = 0
    offers_accepted: int = 0
    acceptance_rate: float | None = None
    accept_times: int = 0
    """Accepted offers whose offer and acceptance times are both known."""
    median_seconds_to_accept: float | None = None
    mean_seconds_to_accept: float | None = None
    arrivals: int = 0
    on_time_arrival_rate: float | None = None
    completions: int = 0
    completion_within_target_rate: float | None = None
    median_seconds_to_complete: float | None = None
    fixes: int = 0
    first_time_fix_rate: float | None = None
    ratings: int = 0
    mean_rating: float | None = None
    score: float | None = None
    """The quality score, 0..1 (None: too few cases in every measure; neutral in ranking)."""

    def measures(self, policy: ScorecardPolicy) -> tuple[Measure, ...]:
        """Each measure on 0..1, in the order of :class:`MeasureWeights`."""
        weights = policy.weights
        speed = None
        if self.median_seconds_to_accept is not None:
            half = policy.answer_half_time.total_seconds()
            speed = half / (half + self.median_seconds_to_accept)
        rating = None if self.mean_rating is None else (self.mean_rating - 1) / 4
        return (
            Measure("acceptance", self.acceptance_rate, self.offers_answered, weights.acceptance),
            Measure("time_to_accept", speed, self.accept_times, weights.time_to_accept),
            Measure(
                "on_time_arrival", self.on_time_arrival_rate, self.arrivals, weights.on_time_arrival
            ),
            Measure(
                "completion_within_target",
                self.completion_within_target_rate,
                self.completions,
                weights.completion_within_target,
            ),
            Measure("first_time_fix", self.first_time_fix_rate, self.fixes, weights.first_time_fix),
            Measure("rating", rating, self.ratings, weights.rating),
        )


def _rate(hits: int, cases: int) -> float | None:
    return None if cases == 0 else hits / cases


def quality_score(measures: Iterable[Measure], *, min_sample: int) -> float | None:
    """The weighted mean of the measures with at least ``min_sample`` cases (None: none)."""
    counted = [
        m for m in measures if m.value is not None and m.sample >= min_sample and m.weight > 0
    ]
    total = sum(m.weight for m in counted)
    if not counted or total <= 0:
        return None
    mean = sum(m.weight * min(1.0, max(0.0, m.value or 0.0)) for m in counted) / total
    return round(min(1.0, max(0.0, mean)), SCORE_DIGITS)


class OfferOutcome(StrEnum):
    """How the contractor answered an offer."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"
    """No answer before the offer ran out."""


_PRECEDENCE = (OfferOutcome.ACCEPTED, OfferOutcome.DECLINED, OfferOutcome.TIMED_OUT)
"""When two answers of one offer are reported (a late acceptance of an offer that had run out
here), the first of these wins, whatever order they arrive in: the contractor did take it."""


@dataclass(frozen=True, slots=True)
class OfferCase:
    """What one offer says about its contractor, as far as it is known.

    An offer withdrawn before an answer has no case; an operator's assignment has one that does
    not count (it was not the contractor's answer)."""

    offer_id: str
    offered_at: datetime | None = None
    outcome: OfferOutcome | None = None
    answered_at: datetime | None = None
    by_operator: bool = False

    @property
    def at(self) -> datetime:
        """Its place in the window: when it was made (or answered, if that is all known)."""
        return self.offered_at or self.answered_at or _EPOCH

    @property
    def counts(self) -> bool:
        return self.outcome is not None and not self.by_operator

    @property
    def seconds_to_accept(self) -> float | None:
        if self.outcome is not OfferOutcome.ACCEPTED or self.offered_at is None:
            return None
        if self.answered_at is None:
            return None
        return max(0.0, (self.answered_at - self.offered_at).total_seconds())

    def merged(self, other: OfferCase) -> OfferCase:
        """Both reports of the offer in one, the same whichever came first: the answer first in
        :data:`_PRECEDENCE` (of the same answer, the earlier), the offer time if either knows
        it, an operator's assignment if either says so."""
        answers = [c for c in (self, other) if c.outcome is not None]
        first = min(
            answers,
            key=lambda c: (
                _PRECEDENCE.index(c.outcome or OfferOutcome.TIMED_OUT),
                c.answered_at or _EPOCH,
            ),
            default=None,
        )
        outcome = None if first is None else first.outcome
        answered_at = None if first is None else first.answered_at
        return OfferCase(
            offer_id=self.offer_id,
            offered_at=self.offered_at or other.offered_at,
            outcome=outcome,
            answered_at=answered_at,
            by_operator=self.by_operator or other.by_operator,
        )


@dataclass(frozen=True, slots=True)
class JobCase:
    """What one job says about the contractor holding it (None: not judged on that)."""

    work_order_id: str
    at: datetime
    """When the order was received (or the first thing known of the job)."""
    on_time: bool | None = None
    priority: Priority | None = None
    seconds_to_complete: float | None = None
    """From the order's receipt to the completion that stands."""
    fixed: bool | None = None
    rating: int | None = None


def job_case(job: JobRecord) -> JobCase | None:
    """The job's case for the contractor holding it (None: nobody holds it, or nothing in it is
    judged yet)."""
    if job.contractor_id is None:
        return None
    took = job.time_to_complete()
    case = JobCase(
        work_order_id=job.work_order_id,
        at=job.order.received_at if job.order is not None else (job.assigned_at or _EPOCH),
        on_time=job.arrived_on_time,
        priority=None if job.order is None else job.order.priority,
        seconds_to_complete=None if took is None else took.total_seconds(),
        fixed=job.first_time_fixed,
        rating=None if job.cancelled else job.rating,
    )
    judged = (case.on_time, case.seconds_to_complete, case.fixed, case.rating)
    return None if all(value is None for value in judged) else case


@dataclass(frozen=True, slots=True)
class PerformanceDigest:
    """A contractor's most recent cases (at most ``window`` offers and ``window`` jobs), which
    its scorecard is measured on. Kept whole with the scorecard, so a step that changes one case
    reads and writes one document, whatever the contractor's history."""

    contractor_id: str
    offers: tuple[OfferCase, ...] = ()
    jobs: tuple[JobCase, ...] = ()

    def with_offer(self, case: OfferCase, *, window: int) -> Self:
        """With ``case`` merged into what is known of its offer; the ``window`` most recent."""
        known = next((c for c in self.offers if c.offer_id == case.offer_id), None)
        merged = case if known is None else known.merged(case)
        kept = [c for c in self.offers if c.offer_id != case.offer_id]
        kept.append(merged)
        kept.sort(key=lambda c: (c.at, c.offer_id), reverse=True)
        return replace(self, offers=tuple(kept[:window]))

    def with_job(self, work_order_id: str, case: JobCase | None, *, window: int) -> Self:
        """With the job's case in place of any it had (or none), the ``window`` most recent."""
        kept = [c for c in self.jobs if c.work_order_id != work_order_id]
        if case is not None:
            kept.append(case)
        kept.sort(key=lambda c: (c.at, c.work_order_id), reverse=True)
        return replace(self, jobs=tuple(kept[:window]))


def measure(digest: PerformanceDigest, policy: ScorecardPolicy) -> Scorecard:
    """The scorecard of the digest's cases."""
    answered = [c for c in digest.offers if c.counts]
    accepted = [c for c in answered if c.outcome is OfferOutcome.ACCEPTED]
    waits = [c.seconds_to_accept for c in accepted if c.seconds_to_accept is not None]
    on_time = [c.on_time for c in digest.jobs if c.on_time is not None]
    durations: list[float] = []
    within = 0
    for case in digest.jobs:
        target = None if case.priority is None else policy.completion_target(case.priority)
        if case.seconds_to_complete is None or target is None:
            continue
        durations.append(case.seconds_to_complete)
        within += case.seconds_to_complete <= target.total_seconds()
    fixed = [c.fixed for c in digest.jobs if c.fixed is not None]
    ratings = [c.rating for c in digest.jobs if c.rating is not None]

    card = Scorecard(
        contractor_id=digest.contractor_id,
        offers_answered=len(answered),
        offers_accepted=len(accepted),
        acceptance_rate=_rate(len(accepted), len(answered)),
        accept_times=len(waits),
        median_seconds_to_accept=statistics.median(waits) if waits else None,
        mean_seconds_to_accept=statistics.fmean(waits) if waits else None,
        arrivals=len(on_time),
        on_time_arrival_rate=_rate(sum(on_time), len(on_time)),
        completions=len(durations),
        completion_within_target_rate=_rate(within, len(durations)),
        median_seconds_to_complete=statistics.median(durations) if durations else None,
        fixes=len(fixed),
        first_time_fix_rate=_rate(sum(fixed), len(fixed)),
        ratings=len(ratings),
        mean_rating=statistics.fmean(ratings) if ratings else None,
    )
    score = quality_score(card.measures(policy), min_sample=policy.min_sample)
    return replace(card, score=score)


def digest_of(
    contractor_id: str,
    offers: Iterable[OfferCase],
    jobs: Iterable[JobRecord],
    *,
    window: int = DEFAULT_WINDOW,
) -> PerformanceDigest:
    """The contractor's digest from reports of its offers and the jobs it holds (jobs others
    hold are left out)."""
    digest = PerformanceDigest(contractor_id)
    for case in offers:
        digest = digest.with_offer(case, window=window)
    for job in jobs:
        if job.contractor_id == contractor_id:
            digest = digest.with_job(job.work_order_id, job_case(job), window=window)
    return digest


def scorecard(
    contractor_id: str,
    offers: Iterable[OfferCase],
    jobs: Iterable[JobRecord],
    policy: ScorecardPolicy,
    *,
    window: int = DEFAULT_WINDOW,
) -> Scorecard:
    """The contractor's scorecard from reports of its offers and the jobs it holds."""
    return measure(digest_of(contractor_id, offers, jobs, window=window), policy)


__all__ = [
    "DEFAULT_COMPLETION_TARGETS",
    "DEFAULT_WINDOW",
    "JobCase",
    "Measure",
    "MeasureWeights",
    "OfferCase",
    "OfferOutcome",
    "PerformanceDigest",
    "Scorecard",
    "ScorecardPolicy",
    "digest_of",
    "job_case",
    "measure",
    "quality_score",
    "scorecard",
]
