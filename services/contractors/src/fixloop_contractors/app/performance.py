"""Use cases: contractors' performance, from the steps of their offers and jobs.

A job's steps are folded into its record (:mod:`fixloop_contractors.domain.performance`), an
offer's answer into its case in the contractor's digest (declined and run out as this service
announced them, accepted as the orders service assigned the order; an assignment by an operator
is no answer of the contractor's and does not count), in the kernel's unit of work with the claim
of the event. When a record changes, in the same unit of work:

- the quality checks run (:mod:`fixloop_contractors.domain.quality`): a completion done far
  faster than its standard time, and a repair on the same equipment soon after an earlier one
  (looked for from both sides: when the later order is received, and when the earlier job is
  completed, so it is found whatever order the two arrive in). A new alert is stored for the
  operators' queue and published (``fixloop.quality.alert_raised.v1``, keyed by its work order);
  the job it calls back loses its first-time fix;
- if what the record says about its contractor changed (its *case*), the contractor's digest of
  recent cases takes the new one and its scorecard is measured again
  (:mod:`fixloop_contractors.domain.scorecard`); both are kept in one document, so a step costs
  the same however long the contractor's history. If a figure changed, the scorecard is
  published (``fixloop.contractor.scorecard_updated.v1``, keyed by the contractor id, under the
  tenant of the step that changed it); if the score changed, it is written on the contractor's
  profile, where dispatch ranks with it.

The repeat-repair checks look only where a repeat can be: when an order is received, at jobs on
its equipment completed within the repeat window before; when a job is completed, at orders on
its equipment received within the window after.

Every fold is idempotent and order-independent and every alert has an id made from what it is
about, so a step delivered again, late or out of order changes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from fixloop_contractors.app.dispatch import Clock, to_millis, utc_now
from fixloop_contractors.domain.performance import (
    Completion,
    JobRecord,
    OrderFacts,
    VisitWindow,
    arrived,
    cancelled,
    contractor_named,
    job_assigned,
    new_job,
    order_received,
    rated,
    recalled,
    reopened,
    visit_scheduled,
    work_completed,
)
from fixloop_contractors.domain.quality import (
    REPEAT_CATEGORIES,
    QualityAlert,
    QualityRules,
    RepeatRepairEvidence,
    TooFastEvidence,
    repeat_repairs,
    too_fast_completions,
)
from fixloop_contractors.domain.scorecard import (
    DEFAULT_WINDOW,
    OfferCase,
    OfferOutcome,
    PerformanceDigest,
    Scorecard,
    ScorecardPolicy,
    job_case,
    measure,
)
from fixloop_shared.contracts import (
    AssignmentDeclined,
    AssignmentExpired,
    ContractorScorecardUpdated,
    EventPayload,
    FeedbackSubmitted,
    LifecycleFacts,
    QualityAlertRaised,
    ScorecardMeasures,
    ScorecardSamples,
    TooFastCompletionEvidence,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOnSite,
    WorkOrderReceived,
    WorkOrderReopened,
    WorkOrderScheduled,
    WorkOrderWorkCompleted,
)
from fixloop_shared.contracts import RepeatRepairEvidence as RepeatRepairFacts
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import ActorKind

log = logging.getLogger(__name__)

EQUIPMENT_HISTORY = 50
"""At most this many jobs on one piece of equipment are looked at for a repeat repair."""


# -- ports --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """A quality alert as the operators' queue keeps it."""

    alert: QualityAlert
    raised_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True)
class DispatchedOffer:
    contractor_id: str
    offered_at: datetime


@dataclass(frozen=True, slots=True)
class StoredScorecard:
    """A contractor's scorecard, the digest of cases it was measured on, and when it changed."""

    scorecard: Scorecard
    digest: PerformanceDigest
    updated_at: datetime


