"""Contractors service without I/O: eligibility, the choice, offers, the contractor file, and the
dispatch use case against an in-memory ledger."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_contractors.adapters.contractor_file import (
    MAX_CONTRACTORS,
    ContractorFileError,
    parse_contractors,
    read_contractor_file,
)
from fixloop_contractors.adapters.memory import MemoryDispatchLedger
from fixloop_contractors.app.assignments import AssignmentTracker, LifecycleOutcome
from fixloop_contractors.app.dispatch import DispatchOutcome, DispatchResult, WorkOrderDispatcher
from fixloop_contractors.app.explain import DispatchExplanation
from fixloop_contractors.app.ports import DispatchHistory
from fixloop_contractors.app.registry import credential_alerts
from fixloop_contractors.domain.deadlines import DispatchDeadline
from fixloop_contractors.domain.dispatch import (
    MAX_REASONS_PER_CONTRACTOR,
    Candidate,
    ContractorChosen,
    DispatchRequest,
    NoEligibleContractor,
    assess,
    choose_contractor,
)
from fixloop_contractors.domain.lifecycle import (
    ASSIGNED_ELSEWHERE,
    ORDER_CANCELLED,
    OfferChange,
    offer_declined,
    order_assigned,
    order_cancelled,
    order_reopened,
    work_completed,
)
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
)
from fixloop_contractors.domain.offers import (
    JobStatus,
    Load,
    NotOfferedToContractorError,
    Offer,
    OfferError,
    OfferExpiredError,
    OfferNotOpenError,
    OfferStatus,
)
from fixloop_shared.contracts import (
    Actor,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    EventPayload,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.kernel import UnitOfWork, apply_event
from fixloop_shared.memory import MemoryStore, MemoryUnitOfWork
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import ActorKind, Priority, WorkOrderState

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = REPO / "examples" / "contractors.yaml"
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def licence(expires_on: date, kind: CredentialKind = CredentialKind.TRADE_LICENCE) -> Credential:
    return Credential(kind=kind, number="TL-1", expires_on=expires_on)


def contractor(
    contractor_id: str = "ctr-a",
    *,
    tenants: Sequence[str] = ("acme",),
    skills: Sequence[str] = ("hvac",),
    regions: Sequence[ServiceRegion] = (ServiceRegion("DE", ("10",)),),
    credentials: Sequence[Credential] = (),
    timezone: str = "Europe/Berlin",
) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name=contractor_id.upper(),
        email=f"{contractor_id}@example.com",
        timezone=timezone,
        tenants=frozenset(tenants),
        skills=frozenset(skills),
        regions=tuple(regions),
        credentials=tuple(credentials),
    )


def request(
    *,
    tenant: str = "acme",
    equipment_class: str = "hvac",
    country: str = "DE",
    postal_code: str = "10115",
    work_order_id: str = "wo-1",
) -> DispatchRequest:
    return DispatchRequest(
        work_order_id=work_order_id,
        tenant=tenant,
        equipment_class=equipment_class,
        country=country,
        postal_code=postal_code,
    )


def chosen_id(decision: ContractorChosen | NoEligibleContractor) -> str | None:
    return decision.contractor.contractor_id if isinstance(decision, ContractorChosen) else None


# -- regions ----------------------------------------------------------------------------------


def test_region_matches_by_country_and_longest_postal_prefix() -> None:
    region = ServiceRegion("DE", ("1", "10", "101"))
    assert region.match_length("DE", "10115") == 3
    assert region.match_length("DE", "12043") == 1
    assert region.match_length("DE", "20095") is None
    assert region.match_length("AT", "1010") is None


def test_region_without_prefixes_covers_the_whole_country_as_least_specific() -> None:
    region = ServiceRegion("GB")
    assert region.whole_country
    assert region.match_length("GB", "SW1A 1AA") == 0
    assert region.match_length("IE", "D02 X285") is None


def test_postal_codes_and_prefixes_compare_without_case_spaces_or_hyphens() -> None:
    region = ServiceRegion("GB", ("sw1a", "E 14"))
    assert region.postal_prefixes == ("SW1A", "E14")
    assert region.match_length("GB", "SW1A 1AA") == 4
    assert region.match_length("GB", "e14-5ab") == 3


def test_site_label_reads_like_an_address() -> None:
    assert request().site_label == "DE-10115"
    assert request(country="GB", postal_code="sw1a  1aa").site_label == "GB-SW1A 1AA"


def test_contractor_takes_its_most_specific_region() -> None:
    alpen = contractor(regions=(ServiceRegion("DE", ("8",)), ServiceRegion("DE", ("803",))))
    assert alpen.match_length("DE", "80331") == 3


# -- credentials and the expiry boundary --------------------------------------------------------


def test_credential_is_valid_through_its_expiry_day() -> None:
    credential = licence(date(2026, 9, 30))
    assert credential.is_valid_on(date(2026, 9, 29))
    assert credential.is_valid_on(date(2026, 9, 30))
    assert not credential.is_valid_on(date(2026, 10, 1))
    assert credential.days_left(date(2026, 9, 30)) == 0
    assert credential.days_left(date(2026, 10, 1)) == -1


def test_expiry_is_judged_on_the_contractors_own_calendar_day() -> None:
    berlin = contractor(credentials=[licence(date(2026, 9, 30))], timezone="Europe/Berlin")
    # 23:59 on the expiry day in Berlin: still valid.
    last_minute = datetime(2026, 9, 30, 23, 59, tzinfo=ZoneInfo("Europe/Berlin"))
    assert assess(berlin, request(), last_minute).eligible
    # 22:30 UTC on 30 September is already 1 October in Berlin: expired.
    next_day_in_berlin = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)
    verdict = assess(berlin, request(), next_day_in_berlin)
    assert not verdict.eligible
    assert verdict.reasons == ("trade licence TL-1 expired on 2026-09-30",)
    # The same instant is still 30 September in New York.
    new_york = replace(berlin, timezone="America/New_York")
    assert assess(new_york, request(), next_day_in_berlin).eligible


@settings(max_examples=200, deadline=None)
@given(
    expires_on=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
    zone=st.sampled_from(["Europe/Berlin", "Europe/London", "Pacific/Auckland", "America/Denver"]),
    seconds=st.integers(min_value=0, max_value=24 * 3600 - 1),
    day_offset=st.integers(min_value=-2, max_value=2),
)
def test_expiry_boundary_property(
    expires_on: date, zone: str, seconds: int, day_offset: int
) -> None:
    """At any local moment of day D+k, a credential expiring on D is valid iff k <= 0."""
    local_day = expires_on + timedelta(days=day_offset)
    local = datetime.combine(local_day, time(0), tzinfo=ZoneInfo(zone)) + timedelta(seconds=seconds)
    moment = local.astimezone(UTC)
    subject = contractor(credentials=[licence(expires_on)], timezone=zone)
    expected_valid = subject.local_date(moment) <= expires_on
    assert assess(subject, request(), moment).credentials_valid is expected_valid


# -- eligibility --------------------------------------------------------------------------------


def test_each_failed_rule_is_a_reason() -> None:
    subject = contractor(
        tenants=["globex"],
        skills=["plumbing"],
        regions=[ServiceRegion("AT", ("1",))],
        credentials=[licence(date(2026, 1, 31)), licence(date(2025, 12, 31))],
    )
    verdict = assess(subject, request(), NOON)
    assert not verdict.eligible
    assert verdict.failed_criteria == 4
    assert verdict.reasons == (
        "does not serve tenant acme",
        "has no skill for equipment class 'hvac'",
        "does not cover DE-10115 (covers AT 1)",
        "trade licence TL-1 expired on 2026-01-31",
        "trade licence TL-1 expired on 2025-12-31",
    )


def test_reasons_per_contractor_are_bounded() -> None:
    many = [licence(date(2020, 1, 1) + timedelta(days=i)) for i in range(40)]
    verdict = assess(contractor(credentials=many), request(), NOON)
    assert len(verdict.reasons) == MAX_REASONS_PER_CONTRACTOR


# -- the choice ---------------------------------------------------------------------------------


def test_longest_prefix_wins_among_equally_loaded() -> None:
    local = Candidate(contractor("ctr-z", regions=[ServiceRegion("DE", ("10",))]), open_offers=1)
    wide = Candidate(contractor("ctr-a", regions=[ServiceRegion("DE", ("1",))]), open_offers=1)
    country = Candidate(contractor("ctr-b", regions=[ServiceRegion("DE")]), open_offers=1)
    decision = choose_contractor(request(), [wide, country, local], NOON)
    assert isinstance(decision, ContractorChosen)
    assert decision.contractor.contractor_id == "ctr-z"
    assert decision.match_length == 2
    assert decision.eligible_count == 3
    # Travel and load are weighed together: a local contractor buried in open offers loses.
    buried = replace(local, open_offers=9)
    assert chosen_id(choose_contractor(request(), [wide, country, buried], NOON)) == "ctr-a"


def test_fewest_open_offers_wins_among_equally_local() -> None:
    busy = Candidate(contractor("ctr-a"), open_offers=3)
    idle = Candidate(contractor("ctr-b"), open_offers=1)
    assert chosen_id(choose_contractor(request(), [busy, idle], NOON)) == "ctr-b"


def test_contractor_id_breaks_remaining_ties() -> None:
    pool = [Candidate(contractor(cid), open_offers=2) for cid in ("ctr-c", "ctr-a", "ctr-b")]
    assert chosen_id(choose_contractor(request(), pool, NOON)) == "ctr-a"


def test_unfilled_when_nobody_serves_the_class() -> None:
    decision = choose_contractor(request(equipment_class="elevator"), [], NOON)
    assert isinstance(decision, NoEligibleContractor)
    assert decision.reason == (
        "no contractor serves equipment class 'elevator' at DE-10115 for tenant acme"
    )
    assert decision.considered == ()


def test_unfilled_reason_names_the_closest_misses() -> None:
    expired = contractor("ctr-x", credentials=[licence(date(2026, 9, 30))])
    decision = choose_contractor(request(), [Candidate(expired)], NOON)
    assert isinstance(decision, NoEligibleContractor)
    assert decision.reason == (
        "no eligible contractor for equipment class 'hvac' at DE-10115 for tenant acme: "
        "the only contractor covering the site has an expired credential"
    )
    elsewhere = contractor("ctr-y", regions=[ServiceRegion("DE", ("8",))])
    decision = choose_contractor(request(), [Candidate(elsewhere)], NOON)
    assert isinstance(decision, NoEligibleContractor)
    assert decision.reason.endswith("for tenant acme (1 serves it in other areas)")


def test_considered_is_bounded_and_closest_misses_come_first() -> None:
    far = [
        Candidate(contractor(f"ctr-far-{i:03d}", regions=[ServiceRegion("AT")], skills=["x"]))
        for i in range(30)
    ]
    near = Candidate(contractor("ctr-zz-near", credentials=[licence(date(2026, 1, 1))]))
    decision = choose_contractor(request(), [*far, near], NOON, considered_limit=5)
    assert isinstance(decision, NoEligibleContractor)
    assert decision.considered_total == 31
    assert len(decision.considered) == 5
    assert decision.considered[0].contractor_id == "ctr-zz-near"


# -- the example world --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_world() -> list[Contractor]:
    return read_contractor_file(EXAMPLE_FILE)


def test_example_file_has_the_expected_contractors(example_world: list[Contractor]) -> None:
    ids = {c.contractor_id for c in example_world}
    assert {
        "ctr-berliner-klima",
        "ctr-kaelte-nord",
        "ctr-express-klima",
        "ctr-lift-go",
        "ctr-alpen-haustechnik",
        "ctr-wiener-elektro",
        "ctr-thamesfix",
    } <= ids
    assert len(example_world) == 8
    for subject in example_world:
        kinds = {c.kind for c in subject.credentials}
        assert {CredentialKind.TRADE_LICENCE, CredentialKind.LIABILITY_INSURANCE} <= kinds
    thamesfix = next(c for c in example_world if c.contractor_id == "ctr-thamesfix")
    assert thamesfix.timezone == "Europe/London"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (request(equipment_class="hvac", postal_code="10115"), "ctr-berliner-klima"),
        (request(equipment_class="elevator", postal_code="80331"), "ctr-lift-go"),
        (request(equipment_class="hvac", postal_code="20095"), "ctr-kaelte-nord"),
        (
            request(equipment_class="plumbing", country="GB", postal_code="SW1A 1AA"),
            "ctr-thamesfix",
        ),
        (
            request(
                tenant="globex", equipment_class="electrical", country="AT", postal_code="1010"
            ),
            "ctr-wiener-elektro",
        ),
        (
            request(tenant="globex", equipment_class="refrigeration", postal_code="20095"),
            "ctr-hansa-kaelte",
        ),
        (request(equipment_class="elevator", country="AT", postal_code="1010"), None),
    ],
)
def test_example_world_dispatch(
    example_world: list[Contractor], order: DispatchRequest, expected: str | None
) -> None:
    pool = [Candidate(c) for c in example_world]
    assert chosen_id(choose_contractor(order, pool, NOON)) == expected


def test_expired_express_klima_is_never_chosen_however_idle(
    example_world: list[Contractor],
) -> None:
    pool = [
        Candidate(c, open_offers=0 if c.contractor_id == "ctr-express-klima" else 50)
        for c in example_world
    ]
    decision = choose_contractor(request(), pool, NOON)
    assert chosen_id(decision) == "ctr-berliner-klima"
    express = next(c for c in example_world if c.contractor_id == "ctr-express-klima")
    verdict = assess(express, request(), NOON)
    assert verdict.reasons == ("liability insurance BHV-22-0047.551 expired on 2026-09-30",)


# -- properties of the choice -------------------------------------------------------------------

TENANTS = ["acme", "globex", "initech"]
SKILLS = ["hvac", "elevator", "plumbing"]
BASE_DAY = date(2026, 11, 21)

regions_strategy = st.builds(
    ServiceRegion,
    country=st.sampled_from(["DE", "AT"]),
    postal_prefixes=st.lists(st.text("0123", min_size=1, max_size=3), max_size=3).map(tuple),
)
credential_strategy = st.builds(
    Credential,
    kind=st.sampled_from(CredentialKind),
    number=st.just("N-1"),
    expires_on=st.dates(BASE_DAY - timedelta(days=3), BASE_DAY + timedelta(days=3)),
)


@st.composite
def candidate_pools(draw: st.DrawFn) -> list[Candidate]:
    ids = draw(st.lists(st.sampled_from([f"ctr-{i:02d}" for i in range(12)]), unique=True))
    pool = []
    for cid in ids:
        subject = Contractor(
            contractor_id=cid,
            name=cid,
            email=f"{cid}@example.com",
            timezone=draw(st.sampled_from(["Europe/Berlin", "Pacific/Auckland", "UTC"])),
            tenants=frozenset(draw(st.sets(st.sampled_from(TENANTS), min_size=1))),
            skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), min_size=1))),
            regions=tuple(draw(st.lists(regions_strategy, min_size=1, max_size=3))),
            credentials=tuple(draw(st.lists(credential_strategy, max_size=3))),
        )
        pool.append(Candidate(subject, open_offers=draw(st.integers(0, 4))))
    return pool


requests_strategy = st.builds(
    DispatchRequest,
    work_order_id=st.just("wo-p"),
    tenant=st.sampled_from(TENANTS),
    equipment_class=st.sampled_from(SKILLS),
    country=st.sampled_from(["DE", "AT"]),
    postal_code=st.text("0123", min_size=4, max_size=5),
)
moments = st.datetimes(  # hypothesis takes naive bounds and attaches the time zone itself
    min_value=datetime(2026, 11, 17),  # noqa: DTZ001
    max_value=datetime(2026, 11, 25),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=150, deadline=None)
@given(pool=candidate_pools(), order=requests_strategy, at=moments)
def test_choice_properties(pool: list[Candidate], order: DispatchRequest, at: datetime) -> None:
    verdicts = {c.contractor.contractor_id: assess(c.contractor, order, at) for c in pool}
    eligible = [c for c in pool if verdicts[c.contractor.contractor_id].eligible]
    decision = choose_contractor(order, pool, at)

    # Someone is chosen iff someone is eligible, and the chosen one is always eligible.
    assert isinstance(decision, ContractorChosen) == bool(eligible)
    if isinstance(decision, ContractorChosen):
        chosen = decision.contractor.contractor_id
        assert verdicts[chosen].eligible

        # ... the ranking holds exactly the eligible ones, and no eligible contractor scores
        # higher, or as high with a smaller id.
        ranked = decision.ranking.ranked
        assert {r.contractor_id for r in ranked} == {c.contractor.contractor_id for c in eligible}
        assert (-ranked[0].total, chosen) == min((-r.total, r.contractor_id) for r in ranked)
    else:
        assert decision.considered_total == len(pool)
        assert all(not a.eligible for a in decision.considered)
        assert decision.reason.startswith(("no contractor serves", "no eligible contractor"))


@settings(max_examples=100, deadline=None)
@given(pool=candidate_pools(), order=requests_strategy, at=moments, seed=st.integers())
def test_choice_does_not_depend_on_the_order_of_candidates(
    pool: list[Candidate], order: DispatchRequest, at: datetime, seed: int
) -> None:
    shuffled = list(pool)
    random.Random(seed).shuffle(shuffled)
    assert choose_contractor(order, pool, at) == choose_contractor(order, shuffled, at)


# -- offers -------------------------------------------------------------------------------------


def open_offer(ttl: timedelta = timedelta(minutes=30)) -> Offer:
    return Offer.open(offer_id="off-1", request=request(), contractor_id="ctr-a", at=NOON, ttl=ttl)


def test_offer_expires_after_its_ttl() -> None:
    offer = open_offer()
    assert offer.status is OfferStatus.OPEN
    assert offer.expires_at == NOON + timedelta(minutes=30)
    assert not offer.is_expired(NOON + timedelta(minutes=29, seconds=59))
    assert offer.is_expired(NOON + timedelta(minutes=30))


def test_offer_is_accepted_once_by_its_contractor_before_it_expires() -> None:
    offer = open_offer()
    with pytest.raises(NotOfferedToContractorError):
        offer.accept("ctr-b", NOON)
    with pytest.raises(OfferExpiredError):
        offer.accept("ctr-a", offer.expires_at)
    accepted = offer.accept("ctr-a", NOON + timedelta(minutes=5))
    assert accepted.status is OfferStatus.ACCEPTED
    assert accepted.closed_at == NOON + timedelta(minutes=5)
    with pytest.raises(OfferNotOpenError):
        accepted.decline("ctr-a", NOON + timedelta(minutes=6))
    with pytest.raises(OfferNotOpenError):
        accepted.time_out(offer.expires_at)


def test_offer_times_out_only_once_due() -> None:
    offer = open_offer()
    with pytest.raises(OfferError):
        offer.time_out(offer.expires_at - timedelta(seconds=1))
    assert offer.time_out(offer.expires_at).status is OfferStatus.TIMED_OUT
    with pytest.raises(ValueError, match="positive"):
        open_offer(ttl=timedelta(0))


@settings(max_examples=200, deadline=None)
@given(answer_after=st.integers(min_value=0, max_value=7200), ttl=st.integers(1, 3600))
def test_answer_succeeds_iff_before_expiry(answer_after: int, ttl: int) -> None:
    offer = open_offer(ttl=timedelta(seconds=ttl))
    at = NOON + timedelta(seconds=answer_after)
    if answer_after < ttl:
        assert offer.decline("ctr-a", at).status is OfferStatus.DECLINED
    else:
        with pytest.raises(OfferExpiredError):
            offer.decline("ctr-a", at)


# -- the contractor file ------------------------------------------------------------------------


def entry(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "contractor_id": "ctr-a",
        "name": "A GmbH",
        "email": "a@example.com",
        "timezone": "Europe/Berlin",
        "tenants": ["acme"],
        "skills": ["hvac"],
        "regions": [{"country": "DE", "postal_prefixes": ["10"]}],
        "credentials": [{"kind": "trade_licence", "number": "TL-1", "expires_on": "2027-01-31"}],
    }
    base.update(overrides)
    return base


def problems_of(text: str, fmt: str = "yaml") -> list[str]:
    with pytest.raises(ContractorFileError) as caught:
        parse_contractors(text, fmt=fmt)  # type: ignore[arg-type]
    return caught.value.problems


def test_json_and_yaml_give_the_same_contractors() -> None:
    doc = {"contractors": [entry(), entry(contractor_id="ctr-b", regions=[{"country": "AT"}])]}
    from_json = parse_contractors(json.dumps(doc), fmt="json")
    from_yaml = parse_contractors(yaml.safe_dump(doc), fmt="yaml")
    assert from_json == from_yaml
    assert from_json[0].credentials[0].expires_on == date(2027, 1, 31)
    assert from_json[1].regions[0].whole_country


def test_every_problem_is_one_line_with_its_location() -> None:
    text = """
