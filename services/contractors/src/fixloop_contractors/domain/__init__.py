"""Pure contractor-registry and dispatch logic: no I/O, no framework imports."""

from fixloop_contractors.domain.dispatch import (
    Assessment,
    Candidate,
    ContractorChosen,
    DispatchDecision,
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
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    GeoPoint,
    ServiceRegion,
    normalize_postal_code,
)
from fixloop_contractors.domain.offers import JobStatus, Load, Offer, OfferStatus
from fixloop_contractors.domain.rota import (
    DayException,
    OnCall,
    OnCallRota,
    RotaLayer,
    WallClock,
    Weekday,
    WeeklyWindow,
)
from fixloop_contractors.domain.scoring import Score, ScoreWeights, TravelBasis

__all__ = [
    "Assessment",
    "Candidate",
    "Contractor",
    "ContractorChosen",
    "Credential",
    "CredentialKind",
    "DayException",
    "DispatchDecision",
    "DispatchRanking",
    "DispatchRequest",
    "EligibilityRule",
    "GeoPoint",
    "JobStatus",
    "Load",
    "NoEligibleContractor",
    "Offer",
    "OfferChange",
    "OfferStatus",
    "OnCall",
    "OnCallRota",
    "RankedCandidate",
    "RotaLayer",
    "Score",
    "ScoreWeights",
    "ServiceRegion",
    "TenantPreferences",
    "TravelBasis",
    "WallClock",
    "Weekday",
    "WeeklyWindow",
    "assess",
    "choose_contractor",
    "normalize_postal_code",
    "rank_candidates",
]