class PerformanceTransaction(Protocol):
    """The offer and job records, scorecards and quality alerts, in the kernel's unit of work."""

    async def load(
        self,
        *,
        work_orders: Collection[str],
        offers: Collection[str],
        contractors: Collection[str],
    ) -> None:
        """Read ahead, in a few reads, what a batch's steps will read one by one: these jobs,
        these dispatched offers, and the scorecards of these contractors and of the ones the jobs
        and offers name (kept with the unit of work; its own writes keep them current)."""
        ...

    async def dispatched_offer(self, offer_id: str) -> DispatchedOffer | None:
        """Whom dispatch made the offer to, and when (None: not an offer made here)."""
        ...

    async def job(self, work_order_id: str) -> JobRecord | None: ...

    async def save_job(self, job: JobRecord) -> None: ...

    async def jobs_completed_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> Sequence[JobRecord]:
        """Jobs on one piece of equipment completed (first, or last) within ``since..until``:
        first completed by ``until``, last completed at or after ``since``; the latest first."""
        ...

    async def jobs_received_between(
        self,
        *,
        tenant: str,
        site_id: str,
        equipment_id: str,
        after: datetime,
        until: datetime,
        limit: int,
    ) -> Sequence[JobRecord]:
        """Orders on one piece of equipment received after ``after`` and by ``until``, the
        earliest first."""
        ...

    async def scorecard(self, contractor_id: str) -> StoredScorecard | None: ...

    async def save_scorecard(self, stored: StoredScorecard) -> None: ...

    async def set_score(self, contractor_id: str, score: float | None) -> None:
        """Write the quality score on the contractor's profile (if it has one)."""
        ...

    async def raise_alert(self, alert: StoredAlert) -> bool:
        """Keep a new alert; False (and nothing written) if one with its id exists."""
        ...

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        """Queue an event; it is published only if the unit of work commits."""
        ...


class PerformanceLedger(Protocol):
    def within(self, uow: UnitOfWork) -> PerformanceTransaction: ...


# -- use cases ----------------------------------------------------------------------------------


class PerformanceOutcome(StrEnum):
    RECORDED = "recorded"
    UNCHANGED = "unchanged"
    """Known already: nothing changed."""


@dataclass(frozen=True, slots=True)
class PerformanceResult:
    outcome: PerformanceOutcome
    alerts: tuple[QualityAlert, ...] = ()
    """Alerts raised (new ones only)."""
    scorecards: tuple[Scorecard, ...] = ()
    """Scorecards that changed."""


UNCHANGED = PerformanceResult(PerformanceOutcome.UNCHANGED)


def _moment(value: datetime) -> datetime:
    """In UTC at the precision the store keeps (milliseconds)."""
    return to_millis(value.astimezone(UTC))


@dataclass
class _Effects:
    """What a step changed beyond its own record, to act on before its unit of work ends."""

    now: datetime
    recorded: bool = False
    """A record was written."""
    alerts: list[QualityAlert] = field(default_factory=list)
    digests: dict[str, tuple[StoredScorecard | None, PerformanceDigest]] = field(
        default_factory=dict
    )
    """Contractors whose cases changed: their scorecard as stored, and their new digest."""


