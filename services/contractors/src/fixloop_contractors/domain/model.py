"""The contractor registry: who a contractor is, what they do, where, and with what papers.

Pure values: no I/O, no framework. Postal codes and prefixes are compared in one normal form
(upper case, no spaces or hyphens), so ``"sw1a 1aa"`` and ``"SW1A1AA"`` are the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


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

    def local_date(self, moment: datetime) -> date:
        """The calendar day it is for this contractor at ``moment`` (an aware datetime)."""
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def match_length(self, country: str, postal_code: str) -> int | None:
        """The most specific match of the site among the contractor's regions (None: not served)."""
        lengths = [
            length
            for region in self.regions
            if (length := region.match_length(country, postal_code)) is not None
        ]
        return max(lengths) if lengths else None

    def expired_credentials(self, day: date) -> tuple[Credential, ...]:
        return tuple(c for c in self.credentials if not c.is_valid_on(day))


__all__ = [
    "Contractor",
    "Credential",
    "CredentialKind",
    "ServiceRegion",
    "normalize_postal_code",
]
