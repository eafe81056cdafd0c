"""Offers: a work order offered to one contractor for a limited time.

An offer is open from ``offered_at`` until just before ``expires_at``. It leaves the open state
exactly once: accepted or declined by the contractor it was offered to, timed out, or withdrawn
(the order was given to another contractor, or cancelled). An accepted offer is the contractor's
job on the order, open until the work is completed or the order cancelled (a reopened order opens
it again).

Each contractor's load is two counts: its open offers and its open jobs; together they count
against its capacity and weigh in its dispatch score. What an offer adds to them is
:attr:`Offer.load`; a change of an offer changes its contractor's counts by the difference, in the
transaction that records it.

The opening (``fixloop.assignment.offered.v1``) and the work order's lifecycle as the orders
service reports it (see :mod:`fixloop_contractors.domain.lifecycle`) are wired today. ``accept``,
``decline`` and ``time_out`` check the contractor's own answers and the offer's time; the
``record_*`` transitions and ``withdraw`` record what the orders service already decided.
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
    WITHDRAWN = "withdrawn"


class JobStatus(StrEnum):
    """The work an accepted offer became."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Load:
    """A contractor's load, or a change of it: open offers and open jobs."""

    open_offers: int = 0
    open_jobs: int = 0

    def __sub__(self, other: Load) -> Load:
        return Load(self.open_offers - other.open_offers, self.open_jobs - other.open_jobs)

    @property
    def is_zero(self) -> bool:
        return self.open_offers == 0 and self.open_jobs == 0


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
    dispatch_round: int = 1
    """Which dispatch of the work order made the offer (1: the one on its receipt)."""
    fan_slot: int = 0
    """Its place among the offers of one round made at once (an emergency goes to several
    contractors together; the first to accept takes it)."""
    reason: str | None = None
    """Why it was declined or withdrawn, if known."""
    job: JobStatus | None = None
    """Accepted offers only: the state of the job it became."""

    @classmethod
    def open(
        cls,
        *,
        offer_id: str,
        request: DispatchRequest,
        contractor_id: str,
        at: datetime,
        ttl: timedelta,
        dispatch_round: int = 1,
        fan_slot: int = 0,
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
            dispatch_round=dispatch_round,
            fan_slot=fan_slot,
        )

    @property
    def is_open(self) -> bool:
        return self.status is OfferStatus.OPEN

    @property
    def load(self) -> Load:
        """What this offer adds to its contractor's load."""
        return Load(
            open_offers=1 if self.is_open else 0,
            open_jobs=1 if self.job is JobStatus.OPEN else 0,
        )

    def is_expired(self, at: datetime) -> bool:
        return at >= self.expires_at

    def _answer(self, contractor_id: str, at: datetime, status: OfferStatus) -> Offer:
        self._require_open()
        if contractor_id != self.contractor_id:
            msg = f"offer {self.offer_id} was not made to {contractor_id}"
            raise NotOfferedToContractorError(msg)
        if self.is_expired(at):
            msg = f"offer {self.offer_id} expired at {self.expires_at.isoformat()}"
            raise OfferExpiredError(msg)
        return self._closed(status, at)

    def _closed(self, status: OfferStatus, at: datetime, reason: str | None = None) -> Offer:
        job = JobStatus.OPEN if status is OfferStatus.ACCEPTED else None
        return replace(self, status=status, closed_at=at, reason=reason, job=job)

    def _require_open(self) -> None:
        if not self.is_open:
            msg = f"offer {self.offer_id} is already {self.status.value}"
            raise OfferNotOpenError(msg)

    def accept(self, contractor_id: str, at: datetime) -> Offer:
        return self._answer(contractor_id, at, OfferStatus.ACCEPTED)

    def decline(self, contractor_id: str, at: datetime) -> Offer:
        return self._answer(contractor_id, at, OfferStatus.DECLINED)

    def time_out(self, at: datetime) -> Offer:
        self._require_open()
        if not self.is_expired(at):
            msg = f"offer {self.offer_id} runs until {self.expires_at.isoformat()}"
            raise OfferError(msg)
        return replace(self, status=OfferStatus.TIMED_OUT, closed_at=at)

    def record_acceptance(self, at: datetime) -> Offer:
        """The order was assigned through this offer: accepted, whenever that was; a job opens."""
        self._require_open()
        return self._closed(OfferStatus.ACCEPTED, at)

    def record_decline(self, at: datetime, reason: str | None = None) -> Offer:
        """The contractor declined the offer (as the orders service recorded it)."""
        self._require_open()
        return self._closed(OfferStatus.DECLINED, at, reason)

    def withdraw(self, at: datetime, reason: str) -> Offer:
        """The offer no longer stands: the order went to someone else, or was cancelled."""
        self._require_open()
        return self._closed(OfferStatus.WITHDRAWN, at, reason)

    def _job_moved(self, expected: JobStatus, to: JobStatus) -> Offer:
        if self.job is not expected:
            state = "no job" if self.job is None else f"its job is {self.job.value}"
            msg = f"offer {self.offer_id}: {state}, not {expected.value}"
            raise OfferError(msg)
        return replace(self, job=to)

    def complete_job(self) -> Offer:
        return self._job_moved(JobStatus.OPEN, JobStatus.COMPLETED)

    def reopen_job(self) -> Offer:
        return self._job_moved(JobStatus.COMPLETED, JobStatus.OPEN)

    def cancel_job(self) -> Offer:
        return self._job_moved(JobStatus.OPEN, JobStatus.CANCELLED)


__all__ = [
    "JobStatus",
    "Load",
    "NotOfferedToContractorError",
    "Offer",
    "OfferError",
    "OfferExpiredError",
    "OfferNotOpenError",
    "OfferStatus",
]
