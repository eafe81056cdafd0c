"""Wiring of the parts service: settings -> clients -> use cases -> FastStream app."""

from __future__ import annotations

from fixloop_parts.adapters.consumer import work_order_events_handler
from fixloop_parts.adapters.mongo import MongoReservationLog, MongoStock, ensure_indexes
from fixloop_parts.app import PartsReservations, ReservationPolicy
from fixloop_parts.settings import PartsSettings
from fixloop_shared.bus import subscribe
from fixloop_shared.contracts.events import EVENT_TYPES
from fixloop_shared.runtime import build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Service, Topic


def create_app(settings: PartsSettings | None = None) -> ServiceApp:
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
    )
    subscribe(
        ctx.bus,
        [Topic.WORKORDERS_EVENTS],
        work_order_events_handler(reservations, metrics=ctx.metrics),
        registry=EVENT_TYPES,
        title="parts: work order events",
        description=(
            "Reserves the required parts of each received work order and answers with "
            "parts.reserved or parts.backordered on the parts events topic."
        ),
    )
    return build_app(
        ctx,
        topics=[Topic.WORKORDERS_EVENTS, Topic.PARTS_EVENTS],
        indexes=ensure_indexes,
        title="Fixloop parts",
        description=(
            "Stock per warehouse and reservations per work order. Consumes work order events, "
            "publishes parts events (reserved, backordered)."
        ),
    )


def main() -> None:
    settings = load_settings(PartsSettings)
    serve(create_app(settings), settings)
