"""Wiring of the sla service: settings -> clients -> engine, timers and consumer -> app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.grpc_edge.hosting import HostedGrpcApi
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.store import Store, merged_indexes
from fixloop_shared.topics import Service, Topic
from fixloop_sla.adapters.events import CLOCK_TOPIC, sla_consumers
from fixloop_sla.adapters.memory import MemoryOrderClocksRepository
from fixloop_sla.adapters.mongo import MongoOrderClocksRepository, clock_indexes
from fixloop_sla.adapters.policies import MongoPolicyStore, policy_indexes
from fixloop_sla.adapters.sla_api import sla_api
from fixloop_sla.adapters.timers import ClockTimers
from fixloop_sla.app.engine import SlaEngine, utc_now
from fixloop_sla.app.policies import PolicyShelf
from fixloop_sla.app.reporting import SlaReports, report_indexes
from fixloop_sla.domain import standard_policy
from fixloop_sla.metrics import SlaMetrics
from fixloop_sla.settings import SlaSettings

CONSUMED_TOPICS = (CLOCK_TOPIC,)
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
    repository: MongoOrderClocksRepository | MemoryOrderClocksRepository
    engine: SlaEngine
    timers: ClockTimers
    policies: PolicyShelf
    metrics: SlaMetrics
    app: ServiceApp
    sla_api: HostedGrpcApi | None = None
    """The operators' gRPC API (fixloop.v1.SlaService); None with an in-memory store."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def ensure_indexes(store: Store) -> None:
    await store.ensure_indexes(merged_indexes(clock_indexes(), policy_indexes(), report_indexes()))


def bootstrap(
    settings: SlaSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> SlaService:
    """The composition root: settings → clients → engine → consumer and timers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    orders' clocks live in it instead of MongoDB and the standard policy applies.
    """
    settings = settings or SlaSettings()
    now = clock or utc_now
    ctx = build_context(Service.SLA.value, settings)
    repository: MongoOrderClocksRepository | MemoryOrderClocksRepository
    if uow is None:
        repository = MongoOrderClocksRepository(ctx.store)
    else:
        memory = memory_store(uow)
        repository = MemoryOrderClocksRepository(memory)
        ctx.units = memory
    metrics = SlaMetrics(ctx.metrics)
    policies = PolicyShelf()
    engine_holder: list[SlaEngine] = []

    async def settle(work_order_ids: Sequence[str]) -> object:
        return await engine_holder[0].settle_due(list(work_order_ids))

    async def read_ahead(work_order_ids: Sequence[str]) -> object:
        await engine_holder[0].read_ahead(work_order_ids)
        return None

    timers = ClockTimers(
        index=repository,
        settle=settle,
        topic=CLOCK_TOPIC.value,
        horizon=timedelta(seconds=settings.timer_horizon_seconds),
        batch_size=settings.timer_batch_size,
        now=now,
        observer=metrics,
        read_ahead=read_ahead,
        read_ahead_window=timedelta(seconds=settings.timer_read_ahead_seconds),
    )
    engine = SlaEngine(
        units=ctx.units,
        repository=repository,
        policies=policies,
        timers=timers,
        observer=metrics,
        late_after=settings.late_after,
        now=now,
    )
    engine_holder.append(engine)
    consumers = sla_consumers(engine, timers)
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)
    app = build_app(
        ctx,
        topics=[topic.value for topic in (*CONSUMED_TOPICS, *PRODUCED_TOPICS)],
        indexes=ensure_indexes,
        title="Fixloop sla",
        description="Milestone clocks per work order, in cycles, on business calendars: SLA "
        "warnings, breaches, escalations, met milestones, corrections and predictions on "
        "fixloop.sla.events.v1.",
    )
    service = SlaService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        repository=repository,
        engine=engine,
        timers=timers,
        policies=policies,
        metrics=metrics,
        app=app,
    )

    async def start_timers() -> None:
        if uow is None:
            store = MongoPolicyStore(ctx.store.db)
            await store.ensure_standard(standard_policy(), now=now())
            policies.fill(await store.versions())
            service.tasks.append(
                asyncio.create_task(
                    policies.keep_filled(store.versions, settings.policy_refresh_seconds),
                    name="sla-policies",
                )
            )
        service.tasks.append(asyncio.create_task(timers.run(), name="sla-timers"))
        service.tasks.append(asyncio.create_task(timers.read_ahead(), name="sla-read-ahead"))

    async def stop_timers() -> None:
        for task in service.tasks:
            task.cancel()
        for task in service.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        service.tasks.clear()

    async def clocks_loaded() -> None:
        if timers.unloaded:
            msg = f"the clocks of partitions {sorted(timers.unloaded)} are not read yet"
            raise RuntimeError(msg)

    ctx.on_startup.append(start_timers)
    ctx.readiness_checks.append(clocks_loaded)
    if uow is None:
        service.sla_api = sla_api(settings, SlaReports(ctx.store.db, clock=now), ctx, clock=now)
    ctx.on_shutdown.insert(0, stop_timers)
    return service


def create_app(settings: SlaSettings | None = None) -> ServiceApp:
    """The ASGI app of the sla service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(SlaSettings)
    serve(create_app(settings), settings)
