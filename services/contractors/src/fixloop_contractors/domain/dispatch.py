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

A decision works out no more than its offer needs: it scores only the candidates whose total
might still place them among those offered the order, judged by an upper bound on the total made
of what is quickest to find (:class:`_Ranker`). The rest of the ranking, and every reason for an
exclusion, is worked out when asked for, and is the same as if everyone had been scored at once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from math import asin, sin, sqrt
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


class Assessment(NamedTuple):
    """Whether one contractor may take the order, and if not, every reason why not.

    A named tuple, as one is made for every contractor excluded from every decision explained.
    """

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


_Row = tuple[float, str, int, float, float, float, float, float, float, float, bool, int, int]
"""An eligible candidate as a decision keeps it: (-total, contractor id, its place among the
candidates, the six score components, travel km, whether that is a great-circle distance, match
length, skill level); its rota layer is the one the on-call component says. Rows sort best
first by plain tuple order, as contractor ids are unique. They hold plain numbers and text only,
which the garbage collector lets be once it has seen them."""


_new_tuple = tuple.__new__
"""Makes a named tuple from a plain one without its keyword constructor, where one is made per
candidate."""


def _entries(rows: Iterable[_Row], pool: Sequence[Candidate]) -> tuple[RankedCandidate, ...]:
    """The rows as entries of the ranking, in the same order."""
    new, score, entry = _new_tuple, Score, RankedCandidate
    great_circle, postal_prefix = TravelBasis.GREAT_CIRCLE, TravelBasis.POSTAL_PREFIX
    primary_layer, backup_layer = OnCall.PRIMARY, OnCall.BACKUP
    return tuple(
        [
            new(entry, (pool[index],
                        new(score, (-neg_total, travel, load, skill, scorecard, preference,
                                    primary)),
                        km, great_circle if measured else postal_prefix,
                        primary_layer if primary == 1.0 else backup_layer, match_length, level,
                        preference == 1.0))
            for (neg_total, _, index, travel, load, skill, scorecard, preference, primary, km,
                 measured, match_length, level) in rows
        ]
    )  # fmt: skip


class _LocalTime(NamedTuple):
    """The decision as a contractor's time zone sees it."""

    first_day: date
    """Its calendar day at the decision moment."""
    last_day: date
    """Its calendar day at the job's expected end."""
    wall: WallClock
    """Its wall clock at the decision moment."""


def _regions_text(contractor: Contractor, limit: int = 160) -> str:
    regions = contractor.regions
    text = (
        regions[0].describe() if len(regions) == 1 else "; ".join([r.describe() for r in regions])
    )
    return _clip(text or "nothing", limit)


_DECLINED_TEXT = "had an offer of this work order already (declined or no answer)"
_EXCEPTION_DAY_TEXT = " (an exception day in its rota)"


