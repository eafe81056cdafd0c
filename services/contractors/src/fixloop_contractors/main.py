"""Wiring of the contractors service: settings → clients → use cases → Kafka consumer → app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_contractors.adapters.consumer import contractors_consumers
from fixloop_contractors.adapters.credential_alerts import credential_alert_work
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
from fixloop_contractors.app.assignments import AssignmentTracker
from fixloop_contractors.app.dispatch import Clock, WorkOrderDispatcher, utc_now
from fixloop_contractors.app.ports import ContractorRegistry, DispatchLedger
from fixloop_contractors.settings import SERVICE, ContractorsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Topic

TOPICS = (Topic.WORKORDERS_EVENTS.value, Topic.CONTRACTORS_EVENTS.value)
"""Consumed and produced topics; created at start-up if missing."""


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
    )
    assignments = AssignmentTracker(ledger, dispatcher, clock=now)
    consumers = contractors_consumers(dispatcher, assignments, metrics=ctx.metrics)
    if isinstance(ledger, MongoDispatchLedger):
        ctx.scheduler.add(
            offer_expiry_work(
                assignments, ledger, ctx.units, poll_seconds=settings.offer_expiry_poll_seconds
            )
        )
        ctx.scheduler.add(
            credential_alert_work(
                ctx.units, clock=now, poll_seconds=settings.credential_alert_poll_seconds
            )
        )
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, [Topic.CONTRACTORS_EVENTS])
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
        app=app,
    )


def create_app(settings: ContractorsSettings | None = None) -> ServiceApp:
    """The ASGI app of the contractors service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(ContractorsSettings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
