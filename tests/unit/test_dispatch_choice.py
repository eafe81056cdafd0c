"""The dispatch choice without I/O: on-call rotas across daylight-saving changes and holidays,
capacity, the tenant's preferred and blocked contractors, declines, travel distance, the score
and its explanation, and properties of the ranking over random contractor pools."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_contractors.domain.dispatch import (
    Assessment,
    Candidate,
    ContractorChosen,
    DispatchRanking,
    DispatchRequest,
    EligibilityRule,
    NoEligibleContractor,
    RankedCandidate,
    TenantPreferences,
    assess,
    choose_contractor,
    rank_candidates,
)
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    GeoPoint,
    ServiceRegion,
    zone,
)
from fixloop_contractors.domain.rota import (
    WORKING_DAYS,
    DayException,
    OnCall,
    OnCallRota,
    RotaLayer,
    WallClock,
    Weekday,
    WeeklyWindow,
)
from fixloop_contractors.domain.scoring import (
    NEUTRAL_SCORECARD,
    ScoreWeights,
    TravelBasis,
    skill_score,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOON = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday: 13:00 in Berlin
SITE = GeoPoint(52.5200, 13.4050)  # Berlin Mitte

WORKING_HOURS = RotaLayer(WeeklyWindow.daily(time(8), time(18), WORKING_DAYS))
SATURDAY_NIGHT = RotaLayer(WeeklyWindow.daily(time(22), time(6), [Weekday.SATURDAY]))


def contractor(
    contractor_id: str = "ctr-a",
    *,
    timezone: str = "Europe/Berlin",
    regions: Sequence[ServiceRegion] = (ServiceRegion("DE", ("10",)),),
    credentials: Sequence[Credential] = (),
    base: GeoPoint | None = None,
    capacity: int | None = None,
    skill_levels: Sequence[tuple[str, int]] = (),
    rota: OnCallRota | None = None,
) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name=contractor_id.upper(),
        email=f"{contractor_id}@example.com",
        timezone=timezone,
        tenants=frozenset({"acme"}),
        skills=frozenset({"hvac"}),
        regions=tuple(regions),
        credentials=tuple(credentials),
        base_location=base,
        max_concurrent_jobs=capacity,
        skill_levels=tuple(skill_levels),
        rota=rota,
    )


def request(
    *,
    site: GeoPoint | None = SITE,
    postal_code: str = "10115",
    expected_duration: timedelta = timedelta(0),
) -> DispatchRequest:
    return DispatchRequest(
        work_order_id="wo-1",
        tenant="acme",
        equipment_class="hvac",
        country="DE",
        postal_code=postal_code,
        site_location=site,
        expected_duration=expected_duration,
    )


def east_of_site(km: float) -> GeoPoint:
    """A base ``km`` due east of the site (near enough along the parallel)."""
    return GeoPoint(SITE.latitude, SITE.longitude + km / (111.32 * 0.6088))


def ranked_ids(ranking: DispatchRanking) -> list[str]:
    return [entry.contractor_id for entry in ranking.ranked]


def layer_at(rota: OnCallRota, moment: datetime, timezone: str = "Europe/Berlin") -> OnCall | None:
    return rota.on_call_at(moment, ZoneInfo(timezone))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- on-call rotas on the local wall clock ------------------------------------------------------


def test_daily_windows_run_past_midnight_and_round_the_week() -> None:
    (night,) = WeeklyWindow.daily(time(22), time(6), [Weekday.SUNDAY])
    assert (night.start_day, night.end_day) == (Weekday.SUNDAY, Weekday.MONDAY)
    sunday_2330 = 6 * 86400 + 23 * 3600 + 1800
    monday_0530 = 5 * 3600 + 1800
    assert night.contains(sunday_2330)
    assert night.contains(monday_0530)
    assert not night.contains(monday_0530 + 3600)
    assert WeeklyWindow.whole_week().contains(0)
    assert WeeklyWindow.whole_week().contains(7 * 86400 - 1)
    (full_day,) = WeeklyWindow.daily(time(7), time(7), [Weekday.TUESDAY])
    assert full_day.contains(86400 + 7 * 3600)
    assert full_day.contains(2 * 86400 + 7 * 3600 - 1)
    assert not full_day.contains(2 * 86400 + 7 * 3600)
    with pytest.raises(ValueError, match="wall-clock"):
        WeeklyWindow(Weekday.MONDAY, time(8, tzinfo=UTC), Weekday.MONDAY, time(9))


def test_working_hours_follow_the_local_clock_across_the_march_change() -> None:
    """Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on Sunday 29 March 2026."""
    rota = OnCallRota(WORKING_HOURS)
    # Friday before: 06:15 UTC is 07:15 in Berlin; Monday after: 06:15 UTC is 08:15 in Berlin.
    assert layer_at(rota, utc(2026, 3, 27, 6, 15)) is None
    assert layer_at(rota, utc(2026, 3, 27, 7, 0)) is OnCall.PRIMARY
    assert layer_at(rota, utc(2026, 3, 30, 6, 15)) is OnCall.PRIMARY
    assert layer_at(rota, utc(2026, 3, 30, 15, 59)) is OnCall.PRIMARY  # 17:59
    assert layer_at(rota, utc(2026, 3, 30, 16, 0)) is None  # 18:00


def test_a_night_window_spanning_the_spring_change_is_an_hour_shorter() -> None:
    rota = OnCallRota(WORKING_HOURS, backup=SATURDAY_NIGHT)
    assert layer_at(rota, utc(2026, 3, 28, 20, 59)) is None  # Sat 21:59 CET
    assert layer_at(rota, utc(2026, 3, 28, 21, 0)) is OnCall.BACKUP  # Sat 22:00 CET
    assert layer_at(rota, utc(2026, 3, 29, 1, 30)) is OnCall.BACKUP  # Sun 03:30 CEST
    assert layer_at(rota, utc(2026, 3, 29, 3, 59)) is OnCall.BACKUP  # Sun 05:59 CEST
    assert layer_at(rota, utc(2026, 3, 29, 4, 0)) is None  # Sun 06:00 CEST (05:00 on CET)


def test_the_october_change_keeps_the_wall_clock_too() -> None:
    """Berlin moves from UTC+2 back to UTC+1 at 01:00 UTC on Sunday 25 October 2026."""
    rota = OnCallRota(WORKING_HOURS, backup=SATURDAY_NIGHT)
    assert layer_at(rota, utc(2026, 10, 23, 6, 15)) is OnCall.PRIMARY  # Fri 08:15 CEST
    assert layer_at(rota, utc(2026, 10, 26, 6, 15)) is None  # Mon 07:15 CET
    assert layer_at(rota, utc(2026, 10, 26, 7, 15)) is OnCall.PRIMARY  # Mon 08:15 CET
    assert layer_at(rota, utc(2026, 10, 25, 0, 30)) is OnCall.BACKUP  # Sun 02:30 CEST
    assert layer_at(rota, utc(2026, 10, 25, 1, 30)) is OnCall.BACKUP  # Sun 02:30 CET again
    assert layer_at(rota, utc(2026, 10, 25, 4, 59)) is OnCall.BACKUP  # Sun 05:59 CET
    assert layer_at(rota, utc(2026, 10, 25, 5, 0)) is None  # Sun 06:00 CET (07:00 on CEST)


def test_the_rota_decides_eligibility_across_the_change() -> None:
    weekdays = contractor(rota=OnCallRota(WORKING_HOURS))
    before = assess(weekdays, request(), utc(2026, 3, 30, 5, 30))  # Mon 07:30 CEST
    assert before.failed_rules == (EligibilityRule.ROTA,)
    assert before.reasons == ("not on call at Mon 2026-03-30 07:30 Europe/Berlin",)
    assert assess(weekdays, request(), utc(2026, 3, 30, 6, 30)).eligible  # 08:30 CEST


def test_a_holiday_exception_hands_the_day_to_the_backup_layer() -> None:
    christmas = date(2026, 12, 25)  # a Friday
    primary = RotaLayer(WORKING_HOURS.windows, (DayException.off(christmas),))
    emergency = RotaLayer((WeeklyWindow.whole_week(),))
    with_backup = contractor("ctr-a", rota=OnCallRota(primary, backup=emergency))
    office_only = contractor("ctr-b", rota=OnCallRota(primary))
    christmas_morning = utc(2026, 12, 25, 9, 0)  # 10:00 in Berlin
    ranking = rank_candidates(
        request(), [Candidate(with_backup), Candidate(office_only)], christmas_morning
    )
    assert [(e.contractor_id, e.on_call) for e in ranking.ranked] == [("ctr-a", OnCall.BACKUP)]
    assert ranking.ranked[0].score.on_call == 0.0
    (excluded,) = ranking.excluded
    assert excluded.reasons == (
        "not on call at Fri 2026-12-25 10:00 Europe/Berlin (an exception day in its rota)",
    )
    # The day before is an ordinary Thursday.
    eve = rank_candidates(request(), [Candidate(with_backup)], utc(2026, 12, 24, 9, 0))
    assert eve.ranked[0].on_call is OnCall.PRIMARY


def test_exception_hours_replace_the_weekly_windows_on_the_contractors_own_date() -> None:
    new_years_eve = date(2026, 12, 31)
    short_day = RotaLayer(
        WORKING_HOURS.windows, (DayException(new_years_eve, ((time(8), time(12)),)),)
    )
    rota = OnCallRota(short_day)
    assert layer_at(rota, utc(2026, 12, 31, 10, 59)) is OnCall.PRIMARY  # 11:59 CET
    assert layer_at(rota, utc(2026, 12, 31, 11, 0)) is None  # 12:00 CET
    # Midday UTC on 30 December is already 31 December in Auckland: the exception applies there.
    assert layer_at(rota, utc(2026, 12, 30, 23, 30), "Pacific/Auckland") is None  # 12:30 NZDT
    assert layer_at(rota, utc(2026, 12, 30, 19, 0), "Pacific/Auckland") is OnCall.PRIMARY
    assert DayException.all_day(new_years_eve).spans == ((0, 86400),)
    with pytest.raises(ValueError, match="before they start"):
        DayException(new_years_eve, ((time(12), time(8)),))
    with pytest.raises(ValueError, match="two exceptions"):
        RotaLayer((), (DayException.off(new_years_eve), DayException.off(new_years_eve)))


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis attaches the zone
        max_value=datetime(2027, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    timezone=st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
    ),
)
def test_working_hours_match_the_local_clock(moment: datetime, timezone: str) -> None:
    """Monday to Friday 08:00-18:00 on call iff the zone's own clock says so; 7x24 always."""
    local = moment.astimezone(ZoneInfo(timezone))
    expected = local.weekday() < 5 and 8 <= local.hour < 18
    on_call = layer_at(OnCallRota(WORKING_HOURS), moment, timezone)
    assert (on_call is OnCall.PRIMARY) is expected
    assert layer_at(OnCallRota.around_the_clock(), moment, timezone) is OnCall.PRIMARY
    clock = WallClock.of(moment, ZoneInfo(timezone))
    assert clock.day == local.date()
    assert WORKING_HOURS.on_call(clock) is expected
    assert any(w.contains(clock.second_of_week) for w in WORKING_HOURS.windows) is expected


