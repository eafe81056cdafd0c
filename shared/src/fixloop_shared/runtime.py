"""Running a service: FastStream app + health/metrics HTTP + outbox relay + graceful shutdown.

Each service's ``main.py`` builds its pieces and calls :func:`run_service`. On SIGTERM uvicorn stops
serving, FastStream stops consuming and waits for in-flight handlers, then the service's own
shutdown hooks run and the outbox relay flushes before the clients close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry, Gauge, make_asgi_app

from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.logs import setup_logging
from fixloop_shared.outbox import OutboxRelay
from fixloop_shared.settings import ServiceSettings
from fixloop_shared.store import Store, make_client
from fixloop_shared.telemetry import setup_tracing
from fixloop_shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass
class ServiceContext:
    """The clients one service process runs with, built from its settings."""

    service: str
    settings: ServiceSettings
    bus: Bus
    store: Store
    relay: OutboxRelay
    metrics: CollectorRegistry
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    readiness_checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_context(service: str, settings: ServiceSettings) -> ServiceContext:
    setup_logging(service, settings.log_level)
    provider = setup_tracing(service, settings.otlp_endpoint)
    metrics = CollectorRegistry()
    bus = make_bus(settings.kafka, service=service, tracer_provider=provider, metrics=metrics)
    store = Store(
        make_client(settings.mongodb_uri, app_name=f"fixloop-{service}"),
        settings.database,
        service=service,
        serialize_writes=settings.store_serialize_writes,
    )
    relay = OutboxRelay(
        store,
        bus.publish_raw,
        poll_seconds=settings.outbox_poll_seconds,
        retention_seconds=settings.outbox_retention_seconds,
    )
    return ServiceContext(
        service=service, settings=settings, bus=bus, store=store, relay=relay, metrics=metrics
    )


def _json(status: int, body: dict[str, Any]) -> AsgiResponse:
    return AsgiResponse(
        json.dumps(body).encode(), status_code=status, headers={"content-type": "application/json"}
    )


def build_app(
    ctx: ServiceContext,
    *,
    topics: Sequence[str],
    indexes: Callable[[Store], Awaitable[None]] | None = None,
    title: str,
    description: str,
) -> AsgiFastStream:
    """The ASGI app of one service: its broker, /healthz, /readyz, /metrics and AsyncAPI docs."""
    outbox_lag = Gauge(
        "fixloop_outbox_pending", "Outbox records not yet published", registry=ctx.metrics
    )
    outbox_age = Gauge(
        "fixloop_outbox_oldest_pending_seconds",
        "Age of the oldest unpublished outbox record",
        registry=ctx.metrics,
    )

    @get(include_in_schema=False)
    async def healthz(scope: Any) -> AsgiResponse:  # noqa: ARG001 - ASGI signature
        return _json(200, {"status": "alive", "service": ctx.service})

    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:  # noqa: ARG001 - ASGI signature
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ctx.store.ping(), timeout=2)
            checks["store"] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            checks["store"] = f"unreachable: {type(exc).__name__}"
        try:
            broker_ok = await ctx.bus.broker.ping(timeout=2)
            checks["broker"] = "ok" if broker_ok else "unreachable"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        for check in ctx.readiness_checks:
            name = getattr(check, "__name__", "check")
            try:
                await check()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001
                checks[name] = f"failing: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        try:
            outbox_lag.set(await ctx.relay.pending_count())
            outbox_age.set(await ctx.relay.oldest_pending_age_seconds())
        except Exception:  # noqa: BLE001
            log.debug("outbox gauges not updated")
        return _json(200 if ready else 503, {"ready": ready, "checks": checks})

    async def startup() -> None:
        all_topics = [*topics, dead_letter_topic(ctx.service)]
        await ensure_topics(ctx.settings.kafka, all_topics)
        await ctx.store.ensure_indexes()
        if indexes is not None:
            await indexes(ctx.store)
        for hook in ctx.on_startup:
            await hook()

    async def after_startup() -> None:
        ctx.relay.start()
        log.info("service started", extra={"service": ctx.service})

    async def shutdown() -> None:
        for hook in reversed(ctx.on_shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        await ctx.relay.stop()
        await ctx.store.client.close()
        log.info("service stopped", extra={"service": ctx.service})

    return AsgiFastStream(
        ctx.bus.broker,
        asgi_routes=[
            ("/healthz", healthz),
            ("/readyz", readyz),
            ("/metrics", make_asgi_app(registry=ctx.metrics)),
        ],
        on_startup=[startup],
        after_startup=[after_startup],
        after_shutdown=[shutdown],
        specification=AsyncAPI(title=title, version="1.0.0", description=description),
        asyncapi_path="/docs/asyncapi",
    )


def serve(app: AsgiFastStream, settings: ServiceSettings) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully and exit with status 0."""
    # uvicorn re-raises the signal it caught once it has shut down; with this handler in place
    # that ends the process with status 0 instead of death by SIGTERM (143).
    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    config = uvicorn.Config(
        app,
        host=settings.health_host,
        port=settings.health_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        lifespan="on",
    )
    uvicorn.Server(config).run()


def _exit_after_graceful_shutdown(signum: int, frame: object) -> None:  # noqa: ARG001
    raise SystemExit(0)
