"""A contractor's contact as events carry it (to the notices sent to it and about it)."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from fixloop_contractors.domain.model import Contractor
from fixloop_shared.contracts import ContractorContact

log = logging.getLogger(__name__)


def contractor_contact(contractor: Contractor) -> ContractorContact | None:
    """The contractor's e-mail, phone and time zone; a phone the contract does not accept is
    left out, and a contact that does not fit at all is None (the event goes out without it)."""
    try:
        return ContractorContact(
            email=contractor.email, phone=contractor.phone, timezone=contractor.timezone
        )
    except ValidationError:
        pass
    try:
        return ContractorContact(email=contractor.email, timezone=contractor.timezone)
    except ValidationError:
        log.warning(
            "contractor's contact left out of its events",
            extra={"contractor_id": contractor.contractor_id},
        )
        return None


__all__ = ["contractor_contact"]