# -- capacity, declines, the tenant's preferences ------------------------------------------------


def test_capacity_counts_open_jobs_and_open_offers() -> None:
    subject = contractor(capacity=3)
    full = assess(subject, request(), NOON, open_jobs=2, open_offers=1)
    assert full.failed_rules == (EligibilityRule.CAPACITY,)
    assert full.reasons == ("at capacity: 2 open jobs and 1 open offer, at most 3 at a time",)
    assert assess(subject, request(), NOON, open_jobs=2).eligible
    assert not assess(contractor(capacity=0), request(), NOON).eligible
    # The load component is the share of capacity still free.
    (entry,) = rank_candidates(request(), [Candidate(subject, open_jobs=2)], NOON).ranked
    assert entry.score.load == pytest.approx(1 / 3)


def test_declined_and_blocked_contractors_are_never_offered_the_order() -> None:
    pool = [Candidate(contractor(cid)) for cid in ("ctr-a", "ctr-b", "ctr-c")]
    preferences = TenantPreferences(
        preferred=frozenset({"ctr-b", "ctr-c"}), blocked=frozenset({"ctr-b"})
    )
    ranking = rank_candidates(
        request(), pool, NOON, declined={"ctr-a"}, preferences=preferences, fan_out=3
    )
    assert ranked_ids(ranking) == ["ctr-c"]
    assert [(a.contractor_id, a.reasons) for a in ranking.excluded] == [
        ("ctr-a", ("had an offer of this work order already (declined or no answer)",)),
        ("ctr-b", ("blocked by tenant acme",)),
    ]
    assert ranking.excluded[1].failed_rules == (EligibilityRule.BLOCKED,)


