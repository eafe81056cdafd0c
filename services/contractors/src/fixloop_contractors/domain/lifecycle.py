"""What a work order's lifecycle does to its offers and to the contractors' load.

The orders service decides each step of a work order's life and reports it; the contractors
service follows it for the offers it made:

- **assigned** through one of its offers: that offer is accepted (its contractor has one open
  offer less and one open job more); every other offer of the order still open is withdrawn
  (:data:`ASSIGNED_ELSEWHERE`).
- **offer declined**: that offer is declined, with the contractor's reason.
- **offer ran out** (this service's own timer): an offer still open at its expiry times out.
- **cancelled**: every offer still open is withdrawn (:data:`ORDER_CANCELLED`), and the open job,
  if the order was assigned, is cancelled.
- **work completed**: the open job is completed; **reopened** to the contractor who had it, the
  completed job is open again.

Each function takes every offer of the work order and returns the changes, each from the state it
was computed from (``before``) to the new one (``after``): a store writes a change only if the
offer is still as it was, so nothing happens twice. An offer that is no longer open is never
changed again; a step already applied gives no change. ``None`` means the work order, or the offer
the step names, is not known here (an order from before this service's records, say): nothing is
to be done.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fixloop_contractors.domain.offers import JobStatus, Load, Offer, OfferStatus

ASSIGNED_ELSEWHERE = "assigned to another contractor"
"""Why an offer is withdrawn when the order is assigned through another one."""
ORDER_CANCELLED = "work order cancelled"
"""Why an offer is withdrawn when the order is cancelled."""


@dataclass(frozen=True, slots=True)
class OfferChange:
    """One offer from the state it was read in (``before``) to its new one (``after``)."""

    before: Offer
    after: Offer

    def __post_init__(self) -> None:
        if self.before.offer_id != self.after.offer_id:
            msg = f"a change of offer {self.before.offer_id} to {self.after.offer_id}"
            raise ValueError(msg)

    @property
    def contractor_id(self) -> str:
        return self.after.contractor_id

    @property
    def load(self) -> Load:
        """How the change moves its contractor's load."""
        return self.after.load - self.before.load

    @property
    def ended_unanswered(self) -> bool:
        """Whether this change ends an open offer without a taker: declined or run out (the
        order then goes to its next dispatch round)."""
        return self.before.is_open and self.after.status in {
            OfferStatus.DECLINED,
            OfferStatus.TIMED_OUT,
        }

    @property
    def withdrawn(self) -> bool:
        """Whether this change withdraws an open offer (the contractor is to be told)."""
        return self.before.is_open and self.after.status is OfferStatus.WITHDRAWN


Changes = tuple[OfferChange, ...]


def _in_order(offers: Iterable[Offer]) -> list[Offer]:
    return sorted(offers, key=lambda o: (o.dispatch_round, o.offered_at, o.offer_id))


def _withdraw_open(offers: Iterable[Offer], at: datetime, reason: str) -> list[OfferChange]:
    return [OfferChange(o, o.withdraw(at, reason)) for o in offers if o.is_open]


def order_assigned(offers: Iterable[Offer], *, offer_id: str, at: datetime) -> Changes | None:
    """The order was assigned through ``offer_id``: accept it, withdraw the other open offers.

    ``None`` if ``offer_id`` is not one of the order's offers. An offer that is no longer open
    (accepted already, say) is left as it is; the other open offers are withdrawn all the same.
    """
    known = _in_order(offers)
    accepted = next((o for o in known if o.offer_id == offer_id), None)
    if accepted is None:
        return None
    changes: list[OfferChange] = []
    if accepted.is_open:
        changes.append(OfferChange(accepted, accepted.record_acceptance(at)))
    others = [o for o in known if o.offer_id != offer_id]
    changes.extend(_withdraw_open(others, at, ASSIGNED_ELSEWHERE))
    return tuple(changes)


def offer_declined(
    offers: Iterable[Offer], *, offer_id: str, at: datetime, reason: str | None
) -> Changes | None:
    """The contractor declined ``offer_id``: declined if it is still open (``None``: unknown)."""
    declined = next((o for o in offers if o.offer_id == offer_id), None)
    if declined is None:
        return None
    if not declined.is_open:
        return ()
    return (OfferChange(declined, declined.record_decline(at, reason)),)


def offer_ran_out(offers: Iterable[Offer], *, offer_id: str, at: datetime) -> Changes | None:
    """``offer_id`` was not answered in time: timed out if it is still open and its time is up
    at ``at`` (``None``: unknown; no change: answered already, or not due yet)."""
    offer = next((o for o in offers if o.offer_id == offer_id), None)
    if offer is None:
        return None
    if not offer.is_open or not offer.is_expired(at):
        return ()
    return (OfferChange(offer, offer.time_out(at)),)


def order_cancelled(offers: Iterable[Offer], *, at: datetime) -> Changes | None:
    """The order was cancelled: withdraw its open offers and cancel its open job.

    ``None`` if the order has no offers here.
    """
    known = _in_order(offers)
    if not known:
        return None
    changes = _withdraw_open(known, at, ORDER_CANCELLED)
    changes.extend(OfferChange(o, o.cancel_job()) for o in known if o.job is JobStatus.OPEN)
    return tuple(changes)


def work_completed(offers: Iterable[Offer]) -> Changes | None:
    """The contractor completed the work: its open job is completed.

    ``None`` if no offer of the order was accepted here (no job is known).
    """
    jobs = [o for o in _in_order(offers) if o.job is not None]
    if not jobs:
        return None
    return tuple(OfferChange(o, o.complete_job()) for o in jobs if o.job is JobStatus.OPEN)


def order_reopened(offers: Iterable[Offer], *, contractor_id: str) -> Changes | None:
    """The work went back to ``contractor_id``: its completed job on the order is open again.

    ``None`` if that contractor has no job on the order here. Only the latest job reopens, and
    only if no job of the order is open already.
    """
    jobs = [o for o in _in_order(offers) if o.job is not None]
    mine = [o for o in jobs if o.contractor_id == contractor_id]
    if not mine:
        return None
    latest = mine[-1]
    if latest.job is not JobStatus.COMPLETED or any(o.job is JobStatus.OPEN for o in jobs):
        return ()
    return (OfferChange(latest, latest.reopen_job()),)


__all__ = [
    "ASSIGNED_ELSEWHERE",
    "ORDER_CANCELLED",
    "Changes",
    "OfferChange",
    "offer_declined",
    "offer_ran_out",
    "order_assigned",
    "order_cancelled",
    "order_reopened",
    "work_completed",
]
