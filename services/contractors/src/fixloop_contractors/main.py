"""Wiring of the contractors service: settings → clients → use cases → Kafka consumer → app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_contractors.adapters.consumer import register_work_order_consumer
from fixloop_contractors.adapters.mongo import MongoDispatchLedger, ensure_indexes
from fixloop_contractors.app.dispatch import Clock, WorkOrderDispatcher, utc_now
from fixloop_contractors.settings import SERVICE, ContractorsSettings
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


def build_service(settings: ContractorsSettings, *, clock: Clock = utc_now) -> ContractorsService:
    ctx = build_context(SERVICE, settings)
    dispatcher = WorkOrderDispatcher(
        MongoDispatchLedger(ctx.store), offer_ttl=settings.offer_ttl, clock=clock
    )
    register_work_order_consumer(ctx.bus, dispatcher, metrics=ctx.metrics)
    return ContractorsService(settings=settings, ctx=ctx, dispatcher=dispatcher)


def create_app(settings: ContractorsSettings | None = None) -> ServiceApp:
    service = build_service(settings or ContractorsSettings())
    return build_app(
        service.ctx,
        topics=TOPICS,
        indexes=ensure_indexes,
        title="Fixloop contractors",
        description=(
            "Contractor registry and dispatch: offers each received work order to the most "
            "local, least loaded eligible contractor."
        ),
    )


def main() -> None:
    settings = load_settings(ContractorsSettings)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
