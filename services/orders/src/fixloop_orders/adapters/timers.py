"""The lifecycle timers as a kind of due work on the service's due-work scheduler.

Automatic verification, closing and archiving are timer documents (``lifecycle_timers``) written
with the step that sets them; each pass claims those due, with a lease, and fires each in its own
unit of work, which takes the step (if the order still calls for it) and deletes the timer. A
killed pod's leases run out and another pod fires the timers again; the step is taken at most
once because the order's save is guarded by its version and the timer is gone once it fired.
"""

from __future__ import annotations

from datetime import timedelta

from fixloop_orders.adapters.mongo import LIFECYCLE_TIMER_WORK, LIFECYCLE_TIMERS, due_timers
from fixloop_orders.app.lifecycle import WorkOrderLifecycle
from fixloop_orders.app.ports import TimerKind
from fixloop_shared.due_work import ClaimedItem, DueWork
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work


def lifecycle_timer_work(
    lifecycle: WorkOrderLifecycle,
    units: UnitsOfWork,
    *,
    poll_seconds: float = 1.0,
    lease_seconds: float = 30.0,
) -> DueWork:
    """The kind ``lifecycle-timers``: take each due timer's step once."""

    async def fire(item: ClaimedItem) -> None:
        doc = item.doc
        tenant, work_order_id = str(doc["tenant"]), str(doc["work_order_id"])
        kind = TimerKind(doc["kind"])

        async def work(uow: UnitOfWork) -> None:
            await lifecycle.timer_due(uow, tenant, work_order_id, kind)

        await in_unit_of_work(units, work)

    return DueWork(
        name=LIFECYCLE_TIMER_WORK,
        collection=LIFECYCLE_TIMERS,
        due=due_timers,
        fire=fire,
        lease=timedelta(seconds=lease_seconds),
        batch_size=100,
        poll_seconds=poll_seconds,
        order=(("due_ms", 1),),
        retry_after=timedelta(seconds=5),
        projection={"tenant": True, "work_order_id": True, "kind": True},
        releases_itself=True,
    )


__all__ = ["lifecycle_timer_work"]