def test_a_preferred_contractor_gets_the_bonus() -> None:
    pool = [Candidate(contractor(cid)) for cid in ("ctr-a", "ctr-b")]
    assert ranked_ids(rank_candidates(request(), pool, NOON)) == ["ctr-a", "ctr-b"]
    preferred = TenantPreferences(preferred=frozenset({"ctr-b"}))
    ranking = rank_candidates(request(), pool, NOON, preferences=preferred)
    assert ranked_ids(ranking) == ["ctr-b", "ctr-a"]
    best, other = ranking.ranked
    assert best.preferred
    assert best.total - other.total == pytest.approx(ranking.weights.preference)


# -- travel, skill, scorecard ---------------------------------------------------------------------


def test_great_circle_distance() -> None:
    munich = GeoPoint(48.1351, 11.5820)
    assert SITE.distance_km(munich) == pytest.approx(504, abs=3)
    assert SITE.distance_km(SITE) == 0.0
    assert east_of_site(20).distance_km(SITE) == pytest.approx(20, rel=0.01)
    with pytest.raises(ValueError, match="no place on Earth"):
        GeoPoint(91.0, 0.0)


def test_nearer_contractors_rank_higher() -> None:
    pool = [
        Candidate(contractor("ctr-a", base=east_of_site(80))),
        Candidate(contractor("ctr-b", base=east_of_site(5))),
        Candidate(contractor("ctr-c", base=east_of_site(20))),
    ]
    ranking = rank_candidates(request(), pool, NOON, fan_out=2)
    assert ranked_ids(ranking) == ["ctr-b", "ctr-c", "ctr-a"]
    assert [round(e.travel_km) for e in ranking.ranked] == [5, 20, 80]
    assert {e.travel_basis for e in ranking.ranked} == {TravelBasis.GREAT_CIRCLE}
    assert [e.contractor_id for e in ranking.offered] == ["ctr-b", "ctr-c"]
    assert ranking.ranked[1].score.travel == pytest.approx(25 / (25 + 20), rel=0.01)


def test_without_coordinates_travel_is_judged_by_postal_prefix() -> None:
    local = contractor("ctr-z", regions=[ServiceRegion("DE", ("101",))], base=east_of_site(30))
    wide = contractor("ctr-a", regions=[ServiceRegion("DE", ("1",))])
    # No site coordinates: both by postal prefix, the longer prefix nearer.
    ranking = rank_candidates(request(site=None), [Candidate(wide), Candidate(local)], NOON)
    weights = ranking.weights
    assert [(e.contractor_id, e.travel_basis, e.travel_km) for e in ranking.ranked] == [
        ("ctr-z", TravelBasis.POSTAL_PREFIX, weights.postal_estimate_km(3)),
        ("ctr-a", TravelBasis.POSTAL_PREFIX, weights.postal_estimate_km(1)),
    ]
    # With them, the contractor with a base is measured, the other still estimated.
    measured = rank_candidates(request(), [Candidate(wide), Candidate(local)], NOON)
    by_id = {e.contractor_id: e for e in measured.ranked}
    assert by_id["ctr-z"].travel_basis is TravelBasis.GREAT_CIRCLE
    assert by_id["ctr-z"].travel_km == pytest.approx(30, rel=0.01)
    assert by_id["ctr-a"].travel_basis is TravelBasis.POSTAL_PREFIX


def test_skill_level_and_scorecard_move_a_contractor_up() -> None:
    pool = [
        Candidate(contractor("ctr-a", skill_levels=[("hvac", 1)])),
        Candidate(contractor("ctr-b")),
        Candidate(contractor("ctr-c", skill_levels=[("hvac", 5)])),
    ]
    ranking = rank_candidates(request(), pool, NOON)
    assert ranked_ids(ranking) == ["ctr-c", "ctr-b", "ctr-a"]
    assert [e.skill_level for e in ranking.ranked] == [5, 3, 1]
    assert [e.score.skill for e in ranking.ranked] == [1.0, 0.5, 0.0]
    rated = [
        Candidate(contractor("ctr-a"), scorecard=0.1),
        Candidate(contractor("ctr-b")),
        Candidate(contractor("ctr-c"), scorecard=0.9),
    ]
    ranking = rank_candidates(request(), rated, NOON)
    assert ranked_ids(ranking) == ["ctr-c", "ctr-b", "ctr-a"]
    assert ranking.ranked[1].score.scorecard == NEUTRAL_SCORECARD
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        Candidate(contractor(), scorecard=1.5)
    with pytest.raises(ValueError, match="not a skill"):
        contractor(skill_levels=[("elevator", 3)])


