"""Wiring of the parts service: settings -> clients -> use cases -> FastStream app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_parts.adapters.consumer import parts_consumers
from fixloop_parts.adapters.mongo import MongoReservationLog, MongoStock, ensure_indexes
from fixloop_parts.app import PartsReservations, ReservationPolicy
from fixloop_parts.app.reserve_parts import Clock, utc_now
from fixloop_parts.settings import PartsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Service, Topic


@dataclass
class PartsService:
    """The pieces of one parts process (the app starts and stops them)."""

    settings: PartsSettings
    ctx: ServiceContext
    reservations: PartsReservations
    app: ServiceApp


def bootstrap(settings: PartsSettings | None = None, *, clock: Clock = utc_now) -> PartsService:
    """The composition root: settings → clients → use cases → consumers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads.
    """
    settings = settings or PartsSettings()
    ctx = build_context(Service.PARTS, settings)
    reservations = PartsReservations(
        ctx.store,
        MongoStock(),
        MongoReservationLog(),
        policy=ReservationPolicy(
            max_sources=settings.max_warehouses_per_part,
            attempts=settings.reservation_attempts,
        ),
        clock=clock,
    )
    ctx.consume(*parts_consumers(reservations, metrics=ctx.metrics))
    declare_published_topics(ctx.bus, [Topic.PARTS_EVENTS])
    app = build_app(
        ctx,
        topics=[Topic.WORKORDERS_EVENTS, Topic.PARTS_EVENTS],
        indexes=ensure_indexes,
        title="Fixloop parts",
        description=(
            "Stock per warehouse and reservations per work order. Consumes work order events, "
            "publishes parts events (reserved, backordered)."
        ),
    )
    return PartsService(settings=settings, ctx=ctx, reservations=reservations, app=app)


def create_app(settings: PartsSettings | None = None) -> ServiceApp:
    """The ASGI app of the parts service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(PartsSettings)
    serve(create_app(settings), settings)
