"""Wiring of the sla service: settings -> clients -> clocks, scheduler and consumer -> app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_shared.bus import subscribe
from fixloop_shared.contracts.events import EVENT_TYPES
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.store import Store
from fixloop_shared.topics import Service, Topic
from fixloop_sla.adapters.events import make_handler
from fixloop_sla.adapters.mongo import MongoClockRepository, clock_indexes
from fixloop_sla.adapters.scheduler import ClockScheduler
from fixloop_sla.app.clocks import SlaClocks
from fixloop_sla.metrics import SlaMetrics
from fixloop_sla.settings import SlaSettings

CONSUMED_TOPICS = (Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS)
PRODUCED_TOPICS = (Topic.SLA_EVENTS,)


@dataclass
class SlaService:
    """The pieces of one sla process (the app starts and stops all of them)."""

    settings: SlaSettings
    ctx: ServiceContext
    clocks: SlaClocks
    scheduler: ClockScheduler
    app: ServiceApp


async def ensure_indexes(store: Store) -> None:
    await store.ensure_indexes(clock_indexes())


def build_service(settings: SlaSettings | None = None) -> SlaService:
    settings = settings or SlaSettings()
    ctx = build_context(Service.SLA.value, settings)
    clocks = SlaClocks(
        store=ctx.store,
        repository=MongoClockRepository(ctx.store),
        policy=settings.sla_policy(),
        metrics=SlaMetrics(ctx.metrics),
        late_after=settings.late_after,
    )
    scheduler = ClockScheduler(
        clocks,
        poll_seconds=settings.scheduler_poll_seconds,
        batch_size=settings.scheduler_batch_size,
        metrics_refresh_seconds=settings.metrics_refresh_seconds,
    )
    ctx.on_startup.append(scheduler.start)
    ctx.on_shutdown.append(scheduler.stop)
    ctx.readiness_checks.append(scheduler.clock_scheduler)
    subscribe(
        ctx.bus,
        [topic.value for topic in CONSUMED_TOPICS],
        make_handler(clocks),
        registry=EVENT_TYPES,
        title="sla: work order and assignment events",
        description="Starts dispatch-confirmation clocks on received work orders, "
        "stops them on accepted assignments.",
    )
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
    return build_service(settings).app


def main() -> None:
    settings = load_settings(SlaSettings)
    serve(create_app(settings), settings)
