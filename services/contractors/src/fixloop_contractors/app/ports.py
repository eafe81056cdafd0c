"""What the use cases need from the outside world; the MongoDB adapters implement these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from fixloop_contractors.app.explain import DispatchExplanation
from fixloop_contractors.domain.deadlines import DispatchDeadline
from fixloop_contractors.domain.dispatch import Candidate, DispatchRequest
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import Contractor
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import EventPayload
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.vocabulary import Priority


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


class ContractorRegistry(Protocol):
    async def upsert(self, contractors: Sequence[Contractor]) -> UpsertCounts:
        """Insert or replace the profiles (keyed by contractor id), all or nothing.

        A contractor's load (open offers and jobs) is kept: importing a profile never resets it.
        """
        ...

    async def list_contractors(self, *, tenant: str | None = None) -> list[Candidate]:
        """Every contractor (of one tenant, if given) with its load, by contractor id."""
        ...


class QueueState(StrEnum):
    UNFILLED = "unfilled"
    """Nobody could be offered it, or nobody took it: an operator decides."""
    ESCALATED = "escalated"
    """Not taken in time; offers go on, and an operator may step in."""


@dataclass(frozen=True, slots=True)
class QueuedOrder:
    """A work order waiting in the operators' dispatch queue: unfilled or escalated."""

    work_order_id: str
    tenant: str
    site: str
    equipment_class: str
    priority: str
    waiting_since: datetime
    """When it was first dispatched (its first offer, or its first unfilled decision)."""
    queued_at: datetime
    """When it was found unfilled, or escalated."""
    rounds: int
    """Offers made so far."""
    reason: str
    state: QueueState = QueueState.UNFILLED


@dataclass(frozen=True, slots=True)
class DispatchHistory:
    """Every decision made so far for one work order: what it asked for, and each offer."""

    request: DispatchRequest
    priority: Priority
    rounds: int
    """Decisions made (offers and unfilled ones); the next offer is round ``rounds + 1``."""
    offers: tuple[Offer, ...]
    """Every offer made, by round, whatever became of it."""
    unfilled: bool
    """The latest decision found nobody (the order waits for an operator)."""

    @property
    def settled(self) -> bool:
        """Nothing more to dispatch: an offer is still open, or one was accepted."""
        return any(o.is_open or o.job is not None for o in self.offers)

    @property
    def offered_to(self) -> frozenset[str]:
        """The contractors that had an offer of the order (never offered it again)."""
        return frozenset(o.contractor_id for o in self.offers)


class DispatchTransaction(Protocol):
    """One atomic unit: the decision, the load change, the events (the kernel claims the event)."""

    async def decision_exists(self, work_order_id: str) -> bool:
        """True if this work order was already offered or found unfillable."""
        ...

    async def candidates(self, request: DispatchRequest, *, at: datetime) -> Sequence[Candidate]:
        """The contractors that may be eligible, with their load.

        It may return more than the eligible ones (the domain decides), never fewer.
        """
        ...

    async def history(self, work_order_id: str, *, tenant: str | None) -> DispatchHistory | None:
        """The order's decisions so far (including ones made earlier in this unit of work);
        None if none was made here. ``tenant`` None: whichever tenant's (operators only)."""
        ...

    async def contractor(self, contractor_id: str) -> Candidate | None:
        """One contractor with its load, or None."""
        ...

    async def dequeue(self, work_order_id: str) -> None:
        """The order leaves the operators' dispatch queue (an operator gave it to someone)."""
        ...

    async def save_change(self, change: OfferChange) -> bool:
        """As :meth:`OfferTransaction.save_change` (an operator's assignment withdraws offers)."""
        ...

    async def save_offer(
        self, offer: Offer, request: DispatchRequest, priority: Priority, *, correlationid: str
    ) -> None:
        """Record the open offer, add one to the contractor's open-offer count, and set the
        offer's expiry (due work). A second decision of the same round of the order fails (the
        unit of work is tried again, and then finds it)."""
        ...

    async def save_unfilled(
        self,
        *,
        decision_id: str,
        request: DispatchRequest,
        reason: str,
        considered_total: int,
        decided_at: datetime,
        dispatch_round: int,
        priority: Priority,
    ) -> None:
        """Record that nobody could be offered the work order (in ``dispatch_round``)."""
        ...

    async def save_explanation(self, explanation: DispatchExplanation) -> None:
        """Keep why the round's decision went as it did (every contractor assessed)."""
        ...

    async def arm_deadline(self, deadline: DispatchDeadline, *, correlationid: str) -> None:
        """Set the order's dispatch deadlines (due work), at its first offer."""
        ...

    async def escalate_deadline(self, work_order_id: str, *, at: datetime, reason: str) -> None:
        """The order was escalated: it shows in the dispatch queue, and its deadline moves on to
        the time limit."""
        ...

    async def forget_deadline(self, work_order_id: str) -> None:
        """The order's dispatch deadlines are over (taken, unfilled, given to someone, or
        cancelled); an escalated order leaves the dispatch queue."""
        ...

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        """Queue an event; it is published only if the transaction commits."""
        ...


class DispatchLedger(Protocol):
    def within(self, uow: UnitOfWork) -> DispatchTransaction:
        """The dispatch records, read and written inside the kernel's unit of work."""
        ...


class OfferTransaction(Protocol):
    """The offers of work orders and the contractors' load, inside the kernel's unit of work."""

    async def offers_of(self, work_order_id: str, *, tenant: str) -> Sequence[Offer]:
        """Every offer made for the tenant's work order (including ones made earlier in this unit
        of work), whatever its state; empty if there is none (an unfilled order has none)."""
        ...

    async def save_change(self, change: OfferChange) -> bool:
        """Record ``change.after`` if the offer is still as ``change.before`` (status and job), and
        move its contractor's load by ``change.load``; False, and nothing written, if it is not."""
        ...

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        """Queue an event; it is published only if the transaction commits."""
        ...


class OfferLedger(Protocol):
    def within(self, uow: UnitOfWork) -> OfferTransaction:
        """The offers, read and written inside the kernel's unit of work."""
        ...


class CredentialAlertSchedule(Protocol):
    """Where the alerts of contractors' credentials are armed (due work of the service)."""

    async def arm_credential_alerts(
        self, contractors: Sequence[Contractor], *, now: datetime
    ) -> int:
        """Arm the alerts the domain says to arm at ``now`` for each credential of these
        (just imported) contractors; returns how many were armed.

        Each alert once: one armed before for the same expiry date is left as it is (fired or
        not), also across re-imports. A renewed credential (new expiry date, or a new number)
        gets its alerts armed afresh; the unfired ones of what it replaced are dropped.
        """
        ...
