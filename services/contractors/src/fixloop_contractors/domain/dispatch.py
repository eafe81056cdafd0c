"""Dispatch decisions: which contractors may take a work order, and in what order it is offered.

A contractor is eligible for an order at the decision moment when it

1. serves the order's tenant,
2. has the order's equipment class among its skills,
3. covers the site: one of its regions is the site's country and either names no postal prefixes
   (the whole country) or has a prefix the site's postal code starts with,
4. holds no credential that is expired on any of its own calendar days (in its time zone) from
   the decision moment to the job's expected end; a credential expiring on day D is valid
   through D,
5. has capacity left: its open jobs plus open offers are below its maximum of concurrent jobs,
6. is on call in its rota, primary or backup layer, at the decision moment on its own wall clock,
7. has not had an offer of this order already (declined it, or let it run out), and
8. is not blocked by the tenant.

The eligible contractors are ranked by score (:mod:`fixloop_contractors.domain.scoring`), highest
first, equal scores by contractor id: the same facts always give the same ranking, whatever order
the candidates come in. The ranking (:class:`DispatchRanking`) keeps every contractor assessed:
the eligible ones with their score components, the others with every reason they were excluded.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

from fixloop_contractors.domain.model import (
    DEFAULT_SKILL_LEVEL,
    EARTH_RADIUS_KM,
    MAX_SKILL_LEVEL,
    MIN_SKILL_LEVEL,
    Contractor,
    GeoPoint,
    normalize_postal_code,
    zone,
)
from fixloop_contractors.domain.rota import OnCall, WallClock
from fixloop_contractors.domain.scoring import (
    NEUTRAL_SCORECARD,
    Score,
    ScoreWeights,
    TravelBasis,
)

MAX_REASONS_PER_CONTRACTOR = 20
"""At most this many reasons are kept per rejected contractor (the wire contract's bound)."""

DEFAULT_CONSIDERED_LIMIT = 100
"""At most this many rejected contractors are reported with an unfilled decision."""

DEFAULT_WEIGHTS = ScoreWeights()

_MAX_TEXT = 500


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What the dispatch decision needs to know about a work order."""

    work_order_id: str
    tenant: str
    equipment_class: str
    country: str
    postal_code: str
    site_location: GeoPoint | None = None
    """The site's coordinates; without them travel is judged by postal prefix."""
    expected_duration: timedelta = timedelta(0)
    """How long the job is expected to take: credentials must stay valid throughout."""

    def __post_init__(self) -> None:
        if self.expected_duration < timedelta(0):
            msg = f"a job cannot take a negative time: {self.expected_duration}"
            raise ValueError(msg)

    @property
    def site_label(self) -> str:
        """The site as people write it: ``DE-10115``, ``GB-SW1A 1AA``."""
        return f"{self.country}-{' '.join(self.postal_code.upper().split())}"


@dataclass(frozen=True, slots=True)
class TenantPreferences:
    """A tenant's say in who does its work: preferred contractors score higher, blocked ones are
    never offered it (blocked wins over preferred)."""

    preferred: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()


NO_PREFERENCES = TenantPreferences()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A contractor as the dispatcher sees it: its profile, its current load and its scorecard."""

    contractor: Contractor
    open_offers: int = 0
    open_jobs: int = 0
    scorecard: float | None = None
    """Measured quality, 0..1 (None: not measured yet, counted as neutral)."""

    def __post_init__(self) -> None:
        if self.scorecard is not None and not 0.0 <= self.scorecard <= 1.0:
            msg = f"{self.contractor.contractor_id}: scorecard {self.scorecard} is outside 0..1"
            raise ValueError(msg)

    @property
    def load(self) -> int:
        """Open jobs plus open offers: what counts against its capacity."""
        return self.open_offers + self.open_jobs


class EligibilityRule(StrEnum):
    """The rules a contractor must all pass to be offered an order."""

    TENANT = "tenant"
    SKILL = "skill"
    REGION = "region"
    CREDENTIALS = "credentials"
    CAPACITY = "capacity"
    ROTA = "rota"
    DECLINED = "declined"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class Assessment:
    """Whether one contractor may take the order, and if not, every reason why not."""

    contractor_id: str
    serves_tenant: bool
    has_skill: bool
    match_length: int | None
    credentials_valid: bool
    reasons: tuple[str, ...]
    within_capacity: bool = True
    on_call: OnCall | None = OnCall.PRIMARY
    """The rota layer it is on call in at the decision moment (None: off call)."""
    declined: bool = False
    """It had an offer of this order already (declined it, or let it run out)."""
    blocked: bool = False
    """The tenant blocked it."""

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def covers_site(self) -> bool:
        return self.match_length is not None

    @property
    def failed_rules(self) -> tuple[EligibilityRule, ...]:
        """The rules it fails, in the order of :class:`EligibilityRule`."""
        passed = (
            (EligibilityRule.TENANT, self.serves_tenant),
            (EligibilityRule.SKILL, self.has_skill),
            (EligibilityRule.REGION, self.covers_site),
            (EligibilityRule.CREDENTIALS, self.credentials_valid),
            (EligibilityRule.CAPACITY, self.within_capacity),
            (EligibilityRule.ROTA, self.on_call is not None),
            (EligibilityRule.DECLINED, not self.declined),
            (EligibilityRule.BLOCKED, not self.blocked),
        )
        return tuple(rule for rule, ok in passed if not ok)

    @property
    def failed_criteria(self) -> int:
        """How many of the rules fail."""
        return len(self.failed_rules)


class RankedCandidate(NamedTuple):
    """An eligible contractor in a ranking: its score and the facts the score was made of."""

    candidate: Candidate
    score: Score
    travel_km: float
    """Great-circle distance from its base to the site, or the estimate for its postal prefix."""
    travel_basis: TravelBasis
    on_call: OnCall
    match_length: int
    """Length of its most specific postal prefix covering the site (0: whole country)."""
    skill_level: int
    preferred: bool

    @property
    def contractor(self) -> Contractor:
        return self.candidate.contractor

    @property
    def contractor_id(self) -> str:
        return self.candidate.contractor.contractor_id

    @property
    def total(self) -> float:
        return self.score.total


_Row = tuple[
    float, str, Candidate, float, float, float, float, float, float, float, TravelBasis, OnCall,
    int, int,
]  # fmt: skip
"""An eligible candidate as a decision keeps it: (-total, contractor id, candidate, the six score
components, travel km, travel basis, rota layer, match length, skill level). Rows sort best first
by plain tuple order, as contractor ids are unique."""


def _entry(row: _Row) -> RankedCandidate:
    (neg_total, _, candidate, travel, load, skill, scorecard, preference, primary, km, basis,
     on_call, match_length, level) = row  # fmt: skip
    score = Score(-neg_total, travel, load, skill, scorecard, preference, primary)
    preferred = preference == 1.0
    return RankedCandidate(candidate, score, km, basis, on_call, match_length, level, preferred)


class _LocalTime(NamedTuple):
    """The decision as a contractor's time zone sees it."""

    first_day: date
    """Its calendar day at the decision moment."""
    last_day: date
    """Its calendar day at the job's expected end."""
    wall: WallClock
    """Its wall clock at the decision moment."""


def _regions_text(contractor: Contractor, limit: int = 160) -> str:
    return _clip("; ".join(r.describe() for r in contractor.regions) or "nothing", limit)


class _Screen:
    """The eligibility rules for one work order at one moment, with what is worked out once per
    decision: the site's postal code in normal form, and each time zone's dates and wall clock.

    :meth:`check` works through every rule for one contractor and says why it fails;
    :func:`_rank_pass` applies the same rules to every candidate, stopping at the first that
    fails.
    """

    __slots__ = (
        "at",
        "blocked",
        "code",
        "country",
        "declined",
        "end",
        "equipment_class",
        "local_times",
        "request",
        "tenant",
    )

    def __init__(
        self,
        request: DispatchRequest,
        at: datetime,
        declined: Collection[str],
        preferences: TenantPreferences,
    ) -> None:
        if at.tzinfo is None or at.utcoffset() is None:
            msg = f"a dispatch decision needs an aware moment, not {at}"
            raise ValueError(msg)
        self.request = request
        self.tenant = request.tenant
        self.equipment_class = request.equipment_class
        self.country = request.country
        self.at = at
        self.end = at + request.expected_duration
        self.code = normalize_postal_code(request.postal_code)
        self.declined = declined if isinstance(declined, frozenset) else frozenset(declined)
        self.blocked = preferences.blocked
        self.local_times: dict[str, _LocalTime] = {}

    def local_time(self, timezone: str) -> _LocalTime:
        local = self.local_times.get(timezone)
        if local is None:
            tz = zone(timezone)
            start = self.at.astimezone(tz)
            last_day = self.end.astimezone(tz).date()
            local = _LocalTime(start.date(), last_day, WallClock.reading(start))
            self.local_times[timezone] = local
        return local

    def check(self, candidate: Candidate) -> Assessment:
        """Every rule for one contractor, and the reason for each that fails."""
        request = self.request
        contractor = candidate.contractor
        contractor_id = contractor.contractor_id
        local = self.local_time(contractor.timezone)
        match_length = contractor.site_match(request.country, self.code)
        capacity = contractor.max_concurrent_jobs
        rota = contractor.rota
        assessment = Assessment(
            contractor_id=contractor_id,
            serves_tenant=request.tenant in contractor.tenants,
            has_skill=request.equipment_class in contractor.skills,
            match_length=match_length,
            credentials_valid=all(
                local.last_day <= credential.expires_on for credential in contractor.credentials
            ),
            reasons=(),
            within_capacity=capacity is None or candidate.load < capacity,
            on_call=OnCall.PRIMARY if rota is None else rota.layer_at(local.wall),
            declined=contractor_id in self.declined,
            blocked=contractor_id in self.blocked,
        )
        if not assessment.failed_rules:
            return assessment
        return replace(assessment, reasons=self._reasons(candidate, local, assessment))

    def _reasons(
        self, candidate: Candidate, local: _LocalTime, assessment: Assessment
    ) -> tuple[str, ...]:
        request, contractor = self.request, candidate.contractor
        reasons: list[str] = []
        if not assessment.serves_tenant:
            reasons.append(f"does not serve tenant {request.tenant}")
        if not assessment.has_skill:
            reasons.append(f"has no skill for equipment class '{request.equipment_class}'")
        if not assessment.covers_site:
            reasons.append(
                f"does not cover {request.site_label} (covers {_regions_text(contractor)})"
            )
        for credential in contractor.credentials:
            if local.first_day > credential.expires_on:
                reasons.append(f"{credential.label} expired on {credential.expires_on.isoformat()}")
            elif local.last_day > credential.expires_on:
                reasons.append(
                    f"{credential.label} expires on {credential.expires_on.isoformat()}, before "
                    f"the job's expected end on {local.last_day.isoformat()}"
                )
        if not assessment.within_capacity:
            jobs = _plural(candidate.open_jobs, "open job", "open jobs")
            offers = _plural(candidate.open_offers, "open offer", "open offers")
            reasons.append(
                f"at capacity: {jobs} and {offers}, "
                f"at most {contractor.max_concurrent_jobs} at a time"
            )
        if assessment.on_call is None:
            rota = contractor.rota
            exception = rota is not None and any(
                layer.has_exception(local.wall.day)
                for layer in (rota.primary, rota.backup)
                if layer is not None
            )
            reasons.append(
                f"not on call at {local.wall.describe()} {contractor.timezone}"
                + (" (an exception day in its rota)" if exception else "")
            )
        if assessment.declined:
            reasons.append("had an offer of this work order already (declined or no answer)")
        if assessment.blocked:
            reasons.append(f"blocked by tenant {request.tenant}")
        return tuple(_clip(r) for r in reasons[:MAX_REASONS_PER_CONTRACTOR])


def assess(
    contractor: Contractor,
    request: DispatchRequest,
    at: datetime,
    *,
    open_offers: int = 0,
    open_jobs: int = 0,
    declined: Collection[str] = (),
    preferences: TenantPreferences = NO_PREFERENCES,
) -> Assessment:
    """Check every eligibility rule for one contractor at the decision moment ``at``."""
    screen = _Screen(request, at, declined, preferences)
    return screen.check(Candidate(contractor, open_offers=open_offers, open_jobs=open_jobs))


def _rank_pass(
    screen: _Screen,
    candidates: Iterable[Candidate],
    preferences: TenantPreferences,
    weights: ScoreWeights,
) -> tuple[list[_Row], list[Candidate], int]:
    """One pass over the candidates: the eligible ones scored, as rows, the others, and how many
    contractors there were (fewer than candidates if one came twice).

    This runs for every candidate of every decision, so the rules (as :meth:`_Screen.check`
    states them, stopping at the first that fails) and the score components (as
    :class:`ScoreWeights` and :func:`skill_score` define them) are written out in the loop, with
    the decision's facts bound once; no call per candidate but the rota's.
    """
    tenant, equipment_class, country, code = (
        screen.tenant,
        screen.equipment_class,
        screen.country,
        screen.code,
    )
    declined, blocked, preferred, local_times, local_time = (
        screen.declined,
        screen.blocked,
        preferences.preferred,
        screen.local_times,
        screen.local_time,
    )
    w_travel, w_load, w_skill, w_scorecard, w_preference, w_on_call = weights.component_weights
    travel_scale, load_scale, postal_km = (
        weights.travel_scale_km,
        weights.load_scale,
        weights.postal_prefix_km,
    )
    longest, level_span = len(postal_km) - 1, MAX_SKILL_LEVEL - MIN_SKILL_LEVEL
    site = screen.request.site_location
    site_lat, site_lon, site_cos = (0.0, 0.0, 0.0) if site is None else site.radians
    sin, asin, sqrt = math.sin, math.asin, math.sqrt
    great_circle, postal_prefix, primary_layer = (
        TravelBasis.GREAT_CIRCLE,
        TravelBasis.POSTAL_PREFIX,
        OnCall.PRIMARY,
    )
    rows: list[_Row] = []
    excluded: list[Candidate] = []
    seen: set[str] = set()
    for candidate in candidates:
        contractor = candidate.contractor
        contractor_id = contractor.contractor_id
        seen.add(contractor_id)
        # The rules.
        capacity, load_now = (
            contractor.max_concurrent_jobs,
            candidate.open_offers + candidate.open_jobs,
        )
        covered = contractor.coverage.get(country)
        if (
            covered is None
            or tenant not in contractor.tenants
            or equipment_class not in contractor.skills
            or contractor_id in declined
            or contractor_id in blocked
            or (capacity is not None and load_now >= capacity)
        ):
            excluded.append(candidate)
            continue
        whole, prefixes = covered  # as Contractor.site_match
        match_length = 0 if whole else -1
        for prefix in prefixes:
            if code.startswith(prefix):
                match_length = len(prefix)
                break
        local = local_times.get(contractor.timezone) or local_time(contractor.timezone)
        valid_through, rota = contractor.credentials_valid_through, contractor.rota
        on_call = primary_layer if rota is None else rota.layer_at(local.wall)
        if (
            match_length < 0
            or (valid_through is not None and local.last_day > valid_through)
            or on_call is None
        ):
            excluded.append(candidate)
            continue
        # The score.
        base = contractor.base_location
        if site is None or base is None:
            km = postal_km[match_length if match_length < longest else longest]
            basis = postal_prefix
        else:  # haversine, as GeoPoint.distance_km
            lat, lon, cos_lat = base.radians
            h = sin((lat - site_lat) / 2) ** 2 + site_cos * cos_lat * sin((lon - site_lon) / 2) ** 2
            km = 2 * EARTH_RADIUS_KM * asin(sqrt(h) if h < 1.0 else 1.0)
            basis = great_circle
        level = contractor.level_by_class.get(equipment_class, DEFAULT_SKILL_LEVEL)
        travel = travel_scale / (travel_scale + km)
        # An eligible contractor is below its capacity.
        load = 1.0 - load_now / capacity if capacity else load_scale / (load_scale + load_now)
        skill = (level - MIN_SKILL_LEVEL) / level_span
        scorecard = NEUTRAL_SCORECARD if candidate.scorecard is None else candidate.scorecard
        preference = 1.0 if contractor_id in preferred else 0.0
        primary = 1.0 if on_call is primary_layer else 0.0
        total = (
            w_travel * travel
            + w_load * load
            + w_skill * skill
            + w_scorecard * scorecard
            + w_preference * preference
            + w_on_call * primary
        )
        rows.append(
            (
                -total,
                contractor_id,
                candidate,
                travel,
                load,
                skill,
                scorecard,
                preference,
                primary,
                km,
                basis,
                on_call,
                match_length,
                level,
            )
        )
    return rows, excluded, len(seen)


class DispatchRanking:
    """Every contractor assessed for one work order at one moment.

    ``ranked`` holds the eligible ones, best first (highest total, then smallest contractor id),
    each with its score components; ``excluded`` the others by contractor id, each with every
    reason it was excluded. Each contractor assessed is in exactly one of the two. ``offered`` is
    the head of the ranking the order goes to at once: one contractor, or ``fan_out`` for an
    emergency.

    A decision keeps its eligible candidates as compact rows and its excluded ones as they came,
    and works out no more than the offer needs; ``ranked`` and ``excluded`` are spelt out from
    them (from the same inputs, so the same every time) when first asked for. Two rankings are
    equal when they say the same.
    """

    __slots__ = (
        "_excluded",
        "_excluded_candidates",
        "_offered",
        "_ranked",
        "_rows",
        "_sorted",
        "decided_at",
        "declined",
        "fan_out",
        "preferences",
        "request",
        "weights",
    )

    def __init__(
        self,
        *,
        request: DispatchRequest,
        decided_at: datetime,
        weights: ScoreWeights,
        fan_out: int,
        declined: frozenset[str],
        preferences: TenantPreferences,
        rows: Sequence[_Row],
        excluded_candidates: Sequence[Candidate],
    ) -> None:
        self.request = request
        self.decided_at = decided_at
        self.weights = weights
        self.fan_out = fan_out
        self.declined = declined
        self.preferences = preferences
        self._rows = rows
        self._excluded_candidates = excluded_candidates
        self._sorted: Sequence[_Row] | None = None
        self._offered: tuple[RankedCandidate, ...] | None = None
        self._ranked: tuple[RankedCandidate, ...] | None = None
        self._excluded: tuple[Assessment, ...] | None = None

    @property
    def work_order_id(self) -> str:
        return self.request.work_order_id

    def _best_first(self) -> Sequence[_Row]:
        if self._sorted is None:
            self._sorted = sorted(self._rows)
        return self._sorted

    @property
    def ranked(self) -> tuple[RankedCandidate, ...]:
        if self._ranked is None:
            self._ranked = tuple(_entry(row) for row in self._best_first())
        return self._ranked

    @property
    def excluded(self) -> tuple[Assessment, ...]:
        if self._excluded is None:
            screen = _Screen(self.request, self.decided_at, self.declined, self.preferences)
            assessments = sorted(
                (screen.check(c) for c in self._excluded_candidates),
                key=attrgetter("contractor_id"),
            )
            if any(a.eligible for a in assessments):
                msg = "a contractor excluded from the ranking passes every rule"
                raise AssertionError(msg)
            self._excluded = tuple(assessments)
        return self._excluded

    def top(self, k: int) -> tuple[RankedCandidate, ...]:
        """The ``k`` best eligible contractors (fewer if fewer are eligible)."""
        k = max(0, k)
        if self._sorted is not None:
            return tuple(_entry(row) for row in self._sorted[:k])
        if k == 1 and self._rows:
            return (_entry(min(self._rows)),)
        return tuple(_entry(row) for row in heapq.nsmallest(k, self._rows))

    @property
    def offered(self) -> tuple[RankedCandidate, ...]:
        if self._offered is None:
            self._offered = self.top(self.fan_out)
        return self._offered

    @property
    def best(self) -> RankedCandidate | None:
        offered = self.offered
        return offered[0] if offered else None

    @property
    def contractor_ids(self) -> tuple[str, ...]:
        """Every contractor assessed: the ranked ones best first, then the excluded ones."""
        return tuple(row[1] for row in self._best_first()) + tuple(
            sorted(c.contractor.contractor_id for c in self._excluded_candidates)
        )

    @property
    def eligible_count(self) -> int:
        return len(self._rows)

    @property
    def assessed_count(self) -> int:
        return len(self._rows) + len(self._excluded_candidates)

    def rank_of(self, contractor_id: str) -> int | None:
        """1 for the best eligible contractor, and so on (None: not eligible or not assessed)."""
        for position, row in enumerate(self._best_first(), start=1):
            if row[1] == contractor_id:
                return position
        return None

    def outcome_of(self, contractor_id: str) -> RankedCandidate | Assessment | None:
        """The contractor's place in the ranking, or why it was excluded (None: not assessed)."""
        for row in self._rows:
            if row[1] == contractor_id:
                return _entry(row)
        for candidate in self._excluded_candidates:
            if candidate.contractor.contractor_id == contractor_id:
                screen = _Screen(self.request, self.decided_at, self.declined, self.preferences)
                return screen.check(candidate)
        return None

    def _inputs(self) -> tuple[object, ...]:
        return (
            self.request,
            self.decided_at,
            self.weights,
            self.fan_out,
            self.declined,
            self.preferences,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DispatchRanking):
            return NotImplemented
        return (
            self._inputs() == other._inputs()
            and self._best_first() == other._best_first()
            and self.excluded == other.excluded
        )

    def __hash__(self) -> int:
        return hash((*self._inputs(), self.eligible_count, self.assessed_count))

    def __repr__(self) -> str:
        best = self.best
        return (
            f"DispatchRanking(work_order_id={self.work_order_id!r}, "
            f"decided_at={self.decided_at.isoformat()!r}, "
            f"best={None if best is None else best.contractor_id!r}, "
            f"eligible={self.eligible_count}, assessed={self.assessed_count})"
        )


def rank_candidates(
    request: DispatchRequest,
    candidates: Iterable[Candidate],
    at: datetime,
    *,
    declined: Collection[str] = (),
    preferences: TenantPreferences = NO_PREFERENCES,
    weights: ScoreWeights = DEFAULT_WEIGHTS,
    fan_out: int = 1,
) -> DispatchRanking:
    """Assess every candidate for the order at ``at`` and rank the eligible ones.

    ``declined`` are the contractors that had an offer of this order already (declined it, or
    let it run out); ``fan_out`` how many of the best are offered it at once. Each contractor
    may appear once among the candidates.
    """
    if fan_out < 1:
        msg = f"an order is offered to at least one contractor, not {fan_out}"
        raise ValueError(msg)
    screen = _Screen(request, at, declined, preferences)
    rows, excluded, contractors = _rank_pass(screen, candidates, preferences, weights)
    if contractors != len(rows) + len(excluded):
        msg = "a contractor is among the candidates more than once"
        raise ValueError(msg)
    return DispatchRanking(
        request=request,
        decided_at=at,
        weights=weights,
        fan_out=fan_out,
        declined=screen.declined,
        preferences=preferences,
        rows=rows,
        excluded_candidates=excluded,
    )


@dataclass(frozen=True, slots=True)
class ContractorChosen:
    """The order is offered to ``contractor``, the head of ``ranking``."""

    contractor: Contractor
    match_length: int
    open_offers: int
    eligible_count: int
    ranking: DispatchRanking

    @property
    def score(self) -> Score:
        best = self.ranking.best
        assert best is not None  # noqa: S101 - a chosen contractor heads the ranking
        return best.score


@dataclass(frozen=True, slots=True)
class NoEligibleContractor:
    """Nobody may take the order: a sentence for people, and the rejected contractors' reasons.

    ``considered`` holds at most the decision's limit, closest misses first; ``considered_total``
    says how many contractors were assessed in all; ``ranking`` holds every one of them.
    """

    reason: str
    considered: tuple[Assessment, ...]
    considered_total: int
    ranking: DispatchRanking


DispatchDecision = ContractorChosen | NoEligibleContractor


_EXCLUSION_PHRASES: dict[EligibilityRule, tuple[str, str, str]] = {
    # rule: (what one contractor "is/has", what several "are/have", short form)
    EligibilityRule.CREDENTIALS: (
        "has an expired credential",
        "have an expired credential",
        "with an expired credential",
    ),
    EligibilityRule.CAPACITY: ("is at capacity", "are at capacity", "at capacity"),
    EligibilityRule.ROTA: ("is not on call", "are not on call", "not on call"),
    EligibilityRule.DECLINED: (
        "had an offer of it already",
        "had an offer of it already",
        "offered already",
    ),
    EligibilityRule.BLOCKED: (
        "is blocked by the tenant",
        "are blocked by the tenant",
        "blocked by the tenant",
    ),
}


def unfilled_reason(request: DispatchRequest, assessments: Iterable[Assessment]) -> str:
    """One sentence saying why nobody may take the order, naming its closest misses."""
    what = (
        f"equipment class '{request.equipment_class}' at {request.site_label} "
        f"for tenant {request.tenant}"
    )
    serving = [a for a in assessments if a.serves_tenant and a.has_skill]
    covering = [a for a in serving if a.covers_site]
    if covering:
        counts = {
            rule: sum(rule in a.failed_rules for a in covering) for rule in _EXCLUSION_PHRASES
        }
        failing = [rule for rule, count in counts.items() if count]
        if len(failing) == 1:
            one, many, _ = _EXCLUSION_PHRASES[failing[0]]
            whom = (
                f"the only contractor covering the site {one}"
                if len(covering) == 1
                else f"all {len(covering)} contractors covering the site {many}"
            )
        else:
            detail = ", ".join(f"{counts[rule]} {_EXCLUSION_PHRASES[rule][2]}" for rule in failing)
            whom = f"all {len(covering)} contractors covering the site are excluded ({detail})"
        return _clip(f"no eligible contractor for {what}: {whom}")
    if serving:
        elsewhere = _plural(len(serving), "serves it in other areas", "serve it in other areas")
        return _clip(f"no contractor serves {what} ({elsewhere})")
    return _clip(f"no contractor serves {what}")


def choose_contractor(
    request: DispatchRequest,
    candidates: Iterable[Candidate],
    at: datetime,
    *,
    considered_limit: int = DEFAULT_CONSIDERED_LIMIT,
    declined: Collection[str] = (),
    preferences: TenantPreferences = NO_PREFERENCES,
    weights: ScoreWeights = DEFAULT_WEIGHTS,
) -> DispatchDecision:
    """Offer the order to the best-ranked eligible contractor, or say why nobody may take it."""
    ranking = rank_candidates(
        request, candidates, at, declined=declined, preferences=preferences, weights=weights
    )
    best = ranking.best
    if best is not None:
        return ContractorChosen(
            contractor=best.candidate.contractor,
            match_length=best.match_length,
            open_offers=best.candidate.open_offers,
            eligible_count=ranking.eligible_count,
            ranking=ranking,
        )
    rejected = sorted(ranking.excluded, key=lambda a: (a.failed_criteria, a.contractor_id))
    return NoEligibleContractor(
        reason=unfilled_reason(request, rejected),
        considered=tuple(rejected[: max(0, considered_limit)]),
        considered_total=len(rejected),
        ranking=ranking,
    )


__all__ = [
    "DEFAULT_CONSIDERED_LIMIT",
    "DEFAULT_WEIGHTS",
    "MAX_REASONS_PER_CONTRACTOR",
    "NO_PREFERENCES",
    "Assessment",
    "Candidate",
    "ContractorChosen",
    "DispatchDecision",
    "DispatchRanking",
    "DispatchRequest",
    "EligibilityRule",
    "NoEligibleContractor",
    "RankedCandidate",
    "TenantPreferences",
    "assess",
    "choose_contractor",
    "rank_candidates",
    "unfilled_reason",
]