class PerformanceTracker:
    """Records each offer's and job's steps, raises quality alerts, keeps scorecards."""

    def __init__(
        self,
        ledger: PerformanceLedger,
        *,
        policy: ScorecardPolicy | None = None,
        rules: QualityRules | None = None,
        window: int = DEFAULT_WINDOW,
        clock: Clock = utc_now,
    ) -> None:
        if window < 1:
            msg = f"a scorecard counts at least one offer and job, not {window}"
            raise ValueError(msg)
        self._ledger = ledger
        self.policy = policy or ScorecardPolicy()
        self.rules = rules or QualityRules()
        self._window = window
        self._clock = clock

    async def preload(self, events: Sequence[Event[Any]], uow: UnitOfWork) -> None:
        """Read a batch's jobs, accepted offers and scorecards in a few reads."""
        work_orders: set[str] = set()
        offers: set[str] = set()
        contractors: set[str] = set()
        for event in events:
            payload = event.payload
            contractor_id = getattr(payload, "contractor_id", None)
            if isinstance(contractor_id, str):
                contractors.add(contractor_id)
            if isinstance(payload, AssignmentDeclined | AssignmentExpired):
                continue
            work_orders.add(payload.work_order_id)
            if isinstance(payload, WorkOrderAssigned) and payload.offer_id is not None:
                offers.add(payload.offer_id)
        tx = self._ledger.within(uow)
        await tx.load(work_orders=work_orders, offers=offers, contractors=contractors)

    # -- offers ---------------------------------------------------------------------------

    async def offer_ended(
        self, event: Event[AssignmentDeclined] | Event[AssignmentExpired], uow: UnitOfWork
    ) -> PerformanceResult:
        """The contractor declined an offer, or let it run out."""
        ended = event.payload
        outcome, at = (
            (OfferOutcome.DECLINED, ended.declined_at)
            if isinstance(ended, AssignmentDeclined)
            else (OfferOutcome.TIMED_OUT, ended.expired_at)
        )
        case = OfferCase(ended.offer_id, outcome=outcome, answered_at=_moment(at))
        return await self._offer_step(event, uow, ended.contractor_id, case)

    async def assigned(self, event: Event[WorkOrderAssigned], uow: UnitOfWork) -> PerformanceResult:
        """The order was assigned: its offer was accepted, and the contractor holds the job."""
        facts = event.payload
        at = _moment(facts.occurred_at)
        tx = self._ledger.within(uow)
        effects = _Effects(now=_moment(self._clock()))
        holder = facts.contractor_id
        if facts.offer_id is not None:
            made = await tx.dispatched_offer(facts.offer_id)
            if made is not None:
                holder = made.contractor_id  # the offer's own contractor
            accepted = OfferCase(
                facts.offer_id,
                offered_at=None if made is None else _moment(made.offered_at),
                outcome=OfferOutcome.ACCEPTED,
                answered_at=at,
                # An operator's assignment from the dispatch queue: not the contractor's answer.
                by_operator=facts.actor.kind is ActorKind.OPERATOR,
            )
            if holder is not None:
                await self._recase(
                    tx, effects, holder, lambda d: d.with_offer(accepted, window=self._window)
                )
        if holder is not None:
            contractor_id = holder
            await self._change_job(
                tx,
                event,
                lambda job: job_assigned(job, contractor_id=contractor_id, at=at),
                effects,
            )
        return await self._finish(tx, event, effects)

    # -- jobs -----------------------------------------------------------------------------

    async def received(self, event: Event[WorkOrderReceived], uow: UnitOfWork) -> PerformanceResult:
        """The order came in: what it is (and whether it is a repair soon after another)."""
        order = event.payload
        facts = OrderFacts(
            site_id=order.site.site_id,
            equipment_id=order.equipment.equipment_id,
            equipment_class=order.equipment.equipment_class,
            category=order.category,
            priority=order.priority,
            received_at=_moment(order.received_at),
            follow_up_of=order.follow_up_of,
        )
        return await self._job_step(event, uow, lambda job: order_received(job, facts))

    async def scheduled(
        self, event: Event[WorkOrderScheduled], uow: UnitOfWork
    ) -> PerformanceResult:
        """A visit window was agreed with the site."""
        facts = event.payload
        window = VisitWindow(
            scheduled_at=_moment(facts.occurred_at),
            start=_moment(facts.window_start),
            end=_moment(facts.window_end),
        )
        return await self._job_step(event, uow, lambda job: visit_scheduled(job, window))

    async def arrived(self, event: Event[WorkOrderOnSite], uow: UnitOfWork) -> PerformanceResult:
        """The contractor arrived on site."""
        at = _moment(event.payload.occurred_at)
        return await self._job_step(event, uow, lambda job: arrived(job, at))

    async def completed(
        self, event: Event[WorkOrderWorkCompleted], uow: UnitOfWork
    ) -> PerformanceResult:
        """The contractor completed the work."""
        facts = event.payload
        completion = Completion(
            completed_at=_moment(facts.occurred_at),
            labour_minutes=facts.completion.labour_minutes,
        )
        return await self._job_step(event, uow, lambda job: work_completed(job, completion))

    async def reopened(self, event: Event[WorkOrderReopened], uow: UnitOfWork) -> PerformanceResult:
        """The work was rejected or found lacking: it was not fixed the first time."""
        at = _moment(event.payload.occurred_at)
        return await self._job_step(event, uow, lambda job: reopened(job, at))

    async def cancelled(
        self, event: Event[WorkOrderCancelled], uow: UnitOfWork
    ) -> PerformanceResult:
        """The order was cancelled: that matters only to work completed or rated on it (a job
        cancelled before any work changes no measure, and is not written)."""
        at = _moment(event.payload.occurred_at)

        def cancel(job: JobRecord) -> JobRecord:
            return cancelled(job, at) if job.completions or job.rating is not None else job

        return await self._job_step(event, uow, cancel)

    async def feedback(self, event: Event[FeedbackSubmitted], uow: UnitOfWork) -> PerformanceResult:
        """The customer rated the work."""
        given = event.payload
        at = _moment(given.submitted_at)
        return await self._job_step(event, uow, lambda job: rated(job, rating=given.rating, at=at))

    # -- the steps' shape -----------------------------------------------------------------

    async def _offer_step(
        self, event: Event[Any], uow: UnitOfWork, contractor_id: str, case: OfferCase
    ) -> PerformanceResult:
        tx = self._ledger.within(uow)
        effects = _Effects(now=_moment(self._clock()))
        await self._recase(
            tx, effects, contractor_id, lambda d: d.with_offer(case, window=self._window)
        )
        if not effects.digests:
            return UNCHANGED
        return await self._finish(tx, event, effects)

    async def _job_step(
        self,
        event: Event[Any],
        uow: UnitOfWork,
        fold: Callable[[JobRecord], JobRecord],
    ) -> PerformanceResult:
        tx = self._ledger.within(uow)
        effects = _Effects(now=_moment(self._clock()))
        payload = event.payload
        named = payload.contractor_id if isinstance(payload, LifecycleFacts) else None

        def step(job: JobRecord) -> JobRecord:
            return contractor_named(fold(job), named)

        await self._change_job(tx, event, step, effects)
        return await self._finish(tx, event, effects)

    async def _change_job(
        self,
        tx: PerformanceTransaction,
        event: Event[Any],
        fold: Callable[[JobRecord], JobRecord],
        effects: _Effects,
    ) -> None:
        work_order_id = str(getattr(event.payload, "work_order_id", ""))
        before = await tx.job(work_order_id)
        empty = new_job(work_order_id, event.envelope.tenant)
        after = fold(before or empty)
        if after == before or (before is None and after == empty):
            return
        await tx.save_job(after)
        effects.recorded = True
        await self._recase_job(tx, before, after, effects)
        await self._check(tx, before, after, effects)

    async def _recase_job(
        self,
        tx: PerformanceTransaction,
        before: JobRecord | None,
        after: JobRecord,
        effects: _Effects,
    ) -> None:
        """The job's case moves to its holder's digest (and out of a former holder's)."""
        was = None if before is None else before.contractor_id
        old = None if before is None else job_case(before)
        new = job_case(after)
        if was is not None and was != after.contractor_id:
            await self._recase(
                tx,
                effects,
                was,
                lambda d: d.with_job(after.work_order_id, None, window=self._window),
            )
        elif old == new:
            return
        if after.contractor_id is not None:
            await self._recase(
                tx,
                effects,
                after.contractor_id,
                lambda d: d.with_job(after.work_order_id, new, window=self._window),
            )

    async def _recase(
        self,
        tx: PerformanceTransaction,
        effects: _Effects,
        contractor_id: str,
        change: Callable[[PerformanceDigest], PerformanceDigest],
    ) -> None:
        if contractor_id in effects.digests:
            stored, digest = effects.digests[contractor_id]
        else:
            stored = await tx.scorecard(contractor_id)
            digest = PerformanceDigest(contractor_id) if stored is None else stored.digest
        changed = change(digest)
        if changed != digest or contractor_id in effects.digests:
            effects.digests[contractor_id] = (stored, changed)

    async def _check(
        self,
        tx: PerformanceTransaction,
        before: JobRecord | None,
        job: JobRecord,
        effects: _Effects,
    ) -> None:
        """The quality checks on a changed job: too fast, and repeat repairs either side."""
        if job.order is None:
            return
        learnt = before is None or before.order is None
        worked = learnt or (
            before is not None
            and (before.arrivals, before.completions) != (job.arrivals, job.completions)
        )
        if worked:
            for alert in too_fast_completions(job, self.rules):
                if await tx.raise_alert(StoredAlert(alert, raised_at=effects.now)):
                    effects.alerts.append(alert)
        found = await self._repeat_candidates(tx, job, learnt=learnt, worked=worked)
        if not found:
            return
        found[job.work_order_id] = job
        for repeat in repeat_repairs(found.values(), self.rules):
            if job.work_order_id not in {repeat.earlier.work_order_id, repeat.later.work_order_id}:
                continue  # between other orders: found (or to be found) with those
            earlier = await tx.job(repeat.earlier.work_order_id) or repeat.earlier
            called_back = recalled(earlier, repeat.later.work_order_id)
            if called_back != earlier:
                await tx.save_job(called_back)
                await self._recase_job(tx, earlier, called_back, effects)
            if await tx.raise_alert(StoredAlert(repeat.alert, raised_at=effects.now)):
                effects.alerts.append(repeat.alert)

    async def _repeat_candidates(
        self, tx: PerformanceTransaction, job: JobRecord, *, learnt: bool, worked: bool
    ) -> dict[str, JobRecord]:
        """The other jobs that may make a repeat repair with ``job``: looked up only where one
        can be, and only when what ``job`` says about it changed."""
        order = job.order
        assert order is not None  # noqa: S101 - checked by the caller
        place = {"tenant": job.tenant, "site_id": order.site_id, "equipment_id": order.equipment_id}
        window = self.rules.repeat_window
        found: dict[str, JobRecord] = {}
        if learnt and (order.category in REPEAT_CATEGORIES or order.follow_up_of):
            # This order may call back a job completed before it on the same equipment.
            earlier = await tx.jobs_completed_between(
                **place,
                since=order.received_at - window,
                until=order.received_at,
                limit=EQUIPMENT_HISTORY,
            )
            found.update((j.work_order_id, j) for j in earlier)
            if order.follow_up_of and order.follow_up_of not in found:
                named = await tx.job(order.follow_up_of)
                if named is not None:
                    found[named.work_order_id] = named
        if job.completions and worked:
            # An order received after this job's completion may call it back.
            later = await tx.jobs_received_between(
                **place,
                after=job.completions[0].completed_at,
                until=job.completions[-1].completed_at + window,
                limit=EQUIPMENT_HISTORY,
            )
            found.update((j.work_order_id, j) for j in later)
        found.pop(job.work_order_id, None)
        return found

    async def _finish(
        self, tx: PerformanceTransaction, event: Event[Any], effects: _Effects
    ) -> PerformanceResult:
        if not (effects.recorded or effects.digests or effects.alerts):
            return UNCHANGED
        envelope = event.envelope
        now = effects.now
        for alert in effects.alerts:
            tx.emit(
                alert_raised(alert, raised_at=now),
                topic=Topic.CONTRACTORS_EVENTS,
                key=alert.work_order_id,
                tenant=alert.tenant,
                correlationid=envelope.correlationid,
            )
        changed: list[Scorecard] = []
        for contractor_id in sorted(effects.digests):
            stored, digest = effects.digests[contractor_id]
            card = measure(digest, self.policy)
            was = Scorecard(contractor_id) if stored is None else stored.scorecard
            if stored is not None and stored.digest == digest:
                continue
            updated_at = now if card != was or stored is None else stored.updated_at
            await tx.save_scorecard(StoredScorecard(card, digest, updated_at))
            if card.score != was.score or stored is None:
                await tx.set_score(contractor_id, card.score)
            if card == was:
                continue  # the same figures (or still nothing to measure)
            changed.append(card)
            tx.emit(
                scorecard_updated(card, self.policy, updated_at=now),
                topic=Topic.CONTRACTORS_EVENTS,
                key=contractor_id,
                tenant=envelope.tenant,
                correlationid=envelope.correlationid,
            )
        return PerformanceResult(PerformanceOutcome.RECORDED, tuple(effects.alerts), tuple(changed))


