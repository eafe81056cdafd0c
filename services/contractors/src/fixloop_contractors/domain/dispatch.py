"""Dispatch decisions: which contractor may take a work order, and which one is offered it.

A contractor is eligible for an order when it

1. serves the order's tenant,
2. has the order's equipment class among its skills,
3. covers the site: one of its regions is the site's country and either names no postal prefixes
   (the whole country) or has a prefix the site's postal code starts with, and
4. holds no expired credential on the decision day, which is the contractor's own calendar day
   (in its time zone) at the moment of the decision; a credential expiring on day D is valid
   through D.

Among eligible contractors the most local one wins (longest matching postal prefix; a whole-country
region counts as length 0), then the least loaded (fewest open offers), then the smallest
contractor id, so that the same facts always give the same choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fixloop_contractors.domain.model import Contractor

MAX_REASONS_PER_CONTRACTOR = 20
"""At most this many reasons are kept per rejected contractor (the wire contract's bound)."""

DEFAULT_CONSIDERED_LIMIT = 100
"""At most this many rejected contractors are reported with an unfilled decision."""

_MAX_TEXT = 500


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What the dispatch decision needs to know about a work order."""

    work_order_id: str
    tenant: str
    equipment_class: str
    country: str
    postal_code: str

    @property
    def site_label(self) -> str:
        """The site as people write it: ``DE-10115``, ``GB-SW1A 1AA``."""
        return f"{self.country}-{' '.join(self.postal_code.upper().split())}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A contractor as the dispatcher sees it: its profile and its current load.

    The choice weighs open offers only; ``open_jobs`` (accepted work not yet completed) is shown.
    """

    contractor: Contractor
    open_offers: int = 0
    open_jobs: int = 0


@dataclass(frozen=True, slots=True)
class Assessment:
    """Whether one contractor may take the order, and if not, every reason why not."""

    contractor_id: str
    serves_tenant: bool
    has_skill: bool
    match_length: int | None
    credentials_valid: bool
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def covers_site(self) -> bool:
        return self.match_length is not None

    @property
    def failed_criteria(self) -> int:
        """How many of the four rules fail (tenant, skill, region, credentials)."""
        return sum(
            not ok
            for ok in (self.serves_tenant, self.has_skill, self.covers_site, self.credentials_valid)
        )


def _regions_text(contractor: Contractor, limit: int = 160) -> str:
    return _clip("; ".join(r.describe() for r in contractor.regions) or "nothing", limit)


def assess(contractor: Contractor, request: DispatchRequest, at: datetime) -> Assessment:
    """Check the four eligibility rules for one contractor at the decision moment ``at``."""
    reasons: list[str] = []
    serves_tenant = request.tenant in contractor.tenants
    if not serves_tenant:
        reasons.append(f"does not serve tenant {request.tenant}")
    has_skill = request.equipment_class in contractor.skills
    if not has_skill:
        reasons.append(f"has no skill for equipment class '{request.equipment_class}'")
    match_length = contractor.match_length(request.country, request.postal_code)
    if match_length is None:
        reasons.append(f"does not cover {request.site_label} (covers {_regions_text(contractor)})")
    expired = contractor.expired_credentials(contractor.local_date(at))
    reasons.extend(
        f"{credential.label} expired on {credential.expires_on.isoformat()}"
        for credential in expired
    )
    return Assessment(
        contractor_id=contractor.contractor_id,
        serves_tenant=serves_tenant,
        has_skill=has_skill,
        match_length=match_length,
        credentials_valid=not expired,
        reasons=tuple(_clip(r) for r in reasons[:MAX_REASONS_PER_CONTRACTOR]),
    )


@dataclass(frozen=True, slots=True)
class ContractorChosen:
    """The order is offered to ``contractor``."""

    contractor: Contractor
    match_length: int
    open_offers: int
    eligible_count: int


@dataclass(frozen=True, slots=True)
class NoEligibleContractor:
    """Nobody may take the order: a sentence for people, and the rejected contractors' reasons.

    ``considered`` holds at most the decision's limit, closest misses first; ``considered_total``
    says how many contractors were assessed in all.
    """

    reason: str
    considered: tuple[Assessment, ...]
    considered_total: int


DispatchDecision = ContractorChosen | NoEligibleContractor


def _choice_key(candidate: Candidate, assessment: Assessment) -> tuple[int, int, str]:
    assert assessment.match_length is not None  # noqa: S101 - only eligible ones are ranked
    return (-assessment.match_length, candidate.open_offers, candidate.contractor.contractor_id)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def unfilled_reason(request: DispatchRequest, assessments: Iterable[Assessment]) -> str:
    """One sentence saying why nobody may take the order, naming its closest misses."""
    what = (
        f"equipment class '{request.equipment_class}' at {request.site_label} "
        f"for tenant {request.tenant}"
    )
    serving = [a for a in assessments if a.serves_tenant and a.has_skill]
    covering = [a for a in serving if a.covers_site]
    if covering:
        whom = (
            "the only contractor covering the site has"
            if len(covering) == 1
            else f"all {len(covering)} contractors covering the site have"
        )
        return _clip(f"no eligible contractor for {what}: {whom} an expired credential")
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
) -> DispatchDecision:
    """Offer the order to the most local, least loaded eligible contractor, or say why nobody."""
    eligible: list[tuple[Candidate, Assessment]] = []
    rejected: list[Assessment] = []
    for candidate in candidates:
        assessment = assess(candidate.contractor, request, at)
        if assessment.eligible:
            eligible.append((candidate, assessment))
        else:
            rejected.append(assessment)
    if eligible:
        best, best_assessment = min(eligible, key=lambda pair: _choice_key(*pair))
        assert best_assessment.match_length is not None  # noqa: S101 - eligible covers the site
        return ContractorChosen(
            contractor=best.contractor,
            match_length=best_assessment.match_length,
            open_offers=best.open_offers,
            eligible_count=len(eligible),
        )
    rejected.sort(key=lambda a: (a.failed_criteria, a.contractor_id))
    return NoEligibleContractor(
        reason=unfilled_reason(request, rejected),
        considered=tuple(rejected[: max(0, considered_limit)]),
        considered_total=len(rejected),
    )


__all__ = [
    "DEFAULT_CONSIDERED_LIMIT",
    "MAX_REASONS_PER_CONTRACTOR",
    "Assessment",
    "Candidate",
    "ContractorChosen",
    "DispatchDecision",
    "DispatchRequest",
    "NoEligibleContractor",
    "assess",
    "choose_contractor",
    "unfilled_reason",
]
