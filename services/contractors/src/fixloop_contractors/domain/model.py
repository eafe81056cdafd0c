"""The contractor registry: who a contractor is, what they do, where, and with what papers.

Pure values: no I/O, no framework. Postal codes and prefixes are compared in one normal form
(upper case, no spaces or hyphens), so ``"sw1a 1aa"`` and ``"SW1A1AA"`` are the same place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo

from fixloop_contractors.domain.rota import OnCallRota

MIN_SKILL_LEVEL = 1
"""A skill level: 1 (can do the basics) .. 5 (specialist)."""
MAX_SKILL_LEVEL = 5
DEFAULT_SKILL_LEVEL = 3
"""The level assumed where a contractor states none for an equipment class."""
EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG)."""


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, built once per process (there are a few hundred)."""
    return ZoneInfo(name)


class CredentialKind(StrEnum):
    TRADE_LICENCE = "trade_licence"
    LIABILITY_INSURANCE = "liability_insurance"
    CERTIFICATION = "certification"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def normalize_postal_code(code: str) -> str:
    """The form postal codes and prefixes are compared in: upper case, no spaces or hyphens."""
    return "".join(ch for ch in code if ch not in " -").upper()


@dataclass(frozen=True, slots=True)
class Credential:
    """A licence, insurance policy or certification; valid through ``expires_on`` inclusive."""

    kind: CredentialKind
    number: str
    expires_on: date
    name: str | None = None

    def is_valid_on(self, day: date) -> bool:
        """A credential expiring on day D is valid through D and expired from D+1."""
        return day <= self.expires_on

    def days_left(self, day: date) -> int:
        """Days from ``day`` to the expiry date (0 on the last valid day, negative once expired)."""
        return (self.expires_on - day).days

    @property
    def label(self) -> str:
        return f"{self.kind.label} {self.number}"


@dataclass(frozen=True, slots=True)
class ServiceRegion:
    """Part of one country: the postal codes starting with one of the prefixes, or all of it."""

    country: str
    postal_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        normalized = tuple(dict.fromkeys(normalize_postal_code(p) for p in self.postal_prefixes))
        object.__setattr__(self, "postal_prefixes", normalized)

    @property
    def whole_country(self) -> bool:
        return not self.postal_prefixes

    def match_length(self, country: str, postal_code: str) -> int | None:
        """How specific the match is: the longest matching prefix's length, 0 for a whole-country
        region, None if the site is outside this region."""
        if country != self.country:
            return None
        if self.whole_country:
            return 0
        code = normalize_postal_code(postal_code)
        lengths = [len(p) for p in self.postal_prefixes if code.startswith(p)]
        return max(lengths) if lengths else None

    def describe(self) -> str:
        if self.whole_country:
            return f"{self.country} (whole country)"
        return f"{self.country} {','.join(self.postal_prefixes)}"


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A place on Earth in decimal degrees (WGS 84)."""

    latitude: float
    longitude: float
    radians: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    """Latitude and longitude in radians, and the cosine of the latitude."""

    def __post_init__(self) -> None:
        if not (-90.0 <= self.latitude <= 90.0 and -180.0 <= self.longitude <= 180.0):
            msg = f"no place on Earth at latitude {self.latitude}, longitude {self.longitude}"
            raise ValueError(msg)
        latitude = math.radians(self.latitude)
        object.__setattr__(
            self, "radians", (latitude, math.radians(self.longitude), math.cos(latitude))
        )

    def distance_km(self, other: GeoPoint) -> float:
        """The great-circle distance to ``other`` (haversine, on a sphere of the mean radius)."""
        lat1, lon1, cos1 = self.radians
        lat2, lon2, cos2 = other.radians
        h = math.sin((lat2 - lat1) / 2) ** 2 + cos1 * cos2 * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _coverage(regions: Iterable[ServiceRegion]) -> dict[str, tuple[bool, tuple[str, ...]]]:
    """By country: whether one of ``regions`` covers all of it, and their prefixes, longest
    first."""
    whole: dict[str, bool] = {}
    prefixes: dict[str, set[str]] = {}
    for region in regions:
        whole[region.country] = whole.get(region.country, False) or region.whole_country
        prefixes.setdefault(region.country, set()).update(region.postal_prefixes)
    return {
        country: (covers_all, tuple(sorted(prefixes[country], key=lambda p: (-len(p), p))))
        for country, covers_all in whole.items()
    }