contractors:
  - contractor_id: ctr-a
    name: A
    email: a@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE, postal_prefixes: ["10"]}]
  - contractor_id: ctr-b
    name: B
    email: b@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: NO, postal_prefixes: [10]}]
    credentials:
      - {kind: trade_licence, number: TL-1, expires_on: 2027-02-30}
      - {kind: permit, number: P-1, expires_on: 2027-01-01T08:00:00Z, issuer: x}
"""
    problems = problems_of(text)
    assert problems == [
        "contractors[1].regions[0].country: Input should be a string; write it in quotes "
        "(it was read as the boolean false)",
        "contractors[1].regions[0].postal_prefixes[0]: Input should be a string; write it in "
        "quotes (it was read as the number 10)",
        "contractors[1].credentials[0].expires_on: Input should be a valid date: "
        "day is out of range for month",
        "contractors[1].credentials[1].kind: Input should be 'trade_licence', "
        "'liability_insurance' or 'certification'",
        "contractors[1].credentials[1].expires_on: Input should be a date (YYYY-MM-DD), "
        "not a date and time",
        "contractors[1].credentials[1].issuer: Extra inputs are not permitted",
    ]
    assert all("\n" not in p for p in problems)


def test_strict_types_and_bounds() -> None:
    doc = {
        "contractors": [
            entry(
                contractor_id="Not A Slug",
                name="x" * 201,
                email="nope",
                timezone="Mars/Olympus",
                tenants=["acme", "acme"],
                skills=[],
                phone=4930123456,
            )
        ]
    }
    problems = problems_of(json.dumps(doc), fmt="json")
    locations = [p.split(":", 1)[0] for p in problems]
    assert locations == [
        "contractors[0].contractor_id",
        "contractors[0].name",
        "contractors[0].email",
        "contractors[0].phone",
        "contractors[0].timezone",
        "contractors[0].tenants",
        "contractors[0].skills",
    ]


def test_operator_shaped_values_are_data_errors_not_queries() -> None:
    doc = {"contractors": [entry(contractor_id={"$ne": None}, tenants=[{"$gt": ""}])]}
    problems = problems_of(json.dumps(doc), fmt="json")
    assert problems[0].startswith("contractors[0].contractor_id: Input should be a valid string")
    assert problems[1].startswith("contractors[0].tenants[0]: Input should be a valid string")


def test_duplicate_contractor_ids_and_keys_are_rejected() -> None:
    doc = {"contractors": [entry(), entry(name="Other"), entry(contractor_id="ctr-b")]}
    assert problems_of(json.dumps(doc), fmt="json") == [
        "contractors[1].contractor_id: 'ctr-a' is already used by contractors[0]"
    ]
    assert problems_of("contractors:\n  - name: a\n    name: b\n") == [
        "(file): not valid YAML at line 3, column 5: duplicate key 'name'"
    ]
    assert problems_of('{"contractors": [], "contractors": []}', fmt="json") == [
        "(file): not valid JSON: duplicate key 'contractors'"
    ]


def test_file_shape_and_size_limits() -> None:
    assert problems_of("- just a list") == [
        "(file): expected a mapping with a top-level 'contractors' list"
    ]
    assert problems_of("contractors: []") == [
        "contractors: List should have at least 1 item after validation, not 0"
    ]
    # Refused by its length before any entry is looked at (the entries here are empty).
    too_many: dict[str, list[dict[str, str]]] = {"contractors": [{}] * (MAX_CONTRACTORS + 1)}
    (problem,) = problems_of(json.dumps(too_many), fmt="json")
    assert problem.startswith(f"contractors: List should have at most {MAX_CONTRACTORS} items")
    assert problems_of('{"contractors": [{"name": "\\ud800"}]}', fmt="json") == [
        "(file): contains an unpaired UTF-16 surrogate escape"
    ]
    assert problems_of("contractors: [")[0].startswith("(file): not valid YAML at line 2")


def test_credential_alerts_sort_expiring_and_expired() -> None:
    subjects = [
        contractor(
            "ctr-a",
            credentials=[
                licence(date(2026, 12, 21)),  # 30 days: expiring
                licence(date(2026, 12, 22)),  # 31 days: fine
                licence(date(2026, 11, 21)),  # today: still valid, expiring
                licence(date(2026, 11, 20)),  # yesterday: expired
            ],
        )
    ]
    expiring, expired = credential_alerts(subjects, as_of=date(2026, 11, 21))
    assert [(a.credential.expires_on, a.days_left) for a in expiring] == [
        (date(2026, 11, 21), 0),
        (date(2026, 12, 21), 30),
    ]
    assert [(a.credential.expires_on, a.days_left) for a in expired] == [(date(2026, 11, 20), -1)]


# -- the dispatch use case, against an in-memory ledger ------------------------------------------


@dataclass
class MemoryLedger:
    """The dispatch records on the in-memory unit of work: they commit or roll back with it."""

    store: MemoryStore
    profiles: dict[str, Candidate] = field(default_factory=dict)

    def within(self, uow: UnitOfWork) -> MemoryTransaction:
        assert isinstance(uow, MemoryUnitOfWork)
        return MemoryTransaction(self, uow)

    def open_offers(self, contractor_id: str) -> int:
        return int(self.store.state.collection("load").get(contractor_id, {}).get("open", 0))

    @property
    def published(self) -> list[tuple[str, str, EventPayload]]:
        return [(e.topic, e.key, e.payload) for e in self.store.outbox]


@dataclass
class MemoryTransaction:
    ledger: MemoryLedger
    uow: MemoryUnitOfWork

    async def decision_exists(self, work_order_id: str) -> bool:
        return work_order_id in self.uow.session.collection("decisions")

    async def candidates(self, request: DispatchRequest, *, at: datetime) -> list[Candidate]:
        load = self.uow.session.collection("load")
        return [
            replace(c, open_offers=c.open_offers + int(load.get(cid, {}).get("open", 0)))
            for cid, c in self.ledger.profiles.items()
        ]

    async def history(self, work_order_id: str, *, tenant: str | None) -> DispatchHistory | None:
        return None  # one round only here: next rounds are tested on the service's ledgers

    async def contractor(self, contractor_id: str) -> Candidate | None:
        return self.ledger.profiles.get(contractor_id)

    async def dequeue(self, work_order_id: str) -> None:
        return None

    async def save_change(self, change: OfferChange) -> bool:
        msg = "offers never change in the one-round tests that use this ledger"
        raise AssertionError(msg)

    async def save_explanation(self, explanation: DispatchExplanation) -> None:
        self.uow.session.collection("explanations")[explanation.work_order_id] = {
            "explanation": explanation
        }

    async def arm_deadline(self, deadline: DispatchDeadline, *, correlationid: str) -> None:
        self.uow.session.collection("deadlines")[deadline.work_order_id] = {"at": correlationid}

    async def escalate_deadline(self, work_order_id: str, *, at: datetime, reason: str) -> None:
        return None

    async def forget_deadline(self, work_order_id: str) -> None:
        self.uow.session.collection("deadlines").pop(work_order_id, None)

    async def save_offer(
        self,
        offer: Offer,
        request: DispatchRequest,
        priority: Priority,
        *,
        correlationid: str,
    ) -> None:
        self.uow.session.collection("decisions")[offer.work_order_id] = {"offer": offer}
        load = self.uow.session.collection("load").setdefault(offer.contractor_id, {"open": 0})
        load["open"] += 1

    async def save_unfilled(
        self,
        *,
        decision_id: str,
        request: DispatchRequest,
        reason: str,
        considered_total: int,
        decided_at: datetime,
        dispatch_round: int,
        priority: Priority,
    ) -> None:
        self.uow.session.collection("decisions")[request.work_order_id] = {"unfilled": reason}

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        self.uow.emit(payload, topic=topic, key=key, tenant=tenant, correlationid=correlationid)


def received(work_order_id: str, *, equipment_class: str = "hvac") -> WorkOrderReceived:
    # As it arrives: JSON, so the strict model reads enums and times from their wire form.
    return WorkOrderReceived.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "tenant": "acme",
                "source_platform": "fieldhub",
                "received_at": NOON.isoformat(),
                "external_id": f"EXT-{work_order_id}",
                "site": {
                    "site_id": "site-1",
                    "name": "ACME Berlin",
                    "address": {
                        "line1": "Invalidenstraße 1",
                        "city": "Berlin",
                        "postal_code": "10115",
                        "country": "DE",
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": "AC-1", "equipment_class": equipment_class},
                "category": "breakdown",
                "priority": "high",
                "description": "Cooling failed",
                "requester": {"name": "Mara", "email": "mara@example.com", "locale": "de"},
            }
        )
    )


def envelope_of(order: WorkOrderReceived) -> EventEnvelope:
    return EventEnvelope.new(
        order, source="orders", subject=order.work_order_id, tenant=order.tenant
    )


@pytest.fixture
def memory_ledger(example_world: list[Contractor]) -> MemoryLedger:
    return MemoryLedger(
        MemoryStore("contractors"),
        profiles={c.contractor_id: Candidate(c) for c in example_world},
    )


async def dispatch(
    dispatcher: WorkOrderDispatcher,
    ledger: MemoryLedger,
    envelope: EventEnvelope,
    order: WorkOrderReceived,
) -> DispatchResult | None:
    """Apply the event as the kernel does: claim it and dispatch in one unit of work."""
    return await apply_event(ledger.store, Event(envelope, order), dispatcher.work_order_received)


def dispatcher_for(ledger: MemoryLedger) -> WorkOrderDispatcher:
    return WorkOrderDispatcher(
        ledger,
        offer_ttl=timedelta(minutes=30),
        clock=lambda: NOON + timedelta(microseconds=123_456),
        ids=iter(f"id-{i}" for i in range(100)).__next__,
    )


async def test_offer_is_made_once_and_loads_the_contractor(memory_ledger: MemoryLedger) -> None:
    dispatcher = dispatcher_for(memory_ledger)
    order = received("wo-1")
    envelope = envelope_of(order)

    result = await dispatch(dispatcher, memory_ledger, envelope, order)
    assert result is not None
    assert result.outcome is DispatchOutcome.OFFERED
    assert result.contractor_id == "ctr-berliner-klima"
    ((topic, key, payload),) = memory_ledger.published
    assert (topic, key) == (Topic.CONTRACTORS_EVENTS, "wo-1")
    assert isinstance(payload, AssignmentOffered)
    assert payload.contractor_name == "Berliner Klima Service GmbH"
    assert payload.offered_at == NOON + timedelta(microseconds=123_000)  # stored precision
    assert payload.expires_at - payload.offered_at == timedelta(minutes=30)
    assert memory_ledger.open_offers("ctr-berliner-klima") == 1

    # The same event again (claimed already), and another event for the same order: no second
    # offer.
    assert await dispatch(dispatcher, memory_ledger, envelope, order) is None
    other = await dispatch(dispatcher, memory_ledger, envelope_of(order), order)
    assert other is not None
    assert other.outcome is DispatchOutcome.ALREADY_DECIDED
    assert len(memory_ledger.published) == 1
    assert memory_ledger.open_offers("ctr-berliner-klima") == 1


async def test_unfilled_order_reports_reason_and_considered(memory_ledger: MemoryLedger) -> None:
    dispatcher = dispatcher_for(memory_ledger)
    order = received("wo-2", equipment_class="boiler")
    result = await dispatch(dispatcher, memory_ledger, envelope_of(order), order)
    assert result is not None
    assert result.outcome is DispatchOutcome.UNFILLED
    ((_, _, payload),) = memory_ledger.published
    assert isinstance(payload, AssignmentUnfilled)
    assert payload.reason == (
        "no contractor serves equipment class 'boiler' at DE-10115 for tenant acme"
    )
    # The in-memory ledger hands over every contractor, so every one is listed with reasons.
    assert {r.contractor_id for r in payload.considered} == set(memory_ledger.profiles)
    assert all(r.reasons for r in payload.considered)


# -- the work order's lifecycle and the offers --------------------------------------------------


def offer_to(
    contractor_id: str, offer_id: str, *, dispatch_round: int = 1, work_order_id: str = "wo-1"
) -> Offer:
    return Offer.open(
        offer_id=offer_id,
        request=request(work_order_id=work_order_id),
        contractor_id=contractor_id,
        at=NOON + timedelta(minutes=dispatch_round),
        ttl=timedelta(minutes=30),
        dispatch_round=dispatch_round,
    )


def applied(offers: Sequence[Offer], changes: Sequence[OfferChange]) -> list[Offer]:
    """The offers after the changes, each applied only if the offer is still as it was read."""
    by_id = {o.offer_id: o for o in offers}
    for change in changes:
        if by_id[change.before.offer_id] == change.before:
            by_id[change.before.offer_id] = change.after
    return [by_id[o.offer_id] for o in offers]


LATER = NOON + timedelta(minutes=10)


def test_an_offer_counts_as_open_offer_then_as_open_job() -> None:
    offer = offer_to("ctr-a", "off-1")
    assert offer.load == Load(open_offers=1, open_jobs=0)
    accepted = offer.record_acceptance(LATER)
    assert (accepted.status, accepted.job, accepted.closed_at) == (
        OfferStatus.ACCEPTED,
        JobStatus.OPEN,
        LATER,
    )
    assert accepted.load == Load(open_offers=0, open_jobs=1)
    assert accepted.complete_job().load == Load()
    assert accepted.complete_job().reopen_job().load == Load(open_jobs=1)
    assert accepted.cancel_job().load == Load()
    # An offer leaves the open state once; a job moves only from the state it is in.
    with pytest.raises(OfferNotOpenError):
        accepted.withdraw(LATER, ORDER_CANCELLED)
    with pytest.raises(OfferNotOpenError):
        offer.withdraw(LATER, ORDER_CANCELLED).record_decline(LATER)
    with pytest.raises(OfferError):
        offer.complete_job()
    with pytest.raises(OfferError):
        accepted.reopen_job()
    with pytest.raises(OfferError):
        accepted.cancel_job().complete_job()
    # Recorded as the orders service decided it, even after the offer's own time ran out.
    late = offer.expires_at + timedelta(minutes=1)
    assert offer.record_decline(late, "too far").reason == "too far"
    assert offer.accept("ctr-a", NOON + timedelta(minutes=2)).job is JobStatus.OPEN


def test_assigned_accepts_its_offer_and_withdraws_the_other_open_ones() -> None:
    first = offer_to("ctr-a", "off-1")
    second = offer_to("ctr-b", "off-2", dispatch_round=2)
    declined = offer_to("ctr-c", "off-3", dispatch_round=3).record_decline(NOON, "busy")
    offers = [first, second, declined]

    changes = order_assigned(offers, offer_id="off-2", at=LATER)
    assert changes is not None
    assert [(c.after.offer_id, c.after.status, c.after.reason) for c in changes] == [
        ("off-2", OfferStatus.ACCEPTED, None),
        ("off-1", OfferStatus.WITHDRAWN, ASSIGNED_ELSEWHERE),
    ]
    assert [c.withdrawn for c in changes] == [False, True]
    assert [(c.contractor_id, c.load) for c in changes] == [
        ("ctr-b", Load(open_offers=-1, open_jobs=1)),
        ("ctr-a", Load(open_offers=-1)),
    ]
    assert all(c.after.closed_at == LATER for c in changes)
    # Applied already (the same step again, under another event id): nothing left to change.
    assert order_assigned(applied(offers, changes), offer_id="off-2", at=LATER) == ()
    # An offer this service never made: nothing to do.
    assert order_assigned(offers, offer_id="off-9", at=LATER) is None
    assert order_assigned([], offer_id="off-1", at=LATER) is None


def test_declined_offer_is_declined_once_with_its_reason() -> None:
    offer = offer_to("ctr-a", "off-1")
    changes = offer_declined([offer], offer_id="off-1", at=LATER, reason="no technician free")
    assert changes is not None
    [change] = changes
    assert (change.after.status, change.after.reason) == (
        OfferStatus.DECLINED,
        "no technician free",
    )
    assert change.load == Load(open_offers=-1)
    assert not change.withdrawn
    assert offer_declined([change.after], offer_id="off-1", at=LATER, reason=None) == ()
    assert offer_declined([offer], offer_id="off-2", at=LATER, reason=None) is None


def test_cancelled_withdraws_open_offers_and_cancels_the_open_job() -> None:
    offers = [offer_to("ctr-a", "off-1"), offer_to("ctr-b", "off-2", dispatch_round=2)]
    changes = order_cancelled(offers, at=LATER)
    assert changes is not None
    assert [(c.after.offer_id, c.after.reason, c.load) for c in changes] == [
        ("off-1", ORDER_CANCELLED, Load(open_offers=-1)),
        ("off-2", ORDER_CANCELLED, Load(open_offers=-1)),
    ]
    assert all(c.withdrawn for c in changes)
    assert order_cancelled(applied(offers, changes), at=LATER) == ()

    assigned = applied(offers, order_assigned(offers, offer_id="off-1", at=NOON) or ())
    changes = order_cancelled(assigned, at=LATER)
    assert changes is not None
    [job] = changes
    assert (job.after.offer_id, job.after.status, job.after.job) == (
        "off-1",
        OfferStatus.ACCEPTED,
        JobStatus.CANCELLED,
    )
    assert job.load == Load(open_jobs=-1)
    assert not job.withdrawn
    assert order_cancelled([], at=LATER) is None


def test_completed_work_closes_the_job_once_and_reopening_opens_it_again() -> None:
    offers = [offer_to("ctr-a", "off-1")]
    assert work_completed(offers) is None  # never assigned here: no job known
    assigned = applied(offers, order_assigned(offers, offer_id="off-1", at=NOON) or ())

    completed = work_completed(assigned)
    assert completed is not None
    assert [c.load for c in completed] == [Load(open_jobs=-1)]
    done = applied(assigned, completed)
    assert work_completed(done) == ()  # completed again: the job is closed already
    assert order_reopened(assigned, contractor_id="ctr-a") == ()  # still open: nothing to do
    assert order_reopened(done, contractor_id="ctr-b") is None  # not that contractor's job

    reopened = order_reopened(done, contractor_id="ctr-a")
    assert reopened is not None
    assert [c.load for c in reopened] == [Load(open_jobs=1)]
    again = applied(done, reopened)
    assert order_reopened(again, contractor_id="ctr-a") == ()
    assert [c.load for c in work_completed(again) or ()] == [Load(open_jobs=-1)]


LIFECYCLE_STEPS = st.one_of(
    st.tuples(st.just("assigned"), st.integers(0, 3)),
    st.tuples(st.just("declined"), st.integers(0, 3)),
    st.tuples(st.just("cancelled"), st.just(0)),
    st.tuples(st.just("completed"), st.just(0)),
    st.tuples(st.just("reopened"), st.integers(0, 2)),
)


@settings(max_examples=300, deadline=None)
@given(
    contractors_of_offers=st.lists(st.integers(0, 2), min_size=1, max_size=4),
    steps=st.lists(LIFECYCLE_STEPS, max_size=12),
)
def test_counters_always_equal_what_the_offers_say(
    contractors_of_offers: list[int], steps: list[tuple[str, int]]
) -> None:
    """Whatever the orders service reports, in whatever order and however often, each
    contractor's counters moved by the changes equal the open offers and jobs its offers show,
    and an offer leaves the open state at most once."""
    offers = [
        offer_to(f"ctr-{c}", f"off-{i}", dispatch_round=i + 1)
        for i, c in enumerate(contractors_of_offers)
    ]
    counters = {f"ctr-{c}": Load() for c in range(3)}
    for offer in offers:
        counters[offer.contractor_id] = Load(
            counters[offer.contractor_id].open_offers + 1, counters[offer.contractor_id].open_jobs
        )
    left_open: dict[str, int] = {}
    for kind, n in steps:
        changes: Sequence[OfferChange] | None
        if kind == "assigned":
            changes = order_assigned(offers, offer_id=f"off-{n}", at=LATER)
        elif kind == "declined":
            changes = offer_declined(offers, offer_id=f"off-{n}", at=LATER, reason=None)
        elif kind == "cancelled":
            changes = order_cancelled(offers, at=LATER)
        elif kind == "completed":
            changes = work_completed(offers)
        else:
            changes = order_reopened(offers, contractor_id=f"ctr-{n}")
        for change in changes or ():
            assert change.before in offers  # computed from the offers as they are
            counters[change.contractor_id] = Load(
                counters[change.contractor_id].open_offers + change.load.open_offers,
                counters[change.contractor_id].open_jobs + change.load.open_jobs,
            )
            if change.before.is_open and not change.after.is_open:
                left_open[change.after.offer_id] = left_open.get(change.after.offer_id, 0) + 1
        offers = applied(offers, changes or ())
    for contractor_id, load in counters.items():
        mine = [o.load for o in offers if o.contractor_id == contractor_id]
        assert load == Load(sum(x.open_offers for x in mine), sum(x.open_jobs for x in mine)), (
            contractor_id
        )
        assert load.open_offers >= 0
        assert load.open_jobs >= 0
    assert all(times == 1 for times in left_open.values())
    assert sum(o.job is JobStatus.OPEN for o in offers) <= 1


# -- the lifecycle use cases, against the in-memory ledger ---------------------------------------


def lifecycle_facts(
    work_order_id: str, state: WorkOrderState, previous: WorkOrderState, **more: object
) -> dict[str, object]:
    return {
        "work_order_id": work_order_id,
        "external_id": f"EXT-{work_order_id}",
        "source_platform": "fieldhub",
        "state": state,
        "previous_state": previous,
        "occurred_at": LATER + timedelta(microseconds=654_321),
        "actor": Actor(kind=ActorKind.CONTRACTOR, id="ctr-b"),
        "via": "grpc",
        "version": 3,
        **more,
    }


LifecycleEvent = TypeVar("LifecycleEvent", WorkOrderAssigned, WorkOrderCancelled)


def lifecycle_event(payload: LifecycleEvent, tenant: str = "acme") -> Event[LifecycleEvent]:
    envelope = EventEnvelope.new(
        payload, source="orders", subject=payload.work_order_id, tenant=tenant
    )
    return Event(envelope, payload)


async def test_assigned_and_cancelled_through_the_use_case_in_memory(
    example_world: list[Contractor],
) -> None:
    store = MemoryStore("contractors")
    ledger = MemoryDispatchLedger(store)
    async with store.transaction() as uow:
        profiles = uow.session.collection("contractors")
        for c in example_world:
            profiles[c.contractor_id] = {"contractor": c, "open_offers": 0, "open_jobs": 0}
        tx = ledger.within(uow)
        for offer in (
            offer_to("ctr-berliner-klima", "off-1", work_order_id="wo-7"),
            offer_to("ctr-kaelte-nord", "off-2", work_order_id="wo-7", dispatch_round=2),
            offer_to("ctr-berliner-klima", "off-3", work_order_id="wo-8"),
        ):
            await tx.save_offer(
                offer,
                request(work_order_id=offer.work_order_id),
                Priority.NORMAL,
                correlationid="test",
            )
    tracker = AssignmentTracker(ledger)
    assert ledger.open_offers("ctr-berliner-klima") == 2

    assigned = lifecycle_event(
        WorkOrderAssigned.model_validate(
            lifecycle_facts(
                "wo-7",
                WorkOrderState.ASSIGNED,
                WorkOrderState.DISPATCHING,
                offer_id="off-2",
                contractor_id="ctr-kaelte-nord",
            )
        )
    )
    result = await apply_event(store, assigned, tracker.assigned)
    assert result is not None
    assert result.outcome is LifecycleOutcome.APPLIED
    assert result.withdrawn == ("off-1",)
    [(topic, key, payload)] = [(e.topic, e.key, e.payload) for e in store.outbox]
    assert (topic, key) == (Topic.CONTRACTORS_EVENTS, "wo-7")
    assert payload == AssignmentWithdrawn(
        work_order_id="wo-7",
        offer_id="off-1",
        contractor_id="ctr-berliner-klima",
        reason="assigned to another contractor",
        withdrawn_at=LATER + timedelta(microseconds=654_000),  # stored precision
    )
    assert (ledger.open_offers("ctr-berliner-klima"), ledger.open_jobs("ctr-berliner-klima")) == (
        1,
        0,
    )
    assert (ledger.open_offers("ctr-kaelte-nord"), ledger.open_jobs("ctr-kaelte-nord")) == (0, 1)
    accepted = ledger.offer("off-2")
    assert accepted is not None
    assert (accepted["status"], accepted["job"]) == ("accepted", "open")

    # The same event again is claimed already; the same step under a new event id changes nothing.
    before = copy.deepcopy(store.state)
    assert await apply_event(store, assigned, tracker.assigned) is None
    again = await apply_event(store, lifecycle_event(assigned.payload), tracker.assigned)
    assert again is not None
    assert again.outcome is LifecycleOutcome.UNCHANGED
    assert store.state.collections == before.collections
    assert len(store.outbox) == 1

    # Another tenant's event naming the order is not about any offer known here.
    foreign = lifecycle_event(assigned.payload, tenant="globex")
    unknown = await apply_event(store, foreign, tracker.assigned)
    assert unknown is not None
    assert unknown.outcome is LifecycleOutcome.UNKNOWN
    assert store.state.collections == before.collections

    cancelled = lifecycle_event(
        WorkOrderCancelled.model_validate(
            lifecycle_facts(
                "wo-7",
                WorkOrderState.CANCELLED,
                WorkOrderState.ASSIGNED,
                contractor_id="ctr-kaelte-nord",
            )
        )
    )
    result = await apply_event(store, cancelled, tracker.cancelled)
    assert result is not None
    assert result.withdrawn == ()  # off-1 was withdrawn already
    assert (ledger.open_offers("ctr-kaelte-nord"), ledger.open_jobs("ctr-kaelte-nord")) == (0, 0)
    assert len(store.outbox) == 1


# -- the contractor file: location, capacity, skill levels and rota ----------------------------

PROFILE_YAML = """\
contractors:
  - contractor_id: ctr-a
    name: A GmbH
    email: a@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac, elevator]
    regions: [{country: DE, postal_prefixes: ["10"]}]
    base_location: {latitude: 52.52, longitude: 13}
    max_concurrent_jobs: 6
    skill_levels: {hvac: 5, elevator: 1}
    rota:
      primary:
        windows:
          - {days: weekdays, from: "07:00", to: "19:00"}
          - {days: sat, from: "09:00", to: "13:00"}
        exceptions:
          - {date: 2026-12-25}
          - date: "2026-12-24"
            hours: [{from: "08:00", to: "12:00"}, {from: "20:00", to: "24:00"}]
      backup:
        windows:
          - {days: every_day, from: "19:00", to: "07:00"}
          - {days: [sun], from: "00:00", to: "00:00"}
          - {days: weekends, from: "13:00", to: "24:00"}
