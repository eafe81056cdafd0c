"""Offer expiries as a kind of due work on the service's due-work scheduler.

Each offer is written with an expiry item (``offer_expiries``, due at the offer's ``expires_at``).
A pass claims the items due, with a lease, and fires each in its own unit of work: an offer still
open times out (``fixloop.assignment.expired.v1``) and the order goes to its next dispatch round;
an offer answered meanwhile is left as it is. Either way the item is deleted in that unit of work
(unless this pod's clock says the offer's time is not up yet: the item stays leased, and fires
again when its lease runs out).
A killed pod's leases run out and another pod fires the items again; an offer times out at most
once because its change is guarded by the state it was read in, and the next round at most once
because each round of an order is unique.
"""

from __future__ import annotations

from datetime import timedelta

from fixloop_contractors.adapters.mongo import (
    OFFER_EXPIRIES,
    OFFER_EXPIRY_WORK,
    MongoDispatchLedger,
    due_expiries,
)
from fixloop_contractors.app.assignments import (
    AssignmentTracker,
    LifecycleOutcome,
    LifecycleResult,
)
from fixloop_shared.due_work import ClaimedItem, DueWork
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work


def offer_expiry_work(
    assignments: AssignmentTracker,
    ledger: MongoDispatchLedger,
    units: UnitsOfWork,
    *,
    poll_seconds: float = 1.0,
    lease_seconds: float = 30.0,
) -> DueWork:
    """The kind ``offer-expiry``: time out each offer nobody answered, once."""

    async def fire(item: ClaimedItem) -> LifecycleResult:
        doc = item.doc
        offer_id = str(doc["_id"])

        async def work(uow: UnitOfWork) -> LifecycleResult:
            result = await assignments.offer_ran_out(
                uow,
                tenant=str(doc["tenant"]),
                work_order_id=str(doc["work_order_id"]),
                offer_id=offer_id,
                correlationid=str(doc.get("correlationid") or offer_id),
            )
            if result.outcome is not LifecycleOutcome.NOT_DUE:
                await ledger.forget_expiry(uow, offer_id)
            return result

        return await in_unit_of_work(units, work)

    return DueWork(
        name=OFFER_EXPIRY_WORK,
        collection=OFFER_EXPIRIES,
        due=due_expiries,
        fire=fire,
        lease=timedelta(seconds=lease_seconds),
        batch_size=100,
        poll_seconds=poll_seconds,
        order=(("due_ms", 1),),
        retry_after=timedelta(seconds=5),
        projection={"tenant": True, "work_order_id": True, "correlationid": True},
        releases_itself=True,
    )


__all__ = ["offer_expiry_work"]
