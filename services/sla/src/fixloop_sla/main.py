"""Wiring of the sla service: settings -> clients -> clocks, scheduler and consumer -> app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.due_work import DueWorkScheduler
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.store import Store
from fixloop_shared.topics import Service, Topic
from fixloop_sla.adapters.events import sla_consumers
from fixloop_sla.adapters.memory import MemoryClockRepository
from fixloop_sla.adapters.mongo import MongoClockRepository, clock_indexes
from fixloop_sla.adapters.scheduler import clock_work
from fixloop_sla.app.clocks import ClockRepository, SlaClocks, utc_now
from fixloop_sla.metrics import SlaMetrics
from fixloop_sla.settings import SlaSettings

CONSUMED_TOPICS = (Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS)
PRODUCED_TOPICS = (Topic.SLA_EVENTS,)

Clock = Callable[[], datetime]
"""What the use cases read the time from (injectable for tests)."""


@dataclass
class SlaService:
    """The pieces of one sla process (the app starts and stops all of them)."""

    settings: SlaSettings
    ctx: ServiceContext
    units: UnitsOfWork
    """Where the consumers' units of work come from (the MongoDB store, or the given one)."""
    consumers: list[EventConsumer]
    repository: ClockRepository
    clocks: SlaClocks
    scheduler: DueWorkScheduler
    """The process's due-work scheduler: the clocks (on MongoDB) and the outbox relay."""
    app: ServiceApp


async def ensure_indexes(store: Store) -> None:
    await store.ensure_indexes(clock_indexes())


def bootstrap(
    settings: SlaSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> SlaService:
    """The composition root: settings → clients → use cases → consumers and timers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    consumer and the firing of clocks work in its units of work, and the clocks live in it
    instead of MongoDB. The clocks are then no kind of the (MongoDB) due-work scheduler: due
    clocks are fired by calling :meth:`SlaClocks.fire_due` (or :meth:`SlaClocks.fire`).
    """
    settings = settings or SlaSettings()
    ctx = build_context(Service.SLA.value, settings)
    repository: ClockRepository
    if uow is None:
        repository = MongoClockRepository(ctx.store)
    else:
        memory = memory_store(uow)
        repository = MemoryClockRepository(memory)
        ctx.units = memory
    clocks = SlaClocks(
        # The clocks only open units of work on it (``transaction()``).
        store=ctx.units,
        repository=repository,
        policy=settings.sla_policy(),
        metrics=SlaMetrics(ctx.metrics),
        late_after=settings.late_after,
        now=clock or utc_now,
    )
    scheduler = ctx.scheduler
    if uow is None:
        scheduler.add(
            clock_work(
                clocks,
                poll_seconds=settings.scheduler_poll_seconds,
                batch_size=settings.scheduler_batch_size,
                lease_seconds=settings.scheduler_lease_seconds,
                metrics_refresh_seconds=settings.metrics_refresh_seconds,
            )
        )
        ctx.on_startup.append(scheduler.start)
    consumers = sla_consumers(clocks)
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)
    app = build_app(
        ctx,
        topics=[topic.value for topic in (*CONSUMED_TOPICS, *PRODUCED_TOPICS)],
        indexes=ensure_indexes,
        title="Fixloop sla",
        description="Milestone clocks per work order: SLA warnings, breaches, met milestones and "
        "clocks stopped by a cancellation "
        "on fixloop.sla.events.v1.",
    )
    return SlaService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        repository=repository,
        clocks=clocks,
        scheduler=scheduler,
        app=app,
    )


def create_app(settings: SlaSettings | None = None) -> ServiceApp:
    """The ASGI app of the sla service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(SlaSettings)
    serve(create_app(settings), settings)