"""


def test_profile_fields_are_read_from_the_file() -> None:
    from fixloop_contractors.domain.model import GeoPoint
    from fixloop_contractors.domain.rota import (
        EVERY_DAY,
        WORKING_DAYS,
        DayException,
        OnCallRota,
        RotaLayer,
        Weekday,
        WeeklyWindow,
    )

    (parsed,) = parse_contractors(PROFILE_YAML)
    weekend = (Weekday.SATURDAY, Weekday.SUNDAY)
    expected = replace(
        contractor(skills=("hvac", "elevator")),
        name="A GmbH",
        email="a@example.com",
        base_location=GeoPoint(52.52, 13.0),
        max_concurrent_jobs=6,
        skill_levels=(("elevator", 1), ("hvac", 5)),
        rota=OnCallRota(
            primary=RotaLayer(
                windows=(
                    *WeeklyWindow.daily(time(7), time(19), WORKING_DAYS),
                    *WeeklyWindow.daily(time(9), time(13), (Weekday.SATURDAY,)),
                ),
                exceptions=(
                    DayException.off(date(2026, 12, 25)),
                    DayException(date(2026, 12, 24), ((time(8), time(12)), (time(20), time(0)))),
                ),
            ),
            backup=RotaLayer(
                windows=(
                    *WeeklyWindow.daily(time(19), time(7), EVERY_DAY),
                    *WeeklyWindow.daily(time(0), time(0), (Weekday.SUNDAY,)),
                    *WeeklyWindow.daily(time(13), time(0), weekend),
                )
            ),
        ),
    )
    assert parsed == expected
    assert parsed.skill_level("hvac") == 5
    assert parsed.base_location is not None
    assert parsed.base_location.latitude == 52.52

    # The same file written as JSON (dates as text) gives the same contractor.
    as_json = json.dumps(yaml.safe_load(PROFILE_YAML), default=str)
    assert parse_contractors(as_json, fmt="json") == [parsed]

    # The windows mean what the file says, on the contractor's wall clock.
    berlin = ZoneInfo("Europe/Berlin")
    rota = parsed.rota
    assert rota is not None

    def layer(day: date, hour: int, minute: int = 0) -> str | None:
        assert rota is not None
        local = datetime.combine(day, time(hour, minute), tzinfo=berlin)
        found = rota.on_call_at(local, berlin)
        return None if found is None else found.value

    assert layer(date(2026, 11, 23), 7) == "primary"  # Monday
    assert layer(date(2026, 11, 23), 6, 59) == "backup"  # the night before, past midnight
    assert layer(date(2026, 11, 21), 12) == "primary"  # Saturday morning hours
    assert layer(date(2026, 11, 21), 13, 30) == "backup"  # Saturday afternoon
    assert layer(date(2026, 11, 22), 12) == "backup"  # Sunday, 24 hours
    assert layer(date(2026, 12, 24), 10) == "primary"  # Christmas Eve: its own hours
    assert layer(date(2026, 12, 24), 14) is None  # a Thursday, but not in those hours
    assert layer(date(2026, 12, 24), 23) == "primary"  # 20:00 to the end of the day
    assert layer(date(2026, 12, 25), 10) is None  # off all day, and no backup by day


def test_profile_fields_are_optional_and_default_in_the_domain() -> None:
    (plain,) = parse_contractors(json.dumps({"contractors": [entry()]}), fmt="json")
    assert plain.base_location is None
    assert plain.max_concurrent_jobs is None
    assert plain.skill_levels == ()
    assert plain.skill_level("hvac") == 3
    assert plain.rota is None

    primary_only = entry(
        rota={"primary": {"windows": [{"days": "every_day", "from": "08:00", "to": "08:00"}]}},
    )
    explicit_null = entry(
        base_location=None,
        max_concurrent_jobs=None,
        rota={
            "primary": {"windows": [{"days": "every_day", "from": "08:00", "to": "08:00"}]},
            "backup": None,
        },
    )
    a, b = parse_contractors(
        json.dumps({"contractors": [primary_only, dict(explicit_null, contractor_id="ctr-b")]}),
        fmt="json",
    )
    assert a.rota is not None
    assert a.rota.backup is None
    assert a.rota == b.rota
    assert b.base_location is None
    # From equal to to: 24 hours from that time, every day.
    assert a.rota.on_call_at(NOON, ZoneInfo("Europe/Berlin")) is not None
    # A layer of exceptions only (on call on named dates) is allowed.
    (dated,) = parse_contractors(
        json.dumps(
            {
                "contractors": [
                    entry(
                        rota={
                            "primary": {
                                "windows": [],
                                "exceptions": [
                                    {
                                        "date": "2026-12-31",
                                        "hours": [{"from": "00:00", "to": "24:00"}],
                                    }
                                ],
                            }
                        }
                    )
                ]
            }
        ),
        fmt="json",
    )
    assert dated.rota is not None
    assert dated.rota.primary.windows == ()


PROFILE_MISTAKES_YAML = """\
contractors:
  - contractor_id: ctr-a
    name: A
    email: a@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
    base_location: {latitude: 91, longitude: "13.4", altitude: 30}
    max_concurrent_jobs: 0
    skill_levels: {hvac: 6, Plumbing: 2}
    rota:
      primary:
        windows:
          - {days: workdays, from: 19:00, to: "25:00"}
          - {days: [mon, mon, monday], from: "7:00", to: "08:00", note: x}
        exceptions:
          - {date: 2026-12-25, hours: [{from: "12:00", to: "08:00"}]}
          - {date: 2026-02-30}
          - {date: 2026-12-26T00:00:00Z}
      backup:
        windows: []
      standby: {windows: []}
  - contractor_id: ctr-b
    name: B
    email: b@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
    max_concurrent_jobs: 1001
    skill_levels: {hvac: "4", plumbing: 2, electrical: 1}
    rota:
      primary:
        windows: [{days: every_day, from: "08:00", to: "18:00"}]
        exceptions: [{date: 2026-12-25}, {date: 2026-12-26}, {date: 2026-12-25}]
  - contractor_id: ctr-c
    name: C
    email: c@example.com
    timezone: Europe/Berlin
    tenants: [acme]
    skills: [hvac]
    regions: [{country: DE}]
    max_concurrent_jobs: true
    skill_levels: {hvac: 2, plumbing: 2}
    rota: {backup: {windows: [{days: every_day, from: "00:00", to: "00:00"}]}}
