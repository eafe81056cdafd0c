"""Wiring of the sla service: settings -> clients -> clocks, scheduler and consumer -> app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.due_work import DueWorkScheduler
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.store import Store
from fixloop_shared.topics import Service, Topic
from fixloop_sla.adapters.events import sla_consumers
from fixloop_sla.adapters.mongo import MongoClockRepository, clock_indexes
from fixloop_sla.adapters.scheduler import clock_work
from fixloop_sla.app.clocks import SlaClocks, utc_now
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
    clocks: SlaClocks
    scheduler: DueWorkScheduler
    """The process's due-work scheduler: the clocks and the outbox relay."""
    app: ServiceApp


async def ensure_indexes(store: Store) -> None:
    await store.ensure_indexes(clock_indexes())


def bootstrap(settings: SlaSettings | None = None, *, clock: Clock = utc_now) -> SlaService:
    """The composition root: settings → clients → use cases → consumers and timers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads.
    """
    settings = settings or SlaSettings()
    ctx = build_context(Service.SLA.value, settings)
    clocks = SlaClocks(
        store=ctx.store,
        repository=MongoClockRepository(ctx.store),
        policy=settings.sla_policy(),
        metrics=SlaMetrics(ctx.metrics),
        late_after=settings.late_after,
        now=clock,
    )
    scheduler = ctx.scheduler
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
    ctx.consume(*sla_consumers(clocks))
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)
    app = build_app(
        ctx,
        topics=[topic.value for topic in (*CONSUMED_TOPICS, *PRODUCED_TOPICS)],
        indexes=ensure_indexes,
        title="Fixloop sla",
        description="Milestone clocks per work order: SLA warnings, breaches and met milestones "
        "on fixloop.sla.events.v1.",
    )
    return SlaService(settings=settings, ctx=ctx, clocks=clocks, scheduler=scheduler, app=app)


def create_app(settings: SlaSettings | None = None) -> ServiceApp:
    """The ASGI app of the sla service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(SlaSettings)
    serve(create_app(settings), settings)
