"""Taking lifecycle steps: load the order, let the domain decide, save, publish, set timers.

One use case for every edge: partners and contractors (gRPC), the source platform (commands on
the inbound topic), other services' events (an offer starts dispatch) and the system's own timers
(automatic verification, closing, archiving). Each step is taken in the caller's unit of work:
the order, its new timeline entry, the outgoing ``fixloop.workorder.<step>.v1`` event and the
timers it sets are written together or not at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fixloop_orders.app.intake import received_event
from fixloop_orders.app.lifecycle_events import event_type_of, lifecycle_event
from fixloop_orders.app.ports import (
    LifecycleTimers,
    OfferBook,
    OfferRecord,
    OfferStatus,
    TimerKind,
    WorkOrderRepository,
    utc_now,
)
from fixloop_orders.domain.lifecycle import (
    BEFORE_ASSIGNMENT,
    DEFAULT_REOPEN_WINDOW,
    SYSTEM,
    Actor,
    Decision,
    Request,
    Step,
    follow_up_external_id,
    needs_follow_up,
)
from fixloop_orders.domain.work_order import ExternalOrderKey, TimelineEntry, WorkOrder
from fixloop_shared.errors import IllegalTransition, NotFound
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import ActorKind, WorkOrderState

log = logging.getLogger(__name__)

WORK_ORDER_NOT_FOUND = "work order not found"
OFFER_NOT_FOUND = "offer not found"


class WorkOrderNotFoundError(NotFound):
    """The caller has no such work order (another tenant's or contractor's looks the same)."""

    reason = "unknown-work-order"
    caller_message = WORK_ORDER_NOT_FOUND
    resource_type = "fixloop.v1.WorkOrder"


class OfferNotFoundError(NotFound):
    """The contractor has no such offer (another contractor's looks the same)."""

    reason = "unknown-offer"
    caller_message = OFFER_NOT_FOUND
    resource_type = "fixloop.v1.Offer"


class OfferNotOpenError(IllegalTransition):
    """The offer was accepted, declined, withdrawn or has expired."""


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """The lifecycle's timings (settings of the orders service)."""

    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW
    verify_after: timedelta = timedelta(hours=72)
    close_after: timedelta = timedelta(0)
    archive_after: timedelta = timedelta(days=30)


class WorkOrderLifecycle:
    """Takes steps on work orders for every kind of actor."""

    def __init__(
        self,
        orders: WorkOrderRepository,
        offers: OfferBook,
        timers: LifecycleTimers,
        *,
        policy: LifecyclePolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._orders = orders
        self._offers = offers
        self._timers = timers
        self.policy = policy or LifecyclePolicy()
        self._clock = clock
        self._new_id = new_id

    def now(self) -> datetime:
        return self._clock()

    # ----------------------------------------------------------------- finding the order

    async def order_of_tenant(self, uow: UnitOfWork, tenant: str, work_order_id: str) -> WorkOrder:
        order = await self._orders.get(uow, tenant, work_order_id)
        if order is None:
            msg = f"tenant {tenant!r} has no work order {work_order_id!r}"
            raise WorkOrderNotFoundError(msg)
        return order

    async def order_of_platform(self, uow: UnitOfWork, key: ExternalOrderKey) -> WorkOrder:
        """The order a source platform submitted (a platform acts on its own orders only)."""
        work_order_id = await self._orders.find_id_by_key(uow, key)
        order = (
            None
            if work_order_id is None
            else await self._orders.get(uow, key.tenant, work_order_id)
        )
        if order is None or order.source_platform != key.source_platform:
            msg = (
                f"source platform {key.source_platform!r} submitted no order "
                f"{key.external_id!r} for tenant {key.tenant!r}"
            )
            raise WorkOrderNotFoundError(msg)
        return order

    async def job_of_contractor(
        self, uow: UnitOfWork, contractor_id: str, work_order_id: str
    ) -> WorkOrder:
        order = await self._orders.get_job(uow, contractor_id, work_order_id)
        if order is None:
            msg = f"contractor {contractor_id!r} holds no job {work_order_id!r}"
            raise WorkOrderNotFoundError(msg)
        return order

    async def offer_of_contractor(
        self, uow: UnitOfWork, contractor_id: str, offer_id: str
    ) -> OfferRecord:
        offer = await self._offers.get(uow, offer_id)
        if offer is None or offer.contractor_id != contractor_id:
            msg = f"contractor {contractor_id!r} has no offer {offer_id!r}"
            raise OfferNotFoundError(msg)
        return offer

    # ----------------------------------------------------------------- taking steps

    async def take(
        self,
        uow: UnitOfWork,
        order: WorkOrder,
        request: Request,
        *,
        via: str,
        correlationid: str | None = None,
    ) -> Decision:
        """Take ``request`` on ``order`` (loaded in ``uow``): decide, save, publish, set timers."""
        policy = self.policy
        decision = order.take(
            request,
            entry_id=self._new_id(),
            event_type=event_type_of(request.step),
            via=via,
            reopen_window=policy.reopen_window,
            verify_after=policy.verify_after,
        )
        await self._orders.save(uow, order)
        uow.emit(
            lifecycle_event(order, request, decision, via=via),
            topic=Topic.WORKORDERS_EVENTS,
            key=order.work_order_id,
            tenant=order.tenant,
            correlationid=correlationid,
        )
        await self._set_timers(uow, order, request)
        log.info(
            "work order step taken",
            extra={
                "work_order_id": order.work_order_id,
                "step": request.step.value,
                "state": decision.after.value,
                "actor_kind": request.actor.kind.value,
                "actor": request.actor.id,
                "via": via,
            },
        )
        return decision

    async def _set_timers(self, uow: UnitOfWork, order: WorkOrder, request: Request) -> None:
        step, policy = request.step, self.policy
        where = {"tenant": order.tenant, "work_order_id": order.work_order_id}
        if step is Step.COMPLETE and order.verify_by is not None:
            await self._timers.set(uow, **where, kind=TimerKind.AUTO_VERIFY, at=order.verify_by)
        elif step is Step.VERIFY:
            await self._timers.clear(uow, order.work_order_id, TimerKind.AUTO_VERIFY)
            await self._timers.set(
                uow, **where, kind=TimerKind.CLOSE, at=request.at + policy.close_after
            )
        elif step in (Step.CLOSE, Step.CANCEL):
            if step is Step.CLOSE:
                await self._timers.clear(uow, order.work_order_id, TimerKind.CLOSE)
            await self._timers.set(
                uow, **where, kind=TimerKind.ARCHIVE, at=request.at + policy.archive_after
            )
        elif step is Step.REJECT:
            for kind in TimerKind:
                await self._timers.clear(uow, order.work_order_id, kind)
        elif step is Step.ARCHIVE:
            await self._timers.clear(uow, order.work_order_id, TimerKind.ARCHIVE)

    async def reject(
        self,
        uow: UnitOfWork,
        order: WorkOrder,
        actor: Actor,
        reason: str,
        *,
        via: str,
        correlationid: str | None = None,
    ) -> WorkOrder | None:
        """The requester rejects the completed work: the order is reopened, back to its
        contractor; or, closed longer ago than its reopen window (or archived), it stays as it is
        and a new order for the same work is received, linked to it. Returns that follow-up."""
        now = self._clock()
        if not needs_follow_up(order.standing(self.policy.reopen_window), now):
            request = Request(Step.REJECT, actor, now, reason=reason)
            await self.take(uow, order, request, via=via, correlationid=correlationid)
            return None
        follow_up_id = self._new_id()
        details = replace(
            order.details,
            external_id=follow_up_external_id(order.details.external_id, follow_up_id),
            reported_at=None,
        )
        follow_up = WorkOrder.receive(
            work_order_id=follow_up_id,
            tenant=order.tenant,
            source_platform=order.source_platform,
            details=details,
            received_at=now,
            submission_id=f"follow-up:{order.work_order_id}:{follow_up_id}",
            submission_type=event_type_of(Step.REJECT),
            follow_up_of=order.work_order_id,
        )
        await self._orders.add(uow, follow_up)
        uow.emit(
            received_event(follow_up),
            topic=Topic.WORKORDERS_EVENTS,
            key=follow_up.work_order_id,
            tenant=follow_up.tenant,
            correlationid=correlationid,
        )
        order.note(
            TimelineEntry(
                entry_id=f"follow-up:{follow_up_id}",
                at=now,
                kind="follow_up_created",
                summary=f"Work rejected after the reopen window: follow-up order {follow_up_id}: "
                f"{reason}"[:500],
                details={
                    "follow_up_work_order_id": follow_up_id,
                    "reason": reason,
                    "actor_kind": actor.kind.value,
                    **({"actor_id": actor.id} if actor.id else {}),
                },
            ),
            recorded_at=now,
        )
        await self._orders.append_timeline(uow, order)
        log.info(
            "follow-up order created",
            extra={"work_order_id": order.work_order_id, "follow_up": follow_up_id},
        )
        return follow_up

    # ----------------------------------------------------------------- offers

    async def accept_offer(
        self,
        uow: UnitOfWork,
        actor: Actor,
        offer_id: str,
        *,
        via: str,
        correlationid: str | None = None,
    ) -> WorkOrder:
        """The contractor ``actor`` accepts its offer: the order is assigned to it."""
        contractor_id = actor.id or ""
        offer = await self.offer_of_contractor(uow, contractor_id, offer_id)
        now = self._clock()
        if not offer.is_open_at(now):
            status = "expired" if offer.status is OfferStatus.OPEN else offer.status.value
            msg = f"the offer is {status}"
            raise OfferNotOpenError(msg)
        order = await self.order_of_tenant(uow, offer.tenant, offer.work_order_id)
        request = Request(
            Step.ASSIGN, actor, now, offer_id=offer_id, contractor_id=offer.contractor_id
        )
        await self.take(uow, order, request, via=via, correlationid=correlationid)
        await self._offers.settle(uow, offer_id, OfferStatus.ACCEPTED, now)
        return order

    async def decline_offer(
        self,
        uow: UnitOfWork,
        actor: Actor,
        offer_id: str,
        reason: str,
        *,
        via: str,
        correlationid: str | None = None,
    ) -> WorkOrder:
        """The contractor ``actor`` declines its offer, with a reason (recorded and published)."""
        offer = await self.offer_of_contractor(uow, actor.id or "", offer_id)
        now = self._clock()
        if not offer.is_open_at(now):
            status = "expired" if offer.status is OfferStatus.OPEN else offer.status.value
            msg = f"the offer is {status}"
            raise OfferNotOpenError(msg)
        order = await self.order_of_tenant(uow, offer.tenant, offer.work_order_id)
        request = Request(Step.DECLINE_OFFER, actor, now, reason=reason, offer_id=offer_id)
        await self.take(uow, order, request, via=via, correlationid=correlationid)
        await self._offers.settle(uow, offer_id, OfferStatus.DECLINED, now)
        return order

    async def offered(
        self, uow: UnitOfWork, order: WorkOrder, offer: OfferRecord, *, correlationid: str | None
    ) -> None:
        """An offer was made: remember it; the first offer moves a received order to dispatching."""
        await self._offers.add(uow, offer)
        if order.state is WorkOrderState.RECEIVED:
            # Taken when the orders service learns of the offer, after the offer's own entry.
            request = Request(Step.START_DISPATCH, SYSTEM, self._clock(), offer_id=offer.offer_id)
            await self.take(uow, order, request, via="events", correlationid=correlationid)

    async def assigned_by_operator(
        self,
        uow: UnitOfWork,
        order: WorkOrder,
        offer: OfferRecord,
        *,
        operator: str,
        reason: str | None,
        correlationid: str | None,
    ) -> bool:
        """An operator gave the order to ``offer``'s contractor from the dispatch queue: it is
        assigned at once. False (and only the offer recorded) if the order is past assignment
        (cancelled or assigned meanwhile): the contractors service withdraws the offer then."""
        if order.state not in BEFORE_ASSIGNMENT:
            log.info(
                "operator assignment of a work order past assignment; offer left to be withdrawn",
                extra={"work_order_id": order.work_order_id, "state": order.state.value},
            )
            return False
        now = self._clock()
        request = Request(
            Step.ASSIGN,
            Actor(ActorKind.OPERATOR, operator),
            now,
            reason=reason,
            offer_id=offer.offer_id,
            contractor_id=offer.contractor_id,
        )
        await self.take(uow, order, request, via="events", correlationid=correlationid)
        await self._offers.settle(uow, offer.offer_id, OfferStatus.ACCEPTED, now)
        return True

    async def unfilled(
        self, uow: UnitOfWork, order: WorkOrder, at: datetime, *, correlationid: str | None
    ) -> None:
        """Nobody could be offered the order: it waits in dispatch (for an operator)."""
        if order.state is WorkOrderState.RECEIVED:
            request = Request(
                Step.START_DISPATCH, SYSTEM, max(at, self._clock()), reason="no eligible contractor"
            )
            await self.take(uow, order, request, via="events", correlationid=correlationid)

    async def withdrawn(self, uow: UnitOfWork, offer_id: str, at: datetime) -> None:
        await self._offers.settle(uow, offer_id, OfferStatus.WITHDRAWN, at)

    async def expired(self, uow: UnitOfWork, offer_id: str, at: datetime) -> None:
        """The contractors service timed the offer out: it can no longer be accepted."""
        await self._offers.settle(uow, offer_id, OfferStatus.EXPIRED, at)

    # ----------------------------------------------------------------- timers

    async def timer_due(
        self, uow: UnitOfWork, tenant: str, work_order_id: str, kind: TimerKind
    ) -> Step | None:
        """A timer fell due: take its step if the order still calls for it; the step or None."""
        order = await self._orders.get(uow, tenant, work_order_id)
        await self._timers.clear(uow, work_order_id, kind)
        if order is None:
            return None
        now = self._clock()
        request: Request | None = None
        if (
            kind is TimerKind.AUTO_VERIFY
            and order.state is WorkOrderState.WORK_COMPLETED
            and order.verify_by is not None
        ):
            if order.verify_by > now:
                await self._timers.set(
                    uow, tenant=tenant, work_order_id=work_order_id, kind=kind, at=order.verify_by
                )
                return None
            request = Request(
                Step.VERIFY,
                SYSTEM,
                now,
                automatic=True,
                note="No answer from the requester in time: verified automatically",
            )
        elif kind is TimerKind.CLOSE and order.state is WorkOrderState.VERIFIED:
            request = Request(Step.CLOSE, SYSTEM, now)
        elif kind is TimerKind.ARCHIVE and order.state in (
            WorkOrderState.CLOSED,
            WorkOrderState.CANCELLED,
        ):
            since = order.closed_at or order.updated_at
            due = since + self.policy.archive_after
            if due > now:
                await self._timers.set(
                    uow, tenant=tenant, work_order_id=work_order_id, kind=kind, at=due
                )
                return None
            request = Request(Step.ARCHIVE, SYSTEM, now)
        if request is None:
            return None
        await self.take(uow, order, request, via="scheduler")
        return request.step


def platform_actor(source_platform: str) -> Actor:
    """The source platform acting on its own order (a requester)."""
    return Actor(ActorKind.REQUESTER, source_platform[:128])


__all__ = [
    "LifecyclePolicy",
    "OfferNotFoundError",
    "OfferNotOpenError",
    "WorkOrderLifecycle",
    "WorkOrderNotFoundError",
    "platform_actor",
]