def test_weights_are_validated_and_make_the_total() -> None:
    with pytest.raises(ValueError, match="negative"):
        ScoreWeights(travel=-1.0)
    with pytest.raises(ValueError, match="scales"):
        ScoreWeights(travel_scale_km=0.0)
    travel_only = ScoreWeights(load=0, skill=0, scorecard=0, preference=0, on_call=0)
    pool = [
        Candidate(contractor("ctr-a", base=east_of_site(10)), open_offers=8),
        Candidate(contractor("ctr-b", base=east_of_site(40))),
    ]
    assert ranked_ids(rank_candidates(request(), pool, NOON, weights=travel_only)) == [
        "ctr-a",
        "ctr-b",
    ]
    load_only = ScoreWeights(travel=0, skill=0, scorecard=0, preference=0, on_call=0)
    assert ranked_ids(rank_candidates(request(), pool, NOON, weights=load_only)) == [
        "ctr-b",
        "ctr-a",
    ]


# -- credentials for the whole job ----------------------------------------------------------------


def test_credentials_must_last_the_whole_expected_job_in_local_days() -> None:
    licence = Credential(CredentialKind.TRADE_LICENCE, "TL-1", date(2026, 11, 18))
    berlin = contractor(credentials=[licence])
    # 13:00 in Berlin; 8 hours end the same local day, 12 hours end on the next.
    assert assess(berlin, request(expected_duration=timedelta(hours=8)), NOON).eligible
    late = assess(berlin, request(expected_duration=timedelta(hours=12)), NOON)
    assert late.failed_rules == (EligibilityRule.CREDENTIALS,)
    assert late.reasons == (
        "trade licence TL-1 expires on 2026-11-18, before the job's expected end on 2026-11-19",
    )
    # In New York the same 12 hours end at 19:00 on the 18th.
    new_york = replace(berlin, timezone="America/New_York")
    assert assess(new_york, request(expected_duration=timedelta(hours=12)), NOON).eligible


# -- the decision and its explanation ------------------------------------------------------------


def test_every_candidate_is_explained_once_with_its_score_or_its_reasons() -> None:
    pool = [
        Candidate(contractor("ctr-near", base=east_of_site(3))),
        Candidate(contractor("ctr-far", base=east_of_site(60))),
        Candidate(contractor("ctr-full", capacity=1), open_jobs=1),
        Candidate(contractor("ctr-away", regions=[ServiceRegion("AT")])),
    ]
    decision = choose_contractor(request(), pool, NOON)
    assert isinstance(decision, ContractorChosen)
    assert decision.contractor.contractor_id == "ctr-near"
    ranking = decision.ranking
    assert decision.score == ranking.ranked[0].score
    assert ranking.assessed_count == 4
    assert sorted(ranking.contractor_ids) == sorted(c.contractor.contractor_id for c in pool)
    assert ranking.rank_of("ctr-far") == 2
    assert ranking.rank_of("ctr-full") is None
    near = ranking.outcome_of("ctr-near")
    assert not isinstance(near, Assessment)
    assert near is not None
    assert near.score.total == pytest.approx(ranking.weights.total(**near.score.components()))
    away = ranking.outcome_of("ctr-away")
    assert isinstance(away, Assessment)
    assert away.reasons == ("does not cover DE-10115 (covers AT (whole country))",)
    assert ranking.outcome_of("ctr-nobody") is None
    assert "best='ctr-near'" in repr(ranking)


def test_fan_out_offers_the_top_k_at_once() -> None:
    pool = [Candidate(contractor(f"ctr-{i}", base=east_of_site(i + 1))) for i in range(6)]
    ranking = rank_candidates(request(), pool, NOON, fan_out=4)
    assert [e.contractor_id for e in ranking.offered] == ["ctr-0", "ctr-1", "ctr-2", "ctr-3"]
    assert ranking.offered == ranking.top(4) == ranking.ranked[:4]
    assert ranking.top(10) == ranking.ranked
    assert ranking.best == ranking.ranked[0]
    with pytest.raises(ValueError, match="at least one"):
        rank_candidates(request(), pool, NOON, fan_out=0)


def test_bad_inputs_are_refused() -> None:
    twice = [Candidate(contractor("ctr-a")), Candidate(contractor("ctr-a"))]
    with pytest.raises(ValueError, match="more than once"):
        rank_candidates(request(), twice, NOON)
    with pytest.raises(ValueError, match="aware"):
        rank_candidates(request(), [], NOON.replace(tzinfo=None))
    with pytest.raises(ValueError, match="negative"):
        request(expected_duration=timedelta(hours=-1))


def test_unfilled_reason_names_what_excludes_the_covering_contractors() -> None:
    full = Candidate(contractor("ctr-full", capacity=1), open_offers=1)
    asleep = Candidate(contractor("ctr-asleep", rota=OnCallRota(SATURDAY_NIGHT)))
    only_full = choose_contractor(request(), [full], NOON)
    assert isinstance(only_full, NoEligibleContractor)
    assert only_full.reason.endswith(": the only contractor covering the site is at capacity")
    both = choose_contractor(request(), [full, asleep], NOON)
    assert isinstance(both, NoEligibleContractor)
    assert both.reason.endswith(
        ": all 2 contractors covering the site are excluded (1 at capacity, 1 not on call)"
    )
    assert both.ranking.eligible_count == 0
    assert {a.contractor_id for a in both.considered} == {"ctr-full", "ctr-asleep"}


