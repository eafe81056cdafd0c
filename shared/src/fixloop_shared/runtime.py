"""Running a service: FastStream app + health/metrics HTTP + outbox relay + graceful shutdown.

Each service's ``main.py`` builds its pieces and calls :func:`run_service`. On SIGTERM uvicorn stops
serving, FastStream stops consuming and waits for in-flight handlers, then the service's own
shutdown hooks run and the outbox relay flushes before the clients close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from faststream.asgi import AsgiResponse, get
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry, make_asgi_app

from fixloop_shared.bus import Bus, ensure_topics, make_bus
from fixloop_shared.due_work import DueWorkScheduler
from fixloop_shared.kernel import EventConsumer, UnitsOfWork, subscribe_consumer
from fixloop_shared.logs import setup_logging
from fixloop_shared.outbox import OutboxRelay
from fixloop_shared.service_app import ConsumerWatch, ServiceApp
from fixloop_shared.settings import ServiceSettings
from fixloop_shared.store import Store, make_client
from fixloop_shared.telemetry import setup_tracing
from fixloop_shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]

READINESS_TIMEOUT_SECONDS = 2.0
"""Every readiness check answers within this, so a frozen store makes /readyz unready at once."""


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
    units: UnitsOfWork = field(init=False)
    """Where the consumers' units of work come from: the MongoDB ``store`` unless replaced
    (by an in-memory one, say) before :meth:`consume`."""

    def __post_init__(self) -> None:
        self.units = self.store

    @property
    def scheduler(self) -> DueWorkScheduler:
        """The process's due-work scheduler: the outbox relay and the service's own timers."""
        return self.relay.scheduler

    def consume(self, *consumers: EventConsumer) -> None:
        """Register the service's consumers with the kernel (before the broker starts)."""
        for consumer in consumers:
            subscribe_consumer(
                self.bus,
                self.units,
                consumer,
                max_records=self.settings.consume_batch_records,
            )


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
        bus.send_raw,
        poll_seconds=settings.outbox_poll_seconds,
        retention_seconds=settings.outbox_retention_seconds,
        batch_size=settings.outbox_batch_size,
        metrics=metrics,
    )
    ctx = ServiceContext(
        service=service, settings=settings, bus=bus, store=store, relay=relay, metrics=metrics
    )
    ctx.readiness_checks.append(bus.dead_letters.check_partitions)
    ctx.readiness_checks.append(ctx.scheduler.due_work)
    return ctx


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
) -> ServiceApp:
    """The ASGI app of one service: its broker, /healthz, /readyz, /metrics and AsyncAPI docs.

    The outbox metrics are the relay's own (moved as it works); /readyz only reports."""
    all_topics = [*dict.fromkeys(topics), dead_letter_topic(ctx.service)]
    watch = ConsumerWatch(ctx.bus, all_topics)

    async def store() -> None:
        await asyncio.wait_for(ctx.store.ping(), timeout=READINESS_TIMEOUT_SECONDS)
        await ctx.store.ensure_indexes()
        if indexes is not None:
            await indexes(ctx.store)

    async def broker_topics() -> None:
        await ensure_topics(ctx.settings.kafka, all_topics)

    async def hooks() -> None:
        for hook in ctx.on_startup:
            await hook()

    async def consumers() -> None:
        try:
            await ctx.bus.broker.start()
        except Exception:
            with contextlib.suppress(Exception):
                await ctx.bus.broker.stop()
            raise

    async def after_up() -> None:
        await ctx.scheduler.start()  # every kind of due work: the outbox relay and the timers
        log.info("service started", extra={"service": ctx.service})

    async def shutdown() -> None:
        for hook in reversed(ctx.on_shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        await ctx.scheduler.stop()
        await ctx.relay.stop()  # flushes the outbox under the relay lease
        await ctx.store.client.close()
        log.info("service stopped", extra={"service": ctx.service})

    @get(include_in_schema=False)
    async def healthz(scope: Any) -> AsgiResponse:  # noqa: ARG001 - ASGI signature
        return _json(200, {"status": "alive", "service": ctx.service})

    async def store_ping() -> None:
        await ctx.store.ping()

    async def broker_ping() -> None:
        if not await ctx.bus.broker.ping(timeout=READINESS_TIMEOUT_SECONDS):
            msg = "broker unreachable"
            raise ConnectionError(msg)

    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:  # noqa: ARG001 - ASGI signature
        named: dict[str, Callable[[], Awaitable[None]]] = {
            "start-up": app.readiness,
            "store": store_ping,
            "broker": broker_ping,
            "consumers": watch.consumers,
        }
        for check in ctx.readiness_checks:
            named[getattr(check, "__name__", "check")] = check
        results = await asyncio.gather(*(_bounded(check) for check in named.values()))
        checks = dict(zip(named, results, strict=True))
        ready = all(v == "ok" for v in checks.values())
        return _json(200 if ready else 503, {"ready": ready, "checks": checks})

    app = ServiceApp(
        ctx.bus,
        steps=[
            ("store", store),
            ("topics", broker_topics),
            ("hooks", hooks),
            ("consumers", consumers),
        ],
        after_up=[after_up],
        before_down=[shutdown],
        watch=watch,
        asgi_routes=[
            ("/healthz", healthz),
            ("/readyz", readyz),
            ("/metrics", make_asgi_app(registry=ctx.metrics)),
        ],
        specification=AsyncAPI(title=title, version="1.0.0", description=description),
        asyncapi_path="/docs/asyncapi",
    )
    return app


async def _bounded(check: Callable[[], Awaitable[None]]) -> str:
    """``ok``, or why not; never longer than the readiness timeout."""
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {READINESS_TIMEOUT_SECONDS:.0f}s"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return f"failing: {type(exc).__name__}: {str(exc)[:300]}"
    return "ok"


def serve(app: ServiceApp, settings: ServiceSettings) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully and exit with status 0."""
    # uvicorn re-raises the signal it caught once it has shut down; with this handler in place
    # that ends the process with status 0 instead of death by SIGTERM (143).
    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    app.background_start = True
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
