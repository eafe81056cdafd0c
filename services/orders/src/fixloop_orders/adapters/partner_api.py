"""The partner gRPC server's life in the service: start, health that follows readiness, stop.

The orders pods' Kubernetes readiness probe is the gRPC health check, so health reports
SERVING only while the service can actually work: its store and broker answer. When either
stops answering, health turns NOT_SERVING until they are back. On shutdown health turns
NOT_SERVING first, then calls in flight get a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from fixloop_orders.adapters.grpc_api import SERVICE_NAME, start_grpc_server
from fixloop_orders.adapters.grpc_jobs import JOBS_SERVICE_NAME
from fixloop_orders.adapters.grpc_mutations import Mutations
from fixloop_orders.adapters.read_cache import ReadCache
from fixloop_orders.adapters.watch import WorkOrderWatch
from fixloop_orders.app.intake import WorkOrderIntake
from fixloop_orders.app.lifecycle import WorkOrderLifecycle
from fixloop_orders.app.queries import WorkOrderQueries
from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.grpc_edge.server import stop_server

log = logging.getLogger(__name__)

ReadinessProbe = Callable[[], Awaitable[str | None]]
"""Returns None when the service can work, else what is wrong (e.g. "store unreachable")."""


@dataclass
class PartnerApi:
    """The orders gRPC server with its settings; ``start``/``stop`` are service hooks."""

    queries: WorkOrderQueries
    host: str
    port: int
    principals: PrincipalDirectory
    reflection: bool
    query_timeout_seconds: float = 5.0
    rate_limit: str | None = None
    stop_grace_seconds: float = 5.0
    readiness: ReadinessProbe | None = None
    readiness_interval_seconds: float = 5.0
    failures_before_not_serving: int = 2
    lifecycle: WorkOrderLifecycle | None = None
    intake: WorkOrderIntake | None = None
    mutations: Mutations | None = None
    watch: WorkOrderWatch | None = None
    cache: ReadCache[Any] | None = None
    bound_port: int | None = field(default=None, init=False)
    serving: bool = field(default=False, init=False)
    _server: grpc.aio.Server | None = field(default=None, init=False, repr=False)
    _health: health_aio.HealthServicer | None = field(default=None, init=False, repr=False)
    _follower: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        server, port, health = await start_grpc_server(
            self.queries,
            host=self.host,
            port=self.port,
            principals=self.principals,
            reflection=self.reflection,
            query_timeout_seconds=self.query_timeout_seconds,
            rate_limit=self.rate_limit,
            lifecycle=self.lifecycle,
            intake=self.intake,
            mutations=self.mutations,
            watch=self.watch,
            cache=self.cache,
        )
        self._server, self._health, self.bound_port = server, health, port
        self.serving = True
        if self.readiness is not None:
            self._follower = asyncio.create_task(
                self._follow_readiness(self.readiness), name="orders-grpc-health"
            )
        log.info(
            "partner gRPC API serving",
            extra={"host": self.host, "port": port, "reflection": self.reflection},
        )

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._server is not None and self._health is not None:
            self.serving = False
            await stop_server(self._server, self._health, grace=self.stop_grace_seconds)
            self._server = self._health = None
            log.info("partner gRPC API stopped")

    async def check_serving(self) -> None:
        """Readiness check: fails unless the server is up and reports SERVING."""
        if self._server is None or not self.serving:
            msg = "the partner gRPC API is not serving"
            raise RuntimeError(msg)

    async def set_serving(self, serving: bool, *, problem: str | None = None) -> None:
        if self._health is None or serving == self.serving:
            return
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME, JOBS_SERVICE_NAME):
            await self._health.set(name, status)
        if serving:
            log.info("store and broker reachable again: gRPC health SERVING")
        else:
            log.warning("gRPC health NOT_SERVING", extra={"problem": problem})

    async def _follow_readiness(self, probe: ReadinessProbe) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.readiness_interval_seconds)
            try:
                problem = await probe()
            except Exception as exc:  # noqa: BLE001 - a failing probe means not ready
                problem = f"readiness probe failed: {type(exc).__name__}"
            if problem is None:
                failures = 0
                await self.set_serving(True)
                continue
            failures += 1
            log.info("readiness check failed", extra={"problem": problem, "failures": failures})
            # One slow answer is not an outage: turn NOT_SERVING only when it persists.
            if failures >= self.failures_before_not_serving:
                await self.set_serving(False, problem=problem)


__all__ = ["PartnerApi", "ReadinessProbe"]
