"""Offers: a work order offered to one contractor for a limited time.

An offer is open from ``offered_at`` until just before ``expires_at``. It leaves the open state
exactly once: accepted or declined by the contractor it was offered to, or timed out. Each
contractor's open-offer count (its load, used to choose between equally local contractors) goes up
when an offer opens and down when it closes; both happen in the transaction that records the change.

Only the opening is wired today (``fixloop.assignment.offered.v1``). The transitions below are what
the accept/decline and time-out flows apply; accepting emits ``fixloop.assignment.accepted.v1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from fixloop_contractors.domain.dispatch import DispatchRequest


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"


class OfferError(Exception):
    """A transition the offer's current state does not allow."""


class OfferNotOpenError(OfferError):
    """The offer was already accepted, declined or timed out."""


class OfferExpiredError(OfferError):
    """The offer's time ran out before the contractor answered."""


class NotOfferedToContractorError(OfferError):
    """Someone other than the contractor the order was offered to tried to answer."""


@dataclass(frozen=True, slots=True)
class Offer:
    offer_id: str
    work_order_id: str
    tenant: str
    contractor_id: str
    offered_at: datetime
    expires_at: datetime
    status: OfferStatus = OfferStatus.OPEN
    closed_at: datetime | None = None

    @classmethod
    def open(
        cls,
        *,
        offer_id: str,
        request: DispatchRequest,
        contractor_id: str,
        at: datetime,
        ttl: timedelta,
    ) -> Offer:
        if ttl <= timedelta(0):
            msg = f"an offer needs a positive time to live, not {ttl}"
            raise ValueError(msg)
        return cls(
            offer_id=offer_id,
            work_order_id=request.work_order_id,
            tenant=request.tenant,
            contractor_id=contractor_id,
            offered_at=at,
            expires_at=at + ttl,
        )

    @property
    def is_open(self) -> bool:
        return self.status is OfferStatus.OPEN

    def is_expired(self, at: datetime) -> bool:
        return at >= self.expires_at

    def _answer(self, contractor_id: str, at: datetime, status: OfferStatus) -> Offer:
        if not self.is_open:
            msg = f"offer {self.offer_id} is already {self.status.value}"
            raise OfferNotOpenError(msg)
        if contractor_id != self.contractor_id:
            msg = f"offer {self.offer_id} was not made to {contractor_id}"
            raise NotOfferedToContractorError(msg)
        if self.is_expired(at):
            msg = f"offer {self.offer_id} expired at {self.expires_at.isoformat()}"
            raise OfferExpiredError(msg)
        return replace(self, status=status, closed_at=at)

    def accept(self, contractor_id: str, at: datetime) -> Offer:
        return self._answer(contractor_id, at, OfferStatus.ACCEPTED)

    def decline(self, contractor_id: str, at: datetime) -> Offer:
        return self._answer(contractor_id, at, OfferStatus.DECLINED)

    def time_out(self, at: datetime) -> Offer:
        if not self.is_open:
            msg = f"offer {self.offer_id} is already {self.status.value}"
            raise OfferNotOpenError(msg)
        if not self.is_expired(at):
            msg = f"offer {self.offer_id} runs until {self.expires_at.isoformat()}"
            raise OfferError(msg)
        return replace(self, status=OfferStatus.TIMED_OUT, closed_at=at)


__all__ = [
    "NotOfferedToContractorError",
    "Offer",
    "OfferError",
    "OfferExpiredError",
    "OfferNotOpenError",
    "OfferStatus",
]
