"""Dispatch deadlines as a kind of due work on the service's due-work scheduler.

Each order gets one item in ``dispatch_deadlines`` (``_id`` = the work order id) with its first
offer, due at its escalation (or at its time limit when that comes first; see
:mod:`fixloop_contractors.domain.deadlines`). A pass claims the items due, with a lease, and fires
each in its own unit of work: an order still untaken is escalated (the item moves on to the time
limit and marks the order escalated for the dispatch queue) or given up on (its open offers
withdrawn, reported unfilled; the item is deleted). An order taken, found unfilled, given to
someone or cancelled meanwhile ends its item. A killed pod's leases run out and another pod fires
the item again; each step happens at most once because the item's stage moves in the same
transaction as the step's events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fixloop_contractors.adapters.mongo import DISPATCH_DEADLINE_WORK, DISPATCH_DEADLINES
from fixloop_contractors.app.dispatch import WorkOrderDispatcher
from fixloop_contractors.domain.deadlines import DeadlineStage, DeadlineVerdict
from fixloop_shared.due_work import ClaimedItem, DueWork, epoch_ms
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work


def due_deadlines(now: datetime) -> dict[str, object]:
    """Deadlines due at ``now`` (epoch milliseconds: an indexed range on every store)."""
    return {"due_ms": {"$lte": epoch_ms(now)}}


def dispatch_deadline_work(
    dispatcher: WorkOrderDispatcher,
    units: UnitsOfWork,
    *,
    poll_seconds: float = 1.0,
    lease_seconds: float = 30.0,
) -> DueWork:
    """The kind ``dispatch-deadline``: escalate each order nobody took in time, then give up."""

    async def fire(item: ClaimedItem) -> DeadlineVerdict:
        doc = item.doc

        async def work(uow: UnitOfWork) -> DeadlineVerdict:
            return await dispatcher.deadline_reached(
                uow,
                work_order_id=str(doc["_id"]),
                tenant=str(doc["tenant"]),
                stage=DeadlineStage(doc["stage"]),
                due_at=datetime.fromtimestamp(int(doc["due_ms"]) / 1000, UTC),
                correlationid=str(doc.get("correlationid") or doc["_id"]),
            )

        return await in_unit_of_work(units, work)

    return DueWork(
        name=DISPATCH_DEADLINE_WORK,
        collection=DISPATCH_DEADLINES,
        due=due_deadlines,
        fire=fire,
        lease=timedelta(seconds=lease_seconds),
        batch_size=100,
        poll_seconds=poll_seconds,
        order=(("due_ms", 1),),
        retry_after=timedelta(seconds=5),
        projection={"tenant": True, "stage": True, "due_ms": True, "correlationid": True},
        releases_itself=True,
    )


__all__ = ["dispatch_deadline_work", "due_deadlines"]
