"""Wiring of the parts service: settings -> clients -> use cases -> FastStream app."""

from __future__ import annotations

from dataclasses import dataclass

from fixloop_parts.adapters.consumer import parts_consumers
from fixloop_parts.adapters.memory import MemoryReservationLog, MemoryStock
from fixloop_parts.adapters.mongo import MongoReservationLog, MongoStock, ensure_indexes
from fixloop_parts.app import (
    PartsReservations,
    PartsSettlements,
    ReservationLog,
    ReservationPolicy,
    StockRepository,
)
from fixloop_parts.app.reserve_parts import Clock, utc_now
from fixloop_parts.settings import PartsSettings
from fixloop_shared.asyncapi import declare_published_topics
from fixloop_shared.kernel import EventConsumer, UnitsOfWork
from fixloop_shared.memory import memory_store
from fixloop_shared.runtime import ServiceContext, build_app, build_context, serve
from fixloop_shared.service_app import ServiceApp
from fixloop_shared.settings import load_settings
from fixloop_shared.topics import Service, Topic


@dataclass
class PartsService:
    """The pieces of one parts process (the app starts and stops them)."""

    settings: PartsSettings
    ctx: ServiceContext
    units: UnitsOfWork
    """Where the consumers' units of work come from (the MongoDB store, or the given one)."""
    consumers: list[EventConsumer]
    stock: StockRepository
    log: ReservationLog
    reservations: PartsReservations
    settlements: PartsSettlements
    app: ServiceApp


def bootstrap(
    settings: PartsSettings | None = None,
    *,
    uow: UnitsOfWork | None = None,
    clock: Clock | None = None,
) -> PartsService:
    """The composition root: settings → clients → use cases → consumers → app.

    Nothing connects here; the app connects when it starts. ``clock`` is the time every use case
    reads (None: the UTC clock). With ``uow`` (a :class:`~fixloop_shared.memory.MemoryStore`) the
    consumer and :meth:`PartsReservations.work_order_received` apply events in its units of
    work, and stock and reservations live in it instead of MongoDB. The same holds for
    :class:`PartsSettlements` (cancelled and completed work orders).
    """
    settings = settings or PartsSettings()
    ctx = build_context(Service.PARTS, settings)
    stock: StockRepository
    log: ReservationLog
    if uow is None:
        stock, log = MongoStock(), MongoReservationLog()
    else:
        memory = memory_store(uow)
        stock, log = MemoryStock(memory), MemoryReservationLog(memory)
        ctx.units = memory
    reservations = PartsReservations(
        # Reservations only open units of work on it (the kernel's apply_event).
        ctx.units,
        stock,
        log,
        policy=ReservationPolicy(
            max_sources=settings.max_warehouses_per_part,
            attempts=settings.reservation_attempts,
        ),
        clock=clock or utc_now,
    )
    settlements = PartsSettlements(
        ctx.units,
        stock,
        log,
        clock=clock or utc_now,
        attempts=settings.reservation_attempts,
    )
    consumers = parts_consumers(reservations, settlements, metrics=ctx.metrics)
    ctx.consume(*consumers)
    declare_published_topics(ctx.bus, [Topic.PARTS_EVENTS])
    app = build_app(
        ctx,
        topics=[Topic.WORKORDERS_EVENTS, Topic.PARTS_EVENTS],
        indexes=ensure_indexes,
        title="Fixloop parts",
        description=(
            "Stock per warehouse and reservations per work order. Consumes work order events, "
            "publishes parts events (reserved, backordered, released, consumed)."
        ),
    )
    return PartsService(
        settings=settings,
        ctx=ctx,
        units=ctx.units,
        consumers=consumers,
        stock=stock,
        log=log,
        reservations=reservations,
        settlements=settlements,
        app=app,
    )


def create_app(settings: PartsSettings | None = None) -> ServiceApp:
    """The ASGI app of the parts service."""
    return bootstrap(settings).app


def main() -> None:
    settings = load_settings(PartsSettings)
    serve(create_app(settings), settings)