def test_time_zones_are_built_once_however_many_contractors_share_them() -> None:
    zones = [
        "Europe/Berlin",
        "Europe/London",
        "Europe/Helsinki",
        "Asia/Dubai",
        "Asia/Kolkata",
        "Asia/Tokyo",
        "Australia/Sydney",
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
    ]
    pool = [
        Candidate(contractor(f"ctr-{i:03d}", timezone=zones[i % len(zones)])) for i in range(200)
    ]
    rank_candidates(request(), pool, NOON)
    before = zone.cache_info()
    rank_candidates(request(), pool, NOON + timedelta(hours=1))
    after = zone.cache_info()
    assert after.misses == before.misses
    assert after.hits - before.hits == len(zones)  # once per zone and decision, not per contractor


# -- properties over random pools -----------------------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "Europe/Helsinki",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Pacific/Auckland",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
]
TENANTS = ["acme", "globex"]
SKILLS = ["hvac", "elevator"]
BASE_DAY = date(2026, 3, 28)  # the weekend Berlin changes to summer time
HOLIDAY = date(2026, 3, 30)

rotas = st.sampled_from(
    [
        None,
        OnCallRota.around_the_clock(),
        OnCallRota(WORKING_HOURS),
        OnCallRota(WORKING_HOURS, backup=SATURDAY_NIGHT),
        OnCallRota(
            RotaLayer(WORKING_HOURS.windows, (DayException.off(HOLIDAY),)),
            backup=RotaLayer((WeeklyWindow.whole_week(),)),
        ),
        OnCallRota(RotaLayer(WeeklyWindow.daily(time(20), time(8)), (DayException.off(HOLIDAY),))),
    ]
)
points = st.builds(
    GeoPoint,
    latitude=st.floats(52.0, 53.0, allow_nan=False),
    longitude=st.floats(13.0, 14.0, allow_nan=False),
)
located = st.one_of(points, points, st.none())


@st.composite
def candidate_pools(draw: st.DrawFn) -> list[Candidate]:
    """Contractors that each fail any of the rules, or (half of them) only the rules that depend
    on the moment, the load and the tenant's lists."""
    ids = draw(st.lists(st.sampled_from([f"ctr-{i:02d}" for i in range(14)]), unique=True))
    pool = []
    for cid in ids:
        fit = draw(st.booleans())
        skills = SKILLS if fit else draw(st.sets(st.sampled_from(SKILLS), min_size=1))
        tenants = TENANTS if fit else draw(st.sets(st.sampled_from(TENANTS), min_size=1))
        prefixes = ["1", "10"] if fit else ["1", "10", "101", "2"]
        subject = Contractor(
            contractor_id=cid,
            name=cid,
            email=f"{cid}@example.com",
            timezone=draw(st.sampled_from(ZONES)),
            tenants=frozenset(tenants),
            skills=frozenset(skills),
            regions=(
                ServiceRegion(
                    "DE" if fit else draw(st.sampled_from(["DE", "AT"])),
                    tuple(draw(st.lists(st.sampled_from(prefixes), max_size=2))),
                ),
            ),
            credentials=tuple(
                Credential(CredentialKind.TRADE_LICENCE, "TL", day)
                for day in draw(
                    st.lists(
                        st.dates(BASE_DAY - timedelta(days=2), BASE_DAY + timedelta(days=9)),
                        max_size=2,
                    )
                )
            ),
            base_location=draw(located),
            max_concurrent_jobs=draw(st.none() | st.integers(0, 5)),
            skill_levels=tuple(
                (skill, draw(st.integers(1, 5))) for skill in sorted(skills) if draw(st.booleans())
            ),
            rota=draw(rotas),
        )
        pool.append(
            Candidate(
                subject,
                open_offers=draw(st.integers(0, 2)),
                open_jobs=draw(st.integers(0, 3)),
                scorecard=draw(st.none() | st.floats(0.0, 1.0, allow_nan=False)),
            )
        )
    return pool