"""


def test_profile_mistakes_are_refused_with_their_locations() -> None:
    assert problems_of(PROFILE_MISTAKES_YAML) == [
        "contractors[0].base_location.latitude: Input should be less than or equal to 90",
        "contractors[0].base_location.longitude: Input should be a valid number",
        "contractors[0].base_location.altitude: Extra inputs are not permitted",
        "contractors[0].max_concurrent_jobs: Input should be greater than or equal to 1",
        "contractors[0].skill_levels.hvac: Input should be less than or equal to 5",
        "contractors[0].skill_levels.Plumbing[key]: String should match pattern "
        "'^[a-z][a-z0-9_-]{1,39}$'",
        "contractors[0].rota.primary.windows[0].days: Input should be a list of days (mon, tue, "
        "wed, thu, fri, sat, sun) or one of 'weekdays', 'weekends', 'every_day'",
        'contractors[0].rota.primary.windows[0].from: Input should be a time written "HH:MM" in '
        "quotes (YAML read 19:00 as the number 1140)",
        'contractors[0].rota.primary.windows[0].to: Input should be a time written "HH:MM" '
        "(00:00 to 24:00)",
        "contractors[0].rota.primary.windows[1].days[2]: Input should be 'mon', 'tue', 'wed', "
        "'thu', 'fri', 'sat' or 'sun'",
        'contractors[0].rota.primary.windows[1].from: Input should be a time written "HH:MM" '
        "(00:00 to 23:59)",
        "contractors[0].rota.primary.windows[1].note: Extra inputs are not permitted",
        "contractors[0].rota.primary.exceptions[0].hours[0]: 'to' (08:00) should be after "
        """'from' (12:00) on the same day; write "24:00" for midnight at its end""",
        "contractors[0].rota.primary.exceptions[1].date: Input should be a valid date: "
        "day is out of range for month",
        "contractors[0].rota.primary.exceptions[2].date: Input should be a date (YYYY-MM-DD), "
        "not a date and time",
        "contractors[0].rota.backup: a rota layer needs at least one window or exception "
        "(it would never be on call)",
        "contractors[0].rota.standby: Extra inputs are not permitted",
        "contractors[1].max_concurrent_jobs: Input should be less than or equal to 1000",
        "contractors[1].skill_levels.hvac: Input should be a valid integer",
        "contractors[1].rota.primary.exceptions: 2026-12-25 is listed twice (exceptions[0] and "
        "exceptions[2]); give all of that day's hours in one entry",
        "contractors[2].max_concurrent_jobs: Input should be a valid integer",
        "contractors[2].skill_levels: 'plumbing' is not among its skills (hvac)",
        "contractors[2].rota.primary: Field required",
    ]


def test_profile_skill_levels_only_for_its_skills_and_days_listed_once() -> None:
    doc = {
        "contractors": [
            entry(skill_levels={"plumbing": 2, "electrical": 4, "hvac": 1}),
            entry(
                contractor_id="ctr-b",
                rota={
                    "primary": {
                        "windows": [{"days": ["sat", "sat"], "from": "08:00", "to": "09:00"}]
                    }
                },
            ),
        ]
    }
    assert problems_of(json.dumps(doc), fmt="json") == [
        "contractors[0].skill_levels: 'plumbing', 'electrical' are not among its skills (hvac)",
        "contractors[1].rota.primary.windows[0].days: 'sat' is listed twice",
    ]


def test_profile_list_sizes_are_bounded() -> None:
    from fixloop_contractors.adapters.contractor_file import (
        MAX_EXCEPTION_HOURS,
        MAX_ROTA_EXCEPTIONS,
        MAX_ROTA_WINDOWS,
    )

    def sized(windows: int, exceptions: int, hours: int, levels: int) -> str:
        window = {"days": "mon", "from": "08:00", "to": "09:00"}
        first = date(2026, 1, 1)
        rota = {
            "primary": {
                "windows": [window] * windows,
                "exceptions": [
                    {"date": (first + timedelta(days=i)).isoformat()} for i in range(exceptions)
                ],
            },
            "backup": {
                "windows": [window],
                "exceptions": [
                    {"date": "2026-12-24", "hours": [{"from": "08:00", "to": "09:00"}] * hours}
                ],
            },
        }
        skill_levels = {"hvac": 3, **{f"class-{i}": 3 for i in range(levels - 1)}}
        return json.dumps({"contractors": [entry(rota=rota, skill_levels=skill_levels)]})

    problems = problems_of(
        sized(MAX_ROTA_WINDOWS + 1, MAX_ROTA_EXCEPTIONS + 1, MAX_EXCEPTION_HOURS + 1, 51),
        fmt="json",
    )
    assert [p.split(": ", 1)[0] for p in problems] == [
        "contractors[0].skill_levels",
        "contractors[0].rota.primary.windows",
        "contractors[0].rota.primary.exceptions",
        "contractors[0].rota.backup.exceptions[0].hours",
    ]
    assert all("should have at most" in p for p in problems)

    # At the limits it is accepted (but for skill levels of classes that are not its skills).
    (parsed,) = parse_contractors(
        sized(MAX_ROTA_WINDOWS, MAX_ROTA_EXCEPTIONS, MAX_EXCEPTION_HOURS, 1), fmt="json"
    )
    assert parsed.rota is not None
    assert len(parsed.rota.primary.exceptions) == MAX_ROTA_EXCEPTIONS
    assert parsed.skill_levels == (("hvac", 3),)


def test_example_file_carries_profiles_for_lift_go_and_thamesfix(
    example_world: list[Contractor],
) -> None:
    from fixloop_contractors.domain.rota import OnCall

    by_id = {c.contractor_id: c for c in example_world}
    lift, thames = by_id["ctr-lift-go"], by_id["ctr-thamesfix"]
    assert lift.base_location is not None
    assert lift.max_concurrent_jobs == 6
    assert lift.rota is not None
    assert lift.rota.backup is not None
    berlin, london = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/London")
    # Lift & Go: office hours on weekdays, its emergency service at night and at weekends.
    assert lift.rota.on_call_at(datetime(2026, 11, 23, 9, tzinfo=berlin), berlin) is OnCall.PRIMARY
    assert lift.rota.on_call_at(datetime(2026, 11, 23, 22, tzinfo=berlin), berlin) is OnCall.BACKUP
    assert lift.rota.on_call_at(NOON, berlin) is OnCall.BACKUP  # a Saturday
    assert thames.skill_levels == (("electrical", 3), ("hvac", 4), ("plumbing", 5))
    assert thames.rota is not None
    # ThamesFix: office hours on weekdays, closed on Christmas Day, 24-hour call-out behind it.
    workday = datetime(2026, 12, 24, 10, tzinfo=london)
    christmas = datetime(2026, 12, 25, 10, tzinfo=london)
    assert thames.rota.on_call_at(workday, london) is OnCall.PRIMARY
    assert thames.rota.on_call_at(christmas, london) is OnCall.BACKUP
    assert thames.rota.primary.has_exception(date(2026, 12, 25))
    assert thames.rota.primary.has_exception(date(2026, 12, 26))
    # The other contractors state none of it.
    others = [c for c in example_world if c.contractor_id not in {"ctr-lift-go", "ctr-thamesfix"}]
    assert all(c.rota is None and c.base_location is None for c in others)
