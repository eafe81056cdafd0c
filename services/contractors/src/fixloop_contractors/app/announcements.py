"""What the contractors service announces when an offer ends: withdrawn, declined or run out.

One mapping for every use case that changes offers (the lifecycle, the expiry timer, an
operator's assignment), so each ending is told the same way.
"""

from __future__ import annotations

from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.offers import OfferStatus
from fixloop_shared.contracts import (
    AssignmentDeclined,
    AssignmentExpired,
    AssignmentWithdrawn,
    EventPayload,
)


def announcement_of(change: OfferChange) -> EventPayload | None:
    """What the contractors service tells of a change: an offer withdrawn, declined or run out."""
    offer = change.after
    if not change.before.is_open or offer.closed_at is None:
        return None
    work_order_id, offer_id, contractor_id = (
        offer.work_order_id,
        offer.offer_id,
        offer.contractor_id,
    )
    if offer.status is OfferStatus.WITHDRAWN:
        assert offer.reason is not None  # noqa: S101 - set when withdrawn
        return AssignmentWithdrawn(
            work_order_id=work_order_id,
            offer_id=offer_id,
            contractor_id=contractor_id,
            reason=offer.reason,
            withdrawn_at=offer.closed_at,
        )
    if offer.status is OfferStatus.DECLINED:
        return AssignmentDeclined(
            work_order_id=work_order_id,
            offer_id=offer_id,
            contractor_id=contractor_id,
            reason=offer.reason,
            declined_at=offer.closed_at,
            dispatch_round=offer.dispatch_round,
        )
    if offer.status is OfferStatus.TIMED_OUT:
        return AssignmentExpired(
            work_order_id=work_order_id,
            offer_id=offer_id,
            contractor_id=contractor_id,
            expired_at=offer.closed_at,
            dispatch_round=offer.dispatch_round,
        )
    return None


__all__ = ["announcement_of"]
