"""Wiring of the orders service: settings -> clients -> use cases -> consumers and gRPC server.

Run it with ``python -m fixloop_orders`` (or ``fixloop-orders``). Nothing connects at import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fixloop_orders.adapters.change_feed import OrderChangeFeed
from fixloop_orders.adapters.consumers import TIMELINE_TOPICS, consumed_topics, orders_consumers
from fixloop_orders.adapters.grpc_mutations import Mutations
from fixloop_orders.adapters.memory import (
    MemoryLifecycleTimers,
    MemoryOfferBook,
    MemoryRequestLog,
    MemoryWorkOrderQueries,
    MemoryWorkOrders,
)
from fixloop_orders.adapters.mongo import (
    MongoLifecycleTimers,
    MongoOfferBook,
    MongoRequestLog,
    MongoWorkOrderQueries,
    MongoWorkOrders,
    ensure_indexes,
)
from fixloop_orders.adapters.partner_api import PartnerApi
from fixloop_orders.adapters.read_cache import ObservedOfferBook, ObservedWorkOrders, ReadCache
from fixloop_orders.adapters.timers import lifecycle_timer_work
from fixloop_orders.adapters.watch import WorkOrderWatch
from fixloop_orders.app.intake import WorkOrderIntake
from fixloop_orders.app.lifecycle import LifecyclePolicy, WorkOrderLifecycle
from fixloop_orders.app.platform_commands import PlatformCommands
from fixloop_orders.app.ports import (
    LifecycleTimers,
    OfferBook,
    RequestLog,
    WorkOrderRepository,
    utc_now,
)
from fixloop_orders.app.queries import WorkOrderQueries
from fixloop_orders.app.timeline import TimelineRecorder
from fixloop_orders.domain.intake import SourceBindings
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Service, Topic

log = logging.getLogger(__name__)

PRODUCED_TOPICS: tuple[Topic, ...] = (Topic.WORKORDERS_EVENTS,)
PROBE_TIMEOUT_SECONDS = 2.0

Clock = Callable[[], datetime]
"""What the use cases read the time from (injectable for tests)."""


@dataclass
class OrdersService:
    """One orders process: its context (bus, store, relay), use cases, gRPC API and app."""

    settings: OrdersSettings
    ctx: ServiceContext
    units: UnitsOfWork
    """Where the consumers' units of work come from (the MongoDB store, or the given one)."""
    consumers: list[EventConsumer]
    orders: WorkOrderRepository
    offers: OfferBook
    timers: LifecycleTimers
    requests: RequestLog
    intake: WorkOrderIntake
    lifecycle: WorkOrderLifecycle
    commands: PlatformCommands
    recorder: TimelineRecorder
    queries: WorkOrderQueries
    partner_api: PartnerApi
    app: ServiceApp


def read_cache(
    settings: OrdersSettings, *, followed: bool, after: Callable[[], bool] | None = None
) -> tuple[ReadCache[Any], OrderChangeFeed]:
    """The partner API's read cache and the feed that follows other pods' writes for it: reads
    are kept in memory until this pod's writes (at commit) or the topics say what they show has
    changed (``followed=False``: there are no other pods, nothing to follow)."""
    cache: ReadCache[Any] = ReadCache(
        max_age_seconds=settings.read_cache_seconds,
        max_bytes=settings.read_cache_max_mib * 1024 * 1024,
        settle_seconds=settings.read_cache_settle_seconds,
        followed=followed,
    )
    feed = OrderChangeFeed(settings.kafka, cache, other_topics=TIMELINE_TOPICS, after=after)
    return cache, feed


def announce_platforms(settings: OrdersSettings) -> None:
    """Log which bound platforms have their own inbound topic and which only the shared one."""
    shared_only = sorted(set(settings.source_tenants) - set(settings.platforms))
    if shared_only:
        log.info(
            "source platforms without their own inbound topic (not named like a DNS label) "
            "can submit only on the shared inbound topic (unsecured clusters)",
            extra={"sources": shared_only},
        )
    if settings.platforms:
        log.info("platforms with their own inbound topic", extra={"platforms": settings.platforms})


