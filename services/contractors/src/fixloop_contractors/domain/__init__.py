"""Pure contractor-registry and dispatch logic: no I/O, no framework imports."""

from fixloop_contractors.domain.dispatch import (
    Assessment,
    Candidate,
    ContractorChosen,
    DispatchDecision,
    DispatchRequest,
    NoEligibleContractor,
    assess,
    choose_contractor,
)
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
    normalize_postal_code,
)
from fixloop_contractors.domain.offers import JobStatus, Load, Offer, OfferStatus

__all__ = [
    "Assessment",
    "Candidate",
    "Contractor",
    "ContractorChosen",
    "Credential",
    "CredentialKind",
    "DispatchDecision",
    "DispatchRequest",
    "JobStatus",
    "Load",
    "NoEligibleContractor",
    "Offer",
    "OfferChange",
    "OfferStatus",
    "ServiceRegion",
    "assess",
    "choose_contractor",
    "normalize_postal_code",
]