class _Screen:
    """The eligibility rules for one work order at one moment, with what is worked out once per
    decision: the site's postal code in normal form and its label, each time zone's dates and wall
    clock, and the reasons that read the same for every contractor.

    :meth:`check` works through every rule for one contractor and says why it fails;
    :class:`_Ranker` applies the same rules to every candidate, stopping at the first that fails.
    """

    __slots__ = (
        "at",
        "blocked",
        "blocked_text",
        "code",
        "country",
        "declined",
        "end",
        "equipment_class",
        "local_times",
        "no_skill_text",
        "not_serving_text",
        "off_call_texts",
        "request",
        "site_label",
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
        self.site_label = request.site_label
        self.not_serving_text = _clip(f"does not serve tenant {request.tenant}")
        self.no_skill_text = _clip(f"has no skill for equipment class '{request.equipment_class}'")
        self.blocked_text = _clip(f"blocked by tenant {request.tenant}")
        self.off_call_texts: dict[str, str] = {}
        """By time zone: "not on call at" its wall clock."""

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
        contractor = candidate.contractor
        contractor_id, timezone = contractor.contractor_id, contractor.timezone
        local = self.local_times.get(timezone) or self.local_time(timezone)
        reasons: list[str] = []
        serves_tenant = self.tenant in contractor.tenants
        if not serves_tenant:
            reasons.append(self.not_serving_text)
        has_skill = self.equipment_class in contractor.skills
        if not has_skill:
            reasons.append(self.no_skill_text)
        covered = contractor.coverage.get(self.country)  # as Contractor.site_match
        match_length: int | None = None
        if covered is not None:
            code = self.code
            for prefix in covered[1]:
                if code.startswith(prefix):
                    match_length = len(prefix)
                    break
            else:
                match_length = 0 if covered[0] else None
        if match_length is None:
            reasons.append(
                _clip(f"does not cover {self.site_label} (covers {_regions_text(contractor)})")
            )
        # Every credential is valid through its earliest expiry: one check for all of them.
        valid_through = contractor.credentials_valid_through
        credentials_valid = valid_through is None or local.last_day <= valid_through
        if valid_through is not None and (
            local.first_day > valid_through or local.last_day > valid_through
        ):
            reasons.extend(_credential_reasons(contractor, local))
        capacity = contractor.max_concurrent_jobs
        within_capacity = capacity is None or candidate.open_offers + candidate.open_jobs < capacity
        if not within_capacity:
            reasons.append(_capacity_reason(candidate))
        rota = contractor.rota
        on_call = OnCall.PRIMARY if rota is None else rota.layer_at(local.wall)
        if on_call is None:
            reasons.append(self._off_call_reason(contractor, local))
        declined = contractor_id in self.declined
        if declined:
            reasons.append(_DECLINED_TEXT)
        blocked = contractor_id in self.blocked
        if blocked:
            reasons.append(self.blocked_text)
        return _new_tuple(
            Assessment,
            (
                contractor_id,
                serves_tenant,
                has_skill,
                match_length,
                credentials_valid,
                tuple(reasons[:MAX_REASONS_PER_CONTRACTOR]),
                within_capacity,
                on_call,
                declined,
                blocked,
            ),
        )

    def _off_call_reason(self, contractor: Contractor, local: _LocalTime) -> str:
        timezone, wall = contractor.timezone, local.wall
        text = self.off_call_texts.get(timezone)
        if text is None:
            text = self.off_call_texts[timezone] = f"not on call at {wall.describe()} {timezone}"
        rota = contractor.rota
        if rota is not None and any(
            layer.has_exception(wall.day)
            for layer in (rota.primary, rota.backup)
            if layer is not None
        ):
            text += _EXCEPTION_DAY_TEXT
        return _clip(text)


def _credential_reasons(contractor: Contractor, local: _LocalTime) -> list[str]:
    """A reason for each credential expired at the decision or before the job's expected end."""
    first_day, last_day = local.first_day, local.last_day
    reasons: list[str] = []
    for credential in contractor.credentials:
        expires_on = credential.expires_on
        if first_day > expires_on:
            reasons.append(_clip(f"{credential.label} expired on {expires_on.isoformat()}"))
        elif last_day > expires_on:
            reasons.append(
                _clip(
                    f"{credential.label} expires on {expires_on.isoformat()}, before the job's "
                    f"expected end on {last_day.isoformat()}"
                )
            )
    return reasons


def _capacity_reason(candidate: Candidate) -> str:
    jobs = _plural(candidate.open_jobs, "open job", "open jobs")
    offers = _plural(candidate.open_offers, "open offer", "open offers")
    return _clip(
        f"at capacity: {jobs} and {offers}, "
        f"at most {candidate.contractor.max_concurrent_jobs} at a time"
    )


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


_BOUND_MARGIN = 1e-9
"""How far below the total to beat a bound must be before its candidate is put aside, as a share
of the largest total the weights allow (and of the total to beat): far more than the rounding of
a sum of six terms, far less than any difference that matters to the ranking."""

_MERIDIAN_SLACK_KM = 1e-9
"""A micrometre: more than a distance along a meridian worked out from degrees of latitude can
differ from one worked out from their radians (some nanometres)."""

_reasons_of = attrgetter("reasons")


def _raises_the_bar(best: list[float], total: float, settle: int) -> bool:
    """Keep ``total`` in ``best``, the heap of the ``settle`` best totals so far, and say whether
    the least of them, once there are ``settle``, went up."""
    if len(best) < settle:
        heapq.heappush(best, total)
        return len(best) == settle
    if total > best[0]:
        heapq.heapreplace(best, total)
        return True
    return False


class _Ranker:
    """The rules and the score for one decision, with the candidates, the weights and the site
    bound once. Candidates are named by their place in ``pool``.

    :meth:`score` checks every rule for a candidate and works out its score components, as
    :class:`ScoreWeights` and :func:`skill_score` define them.

    :meth:`sift` looks at every candidate once, and scores only those that might be among the
    ``settle`` best (a branch and bound). After the tenant and skill rules, it bounds the
    candidate's total from above, a component at a time, each component not yet worked out taken
    at its most (1): first the travel component, exact when judged by postal prefix and otherwise
    at most what the latitude difference alone allows, as a great circle is never shorter than
    its north-south part, and the preference; then the scorecard; then, past the capacity rule,
    the load and skill components. Once ``settle`` candidates are scored, a candidate whose bound
    falls below the least of the ``settle`` best totals so far cannot be among the best, whatever
    its other components and rules say, and is put aside unscored; any other one is scored. A
    bound equal to that total is not enough to put a candidate aside, as equal totals go by
    contractor id. The candidates put aside are sifted again when more of the head of the ranking
    is asked for, and scored when the whole of it is.

    The bounds assume every component is at most 1, which a negative load (no count of anything,
    but not refused) breaks: such a candidate is scored at once.
    """

    __slots__ = ("margin", "pool", "postal_part", "preferred", "screen", "site", "weights")

    def __init__(
        self,
        screen: _Screen,
        candidates: Iterable[Candidate],
        preferences: TenantPreferences,
        weights: ScoreWeights,
    ) -> None:
        self.screen = screen
        self.pool: Sequence[Candidate] = (
            candidates if isinstance(candidates, list | tuple) else list(candidates)
        )
        self.preferred = preferences.preferred
        self.weights = weights
        site = screen.request.site_location
        self.site = None if site is None else site.radians
        # How far below the total to beat a bound must be; the bound's distance along the
        # meridian comes from degrees of latitude, the great circle's from radians.
        self.margin = (
            _BOUND_MARGIN * (1.0 + weights.largest_total)
            + weights.travel * _MERIDIAN_SLACK_KM / weights.travel_scale_km
        )
        scale = weights.travel_scale_km
        self.postal_part = tuple(
            weights.travel * (scale / (scale + km)) for km in weights.postal_prefix_km
        )
        """The travel component weighted, by postal match length."""

    def postal_travel(self, contractor: Contractor) -> float | None:
        """The weighted travel component of a contractor judged by postal prefix (None: it does
        not cover the site)."""
        covered = contractor.coverage.get(self.screen.country)  # as Contractor.site_match
        if covered is None:
            return None
        whole, prefixes = covered
        code, part = self.screen.code, self.postal_part
        for prefix in prefixes:
            if code.startswith(prefix):
                return part[min(len(prefix), len(part) - 1)]
        return part[0] if whole else None

    def score(self, indices: Iterable[int]) -> tuple[list[_Row], list[int]]:
        """The candidates that pass every rule (as :meth:`_Screen.check` states them, stopping at
        the first that fails), scored as rows, and the others."""
        screen, weights, pool = self.screen, self.weights, self.pool
        tenant, equipment_class = screen.tenant, screen.equipment_class
        country, code = screen.country, screen.code
        declined, blocked, preferred = screen.declined, screen.blocked, self.preferred
        local_times, local_time = screen.local_times, screen.local_time
        w_travel, w_load, w_skill, w_scorecard, w_preference, w_on_call = weights.component_weights
        travel_scale, load_scale, postal_km = (
            weights.travel_scale_km,
            weights.load_scale,
            weights.postal_prefix_km,
        )
        longest, level_span = len(postal_km) - 1, MAX_SKILL_LEVEL - MIN_SKILL_LEVEL
        site = self.site
        site_lat, site_lon, site_cos = (0.0, 0.0, 0.0) if site is None else site
        primary_layer = OnCall.PRIMARY
        rows: list[_Row] = []
        excluded: list[int] = []
        for index in indices:
            candidate = pool[index]
            contractor = candidate.contractor
            contractor_id = contractor.contractor_id
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
                excluded.append(index)
                continue
            whole, prefixes = covered  # as Contractor.site_match
            match_length = 0 if whole else -1
            for prefix in prefixes:
                if code.startswith(prefix):
                    match_length = len(prefix)
                    break
            local = local_times.get(contractor.timezone) or local_time(contractor.timezone)
            valid_through, rota = contractor.credentials_valid_through, contractor.rota
            if (
                match_length < 0
                or (valid_through is not None and local.last_day > valid_through)
                or (on_call := primary_layer if rota is None else rota.layer_at(local.wall)) is None
            ):
                excluded.append(index)
                continue
            base = contractor.base_location
            if site is None or base is None:
                km = postal_km[match_length if match_length < longest else longest]
                measured = False
            else:  # haversine, as GeoPoint.distance_km
                lat, lon, cos_lat = base.radians
                h = (
                    sin((lat - site_lat) / 2) ** 2
                    + site_cos * cos_lat * sin((lon - site_lon) / 2) ** 2
                )
                km = 2 * EARTH_RADIUS_KM * asin(sqrt(h) if h < 1.0 else 1.0)
                measured = True
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
            rows.append((-total, contractor_id, index, travel, load, skill, scorecard, preference,
                         primary, km, measured, match_length, level))  # fmt: skip
        return rows, excluded

    def limits(self, least: float) -> tuple[float, float, float]:
        """Below what a bound cannot reach ``least``, the least of the best totals so far: a
        bound with every component but the on-call one worked out; with the travel, preference
        and scorecard components; with the travel and preference components."""
        weights = self.weights
        limit = least - self.margin - _BOUND_MARGIN * abs(least) - weights.on_call
        near_limit = limit - weights.load - weights.skill
        return limit, near_limit, near_limit - weights.scorecard

    def sift(  # noqa: PLR0912, PLR0915 - one loop over every candidate, no call per candidate
        self, settle: int, indices: Iterable[int], totals: Iterable[float] = ()
    ) -> tuple[list[_Row], list[int], list[int], int]:
        """One look at each candidate of ``indices``: the ones scored (as rows; the ``settle``
        best of them and of those scored before, whose ``totals`` are given, are among them), the
        ones excluded, the ones put aside unscored, and how many contractors there were (fewer
        than candidates if one came twice)."""
        screen, weights, pool = self.screen, self.weights, self.pool
        tenant, equipment_class = screen.tenant, screen.equipment_class
        preferred, score, postal_travel = self.preferred, self.score, self.postal_travel
        w_travel, w_load, w_skill, w_scorecard, w_preference = weights.component_weights[:5]
        travel_scale, load_scale = weights.travel_scale_km, weights.load_scale
        # The skill component weighted, by skill level.
        skill_part = tuple(
            w_skill * ((level - MIN_SKILL_LEVEL) / (MAX_SKILL_LEVEL - MIN_SKILL_LEVEL))
            for level in range(MAX_SKILL_LEVEL + 1)
        )
        travel_over, per_degree = w_travel * travel_scale, EARTH_RADIUS_KM * math.pi / 180
        site, location = self.site, screen.request.site_location
        site_latitude = 0.0 if location is None else location.latitude
        rows: list[_Row] = []
        excluded: list[int] = []
        aside: list[int] = []
        best = heapq.nlargest(settle, totals)  # the `settle` best totals so far, as a heap
        heapq.heapify(best)
        # The `settle` best so far are out of reach for the components added up to here, with
        # the rest at their most, below `far_limit` (travel and preference), `near_limit`
        # (and scorecard), `limit` (all but the on-call component).
        limit = near_limit = far_limit = -math.inf
        if len(best) == settle:
            limit, near_limit, far_limit = self.limits(best[0])
        seen: set[str] = set()
        seen_add = seen.add
        for index in indices:
            candidate = pool[index]
            contractor = candidate.contractor
            contractor_id = contractor.contractor_id
            seen_add(contractor_id)
            if tenant not in contractor.tenants or equipment_class not in contractor.skills:
                excluded.append(index)
                continue
            load_now = candidate.open_offers + candidate.open_jobs
            # A negative load (no count of anything) makes a load component above 1, beyond the
            # bounds: such a candidate is scored.
            if load_now >= 0:
                base = contractor.base_location
                if site is None or base is None:  # by postal prefix: exact
                    postal = postal_travel(contractor)
                    if postal is None:
                        excluded.append(index)
                        continue
                    partial = postal
                else:  # at most what the latitude difference allows
                    partial = travel_over / (
                        travel_scale + per_degree * abs(base.latitude - site_latitude)
                    )
                partial += w_preference if contractor_id in preferred else 0.0
                if partial < far_limit:
                    aside.append(index)
                    continue
                scorecard = candidate.scorecard
                partial += w_scorecard * (NEUTRAL_SCORECARD if scorecard is None else scorecard)
                if partial < near_limit:
                    aside.append(index)
                    continue
                capacity = contractor.max_concurrent_jobs
                if capacity is not None and load_now >= capacity:
                    excluded.append(index)
                    continue
                if (
                    partial
                    + w_load
                    * (
                        1.0 - load_now / capacity
                        if capacity
                        else load_scale / (load_scale + load_now)
                    )
                    + skill_part[
                        contractor.level_by_class.get(equipment_class, DEFAULT_SKILL_LEVEL)
                    ]
                    < limit
                ):
                    aside.append(index)
                    continue
            scored, _ = score((index,))
            if not scored:
                excluded.append(index)
                continue
            rows.append(scored[0])
            if _raises_the_bar(best, -scored[0][0], settle):
                limit, near_limit, far_limit = self.limits(best[0])
        return rows, excluded, aside, len(seen)


class DispatchRanking:
    """Every contractor assessed for one work order at one moment.

    ``ranked`` holds the eligible ones, best first (highest total, then smallest contractor id),
    each with its score components; ``excluded`` the others by contractor id, each with every
    reason it was excluded. Each contractor assessed is in exactly one of the two. ``offered`` is
    the head of the ranking the order goes to at once: one contractor, or ``fan_out`` for an
    emergency.

    A decision works out no more than the offer needs: it scores the candidates that might be
    among the ``fan_out`` best and puts the others aside unscored (see :class:`_Ranker`), keeping
    the eligible ones as compact rows and the excluded ones as they came. ``top(k)`` beyond
    ``fan_out`` sifts what was put aside again; ``ranked``, ``excluded`` and whatever else
    depends on every candidate (``eligible_count``) score what was put aside and spell the rest
    out when first asked for, from the same inputs, so the same every time. Two rankings are
    equal when they say the same.
    """

    __slots__ = (
        "_aside",
        "_excluded",
        "_excluded_indices",
        "_offered",
        "_ranked",
        "_ranker",
        "_rows",
        "_settled",
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
        ranker: _Ranker,
        rows: list[_Row],
        excluded: list[int],
        aside: list[int],
    ) -> None:
        self.request = request
        self.decided_at = decided_at
        self.weights = weights
        self.fan_out = fan_out
        self.declined = declined
        self.preferences = preferences
        self._ranker = ranker
        self._rows = rows
        self._excluded_indices = excluded
        self._aside = aside
        """Candidates not scored yet: none of them is among the ``_settled`` best."""
        self._settled = fan_out
        self._sorted: list[_Row] | None = None
        self._offered: tuple[RankedCandidate, ...] | None = None
        self._ranked: tuple[RankedCandidate, ...] | None = None
        self._excluded: tuple[Assessment, ...] | None = None

    @property
    def work_order_id(self) -> str:
        return self.request.work_order_id

    def _settle(self, k: int) -> list[_Row]:
        """The rows, the ``k`` best among them: the candidates put aside are looked at again, and
        scored if they might be among the ``k`` best."""
        if k > self._settled and self._aside:
            rows, excluded, self._aside, _ = self._ranker.sift(
                k, self._aside, [-row[0] for row in self._rows]
            )
            self._rows.extend(rows)
            self._excluded_indices.extend(excluded)
        self._settled = max(k, self._settled)
        return self._rows

    def _complete(self) -> list[_Row]:
        """Every eligible row: the candidates put aside are scored first."""
        if self._aside:
            rows, excluded = self._ranker.score(self._aside)
            self._rows.extend(rows)
            self._excluded_indices.extend(excluded)
            self._aside = []
        return self._rows

    def _best_first(self) -> list[_Row]:
        if self._sorted is None:
            self._sorted = sorted(self._complete())
        return self._sorted

    def _excluded_candidates(self) -> list[Candidate]:
        self._complete()
        pool = self._ranker.pool
        return [pool[index] for index in self._excluded_indices]

    @property
    def ranked(self) -> tuple[RankedCandidate, ...]:
        if self._ranked is None:
            self._ranked = _entries(self._best_first(), self._ranker.pool)
        return self._ranked

    @property
    def excluded(self) -> tuple[Assessment, ...]:
        if self._excluded is None:
            # By contractor id, as assessments sort by their first field and ids are unique.
            assessments = sorted(map(self._ranker.screen.check, self._excluded_candidates()))
            if not all(map(_reasons_of, assessments)):
                msg = "a contractor excluded from the ranking passes every rule"
                raise AssertionError(msg)
            self._excluded = tuple(assessments)
        return self._excluded

    def top(self, k: int) -> tuple[RankedCandidate, ...]:
        """The ``k`` best eligible contractors (fewer if fewer are eligible)."""
        k = max(0, k)
        pool = self._ranker.pool
        if self._sorted is not None:
            return _entries(self._sorted[:k], pool)
        rows = self._settle(k)
        if k == 1 and rows:
            return _entries((min(rows),), pool)
        return _entries(heapq.nsmallest(k, rows), pool)

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
            sorted(c.contractor.contractor_id for c in self._excluded_candidates())
        )

    @property
    def eligible_count(self) -> int:
        return len(self._complete())

    @property
    def assessed_count(self) -> int:
        return len(self._rows) + len(self._excluded_indices) + len(self._aside)

    def rank_of(self, contractor_id: str) -> int | None:
        """1 for the best eligible contractor, and so on (None: not eligible or not assessed)."""
        for position, row in enumerate(self._best_first(), start=1):
            if row[1] == contractor_id:
                return position
        return None

    def outcome_of(self, contractor_id: str) -> RankedCandidate | Assessment | None:
        """The contractor's place in the ranking, or why it was excluded (None: not assessed)."""
        for row in self._complete():
            if row[1] == contractor_id:
                return _entries((row,), self._ranker.pool)[0]
        for candidate in self._excluded_candidates():
            if candidate.contractor.contractor_id == contractor_id:
                return self._ranker.screen.check(candidate)
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
            and self.ranked == other.ranked
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
    ranker = _Ranker(screen, candidates, preferences, weights)
    rows, excluded, aside, contractors = ranker.sift(fan_out, range(len(ranker.pool)))
    if contractors != len(ranker.pool):
        msg = "a contractor is among the candidates more than once"
        raise ValueError(msg)
    return DispatchRanking(
        request=request,
        decided_at=at,
        weights=weights,
        fan_out=fan_out,
        declined=screen.declined,
        preferences=preferences,
        ranker=ranker,
        rows=rows,
        excluded=excluded,
        aside=aside,
    )


@dataclass(frozen=True, slots=True)
class ContractorChosen:
    """The order is offered to ``contractor``, the head of ``ranking``."""

    contractor: Contractor
    match_length: int
    open_offers: int
    ranking: DispatchRanking

    @property
    def eligible_count(self) -> int:
        """How many contractors may take the order (the whole ranking is worked out to count
        them)."""
        return self.ranking.eligible_count

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
    fan_out: int = 1,
) -> DispatchDecision:
    """Offer the order to the best-ranked eligible contractor, or say why nobody may take it.

    ``fan_out``: how many of the best the order goes to at once (``ranking.offered``); the
    decision works out that many at once, where asking its ranking for them later may look at
    every candidate again.
    """
    ranking = rank_candidates(
        request,
        candidates,
        at,
        declined=declined,
        preferences=preferences,
        weights=weights,
        fan_out=fan_out,
    )
    best = ranking.best
    if best is not None:
        return ContractorChosen(
            contractor=best.candidate.contractor,
            match_length=best.match_length,
            open_offers=best.candidate.open_offers,
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