@dataclass(frozen=True, slots=True)
class Contractor:
    """A service company that can be offered work orders."""

    contractor_id: str
    name: str
    email: str
    timezone: str
    tenants: frozenset[str]
    skills: frozenset[str]
    regions: tuple[ServiceRegion, ...]
    credentials: tuple[Credential, ...] = ()
    phone: str | None = None
    base_location: GeoPoint | None = None
    """Where its technicians set out from; without it, travel is judged by postal prefix."""
    max_concurrent_jobs: int | None = None
    """Capacity: at most this many open jobs and open offers together; it is not offered work
    beyond it (None: no limit)."""
    skill_levels: tuple[tuple[str, int], ...] = ()
    """(equipment class, level) for classes among its skills; others count as
    :data:`DEFAULT_SKILL_LEVEL`."""
    rota: OnCallRota | None = None
    """When it may be offered work (None: around the clock)."""
    credentials_valid_through: date | None = field(init=False, repr=False, compare=False)
    """The last day on which every one of its credentials is valid (None: it holds none)."""
    coverage: dict[str, tuple[bool, tuple[str, ...]]] = field(init=False, repr=False, compare=False)
    """Its regions by country: whether one covers all of it, and its postal prefixes there,
    longest first."""
    level_by_class: dict[str, int] = field(init=False, repr=False, compare=False)
    """``skill_levels`` as a mapping."""

    def __post_init__(self) -> None:
        if self.max_concurrent_jobs is not None and self.max_concurrent_jobs < 0:
            msg = f"{self.contractor_id}: capacity {self.max_concurrent_jobs} is below zero"
            raise ValueError(msg)
        levels = dict(self.skill_levels)
        for equipment_class, level in levels.items():
            if equipment_class not in self.skills:
                msg = f"{self.contractor_id}: skill level for '{equipment_class}', not a skill"
                raise ValueError(msg)
            if not MIN_SKILL_LEVEL <= level <= MAX_SKILL_LEVEL:
                msg = (
                    f"{self.contractor_id}: skill level {level} for '{equipment_class}' is "
                    f"outside {MIN_SKILL_LEVEL}..{MAX_SKILL_LEVEL}"
                )
                raise ValueError(msg)
        object.__setattr__(self, "skill_levels", tuple(sorted(levels.items())))
        object.__setattr__(self, "level_by_class", levels)
        object.__setattr__(
            self,
            "credentials_valid_through",
            min((c.expires_on for c in self.credentials), default=None),
        )
        object.__setattr__(self, "coverage", _coverage(self.regions))

    def local_date(self, moment: datetime) -> date:
        """The calendar day it is for this contractor at ``moment`` (an aware datetime)."""
        return moment.astimezone(zone(self.timezone)).date()

    def match_length(self, country: str, postal_code: str) -> int | None:
        """The most specific match of the site among the contractor's regions (None: not served)."""
        return self.site_match(country, normalize_postal_code(postal_code))

    def site_match(self, country: str, normalized_code: str) -> int | None:
        """:meth:`match_length` for a postal code already in :func:`normalize_postal_code` form."""
        covered = self.coverage.get(country)
        if covered is None:
            return None
        whole, prefixes = covered
        for prefix in prefixes:
            if normalized_code.startswith(prefix):
                return len(prefix)
        return 0 if whole else None

    def skill_level(self, equipment_class: str) -> int:
        """Its level for ``equipment_class`` (:data:`DEFAULT_SKILL_LEVEL` where none is stated)."""
        return self.level_by_class.get(equipment_class, DEFAULT_SKILL_LEVEL)

    def expired_credentials(self, day: date) -> tuple[Credential, ...]:
        return tuple(c for c in self.credentials if not c.is_valid_on(day))


__all__ = [
    "DEFAULT_SKILL_LEVEL",
    "EARTH_RADIUS_KM",
    "MAX_SKILL_LEVEL",
    "MIN_SKILL_LEVEL",
    "Contractor",
    "Credential",
    "CredentialKind",
    "GeoPoint",
    "ServiceRegion",
    "normalize_postal_code",
    "zone",
]
