"""The SLA clocks as a kind of due work on the service's due-work scheduler.

The store is the only source of truth: each pass claims running clocks whose next moment
(``next_fire_at``) has come, with a lease (``fixloop_shared.due_work``), and fires each in its own
transaction. A fresh process therefore needs no rebuild step beyond its first pass, which catches
up on everything that fell due while no scheduler ran (flagged ``late``). Pods sharing the store
claim disjoint batches; a clock fired twice anyway (a pod killed after firing, before giving the
lease back) emits once, because its save is conditional on its version.
"""

from __future__ import annotations

import time
from datetime import timedelta

from fixloop_shared.due_work import ClaimedItem, DueWork
from fixloop_sla.adapters.mongo import CLOCK_WORK, CLOCKS, due_clocks
from fixloop_sla.app.clocks import SlaClocks

DEFAULT_LEASE_SECONDS = 30.0


def clock_work(
    clocks: SlaClocks,
    *,
    poll_seconds: float = 0.5,
    batch_size: int = 200,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    metrics_refresh_seconds: float = 5.0,
) -> DueWork:
    """The kind ``sla-clocks``: fire each due clock once; refresh the clock gauges now and then."""
    next_refresh = 0.0

    async def fire(item: ClaimedItem) -> None:
        await clocks.fire(str(item.id))

    async def refresh_counts() -> None:
        nonlocal next_refresh
        if time.monotonic() >= next_refresh:
            await clocks.refresh_counts()
            next_refresh = time.monotonic() + metrics_refresh_seconds

    return DueWork(
        name=CLOCK_WORK,
        collection=CLOCKS,
        due=due_clocks,
        fire=fire,
        lease=timedelta(seconds=lease_seconds),
        batch_size=batch_size,
        poll_seconds=poll_seconds,
        order=(("next_fire_ms", 1),),
        # A clock that could not be fired (store error) is tried again soon, by any pod.
        retry_after=timedelta(seconds=min(5.0, poll_seconds * 10)),
        projection={"_id": True},
        after_pass=refresh_counts,
    )
