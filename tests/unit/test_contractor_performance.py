"""Contractors' performance without I/O: job records and offers' answers (any order, any
repeat), the scorecard's measures and quality score, the quality alerts, and the use case on the
in-memory ledgers (scorecard and alert events, the score on the profile, nothing twice)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_contractors.adapters.memory import MemoryContractorRegistry, MemoryDispatchLedger
from fixloop_contractors.adapters.performance import (
    MemoryPerformanceLedger,
    alert_document,
    alert_from_document,
    job_document,
    job_from_document,
    scorecard_document,
    scorecard_from_document,
)
from fixloop_contractors.app.performance import PerformanceTracker, StoredAlert, StoredScorecard
from fixloop_contractors.domain.dispatch import (
    Candidate,
    ContractorChosen,
    DispatchRequest,
    choose_contractor,
)
from fixloop_contractors.domain.model import Contractor, ServiceRegion
from fixloop_contractors.domain.offers import Offer
from fixloop_contractors.domain.performance import (
    Completion,
    JobRecord,
    OrderFacts,
    VisitWindow,
    arrived,
    cancelled,
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
    AlertKind,
    DurationBasis,
    QualityRules,
    RepeatRepairEvidence,
    StandardTimes,
    TooFastEvidence,
    repeat_repairs,
    too_fast_completions,
)
from fixloop_contractors.domain.scorecard import (
    Measure,
    OfferCase,
    OfferOutcome,
    PerformanceDigest,
    ScorecardPolicy,
    digest_of,
    measure,
    quality_score,
    scorecard,
)
from fixloop_shared.contracts import (
    AssignmentDeclined,
    ContractorScorecardUpdated,
    EventPayload,
    FeedbackSubmitted,
    QualityAlertRaised,
    WorkOrderAssigned,
    WorkOrderOnSite,
    WorkOrderReceived,
    WorkOrderScheduled,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.kernel import apply_event
from fixloop_shared.memory import MemoryStore
from fixloop_shared.vocabulary import Category, Priority

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def order(
    *,
    category: Category = Category.BREAKDOWN,
    equipment_class: str = "hvac",
    priority: Priority = Priority.NORMAL,
    received_at: datetime = T0,
    equipment_id: str = "ahu-3",
    follow_up_of: str | None = None,
) -> OrderFacts:
    return OrderFacts(
        site_id="berlin-mitte",
        equipment_id=equipment_id,
        equipment_class=equipment_class,
        category=category,
        priority=priority,
        received_at=received_at,
        follow_up_of=follow_up_of,
    )


def job(work_order_id: str = "wo-1", **changes: Any) -> JobRecord:
    return JobRecord(work_order_id=work_order_id, tenant="acme", **changes)


# -- records: any order, any repeat -------------------------------------------------------------

JobStep = Callable[[JobRecord], JobRecord]


def window(agreed: int, start: int, end: int) -> VisitWindow:
    """A visit window agreed ``agreed`` minutes after T0, from ``start`` to ``end`` minutes."""
    return VisitWindow(T0 + agreed * MINUTE, T0 + start * MINUTE, T0 + end * MINUTE)


JOB_STEPS: list[JobStep] = [
    lambda j: order_received(j, order()),
    lambda j: job_assigned(j, contractor_id="ctr-a", at=T0 + 5 * MINUTE),
    lambda j: job_assigned(j, contractor_id="ctr-b", at=T0 + 9 * MINUTE),
    lambda j: visit_scheduled(
        j, VisitWindow(T0 + 10 * MINUTE, T0 + 60 * MINUTE, T0 + 120 * MINUTE)
    ),
    lambda j: visit_scheduled(
        j, VisitWindow(T0 + 20 * MINUTE, T0 + 90 * MINUTE, T0 + 150 * MINUTE)
    ),
    lambda j: arrived(j, T0 + 100 * MINUTE),
    lambda j: arrived(j, T0 + 300 * MINUTE),
    lambda j: work_completed(j, Completion(T0 + 140 * MINUTE, 40)),
    lambda j: reopened(j, T0 + 200 * MINUTE),
    lambda j: work_completed(j, Completion(T0 + 330 * MINUTE, 30)),
    lambda j: rated(j, rating=2, at=T0 + 400 * MINUTE),
    lambda j: rated(j, rating=5, at=T0 + 500 * MINUTE),
    lambda j: recalled(j, "wo-9"),
    lambda j: recalled(j, "wo-7"),
    lambda j: cancelled(j, T0 + 600 * MINUTE),
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(JOB_STEPS))), min_size=1, max_size=20),
    st.randoms(use_true_random=False),
)
def test_a_job_record_is_the_same_whatever_order_and_however_often_its_steps_come(
    steps: list[int], rnd: Any
) -> None:
    def apply(order_of_steps: list[int]) -> JobRecord:
        record = new_job("wo-1", "acme")
        for index in order_of_steps:
            record = JOB_STEPS[index](record)
        return record

    shuffled = list(steps)
    rnd.shuffle(shuffled)
    once = apply(sorted(set(steps)))
    assert apply(steps) == once
    assert apply(shuffled) == once
    assert job_from_document(job_document(once)) == once  # and the store keeps it as it is


OFFER_REPORTS = [
    OfferCase("of-1", outcome=OfferOutcome.TIMED_OUT, answered_at=T0 + 30 * MINUTE),
    OfferCase("of-1", offered_at=T0, outcome=OfferOutcome.ACCEPTED, answered_at=T0 + 31 * MINUTE),
    OfferCase("of-1", outcome=OfferOutcome.DECLINED, answered_at=T0 + 4 * MINUTE),
    OfferCase("of-1", outcome=OfferOutcome.DECLINED, answered_at=T0 + 3 * MINUTE),
    OfferCase("of-1", offered_at=T0, by_operator=True),
]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(len(OFFER_REPORTS))), st.integers(1, len(OFFER_REPORTS)))
def test_an_offers_answer_is_kept_by_precedence_whatever_the_order_and_repeats(
    order_of_reports: list[int], count: int
) -> None:
    chosen = order_of_reports[:count]

    def fold(indexes: list[int]) -> PerformanceDigest:
        digest = PerformanceDigest("ctr-a")
        for index in indexes:
            digest = digest.with_offer(OFFER_REPORTS[index], window=10)
        return digest

    digest = fold(chosen)
    assert digest == fold(sorted(chosen)) == fold(chosen + chosen[:1])
    (case,) = digest.offers
    answers = [OFFER_REPORTS[i] for i in chosen if OFFER_REPORTS[i].outcome is not None]
    if answers:
        best = min(answers, key=lambda c: ([*OfferOutcome].index(c.outcome), c.answered_at))
        assert (case.outcome, case.answered_at) == (best.outcome, best.answered_at)
    assert case.by_operator == (4 in chosen)
    assert case.counts == (bool(answers) and 4 not in chosen)
    stored = StoredScorecard(measure(digest, ScorecardPolicy()), digest, updated_at=T0)
    assert scorecard_from_document(scorecard_document(stored)) == stored


# -- the scorecard ------------------------------------------------------------------------------


def offer(offer_id: str, outcome: OfferOutcome | None, waited: int = 0, **more: Any) -> OfferCase:
    return OfferCase(
        offer_id=offer_id,
        offered_at=T0,
        outcome=outcome,
        answered_at=None if outcome is None else T0 + waited * MINUTE,
        **more,
    )


def test_the_scorecard_measures_and_its_score() -> None:
    offers = [
        offer("1", OfferOutcome.ACCEPTED, 4),
        offer("2", OfferOutcome.ACCEPTED, 10),
        offer("3", OfferOutcome.DECLINED, 1),
        offer("4", OfferOutcome.TIMED_OUT, 30),
        offer("6", OfferOutcome.ACCEPTED, 1, by_operator=True),  # an operator's choice
        offer("7", None),  # not answered yet
    ]
    window = VisitWindow(T0, T0 + 60 * MINUTE, T0 + 120 * MINUTE)
    jobs = [
        # on time, completed in 3 h (within 72 h), fixed, rated 5
        job(
            "wo-a",
            order=order(),
            contractor_id="ctr-a",
            windows=(window,),
            arrivals=(T0 + 110 * MINUTE,),
            completions=(Completion(T0 + 180 * MINUTE, 60),),
            rating=5,
            rated_at=T0,
        ),
        # late, completed after 4 days (beyond 72 h), reopened: not fixed the first time
        job(
            "wo-b",
            order=order(),
            contractor_id="ctr-a",
            windows=(window,),
            arrivals=(T0 + 121 * MINUTE,),
            completions=(Completion(T0 + timedelta(days=4), 60),),
            reopenings=(T0 + timedelta(days=3),),
            rating=2,
            rated_at=T0,
        ),
        # an emergency done in 5 h (beyond its 4 h), called back by a later order
        job(
            "wo-c",
            order=order(priority=Priority.EMERGENCY),
            contractor_id="ctr-a",
            completions=(Completion(T0 + 300 * MINUTE, 60),),
            recalled_by="wo-d",
        ),
        job("wo-x", order=order(), contractor_id="ctr-b", completions=(Completion(T0, 1),)),
    ]
    card = scorecard("ctr-a", offers, jobs, ScorecardPolicy(min_sample=3))

    assert (card.offers_answered, card.offers_accepted) == (4, 2)
    assert card.acceptance_rate == 0.5
    assert (card.accept_times, card.median_seconds_to_accept) == (2, 420.0)
    assert card.mean_seconds_to_accept == 420.0
    assert (card.arrivals, card.on_time_arrival_rate) == (2, 0.5)
    assert card.completions == 3
    assert card.completion_within_target_rate == pytest.approx(1 / 3)
    assert card.median_seconds_to_complete == 300 * 60
    assert card.fixes == 3
    assert card.first_time_fix_rate == pytest.approx(1 / 3)
    assert (card.ratings, card.mean_rating) == (2, 3.5)
    # With at least 3 cases: acceptance (4), completion (3), first-time fix (3).
    expected = (1.0 * 0.5 + 1.0 * (1 / 3) + 1.5 * (1 / 3)) / (1.0 + 1.0 + 1.5)
    assert card.score == round(expected, 2)

    every = scorecard("ctr-a", offers, jobs, ScorecardPolicy(min_sample=1))
    speed = 900 / (900 + 420)
    measures = [(0.5, 1.0), (speed, 0.5), (0.5, 1.0), (1 / 3, 1.0), (1 / 3, 1.5), (2.5 / 4, 1.0)]
    assert every.score == round(sum(v * w for v, w in measures) / sum(w for _, w in measures), 2)


def test_a_contractor_with_too_few_cases_is_not_scored() -> None:
    card = scorecard("ctr-a", [offer("1", OfferOutcome.DECLINED)], [], ScorecardPolicy())
    assert digest_of("ctr-a", [], [job(contractor_id="ctr-a")]).jobs == ()  # nothing judged
    assert (card.offers_answered, card.acceptance_rate, card.score) == (1, 0.0, None)
    empty = scorecard("ctr-a", [], [], ScorecardPolicy(min_sample=1))
    assert empty.score is None
    assert empty.acceptance_rate is None


measures_strategy = st.lists(
    st.builds(
        Measure,
        name=st.just("m"),
        value=st.none() | st.floats(0, 1),
        sample=st.integers(0, 20),
        weight=st.floats(0, 3),
    ),
    max_size=8,
)


@given(measures_strategy, st.integers(1, 10))
def test_the_score_is_the_weighted_mean_of_the_measures_with_enough_cases(
    measures: list[Measure], min_sample: int
) -> None:
    score = quality_score(measures, min_sample=min_sample)
    counted = [
        m for m in measures if m.value is not None and m.sample >= min_sample and m.weight > 0
    ]
    if not counted:
        assert score is None
        return
    assert score is not None
    assert 0.0 <= score <= 1.0
    total = sum(m.weight for m in counted)
    mean = sum(m.weight * (m.value or 0.0) for m in counted) / total
    assert score == pytest.approx(mean, abs=0.005 + 1e-9)


# -- the score in dispatch -----------------------------------------------------------------------


def coverer(contractor_id: str, prefix: str) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name=contractor_id,
        email=f"{contractor_id}@example.com",
        timezone="Europe/Berlin",
        tenants=frozenset({"acme"}),
        skills=frozenset({"hvac"}),
        regions=(ServiceRegion("DE", (prefix,)),),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.none() | st.floats(0, 1), st.integers(0, 3), st.sampled_from(["1", "10"])),
        min_size=2,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_dispatch_offers_the_best_ranked_whatever_the_scores_and_the_candidates_order(
    facts: list[tuple[float | None, int, str]], rnd: Any
) -> None:
    pool = [
        Candidate(coverer(f"ctr-{i}", prefix), open_jobs=jobs, scorecard=score)
        for i, (score, jobs, prefix) in enumerate(facts)
    ]
    rnd.shuffle(pool)
    request = DispatchRequest("wo-1", "acme", "hvac", "DE", "10178")
    decision = choose_contractor(request, pool, T0)
    assert isinstance(decision, ContractorChosen)
    (offered,) = decision.ranking.top(1)
    best = decision.ranking.ranked[0]
    assert offered.candidate.contractor.contractor_id == best.candidate.contractor.contractor_id


# -- quality alerts -----------------------------------------------------------------------------

RULES = QualityRules(standard_times=StandardTimes({Category.BREAKDOWN: {"hvac": 30, "*": 60}}))


def on_site_for(minutes: int, *, labour: int = 25, arrival: bool = True) -> JobRecord:
    arrive = T0 + 60 * MINUTE
    return job(
        order=order(),
        contractor_id="ctr-a",
        arrivals=(arrive,) if arrival else (),
        completions=(Completion(arrive + minutes * MINUTE, labour),),
    )


def test_a_30_minute_procedure_done_in_10_is_too_fast_and_11_is_not() -> None:
    (alert,) = too_fast_completions(on_site_for(10), RULES)
    assert (alert.kind, alert.work_order_id, alert.contractor_id) == (
        AlertKind.TOO_FAST_COMPLETION,
        "wo-1",
        "ctr-a",
    )
    evidence = alert.evidence
    assert isinstance(evidence, TooFastEvidence)
    assert (evidence.took, evidence.standard, evidence.basis) == (
        10 * MINUTE,
        30 * MINUTE,
        DurationBasis.ON_SITE,
    )
    assert evidence.on_site_at == T0 + 60 * MINUTE
    assert "completed in 10 min (on site to completion), 33% of the 30 min standard" in (
        alert.summary
    )
    assert too_fast_completions(on_site_for(11), RULES) == ()
    # The same finding is the same alert.
    assert too_fast_completions(on_site_for(10), RULES)[0].alert_id == alert.alert_id


def test_without_an_arrival_the_reported_labour_is_judged() -> None:
    (alert,) = too_fast_completions(on_site_for(90, labour=8, arrival=False), RULES)
    assert isinstance(alert.evidence, TooFastEvidence)
    assert alert.evidence.basis is DurationBasis.REPORTED_LABOUR
    assert alert.evidence.took == 8 * MINUTE
    assert too_fast_completions(on_site_for(90, labour=45, arrival=False), RULES) == ()


def test_work_without_a_standard_time_or_a_known_order_is_not_judged() -> None:
    other = QualityRules(standard_times=StandardTimes({Category.PREVENTIVE: {"*": 60}}))
    assert too_fast_completions(on_site_for(1), other) == ()
    assert too_fast_completions(replace(on_site_for(1), order=None), RULES) == ()
    assert too_fast_completions(cancelled(on_site_for(1), T0), RULES) == ()


def done(work_order_id: str, completed: datetime, **more: Any) -> JobRecord:
    return job(
        work_order_id,
        order=order(received_at=completed - 60 * MINUTE),
        contractor_id=more.pop("contractor_id", "ctr-a"),
        completions=(Completion(completed, 60),),
        **more,
    )


def later_order(work_order_id: str, received: datetime, **facts: Any) -> JobRecord:
    return job(work_order_id, order=order(received_at=received, **facts))


def test_a_breakdown_on_the_same_equipment_within_30_days_calls_the_last_repair_back() -> None:
    first = done("wo-1", T0, contractor_id="ctr-old")
    second = done("wo-2", T0 + timedelta(days=5), contractor_id="ctr-a")
    third = later_order("wo-3", T0 + timedelta(days=12))
    found = repeat_repairs([third, first, second], RULES)
    by_later = {r.later.work_order_id: r for r in found}
    # wo-2 came 5 days after wo-1 (a repeat of it); wo-3 calls back wo-2, the last one.
    assert set(by_later) == {"wo-2", "wo-3"}
    assert by_later["wo-2"].earlier.work_order_id == "wo-1"
    repeat = by_later["wo-3"]
    assert repeat.earlier.work_order_id == "wo-2"
    assert (repeat.alert.kind, repeat.alert.work_order_id, repeat.alert.contractor_id) == (
        AlertKind.REPEAT_REPAIR,
        "wo-3",
        "ctr-a",
    )
    evidence = repeat.alert.evidence
    assert isinstance(evidence, RepeatRepairEvidence)
    assert (evidence.earlier_completed_at, evidence.since_completion) == (
        T0 + timedelta(days=5),
        timedelta(days=7),
    )
    assert "is a repeat repair after work order wo-2, completed by ctr-a 7.0 days before" in (
        repeat.alert.summary
    )


def test_what_is_not_a_repeat_repair() -> None:
    first = done("wo-1", T0)
    assert repeat_repairs([first, later_order("wo-2", T0 + timedelta(days=31))], RULES) == ()
    preventive = later_order("wo-2", T0 + timedelta(days=2), category=Category.PREVENTIVE)
    assert repeat_repairs([first, preventive], RULES) == ()
    elsewhere = later_order("wo-2", T0 + timedelta(days=2), equipment_id="ahu-4")
    assert repeat_repairs([first, elsewhere], RULES) == ()
    before = later_order("wo-2", T0 - timedelta(minutes=5))  # received before it was completed
    assert repeat_repairs([first, before], RULES) == ()
    assert repeat_repairs([cancelled(first, T0), later_order("wo-2", T0 + MINUTE)], RULES) == ()


def test_a_follow_up_calls_its_order_back_whatever_its_category_and_age() -> None:
    first = done("wo-1", T0)
    follow_up = later_order(
        "wo-2", T0 + timedelta(days=45), category=Category.INSPECTION, follow_up_of="wo-1"
    )
    (found,) = repeat_repairs([first, follow_up], RULES)
    assert isinstance(found.alert.evidence, RepeatRepairEvidence)
    assert found.alert.evidence.follow_up
    assert "is a follow-up of work order wo-1" in found.alert.summary


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40 * 24 * 60))
def test_a_repeat_is_found_within_the_window_and_the_same_from_either_side(minutes: int) -> None:
    first = done("wo-1", T0)
    later = later_order("wo-2", T0 + minutes * MINUTE)
    found = repeat_repairs([first, later], RULES)
    assert bool(found) == (minutes * MINUTE <= RULES.repeat_window)
    assert found == repeat_repairs([later, first], RULES)
    for repeat in found:
        stored = StoredAlert(repeat.alert, raised_at=T0)
        assert alert_from_document(alert_document(stored)) == stored


# -- the use case, in memory --------------------------------------------------------------------


def wire(model: type[EventPayload], fields: dict[str, Any]) -> EventPayload:
    return model.model_validate_json(json.dumps(fields, default=datetime.isoformat))


def step(model: type[EventPayload], at: datetime, **more: Any) -> EventPayload:
    return wire(
        model,
        {
            "work_order_id": "wo-1",
            "external_id": "FH-1",
            "source_platform": "fieldhub",
            "state": "assigned",
            "previous_state": "dispatching",
            "occurred_at": at,
            "actor": {"kind": "contractor", "id": "ctr-a"},
            "via": "grpc",
            "version": 3,
            "contractor_id": "ctr-a",
            **more,
        },
    )


def received(work_order_id: str = "wo-1", at: datetime = T0) -> EventPayload:
    return wire(
        WorkOrderReceived,
        {
            "work_order_id": work_order_id,
            "tenant": "acme",
            "source_platform": "fieldhub",
            "received_at": at,
            "external_id": f"FH-{work_order_id}",
            "site": {
                "site_id": "berlin-mitte",
                "name": "Acme Berlin Mitte",
                "address": {
                    "line1": "Rosenthaler Str. 40",
                    "city": "Berlin",
                    "postal_code": "10178",
                    "country": "DE",
                },
                "timezone": "Europe/Berlin",
            },
            "equipment": {"equipment_id": "ahu-3", "equipment_class": "hvac"},
            "category": "breakdown",
            "priority": "normal",
            "description": "Air handling unit trips its breaker.",
            "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de"},
        },
    )


async def test_the_tracker_in_memory_scores_alerts_and_writes_the_score_on_the_profile() -> None:
    store = MemoryStore("contractors")
    await MemoryContractorRegistry(store).upsert(
        [
            Contractor(
                contractor_id="ctr-a",
                name="Klima A",
                email="a@example.com",
                timezone="Europe/Berlin",
                tenants=frozenset({"acme"}),
                skills=frozenset({"hvac"}),
                regions=(ServiceRegion("DE"),),
            )
        ]
    )
    async with store.transaction() as uow:  # dispatch's offer: when it was made, to whom
        await (
            MemoryDispatchLedger(store)
            .within(uow)
            .save_offer(
                Offer.open(
                    offer_id="of-1",
                    request=DispatchRequest("wo-1", "acme", "hvac", "DE", "10178"),
                    contractor_id="ctr-a",
                    at=T0,
                    ttl=30 * MINUTE,
                ),
                DispatchRequest("wo-1", "acme", "hvac", "DE", "10178"),
                Priority.NORMAL,
                correlationid="test",
            )
        )
    ledger = MemoryPerformanceLedger(store)
    tracker = PerformanceTracker(
        ledger, policy=ScorecardPolicy(min_sample=1), rules=RULES, clock=lambda: T0
    )
    handlers: dict[type[EventPayload], Any] = {
        WorkOrderReceived: tracker.received,
        AssignmentDeclined: tracker.offer_ended,
        WorkOrderAssigned: tracker.assigned,
        WorkOrderScheduled: tracker.scheduled,
        WorkOrderOnSite: tracker.arrived,
        WorkOrderWorkCompleted: tracker.completed,
        FeedbackSubmitted: tracker.feedback,
    }

    async def deliver(payload: EventPayload) -> bool:
        envelope = EventEnvelope.new(payload, source="orders", subject="wo-1", tenant="acme")
        return (
            await apply_event(
                store, Event(envelope, payload), handlers[type(payload)], scope="perf"
            )
            is not None
        )

    declined = AssignmentDeclined(
        work_order_id="wo-0",
        offer_id="of-0",
        contractor_id="ctr-a",
        declined_at=T0 - 60 * MINUTE,
    )
    completed = step(
        WorkOrderWorkCompleted,
        T0 + 70 * MINUTE,
        completion={"resolution_code": "reset", "work_summary": "Reset.", "labour_minutes": 9},
        verify_by=T0 + timedelta(days=3),
    )
    # Out of order: the completion and the acceptance before the order.
    for payload in (
        completed,
        step(WorkOrderAssigned, T0 + 6 * MINUTE, offer_id="of-1"),
        received(),
        declined,  # an earlier offer of another order
        # An operator gave yet another order to it: no answer of the contractor's.
        step(
            WorkOrderAssigned,
            T0,
            work_order_id="wo-9",
            offer_id="of-9",
            actor={"kind": "operator", "id": "ops-jane"},
        ),
        step(
            WorkOrderScheduled,
            T0 + 10 * MINUTE,
            window_start=T0 + 30 * MINUTE,
            window_end=T0 + 90 * MINUTE,
        ),
        step(WorkOrderOnSite, T0 + 60 * MINUTE),
        wire(FeedbackSubmitted, {"work_order_id": "wo-1", "rating": 4, "submitted_at": T0}),
    ):
        assert await deliver(payload)

    events = [e.payload for e in store.outbox]
    alerts = [e for e in events if isinstance(e, QualityAlertRaised)]
    cards = [e for e in events if isinstance(e, ContractorScorecardUpdated)]
    # Too fast: first judged by the reported 9 minutes, then measured on site (10 minutes):
    # one completion, one alert.
    (alert,) = alerts
    assert (alert.kind, alert.work_order_id, alert.contractor_id) == (
        "too_fast_completion",
        "wo-1",
        "ctr-a",
    )
    assert alert.too_fast is not None
    assert (alert.too_fast.minutes_taken, alert.too_fast.measured_from) == (
        9.0,
        "reported_labour",
    )
    last = cards[-1]
    assert last.contractor_id == "ctr-a"
    assert (last.samples.offers_answered, last.measures.acceptance_rate) == (2, 0.5)
    assert last.measures.median_seconds_to_accept == 360.0
    assert last.measures.on_time_arrival_rate == 1.0
    assert last.measures.completion_within_target_rate == 1.0
    assert last.measures.first_time_fix_rate == 1.0
    assert last.measures.mean_rating == 4.0
    assert last.score is not None
    stored = ledger.scorecard("ctr-a")
    assert stored is not None
    assert stored.scorecard.score == last.score
    assert store.state.collection("contractors")["ctr-a"]["scorecard"] == last.score
    (candidate,) = await MemoryContractorRegistry(store).list_contractors()
    assert candidate.scorecard == last.score

    # The same steps again under new event ids: nothing changes, nothing is sent.
    before = len(store.outbox)
    for payload in (completed, declined, step(WorkOrderOnSite, T0 + 60 * MINUTE)):
        assert await deliver(payload)
    assert len(store.outbox) == before
    assert [a.alert.alert_id for a in ledger.alerts()] == [alert.alert_id]
