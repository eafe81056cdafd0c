"""Wiring of the contractors service: settings → clients → use cases → Kafka consumer → app."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fixloop_contractors.adapters.consumer import contractors_consumers
from fixloop_contractors.adapters.credential_alerts import credential_alert_work
from fixloop_contractors.adapters.dispatch_api import dispatch_api
from fixloop_contractors.adapters.dispatch_deadline import dispatch_deadline_work
from fixloop_contractors.adapters.memory import (
    MemoryContractorRegistry,
    MemoryDispatchLedger,
)
from fixloop_contractors.adapters.mongo import (
    MongoContractorRegistry,
    MongoDispatchLedger,
    ensure_indexes,
)
from fixloop_contractors.adapters.offer_expiry import offer_expiry_work
from fixloop_contractors.adapters.performance import (
    MemoryPerformanceLedger,
    MongoPerformanceLedger,
)
from fixloop_contractors.adapters.performance_consumer import performance_consumer
from fixloop_contractors.app.assignments import AssignmentTracker
from fixloop_contractors.app.dispatch import Clock, WorkOrderDispatcher, utc_now
from fixloop_contractors.app.explanations import DispatchRecords
from fixloop_contractors.app.performance import PerformanceLedger, PerformanceTracker
from fixloop_contractors.app.ports import ContractorRegistry, DispatchLedger
from fixloop_contractors.settings import SERVICE, ContractorsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.grpc_edge.hosting import HostedGrpcApi, hosted_in, store_health
from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Topic

TOPICS = (
    Topic.WORKORDERS_EVENTS.value,
    Topic.CONTRACTORS_EVENTS.value,
    Topic.NOTIFICATIONS_EVENTS.value,
)
"""Consumed and produced topics; created at start-up if missing."""

log = logging.getLogger(__name__)


@dataclass
class ContractorsService:
    """The service's pieces; nothing is connected until the broker and relay are started."""

    settings: ContractorsSettings
    ctx: ServiceContext
    units: UnitsOfWork
    """Where the consumers' units of work come from (the MongoDB store, or the given one)."""
    consumers: list[EventConsumer]
    registry: ContractorRegistry
    ledger: DispatchLedger
    dispatcher: WorkOrderDispatcher
    assignments: AssignmentTracker
    performance: PerformanceTracker
    """Contractors' scorecards and quality alerts (the ``performance`` consumer)."""
    dispatch_api: HostedGrpcApi
    """The operators' gRPC API (fixloop.v1.DispatchService), started and drained with the app."""
    app: ServiceApp


def bootstrap(
    settings: ContractorsSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> ContractorsService:
    """The composition root: settings → clients → use cases → consumers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    consumer applies events in its units of work, and the contractor registry and the dispatch
    ledger live in it instead of MongoDB.
    """
    settings = settings or ContractorsSettings()
    ctx = build_context(SERVICE, settings)
    registry: ContractorRegistry
    ledger: MongoDispatchLedger | MemoryDispatchLedger
    if uow is None:
        registry, ledger = MongoContractorRegistry(ctx.store), MongoDispatchLedger(ctx.store)
    else:
        memory = memory_store(uow)
        registry, ledger = MemoryContractorRegistry(memory), MemoryDispatchLedger(memory)
        ctx.units = memory
    now = clock or utc_now
    dispatcher = WorkOrderDispatcher(
        ledger,
        offer_ttl=settings.offer_ttl,
        emergency_offer_ttl=settings.emergency_offer_ttl,
        max_rounds=settings.dispatch_max_rounds,
        emergency_fan_out=settings.emergency_fan_out,
        clock=now,
        weights=settings.score_weights.score_weights(),
        preferences={
            tenant: given.tenant_preferences()
            for tenant, given in settings.tenant_preferences.items()
        },
        deadlines=settings.dispatch_deadlines(),
    )
    assignments = AssignmentTracker(ledger, dispatcher, clock=now)
    consumers = contractors_consumers(dispatcher, assignments, metrics=ctx.metrics)
    records: PerformanceLedger = (
        MongoPerformanceLedger(ctx.store)
        if uow is None
        else MemoryPerformanceLedger(memory_store(uow))
    )
    performance = PerformanceTracker(
        records,
        policy=settings.scorecard_policy(),
        rules=settings.quality_rules(),
        window=settings.scorecard_window,
        clock=now,
    )
    consumers.append(performance_consumer(performance, service=SERVICE, metrics=ctx.metrics))
    if isinstance(ledger, MongoDispatchLedger):
        ctx.scheduler.add(
            offer_expiry_work(
                assignments, ledger, ctx.units, poll_seconds=settings.offer_expiry_poll_seconds
            )
        )
        ctx.scheduler.add(
            dispatch_deadline_work(
                dispatcher, ctx.units, poll_seconds=settings.offer_expiry_poll_seconds
            )
        )
        ctx.scheduler.add(
            credential_alert_work(
                ctx.units, clock=now, poll_seconds=settings.credential_alert_poll_seconds
            )
        )
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, [Topic.CONTRACTORS_EVENTS])
    api = grpc_api(settings, ledger, ctx, clock=now)
    app = build_app(
        ctx,
        topics=TOPICS,
        indexes=ensure_indexes,
        title="Fixloop contractors",
        description=(
            "Contractor registry and dispatch: offers each received work order to the best "
            "ranked eligible contractor, and to the next one when an offer is declined or runs "
            "out, until it is taken or reported unfilled; follows the order's lifecycle "
            "(accepted and withdrawn offers; contractors' open jobs)."
        ),
    )
    return ContractorsService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        registry=registry,
        ledger=ledger,
        dispatcher=dispatcher,
        assignments=assignments,
        performance=performance,
        dispatch_api=api,
        app=app,
    )


def grpc_api(
    settings: ContractorsSettings, records: DispatchRecords, ctx: ServiceContext, *, clock: Clock
) -> HostedGrpcApi:
    """The dispatch gRPC API, hooked into the app's start-up, shutdown and readiness: it starts
    once the store's indexes exist (before consuming), and its health follows the store."""
    api = dispatch_api(
        records,
        host=settings.grpc_host,
        port=settings.grpc_port,
        principals=PrincipalDirectory.of(settings.principals),
        reflection=settings.grpc_reflection,
        rate_limit=settings.grpc_rate_limit or None,
        query_timeout_seconds=settings.grpc_query_timeout_seconds,
        stop_grace_seconds=settings.grpc_stop_grace_seconds,
        readiness=store_health(ctx.store.ping),
        readiness_interval_seconds=settings.grpc_health_interval_seconds,
        clock=clock,
    )
    return hosted_in(
        ctx,
        api,
        principals_setting="FIXLOOP_CONTRACTORS_PRINCIPALS",
        has_principals=bool(settings.principals),
    )


def create_app(settings: ContractorsSettings | None = None) -> ServiceApp:
    """The ASGI app of the contractors service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(ContractorsSettings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
