"""A gRPC API in a service's lifespan: started with the app, health that follows readiness,
drained on shutdown.

:class:`GrpcApiHost` serves a service's gRPC services on a server built by
:func:`~fixloop_shared.grpc_edge.server.build_server` (API-key authentication of principals, rate
limit per principal, message-size limits, health checking, optional reflection); a subclass says
which services with :meth:`~GrpcApiHost.grpc_services`, built anew at each start from its own
fields. :class:`HostedGrpcApi` is one that is given its services. A service wires either into its
app as hooks: :meth:`~GrpcApiHost.start` on start-up, :meth:`~GrpcApiHost.stop` on shutdown and
:meth:`~GrpcApiHost.check_serving` as a readiness check.

With a readiness probe, gRPC health reports SERVING only while the probe finds the service able
to answer (its store reachable, say): after ``failures_before_not_serving`` failed checks in a
row it turns NOT_SERVING, and SERVING again at the first good one. On shutdown health turns
NOT_SERVING first, then calls in flight get a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio
from prometheus_client import CollectorRegistry

from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.grpc_edge.server import (
    DEFAULT_MAX_MESSAGE_BYTES,
    GrpcService,
    build_server,
    stop_server,
)

log = logging.getLogger(__name__)

ReadinessProbe = Callable[[], Awaitable[str | None]]
"""Returns None when the service can answer, else what is wrong (e.g. "store unreachable")."""


@dataclass(kw_only=True)
class GrpcApiHost:
    """A gRPC server with its settings; ``start``/``stop`` are service hooks. ``name`` names it in
    the logs and errors (e.g. "dispatch gRPC API"). Subclasses implement :meth:`grpc_services`."""

    host: str
    port: int
    principals: PrincipalDirectory
    reflection: bool
    name: str = "gRPC API"
    rate_limit: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    stop_grace_seconds: float = 5.0
    readiness: ReadinessProbe | None = None
    readiness_interval_seconds: float = 5.0
    failures_before_not_serving: int = 2
    metrics: CollectorRegistry | None = None
    """The service's registry, for the server's RED metrics (none without)."""
    bound_port: int | None = field(default=None, init=False)
    """The port the server listens on once started (``port=0`` binds a free one)."""
    serving: bool = field(default=False, init=False)
    _server: grpc.aio.Server | None = field(default=None, init=False, repr=False)
    _health: health_aio.HealthServicer | None = field(default=None, init=False, repr=False)
    _follower: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _services: Sequence[GrpcService] = field(default=(), init=False, repr=False)

    def grpc_services(self) -> Sequence[GrpcService]:
        """The gRPC services the server carries, built when it starts."""
        raise NotImplementedError

    async def start(self) -> None:
        self._services = services = self.grpc_services()
        running = await build_server(
            services,
            host=self.host,
            port=self.port,
            principals=self.principals,
            reflection=self.reflection,
            max_message_bytes=self.max_message_bytes,
            rate_limit=self.rate_limit,
            metrics=self.metrics,
        )
        await running.server.start()
        self._server, self._health, self.bound_port = running.server, running.health, running.port
        self.serving = True
        if self.readiness is not None:
            self._follower = asyncio.create_task(
                self._follow_readiness(self.readiness), name=f"{self.name} health"
            )
        log.info(
            "%s serving",
            self.name,
            extra={
                "host": self.host,
                "port": running.port,
                "reflection": self.reflection,
                "grpc_services": [s.name for s in services],
            },
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
            log.info("%s stopped", self.name)

    async def check_serving(self) -> None:
        """Readiness check: fails unless the server is up and reports SERVING."""
        if self._server is None or not self.serving:
            msg = f"the {self.name} is not serving"
            raise RuntimeError(msg)

    async def set_serving(self, serving: bool, *, problem: str | None = None) -> None:
        """Report SERVING or NOT_SERVING for the server and each of its services."""
        if self._health is None or serving == self.serving:
            return
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *(s.name for s in self._services)):
            await self._health.set(name, status)
        if serving:
            log.info("%s can answer again: gRPC health SERVING", self.name)
        else:
            log.warning("%s: gRPC health NOT_SERVING", self.name, extra={"problem": problem})

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


@dataclass(kw_only=True)
class HostedGrpcApi(GrpcApiHost):
    """A :class:`GrpcApiHost` given the services it carries."""

    services: Sequence[GrpcService] = field(kw_only=False)

    def grpc_services(self) -> Sequence[GrpcService]:
        return self.services


PROBE_TIMEOUT_SECONDS = 2.0
"""How long a health probe of a dependency (the store) may take before it counts as down."""


def store_health(ping: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[str | None]]:
    """A readiness probe for an API whose answers come from the store: None while ``ping``
    answers in time, else why not."""

    async def problem() -> str | None:
        try:
            await asyncio.wait_for(ping(), timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - unreachable is an answer, not an error
            return f"store unreachable: {type(exc).__name__}"
        return None

    return problem


class ServiceHooks(Protocol):
    """Where a service's app starts, stops and checks its parts (its ``ServiceContext``)."""

    on_startup: list[Callable[[], Awaitable[None]]]
    on_shutdown: list[Callable[[], Awaitable[None]]]
    readiness_checks: list[Callable[[], Awaitable[None]]]
    metrics: CollectorRegistry


def hosted_in(
    hooks: ServiceHooks, api: HostedGrpcApi, *, principals_setting: str, has_principals: bool
) -> HostedGrpcApi:
    """Start ``api`` with the service (after what is registered before it, e.g. the store's
    indexes), stop it with the service, and make the service unready while it is not serving.
    Without principals every call is denied: said once at start-up (``principals_setting``
    names the setting). The server's RED metrics go to the service's registry."""

    async def announce() -> None:
        if not has_principals:
            log.warning("no principals (%s): every gRPC call is denied", principals_setting)

    async def grpc_serving() -> None:
        await api.check_serving()

    if api.metrics is None:
        api.metrics = hooks.metrics
    hooks.on_startup.extend([announce, api.start])
    hooks.on_shutdown.append(api.stop)
    hooks.readiness_checks.append(grpc_serving)
    return api


__all__ = [
    "PROBE_TIMEOUT_SECONDS",
    "GrpcApiHost",
    "HostedGrpcApi",
    "ReadinessProbe",
    "ServiceHooks",
    "hosted_in",
    "store_health",
]
