"""Wiring of the contractors service: settings → clients → use cases → Kafka consumer → app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_contractors.adapters.consumer import contractors_consumers
from fixloop_contractors.adapters.mongo import MongoDispatchLedger, ensure_indexes
from fixloop_contractors.app.dispatch import Clock, WorkOrderDispatcher, utc_now
from fixloop_contractors.settings import SERVICE, ContractorsSettings
from fixloop_shared.asyncapi import declare_published_topics
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
    dispatcher: WorkOrderDispatcher
    app: ServiceApp


def bootstrap(
    settings: ContractorsSettings | None = None, *, clock: Clock = utc_now
) -> ContractorsService:
    """The composition root: settings → clients → use cases → consumers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads.
    """
    settings = settings or ContractorsSettings()
    ctx = build_context(SERVICE, settings)
    dispatcher = WorkOrderDispatcher(
        MongoDispatchLedger(ctx.store), offer_ttl=settings.offer_ttl, clock=clock
    )
    ctx.consume(*contractors_consumers(dispatcher, metrics=ctx.metrics))
    declare_published_topics(ctx.bus, [Topic.CONTRACTORS_EVENTS])
    app = build_app(
        ctx,
        topics=TOPICS,
        indexes=ensure_indexes,
        title="Fixloop contractors",
        description=(
            "Contractor registry and dispatch: offers each received work order to the most "
            "local, least loaded eligible contractor."
        ),
    )
    return ContractorsService(settings=settings, ctx=ctx, dispatcher=dispatcher, app=app)


def create_app(settings: ContractorsSettings | None = None) -> ServiceApp:
    """The ASGI app of the contractors service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(ContractorsSettings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