# -- on the wire --------------------------------------------------------------------------------


def scorecard_updated(
    card: Scorecard, policy: ScorecardPolicy, *, updated_at: datetime
) -> ContractorScorecardUpdated:
    return ContractorScorecardUpdated(
        contractor_id=card.contractor_id,
        score=card.score,
        measures=ScorecardMeasures(
            acceptance_rate=card.acceptance_rate,
            median_seconds_to_accept=card.median_seconds_to_accept,
            mean_seconds_to_accept=card.mean_seconds_to_accept,
            on_time_arrival_rate=card.on_time_arrival_rate,
            completion_within_target_rate=card.completion_within_target_rate,
            median_seconds_to_complete=card.median_seconds_to_complete,
            first_time_fix_rate=card.first_time_fix_rate,
            mean_rating=card.mean_rating,
        ),
        samples=ScorecardSamples(
            offers_answered=card.offers_answered,
            offers_accepted=card.offers_accepted,
            accept_times=card.accept_times,
            arrivals=card.arrivals,
            completions=card.completions,
            fixes=card.fixes,
            ratings=card.ratings,
        ),
        min_sample=policy.min_sample,
        updated_at=updated_at,
    )


def _minutes(span: timedelta) -> float:
    return round(span.total_seconds() / 60, 3)