requests_strategy = st.builds(
    DispatchRequest,
    work_order_id=st.just("wo-p"),
    tenant=st.sampled_from(TENANTS),
    equipment_class=st.sampled_from(SKILLS),
    country=st.sampled_from(["DE", "DE", "DE", "AT"]),
    postal_code=st.sampled_from(["10115", "10243", "10117", "12043", "20095", "1010"]),
    site_location=located,
    expected_duration=st.sampled_from([timedelta(0), timedelta(hours=4), timedelta(hours=30)]),
)
moments = st.datetimes(
    min_value=datetime(2026, 3, 27),  # noqa: DTZ001 - hypothesis attaches the zone
    max_value=datetime(2026, 4, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def decisions(
    draw: st.DrawFn,
) -> tuple[list[Candidate], DispatchRequest, datetime, frozenset[str], TenantPreferences]:
    pool = draw(candidate_pools())
    ids = [c.contractor.contractor_id for c in pool]
    some = st.sets(st.sampled_from(ids), max_size=2) if ids else st.just(set[str]())
    return (
        pool,
        draw(requests_strategy),
        draw(moments),
        frozenset(draw(some)),
        TenantPreferences(preferred=frozenset(draw(some)), blocked=frozenset(draw(some))),
    )


Decision = tuple[list[Candidate], DispatchRequest, datetime, frozenset[str], TenantPreferences]


def assessed_alone(
    candidate: Candidate,
    order: DispatchRequest,
    at: datetime,
    declined: frozenset[str],
    preferences: TenantPreferences,
) -> Assessment:
    return assess(
        candidate.contractor,
        order,
        at,
        open_offers=candidate.open_offers,
        open_jobs=candidate.open_jobs,
        declined=declined,
        preferences=preferences,
    )


@settings(max_examples=120, deadline=None)
@given(decision=decisions(), fan_out=st.integers(1, 4))
def test_never_an_ineligible_contractor_ranked_or_offered(decision: Decision, fan_out: int) -> None:
    pool, order, at, declined, preferences = decision
    ranking = rank_candidates(
        order, pool, at, declined=declined, preferences=preferences, fan_out=fan_out
    )
    by_id = {c.contractor.contractor_id: c for c in pool}
    for entry in ranking.ranked:
        alone = assessed_alone(by_id[entry.contractor_id], order, at, declined, preferences)
        assert alone.eligible
        assert alone.on_call is entry.on_call
        assert alone.match_length == entry.match_length
        assert entry.contractor_id not in declined
        assert entry.contractor_id not in preferences.blocked
        capacity = entry.contractor.max_concurrent_jobs
        assert capacity is None or entry.candidate.load < capacity
    for assessment in ranking.excluded:
        alone = assessed_alone(by_id[assessment.contractor_id], order, at, declined, preferences)
        assert assessment == alone
        assert not assessment.eligible
        assert assessment.failed_rules
        assert len(assessment.reasons) >= len(assessment.failed_rules)
    assert set(ranking.offered) <= set(ranking.ranked)
    assert ranking.offered == ranking.ranked[:fan_out]


@settings(max_examples=120, deadline=None)
@given(decision=decisions())
def test_the_explanation_covers_every_candidate_exactly_once(decision: Decision) -> None:
    pool, order, at, declined, preferences = decision
    ranking = rank_candidates(order, pool, at, declined=declined, preferences=preferences)
    explained = [e.contractor_id for e in ranking.ranked] + [
        a.contractor_id for a in ranking.excluded
    ]
    assert sorted(explained) == sorted(c.contractor.contractor_id for c in pool)
    assert len(set(explained)) == len(explained) == ranking.assessed_count
    assert list(ranking.contractor_ids) == explained
    # Best first, equal totals by contractor id; each total is its weighted components.
    keys = [(-e.total, e.contractor_id) for e in ranking.ranked]
    assert keys == sorted(keys)
    weights = ranking.weights
    for entry in ranking.ranked:
        components = entry.score.components()
        assert all(0.0 <= value <= 1.0 for value in components.values())
        assert entry.total == weights.total(**components)
        capacity = entry.contractor.max_concurrent_jobs
        assert entry.score.travel == pytest.approx(weights.travel_score(entry.travel_km))
        assert entry.score.load == pytest.approx(weights.load_score(entry.candidate.load, capacity))
        assert entry.score.skill == skill_score(entry.contractor.skill_level(order.equipment_class))
        assert entry.score.preference == (
            1.0 if entry.contractor_id in preferences.preferred else 0.0
        )
        site, base = order.site_location, entry.contractor.base_location
        if site is not None and base is not None:
            assert entry.travel_basis is TravelBasis.GREAT_CIRCLE
            assert entry.travel_km == pytest.approx(site.distance_km(base))
        else:
            assert entry.travel_km == weights.postal_estimate_km(entry.match_length)
    decided = choose_contractor(order, pool, at, declined=declined, preferences=preferences)
    if ranking.ranked:
        assert isinstance(decided, ContractorChosen)
        assert decided.contractor == ranking.ranked[0].contractor
    else:
        assert isinstance(decided, NoEligibleContractor)
        assert decided.considered_total == len(pool)


@settings(max_examples=100, deadline=None)
@given(decision=decisions(), seed=st.integers(), fan_out=st.integers(1, 3))
def test_same_inputs_in_any_order_give_the_same_choice(
    decision: Decision, seed: int, fan_out: int
) -> None:
    pool, order, at, declined, preferences = decision
    shuffled = list(pool)
    random.Random(seed).shuffle(shuffled)
    first = rank_candidates(
        order, pool, at, declined=declined, preferences=preferences, fan_out=fan_out
    )
    second = rank_candidates(
        order, shuffled, at, declined=declined, preferences=preferences, fan_out=fan_out
    )
    assert first == second
    assert hash(first) == hash(second)
    assert first.ranked == second.ranked
    assert first.excluded == second.excluded
    assert first.offered == second.offered
    assert choose_contractor(order, pool, at, declined=declined, preferences=preferences) == (
        choose_contractor(order, shuffled, at, declined=declined, preferences=preferences)
    )


# -- the choice against a reference ranking -------------------------------------------------------
#
# A decision scores only the candidates that might be among the best it offers and puts the others
# aside unscored; the whole ranking scores those when asked for. The properties below hold that
# the offer, `top(k)` and the whole ranking are what scoring every eligible contractor from the
# definitions and sorting gives, to the last bit of every total.

ReferenceEntry = tuple[str, float, dict[str, float], float, TravelBasis, OnCall, int, int]


def reference_ranking(
    pool: Sequence[Candidate],
    order: DispatchRequest,
    at: datetime,
    declined: frozenset[str],
    preferences: TenantPreferences,
    *,
    weights: ScoreWeights,
) -> list[ReferenceEntry]:
    """Each candidate assessed on its own, each eligible one scored as the scoring module defines
    the components, best first (highest total, then contractor id)."""
    site = order.site_location
    entries: list[ReferenceEntry] = []
    for candidate in pool:
        subject = candidate.contractor
        alone = assessed_alone(candidate, order, at, declined, preferences)
        if not alone.eligible:
            continue
        assert alone.match_length is not None
        assert alone.on_call is not None
        base = subject.base_location
        if site is not None and base is not None:
            km, basis = site.distance_km(base), TravelBasis.GREAT_CIRCLE
        else:
            km, basis = weights.postal_estimate_km(alone.match_length), TravelBasis.POSTAL_PREFIX
        level = subject.skill_level(order.equipment_class)
        components = {
            "travel": weights.travel_score(km),
            "load": weights.load_score(candidate.load, subject.max_concurrent_jobs),
            "skill": skill_score(level),
            "scorecard": NEUTRAL_SCORECARD if candidate.scorecard is None else candidate.scorecard,
            "preference": 1.0 if subject.contractor_id in preferences.preferred else 0.0,
            "on_call": 1.0 if alone.on_call is OnCall.PRIMARY else 0.0,
        }
        total = weights.total(**components)
        entries.append(
            (subject.contractor_id, total, components, km, basis, alone.on_call,
             alone.match_length, level)
        )  # fmt: skip
    return sorted(entries, key=lambda e: (-e[1], e[0]))


def as_reference(entries: Sequence[RankedCandidate]) -> list[ReferenceEntry]:
    return [
        (e.contractor_id, e.total, e.score.components(), e.travel_km, e.travel_basis, e.on_call,
         e.match_length, e.skill_level)
        for e in entries
    ]  # fmt: skip


component_weights = st.one_of(st.just(0.0), st.floats(0.0, 3.0, allow_nan=False))
weights_strategy = st.one_of(
    st.just(ScoreWeights()),
    st.builds(
        ScoreWeights,
        travel=component_weights,
        load=component_weights,
        skill=component_weights,
        scorecard=component_weights,
        preference=component_weights,
        on_call=component_weights,
        travel_scale_km=st.floats(1.0, 100.0),
        load_scale=st.floats(1.5, 5.0),
        postal_prefix_km=st.lists(st.floats(0.0, 400.0), min_size=1, max_size=6).map(tuple),
    ),
)


@st.composite
def crowded_decisions(draw: st.DrawFn) -> tuple[Decision, ScoreWeights]:
    """Up to 40 contractors, most of them fit for the order, in the order they are drawn: many
    compete for the offer, and some tie."""
    size = draw(st.integers(0, 40))
    numbers = draw(st.permutations(range(size)))
    pool = []
    for number in numbers:
        cid = f"ctr-{number:02d}"
        fit = draw(st.integers(0, 4)) > 0
        skills = SKILLS if fit else draw(st.sets(st.sampled_from(SKILLS), min_size=1))
        tenants = TENANTS if fit else draw(st.sets(st.sampled_from(TENANTS), min_size=1))
        subject = Contractor(
            contractor_id=cid,
            name=cid,
            email=f"{cid}@example.com",
            timezone=draw(st.sampled_from(ZONES)),
            tenants=frozenset(tenants),
            skills=frozenset(skills),
            regions=(
                ServiceRegion(
                    "DE",
                    tuple(draw(st.lists(st.sampled_from(["1", "10", "101", "2"]), max_size=2))),
                ),
            ),
            credentials=tuple(
                Credential(CredentialKind.TRADE_LICENCE, "TL", day)
                for day in draw(
                    st.lists(
                        st.dates(BASE_DAY - timedelta(days=2), BASE_DAY + timedelta(days=30)),
                        max_size=2,
                    )
                )
            ),
            base_location=draw(located),
            max_concurrent_jobs=draw(st.none() | st.integers(0, 6)),
            skill_levels=tuple(
                (skill, draw(st.integers(1, 5))) for skill in sorted(skills) if draw(st.booleans())
            ),
            rota=draw(rotas),
        )
        pool.append(
            Candidate(
                subject,
                open_offers=draw(st.integers(0, 2)),
                # -1 is no count of jobs, but nothing refuses it: it makes a load component above 1
                open_jobs=draw(st.integers(-1, 4)),
                scorecard=draw(st.none() | st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 1.0)),
            )
        )
    ids = [c.contractor.contractor_id for c in pool]
    some = st.sets(st.sampled_from(ids), max_size=4) if ids else st.just(set[str]())
    order = draw(requests_strategy.filter(lambda r: r.country == "DE"))
    preferences = TenantPreferences(preferred=frozenset(draw(some)), blocked=frozenset(draw(some)))
    decision = (pool, order, draw(moments), frozenset(draw(some)), preferences)
    return decision, draw(weights_strategy)


@settings(max_examples=60, deadline=None)
@given(world=crowded_decisions(), fan_out=st.integers(1, 4), k=st.integers(0, 8))
def test_the_choice_is_the_head_of_a_reference_ranking(
    world: tuple[Decision, ScoreWeights], fan_out: int, k: int
) -> None:
    (pool, order, at, declined, preferences), weights = world
    expected = reference_ranking(pool, order, at, declined, preferences, weights=weights)

    def decide() -> DispatchRanking:
        return rank_candidates(
            order,
            pool,
            at,
            declined=declined,
            preferences=preferences,
            weights=weights,
            fan_out=fan_out,
        )

    # Each asked of a fresh decision, before anything else of it.
    assert as_reference(decide().offered) == expected[:fan_out]
    assert as_reference(decide().top(k)) == expected[:k]
    assert decide().eligible_count == len(expected)
    ranking = decide()
    assert as_reference(ranking.ranked) == expected
    assert as_reference(ranking.top(k)) == expected[:k]
    assert ranking.assessed_count == len(pool)
    assert [a.contractor_id for a in ranking.excluded] == sorted(
        {c.contractor.contractor_id for c in pool} - {e[0] for e in expected}
    )
    chosen = choose_contractor(
        order, pool, at, declined=declined, preferences=preferences, weights=weights
    )
    if expected:
        assert isinstance(chosen, ContractorChosen)
        assert chosen.contractor.contractor_id == expected[0][0]
        assert chosen.score.total == expected[0][1]
        assert as_reference(chosen.ranking.top(fan_out)) == expected[:fan_out]
        assert chosen.eligible_count == len(expected)
        at_once = choose_contractor(
            order,
            pool,
            at,
            declined=declined,
            preferences=preferences,
            weights=weights,
            fan_out=fan_out,
        )
        assert as_reference(at_once.ranking.offered) == expected[:fan_out]
    else:
        assert isinstance(chosen, NoEligibleContractor)


@settings(max_examples=100, deadline=None)
@given(decision=decisions(), k=st.integers(1, 6), fan_out=st.integers(1, 4))
def test_top_k_is_the_head_of_the_whole_ranking(decision: Decision, k: int, fan_out: int) -> None:
    pool, order, at, declined, preferences = decision

    def decide() -> DispatchRanking:
        return rank_candidates(
            order, pool, at, declined=declined, preferences=preferences, fan_out=fan_out
        )

    whole = decide().ranked
    assert decide().top(k) == whole[:k]
    assert decide().offered == whole[:fan_out]
    first = decide()
    assert first.offered == whole[:fan_out]
    assert first.top(k) == whole[:k]
    assert first.ranked == whole


def random_pool(rng: random.Random, size: int) -> list[Candidate]:
    """A region's worth of contractors around the site, as a registry holds them."""
    pool = []
    for number in rng.sample(range(size), size):
        cid = f"ctr-{number:04d}"
        skills = frozenset(rng.sample(SKILLS, rng.randint(1, 2)))
        capacity = rng.choice([None, 1, 2, 4, 8, 12])
        subject = Contractor(
            contractor_id=cid,
            name=cid,
            email=f"{cid}@example.com",
            timezone=rng.choice(ZONES),
            tenants=frozenset(rng.sample(TENANTS, rng.randint(1, 2))),
            skills=skills,
            regions=(
                ServiceRegion("DE", tuple(rng.sample(["1", "10", "101", "12"], rng.randint(0, 2)))),
            ),
            credentials=(
                Credential(
                    CredentialKind.TRADE_LICENCE,
                    f"TL-{number}",
                    BASE_DAY + timedelta(days=rng.randint(-3, 60)),
                ),
            ),
            base_location=None
            if rng.random() < 0.1
            else GeoPoint(
                SITE.latitude + rng.uniform(-0.5, 0.5), SITE.longitude + rng.uniform(-0.8, 0.8)
            ),
            max_concurrent_jobs=capacity,
            skill_levels=tuple(
                (s, rng.randint(1, 5)) for s in sorted(skills) if rng.random() < 0.6
            ),
            rota=rng.choice(
                [
                    None,
                    OnCallRota(WORKING_HOURS),
                    OnCallRota(WORKING_HOURS, backup=SATURDAY_NIGHT),
                    OnCallRota(
                        RotaLayer(WORKING_HOURS.windows, (DayException.off(HOLIDAY),)),
                        backup=RotaLayer((WeeklyWindow.whole_week(),)),
                    ),
                ]
            ),
        )
        pool.append(
            Candidate(
                subject,
                open_offers=rng.randint(0, 1),
                open_jobs=rng.randint(0, capacity or 6),
                scorecard=None if rng.random() < 0.3 else round(rng.random(), 2),
            )
        )
    return pool


@pytest.mark.parametrize("seed", range(6))
def test_a_region_of_contractors_gets_the_reference_choice(seed: int) -> None:
    rng = random.Random(seed)
    pool = random_pool(rng, 600)
    ids = [c.contractor.contractor_id for c in pool]
    for _ in range(4):
        order = DispatchRequest(
            work_order_id="wo-r",
            tenant=rng.choice(TENANTS),
            equipment_class=rng.choice(SKILLS),
            country="DE",
            postal_code=rng.choice(["10115", "10243", "12043", "13347"]),
            site_location=None if rng.random() < 0.2 else SITE,
            expected_duration=timedelta(hours=rng.choice([1, 8, 30])),
        )
        at = datetime(2026, 3, 27, tzinfo=UTC) + timedelta(minutes=rng.randrange(5 * 24 * 60))
        declined = frozenset(rng.sample(ids, 5))
        preferences = TenantPreferences(
            preferred=frozenset(rng.sample(ids, 30)), blocked=frozenset(rng.sample(ids, 10))
        )
        expected = reference_ranking(pool, order, at, declined, preferences, weights=ScoreWeights())
        for fan_out in (1, 3):
            ranking = rank_candidates(
                order, pool, at, declined=declined, preferences=preferences, fan_out=fan_out
            )
            assert as_reference(ranking.offered) == expected[:fan_out]
            # More of the head than the decision offered: what it put aside is sifted again.
            assert as_reference(ranking.top(2)) == expected[:2]
            assert as_reference(ranking.top(6)) == expected[:6]
            assert as_reference(ranking.ranked) == expected


@pytest.mark.parametrize("base", [None, east_of_site(4)])
def test_equal_totals_go_to_the_smallest_contractor_ids_whatever_the_order(
    base: GeoPoint | None,
) -> None:
    # Judged by postal prefix, a contractor's bound is its very total: a tie with the best so far
    # must still be scored.
    twins = [Candidate(contractor(f"ctr-{i:02d}", base=base)) for i in range(40)]
    random.Random(7).shuffle(twins)
    ranking = rank_candidates(request(), twins, NOON, fan_out=3)
    assert [e.contractor_id for e in ranking.offered] == ["ctr-00", "ctr-01", "ctr-02"]
    assert len({e.total for e in ranking.ranked}) == 1
    assert ranked_ids(ranking) == sorted(c.contractor.contractor_id for c in twins)
    chosen = choose_contractor(request(), twins, NOON)
    assert isinstance(chosen, ContractorChosen)
    assert chosen.contractor.contractor_id == "ctr-00"
    assert chosen.eligible_count == 40