def bootstrap(
    settings: OrdersSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> OrdersService:
    """The composition root: settings → clients → use cases → consumers and gRPC API → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    consumers apply events in its units of work, and the work orders and the partner API's
    queries live in it instead of MongoDB.
    """
    settings = settings or OrdersSettings()
    now = clock or utc_now
    ctx = build_context(Service.ORDERS, settings)
    orders: WorkOrderRepository
    queries: WorkOrderQueries
    offers: OfferBook
    timers: LifecycleTimers
    requests: RequestLog
    if uow is None:
        db = ctx.store.db
        orders, queries = MongoWorkOrders(db), MongoWorkOrderQueries(db)
        offers, timers, requests = (
            MongoOfferBook(db),
            MongoLifecycleTimers(ctx.store),
            MongoRequestLog(db),
        )
    else:
        memory = memory_store(uow)
        orders, queries = MemoryWorkOrders(memory), MemoryWorkOrderQueries(memory)
        offers, timers = MemoryOfferBook(memory), MemoryLifecycleTimers(memory)
        requests = MemoryRequestLog(memory)
        ctx.units = memory
    cache, feed = read_cache(settings, followed=uow is None, after=lambda: app.up)
    orders, offers = (
        ObservedWorkOrders(orders, cache.changed),
        ObservedOfferBook(offers, cache.changed),
    )
    policy = LifecyclePolicy(
        reopen_window=timedelta(days=settings.reopen_window_days),
        verify_after=timedelta(hours=settings.verify_after_hours),
        close_after=timedelta(seconds=settings.close_after_seconds),
        archive_after=timedelta(days=settings.archive_after_days),
    )
    lifecycle = WorkOrderLifecycle(orders, offers, timers, policy=policy, clock=now)
    bindings = SourceBindings.of(settings.source_tenants)
    intake = WorkOrderIntake(Service.ORDERS, orders, bindings, clock=now)
    commands = PlatformCommands(lifecycle)
    recorder = TimelineRecorder(orders, lifecycle, clock=now)
    consumers = orders_consumers(intake, commands, recorder, platforms=settings.platforms)
    if uow is None:
        ctx.scheduler.add(
            lifecycle_timer_work(
                lifecycle, ctx.units, poll_seconds=settings.lifecycle_timer_poll_seconds
            )
        )
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, PRODUCED_TOPICS)

    async def store_and_broker_problem() -> str | None:
        try:
            await asyncio.wait_for(ctx.store.ping(), timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - unreachable is an answer, not an error
            return f"store unreachable: {type(exc).__name__}"
        if not await ctx.bus.broker.ping(timeout=PROBE_TIMEOUT_SECONDS):
            return "broker unreachable"
        return None

    partner_api = PartnerApi(
        queries,
        host=settings.grpc_host,
        port=settings.grpc_port,
        principals=PrincipalDirectory.of(settings.principals),
        reflection=settings.grpc_reflection,
        query_timeout_seconds=settings.grpc_query_timeout_seconds,
        rate_limit=settings.grpc_rate_limit or None,
        stop_grace_seconds=settings.grpc_stop_grace_seconds,
        metrics=ctx.metrics,
        readiness=store_and_broker_problem,
        readiness_interval_seconds=settings.grpc_health_interval_seconds,
        lifecycle=lifecycle,
        intake=intake,
        mutations=Mutations(ctx.units, requests, clock=now),
        watch=WorkOrderWatch(settings.kafka),
        cache=cache,
    )

    async def announce() -> None:
        if bindings.is_empty:
            log.warning(
                "no source platform is bound to a tenant (FIXLOOP_ORDERS_SOURCE_TENANTS): "
                "every inbound work order will be dead-lettered as unauthorized"
            )
        announce_platforms(settings)
        if not settings.principals:
            log.warning(
                "no partner principals (FIXLOOP_ORDERS_PRINCIPALS): every gRPC call is denied"
            )

    async def grpc() -> None:
        await partner_api.check_serving()

    # build_app runs these after the indexes exist, before consuming starts.
    ctx.on_startup.extend([announce, partner_api.start, feed.start])
    ctx.on_shutdown.extend([partner_api.stop, feed.stop])
    ctx.readiness_checks.append(grpc)

    app = build_app(
        ctx,
        topics=[*consumed_topics(settings.platforms), *PRODUCED_TOPICS],
        indexes=ensure_indexes,
        title="Fixloop orders",
        description=(
            "Work orders: intake from external platforms, the work order state machine and "
            "timeline, and the partner gRPC API (fixloop.v1.WorkOrdersService)."
        ),
    )
    return OrdersService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        orders=orders,
        offers=offers,
        timers=timers,
        requests=requests,
        intake=intake,
        lifecycle=lifecycle,
        commands=commands,
        recorder=recorder,
        queries=queries,
        partner_api=partner_api,
        app=app,
    )


def create_app(settings: OrdersSettings | None = None) -> ServiceApp:
    """The ASGI app of the orders service (consumers, /healthz, /readyz, /metrics, gRPC)."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(OrdersSettings)
    serve(create_app(settings), settings)


__all__ = ["OrdersService", "bootstrap", "create_app", "main"]