def alert_raised(alert: QualityAlert, *, raised_at: datetime) -> QualityAlertRaised:
    evidence = alert.evidence
    too_fast = repeat = None
    if isinstance(evidence, TooFastEvidence):
        too_fast = TooFastCompletionEvidence(
            completed_at=evidence.completed_at,
            on_site_at=evidence.on_site_at,
            minutes_taken=_minutes(evidence.took),
            measured_from=evidence.basis.value,
            reported_labour_minutes=evidence.reported_labour_minutes,
            standard_minutes=_minutes(evidence.standard),
            threshold_ratio=evidence.ratio,
        )
    elif isinstance(evidence, RepeatRepairEvidence):
        repeat = RepeatRepairFacts(
            earlier_work_order_id=evidence.earlier_work_order_id,
            earlier_completed_at=evidence.earlier_completed_at,
            received_at=evidence.received_at,
            days_after_completion=round(evidence.since_completion.total_seconds() / 86_400, 3),
            follow_up=evidence.follow_up,
            window_days=max(1, evidence.window.days),
        )
    return QualityAlertRaised(
        alert_id=alert.alert_id,
        kind=alert.kind.value,
        work_order_id=alert.work_order_id,
        contractor_id=alert.contractor_id,
        site_id=alert.site_id,
        equipment_id=alert.equipment_id,
        equipment_class=alert.equipment_class,
        category=alert.category,
        finding=alert.summary,
        too_fast=too_fast,
        repeat_repair=repeat,
        raised_at=raised_at,
    )


__all__ = [
    "EQUIPMENT_HISTORY",
    "DispatchedOffer",
    "PerformanceLedger",
    "PerformanceOutcome",
    "PerformanceResult",
    "PerformanceTracker",
    "PerformanceTransaction",
    "StoredAlert",
    "StoredScorecard",
    "alert_raised",
    "scorecard_updated",
]
